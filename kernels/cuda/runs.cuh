/* A step's runs (docs/design/runs.md): a slot's rows adjacent and in
 * order. len[b] is the number of rows of the run that row b starts, 0 where
 * b continues one (a padding row is a run of 1); max is the longest run,
 * which picks the state kernels' variant (1: every row its own, the code
 * of a step without runs); pass is the sLSTM's pass (its rows at that place
 * in their run: the sLSTM's recurrent gates read the previous row's
 * output, so its gate layer and cell run once per place). A state kernel
 * gives a run's first row the whole run: it holds the slot's state while it
 * applies the rows in order, and the other rows' threads return. */
#ifndef SYM_CUDA_RUNS_CUH
#define SYM_CUDA_RUNS_CUH

#include <cuda_runtime.h>

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

#endif
