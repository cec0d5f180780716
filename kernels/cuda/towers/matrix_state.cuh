/* The update both matrix-state cells make (RetNet's S, retnet.cu; the
 * mLSTM's C, xlstm.cu): M' = f M + k v^T over some rows of one head's
 * matrix, each element read and written once, with the readout q^T M'
 * (before M' is rounded to its storage, matrix_store.cuh).
 * A block is 32 x 8 threads; thread (tx, ty) owns the four columns j..j+3
 * (16-byte accesses in fp32) and every eighth row from ty. Both cells use the same
 * code, so the same summation order: a row's result does not depend on B,
 * nor on whether it came in a run (sym_runs). */
#ifndef SYM_CUDA_MATRIX_STATE_CUH
#define SYM_CUDA_MATRIX_STATE_CUH

#include <stddef.h>
#include <cuda_runtime.h>

#include "kernels/cuda/runs.cuh"
#include "kernels/cuda/towers/matrix_store.cuh"

/* Rows a thread has in flight: their loads are issued before any of them
 * is used (held as stored, sym_mat_raw), so a thread keeps that many row
 * segments' bytes in flight whatever waits between rows (fp16's warp-wide
 * scale): 64 bytes, twice the rows in two-byte formats. The variants for runs, held to 64
 * registers and doing R rows' work per byte, keep one. */
__host__ __device__ constexpr int sym_matrix_rows_in_flight(int F, int run) {
    return run > 1 ? 1 : F == SYM_MAT_F32 ? 4 : 8;
}

/* A cell's launch bounds' blocks an SM: sym_run_min_blocks' for fp32;
 * three for the two-byte formats outside runs, whose eight rows in flight
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
 * as F, matrix_store.cuh), columns j..j+3, for the nr (<= RUN) rows of a
 * run in order (sym_runs): M[i][j..] = f[r] M[i][j..] + kc(r, i) vj[r],
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

#endif
