/* The store's insides, shared by its files: store.c (files, symbols, the
 * hot path, retention), snapshotter.c (the snapshot thread) and recover.c.
 * Not a public header. */
#ifndef SYM_STATE_STORE_INTERNAL_H
#define SYM_STATE_STORE_INTERNAL_H

#include <ck_hs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/uid_map.h"
#include "state/store.h"
#include "state/wal.h"

/* A symbol the store has seen: name first, so that a name and an entry
 * both read as the string the hash set compares. */
typedef struct {
    char name[SYM_SYMBOL_MAX + 1];
    int32_t handle;
    uint64_t steps;  /* answered steps logged: the symbol's step count */
    uint64_t logged; /* recovery: the last step the log holds */
} store_symbol;

/* What retention needs to know of a segment still on disk. */
typedef struct {
    uint64_t pending; /* requests logged in it and not yet answered or refused */
    uint64_t answers; /* answers logged in it */
} store_segment;

/* A snapshot's name and step of each symbol, to tell when the log holds
 * all of them. */
typedef struct {
    char name[SYM_SYMBOL_MAX + 1];
    uint64_t steps;
} store_step;

enum { SNAP_IDLE = 0, SNAP_RUNNING, SNAP_DONE, SNAP_STOP };

/* A file retention let go: a snapshot or a log segment, by number. */
typedef struct {
    int snapshot; /* 1: snap-N.bin, 0: wal-N.log */
    uint64_t n;
} store_doomed;

/* A held symbol a restore rebuilds: its name and the step count the log
 * has of it (its state must end there), then what the restore made of it. */
typedef struct {
    char name[SYM_SYMBOL_MAX + 1];
    uint64_t logged; /* the store's count when the restore began */
    uint64_t steps;  /* its state's so far: the snapshot's, then each replayed step */
    int shard;       /* where it was placed */
    int from_snapshot;
} store_held;

/* What a restore reads: the symbols (sorted by name), the snapshot (0:
 * none) and the log from segment from up to byte to_off of segment to. */
typedef struct {
    store_held *held;
    int n_held, more; /* more: the engine held others than these */
    uint64_t snapshot, from, to, to_off;
} store_restore_job;

enum { RESTORE_IDLE = 0, RESTORE_RUNNING, RESTORE_DONE };

struct sym_store {
    char dir[1024];
    uint64_t fingerprint;
    sym_store_opts o;
    sym_engine *g;        /* from recovery on */
    size_t slot_bytes;
    int lock_fd, fd;      /* the directory's lock; the segment being written (-1: none yet) */
    uint64_t segment;     /* its number */
    sym_wal_buf buf;      /* records not yet written */
    ck_hs_t names;        /* name -> store_symbol */
    store_symbol **syms;  /* by handle */
    int32_t n_syms, cap_syms;
    /* retention: the segments on disk, first_seg .. segment */
    uint64_t first_seg;
    store_segment *segs;  /* [segment - first_seg + 1] */
    size_t cap_segs;
    sym_uid_map req_seg;  /* requests in flight -> the number of the segment of their REQUEST */
    uint64_t *kept_snaps; /* snapshots relied on (their segment numbers), ascending */
    uint64_t *kept_from;  /* the log_from of each (state/snapshot.h) */
    int n_kept, cap_kept;
    uint64_t next_snapshot_ns;
    sym_store_stats stats;
    /* the every_s flusher */
    pthread_t flusher;
    int flusher_on, flusher_stop;
    pthread_mutex_t mu; /* fd swaps, and the snapshot hand-over below */
    pthread_cond_t cv;
    _Atomic int flush_errno; /* set by the flusher, reported by the next commit */
    /* the snapshot thread: play's thread hands it a job (SNAP_RUNNING), it
     * answers with SNAP_DONE and snap_rc */
    pthread_t snapper;
    int snapper_on;
    pthread_cond_t snap_cv;
    int snap_state, snap_rc;
    char snap_err[512];
    uint64_t snap_segment, snap_log_from; /* the job: the snapshot's number and log_from */
    store_step *snap_steps; /* in: every symbol's name; out: the steps of those written */
    int snap_n, snap_written;
    double snap_seconds;
    uint64_t snap_bytes;
    /* files retention let go, removed by the snapshot thread in this order
     * (under mu): unlinking a snapshot of several GB holds the file system
     * for a good part of a second, which play's thread must not wait for.
     * Any prefix of the order leaves a directory recovery reads as before. */
    store_doomed *doomed;
    int n_doomed, cap_doomed;
    /* the restorer (restorer.c): play's thread hands it a job (RESTORE_RUNNING,
     * restoring set: retention waits), it answers with RESTORE_DONE */
    int restoring;             /* play's thread only */
    pthread_t restorer;
    int restorer_on;           /* started and not joined (play's thread) */
    int restore_state, restore_rc; /* under mu */
    atomic_int restore_stop;
    char restore_err[512];
    sym_restore_stats restore_st;
    store_restore_job restore_job; /* fixed before the thread starts */
};

store_symbol *store_symbol_of(sym_store *s, const char *symbol);
int store_segment_path(const sym_store *s, uint64_t n, char *out, size_t cap);
/* The segment or snapshot numbers in the directory, ascending. */
int store_list(const sym_store *s, int snapshots, uint64_t **out, int *n, sym_err *e);
/* Starts segment s->segment + 1 (header written and synced). */
int store_open_segment(sym_store *s, sym_err *e);
/* Starts the every_s flusher and the snapshot thread. */
int store_start_threads(sym_store *s, sym_err *e);
/* Room for one more kept snapshot; -1 when memory runs out. */
int store_grow_kept(sym_store *s);

/* The indices of a table of unanswered requests (recovery's, the
 * restorer's): the table grows by doubling, freed indices are reused. */
typedef struct {
    int32_t *free_idx;
    int32_t n, cap, n_free; /* indices given out, the table's room, freed ones */
} store_index;
/* An index in *i for a new entry of `size` bytes in items: the table,
 * moved if it grew; NULL when out of memory (items is left as it was). */
void *store_index_take(store_index *x, void *items, size_t size, int32_t *i);
static inline void store_index_give(store_index *x, int32_t i) { x->free_idx[x->n_free++] = i; }
/* Lets go of the files the snapshots kept make unneeded (store.c): the
 * snapshot thread removes them, or this call when that thread is not
 * running. */
void store_retain(sym_store *s);
/* Removes the files let go so far (the snapshot thread, or close). */
void store_remove_doomed(sym_store *s);
/* The snapshot thread's body (snapshotter.c). */
void *store_snapshotter_main(void *arg);
/* The restorer's body (restorer.c). */
void *store_restorer_main(void *arg);

#endif
