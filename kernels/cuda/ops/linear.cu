/* sym_gemv's choice of path (linear.cuh's table), where each path wants
 * its input's split, and the split-K scratch all the one-launch kernels
 * share. */
#include "kernels/cuda/ops/linear.cuh"

#include "kernels/cuda/ops/gemm_cublas.cuh"
#include "kernels/cuda/ops/gemm_tf32.cuh"
#include "kernels/cuda/ops/gemm_wg.cuh"
#include "kernels/cuda/ops/gemm_wg32.cuh"
#include "kernels/cuda/ops/gemv.cuh"
#include "kernels/cuda/ops/gemv_tc.cuh"

sym_xsplit sym_gemv_planes(const sym_gemm_ws *ws, const sym_dlin *L, int B) {
    /* sym_gemv's dispatch: its cuBLAS bf16 path and both wgmma kernels
     * read the terms */
    sym_xsplit none = {NULL, NULL}, bf = {ws ? ws->xs : NULL, NULL}, tf = {NULL, ws ? ws->xs32 : NULL};
    if (!ws) return none;
    if (!L->bf16) return sym_gemm_wg32_fits(ws, L, B) ? tf : none;
    if (B >= ws->tc_min && B <= ws->tc_max) return none;
    if (sym_gemm_wg_fits(ws, L, B)) return bf; /* the wgmma kernel's input */
    if (B < ws->gemm_min || (L->blk_rows < L->out && B <= ws->blk_own_max)) return none;
    return bf;
}

size_t sym_splitk_part_floats(int n_sm, int max_out) {
    const size_t n[] = {sym_gemv_tc_part_floats(n_sm, max_out), sym_gemm_tf32_part_floats(n_sm),
                        sym_gemm_wg_part_floats(n_sm, max_out), sym_gemm_wg32_part_floats(n_sm, max_out)};
    size_t m = 0;
    for (size_t v : n) m = v > m ? v : m;
    return m;
}

int sym_splitk_counters(int max_out) {
    int a = sym_gemv_tc_counters(max_out), b = sym_gemm_tf32_counters(max_out), c = sym_gemm_wg_counters(max_out);
    return a > b ? (a > c ? a : c) : (b > c ? b : c);
}

int sym_gemv(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y, int ldy,
             int B, int flags) {
    /* block-diagonal layers stay on the own kernel up to blk_own_max:
     * through cuBLAS each part is its own batched GEMM (a layer of 2-4 parts
     * costs 4-6 launches), which the own kernel beats only at small B */
    if (ws && L->bf16 && B >= ws->tc_min && B <= ws->tc_max && sym_gemv_tc(s, ws, L, x, ldx, y, ldy, B, flags) == 0)
        return 0;
    if (ws && !L->bf16 && sym_gemm_wg32_fits(ws, L, B) && sym_gemm_wg32(s, ws, L, x, ldx, y, ldy, B, flags) == 0)
        return 0;
    if (ws && !L->bf16 && B >= ws->tf32_min && B <= ws->tf32_max &&
        sym_gemm_tf32(s, ws, L, x, ldx, y, ldy, B, flags) == 0)
        return 0;
    const int blk = L->blk_rows < L->out, w = blk ? L->xwrap * L->in : L->in;
    if (ws && sym_gemm_wg_fits(ws, L, B)) {
        if (!(flags & (GEMV_X_SPLIT | GEMV_X_CHAIN))) sym_gemv_split(s, ws, x, ldx, w, B), flags |= GEMV_X_SPLIT;
        /* it refuses only misaligned terms; cuBLAS takes them then */
        if (sym_gemm_wg(s, ws, L, (flags & GEMV_X_CHAIN) ? ws->xs2 : ws->xs, y, ldy, B, flags) == 0) return 0;
    }
    if (!ws || B < ws->gemm_min || (L->blk_rows < L->out && B <= ws->blk_own_max)) {
        sym_gemv_own(s, L, x, ldx, y, ldy, B, flags);
        return 0;
    }
    return sym_gemm_cublas(s, ws, L, x, ldx, y, ldy, B, flags);
}
