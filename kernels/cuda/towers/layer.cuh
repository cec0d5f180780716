/* One layer of a tower on the device, as the engine enqueues it: the
 * layer's weights (sym_dlayer, built by engine/model.cu), its step's
 * buffers (sym_tower_bufs, named for what they hold), and what every layer
 * of a tower's step shares (sym_tower_step). Each tower's file (xlstm.cu,
 * mamba2.cu, retnet.cu, hawk.cu) has its state cells and one function that
 * enqueues a layer:
 *
 *   a = norm1(u)  ->  the tower's mixer, its state advanced  ->  u += mixer
 *   a = norm2(u)  ->  u += fc2(relu(fc1(a)))            (sym_layer_ffn)
 *
 * The xLSTM fuses norm1 into its sLSTM's entry and "u += mixer, a =
 * norm2(u)" into one kernel. A layer function returns 0, a cuBLAS status,
 * or -1 for a row wider than the row kernels take (no valid config has
 * one); it enqueues all its kernels whatever happens, and the first
 * failure is the one it returns. */
#ifndef SYM_CUDA_LAYER_CUH
#define SYM_CUDA_LAYER_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "kernels/cuda/allocs.cuh"
#include "kernels/cuda/ops/linear.cuh"
#include "kernels/cuda/runs.cuh"
extern "C" {
#include "kernels/model_config.h"
#include "kernels/state_layout.h"
}

/* The weights of one layer on the device. Projections that read the same
 * input are one matrix, their outputs side by side in the projection
 * buffer (sym_tower_bufs.proj). */
typedef struct {
    sym_dlin s_gates; /* the sLSTM's eight block-diagonal layers as one, rows [i f z o] x H */
    sym_dlin m_xg;    /* [m_x; m_gate]: the mLSTM's input and output gate */
    sym_dlin m_gates; /* [m_igate; m_fgate], fused into the gate kernel */
    sym_dlin m_down;  /* the mLSTM's output projection */
    const float *s_norm, *s_cw, *s_cb, *s_gn_w, *s_gn_b; /* sLSTM: LayerNorm, conv, GroupNorm */
    const float *m_norm, *m_cw, *m_cb, *m_q, *m_k, *m_v; /* mLSTM: LayerNorm, conv, 4x4 q/k/v blocks */
    const float *m_on_w, *m_on_b, *m_skip;               /* mLSTM: head GroupNorm, skip */
    const float *final_norm;                             /* the block's exit LayerNorm */
} sym_xlstm_dlayer;

typedef struct {
    sym_dlin proj; /* [x; z; b; c; dt] */
    sym_dlin out;
    const float *cx_w, *cx_b, *cb_w, *cb_b, *cc_w, *cc_b; /* the x, b and c convs */
    const float *a, *d, *norm;
} sym_mamba2_dlayer;

typedef struct {
    sym_dlin qkvg; /* [q; k; v; g] */
    sym_dlin out;
    const float *decay, *angle;
} sym_retnet_dlayer;

typedef struct {
    sym_dlin gr;   /* [gate; rec] */
    sym_dlin igrg; /* [ig; rg], block-diagonal */
    sym_dlin out;
    const float *cw, *cb, *a;
} sym_hawk_dlayer;

typedef struct {
    const float *norm1, *norm2; /* RMSNorm weights before the mixer and before the FFN */
    sym_dlin fc1, fc2;          /* the FFN */
    union {                     /* the tower's mixer */
        sym_xlstm_dlayer x;
        sym_mamba2_dlayer m;
        sym_retnet_dlayer r;
        sym_hawk_dlayer h;
    };
} sym_dlayer;

/* A tower's buffers for one step, rows max_batch apart at most; each row
 * stride is the argument the kernels take with the buffer. */
typedef struct {
    float *gates_in;      /* the sLSTM gates' input [g][head][x_g | y_prev], 8H */
    float *m_in;          /* layernorm(s_out) * m_norm: the mLSTM projections' input, H */
    float *xa;            /* silu(conv(x)), x the first half of proj after m_xg, I */
    float *qkv;           /* [q | k | v], 3I */
    float *gate_sc;       /* per head: ig, fg, the readout's denominator (4 a head) */
    float *readout_parts; /* the mLSTM readout's partial sums [SYM_MLSTM_SPLITS][B][I] */
    float *hn;            /* the mLSTM's output before its down projection, I */
    float *block_out;     /* the sLSTM's output, then + the mLSTM's: the block's, before its exit norm (I apart) */
} sym_xlstm_bufs;

typedef struct {
    float *xs; /* silu(conv(x)), I */
    float *bc; /* [b | c] after their convs, ldbc */
    float *y;  /* the SSM's readout times silu(z), I */
    float *yn; /* rmsnorm(y), the output projection's input, I */
} sym_mamba2_bufs;

typedef struct {
    float *o;  /* the retention readout, H (I apart) */
    float *on; /* normed and gated, the output projection's input, H (I apart) */
} sym_retnet_bufs;

typedef struct {
    float *r;    /* conv(rec), H (I apart) */
    float *igrg; /* [ig | rg], ldbc */
    float *t;    /* gelu(gate) * h, the output projection's input, H (I apart) */
} sym_hawk_bufs;

typedef struct {
    float *u;    /* the residual stream, H */
    float *a;    /* a norm's output: the mixer's and the FFN's input, H */
    float *h1;   /* the FFN's hidden layer (and the tower's input layer's output), P */
    float *proj; /* the mixer's projection output, ldp */
    union {
        sym_xlstm_bufs x;
        sym_mamba2_bufs m;
        sym_retnet_bufs r;
        sym_hawk_bufs h;
    };
} sym_tower_bufs;

/* What every layer of one tower's step shares. */
typedef struct {
    cudaStream_t s;        /* the tower's stream */
    const sym_gemm_ws *ws; /* the tower's linear workspace */
    const sym_model_config *cf;
    float *pool; /* the state slots, numel floats each */
    size_t numel;
    const int *slots; /* row b's slot (device) */
    sym_runs rn;      /* the rows' runs (rn.pass: 0) */
    int pad_slot;     /* the padding rows' slot: the state-streaming cells skip its rows */
    int state_prio;   /* launch priority of the state-streaming cells (launch.cuh) */
    sym_mat_store mat; /* how the tower's recurrence matrix is stored (state_layout.h) */
    int ldp;          /* proj's row stride: every tower's widest projection, 4-aligned */
    int ldbc;         /* Mamba2's [b | c] and Hawk's [ig | rg] row stride */
    int B;            /* rows, the padding rows included */
} sym_tower_step;

/* proj's row stride for cf: Mamba2's [x | z | b | c | dt], the widest of
 * the four towers' projections, rounded up to 8 floats */
int sym_tower_ldp(const sym_model_config *cf);
/* Mamba2's [b | c] and Hawk's [ig | rg] row stride: max(2H, 2 x 128), so
 * Mamba2's c never runs into the next row's b */
int sym_tower_ldbc(const sym_model_config *cf);

/* Tower t's buffers for up to Bm rows, recorded in al. */
int sym_tower_bufs_alloc(sym_tower_bufs *b, int t, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e);

/* The first failure of a layer's launches: a cuBLAS status or -1. */
static inline void sym_keep_first(int *bad, int st) {
    if (st && !*bad) *bad = st;
}
/* Where the kernel producing layer L's input writes its split (sym_gemv_planes). */
static inline sym_xsplit sym_planes(const sym_tower_step *st, const sym_dlin *L) {
    return sym_gemv_planes(st->ws, L, st->B);
}

/* The FFN, after the layer function has left a = norm2(u) with fc1's
 * split (sym_planes): u += fc2(relu(fc1(a))); fc1's epilogue splits its
 * output for fc2 where both take bf16 terms. */
int sym_layer_ffn(const sym_tower_step *st, const sym_dlayer *d, const sym_tower_bufs *b);

/* One layer of each tower (the diagram above), bs its state's offsets in a slot. */
int sym_xlstm_layer(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs, const sym_tower_bufs *b);
int sym_mamba2_layer(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs, const sym_tower_bufs *b);
int sym_retnet_layer(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs, const sym_tower_bufs *b);
int sym_hawk_layer(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs, const sym_tower_bufs *b);

/* The per-tower part of sym_tower_bufs_alloc. */
int sym_xlstm_bufs_alloc(sym_xlstm_bufs *b, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e);
int sym_mamba2_bufs_alloc(sym_mamba2_bufs *b, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e);
int sym_retnet_bufs_alloc(sym_retnet_bufs *b, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e);
int sym_hawk_bufs_alloc(sym_hawk_bufs *b, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e);

#endif
