#include "app/cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void cli_start(cli_args *a, const char *cmd, int argc, char **argv, const struct option *opts) {
    *a = (cli_args){.cmd = cmd, .argc = argc, .argv = argv, .opts = opts};
    optind = 0; /* glibc: start over, whatever an earlier parse left */
    opterr = 0; /* the messages are ours */
}

int cli_error(const cli_args *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "symserve %s: ", a->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_BAD;
}

/* The table entry named exactly name[0..len). */
static const struct option *exact(const struct option *opts, const char *name, size_t len) {
    for (; opts->name; opts++)
        if (strlen(opts->name) == len && !strncmp(opts->name, name, len)) return opts;
    return NULL;
}

int cli_next(cli_args *a) {
    /* "+": stop at the first argument that is not an option (no reordering),
     * so argv[at] is the option getopt_long reads next; ":": a missing value
     * comes back as ':', apart from an unknown option's '?' */
    int at = optind ? optind : 1;
    int c = getopt_long(a->argc, a->argv, "+:", a->opts, NULL);
    if (c == -1) {
        if (optind < a->argc) return cli_error(a, "unexpected argument '%.100s'", a->argv[optind]);
        return CLI_END;
    }
    const char *text = a->argv[at];
    int len = (int)strcspn(text, "=");
    const struct option *o = !strncmp(text, "--", 2) ? exact(a->opts, text + 2, (size_t)len - 2) : NULL;
    if (c == '?') {
        if (o && o->has_arg == no_argument && text[len]) return cli_error(a, "%.*s takes no value", len, text);
        return cli_error(a, "unknown option '%.*s'", len > 100 ? 100 : len, text);
    }
    /* getopt_long takes an unambiguous prefix for the whole name; a name is
     * written in full here, so that a later option cannot change its meaning */
    if (!o) return cli_error(a, "unknown option '%.*s'", len > 100 ? 100 : len, text);
    snprintf(a->name, sizeof a->name, "--%.*s", (int)sizeof a->name - 3, o->name);
    if (c == ':') return cli_error(a, "%s needs a value", a->name);
    if (o->has_arg == required_argument && !*optarg) return cli_error(a, "%s: the value is empty", a->name);
    /* "--out --shards 3" is a forgotten value, not a file named --shards */
    if (o->has_arg == required_argument && !strncmp(optarg, "--", 2) &&
        exact(a->opts, optarg + 2, strcspn(optarg + 2, "=")))
        return cli_error(a, "%s needs a value, not the option '%.100s'", a->name, optarg);
    return c;
}

/* A whole decimal number with nothing around it. */
static int whole(const char *v, long long *x) {
    if (!*v || isspace((unsigned char)*v)) return -1;
    char *end;
    errno = 0;
    *x = strtoll(v, &end, 10);
    return end == v || *end || errno ? -1 : 0;
}

int cli_llong(const cli_args *a, const char *v, long long lo, long long hi, long long *out) {
    long long x;
    if (whole(v, &x) || x < lo || x > hi)
        return cli_error(a, "%s: '%.100s' is not a whole number in %lld..%lld", a->name, v, lo, hi);
    *out = x;
    return 0;
}

int cli_int(const cli_args *a, const char *v, long lo, long hi, int *out) {
    long long x = 0;
    if (cli_llong(a, v, lo, hi, &x)) return CLI_BAD;
    *out = (int)x;
    return 0;
}

int cli_u64(const cli_args *a, const char *v, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    /* strtoull takes "-1" as 2^64 - 1 */
    unsigned long long x = *v && *v != '-' && !isspace((unsigned char)*v) ? strtoull(v, &end, 10) : 0;
    if (!end || end == v || *end || errno)
        return cli_error(a, "%s: '%.100s' is not a whole number in 0..%llu", a->name, v,
                         (unsigned long long)UINT64_MAX);
    *out = (uint64_t)x;
    return 0;
}

int cli_double(const cli_args *a, const char *v, double min, int min_excluded, double *out) {
    char *end = NULL;
    errno = 0;
    double x = *v && !isspace((unsigned char)*v) ? strtod(v, &end) : NAN;
    if (!end || end == v || *end || errno || !isfinite(x) || x < min || (min_excluded && x == min))
        return cli_error(a, "%s: '%.100s' is not a finite number %s %g", a->name, v, min_excluded ? ">" : ">=", min);
    *out = x;
    return 0;
}

int cli_choice(const cli_args *a, const char *v, const char *const *names, int *out) {
    char list[200] = "";
    size_t n = 0;
    for (int i = 0; names[i]; i++) {
        if (!strcmp(v, names[i])) {
            *out = i;
            return 0;
        }
        n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s", i ? ", " : "", names[i]);
        if (n >= sizeof list) n = sizeof list - 1;
    }
    return cli_error(a, "%s: '%.100s' is not one of %s", a->name, v, list);
}

int cli_usage(int parsed, const char *usage) {
    fputs(usage, parsed == CLI_HELP ? stdout : stderr);
    return parsed == CLI_HELP ? 0 : 2;
}

/* --- the metrics endpoint's options ----------------------------------------- */

void metrics_args_init(metrics_args *m) { *m = (metrics_args){.port = -1}; }

int metrics_args_take(metrics_args *m, const cli_args *a, int c, int *bad) {
    switch (c) {
    case METRICS_OPT_PORT: *bad = cli_int(a, optarg, 0, 65535, &m->port); break;
    case METRICS_OPT_HOST: m->host = optarg; break;
    case METRICS_OPT_PORT_FILE: m->port_file = optarg; break;
    default: return 0;
    }
    return 1;
}

int metrics_args_check(const metrics_args *m, const cli_args *a) {
    if (m->port < 0 && (m->host || m->port_file))
        return cli_error(a, "--metrics-host and --metrics-port-file need --metrics-port");
    return 0;
}

void metrics_args_write_port(const metrics_args *m, const char *cmd, int port) {
    if (!m->port_file) return;
    FILE *f = fopen(m->port_file, "w");
    if (f) fprintf(f, "%d\n", port), fclose(f);
    else sym_warn("%s: cannot write %s", cmd, m->port_file);
}
