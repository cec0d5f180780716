/* The CUDA engine's tuning (kernels/cuda_backend.h) and the config file's
 * "cuda" section that fills it (docs/CONFIG.md): the defaults are the
 * engine's measured choices, a full section sets every value, a bad key or
 * value is refused by its name with the config untouched, and a backend is
 * refused a tuning out of range before it touches a GPU (without CUDA: it
 * says there is none). CPU only. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "kernels/cuda_backend.h"
#include "tests/check.h"

static void bad(const char *json, const char *key) {
    sym_config c, before;
    sym_config_defaults(&c);
    before = c;
    sym_err e = {{0}};
    CHECKV(sym_config_parse(&c, json, &e) == -1, "refused %s", json);
    CHECK(strstr(e.msg, key) != NULL, "error for %s does not name '%s': %s", json, key, e.msg);
    CHECK(!memcmp(&c, &before, sizeof c), "config changed by a failed parse of %s", json);
}

static int same_ints(const int *a, const int *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void defaults(void) {
    sym_config c;
    sym_config_defaults(&c);
    const sym_cuda_tuning *t = &c.cuda;
    const int mma[2] = {8, 8}, wg[2] = {9, 64}, pct[4] = {50, 20, 20, 20}, tf32[2] = {8, 48}, wg32[2] = {17, 128},
              none[4] = {-1, -1, -1, -1};
    CHECKV(t->cublas_min_batch == 8 && t->blockdiag_own_max_batch == 8, "cuBLAS from B = 8, block-diagonal own to 8");
    CHECKV(same_ints(t->bf16_mma_batch, mma, 2) && t->bf16_mma_ctas_per_sm == 2, "bf16 mma.sync at B = 8, 2 CTAs/SM");
    CHECKV(same_ints(t->bf16_wgmma_batch, wg, 2) && same_ints(t->bf16_wgmma_sm_pct, pct, 4) &&
               t->bf16_wgmma_smem_kb == 190,
           "bf16 wgmma at B = 9..64 on 50/20/20/20 %% of the SMs, 190 KB");
    CHECKV(same_ints(t->fp32_mma_batch, tf32, 2), "fp32 mma.sync 3xTF32 at B = 8..48");
    CHECKV(same_ints(t->fp32_wgmma_batch, wg32, 2) && t->fp32_wgmma_sm_pct == 75 && t->fp32_wgmma_smem_kb == 160,
           "fp32 wgmma 3xTF32 at B = 17..128 on 75 %% of the SMs, 160 KB");
    CHECKV(same_ints(t->tower_stream_priority, none, 4) && t->state_cell_priority == -1, "no launch priorities");
    sym_err e = {{0}};
    CHECKV(!sym_cuda_tuning_check(t, &e), "the defaults are in range: %s", e.msg);
}

static void full_section(void) {
    const char *json = "{\"cuda\": {\"cublas_min_batch\": 100000, \"blockdiag_own_max_batch\": 0,"
                       " \"bf16_mma_batch\": [1, 0], \"bf16_mma_ctas_per_sm\": 4,"
                       " \"bf16_wgmma_batch\": [1, 64], \"bf16_wgmma_sm_pct\": [100, 1, 2, 3],"
                       " \"bf16_wgmma_smem_kb\": 220, \"fp32_mma_batch\": [16, 32],"
                       " \"fp32_wgmma_batch\": [0, 1048576], \"fp32_wgmma_sm_pct\": 100, \"fp32_wgmma_smem_kb\": 1,"
                       " \"tower_stream_priority\": [0, 1, -1, 64], \"state_cell_priority\": 5}}";
    sym_config c;
    sym_config_defaults(&c);
    sym_err e = {{0}};
    CHECKV(!sym_config_parse(&c, json, &e), "a full cuda section: %s", e.msg);
    const sym_cuda_tuning *t = &c.cuda;
    const int off[2] = {1, 0}, wg[2] = {1, 64}, pct[4] = {100, 1, 2, 3}, tf32[2] = {16, 32}, wg32[2] = {0, 1048576},
              prio[4] = {0, 1, -1, 64};
    CHECKV(t->cublas_min_batch == 100000 && t->blockdiag_own_max_batch == 0 && same_ints(t->bf16_mma_batch, off, 2) &&
               t->bf16_mma_ctas_per_sm == 4 && same_ints(t->bf16_wgmma_batch, wg, 2) &&
               same_ints(t->bf16_wgmma_sm_pct, pct, 4) && t->bf16_wgmma_smem_kb == 220 &&
               same_ints(t->fp32_mma_batch, tf32, 2) && same_ints(t->fp32_wgmma_batch, wg32, 2) &&
               t->fp32_wgmma_sm_pct == 100 && t->fp32_wgmma_smem_kb == 1 &&
               same_ints(t->tower_stream_priority, prio, 4) && t->state_cell_priority == 5,
           "every value set as written");
    CHECKV(!sym_cuda_tuning_check(t, &e), "and in range: %s", e.msg);
    CHECKV(!sym_config_parse(&c, "{\"cuda\": {\"tower_stream_priority\": null, \"state_cell_priority\": null}}", &e) &&
               t->tower_stream_priority[2] == -1 && t->state_cell_priority == -1 && t->fp32_wgmma_smem_kb == 1,
           "null priorities turn them off, the other values stay: %s", e.msg);
}

static void bad_values(void) {
    bad("{\"cuda\": {\"wg_max\": 0}}", "cuda.wg_max");
    bad("{\"cuda\": 8}", "cuda");
    bad("{\"cuda\": {\"cublas_min_batch\": -1}}", "cuda.cublas_min_batch");
    bad("{\"cuda\": {\"cublas_min_batch\": 8.5}}", "cuda.cublas_min_batch");
    bad("{\"cuda\": {\"blockdiag_own_max_batch\": 1048577}}", "cuda.blockdiag_own_max_batch");
    bad("{\"cuda\": {\"bf16_mma_batch\": 8}}", "cuda.bf16_mma_batch");
    bad("{\"cuda\": {\"bf16_mma_batch\": [8, 8, 8]}}", "cuda.bf16_mma_batch");
    bad("{\"cuda\": {\"bf16_mma_ctas_per_sm\": 5}}", "cuda.bf16_mma_ctas_per_sm");
    bad("{\"cuda\": {\"bf16_wgmma_batch\": [9, \"64\"]}}", "cuda.bf16_wgmma_batch");
    bad("{\"cuda\": {\"bf16_wgmma_sm_pct\": [50, 20, 20]}}", "cuda.bf16_wgmma_sm_pct");
    bad("{\"cuda\": {\"bf16_wgmma_sm_pct\": [50, 0, 20, 20]}}", "cuda.bf16_wgmma_sm_pct");
    bad("{\"cuda\": {\"bf16_wgmma_smem_kb\": 221}}", "cuda.bf16_wgmma_smem_kb");
    bad("{\"cuda\": {\"fp32_mma_batch\": null}}", "cuda.fp32_mma_batch");
    bad("{\"cuda\": {\"fp32_wgmma_sm_pct\": 101}}", "cuda.fp32_wgmma_sm_pct");
    bad("{\"cuda\": {\"fp32_wgmma_smem_kb\": 0}}", "cuda.fp32_wgmma_smem_kb");
    bad("{\"cuda\": {\"tower_stream_priority\": [0, 1, 1, 65]}}", "cuda.tower_stream_priority");
    bad("{\"cuda\": {\"state_cell_priority\": -1}}", "cuda.state_cell_priority");
    bad("{\"cuda\": {\"cublas_min_batch\": 8, \"cublas_min_batch\": 9}}", "cublas_min_batch");
}

/* A tuning out of range is refused by the backend before anything else
 * (no device needed); without CUDA the backend says there is none. */
static void backend_refuses(void) {
    sym_cuda_tuning t;
    sym_cuda_tuning_defaults(&t);
    t.bf16_wgmma_sm_pct[3] = 0;
    sym_err e = {{0}};
    CHECKV(sym_cuda_tuning_check(&t, &e) == -1 && strstr(e.msg, "cuda.bf16_wgmma_sm_pct"), "check names the value: %s",
           e.msg);
    sym_model_config cfg = sym_model_config_small();
    const sym_precision p[SYM_TOWERS] = {SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32, SYM_PREC_FP32};
    memset(&e, 0, sizeof e);
    sym_backend *b = sym_cuda_backend_create_synthetic(&cfg, 1, p, NULL, 0, 4, 8, &t, &e);
    CHECKV(!b && (strstr(e.msg, "cuda.bf16_wgmma_sm_pct") || strstr(e.msg, "without CUDA")),
           "a backend with it is refused: %s", e.msg);
    sym_backend_destroy(b);
}

int main(void) {
    defaults();
    full_section();
    bad_values();
    backend_refuses();
    return failures != 0;
}
