/* The periodic status line: requests per second, p50/p99 of step time and
 * of queue time (submit -> step start), and per-shard queue depth and mean
 * batch size over the last interval, with a shard's page-outs and page-ins
 * so far once it has paged. Owned by the router thread. */
#ifndef SYM_STATUS_H
#define SYM_STATUS_H

#include <stdint.h>

#include "actors/paging.h"
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

#endif
