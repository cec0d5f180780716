/* The model's weights on the host: every tensor MODEL.md names, bound to the
 * fields of one struct per layer kind, stored in one float arena in a fixed
 * order (the spec order below), so that a backend can copy the arena to a
 * device in one transfer and rebind the pointers by offset.
 *
 * The arena always holds fp32 values; a tower stored in bf16 holds the fp32
 * values of its bf16 rounding (sym_weights_round_bf16), so the CPU reference
 * can compute exactly what a bf16-storing GPU kernel computes. */
#ifndef SYM_WEIGHTS_H
#define SYM_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "kernels/model_config.h"

typedef struct { const float *w, *b; int out, in; } sym_linear;        /* w [out,in], b [out] or NULL */
typedef struct { const float *w, *b; int nb, bs; } sym_blocklinear;   /* w [nb,bs,bs], b [nb*bs] or NULL */
typedef struct { const float *w, *b; int channels; } sym_conv;         /* w [C,1,4], b [C] */
typedef struct { const float *w, *b; int n; } sym_norm;                /* w [n], b [n] or NULL */

typedef struct {
    /* sLSTM */
    sym_norm s_norm;
    sym_conv s_conv;
    sym_blocklinear s_ig_in, s_fg_in, s_zg_in, s_og_in; /* NS blocks, no bias */
    sym_blocklinear s_ig_st, s_fg_st, s_zg_st, s_og_st; /* NS blocks, bias [H] */
    sym_norm s_gn;                                      /* GroupNorm, NS groups */
    /* mLSTM */
    sym_norm m_norm;
    sym_linear m_x, m_gate;       /* [I,H] */
    sym_blocklinear m_q, m_k, m_v; /* I/4 blocks of 4x4 */
    sym_conv m_conv;              /* I channels */
    sym_linear m_igate, m_fgate;  /* [NH,3I] + bias */
    sym_norm m_outnorm;           /* GroupNorm, NH groups over I */
    sym_linear m_down;            /* [H,I] */
    const float *m_skip;          /* [I] */
    sym_norm final_norm;          /* LayerNorm [H] */
} sym_xlstm_weights;

typedef struct {
    sym_linear in_proj, z_proj, b_proj, c_proj, dt_proj; /* dt_proj has a bias */
    sym_conv conv_x, conv_b, conv_c;
    const float *a, *d; /* [NM] */
    sym_norm norm;      /* RMSNorm [I], eps 1e-5 */
    sym_linear out_proj;
} sym_mamba2_weights;

typedef struct {
    sym_linear q, k, v, g, out;
    const float *decay; /* [NH] */
    const float *angle; /* [hd] */
} sym_retnet_weights;

typedef struct {
    sym_linear gate, rec, out;
    sym_conv conv;
    sym_blocklinear ig, rg; /* 4 blocks, no bias */
    const float *a;         /* [H] */
} sym_hawk_weights;

typedef struct {
    sym_norm norm1, norm2;
    sym_linear fc1, fc2;
    sym_xlstm_weights xlstm;   /* tower 0 only */
    sym_mamba2_weights mamba2; /* tower 1 only */
    sym_retnet_weights retnet; /* tower 2 only */
    sym_hawk_weights hawk;     /* tower 3 only */
} sym_block_weights;

typedef struct {
    sym_linear up, down;
    sym_block_weights *blocks; /* [L] */
} sym_tower_weights;

/* How MODEL.md's synthetic initialisation draws a tensor (the numbering is
 * used by synthetic_init.h). */
typedef enum {
    SYM_INIT_UNIFORM_FANIN, /* uniform in ±1/sqrt(fan_in): linear weights and biases, block weights */
    SYM_INIT_UNIFORM_HALF,  /* uniform in ±1/2: depthwise conv weight and bias */
    SYM_INIT_ONES,
    SYM_INIT_ZEROS,
    SYM_INIT_MAMBA_A,       /* -uniform(1,16) */
    SYM_INIT_RETNET_DECAY,  /* 1 - 2^(-5-n) */
    SYM_INIT_RETNET_ANGLE,  /* angle[2m] = angle[2m+1] = 10000^(-m/(hd/2-1)) */
    SYM_INIT_HAWK_A,        /* u^(1/8), u uniform in [0.9, 0.999] */
    SYM_INIT_FGATE_BIAS,    /* linspace(3, 6, NH) */
    SYM_INIT_IGATE_BIAS,    /* normal(0, 0.1) */
} sym_init;

typedef struct {
    char name[192]; /* prefix (< 96) + local name (< 96) */
    int ndim;
    int64_t shape[3];
    int64_t numel;
    size_t offset;   /* in floats, from the arena's start (64-byte aligned) */
    int tower;       /* 0..3, or -1 for the shared output projection */
    sym_init init;
    int fan_in;      /* for SYM_INIT_UNIFORM_FANIN */
    const float **bind; /* the struct field this tensor's data pointer goes to */
} sym_tensor_spec;

typedef struct sym_weights {
    sym_model_config cfg;
    sym_tower_weights towers[SYM_TOWERS];
    sym_linear out_proj; /* [1,H] + bias, shared by the towers */
    /* storage */
    float *arena;
    size_t arena_floats;
    sym_tensor_spec *specs;
    int n_specs;
    sym_block_weights *block_storage;
    int bf16_mask; /* bit t set: tower t was rounded to bf16 */
} sym_weights;

/* The tensor list of a config without allocating the arena (specs and
 * block storage only; arena NULL). Free with sym_weights_free. */
int sym_weights_describe(sym_weights *w, const sym_model_config *cfg, sym_err *e);

/* Lays out the spec and allocates a zeroed arena; pointers are bound. */
int sym_weights_alloc(sym_weights *w, const sym_model_config *cfg, sym_err *e);
void sym_weights_free(sym_weights *w);

/* Points every bound field at base + spec offset (used to rebind a copy of
 * the arena, e.g. on a device, into another sym_weights struct). */
void sym_weights_bind(sym_weights *w, float *base);

/* Loads a model folder: DIR/config.json (sym_model_config_load) and
 * DIR/weights.safetensors (a valid safetensors file: safetensors.h). The
 * file holds exactly the tensors the config needs, each with its exact
 * shape, an F32 or BF16 dtype and finite values; the error names the
 * offending tensor. A tensor the config does not use is an error too (it
 * names the first and counts them): a file of 3 blocks read with
 * tower_depth 2 would otherwise run a model its author never trained. */
int sym_weights_load_dir(sym_weights *w, const char *dir, sym_err *e);
int sym_weights_load_file(sym_weights *w, const sym_model_config *cfg, const char *path, sym_err *e);

/* MODEL.md's synthetic initialisation from a seed (any config). Deterministic
 * for a seed, config and thread count-independent. */
int sym_weights_synthetic(sym_weights *w, const sym_model_config *cfg, uint64_t seed, sym_err *e);

/* The key of a tensor's random stream (see synthetic_init.h). */
uint64_t sym_weights_tensor_key(uint64_t seed, const char *name);

/* Writes the arena as a safetensors file (F32), the inverse of load: the
 * tensors in spec order, their byte ranges contiguous from 0, the header
 * padded with spaces to a multiple of 8. */
int sym_weights_save(const sym_weights *w, const char *path, sym_err *e);

/* Whether a bf16-storing backend stores this tensor in bf16: the matrices
 * (linear weights, and block-diagonal weights with blocks wider than 4).
 * Vectors (norms, biases, conv taps, RetNet decay/angle, Hawk a) and the
 * mLSTM's 4x4 blocks stay fp32: rounding decay or a (within 2^-9 of 1) to
 * bf16 would turn them into 1.0 and change the model, not just its
 * precision. The shared output projection (tower -1) is never bf16. */
int sym_tensor_stored_bf16(const sym_tensor_spec *s);

/* Rounds, in place and to nearest even, the tensors that a bf16 store keeps
 * in bf16 (sym_tensor_stored_bf16) for the towers in tower_mask: the CPU
 * reference then computes exactly what a bf16-storing GPU computes. */
void sym_weights_round_bf16(sym_weights *w, int tower_mask);

const sym_tensor_spec *sym_weights_find(const sym_weights *w, const char *name);

/* fp32 <-> bf16, round to nearest even, NaN kept quiet. */
uint16_t sym_f32_to_bf16(float f);
float sym_bf16_to_f32(uint16_t h);

#endif
