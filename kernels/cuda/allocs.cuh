/* Device allocations a backend owns, freed together when it is destroyed
 * (a few per layer: the list grows with the depth). */
#ifndef SYM_CUDA_ALLOCS_CUH
#define SYM_CUDA_ALLOCS_CUH

#include <stdlib.h>

#include "kernels/cuda/launch.cuh"

typedef struct {
    void **p;
    int n, cap;
} sym_allocs;

/* *p = bytes of device memory (at least 16), recorded in a. */
static inline int sym_allocs_add(sym_allocs *a, void **p, size_t bytes, sym_err *e) {
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 256;
        void **q = (void **)realloc(a->p, (size_t)cap * sizeof *q);
        if (!q) return sym_fail(e, "out of memory");
        a->p = q, a->cap = cap;
    }
    CUDA_CHECK(cudaMalloc(p, bytes ? bytes : 16));
    a->p[a->n++] = *p;
    return 0;
}

/* Typed: *p = n elements of T. */
template <typename T> static inline int sym_allocs_n(sym_allocs *a, T **p, size_t n, sym_err *e) {
    return sym_allocs_add(a, (void **)p, n * sizeof(T), e);
}

static inline void sym_allocs_free(sym_allocs *a) {
    for (int i = 0; i < a->n; i++) cudaFree(a->p[i]);
    free(a->p);
    a->p = NULL, a->n = a->cap = 0;
}

#endif
