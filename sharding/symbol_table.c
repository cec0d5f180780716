#include "sharding/symbol_table.h"

#include <stdlib.h>
#include <string.h>

#include "common/ck_alloc.h"
#include "sharding/hash.h"

static unsigned long name_hash(const void *name, unsigned long seed) { return sym_hash_symbol(name, seed); }
static bool name_equal(const void *a, const void *b) { return !strcmp(a, b); }

int sym_symbol_table_init(sym_symbol_table *t, int capacity, sym_err *e) {
    *t = (sym_symbol_table){.capacity = capacity};
    if (capacity < 1) return sym_fail(e, "symbol table capacity must be >= 1");
    t->names = malloc((size_t)capacity * sizeof *t->names);
    /* sized for capacity names up front, so an insert never rehashes */
    t->have_set = t->names && ck_hs_init(&t->set, CK_HS_MODE_OBJECT, name_hash, name_equal, &sym_ck_malloc,
                                         2 * (unsigned long)capacity, 0);
    if (!t->have_set) {
        sym_symbol_table_free(t);
        return sym_fail(e, "out of memory for %d symbols", capacity);
    }
    return 0;
}

void sym_symbol_table_free(sym_symbol_table *t) {
    if (t->have_set) ck_hs_destroy(&t->set);
    free(t->names);
    t->names = NULL, t->have_set = 0;
}

static int id_of(const sym_symbol_table *t, const char *stored) {
    return stored ? (int)(((const char(*)[SYM_SYMBOL_MAX + 1])stored) - t->names) : -1;
}

int sym_symbol_table_find(sym_symbol_table *t, const char *name) {
    return id_of(t, ck_hs_get(&t->set, CK_HS_HASH(&t->set, name_hash, name), name));
}

int sym_symbol_table_intern(sym_symbol_table *t, const char *name, sym_err *e) {
    if (strlen(name) > SYM_SYMBOL_MAX) return sym_fail(e, "symbol longer than %d bytes", SYM_SYMBOL_MAX);
    unsigned long h = CK_HS_HASH(&t->set, name_hash, name);
    int id = id_of(t, ck_hs_get(&t->set, h, name));
    if (id >= 0) return id;
    if (t->count == t->capacity)
        return sym_fail(e, "symbol '%s' is one more than the %d distinct symbols the engine holds (max_symbols)", name,
                        t->capacity);
    strcpy(t->names[t->count], name);
    if (!ck_hs_put(&t->set, h, t->names[t->count])) return sym_fail(e, "out of memory for symbol '%s'", name);
    return t->count++;
}
