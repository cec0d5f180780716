/* What the four towers' layers share (layer.cuh): the projection buffer's
 * strides, the buffers, and the FFN. */
#include "kernels/cuda/towers/layer.cuh"

int sym_tower_ldp(const sym_model_config *cf) {
    const int I = 2 * cf->hidden;
    return (2 * I + 2 * SYM_MAMBA_BC + sym_cfg_mamba_heads(cf) + 7) & ~7;
}

int sym_tower_ldbc(const sym_model_config *cf) {
    const int H = cf->hidden;
    return 2 * H > 2 * SYM_MAMBA_BC ? 2 * H : 2 * SYM_MAMBA_BC;
}

int sym_tower_bufs_alloc(sym_tower_bufs *b, int t, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e) {
    const size_t H = (size_t)cf->hidden, P = (size_t)cf->proj;
    if (sym_allocs_n(al, &b->h1, Bm * P, e) || sym_allocs_n(al, &b->u, Bm * H, e) ||
        sym_allocs_n(al, &b->a, Bm * H, e) || sym_allocs_n(al, &b->proj, Bm * (size_t)sym_tower_ldp(cf), e))
        return -1;
    switch (t) {
    case SYM_TOWER_XLSTM:
        return sym_xlstm_bufs_alloc(&b->x, cf, Bm, al, e);
    case SYM_TOWER_MAMBA2:
        return sym_mamba2_bufs_alloc(&b->m, cf, Bm, al, e);
    case SYM_TOWER_RETNET:
        return sym_retnet_bufs_alloc(&b->r, cf, Bm, al, e);
    default:
        return sym_hawk_bufs_alloc(&b->h, cf, Bm, al, e);
    }
}

int sym_layer_ffn(const sym_tower_step *st, const sym_dlayer *d, const sym_tower_bufs *b) {
    const int H = st->cf->hidden, P = st->cf->proj, B = st->B;
    const sym_xsplit in1 = sym_planes(st, &d->fc1);
    const int chain = in1.bf && sym_planes(st, &d->fc2).bf ? GEMV_SPLIT_OUT : 0;
    int bad = 0;
    sym_keep_first(&bad,
                   sym_gemv(st->s, st->ws, &d->fc1, b->a, H, b->h1, P, B, GEMV_RELU | sym_xsplit_flag(in1) | chain));
    sym_keep_first(&bad, sym_gemv(st->s, st->ws, &d->fc2, b->h1, P, b->u, H, B, GEMV_ACC | (chain ? GEMV_X_CHAIN : 0)));
    return bad;
}
