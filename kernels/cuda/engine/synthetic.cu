/* MODEL.md's synthetic weights drawn on the GPU: the same counter-based
 * stream as the CPU generator (kernels/synthetic_init.h), so the weights
 * are bit-identical to sym_weights_synthetic's, in seconds at full size. */
#include "kernels/cuda/engine/engine.cuh"

extern "C" {
#include "kernels/synthetic_init.h"
}

__global__ void k_init(float *p, int64_t n, int init, uint64_t key, int fan_in, int hd) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        p[i] = sym_init_value(init, key, i, n, fan_in, hd);
}

static void init_tensor(cudaStream_t s, float *p, int64_t n, int init, uint64_t key, int fan_in, int hd) {
    int64_t blocks = (n + 255) / 256;
    if (blocks > 8192) blocks = 8192;
    k_init<<<(int)blocks, 256, 0, s>>>(p, n, init, key, fan_in, hd);
}

void sym_eng_synthetic_arena(cudaStream_t s, const sym_weights *wd, float *arena, uint64_t seed) {
    const int hd = sym_cfg_head_dim(&wd->cfg);
    for (int i = 0; i < wd->n_specs; i++) {
        const sym_tensor_spec *sp = &wd->specs[i];
        init_tensor(s, arena + sp->offset, sp->numel, (int)sp->init, sym_weights_tensor_key(seed, sp->name), sp->fan_in,
                    hd);
    }
}

extern "C" int sym_cuda_synthetic_to_host(sym_weights *w, uint64_t seed, int device, sym_err *e) {
    CUDA_CHECK(cudaSetDevice(device));
    float *arena = NULL;
    CUDA_CHECK(cudaMalloc((void **)&arena, w->arena_floats * 4));
    sym_eng_synthetic_arena(0, w, arena, seed);
    cudaError_t ce = cudaGetLastError();
    if (ce == cudaSuccess) ce = cudaMemcpy(w->arena, arena, w->arena_floats * 4, cudaMemcpyDeviceToHost);
    cudaFree(arena);
    if (ce != cudaSuccess) return sym_fail(e, "synthetic weights on the GPU: %s", cudaGetErrorString(ce));
    return 0;
}
