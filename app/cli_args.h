/* The subcommands' option parsing: getopt_long over long options only, read
 * strictly. Each command lists its options in a `struct option` table (with
 * {"help", no_argument, NULL, 'h'}), calls cli_next until CLI_END, and
 * converts each value with the cli_* functions below.
 *
 * Strict means: an unknown or abbreviated option ("--shard" for "--shards"),
 * a missing or empty value, a value given to a flag ("--resend=1"), and an
 * argument that is not an option are refused; numbers are whole decimal
 * numbers (or, for cli_double, finite decimal numbers) with nothing before
 * or after them, within the option's range. Every refusal is printed on
 * stderr as "symserve CMD: --opt: ..." naming what is wrong; the command then
 * prints its usage and exits 2 (cli_usage). A value is "VALUE" or "=VALUE":
 * `--shards 3` and `--shards=3` are the same. */
#ifndef SYM_CLI_ARGS_H
#define SYM_CLI_ARGS_H

#include <getopt.h>
#include <stdint.h>

enum { CLI_END = -1, CLI_BAD = -2, CLI_HELP = -3 };

typedef struct {
    const char *cmd; /* "predict": messages begin "symserve predict: " */
    int argc;
    char **argv;
    const struct option *opts;
    char name[64]; /* the option cli_next last returned, in full: "--shards" */
} cli_args;

/* argv[0] is the subcommand's name; opts ends with a zeroed entry and holds
 * long options only, each with flag NULL and a val > 0. */
void cli_start(cli_args *a, const char *cmd, int argc, char **argv, const struct option *opts);

/* The next option's val, its value (if it takes one) in optarg; CLI_END
 * when every argument is read; CLI_BAD, the problem printed, otherwise. */
int cli_next(cli_args *a);

/* Prints "symserve CMD: " and the message on stderr; returns CLI_BAD. */
int cli_error(const cli_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value v of the current option (a->name) as a number in [lo, hi]:
 * 0, or CLI_BAD with "symserve CMD: --opt: 'v' is not a whole number in
 * lo..hi" printed. *out is written only on success. */
int cli_int(const cli_args *a, const char *v, long lo, long hi, int *out);
int cli_llong(const cli_args *a, const char *v, long long lo, long long hi, long long *out);
int cli_u64(const cli_args *a, const char *v, uint64_t *out); /* 0..2^64-1: seeds */
/* A finite number >= min (> min when min_excluded); no NaN, no inf, no
 * value that over- or underflows a double. */
int cli_double(const cli_args *a, const char *v, double min, int min_excluded, double *out);
/* v as one of the NULL-terminated names: its index in *out. */
int cli_choice(const cli_args *a, const char *v, const char *const *names, int *out);

/* What a command returns when parsing did not end in a run: CLI_HELP
 * prints usage on stdout and gives 0, CLI_BAD prints it on stderr and gives
 * 2 (the usage error). */
int cli_usage(int parsed, const char *usage);

/* --- --metrics-port, --metrics-host, --metrics-port-file ---------------------
 * The metrics endpoint's options, the same on every serving command (play,
 * serve): one table, one parser, one help text. */

/* getopt values: above any command's own and engine_args.h's */
enum { METRICS_OPT_PORT = 0x180, METRICS_OPT_HOST, METRICS_OPT_PORT_FILE };

/* Their entries, for a command's struct option array. */
#define METRICS_ARGS_OPTIONS                                                                                 \
    {"metrics-port", required_argument, NULL, METRICS_OPT_PORT},                                             \
        {"metrics-host", required_argument, NULL, METRICS_OPT_HOST},                                         \
        {"metrics-port-file", required_argument, NULL, METRICS_OPT_PORT_FILE}

/* Their part of a usage synopsis, and their help lines. */
#define METRICS_ARGS_SYNOPSIS "[--metrics-port P [--metrics-host ADDR] [--metrics-port-file FILE]]"
#define METRICS_ARGS_HELP                                                                                     \
    "  --metrics-port P: Prometheus text at http://ADDR:P/metrics, and /healthz (ok while serving); P 0: a\n" \
    "      free port, written to --metrics-port-file FILE; --metrics-host ADDR: the address it listens on\n"   \
    "      (default 0.0.0.0)\n"

typedef struct {
    int port;                     /* -1: no metrics endpoint */
    const char *host, *port_file; /* NULL: not given */
} metrics_args;

void metrics_args_init(metrics_args *m);

/* Option c (from cli_next) with its value in optarg: 1 when it is one of
 * these (*bad set when its value is not: a port outside 0..65535), 0 when
 * it is not. */
int metrics_args_take(metrics_args *m, const cli_args *a, int c, int *bad);

/* After the options: 0, or CLI_BAD (printed) for --metrics-host or
 * --metrics-port-file without --metrics-port. */
int metrics_args_check(const metrics_args *m, const cli_args *a);

/* The port the endpoint listens on, written to --metrics-port-file when
 * given ("PORT\n"); one it cannot write is warned of ("CMD: cannot write
 * FILE"), not fatal, as the endpoint serves anyway. */
void metrics_args_write_port(const metrics_args *m, const char *cmd, int port);

#endif
