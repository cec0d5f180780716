/* Built when nvcc is absent: the CUDA engine reports that it does not exist. */
#include "kernels/cuda_backend.h"

int sym_cuda_device_count(void) { return 0; }

sym_backend *sym_cuda_backend_create(const sym_weights *w, const sym_precision tower_prec[SYM_TOWERS],
                                     const sym_mat_store state_mat[SYM_TOWERS], int device, int n_slots, int max_batch,
                                     const sym_cuda_tuning *tuning, sym_err *e) {
    (void)w, (void)tower_prec, (void)state_mat, (void)device, (void)n_slots, (void)max_batch, (void)tuning;
    sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
    return NULL;
}

sym_backend *sym_cuda_backend_create_synthetic(const sym_model_config *cfg, uint64_t seed,
                                               const sym_precision tower_prec[SYM_TOWERS],
                                               const sym_mat_store state_mat[SYM_TOWERS], int device, int n_slots,
                                               int max_batch, const sym_cuda_tuning *tuning, sym_err *e) {
    (void)cfg, (void)seed, (void)tower_prec, (void)state_mat, (void)device, (void)n_slots, (void)max_batch, (void)tuning;
    sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
    return NULL;
}

int sym_cuda_synthetic_to_host(sym_weights *w, uint64_t seed, int device, sym_err *e) {
    (void)w, (void)seed, (void)device;
    return sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
}

struct sym_device_weights {
    int unused;
};

sym_device_weights *sym_cuda_weights_place(const sym_weights *w, const int *devices, int n, sym_place_method m,
                                           sym_err *e) {
    (void)w, (void)devices, (void)n, (void)m;
    sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
    return NULL;
}

void sym_cuda_device_weights_free(sym_device_weights *dw) { (void)dw; }

int sym_cuda_device_weights_has(const sym_device_weights *dw, int device) {
    (void)dw, (void)device;
    return 0;
}

sym_backend *sym_cuda_backend_create_placed(const sym_device_weights *dw, const sym_precision tower_prec[SYM_TOWERS],
                                            const sym_mat_store state_mat[SYM_TOWERS], int device, int n_slots,
                                            int max_batch, const sym_cuda_tuning *tuning, sym_err *e) {
    (void)dw, (void)tower_prec, (void)state_mat, (void)device, (void)n_slots, (void)max_batch, (void)tuning;
    sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
    return NULL;
}

int sym_cuda_enable_peers(int device, sym_err *e) {
    (void)device;
    return sym_fail(e, "this symserve was built without CUDA (nvcc was not found at configure time)");
}

int sym_cuda_nccl_available(void) { return 0; }

const char *sym_place_method_name(sym_place_method m) {
    (void)m;
    return "none";
}
