/* Every block of every tower against golden_long/intermediates.jsonl (the
 * reference model's tower inputs, layer outputs, block outputs and
 * predictions of the first requests, in fp64): where a mismatch starts is
 * named by tower, block and point. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/requests_csv.h"
#include "kernels/cpu/cpu_step.h"
#include "kernels/weights.h"

typedef struct {
    cJSON **items; /* the JSON lines of the current request */
    int n;
    int request;
    double worst;
    int fails;
} ctx_t;

static void check_point(ctx_t *c, int tower, int block, const char *point, const double *v, int n) {
    for (int i = 0; i < c->n; i++) {
        cJSON *o = c->items[i];
        if (cJSON_GetObjectItem(o, "tower")->valueint != tower || cJSON_GetObjectItem(o, "block")->valueint != block ||
            strcmp(cJSON_GetObjectItem(o, "point")->valuestring, point))
            continue;
        cJSON *vals = cJSON_GetObjectItem(o, "values");
        if (cJSON_GetArraySize(vals) != n) {
            printf("FAIL request %d tower %d block %d %s: %d values, expected %d\n", c->request, tower, block, point, n,
                   cJSON_GetArraySize(vals));
            c->fails++;
            return;
        }
        double mx = 0;
        for (int k = 0; k < n; k++) mx = fmax(mx, fabs(v[k] - cJSON_GetArrayItem(vals, k)->valuedouble));
        if (!(mx <= 1e-10)) {
            printf("FAIL request %d tower %d block %d %s: max abs err %.3g\n", c->request, tower, block, point, mx);
            c->fails++;
        }
        c->worst = fmax(c->worst, mx);
        return;
    }
    printf("FAIL request %d tower %d block %d %s: not in the golden file\n", c->request, tower, block, point);
    c->fails++;
}

static void trace(void *ctx, int tower, int block, const char *point, const double *v, int n) {
    check_point(ctx, tower, block, point, v, n);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *dir = argv[1];
    char path[4096];
    sym_err e = {{0}};
    sym_weights w;
    sym_request_file rf;
    if (sym_weights_load_dir(&w, dir, &e)) return printf("FAIL %s\n", e.msg), 1;
    snprintf(path, sizeof path, "%s/requests.csv", dir);
    if (sym_requests_load(path, w.cfg.features, &rf, &e)) return printf("FAIL %s\n", e.msg), 1;
    snprintf(path, sizeof path, "%s/intermediates.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return printf("FAIL cannot open %s\n", path), 1;
    cJSON *lines[4096];
    int nl = 0;
    static char line[1 << 20];
    while (nl < 4096 && fgets(line, sizeof line, f)) lines[nl++] = cJSON_Parse(line);
    fclose(f);
    sym_state_layout L;
    sym_state_layout_init(&L, &w.cfg, &e);
    int M = sym_cpu_scratch_width(&w.cfg);
    double *scratch = malloc((size_t)SYM_CPU_SCRATCH_VECS * M * sizeof *scratch);
    double *slots = malloc(2 * L.numel * sizeof *slots);
    char names[2][SYM_SYMBOL_MAX + 1] = {"", ""};
    int max_req = 0;
    for (int i = 0; i < nl; i++) max_req = fmax(max_req, cJSON_GetObjectItem(lines[i], "request")->valueint);
    ctx_t c = {0};
    c.items = malloc((size_t)nl * sizeof *c.items);
    int checked = 0;
    for (int r = 0; r <= max_req; r++) {
        c.n = 0;
        c.request = r;
        for (int i = 0; i < nl; i++)
            if (cJSON_GetObjectItem(lines[i], "request")->valueint == r) c.items[c.n++] = lines[i];
        int s = 0;
        while (s < 2 && names[s][0] && strcmp(names[s], rf.rows[r].symbol)) s++;
        if (s == 2) return printf("FAIL more than two symbols\n"), 1;
        if (!names[s][0]) {
            strcpy(names[s], rf.rows[r].symbol);
            sym_state_reset_f64(&L, slots + (size_t)s * L.numel);
        }
        double *slot = slots + (size_t)s * L.numel;
        for (int t = 0; t < SYM_TOWERS; t++) {
            double p = sym_cpu_tower_f64(&w, t, &L, slot, rf.rows[r].features, scratch, M, trace, &c);
            check_point(&c, t, -1, "prediction", &p, 1);
        }
        sym_state_set_steps(slot, sym_state_steps(slot) + 1);
        checked += c.n;
    }
    printf("%s: %d requests, %d points checked, worst abs err %.3g\n", c.fails ? "FAIL" : "PASS", max_req + 1, checked,
           c.worst);
    for (int i = 0; i < nl; i++) cJSON_Delete(lines[i]);
    free(c.items), free(scratch), free(slots);
    sym_state_layout_free(&L);
    sym_requests_free(&rf);
    sym_weights_free(&w);
    return c.fails ? 1 : 0;
}
