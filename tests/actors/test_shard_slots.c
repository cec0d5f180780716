/* A shard actor on its own, driven through its mailboxes as the router
 * drives it: the slot messages (EXPORT, IMPORT, RELEASE) move a symbol's
 * state between two shards through a pool buffer, an EXPORT that waits for
 * the symbol's queued requests answers after their predictions, an export
 * reports the state's step count where the backend's slots carry one, bad
 * imports and unknown symbols are refused with a reason and change
 * nothing, and every backend call runs on the owning shard's thread. */
#include <stdio.h>
#include <string.h>

#include "actors/shard.h"
#include "kernels/weights.h"
#include "tests/actors/echo_backend.h"
#include "tests/actors/thread_check_backend.h"
#include "tests/check.h"

static sym_model_config model;
static sym_doorbell bell; /* the "router's" */
static sym_slot_pool pool;

static sym_shard *shard(int index, sym_backend *inner) {
    sym_err e;
    sym_backend *b = inner ? sym_thread_check_wrap(inner, &e) : NULL;
    sym_shard_params p = {.index = index, .n_ids = 8, .queue_cap = 16, .max_batch = 4, .rows_per_symbol = 1,
                          .features = model.features, .idle_spin_us = 50};
    sym_shard *s = b ? sym_shard_create(&p, b, &bell, &pool, &e) : NULL;
    if (!s || sym_shard_start(s, &e)) {
        fprintf(stderr, "shard %d: %s\n", index, e.msg);
        return NULL;
    }
    return s;
}

static void send(sym_shard *s, int type, int sym, int buf, float x) {
    sym_msg m = {.type = type, .sym = sym, .token = 77};
    if (type == SYM_MSG_STEP_REQ) {
        m.u.req.n_features = model.features;
        m.u.req.features[0] = x;
        m.u.req.uid = (uint64_t)(sym * 100 + (int)x);
    } else {
        m.u.io.buf = buf;
        m.u.io.after_queued = 1;
    }
    sym_mailbox_push(sym_shard_inbox(s), &m);
}

/* The shard's next message, waiting up to 2 s; type 0 when none came. */
static sym_msg next(sym_shard *s) {
    sym_msg m = {0};
    for (int i = 0; i < 200; i++) {
        unsigned seen = sym_doorbell_seq(&bell);
        if (sym_mailbox_pop(sym_shard_outbox(s), &m)) return m;
        sym_doorbell_wait(&bell, seen, 10 * 1000 * 1000);
    }
    m.type = 0;
    return m;
}

static void stop(sym_shard *s) {
    sym_shard_stop(s);
    sym_shard_join_destroy(s);
}

static void echo_shards(void) {
    sym_err e;
    sym_shard *a = shard(0, sym_echo_backend_create(&model, 8, 4, &e)),
              *b = shard(1, sym_echo_backend_create(&model, 8, 4, &e));
    if (!a || !b) return (void)failures++;
    int buf = sym_slot_pool_acquire(&pool);
    CHECK(buf >= 0, "no buffer");

    /* three requests of symbol 2, then its export: the answer comes after
     * their three predictions, with the state they left */
    for (int k = 0; k < 3; k++) send(a, SYM_MSG_STEP_REQ, 2, 0, (float)(k + 1));
    send(a, SYM_MSG_EXPORT, 2, buf, 0);
    int done = 0;
    sym_msg m;
    while ((m = next(a)).type == SYM_MSG_DONE) done += m.u.pred.status == 0;
    CHECK(done == 3, "predictions before the export: %d", done);
    CHECK(m.type == SYM_MSG_EXPORTED && m.u.io.status == 0 && m.sym == 2 && m.shard == 0 && m.token == 77 &&
              m.u.io.buf == buf && m.slot >= 0,
          "EXPORTED: type %d status %d (%s)", m.type, m.u.io.status, m.u.io.error);
    CHECK(m.u.io.steps == -1, "the echo backend's slots have no step header, yet steps %lld", (long long)m.u.io.steps);
    size_t len = 0;
    const double *st = sym_slot_pool_bytes(&pool, buf, &len);
    CHECK(st && len == 2 * sizeof(double) && st[0] == 3 && st[1] == 6, "exported state: %zu bytes", len);

    /* into shard 1: symbol 2 carries on from step 3 there */
    send(b, SYM_MSG_IMPORT, 2, buf, 0);
    m = next(b);
    CHECK(m.type == SYM_MSG_IMPORTED && m.u.io.status == 0 && m.slot >= 0 && m.token == 77,
          "IMPORTED: type %d status %d (%s)", m.type, m.u.io.status, m.u.io.error);
    send(b, SYM_MSG_STEP_REQ, 2, 0, 4);
    m = next(b);
    CHECK(m.type == SYM_MSG_DONE && m.u.pred.status == 0 && m.u.pred.pred[0] == 3 && m.u.pred.pred[3] == 10,
          "after the import: step %g, sum %g", m.u.pred.pred[0], m.u.pred.pred[3]);

    /* released on shard 0: nothing left to export there */
    send(a, SYM_MSG_RELEASE, 2, 0, 0);
    send(a, SYM_MSG_EXPORT, 2, buf, 0);
    m = next(a);
    CHECK(m.type == SYM_MSG_EXPORTED && m.u.io.status == 1, "export after release: status %d", m.u.io.status);
    send(a, SYM_MSG_EXPORT, 5, buf, 0);
    m = next(a);
    CHECK(m.type == SYM_MSG_EXPORTED && m.u.io.status == 1, "export of a symbol never seen: status %d", m.u.io.status);
    send(a, SYM_MSG_EXPORT, 99, buf, 0);
    m = next(a);
    CHECK(m.type == SYM_MSG_EXPORTED && m.u.io.status == -1 && strstr(m.u.io.error, "out of range"),
          "export of symbol id 99 of 8: status %d (%s)", m.u.io.status, m.u.io.error);

    /* a buffer of the wrong size is refused and gives the symbol no slot */
    sym_slot_pool_reserve(&pool, buf, 7);
    send(b, SYM_MSG_IMPORT, 3, buf, 0);
    m = next(b);
    CHECK(m.type == SYM_MSG_IMPORTED && m.u.io.status == -1 && strstr(m.u.io.error, "7-byte"),
          "a 7-byte import: status %d (%s)", m.u.io.status, m.u.io.error);
    send(b, SYM_MSG_STEP_REQ, 3, 0, 1);
    m = next(b);
    CHECK(m.type == SYM_MSG_DONE && m.u.pred.pred[0] == 0, "after a refused import: step %g", m.u.pred.pred[0]);
    send(b, SYM_MSG_IMPORT, 3, -1, 0);
    m = next(b);
    CHECK(m.type == SYM_MSG_IMPORTED && m.u.io.status == -1, "import from buffer -1: status %d", m.u.io.status);

    sym_slot_pool_release(&pool, buf);
    stop(a), stop(b);
}

/* The CPU reference's slots start with the step count: an export says it. */
static void cpu_steps(void) {
    sym_err e;
    sym_weights w;
    if (sym_weights_synthetic(&w, &model, 3, &e)) {
        fprintf(stderr, "weights: %s\n", e.msg);
        failures++;
        return;
    }
    sym_shard *a = shard(0, sym_cpu_backend_create(&w, SYM_PREC_FP64, 8, &e));
    if (!a) return (void)failures++;
    int buf = sym_slot_pool_acquire(&pool);
    for (int k = 0; k < 5; k++) send(a, SYM_MSG_STEP_REQ, 1, 0, (float)k);
    send(a, SYM_MSG_EXPORT, 1, buf, 0);
    sym_msg m;
    int done = 0;
    while ((m = next(a)).type == SYM_MSG_DONE) done += m.u.pred.status == 0;
    CHECK(done == 5 && m.type == SYM_MSG_EXPORTED && m.u.io.status == 0 && m.u.io.steps == 5,
          "cpu: %d predictions, then EXPORTED status %d steps %lld", done, m.u.io.status, (long long)m.u.io.steps);
    sym_slot_pool_release(&pool, buf);
    stop(a);
    sym_weights_free(&w);
}

int main(void) {
    model = sym_model_config_small();
    sym_doorbell_init(&bell);
    sym_slot_pool_init(&pool);
    echo_shards();
    cpu_steps();
    CHECK(sym_thread_check_violations() == 0, "backend calls off the shard's thread: %s", sym_thread_check_report());
    sym_slot_pool_destroy(&pool);
    sym_doorbell_destroy(&bell);
    printf("%d failures\n", failures);
    return failures != 0;
}
