/* The game protocol (docs/PROTOCOL.md): one JSON object per line, read
 * strictly (common/json.h: RFC 8259, UTF-8, no NUL, no duplicate keys,
 * nothing after the object). The one hot message, inference_request, is
 * read without a tree by net/request_reader.h; every other message goes
 * through sym_proto_parse into a cJSON tree. Writers append one complete
 * line ('\n' included) to an output buffer, with exactly the fields the
 * seed's dataclasses know: a key they do not know makes the whole message
 * undecodable on their side. */
#ifndef SYM_NET_PROTOCOL_H
#define SYM_NET_PROTOCOL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/request.h"
#include "net/tcp.h"

typedef enum {
    SYM_MSG_REGISTER,
    SYM_MSG_INFERENCE_REQUEST,
    SYM_MSG_INFERENCE_RESPONSE,
    SYM_MSG_SCORE_UPDATE,
    SYM_MSG_HEARTBEAT,
    SYM_MSG_ERROR,
    SYM_MSG_STATS_UPDATE, /* the seed names it (server -> client, no fields defined, no answer) */
} sym_msg_type;

const char *sym_msg_type_name(sym_msg_type t);

/* Parses one line strictly into a JSON object with a known message_type.
 * 0 with *root (cJSON_Delete it), or -1 with e. */
int sym_proto_parse(const char *line, size_t len, cJSON **root, sym_msg_type *type, sym_err *e);

/* A unique_id: an integer literal in 0..2^64-1, read exactly. */
int sym_proto_uid(const cJSON *item, uint64_t *uid, sym_err *e);

/* inference_response: unique_ids and predictions, lists of equal length.
 * Row k: sym_proto_uid on the id and sym_proto_prediction on the row. */
int sym_proto_response(const cJSON *root, const cJSON **uids, const cJSON **preds, int *n, sym_err *e);
/* A prediction: a list of exactly SYM_TOWERS numbers, each finite as a double. */
int sym_proto_prediction(const cJSON *row, double pred[SYM_TOWERS], sym_err *e);

/* Writers: each appends one line; -1 only when memory runs out. */
int sym_proto_write_register(sym_outbuf *o);
int sym_proto_write_heartbeat(sym_outbuf *o, double timestamp);
/* An error carries message_type, error and details, all strings; what it
 * is about (a request's unique_id, the ids of a refused line) is written
 * in details. details NULL: written as "". Any bytes may come in (a peer's
 * text cut at a limit): a byte that does not begin a valid UTF-8 sequence
 * is written as U+FFFD, so the line is always valid UTF-8 JSON. */
int sym_proto_write_error(sym_outbuf *o, const char *error, const char *details);
/* Ids as exact integers; numbers with 17 significant digits (round-trip a
 * double); a non-finite prediction is written as null (JSON has no NaN)
 * and the caller logs it. */
int sym_proto_write_response(sym_outbuf *o, const uint64_t *uids, const double (*pred)[SYM_TOWERS], int n,
                             double client_ts);
int sym_proto_write_request(sym_outbuf *o, const uint64_t *uids, const char *const *symbols, const float *const *features,
                            int n, int n_features, double timestamp);
int sym_proto_write_score_update(sym_outbuf *o, const uint64_t *uids, const double *pnl, const double *acc,
                                 const double *lat_ms, int n);

/* Wall clock in seconds (the protocol's timestamps). */
double sym_proto_wall_s(void);

#endif
