/* The engine's front door and API edges, on the echo backend: bad requests
 * are rejected with a reason and advance no state, the symbol capacity is
 * enforced, ready_fd is readable exactly while predictions wait, migrate and
 * rebalance reject bad arguments, a migrated symbol keeps its state (every
 * backend call on its shard's thread), a migration whose export or import
 * fails leaves the symbol where it was with its state, and with
 * rows_per_symbol a step takes a symbol's waiting requests together, in
 * order, after one row of every symbol with work. */
#include <math.h>
#include <stdlib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "actors/engine.h"
#include "kernels/state_layout.h"
#include "sharding/hash.h"
#include "tests/check.h"
#include "tests/actors/echo_backend.h"
#include "tests/actors/thread_check_backend.h"


static sym_model_config model;

/* Echo backends with another step in front of the echo's. */
static int (*echo_step)(sym_backend *, int, const int32_t *, const float *, double *, sym_err *);
static sym_backend *echo_with_step(void *ctx, int shard, sym_backend_ops *ops,
                                   int (*step)(sym_backend *, int, const int32_t *, const float *, double *, sym_err *),
                                   sym_err *e) {
    sym_backend *b = sym_echo_backend_make(ctx, shard, e);
    if (!b) return NULL;
    *ops = *b->ops;
    echo_step = ops->step;
    ops->step = step;
    b->ops = ops;
    return b;
}

/* One whose step fails on a row with features[0] == 999. */
static sym_backend_ops failing_ops;
static int failing_step(sym_backend *b, int B, const int32_t *slots, const float *f, double *out, sym_err *e) {
    for (int r = 0; r < B; r++)
        if (f[(size_t)r * (size_t)b->cfg.features] == 999) return sym_fail(e, "boom");
    return echo_step(b, B, slots, f, out, e);
}
static sym_backend *make_failing(void *ctx, int shard, sym_err *e) {
    return echo_with_step(ctx, shard, &failing_ops, failing_step, e);
}

/* One whose first step takes 200 ms: requests sent meanwhile wait together
 * for the next step. */
static sym_backend_ops slow_ops;
static int slow_calls;
static int slow_step(sym_backend *b, int B, const int32_t *slots, const float *f, double *out, sym_err *e) {
    if (slow_calls++ == 0) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return echo_step(b, B, slots, f, out, e);
}
static sym_backend *make_slow(void *ctx, int shard, sym_err *e) { return echo_with_step(ctx, shard, &slow_ops, slow_step, e); }

/* Shard 1's backend refuses to export or import a slot. */
static sym_backend_ops bad_moves_ops;
static int refuse_export(sym_backend *b, int32_t slot, void *dst, sym_err *e) {
    (void)b, (void)slot, (void)dst;
    return sym_fail(e, "export refused");
}
static int refuse_import(sym_backend *b, int32_t slot, const void *src, sym_err *e) {
    (void)b, (void)slot, (void)src;
    return sym_fail(e, "import refused");
}
static sym_backend *make_bad_moves(void *ctx, int shard, sym_err *e) {
    sym_backend *b = sym_echo_backend_make(ctx, shard, e);
    if (!b) return NULL;
    if (shard == 1) {
        bad_moves_ops = *b->ops;
        bad_moves_ops.export_slot = refuse_export;
        bad_moves_ops.import_slot = refuse_import;
        b->ops = &bad_moves_ops;
    }
    return b;
}

static sym_request req(const char *sym, uint64_t uid, float x) {
    sym_request r;
    memset(&r, 0, sizeof r);
    r.uid = uid;
    snprintf(r.symbol, sizeof r.symbol, "%s", sym);
    r.n_features = model.features;
    r.features[0] = x;
    return r;
}

static int readable(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* Submits one request and waits for its prediction. */
static sym_prediction one(sym_engine *g, const char *sym, uint64_t uid) {
    sym_request r = req(sym, uid, 1);
    sym_err e;
    sym_prediction p = {0};
    CHECK(!sym_engine_submit(g, &r, &e), "submit %s: %s", sym, e.msg);
    CHECK(sym_engine_poll(g, &p, 1, 2000) == 1, "no prediction for %s", sym);
    CHECK(p.uid == uid && p.status == 0, "uid %llu status %d", (unsigned long long)p.uid, p.status);
    return p;
}

int main(void) {
    model = sym_model_config_small();
    sym_config cfg;
    sym_echo_factory echo = {&model, &cfg, 0};
    sym_thread_check_factory checked = {sym_echo_backend_make, &echo};
    sym_config_defaults(&cfg);
    cfg.shard_count = 2;
    cfg.max_symbols = 3;
    cfg.status_interval_s = 0;
    sym_err e;
    sym_engine *g = sym_engine_create_with(&cfg, &model, sym_thread_check_make, &checked, &e);
    if (!g) return fprintf(stderr, "create: %s\n", e.msg), 1;
    int fd = sym_engine_ready_fd(g);
    sym_prediction p;
    CHECK(!readable(fd), "fd readable before any request");
    CHECK(sym_engine_poll(g, &p, 1, 0) == 0, "poll without work");

    /* rejections name the problem and advance nothing */
    sym_request r = req("BAD SYM", 1, 0);
    CHECK(sym_engine_submit(g, &r, &e) && strstr(e.msg, "request 1"), "space in symbol accepted (%s)", e.msg);
    r = req("", 2, 0);
    CHECK(sym_engine_submit(g, &r, &e), "empty symbol accepted");
    r = req("A", 3, 0);
    r.n_features = model.features - 1;
    CHECK(sym_engine_submit(g, &r, &e) && strstr(e.msg, "features"), "wrong feature count accepted (%s)", e.msg);
    r = req("A", 4, NAN);
    CHECK(sym_engine_submit(g, &r, &e) && strstr(e.msg, "finite"), "NaN accepted (%s)", e.msg);
    r = req("A", 5, INFINITY);
    CHECK(sym_engine_submit(g, &r, &e), "inf accepted");

    p = one(g, "A", 10);
    CHECK(p.pred[0] == 0, "first request of A saw step %g", p.pred[0]); /* the rejected ones advanced nothing */
    CHECK(!readable(fd), "fd readable after everything was polled");
    sym_request ra = req("A", 11, 1);
    CHECK(!sym_engine_submit(g, &ra, &e), "submit: %s", e.msg);
    sym_engine_drain(g);
    CHECK(readable(fd), "fd not readable with a prediction waiting");
    CHECK(sym_engine_poll(g, &p, 1, 0) == 1 && p.pred[0] == 1, "second request of A saw step %g", p.pred[0]);

    one(g, "B", 20);
    one(g, "C", 30);
    r = req("D", 40, 0);
    CHECK(sym_engine_submit(g, &r, &e) && strstr(e.msg, "max_symbols"), "fourth symbol accepted with max_symbols 3 (%s)", e.msg);

    /* migration keeps the state; bad arguments are errors */
    int from = sym_engine_symbol_shard(g, "A");
    CHECK(from >= 0, "A has no shard");
    CHECK(!sym_engine_migrate(g, "A", 1 - from, &e), "migrate: %s", e.msg);
    CHECK(sym_engine_symbol_shard(g, "A") == 1 - from, "A did not move");
    p = one(g, "A", 12);
    CHECK(p.pred[0] == 2 && p.pred[3] == 3, "after migration A saw step %g sum %g", p.pred[0], p.pred[3]);
    CHECK(sym_engine_migrate(g, "Z", 0, &e) && strstr(e.msg, "unknown symbol"), "unknown symbol migrated");
    CHECK(sym_engine_migrate(g, "A", 7, &e) && strstr(e.msg, "out of range"), "migrate to shard 7 of 2");
    CHECK(sym_engine_rebalance(g, 0, &e), "rebalance to 0 shards");

    /* rebalance up and down keeps every symbol's state */
    CHECK(!sym_engine_rebalance(g, 5, &e), "rebalance 5: %s", e.msg);
    CHECK(sym_engine_shard_count(g) == 5, "shard count %d", sym_engine_shard_count(g));
    p = one(g, "B", 21);
    CHECK(p.pred[0] == 1, "B after rebalance saw step %g", p.pred[0]);
    CHECK(!sym_engine_rebalance(g, 1, &e), "rebalance 1: %s", e.msg);
    p = one(g, "C", 31);
    CHECK(p.pred[0] == 1, "C after rebalance saw step %g", p.pred[0]);
    p = one(g, "A", 13);
    CHECK(p.pred[0] == 3, "A after rebalance saw step %g", p.pred[0]);
    CHECK(sym_engine_symbol_shard(g, "A") == 0, "A not on shard 0 of 1");
    sym_engine_destroy(g);
    CHECK(sym_thread_check_violations() == 0, "backend calls off the shard's thread: %s", sym_thread_check_report());

    /* a move that fails on either side leaves the symbol where it was, with
     * its state and its order: 0 -> 1 fails at the import, 1 -> 0 at the export */
    g = sym_engine_create_with(&cfg, &model, make_bad_moves, &echo, &e);
    if (!g) return fprintf(stderr, "create: %s\n", e.msg), 1;
    /* one symbol on each shard, by the placement hash */
    static char names[2][8];
    const char *on[2] = {NULL, NULL};
    for (int i = 0; i < 26 && (!on[0] || !on[1]); i++) {
        char name[8] = {(char)('A' + i), 0};
        int shard = sym_hash_rendezvous(sym_hash_symbol(name, cfg.hash_seed), cfg.hash_seed, 2);
        if (!on[shard]) memcpy(names[shard], name, sizeof name), on[shard] = names[shard];
    }
    for (int i = 0; i < 2; i++) {
        if (!on[i]) continue;
        one(g, on[i], 80 + (uint64_t)i);
        CHECK(sym_engine_symbol_shard(g, on[i]) == i, "%s not on shard %d", on[i], i);
    }
    for (int from = 0; from < 2; from++) {
        if (!on[from]) continue;
        r = req(on[from], 90 + (uint64_t)from, 1); /* queued behind the move: it must wait for it, then step once */
        CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
        int rc = sym_engine_migrate(g, on[from], 1 - from, &e);
        CHECK(rc && strstr(e.msg, from == 0 ? "import refused" : "export refused"),
              "a move from shard %d: rc %d (%s)", from, rc, e.msg);
        CHECK(sym_engine_symbol_shard(g, on[from]) == from, "a failed move from shard %d moved the symbol", from);
        CHECK(sym_engine_poll(g, &p, 1, 2000) == 1 && p.uid == 90 + (uint64_t)from && p.pred[0] == 1,
              "the request sent during the failed move: uid %llu saw step %g", (unsigned long long)p.uid, p.pred[0]);
        p = one(g, on[from], 95 + (uint64_t)from);
        CHECK(p.pred[0] == 2 && p.pred[3] == 3, "after a failed move from shard %d: step %g sum %g", from, p.pred[0],
              p.pred[3]);
    }
    CHECK(on[0] && on[1], "no symbol of A..Z for each of two shards");
    /* a rebalance to one shard cannot move shard 1's symbol: it fails, and
     * shard 1 stays, serving that symbol */
    if (on[1]) {
        CHECK(sym_engine_rebalance(g, 1, &e) && strstr(e.msg, "export refused"), "rebalance 2 -> 1: %s", e.msg);
        CHECK(sym_engine_shard_count(g) == 2, "after a failed rebalance to 1: %d shards", sym_engine_shard_count(g));
        CHECK(sym_engine_symbol_shard(g, on[1]) == 1, "%s left shard 1", on[1]);
        p = one(g, on[1], 97);
        CHECK(p.pred[0] == 3, "after a failed rebalance %s saw step %g", on[1], p.pred[0]);
    }
    sym_engine_destroy(g);

    /* a symbol's state out and in through the API */
    g = sym_engine_create_with(&cfg, &model, sym_echo_backend_make, &echo, &e);
    if (!g) return fprintf(stderr, "create: %s\n", e.msg), 1;
    double st[2] = {-1, -1};
    CHECK(sym_engine_slot_bytes(g) == sizeof st, "slot bytes %zu", sym_engine_slot_bytes(g));
    CHECK(sym_engine_export_symbol(g, "A", st, &e) == 0, "export of a symbol never submitted");
    for (int k = 0; k < 3; k++) one(g, "A", 100 + (uint64_t)k);
    CHECK(sym_engine_export_symbol(g, "A", st, &e) == 1 && st[0] == 3 && st[1] == 3, "export of A: step %g sum %g (%s)",
          st[0], st[1], e.msg);
    double in[2] = {10, 55};
    CHECK(!sym_engine_import_symbol(g, "NEW", in, &e), "import NEW: %s", e.msg);
    CHECK(sym_engine_symbol_shard(g, "NEW") >= 0, "an imported symbol has no shard");
    p = one(g, "NEW", 110);
    CHECK(p.pred[0] == 10 && p.pred[3] == 56, "after the import NEW saw step %g sum %g", p.pred[0], p.pred[3]);
    /* a request submitted before an import steps on the state it found; one after, on the imported state */
    r = req("A", 111, 1);
    CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
    in[0] = 100, in[1] = 0;
    CHECK(!sym_engine_import_symbol(g, "A", in, &e), "import A: %s", e.msg);
    r = req("A", 112, 1);
    CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
    sym_prediction two[2];
    int got = 0;
    for (int tries = 0; got < 2 && tries < 20; tries++) got += sym_engine_poll(g, two + got, 2 - got, 100);
    CHECK(got == 2 && two[0].uid == 111 && two[0].pred[0] == 3 && two[1].uid == 112 && two[1].pred[0] == 100,
          "around the import of A: steps %g and %g", two[0].pred[0], two[1].pred[0]);
    CHECK(sym_engine_import_symbol(g, "BAD SYM", in, &e) && strstr(e.msg, "import"), "bad symbol imported (%s)", e.msg);
    CHECK(!sym_engine_import_symbol(g, "D", in, &e), "import D: %s", e.msg);
    CHECK(sym_engine_import_symbol(g, "E", in, &e) && strstr(e.msg, "max_symbols"), "fourth symbol imported (%s)", e.msg);
    CHECK(!sym_engine_migrate(g, "NEW", 1 - sym_engine_symbol_shard(g, "NEW"), &e), "migrate NEW: %s", e.msg);
    CHECK(sym_engine_export_symbol(g, "NEW", st, &e) == 1 && st[0] == 11, "NEW after a move: step %g", st[0]);
    sym_engine_destroy(g);

    /* the CPU reference's states carry their step count in the header */
    {
        sym_config c2;
        sym_config_defaults(&c2);
        c2.backend = SYM_BACKEND_CPU;
        c2.shard_count = 2;
        c2.max_symbols = 4;
        c2.status_interval_s = 0;
        g = sym_engine_create(&c2, &e);
        if (!g) return fprintf(stderr, "create cpu: %s\n", e.msg), 1;
        char *state = malloc(sym_engine_slot_bytes(g));
        for (int k = 0; k < 4; k++) {
            r = req("A", 120 + (uint64_t)k, (float)k);
            r.n_features = sym_engine_model(g)->features;
            CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
            CHECK(sym_engine_poll(g, &p, 1, 5000) == 1 && p.status == 0, "cpu step %d", k);
        }
        CHECK(state && sym_engine_export_symbol(g, "A", state, &e) == 1 && sym_state_steps(state) == 4,
              "cpu export: steps %lld (%s)", state ? (long long)sym_state_steps(state) : -1LL, e.msg);
        CHECK(!sym_engine_import_symbol(g, "B", state, &e), "cpu import: %s", e.msg);
        r = req("A", 130, 7), r.n_features = sym_engine_model(g)->features;
        sym_request rb = req("B", 131, 7);
        rb.n_features = r.n_features;
        sym_prediction pa = {0}, pb = {0};
        CHECK(!sym_engine_submit(g, &r, &e) && sym_engine_poll(g, &pa, 1, 5000) == 1, "A's fifth");
        CHECK(!sym_engine_submit(g, &rb, &e) && sym_engine_poll(g, &pb, 1, 5000) == 1, "B's first");
        CHECK(!memcmp(pa.pred, pb.pred, sizeof pa.pred), "B, given A's state, does not answer as A does");
        free(state);
        sym_engine_destroy(g);
    }

    /* a failing step comes back as status -1 with the reason, never as silence */
    cfg.shard_count = 1;
    g = sym_engine_create_with(&cfg, &model, make_failing, &echo, &e);
    if (!g) return fprintf(stderr, "create: %s\n", e.msg), 1;
    r = req("A", 50, 999);
    CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
    CHECK(sym_engine_poll(g, &p, 1, 2000) == 1 && p.uid == 50 && p.status == -1 && strstr(p.error, "boom"),
          "failed step: status %d error '%s'", p.status, p.error);
    p = one(g, "A", 51);
    CHECK(p.pred[0] == 0, "after a failed step A saw step %g", p.pred[0]);
    sym_engine_destroy(g);

    /* rows_per_symbol: while B's step runs (200 ms), five requests of A
     * arrive; with 4 the next step answers A's first four together (one
     * t_done) and in order (the echo's step count 0..3), the fifth in the
     * step after; with 1 each of A's waits for its own step */
    for (int rps = 4; rps >= 1; rps -= 3) {
        cfg.rows_per_symbol = rps;
        slow_calls = 0;
        g = sym_engine_create_with(&cfg, &model, make_slow, &echo, &e);
        if (!g) return fprintf(stderr, "create: %s\n", e.msg), 1;
        r = req("B", 59, 0);
        CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
        struct timespec ts = {0, 50 * 1000 * 1000}; /* B's step has begun */
        nanosleep(&ts, NULL);
        for (int i = 0; i < 5; i++) {
            r = req("A", 60 + (uint64_t)i, (float)i);
            CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
        }
        sym_prediction ps[6];
        int got = 0;
        for (int tries = 0; got < 6 && tries < 50; tries++) got += sym_engine_poll(g, ps + got, 6 - got, 100);
        int in_order = got == 6 && ps[0].uid == 59, steps = 1;
        for (int i = 1; i < got; i++) {
            in_order &= ps[i].uid == 59 + (uint64_t)i && ps[i].status == 0 && ps[i].pred[0] == i - 1;
            steps += i > 1 && ps[i].t_done_ns != ps[i - 1].t_done_ns;
        }
        CHECK(in_order, "rows_per_symbol %d: B, then A's 5 answers in order with step counts 0..4 (got %d)", rps, got);
        CHECK(steps == (rps == 4 ? 2 : 5), "rows_per_symbol %d: A's 5 requests answered by %d steps", rps, steps);
        sym_engine_destroy(g);
    }
    /* with max_batch 4 and rows_per_symbol 4, five requests of A and then
     * one of C wait through B's slow step: the next step takes one row of
     * each symbol before a second of any (A 0, C 0, A 1, A 2), so C's request
     * is not left for the step after behind A's backlog */
    {
        int mb = cfg.max_batch;
        cfg.rows_per_symbol = 4, cfg.max_batch = 4;
        slow_calls = 0;
        g = sym_engine_create_with(&cfg, &model, make_slow, &echo, &e);
        if (!g) return fprintf(stderr, "create: %s\n", e.msg), 1;
        r = req("B", 70, 0);
        CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        for (int i = 0; i < 6; i++) {
            r = req(i < 5 ? "A" : "C", 71 + (uint64_t)i, (float)i);
            CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
        }
        sym_prediction ps[7];
        int got = 0;
        for (int tries = 0; got < 7 && tries < 50; tries++) got += sym_engine_poll(g, ps + got, 7 - got, 100);
        uint64_t t_done[7] = {0};
        for (int i = 0; i < got; i++)
            if (ps[i].uid >= 70 && ps[i].uid < 77 && ps[i].status == 0) t_done[ps[i].uid - 70] = ps[i].t_done_ns;
        CHECK(got == 7, "breadth first: 7 answers (got %d)", got);
        CHECK(t_done[6] && t_done[6] == t_done[1] && t_done[2] == t_done[1] && t_done[3] == t_done[1],
              "breadth first: C's request and A's first three in one step");
        CHECK(t_done[4] > t_done[1] && t_done[5] == t_done[4], "breadth first: A's last two in the step after");
        sym_engine_destroy(g);
        cfg.max_batch = mb;
    }
    cfg.rows_per_symbol = 1;
    printf("%d failures\n", failures);
    return failures != 0;
}
