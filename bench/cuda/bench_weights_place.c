/* What placing the weights on several GPUs costs, per method
 * (kernels/cuda_backend.h, sym_cuda_weights_place): a host upload to every
 * GPU in parallel, one upload then an NCCL broadcast, one upload then peer
 * copies; with a single-GPU upload as the reference. Each method's first
 * placement is checked bit for bit against the host arena on every GPU.
 * The engine uses AUTO (see the header); the figures in docs/BENCHMARKS.md
 * are why.
 *   bench_weights_place [small|full] [gpus] [repetitions] */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "kernels/cuda/cuda_probe.h"

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* *equal = 1 when the weights placed on `device` are bit-identical to the
 * host arena they came from. */
static int weights_equal(const sym_device_weights *dw, const sym_weights *host, int device, int *equal, sym_err *e) {
    size_t floats = 0;
    const float *a = sym_cuda_device_weights_arena(dw, device, &floats);
    if (!a) return sym_fail(e, "no weights were placed on GPU %d", device);
    if (floats != host->arena_floats) return sym_fail(e, "different arenas");
    const size_t chunk = (size_t)16 << 20;
    float *buf = malloc(chunk * 4);
    if (!buf) return sym_fail(e, "out of memory");
    *equal = 1;
    cudaError_t ce = cudaSetDevice(device);
    for (size_t at = 0; ce == cudaSuccess && at < floats && *equal; at += chunk) {
        size_t n = floats - at < chunk ? floats - at : chunk;
        ce = cudaMemcpy(buf, a + at, n * 4, cudaMemcpyDeviceToHost);
        if (ce == cudaSuccess && memcmp(buf, host->arena + at, n * 4)) *equal = 0;
    }
    free(buf);
    if (ce != cudaSuccess) return sym_fail(e, "reading GPU %d's weights: %s", device, cudaGetErrorString(ce));
    return 0;
}

/* Median ms of reps placements on devs[0..n); checks the first. */
static int time_method(const sym_weights *w, const int *devs, int n, sym_place_method m, int reps, double *ms,
                       sym_err *e) {
    double t[16];
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = sym_now_ns();
        sym_device_weights *dw = sym_cuda_weights_place(w, devs, n, m, e);
        if (!dw) return -1;
        t[r] = (double)(sym_now_ns() - t0) * 1e-6;
        for (int i = 0; r == 0 && i < n; i++) {
            int eq = 0;
            if (weights_equal(dw, w, devs[i], &eq, e)) return sym_cuda_device_weights_free(dw), -1;
            if (!eq) {
                sym_cuda_device_weights_free(dw);
                return sym_fail(e, "%s: GPU %d's weights differ from the host's", sym_place_method_name(m), devs[i]);
            }
        }
        sym_cuda_device_weights_free(dw);
    }
    qsort(t, (size_t)reps, sizeof *t, cmpd);
    *ms = t[reps / 2];
    return 0;
}

int main(int argc, char **argv) {
    const char *size = argc > 1 ? argv[1] : "full";
    int gpus = argc > 2 ? atoi(argv[2]) : 2, reps = argc > 3 ? atoi(argv[3]) : 3;
    int have = sym_cuda_device_count();
    if (have == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    if (gpus < 1 || gpus > SYM_MAX_PLACE_DEVICES || reps < 1 || reps > 16) return fprintf(stderr, "bad arguments\n"), 2;
    if (gpus > have) {
        printf("SKIP: %d GPUs asked, %d present\n", gpus, have);
        return 77;
    }
    sym_err e = {{0}};
    sym_model_config mc = strcmp(size, "full") ? sym_model_config_small() : sym_model_config_full();
    sym_weights w;
    if (sym_weights_alloc(&w, &mc, &e) || sym_cuda_synthetic_to_host(&w, 1, 0, &e)) {
        printf("FAIL %s\n", e.msg);
        return 1;
    }
    int devs[SYM_MAX_PLACE_DEVICES];
    for (int i = 0; i < gpus; i++) devs[i] = i;
    double gb = (double)w.arena_floats * 4e-9;
    printf("# %s model: %.2f GB of fp32 weights onto %d GPU%s, median of %d\n", size, gb, gpus, gpus > 1 ? "s" : "",
           reps);
    printf("%-28s %10s %14s\n", "method", "ms", "GB/s per GPU");
    struct {
        const char *name;
        int n;
        sym_place_method m;
    } runs[] = {{"upload, 1 GPU (reference)", 1, SYM_PLACE_UPLOAD},
                {"upload to each GPU", gpus, SYM_PLACE_UPLOAD},
                {"upload + NCCL broadcast", gpus, SYM_PLACE_NCCL},
                {"upload + peer copies", gpus, SYM_PLACE_PEER}};
    int rc = 0;
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
        if (k > 0 && gpus == 1) break;
        if (runs[k].m == SYM_PLACE_NCCL && !sym_cuda_nccl_available()) {
            printf("%-28s %10s\n", runs[k].name, "(no NCCL in this build)");
            continue;
        }
        double ms = 0;
        if (time_method(&w, devs, runs[k].n, runs[k].m, reps, &ms, &e)) {
            printf("FAIL %s: %s\n", runs[k].name, e.msg);
            rc = 1;
            continue;
        }
        printf("%-28s %10.1f %14.1f\n", runs[k].name, ms, gb / (ms * 1e-3));
    }
    printf("engine default (AUTO) for %d GPU%s: %s\n", gpus, gpus > 1 ? "s" : "",
           gpus == 1 ? "upload" : "peer"); /* SYM_PLACE_AUTO in kernels/cuda/engine/distribute.cu */
    sym_weights_free(&w);
    return rc;
}
