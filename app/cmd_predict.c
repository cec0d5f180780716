/* symserve predict: runs a request CSV through one backend and writes the
 * predictions CSV in input order. Each step takes at most one request per
 * symbol (its oldest waiting one), so every symbol's state advances in
 * request order; with --expected, prints per-tower accuracy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/commands.h"
#include "common/clock.h"
#include "common/requests_csv.h"
#include "kernels/backend.h"
#include "kernels/cuda_backend.h"
#include "kernels/weights.h"

typedef struct {
    const char *model, *requests, *out, *expected, *backend, *precision, *size;
    long long seed;
    int max_batch;
    double tolerance; /* with --expected: fail when a max error exceeds it (<0: never) */
} predict_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: symserve predict (--model DIR | --synthetic SEED [--size small|full]) --requests FILE.csv\n"
            "                        --out FILE.csv [--backend cpu|cuda|auto] [--precision fp64|fp32|bf16|mixed]\n"
            "                        [--max-batch N] [--expected FILE.csv [--tolerance X]]\n"
            "  defaults: --backend auto (cuda when a GPU is present), --precision fp64 on cpu, mixed on cuda\n");
    return 2;
}

static int parse(int argc, char **argv, predict_opts *o) {
    *o = (predict_opts){.backend = "auto", .size = "small", .seed = -1, .max_batch = 128, .tolerance = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--synthetic")) o->seed = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--size")) o->size = v;
        else if (!strcmp(a, "--requests")) o->requests = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--expected")) o->expected = v;
        else if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--precision")) o->precision = v;
        else if (!strcmp(a, "--max-batch")) o->max_batch = atoi(v);
        else if (!strcmp(a, "--tolerance")) o->tolerance = atof(v);
        else return -1;
        i++;
    }
    if (!o->requests || !o->out || (!o->model == (o->seed < 0)) || o->max_batch < 1) return -1;
    if (strcmp(o->size, "small") && strcmp(o->size, "full")) return -1;
    if (strcmp(o->backend, "cpu") && strcmp(o->backend, "cuda") && strcmp(o->backend, "auto")) return -1;
    return 0;
}

/* Builds the backend the options ask for; returns NULL with e set. */
static sym_backend *make_backend(const predict_opts *o, sym_weights *w, int n_slots, sym_err *e) {
    int cuda = !strcmp(o->backend, "cuda") || (!strcmp(o->backend, "auto") && sym_cuda_device_count() > 0);
    const char *prec = o->precision ? o->precision : cuda ? "mixed" : "fp64";
    if (!cuda) {
        if (!strcmp(prec, "fp64")) return sym_cpu_backend_create(w, SYM_PREC_FP64, n_slots, e);
        if (!strcmp(prec, "fp32")) return sym_cpu_backend_create(w, SYM_PREC_FP32, n_slots, e);
        if (!strcmp(prec, "bf16") || !strcmp(prec, "mixed")) {
            /* the CPU reference of bf16 storage: fp64 arithmetic on rounded weights */
            sym_weights_round_bf16(w, !strcmp(prec, "bf16") ? 0xf : 0xf & ~(1 << SYM_TOWER_RETNET));
            return sym_cpu_backend_create(w, SYM_PREC_FP64, n_slots, e);
        }
        sym_fail(e, "unknown precision '%s' (fp64, fp32, bf16, mixed)", prec);
        return NULL;
    }
    sym_precision tp[SYM_TOWERS];
    for (int t = 0; t < SYM_TOWERS; t++) {
        if (!strcmp(prec, "fp32")) tp[t] = SYM_PREC_FP32;
        else if (!strcmp(prec, "bf16")) tp[t] = SYM_PREC_BF16;
        else if (!strcmp(prec, "mixed")) tp[t] = t == SYM_TOWER_RETNET ? SYM_PREC_FP32 : SYM_PREC_BF16;
        else {
            sym_fail(e, "precision '%s' is not available on cuda (fp32, bf16, mixed)", prec);
            return NULL;
        }
    }
    return sym_cuda_backend_create(w, tp, 0, n_slots, o->max_batch, e);
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

int sym_cmd_predict(int argc, char **argv) {
    predict_opts o;
    if (argc > 1 && !strcmp(argv[1], "--help")) return usage(), 0;
    if (parse(argc, argv, &o)) return usage();
    sym_err e = {{0}};
    sym_weights w;
    int rc = 1;
    if (o.model) {
        if (sym_weights_load_dir(&w, o.model, &e)) goto fail0;
    } else {
        sym_model_config cfg = strcmp(o.size, "full") ? sym_model_config_small() : sym_model_config_full();
        if (sym_weights_synthetic(&w, &cfg, (uint64_t)o.seed, &e)) goto fail0;
    }
    sym_request_file rf;
    if (sym_requests_load(o.requests, w.cfg.features, &rf, &e)) goto fail1;
    /* symbols -> slots in order of first appearance */
    int *slot_of = malloc((size_t)(rf.n ? rf.n : 1) * sizeof *slot_of), n_sym = 0;
    char(*names)[SYM_CSV_SYMBOL_MAX + 1] = malloc((size_t)(rf.n ? rf.n : 1) * sizeof *names);
    double *pred = malloc((size_t)(rf.n ? rf.n : 1) * 4 * sizeof *pred);
    if (!slot_of || !names || !pred) {
        sym_fail(&e, "out of memory");
        goto fail2;
    }
    for (int i = 0; i < rf.n; i++) {
        int s = 0;
        while (s < n_sym && strcmp(names[s], rf.rows[i].symbol)) s++;
        if (s == n_sym) strcpy(names[n_sym++], rf.rows[i].symbol);
        slot_of[i] = s;
    }
    sym_backend *b = make_backend(&o, &w, n_sym ? n_sym : 1, &e);
    if (!b) goto fail2;
    int maxb = o.max_batch < b->max_batch ? o.max_batch : b->max_batch;
    int32_t *slots = malloc((size_t)maxb * sizeof *slots);
    int *rows = malloc((size_t)maxb * sizeof *rows), *stamp = calloc((size_t)(n_sym ? n_sym : 1), sizeof *stamp);
    float *feat = malloc((size_t)maxb * (size_t)w.cfg.features * sizeof *feat);
    double *out = malloc((size_t)maxb * 4 * sizeof *out);
    char *done = calloc((size_t)(rf.n ? rf.n : 1), 1);
    if (!slots || !rows || !stamp || !feat || !out || !done) {
        sym_fail(&e, "out of memory");
        goto fail3;
    }
    double t0 = sym_now_s();
    int finished = 0, first = 0, steps = 0;
    while (finished < rf.n) {
        steps++;
        int B = 0;
        while (first < rf.n && done[first]) first++;
        for (int i = first; i < rf.n && B < maxb; i++) {
            int s = slot_of[i];
            if (done[i] || stamp[s] == steps) continue;
            stamp[s] = steps; /* a symbol's later requests wait for a later step */
            slots[B] = s;
            rows[B] = i;
            memcpy(feat + (size_t)B * w.cfg.features, rf.rows[i].features, (size_t)w.cfg.features * sizeof *feat);
            B++;
        }
        if (sym_backend_step(b, B, slots, feat, out, &e)) goto fail3;
        for (int r = 0; r < B; r++) {
            memcpy(pred + (size_t)rows[r] * 4, out + (size_t)r * 4, 4 * sizeof *out);
            done[rows[r]] = 1;
        }
        finished += B;
    }
    double secs = sym_now_s() - t0;
    FILE *f = fopen(o.out, "w");
    if (!f) {
        sym_fail(&e, "cannot create %s", o.out);
        goto fail3;
    }
    sym_predictions_write_header(f);
    for (int i = 0; i < rf.n; i++) sym_predictions_write_row(f, rf.rows[i].uid, pred + (size_t)i * 4);
    if (fclose(f)) {
        sym_fail(&e, "write error on %s", o.out);
        goto fail3;
    }
    printf("%d requests, %d symbols, %d steps on %s in %.3f s (%.0f req/s); predictions in %s\n", rf.n, n_sym, steps,
           b->ops->name, secs, rf.n / (secs > 0 ? secs : 1e-9), o.out);
    rc = 0;
    if (o.expected) {
        sym_prediction_file exp;
        if (sym_predictions_load(o.expected, &exp, &e)) {
            rc = 1;
            goto fail3;
        }
        int missing;
        double worst = report_accuracy(&rf, pred, &exp, &missing);
        sym_predictions_free(&exp);
        if (missing) {
            sym_fail(&e, "%d requests have no expected value", missing);
            rc = 1;
        } else if (o.tolerance >= 0 && !(worst <= o.tolerance)) {
            sym_fail(&e, "max abs error %.3g exceeds the tolerance %g", worst, o.tolerance);
            rc = 1;
        }
    }
fail3:
    free(slots), free(rows), free(stamp), free(feat), free(out), free(done);
    sym_backend_destroy(b);
fail2:
    free(slot_of), free(names), free(pred);
    sym_requests_free(&rf);
fail1:
    sym_weights_free(&w);
fail0:
    if (rc) fprintf(stderr, "symserve predict: %s\n", e.msg);
    return rc;
}
