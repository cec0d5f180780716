/* Two byte rings in one shared-memory region; see shm_ring.h. */
#include "net/shm_ring.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define MAGIC 0x31525353u /* "SSR1" */
#define PREFIX "symserve-"  /* a region's file name in /dev/shm: PREFIX, then 16 hex digits */
#define PREFIX_LEN (sizeof PREFIX - 1)
#define LAYOUT 1u
#define LINE 64
#define DATA_AT 4096

typedef struct {
    uint32_t magic, layout;
    uint64_t max_frame, ring_bytes, region_bytes;
} header;

/* A ring's counters, each on its own cache line: head and rsleep are
 * touched by the writer on every frame, tail and wsleep by the reader. */
typedef struct {
    _Alignas(LINE) _Atomic uint64_t head;
    _Alignas(LINE) _Atomic uint64_t tail;
    _Alignas(LINE) _Atomic uint32_t rsleep;
    _Alignas(LINE) _Atomic uint32_t wsleep;
} ring_ctl;

_Static_assert(sizeof(header) <= LINE, "the header fits its line");
_Static_assert(LINE + 2 * sizeof(ring_ctl) <= DATA_AT, "the counters fit before the data");
_Static_assert(SYM_SHM_NAME_MAX >= 1 + PREFIX_LEN + 16 + 1, "a name: the slash, the prefix, 16 digits, the NUL");

struct sym_shm {
    unsigned char *base;
    size_t bytes;
    uint64_t cap, mask, max_frame, spin_ns;
    ring_ctl *tx_ctl, *rx_ctl;
    unsigned char *tx, *rx;
    uint64_t head; /* our ring's, as we wrote it (the writer's thread) */
    uint64_t tail; /* the peer's ring, as we read it (the reader's thread) */
    char name[SYM_SHM_NAME_MAX];
    int creator, linked, maps; /* maps: this handle unmaps the region */
    atomic_uint_fast64_t sleeps, wakes;
};

static uint64_t ring_bytes(size_t max_frame) {
    uint64_t need = 2 * ((uint64_t)max_frame + 4), cap = 4096;
    while (cap < need) cap *= 2;
    return cap;
}

size_t sym_shm_region_bytes(size_t max_frame) { return DATA_AT + 2 * (size_t)ring_bytes(max_frame); }

static sym_shm *handle(unsigned char *base, size_t bytes, size_t max_frame, uint64_t spin_ns, int creator) {
    sym_shm *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    ring_ctl *ctl = (ring_ctl *)(base + LINE);
    m->base = base, m->bytes = bytes, m->creator = creator, m->maps = 1;
    m->cap = ring_bytes(max_frame), m->mask = m->cap - 1, m->max_frame = max_frame, m->spin_ns = spin_ns;
    m->tx_ctl = &ctl[creator ? 0 : 1], m->rx_ctl = &ctl[creator ? 1 : 0];
    m->tx = base + DATA_AT + (creator ? 0 : m->cap);
    m->rx = base + DATA_AT + (creator ? m->cap : 0);
    return m;
}

sym_shm *sym_shm_create(size_t max_frame, uint64_t spin_ns, sym_err *e) {
    char name[SYM_SHM_NAME_MAX];
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) return sym_fail(e, "shared memory: no random name: %s", strerror(errno)), NULL;
    snprintf(name, sizeof name, "/" PREFIX "%08x%08x", (unsigned)getpid(), (unsigned)r);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return sym_fail(e, "shared memory %s: %s", name, strerror(errno)), NULL;
    size_t bytes = sym_shm_region_bytes(max_frame);
    void *base = MAP_FAILED;
    if (ftruncate(fd, (off_t)bytes) == 0) base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int er = errno;
    close(fd);
    sym_shm *m = base == MAP_FAILED ? NULL : handle(base, bytes, max_frame, spin_ns, 1);
    if (!m) {
        if (base != MAP_FAILED) munmap(base, bytes), er = ENOMEM;
        shm_unlink(name);
        return sym_fail(e, "shared memory %s of %zu bytes: %s", name, bytes, strerror(er)), NULL;
    }
    memcpy(m->name, name, sizeof name);
    m->linked = 1;
    /* ftruncate gave zeros: the counters start at 0, nobody sleeps */
    header h = {.magic = MAGIC, .layout = LAYOUT, .max_frame = max_frame, .ring_bytes = m->cap, .region_bytes = bytes};
    memcpy(base, &h, sizeof h);
    return m;
}

/* The creator's pid from a region's file name, or 0 for any other name. */
static pid_t creator_pid(const char *file) {
    if (strncmp(file, PREFIX, PREFIX_LEN) || strlen(file) != PREFIX_LEN + 16 ||
        strspn(file + PREFIX_LEN, "0123456789abcdef") != 16)
        return 0;
    char hex[9];
    memcpy(hex, file + PREFIX_LEN, 8);
    hex[8] = 0;
    unsigned long pid = strtoul(hex, NULL, 16);
    return pid > 0 && pid <= INT_MAX ? (pid_t)pid : 0;
}

int sym_shm_sweep(double older_than_s) {
    DIR *d = opendir("/dev/shm");
    if (!d) return 0;
    int removed = 0;
    time_t now = time(NULL);
    for (struct dirent *de; (de = readdir(d));) {
        pid_t pid = creator_pid(de->d_name);
        if (!pid || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH) continue; /* EPERM: alive */
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
            continue;
        if (difftime(now, st.st_mtime) < older_than_s) continue; /* set when made, or later */
        char name[SYM_SHM_NAME_MAX] = "/";
        memcpy(name + 1, de->d_name, PREFIX_LEN + 17); /* creator_pid: its length, and the NUL */
        removed += shm_unlink(name) == 0;
    }
    closedir(d);
    return removed;
}

sym_shm *sym_shm_open(const char *name, size_t max_frame, uint64_t spin_ns, sym_err *e) {
    size_t n = strnlen(name, SYM_SHM_NAME_MAX);
    if (n == SYM_SHM_NAME_MAX || name[0] != '/' || strncmp(name + 1, PREFIX, PREFIX_LEN) || strchr(name + 1, '/'))
        return sym_fail(e, "shared memory: \"%.*s\" is not a name of this wire", (int)n, name), NULL;
    int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) return sym_fail(e, "shared memory %s: %s", name, strerror(errno)), NULL;
    size_t bytes = sym_shm_region_bytes(max_frame);
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) ||
        (uint64_t)st.st_size != bytes) {
        close(fd);
        return sym_fail(e, "shared memory %s: not a region of this build and user (%lld bytes, mode %o, owner %u)", name,
                        (long long)st.st_size, (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid), NULL;
    }
    void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int er = errno;
    close(fd);
    if (base == MAP_FAILED) return sym_fail(e, "shared memory %s: %s", name, strerror(er)), NULL;
    header h;
    memcpy(&h, base, sizeof h);
    sym_shm *m = NULL;
    if (h.magic != MAGIC || h.layout != LAYOUT || h.max_frame != max_frame || h.ring_bytes != ring_bytes(max_frame) ||
        h.region_bytes != bytes)
        sym_fail(e, "shared memory %s: another layout (magic %08x, layout %u, frames of %llu bytes)", name, h.magic,
                 h.layout, (unsigned long long)h.max_frame);
    else if (!(m = handle(base, bytes, max_frame, spin_ns, 0)))
        sym_fail(e, "out of memory");
    if (!m) {
        munmap(base, bytes);
        return NULL;
    }
    memcpy(m->name, name, n + 1);
    m->linked = 1;
    return m;
}

sym_shm *sym_shm_other_side(sym_shm *m, sym_err *e) {
    sym_shm *o = handle(m->base, m->bytes, (size_t)m->max_frame, m->spin_ns, !m->creator);
    if (!o) return sym_fail(e, "out of memory"), NULL;
    o->maps = 0;
    memcpy(o->name, m->name, sizeof o->name);
    return o;
}

const char *sym_shm_name(const sym_shm *m) { return m->name; }

void sym_shm_unlink(sym_shm *m) {
    if (m && m->linked) shm_unlink(m->name), m->linked = 0;
}

void sym_shm_close(sym_shm *m) {
    if (!m) return;
    if (m->creator) sym_shm_unlink(m);
    if (m->maps) munmap(m->base, m->bytes);
    free(m);
}

sym_shm_stats sym_shm_get_stats(const sym_shm *m) {
    return (sym_shm_stats){.sleeps = atomic_load_explicit(&m->sleeps, memory_order_relaxed),
                           .wakes = atomic_load_explicit(&m->wakes, memory_order_relaxed)};
}

/* --- waiting ------------------------------------------------------------------ */

static void futex_wait(_Atomic uint32_t *w, uint64_t ns) {
    struct timespec t = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, 1, &t, NULL, 0); /* woken, timed out, EINTR or EAGAIN: the caller looks again */
}

static void wake(sym_shm *m, _Atomic uint32_t *w) {
    atomic_thread_fence(memory_order_seq_cst); /* what was published, before the word is read */
    if (atomic_load_explicit(w, memory_order_relaxed) && atomic_exchange(w, 0)) {
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        atomic_fetch_add_explicit(&m->wakes, 1, memory_order_relaxed);
    }
}

/* Until ready(m, need) says 1 or -1 (returned), or timeout_ns passes
 * (0): polling for spin_ns, sched_yield at each turn, then sleeping on w. */
static int wait_for(sym_shm *m, int (*ready)(sym_shm *, size_t), size_t need, _Atomic uint32_t *w, uint64_t timeout_ns) {
    int r = ready(m, need);
    if (r || !timeout_ns) return r;
    uint64_t start = sym_now_ns(), spin = m->spin_ns < timeout_ns ? m->spin_ns : timeout_ns;
    for (;;) {
        uint64_t now = sym_now_ns();
        if (now - start >= spin) break;
        sched_yield();
        if ((r = ready(m, need))) return r;
    }
    for (;;) {
        uint64_t now = sym_now_ns();
        if (now - start >= timeout_ns) return ready(m, need);
        atomic_store(w, 1);
        atomic_thread_fence(memory_order_seq_cst); /* the 1, before the counter is read again */
        if ((r = ready(m, need))) {
            atomic_store_explicit(w, 0, memory_order_relaxed);
            return r;
        }
        atomic_fetch_add_explicit(&m->sleeps, 1, memory_order_relaxed);
        futex_wait(w, timeout_ns - (now - start));
        atomic_store_explicit(w, 0, memory_order_relaxed);
        if ((r = ready(m, need))) return r;
    }
}

/* --- the rings ---------------------------------------------------------------- */

static void copy_in(unsigned char *ring, uint64_t mask, uint64_t at, const void *p, size_t n) {
    size_t i = (size_t)(at & mask), first = n < mask + 1 - i ? n : (size_t)(mask + 1 - i);
    memcpy(ring + i, p, first);
    memcpy(ring, (const unsigned char *)p + first, n - first);
}

static void copy_out(const unsigned char *ring, uint64_t mask, uint64_t at, void *p, size_t n) {
    size_t i = (size_t)(at & mask), first = n < mask + 1 - i ? n : (size_t)(mask + 1 - i);
    memcpy(p, ring + i, first);
    memcpy((unsigned char *)p + first, ring, n - first);
}

/* 1 when the writer's ring has room for need bytes; -1 when the reader's
 * tail is impossible. */
static int has_room(sym_shm *m, size_t need) {
    uint64_t tail = atomic_load_explicit(&m->tx_ctl->tail, memory_order_acquire), used = m->head - tail;
    if (used > m->cap) return -1; /* read past what was written, or from long ago */
    return m->cap - used >= need;
}

int sym_shm_ring_write(sym_shm *m, const void *frame, size_t len, uint64_t timeout_ns) {
    if (len > m->max_frame) return errno = EMSGSIZE, -1;
    int r = wait_for(m, has_room, len + 4, &m->tx_ctl->wsleep, timeout_ns);
    if (r <= 0) return errno = r < 0 ? EPROTO : ETIMEDOUT, -1;
    uint32_t n = (uint32_t)len;
    copy_in(m->tx, m->mask, m->head, &n, 4);
    copy_in(m->tx, m->mask, m->head + 4, frame, len);
    m->head += 4 + len;
    atomic_store_explicit(&m->tx_ctl->head, m->head, memory_order_release);
    wake(m, &m->tx_ctl->rsleep);
    return 0;
}

/* 1 when the peer's ring holds something; -1 when its head is impossible. */
static int has_data(sym_shm *m, size_t need) {
    (void)need;
    uint64_t used = atomic_load_explicit(&m->rx_ctl->head, memory_order_acquire) - m->tail;
    if (used > m->cap) return -1;
    return used > 0;
}

int sym_shm_ring_read(sym_shm *m, void *buf, size_t cap, size_t *len, uint64_t timeout_ns, sym_err *e) {
    int r = wait_for(m, has_data, 0, &m->rx_ctl->rsleep, timeout_ns);
    if (r == 0) return 0;
    uint64_t used = atomic_load_explicit(&m->rx_ctl->head, memory_order_acquire) - m->tail;
    if (r < 0 || used > m->cap) return sym_fail(e, "the shared-memory ring's writer is %llu bytes ahead of a ring of %llu",
                                                (unsigned long long)used, (unsigned long long)m->cap);
    uint32_t n;
    if (used < 4) return sym_fail(e, "the shared-memory ring holds %llu bytes, less than a frame's length", (unsigned long long)used);
    copy_out(m->rx, m->mask, m->tail, &n, 4);
    if (n > m->max_frame || n > cap || (uint64_t)n + 4 > used)
        return sym_fail(e, "the shared-memory ring holds a frame of %u bytes (%llu written, at most %llu a frame)", n,
                        (unsigned long long)used - 4, (unsigned long long)m->max_frame);
    copy_out(m->rx, m->mask, m->tail + 4, buf, n);
    m->tail += 4 + (uint64_t)n;
    atomic_store_explicit(&m->rx_ctl->tail, m->tail, memory_order_release);
    wake(m, &m->rx_ctl->wsleep);
    *len = n;
    return 1;
}
