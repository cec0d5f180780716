/* A CUDA backend's slots: reset, export and import through the host (an
 * export also set aside on the device first, so that steps go on while it
 * crosses), and copied straight to another CUDA backend's (on its GPU or
 * another); the host memory those copies run fastest on. */
#include <stdlib.h>

#include "kernels/cuda/engine/engine.cuh"
extern "C" {
#include "common/log.h"
}

/* malloc, then page-locked for every device (portable). Registering rather
 * than cudaHostAlloc: memory that cannot be pinned (a locked-memory limit)
 * stays usable at the pageable rate, and free needs no record of which. */
static void *host_alloc(size_t bytes) {
    void *p = malloc(bytes);
    if (p && cudaHostRegister(p, bytes, cudaHostRegisterPortable) != cudaSuccess) {
        static int said; /* said once, from whichever thread */
        cudaError_t why = cudaGetLastError(); /* not this thread's next check's error */
        if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
            sym_warn("cuda: %zu bytes of host memory could not be pinned (%s): slots move at the pageable rate", bytes,
                     cudaGetErrorString(why));
    }
    return p;
}

static void host_free(void *p) {
    if (!p) return;
    if (cudaHostUnregister(p) != cudaSuccess) cudaGetLastError(); /* never pinned */
    free(p);
}

const sym_host_mem sym_eng_host_mem = {host_alloc, host_free};

static int check_slot(const cuda_backend *c, int32_t slot, sym_err *e) {
    if (slot < 0 || slot >= c->base.n_slots)
        return sym_fail(e, "slot %d out of range 0..%d", (int)slot, c->base.n_slots - 1);
    return 0;
}

int sym_eng_reset_slot(sym_backend *bb, int32_t slot, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (check_slot(c, slot, e)) return -1;
    CUDA_CHECK(cudaSetDevice(c->device));
    CUDA_CHECK(
        cudaMemcpyAsync(c->pool + (size_t)slot * c->numel, c->init_slot, c->numel * 4, cudaMemcpyDeviceToDevice, c->s));
    CUDA_CHECK(cudaStreamSynchronize(c->s));
    return 0;
}

int sym_eng_export_slot(sym_backend *bb, int32_t slot, void *dst, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (check_slot(c, slot, e)) return -1;
    CUDA_CHECK(cudaSetDevice(c->device));
    CUDA_CHECK(cudaMemcpy(dst, c->pool + (size_t)slot * c->numel, c->numel * 4, cudaMemcpyDeviceToHost));
    return 0;
}

int sym_eng_export_begin(sym_backend *bb, int32_t slot, void *dst, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (check_slot(c, slot, e)) return -1;
    if (c->exporting && sym_eng_export_end(bb, 1, e) < 0) return -1;
    CUDA_CHECK(cudaSetDevice(c->device));
    /* the device copy on the step's stream: it runs after the steps before
     * and before those after, which then run beside the copy to the host */
    CUDA_CHECK(cudaMemcpyAsync(c->stage, c->pool + (size_t)slot * c->numel, c->numel * 4, cudaMemcpyDeviceToDevice, c->s));
    CUDA_CHECK(cudaEventRecord(c->ev_staged, c->s));
    CUDA_CHECK(cudaStreamWaitEvent(c->cs, c->ev_staged, 0));
    CUDA_CHECK(cudaMemcpyAsync(dst, c->stage, c->numel * 4, cudaMemcpyDeviceToHost, c->cs));
    CUDA_CHECK(cudaEventRecord(c->ev_landed, c->cs));
    c->exporting = 1;
    return 0;
}

int sym_eng_export_end(sym_backend *bb, int block, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (!c->exporting) return sym_fail(e, "no export under way");
    CUDA_CHECK(cudaSetDevice(c->device));
    cudaError_t ce = block ? cudaEventSynchronize(c->ev_landed) : cudaEventQuery(c->ev_landed);
    if (ce == cudaErrorNotReady) return 0;
    c->exporting = 0;
    if (ce != cudaSuccess) return sym_fail(e, "cuda: an export's copy to the host: %s", cudaGetErrorString(ce));
    return 1;
}

int sym_eng_import_slot(sym_backend *bb, int32_t slot, const void *src, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (check_slot(c, slot, e)) return -1;
    CUDA_CHECK(cudaSetDevice(c->device));
    /* on the step's stream: after an export's device copy still to run
     * (export_begin), which must read the slot as it was */
    CUDA_CHECK(cudaMemcpyAsync(c->pool + (size_t)slot * c->numel, src, c->numel * 4, cudaMemcpyHostToDevice, c->s));
    CUDA_CHECK(cudaStreamSynchronize(c->s));
    return 0;
}

int sym_eng_copy_slot(sym_backend *sb, int32_t ss, sym_backend *db, int32_t ds, sym_err *e) {
    cuda_backend *s = (cuda_backend *)sb, *d = (cuda_backend *)db;
    if (check_slot(s, ss, e) || check_slot(d, ds, e)) return -1;
    if (s->numel != d->numel) return sym_fail(e, "different state layouts");
    float *dp = d->pool + (size_t)ds * d->numel, *sp = s->pool + (size_t)ss * s->numel;
    /* On the destination's own stream, and waited for: a plain cudaMemcpy
     * between device buffers returns before the copy ends and runs on the
     * legacy stream, which the engine's non-blocking streams do not wait
     * for, so the destination's next step could read a half-copied slot.
     * The caller (a test, or the split backend's parts) may be any thread:
     * set the device here. */
    CUDA_CHECK(cudaSetDevice(d->device));
    CUDA_CHECK(cudaMemcpyPeerAsync(dp, d->device, sp, s->device, s->numel * 4, d->s));
    CUDA_CHECK(cudaStreamSynchronize(d->s));
    return 0;
}
