/* symserve weights: writes MODEL.md's synthetic weights as a model folder
 * (config.json + weights.safetensors), or checks an existing folder the
 * way the engine loads it (sym_weights_load_dir: strict JSON config, a
 * valid safetensors file, exactly the tensors the config uses). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/commands.h"
#include "kernels/weights.h"

/* A whole decimal number in [lo, hi], or -1. */
static int parse_num(const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

static int usage(void) {
    fprintf(stderr,
            "usage: symserve weights --synthetic SEED [--size small|full] [--hidden H --proj P --depth L --heads NH]\n"
            "                        --out DIR\n"
            "       symserve weights --check DIR\n");
    return 2;
}

int sym_cmd_convert(int argc, char **argv) {
    const char *out = NULL, *check = NULL, *size = "small";
    long long seed = -1, hidden = 0, proj = 0, depth = 0, heads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) return usage(), 0;
        if (!v) return usage();
        int bad = 0;
        if (!strcmp(a, "--synthetic")) bad = parse_num(v, 0, LLONG_MAX, &seed);
        else if (!strcmp(a, "--size")) size = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--check")) check = v;
        else if (!strcmp(a, "--hidden")) bad = parse_num(v, 1, INT_MAX, &hidden);
        else if (!strcmp(a, "--proj")) bad = parse_num(v, 1, INT_MAX, &proj);
        else if (!strcmp(a, "--depth")) bad = parse_num(v, 1, INT_MAX, &depth);
        else if (!strcmp(a, "--heads")) bad = parse_num(v, 1, INT_MAX, &heads);
        else return usage();
        if (bad) {
            fprintf(stderr, "symserve weights: %s '%s' is not a whole number in range\n", a, v);
            return usage();
        }
        i++;
    }
    sym_err e = {{0}};
    sym_weights w;
    if (check) {
        if (sym_weights_load_dir(&w, check, &e)) {
            fprintf(stderr, "symserve weights: %s\n", e.msg);
            return 1;
        }
        printf("%s: %d tensors, %.1f M numbers, H=%d P=%d L=%d NH=%d F=%d: ok\n", check, w.n_specs,
               (double)w.arena_floats * 1e-6, w.cfg.hidden, w.cfg.proj, w.cfg.depth, w.cfg.heads, w.cfg.features);
        sym_weights_free(&w);
        return 0;
    }
    if (seed < 0 || !out) return usage();
    sym_model_config cfg;
    if (!strcmp(size, "small")) cfg = sym_model_config_small();
    else if (!strcmp(size, "full")) cfg = sym_model_config_full();
    else return usage();
    if (hidden) cfg.hidden = (int)hidden;
    if (proj) cfg.proj = (int)proj;
    if (depth) cfg.depth = (int)depth;
    if (heads) cfg.heads = (int)heads;
    if (sym_weights_synthetic(&w, &cfg, (uint64_t)seed, &e)) {
        fprintf(stderr, "symserve weights: %s\n", e.msg);
        return 1;
    }
    if (mkdir(out, 0755) && errno != EEXIST) {
        fprintf(stderr, "symserve weights: cannot create %s: %s\n", out, strerror(errno));
        sym_weights_free(&w);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", out);
    FILE *f = fopen(path, "w");
    int rc = !f;
    if (f) {
        fprintf(f, "{\n \"hidden_size\": %d,\n \"proj_size\": %d,\n \"tower_depth\": %d,\n \"num_heads\": %d,\n \"num_features\": %d\n}\n",
                cfg.hidden, cfg.proj, cfg.depth, cfg.heads, cfg.features);
        rc = fclose(f) != 0;
    }
    snprintf(path, sizeof path, "%s/weights.safetensors", out);
    if (rc || sym_weights_save(&w, path, &e)) {
        fprintf(stderr, "symserve weights: %s\n", rc ? "cannot write config.json" : e.msg);
        sym_weights_free(&w);
        return 1;
    }
    printf("wrote %s (%d tensors, %.1f M numbers)\n", out, w.n_specs, (double)w.arena_floats * 1e-6);
    sym_weights_free(&w);
    return 0;
}
