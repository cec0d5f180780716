/* How fast cuBLAS can do the engine's layer shapes at serving batch sizes:
 * for each weight shape [out, in] and batch N, the time of the call the
 * engine makes (cublasSgemm, or cublasGemmEx on bf16 weights with 3B
 * columns: x split into three bf16 terms) against every algorithm cuBLASLt's
 * heuristic offers for the same product, each timed the same way. Tells
 * whether choosing the algorithm ourselves would pay, before building it.
 *
 * Timing: 24 products captured in one CUDA graph, each on its own copy of the
 * weights (together 4-8x the 50 MB L2, so every product reads its weights
 * from HBM as in a step), the graph replayed 5 times, the median replay / 24.
 * Weights and inputs are random, never zero.
 * usage: bench_gemm_algos [max algorithms per shape (32)] */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPIES 24
#define CK(x)                                                                                                          \
    do {                                                                                                               \
        cudaError_t e_ = (x);                                                                                          \
        if (e_ != cudaSuccess) {                                                                                       \
            printf("FAIL %s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));                                     \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)
#define CB(x)                                                                                                          \
    do {                                                                                                               \
        int s_ = (int)(x);                                                                                             \
        if (s_ != 0) {                                                                                                 \
            printf("FAIL %s:%d cuBLAS status %d\n", __FILE__, __LINE__, s_);                                          \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

typedef struct {
    int bf16, out, in, n;
    const char *name;
} shape;

static cudaStream_t st;
static cublasHandle_t h;
static cublasLtHandle_t lt;
static void *ws;
static const size_t ws_size = (size_t)32 << 20;

static uint32_t rng = 12345u;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return ((float)(rng >> 8) / 16777216.0f - 0.5f) * 0.05f + 0.001f;
}

/* round to nearest even: the bf16 the GPU would store */
static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* the product on copy c: default path (algo NULL) or one cuBLASLt algorithm */
typedef struct {
    const shape *s;
    void *w, *x, *y;
    size_t wbytes;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
} prob;

static int run_one(prob *p, int c, const cublasLtMatmulAlgo_t *algo) {
    const float one = 1.0f, zero = 0.0f;
    const shape *s = p->s;
    const void *w = (const char *)p->w + (size_t)c * p->wbytes;
    if (!algo) {
        if (s->bf16)
            return cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, s->out, s->n, s->in, &one, w, CUDA_R_16BF, s->in, p->x,
                                CUDA_R_16BF, s->in, &zero, p->y, CUDA_R_32F, s->out, CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT);
        return cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, s->out, s->n, s->in, &one, w, s->in, p->x, s->in, &zero, p->y,
                           s->out);
    }
    return cublasLtMatmul(lt, p->op, &one, w, p->la, p->x, p->lb, &zero, p->y, p->lc, p->y, p->lc, algo, ws, ws_size,
                          st);
}

/* median µs per product, or -1 when the algorithm fails */
static float time_it(prob *p, const cublasLtMatmulAlgo_t *algo) {
    if (run_one(p, 0, algo)) return -1.0f;
    CK(cudaStreamSynchronize(st));
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    int bad = 0;
    for (int c = 0; c < COPIES; c++) bad |= run_one(p, c, algo) != 0;
    CK(cudaStreamEndCapture(st, &g));
    if (bad) {
        cudaGraphDestroy(g);
        return -1.0f;
    }
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    float t[5];
    CK(cudaGraphLaunch(ge, st)); /* warm */
    for (int r = 0; r < 5; r++) {
        CK(cudaEventRecord(a, st));
        CK(cudaGraphLaunch(ge, st));
        CK(cudaEventRecord(b, st));
        CK(cudaEventSynchronize(b));
        CK(cudaEventElapsedTime(&t[r], a, b));
    }
    qsort(t, 5, sizeof t[0], cmpf);
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    return t[2] * 1000.0f / COPIES;
}

static void describe(const cublasLtMatmulAlgo_t *algo, char *buf, size_t n) {
    int id = 0, tile = 0, splitk = 0, stages = 0, red = 0;
    size_t sz;
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &sz);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile, &sz);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof splitk, &sz);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof stages, &sz);
    cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &red, sizeof red, &sz);
    snprintf(buf, n, "algo %d tile %d splitK %d red %d stages %d", id, tile, splitk, red, stages);
}

static void bench(const shape *s, int max_algos, int tf32) {
    prob p = {0};
    p.s = s;
    size_t esz = s->bf16 ? 2 : 4;
    p.wbytes = (size_t)s->out * s->in * esz;
    CK(cudaMalloc(&p.w, p.wbytes * COPIES));
    CK(cudaMalloc(&p.x, (size_t)s->n * s->in * esz));
    CK(cudaMalloc(&p.y, (size_t)s->n * s->out * 4));
    /* random weights: one host copy, uploaded COPIES times */
    size_t ne = (size_t)s->out * s->in;
    void *hw = malloc(p.wbytes > (size_t)s->n * s->in * esz ? p.wbytes : (size_t)s->n * s->in * esz);
    for (size_t i = 0; i < ne; i++) {
        float v = frand();
        if (s->bf16) ((uint16_t *)hw)[i] = to_bf16(v);
        else ((float *)hw)[i] = v;
    }
    for (int c = 0; c < COPIES; c++)
        CK(cudaMemcpy((char *)p.w + (size_t)c * p.wbytes, hw, p.wbytes, cudaMemcpyHostToDevice));
    for (size_t i = 0; i < (size_t)s->n * s->in; i++) {
        float v = frand() * 20.0f;
        if (s->bf16) ((uint16_t *)hw)[i] = to_bf16(v);
        else ((float *)hw)[i] = v;
    }
    CK(cudaMemcpy(p.x, hw, (size_t)s->n * s->in * esz, cudaMemcpyHostToDevice));
    free(hw);

    cudaDataType_t dt = s->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t ct = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    CB(cublasLtMatmulDescCreate(&p.op, ct, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T;
    CB(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CB(cublasLtMatrixLayoutCreate(&p.la, dt, s->in, s->out, s->in));
    CB(cublasLtMatrixLayoutCreate(&p.lb, dt, s->in, s->n, s->in));
    CB(cublasLtMatrixLayoutCreate(&p.lc, CUDA_R_32F, s->out, s->n, s->out));
    cublasLtMatmulPreference_t pref;
    CB(cublasLtMatmulPreferenceCreate(&pref));
    CB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_size, sizeof ws_size));
    cublasLtMatmulHeuristicResult_t res[64];
    int nres = 0;
    if (max_algos > 64) max_algos = 64;
    cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(lt, p.op, p.la, p.lb, p.lc, p.lc, pref, max_algos, res, &nres);
    if (hs) nres = 0;

    float tdef = tf32 ? -1.0f : time_it(&p, NULL);
    float best = 1e30f, first = -1.0f;
    int bi = -1;
    for (int i = 0; i < nres; i++) {
        float t = time_it(&p, &res[i].algo);
        if (i == 0) first = t;
        if (t > 0 && t < best) best = t, bi = i;
    }
    char d[128] = "none";
    if (bi >= 0) describe(&res[bi].algo, d, sizeof d);
    double mb = p.wbytes / 1e6;
    printf("%-9s %-5s %5dx%-5d N=%-4d %6.1f MB | default %7.1f us %5.2f TB/s | Lt first %7.1f | Lt best %7.1f us "
           "%5.2f TB/s (%d of %d: %s)\n",
           s->name, tf32 ? "tf32" : s->bf16 ? "bf16" : "fp32", s->out, s->in, s->n, mb, tdef,
           tdef > 0 ? mb / tdef : 0.0, first, bi >= 0 ? best : -1.0f,
           bi >= 0 ? mb / best : 0.0, bi, nres, d);
    fflush(stdout);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(p.la);
    cublasLtMatrixLayoutDestroy(p.lb);
    cublasLtMatrixLayoutDestroy(p.lc);
    cublasLtMatmulDescDestroy(p.op);
    CK(cudaFree(p.w));
    CK(cudaFree(p.x));
    CK(cudaFree(p.y));
}

int main(int argc, char **argv) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    int max_algos = argc > 1 ? atoi(argv[1]) : 32;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    CB(cublasCreate(&h));
    CB(cublasSetStream(h, st));
    CB(cublasLtCreate(&lt));
    CK(cudaMalloc(&ws, ws_size));
    CB(cublasSetWorkspace(h, ws, ws_size));
    const int Bs[2] = {39, 128};
    const struct {
        int out, in;
        const char *name;
    } L[] = {{8192, 2048, "rt_qkvg"}, {2048, 2048, "rt_out"}, {4096, 2048, "fc1"}, {2048, 4096, "fc2"},
             {8512, 2048, "mb_proj"}};
    printf("weights from HBM each product; us per product (median of 5 replays of %d)\n", COPIES);
    for (int bi = 0; bi < 2; bi++)
        for (int li = 0; li < 4; li++) {
            shape s = {0, L[li].out, L[li].in, Bs[bi], L[li].name};
            bench(&s, max_algos, 0);
        }
    for (int bi = 0; bi < 2; bi++)
        for (int li = 0; li < 4; li++) {
            shape s = {0, L[li].out, L[li].in, Bs[bi], L[li].name};
            bench(&s, max_algos, 1);
        }
    for (int bi = 0; bi < 2; bi++)
        for (int li = 1; li < 5; li++) {
            shape s = {1, L[li].out, L[li].in, 3 * Bs[bi], L[li].name};
            bench(&s, max_algos, 0);
        }
    cublasLtDestroy(lt);
    cublasDestroy(h);
    return 0;
}
