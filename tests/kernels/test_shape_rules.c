/* The shape rules, CPU side (the GPU side is tests/cuda/test_gv_shapes.c,
 * which draws the same configs):
 *  - every config the random generator draws passes
 *    sym_model_config_validate, and the GPU test's seed list still covers
 *    what it claims (every hidden_size 32..512, odd and even Mamba2 head
 *    counts, depths 1..4, several head counts, feature counts other than 79,
 *    proj_size off the kernels' tiles);
 *  - each config of the invalid table is refused with a message naming the
 *    key and the rule;
 *  - the CPU backend, the weights and the state layout refuse exactly what
 *    validate refuses, with its message, over a grid of shapes;
 *  - a few random configs with synthetic weights: the CPU fp32 path within
 *    1e-4 of the fp64 path over a schedule with runs, outputs finite. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/state_layout.h"
#include "kernels/weights.h"
#include "tests/check.h"
#include "tests/kernels/random_config.h"

static void generator(void) {
    int bad = 0;
    char s[160];
    for (uint64_t seed = 0; seed < 4000; seed++) {
        const int maxh = seed < 2000 ? SYM_TEST_SHAPES_MAX_HIDDEN : SYM_MAX_HIDDEN;
        sym_model_config c = sym_test_random_config(seed, maxh, 12);
        sym_err e = {{0}};
        if (sym_model_config_validate(&c, &e) || c.hidden > maxh || c.depth > 12) {
            if (bad++ < 5)
                printf("FAIL seed %llu drew %s: %s\n", (unsigned long long)seed, sym_test_config_str(&c, s, sizeof s),
                       e.msg);
        }
    }
    CHECKV(!bad, "4000 random configs (hidden_size up to 512 and up to 4096) all pass validate");
    /* the GPU test's list */
    int widths = 0, odd_nm = 0, even_nm = 0, depths = 0, f79 = 0, p_off_tile = 0, n_heads = 0, heads[64], big_ns = 0,
        hd4 = 0;
    for (int k = 0; k < SYM_TEST_SHAPES_N; k++) {
        sym_model_config c = sym_test_random_config(SYM_TEST_SHAPES_FIRST_SEED + (uint64_t)k, SYM_TEST_SHAPES_MAX_HIDDEN,
                                                    SYM_TEST_SHAPES_MAX_DEPTH);
        widths |= 1 << (c.hidden / 32 - 1);
        odd_nm += sym_cfg_mamba_heads(&c) % 2, even_nm += sym_cfg_mamba_heads(&c) % 2 == 0;
        depths |= 1 << (c.depth - 1);
        f79 += c.features == 79;
        p_off_tile += c.proj % 8 != 0;
        big_ns += sym_cfg_slstm_heads(&c) > 8;
        hd4 += sym_cfg_head_dim(&c) == 4;
        int seen = 0;
        for (int i = 0; i < n_heads; i++) seen |= heads[i] == c.heads;
        if (!seen && n_heads < 64) heads[n_heads++] = c.heads;
    }
    CHECKV(widths == 0xffff, "the GPU test's %d configs take every hidden_size 32, 64, .., 512 (mask %#x)",
           SYM_TEST_SHAPES_N, widths);
    CHECKV(odd_nm >= 4 && even_nm >= 4, "odd (%d) and even (%d) Mamba2 head counts", odd_nm, even_nm);
    CHECKV(depths == 15, "tower_depth 1 to 4 (mask %#x)", depths);
    CHECKV(n_heads >= 6 && big_ns >= 2 && hd4 >= 2,
           "%d distinct num_heads, %d configs with more than 8 sLSTM heads, %d with RetNet head size 4", n_heads, big_ns,
           hd4);
    CHECKV(f79 < SYM_TEST_SHAPES_N && p_off_tile >= 3,
           "num_features other than 79 (%d of %d are 79); %d proj_size not a multiple of 8", f79, SYM_TEST_SHAPES_N,
           p_off_tile);
}

static void bad_table(void) {
    int bad = 0;
    for (int i = 0; i < sym_test_n_bad_configs; i++) {
        const sym_test_bad_config *b = &sym_test_bad_configs[i];
        sym_err e = {{0}};
        char s[160];
        const int rc = sym_model_config_validate(&b->cfg, &e);
        if (!rc || !strstr(e.msg, b->key) || !strstr(e.msg, b->rule)) {
            printf("FAIL %s: validate %s \"%s\" (wanted \"%s\" and \"%s\")\n", sym_test_config_str(&b->cfg, s, sizeof s),
                   rc ? "refused it:" : "accepted it", e.msg, b->key, b->rule);
            bad++;
        }
    }
    CHECKV(!bad, "the %d invalid configs of the table are refused, each message naming the key and the rule",
           sym_test_n_bad_configs);
    sym_err e = {{0}};
    sym_model_config c = {96, 256, 2, 16, 79};
    sym_model_config_validate(&c, &e);
    printf("     e.g. %s\n", e.msg);
}

/* Every way in -- validate, the weights, the state layout, the CPU backend
 * -- accepts a config or refuses it with validate's message. The CPU
 * backend reads only the config from its weights until it steps. */
static int same_verdict(const sym_model_config *c) {
    sym_err ev = {{0}}, ew = {{0}}, el = {{0}}, eb = {{0}};
    const int v = sym_model_config_validate(c, &ev);
    sym_weights d;
    const int wv = sym_weights_describe(&d, c, &ew);
    if (!wv) sym_weights_free(&d);
    sym_state_layout ly;
    const int lv = sym_state_layout_init(&ly, c, &el);
    if (!lv) sym_state_layout_free(&ly);
    sym_weights w;
    memset(&w, 0, sizeof w);
    w.cfg = *c;
    sym_backend *b = sym_cpu_backend_create(&w, SYM_PREC_FP64, 1, &eb);
    sym_backend_destroy(b);
    if (v) return wv && lv && !b && !strcmp(ew.msg, ev.msg) && !strcmp(el.msg, ev.msg) && !strcmp(eb.msg, ev.msg);
    return !wv && !lv && b;
}

static void backends_agree(void) {
    static const int hs[] = {-32, 0, 16, 32, 48, 64, 96, 100, 128, 160, 192, 224, 4064, 4096, 4128};
    static const int nhs[] = {-2, 0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64, 128, 256, 512, 1024};
    int n = 0, valid = 0, bad = 0;
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++)
        for (size_t k = 0; k < sizeof nhs / sizeof *nhs; k++) {
            const int H = hs[i], NH = nhs[k];
            /* the widest ones only with many heads (a small state) */
            if (H > 1024 && NH > 0 && NH < 128) continue;
            sym_model_config c = {H, 7 + (int)k, 1 + (int)(i % 2), NH, 1 + (int)((i * 37 + k) % 256)};
            n++;
            valid += !sym_model_config_validate(&c, NULL);
            if (!same_verdict(&c)) {
                char s[160];
                if (bad++ < 5) printf("FAIL the ways in disagree on %s\n", sym_test_config_str(&c, s, sizeof s));
            }
        }
    static const sym_model_config more[] = {
        {128, 0, 2, 8, 79}, {128, 262144, 1, 8, 79}, {128, 262145, 1, 8, 79}, {128, 256, 1024, 8, 79},
        {128, 256, 1025, 8, 79}, {128, 256, 2, 8, 256}, {128, 256, 2, 8, 257}, {128, 256, 2, 8, -1}, {128, 256, -3, 8, 79}};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++) {
        n++;
        valid += !sym_model_config_validate(&more[i], NULL);
        bad += !same_verdict(&more[i]);
    }
    for (int i = 0; i < sym_test_n_bad_configs; i++, n++) bad += !same_verdict(&sym_test_bad_configs[i].cfg);
    CHECKV(!bad, "validate, the weights, the state layout and the CPU backend agree on %d configs (%d valid)", n, valid);
}

/* CPU fp32 against fp64 on a short schedule with runs */
static void cpu_paths(void) {
    const int n_slots = 8;
    for (uint64_t seed = 0; seed < 4; seed++) {
        sym_model_config c = sym_test_random_config(seed, 128, 3);
        char s[160];
        sym_err e = {{0}};
        sym_weights w;
        sym_test_schedule sch;
        if (sym_weights_synthetic(&w, &c, 7000 + seed, &e) || sym_test_schedule_make(&sch, 100 + seed, n_slots, 6, &e)) {
            CHECKV(0, "setup %s: %s", sym_test_config_str(&c, s, sizeof s), e.msg);
            return;
        }
        const int F = c.features, R = sch.n_rows;
        float *feat = malloc((size_t)R * F * sizeof *feat);
        double *o64 = malloc((size_t)R * 4 * sizeof *o64), *o32 = malloc((size_t)R * 4 * sizeof *o32);
        sym_test_features(200 + seed, R * F, feat);
        sym_backend *b64 = sym_cpu_backend_create(&w, SYM_PREC_FP64, n_slots, &e);
        sym_backend *b32 = b64 ? sym_cpu_backend_create(&w, SYM_PREC_FP32, n_slots, &e) : NULL;
        int rc = !b64 || !b32;
        for (int k = 0, at = 0; k < sch.n_steps && !rc; at += sch.B[k++]) {
            rc = sym_backend_step_runs(b64, sch.B[k], sch.slots + at, feat + (size_t)at * F, o64 + (size_t)at * 4, NULL,
                                       &e) ||
                 sym_backend_step_runs(b32, sch.B[k], sch.slots + at, feat + (size_t)at * F, o32 + (size_t)at * 4, NULL,
                                       &e);
        }
        double mx[4] = {0};
        int finite = 1;
        for (int i = 0; !rc && i < R * 4; i++) {
            finite &= isfinite(o64[i]) && isfinite(o32[i]);
            mx[i % 4] = fmax(mx[i % 4], fabs(o64[i] - o32[i]));
        }
        CHECKV(!rc && finite && mx[0] <= 1e-4 && mx[1] <= 1e-4 && mx[2] <= 1e-4 && mx[3] <= 1e-4,
               "seed %llu %s: %d rows in %d steps (up to %d), cpu fp32 vs fp64 max abs err [%.3g %.3g %.3g %.3g]%s%s",
               (unsigned long long)seed, sym_test_config_str(&c, s, sizeof s), R, sch.n_steps, sch.max_B, mx[0], mx[1],
               mx[2], mx[3], rc ? " error: " : "", rc ? e.msg : "");
        sym_backend_destroy(b64), sym_backend_destroy(b32);
        free(feat), free(o64), free(o32);
        sym_test_schedule_free(&sch);
        sym_weights_free(&w);
    }
}

int main(void) {
    generator();
    bad_table();
    backends_agree();
    cpu_paths();
    return failures != 0;
}
