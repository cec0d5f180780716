/* A strict JSON reader building cJSON trees; see json.h. Recursive descent
 * over a length-bounded buffer: nothing here relies on a terminating NUL. */
#include "common/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *begin, *p, *end;
    sym_err *e;
    int depth;
    int failed;
} reader;

int sym_json_fail_at(sym_err *e, const char *begin, const char *p, const char *end, const char *why) {
    size_t at = (size_t)(p - begin), len = (size_t)(end - begin);
    if (p < end && *p == '\0') return sym_fail(e, "invalid JSON at byte %zu of %zu: %s (a NUL byte)", at, len, why);
    if (p >= end) return sym_fail(e, "invalid JSON at byte %zu of %zu: %s, at the end of the text", at, len, why);
    char ex[25]; /* a printable excerpt of what is there */
    size_t n = 0;
    for (const char *q = p; q < end && n < sizeof ex - 1; q++)
        ex[n++] = (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f ? *q : '?';
    ex[n] = '\0';
    return sym_fail(e, "invalid JSON at byte %zu of %zu: %s, at '%s'", at, len, why, ex);
}

/* Records the first error only: deeper frames fail first and know best. */
static cJSON *fail_at(reader *r, const char *what) {
    if (!r->failed) sym_json_fail_at(r->e, r->begin, r->p, r->end, what);
    r->failed = 1;
    return NULL;
}

static void skip_ws(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16) return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 0x3f)), o[2] = (char)(0x80 | (cp & 0x3f)), 3;
    o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (lead byte >= 0x80), or 0
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end) {
    unsigned c = s[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return n;
}

int sym_json_string_scan(const char *s, const char *end, const char **next, size_t *len, int *escaped,
                         const char **why) {
    const char *p = s + 1;
    size_t n = 0;
    *escaped = 0;
#define STR_FAIL(msg) return *next = p, *why = msg, -1
    while (1) {
        if (p >= end) STR_FAIL("unterminated string");
        unsigned char c = (unsigned char)*p;
        if (c == '"') break;
        if (c < 0x20) STR_FAIL("control byte inside a string");
        if (c == '\\') {
            *escaped = 1;
            if (end - p < 2) STR_FAIL("unterminated escape");
            char x = p[1];
            if (x == 'u') {
                unsigned v, v2;
                if (end - p < 6 || hex4(p + 2, &v)) STR_FAIL("\\u needs four hex digits");
                if (v == 0) STR_FAIL("\\u0000 (NUL) inside a string");
                if (v >= 0xdc00 && v <= 0xdfff) STR_FAIL("unpaired low surrogate");
                if (v >= 0xd800 && v <= 0xdbff) {
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &v2) || v2 < 0xdc00 || v2 > 0xdfff)
                        STR_FAIL("unpaired high surrogate");
                    p += 12, n += 4;
                } else {
                    p += 6, n += v < 0x80 ? 1 : v < 0x800 ? 2 : 3;
                }
                continue;
            }
            if (x == '\0' || !strchr("\"\\/bfnrt", x)) STR_FAIL("unknown escape");
            p += 2, n++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq((const unsigned char *)p, (const unsigned char *)end);
            if (!k) STR_FAIL("invalid UTF-8 inside a string");
            p += k, n += k;
            continue;
        }
        p++, n++;
    }
#undef STR_FAIL
    *next = p + 1;
    *len = n;
    return 0;
}

void sym_json_string_decode(const char *s, const char *next, char *out) {
    size_t j = 0;
    for (const char *q = s + 1; q < next - 1;) {
        if (*q != '\\') {
            out[j++] = *q++;
            continue;
        }
        char x = q[1];
        if (x == 'u') {
            unsigned v, v2;
            hex4(q + 2, &v);
            q += 6;
            if (v >= 0xd800 && v <= 0xdbff) {
                hex4(q + 2, &v2);
                q += 6;
                v = 0x10000 + ((v - 0xd800) << 10) + (v2 - 0xdc00);
            }
            j += put_utf8(out + j, v);
            continue;
        }
        out[j++] = x == 'b' ? '\b' : x == 'f' ? '\f' : x == 'n' ? '\n' : x == 'r' ? '\r' : x == 't' ? '\t' : x;
        q += 2;
    }
    out[j] = '\0';
}

/* A string at r->p (on its opening quote): its value, allocated with
 * cJSON's allocator. */
static char *read_string(reader *r) {
    const char *next, *why;
    size_t len;
    int escaped;
    if (sym_json_string_scan(r->p, r->end, &next, &len, &escaped, &why)) {
        r->p = next;
        return fail_at(r, why), NULL;
    }
    char *out = cJSON_malloc(len + 1);
    if (!out) return fail_at(r, "out of memory"), NULL;
    if (escaped) sym_json_string_decode(r->p, next, out);
    else memcpy(out, r->p + 1, len), out[len] = '\0';
    r->p = next;
    return out;
}

static int digit_at(const char *p, const char *end) { return p < end && *p >= '0' && *p <= '9'; }

int sym_json_number_scan(const char *s, const char *end, const char **next, int *integer, const char **why) {
    const char *p = s;
    *integer = 1;
#define NUM_FAIL(msg) return *next = p, *why = msg, -1
    if (p < end && *p == '-') p++;
    if (!digit_at(p, end)) NUM_FAIL("a number needs a digit");
    if (*p == '0') {
        p++;
        if (digit_at(p, end)) NUM_FAIL("a number may not start with 0");
    } else {
        while (digit_at(p, end)) p++;
    }
    if (p < end && *p == '.') {
        *integer = 0;
        p++;
        if (!digit_at(p, end)) NUM_FAIL("a fraction needs a digit after '.'");
        while (digit_at(p, end)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (!digit_at(p, end)) NUM_FAIL("an exponent needs a digit");
        while (digit_at(p, end)) p++;
    }
#undef NUM_FAIL
    *next = p;
    return 0;
}

static cJSON *read_number(reader *r) {
    const char *b = r->p, *next, *why;
    int integer;
    if (sym_json_number_scan(r->p, r->end, &next, &integer, &why)) {
        r->p = next;
        return fail_at(r, why);
    }
    r->p = next;
    size_t n = (size_t)(next - b);
    char small[64], *tmp = n < sizeof small ? small : malloc(n + 1);
    if (!tmp) return fail_at(r, "out of memory");
    memcpy(tmp, b, n);
    tmp[n] = '\0';
    double v = strtod(tmp, NULL); /* the grammar is checked: strtod reads it all (C locale) */
    cJSON *item = cJSON_CreateNumber(v);
    if (item && integer) {
        item->valuestring = cJSON_malloc(n + 1);
        if (item->valuestring) memcpy(item->valuestring, tmp, n + 1);
        else cJSON_Delete(item), item = NULL;
    }
    if (tmp != small) free(tmp);
    if (!item) return fail_at(r, "out of memory");
    return item;
}

static int key_cmp(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Finds two equal keys in obj (*dup: their name, or NULL); -1 when out of
 * memory. Small objects pairwise, large ones sorted (a peer may send an
 * object of a million keys). */
static int duplicate_key(const cJSON *obj, int n, const char **dup) {
    *dup = NULL;
    if (n <= 16) {
        for (const cJSON *a = obj->child; a && !*dup; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (!strcmp(a->string, b->string)) {
                    *dup = a->string;
                    break;
                }
        return 0;
    }
    const cJSON **v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    int k = 0;
    for (const cJSON *a = obj->child; a; a = a->next) v[k++] = a;
    qsort(v, (size_t)n, sizeof *v, key_cmp);
    for (int i = 1; i < n && !*dup; i++)
        if (!strcmp(v[i - 1]->string, v[i]->string)) *dup = v[i]->string;
    free(v);
    return 0;
}

static cJSON *read_value(reader *r);

/* Appends in O(1): cJSON keeps the last child in child->prev. */
static void append(cJSON *parent, cJSON *item) {
    if (!parent->child) {
        parent->child = item;
        item->prev = item;
    } else {
        cJSON *last = parent->child->prev;
        last->next = item;
        item->prev = last;
        parent->child->prev = item;
    }
}

static cJSON *read_array(reader *r) {
    cJSON *a = cJSON_CreateArray();
    if (!a) return fail_at(r, "out of memory");
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    while (1) {
        cJSON *v = read_value(r);
        if (!v) break;
        append(a, v);
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return a;
        }
        fail_at(r, "expected ',' or ']' in a list");
        break;
    }
    cJSON_Delete(a);
    return NULL;
}

static cJSON *read_object(reader *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return fail_at(r, "out of memory");
    r->p++;
    skip_ws(r);
    int n = 0;
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    while (1) {
        skip_ws(r);
        if (r->p >= r->end || *r->p != '"') {
            fail_at(r, "expected a key (a string)");
            break;
        }
        char *key = read_string(r);
        if (!key) break;
        skip_ws(r);
        if (r->p >= r->end || *r->p != ':') {
            cJSON_free(key);
            fail_at(r, "expected ':' after a key");
            break;
        }
        r->p++;
        cJSON *v = read_value(r);
        if (!v) {
            cJSON_free(key);
            break;
        }
        v->string = key;
        append(o, v);
        n++;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            const char *dup;
            if (duplicate_key(o, n, &dup)) {
                fail_at(r, "out of memory");
                break;
            }
            if (dup) {
                if (!r->failed) sym_fail(r->e, "invalid JSON: the key '%.64s' appears twice in one object", dup);
                r->failed = 1;
                break;
            }
            r->p++;
            return o;
        }
        fail_at(r, "expected ',' or '}' in an object");
        break;
    }
    cJSON_Delete(o);
    return NULL;
}

static int literal(reader *r, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n)) return 0;
    r->p += n;
    return 1;
}

static cJSON *read_value(reader *r) {
    skip_ws(r);
    if (r->p >= r->end) return fail_at(r, "expected a value");
    switch (*r->p) {
    case '{':
    case '[': {
        if (++r->depth > SYM_JSON_MAX_DEPTH) return fail_at(r, "nested too deep");
        cJSON *v = *r->p == '{' ? read_object(r) : read_array(r);
        r->depth--;
        return v;
    }
    case '"': {
        char *s = read_string(r);
        if (!s) return NULL;
        cJSON *v = cJSON_CreateString("");
        if (!v) {
            cJSON_free(s);
            return fail_at(r, "out of memory");
        }
        cJSON_free(v->valuestring);
        v->valuestring = s;
        return v;
    }
    case 't':
        if (literal(r, "true")) return cJSON_CreateTrue();
        break;
    case 'f':
        if (literal(r, "false")) return cJSON_CreateFalse();
        break;
    case 'n':
        if (literal(r, "null")) return cJSON_CreateNull();
        break;
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) return read_number(r);
    }
    return fail_at(r, "not a JSON value (JSON has no NaN, Infinity, bare words or quotes other than '\"')");
}

cJSON *sym_json_parse(const char *text, size_t len, sym_err *e) {
    reader r = {.begin = text, .p = text, .end = text + len, .e = e};
    cJSON *v = read_value(&r);
    if (!v) {
        if (!r.failed) sym_fail(e, "invalid JSON: out of memory");
        return NULL;
    }
    skip_ws(&r);
    if (r.p != r.end) {
        fail_at(&r, "more after the JSON value (one value per text)");
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

cJSON *sym_json_parse_file(const char *path, size_t max_bytes, sym_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        sym_fail(e, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max_bytes + 1);
    size_t n = buf ? fread(buf, 1, max_bytes + 1, f) : 0;
    int rerr = ferror(f);
    fclose(f);
    cJSON *j = NULL;
    if (!buf) sym_fail(e, "%s: out of memory", path);
    else if (rerr) sym_fail(e, "cannot read %s", path);
    else if (n > max_bytes) sym_fail(e, "%s: larger than %zu bytes", path, max_bytes);
    else if (!(j = sym_json_parse(buf, n, e))) sym_failctx(e, "%s", path);
    free(buf);
    return j;
}

int sym_json_is_int(const cJSON *item) { return cJSON_IsNumber(item) && item->valuestring != NULL; }

/* The magnitude of an integer literal's digits; -1 past 2^64 - 1. */
static int magnitude(const char *s, uint64_t *out) {
    uint64_t v = 0;
    for (; *s; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int sym_json_u64(const cJSON *item, uint64_t *out) {
    if (!sym_json_is_int(item) || item->valuestring[0] == '-') {
        /* "-0" is zero */
        if (sym_json_is_int(item) && !strcmp(item->valuestring, "-0")) return *out = 0, 0;
        return -1;
    }
    return magnitude(item->valuestring, out);
}

int sym_json_i64(const cJSON *item, int64_t *out) {
    if (!sym_json_is_int(item)) return -1;
    const char *s = item->valuestring;
    int neg = *s == '-';
    uint64_t m;
    if (magnitude(s + neg, &m)) return -1;
    if (neg ? m > (uint64_t)INT64_MAX + 1 : m > (uint64_t)INT64_MAX) return -1;
    *out = neg ? (int64_t)(0 - m) : (int64_t)m;
    return 0;
}
