/* The reader of the one hot message, inference_request: one pass over the
 * line, no tree. cJSON would build a node per number (~9 us per 79-feature
 * row, and some 50 bytes of memory per byte of input for a list of small
 * integers); this reads a row in ~2 us into flat arrays of at most about
 * 4 bytes per byte of input, so a message of any size the line limit allows
 * is served, and memory stays bounded by that limit.
 *
 * It applies exactly the rules of common/json.h (RFC 8259 grammar, UTF-8,
 * no NUL, nesting depth), and an inference_request's own:
 *  - message level (the whole line is refused, nothing of it served): the
 *    line is not one JSON object; message_type is missing or not a string;
 *    a key appears twice; a key other than message_type, unique_ids,
 *    symbols, features, timestamp; a missing list or one that is not a
 *    list; lists of unequal length; a timestamp that is not a number; an
 *    object anywhere inside (no field of a request holds one);
 *  - row level (only that row is refused): a unique_id that is not an
 *    integer in 0..2^64-1; a symbol that is not a string or breaks
 *    sym_symbol_check; a features row that is not a list of n_features
 *    numbers finite in float32.
 *
 * Numbers: up to 19 significant digits are read exactly as an integer and
 * scaled by a power of ten in long double (exact up to 10^27), then rounded
 * to float32; longer numbers or larger exponents go through strtold. The
 * result equals (float)strtod() except where one of the two roundings lands
 * exactly on a float32 halfway point (~2^-29 per number, and then one
 * float32 ulp apart). unique_ids are read exactly. */
#ifndef SYM_NET_REQUEST_READER_H
#define SYM_NET_REQUEST_READER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum {
    SYM_LINE_REQUEST, /* a well-formed inference_request: read its rows */
    SYM_LINE_OTHER,   /* another message_type: parse it with sym_proto_parse */
    SYM_LINE_BAD,     /* refused whole; e says why */
} sym_line_kind;

/* One message's rows, in list order. The arrays are reused from line to
 * line (sym_request_msg_free releases them). Fields are the reader's. */
typedef struct {
    int n;            /* rows of a SYM_LINE_REQUEST */
    double timestamp; /* 0 when absent */
    char type[32];    /* message_type of a SYM_LINE_OTHER (truncated) */
    int n_features;
    /* unique_ids */
    int nu, cap_u;
    uint64_t *uid;
    uint8_t *uid_st;
    /* symbols: NUL-terminated in sym_text at sym_at[k] */
    int ns, cap_s;
    size_t *sym_at;
    uint8_t *sym_st;
    char *sym_text;
    size_t text_len, text_cap;
    /* features: row k's n_features floats at feat + row_at[k] */
    int nf, cap_f;
    size_t *row_at;
    uint8_t *row_st;
    int *row_arg;
    float *feat;
    size_t feat_len, feat_cap;
} sym_request_msg;

void sym_request_msg_free(sym_request_msg *m);

/* Reads one line (len bytes; NUL bytes in it are errors). After
 * SYM_LINE_BAD the ids read before the fault are still there:
 * sym_request_ids_read lists them, so an error can name them. */
sym_line_kind sym_request_read(sym_request_msg *m, const char *line, size_t len, int n_features, sym_err *e);

/* Row k of a SYM_LINE_REQUEST. *uid_ok: whether *uid is the row's
 * unique_id (then an error can name it). 0 with *symbol (valid, NUL-
 * terminated) and *features (n_features finite floats), both valid until
 * the next read; -1 with e for a row refused on its own. */
int sym_request_row(const sym_request_msg *m, int k, uint64_t *uid, int *uid_ok, const char **symbol,
                    const float **features, sym_err *e);

/* The unique_ids read exactly, in list order (for a refused line: those
 * before the fault). Returns how many; ids[] gets the first max of them. */
int sym_request_ids_read(const sym_request_msg *m, uint64_t *ids, int max);

/* The details of the error for a line refused whole (why): the unique_ids
 * read in it, up to 16 named ("...; none of its requests was served,
 * unique_ids 1, 2 and 3 more"), so the peer knows what went unanswered.
 * Returns how many ids were read. */
int sym_request_refusal(const sym_request_msg *m, const char *why, char *details, size_t cap);

#endif
