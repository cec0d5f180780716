/* The restorer: the symbols the engine holds after a shard process was
 * lost, rebuilt from the newest snapshot relied on and the log after it,
 * for those symbols only, on a thread of the store while play serves the
 * others; see store.h.
 *
 * It is recovery's replay (recover.c), narrowed to the held symbols and
 * fed through the engine's restore calls (actors/engine.h) instead of
 * submit, so that each symbol's replayed steps reach its new shard ahead
 * of the requests the engine holds for it:
 *  1. each held symbol in the snapshot begins its restore with the
 *     snapshot's state (read and checked only for those symbols); the
 *     others begin from the initial state (their history is all in the
 *     log from the snapshot's log_from on: state.md);
 *  2. the log from log_from to where play had committed when the restore
 *     began: each answered step of a held symbol after its state's is
 *     stepped again, its request's features from its REQUEST record; a
 *     gap in a symbol's steps fails the restore, as it fails recovery;
 *  3. each symbol's state must then be at the step count the store had
 *     logged for it: the steps the shard held and that were answered are
 *     all there, no more;
 *  4. its requests logged and not answered go back to the engine, in log
 *     order, which re-issues those the lost shard took with it;
 *  5. its restore ends: the taken requests, then the held ones, are
 *     served in order.
 * Any failure stops there: the symbols not ended stay held (play stops,
 * and a restart rebuilds every symbol from the same files). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/uid_map.h"
#include "state/snapshot.h"
#include "state/store_internal.h"
#include "state/wal.h"

#define RESTORE_BATCH 4096 /* held symbols one restore takes; more are left for the next */

/* A logged request of a held symbol not yet answered in the log read so far. */
typedef struct {
    sym_request req;
    uint64_t seq; /* its place in the log */
} pending_req;

typedef struct {
    sym_store *s;
    const store_restore_job *job;
    sym_restore_stats *st;
    sym_uid_map pend; /* uid -> reqs[] */
    pending_req *reqs;
    store_index reqs_ix;
    uint64_t seq;
    void *state; /* one slot's bytes */
} restore_run;

static int cmp_held(const void *a, const void *b) { return strcmp(((const store_held *)a)->name, ((const store_held *)b)->name); }

static store_held *find(const restore_run *r, const char *name) {
    store_held key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return bsearch(&key, r->job->held, (size_t)r->job->n_held, sizeof key, cmp_held);
}

static int stopping(const restore_run *r, sym_err *e) {
    return atomic_load(&r->s->restore_stop) ? sym_fail(e, "stopped") : 0;
}

/* --- requests logged and not yet answered ------------------------------------ */

static int pend_add(restore_run *r, const sym_wal_record *rec) {
    int32_t *old = sym_uid_map_get(&r->pend, rec->uid), i;
    if (old) { /* logged again after a crash that left it unanswered: the later one counts */
        i = *old;
    } else {
        pending_req *p = store_index_take(&r->reqs_ix, r->reqs, sizeof *r->reqs, &i);
        if (!p) return -1;
        r->reqs = p;
    }
    pending_req *q = &r->reqs[i];
    q->req = (sym_request){.uid = rec->uid, .n_features = rec->n_features};
    memcpy(q->req.symbol, rec->symbol, sizeof q->req.symbol);
    memcpy(q->req.features, rec->features, (size_t)rec->n_features * sizeof *rec->features);
    q->seq = r->seq++;
    return old ? 0 : sym_uid_map_put(&r->pend, rec->uid, i);
}

static void pend_del(restore_run *r, uint64_t uid) {
    int32_t *i = sym_uid_map_get(&r->pend, uid);
    if (!i) return;
    store_index_give(&r->reqs_ix, *i);
    sym_uid_map_del(&r->pend, uid);
}

/* --- 1. the snapshot's states ----------------------------------------------------- */

static int begin(restore_run *r, store_held *h, const void *state, sym_err *e) {
    int shard = sym_engine_restore_begin(r->s->g, h->name, state, e);
    if (shard < 0) return -1;
    if (shard >= SYM_MAX_SHARDS) return sym_fail(e, "restoring %s: placed on shard %d", h->name, shard);
    h->shard = shard;
    return 0;
}

static int load_snapshot(restore_run *r, sym_err *e) {
    char path[1100], name[SYM_SYMBOL_MAX + 1];
    uint64_t steps;
    sym_snapshot_reader sr;
    int k;
    sym_snapshot_path(r->s->dir, r->job->snapshot, path, sizeof path);
    snprintf(r->st->snapshot, sizeof r->st->snapshot, "snap-%08" PRIu64 ".bin", r->job->snapshot);
    if (sym_snapshot_open(&sr, path, r->s->fingerprint, r->s->slot_bytes, e)) {
        sym_snapshot_close(&sr);
        return -1;
    }
    for (;;) {
        if ((k = stopping(r, e)) || (k = sym_snapshot_entry(&sr, name, &steps, e)) <= 0) break;
        store_held *h = find(r, name);
        if (!h) {
            if ((k = sym_snapshot_skip(&sr, e))) break;
            continue;
        }
        if (h->from_snapshot) {
            k = sym_fail(e, "snapshot %s: %s twice", path, name);
            break;
        }
        if ((k = sym_snapshot_state(&sr, r->state, e)) || (k = begin(r, h, r->state, e))) break;
        h->steps = steps;
        h->from_snapshot = 1;
        r->st->from_snapshot++;
    }
    sym_snapshot_close(&sr);
    return k < 0 ? -1 : 0; /* 0: its footer matched */
}

/* --- 2. the log -------------------------------------------------------------------- */

/* An answer record: a held symbol's step after its state's is stepped
 * again, as the next one. */
static int replay(restore_run *r, const sym_wal_record *a, const char *path, sym_err *e) {
    store_held *h = find(r, a->symbol);
    if (!h) return 0;
    if (a->step > h->steps) {
        int32_t *pi = sym_uid_map_get(&r->pend, a->uid);
        if (a->step != h->steps + 1)
            return sym_fail(e, "%s: unique_id %" PRIu64 " is step %" PRIu64 " of %s, but its state has %" PRIu64
                               " steps: a step is missing", path, a->uid, a->step, a->symbol, h->steps);
        if (!pi || strcmp(r->reqs[*pi].req.symbol, a->symbol))
            return sym_fail(e, "%s: the answer of unique_id %" PRIu64 " (step %" PRIu64 " of %s) has no request "
                               "logged before it: corrupt", path, a->uid, a->step, a->symbol);
        if (sym_engine_restore_step(r->s->g, &r->reqs[*pi].req, e)) return -1;
        h->steps = a->step;
        r->st->replayed++;
    }
    pend_del(r, a->uid);
    return 0;
}

static int take_record(restore_run *r, const sym_wal_record *rec, const char *path, sym_err *e) {
    switch (rec->type) {
    case SYM_WAL_REQUEST: return find(r, rec->symbol) && pend_add(r, rec) ? sym_fail(e, "out of memory") : 0;
    case SYM_WAL_ANSWER: return replay(r, rec, path, e);
    case SYM_WAL_REFUSED: pend_del(r, rec->uid); return 0;
    }
    return 0;
}

/* Segment num, up to byte job->to_off when it is the last one. */
static int read_segment(restore_run *r, uint64_t num, sym_err *e) {
    char path[1100];
    const int last = num == r->job->to;
    if (store_segment_path(r->s, num, path, sizeof path)) return sym_fail(e, "state dir path too long");
    FILE *f = fopen(path, "rb");
    if (!f) return sym_fail(e, "%s: %s", path, strerror(errno));
    sym_wal_reader rd;
    sym_wal_record *rec = malloc(sizeof *rec);
    uint64_t seg;
    int rc = rec ? sym_wal_reader_open(&rd, f, path, r->s->fingerprint, &seg, e) : sym_fail(e, "out of memory");
    if (!rc && seg != num) rc = sym_fail(e, "%s: its header says segment %" PRIu64 ": renamed or corrupt", path, seg);
    while (!rc && !(last && rd.offset >= r->job->to_off) && !(rc = stopping(r, e))) {
        int k = sym_wal_reader_next(&rd, rec, e);
        if (k == 1) rc = take_record(r, rec, path, e);
        else if (k == 2) rc = sym_failctx(e, "state: the log is damaged before its end");
        else if (last) rc = sym_fail(e, "%s: ends at byte %" PRIu64 ", before %" PRIu64, path, rd.offset, r->job->to_off);
        else break;
    }
    free(rec);
    fclose(f);
    r->st->segments++;
    return rc;
}

/* --- 3 to 5 -------------------------------------------------------------------------- */

/* Every held symbol's state at the step count the store logged of it. */
static int check_steps(const restore_run *r, sym_err *e) {
    for (int i = 0; i < r->job->n_held; i++) {
        const store_held *h = &r->job->held[i];
        if (h->steps != h->logged)
            return sym_fail(e, "restoring %s: its state is at step %" PRIu64 " (%s), the log has %" PRIu64, h->name,
                            h->steps, h->from_snapshot ? "the snapshot's and the log's" : "the log's", h->logged);
    }
    return 0;
}

static int cmp_seq(const void *a, const void *b) {
    uint64_t x = ((const pending_req *)a)->seq, y = ((const pending_req *)b)->seq;
    return x < y ? -1 : x > y;
}

/* The held symbols' unanswered requests, in log order. */
static int reissue(restore_run *r, sym_err *e) {
    int32_t n = 0;
    for (int32_t i = 0; i < r->reqs_ix.n; i++) { /* the entries still pending, compacted (the map is not used after) */
        const int32_t *v = sym_uid_map_get(&r->pend, r->reqs[i].req.uid);
        if (v && *v == i) r->reqs[n++] = r->reqs[i];
    }
    qsort(r->reqs, (size_t)n, sizeof *r->reqs, cmp_seq);
    for (int32_t i = 0; i < n; i++)
        if (sym_engine_restore_reissue(r->s->g, &r->reqs[i].req, e)) return -1;
    return 0;
}

static int end_all(restore_run *r, sym_err *e) {
    for (int i = 0; i < r->job->n_held; i++) {
        const store_held *h = &r->job->held[i];
        int k = sym_engine_restore_end(r->s->g, h->name, e);
        if (k < 0) return -1;
        r->st->reissued += (uint64_t)k;
        r->st->onto[h->shard]++;
        r->st->symbols++;
    }
    return 0;
}

static int run(restore_run *r, sym_err *e) {
    const store_restore_job *j = r->job;
    if (!j->n_held) return 0;
    if (j->snapshot && load_snapshot(r, e)) return -1;
    for (int i = 0; i < j->n_held; i++)
        if (!j->held[i].from_snapshot && begin(r, &j->held[i], NULL, e)) return -1;
    for (uint64_t n = j->from; n <= j->to; n++)
        if (read_segment(r, n, e)) return -1;
    return check_steps(r, e) || reissue(r, e) || end_all(r, e) ? -1 : 0;
}

void *store_restorer_main(void *arg) {
    sym_store *s = arg;
    uint64_t t0 = sym_now_ns();
    sym_restore_stats st = {0};
    sym_err e = {{0}};
    restore_run r = {.s = s, .job = &s->restore_job, .st = &st};
    int rc;
    if (sym_uid_map_init(&r.pend, 1024) || !(r.state = malloc(s->slot_bytes ? s->slot_bytes : 1)))
        rc = sym_fail(&e, "out of memory");
    else
        rc = run(&r, &e);
    st.seconds = (double)(sym_now_ns() - t0) * 1e-9;
    st.more = s->restore_job.more;
    sym_uid_map_free(&r.pend);
    free(r.reqs);
    free(r.reqs_ix.free_idx);
    free(r.state);
    pthread_mutex_lock(&s->mu);
    s->restore_rc = rc;
    snprintf(s->restore_err, sizeof s->restore_err, "%s", e.msg);
    s->restore_st = st;
    s->restore_state = RESTORE_DONE;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* --- play's side ------------------------------------------------------------------- */

/* The held symbols, sorted, each with the step count the store logged. */
static int held_symbols(sym_store *s, int losses, store_restore_job *j, sym_err *e) {
    char(*names)[SYM_SYMBOL_MAX + 1] = malloc(RESTORE_BATCH * sizeof *names);
    if (!names) return sym_fail(e, "out of memory");
    int n = sym_engine_held_symbols(s->g, losses, names, RESTORE_BATCH, e);
    if (n > 0 && !(j->held = calloc((size_t)n, sizeof *j->held))) n = sym_fail(e, "out of memory");
    for (int i = 0; i < n; i++) {
        store_symbol *x = store_symbol_of(s, names[i]);
        memcpy(j->held[i].name, names[i], sizeof j->held[i].name);
        j->held[i].logged = x ? x->steps : 0;
    }
    free(names);
    if (n < 0) return -1;
    j->n_held = n;
    j->more = n == RESTORE_BATCH;
    qsort(j->held, (size_t)n, sizeof *j->held, cmp_held);
    return 0;
}

int sym_store_restore_start(sym_store *s, int losses, sym_err *e) {
    struct stat sb;
    if (!s->g) return sym_fail(e, "state: restore before recovery");
    if (s->restoring) return sym_fail(e, "state: a restore is running");
    if (sym_store_commit(s, e)) return -1;
    if (fstat(s->fd, &sb)) return sym_fail(e, "state: the log in %s: %s", s->dir, strerror(errno));
    store_restore_job j = {.snapshot = s->n_kept ? s->kept_snaps[s->n_kept - 1] : 0,
                           .from = s->n_kept ? s->kept_from[s->n_kept - 1] : s->first_seg,
                           .to = s->segment, .to_off = (uint64_t)sb.st_size};
    if (held_symbols(s, losses, &j, e)) return -1;
    s->restore_job = j;
    atomic_store(&s->restore_stop, 0);
    pthread_mutex_lock(&s->mu);
    s->restore_state = RESTORE_RUNNING;
    pthread_mutex_unlock(&s->mu);
    if (pthread_create(&s->restorer, NULL, store_restorer_main, s)) {
        pthread_mutex_lock(&s->mu);
        s->restore_state = RESTORE_IDLE;
        pthread_mutex_unlock(&s->mu);
        free(j.held);
        s->restore_job = (store_restore_job){0};
        return sym_fail(e, "state: cannot start the restore thread");
    }
    s->restorer_on = 1;
    s->restoring = 1;
    return 0;
}

int sym_store_restore_poll(sym_store *s, sym_restore_stats *st, sym_err *e) {
    if (!s->restorer_on) return 0;
    pthread_mutex_lock(&s->mu);
    int done = s->restore_state == RESTORE_DONE, rc = s->restore_rc;
    if (done) {
        *st = s->restore_st;
        if (rc) sym_fail(e, "%s", s->restore_err);
        s->restore_state = RESTORE_IDLE;
    }
    pthread_mutex_unlock(&s->mu);
    if (!done) return 0;
    pthread_join(s->restorer, NULL);
    s->restorer_on = 0;
    s->restoring = 0;
    free(s->restore_job.held);
    s->restore_job = (store_restore_job){0};
    return rc ? -1 : 1;
}
