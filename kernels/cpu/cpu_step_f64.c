/* MODEL.md in fp64: the reference that golden expected_f64.csv is matched
 * against to 1e-9. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_step.h"

#define REAL double
#define SFX(name) name##_f64
#define EXP exp
#define LOG1P log1p
#define SQRT sqrt
#define TANH tanh
#define ERF erf
#define POW pow
#define FABS fabs
#define EPS_MACHINE DBL_EPSILON
#define TRACE(fn, ctx, t, l, point, v, n) (fn)(ctx, t, l, point, v, n)

#include "kernels/cpu/cpu_step_impl.h"

double sym_cpu_tower_f64(const sym_weights *w, int t, const sym_state_layout *L, double *slot, const float *features,
                         double *scratch, int M, sym_cpu_trace_fn trace, void *trace_ctx) {
    return tower_f64(w, t, L, slot, features, scratch, M, trace, trace_ctx);
}
