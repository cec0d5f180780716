#include "sharding/hash.h"

#include <stddef.h>

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t sym_hash_symbol(const char *name, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ull ^ mix64(seed);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return mix64(h);
}

int sym_hash_rendezvous(uint64_t key, uint64_t seed, int n_shards) {
    return sym_hash_rendezvous_among(key, seed, n_shards, NULL);
}

int sym_hash_rendezvous_among(uint64_t key, uint64_t seed, int n_shards, const unsigned char *skip) {
    int best = -1;
    uint64_t best_score = 0;
    for (int i = 0; i < n_shards; i++) {
        if (skip && skip[i]) continue;
        /* the score depends only on (key, shard, seed), never on n_shards:
         * that is what makes a count change move only the symbols whose
         * winner is a new shard or a removed one */
        uint64_t s = mix64(key ^ mix64(seed + 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)));
        if (best < 0 || s > best_score) best = i, best_score = s;
    }
    return best;
}
