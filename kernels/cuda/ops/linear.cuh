/* A linear layer on the device and the one call that runs it, sym_gemv:
 * y[b*ldy + o] (=|+=) act(W x_b + bias) for b < B. sym_gemv picks the path
 * by the weights' type and B, from the ranges in the stream's workspace
 * (sym_gemm_ws, filled from the backend's tuning, sym_cuda_tuning):
 *
 *   bf16 weights, tc_min <= B <= tc_max        mma.sync tensor-core GEMV (gemv_tc.cuh)
 *   fp32 weights, wg32_min <= B <= wg32_max    wgmma 3xTF32 on sm_90 (gemm_wg32.cuh)
 *   fp32 weights, tf32_min <= B <= tf32_max    mma.sync 3xTF32 (gemm_tf32.cuh)
 *   bf16 weights, wg_min <= B <= wg_max        wgmma on sm_90 (gemm_wg.cuh)
 *   B < gemm_min, or a block-diagonal layer
 *     and B <= blk_own_max                     own batched GEMV (gemv.cuh)
 *   else                                       cuBLAS (gemm_cublas.cuh)
 *
 * A path that cannot take the layer (a shape or alignment it does not fit)
 * refuses before launching and the next one is tried. Every path sums a
 * row in an order that depends on the layer's shape only: a row's output
 * does not depend on B or on the other rows. */
#ifndef SYM_CUDA_LINEAR_CUH
#define SYM_CUDA_LINEAR_CUH

#include <stddef.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>

#include "kernels/cuda/ops/xsplit.cuh"

/* A (possibly concatenated) linear layer on the device: rows [out, in] in
 * fp32 or bf16, optional fp32 bias [out]. Row o reads the input slice
 * x + ((o / blk_rows) % xwrap) * in: blk_rows = out, xwrap = 1 for a dense
 * layer; blk_rows = bs, xwrap = nb for block-diagonal layers (several
 * block-diagonal layers reading the same input can be stacked; a block's
 * rows may be wider than bs: the sLSTM gates read [x | y_prev], in = 2 bs). */
typedef struct {
    const void *w;
    const float *b;
    int out, in, blk_rows, xwrap, bf16;
} sym_dlin;

/* GEMV_RELU, GEMV_ACC: y = relu(...), y += (...).
 * GEMV_X_SPLIT: x's terms are already where the layer's path reads them
 * (three bf16 terms in ws->xs, or two tf32 terms in ws->xs32 for the wgmma
 * 3xTF32 kernel), written by the kernel that produced x where
 * sym_gemv_planes said so: no split kernel.
 * GEMV_SPLIT_OUT: also write the output's terms into ws->xs2, for the next
 * layer, which then takes GEMV_X_CHAIN (its terms are in ws->xs2); only
 * where sym_gemv_planes gives both layers bf16 terms. A second buffer,
 * because the one-launch kernels still read ws->xs while their last CTAs
 * store outputs. */
enum { GEMV_RELU = 1, GEMV_ACC = 2, GEMV_X_SPLIT = 4, GEMV_SPLIT_OUT = 8, GEMV_X_CHAIN = 16 };

/* One output of a linear layer, as every GEMV / GEMM kernel stores it:
 * *yp (=|+=) act(v + bias) per GEMV_RELU / GEMV_ACC; returns what it stored. */
__device__ __forceinline__ float sym_linear_store(float *yp, float v, float bias, int flags) {
    v += bias;
    if (flags & GEMV_RELU) v = fmaxf(v, 0.0f);
    if (flags & GEMV_ACC) v += *yp;
    *yp = v;
    return v;
}

/* Per-stream resources and choices of the linear paths. The engine keeps
 * one per tower (ws of its stream), filled at creation from its tuning. */
typedef struct {
    cublasHandle_t h;        /* bound to the stream */
    __nv_bfloat16 *xs, *xs2; /* bf16 terms of x [3][Bmax][max_in], of the output [3][Bmax][max_out] (GEMV_SPLIT_OUT) */
    float *y2;               /* cuBLAS's raw output of the bf16 terms [3][Bmax][max_out] */
    /* x's two tf32 terms for the wgmma 3xTF32 kernel, [2][B][w] for B <=
     * 128 (sym_gemm_wg32_xs_floats); NULL: that kernel is never taken */
    float *xs32;
    /* The one-launch tensor-core kernels' split-K partials and per-row-tile
     * counters (zero between launches), shared: the kernels of one stream
     * touch them only after griddepcontrol.wait, so never two at once
     * (sym_splitk_part_floats, sym_splitk_counters); NULL sk_part: no
     * tensor-core kernel (before sm_80) */
    float *sk_part;
    int *sk_cnt;
    int sk_cnt_n;
    int n_sm;
    int wg_on; /* the device runs the wgmma kernels (compute capability 9.0) */
    /* the paths' ranges of B (the table above) */
    int gemm_min, blk_own_max, tc_min, tc_max, tf32_min, tf32_max, wg_min, wg_max, wg32_min, wg32_max;
    int tc_ctas;       /* CTAs per SM the tensor-core GEMV's split-K aims at (1..4) */
    int wg_grid_pct;   /* share of the SMs (%) the bf16 wgmma kernel's grid aims at */
    int wg_smem;       /* bytes of shared memory for its stages */
    int wg32_grid_pct; /* the same for the wgmma 3xTF32 kernel */
    int wg32_smem;
} sym_gemm_ws;

/* Runs layer L on the path the table above picks. Returns a cuBLAS status
 * (0 = success). */
int sym_gemv(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y, int ldy,
             int B, int flags);

/* Where the kernel that produces layer L's input at B rows should write
 * that input's split (sym_xsplit): three bf16 terms ([3][B][w], w = the
 * input's width) for a bf16 layer through cuBLAS or the wgmma kernel, two
 * tf32 terms for an fp32 layer through the wgmma 3xTF32 kernel, or neither
 * where sym_gemv's path splits nothing (own GEMV, the tensor-core GEMV,
 * mma.sync 3xTF32, SGEMM). Saves the split kernel, a launch in the tower's
 * chain, before every such layer. */
sym_xsplit sym_gemv_planes(const sym_gemm_ws *ws, const sym_dlin *L, int B);

/* The sym_gemv flag that goes with a producer having written planes p. */
static inline int sym_xsplit_flag(sym_xsplit p) { return p.bf || p.tf ? GEMV_X_SPLIT : 0; }

/* The shared split-K scratch (sym_gemm_ws.sk_*) for all the one-launch
 * tensor-core kernels, for layers up to max_out rows on n_sm SMs: floats
 * and counters */
size_t sym_splitk_part_floats(int n_sm, int max_out);
int sym_splitk_counters(int max_out);

#endif
