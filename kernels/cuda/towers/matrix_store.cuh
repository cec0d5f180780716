/* How the state cells read and write a recurrence matrix stored in fp32,
 * bf16 or fp16 with a scale per row segment (state_layout.h's
 * sym_mat_store, kernels/state_precision.h's formats). Arithmetic stays
 * fp32; a value is rounded once, when stored, to what the CPU's
 * sym_round_bf16 / sym_round_fp16_scaled give for it (round to nearest,
 * ties to even), so the CPU backend's state_precision is the reference of
 * these kernels. An fp16 segment's scale is the largest finite |x| of the
 * lanes that hold its SYM_STATE_SEG numbers, so those lanes round
 * together, lanes past the row's end with zeros. Two layouts:
 *  - four numbers j..j+3 a thread (sym_mat_load, sym_mat_put, ...): fp32's
 *    16-byte accesses in every cell, and Mamba2's two-byte rows, where
 *    the 32 lanes of a warp hold one segment;
 *  - eight numbers j..j+7 a thread, the two-byte formats only
 *    (sym_mat_load8, sym_mat_put8, ...): the matrix-state cells'
 *    (matrix_state.cuh), so a two-byte row moves in 16-byte accesses as
 *    fp32's does; a warp holds 256 numbers from a multiple of 256, two
 *    segments, one a half-warp. */
#ifndef SYM_CUDA_MATRIX_STORE_CUH
#define SYM_CUDA_MATRIX_STORE_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
extern "C" {
#include "kernels/state_layout.h"
}

/* Where a matrix is in every slot, and how it is stored: its numbers at
 * element offset off, its exponents (fp16) at eoff. */
typedef struct {
    size_t off, eoff;
    sym_mat_store fmt;
} sym_mat_loc;

static inline sym_mat_loc sym_mat_loc_f32(size_t off) {
    sym_mat_loc l = {off, 0, SYM_MAT_F32};
    return l;
}

/* One head's matrix in a slot: its first number, its first row's
 * exponents (fp16), numbers a row and segments a row. */
typedef struct {
    void *m;
    signed char *e;
    int ld, segs;
} sym_mat;

/* Head `head` (rows_per_head rows of ld numbers) of the matrix at element
 * offset `off` of a slot, its exponents at element offset `eoff`. */
template <int F>
__device__ __forceinline__ sym_mat sym_mat_head(float *slot, size_t off, size_t eoff, int head, int rows_per_head,
                                                int ld) {
    sym_mat M;
    const size_t first = (size_t)head * rows_per_head * ld;
    const int segs = (ld + SYM_STATE_SEG - 1) / SYM_STATE_SEG;
    if (F == SYM_MAT_F32) M.m = slot + off + first;
    else M.m = (unsigned short *)(slot + off) + first;
    M.e = F == SYM_MAT_F16 ? (signed char *)(slot + eoff) + (size_t)head * rows_per_head * segs : NULL;
    M.ld = ld, M.segs = segs;
    return M;
}

/* Numbers j..j+3 of row i as stored, and what they are: loaded first and
 * converted when used, a row in flight takes the registers of its bytes. */
template <int F>
struct sym_mat_raw {
    uint2 u; /* number j in the low half of u.x */
    int e;   /* fp16: the segment's exponent */
};
template <>
struct sym_mat_raw<SYM_MAT_F32> {
    float4 v;
};

/* Numbers j..j+3 of row i; zeros where not on (a lane past the row's end). */
template <int F>
__device__ __forceinline__ sym_mat_raw<F> sym_mat_load(const sym_mat &M, int i, int j, bool on) {
    sym_mat_raw<F> r;
    const size_t at = (size_t)i * M.ld + j;
    if constexpr (F == SYM_MAT_F32) {
        r.v = on ? *(const float4 *)((const float *)M.m + at) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    } else {
        r.u = on ? *(const uint2 *)((const unsigned short *)M.m + at) : make_uint2(0u, 0u);
        r.e = F == SYM_MAT_F16 && on ? M.e[(size_t)i * M.segs + j / SYM_STATE_SEG] : 0;
    }
    return r;
}

/* 2^s for s in -125..127 (exact, normal) */
__device__ __forceinline__ float sym_pow2i(int s) { return __int_as_float((s + 127) << 23); }

/* What a loaded row's numbers are. */
template <int F>
__device__ __forceinline__ float4 sym_mat_value(const sym_mat_raw<F> &r) {
    if constexpr (F == SYM_MAT_F32) {
        return r.v;
    } else if constexpr (F == SYM_MAT_BF16) {
        return make_float4(__uint_as_float(r.u.x << 16), __uint_as_float(r.u.x & 0xffff0000u),
                           __uint_as_float(r.u.y << 16), __uint_as_float(r.u.y & 0xffff0000u));
    } else {
        const float sc = sym_pow2i(r.e);
        const __half2 a = *(const __half2 *)&r.u.x, b = *(const __half2 *)&r.u.y;
        return make_float4(__low2float(a) * sc, __high2float(a) * sc, __low2float(b) * sc, __high2float(b) * sc);
    }
}

__device__ __forceinline__ unsigned sym_finite_mag(float x) {
    const unsigned b = __float_as_uint(x) & 0x7fffffffu;
    return b < 0x7f800000u ? b : 0u;
}

/* The fp16 exponent of the segment v is the lane's part of: s =
 * floor(log2(largest finite |x|)) - 14 in -125..127
 * (sym_fp16_row_exponent_f32), 0 for a segment without one. A warp-wide
 * call: every lane of the warp, in step. */
__device__ __forceinline__ int sym_mat_seg_exp(float4 v) {
    unsigned top = max(max(sym_finite_mag(v.x), sym_finite_mag(v.y)), max(sym_finite_mag(v.z), sym_finite_mag(v.w)));
    top = __reduce_max_sync(0xffffffffu, top); /* non-negative floats order as their bits */
    /* s = (top's biased exponent - 127) - 14, clamped to -125 as the CPU
     * clamps it: a subnormal top (biased exponent 0) and a normal one
     * under 2^-111 alike, whose unclamped s (-140..-126) would make 2^-s
     * and 2^s no floats (sym_pow2i) and flush the segment to zero; a
     * finite float's s is at most 113, so 2^-s is a normal float too */
    return top ? max((int)(top >> 23) - 141, -125) : 0;
}

__device__ __forceinline__ float sym_f16_round(float x, float inv, float sc) {
    /* x * 2^-s is exact unless below 2^-126, where fp16 rounds it to 0 either way */
    return __half2float(__float2half_rn(x * inv)) * sc;
}

/* v as F stores it: what a later sym_mat_load gives after sym_mat_put
 * of v. fp16 is warp-wide (sym_mat_seg_exp). */
template <int F>
__device__ __forceinline__ float4 sym_mat_round(float4 v) {
    if (F == SYM_MAT_F32) return v;
    if (F == SYM_MAT_BF16)
        return make_float4(__bfloat162float(__float2bfloat16_rn(v.x)), __bfloat162float(__float2bfloat16_rn(v.y)),
                           __bfloat162float(__float2bfloat16_rn(v.z)), __bfloat162float(__float2bfloat16_rn(v.w)));
    const int s = sym_mat_seg_exp(v);
    const float inv = sym_pow2i(-s), sc = sym_pow2i(s);
    return make_float4(sym_f16_round(v.x, inv, sc), sym_f16_round(v.y, inv, sc), sym_f16_round(v.z, inv, sc),
                       sym_f16_round(v.w, inv, sc));
}

/* Stores v, rounded as F stores it, as numbers j..j+3 of row i, where on
 * (a lane past the row's end stores nothing); the lane of the segment's
 * first number writes its exponent. fp16 is warp-wide (sym_mat_seg_exp). */
template <int F>
__device__ __forceinline__ void sym_mat_put(const sym_mat &M, int i, int j, float4 v, bool on) {
    const size_t at = (size_t)i * M.ld + j;
    if (F == SYM_MAT_F32) {
        if (on) *(float4 *)((float *)M.m + at) = v;
        return;
    }
    uint2 u;
    if (F == SYM_MAT_BF16) {
        const __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
        u.x = *(const unsigned *)&a, u.y = *(const unsigned *)&b;
    } else {
        const int s = sym_mat_seg_exp(v);
        const float inv = sym_pow2i(-s);
        const __half2 a = __floats2half2_rn(v.x * inv, v.y * inv), b = __floats2half2_rn(v.z * inv, v.w * inv);
        u.x = *(const unsigned *)&a, u.y = *(const unsigned *)&b;
        if (on && j % SYM_STATE_SEG == 0) M.e[(size_t)i * M.segs + j / SYM_STATE_SEG] = (signed char)s;
    }
    if (on) *(uint2 *)((unsigned short *)M.m + at) = u;
}

/* ---- eight numbers a thread (two-byte formats) ---- */

/* Where the eight numbers at element `at` of a two-byte matrix may move in
 * one 16-byte access: all eight in the row (hi), and the row starting on
 * 16 bytes (A16: every row does, ld % 8 == 0; else row by row, as a row of
 * ld % 8 == 4 numbers leaves every other row on 8 bytes). A head's first
 * number is on 32 bytes: a slot's matrix starts on 128 (state_layout.h),
 * and a head of ld rows of ld % 4 == 0 numbers takes a multiple of 32. */
template <bool A16>
__device__ __forceinline__ bool sym_mat_wide8(size_t at, bool hi) {
    return hi && (A16 || (at & 7) == 0);
}

/* Numbers j..j+7 of row i as stored, j a multiple of 8, F two-byte
 * (number j in the low half of .x): loaded first and converted when used,
 * as sym_mat_raw. lo says j..j+3 are in the row, hi j+4..j+7 (ld % 4 ==
 * 0, so hi implies lo); zeros where not (lanes past the row's end). fp16's
 * exponents come apart, a warp's at once (sym_mat_exps8). */
template <int F, bool A16>
__device__ __forceinline__ uint4 sym_mat_load8(const sym_mat &M, int i, int j, bool lo, bool hi) {
    static_assert(F == SYM_MAT_BF16 || F == SYM_MAT_F16, "eight numbers a thread: the two-byte formats");
    const size_t at = (size_t)i * M.ld + j;
    const unsigned short *p = (const unsigned short *)M.m + at;
    if (sym_mat_wide8<A16>(at, hi)) return *(const uint4 *)p;
    const uint2 a = lo ? *(const uint2 *)p : make_uint2(0u, 0u), b = hi ? *(const uint2 *)(p + 4) : make_uint2(0u, 0u);
    return make_uint4(a.x, a.y, b.x, b.y);
}

/* The half-warp of column j: a warp's 256 numbers start on a multiple of
 * 256, so its second segment's columns are those with j & 128. */
__device__ __forceinline__ bool sym_mat_upper8(int j) { return (j & SYM_STATE_SEG) != 0; }

/* fp16: the exponents of the warp's two segments (its columns from j's
 * multiple of 256) in rows i, i + 8, ..., i + 8 (n - 1), one a lane: lane
 * 2u + h holds row i + 8u's segment h (sym_mat_upper8), 0 where that row
 * (from i1 on) or segment is not in the matrix; sym_mat_exp8 hands each
 * lane its own. One byte a lane rather than every lane loading its n: a
 * row in flight would hold an exponent and its 64-bit address in every
 * lane (fp16 at eight rows in flight spilled at 128 registers). */
__device__ __forceinline__ int sym_mat_exps8(const sym_mat &M, int i, int n, int i1, int j) {
    const int lane = (int)threadIdx.x & 31, row = i + 8 * (lane >> 1),
              seg = (j & ~(2 * SYM_STATE_SEG - 1)) / SYM_STATE_SEG + (lane & 1);
    return lane < 2 * n && row < i1 && seg < M.segs ? M.e[(size_t)row * M.segs + seg] : 0;
}
/* Row i + 8u's exponent for column j's segment, from sym_mat_exps8's ex;
 * warp-wide (a shuffle). */
__device__ __forceinline__ int sym_mat_exp8(int ex, int u, int j) {
    return __shfl_sync(0xffffffffu, ex, 2 * u + (sym_mat_upper8(j) ? 1 : 0));
}

/* What a loaded row's eight numbers are; e: fp16's segment exponent. */
template <int F>
__device__ __forceinline__ void sym_mat_value8(uint4 u, int e, float (&v)[8]) {
    const unsigned w[4] = {u.x, u.y, u.z, u.w};
    if constexpr (F == SYM_MAT_BF16) {
#pragma unroll
        for (int k = 0; k < 4; k++) v[2 * k] = __uint_as_float(w[k] << 16), v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    } else {
        const float sc = sym_pow2i(e);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            v[2 * k] = __half2float(__ushort_as_half((unsigned short)(w[k] & 0xffffu))) * sc;
            v[2 * k + 1] = __half2float(__ushort_as_half((unsigned short)(w[k] >> 16))) * sc;
        }
    }
}

/* sym_mat_seg_exp for eight numbers a lane: the segment is the half-warp's
 * (upper: lanes 16..31's, the warp's second segment). The two halves each
 * take the warp's maximum with the other half's lanes at zero, rather than
 * shuffles within 16 lanes: two REDUX against four SHFL and MAX steps. A
 * warp-wide call: every lane of the warp, in step. */
__device__ __forceinline__ int sym_mat_seg_exp8(const float (&v)[8], bool upper) {
    unsigned top = 0u;
#pragma unroll
    for (int k = 0; k < 8; k++) top = max(top, sym_finite_mag(v[k]));
    const unsigned first = __reduce_max_sync(0xffffffffu, upper ? 0u : top),
                   second = __reduce_max_sync(0xffffffffu, upper ? top : 0u);
    top = upper ? second : first;
    return top ? max((int)(top >> 23) - 141, -125) : 0; /* as sym_mat_seg_exp */
}

/* v (numbers j..j+7) as F stores them, in place: what a later
 * sym_mat_load8 gives after sym_mat_put8 of v. fp16 is warp-wide. */
template <int F>
__device__ __forceinline__ void sym_mat_round8(float (&v)[8], int j) {
    if constexpr (F == SYM_MAT_BF16) {
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = __bfloat162float(__float2bfloat16_rn(v[k]));
    } else {
        const int s = sym_mat_seg_exp8(v, sym_mat_upper8(j));
        const float inv = sym_pow2i(-s), sc = sym_pow2i(s);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = sym_f16_round(v[k], inv, sc);
    }
}

/* Stores v, rounded as F stores it, as numbers j..j+7 of row i where lo /
 * hi (sym_mat_load8); the lane of the segment's first number writes its
 * exponent. fp16 is warp-wide. */
template <int F, bool A16>
__device__ __forceinline__ void sym_mat_put8(const sym_mat &M, int i, int j, const float (&v)[8], bool lo, bool hi) {
    unsigned w[4];
    if constexpr (F == SYM_MAT_BF16) {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const __nv_bfloat162 a = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
            w[k] = *(const unsigned *)&a;
        }
    } else {
        const int s = sym_mat_seg_exp8(v, sym_mat_upper8(j));
        const float inv = sym_pow2i(-s);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const __half2 a = __floats2half2_rn(v[2 * k] * inv, v[2 * k + 1] * inv);
            w[k] = *(const unsigned *)&a;
        }
        if (lo && j % SYM_STATE_SEG == 0) M.e[(size_t)i * M.segs + j / SYM_STATE_SEG] = (signed char)s;
    }
    const size_t at = (size_t)i * M.ld + j;
    unsigned short *p = (unsigned short *)M.m + at;
    if (sym_mat_wide8<A16>(at, hi)) {
        *(uint4 *)p = make_uint4(w[0], w[1], w[2], w[3]);
    } else {
        if (lo) *(uint2 *)p = make_uint2(w[0], w[1]);
        if (hi) *(uint2 *)(p + 4) = make_uint2(w[2], w[3]);
    }
}

#endif
