/* unique_id map; see uid_map.h. */
#include "common/uid_map.h"

#include <stdlib.h>

static size_t hash(uint64_t x) { /* splitmix64 finaliser: ids are often consecutive */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return (size_t)(x ^ (x >> 31));
}

int sym_uid_map_init(sym_uid_map *m, size_t expect) {
    size_t cap = 64;
    while (cap < expect * 2) cap *= 2;
    m->keys = malloc(cap * sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    m->used = calloc(cap, 1);
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals || !m->used) {
        sym_uid_map_free(m);
        return -1;
    }
    return 0;
}

void sym_uid_map_free(sym_uid_map *m) {
    free(m->keys);
    free(m->vals);
    free(m->used);
    m->keys = NULL, m->vals = NULL, m->used = NULL;
    m->cap = m->n = 0;
}

int32_t *sym_uid_map_get(const sym_uid_map *m, uint64_t uid) {
    if (!m->cap) return NULL;
    for (size_t i = hash(uid) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->used[i]) return NULL;
        if (m->keys[i] == uid) return &m->vals[i];
    }
}

static void insert(sym_uid_map *m, uint64_t uid, int32_t val) {
    size_t i = hash(uid) & (m->cap - 1);
    while (m->used[i] && m->keys[i] != uid) i = (i + 1) & (m->cap - 1);
    if (!m->used[i]) m->n++;
    m->used[i] = 1, m->keys[i] = uid, m->vals[i] = val;
}

int sym_uid_map_put(sym_uid_map *m, uint64_t uid, int32_t val) {
    if ((m->n + 1) * 2 > m->cap) {
        sym_uid_map old = *m;
        if (sym_uid_map_init(m, old.cap)) {
            *m = old;
            return -1;
        }
        for (size_t i = 0; i < old.cap; i++)
            if (old.used[i]) insert(m, old.keys[i], old.vals[i]);
        sym_uid_map_free(&old);
    }
    insert(m, uid, val);
    return 0;
}

void sym_uid_map_del(sym_uid_map *m, uint64_t uid) {
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = hash(uid) & mask;
    while (m->used[i] && m->keys[i] != uid) i = (i + 1) & mask;
    if (!m->used[i]) return;
    /* backward shift: move later entries of the chain into the hole when
     * their home slot does not lie cyclically in (hole, j] */
    for (size_t j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
        size_t home = hash(m->keys[j]) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j], m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->used[i] = 0;
    m->n--;
}
