/* The update both matrix-state cells make (RetNet's S, gv_retnet.cu; the
 * mLSTM's C, gv_xlstm.cu): M' = f M + k v^T over some rows of one head's
 * matrix, each element read and written once, with the readout q^T M'.
 * A block is 32 x 8 threads; thread (tx, ty) owns the four columns j..j+3
 * (16-byte accesses) and every eighth row from ty. Both cells use the same
 * code, so the same summation order: a row's result does not depend on B. */
#ifndef SYM_GV_MATRIX_STATE_CUH
#define SYM_GV_MATRIX_STATE_CUH

#include "gv_common.cuh"

/* Rows i0 + ty, i0 + ty + 8, ... below i1 of M (row stride ld floats),
 * columns j..j+3: M[i][j..] = f M[i][j..] + kc(i) vj, in place, and the
 * returned sum over those rows of qv(i) M'[i][j..]. */
template <typename KF, typename QF>
__device__ __forceinline__ float4 sym_matrix_rows(float *M, size_t ld, int i0, int i1, int j, float f, float4 vj,
                                                  KF kc, QF qv) {
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 4
    for (int i = i0 + (int)threadIdx.y; i < i1; i += 8) {
        float4 *mp = (float4 *)(M + (size_t)i * ld + j);
        float4 m = *mp;
        const float kk = kc(i), qi = qv(i);
        m.x = f * m.x + kk * vj.x;
        m.y = f * m.y + kk * vj.y;
        m.z = f * m.z + kk * vj.z;
        m.w = f * m.w + kk * vj.w;
        *mp = m;
        acc.x += qi * m.x, acc.y += qi * m.y, acc.z += qi * m.z, acc.w += qi * m.w;
    }
    return acc;
}

/* The block's eight row groups' readouts, summed in the order 0..7 through
 * red (a barrier: every thread of the block calls it); the sum is valid in
 * the threads of ty = 0. */
__device__ __forceinline__ float4 sym_matrix_readout(float4 acc, float4 (&red)[8][32]) {
    const int tx = threadIdx.x, ty = threadIdx.y;
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
