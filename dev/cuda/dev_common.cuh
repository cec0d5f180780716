/* What the dev/cuda programs share: skip without a device (exit 77), a
 * deterministic random fill, a pool of slots for a cell's state, rows with
 * or without runs (kernels/cuda/runs.cuh), the comparison against a CPU
 * fp64 reference, and event timing. Each program checks its kernels, then
 * times them; it exits 1 when a check fails. */
#ifndef SYM_DEV_COMMON_CUH
#define SYM_DEV_COMMON_CUH

#include <algorithm>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "kernels/cuda/runs.cuh"

#define DEV_CK(call) \
    do { \
        cudaError_t err_ = (call); \
        if (err_ != cudaSuccess) { \
            printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
            exit(1); \
        } \
    } while (0)

static int dev_failures;
/* the stream every kernel of a program runs on: a non-blocking one, as the
 * engine's (programmatic dependent launch) */
static cudaStream_t dev_stream;

/* exits 77 (a skip) without a CUDA device; else device 0 and dev_stream
 * (made once) */
static inline void dev_need_gpu(const char *what) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("SKIP %s: no CUDA device\n", what);
        exit(77);
    }
    DEV_CK(cudaSetDevice(0));
    if (!dev_stream) DEV_CK(cudaStreamCreateWithFlags(&dev_stream, cudaStreamNonBlocking));
}

/* uniform in [lo, hi), the same sequence every run */
static inline float dev_rand(float lo, float hi) {
    static uint64_t r = 0x9E3779B97F4A7C15ull;
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    return lo + (hi - lo) * (float)((double)(r >> 11) * 0x1.0p-53);
}
static inline std::vector<float> dev_randv(size_t n, float lo, float hi) {
    std::vector<float> v(n);
    for (auto &x : v) x = dev_rand(lo, hi);
    return v;
}

/* a device copy of v (freed at exit) */
template <typename T> static inline T *dev_up(const std::vector<T> &v) {
    T *d = NULL;
    DEV_CK(cudaMalloc((void **)&d, v.size() * sizeof(T) + 16));
    DEV_CK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    DEV_CK(cudaDeviceSynchronize()); /* a copy from pageable memory may still be in flight: dev_stream does not wait */
    return d;
}
template <typename T> static inline std::vector<T> dev_down(const T *d, size_t n) {
    std::vector<T> v(n);
    DEV_CK(cudaDeviceSynchronize());
    DEV_CK(cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
}

/* A step's rows: B rows over distinct slots, or (runs) the same with
 * every run_every-th slot taking a run of SYM_RUN_MAX rows; len as
 * sym_runs.len. */
struct dev_rows {
    std::vector<int> slots, len;
    int B, n_slots, max;
};
static inline dev_rows dev_make_rows(int n_symbols, int runs) {
    dev_rows r;
    r.n_slots = n_symbols, r.max = 1;
    for (int s = 0; s < n_symbols; s++) {
        const int k = runs && s % 3 == 0 ? SYM_RUN_MAX - s % 2 : 1; /* runs of 4 and 3 among runs of 1 */
        for (int i = 0; i < k; i++) r.slots.push_back(n_symbols - 1 - s), r.len.push_back(i ? 0 : k);
        r.max = k > r.max ? k : r.max;
    }
    r.B = (int)r.slots.size();
    return r;
}

/* worst |got - want| / (|want| + scale), scale = 1e-3 x the largest
 * |want|: a relative error that does not blow up where want crosses 0.
 * fp32 arithmetic against fp64 measures up to ~5e-5 this way (a value at
 * the floor carries an ulp of the largest), so fp32 checks are held to 1e-4;
 * a wrong tap, slot or row errs by O(1). */
static inline double dev_err(const float *got, const double *want, size_t n) {
    double big = 0, worst = 0;
    for (size_t i = 0; i < n; i++) big = fabs(want[i]) > big ? fabs(want[i]) : big;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (fabs(want[i]) + 1e-3 * big + 1e-30);
        if (!(d <= worst)) worst = d; /* NaN too */
    }
    return worst;
}

/* prints and counts a check of `what`: err within bound */
static inline void dev_check(const char *what, double err, double bound) {
    const int ok = err <= bound;
    printf("%s %-52s error %.2e (bound %.0e)\n", ok ? "ok  " : "FAIL", what, err, bound);
    dev_failures += !ok;
}

/* median us of iters calls of launch() (on dev_stream), each between events */
template <typename F> static inline double dev_time_us(int iters, F launch) {
    cudaEvent_t a, b;
    DEV_CK(cudaEventCreate(&a));
    DEV_CK(cudaEventCreate(&b));
    launch();
    std::vector<float> ms((size_t)iters);
    for (int i = 0; i < iters; i++) {
        DEV_CK(cudaEventRecord(a, dev_stream));
        launch();
        DEV_CK(cudaEventRecord(b, dev_stream));
        DEV_CK(cudaEventSynchronize(b));
        DEV_CK(cudaEventElapsedTime(&ms[(size_t)i], a, b));
    }
    DEV_CK(cudaGetLastError());
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    std::sort(ms.begin(), ms.end());
    return 1000.0 * ms[(size_t)iters / 2];
}

/* A program's main: run(symbols, runs, iters) for 1, 8 and 39 symbols,
 * one row each, then (from 3 symbols) with runs; iters from argv[1]
 * (default 20). The exit code says whether every check passed. */
template <typename F> static inline int dev_main(int argc, char **argv, const char *what, F run) {
    dev_need_gpu(what);
    const int iters = argc > 1 ? atoi(argv[1]) : 20;
    const int symbols[] = {1, 8, 39};
    for (int s : symbols)
        for (int runs = 0; runs < 2; runs++)
            if (!runs || s >= 3) run(s, runs, iters);
    return dev_failures != 0;
}

#endif
