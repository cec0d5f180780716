/* How the CUDA engine launches its kernels and reports CUDA errors: error
 * checks that return sym_err errors (never exit), programmatic dependent
 * launch, launch priorities, and the per-device shared-memory limit. Every
 * launcher of ops/ and towers/ enqueues on the stream it is given and never
 * synchronises; the caller checks cudaGetLastError (launch errors also
 * surface when a captured graph is instantiated). */
#ifndef SYM_CUDA_LAUNCH_CUH
#define SYM_CUDA_LAUNCH_CUH

#include <atomic>
#include <mutex>
#include <stddef.h>
#include <cuda_runtime.h>

extern "C" {
#include "common/err.h"
}

/* Returns sym_fail(e, ...) from the enclosing function (which has a sym_err
 * *e in scope) when call fails. */
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
 * not share the GPU with waiting blocks, only wait. */
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

/* Launch priorities. The four towers of a step share the GPU, and with one
 * priority for all the block scheduler serves kernels in launch order: a
 * state-streaming kernel's thousands of blocks can hold every SM while the
 * other towers' short, latency-bound kernels wait behind them. A level is
 * 0 for the device's highest priority and each level above it one lower
 * (clamped to the device's lowest); SYM_PRIO_STREAM: the stream's own. The
 * backend takes the levels from its tuning (sym_cuda_tuning's
 * tower_stream_priority and state_cell_priority). */
#define SYM_PRIO_STREAM (-1000000)
static inline int sym_prio_from_level(int level) {
    int least = 0, greatest = 0;
    if (cudaDeviceGetStreamPriorityRange(&least, &greatest) != cudaSuccess) return SYM_PRIO_STREAM;
    int p = greatest + (level < 0 ? 0 : level); /* greatest is the numerically smallest */
    return p > least ? least : p;
}

/* Launches k on s with programmatic dependent launch and, unless prio is
 * SYM_PRIO_STREAM, priority prio. */
template <typename... KArgs, typename... Args>
static inline void sym_launch_ex(void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, int prio,
                                 Args... args) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[2];
    unsigned n = 0;
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem, cfg.stream = s;
    at[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[n++].val.programmaticStreamSerializationAllowed = 1;
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

/* A kernel that streams a tower's big state, at priority prio (from
 * sym_prio_from_level, or SYM_PRIO_STREAM). */
template <typename... KArgs, typename... Args>
static inline void sym_launch_state(void (*k)(KArgs...), dim3 grid, dim3 block, cudaStream_t s, int prio,
                                    Args... args) {
    sym_launch_ex(k, grid, block, 0, s, prio, args...);
}

/* Raises kernel k's dynamic shared-memory limit on the current device to
 * at least smem: the limit is a per-device attribute, and a launch on a
 * device without it fails with "invalid argument" (every shard on a second
 * GPU would fail its first step). The limit only grows, so backends whose
 * tunings give one kernel different stage counts can share a device. `done`
 * is the caller's per-kernel record: the limit set on each device. */
struct sym_smem_limits {
    std::atomic<int> bytes[64];
};
template <typename... KArgs>
static inline void sym_smem_limit(void (*k)(KArgs...), size_t smem, sym_smem_limits &done) {
    int dev = 0;
    cudaGetDevice(&dev);
    if (dev < 0 || dev >= 64) {
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        return;
    }
    std::atomic<int> &have = done.bytes[dev];
    if ((int)smem <= have.load()) return;
    static std::mutex m;
    m.lock();
    if ((int)smem > have.load()) {
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        have.store((int)smem);
    }
    m.unlock();
}

#endif
