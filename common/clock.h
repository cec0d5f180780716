/* Monotonic time for latency measurement. */
#ifndef SYM_CLOCK_H
#define SYM_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t sym_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double sym_now_s(void) { return (double)sym_now_ns() * 1e-9; }

#endif
