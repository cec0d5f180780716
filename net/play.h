/* The competition client's event loop (symserve play): one thread, one
 * poll() over the server socket and the engine's ready fd, Redis-style.
 *
 *  - connects, sends `register`, then feeds every request row to the engine
 *    the moment its message is read (rows in list order, so each symbol's
 *    state advances in the order received);
 *  - answers each unique_id exactly once, as soon as its prediction exists:
 *    every prediction the engine has ready at one wake-up goes out in one
 *    `inference_response`;
 *  - exactly once per unique_id, across connections: the ids accepted are
 *    kept in a window (net/uid_window.h, the last id_window of them) with
 *    their answers. A request sent again (the same id, symbol and features:
 *    a server re-sending what it saw unanswered, on this connection or
 *    after a reconnect) never steps its symbol again: it is answered with
 *    the same values from the window or, still in flight, once when done.
 *    Another request under an id answered on an earlier connection is
 *    served as a new one (a restarted server numbers from the start again);
 *    under an id in flight or used on this connection, it is refused;
 *  - a row that cannot be served (bad unique_id, symbol, feature count or
 *    value, the engine's refusal such as symbol capacity) gets an `error`
 *    naming the unique_id and the reason in its details, and advances no
 *    state; a line that is not one well-formed message
 *    (net/request_reader.h, net/protocol.h: malformed or trailing JSON,
 *    unknown message_type or key, unequal lists, over max_line_bytes) gets
 *    one `error` naming the unique_ids read in it, and none of its requests
 *    is served. The loop keeps serving either way;
 *  - heartbeat, score_update and stats_update need no answer: accepted
 *    quietly (score updates are logged);
 *  - every buffer the server can fill is bounded: a line by max_line_bytes,
 *    the answers it does not read by max_output_bytes (past it, the
 *    connection is dropped with the reason logged), the ids by id_window;
 *  - sends a heartbeat every heartbeat_s and logs score updates;
 *  - when the server goes away, reconnects with exponential backoff. Symbol
 *    states live in the engine and are kept; answers of requests from the
 *    lost connection are kept in the window for the server to ask again;
 *  - with a store (state/store.h, `--state-dir`): first rebuilds the
 *    engine's symbols and the window of ids from its log; then logs every
 *    accepted request, and every answer before it is sent, so that a
 *    process killed at any point and started again goes on as if it had
 *    not been. A log that cannot be written stops play: nothing is
 *    answered that could be lost. A shard process that is lost takes
 *    the state of its symbols with it: the engine holds their requests
 *    while the store restores those symbols onto the live shards from
 *    its snapshot and log, and play serves the others meanwhile; a
 *    restore that fails stops play (exit 1), and play started again
 *    rebuilds every symbol from the same files.
 *
 * Depends on actors/engine.h: link sym_actors (or a test double). */
#ifndef SYM_NET_PLAY_H
#define SYM_NET_PLAY_H

#include <stdatomic.h>
#include <stdint.h>

#include "actors/engine.h"
#include "common/err.h"
#include "state/store.h"

#define SYM_PLAY_MAX_OTHER (16 << 20) /* messages other than inference_request are read into a tree */

typedef struct sym_play_stats sym_play_stats;

typedef struct {
    const char *host;
    int port;
    double heartbeat_s;                  /* 5 */
    double backoff_min_s, backoff_max_s; /* 0.1, 5: doubles per failed attempt */
    int max_reconnects;                  /* -1: forever; 0: return when the first connection ends */
    int connect_timeout_ms;              /* 2000 */
    atomic_int *stop;                    /* optional: set non-zero to return (signal handler, test) */
    /* the config's net.* keys (docs/CONFIG.md): */
    size_t max_line_bytes;   /* longest line read; a longer one is refused, its ids named */
    size_t max_output_bytes; /* answers waiting for a server that does not read */
    size_t id_window;        /* unique_ids remembered, with their answers, for exactly-once */
    sym_store *store;        /* optional: durable state; recovered from before serving */
    /* optional: called on play's thread once per loop turn, with the stats
     * so far (a metrics endpoint copies them there: net/metrics.h) */
    void (*on_turn)(const sym_play_stats *st, void *ctx);
    void *turn_ctx;
} sym_play_opts;

struct sym_play_stats {
    uint64_t connects, messages, requests, submitted, answered, rejected;
    uint64_t duplicates; /* requests sent again: answered from the window or joined in flight */
    uint64_t bad_messages, overlong, cut_off, orphaned, responses_sent, heartbeats_sent;
    uint64_t score_updates, score_rows, errors_received, stats_updates, output_overflows;
    uint64_t reanswered, ids_reused; /* re-sent requests answered from the window; ids used again for another request */
    uint64_t restores, restored_symbols; /* with a store: a lost shard process's symbols restored from it */
    double restore_s;                    /* the time those restores took */
    double score_latency_ms_sum, score_accuracy_sum;
    sym_recovery_stats recovery; /* with a store */
};

void sym_play_opts_default(sym_play_opts *o);

/* Runs until *stop, or until the connection ends with no reconnect left.
 * 0 then; -1 with e when it could never connect or memory ran out. */
int sym_play_run(sym_engine *g, const sym_play_opts *o, sym_play_stats *st, sym_err *e);

#endif
