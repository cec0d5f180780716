/* symserve shard: one shard actor in its own process, for a router that
 * reaches it through the config's shards.endpoints (net/shard_server.h).
 * Exit code: 0 after SIGINT/SIGTERM (or --sessions), 1 on a failure, 2 on
 * a usage error. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "app/commands.h"

#include "app/cli_args.h"
#include "app/engine_args.h"
#include "common/log.h"
#include "config/config.h"
#include "net/metrics.h"
#include "net/shard_server.h"

static const char usage_text[] =
    "usage: symserve shard --listen URL [--config FILE] [--model DIR | --synthetic SEED [--size small|full]]\n"
    "                      [--backend cpu|cuda|auto] [--precision fp64|fp32|bf16|mixed] [--num-symbols N]\n"
    "                      [--device N] [--status-every S] [--sessions N] " METRICS_ARGS_SYNOPSIS "\n"
    "  --listen URL: tcp://HOST:PORT or ipc://PATH, where a router (the config's shards.endpoints) connects\n"
    "  the engine options as play's and serve's: the router must run the same model, backend and precision,\n"
    "      and the same max_symbols, queue_capacity, max_batch and rows_per_symbol, or it is refused by name\n"
    "  --device N: the GPU this shard runs on (default: the config's shards.devices[0])\n"
    "  --status-every S: seconds between status lines on stderr (default 10; 0: none)\n"
    "  --sessions N: exit after N router sessions (default: serve until SIGINT/SIGTERM)\n" METRICS_ARGS_HELP;

enum { O_LISTEN = 1, O_DEVICE, O_STATUS_EVERY, O_SESSIONS };

static const struct option options[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    ENGINE_ARGS_OPTIONS,
    {"device", required_argument, NULL, O_DEVICE},
    {"status-every", required_argument, NULL, O_STATUS_EVERY},
    {"sessions", required_argument, NULL, O_SESSIONS},
    METRICS_ARGS_OPTIONS,
    {"help", no_argument, NULL, 'h'},
    {0},
};

typedef struct {
    engine_args ea;
    metrics_args ma;
    const char *listen;
    int device, sessions;
    double status_every;
} shard_opts;

static int parse(int argc, char **argv, shard_opts *o) {
    memset(o, 0, sizeof *o);
    engine_args_init(&o->ea);
    metrics_args_init(&o->ma);
    o->device = -1, o->status_every = 10;
    cli_args a;
    cli_start(&a, "shard", argc, argv, options);
    int c, bad = 0;
    while (!bad && (c = cli_next(&a)) != CLI_END) {
        if (engine_args_take(&o->ea, &a, c, &bad) || metrics_args_take(&o->ma, &a, c, &bad)) continue;
        switch (c) {
        case O_LISTEN: o->listen = optarg; break;
        case O_DEVICE: bad = cli_int(&a, optarg, 0, 1023, &o->device); break;
        case O_STATUS_EVERY: bad = cli_double(&a, optarg, 0, 0, &o->status_every); break;
        case O_SESSIONS: bad = cli_int(&a, optarg, 1, 1 << 30, &o->sessions); break;
        case 'h': return CLI_HELP;
        default: return CLI_BAD;
        }
    }
    if (bad) return CLI_BAD;
    if (!o->listen) return cli_error(&a, "--listen URL is required");
    sym_err e = {{0}};
    if (!o->listen[0] || sym_endpoint_check(o->listen, &e)) return cli_error(&a, "--listen: %s", o->listen[0] ? e.msg : "empty");
    return engine_args_check(&o->ea, &a) || metrics_args_check(&o->ma, &a) ? CLI_BAD : 0;
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

int sym_cmd_shard(int argc, char **argv) {
    shard_opts o;
    int parsed = parse(argc, argv, &o);
    if (parsed) return cli_usage(parsed, usage_text);
    sym_err e = {{0}};
    sym_config cfg;
    int cuda;
    if (engine_args_config(&o.ea, &cfg, &cuda, &e)) goto fail;
    sym_log_set_level(cfg.log_level);
    if (o.device >= 0) cfg.shard_devices[0] = o.device, cfg.n_shard_devices = 1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sym_shard_server_opts so = {.listen = o.listen, .cfg = &cfg, .stop = &stop_flag, .status_every_s = o.status_every,
                                .max_sessions = o.sessions};
    if (o.ma.port >= 0) {
        int mport;
        if (!(so.metrics = sym_metrics_start(o.ma.host, o.ma.port, NULL, &mport, &e))) goto fail;
        metrics_args_write_port(&o.ma, "shard", mport);
    }
    int rc = sym_shard_server_run(&so, &e);
    sym_metrics_stop(so.metrics);
    if (rc) goto fail;
    return 0;
fail:
    fprintf(stderr, "symserve shard: %s\n", e.msg);
    return 1;
}
