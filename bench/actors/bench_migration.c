/* What one live migration costs: a symbol's state moved between two shards
 * while the engine runs (the source drains the symbol's requests and exports
 * its slot into a host buffer on its own thread, the target imports it on
 * its own), timed around sym_engine_migrate, and the latency of that
 * symbol's next request against its latency without a migration. Two shards
 * on the devices given (one or two GPUs: device -> host -> device either
 * way), or the CPU backend without a GPU. With ENDPOINT0,ENDPOINT1 the two
 * shards are `symserve shard` processes there (started by the caller with
 * the same model, backend and precision, and --num-symbols 2): the slot
 * travels over nanomsg (net/shard_link.h).
 *
 *   bench_migration [small|full] [repetitions] [gpus] [ENDPOINT0,ENDPOINT1]   */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/engine.h"
#include "common/clock.h"
#include "kernels/cuda_backend.h"
#include "kernels/state_layout.h"
#include "net/shard_link.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Submits r and waits for its prediction; returns its latency in ms (<0 on error). */
static double one_request(sym_engine *g, sym_request *r) {
    sym_err e;
    static uint64_t uid;
    r->uid = ++uid;
    for (int i = 0; i < r->n_features; i++) r->features[i] = (float)sin(0.37 * (double)(uid * 79 + (uint64_t)i));
    if (sym_engine_submit(g, r, &e)) return fprintf(stderr, "submit: %s\n", e.msg), -1;
    sym_prediction p;
    for (;;) {
        int n = sym_engine_poll(g, &p, 1, 1000);
        if (n < 0) return -1;
        if (n == 1) return p.status ? -1 : (double)(p.t_done_ns - p.t_submit_ns) * 1e-6;
    }
}

int main(int argc, char **argv) {
    const char *size = argc > 1 ? argv[1] : "small";
    int reps = argc > 2 ? atoi(argv[2]) : 10, gpus = argc > 3 ? atoi(argv[3]) : 1;
    if (reps < 1 || reps > 1000 || gpus < 1 || gpus > 2) return fprintf(stderr, "bad arguments\n"), 2;
    sym_config c;
    sym_config_defaults(&c);
    c.shard_count = 2;
    c.max_symbols = 2;
    c.status_interval_s = 0;
    c.synthetic_seed = 1;
    c.synthetic_full = !strcmp(size, "full");
    c.n_shard_devices = gpus;
    for (int i = 0; i < gpus; i++) c.shard_devices[i] = i;
    sym_err e;
    sym_engine *g;
    if (argc > 4) { /* shard processes */
        const char *comma = strchr(argv[4], ',');
        if (!comma || (size_t)(comma - argv[4]) >= SYM_ENDPOINT_MAX || strlen(comma + 1) >= SYM_ENDPOINT_MAX)
            return fprintf(stderr, "expected ENDPOINT0,ENDPOINT1\n"), 2;
        snprintf(c.shard_endpoints[0], SYM_ENDPOINT_MAX, "%.*s", (int)(comma - argv[4]), argv[4]);
        snprintf(c.shard_endpoints[1], SYM_ENDPOINT_MAX, "%s", comma + 1);
        c.n_shard_endpoints = 2;
        c.backend = sym_cuda_device_count() > 0 ? SYM_BACKEND_CUDA : SYM_BACKEND_CPU;
    }
    g = sym_shard_link_engine(&c, c.backend == SYM_BACKEND_CUDA, &e);
    if (!g) return fprintf(stderr, "engine: %s\n", e.msg), 1;
    const sym_model_config *mc = sym_engine_model(g);
    sym_state_layout L;
    sym_state_layout_init(&L, mc, &e);
    int cuda = sym_cuda_device_count() > 0;
    double slot_mb = (double)L.numel * (cuda ? 4 : 8) * 1e-6;
    static sym_request r;
    snprintf(r.symbol, sizeof r.symbol, "SYM_000");
    r.n_features = mc->features;
    double base[64], mig[1000], next[1000];
    for (int i = 0; i < 5; i++) one_request(g, &r); /* warm: slot allocated, state non-zero */
    for (int i = 0; i < 64; i++) base[i] = one_request(g, &r);
    for (int i = 0; i < reps; i++) {
        int from = sym_engine_symbol_shard(g, r.symbol);
        uint64_t t0 = sym_now_ns();
        if (sym_engine_migrate(g, r.symbol, 1 - from, &e)) return fprintf(stderr, "migrate: %s\n", e.msg), 1;
        mig[i] = (double)(sym_now_ns() - t0) * 1e-6;
        next[i] = one_request(g, &r);
        if (sym_engine_symbol_shard(g, r.symbol) == from) return fprintf(stderr, "the symbol did not move\n"), 1;
    }
    qsort(base, 64, sizeof *base, cmp);
    qsort(mig, (size_t)reps, sizeof *mig, cmp);
    qsort(next, (size_t)reps, sizeof *next, cmp);
    printf("# %s model on %s (%d GPU%s), slot %.1f MB, %d migrations between 2 shards%s\n", size,
           cuda ? "cuda" : "cpu", cuda ? gpus : 0, gpus > 1 ? "s" : "", slot_mb, reps,
           argc > 4 ? " in other processes" : "");
    printf("migration ms: median %.3f min %.3f max %.3f (%.1f GB/s of slot moved at the median)\n", mig[reps / 2], mig[0],
           mig[reps - 1], slot_mb * 1e-3 / (mig[reps / 2] * 1e-3));
    printf("request latency ms: without migration median %.3f; first request after a migration median %.3f max %.3f\n",
           base[32], next[reps / 2], next[reps - 1]);
    sym_state_layout_free(&L);
    sym_engine_destroy(g);
    return 0;
}
