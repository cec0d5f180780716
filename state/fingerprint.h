/* What a state directory's bytes mean: a 64-bit fingerprint of everything
 * that decides a step's result (the model's config and weights, the
 * backend, each tower's precision and state storage), written into every
 * log segment and checked by a shard process at a router's handshake. A
 * directory written by another engine is refused by name rather than
 * replayed into states that would silently differ. */
#ifndef SYM_STATE_FINGERPRINT_H
#define SYM_STATE_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "config/config.h"

/* cuda: whether the engine runs the CUDA backend (its state is fp32). Reads
 * the model folder's files whole (a second or so for a full-size model). */
int sym_state_fingerprint(const sym_config *cfg, int cuda, uint64_t *fp, sym_err *e);

#endif
