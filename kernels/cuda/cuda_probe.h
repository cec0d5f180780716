/* What benches, dev programs and tests may ask of a CUDA backend beyond the
 * backend contract (kernels/cuda_backend.h). Nothing on the serving path
 * uses it. */
#ifndef SYM_CUDA_PROBE_H
#define SYM_CUDA_PROBE_H

#include <cuda_runtime_api.h>
#include <stddef.h>

#include "kernels/cuda_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of weights a CUDA backend holds on its device. */
size_t sym_cuda_backend_weight_bytes(const sym_backend *b);

/* The stream a CUDA backend's steps run on, to time them with events. */
cudaStream_t sym_cuda_backend_stream(const sym_backend *b);

/* Enqueues one replay of the graph of B rows' bucket (runs of one) on that
 * stream and returns without waiting: the last step's input copy, the
 * step, the output copy. The state advances. A step of B rows must have
 * run before (it captures the graph and fills the input block); the
 * calling thread's device must be the backend's. */
int sym_cuda_backend_replay(sym_backend *b, int B, sym_err *e);

/* The fp32 weight arena placed on `device` (NULL where dw has none) and
 * its length in floats. */
const float *sym_cuda_device_weights_arena(const sym_device_weights *dw, int device, size_t *floats);

#ifdef __cplusplus
}
#endif
#endif
