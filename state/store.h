/* Durable symbol state (play --state-dir): the write-ahead log of every
 * step (state/wal.h), kept in one directory, and the rebuild of the
 * engine's symbols from it after a restart (sym_store_recover).
 *
 * The promise: every answer that leaves the process is in the log first,
 * and a restart replays the log into the engine, so a symbol's state is
 * its accepted requests, each once, in order, whatever happened to the
 * process. With fsync "no" or "every_s" the log survives a kill -9 (the
 * page cache outlives the process); "always" also survives a machine
 * crash, at the cost of one fdatasync per batch of answers.
 *
 * Use from one thread (play's event loop), except the every_s flusher the
 * store runs itself. */
#ifndef SYM_STATE_STORE_H
#define SYM_STATE_STORE_H

#include <stdint.h>

#include "actors/engine.h"
#include "common/err.h"
#include "common/request.h"
#include "config/config.h" /* sym_fsync_policy */

typedef struct sym_store sym_store;

/* Opens (creating it when absent) the state directory dir for an engine
 * whose fingerprint (state/fingerprint.h) is given, and locks it against a
 * second process. Nothing is read yet: call sym_store_recover next. */
sym_store *sym_store_open(const char *dir, uint64_t fingerprint, sym_fsync_policy fsync, sym_err *e);
void sym_store_close(sym_store *s);

/* What a recovery found and did. */
typedef struct {
    int segments;            /* log segments read */
    uint64_t records;        /* whole records read */
    uint64_t replayed;       /* steps re-run through the engine */
    uint64_t answers;        /* answered ids handed to on_answer */
    uint64_t unanswered;     /* requests logged but never answered (in flight at the crash): not applied */
    uint64_t torn_bytes;     /* cut from the last segment's tail */
    uint64_t mismatched;     /* replayed steps whose answer differs from the logged one */
    double max_diff;         /* the largest such difference */
    int symbols;
    double seconds;
} sym_recovery_stats;

/* Called for every answered id in log order, to rebuild the window of ids
 * (net/uid_window.h). */
typedef void (*sym_store_answer_fn)(void *ctx, uint64_t uid, uint64_t digest, const double pred[SYM_TOWERS]);

/* Reads the log and re-runs each logged step through g (which must be
 * fresh: no symbol stepped yet), in log order, so that every symbol ends
 * at the state of its last answered request. A request logged but not
 * answered is not applied: its peer never saw an answer and will send it
 * again. A torn tail on the last segment is cut; anything else that is
 * not a whole, valid record, a segment of another engine, or a step
 * missing from the sequence, fails with e naming the file, and nothing is
 * served. Then opens a new segment for what follows. */
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

/* Log bytes written so far by this process. */
uint64_t sym_store_bytes(const sym_store *s);

#endif
