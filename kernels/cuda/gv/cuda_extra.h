/* Extras of the CUDA engine beyond kernels/cuda_backend.h, for its own tests
 * and benches (not part of the backend contract). */
#ifndef SYM_CUDA_EXTRA_H
#define SYM_CUDA_EXTRA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of weights held on the device by a CUDA backend. */
size_t sym_cuda_backend_weight_bytes(const sym_backend *b);


/* Times `iters` replays of one step's graph (B rows, slots, features) with
 * CUDA events around each replay; ms[i] receives each. A replay includes
 * the input copy from pinned memory and the output copy back, not the
 * host's memcpy into the pinned block. The state advances. */
int sym_cuda_backend_time_steps(sym_backend *b, int B, const int32_t *slots, const float *features, int iters,
                                float *ms, sym_err *e);

/* Device-to-device copy bandwidth in GB/s counting bytes read plus written
 * (median of several copies of `bytes`). */
int sym_cuda_copy_bandwidth(int device, size_t bytes, double *gbps, sym_err *e);


/* *equal = 1 when the weights placed on `device` are bit-identical to the
 * host arena they came from. */
int sym_cuda_device_weights_equal(const sym_device_weights *dw, const sym_weights *host, int device, int *equal,
                                  sym_err *e);

/* One linear layer alone, for its CPU check and timing harness:
 * y[b*ldy + o] (=|+=) act(W x_b + bias) for b < B, flags as the engine's
 * (1: ReLU, 2: accumulate into y). W is [out, in] in fp32, stored as bf16
 * on the device when bf16 is set; blk_rows/xwrap describe block-diagonal
 * layers (row o reads x + ((o / blk_rows) % xwrap) * in; dense: out, 1).
 * y is read (for accumulation) and overwritten with one run's output.
 * flags 8 (bf16 paths that read x's terms: cuBLAS, wgmma) also checks the
 * output's terms written for the next layer. Those two paths take x's
 * terms split before the layer, as the engine's producers write them, so
 * their timing leaves the split out. The wgmma 3xTF32 path (fp32, B <=
 * 48) times its own split of x with the product: it has no producer that
 * splits.
 * iters > 0 then times that many more launches, median in *us. */
typedef enum {
    SYM_LINEAR_OWN = 0,
    SYM_LINEAR_CUBLAS = 1,
    SYM_LINEAR_TC = 2,
    SYM_LINEAR_TF32 = 3,
    SYM_LINEAR_WG = 4,
    SYM_LINEAR_WG32 = 5
} sym_linear_path;
int sym_cuda_linear_run(int device, sym_linear_path path, const float *W, const float *bias, int out, int in,
                        int blk_rows, int xwrap, int bf16, const float *x, int ldx, float *y, int ldy, int B,
                        int flags, int iters, float *us, sym_err *e);

/* 1 when `device` is of compute capability 9.0 (H100, H200), where the
 * engine's wgmma kernel (sm_90a code) runs. */
int sym_cuda_device_sm90(int device);

/* Starts (on = 1) or stops the profiler's collection, for profiling one
 * step (`ncu --profile-from-start off`). */
int sym_cuda_profiler(int on, sym_err *e);

/* Bytes used on the device now and free. */
int sym_cuda_mem_info(int device, size_t *used, size_t *free_bytes, sym_err *e);

#ifdef __cplusplus
}
#endif
#endif
