/* RetNet's retention (towers/retnet.cu) at full size (H = 2048, 8 heads
 * of 256): the rotary of q and k by each row's step (theta in fp64), the
 * S update and readout, and the scale's recurrence with the head RMSNorm
 * and silu(g) gate, against a CPU fp64 reference, rows of one and with
 * runs (a run's rows take their slot's step count + their place). Then
 * each kernel's time, and the rate at which the cell streams S.
 *   retnet [iters (20)] */
#include "dev/cuda/dev_common.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/towers/retnet.cuh"

static const int H = 2048, I = 2 * H, NH = 8, HD = H / NH, LDP = 4 * H;
static const size_t OFF_SCALE = 4, OFF_S = 12, NUMEL = OFF_S + (size_t)NH * HD * HD;

static double silu(double v) { return v / (1 + exp(-v)); }

static void run(int symbols, int runs, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B;
    const std::vector<float> pr = dev_randv((size_t)B * LDP, -1, 1), angle = dev_randv(HD, 0, 1),
                             decay = dev_randv(NH, 0.9f, 0.999f);
    std::vector<float> pool = dev_randv(NUMEL * r.n_slots, -0.5f, 0.5f);
    for (int s = 0; s < r.n_slots; s++) {
        const long long count = 1000003LL * (s + 1); /* steps taken: large, as in a long stream */
        memcpy(&pool[(size_t)s * NUMEL], &count, sizeof count);
        for (int n = 0; n < NH; n++) pool[(size_t)s * NUMEL + OFF_SCALE + n] = dev_rand(1, 20);
    }
    std::vector<double> st(pool.begin(), pool.end()), qk((size_t)B * 2 * H), o((size_t)B * I, 0.0),
        on((size_t)B * I, 0.0);
    const double scaling = 1 / sqrt((double)HD);
    for (int b = 0, place = 0; b < B; b++) {
        place = r.len[(size_t)b] ? 0 : place + 1;
        double *s = &st[(size_t)r.slots[(size_t)b] * NUMEL];
        long long count;
        memcpy(&count, &pool[(size_t)r.slots[(size_t)b] * NUMEL], sizeof count);
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
            double *S = s + OFF_S + (size_t)n * HD * HD, *ob = &o[(size_t)b * I + n * HD], ss = 0;
            for (int i = 0; i < HD; i++)
                for (int j = 0; j < HD; j++) {
                    double &m = S[(size_t)i * HD + j];
                    m = decay[(size_t)n] * m + k[n * HD + i] * p[2 * H + n * HD + j];
                    ob[j] += q[n * HD + i] * m;
                }
            double &sc = s[OFF_SCALE + n];
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
        sym_retnet_rotary(dev_stream, d_pr, LDP, H, HD, d_angle, d_pool, NUMEL, d_slots, rn, (float)scaling, B);
    };
    auto cell = [&]() {
        sym_retnet_cell(dev_stream, d_pr, LDP, H, NH, d_decay, d_pool, NUMEL, d_slots, rn, -1, sym_mat_loc_f32(OFF_S), d_o, I, B,
                        SYM_PRIO_STREAM);
    };
    auto norm = [&]() {
        sym_retnet_norm(dev_stream, d_o, I, d_pr, LDP, H, NH, d_decay, d_pool, NUMEL, d_slots, rn, OFF_SCALE, d_on, I,
                        B, none);
    };
    rotary(), cell(), norm();
    DEV_CK(cudaGetLastError());
    const std::vector<float> g_pr = dev_down(d_pr, pr.size()), g_o = dev_down(d_o, o.size()),
                             g_on = dev_down(d_on, on.size()), g_pool = dev_down(d_pool, pool.size());
    std::vector<float> g_qk((size_t)B * 2 * H);
    for (int b = 0; b < B; b++) memcpy(&g_qk[(size_t)b * 2 * H], &g_pr[(size_t)b * LDP], 2 * H * sizeof(float));
    std::vector<float> g_state(g_pool);
    for (int s = 0; s < r.n_slots; s++) /* the step count: the engine's to advance, after the cells */
        for (int i = 0; i < 2; i++) g_state[(size_t)s * NUMEL + i] = 0, st[(size_t)s * NUMEL + i] = 0;
    char what[96];
    snprintf(what, sizeof what, "rotary, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_qk.data(), qk.data(), qk.size()), 1e-4);
    snprintf(what, sizeof what, "cell, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_o.data(), o.data(), o.size()), 1e-4);
    snprintf(what, sizeof what, "norm and gate, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_on.data(), on.data(), on.size()), 1e-4);
    dev_check("  their state (scale, S)", dev_err(g_state.data(), st.data(), st.size()), 1e-4);
    printf("     %-52s %8.1f us rotary\n", "", dev_time_us(iters, rotary));
    const double us = dev_time_us(iters, cell), bytes = 2.0 * symbols * NH * (double)HD * HD * 4;
    printf("     %-52s %8.1f us cell  %6.0f GB/s of S\n", "", us, bytes / (us * 1e3));
    printf("     %-52s %8.1f us norm\n", "", dev_time_us(iters, norm));
    for (float *p : {d_pr, d_angle, d_decay, d_pool, d_o, d_on}) cudaFree(p);
    cudaFree(d_slots), cudaFree(d_len);
}

int main(int argc, char **argv) { return dev_main(argc, argv, "retnet", run); }
