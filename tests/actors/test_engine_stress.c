/* Concurrency stress: several producer threads submit tens of thousands of
 * requests over many symbols while a control thread migrates symbols and
 * rebalances (3 -> 5 -> 2 -> 3 shards). The echo backend's outputs carry
 * each symbol's step count, so the consumer can prove that nothing was lost,
 * duplicated or reordered: request k of a symbol must see step count k and
 * the running sum 0+1+...+k. Every backend call must come from its shard's
 * thread (thread_check_backend.h): migrations and rebalances move state by
 * messages, never by one actor calling another's backend. An exporter
 * thread meanwhile copies symbols' states out as a snapshot does; the
 * backend's exports land a few polls after they begin, so shards step
 * while exports are under way (as on the CUDA engine), and every state
 * exported must be whole: n steps and the sum of the first n. Meant to run
 * under ThreadSanitizer too. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/engine.h"
#include "tests/actors/echo_backend.h"
#include "tests/actors/thread_check_backend.h"

#define PRODUCERS 4
#define SYMS_PER_PRODUCER 40
#define PER_PRODUCER 6000

static sym_model_config model;
static atomic_int producers_done, control_ops;
#define CONTROL_OPS 160 /* migrations, with a rebalance every 50 */

typedef struct {
    sym_engine *g;
    int p;
} producer_arg;

static void symbol_name(char *out, int p, int s) { sprintf(out, "P%d_SYM_%03d", p, s); }

static void *produce(void *arg) {
    producer_arg *a = arg;
    sym_request r;
    memset(&r, 0, sizeof r);
    r.n_features = model.features;
    for (int j = 0; j < PER_PRODUCER; j++) {
        /* keep pace with the control thread, so that its migrations and
         * rebalances happen while the stream runs (also under TSan, whose
         * slowdown differs per thread) */
        if (j % 300 == 0)
            while (atomic_load(&control_ops) < j / 300 * 8) sched_yield();
        int s = j % SYMS_PER_PRODUCER, k = j / SYMS_PER_PRODUCER;
        r.uid = (uint64_t)a->p * 1000000u + (uint64_t)j;
        symbol_name(r.symbol, a->p, s);
        r.features[0] = (float)k;
        r.features[model.features - 1] = (float)j;
        sym_err e;
        if (sym_engine_submit(a->g, &r, &e)) {
            fprintf(stderr, "FAIL submit: %s\n", e.msg);
            exit(1);
        }
    }
    atomic_fetch_add(&producers_done, 1);
    return NULL;
}

static void *control(void *arg) {
    sym_engine *g = arg;
    uint64_t x = 88172645463325252ull;
    int step = 0;
    static const int counts[] = {5, 2, 3};
    while (atomic_load(&producers_done) < PRODUCERS || step < CONTROL_OPS) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char name[32];
        symbol_name(name, (int)(x % PRODUCERS), (int)((x >> 8) % SYMS_PER_PRODUCER));
        sym_err e;
        int n = sym_engine_shard_count(g);
        if (sym_engine_symbol_shard(g, name) >= 0 && sym_engine_migrate(g, name, (int)((x >> 20) % (uint64_t)n), &e)) {
            fprintf(stderr, "FAIL migrate %s: %s\n", name, e.msg);
            exit(1);
        }
        if (++step % 50 == 0 && step / 50 <= 3 && sym_engine_rebalance(g, counts[step / 50 - 1], &e)) {
            fprintf(stderr, "FAIL rebalance: %s\n", e.msg);
            exit(1);
        }
        atomic_fetch_add(&control_ops, 1);
    }
    printf("control: %d migrations, %d rebalances\n", step, step / 50 < 3 ? step / 50 : 3);
    return NULL;
}

static atomic_int exports_bad;

/* Exports random symbols until the producers are done: each state copied
 * must be one between two steps of its symbol. */
static void *exporter(void *arg) {
    sym_engine *g = arg;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int n = 0, got = 0;
    double st[2];
    while (atomic_load(&producers_done) < PRODUCERS) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        char name[32];
        symbol_name(name, (int)(x % PRODUCERS), (int)((x >> 8) % SYMS_PER_PRODUCER));
        sym_err e;
        int rc = sym_engine_export_symbol(g, name, st, &e);
        n++;
        if (rc < 0) {
            if (atomic_fetch_add(&exports_bad, 1) < 3) fprintf(stderr, "FAIL export %s: %s\n", name, e.msg);
            continue;
        }
        if (!rc) continue;
        got++;
        if (st[0] < 0 || st[0] > PER_PRODUCER / SYMS_PER_PRODUCER || st[1] != st[0] * (st[0] - 1) / 2)
            if (atomic_fetch_add(&exports_bad, 1) < 3)
                fprintf(stderr, "FAIL export %s: %g steps with the sum %g, not a state between two steps\n", name, st[0],
                        st[1]);
    }
    printf("exporter: %d exports, %d states\n", n, got);
    return NULL;
}

int main(void) {
    model = sym_model_config_small();
    sym_config cfg;
    sym_echo_factory echo = {&model, &cfg, 3};
    sym_thread_check_factory checked = {sym_echo_backend_make, &echo};
    sym_config_defaults(&cfg);
    cfg.shard_count = 3;
    cfg.max_symbols = PRODUCERS * SYMS_PER_PRODUCER;
    cfg.queue_capacity = 256; /* small, so that push-back happens */
    cfg.max_batch = 16;
    cfg.status_interval_s = 0;
    sym_err e;
    sym_engine *g = sym_engine_create_with(&cfg, &model, sym_thread_check_make, &checked, &e);
    if (!g) {
        fprintf(stderr, "FAIL create: %s\n", e.msg);
        return 1;
    }
    pthread_t prod[PRODUCERS], ctl;
    producer_arg args[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        args[p] = (producer_arg){g, p};
        pthread_create(&prod[p], NULL, produce, &args[p]);
    }
    pthread_create(&ctl, NULL, control, g);
    pthread_t exp;
    pthread_create(&exp, NULL, exporter, g);

    const int total = PRODUCERS * PER_PRODUCER;
    char *seen = calloc(total, 1);
    int got = 0, bad = 0;
    sym_prediction out[128];
    while (got < total) {
        int n = sym_engine_poll(g, out, 128, 5000);
        if (n == 0) {
            fprintf(stderr, "FAIL: no prediction for 5 s with %d of %d received\n", got, total);
            return 1;
        }
        for (int i = 0; i < n; i++, got++) {
            const sym_prediction *q = &out[i];
            int p = (int)(q->uid / 1000000u), j = (int)(q->uid % 1000000u);
            if (p >= PRODUCERS || j >= PER_PRODUCER || q->status) {
                if (bad++ < 5) fprintf(stderr, "FAIL: uid %llu status %d %s\n", (unsigned long long)q->uid, q->status, q->error);
                continue;
            }
            int idx = p * PER_PRODUCER + j, k = j / SYMS_PER_PRODUCER;
            if (seen[idx]++) {
                if (bad++ < 5) fprintf(stderr, "FAIL: uid %llu twice\n", (unsigned long long)q->uid);
                continue;
            }
            double sum = (double)k * (k + 1) / 2;
            if (q->pred[0] != k || q->pred[1] != k || q->pred[2] != j || q->pred[3] != sum) {
                if (bad++ < 5)
                    fprintf(stderr, "FAIL: uid %llu (request %d of its symbol) saw step %g, sum %g (want %g)\n",
                            (unsigned long long)q->uid, k, q->pred[0], q->pred[3], sum);
            }
        }
    }
    for (int p = 0; p < PRODUCERS; p++) pthread_join(prod[p], NULL);
    pthread_join(ctl, NULL);
    pthread_join(exp, NULL);
    sym_engine_drain(g);
    if (sym_engine_poll(g, out, 128, 0) != 0) bad++, fprintf(stderr, "FAIL: extra predictions\n");
    for (int i = 0; i < total; i++)
        if (!seen[i]) bad++;
    sym_engine_destroy(g);
    free(seen);
    if (sym_thread_check_violations()) {
        bad++;
        fprintf(stderr, "FAIL: %ld backend calls off their shard's thread: %s\n", sym_thread_check_violations(),
                sym_thread_check_report());
    }
    if (atomic_load(&exports_bad)) bad++;
    /* exports that landed with steps between: the shards served on while
     * states were copied (with 160 migrations and the exporter's copies
     * under load, some must have) */
    printf("%ld exports overlapped steps\n", sym_echo_exports_overlapped());
    if (!sym_echo_exports_overlapped()) bad++, fprintf(stderr, "FAIL: no export overlapped a step\n");
    printf("%d requests, %d problems\n", total, bad);
    return bad ? 1 : 0;
}
