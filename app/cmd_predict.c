/* symserve predict: runs a request CSV through the serving engine (router +
 * shard actors) and writes the predictions CSV in input order. Each symbol's
 * state advances in request order whatever the shard count; --migrate-every
 * and --rebalance-at move symbols between shards while the stream runs, and
 * must not change a single bit of the output. With --expected, prints
 * per-tower accuracy. */
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/engine.h"
#include "app/cli_args.h"
#include "app/engine_args.h"
#include "app/commands.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/requests_csv.h"
#include "config/config.h"

typedef struct {
    const char *model, *requests, *out, *expected, *precision, *config;
    int synthetic;     /* --synthetic given: its seed in seed */
    int size, backend; /* -1 (not given) or an index of sizes[], backends[] */
    uint64_t seed;
    int max_batch, shards, migrate_every, rebalance_at, rebalance_to;
    uint64_t migrate_seed;
    double tolerance; /* with --expected: fail when a max error exceeds it (<0: never) */
} predict_opts;

static const char usage_text[] =
    "usage: symserve predict (--model DIR | --synthetic SEED [--size small|full]) --requests FILE.csv\n"
    "                        --out FILE.csv [--backend cpu|cuda|auto] [--precision fp64|fp32|bf16|mixed]\n"
    "                        [--shards N] [--max-batch N] [--config FILE.json]\n"
    "                        [--migrate-every K [--migrate-seed S]] [--rebalance-at K:N]\n"
    "                        [--expected FILE.csv [--tolerance X]]\n"
    "  defaults: --backend auto (cuda when a GPU is present), --precision fp64 on cpu, mixed on cuda,\n"
    "            the rest from --config (docs/CONFIG.md); command-line options win over the config\n"
    "  --shards N: 1..256 shard actors; --max-batch N: 1..65536 rows a step (docs/CONFIG.md's ranges)\n"
    "  --migrate-every K: move a random symbol already seen to another shard after every K requests\n"
    "      (pseudo-random from --migrate-seed S, default 12345); --rebalance-at K:N: go to N shards\n"
    "      before request K (0-based)\n"
    "  --tolerance X (>= 0): exit 1 when a max abs error against --expected exceeds X\n";

enum { O_MODEL = 1, O_SYNTHETIC, O_SIZE, O_REQUESTS, O_OUT, O_EXPECTED, O_BACKEND, O_PRECISION, O_CONFIG,
       O_MAX_BATCH, O_SHARDS, O_MIGRATE_EVERY, O_MIGRATE_SEED, O_REBALANCE_AT, O_TOLERANCE };

static const struct option options[] = {
    {"model", required_argument, NULL, O_MODEL},
    {"synthetic", required_argument, NULL, O_SYNTHETIC},
    {"size", required_argument, NULL, O_SIZE},
    {"requests", required_argument, NULL, O_REQUESTS},
    {"out", required_argument, NULL, O_OUT},
    {"expected", required_argument, NULL, O_EXPECTED},
    {"backend", required_argument, NULL, O_BACKEND},
    {"precision", required_argument, NULL, O_PRECISION},
    {"config", required_argument, NULL, O_CONFIG},
    {"max-batch", required_argument, NULL, O_MAX_BATCH},
    {"shards", required_argument, NULL, O_SHARDS},
    {"migrate-every", required_argument, NULL, O_MIGRATE_EVERY},
    {"migrate-seed", required_argument, NULL, O_MIGRATE_SEED},
    {"rebalance-at", required_argument, NULL, O_REBALANCE_AT},
    {"tolerance", required_argument, NULL, O_TOLERANCE},
    {"help", no_argument, NULL, 'h'},
    {0},
};

static const char *const sizes[] = {"small", "full", NULL};
static const char *const backends[] = {"cpu", "cuda", "auto", NULL};
static const sym_backend_kind backend_kinds[] = {SYM_BACKEND_CPU, SYM_BACKEND_CUDA, SYM_BACKEND_AUTO};

/* K:N, K the request before which the engine goes to N shards. */
static int parse_rebalance(const cli_args *a, const char *v, predict_opts *o) {
    const char *colon = strchr(v, ':');
    char k[32];
    if (!colon || (size_t)(colon - v) >= sizeof k) return cli_error(a, "%s: '%.100s' is not K:N", a->name, v);
    memcpy(k, v, (size_t)(colon - v));
    k[colon - v] = 0;
    if (cli_int(a, k, 0, INT_MAX, &o->rebalance_at)) return CLI_BAD;
    return cli_int(a, colon + 1, 1, SYM_MAX_SHARDS, &o->rebalance_to);
}

/* 0: options read; CLI_HELP; CLI_BAD: the problem printed. */
static int parse(int argc, char **argv, predict_opts *o) {
    *o = (predict_opts){.size = -1, .backend = -1, .tolerance = -1, .migrate_seed = 12345};
    cli_args a;
    cli_start(&a, "predict", argc, argv, options);
    int c, bad = 0;
    while (!bad && (c = cli_next(&a)) != CLI_END) {
        switch (c) {
        case O_MODEL: o->model = optarg; break;
        case O_SYNTHETIC:
            o->synthetic = 1;
            bad = cli_u64(&a, optarg, &o->seed);
            break;
        case O_SIZE: bad = cli_choice(&a, optarg, sizes, &o->size); break;
        case O_REQUESTS: o->requests = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_EXPECTED: o->expected = optarg; break;
        case O_BACKEND: bad = cli_choice(&a, optarg, backends, &o->backend); break;
        case O_PRECISION: o->precision = optarg; break;
        case O_CONFIG: o->config = optarg; break;
        case O_MAX_BATCH: bad = cli_int(&a, optarg, 1, 65536, &o->max_batch); break;
        case O_SHARDS: bad = cli_int(&a, optarg, 1, SYM_MAX_SHARDS, &o->shards); break;
        case O_MIGRATE_EVERY: bad = cli_int(&a, optarg, 1, 1 << 30, &o->migrate_every); break;
        case O_MIGRATE_SEED: bad = cli_u64(&a, optarg, &o->migrate_seed); break;
        case O_REBALANCE_AT: bad = parse_rebalance(&a, optarg, o); break;
        case O_TOLERANCE: bad = cli_double(&a, optarg, 0, 0, &o->tolerance); break;
        case 'h': return CLI_HELP;
        default: return CLI_BAD;
        }
    }
    if (bad) return CLI_BAD;
    if (!o->model == !o->synthetic) return cli_error(&a, "give one of --model DIR and --synthetic SEED");
    if (o->size >= 0 && o->model) return cli_error(&a, "--size goes with --synthetic, not --model");
    if (!o->requests) return cli_error(&a, "--requests FILE.csv is required");
    if (!o->out) return cli_error(&a, "--out FILE.csv is required");
    return 0;
}

/* The config: --config over the defaults, then the command line over both. */
static int build_config(const predict_opts *o, int n_symbols, sym_config *c, sym_err *e) {
    sym_config_defaults(c);
    if (o->config && sym_config_load(c, o->config, e)) return -1;
    if (!o->config) c->max_symbols = n_symbols > 0 ? n_symbols : 1; /* no slot more than the file needs */
    if (o->model) {
        if (strlen(o->model) >= sizeof c->model_dir) return sym_fail(e, "model path too long");
        strcpy(c->model_dir, o->model);
    } else if (o->synthetic) {
        c->model_dir[0] = 0;
        c->synthetic_seed = o->seed;
        if (o->size >= 0) c->synthetic_full = !strcmp(sizes[o->size], "full");
    }
    if (o->backend >= 0) c->backend = backend_kinds[o->backend];
    if (o->precision && sym_config_set_precision(c, o->precision, e)) return -1;
    if (o->shards) c->shard_count = o->shards;
    if (o->max_batch) c->max_batch = o->max_batch;
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int count_symbols(const sym_request_file *rf) {
    const char **names = malloc((size_t)(rf->n ? rf->n : 1) * sizeof *names);
    if (!names) return rf->n;
    for (int i = 0; i < rf->n; i++) names[i] = rf->rows[i].symbol;
    qsort(names, (size_t)rf->n, sizeof *names, cmp);
    int n = 0;
    for (int i = 0; i < rf->n; i++) n += !i || strcmp(names[i], names[i - 1]);
    free(names);
    return n;
}

typedef struct {
    sym_engine *g;
    _Atomic int n; /* lowered by the submitter when it stops early */
    double *pred;
    char *got;
    int received, failed, duplicates;
    char first_error[200];
} collector;

static void *collect(void *arg) {
    collector *c = arg;
    sym_prediction p[256];
    while (c->received < c->n) {
        int k = sym_engine_poll(c->g, p, 256, 200);
        for (int i = 0; i < k; i++) {
            uint64_t row = p[i].uid;
            c->received++;
            if (row >= (uint64_t)c->n || c->got[row]) {
                c->duplicates++;
                continue;
            }
            c->got[row] = 1;
            if (p[i].status) {
                if (!c->failed++) snprintf(c->first_error, sizeof c->first_error, "%.159s", p[i].error);
                continue;
            }
            memcpy(c->pred + row * 4, p[i].pred, sizeof p[i].pred);
        }
    }
    return NULL;
}

/* Prints per-tower errors; returns the largest max abs error. */
static double report_accuracy(const sym_request_file *rf, const double *pred, const sym_prediction_file *exp, int *missing) {
    double mx[4] = {0}, mean[4] = {0};
    int matched = 0, j = 0;
    *missing = 0;
    for (int i = 0; i < rf->n; i++) {
        /* expected rows usually come in the same order; fall back to a search */
        if (!(j < exp->n && exp->rows[j].uid == rf->rows[i].uid)) {
            for (j = 0; j < exp->n && exp->rows[j].uid != rf->rows[i].uid; j++) {
            }
        }
        if (j == exp->n) {
            (*missing)++;
            j = 0;
            continue;
        }
        matched++;
        for (int t = 0; t < 4; t++) {
            double d = fabs(pred[(size_t)i * 4 + t] - exp->rows[j].pred[t]);
            if (!(d <= mx[t])) mx[t] = isnan(d) ? INFINITY : d;
            mean[t] += d;
        }
        j++;
    }
    for (int t = 0; t < 4; t++) mean[t] /= matched ? matched : 1;
    printf("accuracy vs expected (%d rows, %d without an expected value): [xLSTM, Mamba2, RetNet, Hawk]\n", matched, *missing);
    printf("  max abs err  %.3g %.3g %.3g %.3g\n", mx[0], mx[1], mx[2], mx[3]);
    printf("  mean abs err %.3g %.3g %.3g %.3g\n", mean[0], mean[1], mean[2], mean[3]);
    return fmax(fmax(mx[0], mx[1]), fmax(mx[2], mx[3]));
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Moves a pseudo-random symbol already seen (rows 0..upto) to another shard. */
static int migrate_one(sym_engine *g, const sym_request_file *rf, int upto, uint64_t *rng, int *moves, sym_err *e) {
    int n = sym_engine_shard_count(g);
    if (n < 2) return 0;
    const char *sym = rf->rows[rng_next(rng) % (uint64_t)(upto + 1)].symbol;
    int cur = sym_engine_symbol_shard(g, sym);
    int to = cur < 0 ? (int)(rng_next(rng) % (uint64_t)n) : (cur + 1 + (int)(rng_next(rng) % (uint64_t)(n - 1))) % n;
    if (sym_engine_migrate(g, sym, to, e)) return -1;
    (*moves)++;
    return 0;
}

int sym_cmd_predict(int argc, char **argv) {
    predict_opts o;
    int parsed = parse(argc, argv, &o);
    if (parsed) return cli_usage(parsed, usage_text);
    sym_err e = {{0}};
    int rc = 1;
    sym_request_file rf = {0};
    sym_engine *g = NULL;
    collector col = {0};
    sym_config cfg;
    if (sym_requests_load(o.requests, 0, &rf, &e)) goto out;
    if (build_config(&o, count_symbols(&rf), &cfg, &e)) goto out;
    sym_log_set_level(cfg.log_level);
    if (!(g = engine_args_engine(&cfg, &e))) goto out;
    int F = sym_engine_model(g)->features;
    if (rf.n && rf.n_features != F) {
        sym_fail(&e, "%s has %d features per row, the model takes %d", o.requests, rf.n_features, F);
        goto out;
    }
    col.g = g;
    atomic_init(&col.n, rf.n);
    col.pred = calloc((size_t)(rf.n ? rf.n : 1) * 4, sizeof *col.pred);
    col.got = calloc((size_t)(rf.n ? rf.n : 1), 1);
    if (!col.pred || !col.got) {
        sym_fail(&e, "out of memory");
        goto out;
    }
    pthread_t poller;
    if (pthread_create(&poller, NULL, collect, &col)) {
        sym_fail(&e, "cannot start the collector thread");
        goto out;
    }
    double t0 = sym_now_s();
    uint64_t rng = o.migrate_seed;
    int moves = 0, submitted = 0, ok = 1;
    static sym_request req; /* 1 KB: keep it off the stack */
    for (int i = 0; i < rf.n && ok; i++) {
        if (o.rebalance_to && i == o.rebalance_at && sym_engine_rebalance(g, o.rebalance_to, &e)) ok = 0;
        memset(&req, 0, offsetof(sym_request, features));
        req.uid = (uint64_t)i; /* the row: predictions come back in any order */
        snprintf(req.symbol, sizeof req.symbol, "%s", rf.rows[i].symbol);
        req.n_features = F;
        memcpy(req.features, rf.rows[i].features, (size_t)F * sizeof(float));
        if (ok && sym_engine_submit(g, &req, &e)) ok = 0;
        if (ok) submitted++;
        if (ok && o.migrate_every && (i + 1) % o.migrate_every == 0 && migrate_one(g, &rf, i, &rng, &moves, &e)) ok = 0;
    }
    /* whatever happened, collect what was submitted before stopping */
    sym_engine_drain(g);
    col.n = submitted; /* the collector stops once it has them all */
    pthread_join(poller, NULL);
    double secs = sym_now_s() - t0;
    if (!ok) goto out;
    if (col.failed) {
        sym_fail(&e, "%d requests failed; first: %s", col.failed, col.first_error);
        goto out;
    }
    if (col.duplicates || col.received != rf.n) {
        sym_fail(&e, "engine returned %d predictions for %d requests (%d duplicates)", col.received, rf.n, col.duplicates);
        goto out;
    }
    FILE *f = fopen(o.out, "w");
    if (!f) {
        sym_fail(&e, "cannot create %s", o.out);
        goto out;
    }
    sym_predictions_write_header(f);
    for (int i = 0; i < rf.n; i++) sym_predictions_write_row(f, rf.rows[i].uid, col.pred + (size_t)i * 4);
    if (fclose(f)) {
        sym_fail(&e, "write error on %s", o.out);
        goto out;
    }
    printf("%d requests, %d shards, %d migrations in %.3f s (%.0f req/s); predictions in %s\n", rf.n,
           sym_engine_shard_count(g), moves, secs, rf.n / (secs > 0 ? secs : 1e-9), o.out);
    rc = 0;
    if (o.expected) {
        sym_prediction_file exp;
        if (sym_predictions_load(o.expected, &exp, &e)) {
            rc = 1;
            goto out;
        }
        int missing;
        double worst = report_accuracy(&rf, col.pred, &exp, &missing);
        sym_predictions_free(&exp);
        if (missing) {
            sym_fail(&e, "%d requests have no expected value", missing);
            rc = 1;
        } else if (o.tolerance >= 0 && !(worst <= o.tolerance)) {
            sym_fail(&e, "max abs error %.3g exceeds the tolerance %g", worst, o.tolerance);
            rc = 1;
        }
    }
out:
    sym_engine_destroy(g);
    free(col.pred), free(col.got);
    sym_requests_free(&rf);
    if (rc) fprintf(stderr, "symserve predict: %s\n", e.msg);
    return rc;
}
