/* The matrix-state cells as they were for the two-byte formats before
 * the cells took eight numbers a thread (kernels/cuda/towers/
 * matrix_state.cuh's sym_matrix_rows8): a thread owns four numbers of a
 * row (8-byte accesses in two bytes a number), a warp one fp16 segment, a
 * block 128 columns; eight rows in flight outside runs, one in the
 * variants for runs. Kept here only, as the reference the eight-number
 * cells must equal bit for bit (the same arithmetic per element and the
 * same summation order): dev/cuda/mlstm.cu and dev/cuda/retnet.cu run both
 * on the same inputs and compare every output and stored byte, and time
 * both. The loop, kernels and launchers are the engine's of commit
 * a4c7c20, renamed, for the two-byte formats only. */
#ifndef SYM_DEV_MATRIX_CELL4_CUH
#define SYM_DEV_MATRIX_CELL4_CUH

#include "kernels/cuda/device.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/towers/matrix_state.cuh"
#include "kernels/cuda/towers/xlstm.cuh"

/* matrix_rows4's loop for runs of up to R rows (nr of them) */
template <int F, int R, typename KF, typename QF>
__device__ __forceinline__ void matrix_rows4_loop(const sym_mat &M, int i0, int i1, int j, bool on, const float (&f)[R],
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

/* sym_matrix_rows as it was: columns j..j+3 of every eighth row from ty */
template <int F, int RUN, typename KF, typename QF>
__device__ __forceinline__ void matrix_rows4(const sym_mat &M, int i0, int i1, int j, bool on, const float (&f)[RUN],
                                             const float4 (&vj)[RUN], int nr, KF kc, QF qv, float4 (&acc)[RUN]) {
    if constexpr (RUN > 1) {
        if (nr == 1) {
            const float f1[1] = {f[0]};
            const float4 v1[1] = {vj[0]};
            float4 a1[1];
            matrix_rows4_loop<F, 1>(M, i0, i1, j, on, f1, v1, 1, kc, qv, a1);
#pragma unroll
            for (int r = 0; r < RUN; r++) acc[r] = r ? make_float4(0.0f, 0.0f, 0.0f, 0.0f) : a1[0];
            return;
        }
    }
    matrix_rows4_loop<F, RUN>(M, i0, i1, j, on, f, vj, nr, kc, qv, acc);
}

/* k_mlstm_cell's parts of a step's rows (xlstm.cu) */
enum { MLSTM4_ALL, MLSTM4_SINGLES, MLSTM4_RUNS };

template <int F, int RUN>
__global__ void __launch_bounds__(256, sym_matrix_min_blocks(F, RUN, 4))
    k_mlstm_cell4(const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel, const int *slots,
                  const int *rlen, int part, int pad_slot, sym_mat_loc C, float *HP, int I, int dm, int B) {
    SYM_PDL_WAIT();
    __shared__ float4 red[8][32];
    const int RS = SYM_MLSTM_SPLITS;
    int tx = threadIdx.x, ty = threadIdx.y, j = (blockIdx.x * 32 + tx) * 4, n = blockIdx.y / RS, rs = blockIdx.y % RS;
    int b = blockIdx.z, per = (dm + RS - 1) / RS, i0 = rs * per, i1 = min(dm, i0 + per);
    const int nr = RUN == 1 ? 1 : rlen[b];
    if (part == MLSTM4_SINGLES && rlen[b] != 1) return;
    if (part == MLSTM4_RUNS && nr < 2) return;
    if (!nr || slots[b] == pad_slot) return;
    float4 acc[RUN];
#pragma unroll
    for (int r = 0; r < RUN; r++) acc[r] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    {
        const bool on = j < dm;
        float ig[RUN], fg[RUN];
        float4 vj[RUN];
#pragma unroll
        for (int r = 0; r < RUN; r++) {
            const float *sc = SC + (size_t)(b + (r < nr ? r : 0)) * ldsc + 4 * n;
            ig[r] = sc[0], fg[r] = sc[1];
            vj[r] = on ? *(const float4 *)(QKV + (size_t)(b + (r < nr ? r : 0)) * ldq + 2 * I + n * dm + j)
                       : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        const float ksc = 1.0f / sqrtf((float)dm);
        const float *q0 = QKV + (size_t)b * ldq + n * dm;
        const size_t lq = (size_t)ldq;
        const sym_mat M = sym_mat_head<F>(sym_slot(pool, numel, slots, b), C.off, C.eoff, n, dm, dm);
        matrix_rows4<F, RUN>(M, i0, i1, j, on, fg, vj, nr, [=](int r, int i) { return ig[r] * (q0[r * lq + I + i] * ksc); },
                             [=](int r, int i) { return q0[r * lq + i]; }, acc);
    }
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        const float4 s = sym_matrix_readout(acc[r], red);
        if (ty == 0 && j < dm) *(float4 *)(HP + ((size_t)rs * B + b + r) * I + n * dm + j) = s;
    }
}

template <int F>
static void mlstm_cell4_f(cudaStream_t s, const float *QKV, int ldq, const float *SC, int ldsc, float *pool,
                          size_t numel, const int *slots, sym_runs rn, int pad_slot, sym_mat_loc C, float *HP, int I,
                          int NH, int B) {
    int dm = I / NH;
    dim3 grid((dm + 127) / 128, NH * SYM_MLSTM_SPLITS, B), block(32, 8);
    if (rn.max > 1) {
        sym_launch_state(k_mlstm_cell4<F, 1>, grid, block, s, SYM_PRIO_STREAM, QKV, ldq, SC, ldsc, pool, numel, slots,
                         rn.len, (int)MLSTM4_SINGLES, pad_slot, C, HP, I, dm, B);
        sym_launch_state(k_mlstm_cell4<F, SYM_RUN_MAX>, grid, block, s, SYM_PRIO_STREAM, QKV, ldq, SC, ldsc, pool,
                         numel, slots, rn.len, (int)MLSTM4_RUNS, pad_slot, C, HP, I, dm, B);
    } else {
        sym_launch_state(k_mlstm_cell4<F, 1>, grid, block, s, SYM_PRIO_STREAM, QKV, ldq, SC, ldsc, pool, numel, slots,
                         rn.len, (int)MLSTM4_ALL, pad_slot, C, HP, I, dm, B);
    }
}

/* sym_mlstm_cell's contract, four numbers a thread; C two-byte */
static inline void mlstm_cell4(cudaStream_t s, const float *QKV, int ldq, const float *SC, int ldsc, float *pool,
                               size_t numel, const int *slots, sym_runs rn, int pad_slot, sym_mat_loc C, float *HP,
                               int I, int NH, int B) {
    if (C.fmt == SYM_MAT_BF16) mlstm_cell4_f<SYM_MAT_BF16>(s, QKV, ldq, SC, ldsc, pool, numel, slots, rn, pad_slot, C, HP, I, NH, B);
    else mlstm_cell4_f<SYM_MAT_F16>(s, QKV, ldq, SC, ldsc, pool, numel, slots, rn, pad_slot, C, HP, I, NH, B);
}

template <int F, int RUN>
__global__ void __launch_bounds__(256, sym_matrix_min_blocks(F, RUN, 4))
    k_retnet_cell4(const float *PR, int ldp, int H, int hd, const float *decay, float *pool, size_t numel,
                   const int *slots, const int *rlen, int pad_slot, sym_mat_loc S, float *O, int ldo) {
    SYM_PDL_WAIT();
    __shared__ float4 red[8][32];
    int tx = threadIdx.x, ty = threadIdx.y, j = (blockIdx.x * 32 + tx) * 4, n = blockIdx.y, b = blockIdx.z;
    const int nr = RUN == 1 ? 1 : rlen[b];
    if (!nr || slots[b] == pad_slot) return;
    float4 acc[RUN];
#pragma unroll
    for (int r = 0; r < RUN; r++) acc[r] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    {
        const bool on = j < hd;
        float f[RUN];
        float4 vj[RUN];
#pragma unroll
        for (int r = 0; r < RUN; r++) {
            f[r] = decay[n];
            vj[r] = on && r < nr ? *(const float4 *)(PR + (size_t)(b + r) * ldp + n * hd + 2 * H + j) : acc[r];
        }
        const sym_mat M = sym_mat_head<F>(sym_slot(pool, numel, slots, b), S.off, S.eoff, n, hd, hd);
        const float *q0 = PR + (size_t)b * ldp + n * hd;
        const size_t lp = (size_t)ldp;
        matrix_rows4<F, RUN>(M, 0, hd, j, on, f, vj, nr, [=](int r, int i) { return q0[r * lp + H + i]; },
                             [=](int r, int i) { return q0[r * lp + i]; }, acc);
    }
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        const float4 s = sym_matrix_readout(acc[r], red);
        if (ty == 0 && j < hd) {
            float *o = O + (size_t)(b + r) * ldo + n * hd + j;
            o[0] = s.x, o[1] = s.y, o[2] = s.z, o[3] = s.w;
        }
    }
}

template <int F>
static void retnet_cell4_f(cudaStream_t s, const float *PR, int ldp, int H, int NH, const float *decay, float *pool,
                           size_t numel, const int *slots, sym_runs rn, int pad_slot, sym_mat_loc S, float *O, int ldo,
                           int B) {
    int hd = H / NH;
    dim3 grid((hd + 127) / 128, NH, B), block(32, 8);
    if (rn.max > 1)
        sym_launch_state(k_retnet_cell4<F, SYM_RUN_MAX>, grid, block, s, SYM_PRIO_STREAM, PR, ldp, H, hd, decay, pool,
                         numel, slots, rn.len, pad_slot, S, O, ldo);
    else
        sym_launch_state(k_retnet_cell4<F, 1>, grid, block, s, SYM_PRIO_STREAM, PR, ldp, H, hd, decay, pool, numel,
                         slots, rn.len, pad_slot, S, O, ldo);
}

/* sym_retnet_cell's contract, four numbers a thread; S two-byte */
static inline void retnet_cell4(cudaStream_t s, const float *PR, int ldp, int H, int NH, const float *decay,
                                float *pool, size_t numel, const int *slots, sym_runs rn, int pad_slot, sym_mat_loc S,
                                float *O, int ldo, int B) {
    if (S.fmt == SYM_MAT_BF16) retnet_cell4_f<SYM_MAT_BF16>(s, PR, ldp, H, NH, decay, pool, numel, slots, rn, pad_slot, S, O, ldo, B);
    else retnet_cell4_f<SYM_MAT_F16>(s, PR, ldp, H, NH, decay, pool, numel, slots, rn, pad_slot, S, O, ldo, B);
}

#endif
