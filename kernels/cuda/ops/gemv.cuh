/* The own batched GEMV (gemv.cu): any layer, any B, fp32 or bf16 weights,
 * fp32 accumulation on the CUDA cores. The path of small B, where a layer
 * is one read of its weights and the tensor-core kernels' setup does not
 * pay. */
#ifndef SYM_CUDA_GEMV_CUH
#define SYM_CUDA_GEMV_CUH

#include "kernels/cuda/ops/linear.cuh"

void sym_gemv_own(cudaStream_t s, const sym_dlin *L, const float *x, int ldx, float *y, int ldy, int B, int flags);

#endif
