/* Several rows of one slot in one call (sym_backend_step_runs), on the CPU
 * reference with the golden small model:
 *  - the request file in chunks of 16 consecutive requests, each chunk one
 *    call whatever symbols repeat in it, gives the outputs of one request
 *    per symbol per step bit for bit (fp64 and fp32), and matches
 *    expected_f64.csv;
 *  - random batches over 6 slots with repeats, on fresh random features,
 *    equal each row stepped alone in row order: outputs and exported
 *    states bit for bit;
 *  - bad arguments (a slot out of range, B outside 1..max_batch) step no
 *    row and change no state;
 *  - a pass that fails leaves the passes before it stepped, and ok says
 *    which rows those were;
 *  - a backend with step_runs (max_run 2) gets each slot's rows adjacent,
 *    in order, at most 2 a call, and gives the same outputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/weights.h"
#include "tests/check.h"
#include "tests/kernels/golden_run.h"

#define SLOTS 64
#define CHUNK 16

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)next_u32() / 4294967296.0f * 2.0f - 1.0f; }

/* a CPU backend whose step fails on its fail_at-th call (counting from 1) */
static sym_backend_ops failing_ops;
static int (*cpu_step)(sym_backend *, int, const int32_t *, const float *, double *, sym_err *);
static int calls, fail_at;
static int failing_step(sym_backend *b, int B, const int32_t *slots, const float *f, double *out, sym_err *e) {
    if (++calls == fail_at) return sym_fail(e, "boom");
    return cpu_step(b, B, slots, f, out, e);
}

/* a step_runs that checks the layout it is given (a slot's rows adjacent,
 * at most max_run, no slot in two runs), then steps the rows one by one */
static int layout_bad, longest_run;
static int runs_step(sym_backend *b, int B, const int32_t *slots, const float *f, double *out, sym_err *e) {
    for (int i = 0, n; i < B; i += n) {
        for (n = 1; i + n < B && slots[i + n] == slots[i]; n++) {}
        if (n > b->max_run) layout_bad = 1;
        if (n > longest_run) longest_run = n;
        for (int j = 0; j < i; j++) layout_bad |= slots[j] == slots[i];
    }
    for (int r = 0; r < B; r++)
        if (cpu_step(b, 1, &slots[r], f + (size_t)r * b->cfg.features, out + 4 * r, e)) return -1;
    return 0;
}

static int same_slots(sym_backend *a, sym_backend *b, int n) {
    void *x = malloc(a->slot_bytes), *y = malloc(b->slot_bytes);
    sym_err e;
    int same = x && y;
    for (int s = 0; s < n && same; s++)
        same = !a->ops->export_slot(a, s, x, &e) && !b->ops->export_slot(b, s, y, &e) && !memcmp(x, y, a->slot_bytes);
    free(x), free(y);
    return same;
}

/* the file in chunks of CHUNK consecutive requests, each one call */
static int run_chunks(sym_backend *b, const sym_request_file *rf, double *out, sym_err *e) {
    int n_sym = 0, F = rf->n_features;
    char(*names)[SYM_SYMBOL_MAX + 1] = malloc((size_t)rf->n * sizeof *names);
    int32_t slots[CHUNK];
    float *feat = malloc((size_t)CHUNK * (size_t)F * sizeof *feat);
    int rc = !names || !feat ? sym_fail(e, "out of memory") : 0;
    for (int i0 = 0; i0 < rf->n && !rc; i0 += CHUNK) {
        int B = rf->n - i0 < CHUNK ? rf->n - i0 : CHUNK;
        for (int r = 0; r < B; r++) {
            const char *sym = rf->rows[i0 + r].symbol;
            int s = 0;
            while (s < n_sym && strcmp(names[s], sym)) s++;
            if (s == n_sym) strcpy(names[n_sym++], sym);
            slots[r] = s;
            memcpy(feat + (size_t)r * F, rf->rows[i0 + r].features, (size_t)F * sizeof *feat);
        }
        rc = sym_backend_step_runs(b, B, slots, feat, out + (size_t)i0 * 4, NULL, e);
    }
    free(names), free(feat);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    sym_err e;
    sym_weights w;
    sym_request_file rf;
    sym_prediction_file exp;
    if (sym_test_load_golden(argv[1], &w, &rf, &exp, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    const int F = w.cfg.features;
    size_t n4 = (size_t)rf.n * 4;
    double *ref = malloc(n4 * sizeof *ref), *got = malloc(n4 * sizeof *got);
    if (!ref || !got) return 1;

    /* the request file: runs against one request per symbol per step */
    const sym_precision precs[2] = {SYM_PREC_FP64, SYM_PREC_FP32};
    for (int pi = 0; pi < 2; pi++) {
        sym_backend *one = sym_cpu_backend_create(&w, precs[pi], SLOTS, &e),
                    *runs = sym_cpu_backend_create(&w, precs[pi], SLOTS, &e);
        if (!one || !runs) return fprintf(stderr, "cpu backend: %s\n", e.msg), 1;
        int rc = sym_test_run_requests(one, &rf, CHUNK, ref, &e);
        CHECK(!rc, "one per symbol: %s", e.msg);
        for (size_t i = 0; i < n4; i++) got[i] = NAN;
        rc = run_chunks(runs, &rf, got, &e);
        int repeats = 0; /* chunks in which some symbol appears more than once */
        for (int i0 = 0; i0 < rf.n; i0 += CHUNK) {
            int rep = 0;
            for (int r = i0; r < i0 + CHUNK && r < rf.n; r++)
                for (int q = i0; q < r; q++) rep |= !strcmp(rf.rows[q].symbol, rf.rows[r].symbol);
            repeats += rep;
        }
        CHECKV(!rc && !memcmp(ref, got, n4 * sizeof *ref),
               "%s: %d requests in calls of %d rows (symbols repeat within calls) bit-identical to one per symbol",
               pi ? "fp32" : "fp64", rf.n, CHUNK);
        CHECKV(repeats > 0, "the file's chunks do repeat symbols (%d chunks found)", repeats);
        CHECKV(same_slots(one, runs, SLOTS), "%s: every slot's state the same both ways", pi ? "fp32" : "fp64");
        if (pi == 0) {
            double mx[4], mean[4];
            rc = sym_test_compare(&rf, got, &exp, mx, mean, &e);
            double worst = fmax(fmax(mx[0], mx[1]), fmax(mx[2], mx[3]));
            CHECKV(!rc && worst <= 1e-9, "fp64 runs vs expected_f64.csv: max abs err %.3g", worst);
        }
        sym_backend_destroy(one), sym_backend_destroy(runs);
    }

    /* random batches with repeats against each row alone, in order */
    sym_backend *a = sym_cpu_backend_create(&w, SYM_PREC_FP64, SLOTS, &e),
                *b = sym_cpu_backend_create(&w, SYM_PREC_FP64, SLOTS, &e);
    if (!a || !b) return fprintf(stderr, "cpu backend: %s\n", e.msg), 1;
    float *x = malloc((size_t)CHUNK * F * sizeof *x);
    double oa[CHUNK * 4], ob[CHUNK * 4];
    unsigned char ok[CHUNK];
    int32_t sl[CHUNK];
    int same = 1, all_ok = 1, max_rep = 0;
    for (int it = 0; it < 40; it++) {
        int B = 1 + (int)(next_u32() % CHUNK);
        for (int r = 0; r < B; r++) {
            sl[r] = (int32_t)(next_u32() % 6);
            for (int i = 0; i < F; i++) x[(size_t)r * F + i] = frand();
        }
        for (int r = 0, n; r < B; r++) {
            n = 0;
            for (int q = 0; q <= r; q++) n += sl[q] == sl[r];
            if (n > max_rep) max_rep = n;
        }
        all_ok &= !sym_backend_step_runs(a, B, sl, x, oa, ok, &e);
        for (int r = 0; r < B; r++) all_ok &= ok[r] == 1;
        for (int r = 0; r < B; r++) all_ok &= !sym_backend_step(b, 1, &sl[r], x + (size_t)r * F, ob + 4 * r, &e);
        same &= !memcmp(oa, ob, (size_t)B * 4 * sizeof *oa);
    }
    CHECKV(all_ok, "40 random batches of 1..%d rows over 6 slots stepped, every row ok", CHUNK);
    CHECKV(same && same_slots(a, b, 6),
           "random batches (a slot up to %d times in one) equal each row alone in row order: outputs and states",
           max_rep);

    /* bad arguments step nothing */
    int32_t bad[3] = {2, 2, SLOTS};
    memset(ok, 7, sizeof ok);
    int rc = sym_backend_step_runs(a, 3, bad, x, oa, ok, &e);
    CHECKV(rc && !ok[0] && !ok[1] && !ok[2] && same_slots(a, b, 6), "a slot out of range: rejected, nothing stepped (%s)",
           e.msg);
    rc = sym_backend_step_runs(a, a->max_batch + 1, bad, x, oa, NULL, &e);
    CHECKV(rc && same_slots(a, b, 6), "B above max_batch: rejected (%s)", e.msg);
    rc = sym_backend_step_runs(a, 0, bad, x, oa, ok, &e);
    CHECKV(rc, "B = 0: rejected (%s)", e.msg);

    /* a failing second pass: the first pass's rows stand */
    failing_ops = *a->ops;
    cpu_step = failing_ops.step;
    failing_ops.step = failing_step;
    const sym_backend_ops *real = a->ops;
    a->ops = &failing_ops;
    calls = 0, fail_at = 2;
    int32_t two[3] = {3, 4, 3};
    rc = sym_backend_step_runs(a, 3, two, x, oa, ok, &e);
    a->ops = real;
    int first_ok = rc && ok[0] && ok[1] && !ok[2] && strstr(e.msg, "pass 2 of 2") != NULL;
    rc = sym_backend_step(b, 2, two, x, ob, &e); /* slots 3 and 4 once, as pass 1 did */
    CHECKV(first_ok && !rc && !memcmp(oa, ob, 8 * sizeof *oa) && same_slots(a, b, 6),
           "a failed second pass: the first pass's rows stepped and answered, the rest not (%s)", e.msg);

    /* a backend with step_runs, max_run 2: random batches as before */
    sym_backend *c = sym_cpu_backend_create(&w, SYM_PREC_FP64, SLOTS, &e);
    if (!c) return fprintf(stderr, "cpu backend: %s\n", e.msg), 1;
    for (int sl = 0; sl < 6; sl++) { /* the states a and b reached */
        void *buf = malloc(a->slot_bytes);
        if (!buf || a->ops->export_slot(a, sl, buf, &e) || c->ops->import_slot(c, sl, buf, &e)) return 1;
        free(buf);
    }
    sym_backend_ops runs_ops = *c->ops;
    cpu_step = runs_ops.step;
    runs_ops.step_runs = runs_step;
    c->ops = &runs_ops;
    c->max_run = 2;
    same = 1, all_ok = 1;
    for (int it = 0; it < 30; it++) {
        int B = 1 + (int)(next_u32() % CHUNK);
        for (int r = 0; r < B; r++) {
            sl[r] = (int32_t)(next_u32() % 4);
            for (int i = 0; i < F; i++) x[(size_t)r * F + i] = frand();
        }
        all_ok &= !sym_backend_step_runs(c, B, sl, x, oa, ok, &e);
        for (int r = 0; r < B; r++) all_ok &= ok[r] == 1;
        for (int r = 0; r < B; r++) all_ok &= !sym_backend_step(b, 1, &sl[r], x + (size_t)r * F, ob + 4 * r, &e);
        same &= !memcmp(oa, ob, (size_t)B * 4 * sizeof *oa);
    }
    CHECKV(all_ok && same && same_slots(c, b, 6),
           "through step_runs (max_run 2): outputs and states equal each row alone in row order");
    CHECKV(!layout_bad && longest_run == 2, "step_runs got each slot's rows together, at most 2 (longest %d)",
           longest_run);
    sym_backend_destroy(c);

    free(x), free(ref), free(got);
    sym_backend_destroy(a), sym_backend_destroy(b);
    sym_requests_free(&rf);
    sym_predictions_free(&exp);
    sym_weights_free(&w);
    printf("%s: test_step_runs\n", failures ? "FAIL" : "PASS");
    return failures != 0;
}
