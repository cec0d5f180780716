/* Split-K's fixed-order sum, shared by the one-launch tensor-core kernels
 * (gemv_tc, gemm_tf32, gemm_wg, gemm_wg32): each CTA of a row tile stores
 * its k slice's partials, and the last to finish sums them in slice order,
 * so a row's value depends on the layer's shape only, never on B or timing. */
#ifndef SYM_CUDA_SPLITK_CUH
#define SYM_CUDA_SPLITK_CUH

#include <cuda_runtime.h>

/* Split-K's last-CTA handshake, in every thread of the CTA once each has
 * stored its partials: one thread publishes them (a release fence, then
 * the row tile's counter) and the CTA that completes the count acquires
 * the others' (the counter, then an acquire fence). Returns 1 in every
 * thread of that last CTA. acq_rel fences synchronise through the counter;
 * __threadfence's sequentially consistent ones are not needed. sh: a
 * __shared__ int. With nthreads > 0, only the CTA's first nthreads threads
 * take part (named barrier 1 instead of __syncthreads: the others have
 * left); thread 0 is one of them. */
__device__ __forceinline__ void sym_cta_bar(int nthreads) {
    if (nthreads > 0)
        asm volatile("bar.sync 1, %0;" ::"r"(nthreads) : "memory");
    else
        __syncthreads();
}
__device__ __forceinline__ int sym_splitk_last(int *cnt, int n, int *sh, int nthreads = 0) {
    sym_cta_bar(nthreads);
    if (threadIdx.x == 0) {
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
        *sh = atomicAdd(cnt, 1) == n - 1;
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
    }
    sym_cta_bar(nthreads);
    return *sh;
}

#endif
