/* `symserve shard --listen URL`: one shard actor in its own process,
 * serving one router at a time over a nanomsg NN_PAIR socket bound at URL
 * (net/shard_wire.h has the frames, net/shard_link.h the router's side).
 *
 * The weights are loaded once, when it starts. A router's HELLO is
 * checked against this process's engine (the engine fingerprint: model
 * files, backend, precisions; and the config keys both sides must agree
 * on: max_symbols, queue_capacity, max_batch, rows_per_symbol) and refused
 * naming what differs; else a session starts (its frames through the
 * shared-memory ring an ipc:// router offers, when this process can map
 * it and shards.shm is on: net/shard_transport.h): a fresh backend and shard
 * actor (index, as the router numbers it), whose slot pool, host tier
 * (host_tier_mb) and disk tier (state.dir, state.disk_tier_mb) are this
 * process's own. The router's messages go to the shard as they come; a
 * slot's bytes travel into and out of this process's own slot buffers.
 *
 * A session ends at the router's STOP (the shard answers everything
 * before it, then BYE), or when the link is lost (nothing heard for the
 * router's timeout_ms, a frame out of sequence or unreadable, a send that
 * fails): the session's states are dropped, never served to anyone
 * again, and the process waits for the next router, as a new shard; after
 * a lost session, on a new socket (the old one can hold a connection whose
 * end has not reached this process, and a PAIR socket drops every new
 * connection while it holds one). A copy of the HELLO of the session
 * being served is nothing; a copy of one refused is refused again, and
 * counts once. */
#ifndef SYM_NET_SHARD_SERVER_H
#define SYM_NET_SHARD_SERVER_H

#include <signal.h>

#include "common/err.h"
#include "config/config.h"

typedef struct {
    const char *listen;          /* tcp://HOST:PORT or ipc://PATH */
    const sym_config *cfg;       /* the engine; the shard runs on shards.devices[0] */
    volatile sig_atomic_t *stop; /* set (by a signal handler): the server returns, a session ends as lost */
    double status_every_s;       /* a status line this often (0: none) */
    int max_sessions;            /* return after this many sessions (0: never) */
    struct sym_metrics *metrics; /* NULL, or the endpoint the server publishes its numbers to (net/metrics.h) */
} sym_shard_server_opts;

/* Serves until *stop (0) or max_sessions; -1 with e when it cannot start
 * (the model, the socket). */
int sym_shard_server_run(const sym_shard_server_opts *o, sym_err *e);

#endif
