/* The causal depthwise conv (kernel 4) that Mamba2's x, b, c and Hawk's
 * recurrence input go through (conv.cu), with its state of the last three
 * inputs in the slot. */
#ifndef SYM_CUDA_CONV_CUH
#define SYM_CUDA_CONV_CUH

#include <stddef.h>
#include <cuda_runtime.h>

#include "kernels/cuda/runs.cuh"

/* y = (silu)(conv(x)) over C channels, the state [C][3] at slot offset
 * off advanced; a run's rows in order (sym_runs). */
void sym_dconv(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int C, float *pool, size_t numel,
               const int *slots, sym_runs rn, size_t off, const float *cw, const float *cb, int silu);

#endif
