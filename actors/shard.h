/* A shard actor: one thread that owns one backend and the state slots of the
 * symbols routed to it. It talks only through its two mailboxes: requests
 * and slot messages in (msg.h), predictions and answers out. Every call on
 * its backend after creation is made on its own thread; the slot messages
 * (EXPORT, IMPORT, RELEASE) are how another actor gets at a symbol's
 * state, through a host buffer of the slot pool. */
#ifndef SYM_SHARD_H
#define SYM_SHARD_H

#include "actors/mailbox.h"
#include "actors/slot_pool.h"
#include "common/err.h"
#include "kernels/backend.h"

typedef struct sym_shard sym_shard;

typedef struct {
    int index;           /* reported in every message it sends */
    int n_ids;           /* symbol ids 0..n_ids-1 (max_symbols) */
    int queue_cap;       /* requests in flight to it at most (the router's credit) */
    int max_batch;       /* rows per step at most (also bounded by the backend's) */
    int rows_per_symbol; /* waiting requests of one symbol a step takes */
    int features;
    double idle_spin_us; /* polls this long when idle before it sleeps */
} sym_shard_params;

/* The shard takes b (destroys it with itself) on success; on failure b stays
 * the caller's. Its outbox rings router_bell; slots lends the buffers that
 * EXPORT and IMPORT name; both outlive the shard. Calls b's prepare_runs
 * (when rows_per_symbol > 1) before the shard's thread exists. */
sym_shard *sym_shard_create(const sym_shard_params *p, sym_backend *b, sym_doorbell *router_bell,
                            sym_slot_pool *slots, sym_err *e);
int sym_shard_start(sym_shard *s, sym_err *e);

/* router -> shard (one producer) and shard -> router (one consumer). */
sym_mailbox *sym_shard_inbox(sym_shard *s);
sym_mailbox *sym_shard_outbox(sym_shard *s);

/* Sends STOP: only for whoever is the inbox's one producer now. */
void sym_shard_stop(sym_shard *s);
/* Joins the thread (after a STOP; not needed when it never started) and
 * frees the shard and its backend. */
void sym_shard_join_destroy(sym_shard *s);

#endif
