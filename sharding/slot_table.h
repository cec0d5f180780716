/* A shard's symbol id -> state slot map, its slot allocator and the
 * slots' recency. Free slots are handed out lowest first, released ones
 * first. Each slot carries a use stamp (the shard's step count when its
 * symbol last stepped) so that a full pool can give up its least recently
 * used idle symbol (actors/shard.c pages it out to the host tier). Owned
 * by one shard thread. */
#ifndef SYM_SLOT_TABLE_H
#define SYM_SLOT_TABLE_H

#include <stdint.h>

#include "common/err.h"

typedef struct {
    int n_ids, n_slots;
    int32_t *slot_of; /* [n_ids], -1: no slot here */
    int32_t *id_of;   /* [n_slots], -1: free */
    uint64_t *used;   /* [n_slots]: use stamp, larger is more recent */
    int32_t *free;    /* stack of free slots, lowest on top */
    int n_free;
} sym_slot_table;

int sym_slot_table_init(sym_slot_table *t, int n_ids, int n_slots, sym_err *e);
void sym_slot_table_free(sym_slot_table *t);

static inline int32_t sym_slot_table_lookup(const sym_slot_table *t, int id) { return t->slot_of[id]; }
static inline int sym_slot_table_full(const sym_slot_table *t) { return t->n_free == 0; }
static inline void sym_slot_table_touch(sym_slot_table *t, int32_t slot, uint64_t stamp) { t->used[slot] = stamp; }

/* A slot for id (a fresh one when id has none): -1 when every slot is taken.
 * *fresh is set when the slot was just allocated (the caller resets it or
 * writes its state); a fresh slot's stamp is 0 until touched. */
int32_t sym_slot_table_alloc(sym_slot_table *t, int id, int *fresh);

/* Gives id's slot back (no-op when it has none). */
void sym_slot_table_release(sym_slot_table *t, int id);

/* The symbol holding the least recently used slot among those whose
 * busy[id] is 0 (ties: the lower slot), or -1 when every slot is free or
 * busy. Scans the slots: called only when the pool is full and a symbol
 * needs room. */
int sym_slot_table_lru_idle(const sym_slot_table *t, const int *busy);

#endif
