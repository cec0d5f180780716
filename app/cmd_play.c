/* symserve play: the competition client. Builds the engine from the config
 * (file, then flags over it), connects to the scoring server and serves its
 * requests until interrupted; see net/play.h for the event loop. Exit code:
 * 0 after SIGINT/SIGTERM or when the server closed and no reconnect is left,
 * 1 on a failure, 2 on a usage error. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/commands.h"

#ifndef SYM_NET_HAVE_ENGINE
int sym_cmd_play(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "symserve play: this build has no engine (targets sym_actors and sym_config were not built)\n");
    return 1;
}
#else
#include "actors/engine.h"
#include "common/log.h"
#include "config/config.h"
#include "kernels/cuda_backend.h"
#include "net/play.h"

static int usage(void) {
    fprintf(stderr,
            "usage: symserve play --host H --port P [--config FILE] [--model DIR | --synthetic SEED [--size small|full]]\n"
            "                     [--backend cpu|cuda|auto] [--precision fp64|fp32|bf16|mixed] [--num-symbols N]\n"
            "                     [--heartbeat S] [--max-reconnects N]\n"
            "  flags override the config file; --num-symbols N sets the symbol capacity (max_symbols)\n"
            "  --max-reconnects N: give up after N failed reconnects (default -1: forever; 0: exit when the server closes)\n");
    return 2;
}

static atomic_int stop_flag;
static void on_signal(int sig) {
    (void)sig;
    atomic_store(&stop_flag, 1);
}

int sym_cmd_play(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--help")) return usage(), 0;
    const char *config = NULL, *model = NULL, *size = NULL, *backend = NULL, *precision = NULL;
    long long seed = -1;
    int num_symbols = 0;
    sym_play_opts po;
    sym_play_opts_default(&po);
    po.port = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v) return usage();
        if (!strcmp(a, "--host")) po.host = v;
        else if (!strcmp(a, "--port")) po.port = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--synthetic")) seed = strtoll(v, &end, 10);
        else if (!strcmp(a, "--size")) size = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--precision")) precision = v;
        else if (!strcmp(a, "--num-symbols")) num_symbols = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--heartbeat")) po.heartbeat_s = strtod(v, &end);
        else if (!strcmp(a, "--max-reconnects")) po.max_reconnects = (int)strtol(v, &end, 10);
        else return usage();
        if (end && *end) return usage();
        i++;
    }
    if (po.port < 1 || po.port > 65535 || (model && seed >= 0) || num_symbols < 0 || !(po.heartbeat_s > 0)) return usage();
    if (size && strcmp(size, "small") && strcmp(size, "full")) return usage();
    if (backend && strcmp(backend, "cpu") && strcmp(backend, "cuda") && strcmp(backend, "auto")) return usage();

    sym_err e = {{0}};
    sym_config cfg;
    sym_config_defaults(&cfg);
    if (config && sym_config_load(&cfg, config, &e)) goto fail;
    if (model) snprintf(cfg.model_dir, sizeof cfg.model_dir, "%s", model);
    if (seed >= 0) cfg.model_dir[0] = '\0', cfg.synthetic_seed = (uint64_t)seed;
    if (size) cfg.synthetic_full = !strcmp(size, "full");
    if (backend) cfg.backend = !strcmp(backend, "cpu") ? SYM_BACKEND_CPU : !strcmp(backend, "cuda") ? SYM_BACKEND_CUDA : SYM_BACKEND_AUTO;
    if (num_symbols > 0) cfg.max_symbols = num_symbols;
    /* without a precision from the flags or a file, each backend gets its
     * own default: fp64 (the reference) on cpu, mixed on cuda */
    int cuda = cfg.backend == SYM_BACKEND_CUDA || (cfg.backend == SYM_BACKEND_AUTO && sym_cuda_device_count() > 0);
    if (!precision && !config) precision = cuda ? "mixed" : "fp64";
    if (precision && sym_config_set_precision(&cfg, precision, &e)) goto fail;
    po.max_line_bytes = cfg.net_max_line_bytes;
    po.max_output_bytes = cfg.net_max_output_bytes;
    po.id_window = cfg.net_id_window;
    sym_engine *g = sym_engine_create(&cfg, &e);
    if (!g) goto fail;
    sym_info("play: engine ready (%s backend); serving %s:%d", cuda ? "cuda" : "cpu", po.host, po.port);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    po.stop = &stop_flag;
    sym_play_stats st;
    int rc = sym_play_run(g, &po, &st, &e);
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
#endif
