/* Hawk's RG-LRU (towers/hawk.cu, ops/conv.cu) at full size (H = 2048):
 * the conv of the recurrence input with its state, then the cell (gates,
 * recurrence, gelu gating), against a CPU fp64 reference, rows of one and
 * with runs. Then each one's time.
 *   hawk [iters (20)] */
#include "dev/cuda/dev_common.cuh"
#include "kernels/cuda/ops/conv.cuh"
#include "kernels/cuda/towers/hawk.cuh"

static const int H = 2048, I = 2 * H, LDP = 2 * H, LDG = 2 * H;
static const size_t OFF_CONV = 0, OFF_H = 3 * (size_t)H, NUMEL = OFF_H + H;

static double sigmoid(double v) { return 1 / (1 + exp(-v)); }

static void run(int symbols, int runs, int iters) {
    const dev_rows r = dev_make_rows(symbols, runs);
    const int B = r.B;
    const std::vector<float> pr = dev_randv((size_t)B * LDP, -2, 2), g = dev_randv((size_t)B * LDG, -3, 3),
                             cw = dev_randv((size_t)4 * H, -0.5f, 0.5f), cb = dev_randv(H, -0.1f, 0.1f),
                             a = dev_randv(H, 0.9f, 0.999f);
    const std::vector<float> pool = dev_randv(NUMEL * r.n_slots, -1, 1);
    std::vector<double> st(pool.begin(), pool.end()), rr((size_t)B * I, 0.0), t((size_t)B * I, 0.0);
    for (int b = 0; b < B; b++) {
        double *s = &st[(size_t)r.slots[(size_t)b] * NUMEL];
        const float *p = &pr[(size_t)b * LDP], *gb = &g[(size_t)b * LDG];
        for (int i = 0; i < H; i++) {
            double *c = s + OFF_CONV + 3 * (size_t)i;
            const double x = p[H + i], ri = cb[(size_t)i] + cw[4 * (size_t)i] * c[0] + cw[4 * (size_t)i + 1] * c[1] +
                                            cw[4 * (size_t)i + 2] * c[2] + cw[4 * (size_t)i + 3] * x;
            c[0] = c[1], c[1] = c[2], c[2] = x;
            rr[(size_t)b * I + i] = ri;
            const double at = pow((double)a[(size_t)i], 8 * sigmoid(gb[H + i])), gate = p[i];
            double &h = s[OFF_H + i];
            h = at * h + sqrt(1 - at * at) * (sigmoid(gb[i]) * ri);
            t[(size_t)b * I + i] = 0.5 * gate * (1 + erf(gate * M_SQRT1_2)) * h;
        }
    }
    float *d_pr = dev_up(pr), *d_g = dev_up(g), *d_cw = dev_up(cw), *d_cb = dev_up(cb), *d_a = dev_up(a);
    float *d_pool = dev_up(pool), *d_r = dev_up(std::vector<float>((size_t)B * I));
    float *d_t = dev_up(std::vector<float>((size_t)B * I));
    int *d_slots = dev_up(r.slots), *d_len = dev_up(r.len);
    const sym_runs rn = {d_len, r.max, 0};
    auto conv = [&]() {
        sym_dconv(dev_stream, d_pr + H, LDP, d_r, I, B, H, d_pool, NUMEL, d_slots, rn, OFF_CONV, d_cw, d_cb, 0);
    };
    auto cell = [&]() {
        sym_hawk_cell(dev_stream, d_pr, LDP, d_r, I, d_g, LDG, d_a, d_pool, NUMEL, d_slots, rn, OFF_H, d_t, I, H, B);
    };
    conv(), cell();
    DEV_CK(cudaGetLastError());
    const std::vector<float> g_r = dev_down(d_r, rr.size()), g_t = dev_down(d_t, t.size()),
                             g_pool = dev_down(d_pool, pool.size());
    char what[96];
    snprintf(what, sizeof what, "conv, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_r.data(), rr.data(), rr.size()), 1e-4);
    printf("     %-52s %8.1f us\n", "", dev_time_us(iters, conv));
    snprintf(what, sizeof what, "RG-LRU cell, %d symbols, %d rows%s", symbols, B, runs ? " (runs)" : "");
    dev_check(what, dev_err(g_t.data(), t.data(), t.size()), 1e-4);
    dev_check("  their state (conv, h)", dev_err(g_pool.data(), st.data(), st.size()), 1e-4);
    printf("     %-52s %8.1f us\n", "", dev_time_us(iters, cell));
    for (float *p : {d_pr, d_g, d_cw, d_cb, d_a, d_pool, d_r, d_t}) cudaFree(p);
    cudaFree(d_slots), cudaFree(d_len);
}

int main(int argc, char **argv) { return dev_main(argc, argv, "hawk", run); }
