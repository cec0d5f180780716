/* bf16 linear layers for B <= 64 on the tensor cores, in one kernel. The
 * engine uses it at B = 8 only (cuda.bf16_mma_batch widens it): on an
 * H100 it beats cuBLAS there (mixed step 4.05 vs 4.18 ms) and loses from
 * B = 16 (6.09 vs 5.77 ms; at B = 39 10.05 vs 8.91). ncu at B = 39: 12.8
 * warps an SM, 0.35 eligible per scheduler, DRAM at 15 %: latency-bound on
 * its x staging and L1TEX waits, not on bandwidth or the tensor pipe.
 *
 * Through cuBLAS a bf16 layer was three kernels: split x into three bf16
 * terms, one GEMM over 3B columns, sum the three partial outputs. The split
 * and the sum cost 3-5 us each, and a block-diagonal layer was one batched
 * GEMM per part; at B = 39 the xLSTM tower's chain holds ~28 such launches a
 * block. Here one kernel does it all:
 *  - a CTA owns 128 output rows (8 warps x 16) and a slice of the inputs
 *    (split-K); the last CTA of a row tile to finish sums the slices in a
 *    fixed order (ks = 0, 1, ...) and applies bias, ReLU and accumulation;
 *  - each round of 128 inputs, x (fp32) is split into hi/mid/lo bf16 terms
 *    straight into shared memory, laid out as mma B fragments;
 *  - weights go from HBM to registers as 16-byte loads and are used as mma
 *    A fragments as they are: the k order inside a 32-wide chunk is
 *    permuted identically for A and B, which leaves the dot product alone;
 *  - the three terms accumulate into one fp32 accumulator (m16n8k16 mma).
 * The first round's weights are loaded before griddepcontrol.wait, so they
 * stream while the previous kernel finishes. An output row's value depends
 * on the layer's shape only, not on B or on the other rows. */
#include "kernels/cuda/ops/gemv_tc.cuh"

#include <stdint.h>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/splitk.cuh"

#define TC_ROWS 128  /* output rows per CTA: 8 warps x 16 */
#define TC_ROUND 128 /* inputs per round: 4 chunks of 32 */
#define TC_MAX_NT 8  /* n-tiles of 8 batch rows: B <= 64 */
#define TC_MAX_PER_SM 4 /* CTAs per SM the split-K aims at (ws->tc_ctas), at most */

struct TcArgs {
    const __nv_bfloat16 *w;
    const float *bias, *x;
    float *y, *part;
    int *cnt;
    int ldx, ldy, B, out, in, blk_rows, xwrap, flags, ks_n, rps;
};

__device__ __forceinline__ void mma_bf16(float *d, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
    __trap(); /* the host never picks this path below sm_80 */
#endif
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi); /* .x = lo: the lower k */
    return *reinterpret_cast<uint32_t *>(&v);
}

/* Rows g and g + 8 of the warp's 16, inputs k0 + 32h + 8t .. + 7, h < 4. */
__device__ __forceinline__ void load_w(const __nv_bfloat16 *wa, const __nv_bfloat16 *wb, int k0, int kend, int t,
                                       uint4 *ra, uint4 *rb) {
#pragma unroll
    for (int h = 0; h < 4; h++) {
        int k = k0 + 32 * h + 8 * t;
        if (k0 + 32 * h < kend) {
            ra[h] = __ldg(reinterpret_cast<const uint4 *>(wa + k));
            rb[h] = __ldg(reinterpret_cast<const uint4 *>(wb + k));
        } else {
            ra[h] = rb[h] = make_uint4(0, 0, 0, 0);
        }
    }
}

/* Two CTAs an SM (128 registers): one stages its inputs while the other
 * runs its mma. With one (the next round's weights prefetched into
 * registers) B = 39 ran 1.5x slower than cuBLAS, latency-bound.
 * One body, longer than a screen: a round's weight fragments, x's staged
 * terms and the accumulators are registers and shared memory that its
 * phases (load, split, mma, split-K) hand to one another. */
template <int NT> __global__ void __launch_bounds__(256, 2) k_gemv_tc(TcArgs a) {
    /* B fragments of the round: [plane][nt][h][lane] x 8 bf16 */
    __shared__ uint4 xs[3 * NT * 4 * 32]; /* 48 KB at NT = 8: the static limit */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int rt = blockIdx.x, ks = blockIdx.y;
    const int row0 = rt * TC_ROWS + warp * 16;
    const __nv_bfloat16 *wa = a.w + (size_t)min(row0 + g, a.out - 1) * a.in;
    const __nv_bfloat16 *wb = a.w + (size_t)min(row0 + g + 8, a.out - 1) * a.in;
    const float *xr = a.x + (size_t)(((rt * TC_ROWS) / a.blk_rows) % a.xwrap) * a.in;
    const int nrounds = (a.in + TC_ROUND - 1) / TC_ROUND;
    const int r_beg = ks * a.rps, r_end = min(nrounds, r_beg + a.rps);
    float acc[NT][4];
#pragma unroll
    for (int n = 0; n < NT; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    uint4 ca[4], cb[4];
    load_w(wa, wb, r_beg * TC_ROUND, a.in, t, ca, cb); /* weights: no dependency on the previous kernel */
    SYM_PDL_ENTER();
    for (int r = r_beg; r < r_end; r++) {
        const int k0 = r * TC_ROUND;
        if (r > r_beg) load_w(wa, wb, k0, a.in, t, ca, cb); /* in flight while x is staged */
        __syncthreads(); /* the previous round's fragments are consumed */
        /* all of this thread's x loads first, then the splits and stores:
         * a store may alias a later load, which would serialise them */
        constexpr int TPT = (NT + 1) / 2; /* tasks per thread: NT * 128 over 256 threads */
        float v[TPT][8];
#pragma unroll
        for (int j = 0; j < TPT; j++) {
            const int task = tid + 256 * j;
            const int tt = task & 3, bl = (task >> 2) & 7, h = (task >> 5) & 3, n = task >> 7;
            const int b = n * 8 + bl, k = k0 + 32 * h + 8 * tt;
            if (task < NT * 128 && b < a.B && k < a.in) {
                const float4 p = *reinterpret_cast<const float4 *>(xr + (size_t)b * a.ldx + k);
                const float4 q = *reinterpret_cast<const float4 *>(xr + (size_t)b * a.ldx + k + 4);
                v[j][0] = p.x, v[j][1] = p.y, v[j][2] = p.z, v[j][3] = p.w;
                v[j][4] = q.x, v[j][5] = q.y, v[j][6] = q.z, v[j][7] = q.w;
            } else {
#pragma unroll
                for (int i = 0; i < 8; i++) v[j][i] = 0.0f;
            }
        }
#pragma unroll
        for (int j = 0; j < TPT; j++) {
            const int task = tid + 256 * j;
            if (task >= NT * 128) break;
            uint32_t hi[4], mid[4], lo[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float e0 = v[j][2 * i], e1 = v[j][2 * i + 1];
                float h0 = __bfloat162float(__float2bfloat16_rn(e0)), h1 = __bfloat162float(__float2bfloat16_rn(e1));
                float r0 = e0 - h0, r1 = e1 - h1;
                float m0 = __bfloat162float(__float2bfloat16_rn(r0)), m1 = __bfloat162float(__float2bfloat16_rn(r1));
                hi[i] = pack_bf16(h0, h1);
                mid[i] = pack_bf16(m0, m1);
                lo[i] = pack_bf16(r0 - m0, r1 - m1);
            }
            /* task = n * 128 + h * 32 + lane: the fragment's own slot */
            xs[task] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
            xs[NT * 128 + task] = make_uint4(mid[0], mid[1], mid[2], mid[3]);
            xs[2 * NT * 128 + task] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
        }
        __syncthreads();
        /* n innermost: consecutive mma update different accumulators */
#pragma unroll
        for (int h = 0; h < 4; h++) {
            if (k0 + 32 * h >= a.in) break;
#pragma unroll
            for (int p = 0; p < 3; p++) {
                uint4 xf[NT];
#pragma unroll
                for (int n = 0; n < NT; n++) xf[n] = xs[p * NT * 128 + (n * 4 + h) * 32 + lane];
                /* inputs 8t..8t+3, then 8t+4..8t+7 of the chunk: mma's k 2t, 2t+1, 2t+8, 2t+9 */
#pragma unroll
                for (int n = 0; n < NT; n++) mma_bf16(acc[n], ca[h].x, cb[h].x, ca[h].y, cb[h].y, xf[n].x, xf[n].y);
#pragma unroll
                for (int n = 0; n < NT; n++) mma_bf16(acc[n], ca[h].z, cb[h].z, ca[h].w, cb[h].w, xf[n].z, xf[n].w);
            }
        }
    }
    /* this warp holds rows row0 + g (acc[n][0..1]) and row0 + g + 8
     * (acc[n][2..3]) of batch rows n * 8 + 2t, + 1 */
    if (a.ks_n == 1) {
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int o = row0 + g + (i >> 1) * 8, b = n * 8 + 2 * t + (i & 1);
                if (o >= a.out || b >= a.B) continue;
                sym_linear_store(a.y + (size_t)b * a.ldy + o, acc[n][i], a.bias ? a.bias[o] : 0.0f, a.flags);
            }
        return;
    }
    /* split-K: this CTA's slice as partials [rt][ks][b][128] */
    float *pp = a.part + ((size_t)rt * a.ks_n + ks) * (NT * 8) * TC_ROWS;
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int r = warp * 16 + g + (i >> 1) * 8, b = n * 8 + 2 * t + (i & 1);
            __stcg(pp + (size_t)b * TC_ROWS + r, acc[n][i]);
        }
    /* xs holds the flag: the handshake's first barrier sees the fragments consumed */
    if (!sym_splitk_last(a.cnt + rt, a.ks_n, reinterpret_cast<int *>(xs))) return;
    /* NT * 4 outputs per thread, every partial loaded before any store */
    const float *p0 = a.part + (size_t)rt * a.ks_n * (NT * 8) * TC_ROWS;
    const int r = tid & (TC_ROWS - 1), o = rt * TC_ROWS + r;
    float sum[NT * 4];
#pragma unroll
    for (int j = 0; j < NT * 4; j++) {
        const int b = (tid >> 7) + 2 * j;
        sum[j] = 0.0f;
        if (b < a.B)
            for (int k = 0; k < a.ks_n; k++) sum[j] += __ldcg(p0 + ((size_t)k * (NT * 8) + b) * TC_ROWS + r);
    }
    if (o < a.out) {
        const float bo = a.bias ? a.bias[o] : 0.0f;
#pragma unroll
        for (int j = 0; j < NT * 4; j++) {
            const int b = (tid >> 7) + 2 * j;
            if (b >= a.B) break;
            sym_linear_store(a.y + (size_t)b * a.ldy + o, sum[j], bo, a.flags);
        }
    }
    if (tid == 0) a.cnt[rt] = 0; /* ready for the next launch (graph replays) */
}

size_t sym_gemv_tc_part_floats(int n_sm, int max_out) {
    int max_rt = (max_out + TC_ROWS - 1) / TC_ROWS;
    return (size_t)(TC_MAX_PER_SM * n_sm + max_rt) * TC_MAX_NT * 8 * TC_ROWS;
}

int sym_gemv_tc_counters(int max_out) { return (max_out + TC_ROWS - 1) / TC_ROWS; }

int sym_gemv_tc(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y, int ldy,
                int B, int flags) {
    /* whole 32-wide chunks, aligned 16-byte loads, and a row tile that
     * reads one input slice */
    if (!L->bf16 || B < 1 || B > TC_MAX_NT * 8 || L->in % 32 || ldx % 4 || ((uintptr_t)x % 16) ||
        ((uintptr_t)L->w % 16) || (L->blk_rows < L->out && L->blk_rows % TC_ROWS) || !ws->sk_part)
        return 1;
    TcArgs a;
    a.w = (const __nv_bfloat16 *)L->w, a.bias = L->b, a.x = x, a.y = y, a.part = ws->sk_part, a.cnt = ws->sk_cnt;
    a.ldx = ldx, a.ldy = ldy, a.B = B, a.out = L->out, a.in = L->in, a.blk_rows = L->blk_rows, a.xwrap = L->xwrap;
    a.flags = flags;
    const int rts = (L->out + TC_ROWS - 1) / TC_ROWS, nrounds = (L->in + TC_ROUND - 1) / TC_ROUND;
    if (rts > ws->sk_cnt_n) return 1;
    /* ws->tc_ctas CTAs per SM (1..TC_MAX_PER_SM); the split depends on the
     * shape only, so a row's sum order does not change with B */
    const int per_sm = ws->tc_ctas < 1 ? 1 : ws->tc_ctas > TC_MAX_PER_SM ? TC_MAX_PER_SM : ws->tc_ctas;
    int ks = (per_sm * ws->n_sm + rts - 1) / rts;
    ks = ks < 1 ? 1 : ks > nrounds ? nrounds : ks;
    a.rps = (nrounds + ks - 1) / ks;
    a.ks_n = (nrounds + a.rps - 1) / a.rps;
    dim3 grid(rts, a.ks_n);
    switch ((B + 7) / 8) {
    case 1: sym_launch(k_gemv_tc<1>, grid, dim3(256), s, a); break;
    case 2: sym_launch(k_gemv_tc<2>, grid, dim3(256), s, a); break;
    case 3: sym_launch(k_gemv_tc<3>, grid, dim3(256), s, a); break;
    case 4: sym_launch(k_gemv_tc<4>, grid, dim3(256), s, a); break;
    case 5: sym_launch(k_gemv_tc<5>, grid, dim3(256), s, a); break;
    case 6: sym_launch(k_gemv_tc<6>, grid, dim3(256), s, a); break;
    case 7: sym_launch(k_gemv_tc<7>, grid, dim3(256), s, a); break;
    default: sym_launch(k_gemv_tc<8>, grid, dim3(256), s, a); break;
    }
    return 0;
}
