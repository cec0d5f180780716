/* The router's numbers.
 *
 * The periodic status line: requests per second, p50/p99 of step time and
 * of queue time (submit -> step start), and per-shard queue depth and mean
 * batch size over the last interval, with a shard's page-outs and page-ins
 * so far once it has paged. Owned by the router thread.
 *
 * What the router publishes for other threads (sym_router_pub, read through
 * sym_engine_shard_stats, sym_engine_migration_stats and
 * sym_engine_held_stats): cumulative counters and the queue depth and held
 * symbols gauges of actors/shard_stats.h. The router is their one writer,
 * so each update is a relaxed load and store of its own counter (no locked
 * read-modify-write, no fence): a few plain stores per step, nothing per
 * request. They are separate atomics, not one snapshot
 * under a seqlock: a reader may see a step in its bucket before its time
 * and rows (off by one step for a moment, never going back), which a scrape
 * does not need to be exact about; the step count is the sum of the
 * buckets, so a histogram's count always equals its +Inf bucket. */
#ifndef SYM_STATUS_H
#define SYM_STATUS_H

#include <stdatomic.h>
#include <stdint.h>

#include "actors/paging.h"
#include "actors/shard_stats.h"
#include "config/config.h"

#define SYM_HIST_BUCKETS 512

/* Log-scale latency histogram: 8 sub-buckets per power of two (~9% wide). */
typedef struct {
    uint64_t n;
    uint64_t count[SYM_HIST_BUCKETS];
} sym_hist;

void sym_hist_add(sym_hist *h, uint64_t ns);
/* The q-quantile (0..1) in ns (bucket upper bound); 0 when empty. */
uint64_t sym_hist_quantile(const sym_hist *h, double q);

typedef struct {
    double interval_s;
    uint64_t t_last_ns;
    uint64_t done;
    sym_hist step, queue;
    uint64_t steps[SYM_MAX_SHARDS], rows[SYM_MAX_SHARDS];
} sym_status;

void sym_status_init(sym_status *s, double interval_s, uint64_t now_ns);
/* One finished request; first_of_step marks one row per step. */
void sym_status_record(sym_status *s, int shard, uint64_t queue_ns, uint64_t step_ns, int batch, int first_of_step);
/* Prints and resets when the interval has passed; depth[i]: shard i's
 * queue; pg[i] (NULL: none): its paging so far, printed for a shard that
 * has paged. */
void sym_status_tick(sym_status *s, uint64_t now_ns, int n_shards, const int *depth, const sym_paging_stats *pg);
/* ns until the next line is due (UINT64_MAX when off). */
uint64_t sym_status_due_in(const sym_status *s, uint64_t now_ns);

/* --- published: one writer (the router), readers on any thread ---------- */

typedef struct {
    _Atomic uint64_t step_count[SYM_STEP_BUCKETS + 1];
    _Atomic uint64_t step_ns, rows;
    atomic_int depth;
} sym_shard_pub;

/* Fixed for every possible shard (about 200 bytes each, 50 KiB in all):
 * a shard's numbers stay where readers find them while a rebalance adds
 * or removes shards, with no pointer to publish. Zeroed memory is the
 * initial state. */
typedef struct {
    sym_shard_pub shard[SYM_MAX_SHARDS];
    _Atomic uint64_t moves_done, moves_failed, move_ns, rebalances;
    atomic_int lost; /* shards lost; stored with release before the failed answers that follow reach poll() */
    atomic_int held; /* symbols held for a restore now */
    _Atomic uint64_t restored, restore_failed, replayed, reissued;
} sym_router_pub;

/* The router's side. */
void sym_pub_step(sym_router_pub *p, int shard, uint64_t step_ns, int rows);
void sym_pub_depth(sym_router_pub *p, int shard, int depth);
void sym_pub_move(sym_router_pub *p, int ok, uint64_t ns);
void sym_pub_rebalance(sym_router_pub *p);
void sym_pub_lost(sym_router_pub *p);
void sym_pub_held(sym_router_pub *p, int held);
void sym_pub_restore_end(sym_router_pub *p, int ok); /* a held symbol served again (1), or its begin or end failed */
void sym_pub_replayed(sym_router_pub *p);
void sym_pub_reissued(sym_router_pub *p);
/* Any thread. */
void sym_pub_read_shard(sym_router_pub *p, int shard, sym_shard_stats *out);
void sym_pub_read_migrations(sym_router_pub *p, sym_migration_stats *out);
int sym_pub_read_lost(sym_router_pub *p);
void sym_pub_read_held(sym_router_pub *p, sym_held_stats *out);

#endif
