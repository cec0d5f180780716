/* Protocol cost on one core: what `symserve play` spends per request on the
 * wire, without the model. For each message: line splitting (line reader),
 * parsing (the play client's inference_request reader, net/request_reader.h,
 * and for comparison the strict tree parser, common/json.h, that every
 * other message takes), validation of every row into a request (symbol
 * check, feature count, finite float32), and formatting the
 * inference_response line. Messages are made the way `symserve replay` writes them (79 features
 * at 9 significant digits). Then the response line alone: the hand-written
 * writer play uses (sym_proto_write_response) against the same message built
 * and printed through cJSON. Prints two tables and the command.
 *   usage: bench_net_protocol [N_REQUESTS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "config/config.h"
#include "common/request.h"
#include "net/line_reader.h"
#include "net/protocol.h"
#include "common/json.h"
#include "net/request_reader.h"
#include "net/tcp.h"

#define F 79

static uint64_t rng = 42;
static double gauss(void) { /* cheap approximately normal numbers for the payload */
    double s = 0;
    for (int i = 0; i < 4; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        s += (double)(rng >> 11) / 9007199254740992.0 - 0.5;
    }
    return s * 1.7;
}

static sym_request_msg msg;

/* A request row from the tree, checked as the reader checks it. */
static int tree_row(const cJSON *u, const cJSON *sym, const cJSON *row, uint64_t *uid, float *features) {
    if (sym_json_u64(u, uid) || !cJSON_IsString(sym) || sym_symbol_check(sym->valuestring, strlen(sym->valuestring), NULL) ||
        cJSON_GetArraySize(row) != F)
        return -1;
    int i = 0;
    for (const cJSON *x = row->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x)) return -1;
        features[i] = (float)x->valuedouble;
    }
    return 0;
}

/* Runs n requests in messages of `rows` rows; returns requests per second.
 * use_reader: the play client's path; else the tree parser. */
static double run(int n, int rows, int use_reader, double *bytes_per_req) {
    int n_msg = n / rows;
    sym_outbuf in = {0}, out = {0};
    float feat[64][F];
    uint64_t uids[64];
    char names[64][16];
    const char *syms[64];
    const float *fp[64];
    for (int m = 0; m < n_msg; m++) { /* the stream, as one TCP byte string */
        for (int k = 0; k < rows; k++) {
            for (int i = 0; i < F; i++) feat[k][i] = (float)gauss();
            uids[k] = (uint64_t)(m * rows + k);
            snprintf(names[k], sizeof names[k], "SYM_%03d", (m * rows + k) % 40);
            syms[k] = names[k], fp[k] = feat[k];
        }
        sym_proto_write_request(&in, uids, syms, fp, rows, F, 1.7e9 + m);
    }
    *bytes_per_req = (double)in.len / (n_msg * rows);
    sym_line_reader lr;
    sym_lr_init(&lr, SYM_NET_MAX_LINE_DEFAULT);
    float features[F];
    double pred[64][4];
    uint64_t done_uids[64];
    long served = 0;
    uint64_t t0 = sym_now_ns();
    for (size_t off = 0; off < in.len; off += 65536) { /* 64 KiB reads, as the client does */
        sym_lr_feed(&lr, in.buf + off, in.len - off < 65536 ? in.len - off : 65536);
        char *line;
        size_t len;
        while (sym_lr_next(&lr, &line, &len) == SYM_LR_LINE) {
            sym_err e;
            int k_ok = 0;
            if (use_reader) {
                if (sym_request_read(&msg, line, len, F, &e) != SYM_LINE_REQUEST) {
                    fprintf(stderr, "bench: %s\n", e.msg);
                    exit(1);
                }
                for (int k = 0; k < msg.n; k++) {
                    uint64_t uid;
                    int uid_ok;
                    const char *symbol;
                    const float *f;
                    if (sym_request_row(&msg, k, &uid, &uid_ok, &symbol, &f, &e)) {
                        fprintf(stderr, "bench: %s\n", e.msg);
                        exit(1);
                    }
                    done_uids[k_ok] = uid;
                    for (int j = 0; j < 4; j++) pred[k_ok][j] = f[j] * 0.123456789012345; /* full-width doubles */
                    k_ok++;
                }
            } else {
                cJSON *root;
                sym_msg_type t;
                if (sym_proto_parse(line, len, &root, &t, &e)) {
                    fprintf(stderr, "bench: %s\n", e.msg);
                    exit(1);
                }
                const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "unique_ids")->child;
                const cJSON *sy = cJSON_GetObjectItemCaseSensitive(root, "symbols")->child;
                const cJSON *row = cJSON_GetObjectItemCaseSensitive(root, "features")->child;
                for (; u && sy && row; u = u->next, sy = sy->next, row = row->next) {
                    if (tree_row(u, sy, row, &done_uids[k_ok], features)) {
                        fprintf(stderr, "bench: a bad row\n");
                        exit(1);
                    }
                    for (int j = 0; j < 4; j++) pred[k_ok][j] = features[j] * 0.123456789012345;
                    k_ok++;
                }
                cJSON_Delete(root);
            }
            sym_proto_write_response(&out, done_uids, (const double(*)[4])pred, k_ok, 1.7e9);
            served += k_ok;
            sym_outbuf_reset(&out);
        }
    }
    double s = (double)(sym_now_ns() - t0) * 1e-9;
    if (served != (long)n_msg * rows) fprintf(stderr, "bench: served %ld of %d\n", served, n_msg * rows), exit(1);
    sym_lr_free(&lr);
    sym_outbuf_free(&in);
    sym_outbuf_free(&out);
    return served / s;
}

/* The inference_response line through cJSON, as the writer would be without
 * its fast path: ids as raw integer text (a cJSON number is a double), the
 * predictions as number nodes. Appends it with its '\n'. */
static int response_cjson(sym_outbuf *o, const uint64_t *uids, const double (*pred)[4], int n, double client_ts) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "message_type", "inference_response");
    cJSON *ids = cJSON_AddArrayToObject(j, "unique_ids"), *preds = cJSON_AddArrayToObject(j, "predictions");
    for (int k = 0; k < n; k++) {
        char b[24];
        snprintf(b, sizeof b, "%llu", (unsigned long long)uids[k]);
        cJSON_AddItemToArray(ids, cJSON_CreateRaw(b));
        cJSON_AddItemToArray(preds, cJSON_CreateDoubleArray(pred[k], 4));
    }
    cJSON_AddNumberToObject(j, "client_timestamp", client_ts);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int rc = !s || sym_outbuf_append(o, s, strlen(s)) || sym_outbuf_append(o, "\n", 1) ? -1 : 0;
    cJSON_free(s);
    return rc;
}

/* Writes n_lines response lines of `rows` rows; returns ns per line. */
static double run_writer(int n_lines, int rows, int use_cjson) {
    uint64_t uids[64];
    double pred[64][4];
    for (int k = 0; k < rows; k++) {
        uids[k] = 1000000 + (uint64_t)k;
        for (int t = 0; t < 4; t++) pred[k][t] = gauss() * 0.123456789012345; /* full-width doubles */
    }
    sym_outbuf out = {0};
    uint64_t t0 = sym_now_ns();
    for (int m = 0; m < n_lines; m++) {
        uids[0] = (uint64_t)m;
        int rc = use_cjson ? response_cjson(&out, uids, (const double(*)[4])pred, rows, 1.7e9 + m)
                           : sym_proto_write_response(&out, uids, (const double(*)[4])pred, rows, 1.7e9 + m);
        if (rc) fprintf(stderr, "bench: out of memory\n"), exit(1);
        sym_outbuf_reset(&out);
    }
    double ns = (double)(sym_now_ns() - t0) / n_lines;
    sym_outbuf_free(&out);
    return ns;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 200000;
    printf("protocol cost, one core: line split + parse + row validation + response line, %d requests, F=%d\n", n, F);
    printf("%-22s %18s %14s %14s %12s\n", "parser", "rows per message", "requests/s", "us/request", "bytes/req");
    int sizes[] = {1, 8, 64};
    for (int f = 1; f >= 0; f--)
        for (int i = 0; i < 3; i++) {
            double bpr, r = run(n, sizes[i], f, &bpr);
            printf("%-22s %18d %14.0f %14.2f %12.0f\n", f ? "request reader (play)" : "strict tree (cJSON)", sizes[i], r, 1e6 / r, bpr);
        }
    printf("\nthe inference_response line alone, %d rows of answers per writer and size\n", n);
    printf("%-22s %18s %14s %14s\n", "writer", "rows per message", "ns/line", "ns/row");
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 3; i++) {
            double ns = run_writer(n / sizes[i], sizes[i], c);
            printf("%-22s %18d %14.0f %14.0f\n", c ? "cJSON tree + print" : "hand-written (play)", sizes[i], ns, ns / sizes[i]);
        }
    printf("command: taskset -c 0 build/bench/net/bench_net_protocol %d\n", n);
    sym_request_msg_free(&msg);
    return 0;
}
