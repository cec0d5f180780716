/* The fake engine; see fake_engine.h. */
#include "tests/net/fake_engine.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/request.h"

struct sym_engine {
    sym_model_config model;
    int max_symbols, n_sym;
    char (*names)[SYM_SYMBOL_MAX + 1];
    long *steps;
    double *acc;
    long total;
    pthread_mutex_t mu;
    sym_prediction *q;
    int qn, qcap, efd;
};

sym_engine *sym_engine_create(const sym_config *cfg, sym_err *e) {
    sym_engine *g = calloc(1, sizeof *g);
    if (!g) return sym_fail(e, "out of memory"), NULL;
    g->model = (sym_model_config){.hidden = 128, .proj = 256, .depth = 2, .heads = 8, .features = 79};
    g->max_symbols = cfg->max_symbols > 0 ? cfg->max_symbols : 1024;
    g->names = calloc((size_t)g->max_symbols, sizeof *g->names);
    g->steps = calloc((size_t)g->max_symbols, sizeof *g->steps);
    g->acc = calloc((size_t)g->max_symbols, sizeof *g->acc);
    g->qcap = 1024;
    g->q = malloc((size_t)g->qcap * sizeof *g->q);
    g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&g->mu, NULL);
    if (!g->names || !g->steps || !g->acc || !g->q || g->efd < 0) {
        sym_engine_destroy(g);
        return sym_fail(e, "out of memory"), NULL;
    }
    return g;
}

int sym_engine_submit(sym_engine *g, const sym_request *r, sym_err *e) {
    if (sym_symbol_check(r->symbol, strlen(r->symbol), e)) return -1;
    if (r->n_features != g->model.features)
        return sym_fail(e, "%d features, the model takes %d", r->n_features, g->model.features);
    for (int i = 0; i < r->n_features; i++)
        if (!isfinite(r->features[i])) return sym_fail(e, "feature %d is not finite", i);
    pthread_mutex_lock(&g->mu);
    int s = 0;
    while (s < g->n_sym && strcmp(g->names[s], r->symbol)) s++;
    if (s == g->n_sym) {
        if (g->n_sym == g->max_symbols) {
            pthread_mutex_unlock(&g->mu);
            return sym_fail(e, "symbol capacity %d reached: '%s' refused", g->max_symbols, r->symbol);
        }
        strcpy(g->names[g->n_sym++], r->symbol);
    }
    if (g->qn == g->qcap) {
        sym_prediction *q = realloc(g->q, (size_t)g->qcap * 2 * sizeof *q);
        if (!q) {
            pthread_mutex_unlock(&g->mu);
            return sym_fail(e, "out of memory");
        }
        g->q = q, g->qcap *= 2;
    }
    g->steps[s]++;
    g->acc[s] += r->features[0];
    g->total++;
    sym_prediction *p = &g->q[g->qn++];
    memset(p, 0, sizeof *p);
    p->uid = r->uid;
    p->pred[0] = (double)g->steps[s], p->pred[1] = g->acc[s], p->pred[2] = s, p->pred[3] = r->features[1];
    p->t_submit_ns = p->t_done_ns = sym_now_ns();
    pthread_mutex_unlock(&g->mu);
    uint64_t one = 1;
    if (write(g->efd, &one, sizeof one) < 0) { /* counter full: already readable */
    }
    return 0;
}

int sym_engine_poll(sym_engine *g, sym_prediction *out, int max, int timeout_ms) {
    (void)timeout_ms; /* synchronous: whatever is queued is all there will be */
    pthread_mutex_lock(&g->mu);
    int n = g->qn < max ? g->qn : max;
    memcpy(out, g->q, (size_t)n * sizeof *out);
    memmove(g->q, g->q + n, (size_t)(g->qn - n) * sizeof *g->q);
    g->qn -= n;
    pthread_mutex_unlock(&g->mu);
    return n;
}

int sym_engine_ready_fd(const sym_engine *g) { return g->efd; }
int sym_engine_migrate(sym_engine *g, const char *symbol, int to_shard, sym_err *e) {
    (void)g, (void)symbol, (void)to_shard;
    return sym_fail(e, "the fake engine has one shard");
}
int sym_engine_rebalance(sym_engine *g, int n_shards, sym_err *e) {
    (void)g, (void)n_shards;
    return sym_fail(e, "the fake engine has one shard");
}
void sym_engine_drain(sym_engine *g) { (void)g; }
int sym_engine_shards_lost(sym_engine *g) { /* one shard, in this process */
    (void)g;
    return 0;
}

/* Its one shard is never lost: nothing is ever held for a restore. */
int sym_engine_hold_lost(sym_engine *g, sym_err *e) { return (void)g, (void)e, 0; }
int sym_engine_held_symbols(sym_engine *g, int upto, char (*names)[SYM_SYMBOL_MAX + 1], int max, sym_err *e) {
    return (void)g, (void)upto, (void)names, (void)max, (void)e, 0;
}
int sym_engine_restore_begin(sym_engine *g, const char *symbol, const void *state, sym_err *e) {
    return (void)g, (void)state, sym_fail(e, "restore: '%s' is not held (the fake engine loses nothing)", symbol);
}
int sym_engine_restore_step(sym_engine *g, const sym_request *q, sym_err *e) {
    return (void)g, (void)q, sym_fail(e, "restore: nothing is held");
}
int sym_engine_restore_reissue(sym_engine *g, const sym_request *q, sym_err *e) {
    return (void)g, (void)q, sym_fail(e, "restore: nothing is held");
}
int sym_engine_restore_end(sym_engine *g, const char *symbol, sym_err *e) {
    return (void)g, sym_fail(e, "restore: '%s' is not held", symbol);
}

/* A symbol's state here is its step count and its running sum. */
size_t sym_engine_slot_bytes(const sym_engine *g) {
    (void)g;
    return sizeof(int64_t) + sizeof(double);
}
int sym_engine_export_symbol(sym_engine *g, const char *symbol, void *buf, sym_err *e) {
    (void)e;
    int got = 0;
    pthread_mutex_lock(&g->mu);
    for (int s = 0; s < g->n_sym && !got; s++)
        if (!strcmp(g->names[s], symbol)) {
            int64_t steps = g->steps[s];
            memcpy(buf, &steps, sizeof steps);
            memcpy((char *)buf + sizeof steps, &g->acc[s], sizeof g->acc[s]);
            got = 1;
        }
    pthread_mutex_unlock(&g->mu);
    return got;
}
int sym_engine_import_symbol(sym_engine *g, const char *symbol, const void *state, sym_err *e) {
    if (sym_symbol_check(symbol, strlen(symbol), e)) return -1;
    pthread_mutex_lock(&g->mu);
    int s = 0;
    while (s < g->n_sym && strcmp(g->names[s], symbol)) s++;
    if (s == g->n_sym) {
        if (g->n_sym == g->max_symbols) {
            pthread_mutex_unlock(&g->mu);
            return sym_fail(e, "symbol capacity %d reached: '%s' refused", g->max_symbols, symbol);
        }
        strcpy(g->names[g->n_sym++], symbol);
    }
    int64_t steps;
    memcpy(&steps, state, sizeof steps);
    memcpy(&g->acc[s], (const char *)state + sizeof steps, sizeof g->acc[s]);
    g->steps[s] = (long)steps;
    pthread_mutex_unlock(&g->mu);
    return 0;
}
const sym_model_config *sym_engine_model(const sym_engine *g) { return &g->model; }

void sym_engine_destroy(sym_engine *g) {
    if (!g) return;
    free(g->names), free(g->steps), free(g->acc), free(g->q);
    if (g->efd >= 0) close(g->efd);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

long fake_engine_steps(sym_engine *g, const char *symbol) {
    long v = 0;
    pthread_mutex_lock(&g->mu);
    for (int s = 0; s < g->n_sym; s++)
        if (!strcmp(g->names[s], symbol)) v = g->steps[s];
    pthread_mutex_unlock(&g->mu);
    return v;
}

long fake_engine_total_steps(sym_engine *g) {
    pthread_mutex_lock(&g->mu);
    long v = g->total;
    pthread_mutex_unlock(&g->mu);
    return v;
}
