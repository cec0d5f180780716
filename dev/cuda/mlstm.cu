/* The mLSTM's recurrent part (towers/xlstm.cu) at full size (I = 4096,
 * 8 heads of 512): the gate kernel (the gate projection fused, m and n
 * advanced), the matrix cell (C = fg C + ig k v^T, readout split 8 ways)
 * and the exit (the splits summed over the denominator, head GroupNorm,
 * skip, output gate), against a CPU fp64 reference of the same step, for
 * fp32 and bf16 gate weights, rows of one and with runs; with C stored in
 * bf16 and fp16 (state_precision), the output of rows of one against the
 * reference from the stored C (a run's later rows read C rounded between
 * rows, which the reference does not do). Then the two-byte cell, eight
 * numbers a thread, against the four-number cell it replaced
 * (matrix_cell4.cuh), bit for bit, on fresh inputs at three head sizes
 * (512; 600, past a multiple of 128 and of 256; 24, shorter than a
 * segment), rows of one and with runs; each compare's two times. Then
 * each variant's time and the rate at which it streams the C state.
 *   mlstm [iters (20)] */
#include "dev/cuda/dev_common.cuh"
#include "dev/cuda/dev_matrix.cuh"
#include "dev/cuda/matrix_cell4.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/ops/convert.cuh"
#include "kernels/cuda/towers/xlstm.cuh"

static const int H = 2048, I = 2 * H, NH = 8, DM = I / NH;
/* the CPU reference's slot: C [NH][DM][DM], n [NH][DM], m [NH] */
static const size_t LC = 0, LN = LC + (size_t)NH * DM * DM, LM = LN + (size_t)NH * DM, LNUM = LM + NH;

static float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }
static double silu(double v) { return v / (1 + exp(-v)); }
static double logsigmoid(double v) { return v < 0 ? v - log1p(exp(v)) : -log1p(exp(-v)); }

/* The device's slot: C as fmt stores it (dev_matrix.cuh), then n, m. */
struct layout {
    dev_mat C;
    size_t n, m, numel;
};
static layout make_layout(sym_mat_store fmt) {
    layout l;
    l.C = dev_mat_place(32, (size_t)NH * DM, DM, fmt);
    l.n = l.C.next, l.m = l.n + (((size_t)NH * DM + 31) & ~(size_t)31), l.numel = (l.m + NH + 63) & ~(size_t)63;
    return l;
}

struct inputs {
    std::vector<float> qkv, xa, xg, wg, bg, on_w, on_b, skip;
};

/* One row of the step on the CPU: the slot's state st (LC, LN, LM) advanced, hn its output. */
static void reference_row(const inputs &in, const float *x, const float *xa, const float *xg, double *st, double *hn) {
    const double ksc = 1.0 / sqrt((double)DM);
    std::vector<double> h((size_t)I);
    for (int n = 0; n < NH; n++) {
        double ip = in.bg[(size_t)n], fp = in.bg[(size_t)NH + n];
        for (int k = 0; k < 3 * I; k++)
            ip += (double)in.wg[(size_t)n * 3 * I + k] * x[k], fp += (double)in.wg[(size_t)(NH + n) * 3 * I + k] * x[k];
        double *C = st + LC + (size_t)n * DM * DM, *nv = st + LN + (size_t)n * DM, *mv = st + LM + n;
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

/* The step with C stored as fmt. fp32: the output and the whole state
 * (C, n, m) against the reference; two-byte formats (rows of one only):
 * the output, n and m. */
static void run(int symbols, int runs, int bf16, sym_mat_store fmt, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B;
    const layout L = make_layout(fmt);
    inputs in;
    in.qkv = dev_randv((size_t)B * 3 * I, -1, 1), in.xa = dev_randv((size_t)B * I, -1, 1);
    in.xg = dev_randv((size_t)B * I, -2, 2), in.wg = dev_randv((size_t)2 * NH * 3 * I, -0.02f, 0.02f);
    in.bg = dev_randv((size_t)2 * NH, -1, 1), in.on_w = dev_randv((size_t)I, 0.5f, 1.5f);
    in.on_b = dev_randv((size_t)I, -0.1f, 0.1f), in.skip = dev_randv((size_t)I, -1, 1);
    if (bf16)
        for (auto &w : in.wg) w = round_bf16(w);
    /* each slot's state: C as stored (the reference starts from what the cell reads), n, m */
    std::vector<float> pool(L.numel * r.n_slots, 0.0f);
    std::vector<double> st(LNUM * r.n_slots);
    for (int s = 0; s < r.n_slots; s++) {
        std::vector<float> c = dev_randv(LN - LC, -0.05f, 0.05f), nv = dev_randv(LM - LN, -0.05f, 0.05f);
        float *slot = &pool[(size_t)s * L.numel];
        dev_mat_store(slot, L.C, c.data());
        memcpy(slot + L.n, nv.data(), nv.size() * sizeof(float));
        double *ls = &st[(size_t)s * LNUM];
        for (size_t i = 0; i < c.size(); i++) ls[LC + i] = c[i];
        for (size_t i = 0; i < nv.size(); i++) ls[LN + i] = nv[i];
        for (int n = 0; n < NH; n++) slot[L.m + n] = dev_rand(-1, 1), ls[LM + n] = slot[L.m + n];
    }
    /* the CPU reference, rows in order (a run's rows one after another) */
    std::vector<double> hn((size_t)B * I);
    for (int b = 0; b < B; b++)
        reference_row(in, &in.qkv[(size_t)b * 3 * I], &in.xa[(size_t)b * I], &in.xg[(size_t)b * I],
                      &st[(size_t)r.slots[(size_t)b] * LNUM], &hn[(size_t)b * I]);
    /* the device */
    float *d_qkv = dev_up(in.qkv), *d_xa = dev_up(in.xa), *d_xg = dev_up(in.xg), *d_wg32 = dev_up(in.wg);
    float *d_bg = dev_up(in.bg), *d_w = dev_up(in.on_w), *d_b = dev_up(in.on_b), *d_skip = dev_up(in.skip);
    float *d_pool = dev_up(pool), *d_sc = dev_up(std::vector<float>((size_t)B * 4 * NH));
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
        sym_mlstm_gate(dev_stream, &Lg, d_qkv, 3 * I, d_pool, L.numel, d_slots, rn, L.n, L.m, d_sc, 4 * NH, I, NH, B);
        sym_mlstm_cell(dev_stream, d_qkv, 3 * I, d_sc, 4 * NH, d_pool, L.numel, d_slots, rn, -1, L.C.loc, d_hp, I, NH,
                       B, SYM_PRIO_STREAM);
        sym_mlstm_out(dev_stream, d_hp, d_sc, 4 * NH, d_w, d_b, d_skip, d_xa, I, d_xg, I, d_hn, I, I, NH, B, none);
    };
    step();
    DEV_CK(cudaGetLastError());
    const std::vector<float> got_hn = dev_down(d_hn, (size_t)B * I), got_pool = dev_down(d_pool, pool.size());
    /* the device's state in the reference's places (C only where stored as fp32) */
    std::vector<float> got(st.size());
    std::vector<double> want(st);
    for (int s = 0; s < r.n_slots; s++) {
        const float *slot = &got_pool[(size_t)s * L.numel];
        float *g = &got[(size_t)s * LNUM];
        if (fmt == SYM_MAT_F32) memcpy(g + LC, slot + L.C.loc.off, (LN - LC) * sizeof(float));
        else
            for (size_t i = LC; i < LN; i++) g[i] = 0, want[(size_t)s * LNUM + i] = 0;
        memcpy(g + LN, slot + L.n, (LM - LN) * sizeof(float));
        memcpy(g + LM, slot + L.m, NH * sizeof(float));
    }
    char what[96];
    snprintf(what, sizeof what, "%s gates, C %s, %d symbols, %d rows%s", bf16 ? "bf16" : "fp32", dev_mat_name(fmt),
             symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(got_hn.data(), hn.data(), hn.size()), 1e-3);
    dev_check(fmt == SYM_MAT_F32 ? "  its state (C, n, m)" : "  its state (n, m)",
              dev_err(got.data(), want.data(), want.size()), 1e-4);
    const double us = dev_time_us(iters, step),
                 bytes = 2.0 * symbols * NH * (double)DM * DM * (fmt == SYM_MAT_F32 ? 4 : 2);
    printf("     %-52s %8.1f us  %6.0f GB/s of C\n", "", us, bytes / (us * 1e3));
    cudaFree(d_qkv), cudaFree(d_xa), cudaFree(d_xg), cudaFree(d_wg32), cudaFree(d_bg), cudaFree(d_w), cudaFree(d_b);
    cudaFree(d_skip), cudaFree(d_pool), cudaFree(d_sc), cudaFree(d_hp), cudaFree(d_hn), cudaFree(d_slots);
    cudaFree(d_len);
    if (bf16) cudaFree(d_wg);
}

/* sym_mlstm_cell with C two-byte (fmt), eight numbers a thread, against
 * the four-number cell (matrix_cell4.cuh) on the same fresh inputs, at
 * hidden size h with nh heads (head size dm = 2h / nh): every stored byte
 * of the slots and every partial readout equal, bit for bit. Then both
 * times. */
static void cell8_vs_cell4(int h, int nh, int symbols, int runs, sym_mat_store fmt, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B, in = 2 * h, dm = in / nh;
    const dev_mat C = dev_mat_place(32, (size_t)nh * dm, dm, fmt);
    const size_t numel = (C.next + 63) & ~(size_t)63;
    std::vector<float> pool(numel * r.n_slots, 0.0f);
    for (int s = 0; s < r.n_slots; s++) {
        /* rows of magnitudes 2^-20..2^4, so the fp16 segments take many scales */
        std::vector<float> c = dev_randv((size_t)nh * dm * dm, -1, 1);
        for (size_t i = 0; i < c.size(); i += (size_t)dm) {
            const float sc = ldexpf(1.0f, (int)dev_rand(-20, 5));
            for (int j = 0; j < dm; j++) c[i + (size_t)j] *= sc;
        }
        dev_mat_store(&pool[(size_t)s * numel], C, c.data());
    }
    const std::vector<float> qkv = dev_randv((size_t)B * 3 * in, -1, 1);
    std::vector<float> sc((size_t)B * 4 * nh);
    for (int b = 0; b < B; b++)
        for (int n = 0; n < nh; n++) {
            float *p = &sc[(size_t)b * 4 * nh + 4 * n];
            p[0] = dev_rand(0.01f, 2), p[1] = dev_rand(0.3f, 1), p[2] = dev_rand(1, 2), p[3] = 0;
        }
    const std::vector<float> hp0((size_t)SYM_MLSTM_SPLITS * B * in, NAN);
    float *d_qkv = dev_up(qkv), *d_sc = dev_up(sc), *d_pool4 = dev_up(pool), *d_pool8 = dev_up(pool);
    float *d_hp4 = dev_up(hp0), *d_hp8 = dev_up(hp0);
    int *d_slots = dev_up(r.slots), *d_len = dev_up(r.len);
    const sym_runs rn = {d_len, r.max, 0};
    auto cell4 = [&]() {
        mlstm_cell4(dev_stream, d_qkv, 3 * in, d_sc, 4 * nh, d_pool4, numel, d_slots, rn, -1, C.loc, d_hp4, in, nh, B);
    };
    auto cell8 = [&]() {
        sym_mlstm_cell(dev_stream, d_qkv, 3 * in, d_sc, 4 * nh, d_pool8, numel, d_slots, rn, -1, C.loc, d_hp8, in, nh,
                       B, SYM_PRIO_STREAM);
    };
    cell4(), cell8();
    DEV_CK(cudaGetLastError());
    const std::vector<float> p4 = dev_down(d_pool4, pool.size()), p8 = dev_down(d_pool8, pool.size()),
                             h4 = dev_down(d_hp4, hp0.size()), h8 = dev_down(d_hp8, hp0.size());
    size_t differ = 0;
    for (size_t i = 0; i < p4.size(); i++) differ += memcmp(&p4[i], &p8[i], sizeof(float)) != 0;
    for (size_t i = 0; i < h4.size(); i++) differ += memcmp(&h4[i], &h8[i], sizeof(float)) != 0;
    char what[96];
    snprintf(what, sizeof what, "C %s, dm %d, 8 vs 4 a thread, %d rows%s: words differing", dev_mat_name(fmt), dm, B,
             runs ? " (runs)" : "");
    dev_check(what, (double)differ, 0);
    const double t4 = dev_time_us(iters, cell4), t8 = dev_time_us(iters, cell8),
                 bytes = 2.0 * symbols * nh * (double)dm * dm * 2;
    printf("     %-52s %8.1f us (4 a thread %.1f)  %6.0f GB/s of C\n", "", t8, t4, bytes / (t8 * 1e3));
    cudaFree(d_qkv), cudaFree(d_sc), cudaFree(d_pool4), cudaFree(d_pool8), cudaFree(d_hp4), cudaFree(d_hp8);
    cudaFree(d_slots), cudaFree(d_len);
}

int main(int argc, char **argv) {
    dev_need_gpu("mlstm");
    const int iters = argc > 1 ? atoi(argv[1]) : 20;
    for (int bf16 = 0; bf16 < 2; bf16++) /* fp32 gates, then bf16 */
        dev_main(argc, argv, "mlstm", [bf16](int s, int runs, int it) { run(s, runs, bf16, SYM_MAT_F32, it); });
    const sym_mat_store two[] = {SYM_MAT_BF16, SYM_MAT_F16};
    for (sym_mat_store f : two)
        for (int s : {1, 8, 39}) run(s, 0, 0, f, iters);
    /* [hidden, heads, symbols]: full size; dm 600 (H = 2400, a valid
     * model); dm 24 (H = 96 with 8 heads, which tests/kernels/random_config.c
     * draws) */
    const int shapes[][3] = {{H, NH, 39}, {2400, 8, 8}, {96, 8, 8}};
    for (const auto &sh : shapes)
        for (sym_mat_store f : two)
            for (int runs = 0; runs < 2; runs++) cell8_vs_cell4(sh[0], sh[1], sh[2], runs, f, iters);
    return dev_failures != 0;
}
