/* The one message type every mailbox carries. Plain data only: ids, numbers
 * and inline arrays, never a pointer into another actor's memory, so that a
 * shard could later live in another process behind a socket. */
#ifndef SYM_MSG_H
#define SYM_MSG_H

#include <stdint.h>

#include "actors/engine.h"

typedef enum {
    /* producer -> router */
    SYM_MSG_REQUEST = 1, /* req, sym */
    SYM_MSG_MIGRATE,     /* sym -> shard; token */
    SYM_MSG_REBALANCE,   /* shard = new count; token */
    SYM_MSG_SHUTDOWN,
    /* router -> shard */
    SYM_MSG_STEP_REQ,    /* req, sym: join the symbol's queue */
    SYM_MSG_DRAIN_PARK,  /* sym: finish its queued requests, then park and report its slot */
    SYM_MSG_ALLOC_PARK,  /* sym: allocate and reset a slot for it, then park and report the slot */
    SYM_MSG_RESUME,      /* sym >= 0: release that symbol's slot (it moved away); then step again */
    SYM_MSG_STOP,
    /* shard -> router */
    SYM_MSG_DONE,        /* pred, sym, stats */
    SYM_MSG_PARKED,      /* sym, slot (-1: failed, error in pred.error) */
} sym_msg_type;

typedef struct sym_msg {
    int type;
    int sym;    /* symbol id */
    int shard;  /* target shard / new shard count / reporting shard */
    int32_t slot;
    uint64_t token;
    /* DONE: when the step started and how long it ran, and its batch size */
    uint64_t t_step_ns, step_ns;
    int batch;
    union {
        sym_request req;
        sym_prediction pred;
    } u;
} sym_msg;

#endif
