/* What the CUDA benches measure beside the engine: the device's copy rate
 * (the HBM floor's denominator), its memory in use, and the profiler's
 * collection window. */
#ifndef SYM_BENCH_CUDA_UTIL_H
#define SYM_BENCH_CUDA_UTIL_H

#include <stddef.h>

#include "common/err.h"

/* Device-to-device copy bandwidth in GB/s counting bytes read plus written
 * (median of 12 copies of `bytes`). */
int bench_copy_bandwidth(int device, size_t bytes, double *gbps, sym_err *e);

/* Bytes used on the device now and free. */
int bench_mem_info(int device, size_t *used, size_t *free_bytes, sym_err *e);

/* Starts (on = 1) or stops the profiler's collection, for profiling one
 * step (`ncu --profile-from-start off`). */
int bench_profiler(int on, sym_err *e);

#endif
