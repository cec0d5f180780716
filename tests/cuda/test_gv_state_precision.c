/* The CUDA engine storing the recurrence matrices in two bytes
 * (state_precision; kernels/cuda/towers/matrix_store.cuh) against its
 * reference, the CPU fp32 backend emulating the same formats
 * (kernels/state_precision.h), on the golden weights and on shapes whose
 * matrix rows are longer than a segment (cut in three, the last short)
 * and shorter than a warp's columns:
 *  - the stored matrices after the first steps, unpacked: the values and
 *    fp16 exponents the CPU's rounding gives, but for the few numbers the
 *    two fp32 paths (their linear layers differ by about 1e-6) put on
 *    either side of a rounding boundary: at most one in a hundred (0.1 to
 *    0.6 % measured on an H100), one unit of the format apart; a wrong
 *    format, scale or rounding mode moves most of them;
 *  - a random schedule with runs (tests/kernels/random_config.h), and the
 *    same rows one at a time on a second backend: each tower in two bytes
 *    at most half as far from the emulation as the formats move it from
 *    the fp32 state (a GPU that ignored the format fails; the two paths'
 *    rounding flips keep it from being closer at fp16's precision); the
 *    fp32 towers within 1e-4 of the CPU fp32 path;
 *  - a slot exported and imported into another slot, both stepped: bit for
 *    bit; the slot's bytes are the stored layout's.
 * Prints each tower's error against the CPU fp64 path with fp32 state.
 *
 *   test_gv_state_precision GOLDEN_SMALL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_backend.h"
#include "kernels/state_precision.h"
#include "tests/kernels/random_config.h"

#define N_SLOTS 10
static int failures;

#define CHECK(cond, ...)                                                                                        \
    do {                                                                                                        \
        int ok_ = (cond);                                                                                       \
        printf("%s ", ok_ ? "ok  " : "FAIL");                                                                   \
        printf(__VA_ARGS__);                                                                                    \
        printf("\n");                                                                                           \
        failures += !ok_;                                                                                       \
    } while (0)

typedef struct {
    sym_test_schedule sch;
    float *feat;
    int F;
} stream;

/* the schedule through b, out[row * 4 + tower]; one_by_one: each row in a
 * call of its own */
static int run(sym_backend *b, const stream *s, int one_by_one, double *out, sym_err *e) {
    for (int i = 0; i < s->sch.n_rows * 4; i++) out[i] = NAN;
    for (int k = 0, at = 0; k < s->sch.n_steps; at += s->sch.B[k++]) {
        const int n = one_by_one ? 1 : s->sch.B[k];
        for (int r = 0; r < s->sch.B[k]; r += n)
            if (sym_backend_step_runs(b, n, s->sch.slots + at + r, s->feat + (size_t)(at + r) * s->F,
                                      out + (size_t)(at + r) * 4, NULL, e))
                return sym_failctx(e, "step %d", k);
    }
    return 0;
}

static void max_diff(const double *a, const double *b, int rows, double d[SYM_TOWERS]) {
    for (int t = 0; t < SYM_TOWERS; t++) d[t] = 0;
    for (int i = 0; i < rows * 4; i++) {
        double x = fabs(a[i] - b[i]);
        if (isnan(x)) x = INFINITY;
        if (x > d[i % 4]) d[i % 4] = x;
    }
}

static sym_backend *cpu(const sym_weights *w, sym_precision p, const sym_state_precision *sp, sym_err *e) {
    sym_backend *b = sym_cpu_backend_create(w, p, N_SLOTS, e);
    if (b && sp && sym_cpu_backend_set_state_precision(b, sp, e)) {
        sym_backend_destroy(b);
        return NULL;
    }
    return b;
}

static float half_to_float(uint16_t h) {
    const int ex = (h >> 10) & 31, man = h & 1023;
    const float v = ex == 0 ? ldexpf((float)man, -24) : ex == 31 ? (man ? NAN : INFINITY) : ldexpf((float)(1024 + man), ex - 25);
    return h >> 15 ? -v : v;
}

/* Tower t's matrix of layer l in a stored slot st (layout S) against the
 * CPU's fp32 slot c (layout C): numbers that differ, the largest
 * difference relative to its segment's largest |x|, and fp16 exponents
 * that differ. */
static void compare_matrix(const sym_state_layout *S, const void *st, const sym_state_layout *C, const float *c, int t,
                           int l, size_t *n, size_t *differ, double *worst, size_t *exp_differ) {
    const sym_model_config *m = &S->cfg;
    const size_t H = (size_t)m->hidden, NH = (size_t)m->heads, dm = 2 * H / NH, hd = H / NH;
    const sym_block_state *bs = &S->blocks[l], *bc = &C->blocks[l];
    size_t rows, ld, off, eoff, coff;
    if (t == SYM_TOWER_XLSTM) rows = NH * dm, ld = dm, off = bs->m_C, eoff = bs->m_C_exp, coff = bc->m_C;
    else if (t == SYM_TOWER_MAMBA2)
        rows = (size_t)sym_cfg_mamba_heads(m) * SYM_MAMBA_HEAD, ld = SYM_MAMBA_BC, off = bs->mb_h, eoff = bs->mb_h_exp,
        coff = bc->mb_h;
    else rows = NH * hd, ld = hd, off = bs->rt_S, eoff = bs->rt_S_exp, coff = bc->rt_S;
    const uint16_t *g = (const uint16_t *)((const float *)st + off);
    const signed char *ge = (const signed char *)((const float *)st + eoff);
    const float *cm = c + coff;
    const size_t segs = sym_state_segs(ld);
    for (size_t i = 0; i < rows; i++)
        for (size_t k = 0; k < segs; k++) {
            const size_t j0 = k * SYM_STATE_SEG, j1 = j0 + SYM_STATE_SEG < ld ? j0 + SYM_STATE_SEG : ld;
            float top = 0;
            for (size_t j = j0; j < j1; j++) top = fmaxf(top, fabsf(cm[i * ld + j]));
            float sc = 1;
            if (S->mat[t] == SYM_MAT_F16) {
                const int se = ge[i * segs + k];
                sc = ldexpf(1, se);
                *exp_differ += se != sym_fp16_row_exponent_f32(cm + i * ld + j0, j1 - j0);
            }
            for (size_t j = j0; j < j1; j++) {
                const uint16_t h = g[i * ld + j];
                const float v = S->mat[t] == SYM_MAT_F16 ? half_to_float(h) * sc : sym_bf16_to_f32(h);
                const float want = cm[i * ld + j];
                (*n)++;
                if (v != want) {
                    (*differ)++;
                    *worst = fmax(*worst, fabs((double)v - want) / (top > 0 ? top : 1));
                }
            }
        }
}

/* The first steps of s from zero on the GPU (g) and the emulation (ce):
 * every stored matrix of slots 0..3 as the CPU rounds it. */
static void stored_values(const char *name, sym_backend *g, sym_backend *ce, const stream *s) {
    sym_err e = {{0}};
    int rc = 0;
    double *out = malloc((size_t)s->sch.max_B * 4 * sizeof *out);
    for (int k = 0, at = 0; k < 3 && !rc; at += s->sch.B[k++])
        rc = sym_backend_step_runs(g, s->sch.B[k], s->sch.slots + at, s->feat + (size_t)at * s->F, out, NULL, &e) ||
             sym_backend_step_runs(ce, s->sch.B[k], s->sch.slots + at, s->feat + (size_t)at * s->F, out, NULL, &e);
    free(out);
    void *st = malloc(g->slot_bytes);
    float *c = malloc(ce->slot_bytes);
    size_t n = 0, differ = 0, exp_differ = 0;
    double worst = 0;
    for (int slot = 0; slot < 4 && !rc; slot++) {
        rc = g->ops->export_slot(g, slot, st, &e) || ce->ops->export_slot(ce, slot, c, &e);
        for (int t = 0; t < SYM_TOWER_HAWK && !rc; t++)
            for (int l = 0; l < g->cfg.depth && g->layout.mat[t] != SYM_MAT_F32; l++)
                compare_matrix(&g->layout, st, &ce->layout, c, t, l, &n, &differ, &worst, &exp_differ);
    }
    CHECK(!rc && n && differ * 100 <= n && worst <= 0x1p-7 && exp_differ * 100 <= n / SYM_STATE_SEG + 1,
          "%s: after 3 steps, %zu of %zu stored numbers differ from the CPU's rounding (at most 1 in 100), by at "
          "most %.2g of their segment's largest (one unit: <= 2^-7); %zu fp16 exponents differ %s",
          name, differ, n, worst, exp_differ, rc ? e.msg : "");
    free(st), free(c);
}

static void one_config(const char *name, const sym_weights *w, const sym_state_precision *sp) {
    sym_err e = {{0}};
    sym_mat_store mat[SYM_TOWERS];
    if (sym_state_stores(sp, mat, &e)) {
        CHECK(0, "%s: %s", name, e.msg);
        return;
    }
    stream s = {.F = w->cfg.features};
    if (sym_test_schedule_make(&s.sch, 11, N_SLOTS, 60, &e)) {
        CHECK(0, "%s: schedule: %s", name, e.msg);
        return;
    }
    const int rows = s.sch.n_rows;
    s.feat = malloc((size_t)rows * s.F * sizeof *s.feat);
    sym_test_features(12, rows * s.F, s.feat);
    double *gpu = malloc((size_t)rows * 4 * sizeof(double)), *gpu1 = malloc((size_t)rows * 4 * sizeof(double));
    double *emu = malloc((size_t)rows * 4 * sizeof(double)), *c32 = malloc((size_t)rows * 4 * sizeof(double));
    double *c64 = malloc((size_t)rows * 4 * sizeof(double));
    const sym_precision P[4] = {SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32};
    sym_backend *g = sym_cuda_backend_create(w, P, mat, 0, N_SLOTS, 4 * N_SLOTS, NULL, &e);
    sym_backend *g1 = g ? sym_cuda_backend_create(w, P, mat, 0, N_SLOTS, 4 * N_SLOTS, NULL, &e) : NULL;
    sym_backend *ce = cpu(w, SYM_PREC_FP32, sp, &e), *c3 = cpu(w, SYM_PREC_FP32, NULL, &e);
    sym_backend *c6 = cpu(w, SYM_PREC_FP64, NULL, &e);
    if (!g || !g1 || !ce || !c3 || !c6) {
        CHECK(0, "%s: %s", name, e.msg);
        goto out;
    }
    stored_values(name, g, ce, &s);
    for (int slot = 0; slot < N_SLOTS; slot++)
        if (g->ops->reset_slot(g, slot, &e) || ce->ops->reset_slot(ce, slot, &e)) {
            CHECK(0, "%s: reset: %s", name, e.msg);
            goto out;
        }
    if (run(g, &s, 0, gpu, &e) || run(g1, &s, 1, gpu1, &e) || run(ce, &s, 0, emu, &e) || run(c3, &s, 0, c32, &e) ||
        run(c6, &s, 0, c64, &e)) {
        CHECK(0, "%s: %s", name, e.msg);
        goto out;
    }
    double d_emu[4], d_one[4], d_fmt[4], d_64[4];
    max_diff(gpu, emu, rows, d_emu);
    max_diff(gpu1, emu, rows, d_one);
    max_diff(emu, c32, rows, d_fmt);
    max_diff(gpu, c64, rows, d_64);
    for (int t = 0; t < SYM_TOWERS; t++) {
        if (mat[t] == SYM_MAT_F32)
            CHECK(d_emu[t] <= 1e-4 && d_one[t] <= 1e-4,
                  "%s tower %d fp32: GPU against the CPU fp32 path %.2e, rows one at a time %.2e (<= 1e-4)", name, t,
                  d_emu[t], d_one[t]);
        else
            CHECK(d_fmt[t] > 0 && d_emu[t] <= 0.5 * d_fmt[t] && d_one[t] <= 0.5 * d_fmt[t],
                  "%s tower %d %s: GPU against the CPU's emulation %.2e, rows one at a time %.2e; the emulation "
                  "against fp32 state %.2e (at most half)",
                  name, t, mat[t] == SYM_MAT_F16 ? "fp16" : "bf16", d_emu[t], d_one[t], d_fmt[t]);
    }
    printf("     %s, %d rows: GPU against CPU fp64 with fp32 state [%.2e %.2e %.2e %.2e]\n", name, rows, d_64[0],
           d_64[1], d_64[2], d_64[3]);
    /* the slot's bytes: the stored layout's; a moved slot steps as the original */
    sym_state_layout L;
    if (!sym_state_layout_init_stored(&L, &w->cfg, mat, &e)) {
        CHECK(g->slot_bytes == L.numel * 4 && g->slot_bytes < ce->slot_bytes,
              "%s: slot of %zu bytes (fp32 state: %zu)", name, g->slot_bytes, ce->slot_bytes);
        sym_state_layout_free(&L);
    }
    void *buf = malloc(g->slot_bytes);
    double o0[4], o1[4];
    int32_t from = 0, to = N_SLOTS - 1;
    int rc = g->ops->export_slot(g, from, buf, &e) || g->ops->import_slot(g, to, buf, &e) ||
             sym_backend_step(g, 1, &from, s.feat, o0, &e) || sym_backend_step(g, 1, &to, s.feat, o1, &e);
    CHECK(!rc && !memcmp(o0, o1, sizeof o0), "%s: a slot exported and imported steps bit for bit as before %s", name,
          rc ? e.msg : "");
    free(buf);
out:
    sym_backend_destroy(g), sym_backend_destroy(g1), sym_backend_destroy(ce), sym_backend_destroy(c3);
    sym_backend_destroy(c6);
    free(gpu), free(gpu1), free(emu), free(c32), free(c64), free(s.feat);
    sym_test_schedule_free(&s.sch);
}

static void formats(sym_state_precision *sp, sym_state_format x, sym_state_format m, sym_state_format r) {
    sym_state_precision_native(sp);
    sp->tower[SYM_TOWER_XLSTM] = x, sp->tower[SYM_TOWER_MAMBA2] = m, sp->tower[SYM_TOWER_RETNET] = r;
}

int main(int argc, char **argv) {
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    if (argc != 2) return 2;
    sym_err e = {{0}};
    sym_weights w;
    sym_state_precision a, b;
    formats(&a, SYM_STATE_FP16, SYM_STATE_BF16, SYM_STATE_FP32); /* the recommended storage */
    formats(&b, SYM_STATE_BF16, SYM_STATE_FP16, SYM_STATE_FP16); /* every other kernel variant */
    if (sym_weights_load_dir(&w, argv[1], &e)) {
        CHECK(0, "golden weights: %s", e.msg);
    } else {
        one_config("golden fp16/bf16/fp32", &w, &a);
        one_config("golden bf16/fp16/fp16", &w, &b);
        sym_weights_free(&w);
    }
    /* rows of C 320 long (segments 128, 128, 64) and of S 160; then rows
     * of 32 and 16, under a warp's 128 columns */
    const int shapes[2][2] = {{320, 2}, {96, 6}};
    for (int k = 0; k < 2; k++) {
        sym_model_config c = sym_model_config_small();
        c.hidden = shapes[k][0], c.heads = shapes[k][1];
        char name[64];
        snprintf(name, sizeof name, "H=%d NH=%d", c.hidden, c.heads);
        if (sym_weights_synthetic(&w, &c, 5 + (uint64_t)k, &e)) {
            CHECK(0, "%s: %s", name, e.msg);
            continue;
        }
        one_config(name, &w, k ? &b : &a);
        one_config(name, &w, k ? &a : &b);
        sym_weights_free(&w);
    }
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures != 0;
}
