#include "kernels/state_precision.h"

#include <math.h>
#include <string.h>

#include "kernels/backend.h"

static const char *const format_names[SYM_STATE_FORMATS] = {"native", "fp32", "bf16", "bf16-sr", "fp16", "fp16-sr"};

void sym_state_precision_native(sym_state_precision *sp) {
    memset(sp, 0, sizeof *sp);
    sp->seed = SYM_STATE_SR_SEED;
}

int sym_state_precision_on(const sym_state_precision *sp) {
    for (int t = 0; t < SYM_TOWERS; t++)
        if (sp->tower[t] != SYM_STATE_NATIVE) return 1;
    return 0;
}

int sym_state_format_parse(const char *name, sym_state_format *f) {
    for (int i = SYM_STATE_FP32; i < SYM_STATE_FORMATS; i++)
        if (!strcmp(name, format_names[i])) {
            *f = (sym_state_format)i;
            return 0;
        }
    return -1;
}

const char *sym_state_format_name(sym_state_format f) {
    return f >= 0 && f < SYM_STATE_FORMATS ? format_names[f] : "unknown";
}

#define SIGN_BIT 0x8000000000000000ull
#define EXP_MASK 0x7ff0000000000000ull

/* Below the format's normal range (or zero, or a double subnormal): a
 * multiple of the subnormal spacing 2^k, by the value's magnitude. */
static double round_subnormal(double x, int p, int emin, int sr, uint64_t bits) {
    int k = emin - p + 1;
    double y = ldexp(fabs(x), -k); /* exact: |y| < 2^(p-1) */
    double fl = floor(y), frac = y - fl, r;
    if (sr) r = fl + ((double)(bits >> 11) * 0x1.0p-53 < frac);
    else r = fl + (frac > 0.5 || (frac == 0.5 && fmod(fl, 2.0) != 0.0));
    return copysign(ldexp(r, k), x);
}

double sym_round_format(double x, int p, int emin, int emax, int sr, uint64_t bits) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    uint64_t mag = b & ~SIGN_BIT;
    int e = (int)(mag >> 52) - 1023;
    if (e >= emin && e <= emax) {
        /* drop the low d bits of the significand; a carry moves into the
         * exponent, which is the right result */
        int d = 53 - p;
        uint64_t mask = ((uint64_t)1 << d) - 1;
        if (sr) mag += bits & mask;
        else mag += (mask >> 1) + ((mag >> d) & 1);
        mag &= ~mask;
        if ((int)(mag >> 52) - 1023 > emax) mag = EXP_MASK; /* inf */
        b = (b & SIGN_BIT) | mag;
        memcpy(&x, &b, sizeof x);
        return x;
    }
    if (mag >= EXP_MASK || mag == 0) return x; /* inf, NaN, ±0 */
    if (e > emax) return copysign(INFINITY, x);
    return round_subnormal(x, p, emin, sr, bits);
}

static int clamp_s(int e) {
    int s = e - 14;
    return s < -125 ? -125 : s > 127 ? 127 : s;
}

int sym_fp16_row_exponent_f64(const double *x, size_t n) {
    uint64_t top = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, &x[i], sizeof b);
        b &= ~SIGN_BIT;
        if (b < EXP_MASK && b > top) top = b;
    }
    return top ? clamp_s((int)(top >> 52) - 1023) : 0;
}

int sym_fp16_row_exponent_f32(const float *x, size_t n) {
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        b &= 0x7fffffffu;
        if (b < 0x7f800000u && b > top) top = b;
    }
    if (!top) return 0;
    int e = (int)(top >> 23) - 127;
    if (e == -127) { /* a float subnormal, top * 2^-149: its exponent from the leading bit */
        int msb = 0;
        while (top >> (msb + 1)) msb++;
        e = msb - 149;
    }
    return clamp_s(e);
}

int sym_state_stores(const sym_state_precision *sp, sym_mat_store mat[SYM_TOWERS], sym_err *e) {
    static const char *const tower[SYM_TOWERS] = {"xLSTM", "Mamba2", "RetNet", "Hawk"};
    if (sp->all_parts) return sym_fail(e, "state precision: only the recurrence matrices can be stored in fewer bytes");
    for (int t = 0; t < SYM_TOWERS; t++) {
        sym_state_format f = sp->tower[t];
        if (f == SYM_STATE_NATIVE || f == SYM_STATE_FP32) mat[t] = SYM_MAT_F32;
        else if (f == SYM_STATE_BF16 && t != SYM_TOWER_HAWK) mat[t] = SYM_MAT_BF16;
        else if (f == SYM_STATE_FP16 && t != SYM_TOWER_HAWK) mat[t] = SYM_MAT_F16;
        else
            return sym_fail(e, "state precision '%s' for the %s tower is not stored by this backend (%s)",
                            sym_state_format_name(f), tower[t],
                            t == SYM_TOWER_HAWK ? "Hawk's state stays fp32: 0.06 % of the bytes"
                                                : "stochastic rounding is emulated on the CPU only");
    }
    return 0;
}

/* One part of a block's state: where it is, how long, its row length. */
typedef struct {
    size_t off, len, row;
    int matrix; /* the tower's recurrence matrix (rounded whatever all_parts says) */
} state_part;

static int tower_parts(const sym_state_layout *L, int t, int l, state_part *p) {
    const sym_model_config *c = &L->cfg;
    const sym_block_state *b = &L->blocks[l];
    size_t H = (size_t)c->hidden, I = 2 * H, NH = (size_t)c->heads, dm = I / NH, hd = H / NH;
    size_t NS = (size_t)sym_cfg_slstm_heads(c), NM = (size_t)sym_cfg_mamba_heads(c);
    size_t HD = SYM_MAMBA_HEAD, BC = SYM_MAMBA_BC;
    int n = 0;
#define PART(o, l_, r_, m_) (p[n++] = (state_part){(o), (l_), (r_), (m_)})
    switch (t) {
    case SYM_TOWER_XLSTM:
        PART(b->m_C, NH * dm * dm, dm, 1);
        PART(b->s_conv, 3 * H, 3 * H / NS, 0);
        PART(b->s_y, H, H / NS, 0);
        PART(b->s_c, H, H / NS, 0);
        PART(b->s_n, H, H / NS, 0);
        PART(b->s_m, H, H / NS, 0);
        PART(b->m_conv, 3 * I, 3 * dm, 0);
        PART(b->m_n, NH * dm, dm, 0);
        PART(b->m_m, NH, NH, 0);
        break;
    case SYM_TOWER_MAMBA2:
        PART(b->mb_h, NM * HD * BC, BC, 1);
        PART(b->mb_conv_x, 3 * I, 3 * HD, 0);
        PART(b->mb_conv_b, 3 * BC, 3 * BC, 0);
        PART(b->mb_conv_c, 3 * BC, 3 * BC, 0);
        break;
    case SYM_TOWER_RETNET:
        PART(b->rt_S, NH * hd * hd, hd, 1);
        PART(b->rt_scale, NH, NH, 0);
        break;
    case SYM_TOWER_HAWK:
        PART(b->hk_h, H, H, 1);
        PART(b->hk_conv, 3 * H, 3 * H, 0);
        break;
    }
#undef PART
    return n;
}

#define MAX_PARTS 9

size_t sym_state_rounded_elems(const sym_state_precision *sp, const sym_state_layout *L, int t) {
    if (sp->tower[t] == SYM_STATE_NATIVE) return 0;
    size_t n = 0;
    for (int l = 0; l < L->cfg.depth; l++) {
        state_part p[MAX_PARTS];
        int np = tower_parts(L, t, l, p);
        for (int i = 0; i < np; i++)
            if (p[i].matrix || sp->all_parts) n += p[i].len;
    }
    return n;
}

/* The two element types share one body. */
#define ROUND_BODY(T, ROW_EXP)                                                                                    \
    sym_state_format f = sp->tower[t];                                                                            \
    if (f == SYM_STATE_NATIVE) return;                                                                            \
    int sr = f == SYM_STATE_BF16_SR || f == SYM_STATE_FP16_SR;                                                    \
    uint64_t key = sr ? sym_state_sr_step_key(sp->seed, step) : 0;                                                \
    for (int l = 0; l < L->cfg.depth; l++) {                                                                      \
        state_part p[MAX_PARTS];                                                                                  \
        int np = tower_parts(L, t, l, p);                                                                         \
        for (int k = 0; k < np; k++) {                                                                            \
            if (!p[k].matrix && !sp->all_parts) continue;                                                         \
            for (size_t r0 = 0; r0 < p[k].len; r0 += p[k].row) {                                                  \
                size_t at = p[k].off + r0;                                                                        \
                T *x = slot + at;                                                                                 \
                size_t n = p[k].row;                                                                              \
                switch (f) {                                                                                      \
                case SYM_STATE_FP32:                                                                              \
                    for (size_t i = 0; i < n; i++) x[i] = (T)sym_round_fp32(x[i]);                                \
                    break;                                                                                        \
                case SYM_STATE_BF16:                                                                              \
                    for (size_t i = 0; i < n; i++) x[i] = (T)sym_round_bf16(x[i], 0, 0);                          \
                    break;                                                                                        \
                case SYM_STATE_BF16_SR:                                                                           \
                    for (size_t i = 0; i < n; i++)                                                                \
                        x[i] = (T)sym_round_bf16(x[i], 1, sym_state_sr_bits(key, (uint64_t)(at + i)));            \
                    break;                                                                                        \
                case SYM_STATE_FP16:                                                                              \
                case SYM_STATE_FP16_SR:                                                                           \
                    for (size_t c0 = 0; c0 < n; c0 += SYM_STATE_SEG) { /* a scale per segment of the row */       \
                        size_t c1 = n - c0 < SYM_STATE_SEG ? n : c0 + SYM_STATE_SEG;                              \
                        int s = ROW_EXP(x + c0, c1 - c0);                                                         \
                        for (size_t i = c0; i < c1; i++)                                                          \
                            x[i] = (T)sym_round_fp16_scaled(x[i], s, sr,                                          \
                                                            sr ? sym_state_sr_bits(key, (uint64_t)(at + i)) : 0); \
                    }                                                                                             \
                    break;                                                                                        \
                default:                                                                                          \
                    break;                                                                                        \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }

void sym_state_round_tower_f64(const sym_state_precision *sp, const sym_state_layout *L, int t, double *slot,
                               int64_t step) {
    ROUND_BODY(double, sym_fp16_row_exponent_f64)
}

void sym_state_round_tower_f32(const sym_state_precision *sp, const sym_state_layout *L, int t, float *slot,
                               int64_t step) {
    ROUND_BODY(float, sym_fp16_row_exponent_f32)
}
