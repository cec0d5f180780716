/* The serving engine: one router actor and N shard actors (threads), talking
 * over bounded concurrencykit rings. The router owns the symbol -> shard map
 * and each symbol's queue of held requests; a shard owns a backend (a CUDA
 * stream on its GPU, or the CPU reference) and the state slots of the
 * symbols mapped to it. Messages are plain data: no pointer crosses actors.
 *
 * Ordering: requests of one symbol are stepped in submission order, one step
 * per request; each step of a shard takes at most one request per symbol.
 * Nothing is dropped: a full mailbox blocks the producer (push-back).
 *
 * Threading: submit() may be called from several producer threads; poll()
 * from one consumer thread at a time. */
#ifndef SYM_ENGINE_H
#define SYM_ENGINE_H

#include <stdint.h>

#include "common/err.h"
#include "common/request.h" /* sym_request, sym_prediction */
#include "config/config.h"
#include "kernels/model_config.h"

typedef struct sym_engine sym_engine;

/* Builds weights (from cfg's model source), backends and threads. */
sym_engine *sym_engine_create(const sym_config *cfg, sym_err *e);

/* Validates the request (symbol syntax, feature count, finite features,
 * symbol capacity): a bad one returns -1 with the reason in e and advances no
 * state. Blocks while the router's mailbox is full. */
int sym_engine_submit(sym_engine *g, const sym_request *r, sym_err *e);

/* Up to max finished predictions, waiting up to timeout_ms (0: don't wait,
 * <0: forever) for the first one. Returns how many were written. */
int sym_engine_poll(sym_engine *g, sym_prediction *out, int max, int timeout_ms);

/* A file descriptor that becomes readable when predictions are waiting
 * (for an event loop); read() it to clear. */
int sym_engine_ready_fd(const sym_engine *g);

/* Moves one symbol's state to another shard while the stream runs. */
int sym_engine_migrate(sym_engine *g, const char *symbol, int to_shard, sym_err *e);

/* Changes the shard count; migrates exactly the symbols whose hash moved. */
int sym_engine_rebalance(sym_engine *g, int n_shards, sym_err *e);

/* Waits until every submitted request has its prediction queued. */
void sym_engine_drain(sym_engine *g);

const sym_model_config *sym_engine_model(const sym_engine *g);
void sym_engine_destroy(sym_engine *g);

/* The shard a symbol lives on now (as the router last published it), or -1
 * when the engine has not routed it yet. */
int sym_engine_symbol_shard(sym_engine *g, const char *symbol);
int sym_engine_shard_count(sym_engine *g);

/* For tests and benchmarks: the engine over backends made by a factory
 * (called once per shard, also when a rebalance adds shards; n_slots is
 * cfg->max_symbols) instead of the ones cfg's model section describes. */
struct sym_backend;
typedef struct sym_backend *(*sym_backend_factory)(void *ctx, int shard, sym_err *e);
sym_engine *sym_engine_create_with(const sym_config *cfg, const sym_model_config *model, sym_backend_factory make,
                                   void *ctx, sym_err *e);

#endif
