/* How fast TMA boxes bring a layer's weights in, by their layout in global
 * memory (sm_90a only). Every wgmma kernel of the engine reads its weights
 * as 128-row boxes of one 128-byte row piece each, walking the k chunks of
 * row-major [out][in] weights, and no linear layer beats 1.0-1.7 TB/s,
 * against a 3 TB/s copy. This bench runs only the loads, in the kernels'
 * grid and ring of stages, with the consumers doing nothing but releasing
 * each stage:
 *   rowmajor: [out][in] fp32, boxes of 128 rows x 32 (each row piece 128 B,
 *             rows in*4 bytes apart), the kernels' pattern today;
 *   tiled:    the same bytes stored box by box ([out/128][in/32][128][32]),
 *             so a box is 16 KB in one piece.
 *   bench_tma_read [stages...]   (default 3 6)
 * Prints GB/s of weights per layout, stage count and layer shape. */
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CK(x)                                                                                                          \
    do {                                                                                                               \
        cudaError_t e_ = (x);                                                                                          \
        if (e_ != cudaSuccess) {                                                                                       \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));                        \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

#define ROWS 128
#define KC 32
#define BOX (ROWS * KC * 4)
#define MAXS 8

__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    asm volatile("{\n.reg .pred p;\nw_%=:\nmbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n@!p bra w_%=;\n}\n" ::"r"(bar),
                 "r"(parity)
                 : "memory");
}

/* grid (row tiles, k slices); thread 0 produces, thread 32 consumes */
__global__ void __launch_bounds__(64, 1) k_read(const __grid_constant__ CUtensorMap m, int tiled, int nch, int cps, int S,
                                                 float *sink) {
    extern __shared__ __align__(1024) uint8_t sm[];
    __shared__ __align__(8) uint64_t bars[2 * MAXS];
    const uint32_t base = ((uint32_t)__cvta_generic_to_shared(sm) + 1023) & ~1023u;
    const uint32_t full = (uint32_t)__cvta_generic_to_shared(bars), empty = full + 8 * MAXS;
    const int rt = blockIdx.x, c0 = blockIdx.y * cps, n = min(nch, c0 + cps) - c0;
    if (threadIdx.x == 0) {
        for (int i = 0; i < S; i++) {
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(full + 8 * i) : "memory");
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(empty + 8 * i) : "memory");
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int i = 0; i < n; i++) {
            const int st = i % S;
            const uint32_t f = full + 8 * st, dst = base + st * BOX;
            if (i >= S) mbar_wait(empty + 8 * st, ((i / S) - 1) & 1);
            asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(f), "r"(BOX) : "memory");
            if (tiled)
                asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {0, 0, "
                             "%2, %3}], [%4];\n" ::"r"(dst),
                             "l"(&m), "r"(c0 + i), "r"(rt), "r"(f)
                             : "memory");
            else
                asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
                             "%3}], [%4];\n" ::"r"(dst),
                             "l"(&m), "r"((c0 + i) * KC), "r"(rt * ROWS), "r"(f)
                             : "memory");
        }
    } else if (threadIdx.x == 32) {
        float acc = 0;
        for (int i = 0; i < n; i++) {
            const int st = i % S;
            mbar_wait(full + 8 * st, (i / S) & 1);
            acc += *(volatile float *)(sm + (base - (uint32_t)__cvta_generic_to_shared(sm)) + st * BOX);
            asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(empty + 8 * st) : "memory");
        }
        if (acc == 12345.0f) *sink = acc; /* keeps the reads */
    }
}

__global__ void k_fill(float *p, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
}

int main(int argc, char **argv) {
    int stages[8] = {3, 6}, ns = 2;
    if (argc > 1) {
        ns = 0;
        for (int i = 1; i < argc && ns < 8; i++) stages[ns++] = atoi(argv[i]);
    }
    int n_sm = 0, cc = 0, ccm = 0;
    CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0));
    CK(cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, 0));
    CK(cudaDeviceGetAttribute(&ccm, cudaDevAttrComputeCapabilityMinor, 0));
    if (cc != 9 || ccm != 0) {
        printf("SKIP: needs a compute capability 9.0 device\n");
        return 0;
    }
    void *fn = NULL;
    cudaDriverEntryPointQueryResult q;
    CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q));
    PFN_cuTensorMapEncodeTiled_v12000 enc = (PFN_cuTensorMapEncodeTiled_v12000)fn;
    const int shapes[][2] = {{8192, 2048}, {4096, 2048}, {2048, 4096}};
    const int NBUF = 8; /* rotate through more than L2 holds */
    float *sink;
    CK(cudaMalloc(&sink, 4));
    printf("BENCH | layout | stages | layer | us | GB/s\n");
    for (int si = 0; si < 3; si++) {
        const int out = shapes[si][0], in = shapes[si][1], rts = out / ROWS, nch = in / KC;
        const size_t bytes = (size_t)out * in * 4;
        float *buf[NBUF];
        for (int b = 0; b < NBUF; b++) {
            CK(cudaMalloc(&buf[b], bytes));
            k_fill<<<1024, 256>>>(buf[b], bytes / 4);
        }
        CK(cudaDeviceSynchronize());
        int ks = n_sm / rts;
        ks = ks < 1 ? 1 : ks;
        const int cps = (nch + ks - 1) / ks, ksn = (nch + cps - 1) / cps;
        for (int tiled = 0; tiled < 2; tiled++)
            for (int s = 0; s < ns; s++) {
                const int S = stages[s] > MAXS ? MAXS : stages[s];
                CUtensorMap m[NBUF];
                for (int b = 0; b < NBUF; b++) {
                    CUresult r;
                    const cuuint32_t one[4] = {1, 1, 1, 1};
                    if (!tiled) {
                        const cuuint64_t dim[2] = {(cuuint64_t)in, (cuuint64_t)out}, str[1] = {(cuuint64_t)in * 4};
                        const cuuint32_t box[2] = {KC, ROWS};
                        r = enc(&m[b], CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, buf[b], dim, str, box, one,
                                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
                    } else {
                        const cuuint64_t dim[4] = {KC, ROWS, (cuuint64_t)nch, (cuuint64_t)rts},
                                         str[3] = {KC * 4, (cuuint64_t)BOX, (cuuint64_t)BOX * nch};
                        const cuuint32_t box[4] = {KC, ROWS, 1, 1};
                        r = enc(&m[b], CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, buf[b], dim, str, box, one,
                                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
                    }
                    if (r != CUDA_SUCCESS) {
                        fprintf(stderr, "tensor map: %d\n", (int)r);
                        return 1;
                    }
                }
                const size_t smem = (size_t)S * BOX + 1024;
                CK(cudaFuncSetAttribute(k_read, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
                cudaEvent_t a, b;
                CK(cudaEventCreate(&a));
                CK(cudaEventCreate(&b));
                const int iters = 48;
                for (int w = 0; w < NBUF; w++) k_read<<<dim3(rts, ksn), 64, smem>>>(m[w], tiled, nch, cps, S, sink);
                CK(cudaEventRecord(a));
                for (int it = 0; it < iters; it++)
                    k_read<<<dim3(rts, ksn), 64, smem>>>(m[it % NBUF], tiled, nch, cps, S, sink);
                CK(cudaEventRecord(b));
                CK(cudaEventSynchronize(b));
                CK(cudaGetLastError());
                float ms;
                CK(cudaEventElapsedTime(&ms, a, b));
                const double us = ms * 1e3 / iters;
                printf("BENCH | %s | %d | %dx%d fp32 (%d x %d CTAs) | %.1f | %.0f\n", tiled ? "tiled" : "rowmajor", S,
                       out, in, rts, ksn, us, bytes / us / 1e3);
                cudaEventDestroy(a), cudaEventDestroy(b);
            }
        for (int b = 0; b < NBUF; b++) cudaFree(buf[b]);
    }
    return 0;
}
