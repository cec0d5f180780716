/* The engine fingerprint; see fingerprint.h. */
#include "state/fingerprint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MIX 0x100000001b3ull

static uint64_t mix(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (; n >= 8; n -= 8, b += 8) { /* a word at a time: a model is hundreds of MB */
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * MIX;
        h ^= h >> 29;
    }
    while (n--) h = (h ^ *b++) * MIX;
    return h;
}

static int mix_file(uint64_t *h, const char *dir, const char *name, sym_err *e) {
    char path[1200];
    static unsigned char buf[1 << 20];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return sym_fail(e, "%s: %s", path, strerror(errno));
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) *h = mix(*h, buf, n), total += n;
    int bad = ferror(f);
    fclose(f);
    if (bad) return sym_fail(e, "%s: read error", path);
    *h = mix(*h, &total, sizeof total);
    return 0;
}

int sym_state_fingerprint(const sym_config *cfg, int cuda, uint64_t *fp, sym_err *e) {
    uint64_t h = 0xcbf29ce484222325ull;
    const char tag[] = "symserve state 1";
    h = mix(h, tag, sizeof tag);
    h = mix(h, &cuda, sizeof cuda);
    for (int t = 0; t < SYM_TOWERS; t++) { /* as the engine resolves them (actors/model_backends.c) */
        int p = cfg->precision_set ? (int)cfg->tower_precision[t]
                : !cuda              ? SYM_PREC_FP64
                : t == SYM_TOWER_RETNET ? SYM_PREC_FP32
                                        : SYM_PREC_BF16;
        h = mix(h, &p, sizeof p);
    }
    if (cfg->state_precision_set) /* each tower's state storage (kernels/state_precision.h); native: as before */
        for (int t = 0; t < SYM_TOWERS; t++) {
            int f = (int)cfg->state_precision[t];
            h = mix(h, &f, sizeof f);
        }
    if (cfg->model_dir[0]) {
        if (mix_file(&h, cfg->model_dir, "config.json", e) || mix_file(&h, cfg->model_dir, "weights.safetensors", e))
            return sym_failctx(e, "state fingerprint");
    } else {
        h = mix(h, &cfg->synthetic_seed, sizeof cfg->synthetic_seed);
        h = mix(h, &cfg->synthetic_full, sizeof cfg->synthetic_full);
    }
    *fp = h;
    return 0;
}
