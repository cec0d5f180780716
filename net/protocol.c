/* The game protocol's messages; see protocol.h. */
#include "net/protocol.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/requests_csv.h"

static const char *const type_names[] = {"register",     "inference_request", "inference_response",
                                         "score_update", "heartbeat",         "error"};

const char *sym_msg_type_name(sym_msg_type t) { return type_names[t]; }

double sym_proto_wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Copies line with bare NaN / Infinity / -Infinity outside strings turned
 * into JSON strings. NULL when there is nothing to rewrite or no memory. */
static char *quote_nonfinite(const char *s, size_t len) {
    if (!memmem(s, len, "NaN", 3) && !memmem(s, len, "Infinity", 8)) return NULL;
    char *out = malloc(len * 3 + 1); /* each token grows by at most 2 bytes */
    if (!out) return NULL;
    size_t j = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            out[j++] = c;
            if (c == '\\' && i + 1 < len) out[j++] = s[++i];
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        size_t tl = 0;
        if (len - i >= 3 && !memcmp(s + i, "NaN", 3)) tl = 3;
        else if (len - i >= 8 && !memcmp(s + i, "Infinity", 8)) tl = 8;
        else if (len - i >= 9 && !memcmp(s + i, "-Infinity", 9)) tl = 9;
        if (tl) {
            out[j++] = '"';
            memcpy(out + j, s + i, tl);
            j += tl;
            out[j++] = '"';
            i += tl - 1;
        } else {
            out[j++] = c;
        }
    }
    out[j] = '\0';
    return out;
}

int sym_proto_parse(const char *line, size_t len, cJSON **root, sym_msg_type *type, sym_err *e) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!j) {
        char *fixed = quote_nonfinite(line, len);
        if (fixed) {
            j = cJSON_ParseWithOpts(fixed, NULL, 0);
            free(fixed);
        }
    }
    if (!j) {
        size_t at = end && end >= line ? (size_t)(end - line) : 0;
        return sym_fail(e, "malformed JSON near byte %zu of %zu: '%.24s'", at, len, at < len ? line + at : "");
    }
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

int sym_proto_batch_read(const cJSON *root, sym_proto_batch *b, sym_err *e) {
    memset(b, 0, sizeof *b);
    if (!(b->uids = get_array(root, "unique_ids", e)) || !(b->symbols = get_array(root, "symbols", e)) ||
        !(b->features = get_array(root, "features", e)))
        return -1;
    int nu = cJSON_GetArraySize(b->uids), ns = cJSON_GetArraySize(b->symbols), nf = cJSON_GetArraySize(b->features);
    if (nu != ns || nu != nf)
        return sym_fail(e, "lists of unequal length: unique_ids %d, symbols %d, features %d", nu, ns, nf);
    b->n = nu;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "timestamp");
    b->timestamp = cJSON_IsNumber(ts) ? ts->valuedouble : 0;
    return 0;
}

int sym_proto_uid(const cJSON *item, uint64_t *uid, sym_err *e) {
    if (!cJSON_IsNumber(item)) return sym_fail(e, "unique_id is not a number");
    double v = item->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v))
        return sym_fail(e, "unique_id %.17g is not an integer in [0, 2^53]", v);
    *uid = (uint64_t)v;
    return 0;
}

/* cJSON_GetArrayItem walks the list from its head (O(n^2) over a batch):
 * rows are read in order, so the batch keeps a cursor into each list. */
static void seek(sym_proto_batch *b, int k) {
    if (b->at_uid && b->at == k) return;
    if (b->at_uid && b->at + 1 == k) {
        b->at_uid = b->at_uid->next, b->at_sym = b->at_sym->next, b->at_feat = b->at_feat->next;
    } else {
        b->at_uid = cJSON_GetArrayItem(b->uids, k), b->at_sym = cJSON_GetArrayItem(b->symbols, k);
        b->at_feat = cJSON_GetArrayItem(b->features, k);
    }
    b->at = k;
}

int sym_proto_row(sym_proto_batch *b, int k, int n_features, uint64_t *uid, int *uid_ok,
                  char symbol[SYM_PROTO_SYMBOL_MAX + 1], float *features, sym_err *e) {
    *uid_ok = 0;
    seek(b, k);
    if (sym_proto_uid(b->at_uid, uid, e)) return -1;
    *uid_ok = 1;
    const cJSON *s = b->at_sym;
    if (!cJSON_IsString(s)) return sym_fail(e, "symbol is not a string");
    size_t sl = strlen(s->valuestring);
    if (sym_symbol_check(s->valuestring, sl, e)) return -1;
    memcpy(symbol, s->valuestring, sl + 1);
    const cJSON *row = b->at_feat;
    if (!cJSON_IsArray(row)) return sym_fail(e, "features row is not a list");
    int nf = cJSON_GetArraySize(row);
    if (nf != n_features) return sym_fail(e, "features row has %d numbers, the model takes %d", nf, n_features);
    int i = 0;
    for (const cJSON *x = row->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x)) return sym_fail(e, "feature %d is not a number", i);
        float f = (float)x->valuedouble;
        if (!isfinite(f)) return sym_fail(e, "feature %d is not finite in float32 (%g)", i, x->valuedouble);
        features[i] = f;
    }
    return 0;
}

int sym_proto_response(const cJSON *root, const cJSON **uids, const cJSON **preds, int *n, sym_err *e) {
    if (!(*uids = get_array(root, "unique_ids", e)) || !(*preds = get_array(root, "predictions", e))) return -1;
    int nu = cJSON_GetArraySize(*uids), np = cJSON_GetArraySize(*preds);
    if (nu != np) return sym_fail(e, "lists of unequal length: unique_ids %d, predictions %d", nu, np);
    *n = nu;
    return 0;
}

int sym_proto_prediction(const cJSON *row, double pred[4], sym_err *e) {
    if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 4) return sym_fail(e, "a prediction must be a list of 4 numbers");
    int i = 0;
    for (const cJSON *x = row->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x)) return sym_fail(e, "prediction %d is not a number", i);
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
    if (j) cJSON_AddStringToObject(j, "message_type", type);
    return j;
}

int sym_proto_write_register(sym_outbuf *o) { return append_json(o, message("register")); }

int sym_proto_write_heartbeat(sym_outbuf *o, double timestamp) {
    cJSON *j = message("heartbeat");
    if (j) cJSON_AddNumberToObject(j, "timestamp", timestamp);
    return append_json(o, j);
}

int sym_proto_write_error(sym_outbuf *o, const char *error, const char *details, int64_t uid) {
    cJSON *j = message("error");
    if (!j) return -1;
    cJSON_AddStringToObject(j, "error", error);
    if (details) cJSON_AddStringToObject(j, "details", details);
    else cJSON_AddNullToObject(j, "details");
    if (uid >= 0) cJSON_AddNumberToObject(j, "unique_id", (double)uid);
    return append_json(o, j);
}

/* The two hot messages (a request row of F features, a response row of 4
 * predictions) are formatted directly: cJSON would build a tree per number
 * and print each one twice to find a round-tripping width. */
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

int sym_proto_write_response(sym_outbuf *o, const uint64_t *uids, const double (*pred)[4], int n, double client_ts) {
    strbuf b = {0};
    sb_str(&b, "{\"message_type\":\"inference_response\",\"unique_ids\":[");
    for (int k = 0; k < n; k++) {
        if (k) sb_put(&b, ",", 1);
        sb_u64(&b, uids[k]);
    }
    sb_str(&b, "],\"predictions\":[");
    for (int k = 0; k < n; k++) {
        sb_str(&b, k ? ",[" : "[");
        for (int t = 0; t < 4; t++) {
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

int sym_proto_write_score_update(sym_outbuf *o, const uint64_t *uids, const double *pnl, const double *acc,
                                 const double *lat_ms, int n) {
    cJSON *j = message("score_update");
    if (!j) return -1;
    cJSON *u = cJSON_AddArrayToObject(j, "unique_ids"), *p = cJSON_AddArrayToObject(j, "trade_pnls"),
          *a = cJSON_AddArrayToObject(j, "accuracies"), *l = cJSON_AddArrayToObject(j, "latencies_ms");
    for (int k = 0; k < n && u && p && a && l; k++) {
        cJSON_AddItemToArray(u, cJSON_CreateNumber((double)uids[k]));
        cJSON_AddItemToArray(p, cJSON_CreateNumber(pnl[k]));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(acc[k]));
        cJSON_AddItemToArray(l, cJSON_CreateNumber(lat_ms[k]));
    }
    return append_json(o, j);
}
