/* The CUDA engine behind the backend API (kernels/backend.h). Implemented in
 * kernels/cuda/ when nvcc is present at build time; otherwise by
 * kernels/cuda_absent.c, whose functions report that no GPU build exists.
 *
 * Weights live on the GPU in fp32 or bf16 per tower (tower_prec), the shared
 * output projection in fp32; arithmetic and state are fp32, so a CUDA
 * backend's slots have the format of the CPU fp32 path (state_elem_size 4).
 * The backend owns one CUDA stream on `device`; step() is synchronous. */
#ifndef SYM_CUDA_BACKEND_H
#define SYM_CUDA_BACKEND_H

#include <stdint.h>

#include "common/err.h"
#include "kernels/backend.h"
#include "kernels/weights.h"

/* Number of usable CUDA devices; 0 without a GPU or without a CUDA build. */
int sym_cuda_device_count(void);

/* Uploads host weights w (fp32 arena) to `device`, storing each tower in
 * tower_prec[t] (SYM_PREC_FP32 or SYM_PREC_BF16). n_slots state slots are
 * allocated and reset. w may be freed after creation. */
sym_backend *sym_cuda_backend_create(const sym_weights *w, const sym_precision tower_prec[SYM_TOWERS], int device,
                                     int n_slots, int max_batch, sym_err *e);

/* Same, with MODEL.md's synthetic weights generated on the GPU from seed
 * (any config, full size in seconds): the same numbers as
 * sym_weights_synthetic draws on the CPU (synthetic_init.h). */
sym_backend *sym_cuda_backend_create_synthetic(const sym_model_config *cfg, uint64_t seed,
                                               const sym_precision tower_prec[SYM_TOWERS], int device, int n_slots,
                                               int max_batch, sym_err *e);

/* Fills host weights allocated with sym_weights_alloc with MODEL.md's
 * synthetic weights drawn on `device` from seed: bit-identical to
 * sym_weights_synthetic, in seconds at full size instead of a minute. */
int sym_cuda_synthetic_to_host(sym_weights *w, uint64_t seed, int device, sym_err *e);

/* --- several GPUs --------------------------------------------------------

 * Weights placed once on each GPU that will run shards: the host's fp32
 * arena copied to one device arena per GPU, from which every shard on that
 * GPU builds its own weights with device-to-device copies (instead of one
 * host upload per shard). Methods (bench_weights_place measures them):
 *   UPLOAD  the host arena uploaded to every GPU in parallel (one thread each)
 *   NCCL    uploaded to the first GPU, then one NCCL broadcast
 *   PEER    uploaded to the first GPU, then peer copies (1 -> 2 -> 4 GPUs)
 *   AUTO    UPLOAD for one GPU, else PEER (the fastest measured, BENCHMARKS §7) */
#define SYM_MAX_PLACE_DEVICES 16
typedef enum { SYM_PLACE_AUTO, SYM_PLACE_UPLOAD, SYM_PLACE_NCCL, SYM_PLACE_PEER } sym_place_method;
typedef struct sym_device_weights sym_device_weights;

sym_device_weights *sym_cuda_weights_place(const sym_weights *w, const int *devices, int n, sym_place_method m,
                                           sym_err *e);
void sym_cuda_device_weights_free(sym_device_weights *dw);
int sym_cuda_device_weights_has(const sym_device_weights *dw, int device);

/* A backend on `device`, built from dw's arena there (dw must hold that
 * device; it stays owned by the caller and may be freed afterwards). */
sym_backend *sym_cuda_backend_create_placed(const sym_device_weights *dw, const sym_precision tower_prec[SYM_TOWERS],
                                            int device, int n_slots, int max_batch, sym_err *e);

/* Lets `device` reach every other GPU it can (NVLink/PCIe peer access), so
 * that slot copies between GPUs go straight from one to the other. */
int sym_cuda_enable_peers(int device, sym_err *e);

int sym_cuda_nccl_available(void);
const char *sym_place_method_name(sym_place_method m);


#endif
