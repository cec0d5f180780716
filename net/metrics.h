/* Metrics and health over HTTP (`--metrics-port` of serve, play and shard):
 * Prometheus text exposition (format 0.0.4) at GET /metrics, and GET
 * /healthz: 200 "ok" while the loop serves, 503 otherwise (starting,
 * stopping). docs/design/metrics.md lists every metric.
 *
 *  - The HTTP side is libmicrohttpd on its own thread
 *    (MHD_USE_INTERNAL_POLLING_THREAD); the serving loop never waits on
 *    it: the loop keeps its counters in its own plain struct and copies
 *    them here once per turn (sym_metrics_publish), under a mutex it only
 *    tries (a turn that finds it taken publishes at the next one). A
 *    scrape reads the last copy, so it lags the loop by at most one turn.
 *  - The engine's numbers are read at scrape time, through calls that are
 *    safe from any thread: per shard, symbols, slots, steps and paging
 *    (sym_engine_paging: the shards publish them), step times, batch rows
 *    and queue depth (sym_engine_shard_stats: the router publishes them);
 *    migrations and rebalances (sym_engine_migration_stats); the symbols
 *    of lost shard processes held and restored (sym_engine_held_stats).
 *    The per-shard calls wait, on the HTTP thread, while a migration holds
 *    the engine's control lock.
 *  - Bounded: only GET (HEAD too) of /metrics and /healthz are served; any
 *    other path is 404, any other method 405; at most
 *    SYM_METRICS_MAX_CONNECTIONS connections, each closed after
 *    SYM_METRICS_TIMEOUT_S idle seconds.
 *
 * Threads: publish and set_healthy from the loop's thread; start and stop
 * from the thread that owns the engine, stop before the engine is
 * destroyed. */
#ifndef SYM_NET_METRICS_H
#define SYM_NET_METRICS_H

#include <stdint.h>

#include "actors/engine.h"
#include "common/err.h"

#define SYM_METRICS_MAX_CONNECTIONS 8
#define SYM_METRICS_TIMEOUT_S 5

/* Upper bounds (seconds) of the answer latency histogram's buckets; one
 * more bucket (+Inf) takes the rest. */
#define SYM_METRICS_LATENCY_BUCKETS 16
extern const double sym_metrics_latency_le[SYM_METRICS_LATENCY_BUCKETS];

typedef struct {
    uint64_t count[SYM_METRICS_LATENCY_BUCKETS + 1]; /* per bucket, not cumulative; the last: +Inf */
    uint64_t n;
    double sum_s;
} sym_latency_hist;

void sym_latency_hist_add(sym_latency_hist *h, uint64_t ns);

/* What a serving loop counts, as it publishes it. Counters only grow. */
typedef struct {
    uint64_t messages, bad_messages;  /* lines read; lines refused whole */
    uint64_t requests;                /* rows received: those of well-formed messages, and the unique_ids
                                         read in a line refused whole */
    uint64_t answered;                /* rows answered with a prediction */
    uint64_t refused_bad_line;        /* rows of a line refused whole (the ids read in it) */
    uint64_t refused_bad_row;         /* rows refused by validation (unique_id, symbol, features) */
    uint64_t refused_in_flight_id;    /* rows reusing a unique_id still in flight */
    uint64_t refused_engine;          /* rows the engine refused (capacity, a full pool and tiers) */
    uint64_t refused_other;           /* refusals the loop does not split by reason */
    int has_in_flight;                /* in_flight is meaningful */
    uint64_t in_flight;               /* gauge: rows submitted to the engine, not yet answered */
    int has_clients;                  /* serve: the client numbers below are meaningful */
    int clients;                      /* gauge: connected now */
    uint64_t connections, refused_connections, dropped_clients, discarded;
    sym_latency_hist latency;         /* submit to the engine -> answer written, per answer */
    int has_shard_process;            /* symserve shard: the numbers below are meaningful, and no others */
    uint64_t sessions, refused_routers; /* router sessions served (or being served); HELLOs refused */
    int in_session, shard_index;      /* a router is connected; the index it gave this shard */
    sym_paging_stats shard;           /* the session's shard: steps, symbols, paging (zeros between sessions) */
    int has_store;                    /* play --state-dir: the store numbers below are meaningful */
    uint64_t log_bytes, snapshots;    /* state/store.h's sym_store_stats */
    double last_snapshot_s;
    uint64_t restores;                /* restores of a lost shard process's symbols finished (net/play.h) */
    double restore_s;                 /* their time */
} sym_metrics_loop;

typedef struct sym_metrics sym_metrics;

/* Listens on host (an IPv4 or IPv6 literal; NULL: every IPv4 address) and
 * port (0: a free one, written to *bound); g (may be NULL) gives the
 * engine's numbers. NULL with e when it cannot listen. Healthy starts 0. */
sym_metrics *sym_metrics_start(const char *host, int port, sym_engine *g, int *bound, sym_err *e);

/* Copies *l for the next scrapes, unless a scrape is copying it out now
 * (returns 0 then, 1 when published). Never blocks. */
int sym_metrics_publish(sym_metrics *m, const sym_metrics_loop *l);

/* /healthz's answer: 1 "ok", 0 "not serving". */
void sym_metrics_set_healthy(sym_metrics *m, int healthy);

/* Stops the HTTP thread (waits for a scrape in progress) and frees m. NULL: nothing. */
void sym_metrics_stop(sym_metrics *m);

/* The exposition text of l (NULL: no loop numbers) and g's shards (NULL:
 * none): a malloc'd string, NULL when out of memory. For tests. */
char *sym_metrics_render(const sym_metrics_loop *l, sym_engine *g, size_t *len);

#endif
