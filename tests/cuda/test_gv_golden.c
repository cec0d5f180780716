/* The CUDA engine against the reference model's outputs and the CPU path:
 *  - fp32 weights: within 1e-4 of expected_f64.csv on golden_small and
 *    golden_long (every request, one request per symbol per step, in order),
 *    with the cuBLAS path from B >= 9 and with the own-GEMV path only;
 *  - each tower alone in bf16: its outputs within 2e-4 of the CPU fp64 path
 *    on the same weights rounded to bf16 as the device stores them
 *    (sym_weights_round_bf16: matrices only), golden_small. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda_backend.h"
#include "tests/kernels/golden_run.h"

/* the tuning every backend of the test is created with */
static sym_cuda_tuning tuning;

static int run_cuda(const sym_weights *w, const sym_precision p[4], const sym_request_file *rf, double *out,
                    sym_err *e) {
    sym_backend *b = sym_cuda_backend_create(w, p, NULL, 0, 64, 64, &tuning, e);
    if (!b) return -1;
    int rc = sym_test_run_requests(b, rf, 64, out, e);
    sym_backend_destroy(b);
    return rc;
}

static int golden_fp32(const char *dir) {
    char path[4096];
    sym_err e = {{0}};
    sym_weights w;
    sym_request_file rf;
    sym_prediction_file exp;
    if (sym_weights_load_dir(&w, dir, &e)) goto fail;
    snprintf(path, sizeof path, "%s/requests.csv", dir);
    if (sym_requests_load(path, w.cfg.features, &rf, &e)) goto fail;
    snprintf(path, sizeof path, "%s/expected_f64.csv", dir);
    if (sym_predictions_load(path, &exp, &e)) goto fail;
    double *out = malloc((size_t)rf.n * 4 * sizeof *out), mx[4], mean[4];
    for (int i = 0; i < rf.n * 4; i++) out[i] = NAN; /* poisoned */
    sym_precision p[4] = {SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32};
    if (run_cuda(&w, p, &rf, out, &e) || sym_test_compare(&rf, out, &exp, mx, mean, &e)) goto fail;
    int ok = 1;
    for (int t = 0; t < 4; t++) ok &= mx[t] <= 1e-4; /* NaN fails */
    printf("%s cuda fp32 %s (%d requests): max abs err vs f64 [%.3g %.3g %.3g %.3g] mean [%.3g %.3g %.3g %.3g] tol 1e-4\n",
           ok ? "PASS" : "FAIL", dir, rf.n, mx[0], mx[1], mx[2], mx[3], mean[0], mean[1], mean[2], mean[3]);
    free(out);
    sym_predictions_free(&exp);
    sym_requests_free(&rf);
    sym_weights_free(&w);
    return ok ? 0 : 1;
fail:
    printf("FAIL %s: %s\n", dir, e.msg);
    return 1;
}

static int bf16_tower(const char *dir, int tower) {
    char path[4096];
    sym_err e = {{0}};
    sym_weights w;
    sym_request_file rf;
    if (sym_weights_load_dir(&w, dir, &e)) goto fail;
    snprintf(path, sizeof path, "%s/requests.csv", dir);
    if (sym_requests_load(path, w.cfg.features, &rf, &e)) goto fail;
    double *g = malloc((size_t)rf.n * 4 * sizeof *g), *r = malloc((size_t)rf.n * 4 * sizeof *r);
    for (int i = 0; i < rf.n * 4; i++) g[i] = NAN;
    sym_precision p[4] = {SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32};
    p[tower] = SYM_PREC_BF16;
    if (run_cuda(&w, p, &rf, g, &e)) goto fail;
    sym_weights_round_bf16(&w, 1 << tower);
    sym_backend *cpu = sym_cpu_backend_create(&w, SYM_PREC_FP64, 64, &e);
    if (!cpu) goto fail;
    int rc = sym_test_run_requests(cpu, &rf, 64, r, &e);
    sym_backend_destroy(cpu);
    if (rc) goto fail;
    double mx = 0, mx_other = 0;
    int bad = 0;
    for (int i = 0; i < rf.n; i++)
        for (int t = 0; t < 4; t++) {
            double d = fabs(g[i * 4 + t] - r[i * 4 + t]);
            if (!(d <= 1e30)) bad = 1;
            if (t == tower) mx = d > mx ? d : mx;
            else mx_other = d > mx_other ? d : mx_other;
        }
    int ok = !bad && mx <= 2e-4 && mx_other <= 2e-4;
    printf("%s cuda tower %d bf16 vs cpu fp64 on bf16-rounded weights (%s, %d requests): max abs err %.3g (other towers %.3g) tol 2e-4\n",
           ok ? "PASS" : "FAIL", tower, dir, rf.n, mx, mx_other);
    free(g);
    free(r);
    sym_requests_free(&rf);
    sym_weights_free(&w);
    return ok ? 0 : 1;
fail:
    printf("FAIL %s bf16 tower %d: %s\n", dir, tower, e.msg);
    return 1;
}

int main(int argc, char **argv) {
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    int fails = 0;
    sym_cuda_tuning_defaults(&tuning);
    for (int i = 1; i < argc; i++) fails += golden_fp32(argv[i]);
    if (argc > 1)
        for (int t = 0; t < 4; t++) fails += bf16_tower(argv[1], t);
    /* again with the own GEMV kernels at every B (no cuBLAS) */
    tuning.cublas_min_batch = SYM_CUDA_TUNE_BATCH_MAX;
    printf("-- own GEMV at every B:\n");
    for (int i = 1; i < argc; i++) fails += golden_fp32(argv[i]);
    if (argc > 1)
        for (int t = 0; t < 4; t++) fails += bf16_tower(argv[1], t);
    return fails ? 1 : 0;
}
