/* The durable state's cost on play's hot path (docs/design/state.md): per
 * request, one REQUEST and one ANSWER record encoded (CRC-32C each) into
 * the store's buffer, and one commit (write(2), and fdatasync under
 * "always") per turn of play's loop, for turns of 1, 8 and 64 requests.
 * Runs the real store (state/store.h) on a fresh directory, without an
 * engine (no snapshots): what play adds per request beyond serving it.
 *
 *   build/bench/state/bench_wal [DIR] [N]      (default /tmp, 100000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "state/store.h"

/* Recovery of an empty directory asks the engine only its slot size and
 * model; nothing is stepped, exported or imported. */
static const sym_model_config model = {.hidden = 128, .proj = 256, .depth = 2, .heads = 8, .features = 79};
size_t sym_engine_slot_bytes(const sym_engine *g) { return (void)g, 8; }
const sym_model_config *sym_engine_model(const sym_engine *g) { return (void)g, &model; }
int sym_engine_submit(sym_engine *g, const sym_request *r, sym_err *e) { return (void)g, (void)r, sym_fail(e, "no engine"); }
int sym_engine_poll(sym_engine *g, sym_prediction *out, int max, int timeout_ms) {
    return (void)g, (void)out, (void)max, (void)timeout_ms, 0;
}
void sym_engine_drain(sym_engine *g) { (void)g; }
int sym_engine_export_symbol(sym_engine *g, const char *symbol, void *buf, sym_err *e) {
    return (void)g, (void)symbol, (void)buf, (void)e, 0;
}
int sym_engine_import_symbol(sym_engine *g, const char *symbol, const void *state, sym_err *e) {
    return (void)g, (void)symbol, (void)state, sym_fail(e, "no engine");
}

static double run(const char *parent, int n, int turn, sym_fsync_policy fsync, double *bytes_per_req) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/bench_wal_XXXXXX", parent);
    if (!mkdtemp(dir)) return -1;
    sym_store_opts o = {.fsync = fsync, .snapshot_every_s = 0, .id_window = 1000};
    sym_err e = {{0}};
    sym_store *s = sym_store_open(dir, 42, &o, &e);
    sym_recovery_stats rs;
    if (!s || sym_store_recover(s, (sym_engine *)&model, NULL, NULL, &rs, &e)) {
        fprintf(stderr, "bench_wal: %s\n", e.msg);
        exit(1);
    }
    float feat[79];
    double pred[4] = {0.125, -0.5, 1e-3, 3.0};
    char sym[16];
    int32_t h[39];
    for (int k = 0; k < 39; k++) {
        snprintf(sym, sizeof sym, "SYM_%03d", k);
        h[k] = sym_store_symbol(s, sym);
    }
    for (int i = 0; i < 79; i++) feat[i] = (float)i * 0.37f - 11.0f;
    uint64_t t0 = sym_now_ns();
    for (int i = 0; i < n; i += turn) {
        for (int j = i; j < i + turn && j < n; j++) {
            snprintf(sym, sizeof sym, "SYM_%03d", j % 39);
            feat[0] = (float)j;
            if (sym_store_log_request(s, (uint64_t)j, sym, feat, 79) ||
                sym_store_log_answer(s, h[j % 39], (uint64_t)j, 0x1234 + (uint64_t)j, pred))
                exit(1);
        }
        if (sym_store_commit(s, &e)) {
            fprintf(stderr, "bench_wal: %s\n", e.msg);
            exit(1);
        }
    }
    double ns = (double)(sym_now_ns() - t0) / n;
    sym_store_stats st;
    sym_store_get_stats(s, &st);
    *bytes_per_req = (double)st.log_bytes / n;
    sym_store_close(s);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return -1;
    return ns;
}

int main(int argc, char **argv) {
    const char *parent = argc > 1 ? argv[1] : "/tmp";
    int n = argc > 2 ? atoi(argv[2]) : 100000;
    if (n < 64) n = 64;
    static const char *const names[] = {"no", "every_s", "always"};
    printf("| fsync | requests a turn | ns per request | log bytes per request |\n|---|---|---|---|\n");
    for (int f = 0; f < 3; f++)
        for (int turn = 1; turn <= 64; turn *= 8) {
            double b;
            int m = f == 2 && turn == 1 ? n / 50 : n; /* an fdatasync per request: fewer of them */
            double ns = run(parent, m, turn, (sym_fsync_policy)f, &b);
            printf("| %s | %d | %.0f | %.0f |\n", names[f], turn, ns, b);
        }
    printf("\n(bench/state/bench_wal %s %d)\n", parent, n);
    return 0;
}
