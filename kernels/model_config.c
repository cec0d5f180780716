#include "kernels/model_config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

sym_model_config sym_model_config_small(void) { return (sym_model_config){128, 256, 2, 8, 79}; }
sym_model_config sym_model_config_full(void) { return (sym_model_config){2048, 4096, 12, 8, 79}; }

const char *sym_tower_name(int tower) {
    static const char *names[SYM_TOWERS] = {"xLSTM", "Mamba2", "RetNet", "Hawk"};
    return tower >= 0 && tower < SYM_TOWERS ? names[tower] : "?";
}

int sym_model_config_validate(const sym_model_config *c, sym_err *e) {
    if (c->hidden <= 0 || c->proj <= 0 || c->depth <= 0 || c->heads <= 0 || c->features <= 0)
        return sym_fail(e, "model config: hidden_size, proj_size, tower_depth, num_heads and num_features must be positive");
    if (c->hidden > 65536 || c->proj > 262144 || c->depth > 1024 || c->heads > 1024)
        return sym_fail(e, "model config: implausibly large dimension");
    if (c->features > SYM_MAX_FEATURES)
        return sym_fail(e, "model config: num_features %d exceeds the engine's maximum %d", c->features, SYM_MAX_FEATURES);
    if ((2 * c->hidden) % SYM_MAMBA_HEAD)
        return sym_fail(e, "model config: 2*hidden_size (%d) must be divisible by 64 (Mamba2 heads)", 2 * c->hidden);
    if (c->hidden % c->heads || c->hidden % 4)
        return sym_fail(e, "model config: hidden_size %d must be divisible by num_heads %d and by 4", c->hidden, c->heads);
    if ((c->hidden / c->heads) % 2)
        return sym_fail(e, "model config: hidden_size/num_heads = %d must be even (rotary pairs)", c->hidden / c->heads);
    if ((2 * c->hidden) % c->heads)
        return sym_fail(e, "model config: 2*hidden_size must be divisible by num_heads");
    if (c->heads % 2 || c->hidden % (c->heads / 2))
        return sym_fail(e, "model config: num_heads %d must be even and hidden_size divisible by num_heads/2 (sLSTM heads)", c->heads);
    if (c->hidden % 4)
        return sym_fail(e, "model config: hidden_size must be divisible by 4 (Hawk gate blocks)");
    return 0;
}

static int get_int(const cJSON *root, const char *key, int *out, sym_err *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return sym_fail(e, "model config: missing key \"%s\"", key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble)
        return sym_fail(e, "model config: \"%s\" must be an integer", key);
    *out = (int)v->valuedouble;
    return 0;
}

int sym_model_config_load(const char *path, sym_model_config *c, sym_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return sym_fail(e, "cannot open model config %s", path);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int toolong = !feof(f);
    fclose(f);
    if (toolong) return sym_fail(e, "model config %s: larger than 64 KiB", path);
    buf[n] = 0;
    cJSON *root = cJSON_Parse(buf);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sym_fail(e, "model config %s: not a JSON object", path);
    }
    int rc = get_int(root, "hidden_size", &c->hidden, e) || get_int(root, "proj_size", &c->proj, e) ||
             get_int(root, "tower_depth", &c->depth, e) || get_int(root, "num_heads", &c->heads, e) ||
             get_int(root, "num_features", &c->features, e);
    cJSON_Delete(root);
    if (rc) return sym_failctx(e, "%s", path);
    if (sym_model_config_validate(c, e)) return sym_failctx(e, "%s", path);
    return 0;
}
