/* A shard's symbol id -> state slot map and its slot allocator. Free slots
 * are handed out lowest first, released ones first. Owned by one shard thread. */
#ifndef SYM_SLOT_TABLE_H
#define SYM_SLOT_TABLE_H

#include <stdint.h>

#include "common/err.h"

typedef struct {
    int n_ids, n_slots;
    int32_t *slot_of; /* [n_ids], -1: no slot here */
    int32_t *free;    /* stack of free slots, lowest on top */
    int n_free;
} sym_slot_table;

int sym_slot_table_init(sym_slot_table *t, int n_ids, int n_slots, sym_err *e);
void sym_slot_table_free(sym_slot_table *t);

static inline int32_t sym_slot_table_lookup(const sym_slot_table *t, int id) { return t->slot_of[id]; }

/* A slot for id (a fresh one when id has none): -1 when every slot is taken.
 * *fresh is set when the slot was just allocated (the caller resets it). */
int32_t sym_slot_table_alloc(sym_slot_table *t, int id, int *fresh);

/* Gives id's slot back (no-op when it has none). */
void sym_slot_table_release(sym_slot_table *t, int id);

#endif
