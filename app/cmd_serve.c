/* symserve serve: the engine as a server. Builds the engine from the config
 * (file, then flags over it) as play does, listens, and answers the
 * inference_requests of many clients at once until SIGINT/SIGTERM; see
 * net/serve.h for the event loop. Exit code: 0 after SIGINT/SIGTERM, 1 on
 * a failure, 2 on a usage error. */
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
#include "net/serve.h"

static const char usage_text[] =
    "usage: symserve serve --listen HOST:PORT [--config FILE] [--model DIR | --synthetic SEED [--size small|full]]\n"
    "                      [--backend cpu|cuda|auto] [--precision fp64|fp32|bf16|mixed] [--num-symbols N]\n"
    "                      [--max-clients N] [--stall-timeout S] [--status-every S] [--port-file FILE]\n"
    "                      " METRICS_ARGS_SYNOPSIS "\n"
    "  flags override the config file; --num-symbols N (1..1048576) sets the symbol capacity (max_symbols)\n"
    "  --listen HOST:PORT: the address to listen on (PORT 0: a free one, printed as 'listening on HOST:PORT'\n"
    "      and written to --port-file)\n"
    "  clients send inference_request lines (docs/PROTOCOL.md) and get their answers on their own connection;\n"
    "      unique_ids are per client; no register is needed\n"
    "  --max-clients N: clients at once (1..65536, default 64); one more is told so and closed\n"
    "  --stall-timeout S: a client whose unread answers stay over net.max_output_bytes for S s is dropped\n"
    "      (default 5); while over it, its input is not read\n"
    "  --status-every S: seconds between status lines on stderr (default 10; 0: none)\n" METRICS_ARGS_HELP;

enum { O_LISTEN = 1, O_MAX_CLIENTS, O_STALL_TIMEOUT, O_STATUS_EVERY, O_PORT_FILE };

static const struct option options[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    ENGINE_ARGS_OPTIONS,
    {"max-clients", required_argument, NULL, O_MAX_CLIENTS},
    {"stall-timeout", required_argument, NULL, O_STALL_TIMEOUT},
    {"status-every", required_argument, NULL, O_STATUS_EVERY},
    {"port-file", required_argument, NULL, O_PORT_FILE},
    METRICS_ARGS_OPTIONS,
    {"help", no_argument, NULL, 'h'},
    {0},
};

typedef struct {
    engine_args ea;
    metrics_args ma;
    const char *port_file;
    char host[256];
    sym_serve_opts so;
} serve_opts;


/* HOST:PORT (the port after the last ':'; [v6]:PORT too). */
static int parse_listen(const cli_args *a, const char *v, serve_opts *o) {
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v) return cli_error(a, "--listen: '%s' is not HOST:PORT", v);
    size_t hl = (size_t)(colon - v);
    if (v[0] == '[' && hl >= 2 && v[hl - 1] == ']') v++, hl -= 2;
    if (hl == 0 || hl >= sizeof o->host) return cli_error(a, "--listen: '%s' is not HOST:PORT", v);
    memcpy(o->host, v, hl);
    o->host[hl] = '\0';
    o->so.host = o->host;
    return cli_int(a, colon + 1, 0, 65535, &o->so.port);
}

/* 0: options read; CLI_HELP; CLI_BAD: the problem printed. */
static int parse(int argc, char **argv, serve_opts *o) {
    memset(o, 0, sizeof *o);
    engine_args_init(&o->ea);
    sym_serve_opts_default(&o->so);
    o->so.port = -1;
    metrics_args_init(&o->ma);
    cli_args a;
    cli_start(&a, "serve", argc, argv, options);
    int c, bad = 0;
    while (!bad && (c = cli_next(&a)) != CLI_END) {
        if (engine_args_take(&o->ea, &a, c, &bad) || metrics_args_take(&o->ma, &a, c, &bad)) continue;
        switch (c) {
        case O_LISTEN: bad = parse_listen(&a, optarg, o); break;
        case O_MAX_CLIENTS: bad = cli_int(&a, optarg, 1, 65536, &o->so.max_clients); break;
        case O_STALL_TIMEOUT: bad = cli_double(&a, optarg, 0, 0, &o->so.stall_s); break;
        case O_STATUS_EVERY: bad = cli_double(&a, optarg, 0, 0, &o->so.status_s); break;
        case O_PORT_FILE: o->port_file = optarg; break;
        case 'h': return CLI_HELP;
        default: return CLI_BAD;
        }
    }
    if (bad) return CLI_BAD;
    if (o->so.port < 0) return cli_error(&a, "--listen HOST:PORT is required");
    if (engine_args_check(&o->ea, &a) || metrics_args_check(&o->ma, &a)) return CLI_BAD;
    return 0;
}

static atomic_int stop_flag;
static void on_signal(int sig) {
    (void)sig;
    atomic_store(&stop_flag, 1);
}

static const char *port_file, *listen_host;

static void write_port(const char *path, int port) {
    FILE *f = fopen(path, "w");
    if (f) fprintf(f, "%d\n", port), fclose(f);
    else sym_warn("serve: cannot write %s", path);
}

static void on_listen(int port) {
    printf("serve: listening on %s:%d\n", listen_host, port);
    fflush(stdout);
    if (port_file) write_port(port_file, port);
}

int sym_cmd_serve(int argc, char **argv) {
    serve_opts o;
    int parsed = parse(argc, argv, &o);
    if (parsed) return cli_usage(parsed, usage_text);
    sym_err e = {{0}};
    sym_config cfg;
    int cuda;
    if (engine_args_config(&o.ea, &cfg, &cuda, &e)) goto fail;
    o.so.max_line_bytes = cfg.net_max_line_bytes;
    o.so.max_output_bytes = cfg.net_max_output_bytes;
    sym_log_set_level(cfg.log_level);
    sym_engine *g = engine_args_engine(&cfg, &e);
    if (!g) goto fail;
    sym_info("serve: engine ready (%s backend)", cuda ? "cuda" : "cpu");
    sym_metrics *metrics = NULL;
    if (o.ma.port >= 0) {
        int mport;
        if (!(metrics = sym_metrics_start(o.ma.host, o.ma.port, g, &mport, &e))) {
            sym_engine_destroy(g);
            goto fail;
        }
        metrics_args_write_port(&o.ma, "serve", mport);
        o.so.metrics = metrics;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o.so.stop = &stop_flag;
    port_file = o.port_file, listen_host = o.host;
    o.so.on_listen = on_listen;
    sym_serve_stats st;
    int rc = sym_serve_run(g, &o.so, &st, &e);
    sym_metrics_stop(metrics); /* first: a scrape reads the engine */
    sym_engine_destroy(g);
    fprintf(stderr,
            "serve: %llu connections (%llu refused, %llu dropped), %llu messages, %llu requests: %llu answered in %llu "
            "responses, %llu refused, %llu bad messages, %llu answers of gone clients discarded\n",
            (unsigned long long)st.connections, (unsigned long long)st.refused_connections,
            (unsigned long long)st.dropped, (unsigned long long)st.messages, (unsigned long long)st.requests,
            (unsigned long long)st.answered, (unsigned long long)st.responses_sent, (unsigned long long)st.rejected,
            (unsigned long long)st.bad_messages, (unsigned long long)st.discarded);
    if (rc) goto fail;
    return 0;
fail:
    fprintf(stderr, "symserve serve: %s\n", e.msg);
    return 1;
}
