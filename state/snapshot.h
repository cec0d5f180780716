/* Snapshot files: every symbol's state at one moment of its own, so that
 * recovery replays only the log after it (state/store.h).
 *
 * `snap-NNNNNNNN.bin`, NNNNNNNN the first log segment written after the
 * snapshot began. Replaying from it needs the log from segment `log_from`
 * on: the oldest segment that still had a request unanswered when the
 * snapshot began (its answer may come after the snapshot's step), or
 * NNNNNNNN when none had. Layout, integers little-endian:
 *
 *   header   magic "SYMSNAP" 0x01 | version u32 | CRC-32C of the next 32
 *            bytes u32 | fingerprint u64 | segment u64 | log_from u64 |
 *            slot bytes u64
 *   entries  u32 length of the symbol | symbol | steps u64 | CRC-32C of
 *            symbol, steps and state u32 | state (slot bytes)
 *   footer   u32 0xFFFFFFFF | entries u64 | CRC-32C of the entry CRCs u32
 *
 * A snapshot is written to a temporary name, synced, then renamed: a file
 * under its final name is whole, unless the disk damaged it, which the
 * checksums catch (the reader checks everything before recovery loads a
 * byte of it). */
#ifndef SYM_STATE_SNAPSHOT_H
#define SYM_STATE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/request.h"

/* The writer hands the file to the disk every this many bytes and waits
 * for the part before (sync_file_range), so that a snapshot never holds
 * more than twice this in dirty pages: gigabytes of them make the kernel
 * throttle every writer of the process, play's log included (Redis's
 * rdb-save-incremental-fsync). Not a sync: durability is finish's fsync. */
#define SYM_SNAPSHOT_WRITEBACK_BYTES ((size_t)32 << 20)

typedef struct {
    FILE *f;
    char tmp[1100], path[1100], dir[1024];
    uint64_t entries;
    uint32_t crc_of_crcs;
    size_t slot_bytes;
    size_t writeback_bytes;      /* SYM_SNAPSHOT_WRITEBACK_BYTES; a test may set it lower after begin */
    uint64_t written, handed, waited; /* file offsets: written so far, handed to the disk, waited for */
} sym_snapshot_writer;

int sym_snapshot_path(const char *dir, uint64_t segment, char *out, size_t cap);
/* The segment number of a snapshot file name, strictly. */
int sym_snapshot_number(const char *name, uint64_t *segment);

int sym_snapshot_begin(sym_snapshot_writer *w, const char *dir, uint64_t segment, uint64_t log_from,
                       uint64_t fingerprint, size_t slot_bytes, sym_err *e);
int sym_snapshot_put(sym_snapshot_writer *w, const char *symbol, uint64_t steps, const void *state, sym_err *e);
/* Footer, fsync, rename into place, fsync of the directory. */
int sym_snapshot_finish(sym_snapshot_writer *w, sym_err *e);
/* Drops an unfinished snapshot (its temporary file). */
void sym_snapshot_abort(sym_snapshot_writer *w);

typedef struct {
    FILE *f;
    char path[1100];
    uint64_t segment, log_from, entries, read;
    uint32_t crc_of_crcs;
    size_t slot_bytes;
    /* the entry whose head sym_snapshot_entry read */
    int in_entry;
    uint32_t entry_crc, entry_sl;
    char entry_symbol[SYM_SYMBOL_MAX + 1];
    uint64_t entry_steps;
} sym_snapshot_reader;

/* Checks the header: another engine's (fingerprint) or another slot size
 * fails with e naming the file. */
int sym_snapshot_open(sym_snapshot_reader *r, const char *path, uint64_t fingerprint, size_t slot_bytes, sym_err *e);
/* 1: an entry (state: slot_bytes bytes); 0: the footer, which matched;
 * -1: damaged or cut short, e says where. */
int sym_snapshot_next(sym_snapshot_reader *r, char symbol[SYM_SYMBOL_MAX + 1], uint64_t *steps, void *state,
                      sym_err *e);
/* The same in two parts, for a reader that needs only some states: the
 * entry's head (1: symbol and steps; 0: the footer, which matched; -1:
 * damaged or cut short), then its state read and checked
 * (sym_snapshot_state: 0, or -1 when it fails its checksum) or passed
 * over unread, and so unchecked (sym_snapshot_skip); the footer still
 * checks every entry's stored checksum. */
int sym_snapshot_entry(sym_snapshot_reader *r, char symbol[SYM_SYMBOL_MAX + 1], uint64_t *steps, sym_err *e);
int sym_snapshot_state(sym_snapshot_reader *r, void *state, sym_err *e);
int sym_snapshot_skip(sym_snapshot_reader *r, sym_err *e);
void sym_snapshot_close(sym_snapshot_reader *r);

#endif
