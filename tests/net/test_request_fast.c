/* The inference_request fast path against the cJSON path: same uids,
 * symbols, features (bit for bit) and timestamp on valid messages written
 * the ways servers write numbers (%.9g as our replay, 17 digits as Python
 * writes a float32 widened to float64, exponents, integers, negative zero);
 * and every odd or bad message handed back (0) to the cJSON path. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/protocol.h"
#include "net/request_fast.h"
#include "tests/check.h"

#define F 79

static uint64_t rng = 7;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}
static float rand_float(void) { /* wide range of magnitudes, both signs */
    double m = (double)(next() >> 11) / 9007199254740992.0 * 2 - 1;
    int e = (int)(next() % 40) - 25;
    return (float)ldexp(m, e);
}

/* Both paths on one line; 1 when they agree. */
static int same(const char *line, sym_fast_request *r) {
    if (!sym_fast_request_parse(line, strlen(line), F, r)) return printf("  fast path refused: %.120s\n", line), 0;
    cJSON *root;
    sym_msg_type t;
    sym_err e;
    sym_proto_batch b;
    if (sym_proto_parse(line, strlen(line), &root, &t, &e) || sym_proto_batch_read(root, &b, &e)) return printf("  cjson: %s\n", e.msg), 0;
    int ok = b.n == r->n && b.timestamp == r->timestamp;
    for (int k = 0; k < b.n && ok; k++) {
        uint64_t uid;
        int uid_ok;
        char sym[65];
        float f[F];
        if (sym_proto_row(&b, k, F, &uid, &uid_ok, sym, f, &e)) ok = 0;
        else ok = uid == r->uids[k] && !strcmp(sym, r->symbols[k]) && !memcmp(f, r->features[k], sizeof f);
        if (!ok)
            for (int i = 0; i < F; i++)
                if (memcmp(&f[i], &r->features[k][i], 4)) printf("  feature %d: cjson %.9g fast %.9g\n", i, f[i], r->features[k][i]);
    }
    cJSON_Delete(root);
    return ok;
}

int main(void) {
    static sym_fast_request r;
    static char line[1 << 16];
    const char *fmts[] = {"%.9g", "%.17g", "%.3e", "%.12f"};
    int agree = 0, total = 0;
    for (int it = 0; it < 4000; it++) {
        int rows = 1 + (int)(next() % 5);
        const char *fmt = fmts[it % 4];
        size_t l = (size_t)snprintf(line, sizeof line, "{\"message_type\": \"inference_request\", \"unique_ids\": [");
        for (int k = 0; k < rows; k++) l += (size_t)snprintf(line + l, sizeof line - l, "%s%llu", k ? ", " : "", (unsigned long long)(next() >> 12));
        l += (size_t)snprintf(line + l, sizeof line - l, "], \"symbols\": [");
        for (int k = 0; k < rows; k++) l += (size_t)snprintf(line + l, sizeof line - l, "%s\"SYM_%03d\"", k ? "," : "", (int)(next() % 1000));
        l += (size_t)snprintf(line + l, sizeof line - l, "], \"features\": [");
        for (int k = 0; k < rows; k++) {
            l += (size_t)snprintf(line + l, sizeof line - l, "%s[", k ? "," : "");
            for (int i = 0; i < F; i++) {
                if (i) line[l++] = ',';
                if (i == 5) l += (size_t)snprintf(line + l, sizeof line - l, "-0.0");
                else if (i == 6) l += (size_t)snprintf(line + l, sizeof line - l, "%d", (int)(next() % 2000) - 1000);
                else l += (size_t)snprintf(line + l, sizeof line - l, fmt, (double)rand_float());
            }
            line[l++] = ']';
        }
        snprintf(line + l, sizeof line - l, "], \"timestamp\": %.17g}", 1.7e9 + (double)(next() % 1000000) / 997);
        total++;
        agree += same(line, &r);
    }
    CHECKV(agree == total, "fast path equals the cJSON path on %d of %d valid messages (%%.9g, %%.17g, %%e, %%f, ints, -0.0)", agree, total);

    /* hand cases */
    char f79[2048];
    size_t l = 0;
    for (int i = 0; i < F; i++) l += (size_t)snprintf(f79 + l, sizeof f79 - l, i ? ",0.5" : "0.5");
    snprintf(line, sizeof line, "{\"unique_ids\":[3],\"features\":[[%s]],\"symbols\":[\"A\"],\"message_type\":\"inference_request\"}", f79);
    CHECKV(same(line, &r) && r.n == 1 && r.uids[0] == 3, "keys in any order, no timestamp");
    snprintf(line, sizeof line, "{\"message_type\":\"inference_request\",\"unique_ids\":[],\"symbols\":[],\"features\":[]}");
    CHECKV(same(line, &r) && r.n == 0, "empty lists");
    const char *bad[] = {
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[1,2]]}",
        "{\"message_type\":\"heartbeat\",\"timestamp\":1}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1,2],\"symbols\":[\"A\"],\"features\":[[%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1.5],\"symbols\":[\"A\"],\"features\":[[%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[-1],\"symbols\":[\"A\"],\"features\":[[%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"\"],\"features\":[[%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A B\"],\"features\":[[%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\\u0041\"],\"features\":[[%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[1e999,%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[NaN,%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]],\"extra\":1}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]]} trailing",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]]",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[01],\"symbols\":[\"A\"],\"features\":[[%s]]}",
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[.5,%s]]}",
    };
    int refused = 0, n_bad = (int)(sizeof bad / sizeof *bad);
    for (int i = 0; i < n_bad; i++) {
        snprintf(line, sizeof line, bad[i], f79);
        if (!sym_fast_request_parse(line, strlen(line), F, &r)) refused++;
        else printf("  accepted: %.160s\n", line);
    }
    CHECKV(refused == n_bad, "odd or bad messages handed to the cJSON path (%d of %d)", refused, n_bad);
    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}
