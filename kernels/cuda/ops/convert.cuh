/* fp32 weights to their bf16 storage on the device (convert.cu). */
#ifndef SYM_CUDA_CONVERT_CUH
#define SYM_CUDA_CONVERT_CUH

#include <stddef.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>

/* y[i] = x[i] rounded to bf16 (to nearest even), i < n */
void sym_f32_to_bf16_dev(cudaStream_t s, const float *x, __nv_bfloat16 *y, size_t n);

#endif
