#include "tests/kernels/golden_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sym_test_load_golden(const char *dir, sym_weights *w, sym_request_file *rf, sym_prediction_file *exp, sym_err *e) {
    char path[1024];
    if (sym_weights_load_dir(w, dir, e)) return -1;
    snprintf(path, sizeof path, "%s/requests.csv", dir);
    if (sym_requests_load(path, w->cfg.features, rf, e)) return -1;
    snprintf(path, sizeof path, "%s/expected_f64.csv", dir);
    return exp ? sym_predictions_load(path, exp, e) : 0;
}

int sym_test_run_requests(sym_backend *b, const sym_request_file *rf, int max_batch, double *out, sym_err *e) {
    int n = rf->n, F = rf->n_features, n_sym = 0;
    int *slot_of = malloc((size_t)n * sizeof *slot_of), *done = calloc((size_t)n, sizeof *done);
    char(*names)[SYM_SYMBOL_MAX + 1] = malloc((size_t)(n ? n : 1) * sizeof *names);
    int32_t *slots = malloc((size_t)max_batch * sizeof *slots);
    int *rows = malloc((size_t)max_batch * sizeof *rows);
    float *feat = malloc((size_t)max_batch * (size_t)F * sizeof *feat);
    double *o = malloc((size_t)max_batch * 4 * sizeof *o);
    int *used = calloc((size_t)(n ? n : 1), sizeof *used);
    int rc = 0;
    if (!slot_of || !done || !names || !slots || !rows || !feat || !o || !used) {
        rc = sym_fail(e, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int s = 0;
        while (s < n_sym && strcmp(names[s], rf->rows[i].symbol)) s++;
        if (s == n_sym) strcpy(names[n_sym++], rf->rows[i].symbol);
        slot_of[i] = s;
    }
    if (n_sym > b->n_slots) {
        rc = sym_fail(e, "%d symbols, backend has %d slots", n_sym, b->n_slots);
        goto out;
    }
    int remaining = n, first = 0, step = 0;
    while (remaining) {
        /* one step: scan from the oldest undone request, take each symbol's
         * oldest undone request once */
        step++;
        int B = 0;
        while (first < n && done[first]) first++;
        for (int i = first; i < n && B < max_batch; i++) {
            if (done[i]) continue;
            int s = slot_of[i];
            if (used[s] == step) continue;
            used[s] = step; /* later requests of s wait for a later step */
            slots[B] = s;
            rows[B] = i;
            memcpy(feat + (size_t)B * F, rf->rows[i].features, (size_t)F * sizeof *feat);
            B++;
        }
        if (sym_backend_step(b, B, slots, feat, o, e)) {
            rc = -1;
            goto out;
        }
        for (int r = 0; r < B; r++) {
            memcpy(out + (size_t)rows[r] * 4, o + (size_t)r * 4, 4 * sizeof *o);
            done[rows[r]] = 1;
        }
        remaining -= B;
    }
out:
    free(slot_of), free(done), free(names), free(slots), free(rows), free(feat), free(o), free(used);
    return rc;
}

int sym_test_compare(const sym_request_file *rf, const double *out, const sym_prediction_file *exp, double max_err[4],
                     double mean_err[4], sym_err *e) {
    if (exp->n != rf->n) return sym_fail(e, "expected file has %d rows, requests %d", exp->n, rf->n);
    for (int t = 0; t < 4; t++) max_err[t] = mean_err[t] = 0;
    for (int i = 0; i < rf->n; i++) {
        if (exp->rows[i].uid != rf->rows[i].uid) return sym_fail(e, "row %d: unique_id %llu vs %llu", i,
                                                                   (unsigned long long)exp->rows[i].uid,
                                                                   (unsigned long long)rf->rows[i].uid);
        for (int t = 0; t < 4; t++) {
            double d = fabs(out[(size_t)i * 4 + t] - exp->rows[i].pred[t]);
            if (!(d <= max_err[t])) max_err[t] = isnan(d) ? INFINITY : d;
            mean_err[t] += d / rf->n;
        }
    }
    return 0;
}
