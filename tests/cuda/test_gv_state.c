/* Slot handling of the CUDA engine:
 *  - random feature rows (several steps, several symbols, outputs poisoned
 *    with NaN before each step) vs the CPU fp64 path: within 1e-4;
 *  - export a GPU slot, import it into the CPU fp32 backend, step both with
 *    the same row: same state format, outputs within 1e-4;
 *  - export/import round trip and copy_slot: bit-identical continuations;
 *  - a batch with a duplicate slot is rejected and no state changes;
 *  - padded rows (B between buckets) leave every other slot untouched;
 *  - runs (several rows of a slot in one call, sym_backend_step_runs) match
 *    the CPU fp64 path and the GPU's own passes of distinct slots. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_backend.h"
#include "tests/kernels/golden_run.h"

static unsigned long long rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-53 * 4.0 - 2.0);
}

#define CHECK(cond, ...)                                                                                        \
    do {                                                                                                        \
        if (!(cond)) {                                                                                          \
            printf("FAIL " __VA_ARGS__);                                                                        \
            printf("\n");                                                                                       \
            return 1;                                                                                           \
        }                                                                                                       \
    } while (0)

int main(int argc, char **argv) {
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    if (argc < 2) return 2;
    sym_err e = {{0}};
    sym_weights w;
    CHECK(!sym_weights_load_dir(&w, argv[1], &e), "load: %s", e.msg);
    int F = w.cfg.features, NS = 16, B = 11;
    sym_precision p[4] = {SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32};
    sym_backend *g = sym_cuda_backend_create(&w, p, NULL, 0, NS, 32, NULL, &e);
    CHECK(g, "create: %s", e.msg);
    sym_backend *c64 = sym_cpu_backend_create(&w, SYM_PREC_FP64, NS, &e);
    sym_backend *c32 = sym_cpu_backend_create(&w, SYM_PREC_FP32, NS, &e);
    CHECK(c64 && c32, "cpu: %s", e.msg);
    float *feat = malloc((size_t)32 * F * sizeof *feat);
    double og[32 * 4], oc[32 * 4];
    int32_t slots[32];
    /* 1: random rows, B = 11 (a padded bucket: 16), slots permuted per step */
    double mx = 0;
    for (int step = 0; step < 40; step++) {
        for (int i = 0; i < B; i++) slots[i] = (int32_t)((i * 5 + step) % NS);
        for (int i = 0; i < B * F; i++) feat[i] = frand();
        for (int i = 0; i < 32 * 4; i++) og[i] = NAN;
        CHECK(!sym_backend_step(g, B, slots, feat, og, &e), "gpu step: %s", e.msg);
        CHECK(!sym_backend_step(c64, B, slots, feat, oc, &e), "cpu step: %s", e.msg);
        for (int i = 0; i < B * 4; i++) {
            double d = fabs(og[i] - oc[i]);
            CHECK(d <= 1e-4, "random rows: step %d row %d tower %d gpu %.9g cpu %.9g", step, i / 4, i % 4, og[i], oc[i]);
            mx = d > mx ? d : mx;
        }
    }
    printf("PASS random rows vs cpu fp64: 40 steps x %d rows over %d slots, max abs err %.3g\n", B, NS, mx);
    /* 2: export GPU slot 3 -> CPU fp32 slot 3, step both */
    size_t bytes = g->slot_bytes;
    CHECK(bytes == c32->slot_bytes, "slot bytes differ: %zu vs %zu", bytes, c32->slot_bytes);
    void *buf = malloc(bytes), *buf2 = malloc(bytes);
    CHECK(!g->ops->export_slot(g, 3, buf, &e), "export: %s", e.msg);
    CHECK(!c32->ops->import_slot(c32, 3, buf, &e), "import cpu: %s", e.msg);
    slots[0] = 3;
    for (int i = 0; i < F; i++) feat[i] = frand();
    CHECK(!sym_backend_step(g, 1, slots, feat, og, &e), "%s", e.msg);
    CHECK(!sym_backend_step(c32, 1, slots, feat, oc, &e), "%s", e.msg);
    mx = 0;
    for (int t = 0; t < 4; t++) mx = fmax(mx, fabs(og[t] - oc[t]));
    CHECK(mx <= 1e-4, "gpu->cpu slot move: err %.3g", mx);
    printf("PASS gpu slot exported into cpu fp32 backend continues within %.3g\n", mx);
    /* 3: round trip + copy_slot: slot 3 -> 9 (import), 3 -> 10 (copy) */
    CHECK(!g->ops->export_slot(g, 3, buf, &e), "%s", e.msg);
    CHECK(!g->ops->import_slot(g, 9, buf, &e), "%s", e.msg);
    CHECK(!sym_backend_copy_slot(g, 3, g, 10, &e), "%s", e.msg);
    CHECK(!g->ops->export_slot(g, 10, buf2, &e), "%s", e.msg);
    CHECK(!memcmp(buf, buf2, bytes), "copy_slot changed bytes");
    int32_t s3[3] = {3, 9, 10};
    for (int r = 0; r < 3; r++) memcpy(feat + r * F, feat, (size_t)F * sizeof *feat);
    CHECK(!sym_backend_step(g, 3, s3, feat, og, &e), "%s", e.msg);
    CHECK(!memcmp(og, og + 4, 4 * sizeof(double)) && !memcmp(og, og + 8, 4 * sizeof(double)),
          "same state + same row gave different outputs (row independence)");
    printf("PASS export/import round trip and copy_slot: identical bytes and bit-identical outputs\n");
    /* 3b: export_begin / export_end: what lands is the state at the begin,
     * though the slot steps before the end; a second begin first lands the
     * one under way. Slot 12 is slot 9's twin for one step (same state, same
     * row, one batch: bit for bit, as 3 showed), then left alone. */
    {
        const sym_host_mem *hm = g->ops->host_mem;
        void *p1 = sym_host_mem_alloc(hm, bytes), *p2 = sym_host_mem_alloc(hm, bytes);
        CHECK(p1 && p2, "out of memory");
        CHECK(g->ops->export_begin && g->ops->export_end, "the CUDA engine has export_begin / export_end");
        CHECK(g->ops->export_end(g, 1, &e) < 0, "export_end with no export under way accepted");
        CHECK(!g->ops->export_slot(g, 3, buf, &e) && !g->ops->export_slot(g, 9, buf2, &e), "%s", e.msg);
        CHECK(!g->ops->import_slot(g, 12, buf2, &e), "%s", e.msg);
        CHECK(!g->ops->export_begin(g, 3, p1, &e), "export_begin: %s", e.msg);
        for (int k = 0; k < 3; k++) {
            int32_t sl[3] = {3, 9, 12};
            for (int i = 0; i < 2 * F; i++) feat[i] = frand();
            memcpy(feat + 2 * F, feat + F, (size_t)F * sizeof *feat);
            CHECK(!sym_backend_step(g, k == 0 ? 3 : 2, sl, feat, og, &e), "%s", e.msg);
            if (k == 0) CHECK(!g->ops->export_begin(g, 9, p2, &e), "second export_begin: %s", e.msg);
        }
        CHECK(!memcmp(p1, buf, bytes), "the first export did not land slot 3's state at its begin");
        CHECK(g->ops->export_end(g, 1, &e) == 1, "export_end: %s", e.msg);
        CHECK(!g->ops->export_slot(g, 12, buf, &e), "%s", e.msg);
        CHECK(!memcmp(p2, buf, bytes), "the second export did not land slot 9's state at its begin (one step on)");
        CHECK(!g->ops->export_slot(g, 9, buf2, &e), "%s", e.msg);
        CHECK(memcmp(p2, buf2, bytes), "the steps after the export left slot 9 as it was");
        sym_host_mem_free(hm, p1), sym_host_mem_free(hm, p2);
    }
    printf("PASS export_begin / export_end: the state at the begin lands while the slot steps on; a second begin lands "
           "the first\n");
    /* 4: duplicate slots rejected, nothing changes */
    CHECK(!g->ops->export_slot(g, 4, buf, &e), "%s", e.msg);
    int32_t dup[3] = {4, 5, 4};
    CHECK(sym_backend_step(g, 3, dup, feat, og, &e) != 0, "duplicate batch accepted");
    CHECK(!g->ops->export_slot(g, 4, buf2, &e), "%s", e.msg);
    CHECK(!memcmp(buf, buf2, bytes), "rejected batch changed state");
    printf("PASS duplicate slot batch rejected (%s), state untouched\n", e.msg);
    /* 5: padded rows: B=9 (bucket 16) must not touch slot 15 */
    CHECK(!g->ops->export_slot(g, 15, buf, &e), "%s", e.msg);
    for (int i = 0; i < 9; i++) slots[i] = i;
    CHECK(!sym_backend_step(g, 9, slots, feat, og, &e), "%s", e.msg);
    CHECK(!g->ops->export_slot(g, 15, buf2, &e), "%s", e.msg);
    CHECK(!memcmp(buf, buf2, bytes), "padded rows touched slot 15");
    /* 6: reset gives the initial state (m = -inf) */
    CHECK(!g->ops->reset_slot(g, 15, &e), "%s", e.msg);
    CHECK(!c32->ops->reset_slot(c32, 15, &e), "%s", e.msg);
    CHECK(!g->ops->export_slot(g, 15, buf, &e), "%s", e.msg);
    CHECK(!c32->ops->export_slot(c32, 15, buf2, &e), "%s", e.msg);
    CHECK(!memcmp(buf, buf2, bytes), "reset state differs from the CPU's");
    printf("PASS padded rows leave other slots untouched; reset matches the CPU's initial state\n");
    /* 7: runs (sym_backend_step_runs): batches in which a slot repeats,
     * adjacent or not, up to 6 times (runs of at most SYM_RUN_MAX = 4 a
     * pass), on the GPU's runs against the CPU fp64 path and against the
     * GPU as passes of distinct slots (max_run 1) */
    {
        sym_backend *gr = sym_cuda_backend_create(&w, p, NULL, 0, NS, 32, NULL, &e), *gp = NULL, *cr = NULL;
        CHECK(gr, "create: %s", e.msg);
        gp = sym_cuda_backend_create(&w, p, NULL, 0, NS, 32, NULL, &e);
        cr = sym_cpu_backend_create(&w, SYM_PREC_FP64, NS, &e);
        CHECK(gp && cr, "create: %s", e.msg);
        CHECK(gr->max_run == 4 && gr->ops->step_runs, "the CUDA backend takes runs of 4 (max_run %d)", gr->max_run);
        gp->max_run = 1;
        for (int sl = 0; sl < NS; sl++)
            CHECK(!gr->ops->reset_slot(gr, sl, &e) && !gp->ops->reset_slot(gp, sl, &e) &&
                      !cr->ops->reset_slot(cr, sl, &e), "reset: %s", e.msg);
        double og2[32 * 4], mx_cpu = 0, mx_pass = 0;
        int bitwise = 1, rows = 0, longest = 0;
        for (int step = 0; step < 30; step++) {
            int Br = 1 + (int)((rng >> 7) % 24);
            frand();
            for (int i = 0; i < Br; i++) {
                frand();
                /* a few slots only, so they repeat; every third step one slot six times in a row */
                slots[i] = step % 3 == 0 && i < 6 ? 5 : (int32_t)((rng >> 9) % 6);
            }
            for (int i = 0; i < Br; i++) {
                int n = 0;
                for (int j = 0; j <= i; j++) n += slots[j] == slots[i];
                longest = n > longest ? n : longest;
            }
            for (int i = 0; i < Br * F; i++) feat[i] = frand();
            for (int i = 0; i < 32 * 4; i++) og[i] = og2[i] = NAN;
            unsigned char ok[32];
            CHECK(!sym_backend_step_runs(gr, Br, slots, feat, og, ok, &e), "gpu runs, step %d: %s", step, e.msg);
            CHECK(!sym_backend_step_runs(gp, Br, slots, feat, og2, NULL, &e), "gpu passes: %s", e.msg);
            CHECK(!sym_backend_step_runs(cr, Br, slots, feat, oc, NULL, &e), "cpu: %s", e.msg);
            for (int i = 0; i < Br * 4; i++) {
                double d = fabs(og[i] - oc[i]), d2 = fabs(og[i] - og2[i]);
                CHECK(ok[i / 4] && d <= 1e-4, "runs: step %d row %d (slot %d) tower %d gpu %.9g cpu %.9g", step, i / 4,
                      (int)slots[i / 4], i % 4, og[i], oc[i]);
                CHECK(d2 <= 1e-4, "runs against passes: step %d row %d tower %d %.9g vs %.9g", step, i / 4, i % 4,
                      og[i], og2[i]);
                mx_cpu = d > mx_cpu ? d : mx_cpu, mx_pass = d2 > mx_pass ? d2 : mx_pass;
                bitwise &= og[i] == og2[i];
            }
            rows += Br;
        }
        /* every slot's state: runs and passes alike (the same step counts; values within fp32 rounding) */
        double smx = 0;
        for (int sl = 0; sl < NS; sl++) {
            CHECK(!gr->ops->export_slot(gr, sl, buf, &e) && !gp->ops->export_slot(gp, sl, buf2, &e), "%s", e.msg);
            CHECK(!memcmp(buf, buf2, 8), "slot %d: step count differs between runs and passes", sl);
            const float *x = (const float *)buf, *y = (const float *)buf2;
            for (size_t k = 2; k < bytes / 4; k++) {
                double d = fabs((double)x[k] - y[k]) / (1.0 + fabs((double)y[k]));
                if (isnan(x[k]) != isnan(y[k])) d = INFINITY;
                if (!isnan(d)) smx = d > smx ? d : smx;
            }
        }
        CHECK(smx <= 1e-4, "runs against passes: states differ by %.3g (relative)", smx);
        printf("PASS runs: %d rows in 30 steps, a slot up to %d times a step: vs cpu fp64 max abs err %.3g, vs the "
               "GPU's passes %.3g (%s), states within %.3g\n",
               rows, longest, mx_cpu, mx_pass, bitwise ? "bitwise" : "not bitwise", smx);
        sym_backend_destroy(gr), sym_backend_destroy(gp), sym_backend_destroy(cr);
    }
    free(buf), free(buf2), free(feat);
    sym_backend_destroy(g), sym_backend_destroy(c64), sym_backend_destroy(c32);
    sym_weights_free(&w);
    return 0;
}
