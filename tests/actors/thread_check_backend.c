#include "tests/actors/thread_check_backend.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sym_backend base;
    sym_backend_ops ops; /* ck_ops less what inner lacks */
    sym_backend *inner;
    int shard;
    pthread_mutex_t mu; /* guards owner: two threads racing to be first is itself what we look for */
    int have_owner;
    pthread_t owner;
} checked;

static atomic_long violations;
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
static char report[1024];

static sym_backend *inner_of(sym_backend *b, const char *op) {
    checked *c = (checked *)b;
    pthread_t me = pthread_self();
    pthread_mutex_lock(&c->mu);
    if (!c->have_owner) c->have_owner = 1, c->owner = me;
    int foreign = !pthread_equal(c->owner, me);
    pthread_mutex_unlock(&c->mu);
    if (foreign && atomic_fetch_add(&violations, 1) < 4) {
        pthread_mutex_lock(&report_mu);
        size_t n = strlen(report);
        snprintf(report + n, sizeof report - n, "%s on shard %d's backend from another thread; ", op, c->shard);
        pthread_mutex_unlock(&report_mu);
    }
    return c->inner;
}

static int ck_step(sym_backend *b, int B, const int32_t *slots, const float *f, double *out, sym_err *e) {
    sym_backend *in = inner_of(b, "step");
    return in->ops->step(in, B, slots, f, out, e);
}
static int ck_step_runs(sym_backend *b, int B, const int32_t *slots, const float *f, double *out, sym_err *e) {
    sym_backend *in = inner_of(b, "step_runs");
    return in->ops->step_runs(in, B, slots, f, out, e);
}
static int ck_reset(sym_backend *b, int32_t slot, sym_err *e) {
    sym_backend *in = inner_of(b, "reset_slot");
    return in->ops->reset_slot(in, slot, e);
}
static int ck_export(sym_backend *b, int32_t slot, void *dst, sym_err *e) {
    sym_backend *in = inner_of(b, "export_slot");
    return in->ops->export_slot(in, slot, dst, e);
}
static int ck_export_begin(sym_backend *b, int32_t slot, void *dst, sym_err *e) {
    sym_backend *in = inner_of(b, "export_begin");
    return in->ops->export_begin(in, slot, dst, e);
}
static int ck_export_end(sym_backend *b, int block, sym_err *e) {
    sym_backend *in = inner_of(b, "export_end");
    return in->ops->export_end(in, block, e);
}
static int ck_import(sym_backend *b, int32_t slot, const void *src, sym_err *e) {
    sym_backend *in = inner_of(b, "import_slot");
    return in->ops->import_slot(in, slot, src, e);
}
static int ck_copy(sym_backend *src, int32_t ss, sym_backend *dst, int32_t ds, sym_err *e) {
    sym_backend *a = inner_of(src, "copy_slot"), *b = inner_of(dst, "copy_slot");
    return sym_backend_copy_slot(a, ss, b, ds, e);
}
static int ck_set_towers(sym_backend *b, int mask, sym_err *e) {
    return sym_backend_set_towers(((checked *)b)->inner, mask, e);
}
static int ck_prepare_runs(sym_backend *b, sym_err *e) {
    sym_backend *in = ((checked *)b)->inner;
    return in->ops->prepare_runs ? in->ops->prepare_runs(in, e) : 0;
}
static void ck_destroy(sym_backend *b) {
    checked *c = (checked *)b;
    sym_backend_destroy(c->inner);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static const sym_backend_ops ck_ops = {
    .name = "thread-check",
    .step = ck_step,
    .reset_slot = ck_reset,
    .export_slot = ck_export,
    .import_slot = ck_import,
    .copy_slot = ck_copy,
    .destroy = ck_destroy,
    .set_towers = ck_set_towers,
    .step_runs = ck_step_runs,
    .prepare_runs = ck_prepare_runs,
    .export_begin = ck_export_begin,
    .export_end = ck_export_end,
};

sym_backend *sym_thread_check_wrap(sym_backend *inner, sym_err *e) {
    checked *c = calloc(1, sizeof *c);
    if (!c) {
        sym_backend_destroy(inner);
        sym_fail(e, "out of memory for a thread-check backend");
        return NULL;
    }
    c->base = *inner; /* its shape: cfg, layout, slots, batch, state format */
    /* an op inner lacks, the wrapper lacks too: callers test for NULL */
    c->ops = ck_ops;
    if (!inner->ops->step_runs) c->ops.step_runs = NULL;
    if (!inner->ops->export_begin) c->ops.export_begin = NULL, c->ops.export_end = NULL;
    c->base.ops = &c->ops;
    c->inner = inner;
    c->shard = -1;
    pthread_mutex_init(&c->mu, NULL);
    return &c->base;
}

sym_backend *sym_thread_check_make(void *ctx, int shard, sym_err *e) {
    const sym_thread_check_factory *f = ctx;
    sym_backend *in = f->make(f->ctx, shard, e);
    sym_backend *b = in ? sym_thread_check_wrap(in, e) : NULL;
    if (b) ((checked *)b)->shard = shard;
    return b;
}

long sym_thread_check_violations(void) { return atomic_load(&violations); }

const char *sym_thread_check_report(void) { return report; }
