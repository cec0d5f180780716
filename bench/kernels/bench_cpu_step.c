/* CPU reference step time: median ms per step of B rows, for a model shape
 * (small: the golden shape; full: the competition shape, 7.94 GB of fp32
 * weights) in fp64 and fp32 arithmetic. Inputs are fresh standard-normal
 * features; the state is warmed by a few steps first so nothing is timed on
 * zeros.
 *
 *   bench_cpu_step [small|full] [B] [steps]   */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "kernels/backend.h"
#include "kernels/weights.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float normal(void) {
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        u[i] = ((double)(rng >> 11) + 0.5) * 0x1.0p-53;
    }
    return (float)(sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]));
}

int main(int argc, char **argv) {
    const char *size = argc > 1 ? argv[1] : "small";
    int B = argc > 2 ? atoi(argv[2]) : 1, steps = argc > 3 ? atoi(argv[3]) : 20;
    sym_model_config cfg = strcmp(size, "full") ? sym_model_config_small() : sym_model_config_full();
    sym_weights w;
    sym_err e = {{0}};
    double t0 = sym_now_s();
    if (sym_weights_synthetic(&w, &cfg, 1, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    double gen_s = sym_now_s() - t0;
    printf("# %s model (H=%d P=%d L=%d), synthetic weights generated in %.1f s, B=%d, %d timed steps\n", size, cfg.hidden,
           cfg.proj, cfg.depth, gen_s, B, steps);
    printf("%-9s %4s %10s %10s %10s\n", "precision", "B", "median_ms", "min_ms", "req_per_s");
    sym_precision precs[2] = {SYM_PREC_FP64, SYM_PREC_FP32};
    for (int p = 0; p < 2; p++) {
        sym_backend *b = sym_cpu_backend_create(&w, precs[p], B, &e);
        if (!b) return fprintf(stderr, "%s\n", e.msg), 1;
        int32_t *slots = malloc((size_t)B * sizeof *slots);
        float *x = malloc((size_t)B * cfg.features * sizeof *x);
        double *out = malloc((size_t)B * 4 * sizeof *out), *ms = malloc((size_t)steps * sizeof *ms);
        for (int i = 0; i < B; i++) slots[i] = i;
        for (int s = -3; s < steps; s++) {
            for (int i = 0; i < B * cfg.features; i++) x[i] = normal();
            double a = sym_now_s();
            if (sym_backend_step(b, B, slots, x, out, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
            if (s >= 0) ms[s] = (sym_now_s() - a) * 1e3;
        }
        qsort(ms, (size_t)steps, sizeof *ms, cmp);
        printf("%-9s %4d %10.3f %10.3f %10.1f\n", b->ops->name, B, ms[steps / 2], ms[0], B * 1e3 / ms[steps / 2]);
        sym_backend_destroy(b);
        free(slots), free(x), free(out), free(ms);
    }
    sym_weights_free(&w);
    return 0;
}
