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
