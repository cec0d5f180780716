/* A trivial backend for tests and the overhead bench: a slot holds its step
 * count and a running sum; step() writes [steps so far, features[0],
 * features[F-1], running sum of features[0] including this one] and advances
 * the slot. Cheap enough that the engine's own overhead dominates, and its
 * outputs prove per-symbol order (pred[0] counts 0,1,2,... per symbol). */
#ifndef SYM_ECHO_BACKEND_H
#define SYM_ECHO_BACKEND_H

#include "kernels/backend.h"

sym_backend *sym_echo_backend_create(const sym_model_config *cfg, int n_slots, int max_batch, sym_err *e);

#endif
