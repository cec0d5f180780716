/* The strict JSON reader (common/json.h): every rule it enforces, each with
 * a text that breaks it; exact integers; agreement with cJSON's own reading
 * on valid texts; and no crash or leak on mutated texts (ASan in CI). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "tests/check.h"

static int parses(const char *s, size_t n) {
    sym_err e = {{0}};
    cJSON *j = sym_json_parse(s, n, &e);
    cJSON_Delete(j);
    return j != NULL;
}
#define OK(lit) CHECKV(parses(lit, sizeof lit - 1), "accepted: %s", #lit)
#define BAD(lit) CHECKV(!parses(lit, sizeof lit - 1), "refused: %s", #lit)

static void grammar(void) {
    OK("{}");
    OK(" {\"a\" : [1, -2.5e+3, 0, -0, 0.5, 1E9, true, false, null, \"x\"]}\r\n");
    OK("[]");
    OK("\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\"");
    OK("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
    OK("1e999"); /* valid JSON, +inf as a double: the caller decides */
    BAD("");
    BAD("   ");
    BAD("{} {}");                      /* two objects */
    BAD("{\"a\":1}x");                 /* trailing garbage */
    BAD("{\"a\":1},");
    BAD("{\"a\":1}\0");                /* a NUL after the object */
    BAD("{\"a\":\"b\0c\"}");           /* a raw NUL inside a string */
    BAD("{\"a\":\"b\\u0000c\"}");      /* an escaped NUL */
    BAD("{\"a\":\"b\x01\"}");          /* a raw control byte */
    BAD("{\"a\":1.}");
    BAD("{\"a\":-.5}");
    BAD("{\"a\":.5}");
    BAD("{\"a\":01}");
    BAD("{\"a\":-01}");
    BAD("{\"a\":+1}");
    BAD("{\"a\":1e}");
    BAD("{\"a\":1e+}");
    BAD("{\"a\":0x10}");
    BAD("{\"a\":NaN}");
    BAD("{\"a\":Infinity}");
    BAD("{\"a\":-Infinity}");
    BAD("{\"a\":nan}");
    BAD("{\"a\":tru}");
    BAD("{\"a\":nul}");
    BAD("{\"a\":1,}");                 /* trailing comma */
    BAD("[1,]");
    BAD("[,1]");
    BAD("{\"a\" 1}");
    BAD("{a:1}");                      /* unquoted key */
    BAD("{'a':1}");
    BAD("{\"a\":'x'}");
    BAD("{\"a\":1,\"a\":2}");          /* duplicate key */
    BAD("{\"a\":{\"b\":1,\"b\":1}}");  /* duplicate key, nested */
    BAD("\"\\x41\"");                  /* unknown escape */
    BAD("\"\\u12\"");
    BAD("\"\\ud83d\"");                /* unpaired high surrogate */
    BAD("\"\\ude00\"");                /* unpaired low surrogate */
    BAD("\"\xc3\"");                   /* truncated UTF-8 */
    BAD("\"\xc0\xaf\"");               /* overlong */
    BAD("\"\xed\xa0\x80\"");           /* an encoded surrogate */
    BAD("\"\xf4\x90\x80\x80\"");       /* past U+10FFFF */
    BAD("\"\xff\"");
    BAD("\"abc");
    BAD("[1");
    BAD("{\"a\":1");
    BAD("/* c */ {}");
    BAD("\xef\xbb\xbf{}");             /* a byte-order mark is not whitespace */
    BAD("{}\f");
    BAD("{}\v");
}

static void depth(void) {
    char deep[2 * (SYM_JSON_MAX_DEPTH + 1) + 1];
    for (int i = 0; i <= SYM_JSON_MAX_DEPTH; i++) deep[i] = '[', deep[SYM_JSON_MAX_DEPTH + 1 + i] = ']';
    CHECKV(!parses(deep, 2 * (SYM_JSON_MAX_DEPTH + 1)), "refused: %d nested lists", SYM_JSON_MAX_DEPTH + 1);
    CHECKV(parses(deep + 1, 2 * SYM_JSON_MAX_DEPTH), "accepted: %d nested lists", SYM_JSON_MAX_DEPTH);
}

static void integers(void) {
    sym_err e;
    cJSON *j = sym_json_parse("[9007199254740993, 18446744073709551615, 18446744073709551616, -1, "
                              "-9223372036854775808, 1.0, 1e3, \"3\", 0, -0]",
                              strlen("[9007199254740993, 18446744073709551615, 18446744073709551616, -1, "
                                     "-9223372036854775808, 1.0, 1e3, \"3\", 0, -0]"),
                              &e);
    CHECK(j, "parse: %s", e.msg);
    if (!j) return;
    uint64_t u;
    int64_t s;
    const cJSON *x = j->child;
    CHECKV(!sym_json_u64(x, &u) && u == 9007199254740993ull, "2^53 + 1 read exactly");
    x = x->next;
    CHECKV(!sym_json_u64(x, &u) && u == UINT64_MAX, "2^64 - 1 read exactly");
    CHECKV(sym_json_i64(x, &s), "2^64 - 1 is not an int64");
    x = x->next;
    CHECKV(sym_json_u64(x, &u) && sym_json_is_int(x), "2^64 is an integer but not a uint64");
    x = x->next;
    CHECKV(sym_json_u64(x, &u) && !sym_json_i64(x, &s) && s == -1, "-1: an int64, not a uint64");
    x = x->next;
    CHECKV(!sym_json_i64(x, &s) && s == INT64_MIN, "-2^63 read exactly");
    x = x->next;
    CHECKV(!sym_json_is_int(x) && sym_json_u64(x, &u), "1.0 is not an integer literal");
    x = x->next;
    CHECKV(!sym_json_is_int(x) && sym_json_u64(x, &u), "1e3 is not an integer literal");
    x = x->next;
    CHECKV(!sym_json_is_int(x) && sym_json_u64(x, &u), "\"3\" is not an integer");
    x = x->next;
    CHECKV(!sym_json_u64(x, &u) && u == 0, "0");
    x = x->next;
    CHECKV(!sym_json_u64(x, &u) && u == 0, "-0 is zero");
    cJSON_Delete(j);
}

static void errors_name_the_place(void) {
    sym_err e = {{0}};
    CHECK(!sym_json_parse("{\"a\":1} x", 9, &e), "trailing");
    CHECKV(strstr(e.msg, "byte 8") && strstr(e.msg, "more after"), "trailing data named at its byte: %s", e.msg);
    CHECK(!sym_json_parse("{\"k\":1,\"k\":2}", 13, &e), "dup");
    CHECKV(strstr(e.msg, "'k'") != NULL, "duplicate key named: %s", e.msg);
    CHECK(!sym_json_parse("{\"a\":\"x\0\"}", 10, &e), "nul");
    CHECKV(strstr(e.msg, "NUL") != NULL, "a NUL byte named: %s", e.msg);
}

/* Values agree with cJSON's own reading wherever cJSON is right. */
static void agrees_with_cjson(void) {
    const char *doc = "{\"message_type\":\"inference_request\",\"unique_ids\":[1,2],\"symbols\":[\"SYM_001\",\"a\\\"b\"],"
                      "\"features\":[[0.45942163467407227,1e-05,-2.5],[3,4,5]],\"timestamp\":1733400000.123,"
                      "\"nested\":{\"x\":[true,false,null,{}]}}";
    sym_err e;
    cJSON *a = sym_json_parse(doc, strlen(doc), &e), *b = cJSON_Parse(doc);
    CHECKV(a && b && cJSON_Compare(a, b, 1), "the same tree as cJSON_Parse on a valid message");
    cJSON_Delete(a);
    cJSON_Delete(b);
}

/* Mutations of valid texts: each either parses or is refused with a
 * message; never a crash, an over-read or a leak (ASan, LeakSanitizer). */
static void mutations(void) {
    const char *seeds[] = {
        "{\"message_type\":\"inference_request\",\"unique_ids\":[1],\"symbols\":[\"SYM_001\"],\"features\":[[0.5,-1e-3]]}",
        "{\"a\":[\"\\u00e9\\ud83d\\ude00\",{\"b\":null}],\"c\":-0.5e+7}",
    };
    uint64_t x = 88172645463325252ull;
    int refused = 0, total = 0;
    for (int s = 0; s < 2; s++) {
        size_t n = strlen(seeds[s]);
        char *buf = malloc(n + 8);
        for (int it = 0; it < 20000; it++) {
            memcpy(buf, seeds[s], n);
            size_t m = n;
            for (int k = 0; k < 1 + it % 3; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                size_t at = (size_t)(x % m);
                int op = (int)(x >> 40) % 3;
                unsigned char c = (unsigned char)(x >> 48);
                if (op == 0) buf[at] = (char)c;
                else if (op == 1 && m + 1 < n + 8) memmove(buf + at + 1, buf + at, m - at), buf[at] = (char)c, m++;
                else if (m > 1) memmove(buf + at, buf + at + 1, m - at - 1), m--;
            }
            char *exact = malloc(m); /* no slack after the text: ASan catches any read past it */
            memcpy(exact, buf, m);
            refused += !parses(exact, m);
            total++;
            free(exact);
        }
        free(buf);
    }
    CHECKV(refused > 0 && refused < total, "%d mutated texts: %d refused, none crashed", total, refused);
}

int main(void) {
    grammar();
    depth();
    integers();
    errors_name_the_place();
    agrees_with_cjson();
    mutations();
    return failures != 0;
}
