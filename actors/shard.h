/* A shard actor: one thread that owns one backend and the state of the
 * symbols routed to it. It talks only through its two mailboxes: requests
 * and slot messages in (msg.h), predictions and answers out. Every call on
 * its backend after creation is made on its own thread; the slot messages
 * (EXPORT, IMPORT, RELEASE) are how another actor gets at a symbol's
 * state, through a host buffer of the slot pool.
 *
 * A symbol's state is in one of the backend's slots (resident), or paged
 * out to the shard's host tier (host_tier.h) when the pool was full and
 * another symbol needed a slot: the least recently stepped symbol with no
 * queued request goes out, and comes back (exactly, as bytes) before the
 * step that needs it. With a state dir, a full host tier spills its least
 * recently stepped state to the disk tier (disk_tier.h), and a state comes
 * back from disk only if its file's checksum holds (else that symbol's
 * requests fail, naming it, and it never steps). A new symbol is refused
 * only when the pool and every tier are full. */
#ifndef SYM_SHARD_H
#define SYM_SHARD_H

#include <stdatomic.h>
#include <stdint.h>

#include "actors/mailbox.h"
#include "actors/paging.h"
#include "actors/shard_connector.h"
#include "actors/slot_pool.h"
#include "common/err.h"
#include "kernels/backend.h"

typedef struct sym_shard sym_shard;

typedef struct sym_shard_params {
    int index;           /* reported in every message it sends */
    int n_ids;           /* symbol ids 0..n_ids-1 (max_symbols) */
    int queue_cap;       /* requests in flight to it at most (the router's credit) */
    int max_batch;       /* rows per step at most (also bounded by the backend's) */
    int rows_per_symbol; /* waiting requests of one symbol a step takes */
    int features;
    double idle_spin_us; /* polls this long when idle before it sleeps */
    int host_tier_mb;    /* the host tier's bound in MiB (0: none); the slot pool is the backend's n_slots */
    const char *state_dir; /* NULL or empty: no disk tier; else its files go under <state_dir>/pages/shard-<index> */
    int disk_tier_mb;    /* the disk tier's bound in MiB (0: none) */
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

/* Its paging counts so far; any thread. */
void sym_shard_paging(sym_shard *s, sym_paging_stats *out);

/* A shard whose actor runs in another process (net/shard_link.h has the
 * nanomsg one). The router sees it as any shard: the same two mailboxes.
 * run (on the shard's thread) carries the inbox's messages to the remote
 * actor and its answers into the outbox until it has handled STOP, then
 * returns; the slot buffers EXPORT and IMPORT name are the router's (the
 * link moves their bytes). paging gives the remote shard's counts as last
 * heard (any thread); destroy frees ctx after the thread is joined. */
typedef struct {
    void *ctx;
    void (*run)(void *ctx, sym_mailbox *inbox, sym_mailbox *outbox, sym_doorbell *inbox_bell);
    void (*paging)(void *ctx, sym_paging_stats *out);
    void (*destroy)(void *ctx);
} sym_shard_remote;

/* On success the shard owns r->ctx (destroyed with it); on failure it is
 * the caller's. */
sym_shard *sym_shard_create_remote(const sym_shard_params *p, const sym_shard_remote *r, sym_doorbell *router_bell,
                                   sym_err *e);


/* Sends STOP: only for whoever is the inbox's one producer now. */
void sym_shard_stop(sym_shard *s);
/* Joins the thread once it has handled STOP (what it sent stays in the
 * outbox), for a consumer that drains the outbox after the last message. */
void sym_shard_join(sym_shard *s);
/* Joins the thread (after a STOP; not needed when it never started or was
 * joined) and frees the shard and its backend. */
void sym_shard_join_destroy(sym_shard *s);

#endif
