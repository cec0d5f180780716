/* kernels/state_precision.h: the storage formats round as specified (ties to
 * even, stochastic rounding reproducible and unbiased, ±0, ±inf and NaN
 * kept, fp16's scale per row segment), the stored layouts (state_layout.h)
 * give each matrix its bytes without overlap, the formats a stored layout
 * cannot hold are refused by name, the CPU backend with every tower native
 * (or fp32 on the fp32 path) is bit for bit the backend without the
 * setting, and the config key state_precision is parsed strictly.
 *
 *   test_state_precision GOLDEN_SMALL_DIR */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/model_backends.h"
#include "config/config.h"
#include "kernels/backend.h"
#include "kernels/state_precision.h"
#include "kernels/weights.h"
#include "tests/check.h"
#include "tests/kernels/golden_run.h"

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static int same_bits(double a, double b) { return !memcmp(&a, &b, sizeof a); }

/* bf16 of a float by the usual bit formula (round to nearest even on the
 * float's bits; floats only, so no double rounding). */
static float bf16_of_float(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_nearest_even(void) {
    /* ties between two neighbours go to the even one, either sign */
    CHECK(sym_round_bf16(1 + 0x1p-8, 0, 0) == 1.0, "bf16 tie 1+2^-8 -> 1");
    CHECK(sym_round_bf16(1 + 3 * 0x1p-8, 0, 0) == 1 + 0x1p-6, "bf16 tie 1+3*2^-8 -> 1+2^-6");
    CHECK(sym_round_bf16(-(1 + 3 * 0x1p-8), 0, 0) == -(1 + 0x1p-6), "bf16 negative tie");
    CHECK(sym_round_bf16(1 + 0x1p-8 + 0x1p-40, 0, 0) == 1 + 0x1p-7, "bf16 just above a tie rounds up");
    CHECK(sym_round_bf16(2 - 0x1p-9, 0, 0) == 2.0, "bf16 carry into the exponent");
    CHECK(sym_round_fp32(1 + 0x1p-24) == 1.0 && sym_round_fp32(1 + 3 * 0x1p-24) == 1 + 0x1p-22, "fp32 ties");
    CHECK(sym_round_fp16_scaled(1 + 0x1p-11, 0, 0, 0) == 1.0, "fp16 tie 1+2^-11 -> 1");
    CHECK(sym_round_fp16_scaled(1 + 3 * 0x1p-11, 0, 0, 0) == 1 + 0x1p-9, "fp16 tie 1+3*2^-11 -> 1+2^-9");
    CHECK(sym_round_fp16_scaled(1024 * (1 + 3 * 0x1p-11), 10, 0, 0) == 1024 * (1 + 0x1p-9), "fp16 scaled tie");
    /* subnormals: bf16's spacing below 2^-126 is 2^-133; fp16's below 2^-14 is 2^-24 */
    CHECK(sym_round_bf16(0x1p-134, 0, 0) == 0.0 && sym_round_bf16(3 * 0x1p-134, 0, 0) == 0x1p-132,
          "bf16 subnormal ties");
    CHECK(sym_round_fp16_scaled(0x1p-25, 0, 0, 0) == 0.0 && sym_round_fp16_scaled(3 * 0x1p-25, 0, 0, 0) == 0x1p-23,
          "fp16 subnormal ties");
    CHECK(same_bits(sym_round_bf16(-0x1p-140, 0, 0), -0.0), "a tiny negative rounds to -0");

    /* every float, against the bit formula; every double, against the cast */
    int bad_bf16 = 0, bad_fp32 = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)next();
        float f;
        memcpy(&f, &u, sizeof f);
        if (isnan(f)) continue;
        float want = isinf(f) ? f : bf16_of_float(f);
        if (!isinf(f) && fabsf(f) >= 0x1.ffp127f) continue; /* the bit formula's overflow is inf too, skip the edge */
        if (!same_bits(sym_round_bf16(f, 0, 0), (double)want)) bad_bf16++;
        uint64_t b = next();
        double d;
        memcpy(&d, &b, sizeof d);
        if (isnan(d)) continue;
        if (!same_bits(sym_round_fp32(d), (double)(float)d)) bad_fp32++;
    }
    CHECKV(!bad_bf16, "bf16 round to nearest even = the float bit formula on 2e6 floats (%d differ)", bad_bf16);
    CHECKV(!bad_fp32, "fp32 round to nearest even = the C cast on 2e6 doubles (%d differ)", bad_fp32);
#ifdef __FLT16_MAX__
    int bad_fp16 = 0;
    for (int i = 0; i < 2000000; i++) {
        /* doubles over fp16's whole range, subnormals included */
        double d = ldexp((double)(next() >> 11) * 0x1p-53 + 0.5, (int)(next() % 44) - 28) * (next() & 1 ? 1 : -1);
        int s = (int)(next() % 41) - 20; /* any scale: fp16 of d / 2^s, times 2^s */
        double x = ldexp(d, s);
        double want = ldexp((double)(_Float16)d, s);
        if (fabs(d) > 65504) want = copysign(INFINITY, d);
        if (fabs(d) >= 65520) continue; /* overflow is past what a row scale allows */
        if (!same_bits(sym_round_fp16_scaled(x, s, 0, 0), want)) bad_fp16++;
    }
    CHECKV(!bad_fp16, "fp16 with scale 2^s = the compiler's _Float16 on 2e6 doubles (%d differ)", bad_fp16);
#endif
}

static void test_specials(void) {
    sym_state_format fs[] = {SYM_STATE_FP32, SYM_STATE_BF16, SYM_STATE_BF16_SR, SYM_STATE_FP16, SYM_STATE_FP16_SR};
    double sp[] = {-INFINITY, INFINITY, 0.0, -0.0};
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t bits = next();
        if (!same_bits(sym_round_fp32(sp[i]), sp[i]) || !same_bits(sym_round_bf16(sp[i], 0, 0), sp[i]) ||
            !same_bits(sym_round_bf16(sp[i], 1, bits), sp[i]) || !same_bits(sym_round_fp16_scaled(sp[i], -3, 0, 0), sp[i]) ||
            !same_bits(sym_round_fp16_scaled(sp[i], 7, 1, bits), sp[i]))
            bad++;
    }
    CHECKV(!bad, "±inf and ±0 are kept by every format");
    CHECKV(isnan(sym_round_bf16(NAN, 0, 0)) && isnan(sym_round_bf16(NAN, 1, 1)) && isnan(sym_round_fp16_scaled(NAN, 0, 0, 0)),
           "NaN stays NaN");
    CHECKV(sym_round_bf16(1e39, 0, 0) == INFINITY && sym_round_bf16(-1e39, 1, ~0ull) == -INFINITY &&
               isfinite(sym_round_bf16(3.38e38, 0, 0)),
           "bf16 overflows to inf only past its largest value");

    /* a slot: sLSTM m at -inf (as reset), the rest random; every format,
     * every part: -inf kept, nothing NaN */
    sym_model_config cfg = sym_model_config_small();
    sym_state_layout L;
    sym_err e = {{0}};
    if (sym_state_layout_init(&L, &cfg, &e)) {
        CHECK(0, "layout: %s", e.msg);
        return;
    }
    double *slot = malloc(L.numel * sizeof *slot);
    int nan_or_lost = 0;
    for (size_t k = 0; k < sizeof fs / sizeof fs[0]; k++) {
        sym_state_reset_f64(&L, slot);
        for (size_t i = SYM_STATE_HEADER; i < L.numel; i++)
            if (slot[i] == 0) slot[i] = ldexp((double)(next() >> 11) * 0x1p-53 - 0.5, (int)(next() % 40) - 20);
        sym_state_precision p;
        sym_state_precision_native(&p);
        p.all_parts = 1;
        for (int t = 0; t < SYM_TOWERS; t++) p.tower[t] = fs[k];
        for (int t = 0; t < SYM_TOWERS; t++) sym_state_round_tower_f64(&p, &L, t, slot, 5);
        for (size_t i = SYM_STATE_HEADER; i < L.numel; i++) nan_or_lost += isnan(slot[i]);
        for (int l = 0; l < cfg.depth; l++)
            for (int i = 0; i < cfg.hidden; i++) nan_or_lost += slot[L.blocks[l].s_m + (size_t)i] != -INFINITY;
    }
    CHECKV(!nan_or_lost, "rounding a whole slot keeps the sLSTM's -inf and makes no NaN, in every format");

    /* matrices only: the other parts are untouched */
    sym_state_reset_f64(&L, slot);
    for (size_t i = SYM_STATE_HEADER; i < L.numel; i++)
        if (slot[i] == 0) slot[i] = (double)(next() >> 11) * 0x1p-53 - 0.5;
    double *before = malloc(L.numel * sizeof *before);
    memcpy(before, slot, L.numel * sizeof *slot);
    sym_state_precision p;
    sym_state_precision_native(&p);
    for (int t = 0; t < SYM_TOWERS; t++) p.tower[t] = SYM_STATE_BF16;
    for (int t = 0; t < SYM_TOWERS; t++) sym_state_round_tower_f64(&p, &L, t, slot, 1);
    size_t changed = 0, changed_outside = 0;
    for (size_t i = 0; i < L.numel; i++) {
        int in_matrix = 0;
        for (int l = 0; l < cfg.depth; l++) {
            const sym_block_state *b = &L.blocks[l];
            size_t H = (size_t)cfg.hidden, NH = (size_t)cfg.heads, dm = 2 * H / NH, hd = H / NH;
            size_t NM = (size_t)sym_cfg_mamba_heads(&cfg);
            in_matrix |= (i >= b->m_C && i < b->m_C + NH * dm * dm) || (i >= b->mb_h && i < b->mb_h + NM * 64 * 128) ||
                         (i >= b->rt_S && i < b->rt_S + NH * hd * hd) || (i >= b->hk_h && i < b->hk_h + H);
        }
        if (!same_bits(slot[i], before[i])) {
            changed++;
            changed_outside += !in_matrix;
        }
    }
    CHECKV(changed > 0 && !changed_outside, "matrices only: %zu elements rounded, %zu outside the matrices", changed,
           changed_outside);
    free(before);
    free(slot);
    sym_state_layout_free(&L);
}

static void test_stochastic(void) {
    uint64_t key = sym_state_sr_step_key(SYM_STATE_SR_SEED, 42);
    double x = 1 + 0.3 * 0x1p-7, lo = 1, hi = 1 + 0x1p-7;
    double sum = 0;
    int outside = 0, same = 1, n = 1000000, ups = 0;
    for (int i = 0; i < n; i++) {
        double r = sym_round_bf16(x, 1, sym_state_sr_bits(key, (uint64_t)i));
        outside += r != lo && r != hi;
        ups += r == hi;
        sum += r;
        same &= same_bits(r, sym_round_bf16(x, 1, sym_state_sr_bits(sym_state_sr_step_key(SYM_STATE_SR_SEED, 42), (uint64_t)i)));
    }
    CHECKV(!outside, "bf16-sr goes to one of the two neighbours");
    CHECKV(same, "bf16-sr is the same for the same (seed, step, element)");
    /* sigma of the mean: 2^-7 sqrt(0.3 * 0.7) / 1000 = 3.6e-6 */
    CHECKV(fabs(sum / n - x) < 2e-5, "bf16-sr unbiased over 1e6 counters: mean - x = %.3g (up %.4f of the time, want 0.3)",
           sum / n - x, (double)ups / n);
    /* the same over steps, one element, negative, in fp16 with a scale */
    double y = -(3 + 0.7 * 0x1p-9) * 0x1p-20, ysum = 0;
    for (int s = 1; s <= n; s++)
        ysum += sym_round_fp16_scaled(y, -21, 1, sym_state_sr_bits(sym_state_sr_step_key(SYM_STATE_SR_SEED, s), 77));
    CHECKV(fabs(ysum / n - y) < 2e-5 * 0x1p-20 * 4, "fp16-sr unbiased over 1e6 steps: mean - x = %.3g of spacing %.3g",
           ysum / n - y, 0x1p-9 * 0x1p-20 * 2);
    CHECKV(sym_round_bf16(1.5, 1, ~0ull) == 1.5 && sym_round_bf16(1.5, 1, 0) == 1.5, "bf16-sr keeps a representable value");
    /* the subnormal range goes through another path: unbiased too */
    double z = 0.25 * 0x1p-133 + 0x1p-133, zsum = 0;
    for (int i = 0; i < n; i++) zsum += sym_round_bf16(z, 1, sym_state_sr_bits(key, (uint64_t)i));
    CHECKV(fabs(zsum / n / z - 1) < 2e-3, "bf16-sr unbiased below bf16's normal range: mean / x - 1 = %.3g", zsum / n / z - 1);
    uint64_t k1 = sym_state_sr_step_key(SYM_STATE_SR_SEED, 1), k2 = sym_state_sr_step_key(SYM_STATE_SR_SEED, 2);
    CHECKV(sym_state_sr_bits(k1, 0) != sym_state_sr_bits(k2, 0) && sym_state_sr_bits(k1, 0) != sym_state_sr_bits(k1, 1),
           "the random bits depend on the step and the element");
}

static void test_fp16_rows(void) {
    double row[] = {1000, -3.5, 1e-3, 0, -INFINITY, 1e-30};
    int s = sym_fp16_row_exponent_f64(row, 6);
    CHECKV(s == 9 - 14, "row exponent of max 1000 (2^9..2^10): s = %d, want -5", s);
    CHECKV(1000 / ldexp(1, s) < 32768 && 1000 / ldexp(1, s) >= 16384, "the row max maps into [2^14, 2^15)");
    double big[] = {-6e9, 1};
    s = sym_fp16_row_exponent_f64(big, 2);
    CHECKV(sym_round_fp16_scaled(-6e9, s, 0, 0) < 0 && isfinite(sym_round_fp16_scaled(-6e9, s, 0, 0)) &&
               fabs(sym_round_fp16_scaled(-6e9, s, 0, 0) / -6e9 - 1) < 0x1p-11,
           "a row of 6e9 stores without overflow, to fp16's relative precision");
    /* round trip: a value that is fp16 * 2^s comes back exactly; others to 2^-11 relative */
    s = sym_fp16_row_exponent_f64(row, 6);
    int exact = sym_round_fp16_scaled(1000, s, 0, 0) == 1000 && sym_round_fp16_scaled(-3.5, s, 0, 0) == -3.5;
    double r = sym_round_fp16_scaled(1e-3, s, 0, 0);
    CHECKV(exact && fabs(r / 1e-3 - 1) <= 0x1p-11, "fp16 row round trip: exact values kept, 1e-3 -> %.9g", r);
    double zeros[] = {0, -0.0, INFINITY};
    CHECKV(sym_fp16_row_exponent_f64(zeros, 3) == 0, "a row of zeros and infinities has s = 0");
    double tiny[] = {1e-300};
    CHECKV(sym_fp16_row_exponent_f64(tiny, 1) == -125, "s is clamped to -125 (scale an exact fp32)");
    float ft[] = {1e-40f, -2e-41f}; /* float subnormals: 1e-40 is in [2^-133, 2^-132) */
    CHECKV(sym_fp16_row_exponent_f32(ft, 2) == -125, "float subnormal row: s clamped to -125");
    float fr[] = {1000.0f, -3.5f, -INFINITY};
    CHECKV(sym_fp16_row_exponent_f32(fr, 3) == -5, "float row exponent = the double one");
}

/* A row of C longer than a segment: each segment has its own scale, so a
 * segment of small numbers beside one of large keeps fp16's precision. */
static void test_fp16_segments(void) {
    sym_model_config cfg = sym_model_config_small();
    cfg.hidden = 256, cfg.heads = 2; /* dm = 2H / NH = 256: two segments a row */
    sym_state_layout L;
    sym_err e = {{0}};
    if (sym_state_layout_init(&L, &cfg, &e)) {
        CHECK(0, "layout: %s", e.msg);
        return;
    }
    double *slot = calloc(L.numel, sizeof *slot);
    double *C = slot + L.blocks[0].m_C;
    for (int j = 0; j < 256; j++) C[j] = j < 128 ? 1000.0 + j : 1e-7 * (1 + j / 300.0);
    sym_state_precision sp;
    sym_state_precision_native(&sp);
    sp.tower[SYM_TOWER_XLSTM] = SYM_STATE_FP16;
    sym_state_round_tower_f64(&sp, &L, SYM_TOWER_XLSTM, slot, 1);
    double worst = 0;
    for (int j = 128; j < 256; j++) worst = fmax(worst, fabs(C[j] / (1e-7 * (1 + j / 300.0)) - 1));
    CHECKV(worst <= 0x1p-11 && C[0] == 1000.0, "fp16: a segment of 1e-7 beside one of 1000 keeps 2^-11 (%.3g)", worst);
    free(slot);
    sym_state_layout_free(&L);
}

/* The stored layouts: the matrices in two bytes a number (fp16 with a
 * byte a segment), every other part as before, nothing overlapping. */
static void test_stored_layout(void) {
    sym_model_config cfgs[2] = {sym_model_config_small(), sym_model_config_full()};
    for (int k = 0; k < 2; k++) {
        const sym_model_config *c = &cfgs[k];
        sym_state_layout f32, st;
        sym_err e = {{0}};
        const sym_mat_store mat[SYM_TOWERS] = {SYM_MAT_F16, SYM_MAT_BF16, SYM_MAT_F16, SYM_MAT_F32};
        if (sym_state_layout_init(&f32, c, &e) || sym_state_layout_init_stored(&st, c, mat, &e)) {
            CHECK(0, "layouts: %s", e.msg);
            return;
        }
        size_t H = (size_t)c->hidden, NH = (size_t)c->heads, dm = 2 * H / NH, hd = H / NH;
        size_t NM = (size_t)sym_cfg_mamba_heads(c);
        size_t nC = NH * dm * dm, nh = NM * SYM_MAMBA_HEAD * SYM_MAMBA_BC, nS = NH * hd * hd;
        size_t eC = NH * dm * sym_state_segs(dm), eS = NH * hd * sym_state_segs(hd);
        const sym_block_state *b = &st.blocks[0];
        int ok = b->m_C + nC / 2 <= b->m_C_exp && b->m_C_exp + (eC + 3) / 4 <= b->m_n && b->mb_h + nh / 2 <= b->rt_scale &&
                 b->rt_S + nS / 2 <= b->rt_S_exp && b->m_C_exp && b->rt_S_exp && !b->mb_h_exp;
        /* every matrix's elements saved, each rounded up to 32, less the exponents' */
        const long saved = (long)f32.numel - (long)st.numel;
        const long want = (long)c->depth * (long)(((nC + 31) & ~(size_t)31) - ((nC / 2 + 31) & ~(size_t)31) -
                                      (((eC + 3) / 4 + 31) & ~(size_t)31) + ((nh + 31) & ~(size_t)31) -
                                      ((nh / 2 + 31) & ~(size_t)31) + ((nS + 31) & ~(size_t)31) -
                                      ((nS / 2 + 31) & ~(size_t)31) - (((eS + 3) / 4 + 31) & ~(size_t)31));
        CHECKV(ok && saved == want && st.mat[0] == SYM_MAT_F16 && f32.mat[0] == SYM_MAT_F32,
               "%s: stored layout %zu elements against %zu, matrices and exponents apart", k ? "full" : "small",
               st.numel, f32.numel);
        if (k == 1)
            printf("  full size: fp16 C, bf16 h, fp16 S: %.1f MB a slot against %.1f MB\n", st.numel * 4e-6,
                   f32.numel * 4e-6);
        sym_state_layout_free(&f32);
        sym_state_layout_free(&st);
        const sym_mat_store hawk[SYM_TOWERS] = {SYM_MAT_F32, SYM_MAT_F32, SYM_MAT_F32, SYM_MAT_BF16};
        CHECKV(sym_state_layout_init_stored(&st, c, hawk, &e) == -1, "a stored layout keeps Hawk's h in fp32: %s", e.msg);
    }
    /* what a stored layout holds, and what it refuses by name */
    sym_state_precision sp;
    sym_state_precision_native(&sp);
    sym_mat_store m[SYM_TOWERS];
    sym_err e = {{0}};
    sp.tower[0] = SYM_STATE_FP16, sp.tower[1] = SYM_STATE_BF16, sp.tower[2] = SYM_STATE_FP32;
    CHECKV(!sym_state_stores(&sp, m, &e) && m[0] == SYM_MAT_F16 && m[1] == SYM_MAT_BF16 && m[2] == SYM_MAT_F32 &&
               m[3] == SYM_MAT_F32,
           "fp16, bf16, fp32, native: stored as F16, BF16, F32, F32");
    sp.tower[1] = SYM_STATE_BF16_SR;
    CHECKV(sym_state_stores(&sp, m, &e) == -1 && strstr(e.msg, "bf16-sr") && strstr(e.msg, "Mamba2"),
           "stochastic rounding refused by name: %s", e.msg);
    sp.tower[1] = SYM_STATE_BF16, sp.tower[3] = SYM_STATE_FP16;
    CHECKV(sym_state_stores(&sp, m, &e) == -1 && strstr(e.msg, "Hawk"), "Hawk below fp32 refused by name: %s", e.msg);
    sp.tower[3] = SYM_STATE_NATIVE, sp.all_parts = 1;
    CHECKV(sym_state_stores(&sp, m, &e) == -1 && strstr(e.msg, "matrices"), "all_parts refused: %s", e.msg);
}

/* outputs and exported slots of one golden run */
static int golden_run(sym_weights *w, const sym_request_file *rf, sym_precision prec, const sym_state_precision *sp,
                      double *out, void **slots_out, size_t *slot_bytes) {
    sym_err e = {{0}};
    sym_backend *b = sym_cpu_backend_create(w, prec, 64, &e);
    if (!b || (sp && sym_cpu_backend_set_state_precision(b, sp, &e)) || sym_test_run_requests(b, rf, 64, out, &e)) {
        CHECK(0, "golden run: %s", e.msg);
        sym_backend_destroy(b);
        return -1;
    }
    *slot_bytes = b->slot_bytes;
    *slots_out = malloc(40 * b->slot_bytes);
    for (int i = 0; i < 40; i++) b->ops->export_slot(b, i, (char *)*slots_out + (size_t)i * b->slot_bytes, &e);
    sym_backend_destroy(b);
    return 0;
}

static void test_backend(const char *dir) {
    sym_err e = {{0}};
    sym_weights w;
    sym_request_file rf;
    if (sym_test_load_golden(dir, &w, &rf, NULL, &e)) {
        CHECK(0, "%s: %s", dir, e.msg);
        return;
    }
    size_t n = (size_t)rf.n * 4, bytes = 0;
    double *plain = malloc(n * sizeof *plain), *got = malloc(n * sizeof *got);
    void *s_plain = NULL, *s_got = NULL;
    sym_state_precision native, fp32, bf16;
    sym_state_precision_native(&native);
    fp32 = bf16 = native;
    for (int t = 0; t < SYM_TOWERS; t++) fp32.tower[t] = SYM_STATE_FP32, bf16.tower[t] = SYM_STATE_BF16;

    if (!golden_run(&w, &rf, SYM_PREC_FP64, NULL, plain, &s_plain, &bytes) &&
        !golden_run(&w, &rf, SYM_PREC_FP64, &native, got, &s_got, &bytes))
        CHECKV(!memcmp(plain, got, n * sizeof *got) && !memcmp(s_plain, s_got, 40 * bytes),
               "fp64, every tower native: outputs and states bit for bit those of the backend without the setting");
    free(s_got);
    /* fp64 with fp32 storage: the outputs move, the matrices hold fp32 values */
    if (!golden_run(&w, &rf, SYM_PREC_FP64, &fp32, got, &s_got, &bytes)) {
        double d = 0;
        for (size_t i = 0; i < n; i++) d = fmax(d, fabs(got[i] - plain[i]));
        sym_state_layout L;
        sym_state_layout_init(&L, &w.cfg, &e);
        const double *s0 = s_got;
        size_t not32 = 0, C = L.blocks[0].m_C, Cn = (size_t)w.cfg.heads * (2 * w.cfg.hidden / w.cfg.heads) * (2 * w.cfg.hidden / w.cfg.heads);
        for (size_t i = C; i < C + Cn; i++) not32 += s0[i] != (double)(float)s0[i];
        CHECKV(d > 0 && d < 1e-5 && !not32, "fp64 with fp32 state: max output change %.3g (< 1e-5), mLSTM C all fp32 values", d);
        sym_state_layout_free(&L);
    }
    free(s_got);
    free(s_plain);
    /* fp32 arithmetic with fp32 storage is today's fp32 path, bit for bit */
    if (!golden_run(&w, &rf, SYM_PREC_FP32, NULL, plain, &s_plain, &bytes) &&
        !golden_run(&w, &rf, SYM_PREC_FP32, &fp32, got, &s_got, &bytes))
        CHECKV(!memcmp(plain, got, n * sizeof *got) && !memcmp(s_plain, s_got, 40 * bytes),
               "fp32 arithmetic with fp32 state: bit for bit the fp32 path");
    free(s_got);
    /* bf16-sr is reproducible: two runs, same bits */
    sym_state_precision sr = native;
    for (int t = 0; t < SYM_TOWERS; t++) sr.tower[t] = t % 2 ? SYM_STATE_FP16_SR : SYM_STATE_BF16_SR;
    double *again = malloc(n * sizeof *again);
    void *s_again = NULL;
    free(s_plain);
    if (!golden_run(&w, &rf, SYM_PREC_FP64, &sr, got, &s_got, &bytes) &&
        !golden_run(&w, &rf, SYM_PREC_FP64, &sr, again, &s_again, &bytes))
        CHECKV(!memcmp(again, got, n * sizeof *got) && !memcmp(s_again, s_got, 40 * bytes),
               "bf16-sr/fp16-sr: a second run gives the same outputs and states, bit for bit");
    free(s_got);
    free(s_again);
    /* back to native after bf16: today's behaviour again */
    {
        sym_backend *b = sym_cpu_backend_create(&w, SYM_PREC_FP64, 64, &e);
        sym_backend *p = sym_cpu_backend_create(&w, SYM_PREC_FP64, 64, &e);
        int rc = sym_cpu_backend_set_state_precision(b, &bf16, &e) || sym_cpu_backend_set_state_precision(b, &native, &e) ||
                 sym_test_run_requests(b, &rf, 64, got, &e) || sym_test_run_requests(p, &rf, 64, plain, &e);
        CHECKV(!rc && !memcmp(plain, got, n * sizeof *got), "bf16 then native: bit for bit the plain backend");
        sym_state_precision badp = native;
        badp.tower[2] = SYM_STATE_FORMATS;
        CHECKV(sym_cpu_backend_set_state_precision(b, &badp, &e) == -1 && strstr(e.msg, "tower 2"),
               "an unknown format is refused, naming the tower: %s", e.msg);
        sym_backend_destroy(b);
        sym_backend_destroy(p);
    }
    free(again);
    free(plain);
    free(got);
    sym_requests_free(&rf);
    sym_weights_free(&w);
}

static void bad(const char *json) {
    sym_config c, before;
    sym_config_defaults(&c);
    before = c;
    sym_err e = {{0}};
    int rc = sym_config_parse(&c, json, &e);
    CHECKV(rc == -1 && strstr(e.msg, "'state_precision'") && !memcmp(&c, &before, sizeof c), "refused %s: %s", json,
           e.msg);
}

static void test_config(void) {
    sym_config c;
    sym_config_defaults(&c);
    CHECKV(!c.state_precision_set && c.state_precision[0] == SYM_STATE_NATIVE && c.state_precision[3] == SYM_STATE_NATIVE,
           "state_precision: native by default");
    sym_err e = {{0}};
    int rc = sym_config_parse(&c, "{\"state_precision\": [\"bf16\", \"fp16-sr\", \"fp32\", \"bf16-sr\"]}", &e);
    CHECKV(!rc && c.state_precision_set && c.state_precision[0] == SYM_STATE_BF16 &&
               c.state_precision[1] == SYM_STATE_FP16_SR && c.state_precision[2] == SYM_STATE_FP32 &&
               c.state_precision[3] == SYM_STATE_BF16_SR,
           "state_precision: four names accepted %s", e.msg);
    rc = sym_config_parse(&c, "{\"state_precision\": [\"fp16\", \"fp16\", \"fp16\", \"fp16\"]}", &e);
    CHECKV(!rc && c.state_precision[2] == SYM_STATE_FP16, "state_precision: fp16");
    rc = sym_config_parse(&c, "{\"state_precision\": null}", &e);
    CHECKV(!rc && !c.state_precision_set && c.state_precision[0] == SYM_STATE_NATIVE, "state_precision: null resets");
    bad("{\"state_precision\": \"bf16\"}");
    bad("{\"state_precision\": [\"bf16\", \"bf16\", \"bf16\"]}");
    bad("{\"state_precision\": [\"bf16\", \"bf16\", \"bf16\", \"bf16\", \"bf16\"]}");
    bad("{\"state_precision\": [\"bf16\", \"fp64\", \"fp32\", \"bf16\"]}");
    bad("{\"state_precision\": [\"bf16\", \"bf16\", \"native\", \"bf16\"]}");
    bad("{\"state_precision\": [\"bf16\", \"BF16\", \"fp32\", \"bf16\"]}");
    bad("{\"state_precision\": [\"bf16\", null, \"fp32\", \"bf16\"]}");
    bad("{\"state_precision\": [\"bf16\", 16, \"fp32\", \"bf16\"]}");
    bad("{\"state_precision\": {}}");

    /* the engine: cuda refuses what it does not store by name (before
     * looking for a device); cpu passes it to its backend */
    sym_config_defaults(&c);
    rc = sym_config_parse(&c, "{\"backend\": \"cuda\", \"state_precision\": [\"bf16\", \"bf16\", \"fp32\", \"bf16\"]}", &e);
    sym_model_backends *m = rc ? NULL : sym_model_backends_create(&c, &e);
    CHECKV(!rc && !m && strstr(e.msg, "state_precision") && strstr(e.msg, "Hawk"),
           "cuda refuses a state_precision it does not store: %s", e.msg);
    sym_model_backends_destroy(m);
    sym_config_defaults(&c);
    rc = sym_config_parse(&c, "{\"backend\": \"cpu\", \"state_precision\": [\"bf16\", \"fp16\", \"fp32\", \"bf16-sr\"]}", &e);
    m = rc ? NULL : sym_model_backends_create(&c, &e);
    sym_backend *b = m ? sym_model_backends_make(m, 0, &e) : NULL;
    if (!b) {
        CHECK(0, "cpu engine backend with state_precision: %s", e.msg);
        sym_model_backends_destroy(m);
        return;
    }
    sym_weights w;
    sym_model_config mc = sym_model_config_small();
    sym_backend *ref = NULL;
    if (!sym_weights_synthetic(&w, &mc, c.synthetic_seed, &e)) ref = sym_cpu_backend_create(&w, SYM_PREC_FP64, 1, &e);
    sym_state_precision sp;
    sym_state_precision_native(&sp);
    sp.tower[0] = SYM_STATE_BF16, sp.tower[1] = SYM_STATE_FP16, sp.tower[2] = SYM_STATE_FP32, sp.tower[3] = SYM_STATE_BF16_SR;
    sym_backend *plain = sym_cpu_backend_create(&w, SYM_PREC_FP64, 1, &e);
    if (ref && plain && !sym_cpu_backend_set_state_precision(ref, &sp, &e)) {
        float x[79];
        double o1[4], o2[4], o3[4];
        int same = 1, differs = 0;
        int32_t slot = 0;
        for (int s = 0; s < 20; s++) {
            for (int i = 0; i < 79; i++) x[i] = (float)((double)(next() >> 11) * 0x1p-53 * 4 - 2);
            sym_backend_step(b, 1, &slot, x, o1, &e);
            sym_backend_step(ref, 1, &slot, x, o2, &e);
            sym_backend_step(plain, 1, &slot, x, o3, &e);
            same &= !memcmp(o1, o2, sizeof o1);
            differs |= memcmp(o1, o3, sizeof o1) != 0;
        }
        CHECKV(same && differs, "cpu engine backend steps with the config's state precision (= a backend set to it, "
                                "not the native one)");
    }
    sym_backend_destroy(ref);
    sym_backend_destroy(plain);
    sym_weights_free(&w);
    sym_backend_destroy(b);
    sym_model_backends_destroy(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s GOLDEN_SMALL_DIR\n", argv[0]);
        return 2;
    }
    test_nearest_even();
    test_specials();
    test_stochastic();
    test_fp16_rows();
    test_fp16_segments();
    test_stored_layout();
    test_backend(argv[1]);
    test_config();
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures != 0;
}
