/* The protocol's writers (net/protocol.h) read back: every line is one
 * strict JSON object (common/json.h) ended by one '\n', with exactly the
 * fields the seed's dataclasses know, and the values written are the values
 * given, bit for bit: ids up to 2^64 - 1 exact, doubles of every kind
 * (subnormals, the largest and smallest exponents, negative zero) and
 * float32 features round-tripping, a non-finite number written as null. The
 * hand-written lines (request, response, score_update) are also compared
 * with the same message built and printed through cJSON (the same tree,
 * numbers within cJSON's own tolerance). Error lines carry
 * any bytes given as valid UTF-8: quotes, backslashes and control bytes
 * escaped, valid UTF-8 kept, each byte of an invalid sequence written as
 * U+FFFD. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "net/protocol.h"
#include "tests/check.h"

static uint64_t rng = 0x5eed;
static uint64_t next_u64(void) { /* splitmix64 */
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int below(int n) { return (int)(next_u64() % (uint64_t)n); }

static uint64_t random_id(void) {
    static const uint64_t edges[] = {0, 1, 9007199254740992ull, 9007199254740993ull, 9223372036854775807ull,
                                     9223372036854775808ull, UINT64_MAX - 1, UINT64_MAX};
    int k = below(4);
    return k == 0 ? edges[below(8)] : k == 1 ? (uint64_t)below(100000) : next_u64();
}

static double from_bits(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* Any double: special values, subnormals, any exponent, any bits
 * (non-finite ones included when nonfinite). */
static double random_double(int nonfinite) {
    static const double specials[] = {0.0, -0.0, DBL_MIN, -DBL_MIN, DBL_TRUE_MIN, -DBL_TRUE_MIN, DBL_MAX, -DBL_MAX,
                                      1e-308, 2.2250738585072009e-308, 1e308, 0.1, 1.0 / 3, 1e21, 1e-7, 123456789.0,
                                      9007199254740993.0, 0.45942163467407227, 1e-05, -2.5};
    for (;;) {
        double d;
        switch (below(5)) {
        case 0: d = specials[below((int)(sizeof specials / sizeof *specials))]; break;
        case 1: d = from_bits(next_u64() & 0x800fffffffffffffull); break; /* a subnormal */
        case 2: d = ((double)(next_u64() >> 11) / 9007199254740992.0 - 0.5) * 4; break;
        case 3: d = nonfinite && below(2) ? (below(2) ? NAN : below(2) ? INFINITY : -INFINITY) : from_bits(next_u64()); break;
        default: d = from_bits(next_u64()); break;
        }
        if (nonfinite || isfinite(d)) return d;
    }
}

static float random_float(void) {
    static const float specials[] = {0.0f, -0.0f, FLT_MIN, -FLT_MIN, FLT_TRUE_MIN, FLT_MAX, -FLT_MAX, 0.1f, 1e-45f, 3e38f};
    for (;;) {
        float f;
        uint32_t b = (uint32_t)next_u64();
        switch (below(4)) {
        case 0: f = specials[below((int)(sizeof specials / sizeof *specials))]; break;
        case 1: b &= 0x807fffffu; memcpy(&f, &b, sizeof f); break; /* a subnormal */
        case 2: f = (float)(((double)(next_u64() >> 11) / 9007199254740992.0 - 0.5) * 6); break;
        default: memcpy(&f, &b, sizeof f); break;
        }
        if (isfinite(f)) return f;
    }
}

/* The line in o: one '\n', at its end; the strict tree of what precedes it. */
static cJSON *read_line(const sym_outbuf *o, const char *what) {
    size_t n = sym_outbuf_pending(o);
    const char *s = o->buf + o->off;
    if (n == 0 || s[n - 1] != '\n' || memchr(s, '\n', n - 1)) {
        CHECK(0, "%s: not one line ended by a newline (%zu bytes)", what, n);
        return NULL;
    }
    sym_err e = {{0}};
    cJSON *j = sym_json_parse(s, n - 1, &e);
    CHECK(j && cJSON_IsObject(j), "%s: not a strict JSON object: %s: %.200s", what, e.msg, s);
    return j;
}

/* The object has exactly these keys, and message_type is type. */
static int keys_are(const cJSON *j, const char *type, const char *const *keys, int n_keys, const char *what) {
    int n = 0, ok = 1;
    for (const cJSON *c = j->child; c; c = c->next, n++) {
        int known = 0;
        for (int k = 0; k < n_keys; k++) known |= !strcmp(c->string, keys[k]);
        CHECK(known, "%s: a key the seed does not know: '%s'", what, c->string);
        ok &= known;
    }
    CHECK(n == n_keys, "%s: %d keys, want %d", what, n, n_keys);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "message_type");
    CHECK(cJSON_IsString(t) && !strcmp(t->valuestring, type), "%s: message_type is not '%s'", what, type);
    return ok && n == n_keys;
}

/* A number the writer was given, as read back: the same bits, or null for
 * a non-finite one. */
static int same_double(const cJSON *x, double want) {
    if (!isfinite(want)) return cJSON_IsNull(x);
    return cJSON_IsNumber(x) && !memcmp(&x->valuedouble, &want, sizeof want);
}

static int ids_are(const cJSON *a, const uint64_t *uids, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return 0;
    int k = 0;
    for (const cJSON *x = a->child; x; x = x->next, k++) {
        uint64_t v;
        if (!sym_json_is_int(x) || sym_json_u64(x, &v) || v != uids[k]) return 0;
    }
    return 1;
}

static int doubles_are(const cJSON *a, const double *v, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return 0;
    int k = 0;
    for (const cJSON *x = a->child; x; x = x->next, k++)
        if (!same_double(x, v[k])) return 0;
    return 1;
}

/* The same tree as cJSON's: the same keys in the same order, the same
 * strings, the same numbers as cJSON_Compare sees them (within a relative
 * DBL_EPSILON: cJSON's printer keeps 15 digits where they read back that
 * close, so it does not round-trip every double); under "features" the same
 * float32 values. */
static int same_json(const cJSON *a, const cJSON *b, int as_float) {
    if ((a->type & 0xff) != (b->type & 0xff)) return 0;
    if ((a->string || b->string) && (!a->string || !b->string || strcmp(a->string, b->string))) return 0;
    as_float |= a->string && !strcmp(a->string, "features");
    if (cJSON_IsString(a)) return !strcmp(a->valuestring, b->valuestring);
    if (cJSON_IsNumber(a)) {
        double x = a->valuedouble, y = b->valuedouble;
        float fx = (float)x, fy = (float)y;
        return as_float ? !memcmp(&fx, &fy, sizeof fx) : x == y || fabs(x - y) <= fmax(fabs(x), fabs(y)) * DBL_EPSILON;
    }
    const cJSON *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next)
        if (!same_json(x, y, as_float)) return 0;
    return !x && !y;
}

/* What cJSON makes of the same message: printed, then read back strictly.
 * Ids go in as raw integer text (a cJSON number is a double). */
static cJSON *through_cjson(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    sym_err e = {{0}};
    cJSON *t = s ? sym_json_parse(s, strlen(s), &e) : NULL;
    CHECK(t, "cJSON's own line is not strict JSON: %s", e.msg);
    cJSON_free(s);
    return t;
}

static cJSON *cjson_ids(const uint64_t *uids, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; k < n; k++) {
        char b[24];
        snprintf(b, sizeof b, "%llu", (unsigned long long)uids[k]);
        cJSON_AddItemToArray(a, cJSON_CreateRaw(b));
    }
    return a;
}

/* cJSON prints a non-finite number as null, as the writers do. */
static cJSON *cjson_doubles(const double *v, int n) { return cJSON_CreateDoubleArray(v, n); }

#define MAX_ROWS 70

static void responses(int iters) {
    static const char *const keys[] = {"message_type", "unique_ids", "predictions", "client_timestamp"};
    int bad = 0;
    for (int it = 0; it < iters; it++) {
        int n = below(4) ? below(9) : below(MAX_ROWS + 1);
        uint64_t uids[MAX_ROWS];
        double pred[MAX_ROWS][SYM_TOWERS];
        for (int k = 0; k < n; k++) {
            uids[k] = random_id();
            for (int t = 0; t < SYM_TOWERS; t++) pred[k][t] = random_double(below(10) == 0);
        }
        double ts = random_double(below(20) == 0);
        sym_outbuf o = {0};
        CHECK(!sym_proto_write_response(&o, uids, (const double(*)[SYM_TOWERS])pred, n, ts), "write_response");
        cJSON *j = read_line(&o, "inference_response");
        int ok = j && keys_are(j, "inference_response", keys, 4, "inference_response");
        if (ok) {
            ok = ids_are(cJSON_GetObjectItemCaseSensitive(j, "unique_ids"), uids, n) &&
                 same_double(cJSON_GetObjectItemCaseSensitive(j, "client_timestamp"), ts);
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "predictions");
            ok = ok && cJSON_IsArray(p) && cJSON_GetArraySize(p) == n;
            int k = 0;
            for (const cJSON *row = ok ? p->child : NULL; row; row = row->next, k++)
                ok = ok && doubles_are(row, pred[k], SYM_TOWERS);
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "message_type", "inference_response");
            cJSON_AddItemToObject(c, "unique_ids", cjson_ids(uids, n));
            cJSON *rows = cJSON_AddArrayToObject(c, "predictions");
            for (k = 0; k < n; k++) cJSON_AddItemToArray(rows, cjson_doubles(pred[k], SYM_TOWERS));
            cJSON_AddNumberToObject(c, "client_timestamp", ts);
            cJSON *t = through_cjson(c);
            ok = ok && t && same_json(j, t, 0);
            cJSON_Delete(t);
        }
        if (!ok && bad++ < 3) CHECK(0, "inference_response %d (%d rows) not read back as written: %.300s", it, n, o.buf);
        cJSON_Delete(j);
        sym_outbuf_free(&o);
    }
    CHECKV(!bad, "inference_response: %d random lines read back bit for bit, the same as cJSON's", iters);
}

static void requests(int iters) {
    static const char *const keys[] = {"message_type", "unique_ids", "symbols", "features", "timestamp"};
    int bad = 0;
    enum { ROWS = 12 };
    static float feat[ROWS][SYM_MAX_FEATURES];
    for (int it = 0; it < iters; it++) {
        int n = below(ROWS + 1), F = below(3) ? 79 : 1 + below(SYM_MAX_FEATURES);
        uint64_t uids[ROWS];
        char names[ROWS][SYM_SYMBOL_MAX + 1];
        const char *syms[ROWS];
        const float *fp[ROWS];
        for (int k = 0; k < n; k++) {
            uids[k] = random_id();
            int len = 1 + below(SYM_SYMBOL_MAX);
            for (int i = 0; i < len; i++) /* printable ASCII (sym_symbol_check), '"' and '\\' often */
                names[k][i] = below(4) ? (char)(0x21 + below(0x7e - 0x21 + 1)) : below(2) ? '"' : '\\';
            names[k][len] = '\0';
            syms[k] = names[k];
            for (int i = 0; i < F; i++) feat[k][i] = random_float();
            fp[k] = feat[k];
        }
        double ts = random_double(0);
        sym_outbuf o = {0};
        CHECK(!sym_proto_write_request(&o, uids, syms, fp, n, F, ts), "write_request");
        cJSON *j = read_line(&o, "inference_request");
        int ok = j && keys_are(j, "inference_request", keys, 5, "inference_request");
        if (ok) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "symbols"),
                        *f = cJSON_GetObjectItemCaseSensitive(j, "features");
            ok = ids_are(cJSON_GetObjectItemCaseSensitive(j, "unique_ids"), uids, n) &&
                 same_double(cJSON_GetObjectItemCaseSensitive(j, "timestamp"), ts) && cJSON_IsArray(s) &&
                 cJSON_GetArraySize(s) == n && cJSON_IsArray(f) && cJSON_GetArraySize(f) == n;
            int k = 0;
            for (const cJSON *x = ok ? s->child : NULL; x; x = x->next, k++)
                ok = ok && cJSON_IsString(x) && !strcmp(x->valuestring, names[k]);
            k = 0;
            for (const cJSON *row = ok ? f->child : NULL; row; row = row->next, k++) {
                ok = ok && cJSON_IsArray(row) && cJSON_GetArraySize(row) == F;
                int i = 0;
                for (const cJSON *x = ok ? row->child : NULL; x; x = x->next, i++) {
                    float v = cJSON_IsNumber(x) ? (float)x->valuedouble : NAN;
                    ok = ok && !memcmp(&v, &feat[k][i], sizeof v); /* 9 digits round-trip a float32 */
                }
            }
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "message_type", "inference_request");
            cJSON_AddItemToObject(c, "unique_ids", cjson_ids(uids, n));
            cJSON_AddItemToObject(c, "symbols", cJSON_CreateStringArray(syms, n));
            cJSON *rows = cJSON_AddArrayToObject(c, "features");
            for (k = 0; k < n; k++) cJSON_AddItemToArray(rows, cJSON_CreateFloatArray(feat[k], F));
            cJSON_AddNumberToObject(c, "timestamp", ts);
            cJSON *t = through_cjson(c);
            ok = ok && t && same_json(j, t, 0);
            cJSON_Delete(t);
        }
        if (!ok && bad++ < 3) CHECK(0, "inference_request %d (%d rows, F %d) not read back as written: %.300s", it, n, F, o.buf);
        cJSON_Delete(j);
        sym_outbuf_free(&o);
    }
    CHECKV(!bad, "inference_request: %d random lines read back bit for bit, the same as cJSON's", iters);
}

static void score_updates(int iters) {
    static const char *const keys[] = {"message_type", "unique_ids", "trade_pnls", "accuracies", "latencies_ms"};
    static const char *const lists[] = {"trade_pnls", "accuracies", "latencies_ms"};
    int bad = 0;
    for (int it = 0; it < iters; it++) {
        int n = below(MAX_ROWS + 1);
        uint64_t uids[MAX_ROWS];
        double v[3][MAX_ROWS];
        for (int k = 0; k < n; k++) {
            uids[k] = random_id();
            for (int l = 0; l < 3; l++) v[l][k] = random_double(below(10) == 0);
        }
        sym_outbuf o = {0};
        CHECK(!sym_proto_write_score_update(&o, uids, v[0], v[1], v[2], n), "write_score_update");
        cJSON *j = read_line(&o, "score_update");
        int ok = j && keys_are(j, "score_update", keys, 5, "score_update");
        if (ok) {
            ok = ids_are(cJSON_GetObjectItemCaseSensitive(j, "unique_ids"), uids, n);
            for (int l = 0; l < 3; l++) ok = ok && doubles_are(cJSON_GetObjectItemCaseSensitive(j, lists[l]), v[l], n);
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "message_type", "score_update");
            cJSON_AddItemToObject(c, "unique_ids", cjson_ids(uids, n));
            for (int l = 0; l < 3; l++) cJSON_AddItemToObject(c, lists[l], cjson_doubles(v[l], n));
            cJSON *t = through_cjson(c);
            ok = ok && t && same_json(j, t, 0);
            cJSON_Delete(t);
        }
        if (!ok && bad++ < 3) CHECK(0, "score_update %d (%d rows) not read back as written: %.300s", it, n, o.buf);
        cJSON_Delete(j);
        sym_outbuf_free(&o);
    }
    CHECKV(!bad, "score_update: %d random lines read back bit for bit, the same as cJSON's", iters);
}

/* Pieces of an error's text: what goes in, what must come out. A piece
 * that begins with a continuation byte begins with an ASCII byte, so that
 * no two pieces join into a valid sequence. */
typedef struct {
    const char *in, *out;
} piece;
#define FFFD "\xef\xbf\xbd"
static const piece pieces[] = {
    {"a", "a"},
    {"\"", "\""},
    {"\\", "\\"},
    {"\\u0041", "\\u0041"}, /* text, not an escape */
    {"\x7f", "\x7f"},
    {"caf\xc3\xa9", "caf\xc3\xa9"},               /* U+00E9 */
    {"\xe2\x82\xac", "\xe2\x82\xac"},             /* U+20AC */
    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},     /* U+1F600 */
    {"\xef\xbf\xbf", "\xef\xbf\xbf"},             /* U+FFFF */
    {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},     /* U+10FFFF */
    {"\xed\x9f\xbf", "\xed\x9f\xbf"},             /* U+D7FF, below the surrogates */
    {"x\x80", "x" FFFD},                          /* a lone continuation byte */
    {"x\xbf\xbf", "x" FFFD FFFD},
    {"\xc0\x80", FFFD FFFD},                      /* overlong NUL */
    {"\xc1\xbf", FFFD FFFD},                      /* overlong */
    {"\xe0\x80\x80", FFFD FFFD FFFD},             /* overlong */
    {"\xed\xa0\x80", FFFD FFFD FFFD},             /* a surrogate, U+D800 */
    {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD},    /* past U+10FFFF */
    {"\xf5", FFFD},
    {"\xff", FFFD},
    {"\xe2\x82", FFFD FFFD},                      /* cut: a limit hit mid-sequence */
    {"\xf0\x9f\x98", FFFD FFFD FFFD},
    {"\xc3", FFFD},
};

static void random_text(char *in, char *out, size_t cap) {
    size_t ni = 0, no = 0;
    int n = below(12);
    for (int p = 0; p < n; p++) {
        char ctl[2] = {(char)(1 + below(0x1f)), 0}; /* a control byte: cJSON escapes it */
        const piece pc = below(5) ? pieces[below((int)(sizeof pieces / sizeof *pieces))] : (piece){ctl, ctl};
        size_t li = strlen(pc.in), lo = strlen(pc.out);
        if (ni + li >= cap || no + lo >= cap) break;
        memcpy(in + ni, pc.in, li), ni += li;
        memcpy(out + no, pc.out, lo), no += lo;
    }
    in[ni] = out[no] = '\0';
}

static void errors(int iters) {
    static const char *const keys[] = {"message_type", "error", "details"};
    int bad = 0;
    for (int it = 0; it < iters; it++) {
        char err_in[128], err_out[256], det_in[128], det_out[256];
        random_text(err_in, err_out, sizeof err_in);
        random_text(det_in, det_out, sizeof det_in);
        int null_details = below(20) == 0;
        if (null_details) det_in[0] = det_out[0] = '\0';
        sym_outbuf o = {0};
        CHECK(!sym_proto_write_error(&o, err_in, null_details ? NULL : det_in), "write_error");
        cJSON *j = read_line(&o, "error");
        int ok = j && keys_are(j, "error", keys, 3, "error");
        if (ok) {
            const cJSON *er = cJSON_GetObjectItemCaseSensitive(j, "error"), *d = cJSON_GetObjectItemCaseSensitive(j, "details");
            ok = cJSON_IsString(er) && !strcmp(er->valuestring, err_out) && cJSON_IsString(d) && !strcmp(d->valuestring, det_out);
        }
        if (!ok && bad++ < 3) CHECK(0, "error %d not read back as the text given: %.300s", it, o.buf);
        cJSON_Delete(j);
        sym_outbuf_free(&o);
    }
    CHECKV(!bad, "error: %d lines of random text (quotes, backslashes, control bytes, UTF-8 valid and not) read back", iters);

    /* what play writes for a long unknown key: the request reader's 40 bytes of it, cut mid-sequence */
    char key[64] = "a";
    for (int i = 0; i < 30; i++) strcat(key, "\xc3\xa9");
    char details[128];
    snprintf(details, sizeof details, "unknown key '%.40s...'", key);
    sym_outbuf o = {0};
    CHECK(!sym_proto_write_error(&o, "bad message", details), "write_error");
    cJSON *j = read_line(&o, "error");
    const cJSON *d = j ? cJSON_GetObjectItemCaseSensitive(j, "details") : NULL;
    CHECKV(cJSON_IsString(d) && strstr(d->valuestring, "\xc3\xa9" FFFD "...'"),
           "error: a detail cut inside a UTF-8 sequence is written as valid UTF-8, the cut byte as U+FFFD");
    cJSON_Delete(j);
    sym_outbuf_free(&o);
}

static void small_messages(void) {
    static const char *const reg[] = {"message_type"}, *const hb[] = {"message_type", "timestamp"};
    sym_outbuf o = {0};
    CHECK(!sym_proto_write_register(&o), "write_register");
    cJSON *j = read_line(&o, "register");
    CHECKV(j && keys_are(j, "register", reg, 1, "register"), "register: one key");
    cJSON_Delete(j);
    sym_outbuf_reset(&o);
    double ts = 1712345678.1234567;
    CHECK(!sym_proto_write_heartbeat(&o, ts), "write_heartbeat");
    j = read_line(&o, "heartbeat");
    CHECKV(j && keys_are(j, "heartbeat", hb, 2, "heartbeat") && same_double(cJSON_GetObjectItemCaseSensitive(j, "timestamp"), ts),
           "heartbeat: its timestamp");
    cJSON_Delete(j);
    sym_outbuf_free(&o);
}

int main(void) {
    responses(4000);
    requests(400);
    score_updates(2000);
    errors(4000);
    small_messages();
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
