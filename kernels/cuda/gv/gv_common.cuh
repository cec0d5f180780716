/* Shared by the CUDA engine's .cu files: error checks that return sym_err
 * errors (never exit), the device linear-layer descriptor and the launchers
 * of each operation file. All launchers enqueue on the given stream and
 * never synchronise; the caller checks cudaGetLastError (launch errors also
 * surface when a captured graph is instantiated). */
#ifndef SYM_CUDA_COMMON_CUH
#define SYM_CUDA_COMMON_CUH

#include <atomic>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>

extern "C" {
#include "common/err.h"
}

#define CUDA_CHECK(call)                                                                                       \
    do {                                                                                                       \
        cudaError_t err_ = (call);                                                                             \
        if (err_ != cudaSuccess)                                                                               \
            return sym_fail(e, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(err_));          \
    } while (0)

/* Programmatic dependent launch (Hopper): a step is a chain of hundreds of
 * small kernels on each tower's stream, and at B = 1 the gaps between them
 * cost as much as the kernels. sym_launch() lets a kernel be launched while
 * its predecessor in the stream still runs; every kernel launched so starts
 * with SYM_PDL_WAIT() (griddepcontrol.wait: the predecessor has finished
 * and its writes are visible) before it touches memory. SYM_PDL_ENTER()
 * also lets the next kernel launch at once (its blocks wait on the GPU, not
 * in the launch queue); the state-streaming kernels, whose big grids must
 * not share the GPU with waiting blocks, only wait. SYM_CUDA_NO_PDL=1 (env,
 * read at the first launch) launches plainly, for comparison. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define SYM_PDL_WAIT() asm volatile("griddepcontrol.wait;" ::: "memory")
#define SYM_PDL_ENTER()                                                                                        \
    do {                                                                                                       \
        asm volatile("griddepcontrol.wait;" ::: "memory");                                                     \
        asm volatile("griddepcontrol.launch_dependents;" :::);                                                 \
    } while (0)
#else /* before Hopper there is no early launch to wait for */
#define SYM_PDL_WAIT() ((void)0)
#define SYM_PDL_ENTER() ((void)0)
#endif

static inline int sym_pdl_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("SYM_CUDA_NO_PDL");
        on = !(v && *v && *v != '0');
    }
    return on;
}

/* Launch priorities. The four towers of a step share the GPU, and with one
 * priority for all the block scheduler serves kernels in launch order: a
 * state-streaming kernel's thousands of blocks can hold every SM while the
 * other towers' short, latency-bound kernels wait behind them.
 * SYM_GV_PRIO_STATE=L gives the kernels that stream a tower's big state
 * (the mLSTM, RetNet and Mamba2 cells) priority level L, where 0 is the
 * device's highest and each level above it one lower (clamped to the
 * device's lowest); the backend gives the towers' streams levels too
 * (SYM_GV_PRIO_TOWERS) and runs its graphs on their nodes' priorities.
 * Unset, every kernel takes its stream's priority. */
#define SYM_PRIO_STREAM (-1000000)
static inline int sym_prio_from_level(int level) {
    int least = 0, greatest = 0;
    if (cudaDeviceGetStreamPriorityRange(&least, &greatest) != cudaSuccess) return SYM_PRIO_STREAM;
    int p = greatest + (level < 0 ? 0 : level); /* greatest is the numerically smallest */
    return p > least ? least : p;
}

static inline int sym_prio_state(void) {
    static int p = 1;                           /* 1: not read yet (priorities are <= 0) */
    if (p == 1) {
        const char *v = getenv("SYM_GV_PRIO_STATE");
        p = v && *v ? sym_prio_from_level(atoi(v)) : SYM_PRIO_STREAM;
    }
    return p;
}

/* Launches k on s with programmatic dependent launch (unless
 * SYM_CUDA_NO_PDL) and, unless prio is SYM_PRIO_STREAM, priority prio. */
template <typename... KArgs, typename... Args>
static inline void sym_launch_ex(void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, int prio,
                                 Args... args) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[2];
    unsigned n = 0;
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = s;
    if (sym_pdl_enabled()) {
        at[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (prio != SYM_PRIO_STREAM) {
        at[n].id = cudaLaunchAttributePriority;
        at[n++].val.priority = prio;
    }
    cfg.attrs = at, cfg.numAttrs = n;
    cudaLaunchKernelEx(&cfg, k, static_cast<KArgs>(args)...); /* a failure is also cudaGetLastError()'s */
}

template <typename... KArgs, typename... Args>
static inline void sym_launch_smem(void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                                   Args... args) {
    sym_launch_ex(k, grid, block, smem, s, SYM_PRIO_STREAM, args...);
}

template <typename... KArgs, typename... Args>
static inline void sym_launch(void (*k)(KArgs...), dim3 grid, dim3 block, cudaStream_t s, Args... args) {
    sym_launch_ex(k, grid, block, 0, s, SYM_PRIO_STREAM, args...);
}

/* A kernel that streams a tower's big state (see sym_prio_state). */
template <typename... KArgs, typename... Args>
static inline void sym_launch_state(void (*k)(KArgs...), dim3 grid, dim3 block, cudaStream_t s, Args... args) {
    sym_launch_ex(k, grid, block, 0, s, sym_prio_state(), args...);
}

/* Raises kernel k's dynamic shared-memory limit to smem on the current
 * device, once per device: the limit is a per-device attribute, and a
 * launch on a device without it fails with "invalid argument" (found when
 * every shard on a second GPU failed its first step). `done` is the
 * caller's per-kernel flag word, one bit a device. */
template <typename... KArgs>
static inline void sym_smem_limit(void (*k)(KArgs...), size_t smem, std::atomic<unsigned long long> &done) {
    int dev = 0;
    cudaGetDevice(&dev);
    const unsigned long long bit = dev < 64 ? 1ull << dev : 0;
    if (!bit || !(done.load() & bit)) {
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        done.fetch_or(bit);
    }
}

/* A (possibly concatenated) linear layer on the device: rows [out, in] in
 * fp32 or bf16, optional fp32 bias [out]. Row o reads the input slice
 * x + ((o / blk_rows) % xwrap) * in: blk_rows = out, xwrap = 1 for a dense
 * layer; blk_rows = bs, xwrap = nb for block-diagonal layers (several
 * block-diagonal layers reading the same input can be stacked; a block's
 * rows may be wider than bs: the sLSTM gates read [x | y_prev], in = 2 bs). */
typedef struct {
    const void *w;
    const float *b;
    int out, in, blk_rows, xwrap, bf16;
} sym_dlin;

/* Where a kernel that produces a GEMM's input also writes that input's
 * split, for the layer's path to read without a split kernel
 * (sym_gemv_planes, sym_put_x): bf, three bf16 terms [3][B][w]; tf, two
 * tf32 terms [2][B][w] in the wgmma 3xTF32 kernel's column order. Both
 * NULL: no split. */
struct sym_xsplit {
    __nv_bfloat16 *bf;
    float *tf;
};

/* GEMV_X_SPLIT: x's terms are already where the layer's path reads them
 * (three bf16 terms in ws->xs, or two tf32 terms in ws->xs32 for the wgmma
 * 3xTF32 kernel), written by the kernel that produced x where
 * sym_gemv_planes said so: no split kernel.
 * GEMV_SPLIT_OUT: also write the output's terms into ws->xs2, for the next
 * layer, which then takes GEMV_X_CHAIN (its terms are in ws->xs2); only
 * where sym_gemv_planes gives both layers bf16 terms. A second buffer,
 * because the one-launch kernels still read ws->xs while their last CTAs
 * store outputs. */
enum { GEMV_RELU = 1, GEMV_ACC = 2, GEMV_X_SPLIT = 4, GEMV_SPLIT_OUT = 8, GEMV_X_CHAIN = 16 };

/* One output of a linear layer, as every GEMV / GEMM kernel stores it:
 * *yp (=|+=) act(v + bias) per GEMV_RELU / GEMV_ACC; returns what it stored. */
__device__ __forceinline__ float sym_linear_store(float *yp, float v, float bias, int flags) {
    v += bias;
    if (flags & GEMV_RELU) v = fmaxf(v, 0.0f);
    if (flags & GEMV_ACC) v += *yp;
    *yp = v;
    return v;
}

/* Per-stream resources of the tensor-core / cuBLAS path (B >= gemm_min):
 * handle bound to the stream, bf16 split buffers xs [3*Bmax*max_in] and
 * xs2 [3*Bmax*max_out] (GEMV_SPLIT_OUT) and raw output y2 [3*Bmax*max_out]. */
typedef struct {
    cublasHandle_t h;
    __nv_bfloat16 *xs, *xs2;
    float *y2;
    /* x's two tf32 terms for the wgmma 3xTF32 kernel, [2][B][w] for B <=
     * 128 (gemm_wg32.cu); NULL: that kernel is never taken */
    float *xs32;
    int gemm_min;    /* B at or above which cuBLAS is used */
    int blk_own_max; /* block-diagonal layers: own kernel up to this B */
    int n_sm;
    /* The one-launch tensor-core kernels' split-K partials and per-row-tile
     * counters (zero between launches), shared: the kernels of one stream
     * touch them only after griddepcontrol.wait, so never two at once
     * (sym_splitk_part_floats, sym_splitk_counters); NULL sk_part: no
     * tensor-core kernel (before sm_80) */
    float *sk_part;
    int *sk_cnt;
    int sk_cnt_n;
    /* bf16 layers with tc_min <= B <= tc_max go to the tensor-core kernel
     * (gemv_tc.cu) */
    int tc_min, tc_max;
    /* fp32 layers with tf32_min <= B <= tf32_max go to the 3xTF32 kernel
     * (gemm_tf32.cu) */
    int tf32_min, tf32_max;
    /* bf16 layers with wg_min <= B <= wg_max go to the wgmma kernel
     * (gemm_wg.cu), fp32 layers with wg32_min <= B <= wg32_max to the
     * wgmma 3xTF32 kernel (gemm_wg32.cu), where wg_on (compute capability
     * 9.0) */
    int wg_min, wg_max, wg32_min, wg32_max, wg_on;
    /* the share of the SMs (%) the wgmma kernel's grid aims at for this
     * stream's layers (the backend's is per tower); 0: the kernel's own
     * (gemm_wg.cu) */
    int wg_grid_pct;
} sym_gemm_ws;

/* y[b*ldy + o] (=|+=) act(W x_b + bias) for b < B.
 * bf16 weights and ws->tc_min <= B <= ws->tc_max: sym_gemv_tc (below).
 * fp32 weights and ws->wg32_min <= B <= ws->wg32_max: sym_gemm_wg32 (below);
 * else fp32 weights and ws->tf32_min <= B <= ws->tf32_max: sym_gemm_tf32.
 * bf16 weights and ws->wg_min <= B <= ws->wg_max: x's terms (split here
 * unless GEMV_X_SPLIT / GEMV_X_CHAIN) through sym_gemm_wg (below).
 * Else B < ws->gemm_min, or a block-diagonal layer and B <= ws->blk_own_max:
 * own batched GEMV kernel; per-row arithmetic does not
 * depend on B or on the other rows (fixed summation order).
 * B >= gemm_min: fp32 weights -> cuBLAS SGEMM (no TF32); bf16 weights -> x
 * split into three bf16 terms (hi, mid, lo: residual ~2^-24 |x|) and one
 * bf16 tensor-core GEMM with fp32 accumulation over 3B columns, summed in
 * the epilogue: the product with the bf16 weights to ~fp32 accuracy.
 * Returns a cuBLAS status (0 = success). */
int sym_gemv(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y, int ldy,
             int B, int flags);

/* gemv_tc.cu: a bf16 layer on the tensor cores, B <= 64 (x split into
 * three bf16 terms in the kernel, split-K summed in a fixed order, bias and
 * activation applied: one launch). Returns 1, launching nothing, when the
 * layer or B does not fit it (the caller takes another path). The split-K
 * scratch it needs for layers up to max_out rows (floats, counters): */
int sym_gemv_tc(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y, int ldy,
                int B, int flags);
size_t sym_gemv_tc_part_floats(int n_sm, int max_out);
int sym_gemv_tc_counters(int max_out);
/* gemm_tf32.cu: an fp32 layer on the tensor cores to fp32 accuracy (each
 * operand split into two TF32 terms, three products), B <= 128, split-K
 * summed in a fixed order, bias and activation applied: one launch.
 * Returns 1, launching nothing, when the layer or B does not fit it. Its
 * split-K scratch (floats, counters): */
int sym_gemm_tf32(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y,
                  int ldy, int B, int flags);
size_t sym_gemm_tf32_part_floats(int n_sm);
int sym_gemm_tf32_counters(int max_out);
/* gemm_wg.cu: a bf16 layer through Hopper's wgmma (sm_90a; call it only on
 * a device of compute capability 9.0), x given as its three bf16 terms xs
 * ([3][B][w], w = the input's width), B <= 64; split-K summed in a fixed
 * order, bias, activation and GEMV_SPLIT_OUT (into ws->xs2) applied: one
 * launch. Returns 1, launching nothing, when the layer or B does not fit
 * it. Its split-K scratch (floats, counters): */
int sym_gemm_wg(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const __nv_bfloat16 *xs, float *y, int ldy,
                int B, int flags);
size_t sym_gemm_wg_part_floats(int n_sm, int max_out);
int sym_gemm_wg_counters(int max_out);
/* 1 when sym_gemv takes the wgmma kernel for layer L at B rows */
int sym_gemm_wg_fits(const sym_gemm_ws *ws, const sym_dlin *L, int B);
/* gemm_wg32.cu: an fp32 layer through wgmma to fp32 accuracy (3xTF32:
 * sm_90a, compute capability 9.0 only), x fp32 [B][ldx], B <= 128: x's
 * two terms into ws->xs32 ([2][B][w], sym_gemm_wg32_xs_floats; with
 * GEMV_X_SPLIT they are there already), then the product with split-K
 * summed in a fixed order, bias and activation applied. Returns 1,
 * launching nothing, when the layer or B does not fit it. Its split-K scratch (floats; the counters are
 * sym_gemm_wg_counters'): */
int sym_gemm_wg32(cudaStream_t s, const sym_gemm_ws *ws, const sym_dlin *L, const float *x, int ldx, float *y,
                  int ldy, int B, int flags);
size_t sym_gemm_wg32_part_floats(int n_sm, int max_out);
size_t sym_gemm_wg32_xs_floats(int max_in);
/* 1 when sym_gemv takes the wgmma 3xTF32 kernel for layer L at B rows */
int sym_gemm_wg32_fits(const sym_gemm_ws *ws, const sym_dlin *L, int B);
/* The shared split-K scratch (sym_gemm_ws.sk_*) for all three kernels, for
 * layers up to max_out rows on n_sm SMs: floats and counters */
size_t sym_splitk_part_floats(int n_sm, int max_out);
int sym_splitk_counters(int max_out);
/* Where the kernel that produces layer L's input at B rows should write
 * that input's split (sym_xsplit, above): three bf16 terms ([3][B][w], w =
 * the input's width) for a bf16 layer through cuBLAS or the wgmma kernel,
 * two tf32 terms for an fp32 layer through the wgmma 3xTF32 kernel, or
 * neither where sym_gemv's path splits nothing (own GEMV, the tensor-core
 * GEMV, mma.sync 3xTF32, SGEMM). Saves the split kernel, a launch in the
 * tower's chain, before every such layer. */
sym_xsplit sym_gemv_planes(const sym_gemm_ws *ws, const sym_dlin *L, int B);
/* x (B rows of width w) split into its three bf16 terms in ws->xs */
void sym_gemv_split(cudaStream_t s, const sym_gemm_ws *ws, const float *x, int ldx, int w, int B);

/* distribute.cu: the weights placed on `device` (NULL when not placed
 * there); *cfg receives their model config. */
extern "C" {
#include "kernels/cuda_backend.h"
}
float *sym_cuda_device_weights_arena(const sym_device_weights *dw, int device, sym_model_config *cfg);

/* A step's runs (docs/design/runs.md): a slot's rows adjacent and in
 * order. len[b] is the number of rows of the run that row b starts, 0 where
 * b continues one (a padding row is a run of 1); max is the longest run,
 * which picks the state kernels' variant (1: every row its own, the code
 * of a step without runs); pass is the sLSTM's pass (its rows at that place
 * in their run: the sLSTM's recurrent gates read the previous row's
 * output, so its gate layer and cell run once per place). A state kernel
 * gives a run's first row the whole run: it holds the slot's state while it
 * applies the rows in order, and the other rows' threads return. */
#define SYM_RUN_MAX 4
typedef struct {
    const int *len;
    int max, pass;
} sym_runs;
/* The streaming state cells' launch bounds' minimum blocks an SM: their
 * variant for runs (run > 1) is held to min_blocks, so that its blocks keep
 * most of the occupancy of the variant for runs of one (the RetNet cell
 * and Mamba2 SSM run their rows outside runs through it, in the loop of
 * runs of one; the mLSTM cell's runs alone, at 4 blocks an SM: 39 x 2 rows
 * 11.44 ms at its unbounded 89 registers, 10.80 at 64); the variant for
 * runs of one is left to the compiler (0: no minimum). */
__host__ __device__ constexpr int sym_run_min_blocks(int run, int min_blocks) { return run > 1 ? min_blocks : 0; }
/* row b's place in its run */
__device__ __forceinline__ int sym_run_place(const int *len, int b) {
    int p = 0;
    while (len[b - p] == 0) p++;
    return p;
}

/* norms.cu. The row kernels hold a row (or group) of up to SYM_ROW_MAX
 * floats in registers; they return -1 (nothing launched) for wider rows,
 * which no valid config has: the widest row is Mamba2's 2H, and
 * sym_model_config_validate keeps H within SYM_MAX_HIDDEN. */
#define SYM_ROW_MAX 8192
static_assert(2 * SYM_MAX_HIDDEN <= SYM_ROW_MAX, "a valid config's rows must fit the row kernels");
/* Row kernels that produce a GEMM's input take xs (sym_gemv_planes; both
 * NULL: none): they also write their output's split there. */
int sym_rmsnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, float eps, const float *w,
                sym_xsplit xs);
/* GroupNorm over `groups` runs (LayerNorm: groups 1, b NULL); res (nullable)
 * added after; add: y += result instead of y = result. In place is allowed. */
int sym_groupnorm(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int n, int groups,
                  const float *w, const float *b, const float *res, int ldr, int add);
/* u += layernorm(x) * w1 (no bias), then a = rmsnorm(u; eps) * w2 */
int sym_ln_add_rms(cudaStream_t s, const float *x, int ldx, float *u, int ldu, const float *w1, float *a, int lda,
                   const float *w2, float eps, int B, int n, sym_xsplit xs);
/* Causal depthwise conv (K=4) of C channels; state [C,3] at slot offset off. */
void sym_dconv(cudaStream_t s, const float *x, int ldx, float *y, int ldy, int B, int C, float *pool, size_t numel,
              const int *slots, sym_runs rn, size_t off, const float *cw, const float *cb, int silu);
/* each slot's step count + its run's length */
void sym_step_count(cudaStream_t s, float *pool, size_t numel, const int *slots, sym_runs rn, int B);
void sym_f32_to_bf16_dev(cudaStream_t s, const float *x, __nv_bfloat16 *y, size_t n);
void sym_round_bf16_dev(cudaStream_t s, float *x, size_t n);
void sym_init_dev(cudaStream_t s, float *p, int64_t n, int init, uint64_t key, int fan_in, int hd);

/* The three kernels that stream a tower's big state (the Mamba2 SSM, the
 * RetNet and mLSTM cells: 97 % of a step's state bytes) skip the rows whose
 * slot is pad_slot, the padding of a batch up to its graph's bucket: their
 * outputs there are left as they were (never read), and a bucket of 40
 * does not move 40 rows' state for 33. */
/* mamba2.cu: SSM update + readout, y*silu(z) into Y [B, I]. */
void sym_mamba_ssm(cudaStream_t s, const float *XS, int ldx, const float *BC, int ldbc, const float *PR, int ldp,
                   int z_off, int dt_off, const float *a, const float *d, float *pool, size_t numel, const int *slots,
                   sym_runs rn, int pad_slot, size_t off_h, float *Y, int ldy, int B, int NM);
/* retnet.cu */
void sym_retnet_rotary(cudaStream_t s, float *PR, int ldp, int H, int hd, const float *angle, const float *pool,
                       size_t numel, const int *slots, sym_runs rn, float scaling, int B);
void sym_retnet_cell(cudaStream_t s, const float *PR, int ldp, int H, int NH, const float *decay, float *pool,
                     size_t numel, const int *slots, sym_runs rn, int pad_slot, size_t off_S, float *O, int ldo, int B);
void sym_retnet_norm(cudaStream_t s, const float *O, int ldo, const float *PR, int ldp, int H, int NH,
                     const float *decay, float *pool, size_t numel, const int *slots, sym_runs rn, size_t off_scale,
                     float *ON, int ldn, int B, sym_xsplit xs);
/* hawk.cu */
void sym_hawk_cell(cudaStream_t s, const float *PR, int ldp, const float *R, int ldr, const float *G, int ldg,
                   const float *a, float *pool, size_t numel, const int *slots, sym_runs rn, size_t off_h, float *T,
                   int ldt, int H, int B);
/* xlstm.cu */
/* a = rmsnorm(u) * w1; xn = layernorm(a) * w2 and xa = silu(conv(xn)); the
 * gates' input row sg [gate i f z o][head][x | y_prev] (heads of bs, x = xa
 * for i and f, xn for z and o; row stride ldsg >= 8n) */
int sym_slstm_in(cudaStream_t s, const float *u, int ldu, float *a, int lda, const float *w1, float eps, float *sg,
                 int ldsg, int bs, const float *w2, float *pool, size_t numel, const int *slots, sym_runs rn,
                 size_t off_conv, const float *cw, const float *cb, size_t off_y, int n, int B, sym_xsplit xs);
/* the sLSTM cell; SO = groupnorm_NS(y) * gn_w + gn_b + res; XM = layernorm(SO) * mn_w.
 * -1 (nothing launched) for H not a multiple of NS. */
int sym_slstm_out(cudaStream_t s, const float *G, int ldg, float *pool, size_t numel, const int *slots, sym_runs rn,
                  size_t off_c, size_t off_n, size_t off_m, size_t off_y, const float *gn_w, const float *gn_b,
                  const float *res, int ldr, float *SO, int ldso, const float *mn_w, float *XM, int ldxm, int H, int NS,
                  int B, sym_xsplit xs);
/* XA = silu(conv(XM)) (conv state advanced); QKV = [Wq XA | Wk XA | Wv XM], 4x4 blocks */
void sym_mlstm_in(cudaStream_t s, const float *XM, int ldxm, float *pool, size_t numel, const int *slots,
                  sym_runs rn, size_t off_conv, const float *cw, const float *cb, const float *wq, const float *wk, const float *wv,
                  float *XA, int ldxa, float *QKV, int ldq, int I, int B);
/* the gate projection Lg (rows [igate; fgate] over [q | k | v]) fused in */
void sym_mlstm_gate(cudaStream_t s, const sym_dlin *Lg, const float *QKV, int ldq, float *pool, size_t numel,
                    const int *slots, sym_runs rn, size_t off_n, size_t off_m, float *SC, int ldsc, int I, int NH, int B);
/* The C update and readout, each head's rows split SYM_MLSTM_SPLITS ways
 * (enough blocks to fill the GPU at B = 1); HP [SYM_MLSTM_SPLITS][B][I]
 * receives each split's partial readout C'q, undivided. */
#define SYM_MLSTM_SPLITS 8
void sym_mlstm_cell(cudaStream_t s, const float *QKV, int ldq, const float *SC, int ldsc, float *pool, size_t numel,
                    const int *slots, sym_runs rn, int pad_slot, size_t off_C, float *HP, int I, int NH, int B);
/* HN = (groupnorm_NH(sum of HP's splits / den) * w + b + skip * XA) * silu(XG) */
int sym_mlstm_out(cudaStream_t s, const float *HP, const float *SC, int ldsc, const float *on_w, const float *on_b,
                  const float *skip, const float *XA, int ldxa, const float *XG, int ldxg, float *HN, int ldh, int I,
                  int NH, int B, sym_xsplit xs);

/* Device math kept IEEE (no fast-math): the sLSTM stabiliser starts at -inf. */
__device__ __forceinline__ float sym_to_float(float v) { return v; }
__device__ __forceinline__ float sym_to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float sym_sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }
__device__ __forceinline__ float sym_siluf(float v) { return v / (1.0f + expf(-v)); }
__device__ __forceinline__ float sym_softplusf(float v) { return v > 20.0f ? v : log1pf(expf(v)); }
__device__ __forceinline__ float sym_logsigmoidf(float v) { return v < 0.0f ? v - log1pf(expf(v)) : -log1pf(expf(-v)); }
__device__ __forceinline__ float sym_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
/* Deterministic block sum (fixed tree); every thread gets the result.
 * sh must hold 32 floats; blockDim.x a multiple of 32. */
__device__ __forceinline__ float sym_block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = sym_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = lane < nw ? sh[lane] : 0.0f;
    t = sym_warp_sum(t);
    return t;
}
/* 8 consecutive weights (16 or 32 aligned bytes) as floats */
template <typename WT> __device__ __forceinline__ void load8(const WT *p, float *v);
template <> __device__ __forceinline__ void load8<float>(const float *p, float *v) {
    float4 a = *(const float4 *)p, b = *(const float4 *)(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
template <> __device__ __forceinline__ void load8<__nv_bfloat16>(const __nv_bfloat16 *p, float *v) {
    uint4 u = *(const uint4 *)p;
    unsigned int w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        v[2 * i] = __uint_as_float(w[i] << 16);
        v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}
/* v, element `at` of a GEMM input, as the three bf16 terms the cuBLAS path
 * multiplies (hi, mid, lo: the residual is ~2^-24 |v|); plane = B x width */
__device__ __forceinline__ void sym_put_split(__nv_bfloat16 *xs, size_t plane, size_t at, float v) {
    __nv_bfloat16 hi = __float2bfloat16_rn(v);
    float r = v - __bfloat162float(hi);
    __nv_bfloat16 mid = __float2bfloat16_rn(r);
    xs[at] = hi;
    xs[plane + at] = mid;
    xs[2 * plane + at] = __float2bfloat16_rn(r - __bfloat162float(mid));
}
/* v rounded to tf32 (to nearest, ties away): the 3xTF32 kernels' big term */
__device__ __forceinline__ float sym_tf32_rna(float v) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
    return __uint_as_float(r);
}
/* Where column q (0..31) of a 32-wide chunk of x sits in the wgmma 3xTF32
 * kernel's planes (gv_gemm_wg32.cu says why): a thread's 16-byte weight
 * piece holds columns 4t..4t+3 (and 16 + those), which the k8 steps take
 * as A's columns t and t + 4: column 16h + 4q' + 2r + e goes to k step
 * 2h + r, slot q' + 4e, and B's slot for that is 8(2h + r) + q' + 4e. */
__host__ __device__ __forceinline__ int sym_w32_perm(int q) {
    return (q & 16) | (((q >> 1) & 1) << 3) | ((q >> 2) & 3) | ((q & 1) << 2);
}
/* Element (b, c) of a GEMM input [B][w], v, into p's planes, if any. */
__device__ __forceinline__ void sym_put_x(const sym_xsplit &p, int B, int w, int b, int c, float v) {
    if (p.bf) sym_put_split(p.bf, (size_t)B * w, (size_t)b * w + c, v);
    if (p.tf) {
        const float big = sym_tf32_rna(v);
        const size_t at = (size_t)b * w + (c & ~31) + sym_w32_perm(c & 31);
        p.tf[at] = big;
        p.tf[(size_t)B * w + at] = sym_tf32_rna(v - big);
    }
}
/* Split-K's last-CTA handshake, in every thread of the CTA once each has
 * stored its partials: one thread publishes them (a release fence, then
 * the row tile's counter) and the CTA that completes the count acquires
 * the others' (the counter, then an acquire fence). Returns 1 in every
 * thread of that last CTA. acq_rel fences synchronise through the counter;
 * __threadfence's sequentially consistent ones are not needed. sh: a
 * __shared__ int. With nthreads > 0, only the CTA's first nthreads threads
 * take part (named barrier 1 instead of __syncthreads: the others have
 * left); thread 0 is one of them. */
__device__ __forceinline__ void sym_cta_bar(int nthreads) {
    if (nthreads > 0)
        asm volatile("bar.sync 1, %0;" ::"r"(nthreads) : "memory");
    else
        __syncthreads();
}
__device__ __forceinline__ int sym_splitk_last(int *cnt, int n, int *sh, int nthreads = 0) {
    sym_cta_bar(nthreads);
    if (threadIdx.x == 0) {
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
        *sh = atomicAdd(cnt, 1) == n - 1;
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
    }
    sym_cta_bar(nthreads);
    return *sh;
}
__device__ __forceinline__ float *sym_slot(float *pool, size_t numel, const int *slots, int b) {
    return pool + (size_t)slots[b] * numel;
}

#endif
