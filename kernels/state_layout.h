/* Where each part of one symbol's recurrent state lives inside its slot.
 *
 * A slot is one contiguous run of `numel` state elements (fp32 on the GPU and
 * in the fp32 CPU path, fp64 in the fp64 CPU path), so it can be copied,
 * exported or migrated as a unit. Element offsets below are the same for
 * both element types. The first SYM_STATE_HEADER elements are a header whose
 * first 8 bytes hold the symbol's step count as an int64 (the RetNet
 * `offset`, shared by all RetNet blocks since they advance together).
 * Every part starts on a 32-element boundary (128 bytes in fp32).
 *
 * A layout may store a tower's recurrence matrix (the mLSTM's C, Mamba2's
 * h, RetNet's S) in two bytes a number (sym_state_layout_init_stored, the
 * CUDA engine's slots under `state_precision`): the matrix then takes half
 * its elements, the 2-byte numbers packed two to an element, and fp16
 * adds one signed byte per segment of up to SYM_STATE_SEG numbers of a
 * matrix row: the segment's scale exponent s (kernels/state_precision.h),
 * four to an element. Offsets stay in elements of 4 bytes. */
#ifndef SYM_STATE_LAYOUT_H
#define SYM_STATE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "kernels/model_config.h"

#define SYM_STATE_HEADER 32

typedef struct {
    /* xLSTM (tower 0): sLSTM conv [H,3], yprev [H], c [H], n [H], m [H];
     * mLSTM conv [I,3], C [NH,dm,dm], n [NH,dm], m [NH] */
    size_t s_conv, s_y, s_c, s_n, s_m, m_conv, m_C, m_n, m_m;
    /* Mamba2 (tower 1): conv states [I,3], [128,3], [128,3]; h [NM,64,128] */
    size_t mb_conv_x, mb_conv_b, mb_conv_c, mb_h;
    /* RetNet (tower 2): scale [NH], S [NH,hd,hd] */
    size_t rt_scale, rt_S;
    /* Hawk (tower 3): conv [H,3], h [H] */
    size_t hk_conv, hk_h;
    /* fp16 matrices only: their segments' exponents (int8 [rows][segs]) */
    size_t m_C_exp, mb_h_exp, rt_S_exp;
} sym_block_state;

/* How a layout stores a tower's recurrence matrix. */
typedef enum { SYM_MAT_F32 = 0, SYM_MAT_BF16, SYM_MAT_F16 } sym_mat_store;

/* Numbers of a matrix row one fp16 scale covers: a row of more is cut into
 * segments of this many from its start (the last may be shorter). 128 is
 * a warp's share of a row in the CUDA Mamba2 cell (32 lanes x 4) and a
 * half-warp's in the matrix-state cells (16 lanes x 8,
 * kernels/cuda/towers/matrix_store.cuh). */
#define SYM_STATE_SEG 128

typedef struct {
    sym_model_config cfg;
    size_t numel;            /* elements per slot, header included */
    sym_block_state *blocks; /* [L] */
    sym_mat_store mat[SYM_TOWERS]; /* each tower's matrix storage (Hawk's h: always F32) */
} sym_state_layout;

/* Every part in the slot's element type. */
int sym_state_layout_init(sym_state_layout *s, const sym_model_config *cfg, sym_err *e);
/* The matrices of towers 0..2 stored as mat[t] says (mat[SYM_TOWER_HAWK]
 * must be F32); the element type is fp32. */
int sym_state_layout_init_stored(sym_state_layout *s, const sym_model_config *cfg, const sym_mat_store mat[SYM_TOWERS],
                                 sym_err *e);
/* Segments per row of a matrix whose rows hold `row` numbers. */
static inline size_t sym_state_segs(size_t row) { return (row + SYM_STATE_SEG - 1) / SYM_STATE_SEG; }
void sym_state_layout_free(sym_state_layout *s);

/* Elements [*begin, *end) of tower t's state in a slot: the layout keeps
 * each tower's state (all its blocks) in one run, after the header. */
void sym_state_tower_range(const sym_state_layout *s, int t, size_t *begin, size_t *end);

/* Writes MODEL.md's initial state into one slot: zeros everywhere, the
 * sLSTM stabiliser m = -inf, step count 0. */
void sym_state_reset_f32(const sym_state_layout *s, float *slot);
void sym_state_reset_f64(const sym_state_layout *s, double *slot);

static inline int64_t sym_state_steps(const void *slot) {
    int64_t v;
    memcpy(&v, slot, sizeof v);
    return v;
}
static inline void sym_state_set_steps(void *slot, int64_t v) { memcpy(slot, &v, sizeof v); }

#endif
