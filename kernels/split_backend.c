#include "kernels/split_backend.h"

#include <stdlib.h>
#include <string.h>

#include "common/fanout.h"

typedef struct split_backend split_backend;

struct split_backend {
    sym_backend base;
    int n;
    sym_backend *parts[SYM_MAX_SPLIT];
    int masks[SYM_MAX_SPLIT];
    double *outs[SYM_MAX_SPLIT]; /* each part's outputs, max_batch x 4 */
    void *tmp;                   /* one slot, for export */
    /* the step being run, shared with the workers */
    int B;
    const int32_t *slots;
    const float *features;
    int rc[SYM_MAX_SPLIT];
    sym_err errs[SYM_MAX_SPLIT];
    sym_fanout pool; /* job k steps part k */
};

static void run_part(void *ctx, int k) {
    split_backend *s = ctx;
    s->rc[k] = sym_backend_step(s->parts[k], s->B, s->slots, s->features, s->outs[k], &s->errs[k]);
}

static int split_step(sym_backend *b, int B, const int32_t *slots, const float *features, double *out, sym_err *e) {
    split_backend *s = (split_backend *)b;
    if (sym_backend_check_batch(b, B, slots, e)) return -1;
    s->B = B, s->slots = slots, s->features = features;
    sym_fanout_run(&s->pool);
    for (int k = 0; k < s->n; k++)
        if (s->rc[k]) return sym_fail(e, "tower split, part %d: %s", k, s->errs[k].msg);
    for (int k = 0; k < s->n; k++)
        for (int t = 0; t < SYM_TOWERS; t++)
            if (s->masks[k] & (1 << t))
                for (int r = 0; r < B; r++) out[(size_t)r * SYM_TOWERS + t] = s->outs[k][(size_t)r * SYM_TOWERS + t];
    return 0;
}

static int split_reset(sym_backend *b, int32_t slot, sym_err *e) {
    split_backend *s = (split_backend *)b;
    for (int k = 0; k < s->n; k++)
        if (s->parts[k]->ops->reset_slot(s->parts[k], slot, e)) return -1;
    return 0;
}

static int split_export(sym_backend *b, int32_t slot, void *dst, sym_err *e) {
    split_backend *s = (split_backend *)b;
    size_t es = b->state_elem_size;
    if (s->parts[0]->ops->export_slot(s->parts[0], slot, dst, e)) return -1; /* header and part 0's towers */
    for (int k = 1; k < s->n; k++) {
        if (s->parts[k]->ops->export_slot(s->parts[k], slot, s->tmp, e)) return -1;
        for (int t = 0; t < SYM_TOWERS; t++) {
            if (!(s->masks[k] & (1 << t))) continue;
            size_t lo, hi;
            sym_state_tower_range(&b->layout, t, &lo, &hi);
            memcpy((char *)dst + lo * es, (const char *)s->tmp + lo * es, (hi - lo) * es);
        }
    }
    return 0;
}

static int split_import(sym_backend *b, int32_t slot, const void *src, sym_err *e) {
    split_backend *s = (split_backend *)b;
    for (int k = 0; k < s->n; k++)
        if (s->parts[k]->ops->import_slot(s->parts[k], slot, src, e)) return -1;
    return 0;
}

/* Part to part when both sides split the towers the same way (each part's
 * own copy: a device or peer copy on GPUs), else through a host buffer. */
static int split_copy(sym_backend *src, int32_t ss, sym_backend *dst, int32_t ds, sym_err *e) {
    split_backend *a = (split_backend *)src, *b = (split_backend *)dst;
    int same = a->n == b->n;
    for (int k = 0; same && k < a->n; k++) same = a->masks[k] == b->masks[k];
    if (same) {
        for (int k = 0; k < a->n; k++)
            if (sym_backend_copy_slot(a->parts[k], ss, b->parts[k], ds, e)) return -1;
        return 0;
    }
    void *buf = malloc(src->slot_bytes); /* not a->tmp: export uses it */
    if (!buf) return sym_fail(e, "out of memory for a %zu-byte slot", src->slot_bytes);
    int rc = split_export(src, ss, buf, e);
    if (!rc) rc = split_import(dst, ds, buf, e);
    free(buf);
    return rc;
}

static void split_destroy(sym_backend *b) {
    split_backend *s = (split_backend *)b;
    sym_fanout_destroy(&s->pool);
    for (int k = 0; k < s->n; k++) {
        sym_backend_destroy(s->parts[k]);
        free(s->outs[k]);
    }
    free(s->tmp);
    sym_state_layout_free(&b->layout);
    free(s);
}

static const sym_backend_ops split_ops = {
    .name = "split",
    .step = split_step,
    .reset_slot = split_reset,
    .export_slot = split_export,
    .import_slot = split_import,
    .copy_slot = split_copy,
    .destroy = split_destroy,
    .set_towers = NULL,
};

int sym_split_masks(int n, int *masks) {
    if (n == 1) masks[0] = 15;
    else if (n == 2) masks[0] = 1 << SYM_TOWER_XLSTM, masks[1] = 15 & ~(1 << SYM_TOWER_XLSTM);
    else if (n == 4)
        for (int t = 0; t < 4; t++) masks[t] = 1 << t;
    else return -1;
    return 0;
}

static int check_parts(sym_backend **parts, const int *masks, int n, sym_err *e) {
    if (n < 1 || n > SYM_MAX_SPLIT) return sym_fail(e, "tower split into %d parts (1..%d)", n, SYM_MAX_SPLIT);
    int all = 0;
    for (int k = 0; k < n; k++) {
        if (!parts[k]) return sym_fail(e, "tower split: part %d missing", k);
        if (masks[k] < 1 || masks[k] > 15 || (all & masks[k]))
            return sym_fail(e, "tower split: part %d's towers (mask %d) overlap or are empty", k, masks[k]);
        all |= masks[k];
        if (parts[k]->slot_bytes != parts[0]->slot_bytes || parts[k]->state_elem_size != parts[0]->state_elem_size ||
            parts[k]->n_slots != parts[0]->n_slots ||
            memcmp(parts[k]->layout.mat, parts[0]->layout.mat, sizeof parts[0]->layout.mat))
            return sym_fail(e, "tower split: part %d holds other slots than part 0", k);
    }
    if (all != 15) return sym_fail(e, "tower split: the parts leave towers out (masks cover %d, not 15)", all);
    return 0;
}

sym_backend *sym_split_backend_create(sym_backend **parts, const int *masks, int n, sym_err *e) {
    split_backend *s = NULL;
    int rc = check_parts(parts, masks, n, e);
    for (int k = 0; !rc && k < n; k++) rc = sym_backend_set_towers(parts[k], masks[k], e);
    if (!rc && !(s = calloc(1, sizeof *s))) rc = sym_fail(e, "out of memory");
    if (rc) {
        for (int k = 0; k < n; k++) sym_backend_destroy(parts[k]);
        return NULL;
    }
    sym_backend *b = &s->base;
    s->n = n;
    b->ops = &split_ops;
    b->cfg = parts[0]->cfg;
    b->n_slots = parts[0]->n_slots;
    b->state_elem_size = parts[0]->state_elem_size;
    b->slot_bytes = parts[0]->slot_bytes;
    b->max_batch = 65536; /* the engine's largest max_batch; bounds the output buffers */
    for (int k = 0; k < n; k++) {
        s->parts[k] = parts[k], s->masks[k] = masks[k];
        if (parts[k]->max_batch < b->max_batch) b->max_batch = parts[k]->max_batch;
    }
    if (sym_state_layout_init_stored(&b->layout, &b->cfg, parts[0]->layout.mat, e)) { /* the parts' layout */
        split_destroy(b);
        return NULL;
    }
    s->tmp = malloc(b->slot_bytes);
    if (!s->tmp) rc = sym_fail(e, "out of memory for a %zu-byte slot", b->slot_bytes);
    for (int k = 0; !rc && k < n; k++)
        if (!(s->outs[k] = malloc((size_t)b->max_batch * SYM_TOWERS * sizeof(double))))
            rc = sym_fail(e, "out of memory");
    if (!rc) rc = sym_fanout_init(&s->pool, n, run_part, s, e);
    if (rc) {
        split_destroy(b);
        return NULL;
    }
    return b;
}
