/* symserve play: the competition client. Builds the engine from the config
 * (file, then flags over it), connects to the scoring server and serves its
 * requests until interrupted; see net/play.h for the event loop. Exit code:
 * 0 after SIGINT/SIGTERM or when the server closed and no reconnect is left,
 * 1 on a failure, 2 on a usage error. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/commands.h"

#include "actors/engine.h"
#include "app/cli_args.h"
#include "app/engine_args.h"
#include "common/log.h"
#include "config/config.h"
#include "kernels/cuda_backend.h"
#include "net/metrics.h"
#include "net/play.h"
#include "state/fingerprint.h"
#include "state/store.h"

static const char usage_text[] =
    "usage: symserve play --host H --port P [--config FILE] [--model DIR | --synthetic SEED [--size small|full]]\n"
    "                     [--backend cpu|cuda|auto] [--precision fp64|fp32|bf16|mixed] [--num-symbols N]\n"
    "                     [--heartbeat S] [--max-reconnects N] [--state-dir DIR [--fsync no|every_s|always]]\n"
    "                     " METRICS_ARGS_SYNOPSIS "\n"
    "  flags override the config file; --num-symbols N (1..1048576) sets the symbol capacity (max_symbols)\n"
    "  --host: default 127.0.0.1; --port: 1..65535\n"
    "  --heartbeat S: seconds between heartbeats (> 0, default 5)\n"
    "  --max-reconnects N: give up after N failed reconnects (default -1: forever; 0: exit when the server closes)\n"
    "  --state-dir DIR: durable symbol state (config key state.dir): every step logged in DIR before its answer\n"
    "                   is sent, snapshots every state.snapshot_every_s (60); on start, the symbols are rebuilt\n"
    "                   from them. --fsync: state.fsync (default every_s)\n" METRICS_ARGS_HELP;

enum { O_HOST = 1, O_PORT, O_HEARTBEAT, O_MAX_RECONNECTS, O_STATE_DIR, O_FSYNC };

static const struct option options[] = {
    {"host", required_argument, NULL, O_HOST},
    {"port", required_argument, NULL, O_PORT},
    ENGINE_ARGS_OPTIONS,
    {"heartbeat", required_argument, NULL, O_HEARTBEAT},
    {"max-reconnects", required_argument, NULL, O_MAX_RECONNECTS},
    {"state-dir", required_argument, NULL, O_STATE_DIR},
    {"fsync", required_argument, NULL, O_FSYNC},
    METRICS_ARGS_OPTIONS,
    {"help", no_argument, NULL, 'h'},
    {0},
};

typedef struct {
    engine_args ea;
    metrics_args ma;
    const char *state_dir;
    int fsync; /* -1 or one of fsyncs[] */
    sym_play_opts po;
} play_opts;

static const char *const fsyncs[] = {"no", "every_s", "always", NULL};

/* 0: options read; CLI_HELP; CLI_BAD: the problem printed. */
static int parse(int argc, char **argv, play_opts *o) {
    *o = (play_opts){.fsync = -1};
    engine_args_init(&o->ea);
    metrics_args_init(&o->ma);
    sym_play_opts_default(&o->po);
    o->po.port = -1;
    cli_args a;
    cli_start(&a, "play", argc, argv, options);
    int c, bad = 0;
    while (!bad && (c = cli_next(&a)) != CLI_END) {
        if (engine_args_take(&o->ea, &a, c, &bad) || metrics_args_take(&o->ma, &a, c, &bad)) continue;
        switch (c) {
        case O_HOST: o->po.host = optarg; break;
        case O_PORT: bad = cli_int(&a, optarg, 1, 65535, &o->po.port); break;
        case O_HEARTBEAT: bad = cli_double(&a, optarg, 0, 1, &o->po.heartbeat_s); break;
        case O_MAX_RECONNECTS: bad = cli_int(&a, optarg, -1, INT_MAX, &o->po.max_reconnects); break;
        case O_STATE_DIR: o->state_dir = optarg; break;
        case O_FSYNC: bad = cli_choice(&a, optarg, fsyncs, &o->fsync); break;
        case 'h': return CLI_HELP;
        default: return CLI_BAD;
        }
    }
    if (bad) return CLI_BAD;
    if (o->po.port < 0) return cli_error(&a, "--port P is required");
    if (engine_args_check(&o->ea, &a) || metrics_args_check(&o->ma, &a)) return CLI_BAD;
    return 0;
}

/* play's thread, once per loop turn: a copy of its counters (and the
 * store's, which only that thread may read) for the metrics thread. */
typedef struct {
    sym_metrics *m;
    sym_store *store;
} play_metrics;

static void publish_metrics(const sym_play_stats *st, void *ctx) {
    const play_metrics *pm = ctx;
    sym_metrics_loop l = {.messages = st->messages, .bad_messages = st->bad_messages, .requests = st->requests,
                          .answered = st->answered, .refused_other = st->rejected};
    if (pm->store) {
        sym_store_stats ss;
        sym_store_get_stats(pm->store, &ss);
        l.has_store = 1, l.log_bytes = ss.log_bytes, l.snapshots = ss.snapshots, l.last_snapshot_s = ss.last_snapshot_s;
        l.restores = st->restores, l.restore_s = st->restore_s;
    }
    sym_metrics_publish(pm->m, &l);
}

static atomic_int stop_flag;
static void on_signal(int sig) {
    (void)sig;
    atomic_store(&stop_flag, 1);
}

int sym_cmd_play(int argc, char **argv) {
    play_opts o;
    int parsed = parse(argc, argv, &o);
    if (parsed) return cli_usage(parsed, usage_text);
    sym_err e = {{0}};
    sym_config cfg;
    int cuda;
    if (engine_args_config(&o.ea, &cfg, &cuda, &e)) goto fail;
    if (o.state_dir && snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", o.state_dir) >= (int)sizeof cfg.state_dir) {
        sym_fail(&e, "--state-dir: path too long");
        goto fail;
    }
    if (o.fsync >= 0 && sym_fsync_policy_parse(fsyncs[o.fsync], &cfg.state_fsync)) goto fail;
    o.po.max_line_bytes = cfg.net_max_line_bytes;
    o.po.max_output_bytes = cfg.net_max_output_bytes;
    o.po.id_window = cfg.net_id_window;
    sym_log_set_level(cfg.log_level);
    sym_store *store = NULL;
    if (cfg.state_dir[0]) { /* before the engine: a directory in use or unreadable fails fast */
        uint64_t fp;
        sym_store_opts so = {.fsync = cfg.state_fsync, .snapshot_every_s = cfg.state_snapshot_every_s,
                             .id_window = cfg.net_id_window};
        if (sym_state_fingerprint(&cfg, cuda, &fp, &e) || !(store = sym_store_open(cfg.state_dir, fp, &so, &e)))
            goto fail;
        o.po.store = store;
    }
    sym_engine *g = engine_args_engine(&cfg, &e);
    if (!g) {
        sym_store_close(store);
        goto fail;
    }
    sym_info("play: engine ready (%s backend); serving %s:%d", cuda ? "cuda" : "cpu", o.po.host, o.po.port);
    sym_metrics *metrics = NULL; /* the engine's numbers; healthy while play runs */
    play_metrics pm = {.store = store};
    if (o.ma.port >= 0) {
        int mport;
        if (!(metrics = sym_metrics_start(o.ma.host, o.ma.port, g, &mport, &e))) {
            sym_store_close(store);
            sym_engine_destroy(g);
            goto fail;
        }
        metrics_args_write_port(&o.ma, "play", mport);
        sym_metrics_set_healthy(metrics, 1);
        pm.m = metrics;
        o.po.on_turn = publish_metrics, o.po.turn_ctx = &pm;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o.po.stop = &stop_flag;
    sym_play_stats st;
    int rc = sym_play_run(g, &o.po, &st, &e);
    sym_metrics_stop(metrics); /* before the store and the engine it reads */
    if (store) {
        sym_store_stats ss;
        sym_store_get_stats(store, &ss);
        fprintf(stderr, "play: state: %.1f MB of log written, %llu snapshots (the last %.1f MB in %.2f s), %llu log segments "
                        "and %llu snapshots removed\n", (double)ss.log_bytes / 1e6, (unsigned long long)ss.snapshots,
                (double)ss.last_snapshot_bytes / 1e6, ss.last_snapshot_s, (unsigned long long)ss.segments_removed,
                (unsigned long long)ss.snapshots_removed);
    }
    sym_store_close(store); /* first: its snapshot thread may be waiting on the engine */
    sym_engine_destroy(g);
    fprintf(stderr,
            "play: %llu connections, %llu messages, %llu requests: %llu answered in %llu responses, %llu rejected, "
            "%llu sent again (%llu answered from the window), %llu bad messages, %llu answers kept after a disconnect\n",
            (unsigned long long)st.connects, (unsigned long long)st.messages, (unsigned long long)st.requests,
            (unsigned long long)st.answered, (unsigned long long)st.responses_sent, (unsigned long long)st.rejected,
            (unsigned long long)st.duplicates, (unsigned long long)st.reanswered, (unsigned long long)st.bad_messages,
            (unsigned long long)st.orphaned);
    if (rc) goto fail;
    return 0;
fail:
    fprintf(stderr, "symserve play: %s\n", e.msg);
    return 1;
}
