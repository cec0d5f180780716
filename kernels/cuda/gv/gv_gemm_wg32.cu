/* fp32 linear layers at 17 <= B <= 48 on Hopper's wgmma with TMA, to fp32
 * accuracy: each multiply as three TF32 products (3xTF32), in two launches
 * per layer (x's split, then the product; SYM_GV_WG32_MIN /
 * SYM_GV_WG32_MAX; it takes B <= 48).
 *
 * Why: the mma.sync 3xTF32 kernel (gv_gemm_tf32.cu) is bound by its own
 * instructions from B = 24 (a 64 MB layer in 56 us at B = 39, 1.2 TB/s):
 * every warp splits its x fragments again and issues three mma.sync per
 * 16-wide step. TMA alone brings the same weights in at 2.4-2.7 TB/s
 * (bench_tma_read, H100).
 *
 * Measured (H100, the same binary with the kernel off, SYM_GV_WG32_MAX=0):
 * q/k/v/g 8192 x 2048 alone (test_gv_gemv) at B = 39 56.4 -> 43.3 us; the
 * whole step fp32 B = 24 / 39 / 48 7.33 / 10.88 / 12.03 -> 6.46 / 9.22 /
 * 10.70 ms, mixed 5.63 / 8.09 / 9.42 -> 5.37 / 7.63 / 9.03. At B = 16 it
 * lost (mixed 4.19 -> 4.25 ms; mma.sync reads a layer at 2.1 TB/s there),
 * so the engine takes it from B = 17. Error: 0.054 of the fp32 bound at
 * worst (mma.sync: 0.34). Not kept: the weights split in shared memory by
 * each warpgroup (a proxy fence and a barrier per chunk), 61 us for the
 * layer above; stages in 150 or 200 KB instead of 100 (the step no faster
 * or slower).
 *
 * Shape of the kernel (the CTA, the producer, the split-K sum and the
 * epilogue are the bf16 wgmma kernel's, gv_wg_common.cuh):
 *  - x is split before the layer (k_split_tf32) into its big = tf32(x) and
 *    small = tf32(x - big) terms, [2][B][w], each 32-wide chunk's columns
 *    permuted as the weights' register fragments take them (below).
 *  - Per 32-wide k chunk the producer brings one TMA box of fp32 weights
 *    (128 rows, 16 KB) and one of x's two terms (2 x BP rows, zero past B)
 *    into a stage, in the 128-byte swizzle.
 *  - Each consumer thread loads its weights from the stage as four 16-byte
 *    pieces (rows g and g + 8 of its warp's 16, columns 4t..4t+3 and
 *    16+4t..16+4t+3) and splits them in registers: wgmma takes A from
 *    registers, so the weights' split needs no shared-memory round trip.
 *    Per 8-wide k step two wgmma: wbig x [xbig | xsmall] and wsmall x xbig.
 *  - The tensor cores' accumulation truncates (gv_gemm_tf32.cu: one
 *    accumulator over a 2048-long row cost the RetNet tower 3.5x its fp32
 *    error), so each 16-wide k step starts its own accumulators and is
 *    added to fp32 running sums, small terms first. */
#include "gv_wg_common.cuh"
#include "gv_wgmma_ops.cuh"

#define W32_KC 32    /* fp32 inputs per stage: one 128-byte swizzled row */
#define W32_MAX_NB 6 /* B <= 48 */
#define W32_SMEM (100 * 1024)

__device__ __forceinline__ float tf32_rna(float v) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return __uint_as_float(r);
}

/* Where column q (0..31) of a 32-wide chunk sits in x's planes: a thread's
 * 16-byte weight piece holds columns 4t..4t+3 (and 16 + those), which the
 * k8 steps take as A's columns t and t + 4: column 16h + 4q' + 2r + e goes
 * to k step 2h + r, slot q' + 4e, and B's slot for that is 8(2h + r) +
 * q' + 4e. */
__host__ __device__ __forceinline__ int w32_perm(int q) {
    return (q & 16) | (((q >> 1) & 1) << 3) | ((q >> 2) & 3) | ((q & 1) << 2);
}

/* x [B][ldx] (width w) -> xs [2][B][w]: tf32 big and small terms, each
 * 32-wide chunk permuted by w32_perm */
__global__ void k_split_tf32(const float *x, int ldx, int w, int B, float *xs) {
    SYM_PDL_ENTER();
    const int c = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (c >= w) return;
    const float v = x[(size_t)b * ldx + c], big = tf32_rna(v);
    const size_t at = (size_t)b * w + (c & ~31) + w32_perm(c & 31);
    xs[at] = big;
    xs[(size_t)B * w + at] = tf32_rna(v - big);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ float4 lds128(uint32_t a) {
    float4 v;
    asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(a));
    return v;
}
/* the big and small terms of v, as tf32 bit patterns */
__device__ __forceinline__ void split2(float v, uint32_t &big, uint32_t &small) {
    const float b = tf32_rna(v);
    big = __float_as_uint(b), small = __float_as_uint(tf32_rna(v - b));
}
#endif

/* tw: the weights [out][in] fp32 in boxes of 128 rows x 32 inputs; tx:
 * x's terms [2][B][w] in boxes of 2 x BP x 32. Warps 0-7 are the two
 * consumer warpgroups, warp 8 the producer; full[s] and empty[s] as in the
 * bf16 kernel. */
template <int NB>
__global__ void __launch_bounds__(WG_THREADS, 1)
    k_gemm_wg32(const __grid_constant__ CUtensorMap tw, const __grid_constant__ CUtensorMap tx, WgArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int BP = 8 * NB, W_BYTES = WG_ROWS * 128, STAGE = W_BYTES + 2 * BP * 128;
    extern __shared__ __align__(128) uint8_t sm[];
    __shared__ __align__(8) uint64_t bars[2 * WG_STAGES_MAX]; /* full[S], then empty[S] */
    __shared__ int last;
    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2,
              t = lane & 3;
    const int rt = blockIdx.x, ks = blockIdx.y, row0 = rt * WG_ROWS;
    const int nch = a.in / W32_KC, c_beg = ks * a.cps, n = min(nch, c_beg + a.cps) - c_beg, S = a.stages;
    const int xk0 = ((row0 / a.blk_rows) % a.xwrap) * a.in; /* this row tile's input slice */
    const uint32_t base = (smem_u32(sm) + 1023) & ~1023u;   /* the swizzle repeats every 1 KB */
    const uint32_t full = smem_u32(bars), empty = full + 8 * WG_STAGES_MAX;
    wg_init_bars(full, empty, S);

    float v[NB][4] = {};
    if (wg == 2) {
        wg_produce(&tw, &tx, base, full, empty, STAGE, W_BYTES, S, n, c_beg, W32_KC, row0, xk0);
    } else {
        SYM_PDL_ENTER();
        /* this thread's rows g and g + 8 of its warp's 16; their 16-byte
         * pieces t and 4 + t sit at pieces t ^ g and (4 + t) ^ g of the
         * swizzled row (g = row % 8) */
        const uint32_t r0 = (wg * 64 + warp * 16 + g) * 128, p0 = (t ^ g) << 4, p1 = ((4 + t) ^ g) << 4;
        /* wbig x [xbig | xsmall] (2 BP columns), wsmall x xbig */
        float d1[BP], d2[BP / 2];
#pragma unroll
        for (int q = 0; q < BP; q++) d1[q] = 0.0f;
#pragma unroll
        for (int q = 0; q < BP / 2; q++) d2[q] = 0.0f;
        for (int i = 0; i < n; i++) {
            const int st = i % S;
            mbar_wait(full + 8 * st, (i / S) & 1);
            const uint32_t sa = base + st * STAGE, xb = sa + W_BYTES;
            const float4 e0 = lds128(sa + r0 + p0), e1 = lds128(sa + r0 + p1), f0 = lds128(sa + r0 + 1024 + p0),
                         f1 = lds128(sa + r0 + 1024 + p1);
            /* k step s: a[0] row g, a[1] row g + 8 (slot t); a[2], a[3]
             * (slot t + 4); w32_perm's order */
            uint32_t ab[4][4], as[4][4];
            split2(e0.x, ab[0][0], as[0][0]), split2(e0.y, ab[0][2], as[0][2]);
            split2(e0.z, ab[1][0], as[1][0]), split2(e0.w, ab[1][2], as[1][2]);
            split2(e1.x, ab[2][0], as[2][0]), split2(e1.y, ab[2][2], as[2][2]);
            split2(e1.z, ab[3][0], as[3][0]), split2(e1.w, ab[3][2], as[3][2]);
            split2(f0.x, ab[0][1], as[0][1]), split2(f0.y, ab[0][3], as[0][3]);
            split2(f0.z, ab[1][1], as[1][1]), split2(f0.w, ab[1][3], as[1][3]);
            split2(f1.x, ab[2][1], as[2][1]), split2(f1.y, ab[2][3], as[2][3]);
            split2(f1.z, ab[3][1], as[3][1]), split2(f1.w, ab[3][3], as[3][3]);
            /* two 16-wide halves, each in fresh accumulators */
#pragma unroll
            for (int h = 0; h < W32_KC / 16; h++) {
                asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
                for (int k2 = 0; k2 < 2; k2++) { /* a k8 step is 32 bytes into each swizzled row */
                    const int s = 2 * h + k2;
                    sym_wgmma_tf32<2 * BP>(d1, ab[s], wg_desc_sw128(xb + 32 * s), k2);
                    sym_wgmma_tf32<BP>(d2, as[s], wg_desc_sw128(xb + 32 * s), k2);
                }
                asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
                asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#pragma unroll
                for (int q = 0; q < BP; q++) asm volatile("" : "+f"(d1[q])::"memory"); /* no use before the wait */
#pragma unroll
                for (int q = 0; q < BP / 2; q++) asm volatile("" : "+f"(d2[q])::"memory");
                /* d[4j + i]: row 16 warp + g (+ 8 for i >= 2), column 8j +
                 * 2t (+ 1 for odd i); batch row b's xsmall product is in
                 * column group j + NB of d1 */
#pragma unroll
                for (int j = 0; j < NB; j++)
#pragma unroll
                    for (int i2 = 0; i2 < 4; i2++)
                        v[j][i2] += (d2[4 * j + i2] + d1[4 * (j + NB) + i2]) + d1[4 * j + i2];
            }
            /* the stage's x has been read: release it */
            if ((tid & 127) == 0) mbar_arrive(empty + 8 * st);
        }
    }
    wg_finish<NB>(a, v, rt, ks, row0, wg * 64 + warp * 16 + g, t, wg < 2, &last);
#else
    (void)tw, (void)tx, (void)a;
    __trap(); /* the host launches this only on sm_90 */
#endif
}

size_t sym_gemm_wg32_part_floats(int n_sm, int max_out) {
    const int max_rt = (max_out + WG_ROWS - 1) / WG_ROWS;
    return (size_t)(n_sm + max_rt) * W32_MAX_NB * 8 * WG_ROWS;
}

size_t sym_gemm_wg32_xs_floats(int max_in) { return (size_t)2 * W32_MAX_NB * 8 * max_in; }

template <int NB>
static int launch(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, WgArgs &a) {
    constexpr int BP = 8 * NB, STAGE = WG_ROWS * 128 + 2 * BP * 128;
    const int rts = (a.out + WG_ROWS - 1) / WG_ROWS, nch = a.in / W32_KC;
    const int w = L->blk_rows < L->out ? L->xwrap * L->in : L->in;
    CUtensorMap tw, tx;
    if (wg_tensor_maps(CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, L->w, L->in, L->out, ws->xs32, w, a.B, BP, 2, W32_KC, &tw,
                       &tx))
        return 1;
    wg_split_k(ws->n_sm, rts, nch, a);
    /* stages in about 100 KB, as the bf16 kernel's (SYM_GV_WG32_SMEM_KB:
     * another budget, for measurement) */
    static const int budget = wg_budget("SYM_GV_WG32_SMEM_KB", W32_SMEM);
    a.stages = wg_stages(budget, STAGE, 0);
    const size_t smem = (size_t)a.stages * STAGE + 1024; /* + alignment of the stages to 1 KB */
    static std::atomic<unsigned long long> sized{0};
    sym_smem_limit(k_gemm_wg32<NB>, smem, sized);
    sym_launch(k_split_tf32, dim3((w + 255) / 256, a.B), dim3(256), s, x, ldx, w, a.B, ws->xs32);
    sym_launch_smem(k_gemm_wg32<NB>, dim3(rts, a.ks_n), dim3(WG_THREADS), smem, s, tw, tx, a);
    return 0;
}

static int fits(const sym_gemm_ws *ws, const sym_dlin *L, int B) {
    /* whole 32-wide chunks, 16-byte aligned rows, a row tile inside one
     * input slice */
    return ws->wg_on && ws->sk_part && ws->xs32 && !L->bf16 && B >= 1 && B <= W32_MAX_NB * 8 && !(L->in % W32_KC) &&
           !((uintptr_t)L->w % 16) && !(L->blk_rows < L->out && L->blk_rows % WG_ROWS) &&
           (L->out + WG_ROWS - 1) / WG_ROWS <= ws->sk_cnt_n;
}

int sym_gemm_wg32_fits(const sym_gemm_ws *ws, const sym_dlin *L, int B) {
    return B >= ws->wg32_min && B <= ws->wg32_max && fits(ws, L, B);
}

int sym_gemm_wg32(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y,
                  int ldy, int B, int flags) {
    if (!fits(ws, L, B) || ((uintptr_t)x % 16) || (ldx % 4) || (flags & GEMV_SPLIT_OUT)) return 1;
    WgArgs a;
    a.bias = L->b, a.y = y, a.part = ws->sk_part, a.cnt = ws->sk_cnt, a.xs_out = NULL;
    a.ldy = ldy, a.B = B, a.out = L->out, a.in = L->in, a.blk_rows = L->blk_rows, a.xwrap = L->xwrap;
    a.flags = flags;
    switch ((B + 7) / 8) {
    case 1: return launch<1>(s, ws, L, x, ldx, a);
    case 2: return launch<2>(s, ws, L, x, ldx, a);
    case 3: return launch<3>(s, ws, L, x, ldx, a);
    case 4: return launch<4>(s, ws, L, x, ldx, a);
    case 5: return launch<5>(s, ws, L, x, ldx, a);
    default: return launch<6>(s, ws, L, x, ldx, a);
    }
}
