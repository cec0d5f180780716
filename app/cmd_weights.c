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

#include "app/cli_args.h"
#include "app/commands.h"
#include "kernels/weights.h"

static const char usage_text[] =
    "usage: symserve weights --synthetic SEED [--size small|full] [--hidden H --proj P --depth L --heads NH]\n"
    "                        --out DIR\n"
    "       symserve weights --check DIR\n"
    "  --size: the shape of MODEL.md's small (golden, the default) or full model; --hidden, --proj, --depth\n"
    "      and --heads (each >= 1) override its numbers\n";

enum { O_SYNTHETIC = 1, O_SIZE, O_OUT, O_CHECK, O_HIDDEN, O_PROJ, O_DEPTH, O_HEADS };

static const struct option options[] = {
    {"synthetic", required_argument, NULL, O_SYNTHETIC},
    {"size", required_argument, NULL, O_SIZE},
    {"out", required_argument, NULL, O_OUT},
    {"check", required_argument, NULL, O_CHECK},
    {"hidden", required_argument, NULL, O_HIDDEN},
    {"proj", required_argument, NULL, O_PROJ},
    {"depth", required_argument, NULL, O_DEPTH},
    {"heads", required_argument, NULL, O_HEADS},
    {"help", no_argument, NULL, 'h'},
    {0},
};

static const char *const sizes[] = {"small", "full", NULL};

typedef struct {
    const char *out, *check;
    int synthetic, size; /* size: an index of sizes[] */
    uint64_t seed;
    int hidden, proj, depth, heads; /* 0: the size's own */
} weights_opts;

/* 0: options read; CLI_HELP; CLI_BAD: the problem printed. */
static int parse(int argc, char **argv, weights_opts *o) {
    *o = (weights_opts){0};
    cli_args a;
    cli_start(&a, "weights", argc, argv, options);
    int c, bad = 0, others = 0; /* options other than --check given */
    while (!bad && (c = cli_next(&a)) != CLI_END) {
        others += c != O_CHECK;
        switch (c) {
        case O_SYNTHETIC:
            o->synthetic = 1;
            bad = cli_u64(&a, optarg, &o->seed);
            break;
        case O_SIZE: bad = cli_choice(&a, optarg, sizes, &o->size); break;
        case O_OUT: o->out = optarg; break;
        case O_CHECK: o->check = optarg; break;
        case O_HIDDEN: bad = cli_int(&a, optarg, 1, INT_MAX, &o->hidden); break;
        case O_PROJ: bad = cli_int(&a, optarg, 1, INT_MAX, &o->proj); break;
        case O_DEPTH: bad = cli_int(&a, optarg, 1, INT_MAX, &o->depth); break;
        case O_HEADS: bad = cli_int(&a, optarg, 1, INT_MAX, &o->heads); break;
        case 'h': return CLI_HELP;
        default: return CLI_BAD;
        }
    }
    if (bad) return CLI_BAD;
    if (o->check) return others ? cli_error(&a, "--check DIR takes no other option") : 0;
    if (!o->synthetic) return cli_error(&a, "give --synthetic SEED (with --out DIR) or --check DIR");
    if (!o->out) return cli_error(&a, "--out DIR is required");
    return 0;
}

int sym_cmd_convert(int argc, char **argv) {
    weights_opts o;
    int parsed = parse(argc, argv, &o);
    if (parsed) return cli_usage(parsed, usage_text);
    sym_err e = {{0}};
    sym_weights w;
    if (o.check) {
        if (sym_weights_load_dir(&w, o.check, &e)) {
            fprintf(stderr, "symserve weights: %s\n", e.msg);
            return 1;
        }
        printf("%s: %d tensors, %.1f M numbers, H=%d P=%d L=%d NH=%d F=%d: ok\n", o.check, w.n_specs,
               (double)w.arena_floats * 1e-6, w.cfg.hidden, w.cfg.proj, w.cfg.depth, w.cfg.heads, w.cfg.features);
        sym_weights_free(&w);
        return 0;
    }
    sym_model_config cfg = strcmp(sizes[o.size], "full") ? sym_model_config_small() : sym_model_config_full();
    if (o.hidden) cfg.hidden = o.hidden;
    if (o.proj) cfg.proj = o.proj;
    if (o.depth) cfg.depth = o.depth;
    if (o.heads) cfg.heads = o.heads;
    if (sym_weights_synthetic(&w, &cfg, o.seed, &e)) {
        fprintf(stderr, "symserve weights: %s\n", e.msg);
        return 1;
    }
    if (mkdir(o.out, 0755) && errno != EEXIST) {
        fprintf(stderr, "symserve weights: cannot create %s: %s\n", o.out, strerror(errno));
        sym_weights_free(&w);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", o.out);
    FILE *f = fopen(path, "w");
    int rc = !f;
    if (f) {
        fprintf(f, "{\n \"hidden_size\": %d,\n \"proj_size\": %d,\n \"tower_depth\": %d,\n \"num_heads\": %d,\n \"num_features\": %d\n}\n",
                cfg.hidden, cfg.proj, cfg.depth, cfg.heads, cfg.features);
        rc = fclose(f) != 0;
    }
    snprintf(path, sizeof path, "%s/weights.safetensors", o.out);
    if (rc || sym_weights_save(&w, path, &e)) {
        fprintf(stderr, "symserve weights: %s\n", rc ? "cannot write config.json" : e.msg);
        sym_weights_free(&w);
        return 1;
    }
    printf("wrote %s (%d tensors, %.1f M numbers)\n", o.out, w.n_specs, (double)w.arena_floats * 1e-6);
    sym_weights_free(&w);
    return 0;
}
