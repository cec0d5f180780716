/* The engine as a server (symserve serve): one thread, one poll() over the
 * listening socket, every client and the engine's ready fd, Redis-style.
 *
 *  - Clients connect and speak the game's JSON lines (docs/PROTOCOL.md) in
 *    the game server's role: they send `inference_request` and get, on
 *    their own connection, an `inference_response` for each of their
 *    unique_ids as soon as its prediction exists (every prediction of a
 *    client ready at one wake-up in one response). No `register` is
 *    needed; one is taken quietly, as are heartbeat, score_update and
 *    stats_update; an `error` is logged.
 *  - unique_ids belong to the client that sent them: two clients may use
 *    the same id. Each accepted row goes to the engine under an id of the
 *    server's own, mapped back to (client, unique_id) when answered. An id
 *    still in flight on its connection may not be used again there (the
 *    row is refused); once answered it may (serve keeps no window of
 *    answered ids: a re-sent request steps its symbol again).
 *  - Symbols are shared: a symbol's state advances once per request, in
 *    the order the server reads them, whichever client sent them.
 *  - Bad input is refused exactly as play refuses it (net/request_reader.h,
 *    net/protocol.h): a line that is not one well-formed message gets one
 *    `error` naming the unique_ids read in it, a bad row gets an `error`
 *    naming its id, and neither advances any state; the client goes on.
 *  - Every buffer a client can fill is bounded: a line by max_line_bytes,
 *    the answers it does not read by max_output_bytes. Past that, no more
 *    of its lines are read (backpressure: its rows wait in its socket, the
 *    others are served as before); if its answers stay past the limit for
 *    stall_s, it is dropped (a reset) with the reason logged, and the
 *    answers it still had in flight are discarded when they come.
 *  - A client that closes its side is still answered: the connection is
 *    closed once its requests in flight are answered and sent.
 *  - At most max_clients at once; one more is told so with an `error` and
 *    closed.
 *  - Every status_s, one status line: clients, requests/s, answered,
 *    refused, dropped.
 *  - With o->metrics: the loop's counters are published there once per
 *    loop turn (net/metrics.h; never waiting on a scrape), and /healthz
 *    says ok from listening until *stop.
 *  - *stop set (a signal): no more connections or lines are taken; the
 *    answers in flight are sent for up to 2 s; then every connection is
 *    closed and the call returns.
 *
 * Depends on actors/engine.h: link sym_actors (or a test double). */
#ifndef SYM_NET_SERVE_H
#define SYM_NET_SERVE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "actors/engine.h"
#include "common/err.h"
#include "net/metrics.h"

#define SYM_SERVE_MAX_OTHER (16 << 20) /* messages other than inference_request are read into a tree */

typedef struct {
    const char *host;    /* address to listen on: 127.0.0.1 */
    int port;            /* 0: any free port (on_listen says which) */
    int max_clients;     /* 64 */
    double stall_s;      /* answers past max_output_bytes this long: the client is dropped (5) */
    double status_s;     /* seconds between status lines; 0: none (10) */
    atomic_int *stop;    /* optional: set non-zero to stop (signal handler, test) */
    size_t max_line_bytes;   /* the config's net.max_line_bytes */
    size_t max_output_bytes; /* the config's net.max_output_bytes, per client */
    void (*on_listen)(int port); /* told the bound port */
    sym_metrics *metrics;        /* optional: where the counters are published */
} sym_serve_opts;

typedef struct {
    uint64_t connections, refused_connections, dropped, closed;
    uint64_t messages, requests, submitted, answered, rejected, bad_messages, overlong;
    /* rejected, by reason: rows of a line refused whole, rows refused by
     * validation, rows reusing an id in flight, rows the engine refused */
    uint64_t rejected_line, rejected_row, rejected_id_in_flight, rejected_engine;
    uint64_t in_flight;         /* rows in the engine now */
    sym_latency_hist latency;   /* submit -> answer written, per answer */
    uint64_t discarded; /* answers whose client was gone */
    uint64_t responses_sent, errors_received;
} sym_serve_stats;

void sym_serve_opts_default(sym_serve_opts *o);

/* Serves until *stop. 0 then; -1 with e when it cannot listen, a poll
 * fails or memory runs out. */
int sym_serve_run(sym_engine *g, const sym_serve_opts *o, sym_serve_stats *st, sym_err *e);

#endif
