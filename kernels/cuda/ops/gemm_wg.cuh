/* bf16 linear layers through Hopper's wgmma with TMA (gemm_wg.cu; sm_90a
 * code: call it only on a device of compute capability 9.0, ws->wg_on):
 * x given as its three bf16 terms xs ([3][B][w], w = the input's width),
 * B <= 64; split-K summed in a fixed order, bias, activation and
 * GEMV_SPLIT_OUT (into ws->xs2) applied: one launch. */
#ifndef SYM_CUDA_GEMM_WG_CUH
#define SYM_CUDA_GEMM_WG_CUH

#include "kernels/cuda/ops/linear.cuh"

/* Returns 1, launching nothing, when the layer or B does not fit it. */
int sym_gemm_wg(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const __nv_bfloat16 *xs, float *y, int ldy,
                int B, int flags);
/* 1 when sym_gemv takes it for layer L at B rows */
int sym_gemm_wg_fits(const sym_gemm_ws *ws, const sym_dlin *L, int B);
/* Its split-K scratch (floats, counters; the wgmma 3xTF32 kernel shares the counters). */
size_t sym_gemm_wg_part_floats(int n_sm, int max_out);
int sym_gemm_wg_counters(int max_out);

#endif
