/* xLSTM cells: sLSTM (elementwise, exp-stabilised, m starts at -inf), mLSTM
 * 4x4 block-diagonal q/k/v, per-head gates + normaliser (writes m', n'
 * before the matrix pass so no block reads a half-updated scalar), and the
 * C matrix update + readout split by column chunks (each C element read and
 * written once). */
#include "gv_common.cuh"

__global__ void k_slstm_cell(const float *G, int ldg, float *pool, size_t numel, const int *slots, size_t off_c,
                             size_t off_n, size_t off_m, size_t off_y, float *Y, int ldy, int H) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (i >= H) return;
    float *st = sym_slot(pool, numel, slots, b);
    const float *g = G + (size_t)b * ldg;
    float gi = g[i], gf = g[H + i], gz = g[2 * H + i], go = g[3 * H + i];
    float lf = st[off_m + i] + sym_logsigmoidf(gf);
    float m = gi > lf ? gi : lf;
    float ig = expf(gi - m), fg = expf(lf - m);
    float cn = fg * st[off_c + i] + ig * tanhf(gz);
    float nn = fg * st[off_n + i] + ig;
    float y = sym_sigmoidf(go) * cn / (nn + 1e-6f);
    st[off_c + i] = cn, st[off_n + i] = nn, st[off_m + i] = m, st[off_y + i] = y;
    Y[(size_t)b * ldy + i] = y;
}

void sym_slstm_cell(cudaStream_t s, const float *G, int ldg, float *pool, size_t numel, const int *slots, size_t off_c,
                    size_t off_n, size_t off_m, size_t off_y, float *Y, int ldy, int H, int B) {
    dim3 grid((H + 255) / 256, B);
    k_slstm_cell<<<grid, 256, 0, s>>>(G, ldg, pool, numel, slots, off_c, off_n, off_m, off_y, Y, ldy, H);
}

__global__ void k_mlstm_qkv(const float *XA, int ldxa, const float *XM, int ldxm, const float *wq, const float *wk,
                            const float *wv, float *QKV, int ldq, int I) {
    int o = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (o >= 3 * I) return;
    int which = o / I, oo = o % I, blk = oo / 4, r = oo % 4;
    const float *w = (which == 0 ? wq : which == 1 ? wk : wv) + (size_t)blk * 16 + r * 4;
    const float *x = (which == 2 ? XM + (size_t)b * ldxm : XA + (size_t)b * ldxa) + blk * 4;
    QKV[(size_t)b * ldq + o] = (w[0] * x[0] + w[1] * x[1]) + (w[2] * x[2] + w[3] * x[3]);
}

void sym_mlstm_qkv(cudaStream_t s, const float *XA, int ldxa, const float *XM, int ldxm, const float *wq,
                   const float *wk, const float *wv, float *QKV, int ldq, int I, int B) {
    dim3 grid((3 * I + 255) / 256, B);
    k_mlstm_qkv<<<grid, 256, 0, s>>>(XA, ldxa, XM, ldxm, wq, wk, wv, QKV, ldq, I);
}

/* grid (NH, B): ig, fg, m', n' and the denominator; SC[b*ldsc + 4n + {0,1,2}] */
__global__ void k_mlstm_gate(const float *GT, int ldg, const float *QKV, int ldq, float *pool, size_t numel,
                             const int *slots, size_t off_n, size_t off_m, float *SC, int ldsc, int I, int NH) {
    __shared__ float sh[32];
    int n = blockIdx.x, b = blockIdx.y, dm = I / NH;
    float *st = sym_slot(pool, numel, slots, b);
    float ip = GT[(size_t)b * ldg + n], fp = GT[(size_t)b * ldg + NH + n];
    float mo = st[off_m + n];
    float lf = sym_logsigmoidf(fp);
    float m = ip > mo + lf ? ip : mo + lf;
    float ig = expf(ip - m), fg = expf(lf + mo - m);
    float ksc = 1.0f / sqrtf((float)dm);
    const float *q = QKV + (size_t)b * ldq + n * dm, *k = q + I;
    float *nv = st + off_n + (size_t)n * dm;
    float dot = 0.0f;
    for (int i = threadIdx.x; i < dm; i += blockDim.x) {
        float nn = fg * nv[i] + ig * (k[i] * ksc);
        nv[i] = nn;
        dot += q[i] * nn;
    }
    dot = sym_block_sum(dot, sh); /* syncs: every thread has read m before it is written */
    if (threadIdx.x == 0) {
        st[off_m + n] = m;
        float den = fabsf(dot), fl = expf(-m);
        den = (den > fl ? den : fl) + 1e-6f;
        float *sc = SC + (size_t)b * ldsc + 4 * n;
        sc[0] = ig, sc[1] = fg, sc[2] = den;
    }
}

void sym_mlstm_gate(cudaStream_t s, const float *GT, int ldg, const float *QKV, int ldq, float *pool, size_t numel,
                    const int *slots, size_t off_n, size_t off_m, float *SC, int ldsc, int I, int NH, int B) {
    dim3 grid(NH, B);
    k_mlstm_gate<<<grid, 256, 0, s>>>(GT, ldg, QKV, ldq, pool, numel, slots, off_n, off_m, SC, ldsc, I, NH);
}

/* block (32 x 4 columns as float4, 8 row groups); grid (column chunks of
 * 128, heads, rows). 16-byte state accesses: 4 columns per thread. */
__global__ void __launch_bounds__(256) k_mlstm_cell(const float *QKV, int ldq, const float *SC, int ldsc, float *pool,
                                                    size_t numel, const int *slots, size_t off_C, float *HC, int ldh,
                                                    int I, int dm) {
    __shared__ float4 red[8][32];
    int tx = threadIdx.x, ty = threadIdx.y, j = (blockIdx.x * 32 + tx) * 4, n = blockIdx.y, b = blockIdx.z;
    const float *sc = SC + (size_t)b * ldsc + 4 * n;
    float ig = sc[0], fg = sc[1], den = sc[2];
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (j < dm) {
        const float *q = QKV + (size_t)b * ldq + n * dm, *k = q + I, *v = q + 2 * I;
        float ksc = 1.0f / sqrtf((float)dm);
        float *C = sym_slot(pool, numel, slots, b) + off_C + (size_t)n * dm * dm;
        float4 vj = *(const float4 *)(v + j);
#pragma unroll 4
        for (int i = ty; i < dm; i += 8) {
            float4 *cp = (float4 *)(C + (size_t)i * dm + j);
            float4 c = *cp;
            float kk = ig * (k[i] * ksc), qi = q[i];
            c.x = fg * c.x + kk * vj.x;
            c.y = fg * c.y + kk * vj.y;
            c.z = fg * c.z + kk * vj.z;
            c.w = fg * c.w + kk * vj.w;
            *cp = c;
            acc.x += qi * c.x, acc.y += qi * c.y, acc.z += qi * c.z, acc.w += qi * c.w;
        }
    }
    red[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && j < dm) {
        float4 s = red[0][tx];
#pragma unroll
        for (int r = 1; r < 8; r++) s.x += red[r][tx].x, s.y += red[r][tx].y, s.z += red[r][tx].z, s.w += red[r][tx].w;
        float *h = HC + (size_t)b * ldh + n * dm + j;
        h[0] = s.x / den, h[1] = s.y / den, h[2] = s.z / den, h[3] = s.w / den;
    }
}

void sym_mlstm_cell(cudaStream_t s, const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel,
                    const int *slots, size_t off_C, float *HC, int ldh, int I, int NH, int B) {
    int dm = I / NH; /* a multiple of 4: I = 2H, H divisible by 4 and NH (MODEL.md constraints) */
    dim3 grid((dm + 127) / 128, NH, B), block(32, 8);
    k_mlstm_cell<<<grid, block, 0, s>>>(QKV, ldq, SC, ldsc, pool, numel, slots, off_C, HC, ldh, I, dm);
}

__global__ void k_mlstm_skip(float *HN, int ldh, const float *XA, int ldxa, const float *XG, int ldxg,
                             const float *skip, int I) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (i >= I) return;
    float *h = HN + (size_t)b * ldh + i;
    *h = (*h + skip[i] * XA[(size_t)b * ldxa + i]) * sym_siluf(XG[(size_t)b * ldxg + i]);
}

void sym_mlstm_skip(cudaStream_t s, float *HN, int ldh, const float *XA, int ldxa, const float *XG, int ldxg,
                    const float *skip, int I, int B) {
    dim3 grid((I + 255) / 256, B);
    k_mlstm_skip<<<grid, 256, 0, s>>>(HN, ldh, XA, ldxa, XG, ldxg, skip, I);
}
