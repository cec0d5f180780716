/* The format each tower's recurrent state is stored in between steps, and
 * the rounding that puts a value into it. Arithmetic stays in the backend's
 * working type; after a step, every stored element of a tower's state is
 * rounded to its format. The CPU backend emulates it (the slot keeps its
 * element type and holds the rounded values exactly), which is how its
 * accuracy cost is measured (bench/accuracy/bench_state_precision.c); the
 * rounding functions are plain C so a GPU kernel can follow them bit for
 * bit.
 *
 * Formats:
 *  - native: no rounding, the slot's own element type (fp64 in the fp64
 *    CPU path, fp32 elsewhere);
 *  - fp32, bf16: IEEE binary32 and bfloat16 (8 significant bits, fp32's
 *    exponent range), round to nearest, ties to even;
 *  - fp16: IEEE binary16 (11 significant bits) of x / scale, with one scale
 *    per segment of a row: the row's first SYM_STATE_SEG (128) numbers,
 *    the next 128, ... (state_layout.h). fp16's range (largest 65504,
 *    normal down to 2^-14) is what needs it: the scale is the power of two
 *    2^s with s = floor(log2(segment's largest finite |x|)) - 14, so the
 *    segment's largest element maps into
 *    [2^14, 2^15) and can never overflow; s is clamped to -125..127, so the
 *    scale is an exact fp32 and every fp16 * scale is an exact fp32. A
 *    power of two makes the scaling itself exact: the only rounding is
 *    fp16's. Stored for real, a row of n elements takes 2n bytes plus a
 *    1-byte exponent a segment;
 *  - bf16-sr, fp16-sr: the same formats with stochastic rounding: x goes to
 *    one of its two neighbours in the format, the upper with probability
 *    (x - lower) / (upper - lower), so the rounding is unbiased. The random
 *    bits are a counter-based hash of (seed, the symbol's step count, the
 *    element's index in the slot), never a generator's state: a step is
 *    reproducible bit for bit, and the same wherever the symbol's state
 *    lives (slot, shard, GPU). All symbols draw the same bits at the same
 *    step count.
 * Every format keeps ±0, ±inf and NaN as they are (the sLSTM stabiliser
 * starts at -inf); a finite value beyond the format's largest rounds to
 * ±inf (bf16 and fp32 above 3.4e38 only; the scaled fp16 never overflows),
 * so rounding alone never makes a NaN.
 *
 * What is rounded: by default each tower's recurrence matrix, 98 % of the
 * state's bytes at full size (xLSTM: the mLSTM memory C [NH,dm,dm];
 * Mamba2: h [NM,64,128]; RetNet: S [NH,hd,hd]; Hawk: h [H]). With
 * all_parts, every element of the tower's state too: the conv windows, the
 * sLSTM's yprev, c, n, m, the mLSTM's n and m, RetNet's scale. The step
 * count in the slot's header is never rounded.
 *
 * A row, for fp16's scales, is the run of elements one head's update
 * writes: a row of C (dm), of Mamba2's h (128), of S (hd); a head's slice of
 * a per-channel vector or conv window; a per-head scalar vector ([NH]) and
 * the vectors of tower parts without heads (Hawk's h and conv window,
 * Mamba2's B/C conv windows) are one row each.
 *
 * The CUDA engine stores the matrices for real (state_layout.h's stored
 * layouts), in bf16 or fp16 with round to nearest: a value it stores is
 * the one these functions give for the fp32 value its step computed, and
 * a step reads it back exactly (sym_cuda_backend_create's sp). */
#ifndef SYM_STATE_PRECISION_H
#define SYM_STATE_PRECISION_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kernels/model_config.h"
#include "kernels/state_layout.h"

typedef enum {
    SYM_STATE_NATIVE = 0,
    SYM_STATE_FP32,
    SYM_STATE_BF16,
    SYM_STATE_BF16_SR,
    SYM_STATE_FP16,
    SYM_STATE_FP16_SR,
    SYM_STATE_FORMATS
} sym_state_format;

/* The stochastic rounding seed unless told otherwise. */
#define SYM_STATE_SR_SEED 0x5eedc0ffee15b00full

typedef struct {
    sym_state_format tower[SYM_TOWERS]; /* [xLSTM, Mamba2, RetNet, Hawk] */
    int all_parts;                      /* 0: the recurrence matrices only; 1: every element of the tower's state */
    uint64_t seed;                      /* stochastic rounding's seed */
} sym_state_precision;

/* Every tower native, the default seed: today's behaviour. */
void sym_state_precision_native(sym_state_precision *sp);
/* Whether any tower is rounded. */
int sym_state_precision_on(const sym_state_precision *sp);

/* Config names: "fp32", "bf16", "bf16-sr", "fp16", "fp16-sr" (native has
 * no name: it is what a null config gives). -1 for any other name. */
int sym_state_format_parse(const char *name, sym_state_format *f);
/* The name above, or "native". */
const char *sym_state_format_name(sym_state_format f);

/* ---- rounding one value ---- */

/* The random bits of element `index` of a slot at step count `step`. */
static inline uint64_t sym_state_sr_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint64_t sym_state_sr_step_key(uint64_t seed, int64_t step) {
    return sym_state_sr_mix(seed ^ ((uint64_t)step * 0x9e3779b97f4a7c15ull));
}
static inline uint64_t sym_state_sr_bits(uint64_t step_key, uint64_t index) {
    return sym_state_sr_mix(step_key + index * 0xd1b54a32d192ed03ull);
}

/* x rounded to a binary format of p significant bits (implicit bit
 * included) whose normal numbers have exponents emin..emax (below 2^emin:
 * subnormals of spacing 2^(emin-p+1)). sr 0: to nearest, ties to even; sr
 * 1: stochastic, `bits` its random bits. Requires 2 <= p <= 53, emin >=
 * -1021 + p, emax <= 1022. Keeps ±0, ±inf, NaN; an overflow gives ±inf. */
double sym_round_format(double x, int p, int emin, int emax, int sr, uint64_t bits);

static inline double sym_round_fp32(double x) { return sym_round_format(x, 24, -126, 127, 0, 0); }
static inline double sym_round_bf16(double x, int sr, uint64_t bits) { return sym_round_format(x, 8, -126, 127, sr, bits); }
/* fp16 of x / 2^s, times 2^s: a row's element for that row's s. */
static inline double sym_round_fp16_scaled(double x, int s, int sr, uint64_t bits) {
    return sym_round_format(x, 11, -14 + s, 15 + s, sr, bits);
}
/* The row's s (see fp16 above): from the largest finite |x| of the row; 0
 * for a row of zeros and infinities. */
int sym_fp16_row_exponent_f64(const double *x, size_t n);
int sym_fp16_row_exponent_f32(const float *x, size_t n);

/* ---- rounding a slot ---- */

/* Rounds tower t's stored state in one slot (of layout L) to sp's format
 * for t: the matrices, or every part with sp->all_parts. `step` is the
 * symbol's step count after the step that wrote the state (1 after its
 * first). Nothing happens for a native tower. */
void sym_state_round_tower_f64(const sym_state_precision *sp, const sym_state_layout *L, int t, double *slot, int64_t step);
void sym_state_round_tower_f32(const sym_state_precision *sp, const sym_state_layout *L, int t, float *slot, int64_t step);

/* Elements of one slot that sp rounds for tower t (the matrices, or all of
 * the tower's state). For sizes in reports. */
size_t sym_state_rounded_elems(const sym_state_precision *sp, const sym_state_layout *L, int t);

/* ---- stored for real (the CUDA engine) ---- */

/* How a backend that stores the state as sp says keeps each tower's
 * matrix (state_layout.h): native and fp32 as fp32, bf16 and fp16 in two
 * bytes. -1 with e naming the tower and format where a stored layout has
 * no place for it: stochastic rounding (its bits follow the element's
 * index in the CPU's slot), all_parts, and Hawk's h below fp32 (0.06 % of
 * the bytes at full size). */
int sym_state_stores(const sym_state_precision *sp, sym_mat_store mat[SYM_TOWERS], sym_err *e);

/* ---- the CPU backend's emulation ---- */

/* From its next step on, the CPU backend b rounds each tower's state after
 * every step as sp says (copied). A native sp restores today's behaviour
 * exactly. Slots keep their element type and size: export, import and
 * copy move the rounded values as they are. -1 with e when b is not a
 * CPU backend or sp holds an unknown format. */
struct sym_backend;
int sym_cpu_backend_set_state_precision(struct sym_backend *b, const sym_state_precision *sp, sym_err *e);

#endif
