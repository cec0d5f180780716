/* A GEMM input's split terms, as the kernels that produce a linear layer's
 * input write them beside the input itself (so that the layer's path needs
 * no split kernel): three bf16 terms for the bf16 paths that read terms
 * (cuBLAS's, the wgmma kernel), two tf32 terms for the wgmma 3xTF32
 * kernel. sym_gemv_planes (ops/linear.cuh) says where, per layer and B. */
#ifndef SYM_CUDA_XSPLIT_CUH
#define SYM_CUDA_XSPLIT_CUH

#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>

/* Where a kernel that produces a GEMM's input also writes that input's
 * split, for the layer's path to read without a split kernel
 * (sym_gemv_planes, sym_put_x): bf, three bf16 terms [3][B][w]; tf, two
 * tf32 terms [2][B][w] in the wgmma 3xTF32 kernel's column order. Both
 * NULL: no split. */
struct sym_xsplit {
    __nv_bfloat16 *bf;
    float *tf;
};

/* v, element `at` of a GEMM input, as the three bf16 terms the cuBLAS path
 * multiplies (hi, mid, lo: the residual is ~2^-24 |v|); plane = B x width */
__device__ __forceinline__ void sym_put_split(__nv_bfloat16 *xs, size_t plane, size_t at, float v) {
    __nv_bfloat16 hi = __float2bfloat16_rn(v);
    float r = v - __bfloat162float(hi);
    __nv_bfloat16 mid = __float2bfloat16_rn(r);
    xs[at] = hi;
    xs[plane + at] = mid;
    xs[2 * plane + at] = __float2bfloat16_rn(r - __bfloat162float(mid));
}
/* v rounded to tf32 (to nearest, ties away): the 3xTF32 kernels' big term */
__device__ __forceinline__ float sym_tf32_rna(float v) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return __uint_as_float(r);
}
/* Where column q (0..31) of a 32-wide chunk of x sits in the wgmma 3xTF32
 * kernel's planes (ops/gemm_wg32.cu says why): a thread's 16-byte weight
 * piece holds columns 4t..4t+3 (and 16 + those), which the k8 steps take
 * as A's columns t and t + 4: column 16h + 4q' + 2r + e goes to k step
 * 2h + r, slot q' + 4e, and B's slot for that is 8(2h + r) + q' + 4e. */
__host__ __device__ __forceinline__ int sym_w32_perm(int q) {
    return (q & 16) | (((q >> 1) & 1) << 3) | ((q >> 2) & 3) | ((q & 1) << 2);
}
/* Element (b, c) of a GEMM input [B][w], v, into p's planes, if any. */
__device__ __forceinline__ void sym_put_x(const sym_xsplit &p, int B, int w, int b, int c, float v) {
    if (p.bf) sym_put_split(p.bf, (size_t)B * w, (size_t)b * w + c, v);
    if (p.tf) {
        const float big = sym_tf32_rna(v);
        const size_t at = (size_t)b * w + (c & ~31) + sym_w32_perm(c & 31);
        p.tf[at] = big;
        p.tf[(size_t)B * w + at] = sym_tf32_rna(v - big);
    }
}

#endif
