#include "actors/mailbox.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "common/clock.h"

CK_RING_PROTOTYPE(symmsg, sym_msg)

void sym_doorbell_init(sym_doorbell *d) {
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &a);
    pthread_condattr_destroy(&a);
    atomic_init(&d->seq, 0);
    atomic_init(&d->sleepers, 0);
}

void sym_doorbell_destroy(sym_doorbell *d) {
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
}

void sym_doorbell_ring(sym_doorbell *d) {
    atomic_fetch_add(&d->seq, 1);
    /* seq_cst on both sides (Dekker): either we see the sleeper, or the
     * sleeper sees the new seq before it waits */
    if (atomic_load(&d->sleepers)) {
        pthread_mutex_lock(&d->mu);
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
    }
}

void sym_doorbell_wait(sym_doorbell *d, unsigned seen, uint64_t timeout_ns) {
    struct timespec until;
    if (timeout_ns) {
        uint64_t t = sym_now_ns() + timeout_ns;
        until.tv_sec = (time_t)(t / 1000000000ull), until.tv_nsec = (long)(t % 1000000000ull);
    }
    pthread_mutex_lock(&d->mu);
    atomic_fetch_add(&d->sleepers, 1);
    while (atomic_load(&d->seq) == seen) {
        if (!timeout_ns) pthread_cond_wait(&d->cv, &d->mu);
        else if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT) break;
    }
    atomic_fetch_sub(&d->sleepers, 1);
    pthread_mutex_unlock(&d->mu);
}

int sym_mailbox_init(sym_mailbox *m, int capacity, int multi_producer, sym_doorbell *consumer_bell, sym_err *e) {
    unsigned size = 4;
    while (size < (unsigned)capacity + 1) size *= 2;
    m->buf = calloc(size, sizeof *m->buf);
    if (!m->buf) return sym_fail(e, "out of memory for a mailbox of %u messages", size);
    ck_ring_init(&m->ring, size);
    m->multi_producer = multi_producer;
    m->capacity = (int)size - 1;
    m->consumer_bell = consumer_bell;
    sym_doorbell_init(&m->space_bell);
    atomic_init(&m->full_waiters, 0);
#ifdef SYM_TSAN_RINGS
    pthread_mutex_init(&m->tsan_mu, NULL);
#endif
    return 0;
}

void sym_mailbox_destroy(sym_mailbox *m) {
    free(m->buf);
    m->buf = NULL;
    sym_doorbell_destroy(&m->space_bell);
#ifdef SYM_TSAN_RINGS
    pthread_mutex_destroy(&m->tsan_mu);
#endif
}

#ifdef SYM_TSAN_RINGS
#define RING_LOCK(m) pthread_mutex_lock(&(m)->tsan_mu)
#define RING_UNLOCK(m) pthread_mutex_unlock(&(m)->tsan_mu)
#else
#define RING_LOCK(m) (void)0
#define RING_UNLOCK(m) (void)0
#endif

int sym_mailbox_try_push(sym_mailbox *m, const sym_msg *msg) {
    sym_msg *copy = (sym_msg *)msg; /* ck's prototype lacks const; it only reads it */
    RING_LOCK(m);
    bool ok = m->multi_producer ? ck_ring_enqueue_mpsc_symmsg(&m->ring, m->buf, copy)
                                : ck_ring_enqueue_spsc_symmsg(&m->ring, m->buf, copy);
    RING_UNLOCK(m);
    if (ok) sym_doorbell_ring(m->consumer_bell);
    return ok;
}

void sym_mailbox_push(sym_mailbox *m, const sym_msg *msg) {
    for (int spins = 0;; spins++) {
        if (sym_mailbox_try_push(m, msg)) return;
        if (spins < 64) {
            sched_yield();
            continue;
        }
        /* announce ourselves before the last try, so a pop after it rings */
        atomic_fetch_add(&m->full_waiters, 1);
        unsigned seen = sym_doorbell_seq(&m->space_bell);
        if (sym_mailbox_try_push(m, msg)) {
            atomic_fetch_sub(&m->full_waiters, 1);
            return;
        }
        /* the timeout only guards against a wake-up lost to ck's relaxed
         * ring indices; the consumer rings space_bell after each pop */
        sym_doorbell_wait(&m->space_bell, seen, 1000000);
        atomic_fetch_sub(&m->full_waiters, 1);
    }
}

int sym_mailbox_pop(sym_mailbox *m, sym_msg *out) {
    RING_LOCK(m);
    bool ok = ck_ring_dequeue_spsc_symmsg(&m->ring, m->buf, out);
    RING_UNLOCK(m);
    if (ok && atomic_load(&m->full_waiters)) sym_doorbell_ring(&m->space_bell);
    return ok;
}

unsigned sym_mailbox_size(sym_mailbox *m) {
    RING_LOCK(m);
    unsigned n = ck_ring_size(&m->ring);
    RING_UNLOCK(m);
    return n;
}
