/* The router's hold and restore of a lost shard process's symbols
 * (actors/router_lost.c), through the engine's calls, over three fake
 * shard processes (fake_remote.h) on the echo backend, with this test in
 * the restorer's place (state/restorer.c drives the same calls from the
 * log). Shard 2 takes queue_capacity requests of its symbols and keeps
 * them (in flight), more wait in the router for its credit, then it is
 * lost:
 *  - the loss is counted once every request sent to it came back failed,
 *    and no answer of its symbols reaches poll() from then until their
 *    restore: neither the failed ones nor those submitted during the hold;
 *  - a symbol never seen before goes to a live shard during the hold;
 *  - the held list names the lost shard's symbols (for its loss count);
 *  - each restore places its symbol on the rendezvous winner among the
 *    live shards; one from an exported state (a snapshot) replays the
 *    steps after it, one from the initial state replays them all; the
 *    end re-issues the requests the lost shard took, then releases the
 *    held ones: every request of those symbols is answered exactly once,
 *    in submission order, on the state the lost shard had (the echo's
 *    step count and running sum say so);
 *  - a re-issue that names another request than the one the lost shard
 *    took first (the end's error names that one), and an end with the
 *    taken requests not named, fail the end as the code says, and those
 *    symbols stay held, unanswered;
 *  - bad calls (a symbol not held, an unknown one, an end before its
 *    begin) are refused;
 *  - sym_engine_held_stats counts the held symbols, the restores done and
 *    failed, the replayed steps and the re-issued requests.
 * Every wait is bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/engine.h"
#include "sharding/hash.h"
#include "tests/actors/fake_remote.h"
#include "tests/check.h"

#define N_SHARDS 3
#define LOST 2  /* the shard that is lost */
#define CAP 16  /* queue_capacity: the router's credit per shard, and its pool of requests waiting */
#define N_SYMS 6
#define MAX_REQ 32
#define WAIT_MS 10000

enum { A, B, C, D, X, N }; /* A-D and N hash to the lost shard, X to a live one; N is new during the hold */

typedef struct {
    char name[16];
    sym_request req[MAX_REQ]; /* as submitted, in order */
    int n;
    int answered; /* answers polled, each checked to be the next one */
    int before;   /* answered before the loss */
    int held;     /* no answer may come now */
} track;

static sym_model_config model;
static sym_config cfg;
static track sy[N_SYMS];

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Request k of symbol s: unique_id s*1000+k+1, features[0] = its uid (a
 * running sum then says which requests a state has stepped). */
static void submit(sym_engine *g, int s) {
    track *t = &sy[s];
    sym_request *r = &t->req[t->n];
    memset(r, 0, sizeof *r);
    r->uid = (uint64_t)(s * 1000 + t->n + 1);
    strcpy(r->symbol, t->name); /* a name of under 16 bytes */
    r->n_features = model.features;
    r->features[0] = (float)r->uid;
    t->n++;
    sym_err e = {{0}};
    CHECK(!sym_engine_submit(g, r, &e), "submit %s: %s", t->name, e.msg);
}

/* The running sum of features[0] over a symbol's first k+1 requests. */
static double sum_upto(const track *t, int k) {
    double s = 0;
    for (int i = 0; i <= k; i++) s += t->req[i].features[0];
    return s;
}

/* One answer: of a symbol not held, the next of its requests, stepped on
 * a state that has stepped every earlier one once, in order. */
static void take(const sym_prediction *p) {
    int s = (int)((p->uid - 1) / 1000), k = (int)((p->uid - 1) % 1000);
    if (s < 0 || s >= N_SYMS) {
        CHECK(0, "an answer of unique_id %llu, never submitted", (unsigned long long)p->uid);
        return;
    }
    track *t = &sy[s];
    CHECK(p->status == 0, "%s: unique_id %llu failed: %s", t->name, (unsigned long long)p->uid, p->error);
    CHECK(!t->held, "%s: unique_id %llu answered while the symbol is held", t->name, (unsigned long long)p->uid);
    CHECK(k == t->answered, "%s: request %d answered where request %d was next", t->name, k, t->answered);
    CHECK(p->pred[0] == k && p->pred[3] == sum_upto(t, k),
          "%s: request %d stepped on a state of %g steps summing %g (want %d, %g)", t->name, k, p->pred[0], p->pred[3],
          k, sum_upto(t, k));
    t->answered++;
}

/* Polls until n answers came (each checked), or WAIT_MS; how many came. */
static int answers(sym_engine *g, int n) {
    sym_prediction p[64];
    int got = 0;
    while (got < n) {
        int k = sym_engine_poll(g, p, n - got < 64 ? n - got : 64, WAIT_MS);
        if (k <= 0) break;
        for (int i = 0; i < k; i++) take(&p[i]);
        got += k;
    }
    return got;
}

/* Nothing more comes within ms. */
static int quiet(sym_engine *g, int ms) {
    sym_prediction p;
    int k = sym_engine_poll(g, &p, 1, ms);
    if (k > 0) take(&p);
    return k == 0;
}

static int depth(sym_engine *g, int shard) {
    sym_shard_stats s;
    sym_err e = {{0}};
    return sym_engine_shard_stats(g, shard, &s, &e) ? -1 : s.queue_depth;
}

/* Waits (bounded) until shard's queue depth is want; the last seen. */
static int wait_depth(sym_engine *g, int shard, int want) {
    int d = -1;
    for (int t = 0; t <= WAIT_MS && (d = depth(g, shard)) != want; t += 2) sleep_ms(2);
    return d;
}

static int owner(const char *name, const unsigned char *skip) {
    uint64_t key = sym_hash_symbol(name, cfg.hash_seed);
    return skip ? sym_hash_rendezvous_among(key, cfg.hash_seed, N_SHARDS, skip)
                : sym_hash_rendezvous(key, cfg.hash_seed, N_SHARDS);
}

/* Names: A-D and N on the lost shard, X on another. */
static void pick_names(void) {
    static const int on_lost[] = {A, B, C, D, N};
    char name[16];
    for (int i = 0, k = 0; k < 5 && i < 1000; i++) {
        snprintf(name, sizeof name, "L%d", i);
        if (owner(name, NULL) == LOST) snprintf(sy[on_lost[k++]].name, sizeof sy[0].name, "%s", name);
    }
    for (int i = 0; !sy[X].name[0] && i < 1000; i++) {
        snprintf(name, sizeof name, "X%d", i);
        if (owner(name, NULL) != LOST) snprintf(sy[X].name, sizeof sy[X].name, "%s", name);
    }
}

static sym_held_stats held_stats(sym_engine *g) {
    sym_held_stats h;
    sym_engine_held_stats(g, &h);
    return h;
}

/* The restorer's part for symbol s: begin (from state, NULL: the initial
 * one) on the live winner, its answered steps after the state's (steps),
 * then its unanswered requests in order: reissue[k] names which. Returns
 * the end's answer (e has its error). */
static int restore(sym_engine *g, int s, const void *state, int steps, const int *reissue, int n_reissue, sym_err *e) {
    static const unsigned char skip[N_SHARDS] = {[LOST] = 1};
    track *t = &sy[s];
    int live = owner(t->name, skip), on = sym_engine_restore_begin(g, t->name, state, e);
    CHECK(on == live && on != LOST, "%s restored onto shard %d, not the live winner %d: %s", t->name, on, live, e->msg);
    CHECK(sym_engine_symbol_shard(g, t->name) == on, "%s placed on shard %d, begun on %d", t->name,
          sym_engine_symbol_shard(g, t->name), on);
    for (int k = steps; k < t->before; k++)
        CHECK(!sym_engine_restore_step(g, &t->req[k], e), "%s: step %d: %s", t->name, k, e->msg);
    for (int i = 0; i < n_reissue; i++)
        CHECK(!sym_engine_restore_reissue(g, &t->req[reissue[i]], e), "%s: reissue %d: %s", t->name, reissue[i], e->msg);
    return sym_engine_restore_end(g, t->name, e);
}

int main(void) {
    model = sym_model_config_small();
    sym_config_defaults(&cfg);
    cfg.shard_count = N_SHARDS;
    cfg.n_shard_endpoints = N_SHARDS;
    for (int i = 0; i < N_SHARDS; i++) snprintf(cfg.shard_endpoints[i], sizeof cfg.shard_endpoints[i], "fake://%d", i);
    cfg.max_symbols = 32;
    cfg.queue_capacity = CAP;
    cfg.status_interval_s = 0;
    pick_names();
    for (int s = 0; s < N_SYMS; s++)
        if (!sy[s].name[0]) return fprintf(stderr, "no name for symbol %d\n", s), 1;
    sym_fake_remotes *fake = sym_fake_remotes_create(&model, &cfg);
    if (!fake) return fprintf(stderr, "out of memory\n"), 1;
    sym_shard_connector conn = sym_fake_remotes_connector(fake);
    sym_err e = {{0}};
    sym_engine *g = sym_engine_create_connected(&cfg, &conn, &e);
    if (!g) return fprintf(stderr, "create: %s\n", e.msg), 1;
    CHECKV(sym_engine_model(g)->features == model.features, "the engine over three fake shard processes");
    CHECKV(!sym_engine_hold_lost(g, &e), "hold_lost: %s", e.msg);
    sym_held_stats h = held_stats(g);
    CHECK(!h.held && !h.restored && !h.failed && !h.replayed && !h.reissued, "held stats before any loss");

    /* served by the shard that will be lost: A has a "snapshot" after 2 steps */
    char names[8][SYM_SYMBOL_MAX + 1];
    size_t slot_bytes = sym_engine_slot_bytes(g);
    void *snap_a = calloc(1, slot_bytes ? slot_bytes : 1);
    if (!snap_a) return fprintf(stderr, "out of memory\n"), 1;
    submit(g, A), submit(g, A);
    CHECK(answers(g, 2) == 2, "A's first answers");
    CHECK(sym_engine_export_symbol(g, sy[A].name, snap_a, &e) == 1, "export A: %s", e.msg);
    submit(g, A);
    for (int k = 0; k < 3; k++) submit(g, B), submit(g, C), submit(g, D), submit(g, X);
    CHECKV(answers(g, 13) == 13, "answers before the loss, in order");
    for (int s = A; s <= D; s++) {
        CHECK(sym_engine_symbol_shard(g, sy[s].name) == LOST, "%s on shard %d", sy[s].name,
              sym_engine_symbol_shard(g, sy[s].name));
        sy[s].before = sy[s].answered;
    }

    /* shard 2 keeps what it takes: CAP requests in flight, 4 more wait for its credit */
    sym_fake_remote_hold(fake, LOST);
    for (int k = 0; k < 5; k++)
        for (int s = A; s <= D; s++) submit(g, s);
    submit(g, X), submit(g, X);
    int taken = 0;
    for (int t = 0; t <= WAIT_MS && (taken = sym_fake_remote_taken(fake, LOST)) < CAP; t += 2) sleep_ms(2);
    CHECK(taken == CAP, "the shard to be lost took %d requests, not %d", taken, CAP);
    int d = wait_depth(g, LOST, CAP + 4);
    CHECKV(taken == CAP && d == CAP + 4, "%d requests in flight to shard %d and %d waiting for its credit", taken, LOST,
           d - taken);
    CHECK(answers(g, 2) == 2, "X's answers while shard %d holds its requests", LOST);

    /* lost: its symbols held, their failed answers kept */
    for (int s = A; s <= D; s++) sy[s].held = 1;
    sym_fake_remote_lose(fake, LOST);
    int lost = 0;
    for (int t = 0; t <= WAIT_MS && (lost = sym_engine_shards_lost(g)) < 1; t += 2) sleep_ms(2);
    CHECKV(lost == 1, "the loss counted once every request sent to it came back (%d)", lost);
    CHECKV(wait_depth(g, LOST, 0) == 0, "nothing in flight to or waiting for the lost shard");
    h = held_stats(g);
    CHECKV(h.held == 4 && !h.restored && !h.failed, "4 symbols held (%d)", h.held);

    /* during the hold: held symbols' new requests wait; a new symbol and X are served */
    for (int s = A; s <= D; s++) submit(g, s);
    submit(g, N), submit(g, X);
    CHECKV(answers(g, 2) == 2, "a new symbol and a live one served during the hold");
    static const unsigned char skip[N_SHARDS] = {[LOST] = 1};
    int on = sym_engine_symbol_shard(g, sy[N].name);
    CHECKV(on != LOST && on == owner(sy[N].name, skip), "%s, new, of shard %d by its hash, placed on live shard %d",
           sy[N].name, LOST, on);
    CHECKV(quiet(g, 100), "no answer of a held symbol (failed or held) reaches poll()");

    CHECKV(sym_engine_held_symbols(g, 0, names, 8, &e) == 0, "no held symbol among the first 0 losses");
    int n = sym_engine_held_symbols(g, 1, names, 8, &e);
    int listed = 0;
    for (int i = 0; i < n; i++)
        for (int s = A; s <= D; s++) listed += !strcmp(names[i], sy[s].name);
    CHECKV(n == 4 && listed == 4, "the held list names A-D (%d names, %d of them): %s", n, listed, n < 0 ? e.msg : "");

    /* bad calls */
    CHECKV(sym_engine_restore_begin(g, sy[X].name, NULL, &e) < 0 && strstr(e.msg, "not a symbol held"),
           "a restore of a symbol not held refused: %s", e.msg);
    CHECKV(sym_engine_restore_begin(g, "NOPE", NULL, &e) < 0 && strstr(e.msg, "unknown symbol"),
           "a restore of an unknown symbol refused: %s", e.msg);
    CHECKV(sym_engine_restore_end(g, sy[B].name, &e) < 0 && strstr(e.msg, "has not begun"),
           "an end before its begin refused: %s", e.msg);
    h = held_stats(g);
    CHECK(h.held == 4 && !h.failed, "bad calls counted as failed restores: held %d, failed %llu", h.held,
          (unsigned long long)h.failed);

    /* A from its snapshot (2 steps): the steps after it replayed, the taken re-issued, then the held */
    int unanswered[MAX_REQ], n_un = 0;
    for (int k = sy[A].before; k < sy[A].n; k++) unanswered[n_un++] = k;
    sy[A].held = 0;
    int re = restore(g, A, snap_a, 2, unanswered, n_un, &e);
    CHECKV(re == 4, "A restored from its snapshot: %d taken requests re-issued (%s)", re, re < 0 ? e.msg : "");
    int want = sy[A].n - sy[A].before;
    CHECKV(answers(g, want) == want && sy[A].answered == sy[A].n,
           "A: each of its %d requests answered once, in order, on its state", sy[A].n);

    /* B from the initial state: every answered step replayed */
    n_un = 0;
    for (int k = sy[B].before; k < sy[B].n; k++) unanswered[n_un++] = k;
    sy[B].held = 0;
    re = restore(g, B, NULL, 0, unanswered, n_un, &e);
    CHECKV(re == 4, "B restored from the initial state: %d taken requests re-issued (%s)", re, re < 0 ? e.msg : "");
    want = sy[B].n - sy[B].before;
    CHECKV(answers(g, want) == want && sy[B].answered == sy[B].n,
           "B: each of its %d requests answered once, in order, on its state", sy[B].n);

    /* C: the re-issues skip the first request the lost shard took */
    n_un = 0;
    for (int k = sy[C].before + 1; k < sy[C].n; k++) unanswered[n_un++] = k;
    re = restore(g, C, NULL, 0, unanswered, n_un, &e);
    char first[120]; /* the first re-issue out of order is named, not the ones after it */
    snprintf(first, sizeof first, "next unanswered request of it is unique_id %llu, its lost shard took %llu",
             (unsigned long long)sy[C].req[sy[C].before + 1].uid, (unsigned long long)sy[C].req[sy[C].before].uid);
    CHECKV(re < 0 && strstr(e.msg, first), "C: a re-issue out of order fails its end: %s", e.msg);
    /* D: the requests the lost shard took are not named */
    re = restore(g, D, NULL, 0, NULL, 0, &e);
    CHECKV(re < 0 && strstr(e.msg, "not in the log as unanswered"), "D: taken requests not named fail its end: %s",
           e.msg);
    CHECKV(quiet(g, 100), "C and D stay held: none of their requests answered");
    h = held_stats(g);
    int replayed = (sy[A].before - 2) + sy[B].before + sy[C].before + sy[D].before;
    CHECKV(h.held == 2 && h.restored == 2 && h.failed == 2 && h.replayed == (uint64_t)replayed && h.reissued == 8,
           "held stats: %d held, %llu restored, %llu failed, %llu of %d steps replayed, %llu of 8 re-issued", h.held,
           (unsigned long long)h.restored, (unsigned long long)h.failed, (unsigned long long)h.replayed, replayed,
           (unsigned long long)h.reissued);

    /* the restored symbols are served as any other */
    submit(g, A), submit(g, B), submit(g, X);
    CHECKV(answers(g, 3) == 3 && quiet(g, 50), "A and B served again after their restore");
    CHECK(sym_engine_shards_lost(g) == 1, "losses %d", sym_engine_shards_lost(g));

    sym_engine_destroy(g);
    sym_fake_remotes_free(fake);
    free(snap_a);
    if (!failures) printf("PASS hold and restore of a lost shard process's symbols\n");
    return failures != 0;
}
