#include "actors/output_queue.h"

#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

int sym_output_queue_init(sym_output_queue *q, sym_err *e) {
    *q = (sym_output_queue){.cap = 1024, .efd = -1};
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &a);
    pthread_condattr_destroy(&a);
    if (!(q->q = malloc((size_t)q->cap * sizeof *q->q))) return sym_fail(e, "out of memory for the output queue");
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) return sym_fail(e, "cannot create the engine's eventfd");
    return 0;
}

void sym_output_queue_destroy(sym_output_queue *q) {
    if (q->efd >= 0) close(q->efd);
    free(q->q);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

void sym_output_queue_push(sym_output_queue *q, const sym_prediction *p, int n) {
    pthread_mutex_lock(&q->mu);
    if (q->len + n > q->cap) {
        long long cap = q->cap;
        while (cap < q->len + n) cap *= 2;
        sym_prediction *g = malloc((size_t)cap * sizeof *g);
        if (!g) { /* no silent drop: this is fatal */
            sym_error("out of memory for %lld waiting predictions", cap);
            abort();
        }
        for (long long i = 0; i < q->len; i++) g[i] = q->q[(q->head + i) % q->cap];
        free(q->q);
        q->q = g, q->cap = cap, q->head = 0;
    }
    for (int i = 0; i < n; i++) q->q[(q->head + q->len + i) % q->cap] = p[i];
    q->len += n;
    q->completed += n;
    uint64_t one = 1;
    if (write(q->efd, &one, sizeof one) < 0) { /* EAGAIN: the counter is already non-zero, so readable */
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static void deadline_in(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

int sym_output_queue_poll(sym_output_queue *q, sym_prediction *out, int max, int timeout_ms) {
    struct timespec until;
    if (timeout_ms > 0) deadline_in(&until, timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (!q->len && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&q->cv, &q->mu);
        else if (pthread_cond_timedwait(&q->cv, &q->mu, &until)) break;
    }
    int n = 0;
    for (; n < max && q->len; n++) {
        out[n] = q->q[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    /* the fd is readable exactly while predictions wait */
    uint64_t v;
    if (!q->len) {
        if (read(q->efd, &v, sizeof v) < 0) { /* EAGAIN: already clear */
        }
    } else {
        v = 1;
        if (write(q->efd, &v, sizeof v) < 0) {
        }
    }
    pthread_mutex_unlock(&q->mu);
    return n;
}

void sym_output_queue_wait_completed(sym_output_queue *q, long long target) {
    pthread_mutex_lock(&q->mu);
    while (q->completed < target) pthread_cond_wait(&q->cv, &q->mu);
    pthread_mutex_unlock(&q->mu);
}
