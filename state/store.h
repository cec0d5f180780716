/* Durable symbol state (play --state-dir): the write-ahead log of every
 * step (state/wal.h) and snapshots of every symbol's state
 * (state/snapshot.h), kept in one directory, and the rebuild of the
 * engine's symbols from them after a restart (sym_store_recover).
 *
 * The promise: every answer that leaves the process is in the log first,
 * and a restart loads the newest usable snapshot and replays the log after
 * it, so a symbol's state is its accepted requests, each once, in order,
 * whatever happened to the process. With fsync "no" or "every_s" the log
 * survives a kill -9 (the page cache outlives the process); "always" also
 * survives a machine crash, at the cost of one fdatasync per batch of
 * answers.
 *
 * Snapshots are taken every snapshot_every_s by a thread of the store,
 * one symbol at a time through the engine (each slot copied by the shard
 * that owns it, between two of its steps), while play keeps serving. A
 * snapshot is used once its steps are all in the log; then the files it
 * makes unneeded go: snapshots but the two newest, and log segments before
 * the older of them that hold no request still unanswered and no id of
 * the window.
 *
 * Use from one thread (play's event loop), besides the store's own
 * threads (the every_s flusher, the snapshot writer). */
#ifndef SYM_STATE_STORE_H
#define SYM_STATE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "actors/engine.h"
#include "common/err.h"
#include "common/request.h"
#include "config/config.h" /* sym_fsync_policy */

typedef struct sym_store sym_store;

typedef struct {
    sym_fsync_policy fsync;
    double snapshot_every_s; /* 0: no snapshots (the log grows for ever) */
    size_t id_window;        /* ids play remembers: the log keeps at least their answers */
} sym_store_opts;

/* Opens (creating it when absent) the state directory dir for an engine
 * whose fingerprint (state/fingerprint.h) is given, and locks it against a
 * second process. Nothing is read yet: call sym_store_recover next. */
sym_store *sym_store_open(const char *dir, uint64_t fingerprint, const sym_store_opts *o, sym_err *e);
/* Stops the store's threads (an unfinished snapshot is dropped) and
 * writes what is buffered. */
void sym_store_close(sym_store *s);

/* What a recovery found and did. */
typedef struct {
    char snapshot[64];       /* the snapshot file loaded, "" when none */
    uint64_t snapshot_symbols, snapshot_bytes;
    int snapshots_skipped;   /* newer ones that were damaged or ahead of the log */
    int segments;            /* log segments read */
    uint64_t records;        /* whole records read */
    uint64_t log_bytes;
    uint64_t replayed;       /* steps re-run through the engine */
    uint64_t answers;        /* answered ids handed to on_answer */
    uint64_t unanswered;     /* requests logged but never answered (in flight at the stop): not applied */
    uint64_t torn_bytes;     /* cut from the last segment's tail */
    uint64_t mismatched;     /* replayed steps whose answer differs from the logged one */
    double max_diff;         /* the largest such difference */
    int symbols;
    double seconds, snapshot_seconds;
} sym_recovery_stats;

/* Called for every answered id in log order, to rebuild the window of ids
 * (net/uid_window.h). */
typedef void (*sym_store_answer_fn)(void *ctx, uint64_t uid, uint64_t digest, const double pred[SYM_TOWERS]);

/* Loads the newest whole snapshot whose steps are all in the log into g
 * (which must be fresh: no symbol stepped yet), then re-runs every logged
 * step after it through g, in log order, so that every symbol ends at the
 * state of its last answered request. A request logged but not answered
 * is not applied: its peer never saw an answer and will send it again. A
 * torn tail on the last segment is cut; a damaged snapshot is skipped for
 * the one before; a snapshot or segment of another engine, a damaged
 * segment before the last, or a step missing from a symbol's sequence
 * fails with e naming the file, and nothing is served. Then opens a new
 * segment and starts the store's threads. */
int sym_store_recover(sym_store *s, sym_engine *g, sym_store_answer_fn on_answer, void *ctx, sym_recovery_stats *st,
                      sym_err *e);

/* The store's handle for a symbol (interned on first use); -1 when memory
 * runs out. */
int32_t sym_store_symbol(sym_store *s, const char *symbol);

/* Records, buffered until sym_store_commit. A request the engine accepted
 * (before any answer of it can exist); its answer (step = the symbol's
 * count after it, kept by the store); a refusal after acceptance. -1 when
 * memory runs out. */
int sym_store_log_request(sym_store *s, uint64_t uid, const char *symbol, const float *features, int n_features);
int sym_store_log_answer(sym_store *s, int32_t sym, uint64_t uid, uint64_t digest, const double pred[SYM_TOWERS]);
int sym_store_log_refused(sym_store *s, uint64_t uid);

/* Writes the buffered records (and fdatasyncs them under "always"): call
 * before any answer they cover leaves the process. -1 with e when the log
 * cannot be written: nothing more may be answered. */
int sym_store_commit(sym_store *s, sym_err *e);

/* The periodic work, right after a commit: starts a snapshot when one is
 * due, and once one is finished and its steps are all in the log, removes
 * the files it made unneeded. A failed snapshot is logged and tried again
 * at the next period; -1 with e only when the log itself fails. */
int sym_store_tick(sym_store *s, sym_err *e);

typedef struct {
    uint64_t log_bytes;             /* written by this process */
    uint64_t snapshots;             /* finished and used */
    double last_snapshot_s;         /* how long the last one took */
    uint64_t last_snapshot_bytes;
    uint64_t segments_removed, snapshots_removed;
} sym_store_stats;
void sym_store_get_stats(const sym_store *s, sym_store_stats *st);

#endif
