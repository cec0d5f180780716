/* A read-only, memory-mapped safetensors file, held to the format's own
 * rules (huggingface/safetensors) before any byte is handed out:
 *  - an 8-byte little-endian header length N (1 .. 100,000,000, within the
 *    file), then N bytes of header, then the byte buffer;
 *  - the header is one strict JSON object (common/json.h: no duplicate
 *    keys, nothing but JSON after it) that begins with '{' and may be
 *    padded at its end with spaces, nothing else;
 *  - "__metadata__", when present, maps strings to strings;
 *  - every other entry is a tensor: an object with exactly "dtype" (a known
 *    dtype name), "shape" (at most 8 non-negative integers) and
 *    "data_offsets" ([begin, end], integers, begin <= end), integers
 *    written as integer literals without a sign and read exactly;
 *    end - begin is the shape's element count times the dtype's size;
 *  - taken in order of their offsets, the tensors cover the byte buffer
 *    exactly: the first begins at 0, each begins where the one before
 *    ended, the last ends at the end of the file. No overlap, no hole, no
 *    trailing bytes: every byte of the file has one meaning.
 * Errors name the file and the tensor(s), and the byte range at fault. */
#ifndef SYM_SAFETENSORS_H
#define SYM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum { SYM_DT_F32, SYM_DT_BF16, SYM_DT_F16, SYM_DT_F64, SYM_DT_OTHER } sym_dtype;

typedef struct {
    char name[128];
    sym_dtype dtype;
    char dtype_name[16];
    int ndim;
    int64_t shape[8];
    const uint8_t *data; /* inside the mapping */
    size_t offset;       /* of data in the byte buffer (data_offsets[0]) */
    size_t nbytes;
} sym_st_tensor;

typedef struct {
    void *map;
    size_t map_len;
    sym_st_tensor *tensors; /* in the header's order */
    int n;
} sym_safetensors;

int sym_st_open(sym_safetensors *st, const char *path, sym_err *e);
void sym_st_close(sym_safetensors *st);
const sym_st_tensor *sym_st_find(const sym_safetensors *st, const char *name);

#endif
