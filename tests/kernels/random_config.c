#include "tests/kernels/random_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/synthetic_init.h"

typedef struct {
    uint64_t s;
} rng;

static uint64_t next(rng *r) { return sym_splitmix64(r->s++); }
static int below(rng *r, int n) { return (int)(next(r) % (uint64_t)n); }

sym_model_config sym_test_random_config(uint64_t seed, int max_hidden, int max_depth) {
    rng r = {seed * 0x9e3779b97f4a7c15ull + 0x5851f42d4c957f2dull};
    sym_model_config c;
    int widths = max_hidden / 32 > 0 ? max_hidden / 32 : 1;
    c.hidden = 32 * (1 + (int)(seed % (uint64_t)widths));
    /* num_heads = 2m with a head size H / 2m divisible by 4: m divides H / 8 */
    int heads[64], n = 0;
    for (int m = 1; m <= c.hidden / 8 && n < 64; m++)
        if ((c.hidden / 8) % m == 0) heads[n++] = 2 * m;
    c.heads = heads[below(&r, n)];
    c.depth = 1 + below(&r, max_depth > 0 ? max_depth : 1);
    int p3 = 3 * c.hidden;
    c.proj = below(&r, 2) ? 8 + below(&r, p3 - 7) : 64 * (1 + below(&r, p3 / 64));
    static const int feats[] = {1, 7, 32, 33, 64, 100, 256};
    c.features = below(&r, 2) ? 1 + below(&r, SYM_MAX_FEATURES) : feats[below(&r, (int)(sizeof feats / sizeof *feats))];
    return c;
}

const char *sym_test_config_str(const sym_model_config *c, char *buf, int n) {
    snprintf(buf, (size_t)n, "H=%d P=%d L=%d NH=%d F=%d (Mamba2 heads %d, head size %d)", c->hidden, c->proj, c->depth,
             c->heads, c->features, sym_cfg_mamba_heads(c), c->heads > 0 ? c->hidden / c->heads : 0);
    return buf;
}

static void shuffle(rng *r, int32_t *v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = below(r, i + 1);
        int32_t t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

void sym_test_schedule_free(sym_test_schedule *s) {
    free(s->B);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

int sym_test_schedule_make(sym_test_schedule *s, uint64_t seed, int n_slots, int main_steps, sym_err *e) {
    memset(s, 0, sizeof *s);
    if (n_slots < 8 || main_steps < 5) return sym_fail(e, "a schedule needs 8 slots and 5 steps or more");
    enum { N_WIDE = 5 };
    const int most = 4 * n_slots; /* rows of a step, at most (a main step has 10 at most) */
    const int cap_steps = main_steps + N_WIDE, cap_rows = cap_steps * most;
    s->B = malloc((size_t)cap_steps * sizeof *s->B);
    s->slots = malloc((size_t)cap_rows * sizeof *s->slots);
    int32_t *all = malloc((size_t)n_slots * sizeof *all);
    if (!s->B || !s->slots || !all) {
        free(all);
        sym_test_schedule_free(s);
        return sym_fail(e, "out of memory");
    }
    rng r = {seed ^ 0xa0761d6478bd642full};
    int wide = 0;
    for (int k = 0; k < main_steps; k++) {
        /* the wide steps, spread over the stream: 1 row, 8, 16, every slot twice, four times */
        while (wide < N_WIDE && k >= (wide + 1) * main_steps / (N_WIDE + 1)) {
            for (int i = 0; i < n_slots; i++) all[i] = i;
            shuffle(&r, all, n_slots);
            int32_t *row = s->slots + s->n_rows;
            int B = 0;
            if (wide == 0) row[B++] = all[0];
            else if (wide <= 2) /* distinct slots */
                for (int i = 0; i < (wide == 1 ? 8 : 16) && i < n_slots; i++) row[B++] = all[i];
            else /* every slot 2 or 4 times, its rows in random places (sym_backend_step_runs gathers them) */
                for (int rep = 0; rep < (wide == 3 ? 2 : 4); rep++) {
                    shuffle(&r, all, n_slots);
                    for (int i = 0; i < n_slots; i++) row[B++] = all[i];
                }
            s->B[s->n_steps++] = B;
            s->n_rows += B;
            wide++;
        }
        int32_t *row = s->slots + s->n_rows;
        int B = 0;
        for (int i = 0; i < 4; i++) row[B++] = i;
        /* a few others beside the main symbols */
        for (int i = 0; i < n_slots - 4; i++) all[i] = 4 + i;
        shuffle(&r, all, n_slots - 4);
        for (int i = 0, n = below(&r, 4); i < n; i++) row[B++] = all[i];
        /* every fifth step, one main symbol 2 to 4 times: a run */
        if (k % 5 == 4)
            for (int i = 0, m = below(&r, 4), n = 1 + below(&r, 3); i < n; i++) row[B++] = m;
        shuffle(&r, row, B);
        s->B[s->n_steps++] = B;
        s->n_rows += B;
    }
    free(all);
    for (int k = 0; k < s->n_steps; k++) s->max_B = s->B[k] > s->max_B ? s->B[k] : s->max_B;
    return 0;
}

void sym_test_features(uint64_t seed, int n, float *out) {
    rng r = {seed ^ 0x2545f4914f6cdd1dull};
    for (int i = 0; i < n; i++) out[i] = (float)((double)(next(&r) >> 11) * 0x1.0p-53 * 4.0 - 2.0);
}

/* Each rule of sym_model_config_validate broken once (several where the
 * CUDA engine would otherwise misbehave), beside configs that keep every
 * other rule. */
const sym_test_bad_config sym_test_bad_configs[] = {
    {{0, 64, 2, 8, 79}, "hidden_size", "must be positive"},
    {{-32, 64, 2, 8, 79}, "hidden_size", "must be positive"},
    {{128, -1, 2, 8, 79}, "proj_size", "must be positive"},
    {{128, 256, 0, 8, 79}, "tower_depth", "must be positive"},
    {{128, 256, 2, 0, 79}, "num_heads", "must be positive"},
    {{128, 256, 2, 8, 0}, "num_features", "must be positive"},
    {{4128, 256, 1, 8, 79}, "hidden_size 4128", "exceeds the engine's maximum 4096"},
    {{8192, 256, 1, 8, 79}, "hidden_size 8192", "exceeds the engine's maximum 4096"},
    {{128, 262145, 1, 8, 79}, "proj_size 262145", "exceeds the engine's maximum"},
    {{128, 256, 1025, 8, 79}, "tower_depth 1025", "exceeds the engine's maximum"},
    {{128, 256, 2, 8, 257}, "num_features 257", "exceeds the engine's maximum 256"},
    {{100, 256, 2, 4, 79}, "hidden_size 100", "divisible by 64"},
    {{48, 256, 2, 4, 79}, "hidden_size 48", "divisible by 64"},
    {{16, 256, 2, 2, 79}, "hidden_size 16", "divisible by 64"},
    {{96, 256, 2, 5, 79}, "num_heads 5", "divisible by num_heads"},
    {{128, 256, 2, 3, 79}, "num_heads 3", "divisible by num_heads"},
    {{96, 256, 2, 32, 79}, "num_heads 32", "must be even (rotary pairs)"},
    {{96, 256, 2, 16, 79}, "num_heads 16", "hidden_size/num_heads divisible by 4"},
    {{160, 256, 2, 16, 79}, "num_heads 16", "hidden_size/num_heads divisible by 4"},
    {{128, 256, 2, 64, 79}, "num_heads 64", "hidden_size/num_heads divisible by 4"},
    {{96, 256, 2, 3, 79}, "num_heads 3", "must be even (the sLSTM"},
    {{64, 256, 2, 1, 79}, "num_heads 1", "must be even (the sLSTM"},
};
const int sym_test_n_bad_configs = (int)(sizeof sym_test_bad_configs / sizeof *sym_test_bad_configs);
