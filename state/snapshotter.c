/* The snapshot thread: writes snapshot N of the symbols play's thread
 * named, one at a time, each copied by the engine from the shard that
 * owns it between two of its steps, while play keeps serving; and removes
 * the files retention let go. See store.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "kernels/state_layout.h"
#include "state/snapshot.h"
#include "state/store_internal.h"

static int stopping(sym_store *s) {
    pthread_mutex_lock(&s->mu);
    int stop = s->snap_state == SNAP_STOP;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* One snapshot: 0, or -1 with e (the temporary file removed). */
static int take(sym_store *s, uint64_t segment, uint64_t log_from, store_step *list, int n, void *buf, int *written,
                uint64_t *bytes, sym_err *e) {
    sym_snapshot_writer w;
    *written = 0, *bytes = 0;
    if (sym_snapshot_begin(&w, s->dir, segment, log_from, s->fingerprint, s->slot_bytes, e)) return -1;
    for (int i = 0; i < n; i++) {
        if (stopping(s)) {
            sym_snapshot_abort(&w);
            return sym_fail(e, "stopped");
        }
        int got = sym_engine_export_symbol(s->g, list[i].name, buf, e);
        if (got < 0) {
            sym_snapshot_abort(&w);
            return sym_failctx(e, "exporting %s", list[i].name);
        }
        if (!got) continue; /* the engine never stepped it (refused) */
        uint64_t steps = (uint64_t)sym_state_steps(buf);
        if (sym_snapshot_put(&w, list[i].name, steps, buf, e)) return -1;
        memmove(list[*written].name, list[i].name, sizeof list[i].name);
        list[*written].steps = steps;
        ++*written;
        *bytes += s->slot_bytes;
    }
    return sym_snapshot_finish(&w, e);
}

void *store_snapshotter_main(void *arg) {
    sym_store *s = arg;
    void *buf = malloc(s->slot_bytes ? s->slot_bytes : 1);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->snap_state != SNAP_RUNNING && s->snap_state != SNAP_STOP && !s->n_doomed)
            pthread_cond_wait(&s->snap_cv, &s->mu);
        if (s->n_doomed) { /* before a snapshot: the disk space goes first */
            pthread_mutex_unlock(&s->mu);
            store_remove_doomed(s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (s->snap_state == SNAP_STOP) break;
        uint64_t segment = s->snap_segment, log_from = s->snap_log_from;
        store_step *list = s->snap_steps;
        int n = s->snap_n, written = 0;
        pthread_mutex_unlock(&s->mu);
        uint64_t t0 = sym_now_ns(), bytes = 0;
        sym_err e = {{0}};
        int rc = buf ? take(s, segment, log_from, list, n, buf, &written, &bytes, &e) : sym_fail(&e, "out of memory");
        pthread_mutex_lock(&s->mu);
        s->snap_rc = rc;
        snprintf(s->snap_err, sizeof s->snap_err, "%s", e.msg);
        s->snap_written = written;
        s->snap_bytes = bytes;
        s->snap_seconds = (double)(sym_now_ns() - t0) * 1e-9;
        if (s->snap_state == SNAP_RUNNING) s->snap_state = SNAP_DONE;
    }
    pthread_mutex_unlock(&s->mu);
    free(buf);
    return NULL;
}
