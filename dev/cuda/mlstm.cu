/* The mLSTM's recurrent part (towers/xlstm.cu) at full size (I = 4096,
 * 8 heads of 512): the gate kernel (the gate projection fused, m and n
 * advanced), the matrix cell (C = fg C + ig k v^T, readout split 8 ways)
 * and the exit (the splits summed over the denominator, head GroupNorm,
 * skip, output gate), against a CPU fp64 reference of the same step, for
 * fp32 and bf16 gate weights, rows of one and with runs. Then each
 * variant's time and the rate at which it streams the C state.
 *   mlstm [iters (20)] */
#include "dev/cuda/dev_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/convert.cuh"
#include "kernels/cuda/towers/xlstm.cuh"

static const int H = 2048, I = 2 * H, NH = 8, DM = I / NH;
static const size_t OFF_C = 4, OFF_N = OFF_C + (size_t)NH * DM * DM, OFF_M = OFF_N + (size_t)NH * DM,
                    NUMEL = (OFF_M + NH + 63) & ~(size_t)63;

static float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }
static double silu(double v) { return v / (1 + exp(-v)); }
static double logsigmoid(double v) { return v < 0 ? v - log1p(exp(v)) : -log1p(exp(-v)); }

struct inputs {
    std::vector<float> qkv, xa, xg, wg, bg, on_w, on_b, skip, pool;
};

/* One row of the step on the CPU: the slot's state st advanced, hn its output. */
static void reference_row(const inputs &in, const float *x, const float *xa, const float *xg, double *st, double *hn) {
    const double ksc = 1.0 / sqrt((double)DM);
    std::vector<double> h((size_t)I);
    for (int n = 0; n < NH; n++) {
        double ip = in.bg[(size_t)n], fp = in.bg[(size_t)NH + n];
        for (int k = 0; k < 3 * I; k++)
            ip += (double)in.wg[(size_t)n * 3 * I + k] * x[k], fp += (double)in.wg[(size_t)(NH + n) * 3 * I + k] * x[k];
        double *C = st + OFF_C + (size_t)n * DM * DM, *nv = st + OFF_N + (size_t)n * DM, *mv = st + OFF_M + n;
        const double lf = logsigmoid(fp), m = ip > *mv + lf ? ip : *mv + lf, ig = exp(ip - m), fg = exp(lf + *mv - m);
        const float *q = x + (size_t)n * DM, *kk = q + I, *v = q + 2 * I;
        double *num = &h[(size_t)n * DM], qdot = 0;
        for (int j = 0; j < DM; j++) num[j] = 0;
        for (int i = 0; i < DM; i++) {
            const double ks = kk[i] * ksc;
            for (int j = 0; j < DM; j++) {
                double &c = C[(size_t)i * DM + j];
                c = fg * c + ig * ks * v[j];
                num[j] += q[i] * c;
            }
            nv[i] = fg * nv[i] + ig * ks;
            qdot += q[i] * nv[i];
        }
        const double fl = exp(-m), den = (fabs(qdot) > fl ? fabs(qdot) : fl) + 1e-6;
        for (int j = 0; j < DM; j++) num[j] /= den;
        *mv = m;
        double mean = 0, var = 0;
        for (int j = 0; j < DM; j++) mean += num[j];
        mean /= DM;
        for (int j = 0; j < DM; j++) var += (num[j] - mean) * (num[j] - mean);
        const double r = 1 / sqrt(var / DM + 1e-5);
        for (int j = 0; j < DM; j++) {
            const size_t c = (size_t)n * DM + j;
            const double o = (num[j] - mean) * r * in.on_w[c] + in.on_b[c];
            hn[c] = (o + (double)in.skip[c] * xa[c]) * silu(xg[c]);
        }
    }
}

static void run(int symbols, int runs, int bf16, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B;
    inputs in;
    in.qkv = dev_randv((size_t)B * 3 * I, -1, 1), in.xa = dev_randv((size_t)B * I, -1, 1);
    in.xg = dev_randv((size_t)B * I, -2, 2), in.wg = dev_randv((size_t)2 * NH * 3 * I, -0.02f, 0.02f);
    in.bg = dev_randv((size_t)2 * NH, -1, 1), in.on_w = dev_randv((size_t)I, 0.5f, 1.5f);
    in.on_b = dev_randv((size_t)I, -0.1f, 0.1f), in.skip = dev_randv((size_t)I, -1, 1);
    in.pool = dev_randv(NUMEL * r.n_slots, -0.05f, 0.05f);
    for (int s = 0; s < r.n_slots; s++)
        for (int n = 0; n < NH; n++) in.pool[s * NUMEL + OFF_M + n] = dev_rand(-1, 1);
    if (bf16)
        for (auto &w : in.wg) w = round_bf16(w);
    /* the CPU reference, rows in order (a run's rows one after another) */
    std::vector<double> st(in.pool.begin(), in.pool.end()), hn((size_t)B * I);
    for (int b = 0; b < B; b++)
        reference_row(in, &in.qkv[(size_t)b * 3 * I], &in.xa[(size_t)b * I], &in.xg[(size_t)b * I],
                      &st[(size_t)r.slots[(size_t)b] * NUMEL], &hn[(size_t)b * I]);
    /* the device */
    float *d_qkv = dev_up(in.qkv), *d_xa = dev_up(in.xa), *d_xg = dev_up(in.xg), *d_wg32 = dev_up(in.wg);
    float *d_bg = dev_up(in.bg), *d_w = dev_up(in.on_w), *d_b = dev_up(in.on_b), *d_skip = dev_up(in.skip);
    float *d_pool = dev_up(in.pool), *d_sc = dev_up(std::vector<float>((size_t)B * 4 * NH));
    float *d_hp = dev_up(std::vector<float>((size_t)SYM_MLSTM_SPLITS * B * I)),
          *d_hn = dev_up(std::vector<float>((size_t)B * I));
    int *d_slots = dev_up(r.slots), *d_len = dev_up(r.len);
    void *d_wg = d_wg32;
    if (bf16) {
        DEV_CK(cudaMalloc(&d_wg, in.wg.size() * 2));
        sym_f32_to_bf16_dev(dev_stream, d_wg32, (__nv_bfloat16 *)d_wg, in.wg.size());
    }
    const sym_dlin Lg = {d_wg, d_bg, 2 * NH, 3 * I, 2 * NH, 1, bf16};
    const sym_runs rn = {d_len, r.max, 0};
    const sym_xsplit none = {NULL, NULL};
    auto step = [&]() {
        sym_mlstm_gate(dev_stream, &Lg, d_qkv, 3 * I, d_pool, NUMEL, d_slots, rn, OFF_N, OFF_M, d_sc, 4 * NH, I, NH, B);
        sym_mlstm_cell(dev_stream, d_qkv, 3 * I, d_sc, 4 * NH, d_pool, NUMEL, d_slots, rn, -1, sym_mat_loc_f32(OFF_C), d_hp, I, NH, B,
                       SYM_PRIO_STREAM);
        sym_mlstm_out(dev_stream, d_hp, d_sc, 4 * NH, d_w, d_b, d_skip, d_xa, I, d_xg, I, d_hn, I, I, NH, B, none);
    };
    step();
    DEV_CK(cudaGetLastError());
    const std::vector<float> got_hn = dev_down(d_hn, (size_t)B * I), got_pool = dev_down(d_pool, in.pool.size());
    char what[96];
    snprintf(what, sizeof what, "%s gates, %d symbols, %d rows%s", bf16 ? "bf16" : "fp32", symbols, B,
             runs ? " (runs)" : "");
    dev_check(what, dev_err(got_hn.data(), hn.data(), hn.size()), 1e-3);
    dev_check("  its state (C, n, m)", dev_err(got_pool.data(), st.data(), st.size()), 1e-4);
    const double us = dev_time_us(iters, step), bytes = 2.0 * symbols * NH * (double)DM * DM * 4;
    printf("     %-52s %8.1f us  %6.0f GB/s of C\n", "", us, bytes / (us * 1e3));
    cudaFree(d_qkv), cudaFree(d_xa), cudaFree(d_xg), cudaFree(d_wg32), cudaFree(d_bg), cudaFree(d_w), cudaFree(d_b);
    cudaFree(d_skip), cudaFree(d_pool), cudaFree(d_sc), cudaFree(d_hp), cudaFree(d_hn), cudaFree(d_slots);
    cudaFree(d_len);
    if (bf16) cudaFree(d_wg);
}

int main(int argc, char **argv) { /* fp32 gates, then bf16 */
    dev_main(argc, argv, "mlstm", [](int s, int runs, int iters) { run(s, runs, 0, iters); });
    return dev_main(argc, argv, "mlstm", [](int s, int runs, int iters) { run(s, runs, 1, iters); });
}
