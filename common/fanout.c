#include "common/fanout.h"

#include <string.h>

/* A worker runs its job once per generation and reports through pending. */
static void *worker_main(void *arg) {
    sym_fanout_worker *w = arg;
    sym_fanout *f = w->f;
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        while (f->generation == seen && !f->quit) pthread_cond_wait(&f->go, &f->mu);
        if (f->quit) {
            pthread_mutex_unlock(&f->mu);
            return NULL;
        }
        seen = f->generation;
        pthread_mutex_unlock(&f->mu);
        f->fn(f->ctx, w->job);
        pthread_mutex_lock(&f->mu);
        if (--f->pending == 0) pthread_cond_signal(&f->fin);
        pthread_mutex_unlock(&f->mu);
    }
}

int sym_fanout_init(sym_fanout *f, int n_jobs, sym_fanout_fn fn, void *ctx, sym_err *e) {
    memset(f, 0, sizeof *f);
    if (n_jobs < 1 || n_jobs > SYM_FANOUT_MAX) return sym_fail(e, "fan-out of %d jobs (1..%d)", n_jobs, SYM_FANOUT_MAX);
    f->fn = fn, f->ctx = ctx, f->n_jobs = n_jobs;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->go, NULL);
    pthread_cond_init(&f->fin, NULL);
    f->init = 1;
    for (int j = 1; j < n_jobs; j++) {
        f->workers[j] = (sym_fanout_worker){.f = f, .job = j};
        if (pthread_create(&f->workers[j].thread, NULL, worker_main, &f->workers[j])) {
            sym_fanout_destroy(f);
            return sym_fail(e, "cannot start worker threads");
        }
        f->n_started = j;
    }
    return 0;
}

void sym_fanout_run(sym_fanout *f) {
    if (f->n_jobs > 1) {
        pthread_mutex_lock(&f->mu);
        f->pending = f->n_jobs - 1;
        f->generation++;
        pthread_cond_broadcast(&f->go);
        pthread_mutex_unlock(&f->mu);
    }
    f->fn(f->ctx, 0);
    if (f->n_jobs > 1) {
        pthread_mutex_lock(&f->mu);
        while (f->pending) pthread_cond_wait(&f->fin, &f->mu);
        pthread_mutex_unlock(&f->mu);
    }
}

void sym_fanout_destroy(sym_fanout *f) {
    if (!f->init) return;
    pthread_mutex_lock(&f->mu);
    f->quit = 1;
    pthread_cond_broadcast(&f->go);
    pthread_mutex_unlock(&f->mu);
    for (int j = 1; j <= f->n_started; j++) pthread_join(f->workers[j].thread, NULL);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->go);
    pthread_cond_destroy(&f->fin);
    f->init = 0;
}
