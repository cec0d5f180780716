/* fp32 linear layers through Hopper's wgmma to fp32 accuracy (3xTF32;
 * gemm_wg32.cu, sm_90a code: compute capability 9.0 only, ws->wg_on), x
 * fp32 [B][ldx], B <= 128: x's two terms into ws->xs32 ([2][B][w]; with
 * GEMV_X_SPLIT they are there already), then the product with split-K
 * summed in a fixed order, bias and activation applied. */
#ifndef SYM_CUDA_GEMM_WG32_CUH
#define SYM_CUDA_GEMM_WG32_CUH

#include "kernels/cuda/ops/linear.cuh"

/* Returns 1, launching nothing, when the layer or B does not fit it. */
int sym_gemm_wg32(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y,
                  int ldy, int B, int flags);
/* 1 when sym_gemv takes it for layer L at B rows */
int sym_gemm_wg32_fits(const sym_gemm_ws *ws, const sym_dlin *L, int B);
/* Its split-K scratch (floats; the counters are sym_gemm_wg_counters'), and
 * ws->xs32's floats for inputs up to max_in wide. */
size_t sym_gemm_wg32_part_floats(int n_sm, int max_out);
size_t sym_gemm_wg32_xs_floats(int max_in);

#endif
