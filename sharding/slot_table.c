#include "sharding/slot_table.h"

#include <stdlib.h>

int sym_slot_table_init(sym_slot_table *t, int n_ids, int n_slots, sym_err *e) {
    *t = (sym_slot_table){.n_ids = n_ids, .n_slots = n_slots};
    size_t ns = (size_t)(n_slots > 0 ? n_slots : 1);
    t->slot_of = malloc((size_t)(n_ids > 0 ? n_ids : 1) * sizeof *t->slot_of);
    t->id_of = malloc(ns * sizeof *t->id_of);
    t->used = calloc(ns, sizeof *t->used);
    t->free = malloc(ns * sizeof *t->free);
    if (!t->slot_of || !t->id_of || !t->used || !t->free) {
        sym_slot_table_free(t);
        return sym_fail(e, "out of memory for a slot table of %d slots", n_slots);
    }
    for (int i = 0; i < n_ids; i++) t->slot_of[i] = -1;
    for (int s = 0; s < n_slots; s++) t->free[s] = n_slots - 1 - s, t->id_of[s] = -1;
    t->n_free = n_slots;
    return 0;
}

void sym_slot_table_free(sym_slot_table *t) {
    free(t->slot_of), free(t->id_of), free(t->used), free(t->free);
    t->slot_of = NULL, t->id_of = NULL, t->used = NULL, t->free = NULL;
}

int32_t sym_slot_table_alloc(sym_slot_table *t, int id, int *fresh) {
    *fresh = 0;
    if (t->slot_of[id] >= 0) return t->slot_of[id];
    if (!t->n_free) return -1;
    *fresh = 1;
    int32_t slot = t->free[--t->n_free];
    t->id_of[slot] = id;
    t->used[slot] = 0;
    return t->slot_of[id] = slot;
}

void sym_slot_table_release(sym_slot_table *t, int id) {
    int32_t slot = t->slot_of[id];
    if (slot < 0) return;
    t->free[t->n_free++] = slot;
    t->id_of[slot] = -1;
    t->slot_of[id] = -1;
}

int sym_slot_table_lru_idle(const sym_slot_table *t, const int *busy) {
    int best = -1;
    for (int s = 0; s < t->n_slots; s++) {
        int id = t->id_of[s];
        if (id < 0 || busy[id]) continue;
        if (best < 0 || t->used[s] < t->used[best]) best = s;
    }
    return best < 0 ? -1 : t->id_of[best];
}
