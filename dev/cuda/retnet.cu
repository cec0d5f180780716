/* RetNet's retention (towers/retnet.cu) at full size (H = 2048, 8 heads
 * of 256): the rotary of q and k by each row's step (theta in fp64), the
 * S update and readout, and the scale's recurrence with the head RMSNorm
 * and silu(g) gate, against a CPU fp64 reference, rows of one and with
 * runs (a run's rows take their slot's step count + their place); with S
 * stored in bf16 and fp16 (state_precision), the outputs of rows of one
 * against the reference from the stored S (a run's later rows read S
 * rounded between rows, which the reference does not do). Then the
 * two-byte cell, eight numbers a thread, against the four-number cell it
 * replaced (matrix_cell4.cuh), bit for bit, on fresh inputs at three head
 * sizes (256; 300 and 12, whose rows are not a multiple of 8 numbers, so
 * every other row starts on 8 bytes and a thread's last four numbers are
 * past the row's end), rows of one and with runs; each compare's two
 * times. Then each kernel's time, and the rate at which the cell streams S.
 *   retnet [iters (20)] */
#include "dev/cuda/dev_common.cuh"
#include "dev/cuda/dev_matrix.cuh"
#include "dev/cuda/matrix_cell4.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/towers/retnet.cuh"

static const int H = 2048, I = 2 * H, NH = 8, HD = H / NH, LDP = 4 * H;
static const size_t OFF_SCALE = 4;
/* the CPU reference's slot: scale [NH], S [NH][HD][HD] */
static const size_t LSC = 0, LS = NH, LNUM = LS + (size_t)NH * HD * HD;

static double silu(double v) { return v / (1 + exp(-v)); }

/* The step with S stored as fmt. fp32: every output and the state (scale,
 * S) against the reference; two-byte formats (rows of one only): every
 * output and the scale. */
static void run(int symbols, int runs, sym_mat_store fmt, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B;
    const dev_mat S = dev_mat_place(32, (size_t)NH * HD, HD, fmt);
    const size_t numel = S.next;
    const std::vector<float> pr = dev_randv((size_t)B * LDP, -1, 1), angle = dev_randv(HD, 0, 1),
                             decay = dev_randv(NH, 0.9f, 0.999f);
    std::vector<float> pool(numel * r.n_slots, 0.0f);
    std::vector<double> st(LNUM * r.n_slots);
    for (int s = 0; s < r.n_slots; s++) {
        float *slot = &pool[(size_t)s * numel];
        double *ls = &st[(size_t)s * LNUM];
        const long long count = 1000003LL * (s + 1); /* steps taken: large, as in a long stream */
        memcpy(slot, &count, sizeof count);
        for (int n = 0; n < NH; n++) slot[OFF_SCALE + n] = dev_rand(1, 20), ls[LSC + n] = slot[OFF_SCALE + n];
        std::vector<float> m = dev_randv((size_t)NH * HD * HD, -0.5f, 0.5f);
        dev_mat_store(slot, S, m.data()); /* the reference starts from what the cell reads */
        for (size_t i = 0; i < m.size(); i++) ls[LS + i] = m[i];
    }
    std::vector<double> qk((size_t)B * 2 * H), o((size_t)B * I, 0.0), on((size_t)B * I, 0.0);
    const double scaling = 1 / sqrt((double)HD);
    for (int b = 0, place = 0; b < B; b++) {
        place = r.len[(size_t)b] ? 0 : place + 1;
        double *s = &st[(size_t)r.slots[(size_t)b] * LNUM];
        long long count;
        memcpy(&count, &pool[(size_t)r.slots[(size_t)b] * numel], sizeof count);
        const float *p = &pr[(size_t)b * LDP];
        double *q = &qk[(size_t)b * 2 * H], *k = q + H;
        for (int i0 = 0; i0 < H; i0 += 2) {
            const double th0 = (double)(count + place) * angle[(size_t)(i0 % HD)],
                         th1 = (double)(count + place) * angle[(size_t)(i0 % HD + 1)];
            const double c0 = (float)cos(th0), s0 = (float)sin(th0), c1 = (float)cos(th1), s1 = (float)sin(th1);
            const double k0 = p[H + i0] * scaling, k1 = p[H + i0 + 1] * scaling;
            q[i0] = p[i0] * c0 - p[i0 + 1] * s0, q[i0 + 1] = p[i0 + 1] * c1 + p[i0] * s1;
            k[i0] = k0 * c0 - k1 * s0, k[i0 + 1] = k1 * c1 + k0 * s1;
        }
        for (int n = 0; n < NH; n++) {
            double *Sn = s + LS + (size_t)n * HD * HD, *ob = &o[(size_t)b * I + n * HD], ss = 0;
            for (int i = 0; i < HD; i++)
                for (int j = 0; j < HD; j++) {
                    double &m = Sn[(size_t)i * HD + j];
                    m = decay[(size_t)n] * m + k[n * HD + i] * p[2 * H + n * HD + j];
                    ob[j] += q[n * HD + i] * m;
                }
            double &sc = s[LSC + n];
            sc = decay[(size_t)n] * sc + 1;
            for (int j = 0; j < HD; j++) ss += (ob[j] / sqrt(sc)) * (ob[j] / sqrt(sc));
            const double rn = 1 / sqrt(ss / HD + 1e-6);
            for (int j = 0; j < HD; j++)
                on[(size_t)b * I + n * HD + j] = ob[j] / sqrt(sc) * rn * silu(p[3 * H + n * HD + j]);
        }
    }
    float *d_pr = dev_up(pr), *d_angle = dev_up(angle), *d_decay = dev_up(decay), *d_pool = dev_up(pool);
    float *d_o = dev_up(std::vector<float>((size_t)B * I)), *d_on = dev_up(std::vector<float>((size_t)B * I));
    int *d_slots = dev_up(r.slots), *d_len = dev_up(r.len);
    const sym_runs rn = {d_len, r.max, 0};
    const sym_xsplit none = {NULL, NULL};
    auto rotary = [&]() {
        sym_retnet_rotary(dev_stream, d_pr, LDP, H, HD, d_angle, d_pool, numel, d_slots, rn, (float)scaling, B);
    };
    auto cell = [&]() {
        sym_retnet_cell(dev_stream, d_pr, LDP, H, NH, d_decay, d_pool, numel, d_slots, rn, -1, S.loc, d_o, I, B,
                        SYM_PRIO_STREAM);
    };
    auto norm = [&]() {
        sym_retnet_norm(dev_stream, d_o, I, d_pr, LDP, H, NH, d_decay, d_pool, numel, d_slots, rn, OFF_SCALE, d_on, I,
                        B, none);
    };
    rotary(), cell(), norm();
    DEV_CK(cudaGetLastError());
    const std::vector<float> g_pr = dev_down(d_pr, pr.size()), g_o = dev_down(d_o, o.size()),
                             g_on = dev_down(d_on, on.size()), g_pool = dev_down(d_pool, pool.size());
    std::vector<float> g_qk((size_t)B * 2 * H);
    for (int b = 0; b < B; b++) memcpy(&g_qk[(size_t)b * 2 * H], &g_pr[(size_t)b * LDP], 2 * H * sizeof(float));
    /* the device's state in the reference's places (S only where stored as fp32) */
    std::vector<float> g_state(st.size());
    for (int s = 0; s < r.n_slots; s++) {
        const float *slot = &g_pool[(size_t)s * numel];
        float *g = &g_state[(size_t)s * LNUM];
        for (int n = 0; n < NH; n++) g[LSC + n] = slot[OFF_SCALE + n];
        if (fmt == SYM_MAT_F32) memcpy(g + LS, slot + S.loc.off, (LNUM - LS) * sizeof(float));
        else
            for (size_t i = LS; i < LNUM; i++) g[i] = 0, st[(size_t)s * LNUM + i] = 0;
    }
    char what[96];
    snprintf(what, sizeof what, "rotary, S %s, %d symbols, %d rows%s", dev_mat_name(fmt), symbols, B,
             runs ? " (runs)" : "");
    dev_check(what, dev_err(g_qk.data(), qk.data(), qk.size()), 1e-4);
    snprintf(what, sizeof what, "cell, S %s, %d symbols, %d rows%s", dev_mat_name(fmt), symbols, B,
             runs ? " (runs)" : "");
    dev_check(what, dev_err(g_o.data(), o.data(), o.size()), 1e-4);
    snprintf(what, sizeof what, "norm and gate, S %s, %d symbols, %d rows%s", dev_mat_name(fmt), symbols, B,
             runs ? " (runs)" : "");
    dev_check(what, dev_err(g_on.data(), on.data(), on.size()), 1e-4);
    dev_check(fmt == SYM_MAT_F32 ? "  their state (scale, S)" : "  their state (scale)",
              dev_err(g_state.data(), st.data(), st.size()), 1e-4);
    printf("     %-52s %8.1f us rotary\n", "", dev_time_us(iters, rotary));
    const double us = dev_time_us(iters, cell),
                 bytes = 2.0 * symbols * NH * (double)HD * HD * (fmt == SYM_MAT_F32 ? 4 : 2);
    printf("     %-52s %8.1f us cell  %6.0f GB/s of S\n", "", us, bytes / (us * 1e3));
    printf("     %-52s %8.1f us norm\n", "", dev_time_us(iters, norm));
    for (float *p : {d_pr, d_angle, d_decay, d_pool, d_o, d_on}) cudaFree(p);
    cudaFree(d_slots), cudaFree(d_len);
}

/* sym_retnet_cell with S two-byte (fmt), eight numbers a thread, against
 * the four-number cell (matrix_cell4.cuh) on the same fresh inputs, at
 * hidden size h with nh heads (head size hd = h / nh): every stored byte
 * of the slots and every output equal, bit for bit. Then both times. */
static void cell8_vs_cell4(int h, int nh, int symbols, int runs, sym_mat_store fmt, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B, hd = h / nh, ldp = 4 * h;
    const dev_mat S = dev_mat_place(32, (size_t)nh * hd, hd, fmt);
    const size_t numel = (S.next + 63) & ~(size_t)63;
    std::vector<float> pool(numel * r.n_slots, 0.0f);
    for (int s = 0; s < r.n_slots; s++) {
        /* rows of magnitudes 2^-20..2^4, so the fp16 segments take many scales */
        std::vector<float> m = dev_randv((size_t)nh * hd * hd, -1, 1);
        for (size_t i = 0; i < m.size(); i += (size_t)hd) {
            const float sc = ldexpf(1.0f, (int)dev_rand(-20, 5));
            for (int j = 0; j < hd; j++) m[i + (size_t)j] *= sc;
        }
        dev_mat_store(&pool[(size_t)s * numel], S, m.data());
    }
    const std::vector<float> pr = dev_randv((size_t)B * ldp, -1, 1), decay = dev_randv(nh, 0.5f, 1.0f),
                             o0((size_t)B * 2 * h, NAN);
    float *d_pr = dev_up(pr), *d_decay = dev_up(decay), *d_pool4 = dev_up(pool), *d_pool8 = dev_up(pool);
    float *d_o4 = dev_up(o0), *d_o8 = dev_up(o0);
    int *d_slots = dev_up(r.slots), *d_len = dev_up(r.len);
    const sym_runs rn = {d_len, r.max, 0};
    auto cell4 = [&]() {
        retnet_cell4(dev_stream, d_pr, ldp, h, nh, d_decay, d_pool4, numel, d_slots, rn, -1, S.loc, d_o4, 2 * h, B);
    };
    auto cell8 = [&]() {
        sym_retnet_cell(dev_stream, d_pr, ldp, h, nh, d_decay, d_pool8, numel, d_slots, rn, -1, S.loc, d_o8, 2 * h, B,
                        SYM_PRIO_STREAM);
    };
    cell4(), cell8();
    DEV_CK(cudaGetLastError());
    const std::vector<float> p4 = dev_down(d_pool4, pool.size()), p8 = dev_down(d_pool8, pool.size()),
                             g4 = dev_down(d_o4, o0.size()), g8 = dev_down(d_o8, o0.size());
    size_t differ = 0;
    for (size_t i = 0; i < p4.size(); i++) differ += memcmp(&p4[i], &p8[i], sizeof(float)) != 0;
    for (size_t i = 0; i < g4.size(); i++) differ += memcmp(&g4[i], &g8[i], sizeof(float)) != 0;
    char what[96];
    snprintf(what, sizeof what, "S %s, hd %d, 8 vs 4 a thread, %d rows%s: words differing", dev_mat_name(fmt), hd, B,
             runs ? " (runs)" : "");
    dev_check(what, (double)differ, 0);
    const double t4 = dev_time_us(iters, cell4), t8 = dev_time_us(iters, cell8),
                 bytes = 2.0 * symbols * nh * (double)hd * hd * 2;
    printf("     %-52s %8.1f us (4 a thread %.1f)  %6.0f GB/s of S\n", "", t8, t4, bytes / (t8 * 1e3));
    for (float *p : {d_pr, d_decay, d_pool4, d_pool8, d_o4, d_o8}) cudaFree(p);
    cudaFree(d_slots), cudaFree(d_len);
}

int main(int argc, char **argv) {
    dev_need_gpu("retnet");
    const int iters = argc > 1 ? atoi(argv[1]) : 20;
    dev_main(argc, argv, "retnet", [](int s, int runs, int it) { run(s, runs, SYM_MAT_F32, it); });
    const sym_mat_store two[] = {SYM_MAT_BF16, SYM_MAT_F16};
    for (sym_mat_store f : two)
        for (int s : {1, 8, 39}) run(s, 0, f, iters);
    /* [hidden, heads, symbols]: full size; hd 300 (H = 2400, a valid
     * model); hd 12 (H = 96 with 8 heads, which tests/kernels/random_config.c
     * draws) */
    const int shapes[][3] = {{H, NH, 39}, {2400, 8, 8}, {96, 8, 8}};
    for (const auto &sh : shapes)
        for (sym_mat_store f : two)
            for (int runs = 0; runs < 2; runs++) cell8_vs_cell4(sh[0], sh[1], sh[2], runs, f, iters);
    return dev_failures != 0;
}
