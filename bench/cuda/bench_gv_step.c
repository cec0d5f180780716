/* ms per step of the CUDA engine at full size (H=2048, P=4096, L=12) with
 * synthetic weights, for B = 1, 8, 39, 64, 128 in fp32, bf16 and mixed
 * (RetNet fp32, the rest bf16). Each B: 5 steps of random features first
 * (state non-zero), then the median of CUDA-event timings of graph replays
 * (the input copy from pinned memory, the step, the output copy back; not
 * the host's memcpy into the pinned block). The HBM floor is (weight bytes
 * + B x slot bytes x 2) / the device-to-device copy bandwidth measured here
 * (bytes read plus written).
 *
 * usage: bench_gv_step [options] [iters (30)] [precisions (fp32,bf16,mixed)] [B list (1,8,39,64,128)]
 *   --config FILE     the tuning from FILE's "cuda" section (docs/CONFIG.md), else the defaults
 *   --state F,F,F,F   each tower's state storage ([xLSTM, Mamba2, RetNet, Hawk], state_precision's
 *                     names: fp32, bf16, fp16); the slot bytes and the floor follow
 *   --towers MASK     step only these towers (bit t: tower t; the others' outputs are NaN)
 *   --back-to-back N  each figure the mean of N replays enqueued with no wait between them
 *   --profile-step    after each B's timings, one more step between cudaProfilerStart and Stop
 *                     (`ncu --profile-from-start off`; tools/ncu-step-table.py)
 *   --runs K          after each B (2..4): B rows as runs of K rows of B/K symbols in one call
 *                     (sym_backend_step_runs, docs/design/runs.md) against one step of those B/K
 *                     symbols, both by the host clock around the call (median of iters)
 *   --run-one         after each B: B rows with one run of two (B - 1 symbols) against B distinct
 *                     symbols, the same way: what the run variants of the state kernels cost */
#include <cuda_runtime_api.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cuda/cuda_util.h"
#include "common/clock.h"
#include "config/config.h"
#include "kernels/cuda/cuda_probe.h"
#include "kernels/state_precision.h"

typedef struct {
    int iters, towers, back_to_back, profile, runs, run_one;
    const char *precisions;
    int Bs[16], nB;
    sym_cuda_tuning tuning;
    sym_mat_store mat[SYM_TOWERS];
} options;

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* B rows' slots: i / k, or with k = -1 one run of two, 0, 0, 1, 2, ... */
static void run_slots(int32_t *sl, int B, int k) {
    for (int i = 0; i < B; i++) sl[i] = k > 0 ? (int32_t)(i / k) : (int32_t)(i ? i - 1 : 0);
}

/* ms[0..iters) sorted: iters calls of step_runs(B rows, run_slots(k)) by the host clock */
static int time_runs(sym_backend *b, int B, int k, const float *feat, double *out, int iters, float *ms, sym_err *e) {
    int32_t sl[128];
    run_slots(sl, B, k);
    for (int it = -2; it < iters; it++) {
        uint64_t t0 = sym_now_ns();
        if (sym_backend_step_runs(b, B, sl, feat, out, NULL, e)) return -1;
        if (it >= 0) ms[it] = (float)((sym_now_ns() - t0) * 1e-6);
    }
    qsort(ms, (size_t)iters, sizeof *ms, cmpf);
    return 0;
}

/* ms[0..iters) sorted: each the mean of n replays of the last step of B
 * rows, timed by events on the backend's stream */
static int time_replays(sym_backend *b, int B, int n, int iters, float *ms, sym_err *e) {
    cudaStream_t s = sym_cuda_backend_stream(b);
    cudaEvent_t a, z;
    if (cudaEventCreate(&a) != cudaSuccess) return sym_fail(e, "creating an event");
    if (cudaEventCreate(&z) != cudaSuccess) {
        cudaEventDestroy(a);
        return sym_fail(e, "creating an event");
    }
    int rc = 0;
    for (int i = 0; i < iters && !rc; i++) {
        rc = cudaEventRecord(a, s) != cudaSuccess ? sym_fail(e, "recording an event") : 0;
        for (int k = 0; k < n && !rc; k++) rc = sym_cuda_backend_replay(b, B, e);
        if (!rc && (cudaEventRecord(z, s) != cudaSuccess || cudaEventSynchronize(z) != cudaSuccess ||
                    cudaEventElapsedTime(&ms[i], a, z) != cudaSuccess))
            rc = sym_fail(e, "timing a replay: %s", cudaGetErrorString(cudaGetLastError()));
        ms[i] /= (float)n;
    }
    cudaEventDestroy(a);
    cudaEventDestroy(z);
    if (!rc) qsort(ms, (size_t)iters, sizeof *ms, cmpf);
    return rc;
}

/* The --runs and --run-one figures of B rows. */
static int bench_runs(sym_backend *b, const char *name, int B, const options *o, const float *feat, double *out,
                      float *ms, sym_err *e) {
    const int it = o->iters, kr = o->runs;
    if (kr >= 2 && kr <= 4 && B >= kr) {
        if (time_runs(b, B, kr, feat, out, it, ms, e)) return sym_failctx(e, "runs");
        const float m_runs = ms[it / 2];
        for (int i = 0; i < B * 4; i++)
            if (!isfinite(out[i])) printf("WARNING non-finite output %s B=%d runs of %d\n", name, B, kr);
        if (time_runs(b, B / kr, 1, feat, out, it, ms, e)) return sym_failctx(e, "one per symbol");
        printf("BENCH-RUN | %s | %d rows | %d symbols x %d | runs %.3f ms | one row each %.3f ms | %d such steps %.3f "
               "ms |\n",
               name, B, B / kr, kr, m_runs, ms[it / 2], kr, kr * ms[it / 2]);
    }
    if (o->run_one && B >= 2) {
        if (time_runs(b, B, -1, feat, out, it, ms, e)) return sym_failctx(e, "one run");
        const float m_one_run = ms[it / 2];
        if (o->profile) { /* one more such step for ncu --profile-from-start off */
            int32_t sl[128];
            run_slots(sl, B, -1);
            if (bench_profiler(1, e) || sym_backend_step_runs(b, B, sl, feat, out, NULL, e) || bench_profiler(0, e))
                return sym_failctx(e, "profiled step with a run");
        }
        if (time_runs(b, B, 1, feat, out, it, ms, e)) return sym_failctx(e, "distinct");
        printf("BENCH-RUN-ONE | %s | %d rows | one run of 2, %d distinct: %.3f ms | %d distinct: %.3f ms |\n", name, B,
               B - 2, m_one_run, B, ms[it / 2]);
    }
    return 0;
}

/* Every B of one precision on a fresh backend. */
static int bench_precision(const char *name, const sym_precision prec[SYM_TOWERS], const options *o, double bw,
                           sym_err *e) {
    const sym_model_config cfg = sym_model_config_full();
    const int n_slots = 130, F = cfg.features;
    static unsigned long long r = 0x9e3779b97f4a7c15ull;
    int32_t slots[128];
    for (int i = 0; i < 128; i++) slots[i] = (int32_t)i;
    float *ms = malloc((size_t)o->iters * sizeof *ms), *feat = malloc((size_t)128 * F * sizeof *feat);
    double *out = malloc((size_t)128 * SYM_TOWERS * sizeof *out);
    sym_backend *b =
        ms && feat && out ? sym_cuda_backend_create_synthetic(&cfg, 42, prec, o->mat, 0, n_slots, 128, &o->tuning, e) : NULL;
    if (!b) {
        int oom = !ms || !feat || !out;
        free(ms), free(feat), free(out);
        return oom ? sym_fail(e, "out of memory") : sym_failctx(e, "create %s", name);
    }
    size_t used = 0, fr = 0;
    int rc = bench_mem_info(0, &used, &fr, e) || (o->towers != 15 && sym_backend_set_towers(b, o->towers, e));
    const double wb = (double)sym_cuda_backend_weight_bytes(b), sb = (double)b->slot_bytes;
    const long fit = n_slots + (long)((double)fr / sb);
    for (int bi = 0; bi < o->nB && !rc; bi++) {
        const int B = o->Bs[bi];
        for (int s = 0; s < 5 && !rc; s++) {
            for (int i = 0; i < B * F; i++) {
                r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                feat[i] = (float)((double)(r >> 11) * 0x1.0p-53 * 4.0 - 2.0);
            }
            rc = sym_backend_step(b, B, slots, feat, out, e);
        }
        for (int i = 0; !rc && i < B * 4; i++)
            if (!isfinite(out[i]) && (o->towers >> (i % 4) & 1)) printf("WARNING non-finite output %s B=%d\n", name, B);
        if (rc || time_replays(b, B, o->back_to_back, o->iters, ms, e)) {
            rc = -1;
            break;
        }
        if (o->profile &&
            (bench_profiler(1, e) || sym_backend_step(b, B, slots, feat, out, e) || bench_profiler(0, e))) {
            rc = -1;
            break;
        }
        const double med = ms[o->iters / 2], floor_ms = (wb + 2.0 * B * sb) / (bw * 1e9) * 1e3;
        printf("BENCH | %s | %d | %.3f | %.3f | %.3f | %.2f | %.2f | %.1f | %ld |\n", name, B, med, ms[0], floor_ms,
               med / floor_ms, wb / 1e9, (double)used / 1e9, fit);
        rc = bench_runs(b, name, B, o, feat, out, ms, e);
        fflush(stdout);
    }
    sym_backend_destroy(b);
    free(ms), free(feat), free(out);
    return rc;
}

static int parse_bs(const char *arg, options *o) {
    o->nB = 0;
    for (const char *p = arg; *p && o->nB < 16;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 128 || (*end && *end != ',')) return -1;
        o->Bs[o->nB++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return o->nB ? 0 : -1;
}

/* "F,F,F,F" of state_precision's names into each tower's matrix storage */
static int parse_state(const char *arg, sym_mat_store mat[SYM_TOWERS], sym_err *e) {
    sym_state_precision sp;
    sym_state_precision_native(&sp);
    char buf[64];
    snprintf(buf, sizeof buf, "%s", arg);
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    for (int t = 0; t < SYM_TOWERS; t++, tok = strtok_r(NULL, ",", &save))
        if (!tok || sym_state_format_parse(tok, &sp.tower[t]))
            return sym_fail(e, "--state: four of fp32, bf16, fp16, comma-separated");
    return tok ? sym_fail(e, "--state: four formats") : sym_state_stores(&sp, mat, e);
}

static int parse_options(int argc, char **argv, options *o, sym_err *e) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"towers", required_argument, NULL, 't'},
                                         {"back-to-back", required_argument, NULL, 'n'},
                                         {"profile-step", no_argument, NULL, 'p'},
                                         {"runs", required_argument, NULL, 'r'},
                                         {"run-one", no_argument, NULL, 'o'},
                                         {"state", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    *o = (options){.iters = 30,
                   .towers = 15,
                   .back_to_back = 1,
                   .precisions = "fp32,bf16,mixed",
                   .Bs = {1, 8, 39, 64, 128},
                   .nB = 5};
    sym_cuda_tuning_defaults(&o->tuning);
    sym_config cfg;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            sym_config_defaults(&cfg);
            if (sym_config_load(&cfg, optarg, e)) return -1;
            o->tuning = cfg.cuda;
            break;
        case 't':
            o->towers = atoi(optarg);
            break;
        case 'n':
            o->back_to_back = atoi(optarg);
            break;
        case 'p':
            o->profile = 1;
            break;
        case 'r':
            o->runs = atoi(optarg);
            break;
        case 'o':
            o->run_one = 1;
            break;
        case 's':
            if (parse_state(optarg, o->mat, e)) return -1;
            break;
        default:
            return sym_fail(e, "usage: bench_gv_step [options] [iters] [precisions] [B list] (see its source)");
        }
    }
    if (optind < argc) o->iters = atoi(argv[optind++]);
    if (optind < argc) o->precisions = argv[optind++];
    if (optind < argc && parse_bs(argv[optind++], o)) return sym_fail(e, "B list: integers 1..128, comma-separated");
    if (optind < argc) return sym_fail(e, "unexpected argument '%s'", argv[optind]);
    if (o->iters < 1 || o->iters > 100000) return sym_fail(e, "iters: 1..100000");
    if (o->towers < 1 || o->towers > 15) return sym_fail(e, "--towers: a mask 1..15");
    if (o->back_to_back < 1 || o->back_to_back > 1000) return sym_fail(e, "--back-to-back: 1..1000");
    return 0;
}

int main(int argc, char **argv) {
    sym_err e = {{0}};
    options o;
    if (parse_options(argc, argv, &o, &e)) {
        fprintf(stderr, "bench_gv_step: %s\n", e.msg);
        return 2;
    }
    if (sym_cuda_device_count() == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    double bw;
    if (bench_copy_bandwidth(0, (size_t)1 << 30, &bw, &e)) {
        printf("FAIL %s\n", e.msg);
        return 1;
    }
    printf("device-to-device copy: %.0f GB/s (read + write)\n", bw);
    const char *names[3] = {"fp32", "bf16", "mixed"};
    const sym_precision P[3][4] = {{SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32},
                                   {SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_BF16},
                                   {SYM_PREC_BF16, SYM_PREC_BF16, SYM_PREC_FP32, SYM_PREC_BF16}};
    printf("BENCH | prec | B | ms/step (median) | min | floor ms | ratio | weights GB | GPU mem used GB | symbols fit "
           "|\n");
    for (int k = 0; k < 3; k++) {
        if (!strstr(o.precisions, names[k])) continue;
        if (bench_precision(names[k], P[k], &o, bw, &e)) {
            printf("FAIL %s\n", e.msg);
            return 1;
        }
    }
    printf("command:");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    return 0;
}
