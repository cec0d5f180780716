/* See ck_alloc.h. The deferred-free flag matters only to concurrent
 * readers during a resize; every set here has one writer and frees at
 * once. */
#include "common/ck_alloc.h"

#include <stdlib.h>

static void *ck_alloc_malloc(size_t n) { return malloc(n); }
static void *ck_alloc_realloc(void *p, size_t old, size_t n, bool defer) {
    (void)old, (void)defer;
    return realloc(p, n);
}
static void ck_alloc_free(void *p, size_t n, bool defer) {
    (void)n, (void)defer;
    free(p);
}

struct ck_malloc sym_ck_malloc = {.malloc = ck_alloc_malloc, .realloc = ck_alloc_realloc, .free = ck_alloc_free};
