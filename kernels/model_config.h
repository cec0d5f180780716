/* The shape of the four-tower model (docs/MODEL.md, "Configuration"), read
 * from a model folder's config.json and checked by sym_model_config_validate,
 * the one place that decides which shapes the engine takes: the CPU
 * reference and the CUDA engine both go through it (sym_state_layout_init),
 * so they accept and refuse the same configs, and a config they accept runs
 * correctly on both.
 *
 * The rules (H hidden_size, P proj_size, L tower_depth, NH num_heads, F
 * num_features; hd = H/NH the RetNet head size):
 *  - every key positive; H <= 4096 (the CUDA row kernels hold a row of 2H
 *    floats, the Mamba2 inner width, in one thread block's registers),
 *    P <= 262144, L <= 1024, F <= SYM_MAX_FEATURES (256, common/request.h:
 *    requests carry features inline);
 *  - 2H divisible by 64 (Mamba2 heads of 64; so H is a multiple of 32, and
 *    of 4 for Hawk's four gate blocks) -- MODEL.md;
 *  - H divisible by NH, hd even (rotary pairs) -- MODEL.md;
 *  - hd divisible by 4: the engine's own rule, stricter than MODEL.md's
 *    (the RetNet cell moves its state S [NH, hd, hd] as float4 columns);
 *    the mLSTM head size 2H/NH is then a multiple of 8;
 *  - NH even: the sLSTM has NH/2 heads (H is then divisible by NH/2 and 2H
 *    by NH, as MODEL.md asks).
 * Nothing else is assumed: any P and F within the bounds, any number of
 * Mamba2 heads (odd or even, 1 up), any depth. */
#ifndef SYM_MODEL_CONFIG_H
#define SYM_MODEL_CONFIG_H

#include "common/err.h"
#include "common/request.h" /* SYM_TOWERS, SYM_MAX_FEATURES */

#define SYM_MAX_HIDDEN 4096  /* the CUDA row kernels' widest row is 2H floats */
#define SYM_MAX_PROJ 262144
#define SYM_MAX_DEPTH 1024
#define SYM_MAMBA_HEAD 64    /* Mamba2 head size */
#define SYM_MAMBA_BC 128     /* Mamba2 B/C width */

/* The SYM_TOWERS towers, in the order of a prediction's outputs. */
enum { SYM_TOWER_XLSTM = 0, SYM_TOWER_MAMBA2 = 1, SYM_TOWER_RETNET = 2, SYM_TOWER_HAWK = 3 };

typedef struct {
    int hidden;   /* H  hidden_size */
    int proj;     /* P  proj_size */
    int depth;    /* L  tower_depth */
    int heads;    /* NH num_heads */
    int features; /* F  num_features */
} sym_model_config;

/* The golden shape (H=128, P=256, L=2, NH=8, F=79) and the competition shape
 * (H=2048, P=4096, L=12, NH=8, F=79). */
sym_model_config sym_model_config_small(void);
sym_model_config sym_model_config_full(void);

/* 0 when the config follows the rules above, else -1 with an error that
 * names the config key(s) and the rule broken. */
int sym_model_config_validate(const sym_model_config *c, sym_err *e);

/* Reads a config.json and validates it. The file is strict JSON
 * (common/json.h: one object, no duplicate key, nothing after it); the five
 * keys above are all required, each an integer literal ("2.0" and "1e2"
 * are refused, not rounded). Unknown keys are ignored, as the reference
 * writes more at times. On error c is left as it was. */
int sym_model_config_load(const char *path, sym_model_config *c, sym_err *e);

/* Derived sizes. */
static inline int sym_cfg_mamba_heads(const sym_model_config *c) { return 2 * c->hidden / SYM_MAMBA_HEAD; }
static inline int sym_cfg_head_dim(const sym_model_config *c) { return c->hidden / c->heads; }
static inline int sym_cfg_slstm_heads(const sym_model_config *c) { return c->heads / 2; }

const char *sym_tower_name(int tower);

#endif
