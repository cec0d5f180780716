#include "actors/host_tier.h"

#include <stdlib.h>

int sym_host_tier_init(sym_host_tier *t, int n_ids, size_t slot_bytes, size_t bytes, const sym_host_mem *mem,
                       sym_err *e) {
    *t = (sym_host_tier){.mem = mem, .slot_bytes = slot_bytes, .n_ids = n_ids};
    size_t cap = slot_bytes ? bytes / slot_bytes : 0;
    t->cap = cap > (size_t)n_ids + 1 ? n_ids + 1 : (int)cap; /* more could never be used */
    t->held = calloc((size_t)(n_ids > 0 ? n_ids : 1), sizeof *t->held);
    t->used = calloc((size_t)(n_ids > 0 ? n_ids : 1), sizeof *t->used);
    t->spare = malloc((size_t)(t->cap > 0 ? t->cap : 1) * sizeof *t->spare);
    if (!t->held || !t->used || !t->spare) {
        sym_host_tier_free(t);
        return sym_fail(e, "out of memory for a host tier of %d ids", n_ids);
    }
    return 0;
}

void sym_host_tier_free(sym_host_tier *t) {
    for (int i = 0; t->held && i < t->n_ids; i++) sym_host_mem_free(t->mem, t->held[i]);
    for (int i = 0; i < t->n_spare; i++) sym_host_mem_free(t->mem, t->spare[i]);
    free(t->spare);
    free(t->held);
    free(t->used);
    *t = (sym_host_tier){0};
}

void *sym_host_tier_take(sym_host_tier *t) {
    if (t->n_spare) return t->spare[--t->n_spare];
    if (t->n_bufs >= t->cap) return NULL;
    void *buf = sym_host_mem_alloc(t->mem, t->slot_bytes);
    if (buf) t->n_bufs++;
    return buf;
}

void sym_host_tier_hold(sym_host_tier *t, int id, void *buf, uint64_t used) {
    t->held[id] = buf;
    t->used[id] = used;
    t->n_held++;
}

void sym_host_tier_give(sym_host_tier *t, void *buf) { t->spare[t->n_spare++] = buf; }

void sym_host_tier_drop(sym_host_tier *t, int id) {
    if (!t->held[id]) return;
    sym_host_tier_give(t, t->held[id]);
    t->held[id] = NULL;
    t->n_held--;
}

int sym_host_tier_oldest(const sym_host_tier *t) {
    int best = -1;
    for (int i = 0; t->n_held && i < t->n_ids; i++)
        if (t->held[i] && (best < 0 || t->used[i] < t->used[best])) best = i;
    return best;
}
