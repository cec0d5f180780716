/* One linear layer alone on the device through one chosen path
 * (linear_run.h). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/convert.cuh"
#include "kernels/cuda/ops/gemm_cublas.cuh"
#include "kernels/cuda/ops/gemm_tf32.cuh"
#include "kernels/cuda/ops/gemm_wg.cuh"
#include "kernels/cuda/ops/gemm_wg32.cuh"
#include "kernels/cuda/ops/gemv_tc.cuh"
#include "kernels/cuda/ops/linear.cuh"

extern "C" {
#include "dev/cuda/linear_run.h"
#include "kernels/cuda_backend.h"
}

namespace {
struct linear_run {
    int device;
    cudaStream_t s = NULL;
    cublasHandle_t h = NULL;
    void *bufs[16] = {};
    int n = 0;
    ~linear_run() {
        cudaSetDevice(device);
        if (s) cudaStreamSynchronize(s);
        for (int i = 0; i < n; i++) cudaFree(bufs[i]);
        if (h) cublasDestroy(h);
        if (s) cudaStreamDestroy(s);
    }
    int alloc(void **p, size_t bytes, sym_err *e) {
        if (n == 16) return sym_fail(e, "too many buffers");
        CUDA_CHECK(cudaMalloc(p, bytes ? bytes : 16));
        bufs[n++] = *p;
        return 0;
    }
};

int cmp_f(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}
} // namespace

extern "C" int sym_cuda_linear_run(int device, sym_linear_path path, const float *W, const float *bias, int out, int in,
                                   int blk_rows, int xwrap, int bf16, const float *x, int ldx, float *y, int ldy, int B,
                                   int flags, int iters, float *us, sym_err *e) {
    linear_run r;
    r.device = device;
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&r.s, cudaStreamNonBlocking));
    if (cublasCreate(&r.h) != CUBLAS_STATUS_SUCCESS || cublasSetStream(r.h, r.s) != CUBLAS_STATUS_SUCCESS)
        return sym_fail(e, "cuBLAS setup failed");
    size_t wn = (size_t)out * in;
    float *dW32, *dB = NULL, *dx, *dy;
    void *dW;
    int n_sm = 0, cc = 0, ccm = 0;
    const int n_cnt = sym_splitk_counters(out);
    CUDA_CHECK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&ccm, cudaDevAttrComputeCapabilityMinor, device));
    const int wgp = path == SYM_LINEAR_WG || path == SYM_LINEAR_WG32;
    if (wgp && !(cc == 9 && ccm == 0)) return sym_fail(e, "the wgmma paths need an sm_90 device");
    sym_gemm_ws ws = {};
    ws.h = r.h;
    if (r.alloc((void **)&dW32, wn * 4, e) || r.alloc(&dW, wn * (bf16 ? 2 : 4), e) ||
        (bias && r.alloc((void **)&dB, (size_t)out * 4, e)) || r.alloc((void **)&dx, (size_t)B * ldx * 4, e) ||
        r.alloc((void **)&dy, (size_t)B * ldy * 4, e) || r.alloc((void **)&ws.xs, 3 * (size_t)B * in * xwrap * 2, e) ||
        r.alloc((void **)&ws.y2, 3 * (size_t)B * out * 4, e) ||
        r.alloc((void **)&ws.sk_part, sym_splitk_part_floats(n_sm, out) * 4, e) ||
        r.alloc((void **)&ws.sk_cnt, (size_t)n_cnt * sizeof(int), e) ||
        r.alloc((void **)&ws.xs2, 3 * (size_t)B * out * 2, e) ||
        (path == SYM_LINEAR_WG32 && r.alloc((void **)&ws.xs32, sym_gemm_wg32_xs_floats(in * xwrap) * 4, e)))
        return -1;
    /* everything on r.s (a non-blocking stream: a plain cudaMemcpy from
     * pageable memory may still be in flight when r.s runs), then a sync
     * so the layer's launch finds it all in place */
    CUDA_CHECK(cudaMemcpyAsync(dW32, W, wn * 4, cudaMemcpyHostToDevice, r.s));
    if (bf16) sym_f32_to_bf16_dev(r.s, dW32, (__nv_bfloat16 *)dW, wn);
    else CUDA_CHECK(cudaMemcpyAsync(dW, dW32, wn * 4, cudaMemcpyDeviceToDevice, r.s));
    CUDA_CHECK(cudaGetLastError());
    if (bias) CUDA_CHECK(cudaMemcpyAsync(dB, bias, (size_t)out * 4, cudaMemcpyHostToDevice, r.s));
    CUDA_CHECK(cudaMemcpyAsync(dx, x, (size_t)B * ldx * 4, cudaMemcpyHostToDevice, r.s));
    CUDA_CHECK(cudaMemcpyAsync(dy, y, (size_t)B * ldy * 4, cudaMemcpyHostToDevice, r.s));
    CUDA_CHECK(cudaMemsetAsync(ws.sk_cnt, 0, (size_t)n_cnt * sizeof(int), r.s));
    CUDA_CHECK(cudaStreamSynchronize(r.s));
    ws.n_sm = n_sm, ws.sk_cnt_n = n_cnt, ws.wg_on = wgp;
    ws.tf32_min = INT_MAX, ws.tf32_max = 0;
    ws.wg_min = path == SYM_LINEAR_WG ? 1 : INT_MAX, ws.wg_max = path == SYM_LINEAR_WG ? INT_MAX : 0;
    ws.wg32_min = path == SYM_LINEAR_WG32 ? 1 : INT_MAX, ws.wg32_max = path == SYM_LINEAR_WG32 ? INT_MAX : 0;
    ws.gemm_min = path == SYM_LINEAR_OWN ? INT_MAX : 1;
    ws.blk_own_max = 0;
    ws.tc_min = INT_MAX, ws.tc_max = 0;
    sym_cuda_tuning tu;
    sym_cuda_tuning_defaults(&tu);
    ws.tc_ctas = tu.bf16_mma_ctas_per_sm;
    ws.wg_grid_pct = tu.bf16_wgmma_sm_pct[SYM_TOWER_XLSTM], ws.wg_smem = tu.bf16_wgmma_smem_kb * 1024;
    ws.wg32_grid_pct = tu.fp32_wgmma_sm_pct, ws.wg32_smem = tu.fp32_wgmma_smem_kb * 1024;
    sym_dlin L = {dW, dB, out, in, blk_rows, xwrap, bf16};
    /* the bf16 paths that read x's terms get them as in the engine,
     * written before the layer (by the producer there): timed alone */
    if (bf16 && (path == SYM_LINEAR_CUBLAS || path == SYM_LINEAR_WG)) {
        sym_gemv_split(r.s, &ws, dx, ldx, blk_rows < out ? xwrap * in : in, B);
        flags |= GEMV_X_SPLIT;
    }
    auto launch = [&]() {
        return path == SYM_LINEAR_TC     ? sym_gemv_tc(r.s, &ws, &L, dx, ldx, dy, ldy, B, flags)
               : path == SYM_LINEAR_TF32 ? sym_gemm_tf32(r.s, &ws, &L, dx, ldx, dy, ldy, B, flags)
               : path == SYM_LINEAR_WG   ? sym_gemm_wg(r.s, &ws, &L, ws.xs, dy, ldy, B, flags)
               : path == SYM_LINEAR_WG32 ? sym_gemm_wg32(r.s, &ws, &L, dx, ldx, dy, ldy, B, flags)
                                         : sym_gemv(r.s, &ws, &L, dx, ldx, dy, ldy, B, flags);
    };
    const int tensor = path == SYM_LINEAR_TC || path == SYM_LINEAR_TF32 || wgp;
    if (tensor && cc < 8) return sym_fail(e, "the tensor-core paths need sm_80 or newer");
    int rc = launch();
    if (tensor && rc == 1) return sym_fail(e, "this layer or B does not fit the tensor-core path");
    if (rc) return sym_fail(e, "cuBLAS status %d", rc);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(y, dy, (size_t)B * ldy * 4, cudaMemcpyDeviceToHost, r.s));
    CUDA_CHECK(cudaStreamSynchronize(r.s));
    if (flags & GEMV_SPLIT_OUT) {
        /* the output's three terms, for the next layer: they sum to it */
        const size_t n = (size_t)B * out;
        uint16_t *t = (uint16_t *)malloc(3 * n * 2);
        if (!t) return sym_fail(e, "out of memory");
        cudaError_t ce = cudaMemcpy(t, ws.xs2, 3 * n * 2, cudaMemcpyDeviceToHost);
        double worst = 0;
        for (size_t i = 0; ce == cudaSuccess && i < n; i++) {
            double v = 0, want = y[(i / out) * ldy + i % out];
            for (int p = 0; p < 3; p++) {
                uint32_t u = (uint32_t)t[p * n + i] << 16;
                float f;
                memcpy(&f, &u, 4);
                v += f;
            }
            double d = fabs(v - want) / (fabs(want) + 1e-30);
            if (!(d <= worst)) worst = d;
        }
        free(t);
        CUDA_CHECK(ce);
        if (!(worst <= 1e-6)) return sym_fail(e, "the output's split terms miss it by %.3g (relative)", worst);
    }
    if (iters > 0) {
        /* one launch per event pair; the output accumulates garbage now */
        cudaEvent_t a, b;
        CUDA_CHECK(cudaEventCreate(&a));
        CUDA_CHECK(cudaEventCreate(&b));
        float *ms = (float *)malloc((size_t)iters * sizeof(float));
        if (!ms) return sym_fail(e, "out of memory");
        for (int i = 0; i < iters && !rc; i++) {
            cudaEventRecord(a, r.s);
            rc = launch();
            cudaEventRecord(b, r.s);
            cudaEventSynchronize(b);
            cudaEventElapsedTime(&ms[i], a, b);
        }
        cudaError_t ce = cudaGetLastError();
        qsort(ms, (size_t)iters, sizeof(float), cmp_f);
        *us = ms[iters / 2] * 1000.0f;
        free(ms);
        cudaEventDestroy(a);
        cudaEventDestroy(b);
        if (ce != cudaSuccess) return sym_fail(e, "timing: %s", cudaGetErrorString(ce));
    }
    return 0;
}

extern "C" int sym_cuda_device_sm90(int device) {
    int cc = 0, ccm = 0;
    if (cudaDeviceGetAttribute(&cc, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&ccm, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
        return 0;
    return cc == 9 && ccm == 0;
}
