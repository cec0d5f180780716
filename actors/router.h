/* The router actor (router.c says how it routes and migrates). It reaches
 * the rest of the engine only through what it is given here: mailboxes in
 * and out, the shards' mailboxes, the output queue, the control answers
 * and the slot buffers. It never touches a shard's backend. */
#ifndef SYM_ROUTER_H
#define SYM_ROUTER_H

#include <stdatomic.h>

#include "actors/control.h"
#include "actors/mailbox.h"
#include "actors/output_queue.h"
#include "actors/shard.h"
#include "actors/shard_stats.h"
#include "actors/slot_pool.h"
#include "config/config.h"

typedef struct sym_router sym_router;

/* Everything here outlives the router. */
typedef struct {
    const sym_config *cfg;
    sym_mailbox *inbox;   /* producers -> router: REQUEST, MIGRATE, REBALANCE, SHUTDOWN */
    sym_doorbell *bell;   /* the router sleeps on it: the consumer bell of inbox and of every shard's outbox */
    /* [SYM_MAX_SHARDS]: shards 0..cfg->shard_count-1 exist before the
     * router starts; a REBALANCE to n is sent only once shards 0..n-1 exist,
     * and a shard beyond n is destroyed only after the rebalance's answer
     * (the router has sent it STOP) */
    sym_shard *const *shards;
    atomic_int *where;    /* [max_symbols]: the router publishes each symbol's shard here (-1: not routed) */
    sym_output_queue *out;
    sym_control *control; /* MIGRATE and REBALANCE are answered here by their token */
    sym_slot_pool *slots; /* a migration borrows one buffer */
    /* the restore of a lost shard's symbols (router_lost.c): its calls
     * come on their own mailbox, read every turn whether or not the pool
     * of held requests is full (a restore is what empties it), and are
     * answered on their own control; NULL: none */
    sym_mailbox *restore_inbox;
    sym_control *restore_control;
} sym_router_links;

sym_router *sym_router_create(const sym_router_links *l, sym_err *e);
int sym_router_start(sym_router *r, sym_err *e);
/* Sends SHUTDOWN and joins the thread, which sends STOP to every shard it
 * still polls (the caller then joins those). Returns 1 when it did, 0 when
 * the router was not running (the shards are the caller's to stop). */
int sym_router_stop(sym_router *r);
void sym_router_destroy(sym_router *r);

/* What the router publishes for other threads (actors/status.h says how):
 * a shard's numbers (shard 0..SYM_MAX_SHARDS-1: one that never existed
 * reads as zeros, one a rebalance removed keeps its counts, at depth 0),
 * and the migrations. Any thread, while r exists; never waits on it. */
void sym_router_shard_stats(sym_router *r, int shard, sym_shard_stats *out);
void sym_router_migration_stats(sym_router *r, sym_migration_stats *out);
/* Shards in other processes lost so far; any thread, never waits. */
int sym_router_shards_lost(sym_router *r);
/* Their symbols held and restored so far; any thread, never waits. */
void sym_router_held_stats(sym_router *r, sym_held_stats *out);

#endif
