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
