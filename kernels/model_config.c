#include "kernels/model_config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/json.h"

sym_model_config sym_model_config_small(void) { return (sym_model_config){128, 256, 2, 8, 79}; }
sym_model_config sym_model_config_full(void) { return (sym_model_config){2048, 4096, 12, 8, 79}; }

const char *sym_tower_name(int tower) {
    static const char *names[SYM_TOWERS] = {"xLSTM", "Mamba2", "RetNet", "Hawk"};
    return tower >= 0 && tower < SYM_TOWERS ? names[tower] : "?";
}

int sym_model_config_validate(const sym_model_config *c, sym_err *e) {
    if (c->hidden <= 0 || c->proj <= 0 || c->depth <= 0 || c->heads <= 0 || c->features <= 0)
        return sym_fail(e, "model config: hidden_size, proj_size, tower_depth, num_heads and num_features must be positive");
    if (c->hidden > SYM_MAX_HIDDEN)
        return sym_fail(e,
                        "model config: hidden_size %d exceeds the engine's maximum %d (the CUDA engine holds a row of "
                        "2*hidden_size floats in one thread block's registers)",
                        c->hidden, SYM_MAX_HIDDEN);
    if (c->proj > SYM_MAX_PROJ)
        return sym_fail(e, "model config: proj_size %d exceeds the engine's maximum %d", c->proj, SYM_MAX_PROJ);
    if (c->depth > SYM_MAX_DEPTH)
        return sym_fail(e, "model config: tower_depth %d exceeds the engine's maximum %d", c->depth, SYM_MAX_DEPTH);
    if (c->features > SYM_MAX_FEATURES)
        return sym_fail(e, "model config: num_features %d exceeds the engine's maximum %d", c->features, SYM_MAX_FEATURES);
    if ((2 * c->hidden) % SYM_MAMBA_HEAD)
        return sym_fail(e, "model config: hidden_size %d: 2*hidden_size (%d) must be divisible by 64 (Mamba2 heads of 64)",
                        c->hidden, 2 * c->hidden);
    if (c->hidden % c->heads)
        return sym_fail(e, "model config: hidden_size %d must be divisible by num_heads %d", c->hidden, c->heads);
    if ((c->hidden / c->heads) % 2)
        return sym_fail(e,
                        "model config: num_heads %d with hidden_size %d gives a head size of %d, which must be even "
                        "(rotary pairs)",
                        c->heads, c->hidden, c->hidden / c->heads);
    if ((c->hidden / c->heads) % 4)
        return sym_fail(e,
                        "model config: num_heads %d with hidden_size %d gives a head size of %d; the engine needs "
                        "hidden_size/num_heads divisible by 4 (RetNet state in float4)",
                        c->heads, c->hidden, c->hidden / c->heads);
    if (c->heads % 2)
        return sym_fail(e, "model config: num_heads %d must be even (the sLSTM has num_heads/2 heads)", c->heads);
    return 0;
}

/* An integer literal (no fraction, no exponent: "2.0" or "1e2" is refused
 * rather than guessed at), read exactly; its range is validate's business
 * once it fits an int. */
static int get_int(const cJSON *root, const char *key, int *out, sym_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return sym_fail(e, "model config: missing key \"%s\"", key);
    if (!sym_json_is_int(v))
        return sym_fail(e, "model config: \"%s\" must be an integer, written without fraction or exponent", key);
    int64_t x;
    if (sym_json_i64(v, &x) || x < INT_MIN || x > INT_MAX)
        return sym_fail(e, "model config: \"%s\" %.40s is out of range", key, v->valuestring);
    *out = (int)x;
    return 0;
}

int sym_model_config_load(const char *path, sym_model_config *c, sym_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return sym_fail(e, "cannot open model config %s", path);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    int toolong = n == sizeof buf && fgetc(f) != EOF, rerr = ferror(f);
    fclose(f);
    if (rerr) return sym_fail(e, "cannot read model config %s", path);
    if (toolong) return sym_fail(e, "model config %s: larger than 64 KiB", path);
    cJSON *root = sym_json_parse(buf, n, e);
    if (!root) return sym_failctx(e, "model config %s: not a JSON object", path);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sym_fail(e, "model config %s: not a JSON object", path);
    }
    sym_model_config m;
    int rc = get_int(root, "hidden_size", &m.hidden, e) || get_int(root, "proj_size", &m.proj, e) ||
             get_int(root, "tower_depth", &m.depth, e) || get_int(root, "num_heads", &m.heads, e) ||
             get_int(root, "num_features", &m.features, e);
    cJSON_Delete(root);
    if (rc) return sym_failctx(e, "%s", path);
    if (sym_model_config_validate(&m, e)) return sym_failctx(e, "%s", path);
    *c = m;
    return 0;
}
