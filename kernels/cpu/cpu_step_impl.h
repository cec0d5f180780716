/* The four towers of MODEL.md, one row at a time, in the working type REAL.
 * Included by cpu_step_f32.c and cpu_step_f64.c, which define REAL, SFX()
 * and the math functions of that type. Written for clarity and for being
 * exactly MODEL.md, not for speed: this is the reference every other path is
 * checked against. Each row is computed the same way whatever else is in
 * the batch, so results never depend on batching. */

/* Sums of products keep 4 independent partial sums (so the compiler can
 * overlap them) combined in a fixed order: deterministic for a given length. */
static REAL SFX(dot)(const float *w, const REAL *x, int n) {
    REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        s0 += (REAL)w[k] * x[k];
        s1 += (REAL)w[k + 1] * x[k + 1];
        s2 += (REAL)w[k + 2] * x[k + 2];
        s3 += (REAL)w[k + 3] * x[k + 3];
    }
    for (; k < n; k++) s0 += (REAL)w[k] * x[k];
    return (s0 + s1) + (s2 + s3);
}

static void SFX(linear)(const sym_linear *l, const REAL *x, REAL *y) {
    for (int o = 0; o < l->out; o++) {
        REAL v = SFX(dot)(l->w + (size_t)o * (size_t)l->in, x, l->in);
        y[o] = l->b ? v + (REAL)l->b[o] : v;
    }
}

static void SFX(blocklinear)(const sym_blocklinear *l, const REAL *x, REAL *y) {
    int bs = l->bs;
    for (int n = 0; n < l->nb; n++)
        for (int o = 0; o < bs; o++) {
            REAL v = SFX(dot)(l->w + ((size_t)n * (size_t)bs + (size_t)o) * (size_t)bs, x + (size_t)n * bs, bs);
            y[n * bs + o] = l->b ? v + (REAL)l->b[n * bs + o] : v;
        }
}

static REAL SFX(sigmoid)(REAL v) { return (REAL)1 / ((REAL)1 + EXP(-v)); }
static REAL SFX(silu)(REAL v) { return v / ((REAL)1 + EXP(-v)); }
static REAL SFX(softplus)(REAL v) { return v > (REAL)20 ? v : LOG1P(EXP(v)); }
static REAL SFX(logsigmoid)(REAL v) { return v < 0 ? v - LOG1P(EXP(v)) : -LOG1P(EXP(-v)); }
static REAL SFX(gelu)(REAL v) { return (REAL)0.5 * v * ((REAL)1 + ERF(v * (REAL)M_SQRT1_2)); }

static void SFX(rmsnorm)(const REAL *v, int n, REAL eps, const float *w, REAL *out) {
    REAL ss = 0;
    for (int i = 0; i < n; i++) ss += v[i] * v[i];
    REAL r = (REAL)1 / SQRT(ss / (REAL)n + eps);
    for (int i = 0; i < n; i++) out[i] = w ? v[i] * r * (REAL)w[i] : v[i] * r;
}

/* Normalises each run of n/groups channels by its own mean and population
 * variance (eps 1e-5): LayerNorm is the one-group case without bias. */
static void SFX(groupnorm)(const REAL *v, int n, int groups, const sym_norm *nm, REAL *out) {
    int g = n / groups;
    for (int k = 0; k < groups; k++) {
        const REAL *x = v + (size_t)k * g;
        REAL mean = 0, var = 0;
        for (int i = 0; i < g; i++) mean += x[i];
        mean /= (REAL)g;
        for (int i = 0; i < g; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= (REAL)g;
        REAL r = (REAL)1 / SQRT(var + (REAL)1e-5);
        for (int i = 0; i < g; i++) {
            int c = k * g + i;
            REAL y = (x[i] - mean) * r * (REAL)nm->w[c];
            out[c] = nm->b ? y + (REAL)nm->b[c] : y;
        }
    }
}

/* Causal depthwise conv, kernel 4; state [C,3] oldest first, shifted in. */
static void SFX(conv)(const sym_conv *cv, REAL *state, const REAL *x, REAL *out) {
    for (int c = 0; c < cv->channels; c++) {
        const float *w = cv->w + 4 * (size_t)c;
        REAL *s = state + 3 * (size_t)c;
        REAL y = (REAL)cv->b[c] + (REAL)w[0] * s[0] + (REAL)w[1] * s[1] + (REAL)w[2] * s[2] + (REAL)w[3] * x[c];
        s[0] = s[1];
        s[1] = s[2];
        s[2] = x[c];
        out[c] = y;
    }
}

/* ---- tower layers: y = layer(a, state) ---- */

static void SFX(slstm)(const sym_xlstm_weights *W, const sym_block_state *bs, REAL *st, const sym_model_config *c,
                       const REAL *x, REAL *out, REAL *buf, int M) {
    int H = c->hidden, NS = sym_cfg_slstm_heads(c);
    REAL *xn = buf, *xa = buf + M, *gi = buf + 2 * M, *gf = buf + 3 * M, *gz = buf + 4 * M, *go = buf + 5 * M,
         *t = buf + 6 * M, *y = buf + 7 * M;
    sym_norm ln = W->s_norm;
    SFX(groupnorm)(x, H, 1, &ln, xn);
    SFX(conv)(&W->s_conv, st + bs->s_conv, xn, xa);
    for (int i = 0; i < H; i++) xa[i] = SFX(silu)(xa[i]);
    const REAL *yprev = st + bs->s_y;
    SFX(blocklinear)(&W->s_ig_in, xa, gi);
    SFX(blocklinear)(&W->s_ig_st, yprev, t);
    for (int i = 0; i < H; i++) gi[i] += t[i];
    SFX(blocklinear)(&W->s_fg_in, xa, gf);
    SFX(blocklinear)(&W->s_fg_st, yprev, t);
    for (int i = 0; i < H; i++) gf[i] += t[i];
    SFX(blocklinear)(&W->s_zg_in, xn, gz);
    SFX(blocklinear)(&W->s_zg_st, yprev, t);
    for (int i = 0; i < H; i++) gz[i] += t[i];
    SFX(blocklinear)(&W->s_og_in, xn, go);
    SFX(blocklinear)(&W->s_og_st, yprev, t);
    for (int i = 0; i < H; i++) go[i] += t[i];
    REAL *sc = st + bs->s_c, *sn = st + bs->s_n, *sm = st + bs->s_m, *sy = st + bs->s_y;
    for (int i = 0; i < H; i++) {
        REAL lf = sm[i] + SFX(logsigmoid)(gf[i]);
        REAL m = gi[i] > lf ? gi[i] : lf;
        REAL ig = EXP(gi[i] - m), fg = EXP(lf - m);
        REAL cn = fg * sc[i] + ig * TANH(gz[i]);
        REAL nn = fg * sn[i] + ig;
        y[i] = SFX(sigmoid)(go[i]) * cn / (nn + (REAL)1e-6);
        sc[i] = cn;
        sn[i] = nn;
        sm[i] = m;
    }
    memcpy(sy, y, (size_t)H * sizeof(REAL));
    SFX(groupnorm)(y, H, NS, &W->s_gn, out);
    for (int i = 0; i < H; i++) out[i] += x[i];
}

static void SFX(mlstm)(const sym_xlstm_weights *W, const sym_block_state *bs, REAL *st, const sym_model_config *c,
                       const REAL *x, REAL *out, REAL *buf, int M) {
    int H = c->hidden, I = 2 * H, NH = c->heads, dm = I / NH;
    REAL *xn = buf, *xm = buf + M, *xg = buf + 2 * M, *xa = buf + 3 * M, *qkv = buf + 4 * M /* 3I: spans 4M..7M */,
         *hc = buf + 7 * M, *hn = buf + 8 * M, *gates = buf + 9 * M;
    REAL *q = qkv, *k = qkv + I, *v = qkv + 2 * I;
    SFX(groupnorm)(x, H, 1, &W->m_norm, xn);
    SFX(linear)(&W->m_x, xn, xm);
    SFX(linear)(&W->m_gate, xn, xg);
    SFX(conv)(&W->m_conv, st + bs->m_conv, xm, xa);
    for (int i = 0; i < I; i++) xa[i] = SFX(silu)(xa[i]);
    SFX(blocklinear)(&W->m_q, xa, q);
    SFX(blocklinear)(&W->m_k, xa, k);
    SFX(blocklinear)(&W->m_v, xm, v);
    REAL *ip = gates, *fp = gates + NH;
    SFX(linear)(&W->m_igate, qkv, ip);
    SFX(linear)(&W->m_fgate, qkv, fp);
    REAL *C = st + bs->m_C, *nv = st + bs->m_n, *mv = st + bs->m_m;
    REAL ksc = (REAL)1 / SQRT((REAL)dm);
    for (int n = 0; n < NH; n++) {
        REAL lf = SFX(logsigmoid)(fp[n]);
        REAL m = ip[n] > mv[n] + lf ? ip[n] : mv[n] + lf;
        REAL ig = EXP(ip[n] - m), fg = EXP(lf + mv[n] - m);
        const REAL *qn = q + (size_t)n * dm, *kn = k + (size_t)n * dm, *vn = v + (size_t)n * dm;
        REAL *Cn = C + (size_t)n * dm * dm, *nn = nv + (size_t)n * dm;
        REAL *num = hc + (size_t)n * dm;
        for (int j = 0; j < dm; j++) num[j] = 0;
        REAL qn_dot = 0;
        for (int i = 0; i < dm; i++) {
            REAL ks = kn[i] * ksc;
            REAL *row = Cn + (size_t)i * dm;
            for (int j = 0; j < dm; j++) {
                row[j] = fg * row[j] + ig * ks * vn[j];
                num[j] += qn[i] * row[j];
            }
            nn[i] = fg * nn[i] + ig * ks;
            qn_dot += qn[i] * nn[i];
        }
        REAL den = FABS(qn_dot);
        REAL floor_ = EXP(-m);
        den = (den > floor_ ? den : floor_) + (REAL)1e-6;
        for (int j = 0; j < dm; j++) num[j] /= den;
        mv[n] = m;
    }
    SFX(groupnorm)(hc, I, NH, &W->m_outnorm, hn);
    for (int i = 0; i < I; i++) hn[i] = (hn[i] + (REAL)W->m_skip[i] * xa[i]) * SFX(silu)(xg[i]);
    SFX(linear)(&W->m_down, hn, out);
    for (int i = 0; i < H; i++) out[i] += x[i];
}

static void SFX(xlstm_layer)(const sym_xlstm_weights *W, const sym_block_state *bs, REAL *st,
                             const sym_model_config *c, const REAL *x, REAL *out, REAL *buf, int M) {
    REAL *s_out = buf, *m_out = buf + M;
    SFX(slstm)(W, bs, st, c, x, s_out, buf + 2 * M, M);
    SFX(mlstm)(W, bs, st, c, s_out, m_out, buf + 2 * M, M);
    SFX(groupnorm)(m_out, c->hidden, 1, &W->final_norm, out);
}

static void SFX(mamba2_layer)(const sym_mamba2_weights *W, const sym_block_state *bs, REAL *st,
                              const sym_model_config *c, const REAL *t, REAL *out, REAL *buf, int M) {
    int I = 2 * c->hidden, NM = sym_cfg_mamba_heads(c), BC = SYM_MAMBA_BC, HD = SYM_MAMBA_HEAD;
    REAL *xp = buf, *z = buf + M, *bp = buf + 2 * M, *cp = buf + 3 * M, *dt = buf + 4 * M, *x = buf + 5 * M,
         *b = buf + 6 * M, *cc = buf + 7 * M, *y = buf + 8 * M, *yn = buf + 9 * M;
    SFX(linear)(&W->in_proj, t, xp);
    SFX(linear)(&W->z_proj, t, z);
    SFX(linear)(&W->b_proj, t, bp);
    SFX(linear)(&W->c_proj, t, cp);
    SFX(linear)(&W->dt_proj, t, dt);
    SFX(conv)(&W->conv_x, st + bs->mb_conv_x, xp, x);
    SFX(conv)(&W->conv_b, st + bs->mb_conv_b, bp, b);
    SFX(conv)(&W->conv_c, st + bs->mb_conv_c, cp, cc);
    for (int i = 0; i < I; i++) x[i] = SFX(silu)(x[i]);
    for (int j = 0; j < BC; j++) {
        b[j] = SFX(silu)(b[j]);
        cc[j] = SFX(silu)(cc[j]);
    }
    REAL *h = st + bs->mb_h;
    for (int n = 0; n < NM; n++) {
        REAL d = SFX(softplus)(dt[n]);
        REAL dA = EXP((REAL)W->a[n] * d);
        for (int i = 0; i < HD; i++) {
            REAL xi = x[n * HD + i], acc = 0;
            REAL *hr = h + ((size_t)n * HD + (size_t)i) * BC;
            for (int j = 0; j < BC; j++) {
                hr[j] = dA * hr[j] + d * b[j] * xi;
                acc += cc[j] * hr[j];
            }
            y[n * HD + i] = acc + (REAL)W->d[n] * xi;
        }
    }
    for (int i = 0; i < I; i++) y[i] *= SFX(silu)(z[i]);
    SFX(rmsnorm)(y, I, (REAL)1e-5, W->norm.w, yn);
    SFX(linear)(&W->out_proj, yn, out);
}

static void SFX(retnet_layer)(const sym_retnet_weights *W, const sym_block_state *bs, REAL *st, int64_t offset,
                              const sym_model_config *c, const REAL *x, REAL *out, REAL *buf, int M) {
    int H = c->hidden, NH = c->heads, hd = H / NH;
    REAL *q = buf, *k = buf + M, *v = buf + 2 * M, *g = buf + 3 * M, *qr = buf + 4 * M, *kr = buf + 5 * M,
         *o = buf + 6 * M, *on = buf + 7 * M;
    SFX(linear)(&W->q, x, q);
    SFX(linear)(&W->k, x, k);
    SFX(linear)(&W->v, x, v);
    SFX(linear)(&W->g, x, g);
    REAL scaling = (REAL)1 / SQRT((REAL)hd);
    for (int i = 0; i < H; i++) k[i] *= scaling;
    /* theta in fp64 whatever REAL is: offset grows without bound, and an fp32
     * product loses the angle's fraction after a few million steps. */
    for (int n = 0; n < NH; n++) {
        for (int p = 0; p < hd; p += 2) {
            int i0 = n * hd + p;
            double th0 = (double)offset * (double)W->angle[p], th1 = (double)offset * (double)W->angle[p + 1];
            REAL c0 = (REAL)cos(th0), s0 = (REAL)sin(th0), c1 = (REAL)cos(th1), s1 = (REAL)sin(th1);
            qr[i0] = q[i0] * c0 - q[i0 + 1] * s0;
            qr[i0 + 1] = q[i0 + 1] * c1 + q[i0] * s1;
            kr[i0] = k[i0] * c0 - k[i0 + 1] * s0;
            kr[i0 + 1] = k[i0 + 1] * c1 + k[i0] * s1;
        }
    }
    REAL *S = st + bs->rt_S, *scale = st + bs->rt_scale;
    for (int n = 0; n < NH; n++) {
        REAL dec = (REAL)W->decay[n];
        REAL sc = dec * scale[n] + 1;
        scale[n] = sc;
        REAL *Sn = S + (size_t)n * hd * hd;
        REAL *on_ = o + n * hd;
        for (int j = 0; j < hd; j++) on_[j] = 0;
        for (int i = 0; i < hd; i++) {
            REAL *row = Sn + (size_t)i * hd;
            REAL kri = kr[n * hd + i], qri = qr[n * hd + i];
            for (int j = 0; j < hd; j++) {
                row[j] = dec * row[j] + kri * v[n * hd + j];
                on_[j] += qri * row[j];
            }
        }
        REAL rs = SQRT(sc);
        for (int j = 0; j < hd; j++) on_[j] /= rs;
        SFX(rmsnorm)(on_, hd, (REAL)1e-6, NULL, on + n * hd);
    }
    for (int i = 0; i < H; i++) on[i] *= SFX(silu)(g[i]);
    SFX(linear)(&W->out, on, out);
}

static void SFX(hawk_layer)(const sym_hawk_weights *W, const sym_block_state *bs, REAL *st, const sym_model_config *c,
                            const REAL *x, REAL *out, REAL *buf, int M) {
    int H = c->hidden;
    REAL *gate = buf, *rp = buf + M, *r = buf + 2 * M, *ig = buf + 3 * M, *rg = buf + 4 * M, *t = buf + 5 * M;
    SFX(linear)(&W->gate, x, gate);
    SFX(linear)(&W->rec, x, rp);
    SFX(conv)(&W->conv, st + bs->hk_conv, rp, r);
    SFX(blocklinear)(&W->ig, r, ig);
    SFX(blocklinear)(&W->rg, r, rg);
    REAL *h = st + bs->hk_h;
    for (int i = 0; i < H; i++) {
        REAL at = POW((REAL)W->a[i], (REAL)8 * SFX(sigmoid)(rg[i]));
        REAL hn = at * h[i] + SQRT((REAL)1 - at * at) * (SFX(sigmoid)(ig[i]) * r[i]);
        h[i] = hn;
        t[i] = SFX(gelu)(gate[i]) * hn;
    }
    SFX(linear)(&W->out, t, out);
}

/* One tower for one row: advances that tower's part of the slot and
 * returns the tower's prediction. buf holds SYM_CPU_SCRATCH_VECS vectors of
 * M elements. The step counter (RetNet offset) is read, not advanced: the
 * caller advances it once all towers ran. */
static double SFX(tower)(const sym_weights *w, int t, const sym_state_layout *L, REAL *slot, const float *features,
                         REAL *buf, int M, sym_cpu_trace_fn trace, void *trace_ctx) {
    const sym_model_config *c = &w->cfg;
    const sym_tower_weights *tw = &w->towers[t];
    int H = c->hidden, P = c->proj;
    REAL *xin = buf, *h1 = buf + M, *u = buf + 2 * M, *a = buf + 3 * M, *y = buf + 4 * M, *lay = buf + 5 * M;
    for (int i = 0; i < c->features; i++) xin[i] = (REAL)features[i];
    SFX(linear)(&tw->up, xin, h1);
    for (int i = 0; i < P; i++) h1[i] = h1[i] > 0 ? h1[i] : 0;
    SFX(linear)(&tw->down, h1, u);
    if (trace) TRACE(trace, trace_ctx, t, -1, "tower_input", u, H);
    int64_t offset = sym_state_steps(slot);
    for (int l = 0; l < c->depth; l++) {
        const sym_block_weights *b = &tw->blocks[l];
        const sym_block_state *bs = &L->blocks[l];
        SFX(rmsnorm)(u, H, EPS_MACHINE, b->norm1.w, a);
        if (t == SYM_TOWER_XLSTM) SFX(xlstm_layer)(&b->xlstm, bs, slot, c, a, y, lay, M);
        if (t == SYM_TOWER_MAMBA2) SFX(mamba2_layer)(&b->mamba2, bs, slot, c, a, y, lay, M);
        if (t == SYM_TOWER_RETNET) SFX(retnet_layer)(&b->retnet, bs, slot, offset, c, a, y, lay, M);
        if (t == SYM_TOWER_HAWK) SFX(hawk_layer)(&b->hawk, bs, slot, c, a, y, lay, M);
        if (trace) TRACE(trace, trace_ctx, t, l, "layer_output", y, H);
        for (int i = 0; i < H; i++) u[i] += y[i];
        SFX(rmsnorm)(u, H, EPS_MACHINE, b->norm2.w, a);
        SFX(linear)(&b->fc1, a, h1);
        for (int i = 0; i < P; i++) h1[i] = h1[i] > 0 ? h1[i] : 0;
        SFX(linear)(&b->fc2, h1, y);
        for (int i = 0; i < H; i++) u[i] += y[i];
        if (trace) TRACE(trace, trace_ctx, t, l, "block_output", u, H);
    }
    REAL p;
    SFX(linear)(&w->out_proj, u, &p);
    return (double)p;
}
