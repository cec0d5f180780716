/* The inference_request fast path; see request_fast.h. Every unexpected byte
 * returns 0: correctness of odd input is the cJSON path's job. */
#include "net/request_fast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p, *end;
} cur;

static void ws(cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int eat(cur *c, char ch) {
    ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string without escapes; [*s, *s + *n). */
static int str(cur *c, const char **s, size_t *n) {
    if (!eat(c, '"')) return 0;
    const char *b = c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '\\' || ch < 0x20) return 0;
        c->p++;
    }
    if (c->p == c->end) return 0;
    *s = b, *n = (size_t)(c->p - b);
    c->p++;
    return 1;
}

static const long double pow10l_tab[28] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
                                           1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
                                           1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};

/* A JSON number. *is_int: no fraction, no exponent, no sign. */
static int num(cur *c, long double *out, uint64_t *as_int, int *is_int) {
    ws(c);
    const char *b = c->p;
    int neg = 0, digits = 0, exp10 = 0;
    uint64_t m = 0;
    if (c->p < c->end && *c->p == '-') neg = 1, c->p++;
    if (c->p == c->end || *c->p < '0' || *c->p > '9') return 0;
    if (*c->p == '0') c->p++;
    else
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (digits < 19) m = m * 10 + (uint64_t)(*c->p - '0'), digits++;
            else exp10++, digits++; /* > 19 digits: strtod below */
            c->p++;
        }
    int frac = 0, expo = 0;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        frac = 1;
        if (c->p == c->end || *c->p < '0' || *c->p > '9') return 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (m == 0 && *c->p == '0') exp10--; /* leading zeros of 0.000x are not significant */
            else if (digits < 19) m = m * 10 + (uint64_t)(*c->p - '0'), digits++, exp10--;
            else digits++;
            c->p++;
        }
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        expo = 1;
        int eneg = 0, e = 0;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) eneg = *c->p == '-', c->p++;
        if (c->p == c->end || *c->p < '0' || *c->p > '9') return 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (e < 100000) e = e * 10 + (*c->p - '0');
            c->p++;
        }
        exp10 += eneg ? -e : e;
    }
    *is_int = !neg && !frac && !expo && digits <= 19;
    *as_int = m;
    if (digits > 19 || exp10 > 27 || exp10 < -27) { /* rare: the careful way */
        char tmp[64];
        size_t l = (size_t)(c->p - b);
        if (l >= sizeof tmp) return 0;
        memcpy(tmp, b, l);
        tmp[l] = '\0';
        *out = strtold(tmp, NULL);
        return 1;
    }
    long double v = (long double)m;
    v = exp10 >= 0 ? v * pow10l_tab[exp10] : v / pow10l_tab[-exp10];
    *out = neg ? -v : v;
    return 1;
}

/* The float32 of a number, through long double directly (one rounding less). */
static int feature(cur *c, float *f) {
    long double d;
    uint64_t u;
    int is_int;
    if (!num(c, &d, &u, &is_int)) return 0;
    *f = (float)d;
    return isfinite(*f);
}

int sym_fast_request_parse(const char *line, size_t len, int n_features, sym_fast_request *r) {
    cur c = {line, line + len};
    int seen_type = 0, nu = -1, ns = -1, nf = -1;
    if (n_features < 1 || n_features > SYM_FAST_MAX_FEATURES || !eat(&c, '{')) return 0;
    r->timestamp = 0;
    do {
        const char *k;
        size_t kl;
        if (!str(&c, &k, &kl) || !eat(&c, ':')) return 0;
        if (kl == 12 && !memcmp(k, "message_type", 12)) {
            const char *v;
            size_t vl;
            if (seen_type++ || !str(&c, &v, &vl) || vl != 17 || memcmp(v, "inference_request", 17)) return 0;
        } else if (kl == 10 && !memcmp(k, "unique_ids", 10)) {
            if (nu >= 0 || !eat(&c, '[')) return 0;
            nu = 0;
            if (!eat(&c, ']')) {
                do {
                    long double d;
                    int is_int;
                    if (nu == SYM_FAST_MAX_ROWS || !num(&c, &d, &r->uids[nu], &is_int) || !is_int ||
                        r->uids[nu] > 9007199254740992ull)
                        return 0;
                    nu++;
                } while (eat(&c, ','));
                if (!eat(&c, ']')) return 0;
            }
        } else if (kl == 7 && !memcmp(k, "symbols", 7)) {
            if (ns >= 0 || !eat(&c, '[')) return 0;
            ns = 0;
            if (!eat(&c, ']')) {
                do {
                    const char *s;
                    size_t sl;
                    if (ns == SYM_FAST_MAX_ROWS || !str(&c, &s, &sl) || sl < 1 || sl > SYM_PROTO_SYMBOL_MAX) return 0;
                    for (size_t i = 0; i < sl; i++)
                        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return 0;
                    memcpy(r->symbols[ns], s, sl);
                    r->symbols[ns][sl] = '\0';
                    ns++;
                } while (eat(&c, ','));
                if (!eat(&c, ']')) return 0;
            }
        } else if (kl == 8 && !memcmp(k, "features", 8)) {
            if (nf >= 0 || !eat(&c, '[')) return 0;
            nf = 0;
            if (!eat(&c, ']')) {
                do {
                    if (nf == SYM_FAST_MAX_ROWS || !eat(&c, '[')) return 0;
                    for (int i = 0; i < n_features; i++)
                        if ((i && !eat(&c, ',')) || !feature(&c, &r->features[nf][i])) return 0;
                    if (!eat(&c, ']')) return 0;
                    nf++;
                } while (eat(&c, ','));
                if (!eat(&c, ']')) return 0;
            }
        } else if (kl == 9 && !memcmp(k, "timestamp", 9)) {
            uint64_t u;
            int is_int;
            long double t;
            if (!num(&c, &t, &u, &is_int)) return 0;
            r->timestamp = (double)t;
        } else {
            return 0; /* another key: the cJSON path reads it */
        }
    } while (eat(&c, ','));
    if (!eat(&c, '}')) return 0;
    ws(&c);
    if (c.p != c.end || !seen_type || nu < 0 || nu != ns || nu != nf) return 0;
    r->n = nu;
    return 1;
}
