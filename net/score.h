/* The scoring server's book-keeping (symserve replay): per request its send
 * time and answer, latency send -> response, re-sends and re-answers,
 * duplicates, answers for ids never sent, answers that are not answers (a prediction that is not four
 * finite numbers, an id that is not an integer, a line that is not a
 * message), accuracy against expected predictions; and the final report
 * (percentiles, throughput, per-tower errors and MSE) as text, JSON and a
 * latency CDF plot. The report's fields are documented in
 * docs/design/net.md ("The report"). */
#ifndef SYM_NET_SCORE_H
#define SYM_NET_SCORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/request.h"
#include "common/uid_map.h"

/* What was wrong with something the client sent instead of an answer. */
typedef enum {
    SYM_BAD_PREDICTION, /* a row whose prediction is not a list of 4 finite numbers */
    SYM_BAD_ID,         /* a row whose unique_id is not an integer */
    SYM_BAD_MESSAGE,    /* a line refused whole: not JSON, unknown type, bad lists, too long */
} sym_bad_kind;

const char *sym_bad_kind_name(sym_bad_kind k); /* "prediction", "unique_id", "message" */

/* The first few bad inputs are kept for the report, truncated. */
#define SYM_SCORE_EXAMPLES 8
typedef struct {
    sym_bad_kind kind;
    char id[40];      /* the row's unique_id as JSON text ("" for a message) */
    char text[72];    /* the row's prediction as JSON text, or the line's first bytes */
    size_t text_len;  /* bytes of text (a line may hold NUL bytes) */
    char reason[160];
} sym_score_bad;

typedef struct {
    int n;
    uint64_t *uids;
    uint64_t *t_send_ns; /* its last send; 0: not sent yet */
    double *lat_ms;      /* < 0: not answered */
    double (*answers)[SYM_TOWERS]; /* each row's first valid answer, with sym_score_allow_reanswers only */
    double (*expected)[SYM_TOWERS];
    uint8_t *has_expected;
    int with_expected;
    sym_uid_map index; /* uid -> row */
    uint64_t answered, duplicates, reanswered, unknown, errors_received;
    uint64_t n_sent, n_resent; /* rows sent at least once; sends of a row already sent */
    uint64_t invalid, invalid_ids, bad_messages; /* by sym_bad_kind */
    uint64_t t_first_send_ns, t_last_answer_ns;
    double max_abs_err[SYM_TOWERS], sum_abs_err[SYM_TOWERS], sum_sq_err[SYM_TOWERS];
    uint64_t n_scored; /* answers compared with an expected value */
    sym_score_bad examples[SYM_SCORE_EXAMPLES];
    int n_examples;
} sym_score;

enum { SYM_SCORE_OK = 0, SYM_SCORE_UNKNOWN = 1, SYM_SCORE_DUPLICATE = 2, SYM_SCORE_NOT_SENT = 3, SYM_SCORE_REANSWERED = 4 };

/* uids must be distinct. */
int sym_score_init(sym_score *s, const uint64_t *uids, int n, sym_err *e);
void sym_score_free(sym_score *s);
/* Attaches expected predictions (rows for unknown ids are ignored). */
int sym_score_expect(sym_score *s, const uint64_t *uids, const double (*pred)[SYM_TOWERS], int n);

/* From now on a further answer of an answered id with the same 4 values,
 * bit for bit, is a re-answer (SYM_SCORE_REANSWERED, counted in
 * `reanswered`), not a duplicate: the client of a stream that re-sends
 * requests may answer an id again. Keeps every first answer (32 bytes a
 * row). -1 with e when memory runs out. */
int sym_score_allow_reanswers(sym_score *s, sym_err *e);

/* Row `row` was sent at t_ns: its line's last byte was handed to the
 * kernel. A row sent again (replay --resend) counts in n_resent, and its
 * latency runs from this, its last send. */
void sym_score_sent(sym_score *s, int row, uint64_t t_ns);
/* Scores one answer; pred must hold 4 finite numbers (anything else is
 * sym_score_bad_input's). *lat_ms and *err (max abs error over the towers,
 * NAN without an expected value) are set on SYM_SCORE_OK. A second valid
 * answer of an id is SYM_SCORE_DUPLICATE, or SYM_SCORE_REANSWERED (see
 * sym_score_allow_reanswers); either way the first answer stands. */
int sym_score_answer(sym_score *s, uint64_t uid, const double pred[SYM_TOWERS], uint64_t t_ns, double *lat_ms, double *err);
/* Counts one bad input under its kind; the first SYM_SCORE_EXAMPLES are
 * kept (id and reason NUL-terminated, text[0, text_len) any bytes). Returns
 * 1 when this one was kept. Nothing is answered by it. */
int sym_score_bad_input(sym_score *s, sym_bad_kind kind, const char *id, const char *text, size_t text_len,
                        const char *reason);

typedef struct {
    uint64_t requests, sent, resent, answered, duplicates, reanswered, unknown, errors_received;
    uint64_t invalid, invalid_ids, bad_messages;
    double share_answered, throughput_rps, duration_s;
    double p50, p90, p99, max, mean; /* latency, ms */
    int with_expected;
    uint64_t scored;
    double max_abs_err[SYM_TOWERS], mean_abs_err[SYM_TOWERS], mse[SYM_TOWERS];
    sym_score_bad examples[SYM_SCORE_EXAMPLES];
    int n_examples;
    /* how the run went: zero from sym_score_report_make, set by the caller */
    int timed_out, injected_bad, resend;
    long long drop_after;
    const char *mode; /* "trace" or "poisson" (NULL: written as "") */
} sym_score_report;

int sym_score_report_make(const sym_score *s, sym_score_report *r);
void sym_score_report_print(FILE *f, const sym_score_report *r);
/* The report as JSON (fields in docs/design/net.md, "The report"): one
 * counter or number a line, which scripts read with sed. A non-finite number
 * is written as null; an example's bytes outside printable ASCII as
 * \u00XX, one per byte, so any bytes a client sent keep the file valid
 * UTF-8 JSON. */
int sym_score_report_write_json(const char *path, const sym_score_report *r, sym_err *e);

/* The latency CDF as text, "latency_ms share" a line (what the plot draws),
 * for plotting elsewhere. */
int sym_score_write_cdf(const sym_score *s, const char *path, sym_err *e);

/* Latency CDF as PNG via the gnuplot program (found on PATH). Returns 0 on
 * success, 1 when gnuplot is not installed (a note, not a failure), -1 with
 * e on error (a png path holding a quote or a control character included). */
int sym_score_plot(const sym_score *s, const char *png, sym_err *e);

#endif
