/* MODEL.md in fp32 arithmetic (what PyTorch's fp32 model does, up to the
 * order of summation), matched against expected_f64.csv to 1e-4. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_step.h"

static void trace_f32(sym_cpu_trace_fn fn, void *ctx, int t, int l, const char *point, const float *v, int n) {
    double *d = malloc((size_t)n * sizeof *d);
    if (!d) return;
    for (int i = 0; i < n; i++) d[i] = v[i];
    fn(ctx, t, l, point, d, n);
    free(d);
}

#define REAL float
#define SFX(name) name##_f32
#define EXP expf
#define LOG1P log1pf
#define SQRT sqrtf
#define TANH tanhf
#define ERF erff
#define POW powf
#define FABS fabsf
#define EPS_MACHINE FLT_EPSILON
#define TRACE(fn, ctx, t, l, point, v, n) trace_f32(fn, ctx, t, l, point, v, n)

#include "kernels/cpu/cpu_step_impl.h"

double sym_cpu_tower_f32(const sym_weights *w, int t, const sym_state_layout *L, float *slot, const float *features,
                         float *scratch, int M, sym_cpu_trace_fn trace, void *trace_ctx) {
    return tower_f32(w, t, L, slot, features, scratch, M, trace, trace_ctx);
}
