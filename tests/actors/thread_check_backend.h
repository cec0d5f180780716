/* A test double around any backend that checks kernels/backend.h's "a
 * backend object is used by one thread": the first call of a serving op
 * (step, step_runs, reset_slot, export_slot, export_begin, export_end,
 * import_slot, copy_slot) names
 * the backend's thread, and every later one from another thread counts as a
 * violation. Creation-time ops (prepare_runs, set_towers) and destroy, which
 * the creating and joining thread call, are not counted. The count is
 * global, for the whole process. */
#ifndef SYM_THREAD_CHECK_BACKEND_H
#define SYM_THREAD_CHECK_BACKEND_H

#include "kernels/backend.h"

/* Takes inner (destroyed with the wrapper); NULL (inner destroyed) when
 * memory runs out. */
sym_backend *sym_thread_check_wrap(sym_backend *inner, sym_err *e);

/* Serving calls made so far on a thread other than their backend's. */
long sym_thread_check_violations(void);
/* The first few violations, described (for a test's failure message). */
const char *sym_thread_check_report(void);

/* A factory (sym_backend_factory) wrapping another: ctx points at this. */
typedef struct {
    struct sym_backend *(*make)(void *ctx, int shard, sym_err *e);
    void *ctx;
} sym_thread_check_factory;
sym_backend *sym_thread_check_make(void *ctx, int shard, sym_err *e);

#endif
