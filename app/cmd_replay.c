/* symserve replay: the scoring server's stand-in. Streams a trace (or a
 * Poisson load) to one client over the game protocol, scores its answers
 * and prints the report; see net/replay.h and net/score.h. Exit code: 0 when
 * every request was answered once, validly (and within --tolerance of
 * --expected; with --resend, answers repeated with the same values are
 * re-answers, not duplicates); 3 when the client sent any invalid answer (a prediction that
 * is not 4 finite numbers, an id that is not an integer, a line that is not
 * a message); 1 otherwise (timeout, duplicates, unknown ids, tolerance, a
 * failure); 2 on a usage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/commands.h"
#include "common/log.h"
#include "common/requests_csv.h"
#include "net/replay.h"
#include "net/score.h"

typedef struct {
    const char *host, *requests, *expected, *report, *plot, *cdf, *port_file;
    int port, batch_rows, symbols, features, inject_bad, resend;
    long long drop_after;
    double speed, timeout, rate, duration, tolerance, register_timeout;
    long long seed;
} replay_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: symserve replay --port P --requests FILE.csv [--expected FILE.csv [--tolerance X]] [--speed X]\n"
            "       symserve replay --port P --rate R --symbols N --duration S [--features F] [--seed K]\n"
            "   common: [--host 127.0.0.1] [--batch-rows N] [--timeout S] [--report FILE.json] [--plot FILE.png] [--cdf FILE.txt]\n"
            "           [--inject-bad] [--port-file FILE] [--register-timeout S] [--resend] [--drop-after N]\n"
            "  --port 0 picks a free port (printed as 'listening on HOST:PORT', and written to --port-file)\n"
            "  --speed scales the trace's delay_ms gaps by 1/X (default 1; 0: as fast as possible)\n"
            "  --timeout S: give up (exit 1) after S s without a client, after the last send, or while the client\n"
            "      leaves 1 MiB of our output unread (default 30)\n"
            "  --inject-bad: first send 13 malformed lines; each must draw an error from the client\n"
            "  --register-timeout S: close a connection that has not registered after S s (default 10)\n"
            "  --resend: when the client goes, requests sent and not answered go again, first, to the next client\n"
            "      that registers (within --timeout); an id answered again with the same 4 values (bit for bit) counts\n"
            "      once as answered and once in 'reanswered'; with other values it is a duplicate\n"
            "  --drop-after N: a switch for tests: reset the client connection once, right after the message holding\n"
            "      the N-th request written (re-sends count) is handed to the kernel, whatever is in flight\n"
            "  latency: from the moment the request's last byte is handed to the kernel to its answer's arrival\n"
            "      (for a request sent again, from its last send)\n"
            "exit: 0 every request answered once, validly (within --tolerance); 3 the client sent invalid answers\n"
            "      (predictions not 4 finite numbers, ids not integers, lines that are not messages); 1 otherwise\n"
            "      (timeout, unanswered, duplicate or unknown ids, over --tolerance, failure); 2 usage\n");
    return 2;
}

static int parse(int argc, char **argv, replay_opts *o) {
    *o = (replay_opts){.host = "127.0.0.1", .port = -1, .batch_rows = 1, .features = 79, .speed = 1, .timeout = 30,
                       .tolerance = -1, .seed = 1, .register_timeout = 10};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--inject-bad")) {
            o->inject_bad = 1;
            continue;
        }
        if (!strcmp(a, "--resend")) {
            o->resend = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        char *end = NULL;
        if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--port")) o->port = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--requests")) o->requests = v;
        else if (!strcmp(a, "--expected")) o->expected = v;
        else if (!strcmp(a, "--report")) o->report = v;
        else if (!strcmp(a, "--plot")) o->plot = v;
        else if (!strcmp(a, "--cdf")) o->cdf = v;
        else if (!strcmp(a, "--port-file")) o->port_file = v;
        else if (!strcmp(a, "--speed")) o->speed = strtod(v, &end);
        else if (!strcmp(a, "--batch-rows")) o->batch_rows = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--timeout")) o->timeout = strtod(v, &end);
        else if (!strcmp(a, "--rate")) o->rate = strtod(v, &end);
        else if (!strcmp(a, "--symbols")) o->symbols = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--duration")) o->duration = strtod(v, &end);
        else if (!strcmp(a, "--features")) o->features = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--seed")) o->seed = strtoll(v, &end, 10);
        else if (!strcmp(a, "--tolerance")) o->tolerance = strtod(v, &end);
        else if (!strcmp(a, "--register-timeout")) o->register_timeout = strtod(v, &end);
        else if (!strcmp(a, "--drop-after")) o->drop_after = strtoll(v, &end, 10);
        else return -1;
        if (end && (*end || end == v)) return -1;
        i++;
    }
    int trace = o->requests != NULL, poisson = o->rate > 0 || o->symbols > 0 || o->duration > 0;
    if (o->port < 0 || o->port > 65535 || trace == poisson || o->batch_rows < 1 || !(o->speed >= 0) || !(o->timeout > 0) ||
        !(o->register_timeout > 0) || o->drop_after < 0)
        return -1;
    if (poisson && (!(o->rate > 0) || o->symbols < 1 || !(o->duration > 0) || o->features < 1 || o->features > 256))
        return -1;
    if (o->expected && !trace) return -1;
    return 0;
}

static const char *port_file;

static void on_listen(int port) {
    printf("replay: listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) fprintf(f, "%d\n", port), fclose(f);
        else sym_warn("replay: cannot write %s", port_file);
    }
}

int sym_cmd_replay(int argc, char **argv) {
    replay_opts o;
    if (argc > 1 && !strcmp(argv[1], "--help")) return usage(), 0;
    if (parse(argc, argv, &o)) return usage();
    sym_err e = {{0}};
    sym_stream st;
    sym_score score;
    int rc = 1;
    if (o.requests ? sym_stream_from_csv(&st, o.requests, o.speed, &e)
                   : sym_stream_poisson(&st, o.rate, o.symbols, o.duration, o.features, (uint64_t)o.seed, &e)) {
        fprintf(stderr, "symserve replay: %s\n", e.msg);
        return 1;
    }
    if (sym_score_init(&score, st.uids, st.n, &e)) {
        fprintf(stderr, "symserve replay: %s\n", e.msg);
        sym_stream_free(&st);
        return 1;
    }
    if (o.expected) {
        sym_prediction_file pf;
        if (sym_predictions_load(o.expected, &pf, &e)) {
            fprintf(stderr, "symserve replay: %s\n", e.msg);
            goto done;
        }
        uint64_t *u = malloc((size_t)(pf.n ? pf.n : 1) * sizeof *u);
        double(*p)[4] = malloc((size_t)(pf.n ? pf.n : 1) * sizeof *p);
        if (!u || !p) {
            free(u), free(p), sym_predictions_free(&pf);
            fprintf(stderr, "symserve replay: out of memory\n");
            goto done;
        }
        for (int i = 0; i < pf.n; i++) u[i] = pf.rows[i].uid, memcpy(p[i], pf.rows[i].pred, sizeof p[i]);
        int found = sym_score_expect(&score, u, (const double(*)[4])p, pf.n);
        free(u), free(p), sym_predictions_free(&pf);
        if (found < st.n) sym_warn("replay: %d of %d requests have no expected prediction", st.n - found, st.n);
    }
    if (o.resend && sym_score_allow_reanswers(&score, &e)) {
        fprintf(stderr, "symserve replay: %s\n", e.msg);
        goto done;
    }
    port_file = o.port_file;
    sym_replay_opts ro = {.host = o.host, .port = o.port, .batch_rows = o.batch_rows, .timeout_s = o.timeout,
                          .inject_bad = o.inject_bad, .register_timeout_s = o.register_timeout, .resend = o.resend,
                          .drop_after = o.drop_after, .on_listen = on_listen};
    int run = sym_replay_run(&ro, &st, &score, &e);
    if (run < 0) fprintf(stderr, "symserve replay: %s\n", e.msg);
    sym_score_report r;
    if (sym_score_report_make(&score, &r)) {
        fprintf(stderr, "symserve replay: out of memory\n");
        goto done;
    }
    sym_score_report_print(stdout, &r);
    if (o.inject_bad)
        printf("  injected %d bad lines, %llu errors received\n", sym_replay_bad_line_count(),
               (unsigned long long)score.errors_received);
    int accurate = 1;
    if (o.expected && o.tolerance >= 0) {
        for (int t = 0; t < 4; t++) accurate &= r.max_abs_err[t] <= o.tolerance;
        printf("  accuracy %s: max abs err %s %g\n", accurate ? "PASS" : "FAIL", accurate ? "<=" : ">", o.tolerance);
    }
    if (run == 1) printf("  TIMEOUT: %llu of %llu requests answered\n", (unsigned long long)r.answered, (unsigned long long)r.requests);
    if (o.report) {
        char extra[256];
        snprintf(extra, sizeof extra,
                 "\"timed_out\": %s, \"injected_bad\": %d, \"resend\": %s, \"drop_after\": %lld, \"mode\": \"%s\"",
                 run == 1 ? "true" : "false", o.inject_bad ? sym_replay_bad_line_count() : 0, o.resend ? "true" : "false",
                 o.drop_after, o.requests ? "trace" : "poisson");
        if (sym_score_report_write_json(o.report, &r, extra, &e)) fprintf(stderr, "symserve replay: %s\n", e.msg), run = -1;
        else printf("  report written to %s\n", o.report);
    }
    if (o.cdf && sym_score_write_cdf(&score, o.cdf, &e)) fprintf(stderr, "symserve replay: cdf: %s\n", e.msg);
    if (o.plot) {
        int p = sym_score_plot(&score, o.plot, &e);
        if (p == 1) printf("  no plot: gnuplot is not installed (apt-get install gnuplot-nox)\n");
        else if (p < 0) fprintf(stderr, "symserve replay: plot: %s\n", e.msg);
        else printf("  latency CDF plotted to %s\n", o.plot);
    }
    if (r.invalid || r.invalid_ids || r.bad_messages) {
        printf("  INVALID ANSWERS: exit 3\n");
        rc = 3;
    } else {
        rc = run == 0 && accurate && r.duplicates == 0 && r.unknown == 0 ? 0 : 1;
    }
    fflush(stdout);
done:
    sym_score_free(&score);
    sym_stream_free(&st);
    return rc;
}
