#include "sharding/shard_map.h"

#include <stdlib.h>

#include "sharding/hash.h"

int sym_shard_map_init(sym_shard_map *m, int capacity, int n_shards, uint64_t seed, sym_err *e) {
    *m = (sym_shard_map){.n_shards = n_shards, .seed = seed, .capacity = capacity};
    if (capacity < 1 || n_shards < 1) return sym_fail(e, "shard map needs capacity and shards >= 1");
    m->override = malloc((size_t)capacity * sizeof *m->override);
    m->key = calloc((size_t)capacity, sizeof *m->key);
    if (!m->override || !m->key) {
        sym_shard_map_free(m);
        return sym_fail(e, "out of memory for a shard map of %d symbols", capacity);
    }
    sym_shard_map_clear_overrides(m);
    return 0;
}

void sym_shard_map_free(sym_shard_map *m) {
    free(m->override), free(m->key);
    m->override = NULL, m->key = NULL;
}

void sym_shard_map_add(sym_shard_map *m, int id, const char *name) {
    m->key[id] = sym_hash_symbol(name, m->seed);
}

int sym_shard_map_hash_owner(const sym_shard_map *m, int id, int n_shards) {
    return sym_hash_rendezvous(m->key[id], m->seed, n_shards);
}

int sym_shard_map_owner_among(const sym_shard_map *m, int id, const unsigned char *skip) {
    return sym_hash_rendezvous_among(m->key[id], m->seed, m->n_shards, skip);
}

int sym_shard_map_owner(const sym_shard_map *m, int id) {
    if (m->override[id] >= 0 && m->override[id] < m->n_shards) return m->override[id];
    return sym_shard_map_hash_owner(m, id, m->n_shards);
}

void sym_shard_map_set_override(sym_shard_map *m, int id, int shard) { m->override[id] = shard; }

void sym_shard_map_clear_overrides(sym_shard_map *m) {
    for (int i = 0; i < m->capacity; i++) m->override[i] = -1;
}

void sym_shard_map_set_count(sym_shard_map *m, int n_shards) { m->n_shards = n_shards; }
