/* The model beyond the golden shapes:
 *  - the full-size tensor list equals the reference model's state_dict keys
 *    (names, shapes) and its size MODEL.md's 1,985,149,473 numbers;
 *  - synthetic weights follow MODEL.md's distributions, are deterministic per
 *    seed, and survive a save/load round trip bit for bit;
 *  - on shapes of our own (other depth, width, heads, features) the fp32 path
 *    stays within 1e-4 of the fp64 path, outputs are finite, a row's result
 *    does not depend on the batch around it, and a slot exported mid-stream
 *    and imported elsewhere continues bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/weights.h"

static int fails, passes;
#define CHECK(cond, ...)                  \
    do {                                  \
        int ok_ = (cond);                 \
        printf(ok_ ? "PASS " : "FAIL ");  \
        printf(__VA_ARGS__);              \
        printf("\n");                     \
        ok_ ? passes++ : fails++;         \
    } while (0)

static void full_size_keys(const char *keys_path) {
    sym_model_config full = sym_model_config_full();
    sym_weights w;
    sym_err e = {{0}};
    if (sym_weights_describe(&w, &full, &e)) {
        CHECK(0, "describe full size: %s", e.msg);
        return;
    }
    int64_t total = 0;
    for (int i = 0; i < w.n_specs; i++) total += w.specs[i].numel;
    CHECK(total == 1985149473LL, "full size holds %lld numbers (MODEL.md: 1,985,149,473)", (long long)total);
    FILE *f = fopen(keys_path, "r");
    int n = 0, matched = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char name[256], shape[128];
        if (sscanf(line, "%255s %127[^\t]", name, shape) != 2) continue;
        n++;
        const sym_tensor_spec *s = sym_weights_find(&w, name);
        if (!s) {
            printf("  missing from our spec: %s\n", name);
            continue;
        }
        char ours[128];
        size_t k = (size_t)snprintf(ours, sizeof ours, "[");
        for (int d = 0; d < s->ndim; d++) k += (size_t)snprintf(ours + k, sizeof ours - k, d ? ", %lld" : "%lld", (long long)s->shape[d]);
        snprintf(ours + k, sizeof ours - k, "]");
        if (strcmp(ours, shape)) printf("  %s: ours %s, reference %s\n", name, ours, shape);
        else matched++;
    }
    if (f) fclose(f);
    CHECK(n == w.n_specs && matched == n, "full-size tensor list: %d of %d reference keys match (ours: %d)", matched, n,
          w.n_specs);
    sym_weights_free(&w);
}

static void synthetic_distributions(void) {
    sym_model_config c = {64, 96, 2, 4, 79};
    sym_weights w, w2, w3;
    sym_err e = {{0}};
    if (sym_weights_synthetic(&w, &c, 7, &e) || sym_weights_synthetic(&w2, &c, 7, &e) ||
        sym_weights_synthetic(&w3, &c, 8, &e)) {
        CHECK(0, "synthetic: %s", e.msg);
        return;
    }
    CHECK(!memcmp(w.arena, w2.arena, w.arena_floats * 4), "synthetic weights are deterministic per seed");
    CHECK(memcmp(w.arena, w3.arena, w.arena_floats * 4) != 0, "another seed gives other weights");
    int bad = 0;
    for (int i = 0; i < w.n_specs; i++) {
        const sym_tensor_spec *s = &w.specs[i];
        const float *p = w.arena + s->offset;
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t k = 0; k < s->numel; k++) lo = fmin(lo, p[k]), hi = fmax(hi, p[k]);
        double r = s->fan_in ? 1.0 / sqrt(s->fan_in) : 0;
        int ok = 1;
        switch (s->init) {
        case SYM_INIT_UNIFORM_FANIN: ok = lo >= -r && hi <= r && (s->numel < 64 || (hi > 0.8 * r && lo < -0.8 * r)); break;
        case SYM_INIT_UNIFORM_HALF: ok = lo >= -0.5 && hi <= 0.5 && (s->numel < 64 || (hi > 0.4 && lo < -0.4)); break;
        case SYM_INIT_ONES: ok = lo == 1 && hi == 1; break;
        case SYM_INIT_ZEROS: ok = lo == 0 && hi == 0; break;
        case SYM_INIT_MAMBA_A: ok = lo >= -16 && hi <= -1; break;
        case SYM_INIT_RETNET_DECAY: ok = fabs(p[0] - (1 - 1.0 / 32)) < 1e-7 && fabs(p[1] - (1 - 1.0 / 64)) < 1e-7; break;
        case SYM_INIT_RETNET_ANGLE: ok = p[0] == 1 && p[1] == 1 && fabs(p[s->numel - 1] - 1e-4) < 1e-9; break;
        case SYM_INIT_HAWK_A: ok = lo >= pow(0.9, 0.125) - 1e-7 && hi <= pow(0.999, 0.125) + 1e-7; break;
        case SYM_INIT_FGATE_BIAS: ok = p[0] == 3 && p[s->numel - 1] == 6; break;
        case SYM_INIT_IGATE_BIAS: ok = lo > -1 && hi < 1 && lo != hi; break;
        }
        if (!ok) {
            printf("  %s: values in [%g, %g] do not follow its initialisation\n", s->name, lo, hi);
            bad++;
        }
    }
    CHECK(!bad, "every synthetic tensor follows MODEL.md's distribution (%d tensors)", w.n_specs);
    const char *path = "/tmp/symserve-roundtrip.safetensors";
    sym_weights back;
    int rc = sym_weights_save(&w, path, &e) || sym_weights_load_file(&back, &c, path, &e);
    CHECK(!rc && !memcmp(back.arena, w.arena, w.arena_floats * 4), "save/load round trip is exact%s%s", rc ? ": " : "",
          rc ? e.msg : "");
    if (!rc) sym_weights_free(&back);
    remove(path);
    sym_weights_free(&w);
    sym_weights_free(&w2);
    sym_weights_free(&w3);
}

static uint64_t rng = 0x1234567;
static double normal(void) {
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        u[i] = ((double)(rng >> 11) + 0.5) * 0x1.0p-53;
    }
    return sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]);
}

static void shape_case(sym_model_config c, uint64_t seed) {
    sym_weights w;
    sym_err e = {{0}};
    if (sym_weights_synthetic(&w, &c, seed, &e)) {
        CHECK(0, "shape H=%d: %s", c.hidden, e.msg);
        return;
    }
    enum { S = 3, STEPS = 30 };
    sym_backend *b64 = sym_cpu_backend_create(&w, SYM_PREC_FP64, S, &e);
    sym_backend *b32 = sym_cpu_backend_create(&w, SYM_PREC_FP32, S, &e);
    sym_backend *b1 = sym_cpu_backend_create(&w, SYM_PREC_FP64, S, &e);
    sym_backend *bx = sym_cpu_backend_create(&w, SYM_PREC_FP64, S, &e);
    if (!b64 || !b32 || !b1 || !bx) {
        CHECK(0, "backend: %s", e.msg);
        return;
    }
    float *x = malloc((size_t)S * c.features * sizeof *x);
    double o64[S * 4], o32[S * 4], o1[S * 4], ox[4], worst = 0, scale = 0;
    int32_t slots[S] = {0, 1, 2}, rev[S] = {2, 1, 0};
    int finite = 1, batch_same = 1, moved_same = 1;
    void *buf = malloc(b64->slot_bytes);
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < S * c.features; i++) x[i] = (float)normal();
        sym_backend_step(b64, S, slots, x, o64, &e);
        sym_backend_step(b32, S, slots, x, o32, &e);
        /* the same rows one at a time, in reverse order */
        for (int r = S - 1; r >= 0; r--) sym_backend_step(b1, 1, &rev[S - 1 - r], x + (size_t)rev[S - 1 - r] * c.features, o1 + 4 * rev[S - 1 - r], &e);
        for (int i = 0; i < S * 4; i++) {
            finite &= isfinite(o64[i]) && isfinite(o32[i]);
            worst = fmax(worst, fabs(o64[i] - o32[i]));
            scale = fmax(scale, fabs(o64[i]));
            batch_same &= o64[i] == o1[i];
        }
        /* slot 1 moves from b64 to bx at step 10 and is stepped in both after */
        if (step == 10) {
            sym_backend_copy_slot(b64, 1, bx, 2, &e);
        } else if (step > 10) {
            int32_t s2 = 2;
            sym_backend_step(bx, 1, &s2, x + (size_t)1 * c.features, ox, &e);
            for (int t = 0; t < 4; t++) moved_same &= ox[t] == o64[4 + t];
        }
    }
    CHECK(finite, "H=%d P=%d L=%d NH=%d F=%d: outputs finite over %d steps", c.hidden, c.proj, c.depth, c.heads, c.features, STEPS);
    CHECK(worst <= 1e-4, "H=%d P=%d L=%d NH=%d F=%d: fp32 within %.3g of fp64 (tolerance 1e-4; outputs up to %.3g)", c.hidden,
          c.proj, c.depth, c.heads, c.features, worst, scale);
    CHECK(batch_same, "H=%d: a row's result is bitwise the same alone or in a batch, in any order", c.hidden);
    CHECK(moved_same, "H=%d: a slot copied to another backend mid-stream continues bit for bit", c.hidden);
    int32_t dup[2] = {1, 1};
    sym_backend *b = b64;
    b->ops->export_slot(b, 1, buf, &e);
    int rc = sym_backend_step(b, 2, dup, x, o64, &e);
    void *after = malloc(b->slot_bytes);
    b->ops->export_slot(b, 1, after, &e);
    CHECK(rc != 0 && !memcmp(buf, after, b->slot_bytes), "a batch naming a slot twice is rejected and changes nothing (%s)", e.msg);
    int32_t oob = S;
    rc = sym_backend_step(b, 1, &oob, x, o64, &e);
    CHECK(rc != 0, "a slot out of range is rejected (%s)", e.msg);
    free(after);
    free(buf);
    free(x);
    sym_backend_destroy(b64), sym_backend_destroy(b32), sym_backend_destroy(b1), sym_backend_destroy(bx);
    sym_weights_free(&w);
}

/* RetNet's angle grows with the stream: after ten million steps the fp32
 * path must still track the fp64 path (theta is formed in fp64 in both). */
static void long_stream(void) {
    sym_model_config c = sym_model_config_small();
    sym_weights w;
    sym_err e = {{0}};
    if (sym_weights_synthetic(&w, &c, 5, &e)) {
        CHECK(0, "long stream: %s", e.msg);
        return;
    }
    sym_backend *b64 = sym_cpu_backend_create(&w, SYM_PREC_FP64, 1, &e);
    sym_backend *b32 = sym_cpu_backend_create(&w, SYM_PREC_FP32, 1, &e);
    sym_backend *bs[2] = {b64, b32};
    for (int i = 0; i < 2; i++) {
        void *slot = malloc(bs[i]->slot_bytes);
        bs[i]->ops->export_slot(bs[i], 0, slot, &e);
        sym_state_set_steps(slot, 10000000);
        bs[i]->ops->import_slot(bs[i], 0, slot, &e);
        free(slot);
    }
    float x[SYM_MAX_FEATURES];
    double o64[4], o32[4], worst = 0;
    int32_t s0 = 0, finite = 1;
    for (int step = 0; step < 40; step++) {
        for (int i = 0; i < c.features; i++) x[i] = (float)normal();
        sym_backend_step(b64, 1, &s0, x, o64, &e);
        sym_backend_step(b32, 1, &s0, x, o32, &e);
        for (int t = 0; t < 4; t++) {
            finite &= isfinite(o32[t]);
            worst = fmax(worst, fabs(o64[t] - o32[t]));
        }
    }
    CHECK(finite && worst <= 1e-4, "at step 10,000,000 the fp32 path stays within %.3g of fp64 (tolerance 1e-4)", worst);
    sym_backend_destroy(b64), sym_backend_destroy(b32);
    sym_weights_free(&w);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    full_size_keys(argv[1]);
    synthetic_distributions();
    shape_case((sym_model_config){64, 96, 3, 4, 79}, 11);
    shape_case((sym_model_config){192, 128, 1, 6, 17}, 12);
    shape_case((sym_model_config){128, 256, 2, 8, 79}, 13);
    long_stream();
    printf("%d passed, %d failed\n", passes, fails);
    return fails ? 1 : 0;
}
