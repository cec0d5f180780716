/* See engine_args.h. */
#include "app/engine_args.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cuda_backend.h"
#ifdef SYM_NET_HAVE_ENGINE
#include "actors/engine.h"
#include "net/shard_link.h"
#endif

static const char *const sizes[] = {"small", "full", NULL};
static const char *const backends[] = {"cpu", "cuda", "auto", NULL};
static const sym_backend_kind backend_kinds[] = {SYM_BACKEND_CPU, SYM_BACKEND_CUDA, SYM_BACKEND_AUTO};

void engine_args_init(engine_args *ea) { *ea = (engine_args){.size = -1, .backend = -1}; }

int engine_args_take(engine_args *ea, const cli_args *a, int c, int *bad) {
    switch (c) {
    case ENGINE_OPT_CONFIG: ea->config = optarg; break;
    case ENGINE_OPT_MODEL: ea->model = optarg; break;
    case ENGINE_OPT_SYNTHETIC:
        ea->synthetic = 1;
        *bad = cli_u64(a, optarg, &ea->seed);
        break;
    case ENGINE_OPT_SIZE: *bad = cli_choice(a, optarg, sizes, &ea->size); break;
    case ENGINE_OPT_BACKEND: *bad = cli_choice(a, optarg, backends, &ea->backend); break;
    case ENGINE_OPT_PRECISION: ea->precision = optarg; break;
    case ENGINE_OPT_NUM_SYMBOLS: *bad = cli_int(a, optarg, 1, 1 << 20, &ea->num_symbols); break; /* CONFIG.md's max_symbols */
    default: return 0;
    }
    return 1;
}

int engine_args_check(const engine_args *ea, const cli_args *a) {
    if (ea->model && ea->synthetic) return cli_error(a, "give --model DIR or --synthetic SEED, not both");
    return 0;
}

int engine_args_config(const engine_args *ea, sym_config *cfg, int *cuda, sym_err *e) {
    sym_config_defaults(cfg);
    if (ea->config && sym_config_load(cfg, ea->config, e)) return -1;
    if (ea->model) snprintf(cfg->model_dir, sizeof cfg->model_dir, "%s", ea->model);
    if (ea->synthetic) cfg->model_dir[0] = '\0', cfg->synthetic_seed = ea->seed;
    if (ea->size >= 0) cfg->synthetic_full = !strcmp(sizes[ea->size], "full");
    if (ea->backend >= 0) cfg->backend = backend_kinds[ea->backend];
    if (ea->num_symbols) cfg->max_symbols = ea->num_symbols;
    *cuda = cfg->backend == SYM_BACKEND_CUDA || (cfg->backend == SYM_BACKEND_AUTO && sym_cuda_device_count() > 0);
    const char *precision = ea->precision;
    if (!precision && !ea->config) precision = *cuda ? "mixed" : "fp64";
    return precision ? sym_config_set_precision(cfg, precision, e) : 0;
}

#ifdef SYM_NET_HAVE_ENGINE
sym_engine *engine_args_engine(const sym_config *cfg, sym_err *e) {
    int cuda = cfg->backend == SYM_BACKEND_CUDA || (cfg->backend == SYM_BACKEND_AUTO && sym_cuda_device_count() > 0);
    return sym_shard_link_engine(cfg, cuda, e);
}
#endif
