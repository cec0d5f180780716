/* Paging between a shard's slot pool and its host tier, on the engine the
 * config file describes (the CUDA engine at full size, for the figures):
 * one shard of SLOTS slots,
 *  1. round robin over 3 x SLOTS symbols, a round (3 x SLOTS requests) at
 *     a time: the mean time of a page-out and of a page-in (a slot's
 *     device -> host and host -> device copy) and the latency they add;
 *  2. a Zipf mix (s = 1.1) over 2 x SLOTS symbols, one request at a time:
 *     the share of steps that paged (the pool's miss rate under LRU) and
 *     p50/p99 of submit -> prediction.
 * Usage: bench_actors_paging CONFIG.json SLOTS REQUESTS */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/engine.h"

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static sym_request request(const sym_engine *g, int sym, uint64_t uid) {
    sym_request q = {.uid = uid, .n_features = sym_engine_model(g)->features};
    snprintf(q.symbol, sizeof q.symbol, "S%05d", sym);
    for (int i = 0; i < q.n_features; i++) q.features[i] = (float)(0.8 * sin(0.37 * (double)uid + 0.11 * i + sym));
    return q;
}

/* Submits syms[0..n-1] and waits for their predictions; latencies in lat. */
static int batch(sym_engine *g, const int *syms, int n, uint64_t uid0, uint64_t *lat, int *errors) {
    sym_err e;
    for (int i = 0; i < n; i++) {
        sym_request q = request(g, syms[i], uid0 + (uint64_t)i);
        if (sym_engine_submit(g, &q, &e)) return fprintf(stderr, "submit: %s\n", e.msg), -1;
    }
    sym_prediction p[256];
    for (int got = 0; got < n;) {
        int k = sym_engine_poll(g, p, 256, 60000);
        if (k <= 0) return fprintf(stderr, "no prediction in 60 s\n"), -1;
        for (int j = 0; j < k; j++) {
            lat[got + j] = p[j].t_done_ns - p[j].t_submit_ns;
            if (p[j].status && !(*errors)++) fprintf(stderr, "request %llu: %s\n", (unsigned long long)p[j].uid, p[j].error);
        }
        got += k;
    }
    return 0;
}

static void report(const char *what, sym_engine *g, sym_paging_stats *before, uint64_t *lat, int n, int errors) {
    sym_paging_stats st;
    sym_err e;
    sym_engine_paging(g, 0, &st, &e);
    uint64_t outs = st.page_outs - before->page_outs, ins = st.page_ins - before->page_ins;
    uint64_t steps = st.steps - before->steps, paged = st.steps_paged - before->steps_paged;
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    printf("%s: %d requests (%d errors), %llu steps, %llu paged (%.1f%%); %llu page-outs %.2f ms each, %llu page-ins "
           "%.2f ms each (%zu-byte states); latency p50 %.2f p99 %.2f max %.2f ms\n",
           what, n, errors, (unsigned long long)steps, (unsigned long long)paged, steps ? 100.0 * (double)paged / (double)steps : 0,
           (unsigned long long)outs, outs ? (double)(st.page_out_ns - before->page_out_ns) * 1e-6 / (double)outs : 0,
           (unsigned long long)ins, ins ? (double)(st.page_in_ns - before->page_in_ns) * 1e-6 / (double)ins : 0,
           sym_engine_slot_bytes(g), (double)lat[n / 2] * 1e-6, (double)lat[(int)(0.99 * (n - 1))] * 1e-6,
           (double)lat[n - 1] * 1e-6);
    *before = st;
}

int main(int argc, char **argv) {
    if (argc != 4) return fprintf(stderr, "usage: bench_actors_paging CONFIG.json SLOTS REQUESTS\n"), 2;
    sym_config cfg;
    sym_err e;
    sym_config_defaults(&cfg);
    if (sym_config_load(&cfg, argv[1], &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    int slots = atoi(argv[2]), n = atoi(argv[3]);
    if (slots < 1 || n < 1) return fprintf(stderr, "SLOTS and REQUESTS: positive integers\n"), 2;
    cfg.shard_count = 1;
    cfg.slots_per_shard = slots;
    cfg.max_symbols = 3 * slots;
    cfg.status_interval_s = 0;
    sym_engine *g = sym_engine_create(&cfg, &e);
    if (!g) return fprintf(stderr, "engine: %s\n", e.msg), 1;
    uint64_t *lat = malloc((size_t)(n + 3 * slots) * sizeof *lat);
    int *syms = malloc((size_t)(n + 3 * slots) * sizeof *syms), errors = 0, rc = 0;
    sym_paging_stats before = {0};

    /* warm-up: every symbol steps once, then round robin rounds */
    int round = 3 * slots, done = 0;
    for (int i = 0; i < round; i++) syms[i] = i;
    rc |= batch(g, syms, round, 0, lat, &errors);
    sym_engine_paging(g, 0, &before, &e);
    while (!rc && done < n) {
        rc |= batch(g, syms, round, (uint64_t)(round + done), lat + done, &errors);
        done += round;
    }
    if (!rc) report("round robin over 3x the pool", g, &before, lat, done, errors);

    /* Zipf over 2x the pool, one request at a time */
    double total = 0, *w = malloc((size_t)(2 * slots) * sizeof *w);
    for (int k = 0; k < 2 * slots; k++) total += w[k] = pow(k + 1, -1.1);
    uint64_t x = 12345;
    errors = 0;
    for (int i = 0; !rc && i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0 * total;
        int k = 0;
        while (k < 2 * slots - 1 && (u -= w[k]) > 0) k++;
        rc |= batch(g, &k, 1, (uint64_t)(1000000 + i), lat + i, &errors);
    }
    if (!rc) report("zipf 1.1 over 2x the pool, one request at a time", g, &before, lat, n, errors);
    free(w), free(lat), free(syms);
    sym_engine_destroy(g);
    return rc ? 1 : 0;
}
