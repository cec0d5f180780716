/* A read-only, memory-mapped safetensors file: an 8-byte little-endian
 * header length, a JSON header (parsed with cJSON) naming each tensor's
 * dtype, shape and byte range, then the data. Every claim of the header is
 * checked against the file before any byte is handed out. */
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
    size_t nbytes;
} sym_st_tensor;

typedef struct {
    void *map;
    size_t map_len;
    sym_st_tensor *tensors;
    int n;
} sym_safetensors;

int sym_st_open(sym_safetensors *st, const char *path, sym_err *e);
void sym_st_close(sym_safetensors *st);
const sym_st_tensor *sym_st_find(const sym_safetensors *st, const char *name);

#endif
