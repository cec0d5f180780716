/* fp32 linear layers on the tensor cores (mma.sync) to fp32 accuracy
 * (gemm_tf32.cu): each operand split into two TF32 terms, three products,
 * B <= 128, split-K summed in a fixed order, bias and activation applied:
 * one launch. */
#ifndef SYM_CUDA_GEMM_TF32_CUH
#define SYM_CUDA_GEMM_TF32_CUH

#include "kernels/cuda/ops/linear.cuh"

/* Returns 1, launching nothing, when the layer or B does not fit it. */
int sym_gemm_tf32(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y,
                  int ldy, int B, int flags);
/* Its split-K scratch (floats, counters). */
size_t sym_gemm_tf32_part_floats(int n_sm);
int sym_gemm_tf32_counters(int max_out);

#endif
