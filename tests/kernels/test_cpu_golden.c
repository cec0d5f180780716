/* The CPU reference against the reference model's own outputs: fp64 within
 * 1e-9 and fp32 within 1e-4 of expected_f64.csv, on golden_small (39
 * symbols, batched) and golden_long (two symbols, 1,500 steps each). */
#include <stdio.h>
#include <stdlib.h>

#include "kernels/backend.h"
#include "kernels/weights.h"
#include "tests/kernels/golden_run.h"

static int check(const char *dir, sym_precision prec, double tol, int max_batch) {
    char path[4096];
    sym_err e = {{0}};
    sym_weights w;
    sym_request_file rf;
    sym_prediction_file exp;
    if (sym_weights_load_dir(&w, dir, &e)) goto fail0;
    snprintf(path, sizeof path, "%s/requests.csv", dir);
    if (sym_requests_load(path, w.cfg.features, &rf, &e)) goto fail1;
    snprintf(path, sizeof path, "%s/expected_f64.csv", dir);
    if (sym_predictions_load(path, &exp, &e)) goto fail2;
    sym_backend *b = sym_cpu_backend_create(&w, prec, 64, &e);
    if (!b) goto fail3;
    double *out = malloc((size_t)rf.n * 4 * sizeof *out), mx[4], mean[4];
    int rc = sym_test_run_requests(b, &rf, max_batch, out, &e) || sym_test_compare(&rf, out, &exp, mx, mean, &e);
    sym_backend_destroy(b);
    free(out);
    if (rc) goto fail3;
    int ok = mx[0] <= tol && mx[1] <= tol && mx[2] <= tol && mx[3] <= tol;
    printf("%s %s %s B<=%d: max abs err [%.3g %.3g %.3g %.3g] mean [%.3g %.3g %.3g %.3g] (tolerance %g)\n",
           ok ? "PASS" : "FAIL", dir, prec == SYM_PREC_FP64 ? "fp64" : "fp32", max_batch, mx[0], mx[1], mx[2], mx[3],
           mean[0], mean[1], mean[2], mean[3], tol);
    sym_predictions_free(&exp);
    sym_requests_free(&rf);
    sym_weights_free(&w);
    return ok ? 0 : 1;
fail3:
    sym_predictions_free(&exp);
fail2:
    sym_requests_free(&rf);
fail1:
    sym_weights_free(&w);
fail0:
    printf("FAIL %s: %s\n", dir, e.msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s GOLDEN_DIR...\n", argv[0]);
        return 2;
    }
    int fails = 0;
    for (int i = 1; i < argc; i++) {
        fails += check(argv[i], SYM_PREC_FP64, 1e-9, 64);
        fails += check(argv[i], SYM_PREC_FP64, 1e-9, 1);
        fails += check(argv[i], SYM_PREC_FP32, 1e-4, 64);
    }
    return fails ? 1 : 0;
}
