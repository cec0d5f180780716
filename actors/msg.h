/* The one message type every mailbox carries. Plain data only: ids, numbers
 * and inline arrays, never a pointer into another actor's memory, so that a
 * shard could later live in another process behind a socket. A slot's
 * state travels in a host buffer of the slot pool (slot_pool.h), which a
 * message names by index. */
#ifndef SYM_MSG_H
#define SYM_MSG_H

#include <stdint.h>

#include "common/request.h"

typedef enum {
    /* producer -> router */
    SYM_MSG_REQUEST = 1, /* req, sym */
    SYM_MSG_MIGRATE,     /* sym -> shard; token */
    SYM_MSG_REBALANCE,   /* shard = new count; token */
    SYM_MSG_SHUTDOWN,
    SYM_MSG_EXPORT_SYMBOL, /* sym, token, io.buf: the symbol's state into the buffer */
    SYM_MSG_IMPORT_SYMBOL, /* sym, token, io.buf, io.symbol: the buffer into the symbol's state */
    /* router -> shard */
    SYM_MSG_STEP_REQ,    /* req, sym: join the symbol's queue */
    SYM_MSG_EXPORT,      /* sym, token, io.buf, io.after_queued: copy sym's state into the buffer, on the shard's
                          * thread between two steps: now, or once sym's queued requests are stepped */
    SYM_MSG_IMPORT,      /* sym, token, io.buf, io.after_queued: give sym a slot here (or keep its own) holding
                          * the buffer's bytes; now, or once sym's queued requests are stepped */
    SYM_MSG_RELEASE,     /* sym: free sym's slot (its state lives on elsewhere); ignored while sym has requests here */
    SYM_MSG_STOP,
    SYM_MSG_LOST_SEEN,   /* to a lost shard's link, after its LOST: the router sends no request of a symbol whose
                          * state was lost from here on (FIFO), so the link may join the shard process again */
    /* shard -> router */
    SYM_MSG_DONE,        /* pred, sym, stats */
    SYM_MSG_EXPORTED,    /* sym, slot, token, io: the answer to EXPORT (io.buf as sent) */
    SYM_MSG_IMPORTED,    /* sym, slot, token, io: the answer to IMPORT (io.buf as sent) */
    SYM_MSG_LOST,        /* a shard in another process is lost (net/shard_link.h): the state of its symbols is
                          * gone; it comes before the failed answers of what was in flight */
    /* restorer -> router, on the restore mailbox (router.h); the types above keep their numbers (the wire) */
    SYM_MSG_HOLD_LOST,       /* token: from now on a lost shard's symbols are held for a restore, not refused */
    SYM_MSG_HELD_LIST,       /* token, io.buf, shard = a loss count: the ids (int32) of the held symbols whose
                              * loss was counted as one of the first that many */
    SYM_MSG_RESTORE_BEGIN,   /* sym, token, io.buf (-1: the initial state): a held symbol placed on a live shard,
                              * with that state */
    SYM_MSG_RESTORE_STEP,    /* sym, req: an answered step of it, from the log, stepped again; not published */
    SYM_MSG_RESTORE_REISSUE, /* sym, req: an unanswered request of it, from the log: the next one its lost shard
                              * took with it, or one already held (ignored) */
    SYM_MSG_RESTORE_END,     /* sym, token: once its steps are answered, the taken requests go, then the held ones */
    /* shard -> router, from a lost shard's link */
    SYM_MSG_LOST_SETTLED,    /* every message sent before LOST_SEEN has had its (failed) answer */
    SYM_MSG_JOINED,          /* the shard process serves again, as a new, empty shard */
} sym_msg_type;

/* EXPORT / IMPORT and their answers. The buffer stays the sender's: the
 * shard touches it only between taking the request and sending the answer. */
typedef struct {
    int32_t buf;          /* index in the slot pool */
    int32_t after_queued; /* EXPORT, IMPORT: 1 waits for sym's queued requests (one such message waits per shard
                           * at most: a second is refused) */
    int32_t status;       /* answers: 0 done; 1 (EXPORTED) no state for sym here, the buffer is untouched;
                           * -1 failed, error says why (a refused IMPORT gives sym no new slot) */
    int64_t steps;        /* EXPORTED: the state's step count (the slot header of state_layout.h), -1 when the
                           * backend's slots have no such header */
    char error[160];
    char symbol[SYM_SYMBOL_MAX + 1]; /* IMPORT_SYMBOL: its name (the router places a symbol new to it by name) */
} sym_slot_io;

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
        sym_slot_io io;
    } u;
} sym_msg;

#endif
