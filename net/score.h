/* The scoring server's book-keeping (symserve replay): per request its send
 * time and answer, latency send -> response, duplicates, answers for ids
 * never sent, accuracy against expected predictions; and the final report
 * (percentiles, throughput, per-tower errors) as text, JSON and a latency
 * CDF plot. */
#ifndef SYM_NET_SCORE_H
#define SYM_NET_SCORE_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "net/uid_map.h"

typedef struct {
    int n;
    uint64_t *uids;
    uint64_t *t_send_ns; /* 0: not sent yet */
    double *lat_ms;      /* < 0: not answered */
    double (*expected)[4];
    uint8_t *has_expected;
    int with_expected;
    sym_uid_map index; /* uid -> row */
    uint64_t answered, duplicates, unknown, errors_received, n_sent;
    uint64_t t_first_send_ns, t_last_answer_ns;
    double max_abs_err[4], sum_abs_err[4];
    uint64_t n_scored; /* answers compared with an expected value */
    uint64_t nonfinite; /* answers holding a null / non-finite prediction */
} sym_score;

enum { SYM_SCORE_OK = 0, SYM_SCORE_UNKNOWN = 1, SYM_SCORE_DUPLICATE = 2, SYM_SCORE_NOT_SENT = 3 };

/* uids must be distinct. */
int sym_score_init(sym_score *s, const uint64_t *uids, int n, sym_err *e);
void sym_score_free(sym_score *s);
/* Attaches expected predictions (rows for unknown ids are ignored). */
int sym_score_expect(sym_score *s, const uint64_t *uids, const double (*pred)[4], int n);

void sym_score_sent(sym_score *s, int row, uint64_t t_ns);
/* Scores one answer; *lat_ms and *err (max abs error over the towers, NAN
 * without an expected value) are set on SYM_SCORE_OK. */
int sym_score_answer(sym_score *s, uint64_t uid, const double pred[4], uint64_t t_ns, double *lat_ms, double *err);

typedef struct {
    uint64_t requests, sent, answered, duplicates, unknown, errors_received, nonfinite;
    double share_answered, throughput_rps, duration_s;
    double p50, p90, p99, max, mean; /* latency, ms */
    int with_expected;
    uint64_t scored;
    double max_abs_err[4], mean_abs_err[4];
} sym_score_report;

int sym_score_report_make(const sym_score *s, sym_score_report *r);
void sym_score_report_print(FILE *f, const sym_score_report *r);
int sym_score_report_write_json(const char *path, const sym_score_report *r, const char *extra_json_fields, sym_err *e);

/* The latency CDF as text, "latency_ms share" a line (what the plot draws),
 * for plotting elsewhere. */
int sym_score_write_cdf(const sym_score *s, const char *path, sym_err *e);

/* Latency CDF as PNG via the gnuplot program. Returns 0 on success, 1 when
 * gnuplot is not installed (a note, not a failure), -1 with e on error. */
int sym_score_plot(const sym_score *s, const char *png, sym_err *e);

#endif
