/* The Mamba2 tower's state cell (mamba2.cu); its convs are ops/conv.cuh,
 * and sym_mamba2_layer (layer.cuh) enqueues a layer. */
#ifndef SYM_CUDA_MAMBA2_CUH
#define SYM_CUDA_MAMBA2_CUH

#include <stddef.h>
#include <cuda_runtime.h>

#include "kernels/cuda/runs.cuh"
#include "kernels/cuda/towers/matrix_store.cuh"

/* The SSM update and readout of NM heads of 64 x 128: h = exp(a dt) h +
 * dt b x, y = c h + d x, Y = y * silu(z), dt = softplus(PR[dt_off + n]),
 * z = PR[z_off ..]; XS the conv'd x [B][I], BC the conv'd [b | c]; h:
 * where h is and how it is stored (matrix_store.cuh). Rows of pad_slot are
 * skipped; prio: its launch priority (launch.cuh). */
void sym_mamba_ssm(cudaStream_t s, const float *XS, int ldx, const float *BC, int ldbc, const float *PR, int ldp,
                   int z_off, int dt_off, const float *a, const float *d, float *pool, size_t numel, const int *slots,
                   sym_runs rn, int pad_slot, sym_mat_loc h, float *Y, int ldy, int B, int NM, int prio);

#endif
