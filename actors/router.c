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
 * Migration of symbol s from shard A to B, one at a time:
 *  1. s's new requests are held here (hold queue), in order;
 *  2. once none of s's requests wait here for credit, DRAIN_PARK(s) goes to A
 *     (after every request of s already sent: mailboxes are FIFO) and
 *     ALLOC_PARK(s) to B;
 *  3. both answer PARKED with their slot and stop touching their backend;
 *  4. the router copies the slot (sym_backend_copy_slot), RESUMEs both (A
 *     frees its slot), moves s to B, and sends the held requests to B in order.
 * Nothing is lost (every request is in exactly one queue), duplicated or
 * reordered (A finished all of s's requests before B got any).
 *
 * Rebalance to N shards: every known symbol whose placement under N differs
 * from where it lives is migrated as above; shards beyond N are stopped once
 * the last migration is done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/engine_internal.h"
#include "actors/status.h"
#include "common/clock.h"
#include "common/log.h"
#include "sharding/shard_map.h"

#define OUT_BATCH 256

typedef struct {
    int sym, to;
    uint64_t token;
    int of_rebalance;
} migration_job;

typedef struct router_state {
    sym_shard_map map;
    int n_ids, cap;
    int n_shards, n_live; /* placement count; shards still polled (>= n_shards while shrinking) */
    /* per symbol */
    int *loc, *moving, *waiting; /* waiting: requests parked in a shard's credit queue here */
    int *h_head, *h_tail;       /* hold queue while moving */
    /* pool of requests waiting here */
    sym_request *pool;
    int *pool_sym, *pool_next, pool_free, pool_used;
    /* per shard */
    int inflight[SYM_MAX_SHARDS];
    int w_head[SYM_MAX_SHARDS], w_tail[SYM_MAX_SHARDS], w_len[SYM_MAX_SHARDS];
    /* migrations */
    migration_job *jobs;
    int jobs_head, jobs_len, jobs_cap;
    int active;            /* a job is running */
    migration_job job;
    int phase;             /* 0 waiting for credit queue, 1 waiting for PARKED */
    int parked_a, parked_b;
    int32_t slot_a, slot_b;
    char park_err[160];
    int job_rc;
    char job_err[512];
    /* rebalance */
    uint64_t rb_token;
    int rb_pending, rb_active, rb_rc;
    char rb_err[512];
    /* output */
    sym_prediction out[OUT_BATCH];
    int n_out;
    sym_status status;
    int quit;
} router_state;

int sym_router_create(struct sym_engine *g, sym_err *e) {
    router_state *r = calloc(1, sizeof *r);
    if (!r) return sym_fail(e, "out of memory for the router");
    g->router = r;
    r->n_ids = g->cfg.max_symbols;
    r->cap = g->cfg.queue_capacity;
    r->n_shards = r->n_live = g->cfg.shard_count;
    r->jobs_cap = r->n_ids + 4;
    if (sym_shard_map_init(&r->map, r->n_ids, r->n_shards, g->cfg.hash_seed, e)) return -1;
    r->loc = malloc((size_t)r->n_ids * sizeof(int));
    r->moving = calloc((size_t)r->n_ids, sizeof(int));
    r->waiting = calloc((size_t)r->n_ids, sizeof(int));
    r->h_head = calloc((size_t)r->n_ids, sizeof(int));
    r->h_tail = calloc((size_t)r->n_ids, sizeof(int));
    r->pool = malloc((size_t)r->cap * sizeof *r->pool);
    r->pool_sym = malloc((size_t)r->cap * sizeof(int));
    r->pool_next = malloc((size_t)r->cap * sizeof(int));
    r->jobs = malloc((size_t)r->jobs_cap * sizeof *r->jobs);
    if (!r->loc || !r->moving || !r->waiting || !r->h_head || !r->h_tail || !r->pool || !r->pool_sym ||
        !r->pool_next || !r->jobs)
        return sym_fail(e, "out of memory for the router");
    for (int i = 0; i < r->n_ids; i++) r->loc[i] = -1, r->h_head[i] = -1;
    for (int i = 0; i < r->cap; i++) r->pool_next[i] = i + 1 < r->cap ? i + 1 : -1;
    for (int i = 0; i < SYM_MAX_SHARDS; i++) r->w_head[i] = -1;
    sym_status_init(&r->status, g->cfg.status_interval_s, sym_now_ns());
    return 0;
}

void sym_router_destroy(struct sym_engine *g) {
    router_state *r = g->router;
    if (!r) return;
    sym_shard_map_free(&r->map);
    free(r->loc), free(r->moving), free(r->waiting), free(r->h_head), free(r->h_tail);
    free(r->pool), free(r->pool_sym), free(r->pool_next), free(r->jobs);
    free(r);
    g->router = NULL;
}

/* --- request pool and queues --------------------------------------------- */

static int pool_take(router_state *r, int sym, const sym_request *q) {
    int i = r->pool_free;
    r->pool_free = r->pool_next[i];
    r->pool_used++;
    r->pool[i] = *q;
    r->pool_sym[i] = sym;
    r->pool_next[i] = -1;
    return i;
}

static void pool_give(router_state *r, int i) {
    r->pool_next[i] = r->pool_free;
    r->pool_free = i;
    r->pool_used--;
}

static void send_to_shard(struct sym_engine *g, router_state *r, int shard, int sym, const sym_request *q) {
    sym_msg m = {.type = SYM_MSG_STEP_REQ, .sym = sym, .shard = shard};
    m.u.req = *q;
    sym_mailbox_push(&g->shards[shard]->inbox, &m); /* never blocks: credit */
    r->inflight[shard]++;
}

/* Sends what the shard's credit allows from its waiting queue, in order. */
static void flush_waiting(struct sym_engine *g, router_state *r, int shard) {
    while (r->w_len[shard] && r->inflight[shard] < r->cap) {
        int i = r->w_head[shard];
        r->w_head[shard] = r->pool_next[i];
        r->w_len[shard]--;
        r->waiting[r->pool_sym[i]]--;
        send_to_shard(g, r, shard, r->pool_sym[i], &r->pool[i]);
        pool_give(r, i);
    }
}

/* A request whose symbol has a place and is not moving. */
static void route(struct sym_engine *g, router_state *r, int sym, const sym_request *q) {
    int shard = r->loc[sym];
    if (!r->w_len[shard] && r->inflight[shard] < r->cap) return send_to_shard(g, r, shard, sym, q);
    int i = pool_take(r, sym, q);
    if (r->w_len[shard]++) r->pool_next[r->w_tail[shard]] = i;
    else r->w_head[shard] = i;
    r->w_tail[shard] = i;
    r->waiting[sym]++;
}

static void on_request(struct sym_engine *g, router_state *r, int sym, const sym_request *q) {
    if (r->loc[sym] < 0) {
        sym_shard_map_add(&r->map, sym, q->symbol);
        r->loc[sym] = sym_shard_map_owner(&r->map, sym);
        atomic_store_explicit(&g->where[sym], r->loc[sym], memory_order_relaxed);
    }
    if (!r->moving[sym]) return route(g, r, sym, q);
    int i = pool_take(r, sym, q);
    if (r->h_head[sym] >= 0) r->pool_next[r->h_tail[sym]] = i;
    else r->h_head[sym] = i;
    r->h_tail[sym] = i;
}

/* --- migration ------------------------------------------------------------ */

static void push_job(router_state *r, int sym, int to, uint64_t token, int of_rebalance) {
    r->jobs[(r->jobs_head + r->jobs_len++) % r->jobs_cap] = (migration_job){sym, to, token, of_rebalance};
}

static void job_finished(struct sym_engine *g, router_state *r, int rc, const char *err) {
    r->active = 0;
    if (!r->job.of_rebalance) {
        sym_engine_control_done(g, r->job.token, rc, err);
        return;
    }
    if (rc && !r->rb_rc) {
        r->rb_rc = rc;
        snprintf(r->rb_err, sizeof r->rb_err, "%s", err);
    }
    r->rb_pending--;
}

static void start_job(struct sym_engine *g, router_state *r) {
    r->job = r->jobs[r->jobs_head];
    r->jobs_head = (r->jobs_head + 1) % r->jobs_cap;
    r->jobs_len--;
    r->active = 1;
    int sym = r->job.sym;
    if (r->loc[sym] < 0) { /* never routed: placement is all there is to change */
        sym_shard_map_set_override(&r->map, sym, r->job.to);
        return job_finished(g, r, 0, "");
    }
    if (r->loc[sym] == r->job.to) return job_finished(g, r, 0, "");
    r->moving[sym] = 1;
    r->phase = 0;
}

static void send_ctl(struct sym_engine *g, int shard, int type, int sym) {
    sym_msg m = {.type = type, .sym = sym, .shard = shard};
    sym_mailbox_push(&g->shards[shard]->inbox, &m); /* control has its own headroom beyond credit */
}

static void release_held(struct sym_engine *g, router_state *r, int sym) {
    r->moving[sym] = 0;
    for (int i = r->h_head[sym]; i >= 0;) {
        int next = r->pool_next[i];
        sym_request q = r->pool[i];
        pool_give(r, i);
        route(g, r, sym, &q);
        i = next;
    }
    r->h_head[sym] = -1;
}

static void advance_job(struct sym_engine *g, router_state *r) {
    if (!r->active) {
        if (!r->jobs_len) return;
        start_job(g, r);
        if (!r->active) return;
    }
    int sym = r->job.sym, a = r->loc[sym], b = r->job.to;
    if (r->phase == 0) {
        if (r->waiting[sym]) return; /* some of its requests still wait here for A's credit */
        r->parked_a = r->parked_b = 0;
        r->park_err[0] = 0;
        send_ctl(g, a, SYM_MSG_DRAIN_PARK, sym);
        send_ctl(g, b, SYM_MSG_ALLOC_PARK, sym);
        r->phase = 1;
        return;
    }
    if (!r->parked_a || !r->parked_b) return;
    sym_err e = {{0}};
    int rc = 0;
    if (r->slot_b < 0) rc = sym_fail(&e, "cannot migrate: %s", r->park_err);
    else if (r->slot_a >= 0 &&
             sym_backend_copy_slot(g->shards[a]->backend, r->slot_a, g->shards[b]->backend, r->slot_b, &e))
        rc = sym_failctx(&e, "migrating symbol to shard %d", b);
    if (!rc) {
        send_ctl(g, a, SYM_MSG_RESUME, sym);
        send_ctl(g, b, SYM_MSG_RESUME, -1);
        r->loc[sym] = b;
        sym_shard_map_set_override(&r->map, sym, b);
        atomic_store_explicit(&g->where[sym], b, memory_order_relaxed);
    } else {
        send_ctl(g, a, SYM_MSG_RESUME, -1);
        send_ctl(g, b, SYM_MSG_RESUME, sym);
    }
    release_held(g, r, sym);
    job_finished(g, r, rc, e.msg);
}

static void on_parked(router_state *r, const sym_msg *m) {
    if (!r->active || r->phase != 1 || m->sym != r->job.sym) return;
    if (m->shard == r->loc[m->sym] && !r->parked_a) r->parked_a = 1, r->slot_a = m->slot;
    else r->parked_b = 1, r->slot_b = m->slot;
    if (m->slot < 0 && m->u.pred.error[0]) snprintf(r->park_err, sizeof r->park_err, "%s", m->u.pred.error);
}

/* --- rebalance ------------------------------------------------------------ */

static int on_rebalance(struct sym_engine *g, router_state *r, int n, uint64_t token) {
    int old = r->n_shards;
    r->n_shards = n;
    if (n > r->n_live) r->n_live = n;
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
        if (to != r->loc[s]) push_job(r, s, to, token, 1), r->rb_pending++, moved++;
    }
    sym_info("rebalance %d -> %d shards: moving %d symbols", old, n, moved);
    (void)g;
    return 0;
}

static void finish_rebalance(struct sym_engine *g, router_state *r) {
    if (!r->rb_active || r->rb_pending) return;
    for (int s = r->n_shards; s < r->n_live; s++) send_ctl(g, s, SYM_MSG_STOP, -1);
    r->n_live = r->n_shards;
    r->rb_active = 0;
    sym_engine_control_done(g, r->rb_token, r->rb_rc, r->rb_err);
}

/* --- the loop ------------------------------------------------------------- */

static void flush_out(struct sym_engine *g, router_state *r) {
    if (r->n_out) sym_engine_publish(g, r->out, r->n_out);
    r->n_out = 0;
}

static int drain_shards(struct sym_engine *g, router_state *r) {
    int got = 0;
    sym_msg m;
    for (int s = 0; s < r->n_live; s++) {
        while (sym_mailbox_pop(&g->shards[s]->outbox, &m)) {
            got = 1;
            if (m.type == SYM_MSG_PARKED) {
                on_parked(r, &m);
                continue;
            }
            r->inflight[s]--;
            sym_status_record(&r->status, s, m.t_step_ns - m.u.pred.t_submit_ns, m.step_ns, m.batch, m.batch > 0);
            r->out[r->n_out++] = m.u.pred;
            if (r->n_out == OUT_BATCH) flush_out(g, r);
        }
        flush_waiting(g, r, s);
    }
    flush_out(g, r);
    return got;
}

static int drain_inbox(struct sym_engine *g, router_state *r) {
    int got = 0;
    sym_msg m;
    /* only while the pool can hold a request: this is the push-back */
    while (r->pool_used < r->cap && sym_mailbox_pop(&g->inbox, &m)) {
        got = 1;
        switch (m.type) {
        case SYM_MSG_REQUEST: on_request(g, r, m.sym, &m.u.req); break;
        case SYM_MSG_MIGRATE:
            if (m.shard < 0 || m.shard >= r->n_shards) {
                sym_engine_control_done(g, m.token, -1, "target shard out of range");
                break;
            }
            push_job(r, m.sym, m.shard, m.token, 0);
            break;
        case SYM_MSG_REBALANCE: on_rebalance(g, r, m.shard, m.token); break;
        case SYM_MSG_SHUTDOWN: r->quit = 1; return got;
        default: break;
        }
    }
    return got;
}

void *sym_router_main(void *arg) {
    struct sym_engine *g = arg;
    router_state *r = g->router;
    uint64_t idle_since = 0;
    int depth[SYM_MAX_SHARDS];
    while (!r->quit) {
        unsigned seen = sym_doorbell_seq(&g->router_bell);
        int got = drain_shards(g, r);
        got |= drain_inbox(g, r);
        for (int k = 0; k < 4; k++) { /* a few jobs per turn: trivial ones finish at once */
            int was = r->active, left = r->jobs_len;
            advance_job(g, r);
            if (r->active == was && r->jobs_len == left) break;
        }
        finish_rebalance(g, r);
        uint64_t now = sym_now_ns();
        if (!sym_status_due_in(&r->status, now)) {
            for (int s = 0; s < r->n_live; s++) depth[s] = r->inflight[s] + r->w_len[s];
            sym_status_tick(&r->status, now, r->n_live, depth);
        }
        if (got) {
            idle_since = 0;
            continue;
        }
        if (!idle_since) idle_since = now;
        if (now - idle_since < (uint64_t)(g->cfg.idle_spin_us * 1e3)) continue;
        uint64_t due = sym_status_due_in(&r->status, now);
        sym_doorbell_wait(&g->router_bell, seen, due < 100000000ull ? (due ? due : 1) : 100000000ull);
        idle_since = 0;
    }
    for (int s = 0; s < r->n_live; s++) send_ctl(g, s, SYM_MSG_STOP, -1);
    return NULL;
}
