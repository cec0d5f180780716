/* The backend API: one step of the four-tower model for a batch of rows,
 * each row (slot, features) advancing that slot's state by one step. The CPU
 * reference (kernels/cpu) and the CUDA engine (kernels/cuda) both implement
 * it; everything above kernels/ (actors, net, CLI) sees only this.
 *
 * Contract of step():
 *  - rows are independent: every slot appears at most once per call (the
 *    caller batches at most one request per symbol), else -1 and no state
 *    changes;
 *  - features are B rows of cfg.features float32 values, already checked
 *    finite by the caller; out receives B rows of 4 doubles in tower order
 *    [xLSTM, Mamba2, RetNet, Hawk];
 *  - on failure no slot has advanced where the backend can promise it (bad
 *    arguments are rejected before any state is touched).
 *  - a backend object is used by one thread at a time (its shard actor).
 *
 * Slots are exported and imported as raw bytes in the layout of
 * state_layout.h with element type `state_elem_size` (4: fp32, 8: fp64), so
 * a slot moves between two backends of the same state format with memcpy. */
#ifndef SYM_BACKEND_H
#define SYM_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "kernels/model_config.h"
#include "kernels/state_layout.h"

typedef enum {
    SYM_PREC_FP32 = 0, /* weights stored fp32, fp32 arithmetic */
    SYM_PREC_BF16 = 1, /* weights stored bf16, fp32 arithmetic */
    SYM_PREC_FP64 = 2, /* CPU reference only: fp64 arithmetic and state */
} sym_precision;

typedef struct sym_backend sym_backend;

/* Host memory a backend copies a slot to and from fastest, for the
 * buffers slots are exported into and imported from (actors/slot_pool.h,
 * actors/host_tier.h). The CUDA engine's is page-locked: a 153.5 MB slot
 * crosses PCIe at its rate instead of through the driver's staging copy.
 * Any thread may call them; alloc returns NULL when memory runs out, and
 * memory it cannot pin is still usable (only slower). */
typedef struct {
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
} sym_host_mem;

/* From m (NULL: plain malloc and free). */
static inline void *sym_host_mem_alloc(const sym_host_mem *m, size_t bytes) {
    return m ? m->alloc(bytes ? bytes : 1) : malloc(bytes ? bytes : 1);
}
static inline void sym_host_mem_free(const sym_host_mem *m, void *p) {
    if (!p) return;
    if (m) m->free(p);
    else free(p);
}

typedef struct {
    const char *name; /* "cpu-fp64", "cpu-fp32", "cuda", ... */
    int (*step)(sym_backend *b, int B, const int32_t *slots, const float *features, double *out, sym_err *e);
    int (*reset_slot)(sym_backend *b, int32_t slot, sym_err *e);
    /* dst/src hold slot_bytes bytes on the host */
    int (*export_slot)(sym_backend *b, int32_t slot, void *dst, sym_err *e);
    int (*import_slot)(sym_backend *b, int32_t slot, const void *src, sym_err *e);
    /* Optional (NULL: the caller goes through export/import): copies a slot
     * straight to another backend of the same kind (device or peer copy). */
    int (*copy_slot)(sym_backend *src, int32_t src_slot, sym_backend *dst, int32_t dst_slot, sym_err *e);
    void (*destroy)(sym_backend *b);
    /* Optional (NULL: all four towers only): from now on step() computes
     * only the towers in mask (bit t = tower t), leaves the other towers'
     * state untouched and writes NaN as their outputs. The step count still
     * advances. For a backend that is one part of a tower split. */
    int (*set_towers)(sym_backend *b, int mask, sym_err *e);
    /* Optional (NULL: sym_backend_step_runs runs passes of distinct
     * slots): step() for a batch whose slots may repeat up to max_run
     * times, a slot's rows adjacent and in order; each run of rows is
     * applied in order while the backend holds the slot's state. The
     * caller (sym_backend_step_runs) guarantees the layout. */
    int (*step_runs)(sym_backend *b, int B, const int32_t *slots, const float *features, double *out, sym_err *e);
    /* Optional: builds ahead what step_runs will need (the CUDA engine:
     * its step graphs for runs), so that the first steps with runs do not
     * pay for it while serving. Called by a shard that will use runs. */
    int (*prepare_runs)(sym_backend *b, sym_err *e);
    /* Optional (NULL: malloc): the host memory export_slot and import_slot
     * copy fastest from and to. */
    const sym_host_mem *host_mem;
    /* Optional, both or neither (NULL: export_slot): an export that holds
     * the caller only while the state is set aside (for a device backend,
     * a copy of the slot on the device), not while it crosses to the host.
     * export_begin takes the slot's state as it is now into dst (slot_bytes
     * on the host, untouched by the caller until the export ends); steps,
     * imports and resets after it do not change what lands. export_end
     * then says whether it has landed: 1 yes, 0 not yet (only when block
     * is 0), -1 failed (e). One export at a time: export_begin while one
     * is under way first waits for it to land. */
    int (*export_begin)(sym_backend *b, int32_t slot, void *dst, sym_err *e);
    int (*export_end)(sym_backend *b, int block, sym_err *e);
} sym_backend_ops;

struct sym_backend {
    const sym_backend_ops *ops;
    sym_model_config cfg;
    sym_state_layout layout;
    int n_slots;
    int max_batch;          /* largest B step() accepts */
    int max_run;            /* most rows of one slot in a step_runs() call (0, 1: no step_runs) */
    size_t state_elem_size; /* 4 or 8 */
    size_t slot_bytes;      /* layout.numel * state_elem_size */
};

static inline int sym_backend_step(sym_backend *b, int B, const int32_t *slots, const float *features, double *out,
                                   sym_err *e) {
    return b->ops->step(b, B, slots, features, out, e);
}
static inline void sym_backend_destroy(sym_backend *b) {
    if (b) b->ops->destroy(b);
}

/* Moves a slot's state between backends (same or different objects), by the
 * direct copy when both share one ops table that has copy_slot, else through
 * a host buffer. Fails if the state formats differ. */
int sym_backend_copy_slot(sym_backend *src, int32_t src_slot, sym_backend *dst, int32_t dst_slot, sym_err *e);

/* Restricts b to the towers in mask (1..15), through its set_towers op. */
int sym_backend_set_towers(sym_backend *b, int mask, sym_err *e);

/* Checks a batch's arguments against the backend: 0 < B <= max_batch, every
 * slot in range and distinct. Shared by all backends. */
int sym_backend_check_batch(const sym_backend *b, int B, const int32_t *slots, sym_err *e);

/* Steps a batch in which a slot may appear more than once (several waiting
 * requests of one symbol): a slot's rows apply in row order, each advancing
 * it one step, with the outputs of separate calls in that order. Distinct
 * slots go to step() as they are. Otherwise the batch runs as passes: where
 * the backend has step_runs, each pass holds up to max_run rows of a slot,
 * adjacent, through it; else passes of distinct slots through step(), pass
 * p taking every slot's p-th row. One call answers all the rows. ok (B
 * bytes; NULL: not wanted) says which rows were stepped: every row on
 * success; on failure the rows of the passes before the one that failed,
 * whose outputs are in out. Bad arguments (B outside 1..max_batch, a slot
 * out of range) are found before any pass: then no row is stepped (and ok
 * is not written when B itself is out of range). */
int sym_backend_step_runs(sym_backend *b, int B, const int32_t *slots, const float *features, double *out,
                          unsigned char *ok, sym_err *e);

/* The CPU reference. precision: SYM_PREC_FP64 or SYM_PREC_FP32 arithmetic;
 * the weights are used as given (round them with sym_weights_round_bf16 for a
 * bf16-storage reference). w must outlive the backend. */
struct sym_weights;
sym_backend *sym_cpu_backend_create(const struct sym_weights *w, sym_precision precision, int n_slots, sym_err *e);
/* Its worker threads: 1..SYM_TOWERS, or 0 for one per tower up to the cores
 * online (what it is created with); config key cpu.threads. Call it on the
 * thread that created the backend, before its first step. The outputs do
 * not depend on it. -1 with e when b is not a CPU backend, threads is out
 * of range, or threads cannot start (b then steps on one thread). */
int sym_cpu_backend_set_threads(sym_backend *b, int threads, sym_err *e);

#endif
