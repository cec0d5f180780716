/* The game protocol's messages; see protocol.h. */
#include "net/protocol.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"

static const char *const type_names[] = {"register",  "inference_request", "inference_response", "score_update",
                                         "heartbeat", "error",             "stats_update"};

const char *sym_msg_type_name(sym_msg_type t) { return type_names[t]; }

double sym_proto_wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sym_proto_parse(const char *line, size_t len, cJSON **root, sym_msg_type *type, sym_err *e) {
    cJSON *j = sym_json_parse(line, len, e);
    if (!j) return -1;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return sym_fail(e, "a message must be a JSON object");
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "message_type");
    if (!cJSON_IsString(t)) {
        cJSON_Delete(j);
        return sym_fail(e, "message has no message_type string");
    }
    for (int k = 0; k < (int)(sizeof type_names / sizeof *type_names); k++) {
        if (!strcmp(t->valuestring, type_names[k])) {
            *root = j;
            *type = (sym_msg_type)k;
            return 0;
        }
    }
    sym_fail(e, "unknown message_type '%.64s'", t->valuestring);
    cJSON_Delete(j);
    return -1;
}

static const cJSON *get_array(const cJSON *root, const char *key, sym_err *e) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(a)) {
        sym_fail(e, "'%s' is missing or not a list", key);
        return NULL;
    }
    return a;
}

int sym_proto_uid(const cJSON *item, uint64_t *uid, sym_err *e) {
    if (sym_json_u64(item, uid)) return sym_fail(e, "unique_id is not an integer in 0..2^64-1");
    return 0;
}

int sym_proto_response(const cJSON *root, const cJSON **uids, const cJSON **preds, int *n, sym_err *e) {
    if (!(*uids = get_array(root, "unique_ids", e)) || !(*preds = get_array(root, "predictions", e))) return -1;
    int nu = cJSON_GetArraySize(*uids), np = cJSON_GetArraySize(*preds);
    if (nu != np) return sym_fail(e, "lists of unequal length: unique_ids %d, predictions %d", nu, np);
    *n = nu;
    return 0;
}

int sym_proto_prediction(const cJSON *row, double pred[SYM_TOWERS], sym_err *e) {
    if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != SYM_TOWERS)
        return sym_fail(e, "a prediction must be a list of %d numbers", SYM_TOWERS);
    int i = 0;
    for (const cJSON *x = row->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x)) return sym_fail(e, "prediction %d is not a number", i);
        if (!isfinite(x->valuedouble)) return sym_fail(e, "prediction %d is not finite", i);
        pred[i] = x->valuedouble;
    }
    return 0;
}

/* Small messages are built with cJSON (escaping done right). */
static int append_json(sym_outbuf *o, cJSON *j) {
    if (!j) return -1;
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return -1;
    int rc = sym_outbuf_append(o, s, strlen(s)) || sym_outbuf_append(o, "\n", 1) ? -1 : 0;
    cJSON_free(s);
    return rc;
}

static cJSON *message(const char *type) {
    cJSON *j = cJSON_CreateObject();
    if (j && !cJSON_AddStringToObject(j, "message_type", type)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

int sym_proto_write_register(sym_outbuf *o) { return append_json(o, message("register")); }

int sym_proto_write_heartbeat(sym_outbuf *o, double timestamp) {
    cJSON *j = message("heartbeat");
    if (j) cJSON_AddNumberToObject(j, "timestamp", timestamp);
    return append_json(o, j);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0. s is NUL-terminated: a NUL is
 * never a continuation byte, so no byte past it is read. */
static size_t utf8_seq(const unsigned char *s) {
    unsigned c = s[0], lo = 0x80, hi = 0xbf; /* the range of the second byte */
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) n = 3, lo = c == 0xe0 ? 0xa0 : lo, hi = c == 0xed ? 0x9f : hi;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, lo = c == 0xf0 ? 0x90 : lo, hi = c == 0xf4 ? 0x8f : hi;
    else return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return n;
}

/* s with each byte that does not begin a valid UTF-8 sequence replaced by
 * U+FFFD; NULL when memory runs out (cJSON_free it). */
static char *valid_utf8(const char *s) {
    size_t n = strlen(s);
    char *out = cJSON_malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t k = utf8_seq(p);
        if (k) memcpy(o, p, k), o += k, p += k;
        else memcpy(o, "\xef\xbf\xbd", 3), o += 3, p++;
    }
    *o = '\0';
    return out;
}

/* The strings are made valid UTF-8 first: details may quote a peer's bytes
 * cut at a length limit (a long unknown key, a message_type), and cJSON
 * copies bytes >= 0x80 as they are, so one cut sequence would make the
 * whole line undecodable on the other side. cJSON escapes the rest ('"',
 * '\\', control bytes). */
int sym_proto_write_error(sym_outbuf *o, const char *error, const char *details) {
    cJSON *j = message("error");
    char *er = valid_utf8(error), *de = valid_utf8(details ? details : "");
    int ok = j && er && de && cJSON_AddStringToObject(j, "error", er) && cJSON_AddStringToObject(j, "details", de);
    cJSON_free(er);
    cJSON_free(de);
    if (!ok) {
        cJSON_Delete(j);
        return -1;
    }
    return append_json(o, j);
}

/* The three messages written per row (a request row of F features, a
 * response row of 4 predictions, a score_update row) are formatted
 * directly, not through cJSON, for exactness and for speed. cJSON (1.7)
 * keeps 15 significant digits of a double whenever they read back within a
 * relative DBL_EPSILON, so a prediction would not always come back bit for
 * bit; here a double has 17 digits and a float32 feature 9, both exact. And
 * cJSON builds a node per number and prints most numbers twice: callgrind
 * on bench_net_protocol's messages counts ~16k instructions for a one-row
 * response line written here, ~44k through cJSON, against ~50k for play's
 * whole protocol path of a one-row request. Every writer's lines are read
 * back with the strict reader over random values, bit for bit, and
 * compared with the same message built through cJSON
 * (tests/net/test_protocol_writers.c). */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_reserve(strbuf *b, size_t n) {
    if (b->oom || b->cap - b->len >= n) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void sb_put(strbuf *b, const char *s, size_t n) {
    sb_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_num(strbuf *b, double v, int digits) {
    sb_reserve(b, 32);
    if (b->oom) return;
    if (!isfinite(v)) {
        memcpy(b->p + b->len, "null", 4);
        b->len += 4;
        return;
    }
    b->len += (size_t)snprintf(b->p + b->len, 32, "%.*g", digits, v);
}

static void sb_u64(strbuf *b, uint64_t v) {
    sb_reserve(b, 24);
    if (!b->oom) b->len += (size_t)snprintf(b->p + b->len, 24, "%llu", (unsigned long long)v);
}

/* A JSON string; symbols reaching here passed sym_symbol_check (printable
 * ASCII) but '"' and '\\' still need escaping. */
static void sb_jstr(strbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') sb_put(b, "\\", 1);
        sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

static int sb_finish(strbuf *b, sym_outbuf *o) {
    sb_put(b, "\n", 1);
    int rc = b->oom || sym_outbuf_append(o, b->p, b->len) ? -1 : 0;
    free(b->p);
    return rc;
}

int sym_proto_write_response(sym_outbuf *o, const uint64_t *uids, const double (*pred)[SYM_TOWERS], int n,
                             double client_ts) {
    strbuf b = {0};
    sb_str(&b, "{\"message_type\":\"inference_response\",\"unique_ids\":[");
    for (int k = 0; k < n; k++) {
        if (k) sb_put(&b, ",", 1);
        sb_u64(&b, uids[k]);
    }
    sb_str(&b, "],\"predictions\":[");
    for (int k = 0; k < n; k++) {
        sb_str(&b, k ? ",[" : "[");
        for (int t = 0; t < SYM_TOWERS; t++) {
            if (t) sb_put(&b, ",", 1);
            sb_num(&b, pred[k][t], 17);
        }
        sb_put(&b, "]", 1);
    }
    sb_str(&b, "],\"client_timestamp\":");
    sb_num(&b, client_ts, 17);
    sb_put(&b, "}", 1);
    return sb_finish(&b, o);
}

int sym_proto_write_request(sym_outbuf *o, const uint64_t *uids, const char *const *symbols, const float *const *features,
                            int n, int n_features, double timestamp) {
    strbuf b = {0};
    sb_str(&b, "{\"message_type\":\"inference_request\",\"unique_ids\":[");
    for (int k = 0; k < n; k++) {
        if (k) sb_put(&b, ",", 1);
        sb_u64(&b, uids[k]);
    }
    sb_str(&b, "],\"symbols\":[");
    for (int k = 0; k < n; k++) {
        if (k) sb_put(&b, ",", 1);
        sb_jstr(&b, symbols[k]);
    }
    sb_str(&b, "],\"features\":[");
    for (int k = 0; k < n; k++) {
        sb_str(&b, k ? ",[" : "[");
        for (int i = 0; i < n_features; i++) {
            if (i) sb_put(&b, ",", 1);
            sb_num(&b, features[k][i], 9); /* 9 digits round-trip a float32 */
        }
        sb_put(&b, "]", 1);
    }
    sb_str(&b, "],\"timestamp\":");
    sb_num(&b, timestamp, 17);
    sb_put(&b, "}", 1);
    return sb_finish(&b, o);
}

static void sb_nums(strbuf *b, const char *key, const double *v, int n) {
    sb_str(b, key);
    for (int k = 0; k < n; k++) {
        if (k) sb_put(b, ",", 1);
        sb_num(b, v[k], 17);
    }
    sb_put(b, "]", 1);
}

int sym_proto_write_score_update(sym_outbuf *o, const uint64_t *uids, const double *pnl, const double *acc,
                                 const double *lat_ms, int n) {
    strbuf b = {0};
    sb_str(&b, "{\"message_type\":\"score_update\",\"unique_ids\":[");
    for (int k = 0; k < n; k++) {
        if (k) sb_put(&b, ",", 1);
        sb_u64(&b, uids[k]);
    }
    sb_nums(&b, "],\"trade_pnls\":[", pnl, n);
    sb_nums(&b, ",\"accuracies\":[", acc, n);
    sb_nums(&b, ",\"latencies_ms\":[", lat_ms, n);
    sb_put(&b, "}", 1);
    return sb_finish(&b, o);
}
