/* The router actor: one thread. It takes requests from the producers'
 * mailbox, places each symbol on a shard (sharding/shard_map), sends each
 * request to its shard as long as the shard has credit (at most
 * queue_capacity requests in flight per shard; the rest wait here in order),
 * gathers finished predictions from every shard and hands them to poll().
 *
 * Credits are what make the message graph deadlock-free: a shard's outbox
 * is larger than its credit, so a shard never blocks on the router, and the
 * router never blocks on a shard; only the producers are pushed back (the
 * router stops reading their mailbox while its own pool is full).
 *
 * Migration of symbol s from shard A to B, one at a time, by messages: the
 * router asks, each shard touches only its own backend, on its own thread,
 * and the state travels in a host buffer of the slot pool.
 *  1. s's new requests are held here (hold queue), in order;
 *  2. once none of s's requests wait here for A's credit, EXPORT(s, after
 *     its queued requests) goes to A: mailboxes are FIFO, so A has every
 *     request of s already sent; it steps them (and its other symbols as
 *     usual), then copies s's slot into the buffer and answers EXPORTED;
 *  3. IMPORT(s) goes to B, which gives s a slot holding those bytes and
 *     answers IMPORTED;
 *  4. RELEASE(s) goes to A (A frees the slot), s moves to B, and the held
 *     requests go to B in order.
 * Nothing is lost (every request is in exactly one queue), duplicated or
 * reordered (A stepped all of s's requests before B got any). Neither shard
 * stops stepping its other symbols. On a failure (export or import error,
 * no free slot on B) s stays on A, whose slot was never touched, and its
 * held requests go back to A.
 *
 * Rebalance to N shards: every known symbol whose placement under N differs
 * from where it lives is migrated as above; shards beyond N are stopped once
 * the last migration is done. When a migration failed, no shard is stopped
 * (its symbol may live on one) and the count stays the larger one.
 *
 * The engine's export_symbol and import_symbol are jobs too, in the same
 * queue (so never during a move of their symbol): an export asks the
 * symbol's shard for its state as it is between two steps; an import holds
 * the symbol's new requests like a move, waits for its requests here to
 * reach the shard, and sends IMPORT (after the symbol's queued requests),
 * placing a symbol it has not seen by its name. Both use the caller's pool
 * buffer.
 *
 * A shard in another process that is lost (LOST from its link) took the
 * state of every symbol placed on it: those are refused here, or, once
 * HOLD_LOST came, held and restored; never sent to a shard that would
 * step them from a fresh state (router_lost.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/router_internal.h"
#include "common/clock.h"
#include "common/log.h"

/* Takes the mailboxes of shards 0..n-1 that it does not have yet. */
static void link_shards(sym_router *r, int n) {
    for (int i = 0; i < n; i++) {
        if (r->to_shard[i]) continue;
        r->to_shard[i] = sym_shard_inbox(r->l.shards[i]);
        r->from_shard[i] = sym_shard_outbox(r->l.shards[i]);
    }
}

sym_router *sym_router_create(const sym_router_links *l, sym_err *e) {
    sym_router *r = calloc(1, sizeof *r);
    if (!r) {
        sym_fail(e, "out of memory for the router");
        return NULL;
    }
    r->l = *l;
    r->n_ids = l->cfg->max_symbols;
    r->cap = l->cfg->queue_capacity;
    r->n_shards = r->n_live = l->cfg->shard_count;
    r->jobs_cap = r->n_ids + 4; /* a rebalance's moves, and one control call */
    if (sym_shard_map_init(&r->map, r->n_ids, r->n_shards, l->cfg->hash_seed, e)) {
        free(r);
        return NULL;
    }
    r->loc = malloc((size_t)r->n_ids * sizeof(int));
    r->moving = calloc((size_t)r->n_ids, sizeof(int));
    r->lost = calloc((size_t)r->n_ids, 1);
    r->waiting = calloc((size_t)r->n_ids, sizeof(int));
    r->h_head = calloc((size_t)r->n_ids, sizeof(int));
    r->h_tail = calloc((size_t)r->n_ids, sizeof(int));
    r->pool = malloc((size_t)r->cap * sizeof *r->pool);
    r->pool_sym = malloc((size_t)r->cap * sizeof(int));
    r->pool_next = malloc((size_t)r->cap * sizeof(int));
    r->jobs = malloc((size_t)r->jobs_cap * sizeof *r->jobs);
    if (!r->loc || !r->moving || !r->lost || !r->waiting || !r->h_head || !r->h_tail || !r->pool || !r->pool_sym ||
        !r->pool_next || !r->jobs) {
        sym_router_destroy(r);
        sym_fail(e, "out of memory for the router");
        return NULL;
    }
    for (int i = 0; i < r->n_ids; i++) r->loc[i] = -1, r->h_head[i] = -1;
    for (int i = 0; i < r->cap; i++) r->pool_next[i] = i + 1 < r->cap ? i + 1 : -1;
    for (int i = 0; i < SYM_MAX_SHARDS; i++) r->w_head[i] = -1;
    sym_status_init(&r->status, l->cfg->status_interval_s, sym_now_ns());
    return r;
}

void sym_router_destroy(sym_router *r) {
    if (!r) return;
    sym_shard_map_free(&r->map);
    free(r->loc), free(r->moving), free(r->lost), free(r->waiting), free(r->h_head), free(r->h_tail);
    free(r->pool), free(r->pool_sym), free(r->pool_next), free(r->jobs);
    router_lost_free(r);
    free(r);
}

/* --- request pool and queues --------------------------------------------- */

static int pool_take(sym_router *r, int sym, const sym_request *q) {
    int i = r->pool_free;
    r->pool_free = r->pool_next[i];
    r->pool_used++;
    r->pool[i] = *q;
    r->pool_sym[i] = sym;
    r->pool_next[i] = -1;
    return i;
}

static void pool_give(sym_router *r, int i) {
    r->pool_next[i] = r->pool_free;
    r->pool_free = i;
    r->pool_used--;
}

/* A request of a symbol whose state was lost is answered here: no shard
 * may step it from a state that missed steps. */
static void refuse_lost(sym_router *r, int shard, const sym_request *q) {
    sym_prediction *p = &r->out[r->n_out++];
    *p = (sym_prediction){.uid = q->uid, .status = -1, .t_submit_ns = q->t_submit_ns, .t_done_ns = sym_now_ns()};
    snprintf(p->error, sizeof p->error,
             "the state of %.64s was lost with shard %d (a shard process that stopped answering); not answered", q->symbol,
             shard);
    if (r->n_out == OUT_BATCH) router_flush_out(r);
}

void router_send_to_shard(sym_router *r, int shard, int sym, const sym_request *q) {
    if (r->lost[sym] == LOST_GONE) return refuse_lost(r, shard, q);
    sym_msg m = {.type = SYM_MSG_STEP_REQ, .sym = sym, .shard = shard};
    m.u.req = *q;
    sym_mailbox_push(r->to_shard[shard], &m); /* never blocks: credit */
    r->inflight[shard]++;
}

/* Sends what the shard's credit allows from its waiting queue, in order. */
static void flush_waiting(sym_router *r, int shard) {
    while (r->w_len[shard] && r->inflight[shard] < r->cap) {
        int i = r->w_head[shard];
        r->w_head[shard] = r->pool_next[i];
        r->w_len[shard]--;
        r->waiting[r->pool_sym[i]]--;
        router_send_to_shard(r, shard, r->pool_sym[i], &r->pool[i]);
        pool_give(r, i);
    }
}

/* A request whose symbol has a place and is not moving. */
void router_route(sym_router *r, int sym, const sym_request *q) {
    int shard = r->loc[sym];
    if (!r->w_len[shard] && r->inflight[shard] < r->cap) return router_send_to_shard(r, shard, sym, q);
    int i = pool_take(r, sym, q);
    if (r->w_len[shard]++) r->pool_next[r->w_tail[shard]] = i;
    else r->w_head[shard] = i;
    r->w_tail[shard] = i;
    r->waiting[sym]++;
}

void router_place(sym_router *r, int sym, int shard) {
    r->loc[sym] = shard;
    atomic_store_explicit(&r->l.where[sym], shard, memory_order_relaxed);
}

static void on_request(sym_router *r, int sym, const sym_request *q) {
    if (r->loc[sym] < 0) {
        sym_shard_map_add(&r->map, sym, q->symbol);
        router_place(r, sym, router_live_owner(r, sym));
    }
    if (!r->moving[sym]) return router_route(r, sym, q);
    int i = pool_take(r, sym, q);
    if (r->h_head[sym] >= 0) r->pool_next[r->h_tail[sym]] = i;
    else r->h_head[sym] = i;
    r->h_tail[sym] = i;
}

/* --- jobs: migrations, and a symbol's state out or in ----------------------- */

void router_push_job(sym_router *r, router_job j) { r->jobs[(r->jobs_head + r->jobs_len++) % r->jobs_cap] = j; }

void router_job_finished(sym_router *r, int rc, const char *err) {
    r->active = 0;
    if (!r->job.of_rebalance) {
        sym_control_answer(r->job.of_restore ? r->l.restore_control : r->l.control, r->job.token, rc, err);
        return;
    }
    if (rc && !r->rb_rc) {
        r->rb_rc = rc;
        snprintf(r->rb_err, sizeof r->rb_err, "%s", err);
    }
    r->rb_pending--;
}

void router_send_ctl(sym_router *r, int shard, int type, int sym) {
    sym_msg m = {.type = type, .sym = sym, .shard = shard};
    sym_mailbox_push(r->to_shard[shard], &m); /* control has its own headroom beyond credit */
}

void router_send_slot_msg(sym_router *r, int shard, int type, int after_queued) {
    sym_msg m = {.type = type, .sym = r->job.sym, .shard = shard, .token = ++r->job_serial};
    m.u.io.buf = r->buf;
    m.u.io.after_queued = after_queued;
    sym_mailbox_push(r->to_shard[shard], &m);
}

static void start_job(sym_router *r) {
    r->job = r->jobs[r->jobs_head];
    r->jobs_head = (r->jobs_head + 1) % r->jobs_cap;
    r->jobs_len--;
    r->active = 1;
    int sym = r->job.sym;
    r->from = r->loc[sym];
    r->buf = r->job.kind == JOB_MOVE ? -1 : r->job.buf; /* a move borrows its own when it starts copying */
    r->phase = JOB_WAIT_CREDIT;
    if (r->job.kind == JOB_RESTORE_BEGIN || r->job.kind == JOB_RESTORE_END) return router_restore_start_job(r);
    if (r->lost[sym] >= LOST_HELD) /* its restore puts a state there: nothing else may */
        return router_job_finished(r, -1, "its state was lost with a shard process and is being restored");
    if (r->lost[sym] && r->job.kind != JOB_IMPORT) /* no state to move or copy: never a fresh one in its place */
        return router_job_finished(r, -1, "its state was lost with a shard process");
    switch (r->job.kind) {
    case JOB_MOVE:
        if (r->from < 0) { /* never routed: placement is all there is to change */
            sym_shard_map_set_override(&r->map, sym, r->job.to);
            return router_job_finished(r, 0, "");
        }
        if (r->from == r->job.to) return router_job_finished(r, 0, "");
        r->moving[sym] |= HOLD_JOB;
        r->move_t0 = sym_now_ns();
        return;
    case JOB_EXPORT: /* the state as it is between two steps: no need to wait for anything */
        if (r->from < 0) return router_job_finished(r, 0, "");
        router_send_slot_msg(r, r->from, SYM_MSG_EXPORT, 0);
        r->phase = JOB_EXPORTING;
        return;
    case JOB_IMPORT: r->moving[sym] |= HOLD_JOB; return; /* placed when its message came */
    }
}

/* held requests go where the symbol lives, once nothing holds them */
void router_release_held(sym_router *r, int sym, int bit) {
    r->moving[sym] &= ~bit;
    if (r->moving[sym]) return;
    for (int i = r->h_head[sym]; i >= 0;) {
        int next = r->pool_next[i];
        sym_request q = r->pool[i];
        pool_give(r, i);
        router_route(r, sym, &q);
        i = next;
    }
    r->h_head[sym] = -1;
}

/* The running move ends: on success s now lives on the target. */
static void end_move(sym_router *r, int rc, const char *why) {
    int sym = r->job.sym;
    char err[512] = "";
    sym_slot_pool_release(r->l.slots, r->buf);
    if (!rc) {
        router_place(r, sym, r->job.to);
        sym_shard_map_set_override(&r->map, sym, r->job.to);
    } else {
        snprintf(err, sizeof err, "migrating symbol to shard %d: %s", r->job.to, why);
    }
    sym_pub_move(&r->pub, !rc, sym_now_ns() - r->move_t0); /* before the answer: a caller sees it counted */
    router_release_held(r, sym, HOLD_JOB);
    router_job_finished(r, rc, err);
}

static void advance_job(sym_router *r) {
    if (!r->active) {
        if (!r->jobs_len) return;
        start_job(r);
        if (!r->active) return;
    }
    if (r->job.kind == JOB_RESTORE_BEGIN || r->job.kind == JOB_RESTORE_END) return router_restore_advance(r);
    /* a move or an import waits until none of the symbol's requests wait
     * here for credit: every request sent before it is then in the shard's
     * mailbox ahead of the slot message */
    if (r->phase != JOB_WAIT_CREDIT || r->waiting[r->job.sym]) return;
    if (r->job.kind == JOB_IMPORT) {
        router_send_slot_msg(r, r->from, SYM_MSG_IMPORT, 1);
        r->phase = JOB_IMPORTING;
        return;
    }
    if ((r->buf = sym_slot_pool_acquire(r->l.slots)) < 0) return end_move(r, -1, "every slot buffer is lent");
    router_send_slot_msg(r, r->from, SYM_MSG_EXPORT, 1);
    r->phase = JOB_EXPORTING;
}

/* EXPORTED or IMPORTED from a shard, for the running job. */
static void on_slot_answer(sym_router *r, const sym_msg *m) {
    int want = r->phase == JOB_EXPORTING ? SYM_MSG_EXPORTED : SYM_MSG_IMPORTED;
    if (!r->active || r->phase == JOB_WAIT_CREDIT || m->type != want || m->token != r->job_serial) {
        sym_warn("router: an answer from shard %d to no job of its (type %d)", m->shard, m->type);
        return;
    }
    int st = m->u.io.status;
    switch (r->job.kind) {
    case JOB_EXPORT: return router_job_finished(r, st == 0 ? 1 : st == 1 ? 0 : -1, m->u.io.error);
    case JOB_IMPORT:
        if (!st) r->lost[r->job.sym] = SYM_LIVE; /* it has a state again */
        router_release_held(r, r->job.sym, HOLD_JOB);
        return router_job_finished(r, st ? -1 : 0, m->u.io.error);
    case JOB_RESTORE_BEGIN: return router_restore_imported(r, m);
    }
    if (st < 0) return end_move(r, -1, m->u.io.error);
    if (m->type == SYM_MSG_EXPORTED) {
        if (st == 1) return end_move(r, 0, ""); /* no state on A: placement is all there is to change */
        router_send_slot_msg(r, r->job.to, SYM_MSG_IMPORT, 0);
        r->phase = JOB_IMPORTING;
        return;
    }
    router_send_ctl(r, r->from, SYM_MSG_RELEASE, r->job.sym);
    end_move(r, 0, "");
}

/* --- rebalance ------------------------------------------------------------ */

static void on_rebalance(sym_router *r, int n, uint64_t token) {
    int old = r->n_shards;
    r->n_shards = n;
    if (n > r->n_live) r->n_live = n;
    link_shards(r, n);
    sym_shard_map_set_count(&r->map, n);
    sym_shard_map_clear_overrides(&r->map);
    r->rb_token = token;
    r->rb_active = 1;
    r->rb_rc = 0;
    r->rb_pending = 0;
    int moved = 0;
    for (int s = 0; s < r->n_ids; s++) {
        if (r->loc[s] < 0) continue;
        int to = sym_shard_map_hash_owner(&r->map, s, n);
        if (to == r->loc[s]) continue;
        router_push_job(r, (router_job){.kind = JOB_MOVE, .sym = s, .to = to, .token = token, .of_rebalance = 1});
        r->rb_pending++, moved++;
    }
    sym_info("rebalance %d -> %d shards: moving %d symbols", old, n, moved);
}

static void finish_rebalance(sym_router *r) {
    if (!r->rb_active || r->rb_pending) return;
    if (r->rb_rc) { /* a symbol may still live on a shard meant to go: keep them all (placement too) */
        r->n_shards = r->n_live;
        sym_shard_map_set_count(&r->map, r->n_shards);
    }
    for (int s = r->n_shards; s < r->n_live; s++) {
        router_send_ctl(r, s, SYM_MSG_STOP, -1);
        r->to_shard[s] = r->from_shard[s] = NULL; /* the caller destroys it once answered */
        sym_pub_depth(&r->pub, s, r->pub_depth[s] = 0);
    }
    r->n_live = r->n_shards;
    r->rb_active = 0;
    sym_pub_rebalance(&r->pub);
    sym_control_answer(r->l.control, r->rb_token, r->rb_rc, r->rb_err);
}

/* --- the loop ------------------------------------------------------------- */

/* Once per turn, the depth of each shard where it changed: a request costs
 * nothing here, and a reader lags by at most one turn. */
static void publish_depths(sym_router *r) {
    for (int s = 0; s < r->n_live; s++) {
        int d = r->inflight[s] + r->w_len[s];
        if (d != r->pub_depth[s]) sym_pub_depth(&r->pub, s, r->pub_depth[s] = d);
    }
}

void router_flush_out(sym_router *r) {
    if (r->n_out) sym_output_queue_push(r->l.out, r->out, r->n_out);
    r->n_out = 0;
}

void router_publish_done(sym_router *r, int s, const sym_msg *m) {
    /* a step's first row carries its batch size; a row the shard refused
     * without a step (a full pool and tiers) comes with batch 1 and
     * step_ns 0 */
    int stepped = m->batch > 0 && m->step_ns > 0;
    sym_status_record(&r->status, s, m->t_step_ns - m->u.pred.t_submit_ns, m->step_ns, m->batch, stepped);
    if (stepped) sym_pub_step(&r->pub, s, m->step_ns, m->batch);
    r->out[r->n_out++] = m->u.pred;
    if (r->n_out == OUT_BATCH) router_flush_out(r);
}

/* What a shard's link says of a lost shard process (router_lost.c). */
static void on_link_msg(sym_router *r, int s, const sym_msg *m) {
    switch (m->type) {
    case SYM_MSG_LOST: router_on_lost(r, s); break;
    case SYM_MSG_LOST_SETTLED: router_on_settled(r, s); break;
    case SYM_MSG_JOINED: router_on_joined(r, s); break;
    default: on_slot_answer(r, m); break;
    }
}

/* Every shard's answers, then (with a restore under way) the replayed
 * steps the freed credit allows, ahead of the requests waiting here for
 * it, then those. */
static int drain_shards(sym_router *r) {
    int got = 0;
    sym_msg m;
    for (int s = 0; s < r->n_live; s++) {
        while (sym_mailbox_pop(r->from_shard[s], &m)) {
            got = 1;
            if (m.type != SYM_MSG_DONE) {
                on_link_msg(r, s, &m);
                continue;
            }
            r->inflight[s]--;
            if (r->n_held && r->lost[m.sym] >= LOST_HELD) router_held_done(r, s, &m);
            else router_publish_done(r, s, &m);
        }
    }
    if (r->l.restore_inbox) router_restore_drain(r);
    for (int s = 0; s < r->n_live; s++) flush_waiting(r, s);
    router_flush_out(r);
    return got;
}

static int drain_inbox(sym_router *r) {
    int got = 0;
    sym_msg m;
    /* only while the pool can hold a request: this is the push-back */
    while (r->pool_used < r->cap && sym_mailbox_pop(r->l.inbox, &m)) {
        got = 1;
        switch (m.type) {
        case SYM_MSG_REQUEST: on_request(r, m.sym, &m.u.req); break;
        case SYM_MSG_MIGRATE:
            if (m.shard < 0 || m.shard >= r->n_shards) {
                sym_control_answer(r->l.control, m.token, -1, "target shard out of range");
                break;
            }
            router_push_job(r, (router_job){.kind = JOB_MOVE, .sym = m.sym, .to = m.shard, .token = m.token});
            break;
        case SYM_MSG_EXPORT_SYMBOL:
            router_push_job(r, (router_job){.kind = JOB_EXPORT, .sym = m.sym, .buf = m.u.io.buf, .token = m.token});
            break;
        case SYM_MSG_IMPORT_SYMBOL:
            if (r->loc[m.sym] < 0) {
                sym_shard_map_add(&r->map, m.sym, m.u.io.symbol);
                router_place(r, m.sym, router_live_owner(r, m.sym));
            }
            router_push_job(r, (router_job){.kind = JOB_IMPORT, .sym = m.sym, .buf = m.u.io.buf, .token = m.token});
            break;
        case SYM_MSG_REBALANCE: on_rebalance(r, m.shard, m.token); break;
        case SYM_MSG_SHUTDOWN: r->quit = 1; return got;
        default: break;
        }
    }
    return got;
}

static void *router_main(void *arg) {
    sym_router *r = arg;
    const sym_config *cfg = r->l.cfg;
    uint64_t idle_since = 0;
    int depth[SYM_MAX_SHARDS];
    while (!r->quit) {
        unsigned seen = sym_doorbell_seq(r->l.bell);
        int got = drain_shards(r);
        got |= drain_inbox(r);
        for (int k = 0; k < 4; k++) { /* a few jobs per turn: trivial ones finish at once */
            int was = r->active, left = r->jobs_len;
            advance_job(r);
            if (r->active == was && r->jobs_len == left) break;
        }
        finish_rebalance(r);
        publish_depths(r);
        uint64_t now = sym_now_ns();
        if (!sym_status_due_in(&r->status, now)) {
            for (int s = 0; s < r->n_live; s++) {
                depth[s] = r->inflight[s] + r->w_len[s];
                sym_shard_paging(r->l.shards[s], &r->paging[s]);
            }
            sym_status_tick(&r->status, now, r->n_live, depth, r->paging);
        }
        if (got) {
            idle_since = 0;
            continue;
        }
        if (!idle_since) idle_since = now;
        if (now - idle_since < (uint64_t)(cfg->idle_spin_us * 1e3)) continue;
        uint64_t due = sym_status_due_in(&r->status, now);
        sym_doorbell_wait(r->l.bell, seen, due < 100000000ull ? (due ? due : 1) : 100000000ull);
        idle_since = 0;
    }
    for (int s = 0; s < r->n_live; s++) router_send_ctl(r, s, SYM_MSG_STOP, -1);
    return NULL;
}

int sym_router_start(sym_router *r, sym_err *e) {
    link_shards(r, r->n_shards);
    if (pthread_create(&r->thread, NULL, router_main, r)) return sym_fail(e, "cannot start the router thread");
    r->started = 1;
    return 0;
}

int sym_router_stop(sym_router *r) {
    if (!r || !r->started) return 0;
    sym_msg m = {.type = SYM_MSG_SHUTDOWN};
    sym_mailbox_push(r->l.inbox, &m);
    pthread_join(r->thread, NULL);
    r->started = 0;
    return 1;
}

void sym_router_shard_stats(sym_router *r, int shard, sym_shard_stats *out) { sym_pub_read_shard(&r->pub, shard, out); }

void sym_router_migration_stats(sym_router *r, sym_migration_stats *out) { sym_pub_read_migrations(&r->pub, out); }

int sym_router_shards_lost(sym_router *r) { return sym_pub_read_lost(&r->pub); }

void sym_router_held_stats(sym_router *r, sym_held_stats *out) { sym_pub_read_held(&r->pub, out); }
