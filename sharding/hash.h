/* Stable hashing for placement. A symbol's key is a 64-bit hash of its name
 * (FNV-1a, then a splitmix finaliser), seeded by the config's hash_seed.
 * Placement is rendezvous (highest random weight) hashing: the shard with the
 * highest score(key, shard) wins, so going from N to M shards moves only the
 * symbols whose winner changed, about |M-N|/max(M,N) of them. */
#ifndef SYM_HASH_H
#define SYM_HASH_H

#include <stdint.h>

uint64_t sym_hash_symbol(const char *name, uint64_t seed);

/* The winning shard in 0..n_shards-1 for a key (n_shards >= 1). */
int sym_hash_rendezvous(uint64_t key, uint64_t seed, int n_shards);
/* The same among the shards i with !skip[i] (skip NULL: all): the winner
 * of the shards left, so that taking some out moves only the keys they
 * won. -1 when every shard is skipped. */
int sym_hash_rendezvous_among(uint64_t key, uint64_t seed, int n_shards, const unsigned char *skip);

#endif
