/* bench/cuda/cuda_util.h over the CUDA runtime. */
#include "bench/cuda/cuda_util.h"

#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>

#define CK(call) \
    do { \
        cudaError_t err_ = (call); \
        if (err_ != cudaSuccess) return sym_fail(e, "%s: %s", #call, cudaGetErrorString(err_)); \
    } while (0)

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

static int time_copies(void *d, const void *s, size_t bytes, cudaEvent_t a, cudaEvent_t b, float *ms, sym_err *e) {
    CK(cudaMemcpy(d, s, bytes, cudaMemcpyDeviceToDevice));
    for (int i = 0; i < 12; i++) {
        CK(cudaEventRecord(a, 0));
        CK(cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, 0));
        CK(cudaEventRecord(b, 0));
        CK(cudaEventSynchronize(b));
        CK(cudaEventElapsedTime(&ms[i], a, b));
    }
    return 0;
}

int bench_copy_bandwidth(int device, size_t bytes, double *gbps, sym_err *e) {
    CK(cudaSetDevice(device));
    void *s = NULL, *d = NULL;
    cudaEvent_t a = NULL, b = NULL;
    float ms[12];
    int rc = cudaMalloc(&s, bytes) || cudaMalloc(&d, bytes) || cudaEventCreate(&a) || cudaEventCreate(&b)
                 ? sym_fail(e, "allocating %zu bytes twice on GPU %d", bytes, device)
                 : time_copies(d, s, bytes, a, b, ms, e);
    if (!rc) {
        qsort(ms, 12, sizeof(float), cmp_float);
        *gbps = 2.0 * (double)bytes / (ms[6] * 1e-3) / 1e9;
    }
    if (a) cudaEventDestroy(a);
    if (b) cudaEventDestroy(b);
    cudaFree(s);
    cudaFree(d);
    return rc;
}

int bench_mem_info(int device, size_t *used, size_t *free_bytes, sym_err *e) {
    CK(cudaSetDevice(device));
    size_t fr, tot;
    CK(cudaMemGetInfo(&fr, &tot));
    *used = tot - fr;
    *free_bytes = fr;
    return 0;
}

int bench_profiler(int on, sym_err *e) {
    CK(on ? cudaProfilerStart() : cudaProfilerStop());
    return 0;
}
