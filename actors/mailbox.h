/* A bounded mailbox: a concurrencykit ring of sym_msg values (copied in and
 * out, so no ownership crosses actors) plus two doorbells, one the consumer
 * sleeps on when the ring is empty and one the producers sleep on when it is
 * full (push-back: a full mailbox blocks, never drops).
 *
 * Producer discipline is fixed at creation: single producer (ck's spsc
 * operations) or several (mpsc). There is always a single consumer.
 *
 * Under ThreadSanitizer (SYM_TSAN_RINGS) every ring operation also takes the
 * mailbox's lock: ck's fences are inline asm TSan cannot see, and the lock
 * gives it the same happens-before edge, so the rest of the engine is still
 * checked. */
#ifndef SYM_MAILBOX_H
#define SYM_MAILBOX_H

#include <ck_ring.h>
#include <pthread.h>
#include <stdatomic.h>

#include "actors/msg.h"
#include "common/err.h"

/* A wake-up for one sleeping thread. ring() is cheap when nobody sleeps. */
typedef struct sym_doorbell {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint seq;
    atomic_int sleepers;
} sym_doorbell;

void sym_doorbell_init(sym_doorbell *d);
void sym_doorbell_destroy(sym_doorbell *d);
static inline unsigned sym_doorbell_seq(sym_doorbell *d) { return atomic_load(&d->seq); }
void sym_doorbell_ring(sym_doorbell *d);
/* Sleeps until the sequence moves past seen (or timeout_ns passes; 0: no limit). */
void sym_doorbell_wait(sym_doorbell *d, unsigned seen, uint64_t timeout_ns);

typedef struct {
    ck_ring_t ring;
    sym_msg *buf;
    int multi_producer;
    int capacity; /* messages it holds (ring size - 1) */
    sym_doorbell *consumer_bell; /* rung after each push; may be shared by several mailboxes */
    sym_doorbell space_bell;     /* rung after a pop when a producer waits for space */
    atomic_int full_waiters;
#ifdef SYM_TSAN_RINGS
    pthread_mutex_t tsan_mu;
#endif
} sym_mailbox;

/* capacity: messages it must hold at least (rounded up to a power of two). */
int sym_mailbox_init(sym_mailbox *m, int capacity, int multi_producer, sym_doorbell *consumer_bell, sym_err *e);
void sym_mailbox_destroy(sym_mailbox *m);

/* 1 when pushed, 0 when full. Rings the consumer's bell on success. */
int sym_mailbox_try_push(sym_mailbox *m, const sym_msg *msg);
/* Blocks while full. */
void sym_mailbox_push(sym_mailbox *m, const sym_msg *msg);
/* 1 when a message was taken, 0 when empty. */
int sym_mailbox_pop(sym_mailbox *m, sym_msg *out);
unsigned sym_mailbox_size(sym_mailbox *m);

#endif
