/* The shape of the four-tower model (docs/MODEL.md, "Configuration"), read
 * from a model folder's config.json and checked against MODEL.md's
 * constraints. */
#ifndef SYM_MODEL_CONFIG_H
#define SYM_MODEL_CONFIG_H

#include "common/err.h"

#define SYM_TOWERS 4         /* xLSTM, Mamba2, RetNet, Hawk: the output order */
#define SYM_MAX_FEATURES 256 /* requests carry features inline (plain data) */
#define SYM_MAMBA_HEAD 64    /* Mamba2 head size */
#define SYM_MAMBA_BC 128     /* Mamba2 B/C width */

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

/* 0 when every constraint of MODEL.md holds, else -1 naming the broken one. */
int sym_model_config_validate(const sym_model_config *c, sym_err *e);

/* Reads a config.json (the five keys above, all required, positive integers;
 * unknown keys are ignored as the reference writes more at times) and
 * validates it. */
int sym_model_config_load(const char *path, sym_model_config *c, sym_err *e);

/* Derived sizes. */
static inline int sym_cfg_mamba_heads(const sym_model_config *c) { return 2 * c->hidden / SYM_MAMBA_HEAD; }
static inline int sym_cfg_head_dim(const sym_model_config *c) { return c->hidden / c->heads; }
static inline int sym_cfg_slstm_heads(const sym_model_config *c) { return c->heads / 2; }

const char *sym_tower_name(int tower);

#endif
