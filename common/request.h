/* A request and its answer as plain data, and the limits every entry point
 * holds them to: request files (common/requests_csv.h), the wire
 * (net/request_reader.h), the engine's front door (actors/engine.h) and its
 * symbol registry (sharding/symbol_table.h) all check a symbol with
 * sym_symbol_check and size it with SYM_SYMBOL_MAX; the model config
 * (kernels/model_config.h) takes at most SYM_MAX_FEATURES features.
 *
 * The types hold everything inline, no pointers: a request is copied into
 * an actor message as is. */
#ifndef SYM_REQUEST_H
#define SYM_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SYM_SYMBOL_MAX 64    /* bytes of a symbol, the terminating NUL not counted */
#define SYM_MAX_FEATURES 256 /* features of a request: the bound on a model's num_features */
#define SYM_TOWERS 4         /* outputs of a prediction, one per tower: xLSTM, Mamba2, RetNet, Hawk */

/* Symbol syntax: 1..SYM_SYMBOL_MAX bytes of printable ASCII (0x21..0x7e).
 * Returns 0 when valid, else -1 with the reason. */
int sym_symbol_check(const char *s, size_t len, sym_err *e);

typedef struct {
    uint64_t uid;
    uint64_t t_submit_ns; /* filled by sym_engine_submit */
    char symbol[SYM_SYMBOL_MAX + 1];
    int n_features;
    float features[SYM_MAX_FEATURES];
} sym_request;

typedef struct {
    uint64_t uid;
    int status; /* 0: pred holds the four outputs; -1: rejected, error says why; no state advanced */
    double pred[SYM_TOWERS];
    uint64_t t_submit_ns, t_done_ns;
    char error[160];
} sym_prediction;

#endif
