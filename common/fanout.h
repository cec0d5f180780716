/* A fixed set of threads that run the jobs of one round together: job 0 on
 * the caller's thread, jobs 1..n-1 on one worker thread each, and
 * sym_fanout_run returns once every job has finished. For a step that
 * splits into independent parts (the CPU backend's towers, a tower split's
 * parts); the workers sleep between rounds. */
#ifndef SYM_FANOUT_H
#define SYM_FANOUT_H

#include <pthread.h>

#include "common/err.h"

#define SYM_FANOUT_MAX 8

typedef void (*sym_fanout_fn)(void *ctx, int job);

typedef struct sym_fanout sym_fanout;
typedef struct {
    sym_fanout *f;
    int job;
    pthread_t thread;
} sym_fanout_worker;

struct sym_fanout {
    sym_fanout_fn fn;
    void *ctx;
    int n_jobs, n_started; /* n_started: workers running */
    sym_fanout_worker workers[SYM_FANOUT_MAX];
    pthread_mutex_t mu;
    pthread_cond_t go, fin;
    unsigned generation;
    int pending, quit, init;
};

/* Starts n_jobs - 1 workers (n_jobs 1..SYM_FANOUT_MAX). f must stay where it
 * is until sym_fanout_destroy. On failure nothing is left running. */
int sym_fanout_init(sym_fanout *f, int n_jobs, sym_fanout_fn fn, void *ctx, sym_err *e);

/* Runs fn(ctx, j) for every job j once, concurrently; returns when all have. */
void sym_fanout_run(sym_fanout *f);

/* Stops and joins the workers. Safe on a zeroed, never initialised f. */
void sym_fanout_destroy(sym_fanout *f);

#endif
