/* Device helpers every kernel file of the CUDA engine shares: IEEE math
 * (no fast-math: the sLSTM stabiliser starts at -inf), fixed-order warp and
 * block sums (a row's result never depends on the batch it is in), 16-byte
 * weight loads, and a slot's state in the pool. */
#ifndef SYM_CUDA_DEVICE_CUH
#define SYM_CUDA_DEVICE_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>

__device__ __forceinline__ float sym_to_float(float v) { return v; }
__device__ __forceinline__ float sym_to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float sym_sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }
__device__ __forceinline__ float sym_siluf(float v) { return v / (1.0f + expf(-v)); }
__device__ __forceinline__ float sym_softplusf(float v) { return v > 20.0f ? v : log1pf(expf(v)); }
__device__ __forceinline__ float sym_logsigmoidf(float v) { return v < 0.0f ? v - log1pf(expf(v)) : -log1pf(expf(-v)); }
__device__ __forceinline__ float sym_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
/* Deterministic block sum (fixed tree); every thread gets the result.
 * sh must hold 32 floats; blockDim.x a multiple of 32. */
__device__ __forceinline__ float sym_block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = sym_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = lane < nw ? sh[lane] : 0.0f;
    t = sym_warp_sum(t);
    return t;
}
/* 8 consecutive weights (16 or 32 aligned bytes) as floats */
template <typename WT> __device__ __forceinline__ void load8(const WT *p, float *v);
template <> __device__ __forceinline__ void load8<float>(const float *p, float *v) {
    float4 a = *(const float4 *)p, b = *(const float4 *)(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
template <> __device__ __forceinline__ void load8<__nv_bfloat16>(const __nv_bfloat16 *p, float *v) {
    uint4 u = *(const uint4 *)p;
    unsigned int w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        v[2 * i] = __uint_as_float(w[i] << 16);
        v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
/* Row b's slot: its state, numel floats, in the pool. */
__device__ __forceinline__ float *sym_slot(float *pool, size_t numel, const int *slots, int b) {
    return pool + (size_t)slots[b] * numel;
}

#endif
