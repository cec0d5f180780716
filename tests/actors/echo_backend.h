/* A trivial backend for tests and the overhead bench: a slot holds its step
 * count and a running sum; step() writes [steps so far, features[0],
 * features[F-1], running sum of features[0] including this one] and advances
 * the slot. Cheap enough that the engine's own overhead dominates, and its
 * outputs prove per-symbol order (pred[0] counts 0,1,2,... per symbol). */
#ifndef SYM_ECHO_BACKEND_H
#define SYM_ECHO_BACKEND_H

#include "config/config.h"
#include "kernels/backend.h"

sym_backend *sym_echo_backend_create(const sym_model_config *cfg, int n_slots, int max_batch, sym_err *e);

/* The backend factory for sym_engine_create_with: ctx points at a
 * sym_echo_factory that outlives the engine (shards are created later too,
 * on a rebalance); every shard gets an echo backend of cfg's slots_per_shard
 * slots and max_batch rows. */
typedef struct {
    const sym_model_config *model;
    const sym_config *cfg;
} sym_echo_factory;
sym_backend *sym_echo_backend_make(void *ctx, int shard, sym_err *e);

#endif
