/* Recovery: the newest usable snapshot, then the log after it, into a
 * fresh engine; see store.h.
 *
 * Two passes over the log. The first finds each symbol's last logged step
 * (and cuts a torn tail), which decides which snapshot is usable: one
 * whose every symbol is at or behind the log (a snapshot can finish a
 * moment before the answers of its last steps are written; a crash in
 * that moment leaves it ahead, and the one before it is used). The
 * second replays, for each symbol, the logged steps after the snapshot's,
 * and hands every answered id to the window. */
#include <dirent.h>
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
#include "kernels/state_layout.h"
#include "state/snapshot.h"
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
    store_index pend_ix;
    /* steps submitted whose answers are not yet checked */
    sym_uid_map chunk_map;
    uint64_t chunk_uid[CHUNK];
    double chunk_pred[CHUNK][SYM_TOWERS];
    int n_chunk;
    sym_prediction got[256];
    void *slot; /* one slot's bytes */
} recovery;

static int pend_add(recovery *r, const sym_wal_record *rec) {
    int32_t *old = sym_uid_map_get(&r->pending, rec->uid);
    if (old) { /* logged again after a crash that left it unanswered: the later one counts */
        r->pend[*old] = *rec;
        return 0;
    }
    int32_t i;
    sym_wal_record *p = store_index_take(&r->pend_ix, r->pend, sizeof *r->pend, &i);
    if (!p) return -1;
    r->pend = p;
    r->pend[i] = *rec;
    return sym_uid_map_put(&r->pending, rec->uid, i);
}

static void pend_del(recovery *r, uint64_t uid) {
    int32_t *i = sym_uid_map_get(&r->pending, uid);
    if (!i) return;
    store_index_give(&r->pend_ix, *i);
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

/* Pass 2, an answer record: a step after the snapshot's is re-run through
 * the engine as the next step of its symbol; every answered id goes to the
 * window. */
static int replay_answer(recovery *r, const sym_wal_record *a, const char *path, sym_err *e) {
    int32_t h = sym_store_symbol(r->s, a->symbol);
    if (h < 0) return sym_fail(e, "out of memory");
    store_symbol *x = r->s->syms[h];
    if (a->step > x->steps) { /* after the snapshot: replay */
        int32_t *pi = sym_uid_map_get(&r->pending, a->uid);
        if (a->step != x->steps + 1)
            return sym_fail(e, "%s: unique_id %" PRIu64 " is step %" PRIu64 " of %s, but the state has %" PRIu64
                               " steps of it: a step is missing",
                            path, a->uid, a->step, a->symbol, x->steps);
        if (!pi || strcmp(r->pend[*pi].symbol, a->symbol))
            return sym_fail(e, "%s: the answer of unique_id %" PRIu64 " (step %" PRIu64 " of %s) has no request logged "
                               "before it: corrupt", path, a->uid, a->step, a->symbol);
        const sym_wal_record *q = &r->pend[*pi];
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
    }
    pend_del(r, a->uid);
    r->st->answers++;
    if (r->on_answer) r->on_answer(r->ctx, a->uid, a->digest, a->pred);
    return 0;
}

/* Cuts a torn tail: the file ends at the last whole record. */
static int cut_tail(const char *path, uint64_t offset, sym_recovery_stats *st, sym_err *e) {
    struct stat sb;
    if (stat(path, &sb)) return sym_fail(e, "%s: %s", path, strerror(errno));
    if (truncate(path, (off_t)offset)) return sym_fail(e, "%s: cannot cut its torn tail: %s", path, strerror(errno));
    st->torn_bytes += (uint64_t)sb.st_size - offset;
    return 0;
}

/* One pass over segment num. Pass 1 notes each symbol's last step and the
 * segment's answers, and cuts a torn tail; pass 2 replays. */
static int read_segment(recovery *r, uint64_t num, int last, int pass, sym_err *e) {
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
    store_segment *sg = &r->s->segs[num - r->s->first_seg];
    while (!rc && (k = sym_wal_reader_next(&rd, &rec, e)) == 1) {
        if (pass == 1) {
            r->st->records++;
            if (rec.type == SYM_WAL_REQUEST && rec.n_features != r->n_features)
                rc = sym_fail(e, "%s: unique_id %" PRIu64 " has %d features, the model %d", path, rec.uid,
                              rec.n_features, r->n_features);
            if (rec.type != SYM_WAL_ANSWER) continue;
            int32_t h = sym_store_symbol(r->s, rec.symbol);
            if (h < 0) rc = sym_fail(e, "out of memory");
            else if (rec.step > r->s->syms[h]->logged) r->s->syms[h]->logged = rec.step;
            sg->answers++;
            continue;
        }
        switch (rec.type) {
        case SYM_WAL_REQUEST:
            if (pend_add(r, &rec)) rc = sym_fail(e, "out of memory");
            break;
        case SYM_WAL_ANSWER: rc = replay_answer(r, &rec, path, e); break;
        case SYM_WAL_REFUSED: pend_del(r, rec.uid); break;
        }
    }
    if (!rc && k == 2) {
        if (!last) {
            rc = sym_failctx(e, "state: a segment that is not the last one is corrupt");
        } else if (pass == 1) {
            sym_warn("state: %s: the log's tail is torn; cut there", e->msg);
            rc = cut_tail(path, rd.offset, r->st, e);
        } else {
            rc = sym_failctx(e, "state: the log changed during recovery");
        }
    }
    if (pass == 1) r->st->log_bytes += rd.offset;
    fclose(f);
    return rc;
}

/* Checks snapshot num whole: 1 usable, 0 to be skipped (why logged), -1
 * refused (another engine's: e). has_fallback: an older snapshot, or the
 * log from its start, can stand in for one ahead of the log. */
static int check_snapshot(recovery *r, uint64_t num, int has_fallback, uint64_t first_seg, sym_err *e) {
    char path[1100], name[SYM_SYMBOL_MAX + 1];
    uint64_t steps, n = 0;
    sym_snapshot_reader sr;
    sym_err why = {{0}};
    int k, ahead = 0;
    sym_snapshot_path(r->s->dir, num, path, sizeof path);
    if (sym_snapshot_open(&sr, path, r->s->fingerprint, r->s->slot_bytes, e)) {
        sym_snapshot_close(&sr);
        if (strstr(e->msg, "another engine") || strstr(e->msg, "slots of")) return -1;
        sym_warn("state: %s: skipped", e->msg);
        return 0;
    }
    if (sr.log_from < first_seg) {
        sym_snapshot_close(&sr);
        sym_warn("state: snapshot %s needs the log from segment %" PRIu64 ", which is gone: skipped", path, sr.log_from);
        return 0;
    }
    while ((k = sym_snapshot_next(&sr, name, &steps, r->slot, &why)) == 1) {
        store_symbol *x = store_symbol_of(r->s, name);
        if (!x || x->logged < steps) ahead = 1;
        n++;
    }
    sym_snapshot_close(&sr);
    if (k < 0) {
        sym_warn("state: %s: skipped", why.msg);
        return 0;
    }
    if (ahead && has_fallback) {
        sym_warn("state: snapshot %s holds steps the log does not (it finished just before the stop): skipped", path);
        return 0;
    }
    if (ahead) /* nothing older to fall back on: the log was cut by a machine crash without fsync */
        sym_warn("state: snapshot %s holds steps the log does not: the log lost answered steps (fsync %s)", path,
                 r->s->o.fsync == SYM_FSYNC_ALWAYS ? "always" : "not always");
    (void)n;
    return 1;
}

/* Loads snapshot num into the engine and sets each symbol's step count. */
static int load_snapshot(recovery *r, uint64_t num, sym_err *e) {
    char path[1100], name[SYM_SYMBOL_MAX + 1];
    uint64_t steps, t0 = sym_now_ns();
    sym_snapshot_reader sr;
    int k;
    sym_snapshot_path(r->s->dir, num, path, sizeof path);
    if (sym_snapshot_open(&sr, path, r->s->fingerprint, r->s->slot_bytes, e)) {
        sym_snapshot_close(&sr);
        return -1;
    }
    while ((k = sym_snapshot_next(&sr, name, &steps, r->slot, e)) == 1) {
        int32_t h = sym_store_symbol(r->s, name);
        if (h < 0) {
            k = sym_fail(e, "out of memory");
            break;
        }
        if (sym_engine_import_symbol(r->g, name, r->slot, e)) {
            k = sym_failctx(e, "snapshot %s: loading %s", path, name);
            break;
        }
        r->s->syms[h]->steps = steps;
        r->st->snapshot_symbols++;
        r->st->snapshot_bytes += r->s->slot_bytes;
    }
    sym_snapshot_close(&sr);
    if (k) return -1;
    snprintf(r->st->snapshot, sizeof r->st->snapshot, "snap-%08" PRIu64 ".bin", num);
    r->st->snapshot_seconds = (double)(sym_now_ns() - t0) * 1e-9;
    return 0;
}

/* Snapshot num joins those retention knows, with its log_from. */
static int keep(recovery *r, uint64_t num, sym_err *e) {
    char path[1100];
    sym_snapshot_reader sr;
    sym_snapshot_path(r->s->dir, num, path, sizeof path);
    int rc = sym_snapshot_open(&sr, path, r->s->fingerprint, r->s->slot_bytes, e);
    sym_snapshot_close(&sr);
    if (rc) return -1;
    if (r->s->n_kept == r->s->cap_kept && store_grow_kept(r->s)) return sym_fail(e, "out of memory");
    r->s->kept_snaps[r->s->n_kept] = num;
    r->s->kept_from[r->s->n_kept++] = sr.log_from;
    return 0;
}

/* Files a stop cut short go: snapshots and log segments still under
 * their temporary names (state/snapshot.h, store_open_segment). */
static void remove_unfinished(const sym_store *s) {
    DIR *d = opendir(s->dir);
    struct dirent *de;
    if (!d) return;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        char path[1400];
        int snap = !strncmp(de->d_name, "snap-", 5) && len > 8 && !strcmp(de->d_name + len - 8, ".bin.tmp");
        int seg = !strncmp(de->d_name, "wal-", 4) && len > 8 && !strcmp(de->d_name + len - 8, ".log.tmp");
        if (!snap && !seg) continue;
        snprintf(path, sizeof path, "%s/%s", s->dir, de->d_name);
        if (unlink(path)) sym_warn("state: cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
}

/* Picks and loads the snapshot (none when there is none usable). */
static int pick_snapshot(recovery *r, const uint64_t *segs, int n_segs, sym_err *e) {
    uint64_t *snaps = NULL;
    int n = 0, rc = 0;
    remove_unfinished(r->s);
    if (store_list(r->s, 1, &snaps, &n, e)) return -1;
    int from_one = !n_segs || segs[0] == 1;
    for (int i = n - 1; i >= 0; i--) {
        int k = check_snapshot(r, snaps[i], from_one || i > 0, n_segs ? segs[0] : 1, e);
        if (k < 0) {
            rc = -1;
            break;
        }
        if (k == 0) { /* out of the way for good: once the log grows past it, it would look usable */
            char path[1100], to[1200];
            sym_snapshot_path(r->s->dir, snaps[i], path, sizeof path);
            snprintf(to, sizeof to, "%s.skipped", path);
            if (rename(path, to)) {
                rc = sym_fail(e, "state: cannot set %s aside: %s", path, strerror(errno));
                break;
            }
            r->st->snapshots_skipped++;
            continue;
        }
        rc = load_snapshot(r, snaps[i], e);
        for (int j = 0; j <= i && !rc; j++) /* it and the older ones are relied on, as retention knows them */
            rc = keep(r, snaps[j], e);
        break;
    }
    if (!rc && !r->st->snapshot[0] && !from_one)
        rc = sym_fail(e, "state dir %s: the log starts at segment %" PRIu64 " and no snapshot before it is usable",
                      r->s->dir, segs[0]);
    free(snaps);
    return rc;
}

int sym_store_recover(sym_store *s, sym_engine *g, sym_store_answer_fn on_answer, void *ctx, sym_recovery_stats *st,
                      sym_err *e) {
    uint64_t t0 = sym_now_ns(), *segs = NULL;
    int n_segs = 0, rc = 0;
    memset(st, 0, sizeof *st);
    if (s->fd >= 0) return sym_fail(e, "state: already recovered");
    s->g = g;
    s->slot_bytes = sym_engine_slot_bytes(g);
    recovery r = {.s = s, .g = g, .on_answer = on_answer, .ctx = ctx, .st = st,
                  .n_features = sym_engine_model(g)->features};
    if (sym_uid_map_init(&r.pending, 1024) || sym_uid_map_init(&r.chunk_map, 2 * CHUNK) ||
        !(r.slot = malloc(s->slot_bytes))) {
        rc = sym_fail(e, "out of memory");
        goto done;
    }
    if ((rc = store_list(s, 0, &segs, &n_segs, e))) goto done;
    if (n_segs) {
        s->first_seg = segs[0];
        s->segment = segs[n_segs - 1];
        for (int i = 1; i < n_segs; i++)
            if (segs[i] != segs[i - 1] + 1) {
                rc = sym_fail(e, "state dir %s: log segment %" PRIu64 " is missing", s->dir, segs[i - 1] + 1);
                goto done;
            }
        if (!s->cap_segs && (s->segs = calloc((size_t)n_segs + 16, sizeof *s->segs)) == NULL) {
            rc = sym_fail(e, "out of memory");
            goto done;
        }
        s->cap_segs = (size_t)n_segs + 16;
    }
    for (int i = 0; i < n_segs && !rc; i++) rc = read_segment(&r, segs[i], i == n_segs - 1, 1, e);
    if (rc || (rc = pick_snapshot(&r, segs, n_segs, e))) goto done;
    for (int i = 0; i < n_segs && !rc; i++) {
        rc = read_segment(&r, segs[i], i == n_segs - 1, 2, e);
        st->segments++;
    }
    if (!rc && r.n_chunk) rc = check_chunk(&r, e);
    if (rc) goto done;
    st->unanswered = (uint64_t)(r.pend_ix.n - r.pend_ix.n_free);
    st->symbols = s->n_syms;
    if ((rc = store_open_segment(s, e)) || (rc = store_start_threads(s, e))) goto done;
    store_retain(s); /* the snapshot loaded holds only logged steps: what it makes unneeded can go */
    st->seconds = (double)(sym_now_ns() - t0) * 1e-9;
done:
    sym_uid_map_free(&r.pending);
    sym_uid_map_free(&r.chunk_map);
    free(r.pend);
    free(r.pend_ix.free_idx);
    free(r.slot);
    free(segs);
    return rc;
}
