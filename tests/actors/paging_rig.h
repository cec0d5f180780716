/* What the paging tests (test_paging.c, test_disk_tier.c) share: an engine
 * over CPU fp64 backends (one thread each, every call checked to be on its
 * shard's thread) on the weights the test loaded, a deterministic request
 * stream, and the bit-for-bit comparison of two runs' predictions. Static
 * functions, like tests/check.h, so that their CHECKs count in the test's
 * own failures. */
#ifndef SYM_TESTS_PAGING_RIG_H
#define SYM_TESTS_PAGING_RIG_H

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "actors/engine.h"
#include "kernels/backend.h"
#include "kernels/weights.h"
#include "tests/actors/thread_check_backend.h"
#include "tests/check.h"

static sym_weights pr_weights; /* the test's main loads them */

typedef struct {
    sym_config cfg; /* the backends read its slots_per_shard: it lives as long as g */
    sym_engine *g;
} paging_run;

/* A host memory (kernels/backend.h) that keeps a record of what it lent:
 * with pr_mem_on set before an engine starts, its backends offer it, as
 * the CUDA engine offers its page-locked memory. */
static int pr_mem_on, pr_mem_allocs, pr_mem_strays; /* strays: frees of what it did not lend */
static void *pr_mem_live[1024];
static int pr_mem_n;
static pthread_mutex_t pr_mem_mu = PTHREAD_MUTEX_INITIALIZER;
static inline void *pr_mem_alloc(size_t bytes) {
    void *p = malloc(bytes);
    pthread_mutex_lock(&pr_mem_mu);
    if (p && pr_mem_n < 1024) pr_mem_live[pr_mem_n++] = p, pr_mem_allocs++;
    pthread_mutex_unlock(&pr_mem_mu);
    return p;
}
static inline void pr_mem_free(void *p) {
    pthread_mutex_lock(&pr_mem_mu);
    int i = 0;
    while (i < pr_mem_n && pr_mem_live[i] != p) i++;
    if (i < pr_mem_n) pr_mem_live[i] = pr_mem_live[--pr_mem_n];
    else pr_mem_strays++;
    pthread_mutex_unlock(&pr_mem_mu);
    free(p);
}
static const sym_host_mem pr_mem = {pr_mem_alloc, pr_mem_free};

static inline sym_backend *pr_make_cpu(void *ctx, int shard, sym_err *e) {
    (void)shard;
    const sym_config *c = ctx;
    sym_backend *b = sym_cpu_backend_create(&pr_weights, SYM_PREC_FP64, sym_config_slots_per_shard(c), e);
    if (b && sym_cpu_backend_set_threads(b, 1, e)) {
        sym_backend_destroy(b);
        return NULL;
    }
    if (!(b = b ? sym_thread_check_wrap(b, e) : NULL) || !pr_mem_on) return b;
    /* one copy of the wrapper's ops, made before any shard thread that
     * reads it starts (the wrapper's ops are alike for every CPU backend) */
    static sym_backend_ops with_mem;
    static int made;
    if (!made) with_mem = *b->ops, with_mem.host_mem = &pr_mem, made = 1;
    b->ops = &with_mem;
    return b;
}

/* The defaults with the CPU backend, no status line, a short idle spin,
 * and these sizes. */
static inline void pr_config(sym_config *c, int n_slots, int host_tier_mb, int max_symbols) {
    sym_config_defaults(c);
    c->backend = SYM_BACKEND_CPU;
    c->max_symbols = max_symbols;
    c->slots_per_shard = n_slots;
    c->host_tier_mb = host_tier_mb;
    c->status_interval_s = 0;
    c->idle_spin_us = 20;
}

/* The engine of r->cfg; -1 (counted as a failure, printed) when it cannot start. */
static inline int pr_start(paging_run *r) {
    sym_err e;
    r->g = sym_engine_create_with(&r->cfg, &pr_weights.cfg, pr_make_cpu, &r->cfg, &e);
    if (!r->g) fprintf(stderr, "engine: %s\n", e.msg), failures++;
    return r->g ? 0 : -1;
}

/* Symbol "S<sym>" (3 digits), features a function of uid and sym. */
static inline sym_request pr_request(int sym, uint64_t uid) {
    sym_request q = {.uid = uid, .n_features = pr_weights.cfg.features};
    snprintf(q.symbol, sizeof q.symbol, "S%03d", sym);
    for (int i = 0; i < q.n_features; i++) q.features[i] = (float)(0.8 * sin(0.37 * (double)uid + 0.11 * i + sym));
    return q;
}

/* Submits n requests (symbols syms[0..n-1], uids from uid0), waits for
 * their predictions and files them by uid - uid0 into out. */
static inline void pr_submit_wait(paging_run *r, const int *syms, int n, uint64_t uid0, sym_prediction *out) {
    sym_err e;
    for (int i = 0; i < n; i++) {
        sym_request q = pr_request(syms[i], uid0 + (uint64_t)i);
        CHECK(!sym_engine_submit(r->g, &q, &e), "submit: %s", e.msg);
    }
    sym_prediction p[64];
    for (int got = 0; got < n;) {
        int k = sym_engine_poll(r->g, p, 64, 10000);
        if (k <= 0) {
            CHECK(0, "%d of %d predictions came", got, n);
            return;
        }
        for (int j = 0; j < k; j++) {
            uint64_t at = p[j].uid - uid0;
            if (at < (uint64_t)n) out[at] = p[j];
        }
        got += k;
    }
}

static inline sym_paging_stats pr_paging(paging_run *r, int shard) {
    sym_paging_stats st = {0};
    sym_err e;
    CHECK(!sym_engine_paging(r->g, shard, &st, &e), "paging: %s", e.msg);
    return st;
}

/* Predictions i of a and b with skip[i] unset (skip NULL: all) are
 * bit-identical and stepped. */
static inline void pr_same(const char *what, const sym_prediction *a, const sym_prediction *b, int n, const unsigned char *skip) {
    int diff = 0, bad = 0, first = -1;
    for (int i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        int off = a[i].status != 0 || b[i].status != 0 || memcmp(a[i].pred, b[i].pred, sizeof a[i].pred) != 0;
        bad += a[i].status != 0 || b[i].status != 0;
        diff += off;
        if (off && first < 0) first = i;
    }
    CHECK(!bad && !diff, "%s: %d of %d predictions differ, %d not stepped (first %d: %s)", what, diff, n, bad, first,
          first >= 0 ? (a[first].status ? a[first].error : b[first].error) : "");
}

#endif
