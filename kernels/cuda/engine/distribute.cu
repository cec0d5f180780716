/* Weights onto several GPUs at once (kernels/cuda_backend.h,
 * sym_cuda_weights_place): the host's fp32 arena copied to one device arena
 * per GPU, by one of three methods whose cost bench_weights_place measures:
 * a host upload per GPU (in parallel: each GPU has its own PCIe link), or
 * one upload then an NCCL broadcast, or one upload then peer copies over
 * NVLink in a doubling tree (1 -> 2 -> 4 GPUs). Shards then build their
 * weights from the arena of their own GPU with device-to-device copies. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef SYM_HAVE_NCCL
#include <nccl.h>
#endif

#include "kernels/cuda/engine/engine.cuh"
#include "kernels/cuda/launch.cuh"

extern "C" {
#include "kernels/cuda/cuda_probe.h"
}

struct sym_device_weights {
    int n;
    int devices[SYM_MAX_PLACE_DEVICES];
    float *arena[SYM_MAX_PLACE_DEVICES];
    size_t floats;
    sym_model_config cfg;
};

extern "C" int sym_cuda_nccl_available(void) {
#ifdef SYM_HAVE_NCCL
    return 1;
#else
    return 0;
#endif
}

extern "C" const char *sym_place_method_name(sym_place_method m) {
    switch (m) {
    case SYM_PLACE_UPLOAD: return "upload";
    case SYM_PLACE_PEER: return "peer";
    case SYM_PLACE_NCCL: return "nccl";
    default: return "auto";
    }
}

extern "C" int sym_cuda_enable_peers(int device, sym_err *e) {
    int n = 0;
    CUDA_CHECK(cudaGetDeviceCount(&n));
    CUDA_CHECK(cudaSetDevice(device));
    for (int p = 0; p < n; p++) {
        int can = 0;
        if (p == device) continue;
        CUDA_CHECK(cudaDeviceCanAccessPeer(&can, device, p));
        if (!can) continue;
        cudaError_t ce = cudaDeviceEnablePeerAccess(p, 0);
        if (ce == cudaErrorPeerAccessAlreadyEnabled) cudaGetLastError(); /* enabled by an earlier shard */
        else if (ce != cudaSuccess) return sym_fail(e, "peer access %d -> %d: %s", device, p, cudaGetErrorString(ce));
    }
    return 0;
}

typedef struct {
    const float *src;
    float *dst;
    size_t bytes;
    int device;
    sym_err err;
    int rc;
} upload_job;

static int upload(upload_job *j) {
    sym_err *e = &j->err;
    CUDA_CHECK(cudaSetDevice(j->device));
    CUDA_CHECK(cudaMemcpy(j->dst, j->src, j->bytes, cudaMemcpyHostToDevice));
    return 0;
}

static void *upload_thread(void *arg) {
    upload_job *j = (upload_job *)arg;
    j->rc = upload(j);
    return NULL;
}

/* Host -> every GPU, one thread per GPU. */
static int place_upload(sym_device_weights *dw, const float *host, sym_err *e) {
    upload_job jobs[SYM_MAX_PLACE_DEVICES];
    pthread_t th[SYM_MAX_PLACE_DEVICES];
    int started = 0;
    for (int i = 0; i < dw->n; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].src = host, jobs[i].dst = dw->arena[i], jobs[i].bytes = dw->floats * 4;
        jobs[i].device = dw->devices[i], jobs[i].rc = -1;
        if (pthread_create(&th[i], NULL, upload_thread, &jobs[i])) break;
        started++;
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (started < dw->n) return sym_fail(e, "cannot start upload threads");
    for (int i = 0; i < dw->n; i++)
        if (jobs[i].rc) return sym_fail(e, "upload to GPU %d: %s", dw->devices[i], jobs[i].err.msg);
    return 0;
}

/* GPU 0's arena -> the rest by peer copies, the holders doubling each round. */
static int place_peer(sym_device_weights *dw, sym_err *e) {
    for (int i = 0; i < dw->n; i++)
        if (sym_cuda_enable_peers(dw->devices[i], e)) return -1;
    for (int have = 1; have < dw->n; have *= 2) {
        for (int k = 0; k < have && have + k < dw->n; k++) {
            int to = have + k;
            CUDA_CHECK(cudaSetDevice(dw->devices[to]));
            CUDA_CHECK(cudaMemcpyPeerAsync(dw->arena[to], dw->devices[to], dw->arena[k], dw->devices[k], dw->floats * 4, 0));
        }
        for (int k = 0; k < have && have + k < dw->n; k++) {
            CUDA_CHECK(cudaSetDevice(dw->devices[have + k]));
            CUDA_CHECK(cudaDeviceSynchronize());
        }
    }
    return 0;
}

#ifdef SYM_HAVE_NCCL
#define NCCL_CHECK(call)                                                                                       \
    do {                                                                                                       \
        ncclResult_t r_ = (call);                                                                              \
        if (r_ != ncclSuccess) {                                                                               \
            rc = sym_fail(e, "%s: %s", #call, ncclGetErrorString(r_));                                         \
            goto out;                                                                                          \
        }                                                                                                      \
    } while (0)

/* GPU 0's arena -> the rest by one NCCL broadcast (one process, one
 * communicator per GPU, grouped). */
static int place_nccl(sym_device_weights *dw, sym_err *e) {
    ncclComm_t comms[SYM_MAX_PLACE_DEVICES] = {0};
    int rc = 0, have_comms = 0;
    NCCL_CHECK(ncclCommInitAll(comms, dw->n, dw->devices));
    have_comms = 1;
    NCCL_CHECK(ncclGroupStart());
    for (int i = 0; i < dw->n; i++) {
        if (cudaSetDevice(dw->devices[i]) != cudaSuccess) {
            ncclGroupEnd();
            rc = sym_fail(e, "cudaSetDevice(%d) failed", dw->devices[i]);
            goto out;
        }
        NCCL_CHECK(ncclBroadcast(dw->arena[0], dw->arena[i], dw->floats, ncclFloat, 0, comms[i], 0));
    }
    NCCL_CHECK(ncclGroupEnd());
    for (int i = 0; i < dw->n; i++) {
        cudaError_t ce = cudaSetDevice(dw->devices[i]);
        if (ce == cudaSuccess) ce = cudaDeviceSynchronize();
        if (ce != cudaSuccess) {
            rc = sym_fail(e, "NCCL broadcast on GPU %d: %s", dw->devices[i], cudaGetErrorString(ce));
            goto out;
        }
    }
out:
    for (int i = 0; have_comms && i < dw->n; i++)
        if (comms[i]) ncclCommDestroy(comms[i]);
    return rc;
}
#endif

extern "C" void sym_cuda_device_weights_free(sym_device_weights *dw) {
    if (!dw) return;
    for (int i = 0; i < dw->n; i++)
        if (dw->arena[i]) {
            cudaSetDevice(dw->devices[i]);
            cudaFree(dw->arena[i]);
        }
    free(dw);
}

/* dw's arenas allocated on devices[0..dw->n) and filled from host by m. */
static int place(sym_device_weights *dw, const float *host, const int *devices, sym_place_method m, sym_err *e) {
    for (int i = 0; i < dw->n; i++) {
        for (int k = 0; k < i; k++)
            if (devices[k] == devices[i]) return sym_fail(e, "weights placement: GPU %d listed twice", devices[i]);
        dw->devices[i] = devices[i];
        CUDA_CHECK(cudaSetDevice(devices[i]));
        CUDA_CHECK(cudaMalloc((void **)&dw->arena[i], dw->floats * 4));
    }
    if (m == SYM_PLACE_UPLOAD) return place_upload(dw, host, e);
    CUDA_CHECK(cudaSetDevice(devices[0]));
    CUDA_CHECK(cudaMemcpy(dw->arena[0], host, dw->floats * 4, cudaMemcpyHostToDevice));
    if (m == SYM_PLACE_PEER) return place_peer(dw, e);
#ifdef SYM_HAVE_NCCL
    return place_nccl(dw, e);
#else
    return sym_fail(e, "unreachable: no NCCL");
#endif
}

extern "C" sym_device_weights *sym_cuda_weights_place(const sym_weights *w, const int *devices, int n,
                                                      sym_place_method m, sym_err *e) {
    if (n < 1 || n > SYM_MAX_PLACE_DEVICES) {
        sym_fail(e, "weights placement: %d GPUs (1..%d)", n, SYM_MAX_PLACE_DEVICES);
        return NULL;
    }
    if (m == SYM_PLACE_AUTO) m = n == 1 ? SYM_PLACE_UPLOAD : SYM_PLACE_PEER;
    if (m == SYM_PLACE_NCCL && !sym_cuda_nccl_available()) {
        sym_fail(e, "weights placement: this build has no NCCL");
        return NULL;
    }
    sym_device_weights *dw = (sym_device_weights *)calloc(1, sizeof *dw);
    if (!dw) {
        sym_fail(e, "out of memory");
        return NULL;
    }
    dw->n = n;
    dw->floats = w->arena_floats;
    dw->cfg = w->cfg;
    if (place(dw, w->arena, devices, m, e)) {
        sym_cuda_device_weights_free(dw);
        return NULL;
    }
    return dw;
}

float *sym_eng_device_weights_arena(const sym_device_weights *dw, int device, sym_model_config *cfg) {
    for (int i = 0; dw && i < dw->n; i++)
        if (dw->devices[i] == device) {
            *cfg = dw->cfg;
            return dw->arena[i];
        }
    return NULL;
}

extern "C" int sym_cuda_device_weights_has(const sym_device_weights *dw, int device) {
    sym_model_config cfg;
    return sym_eng_device_weights_arena(dw, device, &cfg) != NULL;
}

extern "C" const float *sym_cuda_device_weights_arena(const sym_device_weights *dw, int device, size_t *floats) {
    sym_model_config cfg;
    const float *a = sym_eng_device_weights_arena(dw, device, &cfg);
    *floats = a ? dw->floats : 0;
    return a;
}
