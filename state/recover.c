/* Recovery: the log read back, in order, into a fresh engine; see
 * store.h. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/uid_map.h"
#include "state/store_internal.h"

#define CHUNK 1024 /* steps re-run between checks of their answers */

typedef struct {
    sym_store *s;
    sym_engine *g;
    sym_store_answer_fn on_answer;
    void *ctx;
    sym_recovery_stats *st;
    int n_features;
    /* requests logged and not yet answered: uid -> pend[] */
    sym_uid_map pending;
    sym_wal_record *pend;
    int32_t *pend_free;
    int32_t n_pend, cap_pend, n_free;
    /* steps submitted whose answers are not yet checked */
    sym_uid_map chunk_map;
    uint64_t chunk_uid[CHUNK];
    double chunk_pred[CHUNK][SYM_TOWERS];
    int n_chunk;
    sym_prediction got[256];
} recovery;

static int pend_add(recovery *r, const sym_wal_record *rec) {
    int32_t *old = sym_uid_map_get(&r->pending, rec->uid);
    if (old) { /* logged again after a crash that left it unanswered: the later one counts */
        r->pend[*old] = *rec;
        return 0;
    }
    int32_t i;
    if (r->n_free) {
        i = r->pend_free[--r->n_free];
    } else {
        if (r->n_pend == r->cap_pend) {
            int32_t cap = r->cap_pend ? 2 * r->cap_pend : 64;
            sym_wal_record *p = realloc(r->pend, (size_t)cap * sizeof *p);
            int32_t *f = p ? realloc(r->pend_free, (size_t)cap * sizeof *f) : NULL;
            if (p) r->pend = p;
            if (!f) return -1;
            r->pend_free = f, r->cap_pend = cap;
        }
        i = r->n_pend++;
    }
    r->pend[i] = *rec;
    return sym_uid_map_put(&r->pending, rec->uid, i);
}

static void pend_del(recovery *r, uint64_t uid) {
    int32_t *i = sym_uid_map_get(&r->pending, uid);
    if (!i) return;
    r->pend_free[r->n_free++] = *i;
    sym_uid_map_del(&r->pending, uid);
}

/* Waits for every step submitted and compares its answer with the one
 * logged: the replay must give what was sent (bit for bit where the
 * backend is deterministic, as the CPU reference is). */
static int check_chunk(recovery *r, sym_err *e) {
    sym_engine_drain(r->g);
    int n, seen = 0;
    while ((n = sym_engine_poll(r->g, r->got, 256, 0)) > 0) {
        for (int i = 0; i < n; i++) {
            const sym_prediction *p = &r->got[i];
            int32_t *k = sym_uid_map_get(&r->chunk_map, p->uid);
            if (!k) return sym_fail(e, "state: the engine answered unique_id %" PRIu64 " that recovery did not send", p->uid);
            if (p->status) return sym_fail(e, "state: replaying unique_id %" PRIu64 ": %s", p->uid, p->error);
            double d = 0;
            for (int t = 0; t < SYM_TOWERS; t++) {
                double x = fabs(p->pred[t] - r->chunk_pred[*k][t]);
                if (!(x <= d)) d = x; /* NaN counts as a difference */
            }
            if (d != 0 || memcmp(p->pred, r->chunk_pred[*k], sizeof p->pred)) {
                r->st->mismatched++;
                if (!(d <= r->st->max_diff)) r->st->max_diff = d;
            }
            seen++;
        }
    }
    if (seen != r->n_chunk) return sym_fail(e, "state: %d of %d replayed steps came back", seen, r->n_chunk);
    for (int i = 0; i < r->n_chunk; i++) sym_uid_map_del(&r->chunk_map, r->chunk_uid[i]);
    r->n_chunk = 0;
    return 0;
}

/* An answer record: its request is re-run through the engine as the next
 * step of its symbol, and the id goes to the window. */
static int on_answer_record(recovery *r, const sym_wal_record *a, const char *path, sym_err *e) {
    int32_t *pi = sym_uid_map_get(&r->pending, a->uid);
    if (!pi)
        return sym_fail(e, "%s: the answer of unique_id %" PRIu64 " has no request logged before it: corrupt", path, a->uid);
    const sym_wal_record *q = &r->pend[*pi];
    int32_t h = sym_store_symbol(r->s, q->symbol);
    if (h < 0) return sym_fail(e, "out of memory");
    store_symbol *x = r->s->syms[h];
    if (a->step != x->steps + 1)
        return sym_fail(e, "%s: unique_id %" PRIu64 " is step %" PRIu64 " of %s, but the log has %" PRIu64
                           " steps of it before: a step is missing",
                        path, a->uid, a->step, q->symbol, x->steps);
    if (sym_uid_map_get(&r->chunk_map, a->uid) || r->n_chunk == CHUNK) /* one id per chunk: answers match by id */
        if (check_chunk(r, e)) return -1;
    sym_request req = {.uid = a->uid, .n_features = q->n_features};
    memcpy(req.symbol, q->symbol, sizeof req.symbol);
    memcpy(req.features, q->features, (size_t)q->n_features * sizeof *q->features);
    if (sym_engine_submit(r->g, &req, e)) return sym_failctx(e, "%s: replaying unique_id %" PRIu64, path, a->uid);
    if (sym_uid_map_put(&r->chunk_map, a->uid, r->n_chunk)) return sym_fail(e, "out of memory");
    r->chunk_uid[r->n_chunk] = a->uid;
    memcpy(r->chunk_pred[r->n_chunk], a->pred, sizeof a->pred);
    r->n_chunk++;
    x->steps = a->step;
    r->st->replayed++;
    r->st->answers++;
    pend_del(r, a->uid);
    if (r->on_answer) r->on_answer(r->ctx, a->uid, a->digest, a->pred);
    return 0;
}

/* Cuts a torn tail: the file ends at the last whole record. */
static int cut_tail(const char *path, uint64_t offset, uint64_t size, sym_recovery_stats *st, sym_err *e) {
    if (truncate(path, (off_t)offset)) return sym_fail(e, "%s: cannot cut its torn tail: %s", path, strerror(errno));
    st->torn_bytes += size - offset;
    return 0;
}

static int read_segment(recovery *r, uint64_t num, int last, sym_err *e) {
    char path[1100];
    if (store_segment_path(r->s, num, path, sizeof path)) return sym_fail(e, "state dir path too long");
    FILE *f = fopen(path, "rb");
    if (!f) return sym_fail(e, "%s: %s", path, strerror(errno));
    sym_wal_reader rd;
    sym_wal_record rec;
    uint64_t seg;
    int rc = 0, k;
    if (sym_wal_reader_open(&rd, f, path, r->s->fingerprint, &seg, e)) {
        fclose(f);
        return -1;
    }
    if (seg != num) {
        fclose(f);
        return sym_fail(e, "%s: its header says segment %" PRIu64 ": renamed or corrupt", path, seg);
    }
    while (!rc && (k = sym_wal_reader_next(&rd, &rec, e)) == 1) {
        r->st->records++;
        switch (rec.type) {
        case SYM_WAL_REQUEST:
            if (rec.n_features != r->n_features) {
                rc = sym_fail(e, "%s: unique_id %" PRIu64 " has %d features, the model %d", path, rec.uid,
                              rec.n_features, r->n_features);
                break;
            }
            if (pend_add(r, &rec)) rc = sym_fail(e, "out of memory");
            break;
        case SYM_WAL_ANSWER: rc = on_answer_record(r, &rec, path, e); break;
        case SYM_WAL_REFUSED: pend_del(r, rec.uid); break;
        }
    }
    if (!rc && k == 2) {
        if (!last) {
            rc = sym_failctx(e, "state: a segment that is not the last one is corrupt");
        } else {
            struct stat sb;
            sym_warn("state: %s: the log's tail is torn; cut there", e->msg);
            rc = fstat(fileno(f), &sb) ? sym_fail(e, "%s: %s", path, strerror(errno))
                                        : cut_tail(path, rd.offset, (uint64_t)sb.st_size, r->st, e);
        }
    }
    fclose(f);
    return rc;
}

int sym_store_recover(sym_store *s, sym_engine *g, sym_store_answer_fn on_answer, void *ctx, sym_recovery_stats *st,
                      sym_err *e) {
    uint64_t t0 = sym_now_ns(), *segs = NULL;
    int n_segs = 0, rc = 0;
    memset(st, 0, sizeof *st);
    recovery r = {.s = s, .g = g, .on_answer = on_answer, .ctx = ctx, .st = st,
                  .n_features = sym_engine_model(g)->features};
    if (s->fd >= 0) return sym_fail(e, "state: already recovered");
    if (sym_uid_map_init(&r.pending, 1024) || sym_uid_map_init(&r.chunk_map, 2 * CHUNK)) {
        rc = sym_fail(e, "out of memory");
        goto done;
    }
    if ((rc = store_list_segments(s, &segs, &n_segs, e))) goto done;
    for (int i = 0; i < n_segs && !rc; i++) {
        rc = read_segment(&r, segs[i], i == n_segs - 1, e);
        st->segments++;
    }
    if (!rc && r.n_chunk) rc = check_chunk(&r, e);
    if (rc) goto done;
    st->unanswered = (uint64_t)(r.n_pend - r.n_free);
    st->symbols = s->n_syms;
    s->segment = n_segs ? segs[n_segs - 1] : 0;
    if ((rc = store_open_segment(s, e)) || (rc = store_start_flusher(s, e))) goto done;
    st->seconds = (double)(sym_now_ns() - t0) * 1e-9;
done:
    sym_uid_map_free(&r.pending);
    sym_uid_map_free(&r.chunk_map);
    free(r.pend);
    free(r.pend_free);
    free(segs);
    return rc;
}
