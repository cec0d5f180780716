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

/* Bytes used on the device now and free. */
int sym_cuda_mem_info(int device, size_t *used, size_t *free_bytes, sym_err *e);

#ifdef __cplusplus
}
#endif
#endif
