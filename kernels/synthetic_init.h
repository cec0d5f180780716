/* MODEL.md's synthetic initialisation as a pure function of (seed-derived
 * key, element index): a counter-based stream, so the CPU generator
 * (weights.c) and the GPU generator (kernels/cuda) draw the same numbers and
 * any element can be drawn independently, in parallel. */
#ifndef SYM_SYNTHETIC_INIT_H
#define SYM_SYNTHETIC_INIT_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SYM_HD __host__ __device__
#else
#define SYM_HD
#endif

static inline SYM_HD uint64_t sym_splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Uniform in [0,1) with 53 random bits. */
static inline SYM_HD double sym_uniform01(uint64_t key, uint64_t i) {
    return (double)(sym_splitmix64(key + 0x632be59bd9b4e019ull * i) >> 11) * 0x1.0p-53;
}

/* The value of element k of a tensor of n elements drawn with rule `init`
 * (a sym_init), fan_in for the uniform rule, hd the RetNet head size. */
static inline SYM_HD float sym_init_value(int init, uint64_t key, int64_t k, int64_t n, int fan_in, int hd) {
    switch (init) {
    case 0: /* SYM_INIT_UNIFORM_FANIN */
        return (float)((2.0 * sym_uniform01(key, (uint64_t)k) - 1.0) / sqrt((double)fan_in));
    case 1: /* SYM_INIT_UNIFORM_HALF */
        return (float)(sym_uniform01(key, (uint64_t)k) - 0.5);
    case 2: /* SYM_INIT_ONES */
        return 1.0f;
    case 3: /* SYM_INIT_ZEROS */
        return 0.0f;
    case 4: /* SYM_INIT_MAMBA_A */
        return (float)-(1.0 + 15.0 * sym_uniform01(key, (uint64_t)k));
    case 5: /* SYM_INIT_RETNET_DECAY */
        return (float)(1.0 - pow(2.0, -5.0 - (double)k));
    case 6: { /* SYM_INIT_RETNET_ANGLE */
        double m = (double)(k / 2), half = hd / 2 - 1;
        return (float)pow(10000.0, half > 0 ? -m / half : 0.0);
    }
    case 7: /* SYM_INIT_HAWK_A */
        return (float)pow(0.9 + 0.099 * sym_uniform01(key, (uint64_t)k), 0.125);
    case 8: /* SYM_INIT_FGATE_BIAS */
        return (float)(n > 1 ? 3.0 + 3.0 * (double)k / (double)(n - 1) : 3.0);
    default: { /* SYM_INIT_IGATE_BIAS: Box-Muller */
        double u1 = sym_uniform01(key, 2 * (uint64_t)k) + 0x1.0p-54, u2 = sym_uniform01(key, 2 * (uint64_t)k + 1);
        return (float)(0.1 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
    }
}

#endif
