/* The CUDA backend object and what the engine's files share. A backend is
 * device weights (model.cu: per-tower fp32 or bf16, projections that read
 * the same input concatenated into one matrix), an fp32 state pool stepped
 * in place through per-row slot indices (slots.cu), and a step (step.cu):
 * the four towers enqueued on four streams forked and joined inside one
 * CUDA graph per batch-size bucket (padded rows point at a scratch slot
 * past the real ones), replayed with only the input rows and slot indices
 * changed. create.cu builds it from the tuning (kernels/cuda_backend.h). */
#ifndef SYM_CUDA_ENGINE_CUH
#define SYM_CUDA_ENGINE_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "kernels/cuda/allocs.cuh"
#include "kernels/cuda/ops/linear.cuh"
#include "kernels/cuda/runs.cuh"
#include "kernels/cuda/towers/layer.cuh"
extern "C" {
#include "kernels/cuda_backend.h"
}

/* batch-size buckets: exact up to 8, then multiples of 8 */
#define SYM_N_BUCKETS 64

typedef struct {
    sym_backend base;
    int device;
    cudaStream_t s;              /* the step's stream: input, fork, join, output */
    cudaStream_t ts[SYM_TOWERS]; /* each tower's */
    cudaEvent_t ev_fork, ev_join[SYM_TOWERS];
    /* weights (model.cu) */
    sym_dlin up[SYM_TOWERS], down[SYM_TOWERS], outp; /* each tower's input layers; the shared output projection */
    sym_dlayer *layers[SYM_TOWERS];                  /* [tower][layer] */
    size_t weight_bytes;
    /* the state pool: n_slots slots, then the scratch slot of padded rows */
    float *pool, *init_slot;
    size_t numel;
    int scratch_slot;
    /* per tower: the step's buffers and the linear paths' workspace */
    sym_tower_bufs tb[SYM_TOWERS];
    sym_gemm_ws ws[SYM_TOWERS];
    int state_prio; /* the state-streaming cells' launch priority (launch.cuh) */
    int node_prio;  /* some launch priority is set: graphs run on their nodes' */
    /* one pinned input block [slots | runs' lengths (max_batch each, padded) |
     * feature rows] and its device twin, so a step's input is a single copy */
    void *h_in, *d_in;
    size_t feat_at;
    float *d_feat, *d_pred, *h_feat, *h_pred;
    int *d_slots, *h_slots, *d_rlen, *h_rlen; /* rlen: sym_runs.len */
    int tower_mask;                           /* towers a step computes (set_towers), 15 = all */
    int buckets[SYM_N_BUCKETS], n_buckets;
    cudaGraphExec_t graphs[SYM_N_BUCKETS][SYM_RUN_MAX]; /* [bucket][longest run - 1] */
    /* export_begin / export_end (slots.cu): a slot set aside in stage on
     * the step's stream (so before any later step), then copied to the
     * host on cs while steps go on */
    float *stage;
    cudaStream_t cs;
    cudaEvent_t ev_staged, ev_landed;
    int exporting;
    sym_allocs allocs;                                  /* every device allocation */
} cuda_backend;

/* model.cu: the device weights from wd, bound to the fp32 device arena
 * (read, not kept), each tower stored in prec[t]. */
int sym_eng_build_model(cuda_backend *c, const sym_weights *wd, const float *arena,
                        const sym_precision prec[SYM_TOWERS], sym_err *e);

/* synthetic.cu: MODEL.md's synthetic weights for wd's specs, drawn from
 * seed on stream s into the device arena (enqueued). */
void sym_eng_synthetic_arena(cudaStream_t s, const sym_weights *wd, float *arena, uint64_t seed);

/* distribute.cu: the weights placed on `device` (NULL when not placed
 * there); *cfg receives their model config. */
float *sym_eng_device_weights_arena(const sym_device_weights *dw, int device, sym_model_config *cfg);

/* step.cu */
int sym_eng_bucket_index(const cuda_backend *c, int B);
/* Captures bucket bi's step for runs up to kmax rows into its graph. */
int sym_eng_capture_bucket(cuda_backend *c, int bi, int kmax, sym_err *e);
int sym_eng_step(sym_backend *b, int B, const int32_t *slots, const float *features, double *out, sym_err *e);
int sym_eng_step_runs(sym_backend *b, int B, const int32_t *slots, const float *features, double *out, sym_err *e);
int sym_eng_set_towers(sym_backend *b, int mask, sym_err *e);
int sym_eng_prepare_runs(sym_backend *b, sym_err *e);

/* slots.cu */
int sym_eng_reset_slot(sym_backend *b, int32_t slot, sym_err *e);
extern const sym_host_mem sym_eng_host_mem;
int sym_eng_export_slot(sym_backend *b, int32_t slot, void *dst, sym_err *e);
int sym_eng_import_slot(sym_backend *b, int32_t slot, const void *src, sym_err *e);
int sym_eng_copy_slot(sym_backend *src, int32_t src_slot, sym_backend *dst, int32_t dst_slot, sym_err *e);
int sym_eng_export_begin(sym_backend *b, int32_t slot, void *dst, sym_err *e);
int sym_eng_export_end(sym_backend *b, int block, sym_err *e);

#endif
