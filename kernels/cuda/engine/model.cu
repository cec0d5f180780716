/* A backend's device weights, built from the full fp32 weight arena on its
 * GPU (uploaded, generated, or placed by distribute.cu): each layer's
 * matrices in the tower's precision, projections that read the same input
 * stacked into one matrix (sym_dlayer), and every other tensor (norms,
 * convs, biases of no matrix, decays) in one compact fp32 arena.
 *
 * bf16 towers: only the matrices (everything stack() stores) are rounded,
 * by the bf16 conversion itself; vectors (biases, norms, conv, decay,
 * angle, Hawk a, Mamba a/d, the 4x4 mLSTM blocks) stay exact fp32: they
 * cost no bandwidth, and bf16 would round RetNet's decay and Hawk's a
 * (within 2^-9 of 1) to 1.0. sym_weights_round_bf16() is the host mirror
 * for reference runs. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/engine/engine.cuh"
#include "kernels/cuda/ops/convert.cuh"

typedef struct {
    cuda_backend *c;
    const sym_weights *wd; /* bound to the full fp32 device arena */
    const float *arena;
    char *consumed;   /* per spec: moved into a matrix, not needed in the compact arena */
    float *small;     /* the compact arena */
    size_t *small_at; /* per spec: its offset there */
} builder;

static void mark(builder *bd, const float *p) {
    if (!p || p < bd->arena || p >= bd->arena + bd->wd->arena_floats) return; /* not the arena's (a built matrix) */
    size_t off = (size_t)(p - bd->arena);
    for (int i = 0; i < bd->wd->n_specs; i++)
        if (bd->wd->specs[i].offset == off) bd->consumed[i] = 1;
}

/* rows of parts (each [out_k, in] with optional bias) stacked into one matrix */
static int stack(builder *bd, const float *const *w, const float *const *b, const int *rows, int n, int in,
                 int blk_rows, int xwrap, int bf16, sym_dlin *L, sym_err *e) {
    cuda_backend *c = bd->c;
    int out = 0, any_bias = 0;
    for (int k = 0; k < n; k++) out += rows[k], any_bias |= b[k] != NULL;
    size_t es = bf16 ? 2 : 4;
    void *W;
    if (sym_allocs_add(&c->allocs, &W, (size_t)out * in * es, e)) return -1;
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        size_t cnt = (size_t)rows[k] * in;
        if (bf16) sym_f32_to_bf16_dev(c->s, w[k], (__nv_bfloat16 *)W + at, cnt);
        else CUDA_CHECK(cudaMemcpyAsync((float *)W + at, w[k], cnt * 4, cudaMemcpyDeviceToDevice, c->s));
        CUDA_CHECK(cudaGetLastError());
        at += cnt;
        mark(bd, w[k]);
        mark(bd, b[k]);
    }
    c->weight_bytes += (size_t)out * in * es;
    float *B = NULL;
    if (any_bias) {
        if (sym_allocs_add(&c->allocs, (void **)&B, (size_t)out * 4, e)) return -1;
        CUDA_CHECK(cudaMemsetAsync(B, 0, (size_t)out * 4, c->s));
        int r = 0;
        for (int k = 0; k < n; k++) {
            if (b[k]) CUDA_CHECK(cudaMemcpyAsync(B + r, b[k], (size_t)rows[k] * 4, cudaMemcpyDeviceToDevice, c->s));
            r += rows[k];
        }
        c->weight_bytes += (size_t)out * 4;
    }
    L->w = W, L->b = B, L->out = out, L->in = in, L->blk_rows = blk_rows ? blk_rows : out, L->xwrap = xwrap;
    L->bf16 = bf16;
    return 0;
}

/* dense layers that read the same input, as one */
static int stack_dense(builder *bd, const sym_linear *const *p, int n, int bf16, sym_dlin *L, sym_err *e) {
    const float *w[8], *b[8];
    int rows[8];
    for (int k = 0; k < n; k++) w[k] = p[k]->w, b[k] = p[k]->b, rows[k] = p[k]->out;
    return stack(bd, w, b, rows, n, p[0]->in, 0, 1, bf16, L, e);
}

/* block-diagonal layers that read the same input, as one */
static int stack_blocks(builder *bd, const sym_blocklinear *const *p, int n, int bf16, sym_dlin *L, sym_err *e) {
    const float *w[8], *b[8];
    int rows[8];
    for (int k = 0; k < n; k++) w[k] = p[k]->w, b[k] = p[k]->b, rows[k] = p[k]->nb * p[k]->bs;
    return stack(bd, w, b, rows, n, p[0]->bs, p[0]->bs, p[0]->nb, bf16, L, e);
}

/* The sLSTM's eight block-diagonal layers as one: gate g's head h reads
 * [x_g(h) | y_prev(h)] (x = xa for i and f, xn for z and o) through
 * [W_in_g(h) | W_st_g(h)], bias b_st_g. Rows [i f z o] x H; the input is
 * the row [g][h][2 bs] that the sLSTM entry kernel writes. One launch (or
 * one batched GEMM) instead of three (or eight). */
static int stack_slstm_gates(builder *bd, const sym_xlstm_weights *x, int bf16, sym_dlin *L, sym_err *e) {
    cuda_backend *c = bd->c;
    const sym_blocklinear *in[4] = {&x->s_ig_in, &x->s_fg_in, &x->s_zg_in, &x->s_og_in},
                          *st[4] = {&x->s_ig_st, &x->s_fg_st, &x->s_zg_st, &x->s_og_st};
    const int nb = in[0]->nb, bs = in[0]->bs, H = nb * bs;
    float *w = NULL, *b = NULL;
    cudaError_t ce = cudaMalloc((void **)&w, (size_t)4 * H * 2 * bs * 4);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&b, (size_t)4 * H * 4);
    if (ce == cudaSuccess) ce = cudaMemsetAsync(b, 0, (size_t)4 * H * 4, c->s);
    for (int g = 0; g < 4 && ce == cudaSuccess; g++) {
        float *dst = w + (size_t)g * H * 2 * bs;
        ce = cudaMemcpy2DAsync(dst, 2 * bs * 4, in[g]->w, bs * 4, bs * 4, H, cudaMemcpyDeviceToDevice, c->s);
        if (ce == cudaSuccess)
            ce = cudaMemcpy2DAsync(dst + bs, 2 * bs * 4, st[g]->w, bs * 4, bs * 4, H, cudaMemcpyDeviceToDevice, c->s);
        if (ce == cudaSuccess && st[g]->b)
            ce = cudaMemcpyAsync(b + (size_t)g * H, st[g]->b, (size_t)H * 4, cudaMemcpyDeviceToDevice, c->s);
        mark(bd, in[g]->w), mark(bd, in[g]->b), mark(bd, st[g]->w), mark(bd, st[g]->b);
    }
    int rc = -1;
    if (ce != cudaSuccess) {
        sym_fail(e, "building the sLSTM gate weights: %s", cudaGetErrorString(ce));
    } else {
        const float *wp[1] = {w}, *bp[1] = {b};
        int rows[1] = {4 * H};
        rc = stack(bd, wp, bp, rows, 1, 2 * bs, bs, 4 * nb, bf16, L, e);
        /* stack()'s copies read w and b: done before they are freed */
        ce = cudaStreamSynchronize(c->s);
        if (!rc && ce != cudaSuccess) rc = sym_fail(e, "building the sLSTM gate weights: %s", cudaGetErrorString(ce));
    }
    cudaFree(w);
    cudaFree(b);
    return rc;
}

/* Layer bw's matrices of tower t into d. */
static int layer_matrices(builder *bd, int t, const sym_block_weights *bw, int bf, sym_dlayer *d, sym_err *e) {
    const sym_linear *f1 = &bw->fc1, *f2 = &bw->fc2;
    if (stack_dense(bd, &f1, 1, bf, &d->fc1, e) || stack_dense(bd, &f2, 1, bf, &d->fc2, e)) return -1;
    if (t == SYM_TOWER_XLSTM) {
        const sym_xlstm_weights *x = &bw->xlstm;
        const sym_linear *xg[2] = {&x->m_x, &x->m_gate}, *gates[2] = {&x->m_igate, &x->m_fgate}, *dn = &x->m_down;
        return stack_slstm_gates(bd, x, bf, &d->x.s_gates, e) || stack_dense(bd, xg, 2, bf, &d->x.m_xg, e) ||
                       stack_dense(bd, gates, 2, bf, &d->x.m_gates, e) || stack_dense(bd, &dn, 1, bf, &d->x.m_down, e)
                   ? -1
                   : 0;
    }
    if (t == SYM_TOWER_MAMBA2) {
        const sym_mamba2_weights *m = &bw->mamba2;
        const sym_linear *pj[5] = {&m->in_proj, &m->z_proj, &m->b_proj, &m->c_proj, &m->dt_proj}, *op = &m->out_proj;
        return stack_dense(bd, pj, 5, bf, &d->m.proj, e) || stack_dense(bd, &op, 1, bf, &d->m.out, e) ? -1 : 0;
    }
    if (t == SYM_TOWER_RETNET) {
        const sym_retnet_weights *r = &bw->retnet;
        const sym_linear *pj[4] = {&r->q, &r->k, &r->v, &r->g}, *op = &r->out;
        return stack_dense(bd, pj, 4, bf, &d->r.qkvg, e) || stack_dense(bd, &op, 1, bf, &d->r.out, e) ? -1 : 0;
    }
    const sym_hawk_weights *h = &bw->hawk;
    const sym_linear *gr[2] = {&h->gate, &h->rec}, *op = &h->out;
    const sym_blocklinear *ir[2] = {&h->ig, &h->rg};
    return stack_dense(bd, gr, 2, bf, &d->h.gr, e) || stack_blocks(bd, ir, 2, bf, &d->h.igrg, e) ||
                   stack_dense(bd, &op, 1, bf, &d->h.out, e)
               ? -1
               : 0;
}

/* Where tensor p (bound into the full arena) sits in the compact one. */
static const float *small(const builder *bd, const float *p) {
    if (!p) return NULL;
    const size_t off = (size_t)(p - bd->arena);
    for (int i = 0; i < bd->wd->n_specs; i++)
        if (bd->wd->specs[i].offset == off) return bd->small + bd->small_at[i];
    return NULL; /* unreachable: every bound field is a spec */
}

/* Layer bw's vectors of tower t, from the compact arena, into d. */
static void layer_vectors(const builder *bd, int t, const sym_block_weights *bw, sym_dlayer *d) {
    d->norm1 = small(bd, bw->norm1.w);
    d->norm2 = small(bd, bw->norm2.w);
    if (t == SYM_TOWER_XLSTM) {
        const sym_xlstm_weights *x = &bw->xlstm;
        sym_xlstm_dlayer *v = &d->x;
        v->s_norm = small(bd, x->s_norm.w), v->s_cw = small(bd, x->s_conv.w), v->s_cb = small(bd, x->s_conv.b);
        v->s_gn_w = small(bd, x->s_gn.w), v->s_gn_b = small(bd, x->s_gn.b), v->m_norm = small(bd, x->m_norm.w);
        v->m_cw = small(bd, x->m_conv.w), v->m_cb = small(bd, x->m_conv.b), v->m_q = small(bd, x->m_q.w);
        v->m_k = small(bd, x->m_k.w), v->m_v = small(bd, x->m_v.w), v->m_on_w = small(bd, x->m_outnorm.w);
        v->m_on_b = small(bd, x->m_outnorm.b), v->m_skip = small(bd, x->m_skip);
        v->final_norm = small(bd, x->final_norm.w);
    } else if (t == SYM_TOWER_MAMBA2) {
        const sym_mamba2_weights *m = &bw->mamba2;
        sym_mamba2_dlayer *v = &d->m;
        v->cx_w = small(bd, m->conv_x.w), v->cx_b = small(bd, m->conv_x.b);
        v->cb_w = small(bd, m->conv_b.w), v->cb_b = small(bd, m->conv_b.b);
        v->cc_w = small(bd, m->conv_c.w), v->cc_b = small(bd, m->conv_c.b);
        v->a = small(bd, m->a), v->d = small(bd, m->d), v->norm = small(bd, m->norm.w);
    } else if (t == SYM_TOWER_RETNET) {
        d->r.decay = small(bd, bw->retnet.decay), d->r.angle = small(bd, bw->retnet.angle);
    } else {
        const sym_hawk_weights *h = &bw->hawk;
        d->h.cw = small(bd, h->conv.w), d->h.cb = small(bd, h->conv.b), d->h.a = small(bd, h->a);
    }
}

/* Every tensor no matrix took, copied into one compact arena (each 64-byte
 * aligned: the mLSTM entry reads its 4x4 blocks as 16-byte loads). */
static int build_small_arena(builder *bd, sym_err *e) {
    const sym_weights *wd = bd->wd;
    cuda_backend *c = bd->c;
    size_t n_small = 0;
    for (int i = 0; i < wd->n_specs; i++)
        if (!bd->consumed[i]) n_small += ((size_t)wd->specs[i].numel + 15) & ~(size_t)15;
    if (sym_allocs_add(&c->allocs, (void **)&bd->small, n_small * 4, e)) return -1;
    c->weight_bytes += n_small * 4;
    size_t at = 0;
    for (int i = 0; i < wd->n_specs; i++) {
        bd->small_at[i] = 0;
        if (bd->consumed[i]) continue;
        CUDA_CHECK(cudaMemcpyAsync(bd->small + at, bd->arena + wd->specs[i].offset, (size_t)wd->specs[i].numel * 4,
                                   cudaMemcpyDeviceToDevice, c->s));
        bd->small_at[i] = at;
        at += ((size_t)wd->specs[i].numel + 15) & ~(size_t)15;
    }
    return 0;
}

static int build(builder *bd, const sym_precision prec[SYM_TOWERS], sym_err *e) {
    cuda_backend *c = bd->c;
    const sym_weights *wd = bd->wd;
    const int L = wd->cfg.depth;
    for (int t = 0; t < SYM_TOWERS; t++) {
        const int bf = prec[t] == SYM_PREC_BF16;
        const sym_tower_weights *tw = &wd->towers[t];
        const sym_linear *up = &tw->up, *down = &tw->down;
        if (stack_dense(bd, &up, 1, bf, &c->up[t], e) || stack_dense(bd, &down, 1, bf, &c->down[t], e)) return -1;
        c->layers[t] = (sym_dlayer *)calloc((size_t)L, sizeof(sym_dlayer));
        if (!c->layers[t]) return sym_fail(e, "out of memory");
        for (int l = 0; l < L; l++)
            if (layer_matrices(bd, t, &tw->blocks[l], bf, &c->layers[t][l], e)) return -1;
    }
    const sym_linear *op = &wd->out_proj;
    if (stack_dense(bd, &op, 1, 0, &c->outp, e) || build_small_arena(bd, e)) return -1;
    for (int t = 0; t < SYM_TOWERS; t++)
        for (int l = 0; l < L; l++) layer_vectors(bd, t, &wd->towers[t].blocks[l], &c->layers[t][l]);
    cudaError_t ce = cudaStreamSynchronize(c->s);
    if (ce != cudaSuccess) return sym_fail(e, "building device weights: %s", cudaGetErrorString(ce));
    return 0;
}

int sym_eng_build_model(cuda_backend *c, const sym_weights *wd, const float *arena,
                        const sym_precision prec[SYM_TOWERS], sym_err *e) {
    builder bd = {c,     wd,
                  arena, (char *)calloc((size_t)wd->n_specs, 1),
                  NULL,  (size_t *)malloc((size_t)wd->n_specs * sizeof(size_t))};
    int rc = bd.consumed && bd.small_at ? build(&bd, prec, e) : sym_fail(e, "out of memory");
    free(bd.consumed);
    free(bd.small_at);
    return rc;
}
