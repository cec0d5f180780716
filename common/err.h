/* Errors are returned, never hidden: a function that can fail returns 0 on
 * success and -1 on failure, and writes one human-readable line into the
 * caller's sym_err (which may be NULL when the caller does not care). */
#ifndef SYM_ERR_H
#define SYM_ERR_H

#include <stddef.h>

typedef struct {
    char msg[512];
} sym_err;

/* Formats msg into e (when e is non-NULL) and returns -1, so that a failing
 * path reads `return sym_fail(e, "bad %s", what);`. */
int sym_fail(sym_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message with more context: "ctx: old message". */
int sym_failctx(sym_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
