/* Weights and backends of the configured model; see model_backends.h. */
#include "actors/model_backends.h"

#include <stdlib.h>

#include "common/clock.h"
#include "common/log.h"
#include "kernels/cuda_backend.h"
#include "kernels/split_backend.h"
#include "kernels/state_precision.h"
#include "kernels/weights.h"

struct sym_model_backends {
    sym_config cfg;
    sym_weights w;
    int have_weights;
    int cpu_precision; /* cpu: fp64, or fp32 when every tower asks for it */
    sym_precision cuda_prec[SYM_TOWERS];
    sym_mat_store cuda_mat[SYM_TOWERS]; /* how the CUDA engine stores each tower's matrix (state_precision) */
    int use_cuda;
    struct sym_device_weights *placed; /* until sym_model_backends_placed_done */
};

/* The device of part j of shard i: shards take consecutive runs of
 * tower_split entries of shards.devices, wrapping around. */
static int part_device(const sym_config *c, int shard, int part) {
    return c->shard_devices[(shard * c->tower_split + part) % c->n_shard_devices];
}

/* The config's state_precision (all native when not set). */
static void config_state_precision(const sym_config *c, sym_state_precision *sp) {
    sym_state_precision_native(sp);
    if (c->state_precision_set)
        for (int t = 0; t < SYM_TOWERS; t++) sp->tower[t] = c->state_precision[t];
}

static sym_backend *one_backend(sym_model_backends *g, int dev, sym_err *e) {
    if (!g->use_cuda) {
        sym_backend *b = sym_cpu_backend_create(&g->w, (sym_precision)g->cpu_precision, sym_config_slots_per_shard(&g->cfg), e);
        if (b && sym_cpu_backend_set_threads(b, g->cfg.cpu_threads, e)) {
            sym_backend_destroy(b);
            return NULL;
        }
        if (b && g->cfg.state_precision_set) {
            sym_state_precision sp;
            config_state_precision(&g->cfg, &sp);
            if (sym_cpu_backend_set_state_precision(b, &sp, e)) {
                sym_backend_destroy(b);
                return NULL;
            }
        }
        return b;
    }
    if (sym_cuda_device_weights_has(g->placed, dev))
        return sym_cuda_backend_create_placed(g->placed, g->cuda_prec, g->cuda_mat, dev,
                                              sym_config_slots_per_shard(&g->cfg), g->cfg.max_batch, &g->cfg.cuda, e);
    return sym_cuda_backend_create(&g->w, g->cuda_prec, g->cuda_mat, dev, sym_config_slots_per_shard(&g->cfg),
                                   g->cfg.max_batch, &g->cfg.cuda, e);
}

/* A shard's backend: one, or tower_split parts that each step some towers. */
sym_backend *sym_model_backends_make(sym_model_backends *g, int shard, sym_err *e) {
    int n = g->cfg.tower_split, masks[SYM_MAX_SPLIT];
    if (n == 1) return one_backend(g, part_device(&g->cfg, shard, 0), e);
    sym_backend *parts[SYM_MAX_SPLIT];
    if (sym_split_masks(n, masks)) {
        sym_fail(e, "tower_split %d: 1, 2 or 4", n);
        return NULL;
    }
    for (int j = 0; j < n; j++) {
        if (!(parts[j] = one_backend(g, part_device(&g->cfg, shard, j), e))) {
            for (int k = 0; k < j; k++) sym_backend_destroy(parts[k]);
            sym_failctx(e, "tower split part %d", j);
            return NULL;
        }
    }
    sym_info("shard %d: towers split over %d parts", shard, n);
    return sym_split_backend_create(parts, masks, n, e);
}

/* The weights onto every GPU that the first shards use, once per GPU (a
 * broadcast between GPUs, not one host upload per shard). One shard
 * uploads its own: the placed copy would only take room from its slots. */
static int place_weights(sym_model_backends *g, sym_err *e) {
    const sym_config *c = &g->cfg;
    if (c->shard_count * c->tower_split == 1) return 0;
    int devs[SYM_MAX_PLACE_DEVICES], n = 0;
    for (int i = 0; i < c->shard_count * c->tower_split; i++) {
        int d = part_device(c, i / c->tower_split, i % c->tower_split), seen = 0;
        for (int k = 0; k < n; k++) seen |= devs[k] == d;
        if (!seen && n < SYM_MAX_PLACE_DEVICES) devs[n++] = d;
    }
    uint64_t t0 = sym_now_ns();
    g->placed = sym_cuda_weights_place(&g->w, devs, n, SYM_PLACE_AUTO, e);
    if (!g->placed) return -1;
    sym_info("weights placed on %d GPU%s in %.0f ms", n, n > 1 ? "s" : "", (double)(sym_now_ns() - t0) * 1e-6);
    return 0;
}

/* Picks the backend kind and precisions, loads or makes the weights. */
static int prepare_model(sym_model_backends *g, sym_err *e) {
    const sym_config *c = &g->cfg;
    g->use_cuda = c->backend == SYM_BACKEND_CUDA || (c->backend == SYM_BACKEND_AUTO && sym_cuda_device_count() > 0);
    if (g->use_cuda) {
        sym_state_precision sp;
        config_state_precision(c, &sp);
        if (sym_state_stores(&sp, g->cuda_mat, e)) return sym_failctx(e, "config key 'state_precision' on cuda");
    }
    if (g->use_cuda && sym_cuda_device_count() <= 0) return sym_fail(e, "backend cuda: no CUDA device");
    if (g->use_cuda) {
        for (int t = 0; t < SYM_TOWERS; t++) {
            g->cuda_prec[t] = c->precision_set ? c->tower_precision[t]
                              : t == SYM_TOWER_RETNET ? SYM_PREC_FP32 : SYM_PREC_BF16;
            if (g->cuda_prec[t] == SYM_PREC_FP64) return sym_fail(e, "precision fp64 is not available on cuda (fp32, bf16, mixed)");
        }
        for (int i = 0; i < c->n_shard_devices; i++)
            if (c->shard_devices[i] >= sym_cuda_device_count())
                return sym_fail(e, "config key 'shards.devices': device %d does not exist (%d present)",
                                c->shard_devices[i], sym_cuda_device_count());
    }
    if (c->model_dir[0]) {
        if (sym_weights_load_dir(&g->w, c->model_dir, e)) return -1;
    } else {
        sym_model_config mc = c->synthetic_full ? sym_model_config_full() : sym_model_config_small();
        /* with a GPU, draw the same numbers there: seconds instead of a minute at full size */
        if (g->use_cuda) {
            if (sym_weights_alloc(&g->w, &mc, e)) return -1;
            if (sym_cuda_synthetic_to_host(&g->w, c->synthetic_seed, c->shard_devices[0], e)) {
                sym_weights_free(&g->w);
                return -1;
            }
        } else if (sym_weights_synthetic(&g->w, &mc, c->synthetic_seed, e)) {
            return -1;
        }
    }
    g->have_weights = 1;
    if (g->use_cuda && place_weights(g, e)) return -1;
    if (!g->use_cuda) {
        /* cpu: fp64 unless told; bf16 towers mean the fp64 reference of
         * bf16 storage (weights rounded, arithmetic fp64) */
        int mask = 0, all32 = 1;
        for (int t = 0; t < SYM_TOWERS; t++) {
            if (c->tower_precision[t] == SYM_PREC_BF16) mask |= 1 << t;
            if (c->tower_precision[t] != SYM_PREC_FP32) all32 = 0;
        }
        g->cpu_precision = SYM_PREC_FP64;
        if (c->precision_set && mask) sym_weights_round_bf16(&g->w, mask);
        else if (c->precision_set && all32) g->cpu_precision = SYM_PREC_FP32;
    }
    return 0;
}

sym_model_backends *sym_model_backends_create(const sym_config *cfg, sym_err *e) {
    sym_model_backends *g = calloc(1, sizeof *g);
    if (!g) {
        sym_fail(e, "out of memory for the model");
        return NULL;
    }
    g->cfg = *cfg;
    if (prepare_model(g, e)) {
        sym_model_backends_destroy(g);
        return NULL;
    }
    return g;
}

void sym_model_backends_placed_done(sym_model_backends *g) {
    sym_cuda_device_weights_free(g->placed);
    g->placed = NULL;
}

const sym_model_config *sym_model_backends_model(const sym_model_backends *g) { return &g->w.cfg; }
int sym_model_backends_cuda(const sym_model_backends *g) { return g->use_cuda; }

void sym_model_backends_destroy(sym_model_backends *g) {
    if (!g) return;
    sym_cuda_device_weights_free(g->placed);
    if (g->have_weights) sym_weights_free(&g->w);
    free(g);
}
