#include "sharding/symbol_table.h"

#include <stdlib.h>
#include <string.h>

#include "sharding/hash.h"

int sym_symbol_table_init(sym_symbol_table *t, int capacity, sym_err *e) {
    *t = (sym_symbol_table){.capacity = capacity};
    if (capacity < 1) return sym_fail(e, "symbol table capacity must be >= 1");
    t->n_buckets = 2;
    while (t->n_buckets < 2 * capacity) t->n_buckets *= 2;
    t->bucket = calloc((size_t)t->n_buckets, sizeof *t->bucket);
    t->names = malloc((size_t)capacity * sizeof *t->names);
    if (!t->bucket || !t->names) {
        sym_symbol_table_free(t);
        return sym_fail(e, "out of memory for %d symbols", capacity);
    }
    return 0;
}

void sym_symbol_table_free(sym_symbol_table *t) {
    free(t->bucket), free(t->names);
    t->bucket = NULL, t->names = NULL;
}

/* The bucket holding name, or the empty bucket where it would go. */
static int probe(const sym_symbol_table *t, const char *name) {
    int mask = t->n_buckets - 1, b = (int)(sym_hash_symbol(name, 0) & (uint64_t)mask);
    while (t->bucket[b] && strcmp(t->names[t->bucket[b] - 1], name)) b = (b + 1) & mask;
    return b;
}

int sym_symbol_table_find(const sym_symbol_table *t, const char *name) {
    return t->bucket[probe(t, name)] - 1;
}

int sym_symbol_table_intern(sym_symbol_table *t, const char *name, sym_err *e) {
    if (strlen(name) > SYM_SYMBOL_MAX) return sym_fail(e, "symbol longer than %d bytes", SYM_SYMBOL_MAX);
    int b = probe(t, name);
    if (t->bucket[b]) return t->bucket[b] - 1;
    if (t->count == t->capacity)
        return sym_fail(e, "symbol '%s' is one more than the %d distinct symbols the engine holds (max_symbols)", name,
                        t->capacity);
    strcpy(t->names[t->count], name);
    t->bucket[b] = ++t->count;
    return t->count - 1;
}
