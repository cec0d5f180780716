/* The Hawk tower: the RG-LRU's gates, recurrence and gelu gating fused,
 * one thread per channel, h read and written once (a run's rows in order,
 * sym_runs); then the layer that enqueues it. */
#include "kernels/cuda/towers/hawk.cuh"

#include <float.h>

#include "kernels/cuda/device.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/conv.cuh"
#include "kernels/cuda/ops/norms.cuh"
#include "kernels/cuda/towers/layer.cuh"

template <int RUN>
__global__ void k_hawk_cell(const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg, const float *a,
                            float *pool, size_t numel, const int *slots, const int *rlen, size_t off_h, float *T,
                            int ldt, int H) {
    SYM_PDL_WAIT();
    int i = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    const int nr = RUN == 1 ? 1 : rlen[b]; /* a run's rows, from its first (sym_runs) */
    if (i >= H || !nr) return;
    float *h = sym_slot(pool, numel, slots, b) + off_h;
    float hv = h[i];
#pragma unroll
    for (int r = 0; r < RUN; r++) {
        if (r >= nr) break;
        const size_t row = (size_t)(b + r);
        float gate = PR[row * ldp + i], rv = R[row * ldr + i];
        float ig = G[row * ldg + i], rg = G[row * ldg + H + i];
        float at = powf(a[i], 8.0f * sym_sigmoidf(rg));
        hv = at * hv + sqrtf(1.0f - at * at) * (sym_sigmoidf(ig) * rv);
        float ge = 0.5f * gate * (1.0f + erff(gate * 0.70710678118654752f));
        T[row * ldt + i] = ge * hv;
    }
    h[i] = hv;
}

void sym_hawk_cell(cudaStream_t s, const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg,
                   const float *a, float *pool, size_t numel, const int *slots, sym_runs rn, size_t off_h, float *T,
                   int ldt, int H, int B) {
    dim3 grid((H + 255) / 256, B);
    if (rn.max > 1)
        sym_launch(k_hawk_cell<SYM_RUN_MAX>, dim3(grid), dim3(256), s, PR, ldp, R, ldr, G, ldg, a, pool, numel, slots,
                   rn.len, off_h, T, ldt, H);
    else
        sym_launch(k_hawk_cell<1>, dim3(grid), dim3(256), s, PR, ldp, R, ldr, G, ldg, a, pool, numel, slots, rn.len,
                   off_h, T, ldt, H);
}

int sym_hawk_bufs_alloc(sym_hawk_bufs *b, const sym_model_config *cf, int Bm, sym_allocs *al, sym_err *e) {
    const size_t I = 2 * (size_t)cf->hidden;
    return sym_allocs_n(al, &b->r, Bm * I, e) || sym_allocs_n(al, &b->igrg, Bm * (size_t)sym_tower_ldbc(cf), e) ||
                   sym_allocs_n(al, &b->t, Bm * I, e)
               ? -1
               : 0;
}

/* proj = [gate | rec]; r = conv(rec), [ig | rg] from r, the cell's
 * gelu(gate) * h through the output projection into u. */
int sym_hawk_layer(const sym_tower_step *st, const sym_dlayer *d, const sym_block_state *bs, const sym_tower_bufs *b) {
    const sym_hawk_dlayer *h = &d->h;
    const sym_hawk_bufs *v = &b->h;
    const int H = st->cf->hidden, I = 2 * H, B = st->B, ldp = st->ldp, ldbc = st->ldbc;
    cudaStream_t s = st->s;
    const sym_xsplit proj_in = sym_planes(st, &h->gr);
    int bad = 0;
    sym_keep_first(&bad, sym_rmsnorm(s, b->u, H, b->a, H, B, H, FLT_EPSILON, d->norm1, proj_in));
    sym_keep_first(&bad, sym_gemv(s, st->ws, &h->gr, b->a, H, b->proj, ldp, B, sym_xsplit_flag(proj_in)));
    sym_dconv(s, b->proj + H, ldp, v->r, I, B, H, st->pool, st->numel, st->slots, st->rn, bs->hk_conv, h->cw, h->cb, 0);
    sym_keep_first(&bad, sym_gemv(s, st->ws, &h->igrg, v->r, I, v->igrg, ldbc, B, 0));
    sym_hawk_cell(s, b->proj, ldp, v->r, I, v->igrg, ldbc, h->a, st->pool, st->numel, st->slots, st->rn, bs->hk_h, v->t,
                  I, H, B);
    sym_keep_first(&bad, sym_gemv(s, st->ws, &h->out, v->t, I, b->u, H, B, GEMV_ACC));
    sym_keep_first(&bad, sym_rmsnorm(s, b->u, H, b->a, H, B, H, FLT_EPSILON, d->norm2, sym_planes(st, &d->fc1)));
    sym_keep_first(&bad, sym_layer_ffn(st, d, b));
    return bad;
}
