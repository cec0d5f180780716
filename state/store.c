/* The durable store: the log's files, the per-symbol step counts, commit
 * and fsync policy, and recovery; see store.h. */
#include "state/store.h"

#include <ck_hs.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/uid_map.h"
#include "state/store_internal.h"
#include "state/wal.h"

/* ---- symbols --------------------------------------------------------- */

static void *hs_malloc(size_t n) { return malloc(n); }
static void *hs_realloc(void *p, size_t old, size_t n, bool defer) {
    (void)old, (void)defer;
    return realloc(p, n);
}
static void hs_free(void *p, size_t n, bool defer) {
    (void)n, (void)defer;
    free(p);
}
static struct ck_malloc hs_alloc = {.malloc = hs_malloc, .realloc = hs_realloc, .free = hs_free};

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

/* A segment's number from its file name, strictly `wal-` 8+ digits `.log`. */
static int segment_number(const char *name, uint64_t *n) {
    size_t len = strlen(name);
    if (len < 4 + 8 + 4 || strncmp(name, "wal-", 4) || strcmp(name + len - 4, ".log")) return -1;
    uint64_t v = 0;
    for (size_t i = 4; i < len - 4; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *n = v;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The segment numbers in the directory, ascending. */
int store_list_segments(const sym_store *s, uint64_t **out, int *n, sym_err *e) {
    DIR *d = opendir(s->dir);
    if (!d) return sym_fail(e, "state dir %s: %s", s->dir, strerror(errno));
    uint64_t *v = NULL;
    int k = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t num;
        if (segment_number(de->d_name, &num)) continue;
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
    qsort(v, (size_t)k, sizeof *v, cmp_u64);
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

/* Starts segment s->segment + 1: header written and synced, with the
 * directory entry, whatever the policy (once per segment). */
int store_open_segment(sym_store *s, sym_err *e) {
    char path[1100];
    uint64_t n = s->segment + 1;
    if (store_segment_path(s, n, path, sizeof path)) return sym_fail(e, "state dir path too long");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return sym_fail(e, "%s: %s", path, strerror(errno));
    sym_wal_buf h = {0};
    if (sym_wal_put_header(&h, s->fingerprint, n) || write_all(fd, h.p, h.len) || fdatasync(fd) || sync_dir(s->dir)) {
        int er = errno;
        sym_wal_buf_free(&h);
        close(fd);
        return sym_fail(e, "%s: %s", path, strerror(er));
    }
    s->bytes += h.len;
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
        /* the fd stays open while mu is held: open_segment swaps it under mu */
        if (s->fd >= 0 && fdatasync(s->fd) && !s->flush_errno) s->flush_errno = errno;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int store_start_flusher(sym_store *s, sym_err *e) {
    if (s->fsync != SYM_FSYNC_EVERY_S || s->flusher_on) return 0;
    if (pthread_create(&s->flusher, NULL, flusher_main, s)) return sym_fail(e, "state: cannot start the log flusher");
    s->flusher_on = 1;
    return 0;
}

/* ---- open, close ----------------------------------------------------- */

sym_store *sym_store_open(const char *dir, uint64_t fingerprint, sym_fsync_policy fsync, sym_err *e) {
    sym_store *s = calloc(1, sizeof *s);
    if (!s) {
        sym_fail(e, "out of memory");
        return NULL;
    }
    s->lock_fd = s->fd = -1;
    s->fingerprint = fingerprint;
    s->fsync = fsync;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!ck_hs_init(&s->names, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC, hs_hash, hs_equal, &hs_alloc, 64, 0x5eed)) {
        sym_fail(e, "out of memory");
        free(s);
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
    if (s->flusher_on) {
        pthread_mutex_lock(&s->mu);
        s->flusher_stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->flusher, NULL);
    }
    if (s->fd >= 0) {
        if (s->buf.len) write_all(s->fd, s->buf.p, s->buf.len); /* best effort: commit reports errors */
        fdatasync(s->fd);
        close(s->fd);
    }
    if (s->lock_fd >= 0) close(s->lock_fd);
    for (int32_t i = 0; i < s->n_syms; i++) free(s->syms[i]);
    free(s->syms);
    ck_hs_destroy(&s->names);
    sym_wal_buf_free(&s->buf);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---- the hot path ---------------------------------------------------- */

int sym_store_log_request(sym_store *s, uint64_t uid, const char *symbol, const float *features, int n_features) {
    return sym_wal_put_request(&s->buf, uid, symbol, features, n_features);
}

int sym_store_log_answer(sym_store *s, int32_t sym, uint64_t uid, uint64_t digest, const double pred[SYM_TOWERS]) {
    if (sym < 0 || sym >= s->n_syms) return -1;
    if (sym_wal_put_answer(&s->buf, uid, s->syms[sym]->steps + 1, digest, pred)) return -1;
    s->syms[sym]->steps++;
    return 0;
}

int sym_store_log_refused(sym_store *s, uint64_t uid) { return sym_wal_put_refused(&s->buf, uid); }

int sym_store_commit(sym_store *s, sym_err *e) {
    if (s->fd < 0) return sym_fail(e, "state: the log is not open (recover first)");
    pthread_mutex_lock(&s->mu);
    int fe = s->flush_errno;
    pthread_mutex_unlock(&s->mu);
    if (fe) return sym_fail(e, "state: fdatasync of the log in %s failed: %s", s->dir, strerror(fe));
    if (!s->buf.len) return 0;
    if (write_all(s->fd, s->buf.p, s->buf.len) || (s->fsync == SYM_FSYNC_ALWAYS && fdatasync(s->fd)))
        return sym_fail(e, "state: cannot write the log in %s: %s", s->dir, strerror(errno));
    s->bytes += s->buf.len;
    s->buf.len = 0;
    return 0;
}

uint64_t sym_store_bytes(const sym_store *s) { return s->bytes; }
