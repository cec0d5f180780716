/* The model's weights and the backends made from them: what a shard
 * steps with. The engine makes one backend per in-process shard from it;
 * `symserve shard` makes the one of its shard. Weights are loaded (or
 * drawn, for a synthetic model) once; with CUDA and several shards they
 * are first placed once per GPU the first shards use (a broadcast, not
 * one upload per shard) until sym_model_backends_placed_done. */
#ifndef SYM_MODEL_BACKENDS_H
#define SYM_MODEL_BACKENDS_H

#include "common/err.h"
#include "config/config.h"
#include "kernels/backend.h"
#include "kernels/model_config.h"

typedef struct sym_model_backends sym_model_backends;

/* cfg's model source, backend kind and precisions (kept: cfg may go). */
sym_model_backends *sym_model_backends_create(const sym_config *cfg, sym_err *e);
/* Shard i's backend: on devices[(i * tower_split + j) % len] for part j
 * (kernels/split_backend.h when tower_split > 1). */
sym_backend *sym_model_backends_make(sym_model_backends *m, int shard, sym_err *e);
/* The first shards are built: the placed copies go (later shards upload
 * their own from the host weights). */
void sym_model_backends_placed_done(sym_model_backends *m);
const sym_model_config *sym_model_backends_model(const sym_model_backends *m);
/* Whether the backends run on CUDA (backend "auto" resolved). */
int sym_model_backends_cuda(const sym_model_backends *m);
void sym_model_backends_destroy(sym_model_backends *m);

#endif
