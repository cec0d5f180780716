/* The CPU reference step, one tower of one row at a time, in fp32 or fp64
 * arithmetic (cpu_step_impl.h holds the one implementation of MODEL.md,
 * compiled twice). Used by the CPU backend and by tests that inspect
 * intermediate values. */
#ifndef SYM_CPU_STEP_H
#define SYM_CPU_STEP_H

#include "kernels/model_config.h"
#include "kernels/state_layout.h"
#include "kernels/weights.h"

#define SYM_CPU_SCRATCH_VECS 18

/* Called, when given, with each tower's input, each block's layer output
 * (before the residual) and each block's output: the points of
 * golden_long/intermediates.jsonl. block is -1 for the tower input. */
typedef void (*sym_cpu_trace_fn)(void *ctx, int tower, int block, const char *point, const double *values, int n);

/* Width M of each scratch vector: the scratch is SYM_CPU_SCRATCH_VECS * M
 * elements of the working type. */
int sym_cpu_scratch_width(const sym_model_config *c);

/* Advances tower t's state in slot by one step for one feature row and
 * returns its prediction. The slot's step counter is read (RetNet offset),
 * not advanced: the caller advances it after all four towers. */
double sym_cpu_tower_f32(const sym_weights *w, int t, const sym_state_layout *L, float *slot, const float *features,
                         float *scratch, int M, sym_cpu_trace_fn trace, void *trace_ctx);
double sym_cpu_tower_f64(const sym_weights *w, int t, const sym_state_layout *L, double *slot, const float *features,
                         double *scratch, int M, sym_cpu_trace_fn trace, void *trace_ctx);

#endif
