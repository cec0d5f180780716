/* Creating and destroying a CUDA backend (kernels/cuda_backend.h): its
 * streams, buckets, buffers, linear workspaces from the tuning, input
 * block and state pool (setup), then its weights (model.cu) from an arena
 * uploaded, generated or placed on its GPU, and every bucket's graph. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/engine/engine.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/gemm_wg32.cuh"

static void cuda_destroy(sym_backend *bb);

static const sym_backend_ops cuda_ops = {
    "cuda",       sym_eng_step,       sym_eng_reset_slot, sym_eng_export_slot, sym_eng_import_slot, sym_eng_copy_slot,
    cuda_destroy, sym_eng_set_towers, sym_eng_step_runs,  sym_eng_prepare_runs, &sym_eng_host_mem,
    sym_eng_export_begin, sym_eng_export_end};

extern "C" int sym_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

/* The step's stream and each tower's, at the tuning's priority levels;
 * the state cells' launch priority. */
static int make_streams(cuda_backend *c, const sym_cuda_tuning *tu, sym_err *e) {
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->s, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&c->ev_fork, cudaEventDisableTiming));
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->cs, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&c->ev_staged, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&c->ev_landed, cudaEventDisableTiming));
    c->state_prio = tu->state_cell_priority >= 0 ? sym_prio_from_level(tu->state_cell_priority) : SYM_PRIO_STREAM;
    c->node_prio = c->state_prio != SYM_PRIO_STREAM;
    for (int t = 0; t < SYM_TOWERS; t++) {
        const int lev = tu->tower_stream_priority[t];
        if (lev < 0) {
            CUDA_CHECK(cudaStreamCreateWithFlags(&c->ts[t], cudaStreamNonBlocking));
        } else {
            CUDA_CHECK(cudaStreamCreateWithPriority(&c->ts[t], cudaStreamNonBlocking, sym_prio_from_level(lev)));
            c->node_prio = 1;
        }
        CUDA_CHECK(cudaEventCreateWithFlags(&c->ev_join[t], cudaEventDisableTiming));
    }
    return 0;
}

/* batch buckets: exact up to 8, then multiples of 8, the last max_batch */
static int make_buckets(cuda_backend *c, int max_batch, sym_err *e) {
    for (int b = 1; c->n_buckets < SYM_N_BUCKETS; b = b < 8 ? b + 1 : b + 8) {
        c->buckets[c->n_buckets++] = b < max_batch ? b : max_batch;
        if (b >= max_batch) break;
    }
    if (c->buckets[c->n_buckets - 1] < max_batch) return sym_fail(e, "max_batch %d too large", max_batch);
    return 0;
}

/* The device's shape, as the linear paths need it. */
typedef struct {
    int n_sm, cc, ccm;
    size_t max_in, max_out; /* the widest linear input and output */
} lin_shape;

/* Tower t's linear workspace (ops/linear.cuh): the paths' ranges from the
 * tuning, the split-K scratch of the tensor-core kernels (sm_80 on), and
 * cuBLAS on the tower's stream with its workspace and x's split buffers. */
static int linear_workspace(cuda_backend *c, int t, const sym_cuda_tuning *tu, const lin_shape *sh, int Bm,
                            sym_err *e) {
    sym_gemm_ws *w = &c->ws[t];
    w->gemm_min = tu->cublas_min_batch, w->blk_own_max = tu->blockdiag_own_max_batch;
    w->tc_min = tu->bf16_mma_batch[0], w->tc_max = tu->bf16_mma_batch[1], w->tc_ctas = tu->bf16_mma_ctas_per_sm;
    w->tf32_min = tu->fp32_mma_batch[0], w->tf32_max = tu->fp32_mma_batch[1];
    w->wg_min = tu->bf16_wgmma_batch[0], w->wg_max = tu->bf16_wgmma_batch[1];
    w->wg_grid_pct = tu->bf16_wgmma_sm_pct[t], w->wg_smem = tu->bf16_wgmma_smem_kb * 1024;
    w->wg32_min = tu->fp32_wgmma_batch[0], w->wg32_max = tu->fp32_wgmma_batch[1];
    w->wg32_grid_pct = tu->fp32_wgmma_sm_pct, w->wg32_smem = tu->fp32_wgmma_smem_kb * 1024;
    w->n_sm = sh->n_sm;
    w->wg_on = sh->cc == 9 && sh->ccm == 0;
    w->sk_cnt_n = sym_splitk_counters((int)sh->max_out);
    if (sh->cc >= 8) {
        if (sym_allocs_n(&c->allocs, &w->sk_part, sym_splitk_part_floats(sh->n_sm, (int)sh->max_out), e) ||
            sym_allocs_n(&c->allocs, &w->sk_cnt, (size_t)w->sk_cnt_n, e))
            return -1;
        /* on c->s, which every step follows (setup syncs it) */
        CUDA_CHECK(cudaMemsetAsync(w->sk_cnt, 0, (size_t)w->sk_cnt_n * sizeof(int), c->s));
    }
    if (cublasCreate(&w->h) != CUBLAS_STATUS_SUCCESS) return sym_fail(e, "cublasCreate failed");
    void *cws;
    if (sym_allocs_add(&c->allocs, &cws, (size_t)32 << 20, e) ||
        sym_allocs_n(&c->allocs, &w->xs, 3 * (size_t)Bm * sh->max_in, e) ||
        sym_allocs_n(&c->allocs, &w->xs2, 3 * (size_t)Bm * sh->max_out, e) ||
        sym_allocs_n(&c->allocs, &w->y2, 3 * (size_t)Bm * sh->max_out, e) ||
        (w->wg_on && sym_allocs_n(&c->allocs, &w->xs32, sym_gemm_wg32_xs_floats((int)sh->max_in), e)))
        return -1;
    if (cublasSetStream(w->h, c->ts[t]) || cublasSetWorkspace(w->h, cws, (size_t)32 << 20) ||
        cublasSetMathMode(w->h, CUBLAS_DEFAULT_MATH))
        return sym_fail(e, "configuring cuBLAS failed");
    return 0;
}

static int linear_workspaces(cuda_backend *c, const sym_cuda_tuning *tu, int Bm, sym_err *e) {
    const sym_model_config *cf = &c->base.cfg;
    const size_t H = (size_t)cf->hidden, P = (size_t)cf->proj, ldp = (size_t)sym_tower_ldp(cf);
    lin_shape sh;
    CUDA_CHECK(cudaDeviceGetAttribute(&sh.n_sm, cudaDevAttrMultiProcessorCount, c->device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sh.cc, cudaDevAttrComputeCapabilityMajor, c->device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sh.ccm, cudaDevAttrComputeCapabilityMinor, c->device));
    sh.max_in = 8 * H > P ? 8 * H : P; /* 8H: the sLSTM gates' input */
    if (sh.max_in < (size_t)cf->features) sh.max_in = (size_t)cf->features;
    sh.max_out = ldp > P ? ldp : P;
    for (int t = 0; t < SYM_TOWERS; t++)
        if (linear_workspace(c, t, tu, &sh, Bm, e)) return -1;
    return 0;
}

/* The pinned input block and its device twin (engine.cuh), the predictions. */
static int io_block(cuda_backend *c, int Bm, sym_err *e) {
    c->feat_at = ((size_t)2 * Bm * sizeof(int) + 255) & ~(size_t)255;
    size_t in_bytes = c->feat_at + (size_t)Bm * c->base.cfg.features * 4;
    if (sym_allocs_add(&c->allocs, &c->d_in, in_bytes, e) ||
        sym_allocs_n(&c->allocs, &c->d_pred, (size_t)Bm * SYM_TOWERS, e))
        return -1;
    CUDA_CHECK(cudaMallocHost(&c->h_in, in_bytes));
    CUDA_CHECK(cudaMallocHost((void **)&c->h_pred, (size_t)Bm * SYM_TOWERS * 4));
    c->d_slots = (int *)c->d_in, c->d_feat = (float *)((char *)c->d_in + c->feat_at);
    c->h_slots = (int *)c->h_in, c->h_feat = (float *)((char *)c->h_in + c->feat_at);
    c->d_rlen = c->d_slots + Bm, c->h_rlen = c->h_slots + Bm;
    for (int i = 0; i < Bm; i++) c->h_rlen[i] = 1;
    return 0;
}

/* n_slots real slots + the scratch slot of padded rows, each reset, and
 * the slot exports are set aside in; says how many fit rather than only
 * "out of memory". */
static int state_pool(cuda_backend *c, int n_slots, sym_err *e) {
    size_t free_b = 0, total_b = 0, need = (size_t)(n_slots + 2) * c->numel * 4;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (need > free_b)
        return sym_fail(e,
                        "%d state slots of %.1f MB need %.1f GB but GPU %d has %.1f GB free (the weights need room "
                        "too): lower max_symbols (--num-symbols); about %d slots fit beside nothing else",
                        n_slots, c->numel * 4e-6, need * 1e-9, c->device, free_b * 1e-9,
                        (int)(free_b / (c->numel * 4)) - 2);
    if (sym_allocs_n(&c->allocs, &c->pool, (size_t)(n_slots + 1) * c->numel, e) ||
        sym_allocs_n(&c->allocs, &c->stage, c->numel, e) || sym_allocs_n(&c->allocs, &c->init_slot, c->numel, e))
        return -1;
    float *h = (float *)malloc(c->numel * 4);
    if (!h) return sym_fail(e, "out of memory");
    sym_state_reset_f32(&c->base.layout, h);
    cudaError_t ce = cudaMemcpy(c->init_slot, h, c->numel * 4, cudaMemcpyHostToDevice);
    free(h);
    if (ce != cudaSuccess) return sym_fail(e, "uploading the initial state: %s", cudaGetErrorString(ce));
    for (int i = 0; i <= n_slots; i++)
        CUDA_CHECK(cudaMemcpyAsync(c->pool + (size_t)i * c->numel, c->init_slot, c->numel * 4, cudaMemcpyDeviceToDevice,
                                   c->s));
    CUDA_CHECK(cudaStreamSynchronize(c->s));
    return 0;
}

static int setup_device(cuda_backend *c, const sym_cuda_tuning *tu, int n_slots, int max_batch, sym_err *e) {
    CUDA_CHECK(cudaSetDevice(c->device));
    /* slot copies to and from shards on other GPUs go peer to peer */
    if (sym_cuda_enable_peers(c->device, e) || make_streams(c, tu, e) || make_buckets(c, max_batch, e)) return -1;
    for (int t = 0; t < SYM_TOWERS; t++)
        if (sym_tower_bufs_alloc(&c->tb[t], t, &c->base.cfg, max_batch, &c->allocs, e)) return -1;
    return linear_workspaces(c, tu, max_batch, e) || io_block(c, max_batch, e) || state_pool(c, n_slots, e) ? -1 : 0;
}

/* Everything but the weights. The shapes the engine takes are
 * sym_model_config_validate's, the CPU's too (sym_state_layout_init): no
 * rule of its own here. */
static cuda_backend *setup(const sym_model_config *cfg, const sym_mat_store state_mat[SYM_TOWERS], int device,
                           int n_slots, int max_batch, const sym_cuda_tuning *tuning, sym_err *e) {
    sym_cuda_tuning dflt;
    if (!tuning) sym_cuda_tuning_defaults(&dflt), tuning = &dflt;
    if (sym_cuda_tuning_check(tuning, e)) return NULL;
    if (n_slots <= 0 || max_batch <= 0) {
        sym_fail(e, "n_slots and max_batch must be positive");
        return NULL;
    }
    cuda_backend *c = (cuda_backend *)calloc(1, sizeof *c);
    if (!c) {
        sym_fail(e, "out of memory");
        return NULL;
    }
    c->device = device;
    c->tower_mask = 15;
    c->base.ops = &cuda_ops;
    c->base.cfg = *cfg;
    c->base.n_slots = n_slots;
    c->base.max_batch = max_batch;
    c->base.max_run = SYM_RUN_MAX;
    c->base.state_elem_size = 4;
    if (state_mat ? sym_state_layout_init_stored(&c->base.layout, cfg, state_mat, e)
                  : sym_state_layout_init(&c->base.layout, cfg, e)) {
        free(c);
        return NULL;
    }
    c->numel = c->base.layout.numel;
    c->base.slot_bytes = c->numel * 4;
    c->scratch_slot = n_slots;
    if (setup_device(c, tuning, n_slots, max_batch, e)) {
        cuda_destroy(&c->base);
        return NULL;
    }
    return c;
}

/* Builds the weights from the device arena (freed unless shared) and
 * captures every bucket's graph now, not at its first step: a capture
 * takes tens of milliseconds, which would land on a live request's
 * latency. */
static sym_backend *finish(cuda_backend *c, sym_weights *wd, float *arena, int arena_shared,
                           const sym_precision prec[SYM_TOWERS], sym_err *e) {
    int rc = sym_eng_build_model(c, wd, arena, prec, e);
    if (!arena_shared) cudaFree(arena);
    sym_weights_free(wd);
    for (int bi = 0; !rc && bi < c->n_buckets; bi++) rc = sym_eng_capture_bucket(c, bi, 1, e);
    if (rc) {
        cuda_destroy(&c->base);
        return NULL;
    }
    return &c->base;
}

static int check_prec(const sym_precision p[SYM_TOWERS], sym_err *e) {
    for (int t = 0; t < SYM_TOWERS; t++)
        if (p[t] != SYM_PREC_FP32 && p[t] != SYM_PREC_BF16)
            return sym_fail(e, "tower %d: precision must be fp32 or bf16", t);
    return 0;
}

/* setup, then wd described for cfg and an fp32 arena for it on the device */
static cuda_backend *setup_with_arena(const sym_model_config *cfg, const sym_mat_store state_mat[SYM_TOWERS],
                                      int device, int n_slots, int max_batch, const sym_cuda_tuning *tuning,
                                      sym_weights *wd, float **arena, sym_err *e) {
    cuda_backend *c = setup(cfg, state_mat, device, n_slots, max_batch, tuning, e);
    if (!c) return NULL;
    if (sym_weights_describe(wd, cfg, e)) {
        cuda_destroy(&c->base);
        return NULL;
    }
    cudaError_t ce = cudaMalloc((void **)arena, wd->arena_floats * 4);
    if (ce != cudaSuccess) {
        sym_fail(e, "allocating %zu weight bytes: %s", wd->arena_floats * 4, cudaGetErrorString(ce));
        sym_weights_free(wd);
        cuda_destroy(&c->base);
        return NULL;
    }
    return c;
}

extern "C" sym_backend *sym_cuda_backend_create(const sym_weights *w, const sym_precision tower_prec[SYM_TOWERS],
                                                const sym_mat_store state_mat[SYM_TOWERS], int device, int n_slots,
                                                int max_batch, const sym_cuda_tuning *tuning, sym_err *e) {
    if (check_prec(tower_prec, e)) return NULL;
    sym_weights wd;
    float *arena = NULL;
    cuda_backend *c = setup_with_arena(&w->cfg, state_mat, device, n_slots, max_batch, tuning, &wd, &arena, e);
    if (!c) return NULL;
    cudaError_t ce = cudaMemcpy(arena, w->arena, wd.arena_floats * 4, cudaMemcpyHostToDevice);
    if (ce != cudaSuccess) {
        sym_fail(e, "uploading %zu weight bytes: %s", wd.arena_floats * 4, cudaGetErrorString(ce));
        cudaFree(arena);
        sym_weights_free(&wd);
        cuda_destroy(&c->base);
        return NULL;
    }
    sym_weights_bind(&wd, arena);
    return finish(c, &wd, arena, 0, tower_prec, e);
}

extern "C" sym_backend *sym_cuda_backend_create_synthetic(const sym_model_config *cfg, uint64_t seed,
                                                          const sym_precision tower_prec[SYM_TOWERS],
                                                          const sym_mat_store state_mat[SYM_TOWERS], int device,
                                                          int n_slots, int max_batch, const sym_cuda_tuning *tuning,
                                                          sym_err *e) {
    if (check_prec(tower_prec, e)) return NULL;
    sym_weights wd;
    float *arena = NULL;
    cuda_backend *c = setup_with_arena(cfg, state_mat, device, n_slots, max_batch, tuning, &wd, &arena, e);
    if (!c) return NULL;
    sym_eng_synthetic_arena(c->s, &wd, arena, seed);
    cudaError_t ce = cudaGetLastError();
    if (ce != cudaSuccess) {
        sym_fail(e, "generating weights: %s", cudaGetErrorString(ce));
        cudaFree(arena);
        sym_weights_free(&wd);
        cuda_destroy(&c->base);
        return NULL;
    }
    sym_weights_bind(&wd, arena);
    return finish(c, &wd, arena, 0, tower_prec, e);
}

extern "C" sym_backend *sym_cuda_backend_create_placed(const sym_device_weights *dw,
                                                       const sym_precision tower_prec[SYM_TOWERS],
                                                       const sym_mat_store state_mat[SYM_TOWERS], int device,
                                                       int n_slots, int max_batch, const sym_cuda_tuning *tuning,
                                                       sym_err *e) {
    if (check_prec(tower_prec, e)) return NULL;
    sym_model_config cfg;
    float *arena = sym_eng_device_weights_arena(dw, device, &cfg);
    if (!arena) {
        sym_fail(e, "no weights were placed on GPU %d", device);
        return NULL;
    }
    cuda_backend *c = setup(&cfg, state_mat, device, n_slots, max_batch, tuning, e);
    if (!c) return NULL;
    sym_weights wd;
    if (sym_weights_describe(&wd, &cfg, e)) {
        cuda_destroy(&c->base);
        return NULL;
    }
    sym_weights_bind(&wd, arena);
    return finish(c, &wd, arena, 1, tower_prec, e);
}

static void cuda_destroy(sym_backend *bb) {
    cuda_backend *c = (cuda_backend *)bb;
    if (!c) return;
    cudaSetDevice(c->device);
    cudaDeviceSynchronize();
    for (int i = 0; i < SYM_N_BUCKETS; i++)
        for (int k = 0; k < SYM_RUN_MAX; k++)
            if (c->graphs[i][k]) cudaGraphExecDestroy(c->graphs[i][k]);
    sym_allocs_free(&c->allocs);
    if (c->h_in) cudaFreeHost(c->h_in);
    if (c->h_pred) cudaFreeHost(c->h_pred);
    for (int t = 0; t < SYM_TOWERS; t++) {
        if (c->ws[t].h) cublasDestroy(c->ws[t].h);
        free(c->layers[t]);
        if (c->ts[t]) cudaStreamDestroy(c->ts[t]);
        if (c->ev_join[t]) cudaEventDestroy(c->ev_join[t]);
    }
    if (c->ev_fork) cudaEventDestroy(c->ev_fork);
    if (c->ev_staged) cudaEventDestroy(c->ev_staged);
    if (c->ev_landed) cudaEventDestroy(c->ev_landed);
    if (c->cs) cudaStreamDestroy(c->cs);
    if (c->s) cudaStreamDestroy(c->s);
    sym_state_layout_free(&c->base.layout);
    free(c);
}
