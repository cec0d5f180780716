/* A shard's disk tier: the states that overflow its host tier
 * (host_tier.h), one file each under <state.dir>/pages/shard-<i>/, bounded
 * by state.disk_tier_mb (config). On only with a state dir. Owned by the
 * shard thread; nothing else touches it.
 *
 * A file is <id>.page: a 24-byte header (magic, the state's byte count,
 * its CRC-32C) and the state's bytes. It is written whole to <id>.page.tmp
 * and renamed, so a failed write leaves the previous file (or none), and
 * read back whole and checked before a state leaves the tier: a torn or
 * flipped byte is a named checksum error, never a state.
 *
 * These files are not durable state (the log and the snapshots are,
 * state/store.h): init removes every page file an earlier process left in
 * the shard's folder, and free removes the tier's own.
 *
 * Bound: at most cap files (disk_tier_mb MiB / file bytes) exist at once.
 * One is the swap room: bringing a symbol back from disk into a full pool
 * may first spill another state to disk, and for that moment both files
 * exist. So the tier holds at most cap - 1 states between steps
 * (sym_disk_tier_room). */
#ifndef SYM_DISK_TIER_H
#define SYM_DISK_TIER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SYM_PAGE_HEADER_BYTES 24

typedef struct {
    char dir[1100];       /* <state.dir>/pages/shard-<i>; empty: no tier */
    size_t slot_bytes;
    int n_ids;
    int cap;              /* files at most */
    int n_held;           /* symbols whose state is on disk */
    unsigned char *held;  /* [n_ids] */
    void *stage;          /* a slot_bytes buffer for copies without a host buffer, made on first use */
} sym_disk_tier;

/* state_dir NULL or empty, or bytes too small for one file: no tier (cap
 * 0). Otherwise makes <state_dir>/pages/shard-<shard>/ and removes the
 * page files found there. */
int sym_disk_tier_init(sym_disk_tier *t, const char *state_dir, int shard, int n_ids, size_t slot_bytes,
                       uint64_t bytes, sym_err *e);
/* Removes the tier's files and its folder (when empty). */
void sym_disk_tier_free(sym_disk_tier *t);

/* States the tier can hold between steps (cap - 1, 0 without a tier). */
static inline int sym_disk_tier_room(const sym_disk_tier *t) { return t->cap > 1 ? t->cap - 1 : 0; }
static inline int sym_disk_tier_has(const sym_disk_tier *t, int id) { return t->held && t->held[id]; }

/* Writes state (slot_bytes) as id's file, replacing the one id has. On
 * error id's previous file, if any, is as it was. The caller keeps within
 * cap. */
int sym_disk_tier_write(sym_disk_tier *t, int id, const void *state, sym_err *e);
/* Reads id's state into dst (slot_bytes), checked; the file stays. The
 * error names the file and what is wrong with it (its CRC-32C checksum, its
 * size, its header). */
int sym_disk_tier_read(sym_disk_tier *t, int id, void *dst, sym_err *e);
/* Removes id's file (no-op when it has none). */
void sym_disk_tier_drop(sym_disk_tier *t, int id);

/* The tier's own slot_bytes buffer (NULL when out of memory), for a copy
 * between a slot and a file when no host buffer is to be had. */
void *sym_disk_tier_stage(sym_disk_tier *t);

#endif
