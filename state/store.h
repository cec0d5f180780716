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
 * When a shard process is lost, the symbols whose state it held are
 * restored the same way, from the snapshot and the log, for those symbols
 * only, while play serves the others (sym_store_restore_start).
 *
 * Use from one thread (play's event loop), besides the store's own
 * threads (the every_s flusher, the snapshot writer, the restorer). */
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

/* What a restore of a lost shard's symbols did. */
typedef struct {
    int symbols;               /* restored */
    int onto[SYM_MAX_SHARDS];  /* of them, placed on each shard */
    int from_snapshot;         /* of them, from the snapshot's state (the rest from the initial state) */
    char snapshot[64];         /* the snapshot read, "" when none */
    int segments;              /* log segments read */
    uint64_t replayed;         /* logged steps stepped again */
    uint64_t reissued;         /* requests the lost shard took, sent again */
    double seconds;
    int more;                  /* held symbols were left for another restore (one takes a few thousand) */
} sym_restore_stats;

/* Restores the symbols the engine holds after a shard process was lost
 * (sym_engine_hold_lost): each one's state from the newest snapshot relied
 * on and the log after it, for those symbols only, on a thread of the
 * store while play serves the other symbols (actors/engine.h, the restore
 * calls, says how their requests keep their order). Call on play's thread
 * once every answer polled before sym_engine_shards_lost read losses is
 * logged: it commits, and restores the symbols of those losses from the
 * log up to there (after it the log holds no answer of theirs: the engine
 * holds their requests). No file it reads is removed while it runs. One
 * at a time: 0 started; -1 with e (none started). */
int sym_store_restore_start(sym_store *s, int losses, sym_err *e);
/* On play's thread: 0 while it runs (or none ran); 1 when it finished (st
 * filled); -1 when it failed (e says why; the symbols not restored stay
 * held, and their requests unanswered). */
int sym_store_restore_poll(sym_store *s, sym_restore_stats *st, sym_err *e);

typedef struct {
    uint64_t log_bytes;             /* written by this process */
    uint64_t snapshots;             /* finished and used */
    double last_snapshot_s;         /* how long the last one took */
    uint64_t last_snapshot_bytes;
    uint64_t segments_removed, snapshots_removed;
} sym_store_stats;
void sym_store_get_stats(const sym_store *s, sym_store_stats *st);

#endif
