/* The router's numbers, through the engine API and /metrics' text, on the
 * echo backend (two shards): each step counted once in its shard's step
 * histogram and batch rows (the rows of every shard add up to the requests
 * answered; a shard's steps equal those its paging counts), the queue depth
 * while a slow step holds requests and back at 0 once they are answered,
 * migrations done and failed with their time, rebalances; a row a shard
 * refuses is no step; and another
 * thread scraping the text all along (for TSan: it never touches the
 * router's own data). Then the restore numbers: zeros with no loss; over
 * two fake shard processes (tests/actors/fake_remote.h), one lost with a
 * request of each of its two symbols in flight, the symbols held, one
 * restored and one whose restore fails; and play's restores in the loop's
 * text. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/engine.h"
#include "net/metrics.h"
#include "sharding/hash.h"
#include "tests/actors/echo_backend.h"
#include "tests/actors/fake_remote.h"
#include "tests/check.h"

static sym_model_config model;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Echo backends where a step with features[0] == 777 first sleeps 500 ms
 * (requests sent meanwhile wait in the shard), and shard 1 refuses to
 * import a state (a move onto it fails). */
static sym_backend_ops ops[2];
static int (*echo_step)(sym_backend *, int, const int32_t *, const float *, double *, sym_err *);
static int slow_step(sym_backend *b, int B, const int32_t *slots, const float *f, double *out, sym_err *e) {
    for (int r = 0; r < B; r++)
        if (f[(size_t)r * (size_t)b->cfg.features] == 777) sleep_ms(500);
    return echo_step(b, B, slots, f, out, e);
}
static int refuse_import(sym_backend *b, int32_t slot, const void *src, sym_err *e) {
    (void)b, (void)slot, (void)src;
    return sym_fail(e, "import refused");
}
static sym_backend *make(void *ctx, int shard, sym_err *e) {
    sym_backend *b = sym_echo_backend_make(ctx, shard, e);
    if (!b) return NULL;
    int k = shard == 1;
    ops[k] = *b->ops;
    echo_step = b->ops->step;
    ops[k].step = slow_step;
    if (k) ops[k].import_slot = refuse_import;
    b->ops = &ops[k];
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

/* Polls until n predictions came back; returns how many did. */
static int answers(sym_engine *g, int n) {
    sym_prediction p[64];
    int got = 0;
    while (got < n) {
        int k = sym_engine_poll(g, p, 64, 5000);
        if (k <= 0) break;
        for (int i = 0; i < k; i++) CHECK(p[i].status == 0, "uid %llu: %s", (unsigned long long)p[i].uid, p[i].error);
        got += k;
    }
    return got;
}

static sym_shard_stats stats(sym_engine *g, int shard) {
    sym_shard_stats s;
    sym_err e = {{0}};
    memset(&s, 0, sizeof s);
    CHECK(!sym_engine_shard_stats(g, shard, &s, &e), "shard stats %d: %s", shard, e.msg);
    return s;
}

/* Waits (up to ms) for shard's queue depth to be want; returns the last seen. */
static int wait_depth(sym_engine *g, int shard, int want, int ms) {
    int d = -1;
    for (int t = 0; t <= ms; t += 5) {
        if ((d = stats(g, shard).queue_depth) == want) break;
        sleep_ms(5);
    }
    return d;
}

/* The value of sample name (with its labels, as written) in text; -1 when absent. */
static double sample(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ') return strtod(p + n + 1, NULL);
    return -1;
}

/* Checks one shard's numbers against each other and its paging counts. */
static void check_shard(sym_engine *g, int shard) {
    sym_shard_stats s = stats(g, shard);
    sym_paging_stats pg;
    sym_err e = {{0}};
    CHECK(!sym_engine_paging(g, shard, &pg, &e), "paging %d: %s", shard, e.msg);
    uint64_t sum = 0;
    for (int b = 0; b <= SYM_STEP_BUCKETS; b++) sum += s.step_count[b];
    CHECK(sum == s.steps, "shard %d: buckets add up to %llu, steps %llu", shard, (unsigned long long)sum,
          (unsigned long long)s.steps);
    CHECK(s.steps == pg.steps, "shard %d: %llu steps in the histogram, %llu ran", shard, (unsigned long long)s.steps,
          (unsigned long long)pg.steps);
    CHECK(s.steps <= s.rows, "shard %d: %llu steps of %llu rows", shard, (unsigned long long)s.steps,
          (unsigned long long)s.rows);
    CHECK(s.steps == 0 || s.step_ns > 0, "shard %d: %llu steps in no time", shard, (unsigned long long)s.steps);
}

/* Another thread renders /metrics' text again and again meanwhile; it
 * counts the scrapes, and those without the step histogram. */
static atomic_int scraping;
static int scrapes, bad_scrapes;
static void *scraper(void *arg) {
    sym_engine *g = arg;
    while (atomic_load(&scraping)) {
        size_t len;
        char *t = sym_metrics_render(NULL, g, &len);
        if (!t || !strstr(t, "symserve_shard_step_seconds_count")) bad_scrapes++;
        free(t);
        scrapes++;
        sleep_ms(1);
    }
    return NULL;
}

/* The restore numbers in the text: held, done, failed, replayed, re-issued. */
static int restore_text_is(sym_engine *g, double held, double done, double failed, double replayed, double reissued) {
    size_t len;
    char *t = sym_metrics_render(NULL, g, &len);
    int ok = t && sample(t, "symserve_symbols_held") == held &&
             sample(t, "symserve_symbol_restores_total{result=\"done\"}") == done &&
             sample(t, "symserve_symbol_restores_total{result=\"failed\"}") == failed &&
             sample(t, "symserve_restore_replayed_steps_total") == replayed &&
             sample(t, "symserve_restore_reissued_requests_total") == reissued &&
             strstr(t, "# TYPE symserve_symbols_held gauge\n") && strstr(t, "# TYPE symserve_symbol_restores_total counter\n");
    if (!ok) fprintf(stderr, "%s", t ? t : "(out of memory)\n");
    free(t);
    return ok;
}

/* Two fake shard processes; shard 1 is lost with a request of P and of Q
 * in flight, each answered once before. P is restored (its step replayed,
 * the taken request re-issued), Q's end fails (its taken request not
 * named). */
static void lost_shard_numbers(void) {
    sym_config cfg;
    sym_config_defaults(&cfg);
    cfg.shard_count = 2;
    cfg.n_shard_endpoints = 2;
    snprintf(cfg.shard_endpoints[0], sizeof cfg.shard_endpoints[0], "fake://0");
    snprintf(cfg.shard_endpoints[1], sizeof cfg.shard_endpoints[1], "fake://1");
    cfg.max_symbols = 16;
    cfg.status_interval_s = 0;
    sym_fake_remotes *fake = sym_fake_remotes_create(&model, &cfg);
    sym_shard_connector conn = fake ? sym_fake_remotes_connector(fake) : (sym_shard_connector){0};
    sym_err e = {{0}};
    sym_engine *g = fake ? sym_engine_create_connected(&cfg, &conn, &e) : NULL;
    CHECK(g, "create over fake shard processes: %s", e.msg);
    if (!g) {
        sym_fake_remotes_free(fake);
        return;
    }
    char names[2][16];
    int n = 0;
    for (int i = 0; n < 2 && i < 1000; i++) { /* two symbols of shard 1 */
        snprintf(names[n], sizeof names[n], "P%d", i);
        n += sym_hash_rendezvous(sym_hash_symbol(names[n], cfg.hash_seed), cfg.hash_seed, 2) == 1;
    }
    CHECK(!sym_engine_hold_lost(g, &e), "hold_lost: %s", e.msg);
    CHECK(restore_text_is(g, 0, 0, 0, 0, 0), "restore numbers before any loss");
    sym_request q[2][2];
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++) q[s][k] = req(names[s], (uint64_t)(10 * s + k + 1), (float)(k + 1));
    for (int s = 0; s < 2; s++) CHECK(!sym_engine_submit(g, &q[s][0], &e), "submit: %s", e.msg);
    CHECK(answers(g, 2) == 2, "answers before the loss");
    sym_fake_remote_hold(fake, 1);
    for (int s = 0; s < 2; s++) CHECK(!sym_engine_submit(g, &q[s][1], &e), "submit: %s", e.msg);
    for (int t = 0; t < 5000 && sym_fake_remote_taken(fake, 1) < 2; t++) sleep_ms(1);
    sym_fake_remote_lose(fake, 1);
    for (int t = 0; t < 5000 && sym_engine_shards_lost(g) < 1; t++) sleep_ms(1);
    CHECK(sym_engine_shards_lost(g) == 1, "shard 1 not lost");
    CHECK(restore_text_is(g, 2, 0, 0, 0, 0), "restore numbers with two symbols held");
    for (int s = 0; s < 2; s++) {
        CHECK(sym_engine_restore_begin(g, names[s], NULL, &e) == 0, "begin %s: %s", names[s], e.msg);
        CHECK(!sym_engine_restore_step(g, &q[s][0], &e), "step %s: %s", names[s], e.msg);
    }
    CHECK(!sym_engine_restore_reissue(g, &q[0][1], &e), "reissue: %s", e.msg);
    CHECK(sym_engine_restore_end(g, names[0], &e) == 1, "end %s: %s", names[0], e.msg);
    CHECK(sym_engine_restore_end(g, names[1], &e) < 0, "end %s without its taken request did not fail", names[1]);
    CHECK(answers(g, 1) == 1, "the re-issued request not answered");
    CHECK(restore_text_is(g, 1, 1, 1, 2, 1), "restore numbers after one restore done and one failed");
    sym_engine_destroy(g);
    sym_fake_remotes_free(fake);
}

/* play's restores, as its loop publishes them with a store. */
static void play_restore_text(void) {
    sym_metrics_loop l = {.has_store = 1, .restores = 3, .restore_s = 0.25};
    size_t len;
    char *t = sym_metrics_render(&l, NULL, &len);
    CHECK(t && sample(t, "symserve_state_restores_total") == 3 && sample(t, "symserve_state_restore_seconds_total") == 0.25 &&
              strstr(t, "# TYPE symserve_state_restore_seconds_total counter\n"),
          "play's restores in the loop's text");
    free(t);
    l.has_store = 0;
    t = sym_metrics_render(&l, NULL, &len);
    CHECK(t && sample(t, "symserve_state_restores_total") == -1, "play's restores without a store");
    free(t);
}

int main(void) {
    model = sym_model_config_small();
    sym_config cfg;
    sym_config_defaults(&cfg);
    cfg.shard_count = 2;
    cfg.max_symbols = 64;
    cfg.status_interval_s = 0;
    sym_echo_factory echo = {&model, &cfg, 0};
    sym_err e = {{0}};
    sym_engine *g = sym_engine_create_with(&cfg, &model, make, &echo, &e);
    if (!g) return fprintf(stderr, "create: %s\n", e.msg), 1;
    CHECK(restore_text_is(g, 0, 0, 0, 0, 0), "restore numbers with no shard process");
    pthread_t th;
    atomic_store(&scraping, 1);
    if (pthread_create(&th, NULL, scraper, g)) return fprintf(stderr, "no thread\n"), 1;

    /* a stream over 40 symbols on both shards */
    int sent = 0;
    char name[16];
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 40; i++) {
            snprintf(name, sizeof name, "S%02d", i);
            sym_request r = req(name, (uint64_t)++sent, 1);
            CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
        }
    CHECK(answers(g, sent) == sent, "not every request answered");
    uint64_t rows = 0;
    for (int s = 0; s < 2; s++) {
        check_shard(g, s);
        rows += stats(g, s).rows;
        CHECK(wait_depth(g, s, 0, 2000) == 0, "shard %d's queue depth after the stream", s);
    }
    CHECK(rows == (uint64_t)sent, "the shards' batches hold %llu rows, %d were answered", (unsigned long long)rows, sent);
    CHECK(sym_engine_shard_stats(g, 2, &(sym_shard_stats){0}, &e) && strstr(e.msg, "out of range"),
          "stats of shard 2 of 2: %s", e.msg);

    /* a slow step holds the requests sent after it in the shard: they are its queue */
    const char *slow = "S00";
    int on = sym_engine_symbol_shard(g, slow);
    CHECK(on == 0 || on == 1, "S00 on shard %d", on);
    if (on < 0) on = 0;
    sym_request r = req(slow, (uint64_t)++sent, 777);
    CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
    for (int i = 0; i < 9; i++) {
        r = req(slow, (uint64_t)++sent, 1);
        CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
    }
    int d = wait_depth(g, on, 10, 400);
    CHECK(d == 10, "queue depth %d during the slow step, not 10", d);
    size_t len;
    char *t = sym_metrics_render(NULL, g, &len);
    char key[96];
    snprintf(key, sizeof key, "symserve_shard_queue_depth{shard=\"%d\"}", on);
    CHECK(t && sample(t, key) == 10, "%s is %g in the text, not 10", key, t ? sample(t, key) : -1);
    free(t);
    CHECK(answers(g, 10) == 10, "the slow symbol's requests not answered");
    CHECK(wait_depth(g, on, 0, 2000) == 0, "queue depth after the slow step");
    sym_shard_stats s = stats(g, on);
    CHECK(s.step_count[SYM_STEP_BUCKETS] + s.step_count[SYM_STEP_BUCKETS - 1] >= 1,
          "the 500 ms step is in no bucket over %g s", (double)sym_step_le_ns[SYM_STEP_BUCKETS - 2] * 1e-9);

    /* migrations: one done, one onto shard 1 refused, one to where the symbol is (none) */
    sym_migration_stats m0, m;
    sym_engine_migration_stats(g, &m0);
    CHECK(m0.done == 0 && m0.failed == 0 && m0.ns == 0 && m0.rebalances == 0, "migrations before any");
    const char *to0 = NULL, *to1 = NULL;
    static char n0[16], n1[16];
    for (int i = 0; i < 40 && (!to0 || !to1); i++) {
        snprintf(name, sizeof name, "S%02d", i);
        int sh = sym_engine_symbol_shard(g, name);
        if (sh == 1 && !to0) to0 = strcpy(n0, name);
        if (sh == 0 && !to1) to1 = strcpy(n1, name);
    }
    CHECK(to0 && to1, "no symbol on each shard");
    if (to0 && to1) {
        CHECK(!sym_engine_migrate(g, to0, 0, &e), "migrate %s to 0: %s", to0, e.msg);
        CHECK(sym_engine_migrate(g, to1, 1, &e) && strstr(e.msg, "import refused"), "migrate %s to 1: %s", to1, e.msg);
        CHECK(!sym_engine_migrate(g, to0, 0, &e), "migrate %s to 0 again: %s", to0, e.msg);
        sym_engine_migration_stats(g, &m);
        CHECK(m.done == 1 && m.failed == 1 && m.ns > 0 && m.rebalances == 0,
              "after a move, a failed one and one to where it is: done %llu failed %llu, %llu ns, %llu rebalances",
              (unsigned long long)m.done, (unsigned long long)m.failed, (unsigned long long)m.ns,
              (unsigned long long)m.rebalances);
    }
    /* a rebalance to one shard: shard 1's symbols move to 0 (its export works) */
    CHECK(!sym_engine_rebalance(g, 1, &e), "rebalance to 1: %s", e.msg);
    sym_engine_migration_stats(g, &m);
    CHECK(m.rebalances == 1 && m.done > 1 && m.failed == 1, "after a rebalance: done %llu failed %llu, %llu rebalances",
          (unsigned long long)m.done, (unsigned long long)m.failed, (unsigned long long)m.rebalances);
    t = sym_metrics_render(NULL, g, &len);
    CHECK(t && sample(t, "symserve_rebalances_total") == 1, "symserve_rebalances_total %g", t ? sample(t, "symserve_rebalances_total") : -1);
    CHECK(t && sample(t, "symserve_migrations_total{result=\"done\"}") == (double)m.done &&
              sample(t, "symserve_migrations_total{result=\"failed\"}") == 1,
          "symserve_migrations_total in the text");
    CHECK(t && sample(t, "symserve_migration_seconds_total") > 0, "symserve_migration_seconds_total");
    CHECK(t && sample(t, "symserve_shards") == 1 && sample(t, "symserve_shard_queue_depth{shard=\"1\"}") == -1,
          "the text still has shard 1");
    free(t);
    /* every symbol answers on the one shard left, and is counted there */
    uint64_t before = stats(g, 0).rows;
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "S%02d", i);
        r = req(name, (uint64_t)++sent, 1);
        CHECK(!sym_engine_submit(g, &r, &e), "submit: %s", e.msg);
    }
    CHECK(answers(g, 40) == 40, "not every request answered after the rebalance");
    CHECK(stats(g, 0).rows == before + 40, "shard 0 counted %llu rows of 40",
          (unsigned long long)(stats(g, 0).rows - before));
    check_shard(g, 0);
    CHECK(wait_depth(g, 0, 0, 2000) == 0, "queue depth after the rebalance");

    atomic_store(&scraping, 0);
    pthread_join(th, NULL);
    CHECK(scrapes > 0 && !bad_scrapes, "%d scrapes, %d without the step histogram", scrapes, bad_scrapes);
    sym_engine_destroy(g);

    /* a row the shard refuses (its one slot taken, no tier) is no step */
    cfg.shard_count = 1;
    cfg.slots_per_shard = 1;
    cfg.host_tier_mb = 0;
    if (!(g = sym_engine_create_with(&cfg, &model, sym_echo_backend_make, &echo, &e)))
        return fprintf(stderr, "create: %s\n", e.msg), 1;
    sym_prediction p;
    r = req("A", 1, 1);
    CHECK(!sym_engine_submit(g, &r, &e) && sym_engine_poll(g, &p, 1, 5000) == 1 && p.status == 0, "A: %s", p.error);
    r = req("B", 2, 1);
    CHECK(!sym_engine_submit(g, &r, &e) && sym_engine_poll(g, &p, 1, 5000) == 1 && p.status == -1, "B not refused");
    s = stats(g, 0);
    CHECK(s.steps == 1 && s.rows == 1, "one step of A and B's refusal: %llu steps, %llu rows", (unsigned long long)s.steps,
          (unsigned long long)s.rows);
    check_shard(g, 0);
    CHECK(wait_depth(g, 0, 0, 2000) == 0, "queue depth after a refusal");
    sym_engine_destroy(g);

    lost_shard_numbers();
    play_restore_text();
    if (!failures)
        printf("PASS step histogram and batch rows per shard, queue depth, migrations (%d scrapes meanwhile), restores\n",
               scrapes);
    return failures != 0;
}
