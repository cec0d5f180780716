#include "common/requests_csv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len, sym_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        sym_fail(e, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) {
        sym_fail(e, "%s: out of memory", path);
        return NULL;
    }
    if (err) {
        free(buf);
        sym_fail(e, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        free(buf);
        sym_fail(e, "%s: contains a NUL byte (not a CSV text file)", path);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Splits one line in place at commas; returns the number of fields (up to
 * max), or max+1 when there are more. */
static int split_fields(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return max + 1;
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

/* Iterates over lines, stripping \r; returns NULL at the end. */
static char *next_line(char **cursor) {
    char *s = *cursor;
    if (!s || !*s) return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = 0;
        *cursor = nl + 1;
    } else {
        *cursor = s + strlen(s);
    }
    size_t L = strlen(s);
    if (L && s[L - 1] == '\r') s[L - 1] = 0;
    return s;
}

static int parse_u64(const char *s, uint64_t *out) {
    if (!*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

#define MAX_COLS 1024

int sym_requests_load(const char *path, int expected_features, sym_request_file *f, sym_err *e) {
    memset(f, 0, sizeof *f);
    size_t len;
    char *text = slurp(path, &len, e);
    if (!text) return -1;
    char *cur = text, *fields[MAX_COLS];
    char *header = next_line(&cur);
    int nh = header ? split_fields(header, fields, MAX_COLS) : 0;
    if (nh == 0 || nh > MAX_COLS) {
        free(text);
        return sym_fail(e, "%s: missing or oversized header line", path);
    }
    int col_uid = -1, col_sym = -1, col_delay = -1, nfeat = 0;
    int feat_col[MAX_COLS];
    for (int i = 0; i < MAX_COLS; i++) feat_col[i] = -1;
    for (int i = 0; i < nh; i++) {
        const char *h = fields[i];
        if (!strcmp(h, "unique_id")) col_uid = i;
        else if (!strcmp(h, "symbol")) col_sym = i;
        else if (!strcmp(h, "delay_ms")) col_delay = i;
        else if (!strncmp(h, "feature_", 8)) {
            char *end;
            long k = strtol(h + 8, &end, 10);
            if (*end || k < 0 || k >= MAX_COLS || feat_col[k] >= 0) {
                free(text);
                return sym_fail(e, "%s: bad or repeated feature column '%s'", path, h);
            }
            feat_col[k] = i;
            nfeat++;
        }
    }
    if (col_uid < 0 || col_sym < 0) {
        free(text);
        return sym_fail(e, "%s: header needs unique_id and symbol columns", path);
    }
    for (int k = 0; k < nfeat; k++) {
        if (feat_col[k] < 0) {
            free(text);
            return sym_fail(e, "%s: feature columns are not feature_00..feature_%02d (feature_%02d missing)", path, nfeat - 1, k);
        }
    }
    if (nfeat == 0 || (expected_features && nfeat != expected_features)) {
        free(text);
        return sym_fail(e, "%s: %d feature columns, the model takes %d", path, nfeat, expected_features);
    }
    int cap = 1024;
    f->rows = malloc((size_t)cap * sizeof *f->rows);
    f->feature_block = malloc((size_t)cap * (size_t)nfeat * sizeof(float));
    f->n_features = nfeat;
    f->has_delay = col_delay >= 0;
    int lineno = 1;
    char *line;
    while ((line = next_line(&cur))) {
        lineno++;
        if (!*line) continue;
        if (!f->rows || !f->feature_block) goto oom;
        int nf = split_fields(line, fields, MAX_COLS);
        if (nf != nh) {
            sym_fail(e, "%s:%d: %d columns, the header has %d", path, lineno, nf > MAX_COLS ? MAX_COLS : nf, nh);
            goto fail;
        }
        if (f->n == cap) {
            cap *= 2;
            sym_csv_request *r = realloc(f->rows, (size_t)cap * sizeof *f->rows);
            if (r) f->rows = r;
            float *fb = realloc(f->feature_block, (size_t)cap * (size_t)nfeat * sizeof(float));
            if (fb) f->feature_block = fb;
            if (!r || !fb) goto oom;
        }
        sym_csv_request *r = &f->rows[f->n];
        memset(r, 0, sizeof *r);
        if (parse_u64(fields[col_uid], &r->uid)) {
            sym_fail(e, "%s:%d: unique_id '%.40s' is not a non-negative integer", path, lineno, fields[col_uid]);
            goto fail;
        }
        size_t sl = strlen(fields[col_sym]);
        if (sym_symbol_check(fields[col_sym], sl, e)) {
            sym_failctx(e, "%s:%d", path, lineno);
            goto fail;
        }
        memcpy(r->symbol, fields[col_sym], sl + 1);
        if (col_delay >= 0 && (parse_double(fields[col_delay], &r->delay_ms) || r->delay_ms < 0)) {
            sym_fail(e, "%s:%d: delay_ms '%.40s' is not a finite non-negative number", path, lineno, fields[col_delay]);
            goto fail;
        }
        float *feat = f->feature_block + (size_t)f->n * (size_t)nfeat;
        for (int k = 0; k < nfeat; k++) {
            double v;
            if (parse_double(fields[feat_col[k]], &v) || !isfinite((float)v)) {
                sym_fail(e, "%s:%d: feature_%02d '%.40s' is not a finite number", path, lineno, k, fields[feat_col[k]]);
                goto fail;
            }
            feat[k] = (float)v;
        }
        f->n++;
    }
    for (int i = 0; i < f->n; i++) f->rows[i].features = f->feature_block + (size_t)i * (size_t)nfeat;
    free(text);
    return 0;
oom:
    sym_fail(e, "%s: out of memory", path);
fail:
    free(text);
    sym_requests_free(f);
    return -1;
}

void sym_requests_free(sym_request_file *f) {
    free(f->rows);
    free(f->feature_block);
    memset(f, 0, sizeof *f);
}

int sym_predictions_load(const char *path, sym_prediction_file *f, sym_err *e) {
    memset(f, 0, sizeof *f);
    size_t len;
    char *text = slurp(path, &len, e);
    if (!text) return -1;
    char *cur = text, *fields[8];
    char *header = next_line(&cur);
    if (!header || split_fields(header, fields, 5) != 5 || strcmp(fields[0], "unique_id") || strcmp(fields[1], "pred_0") ||
        strcmp(fields[4], "pred_3")) {
        free(text);
        return sym_fail(e, "%s: header must be unique_id,pred_0,pred_1,pred_2,pred_3", path);
    }
    int cap = 1024, lineno = 1;
    f->rows = malloc((size_t)cap * sizeof *f->rows);
    char *line;
    while ((line = next_line(&cur))) {
        lineno++;
        if (!*line) continue;
        if (f->rows && f->n == cap) {
            cap *= 2;
            sym_csv_prediction *r = realloc(f->rows, (size_t)cap * sizeof *f->rows);
            if (!r) free(f->rows);
            f->rows = r;
        }
        if (!f->rows) break;
        sym_csv_prediction *r = &f->rows[f->n];
        int ok = split_fields(line, fields, 5) == 5 && !parse_u64(fields[0], &r->uid);
        for (int k = 0; ok && k < 4; k++) ok = !parse_double(fields[1 + k], &r->pred[k]);
        if (!ok) {
            free(text);
            sym_predictions_free(f);
            return sym_fail(e, "%s:%d: expected unique_id and four finite predictions", path, lineno);
        }
        f->n++;
    }
    free(text);
    if (!f->rows) return sym_fail(e, "%s: out of memory", path);
    return 0;
}

void sym_predictions_free(sym_prediction_file *f) {
    free(f->rows);
    memset(f, 0, sizeof *f);
}

void sym_predictions_write_header(FILE *out) { fputs("unique_id,pred_0,pred_1,pred_2,pred_3\n", out); }

void sym_predictions_write_row(FILE *out, uint64_t uid, const double pred[SYM_TOWERS]) {
    fprintf(out, "%llu,%.17g,%.17g,%.17g,%.17g\n", (unsigned long long)uid, pred[0], pred[1], pred[2], pred[3]);
}
