/* Built when nvcc is absent: the CUDA engine reports that it does not exist. */
#include "kernels/cuda_backend.h"

int sym_cuda_device_count(void) { return 0; }

sym_backend *sym_cuda_backend_create(const sym_weights *w, const sym_precision tower_prec[SYM_TOWERS], int device,
                                     int n_slots, int max_batch, sym_err *e) {
    (void)w, (void)tower_prec, (void)device, (void)n_slots, (void)max_batch;
    sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
    return NULL;
}

sym_backend *sym_cuda_backend_create_synthetic(const sym_model_config *cfg, uint64_t seed,
                                               const sym_precision tower_prec[SYM_TOWERS], int device, int n_slots,
                                               int max_batch, sym_err *e) {
    (void)cfg, (void)seed, (void)tower_prec, (void)device, (void)n_slots, (void)max_batch;
    sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
    return NULL;
}

int sym_cuda_synthetic_to_host(sym_weights *w, uint64_t seed, int device, sym_err *e) {
    (void)w, (void)seed, (void)device;
    return sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
}
