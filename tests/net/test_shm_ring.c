/* The shared-memory rings of net/shm_ring.h, on small rings (frames of at
 * most 1000 bytes: 4 KiB rings): a region made, opened by name, its name
 * removed; frames of every size to the largest, the ring wrapping many
 * times; a frame too long, a length or counter a peer could write that no
 * writer of ours does, each refused; a full ring blocking its writer up
 * to the timeout; a reader asleep on the futex woken by a write, and no
 * wake sent to one that is not asleep; two threads (one mapping: what
 * ThreadSanitizer checks) and two processes passing many frames, each
 * with its number and CRC-32C; the name a creator killed in its handshake
 * leaves, swept once it is old, and a live creator's kept. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "net/shm_ring.h"
#include "tests/check.h"

#define MAX 1000
#define SEC 1000000000ull
#define MS 1000000ull

static unsigned char frame[MAX], got[MAX];

/* Frame k of a stream: its length from k, u32 k, bytes, and (when it has
 * room) the CRC-32C of what comes before it in the last 4 bytes. */
static size_t make(uint32_t k, unsigned char *p) {
    size_t len = 4 + (size_t)(k * 2654435761u) % (MAX - 3);
    if (k % 97 == 0) len = MAX;
    memcpy(p, &k, 4);
    for (size_t i = 4; i < len; i++) p[i] = (unsigned char)(k * 31 + i * 7);
    if (len >= 8) {
        uint32_t c = sym_crc32c(0, p, len - 4);
        memcpy(p + len - 4, &c, 4);
    }
    return len;
}

/* 1 when p is frame k of the stream. */
static int check(uint32_t k, const unsigned char *p, size_t len) {
    static __thread unsigned char want[MAX];
    return make(k, want) == len && !memcmp(want, p, len);
}

static void region_and_names(void) {
    sym_err e = {{0}};
    sym_shm *a = sym_shm_create(MAX, 0, &e);
    CHECK(a, "create: %s", e.msg);
    if (!a) exit(1);
    const char *name = sym_shm_name(a);
    char path[64];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    struct stat st;
    CHECKV(!strncmp(name, "/symserve-", 10) && strlen(name) == 26 && !stat(path, &st) && (st.st_mode & 0777) == 0600 &&
               (size_t)st.st_size == sym_shm_region_bytes(MAX),
           "a region %s: mode 0600, %zu bytes (two 4 KiB rings for frames of %d bytes)", name, sym_shm_region_bytes(MAX),
           MAX);
    sym_shm *bad = sym_shm_open(name, MAX * 4, 0, &e);
    CHECKV(!bad && strstr(e.msg, "not a region"), "opened for frames of another size: refused (%s)", e.msg);
    bad = sym_shm_open(name, MAX * 2, 0, &e); /* rings of the same size: the header differs */
    CHECKV(!bad && strstr(e.msg, "another layout"), "opened for frames of another size, same bytes: refused (%s)", e.msg);
    bad = sym_shm_open("/etc/passwd", MAX, 0, &e);
    CHECKV(!bad, "a name not of the wire refused (%s)", e.msg);
    sym_shm *b = sym_shm_open(name, MAX, 0, &e);
    CHECK(b, "open: %s", e.msg);
    if (!b) exit(1);
    sym_shm_unlink(b);
    CHECKV(stat(path, &st) && errno == ENOENT, "its name removed by the side that mapped it: nothing in /dev/shm");
    sym_shm_unlink(a); /* the creator's own: the name is gone already, quietly */
    CHECKV(sym_shm_ring_write(a, "hello", 5, 0) == 0 && sym_shm_ring_read(b, got, MAX, &(size_t){0}, 0, &e) == 1 &&
               !memcmp(got, "hello", 5),
           "a frame across the mappings once the name is gone");
    size_t len = 0;
    CHECKV(sym_shm_ring_write(b, "back", 4, 0) == 0 && sym_shm_ring_read(a, got, MAX, &len, 0, &e) == 1 && len == 4 &&
               !memcmp(got, "back", 4),
           "and one the other way, on the other ring");
    sym_shm_close(b);
    sym_shm_close(a);
    sym_shm *c = sym_shm_create(MAX, 0, &e);
    snprintf(path, sizeof path, "/dev/shm%s", sym_shm_name(c));
    sym_shm_close(c);
    CHECKV(stat(path, &st) && errno == ENOENT, "a region closed by its creator before anyone mapped it: its name removed");
}

static void one_thread(void) {
    sym_err e = {{0}};
    sym_shm *a = sym_shm_create(MAX, 0, &e), *b = a ? sym_shm_other_side(a, &e) : NULL;
    if (!b) exit(1);
    int ok = 1, sizes_max = 0;
    size_t bytes = 0, len;
    for (uint32_t k = 0; k < 20000 && ok; k++) {
        size_t n = make(k, frame);
        ok = sym_shm_ring_write(a, frame, n, 0) == 0 && sym_shm_ring_read(b, got, MAX, &len, 0, &e) == 1 && check(k, got, len);
        bytes += n + 4, sizes_max += n == MAX;
    }
    CHECKV(ok, "20,000 frames of 4..%d bytes (%d of %d), the 4 KiB ring wrapped %zu times: each read back as written", MAX,
           sizes_max, MAX, bytes / 4096);
    CHECKV(sym_shm_ring_write(a, frame, MAX + 1, 0) == -1 && errno == EMSGSIZE, "a frame of %d bytes refused (EMSGSIZE)",
           MAX + 1);
    int n = 0;
    memset(frame, 7, MAX);
    while (n < 10 && !sym_shm_ring_write(a, frame, MAX, 0)) n++;
    CHECKV(n == 4 && errno == ETIMEDOUT, "a full ring: %d frames of %d bytes in, the next one ETIMEDOUT at once", n, MAX);
    uint64_t t0 = sym_now_ns();
    int rc = sym_shm_ring_write(a, frame, MAX, 150 * MS);
    double ms = (double)(sym_now_ns() - t0) * 1e-6;
    CHECKV(rc == -1 && errno == ETIMEDOUT && ms >= 150 && ms < 1000,
           "a writer whose reader does not read waits 150 ms (%.0f), then ETIMEDOUT", ms);
    int drained = 0;
    while (sym_shm_ring_read(b, got, MAX, &len, 0, &e) == 1) drained += len == MAX;
    t0 = sym_now_ns();
    rc = sym_shm_ring_read(b, got, MAX, &len, 60 * MS, &e);
    ms = (double)(sym_now_ns() - t0) * 1e-6;
    CHECKV(drained == 4 && rc == 0 && ms >= 60 && ms < 1000, "drained, an empty ring's read waits 60 ms (%.0f), then 0", ms);
    sym_shm_close(b);
    sym_shm_close(a);
}

/* A ring whose bytes or counters a test writes as a peer could. */
typedef struct {
    sym_shm *a, *b;
    unsigned char *raw; /* the region through a mapping of the test's own */
} poked;

static poked poke_open(void) {
    sym_err e = {{0}};
    poked p = {.a = sym_shm_create(MAX, 0, &e)};
    if (!p.a || !(p.b = sym_shm_open(sym_shm_name(p.a), MAX, 0, &e))) exit(1);
    int fd = shm_open(sym_shm_name(p.a), O_RDWR, 0);
    p.raw = mmap(NULL, sym_shm_region_bytes(MAX), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p.raw == MAP_FAILED) exit(1);
    return p;
}

static void poke_close(poked *p) {
    munmap(p->raw, sym_shm_region_bytes(MAX));
    sym_shm_close(p->b);
    sym_shm_close(p->a);
}

/* The layout shm_ring.h documents: ring 0's counters at 64 (head, tail a
 * line further), its bytes at 4096. */
static void bad_peers(void) {
    sym_err e = {{0}};
    size_t len;
    poked p = poke_open();
    uint32_t n = MAX + 1;
    sym_shm_ring_write(p.a, "0123456789", 10, 0);
    memcpy(p.raw + 4096, &n, 4);
    int rc = sym_shm_ring_read(p.b, got, MAX, &len, 0, &e);
    CHECKV(rc == -1 && strstr(e.msg, "a frame of 1001 bytes"), "a frame's length past the largest refused: %s", e.msg);
    poke_close(&p);

    p = poke_open();
    sym_shm_ring_write(p.a, "0123456789", 10, 0);
    n = 500;
    memcpy(p.raw + 4096, &n, 4);
    rc = sym_shm_ring_read(p.b, got, MAX, &len, 0, &e);
    CHECKV(rc == -1 && strstr(e.msg, "a frame of 500 bytes (10 written"), "a length past what was written refused: %s",
           e.msg);
    poke_close(&p);

    p = poke_open();
    uint64_t head = 4096 + 1;
    memcpy(p.raw + 64, &head, 8);
    rc = sym_shm_ring_read(p.b, got, MAX, &len, 0, &e);
    CHECKV(rc == -1 && strstr(e.msg, "ahead of a ring"), "a head more than a ring ahead refused: %s", e.msg);
    poke_close(&p);

    p = poke_open();
    uint64_t tail = 100; /* read past what was written */
    memcpy(p.raw + 128, &tail, 8);
    rc = sym_shm_ring_write(p.a, "x", 1, 0);
    CHECKV(rc == -1 && errno == EPROTO, "a tail ahead of the head: the writer refuses (EPROTO)");
    poke_close(&p);

    p = poke_open();
    n = 3;
    sym_shm_ring_write(p.a, "abc", 3, 0);
    memset(p.raw + 4096 + 4, 'z', 3); /* before the read: what it reads */
    rc = sym_shm_ring_read(p.b, got, MAX, &len, 0, &e);
    memset(p.raw + 4096 + 4, 'q', 3); /* after it: nothing of what was read */
    CHECKV(rc == 1 && len == 3 && !memcmp(got, "zzz", 3), "a frame read is a copy: the peer's later writes do not reach it");
    poke_close(&p);
}

/* --- waking ----------------------------------------------------------------- */

typedef struct {
    sym_shm *m;
    uint64_t timeout, took;
    int rc;
    size_t len;
} reader;

static void *read_one(void *arg) {
    reader *r = arg;
    sym_err e;
    uint64_t t0 = sym_now_ns();
    static __thread unsigned char buf[MAX];
    r->rc = sym_shm_ring_read(r->m, buf, MAX, &r->len, r->timeout, &e);
    r->took = sym_now_ns() - t0;
    return NULL;
}

static void waking(void) {
    sym_err e = {{0}};
    sym_shm *a = sym_shm_create(MAX, 0, &e), *b = a ? sym_shm_other_side(a, &e) : NULL;
    if (!b) exit(1);
    reader r = {.m = b, .timeout = 5 * SEC};
    pthread_t t;
    pthread_create(&t, NULL, read_one, &r);
    struct timespec d = {0, 100000000};
    nanosleep(&d, NULL);
    sym_shm_stats rs = sym_shm_get_stats(b);
    sym_shm_ring_write(a, "wake", 4, 0);
    pthread_join(t, NULL);
    sym_shm_stats ws = sym_shm_get_stats(a);
    double ms = (double)r.took * 1e-6; /* from the reader's start, within the 100 ms before the write */
    CHECKV(rs.sleeps == 1 && ws.wakes == 1 && r.rc == 1 && r.len == 4 && ms >= 50 && ms < 1000,
           "a reader asleep on the futex (sleeps %llu) woken by the write (wakes %llu) after %.0f ms of its 5 s",
           (unsigned long long)rs.sleeps, (unsigned long long)ws.wakes, ms);
    for (int i = 0; i < 50; i++) sym_shm_ring_write(a, "x", 1, 0), sym_shm_ring_read(b, got, MAX, &r.len, 0, &e);
    ws = sym_shm_get_stats(a);
    CHECKV(ws.wakes == 1, "50 frames to a reader that never slept: no wake sent (%llu in all)", (unsigned long long)ws.wakes);
    sym_shm_close(b);
    sym_shm_close(a);

    /* a spinning reader takes a frame without a futex either way */
    a = sym_shm_create(MAX, 2 * SEC, &e), b = a ? sym_shm_other_side(a, &e) : NULL;
    if (!b) exit(1);
    r = (reader){.m = b, .timeout = 5 * SEC};
    pthread_create(&t, NULL, read_one, &r);
    nanosleep(&d, NULL);
    sym_shm_ring_write(a, "spun", 4, 0);
    pthread_join(t, NULL);
    CHECKV(r.rc == 1 && sym_shm_get_stats(b).sleeps == 0 && sym_shm_get_stats(a).wakes == 0,
           "a reader within its spin (2 s) takes the frame without sleeping or being woken (%.0f ms)", (double)r.took * 1e-6);
    sym_shm_close(b);
    sym_shm_close(a);
}

/* --- many frames ------------------------------------------------------------ */

#define STREAM 200000u

typedef struct {
    sym_shm *m;
    uint32_t n;
    int bad;
} stream;

static void *send_stream(void *arg) {
    stream *s = arg;
    static __thread unsigned char buf[MAX];
    for (uint32_t k = 0; k < s->n; k++) {
        size_t n = make(k, buf);
        if (sym_shm_ring_write(s->m, buf, n, 10 * SEC)) s->bad++;
    }
    return NULL;
}

static int recv_stream(sym_shm *m, uint32_t n) {
    static __thread unsigned char buf[MAX];
    sym_err e;
    size_t len;
    int bad = 0;
    for (uint32_t k = 0; k < n; k++)
        if (sym_shm_ring_read(m, buf, MAX, &len, 10 * SEC, &e) != 1 || !check(k, buf, len)) bad++;
    return bad;
}

static void two_threads(uint64_t spin) {
    sym_err e = {{0}};
    sym_shm *a = sym_shm_create(MAX, spin, &e), *b = a ? sym_shm_other_side(a, &e) : NULL;
    if (!b) exit(1);
    stream s = {.m = a, .n = STREAM};
    pthread_t t;
    uint64_t t0 = sym_now_ns();
    pthread_create(&t, NULL, send_stream, &s);
    int bad = recv_stream(b, STREAM);
    pthread_join(t, NULL);
    sym_shm_stats w = sym_shm_get_stats(a), r = sym_shm_get_stats(b);
    CHECKV(!bad && !s.bad,
           "two threads, spin %llu us: %u frames with their CRC-32C in %.2f s, in order and intact (%d bad); the writer "
           "slept %llu times for room, the reader %llu for data",
           (unsigned long long)spin / 1000, STREAM, (double)(sym_now_ns() - t0) * 1e-9, bad + s.bad,
           (unsigned long long)w.sleeps, (unsigned long long)r.sleeps);
    sym_shm_close(b);
    sym_shm_close(a);
}

/* The child maps the region by name and sends every frame it reads back on
 * its own ring. */
static void two_processes(void) {
    sym_err e = {{0}};
    sym_shm *a = sym_shm_create(MAX, 20000, &e);
    if (!a) exit(1);
    pid_t child = fork();
    if (child == 0) {
        sym_shm *b = sym_shm_open(sym_shm_name(a), MAX, 20000, &e);
        if (!b) _exit(2);
        size_t len;
        for (uint32_t k = 0; k < STREAM / 4; k++)
            if (sym_shm_ring_read(b, got, MAX, &len, 10 * SEC, &e) != 1 || sym_shm_ring_write(b, got, len, 10 * SEC)) _exit(3);
        _exit(0);
    }
    stream s = {.m = a, .n = STREAM / 4};
    pthread_t t;
    uint64_t t0 = sym_now_ns();
    pthread_create(&t, NULL, send_stream, &s);
    int bad = recv_stream(a, STREAM / 4);
    pthread_join(t, NULL);
    int st = -1;
    waitpid(child, &st, 0);
    CHECKV(!bad && !s.bad && WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "two processes: %u frames there and back in %.2f s, intact (%d bad, the child's exit %d); %llu futex wakes sent, "
           "%llu sleeps",
           STREAM / 4, (double)(sym_now_ns() - t0) * 1e-9, bad + s.bad, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
           (unsigned long long)sym_shm_get_stats(a).wakes, (unsigned long long)sym_shm_get_stats(a).sleeps);
    sym_shm_close(a);
}

/* A child that makes a region and sends its name; then it ends at once,
 * as if killed (_exit: its name stays), or, live, closes the region and
 * ends once the parent closes *hold. */
static pid_t region_in_child(int live, char *name, int *hold) {
    int up[2], down[2];
    if (pipe(up) || pipe(down)) exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        sym_err e = {{0}};
        sym_shm *m = sym_shm_create(MAX, 0, &e);
        char n[SYM_SHM_NAME_MAX] = {0};
        if (m) snprintf(n, sizeof n, "%s", sym_shm_name(m));
        if (write(up[1], n, sizeof n) != (ssize_t)sizeof n) _exit(2);
        if (!live) _exit(0);
        char c;
        close(down[1]);
        while (read(down[0], &c, 1) > 0) {}
        sym_shm_close(m);
        _exit(0);
    }
    close(up[1]), close(down[0]);
    ssize_t got_n = read(up[0], name, SYM_SHM_NAME_MAX);
    close(up[0]);
    if (got_n != SYM_SHM_NAME_MAX || !name[0]) exit(1);
    *hold = down[1];
    return pid;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void age(const char *path, int seconds) {
    struct timespec t[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = time(NULL) - seconds}};
    if (utimensat(AT_FDCWD, path, t, 0)) exit(1);
}

static void sweep(void) {
    char dead[SYM_SHM_NAME_MAX], live[SYM_SHM_NAME_MAX], dpath[64], lpath[64], pid_hex[16];
    int hold_dead, hold_live;
    pid_t d = region_in_child(0, dead, &hold_dead);
    waitpid(d, NULL, 0);
    close(hold_dead);
    pid_t l = region_in_child(1, live, &hold_live);
    snprintf(dpath, sizeof dpath, "/dev/shm%s", dead);
    snprintf(lpath, sizeof lpath, "/dev/shm%s", live);
    snprintf(pid_hex, sizeof pid_hex, "%08x", (unsigned)d);
    CHECKV(!strncmp(dead + 10, pid_hex, 8) && exists(dpath),
           "a creator killed before anyone mapped its region: %s (its pid %d in the name) left", dead, (int)d);
    sym_shm_sweep(60);
    CHECKV(exists(dpath), "not swept while younger than the age given (60 s)");
    age(dpath, 120);
    age(lpath, 120);
    sym_shm_sweep(60);
    CHECKV(!exists(dpath), "swept once older: nothing of it in /dev/shm");
    CHECKV(exists(lpath), "a live creator's region as old: kept");
    sym_err e = {{0}};
    sym_shm *own = sym_shm_create(MAX, 0, &e);
    snprintf(dpath, sizeof dpath, "/dev/shm%s", own ? sym_shm_name(own) : "/none");
    age(dpath, 120);
    sym_shm_sweep(0);
    CHECKV(exists(dpath), "this process's own region: kept");
    sym_shm_close(own);
    close(hold_live);
    waitpid(l, NULL, 0);
    CHECKV(!exists(lpath), "the live creator ended: its own close removed its name");
}

int main(void) {
    region_and_names();
    one_thread();
    bad_peers();
    waking();
    two_threads(0);
    two_threads(50000);
    two_processes();
    sweep();
    return failures != 0;
}
