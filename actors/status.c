#include "actors/status.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

static int bucket_of(uint64_t ns) {
    if (ns < 8) return (int)ns;
    int p = 63 - __builtin_clzll(ns); /* ns in [2^p, 2^(p+1)) */
    int sub = (int)((ns >> (p - 3)) & 7);
    int b = (p - 2) * 8 + sub;
    return b < SYM_HIST_BUCKETS ? b : SYM_HIST_BUCKETS - 1;
}

static uint64_t bucket_top(int b) {
    if (b < 8) return (uint64_t)b;
    int p = b / 8 + 2, sub = b % 8;
    return ((uint64_t)(8 + sub + 1) << (p - 3)) - 1;
}

void sym_hist_add(sym_hist *h, uint64_t ns) {
    h->count[bucket_of(ns)]++;
    h->n++;
}

uint64_t sym_hist_quantile(const sym_hist *h, double q) {
    if (!h->n) return 0;
    uint64_t want = (uint64_t)(q * (double)(h->n - 1)) + 1, seen = 0;
    for (int b = 0; b < SYM_HIST_BUCKETS; b++)
        if ((seen += h->count[b]) >= want) return bucket_top(b);
    return bucket_top(SYM_HIST_BUCKETS - 1);
}

void sym_status_init(sym_status *s, double interval_s, uint64_t now_ns) {
    memset(s, 0, sizeof *s);
    s->interval_s = interval_s;
    s->t_last_ns = now_ns;
}

void sym_status_record(sym_status *s, int shard, uint64_t queue_ns, uint64_t step_ns, int batch, int first_of_step) {
    s->done++;
    sym_hist_add(&s->queue, queue_ns);
    if (first_of_step) {
        sym_hist_add(&s->step, step_ns);
        s->steps[shard]++;
        s->rows[shard] += (uint64_t)batch;
    }
}

uint64_t sym_status_due_in(const sym_status *s, uint64_t now_ns) {
    if (s->interval_s <= 0) return UINT64_MAX;
    uint64_t due = s->t_last_ns + (uint64_t)(s->interval_s * 1e9);
    return due > now_ns ? due - now_ns : 0;
}

void sym_status_tick(sym_status *s, uint64_t now_ns, int n_shards, const int *depth, const sym_paging_stats *pg) {
    if (sym_status_due_in(s, now_ns)) return;
    double secs = (double)(now_ns - s->t_last_ns) * 1e-9;
    char shards[1024];
    int len = 0;
    for (int i = 0; i < n_shards && len < (int)sizeof shards - 160; i++) { /* an entry is under 160 bytes */
        len += snprintf(shards + len, sizeof shards - (size_t)len, " %d:q%d/b%.1f", i, depth[i],
                        s->steps[i] ? (double)s->rows[i] / (double)s->steps[i] : 0.0);
        if (pg && pg[i].page_outs + pg[i].page_ins)
            len += snprintf(shards + len, sizeof shards - (size_t)len, "/out%llu/in%llu",
                            (unsigned long long)pg[i].page_outs, (unsigned long long)pg[i].page_ins);
        if (pg && pg[i].disk_outs + pg[i].disk_ins)
            len += snprintf(shards + len, sizeof shards - (size_t)len, "/dout%llu/din%llu",
                            (unsigned long long)pg[i].disk_outs, (unsigned long long)pg[i].disk_ins);
    }
    sym_info("status: %.0f req/s, step p50 %.1f p99 %.1f us, queue p50 %.1f p99 %.1f us, shards%s",
             (double)s->done / (secs > 0 ? secs : 1), sym_hist_quantile(&s->step, 0.5) * 1e-3,
             sym_hist_quantile(&s->step, 0.99) * 1e-3, sym_hist_quantile(&s->queue, 0.5) * 1e-3,
             sym_hist_quantile(&s->queue, 0.99) * 1e-3, shards);
    double iv = s->interval_s;
    sym_status_init(s, iv, now_ns);
}

/* --- published ------------------------------------------------------------ */

const uint64_t sym_step_le_ns[SYM_STEP_BUCKETS] = {
    50000,   100000,  250000,  500000,   750000,   1000000,  1500000,  2000000,   2500000,   3000000,
    4000000, 5000000, 7500000, 10000000, 15000000, 20000000, 30000000, 50000000, 100000000, 1000000000};

/* One writer: a load and a store, no locked add. */
static void bump(_Atomic uint64_t *c, uint64_t by) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

void sym_pub_step(sym_router_pub *p, int shard, uint64_t step_ns, int rows) {
    sym_shard_pub *s = &p->shard[shard];
    int b = 0;
    while (b < SYM_STEP_BUCKETS && step_ns > sym_step_le_ns[b]) b++;
    bump(&s->step_count[b], 1);
    bump(&s->step_ns, step_ns);
    bump(&s->rows, (uint64_t)rows);
}

void sym_pub_depth(sym_router_pub *p, int shard, int depth) {
    atomic_store_explicit(&p->shard[shard].depth, depth, memory_order_relaxed);
}

void sym_pub_move(sym_router_pub *p, int ok, uint64_t ns) {
    bump(ok ? &p->moves_done : &p->moves_failed, 1);
    bump(&p->move_ns, ns);
}

void sym_pub_rebalance(sym_router_pub *p) { bump(&p->rebalances, 1); }

void sym_pub_lost(sym_router_pub *p) {
    atomic_store_explicit(&p->lost, atomic_load_explicit(&p->lost, memory_order_relaxed) + 1, memory_order_release);
}

int sym_pub_read_lost(sym_router_pub *p) { return atomic_load_explicit(&p->lost, memory_order_acquire); }

void sym_pub_held(sym_router_pub *p, int held) { atomic_store_explicit(&p->held, held, memory_order_relaxed); }

void sym_pub_restore_end(sym_router_pub *p, int ok) { bump(ok ? &p->restored : &p->restore_failed, 1); }

void sym_pub_replayed(sym_router_pub *p) { bump(&p->replayed, 1); }

void sym_pub_reissued(sym_router_pub *p) { bump(&p->reissued, 1); }

void sym_pub_read_held(sym_router_pub *p, sym_held_stats *out) {
    *out = (sym_held_stats){
        .held = atomic_load_explicit(&p->held, memory_order_relaxed),
        .restored = atomic_load_explicit(&p->restored, memory_order_relaxed),
        .failed = atomic_load_explicit(&p->restore_failed, memory_order_relaxed),
        .replayed = atomic_load_explicit(&p->replayed, memory_order_relaxed),
        .reissued = atomic_load_explicit(&p->reissued, memory_order_relaxed),
    };
}

void sym_pub_read_shard(sym_router_pub *p, int shard, sym_shard_stats *out) {
    sym_shard_pub *s = &p->shard[shard];
    memset(out, 0, sizeof *out);
    for (int b = 0; b <= SYM_STEP_BUCKETS; b++) {
        out->step_count[b] = atomic_load_explicit(&s->step_count[b], memory_order_relaxed);
        out->steps += out->step_count[b];
    }
    out->step_ns = atomic_load_explicit(&s->step_ns, memory_order_relaxed);
    out->rows = atomic_load_explicit(&s->rows, memory_order_relaxed);
    out->queue_depth = atomic_load_explicit(&s->depth, memory_order_relaxed);
}

void sym_pub_read_migrations(sym_router_pub *p, sym_migration_stats *out) {
    out->done = atomic_load_explicit(&p->moves_done, memory_order_relaxed);
    out->failed = atomic_load_explicit(&p->moves_failed, memory_order_relaxed);
    out->ns = atomic_load_explicit(&p->move_ns, memory_order_relaxed);
    out->rebalances = atomic_load_explicit(&p->rebalances, memory_order_relaxed);
}
