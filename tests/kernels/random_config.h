/* Random model configs, request schedules and feature rows for the shape
 * tests: the GPU test (tests/cuda/test_gv_shapes.c) and its CPU side in CI
 * (tests/kernels/test_shape_rules.c) draw the same ones from the same
 * seeds, and share the table of configs the engine must refuse. */
#ifndef SYM_TEST_RANDOM_CONFIG_H
#define SYM_TEST_RANDOM_CONFIG_H

#include <stdint.h>

#include "common/err.h"
#include "kernels/model_config.h"

/* A config that sym_model_config_validate accepts, drawn from seed:
 * hidden_size 32 * (1 + seed % (max_hidden / 32)), so consecutive seeds walk
 * every width from 32 up (odd and even Mamba2 head counts alike); the rest
 * from the seed's own random stream: num_heads any even count whose head
 * size is a multiple of 4, tower_depth 1..max_depth, proj_size any integer
 * in 8..3H or a multiple of 64 up to 3H (tile-sized or not), num_features
 * any of 1..256 or one of 1, 7, 32, 33, 64, 100, 256. */
sym_model_config sym_test_random_config(uint64_t seed, int max_hidden, int max_depth);

/* The GPU test's configs: seeds FIRST .. FIRST + N - 1 with these limits.
 * They walk every hidden_size from 32 to 512 (Mamba2 heads 1 to 16, odd and
 * even), depths 1 to 4, many head counts and feature counts; the CPU test
 * checks that they still do. */
#define SYM_TEST_SHAPES_FIRST_SEED 0
#define SYM_TEST_SHAPES_N 20
#define SYM_TEST_SHAPES_MAX_HIDDEN 512
#define SYM_TEST_SHAPES_MAX_DEPTH 4

/* "H=.. P=.. L=.. NH=.. F=.. (Mamba2 heads .., head size ..)" into buf. */
const char *sym_test_config_str(const sym_model_config *c, char *buf, int n);

/* Steps over n_slots slots (at least 8): main_steps steps that each take
 * slots 0..3 (the main symbols) in a shuffled order with a few others
 * beside them, one main slot repeated 2 to 4 times in every fifth (runs, as
 * a shard batches a symbol's waiting requests); among them, four wide
 * steps over every slot: 8 rows, 16, then every slot twice and four times
 * (up to 4 * n_slots rows). Slots 0..3 thus get at least main_steps rows
 * each. */
typedef struct {
    int n_steps, n_rows, max_B;
    int *B;         /* [n_steps] rows of each step */
    int32_t *slots; /* [n_rows] each step's slots in turn */
} sym_test_schedule;

int sym_test_schedule_make(sym_test_schedule *s, uint64_t seed, int n_slots, int main_steps, sym_err *e);
void sym_test_schedule_free(sym_test_schedule *s);

/* n features uniform in [-2, 2), from seed. */
void sym_test_features(uint64_t seed, int n, float *out);

/* Configs sym_model_config_validate must refuse, with two fragments its
 * message must hold: the config key it names and the rule. */
typedef struct {
    sym_model_config cfg;
    const char *key, *rule;
} sym_test_bad_config;

extern const sym_test_bad_config sym_test_bad_configs[];
extern const int sym_test_n_bad_configs;

#endif
