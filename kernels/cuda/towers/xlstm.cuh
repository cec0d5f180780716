/* The xLSTM tower's kernels (xlstm.cu), in step order; the layer that
 * enqueues them is sym_xlstm_layer (layer.cuh). Row kernels return -1
 * (nothing launched) for a row wider than SYM_ROW_MAX. */
#ifndef SYM_CUDA_XLSTM_CUH
#define SYM_CUDA_XLSTM_CUH

#include "kernels/cuda/ops/linear.cuh"
#include "kernels/cuda/runs.cuh"
#include "kernels/cuda/towers/matrix_store.cuh"

/* a = rmsnorm(u) * w1; xn = layernorm(a) * w2 and xa = silu(conv(xn)); the
 * gates' input row sg [gate i f z o][head][x | y_prev] (heads of bs, x = xa
 * for i and f, xn for z and o; row stride ldsg >= 8n) */
int sym_slstm_in(cudaStream_t s, const float *u, int ldu, float *a, int lda, const float *w1, float eps, float *sg,
                 int ldsg, int bs, const float *w2, float *pool, size_t numel, const int *slots, sym_runs rn,
                 size_t off_conv, const float *cw, const float *cb, size_t off_y, int n, int B, sym_xsplit xs);
/* the sLSTM cell; SO = groupnorm_NS(y) * gn_w + gn_b + res; XM = layernorm(SO) * mn_w.
 * -1 (nothing launched) for H not a multiple of NS. */
int sym_slstm_out(cudaStream_t s, const float *G, int ldg, float *pool, size_t numel, const int *slots, sym_runs rn,
                  size_t off_c, size_t off_n, size_t off_m, size_t off_y, const float *gn_w, const float *gn_b,
                  const float *res, int ldr, float *SO, int ldso, const float *mn_w, float *XM, int ldxm, int H, int NS,
                  int B, sym_xsplit xs);
/* XA = silu(conv(XM)) (conv state advanced); QKV = [Wq XA | Wk XA | Wv XM], 4x4 blocks */
void sym_mlstm_in(cudaStream_t s, const float *XM, int ldxm, float *pool, size_t numel, const int *slots,
                  sym_runs rn, size_t off_conv, const float *cw, const float *cb, const float *wq, const float *wk,
                  const float *wv, float *XA, int ldxa, float *QKV, int ldq, int I, int B);
/* the gate projection Lg (rows [igate; fgate] over [q | k | v]) fused in;
 * SC[b*ldsc + 4n + {0,1,2}] = ig, fg, the readout's denominator */
void sym_mlstm_gate(cudaStream_t s, const sym_dlin *Lg, const float *QKV, int ldq, float *pool, size_t numel,
                    const int *slots, sym_runs rn, size_t off_n, size_t off_m, float *SC, int ldsc, int I, int NH,
                    int B);
/* The C update and readout, each head's rows split SYM_MLSTM_SPLITS ways
 * (enough blocks to fill the GPU at B = 1); HP [SYM_MLSTM_SPLITS][B][I]
 * receives each split's partial readout C'q, undivided. C: where C is and
 * how it is stored (matrix_store.cuh). Rows of pad_slot are skipped;
 * prio: its launch priority (launch.cuh). */
#define SYM_MLSTM_SPLITS 8
void sym_mlstm_cell(cudaStream_t s, const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel,
                    const int *slots, sym_runs rn, int pad_slot, sym_mat_loc C, float *HP, int I, int NH, int B,
                    int prio);
/* HN = (groupnorm_NH(sum of HP's splits / den) * w + b + skip * XA) * silu(XG) */
int sym_mlstm_out(cudaStream_t s, const float *HP, const float *SC, int ldsc, const float *on_w, const float *on_b,
                  const float *skip, const float *XA, int ldxa, const float *XG, int ldxg, float *HN, int ldh, int I,
                  int NH, int B, sym_xsplit xs);

#endif
