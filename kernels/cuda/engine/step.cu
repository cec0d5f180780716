/* A step of the CUDA backend: the rows padded to their batch bucket, the
 * input block copied in, the four towers forked onto their streams and
 * joined, every slot's step count advanced, the predictions copied out, all
 * captured once per bucket (and longest run) as a CUDA graph and replayed. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/cuda/engine/engine.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/norms.cuh"

/* each slot's step count (the slot's first 8 bytes) + its run's length */
__global__ void k_step_count(float *pool, size_t numel, const int *slots, const int *rlen, int B) {
    SYM_PDL_ENTER();
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b < B && rlen[b]) { /* a run's other rows must not write it too */
        long long *p = (long long *)(pool + (size_t)slots[b] * numel);
        *p += rlen[b];
    }
}

int sym_eng_bucket_index(const cuda_backend *c, int B) {
    for (int i = 0; i < c->n_buckets; i++)
        if (c->buckets[i] >= B) return i;
    return c->n_buckets - 1;
}

/* Tower t for B rows whose longest run (sym_runs) is kmax, on its stream:
 * its input layers, its layers, its column of the output projection.
 * Returns 0, a cuBLAS status, or -1 (a row wider than the row kernels take). */
static int enqueue_tower(cuda_backend *c, int t, int B, int kmax) {
    const sym_model_config *cf = &c->base.cfg;
    sym_tower_step st;
    st.s = c->ts[t], st.ws = &c->ws[t], st.cf = cf, st.pool = c->pool, st.numel = c->numel, st.slots = c->d_slots;
    st.rn.len = c->d_rlen, st.rn.max = kmax, st.rn.pass = 0;
    st.pad_slot = c->scratch_slot, st.state_prio = c->state_prio, st.mat = c->base.layout.mat[t];
    st.ldp = sym_tower_ldp(cf), st.ldbc = sym_tower_ldbc(cf), st.B = B;
    const sym_tower_bufs *b = &c->tb[t];
    const int H = cf->hidden, P = cf->proj, F = cf->features;
    int bad = 0;
    sym_keep_first(&bad, sym_gemv(st.s, st.ws, &c->up[t], c->d_feat, F, b->h1, P, B, GEMV_RELU));
    sym_keep_first(&bad, sym_gemv(st.s, st.ws, &c->down[t], b->h1, P, b->u, H, B, 0));
    for (int l = 0; l < cf->depth; l++) {
        const sym_dlayer *d = &c->layers[t][l];
        const sym_block_state *bs = &c->base.layout.blocks[l];
        switch (t) {
        case SYM_TOWER_XLSTM: sym_keep_first(&bad, sym_xlstm_layer(&st, d, bs, b)); break;
        case SYM_TOWER_MAMBA2: sym_keep_first(&bad, sym_mamba2_layer(&st, d, bs, b)); break;
        case SYM_TOWER_RETNET: sym_keep_first(&bad, sym_retnet_layer(&st, d, bs, b)); break;
        default: sym_keep_first(&bad, sym_hawk_layer(&st, d, bs, b)); break;
        }
    }
    sym_keep_first(&bad, sym_gemv(st.s, st.ws, &c->outp, b->u, H, c->d_pred + t, SYM_TOWERS, B, 0));
    return bad;
}

/* The towers of tower_mask forked from c->s and joined back, then the step
 * counts. */
static int enqueue_step(cuda_backend *c, int B, int kmax, sym_err *e) {
    CUDA_CHECK(cudaEventRecord(c->ev_fork, c->s));
    for (int t = 0; t < SYM_TOWERS; t++) {
        if (!(c->tower_mask & (1 << t))) continue;
        CUDA_CHECK(cudaStreamWaitEvent(c->ts[t], c->ev_fork, 0));
        int st = enqueue_tower(c, t, B, kmax);
        if (st < 0) return sym_fail(e, "tower %d: a row wider than the row kernels take (%d floats)", t, SYM_ROW_MAX);
        if (st) return sym_fail(e, "cuBLAS call failed in tower %d: status %d", t, st);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaEventRecord(c->ev_join[t], c->ts[t]));
        CUDA_CHECK(cudaStreamWaitEvent(c->s, c->ev_join[t], 0));
    }
    /* after every tower: RetNet read the old step count */
    sym_launch(k_step_count, dim3((B + 127) / 128), dim3(128), c->s, c->pool, c->numel, (const int *)c->d_slots,
               (const int *)c->d_rlen, B);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

/* The input block (slots, runs, then Bk feature rows) in, the step, the
 * predictions out. */
static int enqueue_step_io(cuda_backend *c, int Bk, int kmax, sym_err *e) {
    size_t in_bytes = c->feat_at + (size_t)Bk * c->base.cfg.features * sizeof(float);
    CUDA_CHECK(cudaMemcpyAsync(c->d_in, c->h_in, in_bytes, cudaMemcpyHostToDevice, c->s));
    if (enqueue_step(c, Bk, kmax, e)) return -1;
    CUDA_CHECK(
        cudaMemcpyAsync(c->h_pred, c->d_pred, (size_t)Bk * SYM_TOWERS * sizeof(float), cudaMemcpyDeviceToHost, c->s));
    return 0;
}

/* Capturing records, it runs nothing: a step is then one graph launch. */
int sym_eng_capture_bucket(cuda_backend *c, int bi, int kmax, sym_err *e) {
    cudaGraph_t g;
    CUDA_CHECK(cudaStreamBeginCapture(c->s, cudaStreamCaptureModeThreadLocal));
    int rc = enqueue_step_io(c, c->buckets[bi], kmax, e);
    cudaError_t ce = cudaStreamEndCapture(c->s, &g);
    if (rc) return -1;
    if (ce != cudaSuccess) return sym_fail(e, "capturing a step graph: %s", cudaGetErrorString(ce));
    /* kernel nodes hold the priority of the stream that captured them, or
     * their launch's; without this flag a graph runs at its launch
     * stream's priority alone */
    cudaGraphExec_t *x = &c->graphs[bi][kmax - 1];
    ce = cudaGraphInstantiate(x, g, c->node_prio ? cudaGraphInstantiateFlagUseNodePriority : 0);
    cudaGraphDestroy(g);
    if (ce != cudaSuccess) {
        *x = NULL;
        return sym_fail(e, "instantiating a step graph: %s", cudaGetErrorString(ce));
    }
    return 0;
}

/* One step of B rows whose runs' lengths are in h_rlen (longest kmax). */
static int run_step(cuda_backend *c, int B, int kmax, const int32_t *slots, const float *features, double *out,
                    sym_err *e) {
    CUDA_CHECK(cudaSetDevice(c->device));
    int bi = sym_eng_bucket_index(c, B), Bk = c->buckets[bi], F = c->base.cfg.features;
    for (int i = 0; i < Bk; i++) c->h_slots[i] = i < B ? slots[i] : c->scratch_slot;
    for (int i = B; i < Bk; i++) c->h_rlen[i] = 1; /* each padding row its own run */
    memcpy(c->h_feat, features, (size_t)B * F * sizeof(float));
    memset(c->h_feat + (size_t)B * F, 0, (size_t)(Bk - B) * F * sizeof(float));
    cudaGraphExec_t *x = &c->graphs[bi][kmax - 1];
    if (!*x && sym_eng_capture_bucket(c, bi, kmax, e)) return -1;
    CUDA_CHECK(cudaGraphLaunch(*x, c->s));
    CUDA_CHECK(cudaStreamSynchronize(c->s));
    for (int i = 0; i < B * SYM_TOWERS; i++)
        out[i] = c->tower_mask & (1 << (i % SYM_TOWERS)) ? (double)c->h_pred[i] : NAN;
    return 0;
}

int sym_eng_step(sym_backend *bb, int B, const int32_t *slots, const float *features, double *out, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (sym_backend_check_batch(bb, B, slots, e)) return -1;
    for (int i = 0; i < B; i++) c->h_rlen[i] = 1;
    return run_step(c, B, 1, slots, features, out, e);
}

/* A batch with runs (sym_backend_step_runs): a slot's rows adjacent, at
 * most SYM_RUN_MAX of them; each run's first row gets its length. */
int sym_eng_step_runs(sym_backend *bb, int B, const int32_t *slots, const float *features, double *out, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (B <= 0 || B > bb->max_batch)
        return sym_fail(e, "batch of %d rows (this backend takes 1..%d)", B, bb->max_batch);
    int kmax = 1;
    for (int i = 0, n; i < B; i += n) {
        if (slots[i] < 0 || slots[i] >= bb->n_slots)
            return sym_fail(e, "slot %d out of range 0..%d", (int)slots[i], bb->n_slots - 1);
        for (n = 1; i + n < B && slots[i + n] == slots[i]; n++) c->h_rlen[i + n] = 0;
        if (n > SYM_RUN_MAX)
            return sym_fail(e, "a run of %d rows of slot %d (at most %d)", n, (int)slots[i], SYM_RUN_MAX);
        for (int j = 0; j < i; j++)
            if (slots[j] == slots[i]) return sym_fail(e, "slot %d's rows are not together", (int)slots[i]);
        c->h_rlen[i] = n;
        kmax = n > kmax ? n : kmax;
    }
    return run_step(c, B, kmax, slots, features, out, e);
}

/* The graphs hold the towers they run: capture them again. */
int sym_eng_set_towers(sym_backend *bb, int mask, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    if (mask == c->tower_mask) return 0;
    CUDA_CHECK(cudaSetDevice(c->device));
    c->tower_mask = mask;
    for (int bi = 0; bi < c->n_buckets; bi++) {
        for (int k = 0; k < SYM_RUN_MAX; k++) {
            if (c->graphs[bi][k]) CUDA_CHECK(cudaGraphExecDestroy(c->graphs[bi][k]));
            c->graphs[bi][k] = NULL;
        }
        if (sym_eng_capture_bucket(c, bi, 1, e)) return -1; /* the run graphs when next needed */
    }
    return 0;
}

/* every bucket's graphs for runs of 2 to SYM_RUN_MAX rows, now: captured
 * when first needed, each cost a serving step tens of ms */
int sym_eng_prepare_runs(sym_backend *bb, sym_err *e) {
    cuda_backend *c = (cuda_backend *)bb;
    CUDA_CHECK(cudaSetDevice(c->device));
    for (int bi = 0; bi < c->n_buckets; bi++)
        for (int k = 2; k <= SYM_RUN_MAX && k <= c->buckets[bi]; k++)
            if (!c->graphs[bi][k - 1] && sym_eng_capture_bucket(c, bi, k, e)) return -1;
    return 0;
}
