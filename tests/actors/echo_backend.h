/* A trivial backend for tests and the overhead bench: a slot holds its step
 * count and a running sum; step() writes [steps so far, features[0],
 * features[F-1], running sum of features[0] including this one] and advances
 * the slot. Cheap enough that the engine's own overhead dominates, and its
 * outputs prove per-symbol order (pred[0] counts 0,1,2,... per symbol).
 * With an export lag it also has export_begin / export_end as the CUDA
 * engine does: the state is taken at export_begin and lands in the
 * caller's buffer at the lag-th export_end that does not block (or at one
 * that blocks), so the shard steps between the two. */
#ifndef SYM_ECHO_BACKEND_H
#define SYM_ECHO_BACKEND_H

#include "config/config.h"
#include "kernels/backend.h"

sym_backend *sym_echo_backend_create(const sym_model_config *cfg, int n_slots, int max_batch, sym_err *e);

/* Gives b export_begin / export_end, landing at the lag-th (>= 1) export_end
 * that does not block. */
void sym_echo_backend_set_export_lag(sym_backend *b, int lag);
/* Exports, over every echo backend of the process, during which the
 * backend stepped (between export_begin and the landing). */
long sym_echo_exports_overlapped(void);

/* The backend factory for sym_engine_create_with: ctx points at a
 * sym_echo_factory that outlives the engine (shards are created later too,
 * on a rebalance); every shard gets an echo backend of cfg's slots_per_shard
 * slots and max_batch rows, with export_lag when it is above 0. */
typedef struct {
    const sym_model_config *model;
    const sym_config *cfg;
    int export_lag;
} sym_echo_factory;
sym_backend *sym_echo_backend_make(void *ctx, int shard, sym_err *e);

#endif
