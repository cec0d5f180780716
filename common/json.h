/* Strict JSON (RFC 8259) into cJSON trees: every JSON text symserve reads
 * (the protocol's lines, config files, model config.json, the safetensors
 * header) goes through here, because cJSON's own parser is lenient in ways
 * that change meaning: it stops at the first NUL or after the first value
 * (so "a\u0000b", a second object or trailing garbage pass unseen), takes
 * numbers JSON does not have (`01`, `1.`, `-.5`), keeps the last of two
 * equal keys, and reads every number as a double (an id of 2^53 + 1 comes
 * back as 2^53).
 *
 * What is accepted is exactly one JSON value, with nothing but JSON
 * whitespace (space, tab, LF, CR) around it:
 *  - strings are valid UTF-8 (no overlong forms, no surrogates, at most
 *    U+10FFFF), no raw control bytes, only JSON's escapes, \u surrogates in
 *    pairs, and no NUL in any form (a C string could not hold it);
 *  - numbers follow JSON's grammar; one too large for a double becomes
 *    +-inf (it is valid JSON: the caller decides whether it is usable);
 *  - no object has two equal keys;
 *  - nesting is at most SYM_JSON_MAX_DEPTH deep.
 *
 * A number written as an integer literal (no fraction, no exponent) keeps
 * its source text in the cJSON node's valuestring (freed by cJSON_Delete),
 * so sym_json_u64 / sym_json_i64 read it exactly. */
#ifndef SYM_COMMON_JSON_H
#define SYM_COMMON_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SYM_JSON_MAX_DEPTH 64

/* Parses text[0, len) (which may hold NUL bytes: they are errors). The
 * tree, or NULL with e naming the byte offset and what is wrong there. */
cJSON *sym_json_parse(const char *text, size_t len, sym_err *e);

/* Reads and parses a whole file of at most max_bytes. NULL with e (which
 * names the path) on any failure. */
cJSON *sym_json_parse_file(const char *path, size_t max_bytes, sym_err *e);

/* 1 when item is a number written as an integer literal (sign allowed). */
int sym_json_is_int(const cJSON *item);

/* The exact value of an integer literal: 0, or -1 when item is not one or
 * it is out of the type's range. */
int sym_json_u64(const cJSON *item, uint64_t *out);
int sym_json_i64(const cJSON *item, int64_t *out);

/* Lower level, for readers that scan a JSON text without building a tree
 * (net/request_reader.c) under the same rules. Each takes the text up to
 * end and, on failure, sets *why and leaves *next at the offending byte. */

/* The string whose opening quote is at s: 0 with *next past its closing
 * quote, *len the byte length of its value (escapes decoded) and
 * *escaped whether it holds escapes; -1 otherwise. */
int sym_json_string_scan(const char *s, const char *end, const char **next, size_t *len, int *escaped,
                         const char **why);
/* Writes the value of a string sym_json_string_scan accepted ([s, next))
 * into out, NUL-terminated (len + 1 bytes). */
void sym_json_string_decode(const char *s, const char *next, char *out);

/* The number at s (JSON's grammar): 0 with *next past it and *integer
 * whether it is an integer literal; -1 otherwise. */
int sym_json_number_scan(const char *s, const char *end, const char **next, int *integer, const char **why);

/* The error for a text [begin, end) broken at p: "invalid JSON at byte N of
 * M: why, at '<excerpt>'". Returns -1. */
int sym_json_fail_at(sym_err *e, const char *begin, const char *p, const char *end, const char *why);

#endif
