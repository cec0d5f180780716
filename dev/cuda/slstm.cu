/* The sLSTM (towers/xlstm.cu) at full size (H = 2048, 4 heads of 512):
 * its entry (RMSNorm, LayerNorm, the conv with its state, the gates' input
 * row with y_prev) and its cell with the norms after it (the cell's c, n,
 * m, y advanced, GroupNorm + residual, the mLSTM's LayerNorm), against a
 * CPU fp64 reference, rows of one and with runs (one pass per place in a
 * run, as the engine runs them). Then each one's time.
 *   slstm [iters (20)] */
#include <float.h>

#include "dev/cuda/dev_common.cuh"
#include "kernels/cuda/towers/xlstm.cuh"

static const int H = 2048, NS = 4, BS = H / NS, LDSG = 8 * H;
static const size_t OFF_CONV = 0, OFF_Y = 3 * (size_t)H, OFF_C = OFF_Y + H, OFF_N = OFF_C + H, OFF_M = OFF_N + H,
                    NUMEL = OFF_M + H;

static double silu(double v) { return v / (1 + exp(-v)); }
static double sigmoid(double v) { return 1 / (1 + exp(-v)); }
static double logsigmoid(double v) { return v < 0 ? v - log1p(exp(v)) : -log1p(exp(-v)); }

/* mean and 1/sqrt(var + 1e-5) of v[0..n) */
static void ln_stats(const double *v, int n, double *mean, double *r) {
    double m = 0, q = 0;
    for (int i = 0; i < n; i++) m += v[i];
    m /= n;
    for (int i = 0; i < n; i++) q += (v[i] - m) * (v[i] - m);
    *mean = m, *r = 1 / sqrt(q / n + 1e-5);
}

/* the entry for one row: a, the gates' input row sg, the conv state advanced */
static void ref_in(const float *u, const float *w1, const float *w2, const float *cw, const float *cb, double *st,
                   double *a, double *sg) {
    std::vector<double> v((size_t)H);
    double ss = 0, mean, r;
    for (int i = 0; i < H; i++) ss += (double)u[i] * u[i];
    const double rs = 1 / sqrt(ss / H + FLT_EPSILON);
    for (int i = 0; i < H; i++) a[i] = v[(size_t)i] = u[i] * rs * w1[i];
    ln_stats(v.data(), H, &mean, &r);
    for (int i = 0; i < H; i++) {
        double *s = st + OFF_CONV + 3 * (size_t)i, x = (v[(size_t)i] - mean) * r * w2[i];
        const double xa =
            silu(cb[i] + cw[4 * i] * s[0] + cw[4 * i + 1] * s[1] + cw[4 * i + 2] * s[2] + cw[4 * i + 3] * x);
        s[0] = s[1], s[1] = s[2], s[2] = x;
        double *p = sg + (size_t)(i / BS) * 2 * BS + i % BS, y = st[OFF_Y + i];
        const double in_g[4] = {xa, xa, x, x};
        for (int g = 0; g < 4; g++) p[(size_t)g * 2 * H] = in_g[g], p[(size_t)g * 2 * H + BS] = y;
    }
}

/* the cell and the norms after it for one row: SO, XM, the state advanced */
static void ref_out(const float *G, const float *gn_w, const float *gn_b, const float *res, const float *mn_w,
                    double *st, double *so, double *xm) {
    std::vector<double> y((size_t)H);
    for (int i = 0; i < H; i++) {
        const double gi = G[i], gf = G[H + i], gz = G[2 * H + i], go = G[3 * H + i];
        const double lf = st[OFF_M + i] + logsigmoid(gf), m = gi > lf ? gi : lf, ig = exp(gi - m), fg = exp(lf - m);
        const double cn = fg * st[OFF_C + i] + ig * tanh(gz), nn = fg * st[OFF_N + i] + ig;
        y[(size_t)i] = sigmoid(go) * cn / (nn + 1e-6);
        st[OFF_C + i] = cn, st[OFF_N + i] = nn, st[OFF_M + i] = m, st[OFF_Y + i] = y[(size_t)i];
    }
    double mean, r;
    for (int k = 0; k < NS; k++) {
        ln_stats(&y[(size_t)k * BS], BS, &mean, &r);
        for (int i = k * BS; i < (k + 1) * BS; i++) so[i] = (y[(size_t)i] - mean) * r * gn_w[i] + gn_b[i] + res[i];
    }
    ln_stats(so, H, &mean, &r);
    for (int i = 0; i < H; i++) xm[i] = (so[i] - mean) * r * mn_w[i];
}

static void run(int symbols, int runs, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B;
    const std::vector<float> u = dev_randv((size_t)B * H, -2, 2), w1 = dev_randv(H, 0.5f, 1.5f),
                             w2 = dev_randv(H, 0.5f, 1.5f), cw = dev_randv((size_t)4 * H, -0.5f, 0.5f),
                             cb = dev_randv(H, -0.1f, 0.1f), G = dev_randv((size_t)B * 4 * H, -3, 3),
                             gn_w = dev_randv(H, 0.5f, 1.5f), gn_b = dev_randv(H, -0.1f, 0.1f),
                             res = dev_randv((size_t)B * H, -1, 1), mn_w = dev_randv(H, 0.5f, 1.5f);
    std::vector<float> pool = dev_randv(NUMEL * r.n_slots, -0.5f, 0.5f);
    for (int s = 0; s < r.n_slots; s++)
        for (int i = 0; i < H; i++)
            pool[s * NUMEL + OFF_N + i] = dev_rand(0.5f, 2), pool[s * NUMEL + OFF_M + i] = dev_rand(-1, 1);
    /* the CPU: the entry over every row, then the cell (their inputs here are independent) */
    std::vector<double> st_in(pool.begin(), pool.end()), st_out(pool.begin(), pool.end()), a((size_t)B * H),
        sg((size_t)B * LDSG, 0.0), so((size_t)B * H), xm((size_t)B * H);
    for (int b = 0; b < B; b++) {
        const size_t s = (size_t)r.slots[(size_t)b] * NUMEL;
        ref_in(&u[(size_t)b * H], w1.data(), w2.data(), cw.data(), cb.data(), &st_in[s], &a[(size_t)b * H],
               &sg[(size_t)b * LDSG]);
        ref_out(&G[(size_t)b * 4 * H], gn_w.data(), gn_b.data(), &res[(size_t)b * H], mn_w.data(), &st_out[s],
                &so[(size_t)b * H], &xm[(size_t)b * H]);
    }
    float *d_u = dev_up(u), *d_w1 = dev_up(w1), *d_w2 = dev_up(w2), *d_cw = dev_up(cw), *d_cb = dev_up(cb);
    float *d_G = dev_up(G), *d_gnw = dev_up(gn_w), *d_gnb = dev_up(gn_b), *d_res = dev_up(res), *d_mnw = dev_up(mn_w);
    float *d_in = dev_up(pool), *d_out = dev_up(pool), *d_a = dev_up(std::vector<float>((size_t)B * H));
    float *d_sg = dev_up(std::vector<float>((size_t)B * LDSG)), *d_so = dev_up(std::vector<float>((size_t)B * H));
    float *d_xm = dev_up(std::vector<float>((size_t)B * H));
    int *d_slots = dev_up(r.slots), *d_len = dev_up(r.len);
    const sym_xsplit none = {NULL, NULL};
    int bad = 0;
    /* one pass per place in a run, as the engine's layer runs them */
    auto entry = [&]() {
        for (sym_runs rn = {d_len, r.max, 0}; rn.pass < rn.max; rn.pass++)
            bad |= sym_slstm_in(dev_stream, d_u, H, d_a, H, d_w1, FLT_EPSILON, d_sg, LDSG, BS, d_w2, d_in, NUMEL,
                                d_slots, rn, OFF_CONV, d_cw, d_cb, OFF_Y, H, B, none);
    };
    auto cell = [&]() {
        for (sym_runs rn = {d_len, r.max, 0}; rn.pass < rn.max; rn.pass++)
            bad |= sym_slstm_out(dev_stream, d_G, 4 * H, d_out, NUMEL, d_slots, rn, OFF_C, OFF_N, OFF_M, OFF_Y, d_gnw,
                                 d_gnb, d_res, H, d_so, H, d_mnw, d_xm, H, H, NS, B, none);
    };
    entry(), cell();
    DEV_CK(cudaGetLastError());
    if (bad) printf("FAIL a launcher refused its row\n"), dev_failures++;
    const std::vector<float> g_a = dev_down(d_a, a.size()), g_sg = dev_down(d_sg, sg.size()),
                             g_in = dev_down(d_in, pool.size()), g_so = dev_down(d_so, so.size()),
                             g_xm = dev_down(d_xm, xm.size()), g_out = dev_down(d_out, pool.size());
    char what[96];
    snprintf(what, sizeof what, "entry, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_a.data(), a.data(), a.size()) + dev_err(g_sg.data(), sg.data(), sg.size()), 1e-4);
    dev_check("  its conv state", dev_err(g_in.data(), st_in.data(), st_in.size()), 1e-4);
    printf("     %-52s %8.1f us\n", "", dev_time_us(iters, entry));
    snprintf(what, sizeof what, "cell + norms, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_so.data(), so.data(), so.size()) + dev_err(g_xm.data(), xm.data(), xm.size()), 1e-4);
    dev_check("  its state (c, n, m, y)", dev_err(g_out.data(), st_out.data(), st_out.size()), 1e-4);
    printf("     %-52s %8.1f us\n", "", dev_time_us(iters, cell));
    for (float *p : {d_u, d_w1, d_w2, d_cw, d_cb, d_G, d_gnw, d_gnb, d_res, d_mnw, d_in, d_out, d_a, d_sg, d_so, d_xm})
        cudaFree(p);
    cudaFree(d_slots), cudaFree(d_len);
}

int main(int argc, char **argv) { return dev_main(argc, argv, "slstm", run); }
