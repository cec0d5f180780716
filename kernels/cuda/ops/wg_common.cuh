/* Shared by the two wgmma + TMA kernels (gemm_wg.cu: bf16 weights;
 * gemm_wg32.cu: fp32 weights as 3xTF32), both Hopper's own code
 * (sm_90a): the CTA's shape and its start (wg_cta), the mbarrier and TMA
 * wrappers, wgmma's shared-memory descriptor, the producer's loop, the
 * split-K sum with the layer's epilogue, and the host's tensor-map
 * encoder. A CTA is two consumer warpgroups of 64
 * output rows each and a producer warp (in the 3xTF32 kernel above B =
 * 64, a producer warpgroup) whose first lane keeps a ring of shared-memory
 * stages full with TMA copies. */
#ifndef SYM_CUDA_WG_COMMON_CUH
#define SYM_CUDA_WG_COMMON_CUH

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/linear.cuh"
#include "kernels/cuda/ops/splitk.cuh"

#include <cuda.h> /* CUtensorMap and its enums only: the encoder comes through the runtime */
#include <cudaTypedefs.h>

#define WG_ROWS 128 /* output rows per CTA: two warpgroups of 64 */
#define WG_MAX_NB 8 /* the bf16 kernel's batch rows in groups of 8: B <= 64 */
#define WG_STAGES_MIN 3
#define WG_STAGES_MAX 8
#define WG_THREADS 288 /* the bf16 kernel: two consumer warpgroups and a producer warp */

struct WgArgs {
    const float *bias;
    float *y, *part;
    int *cnt;
    __nv_bfloat16 *xs_out;
    int ldy, B, out, in, blk_rows, xwrap, flags, ks_n, cps, stages;
};

/* A thread's place in its CTA and the CTA's share of the layer, as both
 * kernels see them. */
struct WgCta {
    int tid, wg, warp, g, t; /* thread, warpgroup, warp in it, the lane's row group and pair */
    int rt, ks, row0;        /* row tile, k slice, first output row */
    int c_beg, n, xk0;       /* first k chunk, chunks, this row tile's input slice in x */
    uint32_t base, full, empty; /* the stages (1 KB aligned), full[S], empty[S] */
    int *last;                  /* wg_finish's shared flag */
};

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    asm volatile("{\n.reg .pred p;\nwait_%=:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra wait_%=;\n}\n" ::"r"(bar),
                 "r"(parity)
                 : "memory");
}
/* one box of a tensor map into shared memory, completing on bar */
__device__ __forceinline__ void tma2(uint32_t dst, const CUtensorMap *m, int c0, int c1, uint32_t bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
                 "[%4];\n" ::"r"(dst),
                 "l"(m), "r"(c0), "r"(c1), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void tma3(uint32_t dst, const CUtensorMap *m, int c0, int c1, int c2, uint32_t bar) {
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, "
                 "%4}], [%5];\n" ::"r"(dst),
                 "l"(m), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
                 : "memory");
}
#endif

/* wgmma's shared-memory matrix descriptor for a K-major operand in the
 * 128-byte swizzle: start address, 8-row groups 1 KB apart (the leading
 * offset is unused there), swizzle mode 1 in bits 62-63; addresses and
 * offsets in 16-byte units */
__device__ __forceinline__ uint64_t wg_desc_sw128(uint32_t addr) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | (1ull << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
/* Both kernels' start, by all their threads, kc inputs a chunk: where the
 * thread and its CTA stand, the stages' base in the dynamic shared memory
 * (the 128-byte swizzle repeats every 1 KB, so it is aligned to that),
 * and a.stages full barriers (one TMA arrival each) and as many empty ones
 * (one arrival per consumer warpgroup), initialised before any thread
 * goes on. */
__device__ __forceinline__ WgCta wg_cta(const WgArgs &a, int kc) {
    extern __shared__ __align__(128) uint8_t wg_sm[];
    __shared__ __align__(8) uint64_t bars[2 * WG_STAGES_MAX]; /* full[S], then empty[S] */
    __shared__ int last;
    WgCta c;
    c.tid = threadIdx.x, c.wg = c.tid >> 7, c.warp = (c.tid >> 5) & 3, c.g = (c.tid & 31) >> 2, c.t = c.tid & 3;
    c.rt = blockIdx.x, c.ks = blockIdx.y, c.row0 = c.rt * WG_ROWS;
    const int nch = a.in / kc;
    c.c_beg = c.ks * a.cps, c.n = min(nch, c.c_beg + a.cps) - c.c_beg;
    c.xk0 = ((c.row0 / a.blk_rows) % a.xwrap) * a.in;
    c.base = (smem_u32(wg_sm) + 1023) & ~1023u;
    c.full = smem_u32(bars), c.empty = c.full + 8 * WG_STAGES_MAX;
    c.last = &last;
    if (c.tid == 256) { /* the producer warp's first lane */
        for (int i = 0; i < a.stages; i++) mbar_init(c.full + 8 * i, 1), mbar_init(c.empty + 8 * i, 2);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    return c;
}

/* The producer warp: its lane 0 keeps the ring of S stages (stage bytes
 * each, from c.base) full for the CTA's c.n k chunks from c_beg, kc inputs
 * each: the weights' box (tw at input (c_beg + i) kc, row row0) at the
 * stage's start, x's box (tx at input xk0 + (c_beg + i) kc) w_bytes in,
 * both completing on full[stage]. The first S chunks' weights are
 * requested before griddepcontrol.wait (they do not depend on the previous
 * kernel), their x after; a stage is refilled once empty says both
 * warpgroups are done with it. */
__device__ __forceinline__ void wg_produce(const CUtensorMap *tw, const CUtensorMap *tx, const WgCta &c, int stage,
                                           int w_bytes, int S, int kc) {
    const uint32_t base = c.base, full = c.full, empty = c.empty;
    const int n = c.n, c_beg = c.c_beg, row0 = c.row0, xk0 = c.xk0;
    if ((threadIdx.x & 31) != 0) {
        SYM_PDL_ENTER();
        return;
    }
    for (int i = 0; i < S && i < n; i++) {
        mbar_expect(full + 8 * i, stage);
        tma2(base + i * stage, tw, (c_beg + i) * kc, row0, full + 8 * i);
    }
    SYM_PDL_ENTER();
    for (int i = 0; i < S && i < n; i++)
        tma3(base + i * stage + w_bytes, tx, xk0 + (c_beg + i) * kc, 0, 0, full + 8 * i);
    for (int i = S; i < n; i++) {
        const int st = i % S;
        mbar_wait(empty + 8 * st, ((i / S) - 1) & 1);
        mbar_expect(full + 8 * st, stage);
        tma2(base + st * stage, tw, (c_beg + i) * kc, row0, full + 8 * st);
        tma3(base + st * stage + w_bytes, tx, xk0 + (c_beg + i) * kc, 0, 0, full + 8 * st);
    }
}
#endif

/* The end of both kernels, run by the CTA's first nthreads threads (all
 * of them: 0): v[j][i] holds this consumer thread's sums (cons) for output
 * row row0 + rl0 (+ 8 for i >= 2) and batch row 8j + 2t (+ 1 for odd i),
 * over the CTA's k slice ks. With several slices each CTA stores its
 * partials, and the last CTA of row tile rt sums them in the fixed order
 * 0, 1, ... (a row's value does not depend on B or timing); then bias,
 * ReLU, accumulation and GEMV_SPLIT_OUT are applied. rl0 is the thread's
 * first row in the CTA (its warpgroup's, warp's and row group's), t its
 * lane's pair. */
template <int NB>
__device__ __forceinline__ void wg_finish(const WgArgs &a, float (&v)[NB][4], const WgCta &c, bool cons,
                                          int nthreads = 0) {
    constexpr int BP = 8 * NB;
    const int tid = c.tid, rt = c.rt, ks = c.ks, row0 = c.row0, rl0 = c.wg * 64 + c.warp * 16 + c.g, t = c.t;
    int *last = c.last;
    if (a.ks_n > 1) {
        float *pp = a.part + ((size_t)rt * a.ks_n + ks) * BP * WG_ROWS;
        if (cons)
#pragma unroll
            for (int j = 0; j < NB; j++)
#pragma unroll
                for (int i = 0; i < 4; i++)
                    __stcg(pp + (size_t)(8 * j + 2 * t + (i & 1)) * WG_ROWS + rl0 + 8 * (i >> 1), v[j][i]);
        /* the last CTA of the row tile sums */
        if (!sym_splitk_last(a.cnt + rt, a.ks_n, last, nthreads) || !cons) return;
        /* the slices in order 0, 1, ...; each slice's NB * 4 loads issued
         * together (one L2 round trip a slice, not one an output) */
        const float *p0 = a.part + (size_t)rt * a.ks_n * BP * WG_ROWS;
#pragma unroll
        for (int j = 0; j < NB; j++)
#pragma unroll
            for (int i = 0; i < 4; i++) v[j][i] = 0.0f;
        for (int k = 0; k < a.ks_n; k++) {
            const float *pk = p0 + (size_t)k * BP * WG_ROWS;
            float u[NB][4];
#pragma unroll
            for (int j = 0; j < NB; j++)
#pragma unroll
                for (int i = 0; i < 4; i++)
                    u[j][i] = __ldcg(pk + (size_t)(8 * j + 2 * t + (i & 1)) * WG_ROWS + rl0 + 8 * (i >> 1));
#pragma unroll
            for (int j = 0; j < NB; j++)
#pragma unroll
                for (int i = 0; i < 4; i++) v[j][i] += u[j][i];
        }
        if (tid == 0) a.cnt[rt] = 0; /* ready for the next launch (graph replays) */
    }
    if (!cons) return;
    const size_t oplane = (size_t)a.B * a.out;
#pragma unroll
    for (int j = 0; j < NB; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int b = 8 * j + 2 * t + (i & 1), o = row0 + rl0 + 8 * (i >> 1);
            if (b >= a.B || o >= a.out) continue;
            const float r = sym_linear_store(a.y + (size_t)b * a.ldy + o, v[j][i], a.bias ? a.bias[o] : 0.0f, a.flags);
            if (a.flags & GEMV_SPLIT_OUT) sym_put_split(a.xs_out, oplane, (size_t)b * a.out + o, r);
        }
}

/* the driver's tensor-map encoder, through the runtime (no libcuda link) */
static PFN_cuTensorMapEncodeTiled_v12000 encoder(void) {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void *p = NULL;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
            q != cudaDriverEntryPointSuccess)
            p = NULL;
        return (PFN_cuTensorMapEncodeTiled_v12000)p;
    }();
    return fn;
}


/* A layer's two tensor maps, both in the 128-byte swizzle and zero past
 * the edges: tw, the weights [out][in] (elem bytes each) in boxes of kc
 * inputs x WG_ROWS rows; tx, x's terms [terms][B][w] in boxes of kc x bp x
 * terms. Returns 0 on success. */
static inline int wg_tensor_maps(CUtensorMapDataType dt, int elem, const void *W, int in, int out, const void *xs,
                                 int w, int B, int bp, int terms, int kc, CUtensorMap *tw, CUtensorMap *tx) {
    PFN_cuTensorMapEncodeTiled_v12000 enc = encoder();
    if (!enc) return 1;
    const cuuint64_t wdim[2] = {(cuuint64_t)in, (cuuint64_t)out}, wstr[1] = {(cuuint64_t)in * elem};
    const cuuint64_t xdim[3] = {(cuuint64_t)w, (cuuint64_t)B, (cuuint64_t)terms},
                     xstr[2] = {(cuuint64_t)w * elem, (cuuint64_t)B * w * elem};
    const cuuint32_t wbox[2] = {(cuuint32_t)kc, WG_ROWS}, xbox[3] = {(cuuint32_t)kc, (cuuint32_t)bp, (cuuint32_t)terms},
                     one[3] = {1, 1, 1};
    return enc(tw, dt, 2, (void *)W, wdim, wstr, wbox, one, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) ||
           enc(tx, dt, 3, (void *)xs, xdim, xstr, xbox, one, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

/* The grid's k slices (a.cps chunks each, a.ks_n of them): one CTA for
 * each of pct % of the SMs, the slices filling what the rts row tiles
 * leave, so the partials fit ws->sk_part (rts * ks_n <= n_sm + rts). The
 * share does not depend on B, so a row's bits do not either. */
static inline void wg_split_k(int n_sm, int pct, int rts, int nch, WgArgs &a) {
    n_sm = n_sm * pct / 100 > 0 ? n_sm * pct / 100 : 1;
    int ks = n_sm / rts;
    ks = ks < 1 ? 1 : ks > nch ? nch : ks;
    a.cps = (nch + ks - 1) / ks;
    a.ks_n = (nch + a.cps - 1) / a.cps;
}

/* How many stages of stage bytes fit budget bytes beside fixed bytes:
 * WG_STAGES_MIN to WG_STAGES_MAX whatever the budget says. */
static inline int wg_stages(int budget, int stage, int fixed) {
    const int n = (budget - fixed) / stage;
    return n > WG_STAGES_MAX ? WG_STAGES_MAX : n < WG_STAGES_MIN ? WG_STAGES_MIN : n;
}

#endif
