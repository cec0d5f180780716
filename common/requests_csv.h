/* Request streams as CSV: golden `requests.csv` (unique_id,symbol,feature_00..)
 * and the seed's traces (unique_id,feature_00..,delay_ms,target_00..,symbol).
 * Columns are found by their header names; feature_00..feature_{F-1} must all
 * be present and no other feature_ column. Every feature must parse as a
 * finite float; symbols must pass sym_symbol_check (common/request.h). The
 * error names the line and column. Also reads prediction CSVs
 * (unique_id,pred_0..pred_3) such as golden expected_*.csv. */
#ifndef SYM_REQUESTS_CSV_H
#define SYM_REQUESTS_CSV_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/request.h"

typedef struct {
    uint64_t uid;
    char symbol[SYM_SYMBOL_MAX + 1];
    double delay_ms; /* 0 when the file has no delay_ms column */
    float *features; /* n_features values, inside the file's feature block */
} sym_csv_request;

typedef struct {
    sym_csv_request *rows;
    int n;
    int n_features;
    int has_delay;
    float *feature_block; /* n * n_features */
} sym_request_file;

/* expected_features: the model's F, or 0 to accept what the header says. */
int sym_requests_load(const char *path, int expected_features, sym_request_file *f, sym_err *e);
void sym_requests_free(sym_request_file *f);

typedef struct {
    uint64_t uid;
    double pred[SYM_TOWERS];
} sym_csv_prediction;

typedef struct {
    sym_csv_prediction *rows;
    int n;
} sym_prediction_file;

int sym_predictions_load(const char *path, sym_prediction_file *f, sym_err *e);
void sym_predictions_free(sym_prediction_file *f);

/* Writes "unique_id,pred_0,pred_1,pred_2,pred_3" then one line per row with
 * 17 significant digits (round-trips a double). */
void sym_predictions_write_header(FILE *out);
void sym_predictions_write_row(FILE *out, uint64_t uid, const double pred[SYM_TOWERS]);

#endif
