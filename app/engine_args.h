/* The options that say which engine a serving command builds, shared by
 * play and serve: --config FILE, --model DIR | --synthetic SEED [--size
 * small|full], --backend, --precision, --num-symbols; and the config they
 * make (the file, then the flags over it). */
#ifndef SYM_APP_ENGINE_ARGS_H
#define SYM_APP_ENGINE_ARGS_H

#include <stdint.h>

#include "app/cli_args.h"
#include "common/err.h"
#include "config/config.h"

/* getopt values of these options: above any command's own */
enum { ENGINE_OPT_CONFIG = 0x100, ENGINE_OPT_MODEL, ENGINE_OPT_SYNTHETIC, ENGINE_OPT_SIZE, ENGINE_OPT_BACKEND,
       ENGINE_OPT_PRECISION, ENGINE_OPT_NUM_SYMBOLS };

/* Their entries, for a command's struct option array. */
#define ENGINE_ARGS_OPTIONS                                                                                          \
    {"config", required_argument, NULL, ENGINE_OPT_CONFIG}, {"model", required_argument, NULL, ENGINE_OPT_MODEL},   \
        {"synthetic", required_argument, NULL, ENGINE_OPT_SYNTHETIC},                                              \
        {"size", required_argument, NULL, ENGINE_OPT_SIZE}, {"backend", required_argument, NULL, ENGINE_OPT_BACKEND}, \
        {"precision", required_argument, NULL, ENGINE_OPT_PRECISION},                                              \
        {"num-symbols", required_argument, NULL, ENGINE_OPT_NUM_SYMBOLS}

typedef struct {
    const char *config, *model, *precision;
    int synthetic, size, backend; /* size, backend: -1, or which was named */
    uint64_t seed;
    int num_symbols; /* 0: the config's max_symbols */
} engine_args;

void engine_args_init(engine_args *ea);

/* Option c (from cli_next) with its value in optarg: 1 when it is one of
 * these (*bad set when its value is not), 0 when it is not. */
int engine_args_take(engine_args *ea, const cli_args *a, int c, int *bad);

/* After the options: 0, or CLI_BAD (printed) for --model with --synthetic. */
int engine_args_check(const engine_args *ea, const cli_args *a);

/* cfg: the defaults, the file, then the flags. Without a precision from
 * the flags or a file, each backend gets its own default: fp64 (the
 * reference) on cpu, mixed on cuda. *cuda: whether the engine will run
 * on the GPU. */
int engine_args_config(const engine_args *ea, sym_config *cfg, int *cuda, sym_err *e);

/* The engine of cfg (as sym_engine_create), with the shards that
 * shards.endpoints places in other processes reached over nanomsg
 * (net/shard_link.h). */
struct sym_engine;
struct sym_engine *engine_args_engine(const sym_config *cfg, sym_err *e);

#endif
