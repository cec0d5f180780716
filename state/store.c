/* The durable store: the log's files, the per-symbol step counts, commit
 * and fsync policy, and recovery; see store.h. */
#include "state/store.h"

#include <ck_hs.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/ck_alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/uid_map.h"
#include "state/snapshot.h"
#include "state/store_internal.h"
#include "state/wal.h"

/* ---- symbols --------------------------------------------------------- */

static unsigned long hs_hash(const void *key, unsigned long seed) {
    unsigned long h = 1469598103934665603ul ^ seed;
    for (const char *s = key; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ul;
    return h;
}
static bool hs_equal(const void *a, const void *b) { return strcmp(a, b) == 0; }

store_symbol *store_symbol_of(sym_store *s, const char *symbol) {
    return ck_hs_get(&s->names, CK_HS_HASH(&s->names, hs_hash, symbol), symbol);
}

int32_t sym_store_symbol(sym_store *s, const char *symbol) {
    store_symbol *x = store_symbol_of(s, symbol);
    if (x) return x->handle;
    if (s->n_syms == s->cap_syms) {
        int32_t cap = s->cap_syms ? 2 * s->cap_syms : 64;
        store_symbol **p = realloc(s->syms, (size_t)cap * sizeof *p);
        if (!p) return -1;
        s->syms = p, s->cap_syms = cap;
    }
    if (!(x = calloc(1, sizeof *x))) return -1;
    snprintf(x->name, sizeof x->name, "%s", symbol);
    x->handle = s->n_syms;
    if (!ck_hs_put(&s->names, CK_HS_HASH(&s->names, hs_hash, x->name), x)) {
        free(x);
        return -1;
    }
    s->syms[s->n_syms++] = x;
    return x->handle;
}

/* ---- files ----------------------------------------------------------- */

int store_segment_path(const sym_store *s, uint64_t n, char *out, size_t cap) {
    return snprintf(out, cap, "%s/wal-%08" PRIu64 ".log", s->dir, n) < (int)cap ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int store_list(const sym_store *s, int snapshots, uint64_t **out, int *n, sym_err *e) {
    DIR *d = opendir(s->dir);
    if (!d) return sym_fail(e, "state dir %s: %s", s->dir, strerror(errno));
    uint64_t *v = NULL;
    int k = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t num;
        if (snapshots ? sym_snapshot_number(de->d_name, &num) : sym_state_file_number(de->d_name, "wal-", ".log", &num)) continue;
        if (k == cap) {
            cap = cap ? 2 * cap : 16;
            uint64_t *p = realloc(v, (size_t)cap * sizeof *p);
            if (!p) {
                free(v);
                closedir(d);
                return sym_fail(e, "out of memory");
            }
            v = p;
        }
        v[k++] = num;
    }
    closedir(d);
    if (k > 1) qsort(v, (size_t)k, sizeof *v, cmp_u64);
    *out = v, *n = k;
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static int sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The segments' retention counters: room for segment n. */
static int track_segment(sym_store *s, uint64_t n) {
    size_t need = (size_t)(n - s->first_seg + 1);
    if (need > s->cap_segs) {
        size_t cap = s->cap_segs ? 2 * s->cap_segs : 16;
        while (cap < need) cap *= 2;
        store_segment *p = realloc(s->segs, cap * sizeof *p);
        if (!p) return -1;
        memset(p + s->cap_segs, 0, (cap - s->cap_segs) * sizeof *p);
        s->segs = p, s->cap_segs = cap;
    }
    return 0;
}

static store_segment *seg_of(sym_store *s, uint64_t n) {
    return n >= s->first_seg && n <= s->segment ? &s->segs[n - s->first_seg] : NULL;
}

/* Segment s->segment + 1: header written and synced, with the directory
 * entry, whatever the policy (once per segment). The header is written
 * under a temporary name and the segment gets its name only once the
 * header is on disk: a crash in between leaves a `.tmp` file (removed at
 * the next recovery), never a segment without a header, which recovery
 * would have to refuse. link(2) rather than rename(2): an existing
 * segment of that number is an error, never replaced. */
int store_open_segment(sym_store *s, sym_err *e) {
    char path[1100], tmp[1110];
    uint64_t n = s->segment + 1;
    if (store_segment_path(s, n, path, sizeof path) || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return sym_fail(e, "state dir path too long");
    if (!s->first_seg) s->first_seg = n;
    if (track_segment(s, n)) return sym_fail(e, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return sym_fail(e, "%s: %s", tmp, strerror(errno));
    sym_wal_buf h = {0};
    if (sym_wal_put_header(&h, s->fingerprint, n) || write_all(fd, h.p, h.len) || fdatasync(fd) || link(tmp, path) ||
        unlink(tmp) || sync_dir(s->dir)) {
        int er = errno;
        sym_wal_buf_free(&h);
        close(fd);
        unlink(tmp);
        return sym_fail(e, "%s: %s", path, strerror(er));
    }
    s->stats.log_bytes += h.len;
    sym_wal_buf_free(&h);
    pthread_mutex_lock(&s->mu);
    int old = s->fd;
    s->fd = fd;
    s->segment = n;
    pthread_mutex_unlock(&s->mu);
    if (old >= 0) close(old);
    return 0;
}

/* ---- the every_s flusher -------------------------------------------- */

static void *flusher_main(void *arg) {
    sym_store *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->flusher_stop) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 1;
        pthread_cond_timedwait(&s->cv, &s->mu, &t);
        if (s->flusher_stop) break;
        /* a duplicate outlives a segment switch, and the sync runs without
         * mu: play's thread never waits for the disk here */
        int fd = s->fd >= 0 ? dup(s->fd) : -1;
        pthread_mutex_unlock(&s->mu);
        if (fd >= 0) {
            if (fdatasync(fd)) {
                int none = 0;
                atomic_compare_exchange_strong(&s->flush_errno, &none, errno);
            }
            close(fd);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int store_start_threads(sym_store *s, sym_err *e) {
    if (s->o.fsync == SYM_FSYNC_EVERY_S && !s->flusher_on) {
        if (pthread_create(&s->flusher, NULL, flusher_main, s)) return sym_fail(e, "state: cannot start the log flusher");
        s->flusher_on = 1;
    }
    if (s->o.snapshot_every_s > 0 && !s->snapper_on) {
        if (pthread_create(&s->snapper, NULL, store_snapshotter_main, s))
            return sym_fail(e, "state: cannot start the snapshot thread");
        s->snapper_on = 1;
        s->next_snapshot_ns = sym_now_ns() + (uint64_t)(s->o.snapshot_every_s * 1e9);
    }
    return 0;
}

/* ---- open, close ----------------------------------------------------- */

static int confirm_snapshot(sym_store *s, sym_err *e);

sym_store *sym_store_open(const char *dir, uint64_t fingerprint, const sym_store_opts *o, sym_err *e) {
    sym_store *s = calloc(1, sizeof *s);
    if (!s) {
        sym_fail(e, "out of memory");
        return NULL;
    }
    s->lock_fd = s->fd = -1;
    s->fingerprint = fingerprint;
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->snap_cv, NULL);
    if (!ck_hs_init(&s->names, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, hs_hash, hs_equal, &sym_ck_malloc, 64, 0x5eed)) {
        sym_fail(e, "out of memory");
        free(s);
        return NULL;
    }
    if (sym_uid_map_init(&s->req_seg, 1024)) {
        sym_fail(e, "out of memory");
        sym_store_close(s);
        return NULL;
    }
    if (snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir) {
        sym_fail(e, "state dir path too long");
        goto fail;
    }
    if (mkdir(dir, 0755) && errno != EEXIST) {
        sym_fail(e, "state dir %s: %s", dir, strerror(errno));
        goto fail;
    }
    char lock[1100];
    snprintf(lock, sizeof lock, "%s/lock", dir);
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        sym_fail(e, "%s: %s", lock, strerror(errno));
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
        sym_fail(e, "state dir %s is in use by another process (%s)", dir, strerror(errno));
        goto fail;
    }
    return s;
fail:
    sym_store_close(s);
    return NULL;
}

void sym_store_close(sym_store *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    int done = s->snap_state == SNAP_DONE && !s->snap_rc;
    s->flusher_stop = 1;
    s->snap_state = SNAP_STOP; /* an unfinished snapshot is dropped by its thread */
    pthread_cond_broadcast(&s->cv);
    pthread_cond_broadcast(&s->snap_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->flusher_on) pthread_join(s->flusher, NULL);
    if (s->snapper_on) {
        pthread_join(s->snapper, NULL);
        s->snapper_on = 0; /* from here retention removes its files itself */
        store_remove_doomed(s);
    }
    if (s->restorer_on) { /* it stops at its next record or symbol; the engine outlives the store */
        atomic_store(&s->restore_stop, 1);
        pthread_join(s->restorer, NULL);
        free(s->restore_job.held);
    }
    if (s->fd >= 0) {
        sym_err e;
        if (!s->buf.len || !write_all(s->fd, s->buf.p, s->buf.len)) { /* best effort: commit reports errors */
            s->buf.len = 0;
            if (!fdatasync(s->fd) && done) confirm_snapshot(s, &e); /* a clean stop leaves no snapshot unused */
        }
        close(s->fd);
    }
    if (s->lock_fd >= 0) close(s->lock_fd);
    for (int32_t i = 0; i < s->n_syms; i++) free(s->syms[i]);
    free(s->syms);
    ck_hs_destroy(&s->names);
    sym_uid_map_free(&s->req_seg);
    free(s->segs);
    free(s->kept_snaps);
    free(s->kept_from);
    free(s->snap_steps);
    free(s->doomed);
    sym_wal_buf_free(&s->buf);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->snap_cv);
    free(s);
}

/* ---- the hot path ---------------------------------------------------- */

int sym_store_log_request(sym_store *s, uint64_t uid, const char *symbol, const float *features, int n_features) {
    if (sym_wal_put_request(&s->buf, uid, symbol, features, n_features)) return -1;
    if (sym_uid_map_put(&s->req_seg, uid, (int32_t)s->segment)) return -1;
    s->segs[s->segment - s->first_seg].pending++;
    return 0;
}

/* The request uid is answered or refused: its segment holds one fewer
 * pending. */
static void resolved(sym_store *s, uint64_t uid) {
    int32_t *k = sym_uid_map_get(&s->req_seg, uid);
    if (!k) return;
    store_segment *g = seg_of(s, (uint64_t)*k);
    if (g && g->pending) g->pending--;
    sym_uid_map_del(&s->req_seg, uid);
}

int sym_store_log_answer(sym_store *s, int32_t sym, uint64_t uid, uint64_t digest, const double pred[SYM_TOWERS]) {
    if (sym < 0 || sym >= s->n_syms) return -1;
    store_symbol *x = s->syms[sym];
    if (sym_wal_put_answer(&s->buf, uid, x->steps + 1, digest, pred, x->name)) return -1;
    x->steps++;
    s->segs[s->segment - s->first_seg].answers++;
    resolved(s, uid);
    return 0;
}

int sym_store_log_refused(sym_store *s, uint64_t uid) {
    if (sym_wal_put_refused(&s->buf, uid)) return -1;
    resolved(s, uid);
    return 0;
}

int sym_store_commit(sym_store *s, sym_err *e) {
    if (s->fd < 0) return sym_fail(e, "state: the log is not open (recover first)");
    int fe = atomic_load(&s->flush_errno);
    if (fe) return sym_fail(e, "state: fdatasync of the log in %s failed: %s", s->dir, strerror(fe));
    if (!s->buf.len) return 0;
    if (write_all(s->fd, s->buf.p, s->buf.len) || (s->o.fsync == SYM_FSYNC_ALWAYS && fdatasync(s->fd)))
        return sym_fail(e, "state: cannot write the log in %s: %s", s->dir, strerror(errno));
    s->stats.log_bytes += s->buf.len;
    s->buf.len = 0;
    return 0;
}

void sym_store_get_stats(const sym_store *s, sym_store_stats *st) { *st = s->stats; }

/* ---- snapshots and retention (play's thread) -------------------------- */

/* Hands the snapshot thread a job: the log moves to a new segment N, and
 * snapshot N takes every symbol known now (one first seen later has its
 * whole history in segments from N on). */
static int start_snapshot(sym_store *s, sym_err *e) {
    /* a request unanswered now may be stepped after the snapshot's copy of
     * its symbol: replaying from the snapshot needs its REQUEST */
    uint64_t log_from = s->segment + 1;
    for (uint64_t n = s->first_seg; n <= s->segment; n++)
        if (seg_of(s, n)->pending) {
            log_from = n;
            break;
        }
    if (store_open_segment(s, e)) return -1;
    store_step *list = malloc((size_t)(s->n_syms ? s->n_syms : 1) * sizeof *list);
    if (!list) return sym_fail(e, "out of memory");
    for (int32_t i = 0; i < s->n_syms; i++) {
        memcpy(list[i].name, s->syms[i]->name, sizeof list[i].name);
        list[i].steps = 0;
    }
    pthread_mutex_lock(&s->mu);
    free(s->snap_steps);
    s->snap_steps = list;
    s->snap_n = s->n_syms;
    s->snap_written = 0;
    s->snap_segment = s->segment;
    s->snap_log_from = log_from;
    s->snap_state = SNAP_RUNNING;
    pthread_cond_broadcast(&s->snap_cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Every step the finished snapshot holds is in the log (written: the
 * caller has just committed). Until then the snapshot is not relied on:
 * a crash would find it ahead of the log and use the one before. */
static int snapshot_covered(sym_store *s) {
    for (int i = 0; i < s->snap_written; i++) {
        store_symbol *x = store_symbol_of(s, s->snap_steps[i].name);
        if (!x || x->steps < s->snap_steps[i].steps) return 0;
    }
    return 1;
}

static void remove_doomed(sym_store *s, const store_doomed *d, int n) {
    char path[1100];
    for (int i = 0; i < n; i++) {
        int bad = d[i].snapshot ? sym_snapshot_path(s->dir, d[i].n, path, sizeof path)
                                : store_segment_path(s, d[i].n, path, sizeof path);
        if (!bad && unlink(path) && errno != ENOENT) sym_warn("state: cannot remove %s: %s", path, strerror(errno));
    }
}

/* Room in the snapshot thread's list for n more files; -1 when memory
 * runs out. */
static int doomed_room(sym_store *s, int n) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->n_doomed + n > s->cap_doomed) {
        int cap = s->n_doomed + n + 16;
        store_doomed *p = realloc(s->doomed, (size_t)cap * sizeof *p);
        if (p) s->doomed = p, s->cap_doomed = cap;
        else rc = -1;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Hands a file to the snapshot thread, which removes it in the order
 * given (store_retain made room for it); removes it here when that
 * thread is not running (recovery, close). */
static void let_go(sym_store *s, int snapshot, uint64_t n) {
    store_doomed d = {.snapshot = snapshot, .n = n};
    if (snapshot) s->stats.snapshots_removed++;
    else s->stats.segments_removed++;
    if (!s->snapper_on) {
        remove_doomed(s, &d, 1);
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->doomed[s->n_doomed++] = d;
    pthread_cond_broadcast(&s->snap_cv);
    pthread_mutex_unlock(&s->mu);
}

void store_remove_doomed(sym_store *s) {
    pthread_mutex_lock(&s->mu);
    while (s->n_doomed) { /* in pieces, from the front: the list keeps its room (doomed_room) */
        store_doomed d[16];
        int n = s->n_doomed < 16 ? s->n_doomed : 16;
        memcpy(d, s->doomed, (size_t)n * sizeof *d);
        memmove(s->doomed, s->doomed + n, (size_t)(s->n_doomed - n) * sizeof *d);
        s->n_doomed -= n;
        pthread_mutex_unlock(&s->mu);
        remove_doomed(s, d, n);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

void *store_index_take(store_index *x, void *items, size_t size, int32_t *i) {
    if (x->n_free) {
        *i = x->free_idx[--x->n_free];
        return items;
    }
    if (x->n == x->cap) {
        int32_t cap = x->cap ? 2 * x->cap : 64;
        int32_t *f = realloc(x->free_idx, (size_t)cap * sizeof *f);
        if (!f) return NULL;
        x->free_idx = f; /* room for more than cap says: harmless */
        void *p = realloc(items, (size_t)cap * size);
        if (!p) return NULL;
        items = p, x->cap = cap;
    }
    *i = x->n++;
    return items;
}

int store_grow_kept(sym_store *s) {
    int cap = s->cap_kept ? 2 * s->cap_kept : 4;
    uint64_t *p = realloc(s->kept_snaps, (size_t)cap * sizeof *p);
    if (p) s->kept_snaps = p;
    uint64_t *f = p ? realloc(s->kept_from, (size_t)cap * sizeof *f) : NULL;
    if (!f) return -1;
    s->kept_from = f, s->cap_kept = cap;
    return 0;
}

/* Snapshots but the two newest go; then, once there are two, each segment
 * the older does not need (before its log_from) goes, oldest first, while
 * the segments after it hold at least id_window answers (the window of ids
 * is rebuilt from the log). */
void store_retain(sym_store *s) {
    if (s->restoring) return; /* the restorer reads the files: the next snapshot's retention catches up */
    /* room for every file this call may let go, or none goes: a file left
     * behind one removed would be a gap in the log */
    if (s->snapper_on && doomed_room(s, s->n_kept + (int)(s->segment - s->first_seg))) return;
    while (s->n_kept > 2) {
        let_go(s, 1, s->kept_snaps[0]);
        memmove(s->kept_snaps, s->kept_snaps + 1, (size_t)(s->n_kept - 1) * sizeof *s->kept_snaps);
        memmove(s->kept_from, s->kept_from + 1, (size_t)(s->n_kept - 1) * sizeof *s->kept_from);
        s->n_kept--;
    }
    if (s->n_kept < 2) return; /* the log from its start stays the fallback */
    uint64_t keep_from = s->kept_from[0], later = 0;
    for (uint64_t n = s->first_seg + 1; n <= s->segment; n++) later += seg_of(s, n)->answers;
    while (s->first_seg < keep_from && s->first_seg < s->segment && later >= s->o.id_window) {
        let_go(s, 0, s->first_seg);
        memmove(s->segs, s->segs + 1, (size_t)(s->segment - s->first_seg) * sizeof *s->segs);
        s->segs[s->segment - s->first_seg] = (store_segment){0};
        s->first_seg++;
        later -= s->segs[0].answers;
    }
}

/* A finished snapshot whose steps are all in the log is kept and relied
 * on: 1; 0 while its last answers are still on their way. */
static int confirm_snapshot(sym_store *s, sym_err *e) {
    if (!snapshot_covered(s)) return 0;
    if (s->n_kept == s->cap_kept && store_grow_kept(s)) return sym_fail(e, "out of memory");
    s->kept_snaps[s->n_kept] = s->snap_segment;
    s->kept_from[s->n_kept++] = s->snap_log_from;
    s->stats.snapshots++;
    s->stats.last_snapshot_s = s->snap_seconds;
    s->stats.last_snapshot_bytes = s->snap_bytes;
    sym_info("state: snapshot %08llu: %d symbols, %.1f MB in %.2f s", (unsigned long long)s->snap_segment, s->snap_written,
             (double)s->snap_bytes / 1e6, s->snap_seconds);
    store_retain(s);
    return 1;
}

int sym_store_tick(sym_store *s, sym_err *e) {
    if (!s->snapper_on) return 0;
    pthread_mutex_lock(&s->mu);
    int state = s->snap_state;
    pthread_mutex_unlock(&s->mu);
    if (state == SNAP_DONE) {
        if (s->snap_rc) {
            sym_warn("state: snapshot %08llu failed, the next one in %.0f s: %s", (unsigned long long)s->snap_segment,
                     s->o.snapshot_every_s, s->snap_err);
        } else {
            int k = confirm_snapshot(s, e);
            if (k <= 0) return k; /* 0: its last answers are still on their way: next tick */
        }
        pthread_mutex_lock(&s->mu);
        s->snap_state = SNAP_IDLE;
        pthread_mutex_unlock(&s->mu);
        s->next_snapshot_ns = sym_now_ns() + (uint64_t)(s->o.snapshot_every_s * 1e9);
        return 0;
    }
    if (state == SNAP_IDLE && sym_now_ns() >= s->next_snapshot_ns) return start_snapshot(s, e);
    return 0;
}
