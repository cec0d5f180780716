/* bf16 linear layers at 9 <= B <= 64 on Hopper's warpgroup tensor-core
 * instruction (wgmma, sm_90a) with the tensor memory accelerator (TMA),
 * in one launch per layer (cuda.bf16_wgmma_batch; it takes B <= 64).
 *
 * Why: through cuBLAS a bf16 layer at B = 39 is a GEMM over 3B columns
 * (x's three bf16 terms) that reads its weights at 1.0-1.9 TB/s, then an
 * epilogue kernel (3-4 us) that sums the terms. The mma.sync kernel
 * (gemv_tc.cu) loses to it from B = 16: each 16-row warp tile reloads x's
 * 3B columns, and the loads' latency binds it (ncu: DRAM at 15 %). Here a
 * warpgroup's 64 x 3B x 16 product is one wgmma reading both operands from
 * shared memory, and one launch replaces cuBLAS's two.
 *
 * Against cuBLAS (H100, whole step, the same binary with the kernel off):
 * mixed B = 16 4.50 -> 4.18 ms, B = 32 6.87 -> 6.52, B = 39 8.31 -> 8.08;
 * bf16 B = 64 10.61 -> 10.33, mixed 11.46 -> 11.05 with the towers' grid
 * shares (cuda.bf16_wgmma_sm_pct). Above B = 64, cuBLAS: the batch in two
 * 64-row halves over the grid's z, each half's CTAs reading the same
 * weights from L2, was no faster at B = 100 / 128 (bf16 19.15 against
 * 19.11 ms; fc1 alone 25.7 against cuBLAS's 23.2 us). One layer still
 * reads its weights at only 1.1-1.4 TB/s (ncu, fc1 4096 x 2048 from DRAM,
 * H200: 14 us at B = 1, 18 us at B = 39), no better than cuBLAS; see
 * design/cuda.md.
 *
 * Shape of the kernel:
 *  - x comes as its three bf16 terms, [3][B][w] (sym_gemv_planes: written by
 *    the kernel that produced x, or by the split kernel). They are the
 *    product's N = 3 * BP rows (BP = B rounded up to 8; the TMA zero-fills
 *    rows past B), so the terms of batch row b land in accumulator columns
 *    b, BP + b and 2 BP + b of the same thread, and are summed there in
 *    fp32 ((hi + mid) + lo, as cuBLAS's epilogue does).
 *  - A CTA is two consumer warpgroups (128 output rows sharing one x tile)
 *    and a producer warp. The producer keeps a ring of shared-memory stages
 *    full: per 64-wide k chunk one TMA box of weights (128 rows, 16 KB) and
 *    one of x's terms, completing on the stage's mbarrier. It requests the
 *    first chunks' weights before griddepcontrol.wait, so they stream while
 *    the previous kernel finishes. The consumers release a stage once the
 *    wgmma reading it has completed, one chunk behind. As many stages as
 *    ws->wg_smem holds (cuda.bf16_wgmma_smem_kb), 3 to 8; two CTAs an SM
 *    with half the stages each were slower (H200).
 *  - Both operands sit in the 128-byte swizzle (TMA writes it, wgmma's
 *    descriptors read it); the no-swizzle layout, with eight boxes per
 *    operand and stage, was 1.4x slower.
 *  - The grid is (row tiles) x (k slices), about one CTA for each SM of
 *    the tower's share (ws->wg_grid_pct); the last CTA of a row tile sums
 *    the slices' partials in a fixed order and applies bias, ReLU,
 *    accumulation and the output's split for the next layer (no atomics on
 *    the data). The split depends on the layer's shape and the tower only,
 *    so a row's value does not depend on B. */
#include "kernels/cuda/ops/gemm_wg.cuh"

#include <stdint.h>

#include "kernels/cuda/ops/wg_common.cuh"
#include "kernels/cuda/ops/wgmma_ops.cuh"

#define WG_KC 64 /* inputs per stage */
/* tw: the weights [out][in] in boxes of 128 rows x 64 inputs; tx: x's
 * terms [3][B][w] in boxes of 3 x BP x 64 (rows past B read as zeros).
 * Both land in the 128-byte swizzle: rows of 128 bytes, 8-row groups 1 KB
 * apart, as wgmma's descriptors read them.
 *
 * Warps 0-7 are two consumer warpgroups (64 rows each); warp 8 is the
 * producer: one lane keeps the ring of stages full with TMA copies.
 * full[s] completes when stage s has landed; empty[s] when both
 * warpgroups' wgmma reading it have completed. */
template <int NB>
__global__ void __launch_bounds__(WG_THREADS, 1)
    k_gemm_wg(const __grid_constant__ CUtensorMap tw, const __grid_constant__ CUtensorMap tx, WgArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int BP = 8 * NB, N = 3 * BP, R = N / 2;
    constexpr int W_BYTES = WG_ROWS * WG_KC * 2, STAGE = W_BYTES + N * WG_KC * 2;
    const WgCta cta = wg_cta(a, WG_KC);
    const int S = a.stages;

    float v[NB][4] = {};
    if (cta.wg == 2) {
        wg_produce(&tw, &tx, cta, STAGE, W_BYTES, S, WG_KC);
    } else {
        SYM_PDL_ENTER();
        float d[R];
#pragma unroll
        for (int q = 0; q < R; q++) d[q] = 0.0f;
        for (int i = 0; i < cta.n; i++) {
            const int st = i % S;
            mbar_wait(cta.full + 8 * st, (i / S) & 1);
            const uint32_t sa = cta.base + st * STAGE + cta.wg * 64 * 128, sb = cta.base + st * STAGE + W_BYTES;
            asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
            for (int kk = 0; kk < WG_KC / 16; kk++) /* a k16 step is 32 bytes into each swizzled row */
                sym_wgmma_bf16<N>(d, wg_desc_sw128(sa + 32 * kk), wg_desc_sw128(sb + 32 * kk));
            asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
            /* the previous chunk's products are done: release its stage */
            asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
            if (i > 0 && (cta.tid & 127) == 0) mbar_arrive(cta.empty + 8 * ((i - 1) % S));
        }
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#pragma unroll
        for (int q = 0; q < R; q++) asm volatile("" : "+f"(d[q])::"memory"); /* no use before the wait */
        /* d[4j + i]: row 16 warp + g (+ 8 for i >= 2) of the warpgroup's
         * 64, column 8j + 2t (+ 1 for odd i); batch row b's terms are in
         * column groups j, j + NB and j + 2NB */
#pragma unroll
        for (int j = 0; j < NB; j++)
#pragma unroll
            for (int i = 0; i < 4; i++) v[j][i] = (d[4 * j + i] + d[4 * (j + NB) + i]) + d[4 * (j + 2 * NB) + i];
    }
    wg_finish<NB>(a, v, cta, cta.wg < 2);
#else
    (void)tw, (void)tx, (void)a;
    __trap(); /* the host launches this only on sm_90 */
#endif
}

size_t sym_gemm_wg_part_floats(int n_sm, int max_out) {
    const int max_rt = (max_out + WG_ROWS - 1) / WG_ROWS;
    return (size_t)(n_sm + max_rt) * WG_MAX_NB * 8 * WG_ROWS;
}

int sym_gemm_wg_counters(int max_out) { return (max_out + WG_ROWS - 1) / WG_ROWS; }

template <int NB>
static int launch(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const __nv_bfloat16 *xs, WgArgs &a) {
    constexpr int BP = 8 * NB, STAGE = WG_ROWS * WG_KC * 2 + 3 * BP * WG_KC * 2;
    const int rts = (a.out + WG_ROWS - 1) / WG_ROWS, nch = a.in / WG_KC;
    const int w = L->blk_rows < L->out ? L->xwrap * L->in : L->in;
    CUtensorMap tw, tx;
    if (wg_tensor_maps(CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, L->w, L->in, L->out, xs, w, a.B, BP, 3, WG_KC, &tw, &tx))
        return 1;
    wg_split_k(ws->n_sm, ws->wg_grid_pct, rts, nch, a);
    a.stages = wg_stages(ws->wg_smem, STAGE, 0);
    const size_t smem = (size_t)a.stages * STAGE + 1024; /* + alignment of the stages to 1 KB */
    static sym_smem_limits sized;
    sym_smem_limit(k_gemm_wg<NB>, smem, sized);
    sym_launch_smem(k_gemm_wg<NB>, dim3(rts, a.ks_n), dim3(WG_THREADS), smem, s, tw, tx, a);
    return 0;
}

static int fits(const sym_gemm_ws *ws, const sym_dlin *L, int B) {
    /* whole 64-wide chunks, 16-byte aligned rows, a row tile inside one
     * input slice */
    return ws->wg_on && ws->sk_part && L->bf16 && B >= 1 && B <= WG_MAX_NB * 8 && !(L->in % WG_KC) && !((uintptr_t)L->w % 16) &&
           !(L->blk_rows < L->out && L->blk_rows % WG_ROWS) &&
           (L->out + WG_ROWS - 1) / WG_ROWS <= ws->sk_cnt_n;
}

int sym_gemm_wg_fits(const sym_gemm_ws *ws, const sym_dlin *L, int B) {
    return B >= ws->wg_min && B <= ws->wg_max && fits(ws, L, B);
}

int sym_gemm_wg(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const __nv_bfloat16 *xs, float *y, int ldy,
                int B, int flags) {
    if (!fits(ws, L, B) || ((uintptr_t)xs % 16) || ((flags & GEMV_SPLIT_OUT) && !ws->xs2)) return 1;
    WgArgs a;
    a.bias = L->b, a.y = y, a.part = ws->sk_part, a.cnt = ws->sk_cnt, a.xs_out = ws->xs2;
    a.ldy = ldy, a.B = B, a.out = L->out, a.in = L->in, a.blk_rows = L->blk_rows, a.xwrap = L->xwrap;
    a.flags = flags;
    switch ((B + 7) / 8) {
    case 1: return launch<1>(s, ws, L, xs, a);
    case 2: return launch<2>(s, ws, L, xs, a);
    case 3: return launch<3>(s, ws, L, xs, a);
    case 4: return launch<4>(s, ws, L, xs, a);
    case 5: return launch<5>(s, ws, L, xs, a);
    case 6: return launch<6>(s, ws, L, xs, a);
    case 7: return launch<7>(s, ws, L, xs, a);
    default: return launch<8>(s, ws, L, xs, a);
    }
}
