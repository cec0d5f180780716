/* Scoring; see score.h. */
#include "net/score.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int sym_score_init(sym_score *s, const uint64_t *uids, int n, sym_err *e) {
    memset(s, 0, sizeof *s);
    size_t m = (size_t)(n > 0 ? n : 1);
    s->n = n;
    s->uids = malloc(m * sizeof *s->uids);
    s->t_send_ns = calloc(m, sizeof *s->t_send_ns);
    s->lat_ms = malloc(m * sizeof *s->lat_ms);
    s->expected = calloc(m, sizeof *s->expected);
    s->has_expected = calloc(m, 1);
    if (!s->uids || !s->t_send_ns || !s->lat_ms || !s->expected || !s->has_expected || sym_uid_map_init(&s->index, m)) {
        sym_score_free(s);
        return sym_fail(e, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        if (sym_uid_map_get(&s->index, uids[i])) {
            sym_score_free(s);
            return sym_fail(e, "unique_id %llu appears twice in the stream", (unsigned long long)uids[i]);
        }
        if (sym_uid_map_put(&s->index, uids[i], i)) {
            sym_score_free(s);
            return sym_fail(e, "out of memory");
        }
        s->uids[i] = uids[i];
        s->lat_ms[i] = -1;
    }
    return 0;
}

void sym_score_free(sym_score *s) {
    free(s->uids);
    free(s->t_send_ns);
    free(s->lat_ms);
    free(s->expected);
    free(s->has_expected);
    free(s->answers);
    sym_uid_map_free(&s->index);
    memset(s, 0, sizeof *s);
}

int sym_score_expect(sym_score *s, const uint64_t *uids, const double (*pred)[SYM_TOWERS], int n) {
    int found = 0;
    for (int i = 0; i < n; i++) {
        int32_t *r = sym_uid_map_get(&s->index, uids[i]);
        if (!r) continue;
        memcpy(s->expected[*r], pred[i], sizeof s->expected[*r]);
        s->has_expected[*r] = 1;
        found++;
    }
    s->with_expected = 1;
    return found;
}

int sym_score_allow_reanswers(sym_score *s, sym_err *e) {
    if (s->answers) return 0;
    s->answers = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *s->answers);
    if (!s->answers) return sym_fail(e, "out of memory");
    for (int i = 0; i < s->n; i++) /* a row answered before this call has no first answer kept */
        if (s->lat_ms[i] >= 0) s->answers[i][0] = NAN;
    return 0;
}

void sym_score_sent(sym_score *s, int row, uint64_t t_ns) {
    if (!s->t_first_send_ns) s->t_first_send_ns = t_ns;
    if (s->t_send_ns[row]) s->n_resent++;
    else s->n_sent++;
    s->t_send_ns[row] = t_ns;
}

int sym_score_answer(sym_score *s, uint64_t uid, const double pred[SYM_TOWERS], uint64_t t_ns, double *lat_ms, double *err) {
    int32_t *r = sym_uid_map_get(&s->index, uid);
    if (!r) {
        s->unknown++;
        return SYM_SCORE_UNKNOWN;
    }
    int i = *r;
    if (!s->t_send_ns[i]) {
        s->unknown++;
        return SYM_SCORE_NOT_SENT;
    }
    if (s->lat_ms[i] >= 0) {
        /* bit for bit: the same text parses to the same doubles; -0.0 and 0.0 differ */
        if (s->answers && !memcmp(s->answers[i], pred, sizeof s->answers[i])) {
            s->reanswered++;
            return SYM_SCORE_REANSWERED;
        }
        s->duplicates++;
        return SYM_SCORE_DUPLICATE;
    }
    if (s->answers) memcpy(s->answers[i], pred, sizeof s->answers[i]);
    s->lat_ms[i] = (double)(t_ns - s->t_send_ns[i]) * 1e-6;
    s->answered++;
    if (t_ns > s->t_last_answer_ns) s->t_last_answer_ns = t_ns;
    *lat_ms = s->lat_ms[i];
    *err = NAN;
    if (s->has_expected[i]) {
        double mx = 0;
        for (int t = 0; t < SYM_TOWERS; t++) {
            double d = fabs(pred[t] - s->expected[i][t]);
            if (d > s->max_abs_err[t]) s->max_abs_err[t] = d;
            s->sum_abs_err[t] += d;
            s->sum_sq_err[t] += d * d;
            if (d > mx) mx = d;
        }
        s->n_scored++;
        *err = mx;
    }
    return SYM_SCORE_OK;
}

const char *sym_bad_kind_name(sym_bad_kind k) {
    return k == SYM_BAD_PREDICTION ? "prediction" : k == SYM_BAD_ID ? "unique_id" : "message";
}

int sym_score_bad_input(sym_score *s, sym_bad_kind kind, const char *id, const char *text, size_t text_len,
                        const char *reason) {
    if (kind == SYM_BAD_PREDICTION) s->invalid++;
    else if (kind == SYM_BAD_ID) s->invalid_ids++;
    else s->bad_messages++;
    if (s->n_examples == SYM_SCORE_EXAMPLES) return 0;
    sym_score_bad *b = &s->examples[s->n_examples++];
    b->kind = kind;
    snprintf(b->id, sizeof b->id, "%s", id ? id : "");
    size_t n = text_len < sizeof b->text - 1 ? text_len : sizeof b->text - 1;
    if (n) memcpy(b->text, text, n);
    b->text[n] = '\0';
    b->text_len = n;
    snprintf(b->reason, sizeof b->reason, "%s", reason ? reason : "");
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorted latencies of the answered requests (caller frees); *k their count. */
static double *sorted_latencies(const sym_score *s, int *k) {
    double *v = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *v);
    *k = 0;
    if (!v) return NULL;
    for (int i = 0; i < s->n; i++)
        if (s->lat_ms[i] >= 0) v[(*k)++] = s->lat_ms[i];
    qsort(v, (size_t)*k, sizeof *v, cmp_double);
    return v;
}

static double rank(const double *v, int k, double p) { /* nearest rank */
    if (!k) return 0;
    int i = (int)ceil(p * k) - 1;
    return v[i < 0 ? 0 : i >= k ? k - 1 : i];
}

int sym_score_report_make(const sym_score *s, sym_score_report *r) {
    memset(r, 0, sizeof *r);
    int k;
    double *v = sorted_latencies(s, &k);
    if (!v) return -1;
    r->requests = (uint64_t)s->n;
    r->sent = s->n_sent;
    r->resent = s->n_resent;
    r->answered = s->answered;
    r->duplicates = s->duplicates;
    r->reanswered = s->reanswered;
    r->unknown = s->unknown;
    r->errors_received = s->errors_received;
    r->invalid = s->invalid;
    r->invalid_ids = s->invalid_ids;
    r->bad_messages = s->bad_messages;
    r->share_answered = s->n ? (double)s->answered / s->n : 1;
    if (s->t_last_answer_ns > s->t_first_send_ns) {
        r->duration_s = (double)(s->t_last_answer_ns - s->t_first_send_ns) * 1e-9;
        r->throughput_rps = (double)s->answered / r->duration_s;
    }
    r->p50 = rank(v, k, 0.5), r->p90 = rank(v, k, 0.9), r->p99 = rank(v, k, 0.99), r->max = k ? v[k - 1] : 0;
    double sum = 0;
    for (int i = 0; i < k; i++) sum += v[i];
    r->mean = k ? sum / k : 0;
    free(v);
    r->with_expected = s->with_expected;
    r->scored = s->n_scored;
    for (int t = 0; t < SYM_TOWERS; t++) {
        r->max_abs_err[t] = s->max_abs_err[t];
        r->mean_abs_err[t] = s->n_scored ? s->sum_abs_err[t] / (double)s->n_scored : 0;
        r->mse[t] = s->n_scored ? s->sum_sq_err[t] / (double)s->n_scored : 0;
    }
    memcpy(r->examples, s->examples, sizeof r->examples);
    r->n_examples = s->n_examples;
    return 0;
}

void sym_score_report_print(FILE *f, const sym_score_report *r) {
    fprintf(f, "replay report\n");
    fprintf(f, "  requests     %llu (sent %llu, re-sent %llu)\n", (unsigned long long)r->requests, (unsigned long long)r->sent,
            (unsigned long long)r->resent);
    fprintf(f, "  answered     %llu (%.1f%%), reanswered %llu, duplicates %llu, unknown ids %llu, errors received %llu\n",
            (unsigned long long)r->answered, 100 * r->share_answered, (unsigned long long)r->reanswered,
            (unsigned long long)r->duplicates, (unsigned long long)r->unknown, (unsigned long long)r->errors_received);
    if (r->invalid || r->invalid_ids || r->bad_messages) {
        fprintf(f, "  INVALID      %llu predictions not 4 finite numbers, %llu ids not integers, %llu bad messages\n",
                (unsigned long long)r->invalid, (unsigned long long)r->invalid_ids, (unsigned long long)r->bad_messages);
        for (int i = 0; i < r->n_examples; i++) {
            const sym_score_bad *b = &r->examples[i];
            if (b->kind == SYM_BAD_PREDICTION) fprintf(f, "    prediction of unique_id %s: ", b->id);
            else if (b->kind == SYM_BAD_ID) fprintf(f, "    unique_id %s, prediction ", b->id);
            else fputs("    message ", f);
            for (size_t k = 0; k < b->text_len; k++) { /* the client's bytes: printable ASCII only */
                unsigned char c = (unsigned char)b->text[k];
                fputc(c >= 0x20 && c < 0x7f ? c : '?', f);
            }
            fprintf(f, " (%s)\n", b->reason);
        }
    }
    fprintf(f, "  throughput   %.1f responses/s over %.3f s\n", r->throughput_rps, r->duration_s);
    fprintf(f, "  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n", r->p50, r->p90, r->p99, r->max, r->mean);
    if (r->with_expected) {
        fprintf(f, "  accuracy vs expected (%llu rows): [xLSTM, Mamba2, RetNet, Hawk]\n", (unsigned long long)r->scored);
        fprintf(f, "    max abs err  %.3g %.3g %.3g %.3g\n", r->max_abs_err[0], r->max_abs_err[1], r->max_abs_err[2], r->max_abs_err[3]);
        fprintf(f, "    mean abs err %.3g %.3g %.3g %.3g\n", r->mean_abs_err[0], r->mean_abs_err[1], r->mean_abs_err[2], r->mean_abs_err[3]);
        fprintf(f, "    mse          %.3g %.3g %.3g %.3g\n", r->mse[0], r->mse[1], r->mse[2], r->mse[3]);
    }
}

/* The report is written directly rather than through cJSON: its layout
 * (one counter or number a line) is what the replay tests and scripts read,
 * and a client's bytes are shown one \u00XX a byte, where cJSON's printer
 * would copy bytes >= 0x80 as they are (invalid UTF-8 in, invalid JSON
 * out). tests/net/test_score_report.c reads reports of random values back
 * with the strict reader. */

/* JSON has no Infinity or NaN: such a value is written as null. */
static void put_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

static void put_nums(FILE *f, const char *key, const double v[SYM_TOWERS]) {
    fprintf(f, ",\n  \"%s\": [", key);
    for (int t = 0; t < SYM_TOWERS; t++) fputs(t ? ", " : "", f), put_num(f, v[t]);
    fputs("]", f);
}

/* A JSON string of bytes the client sent: whatever they are (invalid UTF-8
 * included), the report stays valid JSON; bytes outside printable ASCII
 * are written as \u00XX, one per byte. */
static void put_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fputc('\\', f), fputc(c, f);
        else if (c >= 0x20 && c < 0x7f) fputc(c, f);
        else fprintf(f, "\\u%04x", c);
    }
    fputc('"', f);
}

int sym_score_report_write_json(const char *path, const sym_score_report *r, sym_err *e) {
    FILE *f = fopen(path, "w");
    if (!f) return sym_fail(e, "cannot write %s", path);
    fprintf(f, "{\n  \"requests\": %llu,\n  \"sent\": %llu,\n  \"resent\": %llu,\n  \"answered\": %llu,\n"
               "  \"reanswered\": %llu,\n  \"duplicates\": %llu,\n"
               "  \"unknown_ids\": %llu,\n  \"invalid\": %llu,\n  \"invalid_ids\": %llu,\n  \"bad_messages\": %llu,\n"
               "  \"errors_received\": %llu,\n  \"share_answered\": ",
            (unsigned long long)r->requests, (unsigned long long)r->sent, (unsigned long long)r->resent,
            (unsigned long long)r->answered, (unsigned long long)r->reanswered,
            (unsigned long long)r->duplicates, (unsigned long long)r->unknown, (unsigned long long)r->invalid,
            (unsigned long long)r->invalid_ids, (unsigned long long)r->bad_messages,
            (unsigned long long)r->errors_received);
    put_num(f, r->share_answered);
    fputs(",\n  \"throughput_rps\": ", f);
    put_num(f, r->throughput_rps);
    fputs(",\n  \"duration_s\": ", f);
    put_num(f, r->duration_s);
    fputs(",\n  \"latency_ms\": {\"p50\": ", f);
    put_num(f, r->p50);
    fputs(", \"p90\": ", f);
    put_num(f, r->p90);
    fputs(", \"p99\": ", f);
    put_num(f, r->p99);
    fputs(", \"max\": ", f);
    put_num(f, r->max);
    fputs(", \"mean\": ", f);
    put_num(f, r->mean);
    fputs("}", f);
    if (r->with_expected) {
        fprintf(f, ",\n  \"scored\": %llu", (unsigned long long)r->scored);
        put_nums(f, "max_abs_err", r->max_abs_err);
        put_nums(f, "mean_abs_err", r->mean_abs_err);
        put_nums(f, "mse", r->mse);
    }
    fputs(",\n  \"invalid_examples\": [", f);
    for (int i = 0; i < r->n_examples; i++) {
        const sym_score_bad *b = &r->examples[i];
        fprintf(f, "%s\n    {\"kind\": \"%s\", \"unique_id\": ", i ? "," : "", sym_bad_kind_name(b->kind));
        put_str(f, b->id, strlen(b->id));
        fputs(", \"text\": ", f);
        put_str(f, b->text, b->text_len);
        fputs(", \"reason\": ", f);
        put_str(f, b->reason, strlen(b->reason));
        fputs("}", f);
    }
    fputs(r->n_examples ? "\n  ]" : "]", f);
    fprintf(f, ",\n  \"timed_out\": %s, \"injected_bad\": %d, \"resend\": %s, \"drop_after\": %lld, \"mode\": ",
            r->timed_out ? "true" : "false", r->injected_bad, r->resend ? "true" : "false", r->drop_after);
    put_str(f, r->mode ? r->mode : "", r->mode ? strlen(r->mode) : 0);
    fputs("\n}\n", f);
    if (fclose(f)) return sym_fail(e, "cannot write %s", path);
    return 0;
}

int sym_score_write_cdf(const sym_score *s, const char *path, sym_err *e) {
    int k;
    double *v = sorted_latencies(s, &k);
    if (!v) return sym_fail(e, "out of memory");
    FILE *f = fopen(path, "w");
    if (!f) {
        free(v);
        return sym_fail(e, "cannot write %s", path);
    }
    for (int i = 0; i < k; i++) fprintf(f, "%.6f %.6f\n", v[i], (double)(i + 1) / k);
    free(v);
    if (fclose(f)) return sym_fail(e, "write error on %s", path);
    return 0;
}

/* The script names both files in single quotes, inside which gnuplot
 * takes no escapes: a path with a quote or a control byte cannot go in. */
static int plot_path_ok(const char *p) {
    for (; *p; p++)
        if (*p == '\'' || (unsigned char)*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

/* gnuplot runs on a script file, found on PATH by posix_spawnp (its
 * ENOENT: not installed); no shell and no pipe, so nothing in a path is
 * read as a command and a gnuplot that exits early cannot SIGPIPE us. */
int sym_score_plot(const sym_score *s, const char *png, sym_err *e) {
    if (!plot_path_ok(png))
        return sym_fail(e, "cannot plot to '%s': a path with a quote or a control character cannot go into gnuplot's script",
                        png);
    char data[] = "/tmp/symserve-latency-XXXXXX", script[] = "/tmp/symserve-plot-XXXXXX";
    int fd = mkstemp(data);
    if (fd < 0) return sym_fail(e, "cannot create a temporary file for the plot");
    close(fd);
    int rc = -1, have_script = 0;
    FILE *g = NULL;
    if (sym_score_write_cdf(s, data, e)) goto out;
    int k = 0;
    for (int i = 0; i < s->n; i++) k += s->lat_ms[i] >= 0;
    if ((fd = mkstemp(script)) >= 0) have_script = 1;
    if (fd < 0 || !(g = fdopen(fd, "w"))) {
        if (fd >= 0) close(fd);
        sym_fail(e, "cannot create a temporary file for the plot");
        goto out;
    }
    fprintf(g,
            "set terminal pngcairo size 900,600 noenhanced\n"
            "set output '%s'\n"
            "set title 'symserve replay: latency CDF (%d responses)'\n"
            "set xlabel 'latency send -> response (ms)'\nset ylabel 'share of requests'\n"
            "set logscale x\nset grid\nset key bottom right\nset yrange [0:1]\n"
            "plot '%s' using 1:2 with steps lw 2 title 'latency CDF'\n",
            png, k, data);
    if (fclose(g)) {
        sym_fail(e, "cannot write the plot's script");
        goto out;
    }
    char prog[] = "gnuplot", *argv[] = {prog, script, NULL};
    pid_t pid;
    int sp = posix_spawnp(&pid, prog, NULL, NULL, argv, environ), st = 0;
    if (sp == ENOENT) {
        rc = 1;
    } else if (sp) {
        sym_fail(e, "cannot run gnuplot: %s", strerror(sp));
    } else if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        sym_fail(e, "gnuplot failed to write %s", png);
    } else {
        rc = 0;
    }
out:
    unlink(data);
    if (have_script) unlink(script);
    return rc;
}
