/* One linear layer alone on the device, through one chosen path of
 * ops/linear.cuh, for its CPU check (tests/cuda/test_gv_gemv.c) and its
 * timing (dev/cuda/linear.c). */
#ifndef SYM_DEV_LINEAR_RUN_H
#define SYM_DEV_LINEAR_RUN_H

#include "common/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y[b*ldy + o] (=|+=) act(W x_b + bias) for b < B, flags as the engine's
 * (1: ReLU, 2: accumulate into y). W is [out, in] in fp32, stored as bf16
 * on the device when bf16 is set; blk_rows/xwrap describe block-diagonal
 * layers (row o reads x + ((o / blk_rows) % xwrap) * in; dense: out, 1).
 * y is read (for accumulation) and overwritten with one run's output.
 * flags 8 (bf16 paths that read x's terms: cuBLAS, wgmma) also checks the
 * output's terms written for the next layer. Those two paths take x's
 * terms split before the layer, as the engine's producers write them, so
 * their timing leaves the split out. The wgmma 3xTF32 path (fp32) times
 * its own split of x with the product: it has no producer that splits.
 * The kernels' shares of the GPU are the default tuning's (the xLSTM
 * tower's for the bf16 wgmma kernel).
 * iters > 0 then times that many more launches, median in *us. */
typedef enum {
    SYM_LINEAR_OWN = 0,    /* the own GEMV */
    SYM_LINEAR_CUBLAS = 1, /* cuBLAS (bf16: over x's three terms) */
    SYM_LINEAR_TC = 2,     /* bf16: the mma.sync tensor-core GEMV */
    SYM_LINEAR_TF32 = 3,   /* fp32: mma.sync 3xTF32 */
    SYM_LINEAR_WG = 4,     /* bf16: wgmma (compute capability 9.0) */
    SYM_LINEAR_WG32 = 5    /* fp32: wgmma 3xTF32 (compute capability 9.0) */
} sym_linear_path;
int sym_cuda_linear_run(int device, sym_linear_path path, const float *W, const float *bias, int out, int in,
                        int blk_rows, int xwrap, int bf16, const float *x, int ldx, float *y, int ldy, int B, int flags,
                        int iters, float *us, sym_err *e);

/* 1 when `device` is of compute capability 9.0 (H100, H200), where the
 * wgmma kernels (sm_90a code) run. */
int sym_cuda_device_sm90(int device);

#ifdef __cplusplus
}
#endif
#endif
