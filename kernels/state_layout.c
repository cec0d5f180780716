#include "kernels/state_layout.h"

#include <math.h>
#include <stdlib.h>

static size_t take(size_t *off, size_t n) {
    size_t at = *off;
    *off += (n + 31) & ~(size_t)31;
    return at;
}

/* Elements a matrix of `rows` rows of `row` numbers takes stored as m:
 * the numbers, then (fp16) the segments' exponents in *exp_at. */
static size_t take_matrix(size_t *off, size_t rows, size_t row, sym_mat_store m, size_t *exp_at) {
    size_t n = rows * row;
    if (m == SYM_MAT_F32) return take(off, n);
    size_t at = take(off, (n + 1) / 2);
    if (m == SYM_MAT_F16) *exp_at = take(off, (rows * sym_state_segs(row) + 3) / 4);
    return at;
}

int sym_state_layout_init(sym_state_layout *s, const sym_model_config *cfg, sym_err *e) {
    const sym_mat_store f32[SYM_TOWERS] = {SYM_MAT_F32, SYM_MAT_F32, SYM_MAT_F32, SYM_MAT_F32};
    return sym_state_layout_init_stored(s, cfg, f32, e);
}

int sym_state_layout_init_stored(sym_state_layout *s, const sym_model_config *cfg, const sym_mat_store mat[SYM_TOWERS],
                                 sym_err *e) {
    memset(s, 0, sizeof *s);
    if (sym_model_config_validate(cfg, e)) return -1;
    for (int t = 0; t < SYM_TOWERS; t++)
        if (mat[t] < SYM_MAT_F32 || mat[t] > SYM_MAT_F16 || (t == SYM_TOWER_HAWK && mat[t] != SYM_MAT_F32))
            return sym_fail(e, "tower %d: no such matrix storage", t);
    memcpy(s->mat, mat, sizeof s->mat);
    s->cfg = *cfg;
    s->blocks = calloc((size_t)cfg->depth, sizeof *s->blocks);
    if (!s->blocks) return sym_fail(e, "out of memory");
    size_t H = (size_t)cfg->hidden, I = 2 * H, NH = (size_t)cfg->heads, dm = I / NH, hd = H / NH;
    size_t NM = (size_t)sym_cfg_mamba_heads(cfg);
    size_t off = SYM_STATE_HEADER;
    for (int l = 0; l < cfg->depth; l++) { /* tower by tower, so each tower's state is one run */
        sym_block_state *b = &s->blocks[l];
        b->s_conv = take(&off, 3 * H);
        b->s_y = take(&off, H);
        b->s_c = take(&off, H);
        b->s_n = take(&off, H);
        b->s_m = take(&off, H);
        b->m_conv = take(&off, 3 * I);
        b->m_C = take_matrix(&off, NH * dm, dm, mat[SYM_TOWER_XLSTM], &b->m_C_exp);
        b->m_n = take(&off, NH * dm);
        b->m_m = take(&off, NH);
    }
    for (int l = 0; l < cfg->depth; l++) {
        sym_block_state *b = &s->blocks[l];
        b->mb_conv_x = take(&off, 3 * I);
        b->mb_conv_b = take(&off, 3 * SYM_MAMBA_BC);
        b->mb_conv_c = take(&off, 3 * SYM_MAMBA_BC);
        b->mb_h = take_matrix(&off, NM * SYM_MAMBA_HEAD, SYM_MAMBA_BC, mat[SYM_TOWER_MAMBA2], &b->mb_h_exp);
    }
    for (int l = 0; l < cfg->depth; l++) {
        sym_block_state *b = &s->blocks[l];
        b->rt_scale = take(&off, NH);
        b->rt_S = take_matrix(&off, NH * hd, hd, mat[SYM_TOWER_RETNET], &b->rt_S_exp);
    }
    for (int l = 0; l < cfg->depth; l++) {
        sym_block_state *b = &s->blocks[l];
        b->hk_conv = take(&off, 3 * H);
        b->hk_h = take(&off, H);
    }
    s->numel = off;
    return 0;
}

void sym_state_tower_range(const sym_state_layout *s, int t, size_t *begin, size_t *end) {
    const sym_block_state *b = &s->blocks[0];
    size_t start[SYM_TOWERS + 1] = {b->s_conv, b->mb_conv_x, b->rt_scale, b->hk_conv, s->numel};
    *begin = start[t];
    *end = start[t + 1];
}

void sym_state_layout_free(sym_state_layout *s) {
    free(s->blocks);
    memset(s, 0, sizeof *s);
}

void sym_state_reset_f32(const sym_state_layout *s, float *slot) {
    memset(slot, 0, s->numel * sizeof *slot);
    for (int l = 0; l < s->cfg.depth; l++)
        for (int i = 0; i < s->cfg.hidden; i++) slot[s->blocks[l].s_m + (size_t)i] = -INFINITY;
}

void sym_state_reset_f64(const sym_state_layout *s, double *slot) {
    memset(slot, 0, s->numel * sizeof *slot);
    for (int l = 0; l < s->cfg.depth; l++)
        for (int i = 0; i < s->cfg.hidden; i++) slot[s->blocks[l].s_m + (size_t)i] = -INFINITY;
}
