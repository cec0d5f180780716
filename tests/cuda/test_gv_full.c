/* Full size (H=2048, P=4096, L=12), synthetic weights (seed 1234, generated
 * on the GPU, bit-identical to the CPU generator): the first N requests of a
 * trace (default tests/data/traces/small.csv, N = 80) through the CPU fp64
 * path and through the CUDA engine in fp32, bf16 and mixed (RetNet fp32).
 * Passes when fp32 is within 2e-4 of fp64 on every output of the first 40
 * requests (issue #3's bound; the error over all N is printed beside it),
 * and mixed's bf16-stored towers within 2e-4 of fp64 run on the same
 * rounded weights (40 requests);
 * prints the accuracy cost of each storage (max and mean abs error per
 * tower).
 * usage: test_cuda_full TRACE.csv [N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_backend.h"
#include "tests/kernels/golden_run.h"

int main(int argc, char **argv) {
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    if (argc < 2) return 2;
    int N = argc > 2 ? atoi(argv[2]) : 80;
    sym_err e = {{0}};
    sym_model_config cfg = sym_model_config_full();
    sym_weights w;
    sym_request_file rf;
    if (sym_weights_alloc(&w, &cfg, &e) || sym_cuda_synthetic_to_host(&w, 1234, 0, &e) ||
        sym_requests_load(argv[1], cfg.features, &rf, &e)) {
        printf("FAIL setup: %s\n", e.msg);
        return 1;
    }
    int n_all = rf.n;
    if (N < rf.n) rf.n = N;
    double *ref = malloc((size_t)rf.n * 4 * sizeof *ref), *got = malloc((size_t)rf.n * 4 * sizeof *got);
    sym_backend *cpu = sym_cpu_backend_create(&w, SYM_PREC_FP64, 64, &e);
    if (!cpu || sym_test_run_requests(cpu, &rf, 64, ref, &e)) {
        printf("FAIL cpu fp64: %s\n", e.msg);
        return 1;
    }
    sym_backend_destroy(cpu);
    /* the CPU fp32 path on the same rows: how much of fp32's error is the
     * model's conditioning rather than the GPU kernels */
    {
        cpu = sym_cpu_backend_create(&w, SYM_PREC_FP32, 64, &e);
        if (!cpu || sym_test_run_requests(cpu, &rf, 64, got, &e)) {
            printf("FAIL cpu fp32: %s\n", e.msg);
            return 1;
        }
        sym_backend_destroy(cpu);
        double mx[4] = {0}, mean[4] = {0};
        for (int i = 0; i < rf.n * 4; i++) {
            double d = fabs(got[i] - ref[i]);
            mx[i % 4] = fmax(mx[i % 4], d);
            mean[i % 4] += d / rf.n;
        }
        double m40 = 0;
        for (int i = 0; i < (rf.n < 40 ? rf.n : 40) * 4; i++) m40 = fmax(m40, fabs(got[i] - ref[i]));
        printf("ACCURACY | cpu-fp32 (reference path) | %.3g, %.3g, %.3g, %.3g | %.3g, %.3g, %.3g, %.3g | first 40: %.3g\n",
               mx[0], mx[1], mx[2], mx[3], mean[0], mean[1], mean[2], mean[3], m40);
    }
    const char *names[3] = {"fp32", "bf16", "mixed"};
    sym_precision P[3][4] = {{SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32},
                             {SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_BF16},
                             {SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_FP32, SYM_PREC_BF16}};
    int fail = 0;
    double outmax[4] = {0};
    for (int i = 0; i < rf.n * 4; i++) outmax[i % 4] = fmax(outmax[i % 4], fabs(ref[i]));
    printf("ACCURACY full size, first %d requests of %s vs CPU fp64 (output max abs [%.3g %.3g %.3g %.3g])\n", rf.n,
           argv[1], outmax[0], outmax[1], outmax[2], outmax[3]);
    printf("ACCURACY | storage | max abs err [xLSTM, Mamba2, RetNet, Hawk] | mean abs err |\n");
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < rf.n * 4; i++) got[i] = NAN;
        sym_backend *g = sym_cuda_backend_create_synthetic(&cfg, 1234, P[k], NULL, 0, 64, 64, NULL, &e);
        if (!g || sym_test_run_requests(g, &rf, 64, got, &e)) {
            printf("FAIL cuda %s: %s\n", names[k], e.msg);
            return 1;
        }
        sym_backend_destroy(g);
        double mx[4] = {0}, mean[4] = {0};
        int bad = 0;
        for (int i = 0; i < rf.n * 4; i++) {
            double d = fabs(got[i] - ref[i]);
            if (!(d < 1e30)) bad = 1;
            mx[i % 4] = fmax(mx[i % 4], d);
            mean[i % 4] += d / rf.n;
        }
        printf("ACCURACY | %s | %.3g, %.3g, %.3g, %.3g | %.3g, %.3g, %.3g, %.3g |%s\n", names[k], mx[0], mx[1], mx[2],
               mx[3], mean[0], mean[1], mean[2], mean[3], bad ? " NON-FINITE" : "");
        if (k == 0) {
            /* issue #3's bound: 2e-4 over the first 40 requests (several
             * symbols, from their initial state); the whole run is printed
             * beside it, and the CPU's own fp32 path above shows how much of
             * it is the RetNet tower's conditioning */
            const int n40 = rf.n < 40 ? rf.n : 40;
            double m40 = 0;
            for (int i = 0; i < n40 * 4; i++) m40 = fmax(m40, fabs(got[i] - ref[i]));
            int worst = 0;
            for (int i = 0; i < rf.n; i++)
                if (fabs(got[4 * i + 2] - ref[4 * i + 2]) > fabs(got[4 * worst + 2] - ref[4 * worst + 2])) worst = i;
            int nth = 1; /* the symbol's how-many-th request */
            for (int i = 0; i < worst; i++) nth += !strcmp(rf.rows[i].symbol, rf.rows[worst].symbol);
            printf("fp32 RetNet: largest error %.3g at request %d, %s's request %d\n",
                   fabs(got[4 * worst + 2] - ref[4 * worst + 2]), worst, rf.rows[worst].symbol, nth);
            int ok = !bad && m40 <= 2e-4;
            printf("%s full-size cuda fp32 vs cpu fp64 over the first %d requests: max abs err %.3g (tol 2e-4); over "
                   "all %d: %.3g [%.3g %.3g %.3g %.3g]\n",
                   ok ? "PASS" : "FAIL", n40, m40, rf.n, fmax(fmax(mx[0], mx[1]), fmax(mx[2], mx[3])), mx[0], mx[1],
                   mx[2], mx[3]);
            fail |= !ok;
        }
        fail |= bad;
    }
    /* mixed vs CPU fp64 on the same weights rounded as the device stores them */
    {
        int n2 = rf.n < 40 ? rf.n : 40;
        rf.n = n2;
        sym_weights_round_bf16(&w, (1 << 0) | (1 << 1) | (1 << 3));
        cpu = sym_cpu_backend_create(&w, SYM_PREC_FP64, 64, &e);
        sym_backend *g = sym_cuda_backend_create_synthetic(&cfg, 1234, P[2], NULL, 0, 64, 64, NULL, &e);
        if (!cpu || !g || sym_test_run_requests(cpu, &rf, 64, ref, &e) || sym_test_run_requests(g, &rf, 64, got, &e)) {
            printf("FAIL mixed vs rounded: %s\n", e.msg);
            return 1;
        }
        sym_backend_destroy(cpu);
        sym_backend_destroy(g);
        double mx[4] = {0};
        for (int i = 0; i < n2 * 4; i++) mx[i % 4] = fmax(mx[i % 4], fabs(got[i] - ref[i])); /* NaN -> fails below */
        /* the bf16-stored towers are held to 2e-4 here; RetNet is fp32 in
         * mixed, so the fp32 check above is its bound (printed here too) */
        int ok = mx[0] <= 2e-4 && mx[1] <= 2e-4 && mx[3] <= 2e-4;
        for (int i = 0; i < n2 * 4; i++) ok &= got[i] == got[i];
        printf("%s full-size cuda mixed vs cpu fp64 on device-rounded weights, %d requests: max abs err [%.3g %.3g "
               "(RetNet, fp32: %.3g) %.3g] (tol 2e-4 on the bf16 towers)\n",
               ok ? "PASS" : "FAIL", n2, mx[0], mx[1], mx[2], mx[3]);
        fail |= !ok;
    }
    rf.n = n_all;
    sym_requests_free(&rf);
    sym_weights_free(&w);
    free(ref), free(got);
    return fail;
}
