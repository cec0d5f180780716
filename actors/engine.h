/* The serving engine: one router actor and N shard actors (threads), talking
 * over bounded concurrencykit rings. The router owns the symbol -> shard map
 * and each symbol's queue of held requests; a shard owns a backend (a CUDA
 * stream on its GPU, or the CPU reference) and the state slots of the
 * symbols mapped to it. Messages are plain data: no pointer crosses actors.
 *
 * Ordering: requests of one symbol are stepped in submission order, one step
 * per request; each step of a shard takes at most one request per symbol.
 * Nothing is dropped: a full mailbox blocks the producer (push-back).
 *
 * Threading: submit() may be called from several producer threads; poll()
 * from one consumer thread at a time. */
#ifndef SYM_ENGINE_H
#define SYM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "actors/paging.h"
#include "actors/shard_connector.h"
#include "actors/shard_stats.h"
#include "common/err.h"
#include "common/request.h" /* sym_request, sym_prediction */
#include "config/config.h"
#include "kernels/model_config.h"

typedef struct sym_engine sym_engine;

/* Builds weights (from cfg's model source), backends and threads. */
sym_engine *sym_engine_create(const sym_config *cfg, sym_err *e);

/* sym_engine_create, where shards with an endpoint are reached through
 * connect (NULL: such a config is refused); the engine takes connect's
 * ctx (freed with it, or at once on failure). */
sym_engine *sym_engine_create_connected(const sym_config *cfg, const sym_shard_connector *connect, sym_err *e);

/* Validates the request (symbol syntax, feature count, finite features,
 * the max_symbols capacity): a bad one returns -1 with the reason in e and
 * advances no state. Blocks while the router's mailbox is full.
 * A shard refuses a new symbol's request when its slot pool, its host tier
 * and (with state.dir) its disk tier are all full: the prediction comes
 * back with status -1 and an error naming each limit. */
int sym_engine_submit(sym_engine *g, const sym_request *r, sym_err *e);

/* Up to max finished predictions, waiting up to timeout_ms (0: don't wait,
 * <0: forever) for the first one. Returns how many were written. */
int sym_engine_poll(sym_engine *g, sym_prediction *out, int max, int timeout_ms);

/* A file descriptor that becomes readable when predictions are waiting
 * (for an event loop); read() it to clear. */
int sym_engine_ready_fd(const sym_engine *g);

/* Moves one symbol's state to another shard while the stream runs. */
int sym_engine_migrate(sym_engine *g, const char *symbol, int to_shard, sym_err *e);

/* Changes the shard count; migrates exactly the symbols whose hash moved.
 * When a migration fails (-1, the first failure in e), the other symbols
 * still move, and a smaller count does not take effect: no shard is
 * removed. */
int sym_engine_rebalance(sym_engine *g, int n_shards, sym_err *e);

/* Waits until every submitted request has its prediction queued. */
void sym_engine_drain(sym_engine *g);

/* Bytes of one symbol's state: the slot format of every shard's backend
 * (kernels/backend.h; the header of kernels/state_layout.h, where the
 * backend follows it, starts with the symbol's step count). */
size_t sym_engine_slot_bytes(const sym_engine *g);

/* Copies a symbol's state into buf (sym_engine_slot_bytes bytes) as it is
 * between two steps of the shard that owns it, which copies it on its own
 * thread and goes on serving. Returns 1 when copied, 0 when the engine
 * holds no state for the symbol (never submitted, or every request of it
 * refused), -1 with the reason in e. Waits for a migration or rebalance in
 * progress (one control call at a time). */
int sym_engine_export_symbol(sym_engine *g, const char *symbol, void *buf, sym_err *e);

/* Sets a symbol's state to state (sym_engine_slot_bytes bytes, as
 * exported), adding the symbol like a submit does (its syntax and the
 * max_symbols capacity are checked; a shard whose slot pool is full keeps
 * it in its host or disk tier until it steps). Requests of the symbol submitted
 * before the call step on the state they found, those after it on this one.
 * Returns 0, or -1 with the reason in e (a refused state, a full
 * max_symbols, a shard's full pool and tiers, or the backend's own
 * import error). */
int sym_engine_import_symbol(sym_engine *g, const char *symbol, const void *state, sym_err *e);

const sym_model_config *sym_engine_model(const sym_engine *g);
void sym_engine_destroy(sym_engine *g);

/* The shard a symbol lives on now (as the router last published it), or -1
 * when the engine has not routed it yet. */
int sym_engine_symbol_shard(sym_engine *g, const char *symbol);
int sym_engine_shard_count(sym_engine *g);

/* Shard's paging so far (page-outs and page-ins between its slot pool and
 * its host tier, their time, the steps that paged): 0, or -1 when there is
 * no such shard. */
int sym_engine_paging(sym_engine *g, int shard, sym_paging_stats *out, sym_err *e);

/* For tests and benchmarks: the engine over backends made by a factory
 * (called once per shard, also when a rebalance adds shards; n_slots is
 * sym_config_slots_per_shard(cfg): the shard's slot pool) instead of the
 * ones cfg's model section describes. */
struct sym_backend;
typedef struct sym_backend *(*sym_backend_factory)(void *ctx, int shard, sym_err *e);
sym_engine *sym_engine_create_with(const sym_config *cfg, const sym_model_config *model, sym_backend_factory make,
                                   void *ctx, sym_err *e);

/* --- the router's numbers ---------------------------------------------------- */

/* Shard's steps (their time, their rows) and queue depth, as the router
 * publishes them: a step when its answers come back, the depth once per
 * turn of the router's loop. 0, or -1 when there is no such shard. Any
 * thread; like sym_engine_paging it waits while a control call (migrate,
 * rebalance, export or import of a symbol) holds the engine's control lock. */
int sym_engine_shard_stats(sym_engine *g, int shard, sym_shard_stats *out, sym_err *e);

/* The migrations and rebalances so far; any thread, never waits. Those of
 * a migrate or rebalance call are counted when the call returns. */
void sym_engine_migration_stats(sym_engine *g, sym_migration_stats *out);

/* Shards in other processes lost so far (net/shard_link.h): the state of
 * their symbols is gone, and their requests are refused. Any thread,
 * never waits. A poll() that returns a failed answer of a lost shard's
 * request is followed by a call that sees the loss counted, so a caller
 * that checks after each poll sees the loss before it acts on any of
 * those answers. */
int sym_engine_shards_lost(sym_engine *g);

/* --- the symbols of a lost shard process, restored (state/store.h) ------------ */

/* From this call on, the symbols of a shard process that is lost are held
 * instead of refused: their requests (those in flight to it included) wait
 * in the router, in order, none answered, until their restore ends below.
 * The loss is then counted in sym_engine_shards_lost only once every
 * request sent to that shard is accounted for, and after every answer that
 * came before the loss is in poll()'s queue: a caller that sees the count
 * move and polls until the queue is empty has every answer of the lost
 * symbols that will ever come from before their restore. 0, or -1 (out of
 * memory: nothing changes). */
int sym_engine_hold_lost(sym_engine *g, sym_err *e);

/* Names of up to max held symbols whose loss was counted as one of the
 * first upto losses (a caller that has handled the answers before a count
 * of sym_engine_shards_lost passes it: a loss counted after may still
 * have answers on their way); returns how many, or -1. */
int sym_engine_held_symbols(sym_engine *g, int upto, char (*names)[SYM_SYMBOL_MAX + 1], int max, sym_err *e);

/* The restore of a held symbol, from one thread (these calls are
 * serialised among themselves, apart from the other control calls, which
 * may wait on a full router; a restore is what empties it):
 *  - begin: the symbol placed on a live shard (the rendezvous winner among
 *    the shards not lost) with state (sym_engine_slot_bytes bytes, as
 *    exported), or with the initial state (NULL); returns that shard, or -1;
 *  - step: each of its answered steps after that state, in order: stepped
 *    there again; the answer is not published (it was given once);
 *  - reissue: each of its accepted requests not answered, in order: those
 *    the lost shard took with it must come first, in their order (their
 *    unique_ids say which); the others are held already and are ignored;
 *  - end: once every step is answered, sends the taken requests again, then
 *    the held ones, in order, and serves the symbol again; returns how many
 *    were taken and sent again; -1 when a step failed or a taken request was
 *    not named by reissue: the symbol stays held, as nothing may step on a
 *    state that might have missed a step.
 * step and reissue (-1 only for an unknown symbol or a wrong feature count)
 * wait while the restore's mailbox is full. */
int sym_engine_restore_begin(sym_engine *g, const char *symbol, const void *state, sym_err *e);
int sym_engine_restore_step(sym_engine *g, const sym_request *q, sym_err *e);
int sym_engine_restore_reissue(sym_engine *g, const sym_request *q, sym_err *e);
int sym_engine_restore_end(sym_engine *g, const char *symbol, sym_err *e);

/* The held symbols now, and their restores so far (actors/shard_stats.h):
 * a restore is counted before its end, or its begin or end that failed,
 * returns; its replayed steps as their answers come back. Any thread,
 * never waits. */
void sym_engine_held_stats(sym_engine *g, sym_held_stats *out);

#endif
