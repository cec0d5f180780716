/* The RetNet tower's kernels (retnet.cu), in step order; sym_retnet_layer
 * (layer.cuh) enqueues a layer. PR is the projection [q | k | v | g]. */
#ifndef SYM_CUDA_RETNET_CUH
#define SYM_CUDA_RETNET_CUH

#include <stddef.h>
#include <cuda_runtime.h>

#include "kernels/cuda/ops/xsplit.cuh"
#include "kernels/cuda/runs.cuh"
#include "kernels/cuda/towers/matrix_store.cuh"

/* q and k rotated in place by the slot's step count times angle (theta in
 * fp64), k scaled by `scaling` */
void sym_retnet_rotary(cudaStream_t s, float *PR, int ldp, int H, int hd, const float *angle, const float *pool,
                       size_t numel, const int *slots, sym_runs rn, float scaling, int B);
/* S = decay S + k v^T per head, O = q S; S: where S is and how it is
 * stored (matrix_store.cuh); rows of pad_slot skipped; prio: its launch
 * priority (launch.cuh) */
void sym_retnet_cell(cudaStream_t s, const float *PR, int ldp, int H, int NH, const float *decay, float *pool,
                     size_t numel, const int *slots, sym_runs rn, int pad_slot, sym_mat_loc S, float *O, int ldo, int B,
                     int prio);
/* the scale's recurrence, ON = rmsnorm(O / sqrt(scale)) * silu(g) per head */
void sym_retnet_norm(cudaStream_t s, const float *O, int ldo, const float *PR, int ldp, int H, int NH,
                     const float *decay, float *pool, size_t numel, const int *slots, sym_runs rn, size_t off_scale,
                     float *ON, int ldn, int B, sym_xsplit xs);

#endif
