#include "tests/actors/echo_backend.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sym_backend base;
    sym_backend_ops ops; /* echo_ops, with the export halves once a lag is set */
    double *slots; /* [n_slots][2]: steps, running sum */
    /* an export under way (export_lag > 0) */
    int export_lag, exporting, polls_left;
    double staged[2];
    void *dst;
    uint64_t steps, steps_at_begin; /* step() calls */
} echo_backend;

static atomic_long overlapped;

static int echo_step(sym_backend *b, int B, const int32_t *slots, const float *features, double *out, sym_err *e) {
    if (sym_backend_check_batch(b, B, slots, e)) return -1;
    echo_backend *c = (echo_backend *)b;
    int F = b->cfg.features;
    c->steps++;
    for (int r = 0; r < B; r++) {
        double *s = c->slots + 2 * (size_t)slots[r];
        const float *x = features + (size_t)r * (size_t)F;
        s[1] += x[0];
        out[4 * r + 0] = s[0];
        out[4 * r + 1] = x[0];
        out[4 * r + 2] = x[F - 1];
        out[4 * r + 3] = s[1];
        s[0] += 1;
    }
    return 0;
}

static int echo_check(sym_backend *b, int32_t slot, sym_err *e) {
    if (slot < 0 || slot >= b->n_slots) return sym_fail(e, "slot %d out of range", (int)slot);
    return 0;
}

static int echo_reset(sym_backend *b, int32_t slot, sym_err *e) {
    if (echo_check(b, slot, e)) return -1;
    memset(((echo_backend *)b)->slots + 2 * (size_t)slot, 0, 2 * sizeof(double));
    return 0;
}

static int echo_export(sym_backend *b, int32_t slot, void *dst, sym_err *e) {
    if (echo_check(b, slot, e)) return -1;
    memcpy(dst, ((echo_backend *)b)->slots + 2 * (size_t)slot, 2 * sizeof(double));
    return 0;
}

static int echo_export_end(sym_backend *b, int block, sym_err *e) {
    echo_backend *c = (echo_backend *)b;
    if (!c->exporting) return sym_fail(e, "no export under way");
    if (!block && --c->polls_left > 0) return 0;
    memcpy(c->dst, c->staged, sizeof c->staged);
    c->exporting = 0;
    if (c->steps != c->steps_at_begin) atomic_fetch_add(&overlapped, 1);
    return 1;
}

static int echo_export_begin(sym_backend *b, int32_t slot, void *dst, sym_err *e) {
    echo_backend *c = (echo_backend *)b;
    if (echo_check(b, slot, e)) return -1;
    if (c->exporting && echo_export_end(b, 1, e) < 0) return -1;
    memcpy(c->staged, c->slots + 2 * (size_t)slot, sizeof c->staged);
    c->dst = dst;
    c->exporting = 1;
    c->polls_left = c->export_lag;
    c->steps_at_begin = c->steps;
    return 0;
}

static int echo_import(sym_backend *b, int32_t slot, const void *src, sym_err *e) {
    if (echo_check(b, slot, e)) return -1;
    memcpy(((echo_backend *)b)->slots + 2 * (size_t)slot, src, 2 * sizeof(double));
    return 0;
}

static void echo_destroy(sym_backend *b) {
    free(((echo_backend *)b)->slots);
    free(b);
}

static const sym_backend_ops echo_ops = {
    .name = "echo",
    .step = echo_step,
    .reset_slot = echo_reset,
    .export_slot = echo_export,
    .import_slot = echo_import,
    .copy_slot = NULL,
    .destroy = echo_destroy,
    .set_towers = NULL,
};

void sym_echo_backend_set_export_lag(sym_backend *b, int lag) {
    echo_backend *c = (echo_backend *)b;
    c->export_lag = lag > 0 ? lag : 1;
    c->ops.export_begin = echo_export_begin;
    c->ops.export_end = echo_export_end;
}

long sym_echo_exports_overlapped(void) { return atomic_load(&overlapped); }

sym_backend *sym_echo_backend_create(const sym_model_config *cfg, int n_slots, int max_batch, sym_err *e) {
    echo_backend *c = calloc(1, sizeof *c);
    if (c) c->slots = calloc((size_t)(n_slots > 0 ? n_slots : 1) * 2, sizeof(double));
    if (!c || !c->slots) {
        if (c) free(c);
        sym_fail(e, "out of memory for an echo backend");
        return NULL;
    }
    c->ops = echo_ops;
    c->base.ops = &c->ops;
    c->base.cfg = *cfg;
    c->base.n_slots = n_slots;
    c->base.max_batch = max_batch;
    c->base.state_elem_size = 8;
    c->base.slot_bytes = 2 * sizeof(double);
    return &c->base;
}

sym_backend *sym_echo_backend_make(void *ctx, int shard, sym_err *e) {
    (void)shard;
    const sym_echo_factory *f = ctx;
    sym_backend *b = sym_echo_backend_create(f->model, sym_config_slots_per_shard(f->cfg), f->cfg->max_batch, e);
    if (b && f->export_lag > 0) sym_echo_backend_set_export_lag(b, f->export_lag);
    return b;
}
