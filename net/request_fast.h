/* A fast path for the one hot message, inference_request: a single-pass
 * scanner that accepts only a fully valid message (every row well formed)
 * and hands anything else back to the cJSON path in protocol.c, which then
 * produces the exact error messages. cJSON spends ~9 us on a 79-feature row
 * (a tree node malloc'd per number, strtod under locale lookups); this path
 * spends ~2 us, which is what lets one core parse and answer >100k
 * requests/s (docs/notes/net.md).
 *
 * Numbers: up to 19 significant digits are read exactly as an integer and
 * scaled by a power of ten in long double (exact up to 10^27), then rounded
 * to float32; longer numbers or larger exponents go to strtold. The result
 * equals cJSON's (float)strtod() except where one of the two double
 * roundings lands exactly on a float32 halfway point (~2^-29 per number,
 * and then one float32 ulp apart). */
#ifndef SYM_NET_REQUEST_FAST_H
#define SYM_NET_REQUEST_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "net/protocol.h"

#define SYM_FAST_MAX_ROWS 256
#define SYM_FAST_MAX_FEATURES 256

typedef struct {
    int n;
    double timestamp;
    uint64_t uids[SYM_FAST_MAX_ROWS];
    char symbols[SYM_FAST_MAX_ROWS][SYM_PROTO_SYMBOL_MAX + 1];
    float features[SYM_FAST_MAX_ROWS][SYM_FAST_MAX_FEATURES];
} sym_fast_request;

/* 1: line is a valid inference_request with rows of n_features finite
 * numbers and valid symbols, written to r; 0: not handled here (use the
 * cJSON path: it may still be valid, e.g. escapes or extra keys). */
int sym_fast_request_parse(const char *line, size_t len, int n_features, sym_fast_request *r);

#endif
