/* CUDA: two shards (on two GPUs where present, else one), with symbols
 * migrating between them, give the outputs of a one-shard run to within
 * fp32 rounding (1e-4; synthetic small model, the golden request stream),
 * and say whether they are bitwise equal: the CUDA engine's own GEMV
 * (B < 8) sums each row the same way whatever the batch, but from B = 8
 * cuBLAS picks its kernels by batch size, and two shards step smaller
 * batches than one.
 * Then, with batches capped at 4 rows (own GEMV only), two shards spread
 * over every GPU present, with migrations and a rebalance to four shards
 * halfway, must give the one-shard outputs bit for bit: moving a state
 * between shards or GPUs changes nothing; and so must the same with each
 * shard's towers split over two backends (shards.tower_split 2). Exits 77
 * (skipped) without a CUDA device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/engine.h"
#include "common/requests_csv.h"
#include "kernels/cuda_backend.h"

typedef struct {
    int shards, gpus, max_batch, migrate_every, rebalance_at; /* rebalance_at: to 2 x shards after that row */
    int tower_split;
} run_opts;

static int run(const sym_request_file *rf, run_opts o, double *pred) {
    sym_config c;
    sym_config_defaults(&c);
    c.backend = SYM_BACKEND_CUDA;
    c.shard_count = o.shards;
    c.n_shard_devices = o.gpus;
    for (int i = 0; i < o.gpus; i++) c.shard_devices[i] = i;
    if (o.max_batch) c.max_batch = o.max_batch;
    if (o.tower_split) c.tower_split = o.tower_split;
    c.max_symbols = 64;
    c.synthetic_seed = 7;
    c.status_interval_s = 0;
    sym_err e;
    sym_engine *g = sym_engine_create(&c, &e);
    if (!g) return fprintf(stderr, "FAIL create: %s\n", e.msg), -1;
    static sym_request r;
    int F = sym_engine_model(g)->features, moves = 0, n_shards = o.shards;
    for (int i = 0; i < rf->n; i++) {
        memset(&r, 0, sizeof r);
        r.uid = (uint64_t)i;
        snprintf(r.symbol, sizeof r.symbol, "%s", rf->rows[i].symbol);
        r.n_features = F;
        memcpy(r.features, rf->rows[i].features, (size_t)F * sizeof(float));
        if (sym_engine_submit(g, &r, &e)) return fprintf(stderr, "FAIL submit: %s\n", e.msg), -1;
        if (o.migrate_every && (i + 1) % o.migrate_every == 0) {
            int cur = sym_engine_symbol_shard(g, r.symbol);
            if (cur >= 0 && sym_engine_migrate(g, r.symbol, (cur + 1) % n_shards, &e))
                return fprintf(stderr, "FAIL migrate: %s\n", e.msg), -1;
            moves++;
        }
        if (o.rebalance_at && i + 1 == o.rebalance_at) {
            if (sym_engine_rebalance(g, 2 * o.shards, &e)) return fprintf(stderr, "FAIL rebalance: %s\n", e.msg), -1;
            n_shards = 2 * o.shards;
        }
    }
    sym_engine_drain(g);
    sym_prediction p[64];
    int got = 0, n;
    while ((n = sym_engine_poll(g, p, 64, 0)) > 0)
        for (int k = 0; k < n; k++, got++) {
            if (p[k].status) return fprintf(stderr, "FAIL: %s\n", p[k].error), -1;
            memcpy(pred + p[k].uid * 4, p[k].pred, sizeof p[k].pred);
        }
    sym_engine_destroy(g);
    printf("%d shards on %d GPU%s (max batch %d), %d migrations%s: %d predictions\n", o.shards, o.gpus,
           o.gpus > 1 ? "s" : "", c.max_batch, moves, o.rebalance_at ? ", rebalanced to twice the shards" : "", got);
    return got == rf->n ? 0 : -1;
}

int main(int argc, char **argv) {
    if (sym_cuda_device_count() <= 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    if (argc < 2) return 2;
    sym_request_file rf;
    sym_err e;
    if (sym_requests_load(argv[1], 0, &rf, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    double *a = calloc((size_t)rf.n * 4, sizeof *a), *b = calloc((size_t)rf.n * 4, sizeof *b);
    /* over 2 GPUs where present: full-size batches reach every kernel on
     * the second GPU too (a per-device kernel attribute once failed there) */
    int gpus = sym_cuda_device_count() >= 2 ? 2 : 1;
    if (run(&rf, (run_opts){1, 1, 0, 0, 0, 1}, a) || run(&rf, (run_opts){2, gpus, 0, 5, 0, 1}, b)) return 1;
    double worst = 0;
    int differ = 0;
    for (int i = 0; i < rf.n * 4; i++) {
        double d = fabs(a[i] - b[i]);
        worst = d > worst || isnan(d) ? d : worst;
        differ += a[i] != b[i];
    }
    int ok = worst <= 1e-4;
    printf("%s: two shards on %d GPU%s with migrations vs one shard: max abs difference %.3g (tolerance 1e-4); %s\n",
           ok ? "PASS" : "FAIL", gpus, gpus > 1 ? "s" : "", worst, differ ? "not bitwise equal" : "bitwise equal");
    if (differ) printf("  %d of %d outputs differ in their last bits\n", differ, rf.n * 4);
    /* the exact case: batches of at most 4 rows */
    if (run(&rf, (run_opts){1, 1, 4, 0, 0, 1}, a) || run(&rf, (run_opts){2, gpus, 4, 3, rf.n / 2, 1}, b)) return 1;
    int exact = !memcmp(a, b, (size_t)rf.n * 4 * sizeof *a);
    printf("%s: max batch 4, two shards on %d GPU%s with migrations and a rebalance to four vs one shard: %s\n",
           exact ? "PASS" : "FAIL", gpus, gpus > 1 ? "s" : "", exact ? "bitwise equal" : "NOT bitwise equal");
    /* the same with each shard's towers split in two (xLSTM | the rest) */
    if (run(&rf, (run_opts){2, gpus, 4, 3, rf.n / 2, 2}, b)) return 1;
    int split_exact = !memcmp(a, b, (size_t)rf.n * 4 * sizeof *a);
    printf("%s: max batch 4, two shards with towers split over %d GPU%s, migrations, a rebalance to four: %s\n",
           split_exact ? "PASS" : "FAIL", gpus, gpus > 1 ? "s" : "", split_exact ? "bitwise equal" : "NOT bitwise equal");
    free(a);
    free(b);
    sym_requests_free(&rf);
    return ok && exact && split_exact ? 0 : 1;
}
