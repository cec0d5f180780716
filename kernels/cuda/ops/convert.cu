/* fp32 weights to their bf16 storage (convert.cuh). */
#include "kernels/cuda/ops/convert.cuh"

__global__ void k_to_bf16(const float *x, __nv_bfloat16 *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}
void sym_f32_to_bf16_dev(cudaStream_t s, const float *x, __nv_bfloat16 *y, size_t n) {
    k_to_bf16<<<4096, 256, 0, s>>>(x, y, n);
}
