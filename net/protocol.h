/* The game protocol (docs/PROTOCOL.md): one JSON object per line. Reading is
 * done with cJSON; writers append one complete line ('\n' included) to an
 * output buffer.
 *
 * Validation is split in two levels so that one bad row never costs the good
 * rows of the same message:
 *  - message level (sym_proto_parse, sym_proto_batch): malformed JSON, no or
 *    unknown message_type, missing lists or lists of unequal length. The
 *    whole message is refused; the caller answers with an `error`.
 *  - row level (sym_proto_row): unique_id, symbol syntax, feature count,
 *    non-numeric or non-finite features. Only that row is refused; the error
 *    names its unique_id. */
#ifndef SYM_NET_PROTOCOL_H
#define SYM_NET_PROTOCOL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "net/tcp.h"

#define SYM_PROTO_SYMBOL_MAX 64

typedef enum {
    SYM_MSG_REGISTER,
    SYM_MSG_INFERENCE_REQUEST,
    SYM_MSG_INFERENCE_RESPONSE,
    SYM_MSG_SCORE_UPDATE,
    SYM_MSG_HEARTBEAT,
    SYM_MSG_ERROR,
} sym_msg_type;

const char *sym_msg_type_name(sym_msg_type t);

/* Parses one line into a JSON object with a known message_type. Bare NaN,
 * Infinity and -Infinity tokens (which Python's json writes) are read as
 * the strings "NaN"... so that a request carrying one is refused row by row,
 * not as a malformed message. 0 with *root (cJSON_Delete it), or -1 with e. */
int sym_proto_parse(const char *line, size_t len, cJSON **root, sym_msg_type *type, sym_err *e);

/* The parallel lists of an inference_request (or the unique_ids list of a
 * response / score_update: then symbols and features are NULL). */
typedef struct {
    const cJSON *uids, *symbols, *features;
    int n;
    double timestamp; /* 0 when absent */
    /* where sym_proto_row stopped: rows read in order cost O(1) each */
    int at;
    const cJSON *at_uid, *at_sym, *at_feat;
} sym_proto_batch;

/* inference_request: unique_ids, symbols, features present, lists, equal
 * length. -1 with e otherwise. */
int sym_proto_batch_read(const cJSON *root, sym_proto_batch *b, sym_err *e);

/* A unique_id: a JSON number holding an integer in [0, 2^53]. */
int sym_proto_uid(const cJSON *item, uint64_t *uid, sym_err *e);

/* Row k of a batch. uid is read first: *uid_ok says whether an error can name
 * it. symbol gets a NUL-terminated copy; features gets n_features floats
 * (the row must have exactly that many finite numbers). */
int sym_proto_row(sym_proto_batch *b, int k, int n_features, uint64_t *uid, int *uid_ok,
                  char symbol[SYM_PROTO_SYMBOL_MAX + 1], float *features, sym_err *e);

/* inference_response: unique_ids and predictions (rows of 4 numbers), equal
 * length. Row k: sym_proto_uid(cJSON_GetArrayItem(...)) and this: */
int sym_proto_response(const cJSON *root, const cJSON **uids, const cJSON **preds, int *n, sym_err *e);
int sym_proto_prediction(const cJSON *row, double pred[4], sym_err *e);

/* Writers: each appends one line; -1 only when memory runs out. */
int sym_proto_write_register(sym_outbuf *o);
int sym_proto_write_heartbeat(sym_outbuf *o, double timestamp);
/* uid < 0: the error is about the message, not one request. */
int sym_proto_write_error(sym_outbuf *o, const char *error, const char *details, int64_t uid);
/* Numbers with 17 significant digits (round-trip a double); a non-finite
 * prediction is written as null (JSON has no NaN) — the caller logs it. */
int sym_proto_write_response(sym_outbuf *o, const uint64_t *uids, const double (*pred)[4], int n, double client_ts);
int sym_proto_write_request(sym_outbuf *o, const uint64_t *uids, const char *const *symbols, const float *const *features,
                            int n, int n_features, double timestamp);
int sym_proto_write_score_update(sym_outbuf *o, const uint64_t *uids, const double *pnl, const double *acc,
                                 const double *lat_ms, int n);

/* Wall clock in seconds (the protocol's timestamps). */
double sym_proto_wall_s(void);

#endif
