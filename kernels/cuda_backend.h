/* The CUDA engine behind the backend API (kernels/backend.h). Implemented in
 * kernels/cuda/ when nvcc is present at build time; otherwise by
 * kernels/cuda_absent.c, whose functions report that no GPU build exists.
 *
 * Weights live on the GPU in fp32 or bf16 per tower (tower_prec), the shared
 * output projection in fp32; arithmetic and state are fp32, so a CUDA
 * backend's slots have the format of the CPU fp32 path (state_elem_size 4),
 * unless the recurrence matrices are stored in two bytes (state_mat).
 * The backend owns one CUDA stream on `device`; step() is synchronous. */
#ifndef SYM_CUDA_BACKEND_H
#define SYM_CUDA_BACKEND_H

#include <stdint.h>

#include "common/err.h"
#include "kernels/backend.h"
#include "kernels/weights.h"

/* --- tuning ---------------------------------------------------------------

 * How the engine runs a step: which linear-layer path takes which batch
 * sizes, how the tensor-core kernels share the GPU with the other towers,
 * and launch priorities. Every path holds a layer to fp32 accuracy, so a
 * tuning changes what a step computes only in fp32 rounding, and how fast.
 * The config file's "cuda" section fills it (docs/CONFIG.md says what each
 * value trades); a backend reads it once, when it is created. A batch
 * range {lo, hi} is inclusive; lo > hi turns its path off. The wgmma paths
 * run only on a device of compute capability 9.0 (H100, H200). */
typedef struct {
    int cublas_min_batch;               /* B from which cuBLAS takes the layers no tensor-core kernel takes */
    int blockdiag_own_max_batch;        /* block-diagonal layers stay on the own GEMV up to this B */
    int bf16_mma_batch[2];              /* bf16 layers on the mma.sync tensor-core GEMV */
    int bf16_mma_ctas_per_sm;           /* its split-K's CTAs per SM */
    int bf16_wgmma_batch[2];            /* bf16 layers on the wgmma kernel */
    int bf16_wgmma_sm_pct[SYM_TOWERS];  /* per tower, the share of the SMs (%) its grid aims at */
    int bf16_wgmma_smem_kb;             /* shared memory for its stages (3 to 8 stages whatever it says) */
    int fp32_mma_batch[2];              /* fp32 layers on the mma.sync 3xTF32 kernel */
    int fp32_wgmma_batch[2];            /* fp32 layers on the wgmma 3xTF32 kernel (ahead of the mma.sync one) */
    int fp32_wgmma_sm_pct;              /* the share of the SMs (%) its grid aims at */
    int fp32_wgmma_smem_kb;             /* shared memory for its stages */
    int tower_stream_priority[SYM_TOWERS]; /* each tower's stream's priority level (0: the device's highest); -1: none */
    int state_cell_priority;            /* the state-streaming cells' priority level; -1: their stream's */
} sym_cuda_tuning;

/* The ranges each value takes (sym_cuda_tuning_check, config/config.c). */
#define SYM_CUDA_TUNE_BATCH_MAX (1 << 20)
#define SYM_CUDA_TUNE_CTAS_MAX 4
#define SYM_CUDA_TUNE_SMEM_KB_MAX 220 /* stages beside the kernels' 1 KB of alignment within 227 KB */
#define SYM_CUDA_TUNE_PRIORITY_MAX 64

/* The measured best on an H100 (docs/CONFIG.md). */
static inline void sym_cuda_tuning_defaults(sym_cuda_tuning *t) {
    t->cublas_min_batch = 8;
    t->blockdiag_own_max_batch = 8;
    t->bf16_mma_batch[0] = 8, t->bf16_mma_batch[1] = 8;
    t->bf16_mma_ctas_per_sm = 2;
    t->bf16_wgmma_batch[0] = 9, t->bf16_wgmma_batch[1] = 64;
    t->bf16_wgmma_sm_pct[SYM_TOWER_XLSTM] = 50; /* the most bytes a layer: the others leave it room */
    t->bf16_wgmma_sm_pct[SYM_TOWER_MAMBA2] = 20;
    t->bf16_wgmma_sm_pct[SYM_TOWER_RETNET] = 20;
    t->bf16_wgmma_sm_pct[SYM_TOWER_HAWK] = 20;
    t->bf16_wgmma_smem_kb = 190;
    t->fp32_mma_batch[0] = 8, t->fp32_mma_batch[1] = 48;
    t->fp32_wgmma_batch[0] = 17, t->fp32_wgmma_batch[1] = 128;
    t->fp32_wgmma_sm_pct = 75;
    t->fp32_wgmma_smem_kb = 160;
    for (int i = 0; i < SYM_TOWERS; i++) t->tower_stream_priority[i] = -1;
    t->state_cell_priority = -1;
}

/* 0 when every value is in its range, else an error naming the first
 * that is not by its config key (cuda.KEY). */
static inline int sym_cuda_tuning_check(const sym_cuda_tuning *t, sym_err *e) {
    const struct {
        const char *key;
        int v, lo, hi;
    } r[] = {
        {"cublas_min_batch", t->cublas_min_batch, 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"blockdiag_own_max_batch", t->blockdiag_own_max_batch, 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"bf16_mma_batch", t->bf16_mma_batch[0], 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"bf16_mma_batch", t->bf16_mma_batch[1], 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"bf16_mma_ctas_per_sm", t->bf16_mma_ctas_per_sm, 1, SYM_CUDA_TUNE_CTAS_MAX},
        {"bf16_wgmma_batch", t->bf16_wgmma_batch[0], 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"bf16_wgmma_batch", t->bf16_wgmma_batch[1], 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"bf16_wgmma_sm_pct", t->bf16_wgmma_sm_pct[0], 1, 100},
        {"bf16_wgmma_sm_pct", t->bf16_wgmma_sm_pct[1], 1, 100},
        {"bf16_wgmma_sm_pct", t->bf16_wgmma_sm_pct[2], 1, 100},
        {"bf16_wgmma_sm_pct", t->bf16_wgmma_sm_pct[3], 1, 100},
        {"bf16_wgmma_smem_kb", t->bf16_wgmma_smem_kb, 1, SYM_CUDA_TUNE_SMEM_KB_MAX},
        {"fp32_mma_batch", t->fp32_mma_batch[0], 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"fp32_mma_batch", t->fp32_mma_batch[1], 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"fp32_wgmma_batch", t->fp32_wgmma_batch[0], 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"fp32_wgmma_batch", t->fp32_wgmma_batch[1], 0, SYM_CUDA_TUNE_BATCH_MAX},
        {"fp32_wgmma_sm_pct", t->fp32_wgmma_sm_pct, 1, 100},
        {"fp32_wgmma_smem_kb", t->fp32_wgmma_smem_kb, 1, SYM_CUDA_TUNE_SMEM_KB_MAX},
        {"tower_stream_priority", t->tower_stream_priority[0], -1, SYM_CUDA_TUNE_PRIORITY_MAX},
        {"tower_stream_priority", t->tower_stream_priority[1], -1, SYM_CUDA_TUNE_PRIORITY_MAX},
        {"tower_stream_priority", t->tower_stream_priority[2], -1, SYM_CUDA_TUNE_PRIORITY_MAX},
        {"tower_stream_priority", t->tower_stream_priority[3], -1, SYM_CUDA_TUNE_PRIORITY_MAX},
        {"state_cell_priority", t->state_cell_priority, -1, SYM_CUDA_TUNE_PRIORITY_MAX},
    };
    for (size_t i = 0; i < sizeof r / sizeof *r; i++)
        if (r[i].v < r[i].lo || r[i].v > r[i].hi)
            return sym_fail(e, "cuda tuning 'cuda.%s': %d is not in %d..%d", r[i].key, r[i].v, r[i].lo, r[i].hi);
    return 0;
}

/* Number of usable CUDA devices; 0 without a GPU or without a CUDA build. */
int sym_cuda_device_count(void);

/* Uploads host weights w (fp32 arena) to `device`, storing each tower in
 * tower_prec[t] (SYM_PREC_FP32 or SYM_PREC_BF16). n_slots state slots are
 * allocated and reset. state_mat: how each tower's recurrence matrix is
 * stored (state_layout.h's stored layout; the slots are then that layout,
 * and a stored value is what the CPU backend's state_precision rounds it
 * to: sym_state_stores), NULL for fp32 everywhere. tuning: NULL for
 * sym_cuda_tuning_defaults; read during the call only. w may be freed
 * after creation. */
sym_backend *sym_cuda_backend_create(const sym_weights *w, const sym_precision tower_prec[SYM_TOWERS],
                                     const sym_mat_store state_mat[SYM_TOWERS], int device, int n_slots, int max_batch,
                                     const sym_cuda_tuning *tuning, sym_err *e);

/* Same, with MODEL.md's synthetic weights generated on the GPU from seed
 * (any config, full size in seconds): the same numbers as
 * sym_weights_synthetic draws on the CPU (synthetic_init.h). */
sym_backend *sym_cuda_backend_create_synthetic(const sym_model_config *cfg, uint64_t seed,
                                               const sym_precision tower_prec[SYM_TOWERS],
                                               const sym_mat_store state_mat[SYM_TOWERS], int device, int n_slots,
                                               int max_batch, const sym_cuda_tuning *tuning, sym_err *e);

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
                                            const sym_mat_store state_mat[SYM_TOWERS], int device, int n_slots,
                                            int max_batch, const sym_cuda_tuning *tuning, sym_err *e);

/* Lets `device` reach every other GPU it can (NVLink/PCIe peer access), so
 * that slot copies between GPUs go straight from one to the other. */
int sym_cuda_enable_peers(int device, sym_err *e);

int sym_cuda_nccl_available(void);
const char *sym_place_method_name(sym_place_method m);

#endif
