/* The CPU reference behind the backend API. Each state slot is its own
 * host allocation, made when the slot is first used (reset, import, or a
 * step or export of a slot never written, which finds it reset), so n_slots
 * costs memory only for the slots a shard uses; the four towers of a batch run on up to four worker threads (a
 * tower's arithmetic is the same whichever thread runs it, so results do
 * not depend on the thread count): one per tower up to the cores online,
 * or what sym_cpu_backend_set_threads says (config key cpu.threads).
 * With a state precision set (sym_cpu_backend_set_state_precision, config
 * key state_precision), each row's tower state is rounded to its storage
 * format right after the tower steps it, on the same worker. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fanout.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_step.h"
#include "kernels/state_precision.h"
#include "kernels/weights.h"

typedef struct cpu_backend cpu_backend;

struct cpu_backend {
    sym_backend base;
    const sym_weights *w;
    sym_precision precision;
    void **slots; /* [n_slots]: layout.numel elements each, NULL until first used */
    int M;
    int tower_mask; /* towers step() computes (set_towers) */
    int round_state; /* any tower of sp is not native: only then is sp looked at */
    sym_state_precision sp;
    void *scratch[SYM_TOWERS];
    /* the batch being stepped, shared with the workers */
    int B;
    const int32_t *rows;
    const float *features;
    double *out;
    /* job j of n runs towers j, j + n, ...; job 0 on the caller's thread */
    sym_fanout pool;
};

/* A slot's memory, once it exists (run_tower: every row's does). */
static void *slot_ptr(cpu_backend *c, int32_t slot) { return c->slots[slot]; }

static void reset_state(cpu_backend *c, void *state) {
    if (c->precision == SYM_PREC_FP64) sym_state_reset_f64(&c->base.layout, state);
    else sym_state_reset_f32(&c->base.layout, state);
}

/* The slot's memory, allocated and reset on first use. */
static void *slot_mem(cpu_backend *c, int32_t slot, sym_err *e) {
    if (c->slots[slot]) return c->slots[slot];
    void *m = malloc(c->base.slot_bytes);
    if (!m) {
        sym_fail(e, "out of memory for a %zu-byte state slot", c->base.slot_bytes);
        return NULL;
    }
    reset_state(c, m);
    return c->slots[slot] = m;
}

static void run_tower(cpu_backend *c, int t) {
    int F = c->base.cfg.features;
    if (!(c->tower_mask & (1 << t))) {
        for (int r = 0; r < c->B; r++) c->out[(size_t)r * SYM_TOWERS + (size_t)t] = NAN;
        return;
    }
    for (int r = 0; r < c->B; r++) {
        void *slot = slot_ptr(c, c->rows[r]);
        const float *x = c->features + (size_t)r * (size_t)F;
        double p = c->precision == SYM_PREC_FP64
                       ? sym_cpu_tower_f64(c->w, t, &c->base.layout, slot, x, c->scratch[t], c->M, NULL, NULL)
                       : sym_cpu_tower_f32(c->w, t, &c->base.layout, slot, x, c->scratch[t], c->M, NULL, NULL);
        c->out[(size_t)r * SYM_TOWERS + (size_t)t] = p;
        if (c->round_state && c->sp.tower[t] != SYM_STATE_NATIVE) {
            /* the counter of the state this step writes: the step count it advances to */
            int64_t step = sym_state_steps(slot) + 1;
            if (c->precision == SYM_PREC_FP64) sym_state_round_tower_f64(&c->sp, &c->base.layout, t, slot, step);
            else sym_state_round_tower_f32(&c->sp, &c->base.layout, t, slot, step);
        }
    }
}

static void run_job(void *ctx, int job) {
    cpu_backend *c = ctx;
    for (int t = job; t < SYM_TOWERS; t += c->pool.n_jobs) run_tower(c, t);
}

static int cpu_step(sym_backend *b, int B, const int32_t *slots, const float *features, double *out, sym_err *e) {
    cpu_backend *c = (cpu_backend *)b;
    if (sym_backend_check_batch(b, B, slots, e)) return -1;
    for (int r = 0; r < B; r++)
        if (!slot_mem(c, slots[r], e)) return -1; /* before any row steps */
    c->B = B;
    c->rows = slots;
    c->features = features;
    c->out = out;
    sym_fanout_run(&c->pool);
    for (int r = 0; r < B; r++) {
        void *slot = slot_ptr(c, slots[r]);
        sym_state_set_steps(slot, sym_state_steps(slot) + 1);
    }
    return 0;
}

static int cpu_check_slot(sym_backend *b, int32_t slot, sym_err *e) {
    if (slot < 0 || slot >= b->n_slots) return sym_fail(e, "slot %d out of range 0..%d", (int)slot, b->n_slots - 1);
    return 0;
}

static int cpu_reset(sym_backend *b, int32_t slot, sym_err *e) {
    cpu_backend *c = (cpu_backend *)b;
    if (cpu_check_slot(b, slot, e)) return -1;
    if (c->slots[slot]) reset_state(c, c->slots[slot]);
    else if (!slot_mem(c, slot, e)) return -1;
    return 0;
}

static int cpu_export(sym_backend *b, int32_t slot, void *dst, sym_err *e) {
    cpu_backend *c = (cpu_backend *)b;
    if (cpu_check_slot(b, slot, e)) return -1;
    if (c->slots[slot]) memcpy(dst, c->slots[slot], b->slot_bytes);
    else reset_state(c, dst); /* never written: what it would hold */
    return 0;
}

static int cpu_import(sym_backend *b, int32_t slot, const void *src, sym_err *e) {
    void *m;
    if (cpu_check_slot(b, slot, e) || !(m = slot_mem((cpu_backend *)b, slot, e))) return -1;
    memcpy(m, src, b->slot_bytes);
    return 0;
}

static int cpu_copy(sym_backend *src, int32_t src_slot, sym_backend *dst, int32_t dst_slot, sym_err *e) {
    void *to;
    if (cpu_check_slot(src, src_slot, e) || cpu_check_slot(dst, dst_slot, e) ||
        !(to = slot_mem((cpu_backend *)dst, dst_slot, e)))
        return -1;
    const void *from = ((cpu_backend *)src)->slots[src_slot];
    if (from) memmove(to, from, src->slot_bytes);
    else reset_state((cpu_backend *)dst, to);
    return 0;
}

static void cpu_destroy(sym_backend *b) {
    cpu_backend *c = (cpu_backend *)b;
    sym_fanout_destroy(&c->pool);
    for (int t = 0; t < SYM_TOWERS; t++) free(c->scratch[t]);
    for (int i = 0; c->slots && i < b->n_slots; i++) free(c->slots[i]);
    free(c->slots);
    sym_state_layout_free(&b->layout);
    free(c);
}

static int cpu_set_towers(sym_backend *b, int mask, sym_err *e) {
    (void)e;
    ((cpu_backend *)b)->tower_mask = mask;
    return 0;
}

/* no step_runs: runs go through sym_backend_step_runs's passes; no
 * export_begin: an export is a memcpy, nothing to overlap */
static const sym_backend_ops cpu_ops_f64 = {"cpu-fp64",  cpu_step,       cpu_reset, cpu_export, cpu_import, cpu_copy,
                                            cpu_destroy, cpu_set_towers, NULL,      NULL,       NULL,       NULL,     NULL};
static const sym_backend_ops cpu_ops_f32 = {"cpu-fp32",  cpu_step,       cpu_reset, cpu_export, cpu_import, cpu_copy,
                                            cpu_destroy, cpu_set_towers, NULL,      NULL,       NULL,       NULL,     NULL};

/* One thread per tower, up to the cores online. */
static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > SYM_TOWERS ? SYM_TOWERS : (int)n;
}

static int is_cpu(const sym_backend *b) { return b->ops == &cpu_ops_f64 || b->ops == &cpu_ops_f32; }

int sym_cpu_backend_set_threads(sym_backend *b, int threads, sym_err *e) {
    if (!is_cpu(b)) return sym_fail(e, "%s is not the CPU backend: it has no thread count", b->ops->name);
    if (threads < 0 || threads > SYM_TOWERS)
        return sym_fail(e, "CPU backend threads: %d is not in 0..%d (0: one per tower, up to the cores)", threads, SYM_TOWERS);
    cpu_backend *c = (cpu_backend *)b;
    int n = threads ? threads : default_threads();
    if (n == c->pool.n_jobs) return 0;
    sym_fanout_destroy(&c->pool);
    if (!sym_fanout_init(&c->pool, n, run_job, c, e)) return 0;
    sym_fanout_init(&c->pool, 1, run_job, c, NULL); /* starts no thread: the backend still steps, on one */
    return sym_failctx(e, "CPU backend threads");
}

int sym_cpu_backend_set_state_precision(sym_backend *b, const sym_state_precision *sp, sym_err *e) {
    if (!is_cpu(b)) return sym_fail(e, "%s is not the CPU backend: state precision is emulated on the CPU only", b->ops->name);
    for (int t = 0; t < SYM_TOWERS; t++)
        if (sp->tower[t] < SYM_STATE_NATIVE || sp->tower[t] >= SYM_STATE_FORMATS)
            return sym_fail(e, "state precision of tower %d: unknown format %d", t, (int)sp->tower[t]);
    cpu_backend *c = (cpu_backend *)b;
    c->sp = *sp;
    c->round_state = sym_state_precision_on(sp);
    return 0;
}

sym_backend *sym_cpu_backend_create(const sym_weights *w, sym_precision precision, int n_slots, sym_err *e) {
    if (precision != SYM_PREC_FP64 && precision != SYM_PREC_FP32) {
        sym_fail(e, "the CPU backend computes in fp64 or fp32 (round the weights for a bf16 reference)");
        return NULL;
    }
    if (n_slots <= 0) {
        sym_fail(e, "the CPU backend needs at least one state slot");
        return NULL;
    }
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) {
        sym_fail(e, "out of memory");
        return NULL;
    }
    c->tower_mask = 15;
    sym_state_precision_native(&c->sp);
    sym_backend *b = &c->base;
    b->ops = precision == SYM_PREC_FP64 ? &cpu_ops_f64 : &cpu_ops_f32;
    b->cfg = w->cfg;
    if (sym_state_layout_init(&b->layout, &w->cfg, e)) {
        cpu_destroy(b);
        return NULL;
    }
    b->n_slots = n_slots;
    b->max_batch = 1 << 20;
    b->state_elem_size = precision == SYM_PREC_FP64 ? 8 : 4;
    b->slot_bytes = b->layout.numel * b->state_elem_size;
    c->w = w;
    c->precision = precision;
    c->M = sym_cpu_scratch_width(&w->cfg);
    c->slots = calloc((size_t)n_slots, sizeof *c->slots);
    int ok = c->slots != NULL;
    for (int t = 0; t < SYM_TOWERS; t++) {
        c->scratch[t] = calloc((size_t)SYM_CPU_SCRATCH_VECS * (size_t)c->M, b->state_elem_size);
        ok = ok && c->scratch[t];
    }
    if (!ok) {
        sym_fail(e, "out of memory for a CPU backend of %d state slots", n_slots);
        cpu_destroy(b);
        return NULL;
    }
    if (sym_fanout_init(&c->pool, default_threads(), run_job, c, e)) {
        sym_failctx(e, "CPU backend");
        cpu_destroy(b);
        return NULL;
    }
    return b;
}

int sym_cpu_scratch_width(const sym_model_config *c) {
    int M = c->proj;
    if (2 * c->hidden > M) M = 2 * c->hidden;
    if (c->features > M) M = c->features;
    if (2 * c->heads > M) M = 2 * c->heads;
    if (SYM_MAMBA_BC > M) M = SYM_MAMBA_BC;
    return M;
}
