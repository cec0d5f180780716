/* The engine's own overhead: one producer offers requests at a fixed rate
 * (open loop: each request is submitted at its scheduled time, whatever
 * happened to the previous ones) over many symbols; a consumer thread polls.
 * The backend is the echo backend (a few ns per row), so the latency
 * submit() -> prediction in poll() is router + shard + router + hand-off.
 *
 *   [SYM_BENCH_SPIN_US=us] bench_actors_overhead [rate ...]
 *   (default: 10000 100000 req/s, 1 s each; spin: the config default)
 *
 * Prints, per rate: p50, p99, p99.9 and max in microseconds, both to the
 * moment the router published the prediction (t_done: engine-internal) and
 * to the moment the consumer's poll() returned it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/engine.h"
#include "common/clock.h"
#include "tests/actors/echo_backend.h"

static sym_model_config model;

typedef struct {
    sym_engine *g;
    int n;
    uint64_t *internal, *polled; /* by uid */
} consumer;

static void *consume(void *arg) {
    consumer *c = arg;
    sym_prediction p[256];
    for (int got = 0; got < c->n;) {
        int k = sym_engine_poll(c->g, p, 256, -1);
        uint64_t now = sym_now_ns();
        for (int i = 0; i < k; i++, got++) {
            c->internal[p[i].uid] = p[i].t_done_ns - p[i].t_submit_ns;
            c->polled[p[i].uid] = now - p[i].t_submit_ns;
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double q_us(uint64_t *v, int n, double q) { return (double)v[(int)(q * (n - 1))] * 1e-3; }

int main(int argc, char **argv) {
    model = sym_model_config_small();
    double rates[16] = {10000, 100000};
    int n_rates = 2;
    if (argc > 1) {
        n_rates = 0;
        for (int i = 1; i < argc && n_rates < 16; i++) rates[n_rates++] = atof(argv[i]);
    }
    sym_config cfg;
    sym_echo_factory echo = {&model, &cfg, 0};
    sym_config_defaults(&cfg);
    cfg.max_symbols = 100;
    cfg.status_interval_s = 0;
    if (getenv("SYM_BENCH_SPIN_US")) cfg.idle_spin_us = atof(getenv("SYM_BENCH_SPIN_US"));
    printf("engine overhead, echo backend, 1 shard, 100 symbols, idle_spin_us %g, open-loop offered load, 1 s per rate\n",
           cfg.idle_spin_us);
    printf("%10s %8s | %28s | %28s\n", "rate/s", "n", "submit->published p50/p99/p99.9/max us",
           "submit->poll p50/p99/p99.9/max us");
    for (int r = 0; r < n_rates; r++) {
        sym_err e;
        sym_engine *g = sym_engine_create_with(&cfg, &model, sym_echo_backend_make, &echo, &e);
        if (!g) return fprintf(stderr, "%s\n", e.msg), 1;
        int n = (int)rates[r];
        consumer c = {g, n, calloc((size_t)n, 8), calloc((size_t)n, 8)};
        pthread_t t;
        pthread_create(&t, NULL, consume, &c);
        static sym_request q;
        memset(&q, 0, sizeof q);
        q.n_features = model.features;
        uint64_t t0 = sym_now_ns(), gap = (uint64_t)(1e9 / rates[r]);
        for (int i = 0; i < n; i++) {
            while (sym_now_ns() < t0 + (uint64_t)i * gap) {
            }
            q.uid = (uint64_t)i;
            snprintf(q.symbol, sizeof q.symbol, "S%02d", i % 100);
            q.features[0] = (float)i;
            if (sym_engine_submit(g, &q, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        }
        pthread_join(t, NULL);
        sym_engine_destroy(g);
        qsort(c.internal, (size_t)n, 8, cmp_u64);
        qsort(c.polled, (size_t)n, 8, cmp_u64);
        printf("%10.0f %8d | %6.1f %6.1f %6.1f %7.1f       | %6.1f %6.1f %6.1f %7.1f\n", rates[r], n,
               q_us(c.internal, n, .5), q_us(c.internal, n, .99), q_us(c.internal, n, .999), q_us(c.internal, n, 1),
               q_us(c.polled, n, .5), q_us(c.polled, n, .99), q_us(c.polled, n, .999), q_us(c.polled, n, 1));
        free(c.internal), free(c.polled);
    }
    return 0;
}
