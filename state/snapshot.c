/* Snapshot files; see snapshot.h. */
#include "state/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "state/wal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "snapshots are written as the host's bytes");

static const char magic[8] = {'S', 'Y', 'M', 'S', 'N', 'A', 'P', 1};
#define FORMAT_VERSION 1u
#define HEADER_BYTES 48
#define FOOTER_MARK 0xffffffffu

int sym_snapshot_path(const char *dir, uint64_t segment, char *out, size_t cap) {
    return snprintf(out, cap, "%s/snap-%08" PRIu64 ".bin", dir, segment) < (int)cap ? 0 : -1;
}

int sym_snapshot_number(const char *name, uint64_t *segment) { return sym_state_file_number(name, "snap-", ".bin", segment); }

static int wfail(sym_snapshot_writer *w, sym_err *e) {
    int er = errno;
    sym_snapshot_abort(w);
    return sym_fail(e, "snapshot %s: %s", w->tmp, strerror(er ? er : EIO));
}

/* What is written since the last hand-off, to the disk once it is
 * writeback_bytes; then waits for what was handed before. -1 with errno. */
static int writeback(sym_snapshot_writer *w) {
    if (w->written - w->handed < w->writeback_bytes) return 0;
    if (fflush(w->f)) return -1;
    int fd = fileno(w->f);
    if (sync_file_range(fd, (off_t)w->handed, (off_t)(w->written - w->handed), SYNC_FILE_RANGE_WRITE) ||
        (w->handed > w->waited &&
         sync_file_range(fd, (off_t)w->waited, (off_t)(w->handed - w->waited),
                         SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER))) {
        if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != ESPIPE) return -1;
        w->writeback_bytes = SIZE_MAX; /* a file system without it: the page cache decides, as before */
    }
    w->waited = w->handed, w->handed = w->written;
    return 0;
}

/* n bytes, handed to the disk as they go (writeback) */
static int put_bytes(sym_snapshot_writer *w, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n) {
        const size_t pending = (size_t)(w->written - w->handed);
        size_t k = n;
        if (pending < w->writeback_bytes && w->writeback_bytes - pending < k) k = w->writeback_bytes - pending;
        if (fwrite(b, 1, k, w->f) != k) return -1;
        w->written += k, b += k, n -= k;
        if (writeback(w)) return -1;
    }
    return 0;
}

int sym_snapshot_begin(sym_snapshot_writer *w, const char *dir, uint64_t segment, uint64_t log_from,
                       uint64_t fingerprint, size_t slot_bytes, sym_err *e) {
    memset(w, 0, sizeof *w);
    w->slot_bytes = slot_bytes;
    w->writeback_bytes = SYM_SNAPSHOT_WRITEBACK_BYTES;
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    if (sym_snapshot_path(dir, segment, w->path, sizeof w->path) ||
        snprintf(w->tmp, sizeof w->tmp, "%s.tmp", w->path) >= (int)sizeof w->tmp)
        return sym_fail(e, "state dir path too long");
    if (!(w->f = fopen(w->tmp, "wb"))) return sym_fail(e, "snapshot %s: %s", w->tmp, strerror(errno));
    unsigned char h[HEADER_BYTES];
    uint32_t v = FORMAT_VERSION, crc;
    uint64_t sb = slot_bytes;
    memcpy(h, magic, 8);
    memcpy(h + 8, &v, 4);
    memcpy(h + 16, &fingerprint, 8);
    memcpy(h + 24, &segment, 8);
    memcpy(h + 32, &log_from, 8);
    memcpy(h + 40, &sb, 8);
    crc = sym_crc32c(0, h + 16, 32);
    memcpy(h + 12, &crc, 4);
    if (put_bytes(w, h, sizeof h)) return wfail(w, e);
    return 0;
}

int sym_snapshot_put(sym_snapshot_writer *w, const char *symbol, uint64_t steps, const void *state, sym_err *e) {
    uint32_t sl = (uint32_t)strlen(symbol), crc;
    crc = sym_crc32c(0, symbol, sl);
    crc = sym_crc32c(crc, &steps, 8);
    crc = sym_crc32c(crc, state, w->slot_bytes);
    if (put_bytes(w, &sl, 4) || put_bytes(w, symbol, sl) || put_bytes(w, &steps, 8) || put_bytes(w, &crc, 4) ||
        put_bytes(w, state, w->slot_bytes))
        return wfail(w, e);
    w->crc_of_crcs = sym_crc32c(w->crc_of_crcs, &crc, 4);
    w->entries++;
    return 0;
}

int sym_snapshot_finish(sym_snapshot_writer *w, sym_err *e) {
    uint32_t mark = FOOTER_MARK;
    if (fwrite(&mark, 4, 1, w->f) != 1 || fwrite(&w->entries, 8, 1, w->f) != 1 ||
        fwrite(&w->crc_of_crcs, 4, 1, w->f) != 1 || fflush(w->f) || fsync(fileno(w->f)))
        return wfail(w, e);
    int rc = fclose(w->f);
    w->f = NULL;
    if (rc || rename(w->tmp, w->path)) return wfail(w, e);
    int dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd)) {
        if (dfd >= 0) close(dfd);
        return sym_fail(e, "snapshot %s: syncing its directory: %s", w->path, strerror(errno));
    }
    close(dfd);
    return 0;
}

void sym_snapshot_abort(sym_snapshot_writer *w) {
    if (w->f) fclose(w->f);
    w->f = NULL;
    if (w->tmp[0]) unlink(w->tmp);
}

int sym_snapshot_open(sym_snapshot_reader *r, const char *path, uint64_t fingerprint, size_t slot_bytes, sym_err *e) {
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->slot_bytes = slot_bytes;
    if (!(r->f = fopen(path, "rb"))) return sym_fail(e, "snapshot %s: %s", path, strerror(errno));
    unsigned char h[HEADER_BYTES];
    uint32_t v, crc;
    uint64_t fp, sb;
    if (fread(h, 1, sizeof h, r->f) != sizeof h || memcmp(h, magic, 8))
        return sym_fail(e, "snapshot %s: not a symserve snapshot", path);
    memcpy(&v, h + 8, 4);
    memcpy(&crc, h + 12, 4);
    if (v != FORMAT_VERSION) return sym_fail(e, "snapshot %s: format version %u, this build reads %u", path, v, FORMAT_VERSION);
    if (crc != sym_crc32c(0, h + 16, 32)) return sym_fail(e, "snapshot %s: the header's checksum does not match", path);
    memcpy(&fp, h + 16, 8);
    memcpy(&r->segment, h + 24, 8);
    memcpy(&r->log_from, h + 32, 8);
    memcpy(&sb, h + 40, 8);
    if (fp != fingerprint)
        return sym_fail(e, "snapshot %s: written for another engine (fingerprint %016" PRIx64 ", this one is %016" PRIx64
                           ": another model, backend, precision or state precision)", path, fp, fingerprint);
    if (sb != slot_bytes)
        return sym_fail(e, "snapshot %s: slots of %" PRIu64 " bytes, this engine's are %zu", path, sb, slot_bytes);
    return 0;
}

int sym_snapshot_entry(sym_snapshot_reader *r, char symbol[SYM_SYMBOL_MAX + 1], uint64_t *steps, sym_err *e) {
    uint32_t sl, crc;
    if (r->in_entry) return sym_fail(e, "snapshot %s: entry %" PRIu64 " not read to its end", r->path, r->read);
    if (fread(&sl, 4, 1, r->f) != 1) return sym_fail(e, "snapshot %s: cut short after %" PRIu64 " entries", r->path, r->read);
    if (sl == FOOTER_MARK) {
        uint64_t n;
        unsigned char extra;
        if (fread(&n, 8, 1, r->f) != 1 || fread(&crc, 4, 1, r->f) != 1)
            return sym_fail(e, "snapshot %s: its footer is cut short", r->path);
        if (n != r->read || crc != r->crc_of_crcs || fread(&extra, 1, 1, r->f) == 1)
            return sym_fail(e, "snapshot %s: its footer does not match its %" PRIu64 " entries", r->path, r->read);
        return 0;
    }
    if (sl < 1 || sl > SYM_SYMBOL_MAX) return sym_fail(e, "snapshot %s: entry %" PRIu64 " is damaged", r->path, r->read);
    if (fread(symbol, 1, sl, r->f) != sl || fread(steps, 8, 1, r->f) != 1 || fread(&crc, 4, 1, r->f) != 1)
        return sym_fail(e, "snapshot %s: cut short in entry %" PRIu64, r->path, r->read);
    symbol[sl] = '\0';
    r->in_entry = 1;
    r->entry_crc = crc;
    r->entry_sl = sl;
    memcpy(r->entry_symbol, symbol, sl + 1);
    r->entry_steps = *steps;
    return 1;
}

/* The entry is read: its checksum joins the footer's. */
static void entry_done(sym_snapshot_reader *r) {
    r->crc_of_crcs = sym_crc32c(r->crc_of_crcs, &r->entry_crc, 4);
    r->in_entry = 0;
    r->read++;
}

int sym_snapshot_state(sym_snapshot_reader *r, void *state, sym_err *e) {
    if (!r->in_entry) return sym_fail(e, "snapshot %s: no entry to read the state of", r->path);
    if (fread(state, 1, r->slot_bytes, r->f) != r->slot_bytes)
        return sym_fail(e, "snapshot %s: cut short in entry %" PRIu64, r->path, r->read);
    uint32_t c = sym_crc32c(0, r->entry_symbol, r->entry_sl);
    c = sym_crc32c(c, &r->entry_steps, 8);
    c = sym_crc32c(c, state, r->slot_bytes);
    if (c != r->entry_crc)
        return sym_fail(e, "snapshot %s: entry %" PRIu64 " (%s) fails its checksum", r->path, r->read, r->entry_symbol);
    entry_done(r);
    return 0;
}

int sym_snapshot_skip(sym_snapshot_reader *r, sym_err *e) {
    if (!r->in_entry) return sym_fail(e, "snapshot %s: no entry to pass over", r->path);
    if (fseeko(r->f, (off_t)r->slot_bytes, SEEK_CUR))
        return sym_fail(e, "snapshot %s: entry %" PRIu64 ": %s", r->path, r->read, strerror(errno));
    entry_done(r);
    return 0;
}

int sym_snapshot_next(sym_snapshot_reader *r, char symbol[SYM_SYMBOL_MAX + 1], uint64_t *steps, void *state,
                      sym_err *e) {
    int k = sym_snapshot_entry(r, symbol, steps, e);
    if (k != 1) return k;
    return sym_snapshot_state(r, state, e) ? -1 : 1;
}

void sym_snapshot_close(sym_snapshot_reader *r) {
    if (r->f) fclose(r->f);
    r->f = NULL;
}
