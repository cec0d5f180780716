/* The update both matrix-state cells make (RetNet's S, retnet.cu; the
 * mLSTM's C, xlstm.cu): M' = f M + k v^T over some rows of one head's
 * matrix, each element read and written once, with the readout q^T M'
 * (before M' is rounded to its storage, matrix_store.cuh).
 * A block is 32 x 8 threads; thread (tx, ty) owns every eighth row from ty
 * and, in each, consecutive columns from j: four in fp32 (sym_matrix_rows,
 * a block 128 columns, float4 accesses), eight in the two-byte formats
 * (sym_matrix_rows8, a block 256 columns, 16-byte accesses of eight
 * numbers; a warp's 256 numbers are two fp16 segments, a half-warp's
 * each). The two loops are kept apart so that fp32's stays the code it
 * was measured as. Both sum a column in one fixed order, a thread's rows
 * in increasing order, then the eight row groups 0..7
 * (sym_matrix_readout, sym_matrix_readout8), so its result does not
 * depend on B, nor on whether its row came in a run (sym_runs), and a
 * two-byte column's is what four numbers a thread gave, bit for bit
 * (dev/cuda/matrix_cell4.cuh). */
#ifndef SYM_CUDA_MATRIX_STATE_CUH
#define SYM_CUDA_MATRIX_STATE_CUH

#include <stddef.h>
#include <cuda_runtime.h>

#include "kernels/cuda/runs.cuh"
#include "kernels/cuda/towers/matrix_store.cuh"

/* Rows a thread of four numbers a row has in flight (fp32's cells, and
 * Mamba2's in every format): their loads are issued before any of them is
 * used (held as stored, sym_mat_raw), so a thread keeps that many row
 * segments' bytes in flight whatever waits between rows (fp16's warp-wide
 * scale): 64 bytes, twice the rows in two-byte formats. The variants for
 * runs, held to 64 registers and doing R rows' work per byte, keep one. */
__host__ __device__ constexpr int sym_matrix_rows_in_flight(int F, int run) {
    return run > 1 ? 1 : F == SYM_MAT_F32 ? 4 : 8;
}

/* A cell's launch bounds' blocks an SM (four numbers a thread: fp32's
 * cells, Mamba2's): sym_run_min_blocks' for fp32; three for the two-byte
 * formats outside runs, whose eight rows in flight
 * (and fp16's scales) would otherwise take 112-120 registers, two blocks
 * an SM, and so fewer bytes in flight an SM than fp32's four. */
__host__ __device__ constexpr int sym_matrix_min_blocks(int F, int run, int min_blocks) {
    return F == SYM_MAT_F32 || run > 1 ? sym_run_min_blocks(run, min_blocks) : 3;
}

/* sym_matrix_rows' loop for runs of up to R rows (nr of them) */
template <int F, int R, typename KF, typename QF>
__device__ __forceinline__ void matrix_rows_loop(const sym_mat &M, int i0, int i1, int j, bool on, const float (&f)[R],
                                                 const float4 (&vj)[R], int nr, KF kc, QF qv, float4 (&acc)[R]) {
    constexpr int U = sym_matrix_rows_in_flight(F, R);
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 1
    for (int i = i0 + (int)threadIdx.y; i < i1; i += 8 * U) {
        sym_mat_raw<F> raw[U];
#pragma unroll
        for (int u = 0; u < U; u++) raw[u] = sym_mat_load<F>(M, i + 8 * u, j, on && i + 8 * u < i1);
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int row = i + 8 * u;
            if (row >= i1) break; /* the same for the whole warp (one ty) */
            float4 m = sym_mat_value<F>(raw[u]);
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (r >= nr) break;
                const float kk = kc(r, row), qi = qv(r, row);
                m.x = f[r] * m.x + kk * vj[r].x;
                m.y = f[r] * m.y + kk * vj[r].y;
                m.z = f[r] * m.z + kk * vj[r].z;
                m.w = f[r] * m.w + kk * vj[r].w;
                acc[r].x += qi * m.x, acc[r].y += qi * m.y, acc[r].z += qi * m.z, acc[r].w += qi * m.w;
                /* each row's step ends with the state as stored: the next
                 * row of the run reads what a step of its own would have */
                if (r + 1 < nr) m = sym_mat_round<F>(m);
            }
            sym_mat_put<F>(M, row, j, m, on);
        }
    }
}

/* Rows i0 + ty, i0 + ty + 8, ... below i1 of the head's matrix M (stored
 * as fp32; the two-byte formats take sym_matrix_rows8), columns j..j+3,
 * for the nr (<= RUN) rows of a run in order (sym_runs): M[i][j..] = f[r] M[i][j..] + kc(r, i) vj[r],
 * in place, each element read and written once for the whole run, and
 * acc[r] = the sum over those rows of qv(r, i) M'[i][j..] after row r's
 * update, before its rounding to F. Every lane of a warp calls it (fp16
 * rounds a row segment warp-wide); a lane whose columns are past the
 * row's end has on = false and vj zero, and reads and writes nothing. A
 * row outside a run (nr = 1) takes the loop of runs of one, with the
 * occupancy the kernel's launch bounds keep (sym_run_min_blocks). The
 * loop for RUN rows everywhere held every block of a step with a single
 * run to the occupancy of 80-90 registers (the mLSTM cell's 12 launches
 * 2.75 -> 3.47 ms in a B = 39 step, ncu, H100). The RetNet cell relies on
 * this; the mLSTM cell, two thirds of a step's state bytes, goes further
 * and launches its rows outside runs separately (xlstm.cu, MLSTM_SINGLES),
 * so its variant for runs only ever sees runs. */
template <int F, int RUN, typename KF, typename QF>
__device__ __forceinline__ void sym_matrix_rows(const sym_mat &M, int i0, int i1, int j, bool on, const float (&f)[RUN],
                                                const float4 (&vj)[RUN], int nr, KF kc, QF qv, float4 (&acc)[RUN]) {
    static_assert(F == SYM_MAT_F32, "the two-byte formats' cells take sym_matrix_rows8");
    if constexpr (RUN > 1) {
        if (nr == 1) {
            const float f1[1] = {f[0]};
            const float4 v1[1] = {vj[0]};
            float4 a1[1];
            matrix_rows_loop<F, 1>(M, i0, i1, j, on, f1, v1, 1, kc, qv, a1);
#pragma unroll
            for (int r = 0; r < RUN; r++) acc[r] = r ? make_float4(0.0f, 0.0f, 0.0f, 0.0f) : a1[0];
            return;
        }
    }
    matrix_rows_loop<F, RUN>(M, i0, i1, j, on, f, vj, nr, kc, qv, acc);
}

/* The block's eight row groups' readouts, summed in the order 0..7 through
 * red (a barrier: every thread of the block calls it); the sum is valid in
 * the threads of ty = 0. */
__device__ __forceinline__ float4 sym_matrix_readout(float4 acc, float4 (&red)[8][32]) {
    const int tx = threadIdx.x, ty = threadIdx.y;
    __syncthreads(); /* a previous readout's reads of red are done */
    red[ty][tx] = acc;
    __syncthreads();
    float4 s = acc;
    if (ty == 0) {
        s = red[0][tx];
#pragma unroll
        for (int r = 1; r < 8; r++) s.x += red[r][tx].x, s.y += red[r][tx].y, s.z += red[r][tx].z, s.w += red[r][tx].w;
    }
    return s;
}

/* ---- the two-byte formats: eight numbers a thread ---- */

/* Rows a thread of eight numbers a row has in flight: their loads, and
 * the k, q and fp16 exponents of those rows, are issued before the first
 * of the rows is stored (a store may alias a later load, which would then
 * wait for it), so a thread keeps that many rows' 16 bytes in flight
 * whatever waits between rows (fp16's scale, the stores). Four, 64 bytes a
 * thread as in fp32's cells, outside runs and in them: eight outside runs
 * took 103-124 registers, two blocks an SM, and spilled in the RetNet
 * cell's sm_90 build. */
#define SYM_MATRIX8_IN_FLIGHT 4

/* A two-byte cell's launch bounds' blocks an SM: three outside runs
 * (75-80 registers, sm_90 and sm_90a); two for the variants for runs
 * (123-127: the acc and v of RUN rows of eight numbers take 64). Neither
 * spills. */
__host__ __device__ constexpr int sym_matrix8_min_blocks(int run) { return run > 1 ? 2 : 3; }

/* sym_matrix_rows8's loop for runs of up to R rows (nr of them), U rows
 * in flight. A row's k
 * and q are the same in every lane of the warp (one ty, so the same rows):
 * lane t < 16 loads k of (row group u, run row r) = (t / R, t % R), lane
 * 16 + t its q, and each lane takes them by shuffle when used, rather than
 * every lane loading all 2 U R of them (registers, and load instructions
 * per byte). */
template <int F, int R, int U, bool A16, typename KF, typename GF, typename QF>
__device__ __forceinline__ void matrix_rows8_loop(const sym_mat &M, int i0, int i1, int j, bool lo, bool hi,
                                                  const float (&f)[R], const float (&vj)[R][8], int nr, KF kv, GF kg,
                                                  QF qv, float (&acc)[R][8]) {
    static_assert(U * R <= 16, "a half-warp's lanes load a group's k, the other half its q");
    const int lane = (int)threadIdx.x & 31, t = lane & 15, lu = t / R, lr = t % R;
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[r][e] = 0.0f;
#pragma unroll 1
    for (int i = i0 + (int)threadIdx.y; i < i1; i += 8 * U) {
        uint4 raw[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const bool in = i + 8 * u < i1;
            raw[u] = sym_mat_load8<F, A16>(M, i + 8 * u, j, lo && in, hi && in);
        }
        const int ex = F == SYM_MAT_F16 ? sym_mat_exps8(M, i, U, i1, j) : 0;
        const int lrow = i + 8 * lu;
        const float kq = t < U * R && lr < nr && lrow < i1 ? (lane < 16 ? kv(lr, lrow) : qv(lr, lrow)) : 0.0f;
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int row = i + 8 * u;
            if (row >= i1) break; /* the same for the whole warp (one ty) */
            float m[8];
            sym_mat_value8<F>(raw[u], F == SYM_MAT_F16 ? sym_mat_exp8(ex, u, j) : 0, m);
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (r >= nr) break;
                const float kk = kg(r, __shfl_sync(0xffffffffu, kq, u * R + r)),
                            qi = __shfl_sync(0xffffffffu, kq, 16 + u * R + r);
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    m[e] = f[r] * m[e] + kk * vj[r][e];
                    acc[r][e] += qi * m[e];
                }
                /* each row's step ends with the state as stored (sym_matrix_rows) */
                if (r + 1 < nr) sym_mat_round8<F>(m, j);
            }
            sym_mat_put8<F, A16>(M, row, j, m, lo, hi);
        }
    }
}

/* sym_matrix_rows for the two-byte formats F: columns j..j+7, j a
 * multiple of 8 and the warp's first a multiple of 256 (its lanes hold
 * two fp16 segments, matrix_store.cuh); lo: j..j+3 are in the row, hi:
 * j+4..j+7 are (ld % 4 == 0, so none, four or eight); A16: ld % 8 == 0
 * (sym_mat_load8). k = kg(r, kv(r, i)) and q = qv(r, i) for row i of the
 * run's row r: kv and qv load (r at run time, in the lane that loads it),
 * kg takes r at compile time (a factor per run row, kept in registers).
 * The same arithmetic per element as sym_matrix_rows, rows in the same
 * order, so each element and readout is what the four-number layout gives
 * for these formats, bit for bit (dev/cuda/mlstm.cu, dev/cuda/retnet.cu).
 * Every lane of a warp calls it (the fp16 scales, the shuffles); a lane
 * whose columns are past the row's end has lo = hi = false and vj zero,
 * and reads and writes nothing of M. A row outside a run takes the loop
 * of runs of one, as in sym_matrix_rows. */
template <int F, int RUN, bool A16, typename KF, typename GF, typename QF>
__device__ __forceinline__ void sym_matrix_rows8(const sym_mat &M, int i0, int i1, int j, bool lo, bool hi,
                                                 const float (&f)[RUN], const float (&vj)[RUN][8], int nr, KF kv,
                                                 GF kg, QF qv, float (&acc)[RUN][8]) {
    static_assert(F == SYM_MAT_BF16 || F == SYM_MAT_F16, "fp32 takes sym_matrix_rows");
    if constexpr (RUN > 1) {
        if (nr == 1) {
            const float f1[1] = {f[0]};
            float v1[1][8], a1[1][8];
#pragma unroll
            for (int e = 0; e < 8; e++) v1[0][e] = vj[0][e];
            matrix_rows8_loop<F, 1, SYM_MATRIX8_IN_FLIGHT, A16>(M, i0, i1, j, lo, hi, f1, v1, 1, kv, kg, qv, a1);
#pragma unroll
            for (int r = 0; r < RUN; r++)
#pragma unroll
                for (int e = 0; e < 8; e++) acc[r][e] = r ? 0.0f : a1[0][e];
            return;
        }
    }
    matrix_rows8_loop<F, RUN, SYM_MATRIX8_IN_FLIGHT, A16>(M, i0, i1, j, lo, hi, f, vj, nr, kv, kg, qv, acc);
}

/* sym_matrix_readout for eight columns a thread: the same order, 0..7,
 * into s; red holds the block's low and high four columns apart, each
 * laid out as sym_matrix_readout's. */
__device__ __forceinline__ void sym_matrix_readout8(const float (&acc)[8], float4 (&red)[2][8][32], float (&s)[8]) {
    const int tx = threadIdx.x, ty = threadIdx.y;
    __syncthreads(); /* a previous readout's reads of red are done */
    red[0][ty][tx] = make_float4(acc[0], acc[1], acc[2], acc[3]);
    red[1][ty][tx] = make_float4(acc[4], acc[5], acc[6], acc[7]);
    __syncthreads();
#pragma unroll
    for (int e = 0; e < 8; e++) s[e] = acc[e];
    if (ty == 0) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float4 a = red[h][0][tx];
#pragma unroll
            for (int r = 1; r < 8; r++) a.x += red[h][r][tx].x, a.y += red[h][r][tx].y, a.z += red[h][r][tx].z, a.w += red[h][r][tx].w;
            s[4 * h] = a.x, s[4 * h + 1] = a.y, s[4 * h + 2] = a.z, s[4 * h + 3] = a.w;
        }
    }
}

#endif
