/* A test double for actors/engine.h: deterministic, synchronous, no model.
 * It validates like the real engine (symbol syntax, feature count, finite
 * features, symbol capacity = cfg->max_symbols) and keeps per symbol a step
 * counter, so tests can prove that a refused request advanced no state:
 *   pred[0] = the symbol's step count after this request (1, 2, ...)
 *   pred[1] = running sum of features[0] over the symbol's steps
 *   pred[2] = the symbol's slot (order of first appearance)
 *   pred[3] = features[1]
 * Predictions are queued at submit() and the ready fd (an eventfd) is
 * signalled, like the real engine's completions. */
#ifndef SYM_TESTS_FAKE_ENGINE_H
#define SYM_TESTS_FAKE_ENGINE_H

#include "actors/engine.h"

/* Steps taken by symbol so far (0 when unknown). */
long fake_engine_steps(sym_engine *g, const char *symbol);
/* Requests stepped, over all symbols. */
long fake_engine_total_steps(sym_engine *g);

#endif
