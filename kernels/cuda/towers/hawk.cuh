/* The Hawk tower's RG-LRU cell (hawk.cu); its conv is ops/conv.cuh, and
 * sym_hawk_layer (layer.cuh) enqueues a layer. */
#ifndef SYM_CUDA_HAWK_CUH
#define SYM_CUDA_HAWK_CUH

#include <stddef.h>
#include <cuda_runtime.h>

#include "kernels/cuda/runs.cuh"

/* h = a_t h + sqrt(1 - a_t^2) (sigmoid(ig) r), a_t = a^(8 sigmoid(rg));
 * T = gelu(gate) h. PR holds gate, R the conv'd recurrence input, G
 * [ig | rg]. */
void sym_hawk_cell(cudaStream_t s, const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg,
                   const float *a, float *pool, size_t numel, const int *slots, sym_runs rn, size_t off_h, float *T,
                   int ldt, int H, int B);

#endif
