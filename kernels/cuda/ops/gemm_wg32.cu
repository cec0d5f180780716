/* fp32 linear layers at 17 <= B <= 128 on Hopper's wgmma with TMA, to
 * fp32 accuracy: each multiply as three TF32 products (3xTF32), in one
 * launch per layer where the kernel that produced x also wrote its split,
 * else two (x's split, then the product; cuda.fp32_wgmma_batch; it takes
 * B <= 128).
 *
 * Why: the mma.sync 3xTF32 kernel (gemm_tf32.cu) is bound by its own
 * instructions from B = 24 (a 64 MB layer in 57 us at B = 39, 1.2 TB/s):
 * every warp splits its x fragments again and issues three mma.sync per
 * 16-wide step; from B = 64 cuBLAS's SGEMM took over, at 0.6-1.0 TB/s.
 * TMA alone brings the same weights in at 2.4-2.7 TB/s (bench_tma_read,
 * H100).
 *
 * Measured (H100, the same binary with the kernel off):
 * q/k/v/g 8192 x 2048 alone (test_gv_gemv) at B = 39 / 64 / 128 56.8 /
 * 70.2 / 113.7 -> 41.6 / 48.2 / 76.6 us; the whole step fp32 B = 24 / 39 /
 * 64 / 128 7.34 / 10.81 / 14.49 / 27.31 -> 6.41 / 8.92 / 13.24 / 25.41 ms,
 * mixed 5.60 / 8.01 / 11.79 / 21.38 -> 5.35 / 7.49 / 11.48 / 21.02. At
 * B = 16 it lost (mixed 4.19 -> 4.25 ms; mma.sync reads a layer at 2.1
 * TB/s there), so the engine takes it from B = 17. Error: 0.059 of the
 * fp32 bound at worst (mma.sync: 0.34). Not kept: the weights split in
 * shared memory by each warpgroup (a proxy fence and a barrier per chunk),
 * 61 us for q/k/v/g at B = 39; two accumulator sets in flight (no gain); a
 * producer warpgroup at every B (the CTA then holds the whole register
 * file: fp32 B = 24 6.41 -> 6.71 ms).
 *
 * Shape of the kernel (the CTA, the producer, the split-K sum and the
 * epilogue are the bf16 wgmma kernel's, wg_common.cuh):
 *  - x comes split into its big = tf32(x) and small = tf32(x - big)
 *    terms, [2][B][w], each 32-wide chunk's columns permuted as the
 *    weights' register fragments take them (sym_w32_perm): written by the
 *    kernel that produced x (sym_put_x, where sym_gemv_planes said so),
 *    else by k_split_tf32 before the layer. Folding the split into the
 *    producers takes up to four launches a layer out of each fp32 tower's
 *    chain (H100, two runs each: fp32 B = 24 / 39 / 64 / 128
 *    6.40 / 8.89 / 13.18 / 25.15 -> 6.30 / 8.73 / 12.83 / 24.46 ms; mixed,
 *    where only RetNet is fp32, B = 24 / 39 4.98 / 7.17 -> 4.96 / 7.17,
 *    but B = 64 / 128 11.39 / 20.92 -> 11.45 / 21.06: there the one-block-
 *    per-row norms do the split's work on fewer threads than it has).
 *  - Per 32-wide k chunk the producer brings one TMA box of fp32 weights
 *    (128 rows, 16 KB) and one of x's two terms (2 x BP rows, zero past B)
 *    into a stage, in the 128-byte swizzle.
 *  - The batch's columns are done in one round (B <= 64) or two (above,
 *    with the registers of a producer warpgroup handed to the consumers).
 *  - Each consumer thread loads its weights from the stage as four 16-byte
 *    pieces (rows g and g + 8 of its warp's 16, columns 4t..4t+3 and
 *    16+4t..16+4t+3) and splits them in registers: wgmma takes A from
 *    registers, so the weights' split needs no shared-memory round trip.
 *    Per 8-wide k step and round three wgmma: wbig x xbig, and wbig x
 *    xsmall + wsmall x xbig into a second accumulator.
 *  - The tensor cores' accumulation truncates (gemm_tf32.cu: one
 *    accumulator over a 2048-long row cost the RetNet tower 3.5x its fp32
 *    error), so each 16-wide k step's big product starts its own
 *    accumulators and is added to an fp32 running sum. The small terms,
 *    2^-11 of it, stay in one accumulator over the CTA's whole k slice
 *    (their truncation is far below fp32's rounding of the sum), added at
 *    the end. The big product and the small terms are two wgmma groups:
 *    the running sum takes the first while the tensor cores work on the
 *    second. Against fresh accumulators for both every 16-wide step,
 *    summed together (H100, two runs): fp32 B = 39 / 64 / 128
 *    8.75 / 12.86 / 24.41 -> 8.66 / 12.52 / 23.27 ms, mixed B = 128 21.09
 *    -> 20.81; test_gv_full's fp32 RetNet error 5.8e-4 -> 2.1e-4, mean
 *    1.5e-5 -> 8.1e-6. Kahan-compensated running sums on top (B <= 64)
 *    were slower (fp32 B = 64 13.7 ms) and no more accurate there (4.7e-4,
 *    mean 1.6e-5: this tower's error moves within a chaotic band). */
#include "kernels/cuda/ops/gemm_wg32.cuh"

#include <stdint.h>

#include "kernels/cuda/ops/wg_common.cuh"
#include "kernels/cuda/ops/wgmma_ops.cuh"

#define W32_KC 32       /* fp32 inputs per stage: one 128-byte swizzled row */
#define W32_MAX_NB 16   /* B <= 128 */
/* Two consumer warpgroups and a producer warp; above B = 64, a whole
 * producer warpgroup, whose registers setmaxnreg hands to the consumers
 * (a round's accumulators and the sums for 128 batch rows need 185). Only
 * there: the whole register file for one CTA leaves none for the other
 * towers' kernels on the SM (fp32 B = 24 6.41 -> 6.71 ms in the step with
 * 384 threads everywhere). */
__host__ __device__ constexpr int w32_threads(int nb) { return nb > 8 ? 384 : 288; }

/* x [B][ldx] (width w) -> xs [2][B][w]: tf32 big and small terms, each
 * 32-wide chunk in sym_w32_perm's column order (xsplit.cuh; the kernels
 * that produce a layer's input write the same with sym_put_x) */
__global__ void k_split_tf32(const float *x, int ldx, int w, int B, float *xs) {
    SYM_PDL_ENTER();
    const int c = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (c >= w) return;
    sym_put_x(sym_xsplit{NULL, xs}, B, w, b, c, x[(size_t)b * ldx + c]);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ float4 lds128(uint32_t a) {
    float4 v;
    asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(a));
    return v;
}
/* the big and small terms of v, as tf32 bit patterns */
__device__ __forceinline__ void split2(float v, uint32_t &big, uint32_t &small) {
    const float b = sym_tf32_rna(v);
    big = __float_as_uint(b), small = __float_as_uint(sym_tf32_rna(v - b));
}
#endif

/* tw: the weights [out][in] fp32 in boxes of 128 rows x 32 inputs; tx:
 * x's terms [2][B][w] in boxes of 2 x BP x 32. Warps 0-7 are the two
 * consumer warpgroups, warp 8 the producer (above B = 64 warps 9-11 fill
 * its warpgroup, so that its registers can go to the consumers: setmaxnreg
 * works per warpgroup); full[s] and empty[s] as in the bf16 kernel. The batch's BP columns are done in CH rounds of BP / CH, each
 * round's accumulators in registers: wbig x xbig, and wbig x xsmall +
 * wsmall x xbig (both small terms in one accumulator).
 * One body, longer than a screen: the producer's and the consumers' roles
 * share the CTA's barriers, and the consumers' sums stay in registers from
 * the first chunk to the epilogue. */
template <int NB>
__global__ void __launch_bounds__(w32_threads(NB), 1)
    k_gemm_wg32(const __grid_constant__ CUtensorMap tw, const __grid_constant__ CUtensorMap tx, WgArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int BP = 8 * NB, CH = NB > 8 ? 2 : 1, NH = NB / CH, BH = 8 * NH; /* NB > 8 is even */
    constexpr int W_BYTES = WG_ROWS * 128, STAGE = W_BYTES + 2 * BP * 128;
    const WgCta cta = wg_cta(a, W32_KC);
    const int S = a.stages;

    if (cta.wg == 2) { /* the producer leaves once its loads are issued */
        if (NB > 8) asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
        if (cta.tid >> 5 == 8)
            wg_produce(&tw, &tx, cta, STAGE, W_BYTES, S, W32_KC);
        else
            SYM_PDL_ENTER();
        return;
    }
    if (NB > 8) asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    float v[NB][4] = {};
    {
        SYM_PDL_ENTER();
        /* this thread's rows g and g + 8 of its warp's 16; their 16-byte
         * pieces t and 4 + t sit at pieces t ^ g and (4 + t) ^ g of the
         * swizzled row (g = row % 8) */
        const uint32_t r0 = (cta.wg * 64 + cta.warp * 16 + cta.g) * 128, p0 = (cta.t ^ cta.g) << 4,
                       p1 = ((4 + cta.t) ^ cta.g) << 4;
        /* db: a 16-wide k step's wbig x xbig, fresh each step; dsm: each
         * round's small terms, accumulated by the tensor cores over the
         * whole k slice (they are 2^-11 of the big product, so the
         * accumulation's truncation is far below fp32's rounding there) */
        float db[BH / 2], dsm[CH][BH / 2];
#pragma unroll
        for (int q = 0; q < BH / 2; q++) {
            db[q] = 0.0f;
#pragma unroll
            for (int c = 0; c < CH; c++) dsm[c][q] = 0.0f;
        }
        for (int i = 0; i < cta.n; i++) {
            const int st = i % S;
            mbar_wait(cta.full + 8 * st, (i / S) & 1);
            const uint32_t sa = cta.base + st * STAGE, xb = sa + W_BYTES;
            const float4 e0 = lds128(sa + r0 + p0), e1 = lds128(sa + r0 + p1), f0 = lds128(sa + r0 + 1024 + p0),
                         f1 = lds128(sa + r0 + 1024 + p1);
            /* k step s: a[0] row g, a[1] row g + 8 (slot t); a[2], a[3]
             * (slot t + 4); sym_w32_perm's order */
            uint32_t ab[4][4], as[4][4];
            split2(e0.x, ab[0][0], as[0][0]), split2(e0.y, ab[0][2], as[0][2]);
            split2(e0.z, ab[1][0], as[1][0]), split2(e0.w, ab[1][2], as[1][2]);
            split2(e1.x, ab[2][0], as[2][0]), split2(e1.y, ab[2][2], as[2][2]);
            split2(e1.z, ab[3][0], as[3][0]), split2(e1.w, ab[3][2], as[3][2]);
            split2(f0.x, ab[0][1], as[0][1]), split2(f0.y, ab[0][3], as[0][3]);
            split2(f0.z, ab[1][1], as[1][1]), split2(f0.w, ab[1][3], as[1][3]);
            split2(f1.x, ab[2][1], as[2][1]), split2(f1.y, ab[2][3], as[2][3]);
            split2(f1.z, ab[3][1], as[3][1]), split2(f1.w, ab[3][3], as[3][3]);
            /* per column round, two 16-wide halves: the big product in
             * fresh accumulators as one group, the small terms as the
             * next; the big one is summed into v in fp32 while the tensor
             * cores still work on the small ones */
#pragma unroll
            for (int c = 0; c < CH; c++)
#pragma unroll
                for (int h = 0; h < W32_KC / 16; h++) {
                    const uint32_t xbig = xb + c * BH * 128, xsml = xb + (BP + c * BH) * 128;
                    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
                    for (int k2 = 0; k2 < 2; k2++) /* a k8 step is 32 bytes into each swizzled row */
                        sym_wgmma_tf32<BH>(db, ab[2 * h + k2], wg_desc_sw128(xbig + 32 * (2 * h + k2)), k2);
                    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#pragma unroll
                    for (int k2 = 0; k2 < 2; k2++) {
                        const int s = 2 * h + k2;
                        sym_wgmma_tf32<BH>(dsm[c], ab[s], wg_desc_sw128(xsml + 32 * s), 1);
                        sym_wgmma_tf32<BH>(dsm[c], as[s], wg_desc_sw128(xbig + 32 * s), 1);
                    }
                    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
                    asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
#pragma unroll
                    for (int q = 0; q < BH / 2; q++) asm volatile("" : "+f"(db[q])::"memory"); /* no use before the wait */
                    /* d[4j + i]: row 16 warp + g (+ 8 for i >= 2), column
                     * 8j + 2t (+ 1 for odd i) of the round's */
#pragma unroll
                    for (int j = 0; j < NH; j++)
#pragma unroll
                        for (int i2 = 0; i2 < 4; i2++) v[c * NH + j][i2] += db[4 * j + i2];
                }
            /* the stage's x and this chunk's ab / as have been read:
             * release the stage */
            asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
            if ((cta.tid & 127) == 0) mbar_arrive(cta.empty + 8 * st);
        }
#pragma unroll
        for (int c = 0; c < CH; c++)
#pragma unroll
            for (int q = 0; q < BH / 2; q++) asm volatile("" : "+f"(dsm[c][q])::"memory");
#pragma unroll
        for (int c = 0; c < CH; c++)
#pragma unroll
            for (int j = 0; j < NH; j++)
#pragma unroll
                for (int i2 = 0; i2 < 4; i2++) v[c * NH + j][i2] += dsm[c][4 * j + i2];
    }
    wg_finish<NB>(a, v, cta, true, 256);
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
    /* the grid on ws->wg32_grid_pct % of the SMs, as many stages as
     * ws->wg32_smem holds (3 to 8) */
    wg_split_k(ws->n_sm, ws->wg32_grid_pct, rts, nch, a);
    a.stages = wg_stages(ws->wg32_smem, STAGE, 0);
    const size_t smem = (size_t)a.stages * STAGE + 1024; /* + alignment of the stages to 1 KB */
    static sym_smem_limits sized;
    sym_smem_limit(k_gemm_wg32<NB>, smem, sized);
    if (!(a.flags & GEMV_X_SPLIT)) /* else the kernel that produced x wrote its terms (sym_gemv_planes) */
        sym_launch(k_split_tf32, dim3((w + 255) / 256, a.B), dim3(256), s, x, ldx, w, a.B, ws->xs32);
    sym_launch_smem(k_gemm_wg32<NB>, dim3(rts, a.ks_n), dim3(w32_threads(NB)), smem, s, tw, tx, a);
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
    switch ((B + 7) / 8) { /* above 8 groups, an even number (two column rounds) */
    case 1: return launch<1>(s, ws, L, x, ldx, a);
    case 2: return launch<2>(s, ws, L, x, ldx, a);
    case 3: return launch<3>(s, ws, L, x, ldx, a);
    case 4: return launch<4>(s, ws, L, x, ldx, a);
    case 5: return launch<5>(s, ws, L, x, ldx, a);
    case 6: return launch<6>(s, ws, L, x, ldx, a);
    case 7: return launch<7>(s, ws, L, x, ldx, a);
    case 8: return launch<8>(s, ws, L, x, ldx, a);
    case 9: case 10: return launch<10>(s, ws, L, x, ldx, a);
    case 11: case 12: return launch<12>(s, ws, L, x, ldx, a);
    case 13: case 14: return launch<14>(s, ws, L, x, ldx, a);
    default: return launch<16>(s, ws, L, x, ldx, a);
    }
}
