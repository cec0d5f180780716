/* The router's symbol -> shard map: rendezvous hash over the current shard
 * count, unless a per-symbol override says otherwise (what migration sets).
 * Symbols are small integer ids from the symbol table. Owned by one thread
 * (the router). */
#ifndef SYM_SHARD_MAP_H
#define SYM_SHARD_MAP_H

#include <stdint.h>

#include "common/err.h"

typedef struct {
    int n_shards;
    uint64_t seed;
    int capacity;       /* symbol ids 0..capacity-1 */
    int32_t *override;  /* -1: follow the hash */
    uint64_t *key;      /* hash of each symbol's name */
} sym_shard_map;

int sym_shard_map_init(sym_shard_map *m, int capacity, int n_shards, uint64_t seed, sym_err *e);
void sym_shard_map_free(sym_shard_map *m);

/* Records a symbol's name hash (once, when the router first sees it). */
void sym_shard_map_add(sym_shard_map *m, int id, const char *name);

/* Where the symbol lives: its override, else its rendezvous winner. */
int sym_shard_map_owner(const sym_shard_map *m, int id);

/* The hash winner among the current shards i with !skip[i], ignoring
 * overrides; -1 when every shard is skipped. */
int sym_shard_map_owner_among(const sym_shard_map *m, int id, const unsigned char *skip);
/* The hash winner for a given shard count, ignoring overrides. */
int sym_shard_map_hash_owner(const sym_shard_map *m, int id, int n_shards);

void sym_shard_map_set_override(sym_shard_map *m, int id, int shard);
void sym_shard_map_clear_overrides(sym_shard_map *m);
void sym_shard_map_set_count(sym_shard_map *m, int n_shards);

#endif
