/* The tower split (kernels/split_backend.h) on the CPU reference: the golden
 * small model stepped by 2 and by 4 parts, each computing only its towers,
 * gives the one-backend outputs bit for bit; a part alone writes NaN for
 * the towers it does not own and leaves their state untouched; a slot
 * exported from a split backend equals the one-backend slot, and imported
 * into a fresh split backend it continues bit for bit; a slot copied to
 * another split backend (split alike: part to part; split otherwise:
 * through the host) arrives whole. Bad part sets are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/split_backend.h"
#include "kernels/weights.h"
#include "tests/check.h"
#include "tests/kernels/golden_run.h"

#define SLOTS 64

static sym_backend *cpu(const sym_weights *w) {
    sym_err e;
    sym_backend *b = sym_cpu_backend_create(w, SYM_PREC_FP64, SLOTS, &e);
    if (!b) fprintf(stderr, "cpu backend: %s\n", e.msg);
    return b;
}

static sym_backend *split(const sym_weights *w, int n) {
    sym_backend *parts[SYM_MAX_SPLIT];
    int masks[SYM_MAX_SPLIT];
    sym_err e;
    if (sym_split_masks(n, masks)) return NULL;
    for (int k = 0; k < n; k++) parts[k] = cpu(w);
    sym_backend *b = sym_split_backend_create(parts, masks, n, &e);
    if (!b) fprintf(stderr, "split backend: %s\n", e.msg);
    return b;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    sym_err e;
    sym_weights w;
    sym_request_file rf;
    if (sym_test_load_golden(argv[1], &w, &rf, NULL, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    size_t n4 = (size_t)rf.n * 4;
    double *ref = malloc(n4 * sizeof *ref), *got = malloc(n4 * sizeof *got);
    sym_backend *one = cpu(&w);
    if (!ref || !got || !one || sym_test_run_requests(one, &rf, 8, ref, &e)) return fprintf(stderr, "%s\n", e.msg), 1;

    for (int n = 2; n <= 4; n += 2) {
        sym_backend *b = split(&w, n);
        CHECKV(b != NULL, "%d-way split backend created", n);
        if (!b) continue;
        for (size_t i = 0; i < n4; i++) got[i] = NAN;
        int rc = sym_test_run_requests(b, &rf, 8, got, &e);
        CHECKV(!rc && !memcmp(ref, got, n4 * sizeof *ref), "%d-way split: %d requests bit-identical to one backend", n,
               rf.n);
        /* every slot the run used: the composed export equals the one backend's */
        void *sa = malloc(one->slot_bytes), *sb = malloc(b->slot_bytes);
        int same = one->slot_bytes == b->slot_bytes;
        for (int s = 0; same && s < SLOTS; s++) {
            one->ops->export_slot(one, s, sa, &e);
            b->ops->export_slot(b, s, sb, &e);
            same = !memcmp(sa, sb, one->slot_bytes);
        }
        CHECKV(same, "%d-way split: every exported slot equals the one backend's", n);
        /* import into a fresh split backend, step both once more */
        sym_backend *c = split(&w, n);
        float x[256];
        for (int i = 0; i < w.cfg.features; i++) x[i] = (float)sin(0.7 * i + n);
        int32_t slot = 0;
        double o1[4], o2[4];
        one->ops->export_slot(one, slot, sa, &e);
        rc = !c || c->ops->import_slot(c, slot, sa, &e) || sym_backend_step(one, 1, &slot, x, o1, &e) ||
             sym_backend_step(c, 1, &slot, x, o2, &e);
        CHECKV(!rc && !memcmp(o1, o2, sizeof o1), "%d-way split: an imported slot continues bit for bit", n);
        one->ops->import_slot(one, slot, sa, &e); /* undo the extra step on the reference */
        /* copy slot 5 of b into slot 9 of a split-alike backend and of one split the other way */
        for (int m = 2; m <= 4; m += 2) {
            sym_backend *d = split(&w, m);
            rc = !d || sym_backend_copy_slot(b, 5, d, 9, &e) || b->ops->export_slot(b, 5, sa, &e) ||
                 d->ops->export_slot(d, 9, sb, &e);
            CHECKV(!rc && !memcmp(sa, sb, b->slot_bytes), "%d-way split: a slot copied to a %d-way split arrives whole",
                   n, m);
            sym_backend_destroy(d);
        }
        sym_backend_destroy(c);
        sym_backend_destroy(b);
        free(sa);
        free(sb);
    }

    /* a part alone: NaN for the towers it does not own, their state untouched */
    sym_backend *p = cpu(&w);
    void *before = malloc(p->slot_bytes), *after = malloc(p->slot_bytes);
    float x[256];
    for (int i = 0; i < w.cfg.features; i++) x[i] = (float)cos(0.3 * i);
    int32_t slot = 3;
    double o[4];
    p->ops->export_slot(p, slot, before, &e);
    int rc = sym_backend_set_towers(p, 1 << SYM_TOWER_RETNET, &e) || sym_backend_step(p, 1, &slot, x, o, &e);
    p->ops->export_slot(p, slot, after, &e);
    CHECKV(!rc && isnan(o[0]) && isnan(o[1]) && !isnan(o[2]) && isnan(o[3]), "a RetNet-only part: NaN for the other towers");
    size_t lo, hi, es = p->state_elem_size;
    sym_state_tower_range(&p->layout, SYM_TOWER_XLSTM, &lo, &hi);
    CHECKV(!memcmp((char *)before + lo * es, (char *)after + lo * es, (hi - lo) * es), "its xLSTM state is untouched");
    sym_state_tower_range(&p->layout, SYM_TOWER_RETNET, &lo, &hi);
    CHECKV(memcmp((char *)before + lo * es, (char *)after + lo * es, (hi - lo) * es), "its RetNet state advanced");
    CHECKV(sym_state_steps(after) == sym_state_steps(before) + 1, "its step count advanced");
    sym_backend_destroy(p);
    free(before);
    free(after);

    /* bad part sets */
    sym_backend *parts[2] = {cpu(&w), cpu(&w)};
    int overlap[2] = {3, 14};
    CHECKV(!sym_split_backend_create(parts, overlap, 2, &e), "overlapping tower masks refused: %s", e.msg);
    sym_backend *parts2[2] = {cpu(&w), cpu(&w)};
    int missing[2] = {1, 6};
    CHECKV(!sym_split_backend_create(parts2, missing, 2, &e), "a tower left out refused: %s", e.msg);
    int m3[4];
    CHECKV(sym_split_masks(3, m3) == -1, "a 3-way split is not offered");

    sym_backend_destroy(one);
    sym_requests_free(&rf);
    sym_weights_free(&w);
    free(ref);
    free(got);
    return failures != 0;
}
