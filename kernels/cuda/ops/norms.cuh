/* Row-wise normalisations (norms.cu): one block per row (or row x group),
 * fixed-order reductions, so a row's result does not depend on the batch it
 * is in. Row kernels that produce a GEMM's input take xs (sym_gemv_planes;
 * both NULL: none): they also write their output's split there. */
#ifndef SYM_CUDA_NORMS_CUH
#define SYM_CUDA_NORMS_CUH

#include <cuda_runtime.h>

#include "kernels/cuda/ops/xsplit.cuh"
extern "C" {
#include "kernels/model_config.h"
}

/* The row kernels (these and the xLSTM tower's) hold a row of up to
 * SYM_ROW_MAX floats in registers; their launchers return -1 (nothing
 * launched) for wider rows, which no valid config has: the widest row is
 * Mamba2's 2H, and sym_model_config_validate keeps H within SYM_MAX_HIDDEN. */
#define SYM_ROW_MAX 8192
static_assert(2 * SYM_MAX_HIDDEN <= SYM_ROW_MAX, "a valid config's rows must fit the row kernels");

/* y = rmsnorm(x; eps) * w, rows of n */
int sym_rmsnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, float eps, const float *w,
                sym_xsplit xs);
/* u += layernorm(x) * w1 (no bias), then a = rmsnorm(u; eps) * w2: the
 * xLSTM block's exit and the next norm in one pass */
int sym_ln_add_rms(cudaStream_t s, const float *x, int ldx, float *u, int ldu, const float *w1, float *a, int lda,
                   const float *w2, float eps, int B, int n, sym_xsplit xs);

#endif
