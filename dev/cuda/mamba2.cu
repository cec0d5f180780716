/* Mamba2's recurrent part (towers/mamba2.cu, ops/conv.cu) at full size
 * (I = 4096, 64 heads of 64 x 128): the three convs with their states and
 * silu (x, b, c), then the SSM update and readout times silu(z), against a
 * CPU fp64 reference, rows of one and with runs. Then the time of the
 * convs and of the SSM, and the rate at which the SSM streams h.
 *   mamba2 [iters (20)] */
#include "dev/cuda/dev_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/conv.cuh"
#include "kernels/cuda/towers/mamba2.cuh"

static const int H = 2048, I = 2 * H, BC = 128, HD = 64, NM = I / HD, LDP = (2 * I + 2 * BC + NM + 7) & ~7,
                 LDBC = 2 * H;
static const size_t OFF_CX = 0, OFF_CB = 3 * (size_t)I, OFF_CC = OFF_CB + 3 * BC, OFF_H = OFF_CC + 3 * BC,
                    NUMEL = OFF_H + (size_t)NM * HD * BC;

static double silu(double v) { return v / (1 + exp(-v)); }
static double softplus(double v) { return v > 20 ? v : log1p(exp(v)); }

/* out[c] = silu(conv(x)), c < C, the state [C][3] advanced */
static void ref_conv(const float *x, int C, const float *w, const float *bias, double *s, double *out) {
    for (int c = 0; c < C; c++, s += 3) {
        const double o = bias[c] + w[4 * c] * s[0] + w[4 * c + 1] * s[1] + w[4 * c + 2] * s[2] + w[4 * c + 3] * x[c];
        s[0] = s[1], s[1] = s[2], s[2] = x[c];
        out[c] = silu(o);
    }
}

static void run(int symbols, int runs, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B;
    const std::vector<float> pr = dev_randv((size_t)B * LDP, -1, 1), cxw = dev_randv((size_t)4 * I, -0.5f, 0.5f),
                             cxb = dev_randv(I, -0.1f, 0.1f), cbw = dev_randv(4 * BC, -0.5f, 0.5f),
                             cbb = dev_randv(BC, -0.1f, 0.1f), ccw = dev_randv(4 * BC, -0.5f, 0.5f),
                             ccb = dev_randv(BC, -0.1f, 0.1f), a = dev_randv(NM, -2, -0.1f), d = dev_randv(NM, 0, 1);
    const std::vector<float> pool = dev_randv(NUMEL * r.n_slots, -0.5f, 0.5f);
    std::vector<double> st(pool.begin(), pool.end()), xs((size_t)B * I), bc((size_t)B * LDBC, 0.0), y((size_t)B * I);
    for (int b = 0; b < B; b++) {
        double *s = &st[(size_t)r.slots[(size_t)b] * NUMEL], *xb = &xs[(size_t)b * I], *bcb = &bc[(size_t)b * LDBC];
        const float *p = &pr[(size_t)b * LDP];
        ref_conv(p, I, cxw.data(), cxb.data(), s + OFF_CX, xb);
        ref_conv(p + 2 * I, BC, cbw.data(), cbb.data(), s + OFF_CB, bcb);
        ref_conv(p + 2 * I + BC, BC, ccw.data(), ccb.data(), s + OFF_CC, bcb + BC);
        for (int n = 0; n < NM; n++) {
            const double dt = softplus(p[2 * I + 2 * BC + n]), dA = exp(a[(size_t)n] * dt);
            for (int i = 0; i < HD; i++) {
                double *h = s + OFF_H + ((size_t)n * HD + i) * BC, xi = xb[n * HD + i], acc = 0;
                for (int j = 0; j < BC; j++) h[j] = dA * h[j] + dt * bcb[j] * xi, acc += bcb[BC + j] * h[j];
                y[(size_t)b * I + n * HD + i] = (acc + d[(size_t)n] * xi) * silu(p[I + n * HD + i]);
            }
        }
    }
    float *d_pr = dev_up(pr), *d_cxw = dev_up(cxw), *d_cxb = dev_up(cxb), *d_cbw = dev_up(cbw), *d_cbb = dev_up(cbb);
    float *d_ccw = dev_up(ccw), *d_ccb = dev_up(ccb), *d_a = dev_up(a), *d_d = dev_up(d), *d_pool = dev_up(pool);
    float *d_xs = dev_up(std::vector<float>((size_t)B * I)), *d_bc = dev_up(std::vector<float>((size_t)B * LDBC));
    float *d_y = dev_up(std::vector<float>((size_t)B * I));
    int *d_slots = dev_up(r.slots), *d_len = dev_up(r.len);
    const sym_runs rn = {d_len, r.max, 0};
    auto convs = [&]() {
        sym_dconv(dev_stream, d_pr, LDP, d_xs, I, B, I, d_pool, NUMEL, d_slots, rn, OFF_CX, d_cxw, d_cxb, 1);
        sym_dconv(dev_stream, d_pr + 2 * I, LDP, d_bc, LDBC, B, BC, d_pool, NUMEL, d_slots, rn, OFF_CB, d_cbw, d_cbb,
                  1);
        sym_dconv(dev_stream, d_pr + 2 * I + BC, LDP, d_bc + BC, LDBC, B, BC, d_pool, NUMEL, d_slots, rn, OFF_CC, d_ccw,
                  d_ccb, 1);
    };
    auto ssm = [&]() {
        sym_mamba_ssm(dev_stream, d_xs, I, d_bc, LDBC, d_pr, LDP, I, 2 * I + 2 * BC, d_a, d_d, d_pool, NUMEL, d_slots,
                      rn, -1, sym_mat_loc_f32(OFF_H), d_y, I, B, NM, SYM_PRIO_STREAM);
    };
    convs(), ssm();
    DEV_CK(cudaGetLastError());
    const std::vector<float> g_xs = dev_down(d_xs, xs.size()), g_bc = dev_down(d_bc, bc.size()),
                             g_y = dev_down(d_y, y.size()), g_pool = dev_down(d_pool, pool.size());
    std::vector<float> g_bc_used(g_bc);
    for (int b = 0; b < B; b++) /* the stride's tail past [b | c] is never written */
        for (int j = 2 * BC; j < LDBC; j++) g_bc_used[(size_t)b * LDBC + j] = 0;
    char what[96];
    snprintf(what, sizeof what, "convs, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_xs.data(), xs.data(), xs.size()) + dev_err(g_bc_used.data(), bc.data(), bc.size()), 1e-4);
    printf("     %-52s %8.1f us\n", "", dev_time_us(iters, convs));
    snprintf(what, sizeof what, "SSM, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_y.data(), y.data(), y.size()), 1e-4);
    dev_check("  its state (convs, h)", dev_err(g_pool.data(), st.data(), st.size()), 1e-4);
    const double us = dev_time_us(iters, ssm), bytes = 2.0 * symbols * NM * (double)HD * BC * 4;
    printf("     %-52s %8.1f us  %6.0f GB/s of h\n", "", us, bytes / (us * 1e3));
    for (float *p : {d_pr, d_cxw, d_cxb, d_cbw, d_cbb, d_ccw, d_ccb, d_a, d_d, d_pool, d_xs, d_bc, d_y}) cudaFree(p);
    cudaFree(d_slots), cudaFree(d_len);
}

int main(int argc, char **argv) { return dev_main(argc, argv, "mamba2", run); }
