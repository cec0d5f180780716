/* A recurrence matrix in a dev program's slot as the engine's cells read
 * it (kernels/state_layout.h's stored layouts, kernels/cuda/towers/
 * matrix_store.cuh): fp32, or two bytes a number and, for fp16, a signed
 * exponent byte per segment of SYM_STATE_SEG numbers of a row
 * ([rows][segments]); and the host side that writes one from fp32 values
 * with the CPU's rounding (kernels/state_precision.h: round to nearest,
 * fp16's segment exponent sym_fp16_row_exponent_f32's). */
#ifndef SYM_DEV_MATRIX_CUH
#define SYM_DEV_MATRIX_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cuda/towers/matrix_store.cuh"
extern "C" {
#include "kernels/state_precision.h"
}

/* Where a matrix of rows x n numbers is in a slot: numbers at element
 * off, exponents at eoff (fp16), next: the element after it (32-aligned,
 * as state_layout.c places parts). */
struct dev_mat {
    sym_mat_loc loc;
    size_t rows, next;
    int n;
};

static inline dev_mat dev_mat_place(size_t at, size_t rows, int n, sym_mat_store fmt) {
    const size_t numbers = rows * (size_t)n, segs = (size_t)((n + SYM_STATE_SEG - 1) / SYM_STATE_SEG);
    auto up = [](size_t e) { return (e + 31) & ~(size_t)31; };
    dev_mat m;
    m.rows = rows, m.n = n;
    m.loc.fmt = fmt, m.loc.off = at, m.loc.eoff = 0;
    if (fmt == SYM_MAT_F32) {
        m.next = at + up(numbers);
    } else {
        m.loc.eoff = at + up((numbers + 1) / 2);
        m.next = fmt == SYM_MAT_F16 ? m.loc.eoff + up((rows * segs + 3) / 4) : m.loc.eoff;
    }
    return m;
}

/* Writes x (rows x n, row-major) into the slot as m says, and sets x to
 * what a cell reads back. */
static inline void dev_mat_store(float *slot, const dev_mat &m, float *x) {
    const int n = m.n, segs = (n + SYM_STATE_SEG - 1) / SYM_STATE_SEG;
    const size_t count = m.rows * (size_t)n;
    if (m.loc.fmt == SYM_MAT_F32) {
        memcpy(slot + m.loc.off, x, count * sizeof(float));
        return;
    }
    uint16_t *num = (uint16_t *)(slot + m.loc.off);
    int8_t *ex = (int8_t *)(slot + m.loc.eoff);
    for (size_t i = 0; i < m.rows; i++)
        for (int g = 0; g < segs; g++) {
            const int c0 = g * SYM_STATE_SEG, c1 = c0 + SYM_STATE_SEG < n ? c0 + SYM_STATE_SEG : n;
            float *row = x + i * (size_t)n;
            const int s = m.loc.fmt == SYM_MAT_F16 ? sym_fp16_row_exponent_f32(row + c0, (size_t)(c1 - c0)) : 0;
            if (m.loc.fmt == SYM_MAT_F16) ex[i * (size_t)segs + (size_t)g] = (int8_t)s;
            for (int c = c0; c < c1; c++) {
                uint16_t b;
                if (m.loc.fmt == SYM_MAT_BF16) {
                    const __nv_bfloat16 h = __float2bfloat16_rn(row[c]);
                    memcpy(&b, &h, 2);
                    row[c] = __bfloat162float(h);
                } else { /* x 2^-s is exact but below 2^-126, where fp16 gives 0 either way */
                    const __half h = __float2half_rn(ldexpf(row[c], -s));
                    memcpy(&b, &h, 2);
                    row[c] = ldexpf(__half2float(h), s);
                }
                num[i * (size_t)n + (size_t)c] = b;
            }
        }
}

static inline const char *dev_mat_name(sym_mat_store f) {
    return f == SYM_MAT_F32 ? "fp32" : f == SYM_MAT_BF16 ? "bf16" : "fp16";
}

#endif
