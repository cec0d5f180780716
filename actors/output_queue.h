/* The predictions waiting for poll(): the router pushes, the consumer
 * polls. Not bounded (it holds submitted - polled predictions), so the
 * router never waits for a slow consumer and one thread may both submit and
 * poll. An eventfd is readable exactly while predictions wait. */
#ifndef SYM_OUTPUT_QUEUE_H
#define SYM_OUTPUT_QUEUE_H

#include <pthread.h>

#include "common/err.h"
#include "common/request.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sym_prediction *q; /* ring of cap */
    long long cap, head, len;
    long long completed; /* pushed since creation */
    int efd;
} sym_output_queue;

int sym_output_queue_init(sym_output_queue *q, sym_err *e);
void sym_output_queue_destroy(sym_output_queue *q);

/* Appends n predictions (grows; running out of memory aborts: nothing is
 * dropped silently). */
void sym_output_queue_push(sym_output_queue *q, const sym_prediction *p, int n);

/* Up to max predictions, waiting up to timeout_ms (0: don't wait, <0:
 * forever) for the first one. Returns how many were written. */
int sym_output_queue_poll(sym_output_queue *q, sym_prediction *out, int max, int timeout_ms);

/* Waits until target predictions were pushed since creation. */
void sym_output_queue_wait_completed(sym_output_queue *q, long long target);

#endif
