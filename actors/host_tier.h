/* A shard's host tier: the states of its symbols paged out of the
 * backend's slot pool, one host buffer of slot_bytes each, bounded by
 * host_tier_mb (config). Owned by the shard thread; nothing else touches
 * it.
 *
 * Bound: at most cap buffers (host_tier_mb MiB / slot_bytes) exist at once,
 * held or kept for reuse. One of them is the swap room: bringing a paged
 * symbol back into a full pool pages another out first, and for that
 * moment both states are on the host. So the tier holds at most cap - 1
 * paged-out states between steps (sym_host_tier_room), and a shard keeps
 * at most slots + cap - 1 symbols' states.
 *
 * A buffer given back is kept for the next page-out (up to the bound): a
 * fresh 153.5 MB allocation costs its page faults on first touch, which
 * would rival the copy itself.
 *
 * Each held state carries a use stamp (the shard's step count when its
 * symbol last stepped), so that a full tier with a disk tier behind it
 * (disk_tier.h) spills its least recently used state there and keeps the
 * most recently used ones in memory. */
#ifndef SYM_HOST_TIER_H
#define SYM_HOST_TIER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kernels/backend.h"

typedef struct {
    const sym_host_mem *mem; /* the backend's host memory (NULL: malloc) */
    size_t slot_bytes;
    int n_ids;
    int cap;        /* buffers at most */
    int n_bufs;     /* allocated: held + spare */
    int n_held;     /* symbols paged out */
    void **held;    /* [n_ids]: the symbol's paged-out state, NULL when none */
    uint64_t *used; /* [n_ids]: the held state's use stamp */
    void **spare;   /* [cap]: buffers kept for reuse */
    int n_spare;
} sym_host_tier;

/* cap = bytes / slot_bytes (0: no tier); the buffers from mem (the
 * backend's ops->host_mem, NULL: malloc). */
int sym_host_tier_init(sym_host_tier *t, int n_ids, size_t slot_bytes, size_t bytes, const sym_host_mem *mem,
                       sym_err *e);
void sym_host_tier_free(sym_host_tier *t);

/* Paged-out states the tier can hold (cap - 1, 0 without a tier). */
static inline int sym_host_tier_room(const sym_host_tier *t) { return t->cap > 1 ? t->cap - 1 : 0; }

/* A buffer for id's state: a kept one, or a new one while fewer than cap
 * exist; NULL when cap are allocated or memory runs out. The caller fills
 * it, then records it with sym_host_tier_hold (or gives it back). */
void *sym_host_tier_take(sym_host_tier *t);
void sym_host_tier_hold(sym_host_tier *t, int id, void *buf, uint64_t used);
/* Drops id's state (after it went back into a slot, or elsewhere): its
 * buffer is kept for reuse. */
void sym_host_tier_drop(sym_host_tier *t, int id);
/* Gives back a buffer that take handed out and nobody holds. */
void sym_host_tier_give(sym_host_tier *t, void *buf);

/* The held state with the smallest use stamp (ties: the lower id), -1
 * when none. Scans the ids: called only when a full tier spills. */
int sym_host_tier_oldest(const sym_host_tier *t);

static inline void *sym_host_tier_state(const sym_host_tier *t, int id) { return t->held[id]; }

#endif
