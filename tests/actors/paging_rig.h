/* What the paging tests (test_paging.c, test_disk_tier.c) share: an engine
 * over CPU fp64 backends (one thread each, every call checked to be on its
 * shard's thread) on the weights the test loaded, a deterministic request
 * stream, and the bit-for-bit comparison of two runs' predictions. Static
 * functions, like tests/check.h, so that their CHECKs count in the test's
 * own failures. */
#ifndef SYM_TESTS_PAGING_RIG_H
#define SYM_TESTS_PAGING_RIG_H

#include <math.h>
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

static inline sym_backend *pr_make_cpu(void *ctx, int shard, sym_err *e) {
    (void)shard;
    const sym_config *c = ctx;
    sym_backend *b = sym_cpu_backend_create(&pr_weights, SYM_PREC_FP64, sym_config_slots_per_shard(c), e);
    if (b && sym_cpu_backend_set_threads(b, 1, e)) {
        sym_backend_destroy(b);
        return NULL;
    }
    return b ? sym_thread_check_wrap(b, e) : NULL;
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
