/* Runs a request file through a backend the way a serving engine would:
 * each step takes at most one request per symbol (its oldest), so every
 * symbol's state advances in request order. Shared by the kernel tests. */
#ifndef SYM_TEST_GOLDEN_RUN_H
#define SYM_TEST_GOLDEN_RUN_H

#include "common/requests_csv.h"
#include "kernels/backend.h"
#include "kernels/weights.h"

/* Assigns slots to symbols in order of first appearance (n_slots must cover
 * them) and writes out[i*4..] for request i. max_batch caps a step's rows. */
int sym_test_run_requests(sym_backend *b, const sym_request_file *rf, int max_batch, double *out, sym_err *e);

/* Loads a golden directory's weights and requests.csv, and (exp not NULL)
 * its expected_f64.csv. */
int sym_test_load_golden(const char *dir, sym_weights *w, sym_request_file *rf, sym_prediction_file *exp, sym_err *e);

/* Max abs error per tower between out (n x 4) and an expected file, which
 * must list the same unique_ids in the same order; mean abs error too. */
int sym_test_compare(const sym_request_file *rf, const double *out, const sym_prediction_file *exp, double max_err[4],
                     double mean_err[4], sym_err *e);

#endif
