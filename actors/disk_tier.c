#include "actors/disk_tier.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"

static const unsigned char page_magic[8] = {'S', 'Y', 'M', 'P', 'A', 'G', 'E', '1'};

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void page_path(const sym_disk_tier *t, int id, const char *suffix, char *out, size_t n) {
    snprintf(out, n, "%s/%d.page%s", t->dir, id, suffix);
}

static int make_dir(const char *path, sym_err *e) {
    if (mkdir(path, 0755) && errno != EEXIST) return sym_fail(e, "disk tier: cannot make %s: %s", path, strerror(errno));
    return 0;
}

static int is_page_file(const char *name) {
    size_t n = strlen(name);
    return (n > 5 && !strcmp(name + n - 5, ".page")) || (n > 9 && !strcmp(name + n - 9, ".page.tmp"));
}

/* Page files an earlier process left: states of a run that is over. */
static int remove_leftovers(const sym_disk_tier *t, sym_err *e) {
    DIR *d = opendir(t->dir);
    if (!d) return sym_fail(e, "disk tier: cannot read %s: %s", t->dir, strerror(errno));
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (!is_page_file(de->d_name)) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", t->dir, de->d_name);
        if (unlink(path)) {
            closedir(d);
            return sym_fail(e, "disk tier: cannot remove the leftover %s: %s", path, strerror(errno));
        }
        n++;
    }
    closedir(d);
    if (n) sym_info("disk tier: removed %d page file(s) an earlier process left in %s", n, t->dir);
    return 0;
}

int sym_disk_tier_init(sym_disk_tier *t, const char *state_dir, int shard, int n_ids, size_t slot_bytes,
                       uint64_t bytes, sym_err *e) {
    *t = (sym_disk_tier){.slot_bytes = slot_bytes, .n_ids = n_ids};
    uint64_t file = (uint64_t)slot_bytes + SYM_PAGE_HEADER_BYTES;
    uint64_t cap = state_dir && state_dir[0] ? bytes / file : 0;
    if (!cap) return 0;
    t->cap = cap > (uint64_t)n_ids + 1 ? n_ids + 1 : (int)cap; /* more could never be used */
    char pages[1040];
    if (strlen(state_dir) >= 1024) return sym_fail(e, "disk tier: state dir path too long");
    if (snprintf(pages, sizeof pages, "%s/pages", state_dir) >= (int)sizeof pages ||
        snprintf(t->dir, sizeof t->dir, "%s/shard-%d", pages, shard) >= (int)sizeof t->dir) {
        t->dir[0] = '\0';
        return sym_fail(e, "disk tier: state dir path too long");
    }
    if (make_dir(state_dir, e) || make_dir(pages, e) || make_dir(t->dir, e) || remove_leftovers(t, e)) {
        t->dir[0] = '\0';
        return -1;
    }
    t->held = calloc((size_t)(n_ids > 0 ? n_ids : 1), 1);
    if (!t->held) {
        t->dir[0] = '\0';
        return sym_fail(e, "out of memory for a disk tier of %d ids", n_ids);
    }
    return 0;
}

void sym_disk_tier_free(sym_disk_tier *t) {
    for (int i = 0; t->held && i < t->n_ids; i++) sym_disk_tier_drop(t, i);
    if (t->dir[0] && rmdir(t->dir) && errno != ENOTEMPTY && errno != EEXIST)
        sym_warn("disk tier: cannot remove %s: %s", t->dir, strerror(errno));
    free(t->held);
    free(t->stage);
    *t = (sym_disk_tier){0};
}

static int write_all(int fd, const void *p, size_t n) {
    const unsigned char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k, n -= (size_t)k;
    }
    return 0;
}

/* n bytes, or fewer at the end of the file: returns how many, -1 on error. */
static ssize_t read_full(int fd, void *p, size_t n) {
    unsigned char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, c + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (!k) break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

int sym_disk_tier_write(sym_disk_tier *t, int id, const void *state, sym_err *e) {
    char tmp[1200], path[1200];
    page_path(t, id, ".tmp", tmp, sizeof tmp);
    page_path(t, id, "", path, sizeof path);
    unsigned char h[SYM_PAGE_HEADER_BYTES] = {0};
    memcpy(h, page_magic, 8);
    put_u64(h + 8, t->slot_bytes);
    uint32_t crc = sym_crc32c(0, state, t->slot_bytes);
    put_u64(h + 16, crc);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return sym_fail(e, "disk tier: cannot create %s: %s", tmp, strerror(errno));
    int bad = write_all(fd, h, sizeof h) || write_all(fd, state, t->slot_bytes);
    int err = errno;
    if (close(fd) && !bad) bad = 1, err = errno;
    if (!bad && rename(tmp, path)) bad = 1, err = errno;
    if (bad) {
        unlink(tmp);
        return sym_fail(e, "disk tier: cannot write a %zu-byte state to %s: %s", t->slot_bytes, path, strerror(err));
    }
    if (!t->held[id]) t->held[id] = 1, t->n_held++;
    return 0;
}

int sym_disk_tier_read(sym_disk_tier *t, int id, void *dst, sym_err *e) {
    char path[1200];
    page_path(t, id, "", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sym_fail(e, "disk tier: cannot open %s: %s", path, strerror(errno));
    unsigned char h[SYM_PAGE_HEADER_BYTES], extra;
    ssize_t nh = read_full(fd, h, sizeof h);
    ssize_t nb = nh == (ssize_t)sizeof h ? read_full(fd, dst, t->slot_bytes) : -2;
    ssize_t nx = nb == (ssize_t)t->slot_bytes ? read_full(fd, &extra, 1) : -2;
    int err = errno;
    close(fd);
    if (nh < 0 || nb == -1 || nx == -1) return sym_fail(e, "disk tier: cannot read %s: %s", path, strerror(err));
    if (nh != (ssize_t)sizeof h || memcmp(h, page_magic, 8) || get_u64(h + 8) != t->slot_bytes)
        return sym_fail(e, "disk tier: %s is not a page file of a %zu-byte state (bad header)", path, t->slot_bytes);
    if (nb != (ssize_t)t->slot_bytes || nx != 0)
        return sym_fail(e, "disk tier: %s has the wrong size (a %zu-byte state and a %d-byte header expected)", path,
                        t->slot_bytes, SYM_PAGE_HEADER_BYTES);
    uint32_t want = (uint32_t)get_u64(h + 16), got = sym_crc32c(0, dst, t->slot_bytes);
    if (got != want || get_u64(h + 16) >> 32)
        return sym_fail(e, "disk tier: %s fails its CRC-32C checksum (stored %08x, computed %08x)", path, (unsigned)want, (unsigned)got);
    return 0;
}

void sym_disk_tier_drop(sym_disk_tier *t, int id) {
    if (!sym_disk_tier_has(t, id)) return;
    char path[1200];
    page_path(t, id, "", path, sizeof path);
    if (unlink(path) && errno != ENOENT) sym_warn("disk tier: cannot remove %s: %s", path, strerror(errno));
    t->held[id] = 0;
    t->n_held--;
}

void *sym_disk_tier_stage(sym_disk_tier *t) {
    if (!t->stage) t->stage = malloc(t->slot_bytes ? t->slot_bytes : 1);
    return t->stage;
}
