/* The accuracy cost of storing each tower's state in less than fp64
 * (kernels/state_precision.h), against what bf16 weights and fp32
 * arithmetic cost, on the CPU reference. Every variant steps the same
 * request stream from a fresh state; its outputs are compared with the fp64
 * run (fp64 arithmetic, weights as given, state unrounded), tower by tower:
 * max and mean abs error over the steps of each window (step 1, 2-10,
 * 11-100, ...), over every symbol.
 *
 *   bench_state_precision MODEL STEPS [--symbols N] [--variants A,B,..] [--csv FILE] [--seed S]
 *
 * MODEL: a model folder (tests/data/golden_small) or "small"/"full" for
 * MODEL.md's synthetic weights (seed 1). STEPS: steps of each symbol.
 * --symbols: symbols stepped in each step (default 2). Features are
 * standard normal float32 (what the golden requests hold), drawn from a
 * counter-based hash of (seed, step, symbol, feature), so every variant
 * sees the same stream. --csv writes every variant's error per tower over
 * bins of about a tenth of a decade of steps (for a plot against the step).
 *
 * Variants (--variants takes a comma list of these names; default all):
 *   state-F[-all]     fp64 arithmetic, each tower's state stored in format F
 *                     (fp32, bf16, bf16-sr, fp16, fp16-sr): the recurrence
 *                     matrices, or (-all) every element of the state
 *   arith-fp32        the CPU fp32 path (fp32 arithmetic and state)
 *   arith-fp32+state-F  the same with its matrices stored in format F
 *   weights-bf16      fp64 arithmetic on the weights rounded to bf16 (what
 *                     precision "bf16" is on the CPU; "mixed" is it for
 *                     every tower but RetNet, which then has no error here)
 *   weights-bf16+state-F  both
 * Variants on bf16 weights run after the others (the weights are rounded in
 * place: one copy of them, which matters at full size). Variants run side by
 * side on the cores, each backend on one thread when there are enough
 * variants to go round. Tables are printed at each decade of steps as the
 * run goes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fanout.h"
#include "kernels/backend.h"
#include "kernels/state_precision.h"
#include "kernels/weights.h"

typedef struct {
    char name[64];
    sym_precision arith; /* FP64 or FP32 */
    int bf16_weights;
    sym_state_precision sp;
    sym_backend *b;
    double *out;    /* [steps][symbols][4] */
    double busy_s;  /* time in its steps */
} variant;

#define MAX_VARIANTS 32
#define MAX_WINDOWS 12

static const char *const tower_names[SYM_TOWERS] = {"xLSTM", "Mamba2", "RetNet", "Hawk"};

typedef struct {
    double max[SYM_TOWERS], sum[SYM_TOWERS];
    long n;
} acc;

static void acc_add(acc *a, const double *err) {
    for (int t = 0; t < SYM_TOWERS; t++) {
        if (err[t] > a->max[t] || isnan(err[t])) a->max[t] = err[t];
        a->sum[t] += err[t];
    }
    a->n++;
}

/* the run shared with the worker threads */
typedef struct {
    variant *v[MAX_VARIANTS];
    int nv;
    int symbols, F;
    long from, to; /* steps [from, to) of this chunk, 0-based */
    uint64_t seed;
    int32_t *slots;
    sym_fanout pool;
    int failed;
    char err[640];
} runner;

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Standard normal features of (step, symbol): Box-Muller on hashed uniforms. */
static void features(uint64_t seed, long step, int symbol, int F, float *x) {
    uint64_t key = mix(seed ^ mix((uint64_t)step * 0x9e3779b97f4a7c15ull + (uint64_t)symbol));
    for (int f = 0; f < F; f += 2) {
        uint64_t a = mix(key + 2 * (uint64_t)f + 1), b = mix(key + 2 * (uint64_t)f + 2);
        double u1 = ((double)(a >> 11) + 0.5) * 0x1.0p-53, u2 = (double)(b >> 11) * 0x1.0p-53;
        double r = sqrt(-2 * log(u1));
        x[f] = (float)(r * cos(2 * M_PI * u2));
        if (f + 1 < F) x[f + 1] = (float)(r * sin(2 * M_PI * u2));
    }
}

static void run_variant(runner *r, variant *v) {
    float *x = malloc((size_t)r->symbols * (size_t)r->F * sizeof *x);
    if (!x) {
        r->failed = 1;
        return;
    }
    sym_err e = {{0}};
    double t0 = sym_now_s();
    for (long s = r->from; s < r->to; s++) {
        for (int k = 0; k < r->symbols; k++) features(r->seed, s, k, r->F, x + (size_t)k * r->F);
        if (sym_backend_step(v->b, r->symbols, r->slots, x, v->out + (size_t)s * r->symbols * SYM_TOWERS, &e)) {
            snprintf(r->err, sizeof r->err, "%s: %s", v->name, e.msg);
            r->failed = 1;
            break;
        }
    }
    v->busy_s += sym_now_s() - t0;
    free(x);
}

static void run_job(void *ctx, int job) {
    runner *r = ctx;
    for (int i = job; i < r->nv; i += r->pool.n_jobs) run_variant(r, r->v[i]);
}

/* Window of a 1-based step: 0 for step 1, k for 10^(k-1) < step <= 10^k. */
static int window_of(long step) {
    int w = 0;
    for (long hi = 1; step > hi && w < MAX_WINDOWS - 1; hi *= 10) w++;
    return w;
}
static long window_lo(int w) {
    long lo = 1;
    for (int i = 1; i < w; i++) lo *= 10;
    return w == 0 ? 1 : lo + 1;
}
static long window_hi(int w) {
    long hi = 1;
    for (int i = 0; i < w; i++) hi *= 10;
    return hi;
}

static int parse_variant(const char *name, variant *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->arith = SYM_PREC_FP64;
    sym_state_precision_native(&v->sp);
    const char *p = name;
    if (!strncmp(p, "weights-bf16", 12)) {
        v->bf16_weights = 1;
        p += 12;
    } else if (!strncmp(p, "arith-fp32", 10)) {
        v->arith = SYM_PREC_FP32;
        p += 10;
    } else if (!strcmp(p, "fp64")) {
        return 0;
    }
    if (*p == '+') p++;
    if (!*p) return p != name ? 0 : -1;
    if (strncmp(p, "state-", 6)) return -1;
    p += 6;
    char fmt[32];
    snprintf(fmt, sizeof fmt, "%s", p);
    size_t n = strlen(fmt);
    if (n > 4 && !strcmp(fmt + n - 4, "-all")) {
        fmt[n - 4] = 0;
        v->sp.all_parts = 1;
    }
    sym_state_format f;
    if (sym_state_format_parse(fmt, &f)) return -1;
    for (int t = 0; t < SYM_TOWERS; t++) v->sp.tower[t] = f;
    return 0;
}

static const char *const default_variants[] = {
    "state-fp32",    "state-bf16",        "state-bf16-sr",     "state-fp16",
    "state-fp16-sr", "state-bf16-all",    "state-bf16-sr-all", "state-fp16-all",
    "state-fp16-sr-all", "arith-fp32",    "arith-fp32+state-bf16", "arith-fp32+state-bf16-sr",
    "arith-fp32+state-fp16-sr", "weights-bf16", "weights-bf16+state-bf16-sr", NULL};

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s MODEL STEPS [--symbols N] [--variants A,B,...] [--csv FILE] [--seed S]\n"
            "  MODEL: a model folder, or small|full (synthetic, seed 1)\n",
            argv0);
}

typedef struct {
    acc win[MAX_VARIANTS][MAX_WINDOWS];
    acc all[MAX_VARIANTS];
    acc ref_mag[MAX_WINDOWS]; /* |reference output| */
    long done[MAX_VARIANTS];  /* steps compared so far */
    int *bin_of;              /* csv bin of each 0-based step */
    int n_bins;
    long *bin_lo, *bin_hi;
    acc *bins; /* [variant][bin] */
} stats;

/* Compares steps [from, to) of variant i with the reference (variant 0). */
static void compare(stats *st, variant **v, int i, int symbols, long from, long to) {
    for (long s = from; s < to; s++) {
        int w = window_of(s + 1);
        for (int k = 0; k < symbols; k++) {
            const double *ref = v[0]->out + ((size_t)s * symbols + k) * SYM_TOWERS;
            const double *got = v[i]->out + ((size_t)s * symbols + k) * SYM_TOWERS;
            double err[SYM_TOWERS], mag[SYM_TOWERS];
            for (int t = 0; t < SYM_TOWERS; t++) {
                err[t] = fabs(got[t] - ref[t]);
                mag[t] = fabs(ref[t]);
            }
            acc_add(&st->win[i][w], err);
            acc_add(&st->all[i], err);
            if (st->bins) acc_add(&st->bins[(size_t)i * st->n_bins + st->bin_of[s]], err);
            if (i == 0) acc_add(&st->ref_mag[w], mag);
        }
    }
    st->done[i] = to;
}

/* The windows so far of the variants of one pass (0: weights as given, with
 * the reference's output magnitude; 1: bf16 weights). */
static void print_tables(const stats *st, variant **v, int nv, long upto, int pass) {
    printf("\n# after %ld steps: abs error against fp64 per tower [xLSTM Mamba2 RetNet Hawk]\n", upto);
    printf("%-28s %-13s %10s %10s %10s %10s | %10s %10s %10s %10s\n", "variant", "steps", "max_x", "max_m", "max_r",
           "max_h", "mean_x", "mean_m", "mean_r", "mean_h");
    int nw = window_of(upto) + 1;
    for (int w = 0; w < nw && pass == 0; w++) {
        const acc *a = &st->ref_mag[w];
        if (!a->n) continue;
        char range[48];
        snprintf(range, sizeof range, "%ld-%ld", window_lo(w), window_hi(w) < upto ? window_hi(w) : upto);
        printf("%-28s %-13s %10.3g %10.3g %10.3g %10.3g | %10.3g %10.3g %10.3g %10.3g\n", "|fp64 output|", range,
               a->max[0], a->max[1], a->max[2], a->max[3], a->sum[0] / a->n, a->sum[1] / a->n, a->sum[2] / a->n,
               a->sum[3] / a->n);
    }
    for (int i = 1; i < nv; i++) {
        if (v[i]->bf16_weights != pass) continue;
        for (int w = 0; w < nw; w++) {
            const acc *a = &st->win[i][w];
            if (!a->n) continue;
            char range[48];
            snprintf(range, sizeof range, "%ld-%ld", window_lo(w), window_hi(w) < upto ? window_hi(w) : upto);
            printf("%-28s %-13s %10.3g %10.3g %10.3g %10.3g | %10.3g %10.3g %10.3g %10.3g\n", v[i]->name, range,
                   a->max[0], a->max[1], a->max[2], a->max[3], a->sum[0] / a->n, a->sum[1] / a->n, a->sum[2] / a->n,
                   a->sum[3] / a->n);
        }
    }
    fflush(stdout);
}

static void print_summary(const stats *st, variant **v, int nv, long steps, int symbols) {
    int last = window_of(steps);
    printf("\n# summary over %ld steps x %d symbols: max abs error (all steps) | mean abs error (all steps) | max abs "
           "error over steps %ld-%ld\n",
           steps, symbols, window_lo(last), steps);
    printf("%-28s %9s %9s %9s %9s | %9s %9s %9s %9s | %9s %9s %9s %9s | %8s\n", "variant", "max_x", "max_m", "max_r",
           "max_h", "mean_x", "mean_m", "mean_r", "mean_h", "last_x", "last_m", "last_r", "last_h", "ms/step");
    for (int i = 0; i < nv; i++) {
        const acc *a = &st->all[i], *l = &st->win[i][last];
        if (i > 0 && !a->n) continue;
        double ms = v[i]->busy_s * 1e3 / (double)steps;
        if (i == 0) {
            printf("%-28s %9s %9s %9s %9s | %9s %9s %9s %9s | %9s %9s %9s %9s | %8.3f\n", v[i]->name, "-", "-", "-", "-",
                   "-", "-", "-", "-", "-", "-", "-", "-", ms);
            continue;
        }
        printf("%-28s %9.2g %9.2g %9.2g %9.2g | %9.2g %9.2g %9.2g %9.2g | %9.2g %9.2g %9.2g %9.2g | %8.3f\n", v[i]->name,
               a->max[0], a->max[1], a->max[2], a->max[3], a->sum[0] / a->n, a->sum[1] / a->n, a->sum[2] / a->n,
               a->sum[3] / a->n, l->max[0], l->max[1], l->max[2], l->max[3], ms);
    }
    fflush(stdout);
}

static int write_csv(const char *path, const stats *st, variant **v, int nv) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "variant,tower,step_lo,step_hi,max_abs_err,mean_abs_err\n");
    for (int i = 1; i < nv; i++)
        for (int b = 0; b < st->n_bins; b++) {
            const acc *a = &st->bins[(size_t)i * st->n_bins + b];
            if (!a->n) continue;
            for (int t = 0; t < SYM_TOWERS; t++)
                fprintf(f, "%s,%s,%ld,%ld,%.6g,%.6g\n", v[i]->name, tower_names[t], st->bin_lo[b], st->bin_hi[b],
                        a->max[t], a->sum[t] / a->n);
        }
    return fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 3) return usage(argv[0]), 2;
    const char *model = argv[1];
    char *end;
    long steps = strtol(argv[2], &end, 10);
    if (*end || steps < 1 || steps > 100000000) return fprintf(stderr, "STEPS: %s is not in 1..1e8\n", argv[2]), 2;
    int symbols = 2;
    const char *csv = NULL, *list = NULL;
    uint64_t seed = 7;
    for (int i = 3; i < argc; i++) {
        if (i + 1 >= argc) return usage(argv[0]), 2;
        if (!strcmp(argv[i], "--symbols")) {
            symbols = (int)strtol(argv[++i], &end, 10);
            if (*end || symbols < 1 || symbols > 1024) return fprintf(stderr, "--symbols: 1..1024\n"), 2;
        } else if (!strcmp(argv[i], "--variants")) {
            list = argv[++i];
        } else if (!strcmp(argv[i], "--csv")) {
            csv = argv[++i];
        } else if (!strcmp(argv[i], "--seed")) {
            seed = strtoull(argv[++i], &end, 10);
            if (*end) return fprintf(stderr, "--seed: an integer\n"), 2;
        } else {
            return usage(argv[0]), 2;
        }
    }

    static variant vs[MAX_VARIANTS];
    variant *v[MAX_VARIANTS];
    int nv = 0;
    parse_variant("fp64", &vs[nv]);
    v[nv] = &vs[nv];
    nv++;
    if (list) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", list);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            if (nv == MAX_VARIANTS) return fprintf(stderr, "more than %d variants\n", MAX_VARIANTS - 1), 2;
            if (parse_variant(tok, &vs[nv])) return fprintf(stderr, "unknown variant '%s'\n", tok), 2;
            v[nv] = &vs[nv];
            nv++;
        }
    } else {
        for (const char *const *n = default_variants; *n; n++, nv++) {
            parse_variant(*n, &vs[nv]);
            v[nv] = &vs[nv];
        }
    }

    sym_err e = {{0}};
    sym_weights w;
    double t0 = sym_now_s();
    int loaded = strcmp(model, "small") && strcmp(model, "full");
    sym_model_config synth = !strcmp(model, "full") ? sym_model_config_full() : sym_model_config_small();
    if (loaded ? sym_weights_load_dir(&w, model, &e) : sym_weights_synthetic(&w, &synth, 1, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    const sym_model_config *cfg = &w.cfg;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (cores > SYM_FANOUT_MAX) cores = SYM_FANOUT_MAX;
    printf("# bench_state_precision %s: H=%d P=%d L=%d NH=%d F=%d (weights ready in %.1f s), %ld steps x %d symbols, "
           "feature seed %llu, %ld cores\n",
           model, cfg->hidden, cfg->proj, cfg->depth, cfg->heads, cfg->features, sym_now_s() - t0, steps, symbols,
           (unsigned long long)seed, cores);
    {
        sym_state_layout L;
        if (sym_state_layout_init(&L, cfg, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        sym_state_precision m, a;
        sym_state_precision_native(&m);
        for (int t = 0; t < SYM_TOWERS; t++) m.tower[t] = SYM_STATE_BF16;
        a = m;
        a.all_parts = 1;
        printf("# state elements per symbol [xLSTM Mamba2 RetNet Hawk]: matrices");
        for (int t = 0; t < SYM_TOWERS; t++) printf(" %zu", sym_state_rounded_elems(&m, &L, t));
        printf(", all");
        for (int t = 0; t < SYM_TOWERS; t++) printf(" %zu", sym_state_rounded_elems(&a, &L, t));
        printf(" (slot: %zu)\n", L.numel);
        sym_state_layout_free(&L);
    }

    stats st;
    memset(&st, 0, sizeof st);
    if (csv) {
        /* bins of about a tenth of a decade: [lo, hi] with hi = round(10^(k/10)) */
        st.bin_of = malloc((size_t)steps * sizeof *st.bin_of);
        st.bin_lo = malloc(200 * sizeof *st.bin_lo);
        st.bin_hi = malloc(200 * sizeof *st.bin_hi);
        long lo = 1;
        for (int k = 0; lo <= steps && st.n_bins < 200; k++) {
            long hi = (long)llround(pow(10.0, k / 10.0));
            if (hi < lo) continue;
            if (hi > steps) hi = steps;
            st.bin_lo[st.n_bins] = lo;
            st.bin_hi[st.n_bins] = hi;
            for (long s = lo; s <= hi; s++) st.bin_of[s - 1] = st.n_bins;
            st.n_bins++;
            lo = hi + 1;
        }
        st.bins = calloc((size_t)nv * (size_t)st.n_bins, sizeof *st.bins);
    }

    runner r;
    memset(&r, 0, sizeof r);
    r.symbols = symbols;
    r.F = cfg->features;
    r.seed = seed;
    r.slots = malloc((size_t)symbols * sizeof *r.slots);
    for (int k = 0; k < symbols; k++) r.slots[k] = k;

    /* pass 0: the weights as given; pass 1: the weights rounded to bf16 */
    for (int pass = 0; pass < 2; pass++) {
        r.nv = 0;
        for (int i = 0; i < nv; i++)
            if (v[i]->bf16_weights == pass) r.v[r.nv++] = v[i];
        if (!r.nv) continue;
        if (pass == 1) {
            sym_weights_round_bf16(&w, 15);
            printf("\n# weights rounded to bf16 (every tower) for the variants on bf16 weights\n");
        }
        int jobs = r.nv < cores ? r.nv : (int)cores;
        int threads = (int)(cores / jobs);
        if (threads > SYM_TOWERS) threads = SYM_TOWERS;
        for (int i = 0; i < r.nv; i++) {
            variant *x = r.v[i];
            x->b = sym_cpu_backend_create(&w, x->arith, symbols, &e);
            if (!x->b || sym_cpu_backend_set_threads(x->b, threads, &e) ||
                sym_cpu_backend_set_state_precision(x->b, &x->sp, &e))
                return fprintf(stderr, "%s: %s\n", x->name, e.msg), 1;
            x->out = malloc((size_t)steps * symbols * SYM_TOWERS * sizeof *x->out);
            if (!x->out) return fprintf(stderr, "out of memory for %ld steps of outputs\n", steps), 1;
        }
        if (sym_fanout_init(&r.pool, jobs, run_job, &r, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
        long from = 0;
        double pass_t0 = sym_now_s();
        while (from < steps) {
            /* chunks end at each decade (a table) and at least every 10,000 steps */
            long to = 1;
            while (to <= from) to *= 10;
            if (to > from + 10000) to = from + 10000;
            if (to > steps) to = steps;
            r.from = from;
            r.to = to;
            sym_fanout_run(&r.pool);
            if (r.failed) return fprintf(stderr, "step failed: %s\n", r.err), 1;
            for (int i = 0; i < nv; i++)
                if (v[i]->bf16_weights == pass) compare(&st, v, i, symbols, from, to);
            from = to;
            long dec = 1;
            while (dec < to) dec *= 10;
            if (dec == to || to == steps) {
                fprintf(stderr, "# pass %d: %ld steps in %.1f s\n", pass, to, sym_now_s() - pass_t0);
                print_tables(&st, v, nv, to, pass);
            }
        }
        sym_fanout_destroy(&r.pool);
        for (int i = 0; i < r.nv; i++) {
            sym_backend_destroy(r.v[i]->b);
            r.v[i]->b = NULL;
        }
    }
    print_summary(&st, v, nv, steps, symbols);
    if (csv && write_csv(csv, &st, v, nv)) return fprintf(stderr, "cannot write %s\n", csv), 1;
    for (int i = 0; i < nv; i++) free(v[i]->out);
    free(r.slots);
    free(st.bin_of), free(st.bin_lo), free(st.bin_hi), free(st.bins);
    sym_weights_free(&w);
    return 0;
}
