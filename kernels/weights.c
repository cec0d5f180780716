#include "kernels/weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/safetensors.h"
#include "kernels/synthetic_init.h"

int sym_weights_build_spec(sym_weights *w, sym_err *e); /* weights_spec.c */

int sym_weights_describe(sym_weights *w, const sym_model_config *cfg, sym_err *e) {
    memset(w, 0, sizeof *w);
    if (sym_model_config_validate(cfg, e)) return -1;
    w->cfg = *cfg;
    w->block_storage = calloc((size_t)SYM_TOWERS * (size_t)cfg->depth, sizeof *w->block_storage);
    if (!w->block_storage) return sym_fail(e, "out of memory");
    for (int t = 0; t < SYM_TOWERS; t++) w->towers[t].blocks = w->block_storage + (size_t)t * (size_t)cfg->depth;
    if (sym_weights_build_spec(w, e)) {
        sym_weights_free(w);
        return -1;
    }
    return 0;
}

int sym_weights_alloc(sym_weights *w, const sym_model_config *cfg, sym_err *e) {
    if (sym_weights_describe(w, cfg, e)) return -1;
    if (posix_memalign((void **)&w->arena, 64, w->arena_floats * sizeof(float))) {
        w->arena = NULL;
        sym_weights_free(w);
        return sym_fail(e, "cannot allocate %.2f GB for the weights", (double)w->arena_floats * 4e-9);
    }
    memset(w->arena, 0, w->arena_floats * sizeof(float));
    sym_weights_bind(w, w->arena);
    return 0;
}

void sym_weights_free(sym_weights *w) {
    free(w->arena);
    free(w->specs);
    free(w->block_storage);
    memset(w, 0, sizeof *w);
}

void sym_weights_bind(sym_weights *w, float *base) {
    for (int i = 0; i < w->n_specs; i++) *w->specs[i].bind = base + w->specs[i].offset;
}

const sym_tensor_spec *sym_weights_find(const sym_weights *w, const char *name) {
    for (int i = 0; i < w->n_specs; i++)
        if (!strcmp(w->specs[i].name, name)) return &w->specs[i];
    return NULL;
}

uint16_t sym_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float sym_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int sym_tensor_stored_bf16(const sym_tensor_spec *s) {
    if (s->tower < 0) return 0;
    if (s->ndim == 2) return 1;
    return s->ndim == 3 && s->shape[1] != 1 && s->shape[2] > 4;
}

void sym_weights_round_bf16(sym_weights *w, int tower_mask) {
    for (int i = 0; i < w->n_specs; i++) {
        const sym_tensor_spec *s = &w->specs[i];
        if (s->tower < 0 || !(tower_mask & (1 << s->tower)) || !sym_tensor_stored_bf16(s)) continue;
        float *p = w->arena + s->offset;
        for (int64_t k = 0; k < s->numel; k++) p[k] = sym_bf16_to_f32(sym_f32_to_bf16(p[k]));
    }
    w->bf16_mask |= tower_mask;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* The file's tensors the config does not use: an error naming the first
 * (in the file's order) and how many there are, with a hint when the file
 * has blocks the config's tower_depth does not reach. */
static int unused_tensors(const sym_safetensors *st, const char *used, const sym_model_config *cfg, const char *path,
                          sym_err *e) {
    int n = 0, first = -1, max_block = -1;
    for (int i = 0; i < st->n; i++) {
        int tower, block, at = 0;
        if (sscanf(st->tensors[i].name, "towers.%d.blocks.%d.%n", &tower, &block, &at) == 2 && at && block > max_block)
            max_block = block;
        if (used[i]) continue;
        if (first < 0) first = i;
        n++;
    }
    if (!n) return 0;
    char hint[96] = "";
    if (max_block >= cfg->depth)
        snprintf(hint, sizeof hint, " (is tower_depth %d right? the file has blocks 0..%d)", cfg->depth, max_block);
    if (n == 1) return sym_fail(e, "%s: 1 tensor the config does not use: '%s'%s", path, st->tensors[first].name, hint);
    return sym_fail(e, "%s: %d tensors the config does not use, first '%s'%s", path, n, st->tensors[first].name, hint);
}

int sym_weights_load_file(sym_weights *w, const sym_model_config *cfg, const char *path, sym_err *e) {
    sym_safetensors st;
    if (sym_st_open(&st, path, e)) return -1;
    char *used = calloc((size_t)(st.n ? st.n : 1), 1);
    const sym_st_tensor **found = NULL;
    if (!used) {
        sym_st_close(&st);
        return sym_fail(e, "out of memory");
    }
    if (sym_weights_alloc(w, cfg, e)) {
        free(used);
        sym_st_close(&st);
        return -1;
    }
    found = malloc((size_t)w->n_specs * sizeof *found);
    if (!found) {
        sym_fail(e, "out of memory");
        goto fail;
    }
    /* names, shapes and dtypes first: a wrong file is refused before any copy */
    for (int i = 0; i < w->n_specs; i++) {
        const sym_tensor_spec *s = &w->specs[i];
        const sym_st_tensor *t = found[i] = sym_st_find(&st, s->name);
        char want[64], got[64];
        shape_str(want, sizeof want, s->ndim, s->shape);
        if (!t) {
            sym_fail(e, "%s: missing tensor %s (expected shape %s)", path, s->name, want);
            goto fail;
        }
        used[t - st.tensors] = 1;
        int same = t->ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++) same = t->shape[d] == s->shape[d];
        if (!same) {
            shape_str(got, sizeof got, t->ndim, t->shape);
            sym_fail(e, "%s: tensor %s has shape %s, the config needs %s", path, s->name, got, want);
            goto fail;
        }
        if (t->dtype != SYM_DT_F32 && t->dtype != SYM_DT_BF16) {
            sym_fail(e, "%s: tensor %s has dtype %s; only F32 and BF16 are supported", path, s->name, t->dtype_name);
            goto fail;
        }
    }
    if (unused_tensors(&st, used, cfg, path, e)) goto fail;
    for (int i = 0; i < w->n_specs; i++) {
        const sym_tensor_spec *s = &w->specs[i];
        const sym_st_tensor *t = found[i];
        float *dst = w->arena + s->offset;
        if (t->dtype == SYM_DT_F32) {
            memcpy(dst, t->data, (size_t)s->numel * 4);
        } else {
            for (int64_t k = 0; k < s->numel; k++) {
                uint16_t h;
                memcpy(&h, t->data + 2 * k, 2);
                dst[k] = sym_bf16_to_f32(h);
            }
        }
        for (int64_t k = 0; k < s->numel; k++) {
            if (!isfinite(dst[k])) {
                sym_fail(e, "%s: tensor %s holds a non-finite value at index %lld", path, s->name, (long long)k);
                goto fail;
            }
        }
    }
    free(found);
    free(used);
    sym_st_close(&st);
    return 0;
fail:
    free(found);
    free(used);
    sym_st_close(&st);
    sym_weights_free(w);
    return -1;
}

int sym_weights_load_dir(sym_weights *w, const char *dir, sym_err *e) {
    char path[4096];
    sym_model_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (sym_model_config_load(path, &cfg, e)) return -1;
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    return sym_weights_load_file(w, &cfg, path, e);
}

/* ---- synthetic initialisation ---- */

uint64_t sym_weights_tensor_key(uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the tensor name */
    for (; *name; name++) h = (h ^ (uint8_t)*name) * 1099511628211ull;
    return sym_splitmix64(seed ^ h);
}

int sym_weights_synthetic(sym_weights *w, const sym_model_config *cfg, uint64_t seed, sym_err *e) {
    if (sym_weights_alloc(w, cfg, e)) return -1;
    int hd = sym_cfg_head_dim(cfg);
    for (int i = 0; i < w->n_specs; i++) {
        const sym_tensor_spec *s = &w->specs[i];
        float *p = w->arena + s->offset;
        uint64_t key = sym_weights_tensor_key(seed, s->name);
        for (int64_t k = 0; k < s->numel; k++) p[k] = sym_init_value((int)s->init, key, k, s->numel, s->fan_in, hd);
    }
    return 0;
}

/* ---- writing ---- */

int sym_weights_save(const sym_weights *w, const char *path, sym_err *e) {
    size_t cap = 16, len = 0; /* every entry's text fits its name + 160 bytes */
    for (int i = 0; i < w->n_specs; i++) cap += strlen(w->specs[i].name) + 160;
    char *hdr = malloc(cap);
    if (!hdr) return sym_fail(e, "out of memory");
    len += (size_t)snprintf(hdr + len, cap - len, "{");
    size_t off = 0;
    for (int i = 0; i < w->n_specs; i++) {
        const sym_tensor_spec *s = &w->specs[i];
        char shp[64];
        shape_str(shp, sizeof shp, s->ndim, s->shape);
        len += (size_t)snprintf(hdr + len, cap - len, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                                i ? "," : "", s->name, shp, off, off + (size_t)s->numel * 4);
        off += (size_t)s->numel * 4;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return sym_fail(e, "cannot create %s", path);
    }
    uint8_t n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)len >> (8 * i));
    int ok = fwrite(n8, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len;
    for (int i = 0; ok && i < w->n_specs; i++)
        ok = fwrite(w->arena + w->specs[i].offset, 4, (size_t)w->specs[i].numel, f) == (size_t)w->specs[i].numel;
    free(hdr);
    if (fclose(f) || !ok) return sym_fail(e, "%s: write failed", path);
    return 0;
}
