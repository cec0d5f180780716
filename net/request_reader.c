/* The inference_request reader; see request_reader.h. */
#include "net/request_reader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/request.h"
#include "net/protocol.h"

/* row states */
enum { ST_OK = 0, ID_NOT_INT, ID_NEGATIVE, ID_TOO_LARGE, SYM_NOT_STRING, SYM_TOO_LONG, ROW_NOT_LIST, ROW_COUNT,
       ROW_NOT_NUMBER, ROW_NOT_FINITE };

typedef struct {
    sym_request_msg *m;
    const char *begin, *p, *end;
    sym_err *e;
    const char *why; /* a grammar error, with p at the offending byte */
    int nested_object;
    int oom;
} rd;

static int fail(rd *r, const char *why) {
    if (!r->why) r->why = why;
    return -1;
}

static void ws(rd *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int peek(rd *r, char c) {
    ws(r);
    return r->p < r->end && *r->p == c;
}

static int eat(rd *r, char c) {
    if (!peek(r, c)) return 0;
    r->p++;
    return 1;
}

static int oom(rd *r) {
    r->oom = 1;
    return fail(r, "out of memory");
}

/* Each list's arrays grow together, doubling: room for one more element. */
static int room_uids(rd *r) {
    sym_request_msg *m = r->m;
    if (m->nu < m->cap_u) return 0;
    int cap = m->cap_u ? 2 * m->cap_u : 256;
    uint64_t *u = realloc(m->uid, (size_t)cap * sizeof *u);
    if (!u) return oom(r);
    m->uid = u;
    uint8_t *st = realloc(m->uid_st, (size_t)cap);
    if (!st) return oom(r);
    m->uid_st = st;
    m->cap_u = cap;
    return 0;
}

static int room_symbols(rd *r) {
    sym_request_msg *m = r->m;
    if (m->ns < m->cap_s) return 0;
    int cap = m->cap_s ? 2 * m->cap_s : 256;
    size_t *at = realloc(m->sym_at, (size_t)cap * sizeof *at);
    if (!at) return oom(r);
    m->sym_at = at;
    uint8_t *st = realloc(m->sym_st, (size_t)cap);
    if (!st) return oom(r);
    m->sym_st = st;
    m->cap_s = cap;
    return 0;
}

static int room_rows(rd *r) {
    sym_request_msg *m = r->m;
    if (m->nf < m->cap_f) return 0;
    int cap = m->cap_f ? 2 * m->cap_f : 256;
    size_t *at = realloc(m->row_at, (size_t)cap * sizeof *at);
    if (!at) return oom(r);
    m->row_at = at;
    uint8_t *st = realloc(m->row_st, (size_t)cap);
    if (!st) return oom(r);
    m->row_st = st;
    int *arg = realloc(m->row_arg, (size_t)cap * sizeof *arg);
    if (!arg) return oom(r);
    m->row_arg = arg;
    m->cap_f = cap;
    return 0;
}

static int string(rd *r, const char **s, const char **next, size_t *len, int *escaped) {
    *s = r->p;
    if (sym_json_string_scan(r->p, r->end, next, len, escaped, &r->why)) {
        r->p = *next;
        return -1;
    }
    r->p = *next;
    return 0;
}

/* Any JSON value, checked and skipped (its kind is all that matters). */
static int skip_value(rd *r, int depth) {
    ws(r);
    if (r->p >= r->end) return fail(r, "expected a value");
    char c = *r->p;
    if (c == '{' || c == '[') {
        if (depth >= SYM_JSON_MAX_DEPTH) return fail(r, "nested too deep");
        char close = c == '{' ? '}' : ']';
        if (c == '{') r->nested_object = 1; /* refused anyway: its keys need no duplicate check here */
        r->p++;
        if (eat(r, close)) return 0;
        do {
            if (c == '{') {
                const char *s, *next;
                size_t len;
                int esc;
                ws(r);
                if (r->p >= r->end || *r->p != '"') return fail(r, "expected a key (a string)");
                if (string(r, &s, &next, &len, &esc)) return -1;
                if (!eat(r, ':')) return fail(r, "expected ':' after a key");
            }
            if (skip_value(r, depth + 1)) return -1;
        } while (eat(r, ','));
        if (!eat(r, close)) return fail(r, c == '{' ? "expected ',' or '}' in an object" : "expected ',' or ']' in a list");
        return 0;
    }
    if (c == '"') {
        const char *s, *next;
        size_t len;
        int esc;
        return string(r, &s, &next, &len, &esc);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        const char *next;
        int integer;
        if (sym_json_number_scan(r->p, r->end, &next, &integer, &r->why)) {
            r->p = next;
            return -1;
        }
        r->p = next;
        return 0;
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(r->end - r->p) >= n && !memcmp(r->p, words[i], n)) {
            r->p += n;
            return 0;
        }
    }
    return fail(r, "not a JSON value (JSON has no NaN, Infinity, bare words or quotes other than '\"')");
}

static const long double pow10l_tab[28] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
                                           1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
                                           1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};

typedef struct {
    int neg, integer, overflow; /* overflow: an integer literal past 2^64 - 1 */
    uint64_t exact;             /* an integer literal's magnitude */
    long double value;
} number;

static int is_digit(const rd *r) { return r->p < r->end && *r->p >= '0' && *r->p <= '9'; }

/* A JSON number, checked against the grammar and read in one pass. */
static int num(rd *r, number *x) {
    const char *b = r->p;
    int digits = 0, exp10 = 0;
    uint64_t m = 0;
    x->neg = x->overflow = 0;
    x->integer = 1;
    x->exact = 0;
    if (r->p < r->end && *r->p == '-') x->neg = 1, r->p++;
    if (!is_digit(r)) return fail(r, "a number needs a digit");
    if (*r->p == '0') {
        r->p++;
        if (is_digit(r)) return fail(r, "a number may not start with 0");
    } else {
        while (is_digit(r)) {
            uint64_t d = (uint64_t)(*r->p - '0');
            if (x->exact > (UINT64_MAX - d) / 10) x->overflow = 1;
            else x->exact = x->exact * 10 + d;
            if (digits < 19) m = m * 10 + d, digits++;
            else exp10++, digits++;
            r->p++;
        }
    }
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        x->integer = 0;
        if (!is_digit(r)) return fail(r, "a fraction needs a digit after '.'");
        while (is_digit(r)) {
            if (m == 0 && *r->p == '0') exp10--; /* leading zeros of 0.000x are not significant */
            else if (digits < 19) m = m * 10 + (uint64_t)(*r->p - '0'), digits++, exp10--;
            else digits++;
            r->p++;
        }
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        x->integer = 0;
        int eneg = 0, ev = 0;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-')) eneg = *r->p == '-', r->p++;
        if (!is_digit(r)) return fail(r, "an exponent needs a digit");
        while (is_digit(r)) {
            if (ev < 100000) ev = ev * 10 + (*r->p - '0');
            r->p++;
        }
        exp10 += eneg ? -ev : ev;
    }
    if (digits > 19 || exp10 > 27 || exp10 < -27) { /* rare: the careful way */
        size_t l = (size_t)(r->p - b);
        char small[64], *tmp = l < sizeof small ? small : malloc(l + 1);
        if (!tmp) return oom(r);
        memcpy(tmp, b, l);
        tmp[l] = '\0';
        x->value = strtold(tmp, NULL);
        if (tmp != small) free(tmp);
        return 0;
    }
    long double v = (long double)m;
    v = exp10 >= 0 ? v * pow10l_tab[exp10] : v / pow10l_tab[-exp10];
    x->value = x->neg ? -v : v;
    return 0;
}

static int list_uids(rd *r) {
    sym_request_msg *m = r->m;
    if (eat(r, ']')) return 0;
    do {
        if (room_uids(r)) return -1;
        ws(r);
        uint8_t st = ID_NOT_INT;
        if (r->p < r->end && (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))) {
            number x;
            if (num(r, &x)) return -1;
            if (x.integer) st = x.neg && x.exact ? ID_NEGATIVE : x.overflow ? ID_TOO_LARGE : ST_OK;
            m->uid[m->nu] = x.exact;
        } else if (skip_value(r, 2)) {
            return -1;
        }
        m->uid_st[m->nu++] = st;
    } while (eat(r, ','));
    return eat(r, ']') ? 0 : fail(r, "expected ',' or ']' in a list");
}

static int list_symbols(rd *r) {
    sym_request_msg *m = r->m;
    if (eat(r, ']')) return 0;
    do {
        if (room_symbols(r)) return -1;
        ws(r);
        uint8_t st = SYM_NOT_STRING;
        m->sym_at[m->ns] = 0;
        if (r->p < r->end && *r->p == '"') {
            const char *s, *next;
            size_t len;
            int esc;
            if (string(r, &s, &next, &len, &esc)) return -1;
            st = SYM_TOO_LONG;
            if (len <= SYM_SYMBOL_MAX) {
                if (m->text_cap - m->text_len < len + 1) {
                    size_t cap = m->text_cap ? m->text_cap * 2 : 4096;
                    char *t = realloc(m->sym_text, cap);
                    if (!t) return oom(r);
                    m->sym_text = t, m->text_cap = cap;
                }
                char *out = m->sym_text + m->text_len;
                if (esc) sym_json_string_decode(s, next, out);
                else memcpy(out, s + 1, len), out[len] = '\0';
                m->sym_at[m->ns] = m->text_len;
                m->text_len += len + 1;
                st = ST_OK; /* its characters are checked when the row is served */
            }
        } else if (skip_value(r, 2)) {
            return -1;
        }
        m->sym_st[m->ns++] = st;
    } while (eat(r, ','));
    return eat(r, ']') ? 0 : fail(r, "expected ',' or ']' in a list");
}

/* One features row: numbers go straight to the float store. */
static int row(rd *r, uint8_t *st, int *arg) {
    sym_request_msg *m = r->m;
    int i = 0;
    *st = ST_OK;
    if (eat(r, ']')) {
        *st = ROW_COUNT, *arg = 0;
        return 0;
    }
    do {
        ws(r);
        if (r->p < r->end && (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))) {
            number x;
            if (num(r, &x)) return -1;
            if (*st == ST_OK) {
                if (m->feat_len == m->feat_cap) {
                    size_t cap = m->feat_cap ? m->feat_cap * 2 : 65536;
                    float *f = realloc(m->feat, cap * sizeof *f);
                    if (!f) return oom(r);
                    m->feat = f, m->feat_cap = cap;
                }
                float f = (float)x.value;
                m->feat[m->feat_len++] = f;
                if (!isfinite(f)) *st = ROW_NOT_FINITE, *arg = i;
            }
        } else {
            if (skip_value(r, 3)) return -1;
            if (*st == ST_OK) *st = ROW_NOT_NUMBER, *arg = i;
        }
        i++;
    } while (eat(r, ','));
    if (!eat(r, ']')) return fail(r, "expected ',' or ']' in a list");
    if (*st == ST_OK && i != m->n_features) *st = ROW_COUNT, *arg = i;
    return 0;
}

static int list_features(rd *r) {
    sym_request_msg *m = r->m;
    if (eat(r, ']')) return 0;
    do {
        if (room_rows(r)) return -1;
        m->row_at[m->nf] = m->feat_len;
        m->row_arg[m->nf] = 0;
        ws(r);
        if (r->p < r->end && *r->p == '[') {
            r->p++;
            size_t at = m->feat_len;
            if (row(r, &m->row_st[m->nf], &m->row_arg[m->nf])) return -1;
            if (m->row_st[m->nf] != ST_OK) m->feat_len = at; /* a refused row keeps no floats */
        } else {
            if (skip_value(r, 2)) return -1;
            m->row_st[m->nf] = ROW_NOT_LIST;
        }
        m->nf++;
    } while (eat(r, ','));
    return eat(r, ']') ? 0 : fail(r, "expected ',' or ']' in a list");
}

enum { K_TYPE, K_UIDS, K_SYMBOLS, K_FEATURES, K_TIMESTAMP, K_N };
static const char *const key_names[K_N] = {"message_type", "unique_ids", "symbols", "features", "timestamp"};

sym_line_kind sym_request_read(sym_request_msg *m, const char *line, size_t len, int n_features, sym_err *e) {
    rd r = {.m = m, .begin = line, .p = line, .end = line + len, .e = e};
    m->n = m->nu = m->ns = m->nf = 0;
    m->text_len = m->feat_len = 0;
    m->timestamp = 0;
    m->type[0] = '\0';
    m->n_features = n_features;
    int seen[K_N] = {0}, is_list[K_N] = {0}, ts_number = 1;
    char unknown[48] = "";
    if (!eat(&r, '{')) {
        fail(&r, "a message is a JSON object");
        goto bad_json;
    }
    if (!eat(&r, '}')) do {
            const char *s, *next;
            size_t kl;
            int esc;
            ws(&r);
            if (r.p >= r.end || *r.p != '"') {
                fail(&r, "expected a key (a string)");
                goto bad_json;
            }
            if (string(&r, &s, &next, &kl, &esc)) goto bad_json;
            char key[48];
            if (kl < sizeof key) {
                if (esc) sym_json_string_decode(s, next, key);
                else memcpy(key, s + 1, kl), key[kl] = '\0';
            } else {
                snprintf(key, sizeof key, "%.40s...", s + 1);
            }
            if (!eat(&r, ':')) {
                fail(&r, "expected ':' after a key");
                goto bad_json;
            }
            int k = 0;
            while (k < K_N && (kl >= sizeof key || strcmp(key, key_names[k]))) k++;
            if (k < K_N && seen[k]++) {
                sym_fail(e, "the key '%s' appears twice", key_names[k]);
                return SYM_LINE_BAD;
            }
            ws(&r);
            int list = r.p < r.end && *r.p == '[';
            if (k == K_TYPE) {
                if (r.p < r.end && *r.p == '"') {
                    const char *ts, *tn;
                    size_t tl;
                    int te;
                    if (string(&r, &ts, &tn, &tl, &te)) goto bad_json;
                    char v[32];
                    if (tl < sizeof v) {
                        if (te) sym_json_string_decode(ts, tn, v);
                        else memcpy(v, ts + 1, tl), v[tl] = '\0';
                    } else {
                        snprintf(v, sizeof v, "%.28s...", ts + 1);
                    }
                    memcpy(m->type, v, sizeof m->type);
                    if (strcmp(v, "inference_request")) return SYM_LINE_OTHER; /* the tree parser reads the rest */
                    is_list[k] = 1;                                          /* a string: as it should be */
                } else if (skip_value(&r, 1)) {
                    goto bad_json;
                }
            } else if (k == K_UIDS || k == K_SYMBOLS || k == K_FEATURES) {
                is_list[k] = list;
                if (list) {
                    r.p++;
                    if ((k == K_UIDS ? list_uids : k == K_SYMBOLS ? list_symbols : list_features)(&r)) goto bad_json;
                } else if (skip_value(&r, 1)) {
                    goto bad_json;
                }
            } else if (k == K_TIMESTAMP && r.p < r.end && (*r.p == '-' || (*r.p >= '0' && *r.p <= '9'))) {
                number x;
                if (num(&r, &x)) goto bad_json;
                m->timestamp = (double)x.value;
            } else {
                if (k == K_TIMESTAMP) ts_number = 0;
                else if (!unknown[0]) snprintf(unknown, sizeof unknown, "%s", key);
                if (skip_value(&r, 1)) goto bad_json;
            }
        } while (eat(&r, ','));
    if (!eat(&r, '}')) {
        fail(&r, "expected ',' or '}' in an object");
        goto bad_json;
    }
    ws(&r);
    if (r.p != r.end) {
        fail(&r, "more after the JSON object (one message per line)");
        goto bad_json;
    }
    if (!seen[K_TYPE] || !is_list[K_TYPE]) {
        sym_fail(e, "message has no message_type string");
        return SYM_LINE_BAD;
    }
    if (r.nested_object) return sym_fail(e, "an inference_request holds no JSON object inside it"), SYM_LINE_BAD;
    if (unknown[0]) {
        sym_fail(e, "unknown key '%s' in an inference_request (its keys: message_type, unique_ids, symbols, features, "
                    "timestamp)", unknown);
        return SYM_LINE_BAD;
    }
    for (int k = K_UIDS; k <= K_FEATURES; k++)
        if (!is_list[k]) {
            sym_fail(e, "'%s' is missing or not a list", key_names[k]);
            return SYM_LINE_BAD;
        }
    if (!ts_number) {
        sym_fail(e, "'timestamp' is not a number");
        return SYM_LINE_BAD;
    }
    if (m->nu != m->ns || m->nu != m->nf) {
        sym_fail(e, "lists of unequal length: unique_ids %d, symbols %d, features %d", m->nu, m->ns, m->nf);
        return SYM_LINE_BAD;
    }
    m->n = m->nu;
    return SYM_LINE_REQUEST;
bad_json:
    if (r.oom) sym_fail(e, "out of memory reading a message of %zu bytes", len);
    else sym_json_fail_at(e, line, r.p, r.end, r.why ? r.why : "malformed");
    return SYM_LINE_BAD;
}

int sym_request_row(const sym_request_msg *m, int k, uint64_t *uid, int *uid_ok, const char **symbol,
                    const float **features, sym_err *e) {
    *uid_ok = 0;
    switch (m->uid_st[k]) {
    case ST_OK: break;
    case ID_NEGATIVE: return sym_fail(e, "unique_id is a negative integer (ids are 0..2^64-1)");
    case ID_TOO_LARGE: return sym_fail(e, "unique_id is larger than 2^64-1");
    default: return sym_fail(e, "unique_id is not an integer");
    }
    *uid = m->uid[k];
    *uid_ok = 1;
    if (m->sym_st[k] == SYM_NOT_STRING) return sym_fail(e, "symbol is not a string");
    if (m->sym_st[k] == SYM_TOO_LONG) return sym_fail(e, "symbol longer than %d bytes", SYM_SYMBOL_MAX);
    const char *s = m->sym_text + m->sym_at[k];
    if (sym_symbol_check(s, strlen(s), e)) return -1;
    switch (m->row_st[k]) {
    case ST_OK: break;
    case ROW_NOT_LIST: return sym_fail(e, "features row is not a list");
    case ROW_COUNT:
        return sym_fail(e, "features row has %d numbers, the model takes %d", m->row_arg[k], m->n_features);
    case ROW_NOT_NUMBER: return sym_fail(e, "feature %d is not a number", m->row_arg[k]);
    default: return sym_fail(e, "feature %d is not finite in float32", m->row_arg[k]);
    }
    *symbol = s;
    *features = m->feat + m->row_at[k];
    return 0;
}

int sym_request_ids_read(const sym_request_msg *m, uint64_t *ids, int max) {
    int n = 0;
    for (int k = 0; k < m->nu; k++)
        if (m->uid_st[k] == ST_OK) {
            if (n < max) ids[n] = m->uid[k];
            n++;
        }
    return n;
}

#define IDS_NAMED 16 /* unique_ids named in a refused line's error */

int sym_request_refusal(const sym_request_msg *m, const char *why, char *details, size_t cap) {
    uint64_t ids[IDS_NAMED];
    int n = sym_request_ids_read(m, ids, IDS_NAMED);
    if (!n) {
        snprintf(details, cap, "%s; no unique_id could be read in it", why);
        return 0;
    }
    int at = snprintf(details, cap, "%s; none of its requests was served, unique_ids", why);
    for (int k = 0; k < n && k < IDS_NAMED && at < (int)cap; k++)
        at += snprintf(details + at, cap - (size_t)at, "%s %llu", k ? "," : "", (unsigned long long)ids[k]);
    if (n > IDS_NAMED && at < (int)cap) snprintf(details + at, cap - (size_t)at, " and %d more", n - IDS_NAMED);
    return n;
}

void sym_request_msg_free(sym_request_msg *m) {
    free(m->uid);
    free(m->uid_st);
    free(m->sym_at);
    free(m->sym_st);
    free(m->sym_text);
    free(m->row_at);
    free(m->row_st);
    free(m->row_arg);
    free(m->feat);
    memset(m, 0, sizeof *m);
}
