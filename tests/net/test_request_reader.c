/* The inference_request reader (net/request_reader.h) against an oracle
 * built on the strict tree parser (common/json.h) and the protocol's
 * rules: the same verdict (served, refused whole, another message) and the
 * same rows (ids exactly, symbols, features bit for bit, row errors) on
 * valid messages written the ways servers write numbers, on the issue's
 * hostile lines, and on 20,000 mutated lines. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/request.h"
#include "net/protocol.h"
#include "net/request_reader.h"
#include "tests/check.h"

#define F 79
#define MAXROWS 2048

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

enum { V_REQUEST, V_OTHER, V_REFUSED };

typedef struct {
    int verdict, n;
    double ts;
    int uid_ok[MAXROWS], row_ok[MAXROWS];
    uint64_t uid[MAXROWS];
    char sym[MAXROWS][SYM_SYMBOL_MAX + 1];
    float feat[MAXROWS][F];
} expect;

static int has_object(const cJSON *j) {
    for (const cJSON *c = j->child; c; c = c->next)
        if (cJSON_IsObject(c) || has_object(c)) return 1;
    return 0;
}

/* What the protocol says of a line, from its tree. */
static void oracle(const char *line, size_t len, expect *x) {
    x->verdict = V_REFUSED;
    x->n = 0;
    cJSON *j = sym_json_parse(line, len, NULL);
    if (!j) return;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "message_type");
    if (!cJSON_IsObject(j) || !cJSON_IsString(t)) goto out;
    if (strcmp(t->valuestring, "inference_request")) {
        cJSON *root;
        sym_msg_type type;
        if (!sym_proto_parse(line, len, &root, &type, NULL)) x->verdict = V_OTHER, cJSON_Delete(root);
        goto out;
    }
    static const char *const keys[] = {"message_type", "unique_ids", "symbols", "features", "timestamp"};
    for (const cJSON *k = j->child; k; k = k->next) {
        int known = 0;
        for (int i = 0; i < 5; i++) known |= !strcmp(k->string, keys[i]);
        if (!known) goto out;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "unique_ids"), *s = cJSON_GetObjectItemCaseSensitive(j, "symbols"),
                *f = cJSON_GetObjectItemCaseSensitive(j, "features"), *ts = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
    if (has_object(j) || !cJSON_IsArray(u) || !cJSON_IsArray(s) || !cJSON_IsArray(f) || (ts && !cJSON_IsNumber(ts))) goto out;
    int n = cJSON_GetArraySize(u);
    if (n != cJSON_GetArraySize(s) || n != cJSON_GetArraySize(f) || n > MAXROWS) goto out;
    x->verdict = V_REQUEST;
    x->n = n;
    x->ts = ts ? ts->valuedouble : 0;
    const cJSON *ui = u->child, *si = s->child, *fi = f->child;
    for (int k = 0; k < n; k++, ui = ui->next, si = si->next, fi = fi->next) {
        x->uid_ok[k] = !sym_json_u64(ui, &x->uid[k]);
        int ok = x->uid_ok[k] && cJSON_IsString(si) && strlen(si->valuestring) <= SYM_SYMBOL_MAX &&
                 !sym_symbol_check(si->valuestring, strlen(si->valuestring), NULL) && cJSON_IsArray(fi) &&
                 cJSON_GetArraySize(fi) == F;
        if (ok) {
            strcpy(x->sym[k], si->valuestring);
            int i = 0;
            for (const cJSON *v = fi->child; v && ok; v = v->next, i++) {
                ok = cJSON_IsNumber(v) && isfinite((float)v->valuedouble);
                if (ok) x->feat[k][i] = (float)v->valuedouble;
            }
        }
        x->row_ok[k] = ok;
    }
out:
    cJSON_Delete(j);
}

static sym_request_msg msg;
static int ulp_diffs;

/* Says why (when verbose) and returns 0: a disagreement. */
static int differ(int verbose, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int differ(int verbose, const char *fmt, ...) {
    if (verbose) {
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* The reader against the oracle on one line; 1 when they agree. */
static int agree(const char *line, size_t len, int verbose) {
    static expect x;
    oracle(line, len, &x);
    sym_err e = {{0}};
    sym_line_kind k = sym_request_read(&msg, line, len, F, &e);
    int v = k == SYM_LINE_REQUEST ? V_REQUEST : V_REFUSED;
    if (k == SYM_LINE_OTHER) { /* play parses it as a tree next */
        cJSON *root;
        sym_msg_type type;
        if (!sym_proto_parse(line, len, &root, &type, NULL)) v = V_OTHER, cJSON_Delete(root);
    }
    if (v != x.verdict) {
        if (verbose) printf("  verdict: reader %d oracle %d (%s) on %.160s\n", v, x.verdict, e.msg, line);
        return 0;
    }
    if (v != V_REQUEST) return 1;
    if (msg.n != x.n || msg.timestamp != x.ts) return differ(verbose, "  rows %d/%d or timestamp differ\n", msg.n, x.n);
    for (int r = 0; r < x.n; r++) {
        uint64_t uid;
        int uid_ok;
        const char *sym;
        const float *f;
        int rc = sym_request_row(&msg, r, &uid, &uid_ok, &sym, &f, &e);
        if (uid_ok != x.uid_ok[r] || (uid_ok && uid != x.uid[r]) || (rc == 0) != x.row_ok[r])
            return differ(verbose, "  row %d: uid_ok %d/%d ok %d/%d (%s)\n", r, uid_ok, x.uid_ok[r], rc == 0, x.row_ok[r], e.msg);
        if (rc) continue;
        if (strcmp(sym, x.sym[r])) return differ(verbose, "  row %d: symbol %s/%s\n", r, sym, x.sym[r]);
        for (int i = 0; i < F; i++) {
            if (!memcmp(&f[i], &x.feat[r][i], 4)) continue;
            /* the two roundings (long double, then float32; against double,
             * then float32) may part on a float32 halfway point: one ulp */
            if (nextafterf(f[i], INFINITY) != x.feat[r][i] && nextafterf(f[i], -INFINITY) != x.feat[r][i])
                return differ(verbose, "  row %d feature %d: %.9g/%.9g\n", r, i, f[i], x.feat[r][i]);
            ulp_diffs++;
        }
    }
    return 1;
}

static char line[4 << 20];
static char f79[4096];

static size_t valid_line(int rows, const char *fmt) {
    size_t l = (size_t)snprintf(line, sizeof line, "{\"message_type\": \"inference_request\", \"unique_ids\": [");
    for (int k = 0; k < rows; k++) l += (size_t)snprintf(line + l, sizeof line - l, "%s%llu", k ? ", " : "", (unsigned long long)next());
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
    l += (size_t)snprintf(line + l, sizeof line - l, "], \"timestamp\": %.17g}", 1.7e9 + (double)(next() % 1000000) / 997);
    return l;
}

static void valid_messages(void) {
    const char *fmts[] = {"%.9g", "%.17g", "%.3e", "%.12f"};
    int ok = 0, total = 0;
    for (int it = 0; it < 3000; it++) {
        size_t l = valid_line(1 + (int)(next() % 5), fmts[it % 4]);
        total++;
        ok += agree(line, l, 1) && msg.n > 0;
    }
    CHECKV(ok == total, "the reader equals the tree on %d of %d valid messages (%%.9g, %%.17g, %%e, %%f, ints, -0.0, "
                        "64-bit ids); %d features one float32 ulp apart", ok, total, ulp_diffs);
    size_t l = valid_line(1100, "%.9g"); /* ~1.8 MB: no fixed limit refuses it */
    CHECKV(agree(line, l, 1) && msg.n == 1100, "a valid message of 1,100 rows (%zu bytes) is served whole", l);
}

/* Lines from the issue and the protocol's rules: (line, verdict). The
 * features row f79 is substituted for %s. */
static void hand_cases(void) {
    static const struct {
        const char *line;
        int verdict;
        const char *what;
    } cases[] = {
        {"{\"unique_ids\":[3],\"features\":[[%s]],\"symbols\":[\"A\"],\"message_type\":\"inference_request\"}", V_REQUEST, "keys in any order, no timestamp"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[],\"symbols\":[],\"features\":[]}", V_REQUEST, "empty lists"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[9007199254740993],\"symbols\":[\"SYM\\u005f001\"],\"features\":[[%s]]}", V_REQUEST, "2^53+1 and an escaped symbol"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"SYM_005\\u0000XYZ\"],\"features\":[[%s]]}", V_REFUSED, "a symbol with an escaped NUL"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"SYM_005\0XYZ\"],\"features\":[[%s]]}", V_REFUSED, "a symbol with a raw NUL byte"},
        {"{\"message_type\":\"inference_request\\u0000junk\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]]}", V_REFUSED, "a message_type with a NUL"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]]}{\"message_type\":\"heartbeat\"}", V_REFUSED, "two objects on a line"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]]} trailing", V_REFUSED, "trailing garbage"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[1.,%s]]}", V_REFUSED, "1."},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[-.5,%s]]}", V_REFUSED, "-.5"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[01],\"symbols\":[\"A\"],\"features\":[[%s]]}", V_REFUSED, "01"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[NaN,%s]]}", V_REFUSED, "NaN"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]],\"extra\":1}", V_REFUSED, "an unknown key"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]]}", V_REFUSED, "a duplicate key"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[{\"a\":1}]}", V_REFUSED, "an object inside"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1,2],\"symbols\":[\"A\"],\"features\":[[%s]]}", V_REFUSED, "lists of unequal length"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]],\"timestamp\":\"x\"}", V_REFUSED, "a timestamp that is not a number"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[%s]]", V_REFUSED, "a cut-off object"},
        {"[1]", V_REFUSED, "a list"},
        {"{\"message_type\":\"stats_update\"}", V_OTHER, "stats_update"},
        {"{\"message_type\":\"heartbeat\",\"timestamp\":1}", V_OTHER, "heartbeat"},
        {"{\"timestamp\":1,\"message_type\":\"heartbeat\"}", V_OTHER, "heartbeat, type last"},
        {"{\"message_type\":\"heartbeat\",\"timestamp\":1} x", V_REFUSED, "heartbeat with trailing garbage"},
        {"{\"message_type\":\"nonsense\"}", V_REFUSED, "an unknown message_type"},
        {"{\"unique_ids\":[1]}", V_REFUSED, "no message_type"},
        /* row level: the message is served, the row refused */
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1.5],\"symbols\":[\"A\"],\"features\":[[%s]]}", V_REQUEST, "a row with id 1.5"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[-1],\"symbols\":[\"A\"],\"features\":[[%s]]}", V_REQUEST, "a row with id -1"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[18446744073709551616],\"symbols\":[\"A\"],\"features\":[[%s]]}", V_REQUEST, "a row with id 2^64"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A B\"],\"features\":[[%s]]}", V_REQUEST, "a row with a space in its symbol"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\\n\"],\"features\":[[%s]]}", V_REQUEST, "a row with a control character in its symbol"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[1e999,%s]]}", V_REQUEST, "a row with a feature past float32"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"A\"],\"features\":[[1,2]]}", V_REQUEST, "a row of 2 features"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        /* a raw NUL inside a case: build the line byte by byte */
        const char *c = cases[i].line;
        size_t n = 0;
        int has_nul = strstr(c, "SYM_005") && !strstr(c, "\\u0000") && cases[i].verdict == V_REFUSED && strstr(c, "XYZ");
        for (const char *p = c; *p; p++) {
            if (p[0] == '%' && p[1] == 's') {
                n += (size_t)snprintf(line + n, sizeof line - n, "%s", f79);
                p++;
            } else {
                line[n++] = *p;
                if (has_nul && p[0] == '5' && p[1] == 'X') line[n++] = '\0';
            }
        }
        static expect x;
        oracle(line, n, &x);
        CHECKV(x.verdict == cases[i].verdict && agree(line, n, 1), "%s: %s", cases[i].what,
               cases[i].verdict == V_REQUEST ? "served row by row" : cases[i].verdict == V_OTHER ? "another message" : "refused whole");
    }
    /* a refused line still names the ids it could read */
    size_t l = (size_t)snprintf(line, sizeof line, "{\"message_type\":\"inference_request\",\"unique_ids\":[7,8,9],\"symbols\":[\"A\"");
    sym_err e;
    uint64_t ids[4];
    CHECKV(sym_request_read(&msg, line, l, F, &e) == SYM_LINE_BAD && sym_request_ids_read(&msg, ids, 4) == 3 && ids[2] == 9,
           "a cut-off line names the ids read before the cut (%s)", e.msg);
}

/* Mutated valid lines: the reader and the oracle agree on every one. */
static void mutations(void) {
    static const char alphabet[] = "{}[]\",:0123456789.eE+-\\u \tnNaI\x01\xc3\xa9\x80";
    int total = 0, ok = 0, shown = 0, verdicts[3] = {0};
    char seed[8192];
    for (int it = 0; it < 20000; it++) {
        size_t l = valid_line(1 + it % 3, it % 2 ? "%.9g" : "%.3e");
        if (l >= sizeof seed) continue;
        memcpy(seed, line, l);
        for (int k = 0; k < 1 + (int)(next() % 3); k++) {
            size_t at = (size_t)(next() % l);
            char c = alphabet[next() % (sizeof alphabet - 1)];
            int op = (int)(next() % 3);
            if (op == 0) seed[at] = c;
            else if (op == 1 && l + 1 < sizeof seed) memmove(seed + at + 1, seed + at, l - at), seed[at] = c, l++;
            else if (l > 1) memmove(seed + at, seed + at + 1, l - at - 1), l--;
        }
        char *exact = malloc(l); /* no slack after the line: ASan sees any over-read */
        memcpy(exact, seed, l);
        static expect x;
        oracle(exact, l, &x);
        int a = agree(exact, l, shown < 5);
        shown += !a;
        ok += a;
        verdicts[x.verdict]++;
        total++;
        free(exact);
    }
    CHECKV(ok == total, "20,000 mutated lines: the reader agrees with the tree on %d of %d (%d served, %d other, %d refused)",
           ok, total, verdicts[V_REQUEST], verdicts[V_OTHER], verdicts[V_REFUSED]);
}

int main(void) {
    size_t l = 0;
    for (int i = 0; i < F; i++) l += (size_t)snprintf(f79 + l, sizeof f79 - l, i ? ",0.5" : "0.5");
    valid_messages();
    hand_cases();
    mutations();
    sym_request_msg_free(&msg);
    return failures != 0;
}
