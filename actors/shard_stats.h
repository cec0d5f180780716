/* The router's numbers for other threads, as sym_engine_shard_stats and
 * sym_engine_migration_stats copy them out (actors/status.h says how the
 * router publishes them): per shard, the steps it ran (their time and their
 * rows) and its queue depth; engine-wide, the migrations and rebalances,
 * and the restores of a lost shard process's symbols. */
#ifndef SYM_SHARD_STATS_H
#define SYM_SHARD_STATS_H

#include <stdint.h>

/* Upper bounds (ns) of the step-time buckets; one more bucket (+Inf) takes
 * the rest. From a small model's CPU step (tens of us) to a full-size
 * GPU step of 128 rows (about 20 ms), with room above. Defined in status.c. */
#define SYM_STEP_BUCKETS 20
extern const uint64_t sym_step_le_ns[SYM_STEP_BUCKETS];

typedef struct {
    uint64_t step_count[SYM_STEP_BUCKETS + 1]; /* steps per bucket of step time, not cumulative; the last: +Inf */
    uint64_t steps;                            /* steps that ran rows: the sum of step_count */
    uint64_t step_ns;                          /* their time, summed */
    uint64_t rows;                             /* the rows they stepped (a step's batch size, summed) */
    int queue_depth; /* requests the router has sent the shard and not had answered, and those it holds
                        for the shard's credit (not those held while their symbol moves) */
} sym_shard_stats;

typedef struct {
    uint64_t done, failed; /* moves of a symbol's state between shards (migrate, and a rebalance's), ended */
    uint64_t ns;           /* their time: from the move's start (its symbol's new requests held) to its end */
    uint64_t rebalances;   /* rebalances finished, whether or not each of their moves succeeded */
} sym_migration_stats;

/* The symbols of lost shard processes, held and restored (actors/engine.h,
 * sym_engine_hold_lost and the restore calls). */
typedef struct {
    int held;           /* held now: their requests wait in the router until their restore ends */
    uint64_t restored;  /* restores ended: the symbol is served again */
    uint64_t failed;    /* restore begins or ends of a held symbol that failed: it stays held */
    uint64_t replayed;  /* logged steps a restore stepped again, answered */
    uint64_t reissued;  /* requests a lost shard took, sent again at their restore's end */
} sym_held_stats;

#endif
