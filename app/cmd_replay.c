/* symserve replay: the scoring server's stand-in. Streams a trace (or a
 * Poisson load) to one client over the game protocol (or, with --connect,
 * to `symserve serve` as its client), scores its answers and prints the
 * report; see net/replay.h and net/score.h. Exit code: 0 when
 * every request was answered once, validly (and within --tolerance of
 * --expected; with --resend, answers repeated with the same values are
 * re-answers, not duplicates); 3 when the client sent any invalid answer (a prediction that
 * is not 4 finite numbers, an id that is not an integer, a line that is not
 * a message); 1 otherwise (timeout, duplicates, unknown ids, tolerance, a
 * failure); 2 on a usage error. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli_args.h"
#include "app/commands.h"
#include "common/log.h"
#include "common/request.h"
#include "common/requests_csv.h"
#include "net/replay.h"
#include "net/score.h"

typedef struct {
    const char *host, *requests, *expected, *report, *plot, *cdf, *port_file;
    char connect_host[256]; /* --connect HOST:PORT; "" : listen */
    int connect_port;
    int port, batch_rows, symbols, features, inject_bad, resend, log_level;
    long long drop_after;
    double speed, timeout, rate, duration, tolerance, register_timeout;
    uint64_t seed;
} replay_opts;

static const char usage_text[] =
    "usage: symserve replay --port P --requests FILE.csv [--expected FILE.csv [--tolerance X]] [--speed X]\n"
    "       symserve replay --port P --rate R --symbols N --duration S [--features F] [--seed K]\n"
    "       symserve replay --connect HOST:PORT (--requests ... | --rate ...): the same, as a client of symserve serve\n"
    "   common: [--host 127.0.0.1] [--batch-rows N] [--timeout S] [--report FILE.json] [--plot FILE.png] [--cdf FILE.txt]\n"
    "           [--inject-bad] [--port-file FILE] [--register-timeout S] [--resend] [--drop-after N]\n"
    "           [--log-level debug|info|warn|error]\n"
    "  --port 0..65535; 0 picks a free port (printed as 'listening on HOST:PORT', and written to --port-file)\n"
    "  --connect HOST:PORT: connect to `symserve serve` there instead of listening (no register is sent);\n"
    "      the run ends when the connection does; not with --port, --resend or --drop-after\n"
    "  --speed scales the trace's delay_ms gaps by 1/X (default 1; 0: as fast as possible)\n"
    "  --rate R (> 0) requests per second for S (> 0) seconds over N symbols\n"
    "      --features F: features a request (1..256, default 79); --seed K: their seed (default 1)\n"
    "  --batch-rows N: at most N rows (>= 1, default 1) in one inference_request\n"
    "  --timeout S: give up (exit 1) after S s without a client, after the last send, or while the client\n"
    "      leaves 1 MiB of our output unread (default 30)\n"
    "  --tolerance X (>= 0): exit 1 when a max abs error against --expected exceeds X\n"
    "  --inject-bad: first send 13 malformed lines; each must draw an error from the client\n"
    "  --register-timeout S: close a connection that has not registered after S s (default 10)\n"
    "  --resend: when the client goes, requests sent and not answered go again, first, to the next client\n"
    "      that registers (within --timeout); an id answered again with the same 4 values (bit for bit) counts\n"
    "      once as answered and once in 'reanswered'; with other values it is a duplicate\n"
    "  --drop-after N: a switch for tests: reset the client connection once, right after the message holding\n"
    "      the N-th request written (re-sends count) is handed to the kernel, whatever is in flight (0: never)\n"
    "  --log-level: the least severe log line written on stderr (default info)\n"
    "  latency: from the moment the request's last byte is handed to the kernel to its answer's arrival\n"
    "      (for a request sent again, from its last send)\n"
    "exit: 0 every request answered once, validly (within --tolerance); 3 the client sent invalid answers\n"
    "      (predictions not 4 finite numbers, ids not integers, lines that are not messages); 1 otherwise\n"
    "      (timeout, unanswered, duplicate or unknown ids, over --tolerance, failure); 2 usage\n";

enum { O_HOST = 1, O_PORT, O_REQUESTS, O_EXPECTED, O_REPORT, O_PLOT, O_CDF, O_PORT_FILE, O_SPEED, O_BATCH_ROWS,
       O_TIMEOUT, O_RATE, O_SYMBOLS, O_DURATION, O_FEATURES, O_SEED, O_TOLERANCE, O_REGISTER_TIMEOUT, O_DROP_AFTER,
       O_INJECT_BAD, O_RESEND, O_LOG_LEVEL, O_CONNECT };

static const struct option options[] = {
    {"host", required_argument, NULL, O_HOST},
    {"port", required_argument, NULL, O_PORT},
    {"requests", required_argument, NULL, O_REQUESTS},
    {"expected", required_argument, NULL, O_EXPECTED},
    {"report", required_argument, NULL, O_REPORT},
    {"plot", required_argument, NULL, O_PLOT},
    {"cdf", required_argument, NULL, O_CDF},
    {"port-file", required_argument, NULL, O_PORT_FILE},
    {"speed", required_argument, NULL, O_SPEED},
    {"batch-rows", required_argument, NULL, O_BATCH_ROWS},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"rate", required_argument, NULL, O_RATE},
    {"symbols", required_argument, NULL, O_SYMBOLS},
    {"duration", required_argument, NULL, O_DURATION},
    {"features", required_argument, NULL, O_FEATURES},
    {"seed", required_argument, NULL, O_SEED},
    {"tolerance", required_argument, NULL, O_TOLERANCE},
    {"register-timeout", required_argument, NULL, O_REGISTER_TIMEOUT},
    {"drop-after", required_argument, NULL, O_DROP_AFTER},
    {"inject-bad", no_argument, NULL, O_INJECT_BAD},
    {"resend", no_argument, NULL, O_RESEND},
    {"log-level", required_argument, NULL, O_LOG_LEVEL},
    {"connect", required_argument, NULL, O_CONNECT},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* in the order of SYM_LOG_DEBUG..SYM_LOG_ERROR */
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

/* HOST:PORT (the port after the last ':'; [v6]:PORT too). */
static int parse_connect(const cli_args *a, const char *v, replay_opts *o) {
    const char *colon = strrchr(v, ':');
    size_t hl = colon ? (size_t)(colon - v) : 0;
    const char *h = v;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') h++, hl -= 2;
    if (!colon || hl == 0 || hl >= sizeof o->connect_host) return cli_error(a, "--connect: '%s' is not HOST:PORT", v);
    memcpy(o->connect_host, h, hl);
    o->connect_host[hl] = '\0';
    return cli_int(a, colon + 1, 1, 65535, &o->connect_port);
}

/* 0: options read; CLI_HELP; CLI_BAD: the problem printed. */
static int parse(int argc, char **argv, replay_opts *o) {
    *o = (replay_opts){.host = "127.0.0.1", .port = -1, .batch_rows = 1, .features = 79, .speed = 1, .timeout = 30,
                       .tolerance = -1, .seed = 1, .register_timeout = 10, .log_level = SYM_LOG_INFO};
    cli_args a;
    cli_start(&a, "replay", argc, argv, options);
    int c, bad = 0, poisson = 0;
    while (!bad && (c = cli_next(&a)) != CLI_END) {
        switch (c) {
        case O_HOST: o->host = optarg; break;
        case O_PORT: bad = cli_int(&a, optarg, 0, 65535, &o->port); break;
        case O_REQUESTS: o->requests = optarg; break;
        case O_EXPECTED: o->expected = optarg; break;
        case O_REPORT: o->report = optarg; break;
        case O_PLOT: o->plot = optarg; break;
        case O_CDF: o->cdf = optarg; break;
        case O_PORT_FILE: o->port_file = optarg; break;
        case O_SPEED: bad = cli_double(&a, optarg, 0, 0, &o->speed); break;
        case O_BATCH_ROWS: bad = cli_int(&a, optarg, 1, INT_MAX, &o->batch_rows); break;
        case O_TIMEOUT: bad = cli_double(&a, optarg, 0, 1, &o->timeout); break;
        case O_RATE:
            poisson = 1;
            bad = cli_double(&a, optarg, 0, 1, &o->rate);
            break;
        case O_SYMBOLS:
            poisson = 1;
            bad = cli_int(&a, optarg, 1, INT_MAX, &o->symbols);
            break;
        case O_DURATION:
            poisson = 1;
            bad = cli_double(&a, optarg, 0, 1, &o->duration);
            break;
        case O_FEATURES: bad = cli_int(&a, optarg, 1, SYM_MAX_FEATURES, &o->features); break;
        case O_SEED: bad = cli_u64(&a, optarg, &o->seed); break;
        case O_TOLERANCE: bad = cli_double(&a, optarg, 0, 0, &o->tolerance); break;
        case O_REGISTER_TIMEOUT: bad = cli_double(&a, optarg, 0, 1, &o->register_timeout); break;
        case O_DROP_AFTER: bad = cli_llong(&a, optarg, 0, LLONG_MAX, &o->drop_after); break;
        case O_INJECT_BAD: o->inject_bad = 1; break;
        case O_RESEND: o->resend = 1; break;
        case O_LOG_LEVEL: bad = cli_choice(&a, optarg, log_levels, &o->log_level); break;
        case O_CONNECT: bad = parse_connect(&a, optarg, o); break;
        case 'h': return CLI_HELP;
        default: return CLI_BAD;
        }
    }
    if (bad) return CLI_BAD;
    if (o->connect_host[0]) {
        if (o->port >= 0 || o->port_file) return cli_error(&a, "--connect goes without --port and --port-file");
        if (o->resend || o->drop_after)
            return cli_error(&a, "--resend and --drop-after need a client that keeps its answers (play): not with --connect");
    } else if (o->port < 0) {
        return cli_error(&a, "--port P (or --connect HOST:PORT) is required");
    }
    if (o->requests && poisson)
        return cli_error(&a, "give --requests or a Poisson load (--rate, --symbols, --duration), not both");
    if (!o->requests && !poisson) return cli_error(&a, "give --requests FILE.csv or --rate R --symbols N --duration S");
    if (poisson && !(o->rate > 0 && o->symbols > 0 && o->duration > 0))
        return cli_error(&a, "a Poisson load needs all of --rate, --symbols and --duration");
    if (o->expected && !o->requests) return cli_error(&a, "--expected goes with --requests");
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
    int parsed = parse(argc, argv, &o);
    if (parsed) return cli_usage(parsed, usage_text);
    sym_log_set_level(o.log_level);
    sym_err e = {{0}};
    sym_stream st;
    sym_score score;
    int rc = 1;
    if (o.requests ? sym_stream_from_csv(&st, o.requests, o.speed, &e)
                   : sym_stream_poisson(&st, o.rate, o.symbols, o.duration, o.features, o.seed, &e)) {
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
        double(*p)[SYM_TOWERS] = malloc((size_t)(pf.n ? pf.n : 1) * sizeof *p);
        if (!u || !p) {
            free(u), free(p), sym_predictions_free(&pf);
            fprintf(stderr, "symserve replay: out of memory\n");
            goto done;
        }
        for (int i = 0; i < pf.n; i++) u[i] = pf.rows[i].uid, memcpy(p[i], pf.rows[i].pred, sizeof p[i]);
        int found = sym_score_expect(&score, u, (const double(*)[SYM_TOWERS])p, pf.n);
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
                          .drop_after = o.drop_after, .on_listen = on_listen,
                          .connect_host = o.connect_host[0] ? o.connect_host : NULL, .connect_port = o.connect_port};
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
        for (int t = 0; t < SYM_TOWERS; t++) accurate &= r.max_abs_err[t] <= o.tolerance;
        printf("  accuracy %s: max abs err %s %g\n", accurate ? "PASS" : "FAIL", accurate ? "<=" : ">", o.tolerance);
    }
    if (run == 1) printf("  TIMEOUT: %llu of %llu requests answered\n", (unsigned long long)r.answered, (unsigned long long)r.requests);
    if (o.report) {
        r.timed_out = run == 1;
        r.injected_bad = o.inject_bad ? sym_replay_bad_line_count() : 0;
        r.resend = o.resend;
        r.drop_after = o.drop_after;
        r.mode = o.requests ? "trace" : "poisson";
        if (sym_score_report_write_json(o.report, &r, &e)) fprintf(stderr, "symserve replay: %s\n", e.msg), run = -1;
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
