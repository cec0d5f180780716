#include "kernels/backend.h"

#include <stdlib.h>
#include <string.h>

int sym_backend_check_batch(const sym_backend *b, int B, const int32_t *slots, sym_err *e) {
    if (B <= 0 || B > b->max_batch) return sym_fail(e, "batch of %d rows (this backend takes 1..%d)", B, b->max_batch);
    for (int i = 0; i < B; i++) {
        if (slots[i] < 0 || slots[i] >= b->n_slots)
            return sym_fail(e, "slot %d out of range 0..%d", (int)slots[i], b->n_slots - 1);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) return sym_fail(e, "slot %d appears twice in one batch", (int)slots[i]);
    }
    return 0;
}

int sym_backend_step_runs(sym_backend *b, int B, const int32_t *slots, const float *features, double *out,
                          unsigned char *ok, sym_err *e) {
    if (B <= 0 || B > b->max_batch) return sym_fail(e, "batch of %d rows (this backend takes 1..%d)", B, b->max_batch);
    if (ok) memset(ok, 0, (size_t)B);
    const int R = b->ops->step_runs && b->max_run > 1 ? b->max_run : 1; /* a slot's rows per pass */
    int *pass = malloc((size_t)B * sizeof *pass), n_pass = 0, repeats = 0;
    if (!pass) return sym_fail(e, "out of memory for a batch of %d rows", B);
    for (int i = 0; i < B; i++) {
        if (slots[i] < 0 || slots[i] >= b->n_slots) {
            free(pass);
            return sym_fail(e, "slot %d out of range 0..%d", (int)slots[i], b->n_slots - 1);
        }
        int before = 0; /* the rows of this slot before row i */
        for (int j = 0; j < i; j++) before += slots[j] == slots[i];
        repeats += before > 0;
        pass[i] = before / R;
        if (pass[i] + 1 > n_pass) n_pass = pass[i] + 1;
    }
    if (!repeats) { /* distinct slots: the batch as it is, through step() */
        free(pass);
        int rc = sym_backend_step(b, B, slots, features, out, e);
        if (!rc && ok) memset(ok, 1, (size_t)B);
        return rc;
    }
    const size_t F = (size_t)b->cfg.features;
    int *rows = malloc((size_t)B * sizeof *rows);
    unsigned char *taken = malloc((size_t)B);
    int32_t *ps = malloc((size_t)B * sizeof *ps);
    float *pf = malloc((size_t)B * F * sizeof *pf);
    double *po = malloc((size_t)B * SYM_TOWERS * sizeof *po);
    int rc = 0;
    if (!rows || !taken || !ps || !pf || !po) rc = sym_fail(e, "out of memory for a batch of %d rows", B);
    for (int p = 0; p < n_pass && !rc; p++) {
        /* the pass's rows, each slot's together and in order */
        int n = 0;
        for (int i = 0; i < B; i++) taken[i] = pass[i] != p;
        for (int i = 0; i < B; i++) {
            if (taken[i]) continue;
            for (int j = i; j < B; j++) {
                if (taken[j] || slots[j] != slots[i]) continue;
                taken[j] = 1, rows[n] = j, ps[n] = slots[j];
                memcpy(pf + (size_t)n * F, features + (size_t)j * F, F * sizeof *pf);
                n++;
            }
        }
        rc = R > 1 ? b->ops->step_runs(b, n, ps, pf, po, e) : sym_backend_step(b, n, ps, pf, po, e);
        if (rc) {
            sym_failctx(e, "pass %d of %d, at most %d row%s of a slot", p + 1, n_pass, R, R > 1 ? "s" : "");
            break;
        }
        for (int k = 0; k < n; k++) {
            memcpy(out + (size_t)rows[k] * SYM_TOWERS, po + (size_t)k * SYM_TOWERS, SYM_TOWERS * sizeof *po);
            if (ok) ok[rows[k]] = 1;
        }
    }
    free(pass), free(rows), free(taken), free(ps), free(pf), free(po);
    return rc;
}

int sym_backend_copy_slot(sym_backend *src, int32_t src_slot, sym_backend *dst, int32_t dst_slot, sym_err *e) {
    if (src->slot_bytes != dst->slot_bytes || src->state_elem_size != dst->state_elem_size)
        return sym_fail(e, "cannot move state between %s and %s: different state formats", src->ops->name, dst->ops->name);
    if (src->ops == dst->ops && src->ops->copy_slot) return src->ops->copy_slot(src, src_slot, dst, dst_slot, e);
    void *buf = malloc(src->slot_bytes);
    if (!buf) return sym_fail(e, "out of memory for a %zu-byte slot", src->slot_bytes);
    int rc = src->ops->export_slot(src, src_slot, buf, e);
    if (!rc) rc = dst->ops->import_slot(dst, dst_slot, buf, e);
    free(buf);
    return rc;
}

int sym_backend_set_towers(sym_backend *b, int mask, sym_err *e) {
    if (mask < 1 || mask > 15) return sym_fail(e, "tower mask %d (1..15)", mask);
    if (!b->ops->set_towers) {
        if (mask == 15) return 0;
        return sym_fail(e, "the %s backend computes all four towers, not a subset", b->ops->name);
    }
    return b->ops->set_towers(b, mask, e);
}
