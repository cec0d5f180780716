/* bf16 linear layers for B <= 64 on the tensor cores (mma.sync), in one
 * launch (gemv_tc.cu): x split into three bf16 terms in the kernel, split-K
 * summed in a fixed order, bias and activation applied. */
#ifndef SYM_CUDA_GEMV_TC_CUH
#define SYM_CUDA_GEMV_TC_CUH

#include "kernels/cuda/ops/linear.cuh"

/* Returns 1, launching nothing, when the layer or B does not fit it (the
 * caller takes another path). */
int sym_gemv_tc(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y, int ldy,
                int B, int flags);
/* The split-K scratch it needs for layers up to max_out rows (floats, counters). */
size_t sym_gemv_tc_part_floats(int n_sm, int max_out);
int sym_gemv_tc_counters(int max_out);

#endif
