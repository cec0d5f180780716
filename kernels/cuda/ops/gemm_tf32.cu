/* fp32 linear layers on the tensor cores, to fp32 accuracy: each multiply
 * as three TF32 products ("3xTF32"). The engine takes it for 8 <= B <= 48
 * (cuda.fp32_mma_batch); it supports B <= 128.
 *
 * Why: cuBLAS's fp32 SGEMM runs on the CUDA cores, bound by its FMAs: at
 * B = 39 it reads the RetNet tower's weights at 0.8-1.2 TB/s against a
 * 3 TB/s copy rate (bench_gemm_algos, H100). cuBLAS's TF32 mode reaches
 * 1.5-2.4 TB/s on the same shapes but rounds weights and inputs to 10
 * mantissa bits, which the ill-conditioned RetNet tower cannot take. Here
 * each operand v is split into big = tf32(v) and small = tf32(v - big), and
 * a product is small*big + big*small + big*big: ~2^-23 relative error per
 * product, the size of fp32 rounding. Each 16-wide k step's products are
 * summed apart and added to the running sum by an fp32 add: the tensor
 * cores' own accumulation truncates, and over a whole 2048-long row in one
 * accumulator that bias cost the RetNet tower 3.5x its fp32 error (2.5e-3
 * against 7.2e-4 at full size). Summed per step it is 4.2e-4: below
 * cuBLAS's SGEMM.
 *
 * Measured against cuBLAS, whole step (bench_gv_step, H100): fp32 B = 8
 * 5.91 -> 4.37 ms, B = 16 7.50 -> 5.45, B = 39 11.36 -> 10.97; mixed
 * B = 16 5.51 -> 4.48. From B = 64 it loses (fp32 14.4 -> 16.4): there
 * the mma and the operand splits, not HBM, are the bound.
 *
 * Shape of the kernel:
 *  - x is the mma's A operand (batch rows, m16 tiles), the weights its B
 *    operand (output rows, n8 tiles), so a weight element is in exactly one
 *    fragment and is loaded once, by one thread, as part of a 16-byte load
 *    (the k order inside a 16-wide step is permuted identically for A and B,
 *    which leaves the dot product alone). Weights bypass L1; x comes through
 *    L1, where the CTA's warps share it.
 *  - A CTA is 8 warps: 2 row groups x 4 k groups. A warp owns 8J output
 *    rows and every 4th 16-wide k step of the CTA's slice; the 4 k groups
 *    are summed through shared memory in a fixed order.
 *  - The grid is (row tiles) x (k slices), about two CTAs per SM; the last
 *    CTA of a row tile sums the slices' partials in a fixed order and
 *    applies bias, ReLU and accumulation (no atomics on the data).
 *  - The first weights are loaded before griddepcontrol.wait, so they stream
 *    while the previous kernel finishes; later, each round's weights are in
 *    flight while the previous round computes. */
#include "kernels/cuda/ops/gemm_tf32.cuh"

#include <stdint.h>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/splitk.cuh"

#define FT_WR 2     /* row groups of warps */
#define FT_WK 4     /* k groups of warps */
#define FT_MAX_MT 8 /* m16 tiles of batch rows: B <= 128 */
#define FT_PER_SM 2 /* CTAs per SM the grid aims at */
#define FT_TILE_FLOATS 4096 /* a CTA's partial outputs: rows x batch rows, at most */

struct FtArgs {
    const float *w, *bias, *x;
    float *y, *part;
    int *cnt;
    int ldx, ldy, B, out, in, blk_rows, xwrap, flags, ks_n, spc;
};

__device__ __forceinline__ uint32_t tf32_rna(float v) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return r;
}

/* big = tf32(v), small = tf32(v - big); v - big is exact in fp32 */
__device__ __forceinline__ void split_tf32(float v, uint32_t &big, uint32_t &small) {
    big = tf32_rna(v);
    small = tf32_rna(v - __uint_as_float(big));
}

__device__ __forceinline__ void mma_tf32(float *d, const uint32_t *a, uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    /* not volatile: the compiler may interleave independent mma chains */
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    __trap(); /* the host never picks this path below sm_80 */
#endif
}

/* weights are read once per step: keep them out of L1 */
__device__ __forceinline__ float4 ld_stream(const float *p) {
    float4 v;
    asm("ld.global.nc.L1::no_allocate.v4.f32 {%0,%1,%2,%3}, [%4];"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "l"(p));
    return v;
}

/* MT m16 tiles of batch rows; U 16-wide k steps loaded per round per
 * warp; J n8 tiles of output rows per warp; MINB CTAs an SM (128 registers
 * at 2).
 * One body, longer than a screen: the weights in flight, their split
 * terms and the accumulators live in registers across the load, mma,
 * k-group and split-K phases, whose order is the sum's order. */
template <int MT, int U, int J, int MINB> __global__ void __launch_bounds__(256, MINB) k_gemm_3xtf32(FtArgs a) {
    constexpr int RR = FT_WR * 8 * J, BP = MT * 16, RS = BP + 1; /* RS: odd, no bank conflicts */
    extern __shared__ float red[];                                  /* [FT_WK][RR][RS] */
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int wr = warp % FT_WR, wk = warp / FT_WR;
    const int rt = blockIdx.x, ks = blockIdx.y;
    const int row0 = rt * RR + wr * 8 * J;
    const int nsteps = a.in >> 4, beg = ks * a.spc, end = min(nsteps, beg + a.spc);
    const float *wp[J];
#pragma unroll
    for (int j = 0; j < J; j++) wp[j] = a.w + (size_t)min(row0 + 8 * j + g, a.out - 1) * a.in + 4 * t;
    const float *xr = a.x + (size_t)(((rt * RR) / a.blk_rows) % a.xwrap) * a.in + 4 * t;
    float acc[MT][J][4];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int j = 0; j < J; j++) acc[m][j][0] = acc[m][j][1] = acc[m][j][2] = acc[m][j][3] = 0.0f;
    float4 wv[U][J];
    auto load_w = [&](int s0) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int s = s0 + u * FT_WK;
#pragma unroll
            for (int j = 0; j < J; j++) wv[u][j] = s < end ? ld_stream(wp[j] + 16 * s) : make_float4(0, 0, 0, 0);
        }
    };
    const int first = beg + wk;
    load_w(first); /* weights: no dependency on the previous kernel */
    SYM_PDL_ENTER();
    for (int s0 = first; s0 < end; s0 += U * FT_WK) {
        /* the next round's weights are loaded while this one computes */
        float4 cur[U][J];
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int j = 0; j < J; j++) cur[u][j] = wv[u][j];
        load_w(s0 + U * FT_WK);
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int s = s0 + u * FT_WK;
            if (s >= end) break;
            uint32_t wb[J][4], wsm[J][4];
#pragma unroll
            for (int j = 0; j < J; j++) {
                split_tf32(cur[u][j].x, wb[j][0], wsm[j][0]);
                split_tf32(cur[u][j].y, wb[j][1], wsm[j][1]);
                split_tf32(cur[u][j].z, wb[j][2], wsm[j][2]);
                split_tf32(cur[u][j].w, wb[j][3], wsm[j][3]);
            }
#pragma unroll
            for (int m = 0; m < MT; m++) { /* 16 (MT - 1) < B: every tile has rows */
                const int b0 = 16 * m + g, b1 = b0 + 8;
                const float4 p = b0 < a.B ? __ldg(reinterpret_cast<const float4 *>(xr + (size_t)b0 * a.ldx + 16 * s))
                                          : make_float4(0, 0, 0, 0);
                const float4 q = b1 < a.B ? __ldg(reinterpret_cast<const float4 *>(xr + (size_t)b1 * a.ldx + 16 * s))
                                          : make_float4(0, 0, 0, 0);
                /* this thread's inputs 4t..4t+3 of the step: mma k slots t
                 * and t + 4 take 4t + 2h and 4t + 2h + 1 in half-step h */
                uint32_t xb[2][4], xs[2][4];
                split_tf32(p.x, xb[0][0], xs[0][0]), split_tf32(q.x, xb[0][1], xs[0][1]);
                split_tf32(p.y, xb[0][2], xs[0][2]), split_tf32(q.y, xb[0][3], xs[0][3]);
                split_tf32(p.z, xb[1][0], xs[1][0]), split_tf32(q.z, xb[1][1], xs[1][1]);
                split_tf32(p.w, xb[1][2], xs[1][2]), split_tf32(q.w, xb[1][3], xs[1][3]);
                /* the step's 16 products summed apart, then added to the
                 * running sum by an fp32 add: the tensor cores' own
                 * accumulation truncates, and over a 2048-long row in one
                 * accumulator that bias alone cost the RetNet tower 3.5x
                 * its fp32 error (full size, 2.5e-3 against 7.2e-4) */
                float d[J][4];
#pragma unroll
                for (int j = 0; j < J; j++) d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.0f;
#pragma unroll
                for (int h = 0; h < 2; h++)
#pragma unroll
                    for (int j = 0; j < J; j++) mma_tf32(d[j], xs[h], wb[j][2 * h], wb[j][2 * h + 1]);
#pragma unroll
                for (int h = 0; h < 2; h++)
#pragma unroll
                    for (int j = 0; j < J; j++) mma_tf32(d[j], xb[h], wsm[j][2 * h], wsm[j][2 * h + 1]);
#pragma unroll
                for (int h = 0; h < 2; h++)
#pragma unroll
                    for (int j = 0; j < J; j++) mma_tf32(d[j], xb[h], wb[j][2 * h], wb[j][2 * h + 1]);
#pragma unroll
                for (int j = 0; j < J; j++)
#pragma unroll
                    for (int i = 0; i < 4; i++) acc[m][j][i] += d[j][i];
            }
        }
    }
    /* acc[m][j][i]: batch row 16m + g (+8 for i >= 2), output row
     * 8j + 2t (+1 for odd i) of the warp's */
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
        for (int j = 0; j < J; j++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = wr * 8 * J + 8 * j + 2 * t + (i & 1), b = 16 * m + g + 8 * (i >> 1);
                red[(wk * RR + r) * RS + b] = acc[m][j][i];
            }
    __syncthreads();
    /* RR x B outputs; the k groups summed in order 0..3 */
    const int n_out = RR * a.B;
    float *pp = a.part + ((size_t)rt * a.ks_n + ks) * FT_TILE_FLOATS;
    for (int e = tid; e < n_out; e += 256) {
        const int r = e % RR, b = e / RR, o = rt * RR + r;
        float v = red[r * RS + b];
#pragma unroll
        for (int k = 1; k < FT_WK; k++) v += red[(k * RR + r) * RS + b];
        if (a.ks_n == 1) {
            if (o < a.out) sym_linear_store(a.y + (size_t)b * a.ldy + o, v, a.bias ? a.bias[o] : 0.0f, a.flags);
        } else {
            __stcg(pp + e, v);
        }
    }
    if (a.ks_n == 1) return;
    __shared__ int last;
    if (!sym_splitk_last(a.cnt + rt, a.ks_n, &last)) return;
    const float *p0 = a.part + (size_t)rt * a.ks_n * FT_TILE_FLOATS;
    for (int e = tid; e < n_out; e += 256) {
        const int r = e % RR, b = e / RR, o = rt * RR + r;
        float v = 0.0f;
        for (int k = 0; k < a.ks_n; k++) v += __ldcg(p0 + (size_t)k * FT_TILE_FLOATS + e);
        if (o < a.out) sym_linear_store(a.y + (size_t)b * a.ldy + o, v, a.bias ? a.bias[o] : 0.0f, a.flags);
    }
    if (tid == 0) a.cnt[rt] = 0; /* ready for the next launch (graph replays) */
}

size_t sym_gemm_tf32_part_floats(int n_sm) { return (size_t)FT_PER_SM * n_sm * FT_TILE_FLOATS; }

int sym_gemm_tf32_counters(int max_out) { return (max_out + 31) / 32; /* row tiles of 32 rows or more */ }

/* MT m16 tiles of batch rows; U, J, MINB as the kernel's */
template <int MT, int U, int J, int MINB>
static int launch(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, FtArgs &a) {
    constexpr int RR = FT_WR * 8 * J;
    static_assert(RR * MT * 16 <= FT_TILE_FLOATS && MINB <= FT_PER_SM, "partials must fit ws->sk_part");
    if ((L->blk_rows < L->out && L->blk_rows % RR)) return 1; /* a row tile inside one input slice */
    const int rts = (L->out + RR - 1) / RR, nsteps = L->in / 16;
    if (rts > ws->sk_cnt_n) return 1;
    /* about MINB CTAs an SM: the k slices fill what the row tiles leave;
     * partials fit ws->sk_part because rts * ks_n <= FT_PER_SM n_sm */
    int ks = MINB * ws->n_sm / rts;
    ks = ks < 1 ? 1 : ks > nsteps ? nsteps : ks;
    a.spc = (nsteps + ks - 1) / ks;
    a.ks_n = (nsteps + a.spc - 1) / a.spc;
    const size_t smem = (size_t)FT_WK * RR * (MT * 16 + 1) * sizeof(float);
    static sym_smem_limits sized;
    sym_smem_limit(k_gemm_3xtf32<MT, U, J, MINB>, smem, sized);
    sym_launch_smem(k_gemm_3xtf32<MT, U, J, MINB>, dim3(rts, a.ks_n), dim3(256), smem, s, a);
    return 0;
}

int sym_gemm_tf32(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y,
                  int ldy, int B, int flags) {
    const int MT = (B + 15) / 16;
    /* whole 16-wide steps, aligned 16-byte loads */
    if (L->bf16 || B < 1 || MT > FT_MAX_MT || L->in % 16 || ldx % 4 || ((uintptr_t)x % 16) ||
        ((uintptr_t)L->w % 16) || !ws->sk_part)
        return 1;
    FtArgs a;
    a.w = (const float *)L->w, a.bias = L->b, a.x = x, a.y = y, a.part = ws->sk_part, a.cnt = ws->sk_cnt;
    a.ldx = ldx, a.ldy = ldy, a.B = B, a.out = L->out, a.in = L->in, a.blk_rows = L->blk_rows, a.xwrap = L->xwrap;
    a.flags = flags;
    /* measured on an H100 (test_gv_gemv, bench_gv_step; design/cuda.md):
     * to B = 48, 32 rows a warp with the next step's weights in flight
     * beat 16 rows with two or four steps in flight, and one CTA an SM at
     * 255 registers; beyond, 32 rows a warp spill */
    switch (MT) {
    case 1: return launch<1, 1, 4, 2>(s, ws, L, a);
    case 2: return launch<2, 1, 4, 2>(s, ws, L, a);
    case 3: return launch<3, 1, 4, 2>(s, ws, L, a);
    case 4: return launch<4, 2, 2, 2>(s, ws, L, a);
    case 5: return launch<5, 1, 2, 2>(s, ws, L, a);
    case 6: return launch<6, 1, 2, 2>(s, ws, L, a);
    case 7: return launch<7, 1, 2, 2>(s, ws, L, a);
    default: return launch<8, 1, 2, 2>(s, ws, L, a);
    }
}
