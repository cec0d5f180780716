/* The list of every tensor the model needs, in arena order, with its shape,
 * its synthetic initialisation and the struct field it binds to. This file
 * is the single place where MODEL.md's tensor names live. */
#include "kernels/weights.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sym_tensor_spec *v;
    int n, cap;
    int tower;
    char prefix[96];
    int failed;
} spec_list;

static sym_tensor_spec *push(spec_list *s, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2,
                             sym_init init, int fan_in, const float **bind) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        sym_tensor_spec *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) { s->failed = 1; return NULL; }
        s->v = v;
        s->cap = cap;
    }
    sym_tensor_spec *t = &s->v[s->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s%s", s->prefix, name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    t->numel = d0 * (ndim > 1 ? d1 : 1) * (ndim > 2 ? d2 : 1);
    t->tower = s->tower;
    t->init = init;
    t->fan_in = fan_in;
    t->bind = bind;
    return t;
}

static void linear(spec_list *s, const char *name, sym_linear *l, int out, int in, int has_bias) {
    char n[96];
    l->out = out;
    l->in = in;
    snprintf(n, sizeof n, "%s.weight", name);
    push(s, n, 2, out, in, 0, SYM_INIT_UNIFORM_FANIN, in, &l->w);
    if (has_bias) {
        snprintf(n, sizeof n, "%s.bias", name);
        push(s, n, 1, out, 0, 0, SYM_INIT_UNIFORM_FANIN, in, &l->b);
    }
}

static void blocklinear(spec_list *s, const char *name, sym_blocklinear *l, int nb, int bs, int has_bias) {
    char n[96];
    l->nb = nb;
    l->bs = bs;
    snprintf(n, sizeof n, "%s.weight", name);
    push(s, n, 3, nb, bs, bs, SYM_INIT_UNIFORM_FANIN, bs, &l->w);
    if (has_bias) {
        snprintf(n, sizeof n, "%s.bias", name);
        push(s, n, 1, (int64_t)nb * bs, 0, 0, SYM_INIT_ZEROS, 0, &l->b);
    }
}

static void conv(spec_list *s, const char *name, sym_conv *c, int channels) {
    char n[96];
    c->channels = channels;
    snprintf(n, sizeof n, "%s.conv.weight", name);
    push(s, n, 3, channels, 1, 4, SYM_INIT_UNIFORM_HALF, 0, &c->w);
    snprintf(n, sizeof n, "%s.conv.bias", name);
    push(s, n, 1, channels, 0, 0, SYM_INIT_UNIFORM_HALF, 0, &c->b);
}

static void norm(spec_list *s, const char *name, sym_norm *nm, int size, int has_bias) {
    char n[96];
    nm->n = size;
    snprintf(n, sizeof n, "%s.weight", name);
    push(s, n, 1, size, 0, 0, SYM_INIT_ONES, 0, &nm->w);
    if (has_bias) {
        snprintf(n, sizeof n, "%s.bias", name);
        push(s, n, 1, size, 0, 0, SYM_INIT_ZEROS, 0, &nm->b);
    }
}

static void vec(spec_list *s, const char *name, const float **bind, int size, sym_init init) {
    push(s, name, 1, size, 0, 0, init, 0, bind);
}

static void xlstm_layer(spec_list *s, sym_xlstm_weights *x, const sym_model_config *c) {
    int H = c->hidden, I = 2 * H, NH = c->heads, NS = NH / 2;
    size_t base = strlen(s->prefix);
    strcat(s->prefix, "slstm.");
    norm(s, "norm", &x->s_norm, H, 0);
    conv(s, "conv1d", &x->s_conv, H);
    blocklinear(s, "igate_input", &x->s_ig_in, NS, H / NS, 0);
    blocklinear(s, "fgate_input", &x->s_fg_in, NS, H / NS, 0);
    blocklinear(s, "zgate_input", &x->s_zg_in, NS, H / NS, 0);
    blocklinear(s, "ogate_input", &x->s_og_in, NS, H / NS, 0);
    blocklinear(s, "igate_state", &x->s_ig_st, NS, H / NS, 1);
    blocklinear(s, "fgate_state", &x->s_fg_st, NS, H / NS, 1);
    blocklinear(s, "zgate_state", &x->s_zg_st, NS, H / NS, 1);
    blocklinear(s, "ogate_state", &x->s_og_st, NS, H / NS, 1);
    norm(s, "group_norm", &x->s_gn, H, 1);
    s->prefix[base] = 0;
    strcat(s->prefix, "mlstm.");
    norm(s, "norm", &x->m_norm, H, 0);
    linear(s, "x_proj", &x->m_x, I, H, 0);
    linear(s, "gate_proj", &x->m_gate, I, H, 0);
    blocklinear(s, "q_proj", &x->m_q, I / 4, 4, 0);
    blocklinear(s, "k_proj", &x->m_k, I / 4, 4, 0);
    blocklinear(s, "v_proj", &x->m_v, I / 4, 4, 0);
    conv(s, "conv1d", &x->m_conv, I);
    linear(s, "mlstm_cell.igate_proj", &x->m_igate, NH, 3 * I, 1);
    if (!s->failed) s->v[s->n - 1].init = SYM_INIT_IGATE_BIAS;
    linear(s, "mlstm_cell.fgate_proj", &x->m_fgate, NH, 3 * I, 1);
    if (!s->failed) s->v[s->n - 1].init = SYM_INIT_FGATE_BIAS;
    norm(s, "mlstm_cell.outnorm", &x->m_outnorm, I, 1);
    linear(s, "proj_down", &x->m_down, H, I, 0);
    vec(s, "learnable_skip", &x->m_skip, I, SYM_INIT_ONES);
    s->prefix[base] = 0;
    norm(s, "final_norm", &x->final_norm, H, 0);
}

static void mamba2_layer(spec_list *s, sym_mamba2_weights *m, const sym_model_config *c) {
    int H = c->hidden, I = 2 * H, NM = sym_cfg_mamba_heads(c);
    linear(s, "input_proj", &m->in_proj, I, H, 0);
    linear(s, "z_proj", &m->z_proj, I, H, 0);
    linear(s, "b_proj", &m->b_proj, SYM_MAMBA_BC, H, 0);
    linear(s, "c_proj", &m->c_proj, SYM_MAMBA_BC, H, 0);
    linear(s, "dt_proj", &m->dt_proj, NM, H, 1);
    conv(s, "input_conv", &m->conv_x, I);
    conv(s, "b_conv", &m->conv_b, SYM_MAMBA_BC);
    conv(s, "c_conv", &m->conv_c, SYM_MAMBA_BC);
    vec(s, "a", &m->a, NM, SYM_INIT_MAMBA_A);
    vec(s, "d", &m->d, NM, SYM_INIT_ONES);
    norm(s, "norm", &m->norm, I, 0);
    linear(s, "out_proj", &m->out_proj, H, I, 0);
}

static void retnet_layer(spec_list *s, sym_retnet_weights *r, const sym_model_config *c) {
    int H = c->hidden;
    linear(s, "q_proj", &r->q, H, H, 0);
    linear(s, "k_proj", &r->k, H, H, 0);
    linear(s, "v_proj", &r->v, H, H, 0);
    linear(s, "g_proj", &r->g, H, H, 0);
    linear(s, "out_proj", &r->out, H, H, 0);
    vec(s, "decay", &r->decay, c->heads, SYM_INIT_RETNET_DECAY);
    vec(s, "angle", &r->angle, sym_cfg_head_dim(c), SYM_INIT_RETNET_ANGLE);
}

static void hawk_layer(spec_list *s, sym_hawk_weights *h, const sym_model_config *c) {
    int H = c->hidden;
    linear(s, "gate_proj", &h->gate, H, H, 0);
    linear(s, "recurrent_proj", &h->rec, H, H, 0);
    linear(s, "out_proj", &h->out, H, H, 0);
    conv(s, "conv", &h->conv, H);
    blocklinear(s, "rglru.input_gate", &h->ig, 4, H / 4, 0);
    blocklinear(s, "rglru.recurrence_gate", &h->rg, 4, H / 4, 0);
    vec(s, "rglru.a", &h->a, H, SYM_INIT_HAWK_A);
}

/* Builds the spec list for w->cfg, binding into w's structs (w->towers[t].blocks
 * must already point at L blocks each). Offsets are assigned here. */
int sym_weights_build_spec(sym_weights *w, sym_err *e) {
    const sym_model_config *c = &w->cfg;
    spec_list s = {0};
    s.tower = -1;
    for (int t = 0; t < SYM_TOWERS; t++) {
        sym_tower_weights *tw = &w->towers[t];
        s.tower = t;
        snprintf(s.prefix, sizeof s.prefix, "towers.%d.", t);
        linear(&s, "input_up", &tw->up, c->proj, c->features, 1);
        linear(&s, "input_down", &tw->down, c->hidden, c->proj, 1);
        for (int l = 0; l < c->depth; l++) {
            sym_block_weights *b = &tw->blocks[l];
            snprintf(s.prefix, sizeof s.prefix, "towers.%d.blocks.%d.", t, l);
            norm(&s, "norm1", &b->norm1, c->hidden, 0);
            norm(&s, "norm2", &b->norm2, c->hidden, 0);
            linear(&s, "mlp.fc1", &b->fc1, c->proj, c->hidden, 1);
            linear(&s, "mlp.fc2", &b->fc2, c->hidden, c->proj, 1);
            snprintf(s.prefix, sizeof s.prefix, "towers.%d.blocks.%d.layer.", t, l);
            if (t == SYM_TOWER_XLSTM) xlstm_layer(&s, &b->xlstm, c);
            if (t == SYM_TOWER_MAMBA2) mamba2_layer(&s, &b->mamba2, c);
            if (t == SYM_TOWER_RETNET) retnet_layer(&s, &b->retnet, c);
            if (t == SYM_TOWER_HAWK) hawk_layer(&s, &b->hawk, c);
        }
    }
    s.tower = -1;
    s.prefix[0] = 0;
    linear(&s, "output_proj", &w->out_proj, 1, c->hidden, 1);
    if (s.failed) {
        free(s.v);
        return sym_fail(e, "out of memory building the tensor list");
    }
    size_t off = 0;
    for (int i = 0; i < s.n; i++) {
        s.v[i].offset = off;
        off += ((size_t)s.v[i].numel + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    }
    w->specs = s.v;
    w->n_specs = s.n;
    w->arena_floats = off;
    return 0;
}
