/* Linear layers through cuBLAS (gemm_cublas.cu), the path of large B:
 * fp32 weights through SGEMM (no TF32), then bias and ReLU in place; bf16
 * weights as one bf16 tensor-core GEMM over x's three bf16 terms (hi, mid,
 * lo: residual ~2^-24 |x|) with fp32 accumulation, the terms' products
 * summed in an epilogue: the product with the bf16 weights to ~fp32
 * accuracy. Block-diagonal layers are one batched GEMM per part. */
#ifndef SYM_CUDA_GEMM_CUBLAS_CUH
#define SYM_CUDA_GEMM_CUBLAS_CUH

#include "kernels/cuda/ops/linear.cuh"

/* Returns a cuBLAS status (0 = success). x's bf16 terms are split here
 * unless flags has GEMV_X_SPLIT (in ws->xs) or GEMV_X_CHAIN (in ws->xs2). */
int sym_gemm_cublas(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y,
                    int ldy, int B, int flags);

/* x (B rows of width w) split into its three bf16 terms in ws->xs */
void sym_gemv_split(cudaStream_t s, const sym_gemm_ws *ws, const float *x, int ldx, int w, int B);

#endif
