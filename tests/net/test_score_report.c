/* replay's JSON report (net/score.h) read back: reports of random values
 * written by sym_score_report_write_json are strict JSON (common/json.h)
 * with exactly the documented fields (docs/design/net.md, "The report"),
 * counters exact up to 2^64 - 1, numbers bit for bit (subnormals, the
 * largest and smallest exponents, negative zero; null for a non-finite one),
 * and an example's bytes, whatever they are, as one code point U+00XX a
 * byte. The layout the replay tests read with sed (a counter on a line of
 * its own) is checked too. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "net/score.h"
#include "tests/check.h"

static uint64_t rng = 0x4e9047;
static uint64_t next_u64(void) { /* splitmix64 */
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int below(int n) { return (int)(next_u64() % (uint64_t)n); }

static uint64_t random_count(void) {
    static const uint64_t edges[] = {0, 1, 9007199254740993ull, UINT64_MAX};
    return below(3) ? (uint64_t)below(100000) : below(2) ? edges[below(4)] : next_u64();
}

static double random_double(void) {
    static const double specials[] = {0.0, -0.0, DBL_MIN, DBL_TRUE_MIN, -DBL_TRUE_MIN, DBL_MAX, 1e-308, 0.1, NAN,
                                      INFINITY, -INFINITY, 1e21, 2.5e-5};
    uint64_t b = next_u64();
    double d;
    switch (below(4)) {
    case 0: return specials[below((int)(sizeof specials / sizeof *specials))];
    case 1: b &= 0x800fffffffffffffull; break; /* a subnormal */
    case 2: return (double)(b >> 11) / 9007199254740992.0 * 100;
    default: break;
    }
    memcpy(&d, &b, sizeof d);
    return d;
}

/* n random bytes, none NUL, into s (NUL-terminated). */
static size_t random_bytes(char *s, size_t cap) {
    size_t n = (size_t)below((int)cap);
    for (size_t i = 0; i < n; i++) s[i] = (char)(below(3) ? 0x20 + below(0x5f) : 1 + below(255));
    s[n] = '\0';
    return n;
}

/* What a string of bytes reads back as: each byte b as the code point U+00b. */
static void latin1_to_utf8(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) out[o++] = (char)c;
        else out[o++] = (char)(0xc0 | c >> 6), out[o++] = (char)(0x80 | (c & 0x3f));
    }
    out[o] = '\0';
}

static int same_double(const cJSON *x, double want) {
    if (!isfinite(want)) return cJSON_IsNull(x);
    return cJSON_IsNumber(x) && !memcmp(&x->valuedouble, &want, sizeof want);
}

static int same_count(const cJSON *x, uint64_t want) {
    uint64_t v;
    return x && sym_json_is_int(x) && !sym_json_u64(x, &v) && v == want;
}

static int same_bytes(const cJSON *x, const char *s, size_t n) {
    char want[2 * 200 + 1];
    latin1_to_utf8(s, n, want);
    return cJSON_IsString(x) && !strcmp(x->valuestring, want);
}

static const cJSON *get(const cJSON *j, const char *key) { return cJSON_GetObjectItemCaseSensitive(j, key); }

/* Reads the file back; checks it against r. Returns 1 when all holds. */
static int check_report(const char *path, const sym_score_report *r, char *why, size_t cap) {
    FILE *f = fopen(path, "rb");
    static char text[1 << 16];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    sym_err e = {{0}};
    cJSON *j = sym_json_parse(text, n, &e);
    if (!j || !cJSON_IsObject(j)) return snprintf(why, cap, "not a strict JSON object: %.150s", e.msg), cJSON_Delete(j), 0;
    static const char *const keys[] = {"requests", "sent", "resent", "answered", "reanswered", "duplicates",
                                       "unknown_ids", "invalid", "invalid_ids", "bad_messages", "errors_received",
                                       "share_answered", "throughput_rps", "duration_s", "latency_ms", "scored",
                                       "max_abs_err", "mean_abs_err", "mse", "invalid_examples", "timed_out",
                                       "injected_bad", "resend", "drop_after", "mode"};
    const int n_keys = sizeof keys / sizeof *keys, n_expected = r->with_expected ? n_keys : n_keys - 4;
    int k = 0, ok = 1;
    for (const cJSON *c = j->child; c; c = c->next, k++) {
        int known = 0;
        for (int i = 0; i < n_keys; i++) known |= !strcmp(c->string, keys[i]);
        if (!known) return snprintf(why, cap, "an unknown field '%s'", c->string), cJSON_Delete(j), 0;
    }
    if (k != n_expected) return snprintf(why, cap, "%d fields, want %d", k, n_expected), cJSON_Delete(j), 0;
#define NEED(cond, what) \
    if (ok && !(cond)) ok = 0, snprintf(why, cap, "%s", what)
    NEED(same_count(get(j, "requests"), r->requests), "requests");
    NEED(same_count(get(j, "sent"), r->sent), "sent");
    NEED(same_count(get(j, "resent"), r->resent), "resent");
    NEED(same_count(get(j, "answered"), r->answered), "answered");
    NEED(same_count(get(j, "reanswered"), r->reanswered), "reanswered");
    NEED(same_count(get(j, "duplicates"), r->duplicates), "duplicates");
    NEED(same_count(get(j, "unknown_ids"), r->unknown), "unknown_ids");
    NEED(same_count(get(j, "invalid"), r->invalid), "invalid");
    NEED(same_count(get(j, "invalid_ids"), r->invalid_ids), "invalid_ids");
    NEED(same_count(get(j, "bad_messages"), r->bad_messages), "bad_messages");
    NEED(same_count(get(j, "errors_received"), r->errors_received), "errors_received");
    NEED(same_double(get(j, "share_answered"), r->share_answered), "share_answered");
    NEED(same_double(get(j, "throughput_rps"), r->throughput_rps), "throughput_rps");
    NEED(same_double(get(j, "duration_s"), r->duration_s), "duration_s");
    const cJSON *lat = get(j, "latency_ms");
    NEED(cJSON_IsObject(lat) && cJSON_GetArraySize(lat) == 5 && same_double(get(lat, "p50"), r->p50) &&
             same_double(get(lat, "p90"), r->p90) && same_double(get(lat, "p99"), r->p99) &&
             same_double(get(lat, "max"), r->max) && same_double(get(lat, "mean"), r->mean),
         "latency_ms");
    if (r->with_expected) {
        NEED(same_count(get(j, "scored"), r->scored), "scored");
        const char *names[] = {"max_abs_err", "mean_abs_err", "mse"};
        const double *v[] = {r->max_abs_err, r->mean_abs_err, r->mse};
        for (int a = 0; a < 3; a++) {
            const cJSON *arr = get(j, names[a]);
            int same = cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == SYM_TOWERS;
            for (int t = 0; same && t < SYM_TOWERS; t++) same = same_double(cJSON_GetArrayItem(arr, t), v[a][t]);
            NEED(same, names[a]);
        }
    }
    const cJSON *ex = get(j, "invalid_examples");
    NEED(cJSON_IsArray(ex) && cJSON_GetArraySize(ex) == r->n_examples, "invalid_examples: count");
    for (int i = 0; ok && i < r->n_examples; i++) {
        const cJSON *x = cJSON_GetArrayItem(ex, i);
        const sym_score_bad *b = &r->examples[i];
        NEED(cJSON_IsObject(x) && cJSON_GetArraySize(x) == 4, "invalid_examples: not 4 fields");
        NEED(cJSON_IsString(get(x, "kind")) && !strcmp(get(x, "kind")->valuestring, sym_bad_kind_name(b->kind)),
             "invalid_examples: kind");
        NEED(same_bytes(get(x, "unique_id"), b->id, strlen(b->id)), "invalid_examples: unique_id");
        NEED(same_bytes(get(x, "text"), b->text, b->text_len), "invalid_examples: text");
        NEED(same_bytes(get(x, "reason"), b->reason, strlen(b->reason)), "invalid_examples: reason");
    }
    NEED(cJSON_IsBool(get(j, "timed_out")) && cJSON_IsTrue(get(j, "timed_out")) == !!r->timed_out, "timed_out");
    NEED(cJSON_IsBool(get(j, "resend")) && cJSON_IsTrue(get(j, "resend")) == !!r->resend, "resend");
    int64_t i64;
    NEED(get(j, "injected_bad") && !sym_json_i64(get(j, "injected_bad"), &i64) && i64 == r->injected_bad, "injected_bad");
    NEED(get(j, "drop_after") && !sym_json_i64(get(j, "drop_after"), &i64) && i64 == r->drop_after, "drop_after");
    NEED(cJSON_IsString(get(j, "mode")) && !strcmp(get(j, "mode")->valuestring, r->mode), "mode");
#undef NEED
    /* the layout the replay tests read: `  "answered": N,` on a line of its own */
    char line[64];
    snprintf(line, sizeof line, "\n  \"answered\": %llu,\n", (unsigned long long)r->answered);
    if (ok && !strstr(text, line)) ok = 0, snprintf(why, cap, "no line '  \"answered\": N,'");
    cJSON_Delete(j);
    return ok;
}

static void random_report(sym_score_report *r) {
    memset(r, 0, sizeof *r);
    r->requests = random_count(), r->sent = random_count(), r->resent = random_count();
    r->answered = random_count(), r->duplicates = random_count(), r->reanswered = random_count();
    r->unknown = random_count(), r->errors_received = random_count(), r->invalid = random_count();
    r->invalid_ids = random_count(), r->bad_messages = random_count();
    r->share_answered = random_double(), r->throughput_rps = random_double(), r->duration_s = random_double();
    r->p50 = random_double(), r->p90 = random_double(), r->p99 = random_double();
    r->max = random_double(), r->mean = random_double();
    r->with_expected = below(2);
    r->scored = random_count();
    for (int t = 0; t < SYM_TOWERS; t++)
        r->max_abs_err[t] = random_double(), r->mean_abs_err[t] = random_double(), r->mse[t] = random_double();
    r->n_examples = below(SYM_SCORE_EXAMPLES + 1);
    for (int i = 0; i < r->n_examples; i++) {
        sym_score_bad *b = &r->examples[i];
        b->kind = (sym_bad_kind)below(3);
        random_bytes(b->id, sizeof b->id);
        b->text_len = random_bytes(b->text, sizeof b->text);
        random_bytes(b->reason, sizeof b->reason);
    }
    r->timed_out = below(2), r->resend = below(2), r->injected_bad = below(20);
    r->drop_after = below(2) ? (long long)(next_u64() >> 1) : 0;
    r->mode = below(2) ? "trace" : "poisson";
}

int main(void) {
    char path[] = "/tmp/symserve-report-test-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return fprintf(stderr, "cannot create a temporary file\n"), 1;
    close(fd);
    int bad = 0, iters = 3000;
    for (int it = 0; it < iters; it++) {
        sym_score_report r;
        random_report(&r);
        sym_err e = {{0}};
        char why[200] = "";
        if (sym_score_report_write_json(path, &r, &e)) {
            CHECK(0, "report %d: not written: %s", it, e.msg);
            break;
        }
        if (!check_report(path, &r, why, sizeof why) && bad++ < 3) CHECK(0, "report %d not read back as written: %s", it, why);
    }
    CHECKV(!bad, "%d reports of random values (counters to 2^64 - 1, every kind of double, any bytes) read back", iters);

    /* a NUL byte a client sent: the JSON escape \u0000, one per byte (RFC 8259
     * has it; symserve's own reader refuses it in any form, by rule) */
    sym_score_report r;
    memset(&r, 0, sizeof r);
    r.mode = "trace";
    r.n_examples = 1;
    memcpy(r.examples[0].text, "a\0b", 3);
    r.examples[0].text_len = 3;
    sym_err e = {{0}};
    char text[4096] = "";
    FILE *f = sym_score_report_write_json(path, &r, &e) ? NULL : fopen(path, "rb");
    if (f) text[fread(text, 1, sizeof text - 1, f)] = '\0', fclose(f);
    CHECKV(strstr(text, "\"text\": \"a\\u0000b\""), "a NUL byte in an example is written as \\u0000");

    CHECKV(sym_score_report_write_json("/nonexistent-dir/r.json", &r, &e) && strstr(e.msg, "/nonexistent-dir/r.json"),
           "an unwritable path is an error naming it");
    unlink(path);
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
