/* A shard actor: one thread, one backend, the state slots of the symbols
 * routed to it. It steps as soon as it has work: each step takes the oldest
 * waiting request of each symbol with work, in round robin, up to
 * max_batch rows; the rows left then go to those symbols' later requests,
 * a second row for each before any takes a third, up to rows_per_symbol in
 * arrival order (pick_rows). Requests that arrive during a step join the
 * next one (continuous batching). Every finished row goes straight back to
 * the router.
 *
 * Slot messages are handled between steps, on this thread: EXPORT copies a
 * symbol's state into a pool buffer, IMPORT writes a buffer into the
 * symbol's slot (at once, or, with after_queued, as soon as the symbol has
 * no queued request left: the one message that may wait is kept in
 * drain_sym), RELEASE frees a slot. Around them the shard goes on stepping
 * its other symbols; the copy itself holds the shard (on the CUDA engine, a
 * device <-> host copy of one slot). They see a paged-out symbol's state in
 * its tier: EXPORT copies it from there (from disk: read and checked),
 * IMPORT overwrites it there (on disk: a new file replaces the old),
 * RELEASE drops it; an IMPORT of a symbol new here while the pool is full
 * goes to the host tier, or to disk when that is full. Where the backend
 * has export_begin, an EXPORT holds the shard only while the state is set
 * aside (on a device backend, a device copy of the slot); the shard steps
 * on while it crosses to the host and answers when it has landed (one at
 * a time; idle, the shard waits for it).
 *
 * Paging. A symbol with no state here is admitted by its first request
 * while the shard holds fewer than slots + host-tier room + disk-tier room
 * states (else the request is refused, naming every limit): into a free
 * slot at once, or,
 * with the pool full, as "pending", to get a fresh slot when it steps.
 * pick_rows makes each symbol it takes resident: a free slot, or the slot
 * of the least recently stepped symbol with no queued request, whose state
 * goes to the host tier first (page-out; when the tier is full, its least
 * recently stepped state goes to disk to make room, so the host keeps the
 * most recently used; without a host tier, straight to disk); a paged-out
 * symbol's state then goes into the slot (page-in; from disk through a
 * host buffer, checked, its file removed after). A checksum failure fails
 * that symbol's queued requests and leaves its file: each later request
 * fails the same way, until an IMPORT replaces the state or a RELEASE
 * drops it. Symbols of the step being built all have
 * queued requests, so none is ever paged out under it. A symbol that finds
 * no slot (every resident symbol has work) keeps its place at the head of
 * the line for the next step. The count of states never exceeds what the
 * pool and the tiers can hold, so a page-out always finds a host buffer
 * or room on disk. */
#include "actors/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/disk_tier.h"
#include "actors/host_tier.h"
#include "common/clock.h"
#include "sharding/slot_table.h"

struct sym_shard {
    int index;
    sym_backend *backend;   /* NULL for a remote shard */
    sym_shard_remote remote; /* remote.run != NULL: the actor is in another process */
    sym_slot_pool *bufs; /* the buffers EXPORT and IMPORT name */
    sym_doorbell bell;   /* the shard sleeps on it when idle */
    sym_mailbox inbox;   /* router -> shard, single producer */
    sym_mailbox outbox;  /* shard -> router, single producer; rings the router's bell */
    pthread_t thread;
    int started;
    /* everything below belongs to the shard thread */
    int n_ids, queue_cap, max_batch, rows_per_sym, features;
    double idle_spin_us;
    sym_slot_table slots;
    sym_host_tier tier;     /* paged-out states */
    sym_disk_tier disk;     /* paged-out states the host tier had no room for */
    int host_tier_mb, disk_tier_mb;
    unsigned char *pending; /* [n_ids]: admitted with the pool full, no state yet (a fresh slot when it steps) */
    int n_pending;
    uint64_t n_steps;       /* the recency clock */
    int *defer;             /* [n_ids]: symbols a step found no slot for */
    sym_paging_stats pg;    /* the thread's counts, published to st_* */
    sym_request *pool_req; /* queue_cap requests waiting for a step */
    int *pool_next, pool_free;
    int *q_head, *q_tail, *q_len; /* per symbol: FIFO of pool indices */
    int *ready, ready_head, ready_len; /* symbols with work, round robin */
    int drain_sym;   /* an EXPORT or IMPORT waits for this symbol's queue to empty (-1: none) */
    sym_msg drain;   /* that message */
    int exporting;   /* an EXPORT's copy is under way (the backend's export_begin) */
    sym_msg export_answer; /* its answer, sent when the copy lands */
    const void *export_dst;
    int32_t *b_slots;
    int *b_sym, *b_idx;
    int *b_pick; /* a step's symbols, then how many rows each takes (pick_rows) */
    float *b_feat;
    double *b_out;
    unsigned char *b_ok; /* which rows the step ran (sym_backend_step_runs) */
    /* paging counts for other threads (sym_shard_paging) */
    _Atomic uint64_t st_outs, st_ins, st_out_ns, st_in_ns, st_steps, st_steps_paged, st_disk_outs, st_disk_ins;
    atomic_int st_resident, st_paged, st_on_disk;
};

static void reply(sym_shard *s, const sym_msg *m) { sym_mailbox_push(&s->outbox, m); }

static void fail_request(sym_shard *s, const sym_request *r, int sym, const char *why) {
    sym_msg m = {.type = SYM_MSG_DONE, .sym = sym, .shard = s->index, .batch = 1};
    sym_prediction *p = &m.u.pred;
    p->uid = r->uid;
    p->status = -1;
    p->t_submit_ns = r->t_submit_ns;
    p->t_done_ns = m.t_step_ns = sym_now_ns();
    snprintf(p->error, sizeof p->error, "%.159s", why);
    reply(s, &m);
}

/* --- residency -------------------------------------------------------------- */

static void publish_paging(sym_shard *s) {
    const sym_paging_stats *p = &s->pg;
    atomic_store_explicit(&s->st_outs, p->page_outs, memory_order_relaxed);
    atomic_store_explicit(&s->st_ins, p->page_ins, memory_order_relaxed);
    atomic_store_explicit(&s->st_out_ns, p->page_out_ns, memory_order_relaxed);
    atomic_store_explicit(&s->st_in_ns, p->page_in_ns, memory_order_relaxed);
    atomic_store_explicit(&s->st_steps_paged, p->steps_paged, memory_order_relaxed);
    atomic_store_explicit(&s->st_resident, s->slots.n_slots - s->slots.n_free, memory_order_relaxed);
    atomic_store_explicit(&s->st_paged, s->tier.n_held, memory_order_relaxed);
    atomic_store_explicit(&s->st_disk_outs, p->disk_outs, memory_order_relaxed);
    atomic_store_explicit(&s->st_disk_ins, p->disk_ins, memory_order_relaxed);
    atomic_store_explicit(&s->st_on_disk, s->disk.n_held, memory_order_relaxed);
}

/* States this shard keeps (resident, paged out, pending), and at most. */
static int n_states(const sym_shard *s) {
    return s->slots.n_slots - s->slots.n_free + s->tier.n_held + s->disk.n_held + s->n_pending;
}
static int max_states(const sym_shard *s) {
    return s->slots.n_slots + sym_host_tier_room(&s->tier) + sym_disk_tier_room(&s->disk);
}
static int has_state(const sym_shard *s, int sym) {
    return s->slots.slot_of[sym] >= 0 || sym_host_tier_state(&s->tier, sym) || sym_disk_tier_has(&s->disk, sym) ||
           s->pending[sym];
}

static int capacity_error(const sym_shard *s, sym_err *e) {
    if (s->disk.cap) {
        char host[80];
        if (sym_host_tier_room(&s->tier))
            snprintf(host, sizeof host, "host_tier_mb %d full (%d states)", s->host_tier_mb, s->tier.n_held);
        else snprintf(host, sizeof host, "no host tier (host_tier_mb %d)", s->host_tier_mb);
        return sym_fail(e, "symbol capacity: slots_per_shard %d in use, %s and state.disk_tier_mb %d full (%d states) on "
                        "shard %d", s->slots.n_slots, host, s->disk_tier_mb, s->disk.n_held, s->index);
    }
    if (!sym_host_tier_room(&s->tier))
        return sym_fail(e, "symbol capacity: slots_per_shard %d in use and no host tier (host_tier_mb %d) on shard %d",
                        s->slots.n_slots, s->host_tier_mb, s->index);
    return sym_fail(e, "symbol capacity: slots_per_shard %d in use and host_tier_mb %d full (%d states) on shard %d",
                    s->slots.n_slots, s->host_tier_mb, s->tier.n_held, s->index);
}

static int32_t fresh_slot(sym_shard *s, int sym, sym_err *e) {
    int fresh;
    int32_t slot = sym_slot_table_alloc(&s->slots, sym, &fresh);
    if (slot < 0) return sym_fail(e, "no free state slot on shard %d", s->index);
    if (fresh && s->backend->ops->reset_slot(s->backend, slot, e)) {
        sym_slot_table_release(&s->slots, sym);
        return -1;
    }
    sym_slot_table_touch(&s->slots, slot, s->n_steps);
    publish_paging(s);
    return slot;
}

/* The host tier's least recently stepped state to disk; its buffer is
 * kept for reuse. */
static int spill_oldest(sym_shard *s, sym_err *e) {
    int id = sym_host_tier_oldest(&s->tier);
    if (id < 0) return sym_fail(e, "shard %d: the host tier holds no state to spill", s->index);
    if (sym_disk_tier_write(&s->disk, id, sym_host_tier_state(&s->tier, id), e))
        return sym_failctx(e, "shard %d: spilling a state to disk", s->index);
    sym_host_tier_drop(&s->tier, id);
    s->pg.disk_outs++;
    return 0;
}

/* sym's state from its slot into the host tier (its least recently stepped
 * state spilled to disk first when it is full, unless swap says a held
 * state leaves it right after: its buffer is the swap room), or to disk
 * without a host tier; the slot is freed. On error everything stays where
 * it was. */
static int page_out(sym_shard *s, int sym, int swap, sym_err *e) {
    sym_backend *b = s->backend;
    const int32_t slot = sym_slot_table_lookup(&s->slots, sym);
    const int host = sym_host_tier_room(&s->tier) > 0;
    if (!host && !s->disk.cap) return sym_fail(e, "shard %d: no tier to page a state out to", s->index);
    uint64_t t0 = sym_now_ns();
    if (host && !swap && s->disk.cap && s->tier.n_held >= sym_host_tier_room(&s->tier) && spill_oldest(s, e)) return -1;
    void *buf = host ? sym_host_tier_take(&s->tier) : sym_disk_tier_stage(&s->disk);
    if (!buf) return sym_fail(e, "shard %d: no host buffer for a %zu-byte state (host_tier_mb %d)", s->index,
                              b->slot_bytes, s->host_tier_mb);
    if (b->ops->export_slot(b, slot, buf, e)) {
        if (host) sym_host_tier_give(&s->tier, buf);
        return sym_failctx(e, "shard %d: paging a state out", s->index);
    }
    if (host) {
        sym_host_tier_hold(&s->tier, sym, buf, s->slots.used[slot]);
    } else {
        if (sym_disk_tier_write(&s->disk, sym, buf, e)) return sym_failctx(e, "shard %d: paging a state out", s->index);
        s->pg.disk_outs++;
    }
    sym_slot_table_release(&s->slots, sym);
    s->pg.page_outs++;
    s->pg.page_out_ns += sym_now_ns() - t0;
    return 0;
}

/* A slot for sym: 0 when it has one (paged in, or fresh), 1 when none can
 * be had this step (every resident symbol has queued work), -1 on error
 * (sym's state, if any, where it was). */
static int make_resident(sym_shard *s, int sym, sym_err *e) {
    sym_backend *b = s->backend;
    void *held = sym_host_tier_state(&s->tier, sym);
    const int on_disk = sym_disk_tier_has(&s->disk, sym);
    if (sym_slot_table_full(&s->slots)) {
        int victim = sym_slot_table_lru_idle(&s->slots, s->q_len);
        if (victim < 0) return 1;
        if (page_out(s, victim, held != NULL, e)) return -1;
    }
    if (!held && !on_disk) { /* pending: its first step starts from a reset state */
        if (fresh_slot(s, sym, e) < 0) return -1;
        if (s->pending[sym]) s->pending[sym] = 0, s->n_pending--;
        return 0;
    }
    int fresh;
    int32_t slot = sym_slot_table_alloc(&s->slots, sym, &fresh);
    uint64_t t0 = sym_now_ns();
    void *src = held, *staged = NULL;
    if (on_disk) { /* through a host buffer: after the page-out above, the tier has one to lend */
        staged = sym_host_tier_take(&s->tier);
        src = staged ? staged : sym_disk_tier_stage(&s->disk);
        if (!src) {
            sym_slot_table_release(&s->slots, sym);
            return sym_fail(e, "shard %d: no host buffer to page a state in from disk (out of memory)", s->index);
        }
        if (sym_disk_tier_read(&s->disk, sym, src, e)) {
            if (staged) sym_host_tier_give(&s->tier, staged);
            sym_slot_table_release(&s->slots, sym);
            return sym_failctx(e, "shard %d: paging a state in", s->index);
        }
    }
    int rc = b->ops->import_slot(b, slot, src, e);
    if (staged) sym_host_tier_give(&s->tier, staged);
    if (rc) {
        sym_slot_table_release(&s->slots, sym);
        return sym_failctx(e, "shard %d: paging a state in", s->index);
    }
    if (on_disk) {
        sym_disk_tier_drop(&s->disk, sym);
        s->pg.disk_ins++;
    } else {
        sym_host_tier_drop(&s->tier, sym);
    }
    sym_slot_table_touch(&s->slots, slot, s->n_steps);
    s->pg.page_ins++;
    s->pg.page_in_ns += sym_now_ns() - t0;
    return 0;
}

/* A symbol new here: into a free slot, or pending while the pool is full. */
static int admit(sym_shard *s, int sym, sym_err *e) {
    if (n_states(s) >= max_states(s)) return capacity_error(s, e);
    if (!sym_slot_table_full(&s->slots)) return fresh_slot(s, sym, e) < 0 ? -1 : 0;
    s->pending[sym] = 1;
    s->n_pending++;
    return 0;
}

static void enqueue_request(sym_shard *s, int sym, const sym_request *r) {
    if (s->slots.slot_of[sym] < 0 && !has_state(s, sym)) {
        sym_err e = {{0}};
        if (admit(s, sym, &e)) return fail_request(s, r, sym, e.msg);
    }
    /* the router never has more than queue_cap requests in flight here */
    int idx = s->pool_free;
    s->pool_free = s->pool_next[idx];
    s->pool_req[idx] = *r;
    s->pool_next[idx] = -1;
    if (s->q_len[sym]++) s->pool_next[s->q_tail[sym]] = idx;
    else {
        s->q_head[sym] = idx;
        s->ready[(s->ready_head + s->ready_len++) % s->n_ids] = sym;
    }
    s->q_tail[sym] = idx;
}

/* Every queued request of sym (off the ready line) answered with why. */
static void fail_queue(sym_shard *s, int sym, const char *why) {
    while (s->q_len[sym]) {
        int idx = s->q_head[sym];
        fail_request(s, &s->pool_req[idx], sym, why);
        s->q_head[sym] = s->pool_next[idx];
        s->pool_next[idx] = s->pool_free;
        s->pool_free = idx;
        s->q_len[sym]--;
    }
    if (s->pending[sym]) s->pending[sym] = 0, s->n_pending--;
}

/* --- slot messages ------------------------------------------------------- */

static sym_msg answer_to(const sym_shard *s, const sym_msg *m, int type) {
    sym_msg a = {.type = type, .sym = m->sym, .shard = s->index, .slot = -1, .token = m->token};
    a.u.io.buf = m->u.io.buf;
    a.u.io.steps = -1;
    return a;
}

static void answer_failed(sym_shard *s, sym_msg *a, const char *why) {
    a->u.io.status = -1;
    snprintf(a->u.io.error, sizeof a->u.io.error, "shard %d: %.140s", s->index, why);
    reply(s, a);
}

/* The step count in an exported slot, where the backend's slots follow
 * state_layout.h (whose header starts with it). */
static int64_t exported_steps(const sym_backend *b, const void *bytes) {
    if (!b->layout.numel || b->layout.numel * b->state_elem_size != b->slot_bytes) return -1;
    return sym_state_steps(bytes);
}

/* Sends the answer of the export under way once its copy has landed;
 * block waits for that (the shard is idle, stopping, or needs the backend
 * for another export). */
static void finish_export(sym_shard *s, int block) {
    if (!s->exporting) return;
    sym_backend *b = s->backend;
    sym_err e = {{0}};
    int rc = b->ops->export_end(b, block, &e);
    if (!rc) return;
    s->exporting = 0;
    if (rc < 0) return answer_failed(s, &s->export_answer, e.msg);
    s->export_answer.u.io.steps = exported_steps(b, s->export_dst);
    reply(s, &s->export_answer);
}

static void export_now(sym_shard *s, const sym_msg *m) {
    sym_msg a = answer_to(s, m, SYM_MSG_EXPORTED);
    sym_backend *b = s->backend;
    sym_err e = {{0}};
    a.slot = sym_slot_table_lookup(&s->slots, m->sym);
    const void *held = sym_host_tier_state(&s->tier, m->sym);
    const int on_disk = sym_disk_tier_has(&s->disk, m->sym);
    if (a.slot < 0 && !held && !on_disk) { /* pending too: it has not stepped yet */
        a.u.io.status = 1;
        return reply(s, &a);
    }
    void *dst = sym_slot_pool_reserve(s->bufs, m->u.io.buf, b->slot_bytes);
    if (!dst) return answer_failed(s, &a, "no room for the exported state (bad buffer, or out of memory)");
    if (held) memcpy(dst, held, b->slot_bytes);
    else if (on_disk) {
        if (sym_disk_tier_read(&s->disk, m->sym, dst, &e)) return answer_failed(s, &a, e.msg);
    } else if (b->ops->export_begin) { /* the shard steps on while the state crosses to the host */
        finish_export(s, 1);
        if (b->ops->export_begin(b, a.slot, dst, &e)) return answer_failed(s, &a, e.msg);
        s->exporting = 1;
        s->export_answer = a;
        s->export_dst = dst;
        return;
    } else if (b->ops->export_slot(b, a.slot, dst, &e)) return answer_failed(s, &a, e.msg);
    a.u.io.steps = exported_steps(b, dst);
    reply(s, &a);
}

static void import_now(sym_shard *s, const sym_msg *m) {
    sym_msg a = answer_to(s, m, SYM_MSG_IMPORTED);
    sym_backend *b = s->backend;
    sym_err e = {{0}};
    size_t len = 0;
    const void *src = sym_slot_pool_bytes(s->bufs, m->u.io.buf, &len);
    if (!src || len != b->slot_bytes) {
        snprintf(e.msg, sizeof e.msg, "a %zu-byte state does not fit this backend's %zu-byte slots", len, b->slot_bytes);
        return answer_failed(s, &a, e.msg);
    }
    void *held = sym_host_tier_state(&s->tier, m->sym);
    if (held) { /* paged out: the new state waits there for its next step */
        memcpy(held, src, len);
        return reply(s, &a);
    }
    if (sym_disk_tier_has(&s->disk, m->sym)) { /* on disk: a new file replaces the old */
        if (sym_disk_tier_write(&s->disk, m->sym, src, &e)) return answer_failed(s, &a, e.msg);
        return reply(s, &a);
    }
    const int sym = m->sym, known = has_state(s, sym);
    if (!known && n_states(s) >= max_states(s)) {
        capacity_error(s, &e);
        return answer_failed(s, &a, e.msg);
    }
    int fresh;
    a.slot = sym_slot_table_alloc(&s->slots, sym, &fresh);
    if (a.slot < 0 && s->tier.n_held < sym_host_tier_room(&s->tier)) {
        /* the pool is full: into the host tier, or to disk when that is full
         * (states counted above leave one of them room) */
        void *buf = sym_host_tier_take(&s->tier);
        if (!buf) return answer_failed(s, &a, "no host buffer for the state (out of memory)");
        memcpy(buf, src, len);
        sym_host_tier_hold(&s->tier, sym, buf, s->n_steps);
    } else if (a.slot < 0) {
        if (sym_disk_tier_write(&s->disk, sym, src, &e)) return answer_failed(s, &a, e.msg);
    } else if (b->ops->import_slot(b, a.slot, src, &e)) {
        if (fresh) sym_slot_table_release(&s->slots, sym);
        return answer_failed(s, &a, e.msg);
    } else {
        sym_slot_table_touch(&s->slots, a.slot, s->n_steps);
    }
    if (s->pending[sym]) s->pending[sym] = 0, s->n_pending--;
    publish_paging(s);
    reply(s, &a);
}

static void slot_now(sym_shard *s, const sym_msg *m) {
    if (m->type == SYM_MSG_EXPORT) export_now(s, m);
    else import_now(s, m);
}

/* EXPORT or IMPORT: now, or kept until sym's queued requests are stepped. */
static void on_slot_msg(sym_shard *s, const sym_msg *m) {
    int answer = m->type == SYM_MSG_EXPORT ? SYM_MSG_EXPORTED : SYM_MSG_IMPORTED;
    sym_msg a = answer_to(s, m, answer);
    if (m->sym < 0 || m->sym >= s->n_ids) return answer_failed(s, &a, "symbol id out of range");
    if (!m->u.io.after_queued || !s->q_len[m->sym]) return slot_now(s, m);
    if (s->drain_sym >= 0) return answer_failed(s, &a, "another slot message already waits for its symbol's requests");
    s->drain_sym = m->sym;
    s->drain = *m;
}

/* 1 to keep running, 0 on STOP. Symbol ids of requests come from the
 * front door's table; those of slot messages are checked, since more
 * senders than the migration may use them. */
static int handle(sym_shard *s, const sym_msg *m) {
    switch (m->type) {
    case SYM_MSG_STEP_REQ: enqueue_request(s, m->sym, &m->u.req); break;
    case SYM_MSG_EXPORT:
    case SYM_MSG_IMPORT: on_slot_msg(s, m); break;
    case SYM_MSG_RELEASE:
        if (m->sym >= 0 && m->sym < s->n_ids && !s->q_len[m->sym]) {
            sym_slot_table_release(&s->slots, m->sym);
            sym_host_tier_drop(&s->tier, m->sym);
            sym_disk_tier_drop(&s->disk, m->sym);
            publish_paging(s);
        }
        break;
    case SYM_MSG_STOP: return 0;
    default: break;
    }
    return 1;
}

/* Which symbols a step takes and how many rows of each: the symbols with
 * work in round robin, one row each, up to max_batch (their first requests
 * are the oldest waiting); the rows left go to the chosen symbols' second
 * requests, then their third, up to rows_per_sym. Taking each symbol's
 * later rows as it came (as the shard used to) could fill the batch with
 * a few symbols' backlogs and leave other symbols' older requests for the
 * next step.
 * Returns how many symbols; b_sym[i] is the i-th, b_pick[i] its rows. */
static int pick_rows(sym_shard *s) {
    int n = 0, nd = 0;
    uint64_t paged = s->pg.page_outs + s->pg.page_ins;
    s->n_steps++;
    for (int left = s->ready_len; n < s->max_batch && left; left--) {
        int sym = s->ready[s->ready_head];
        s->ready_head = (s->ready_head + 1) % s->n_ids;
        s->ready_len--;
        int32_t slot = sym_slot_table_lookup(&s->slots, sym);
        if (slot < 0) {
            sym_err e = {{0}};
            int rc = make_resident(s, sym, &e);
            if (rc > 0) s->defer[nd++] = sym;
            if (rc < 0) fail_queue(s, sym, e.msg);
            if (rc) continue;
            slot = sym_slot_table_lookup(&s->slots, sym);
        }
        sym_slot_table_touch(&s->slots, slot, s->n_steps);
        s->b_sym[n] = sym;
        s->b_pick[n++] = 1;
    }
    /* symbols that found no slot keep the head of the line: the next slot
     * that frees is theirs */
    while (nd) {
        s->ready_head = (s->ready_head + s->n_ids - 1) % s->n_ids;
        s->ready[s->ready_head] = s->defer[--nd];
        s->ready_len++;
    }
    if (s->pg.page_outs + s->pg.page_ins != paged) {
        s->pg.steps_paged++;
        publish_paging(s);
    }
    atomic_store_explicit(&s->st_steps, s->n_steps, memory_order_relaxed);
    for (int k = 1, left = s->max_batch - n; k < s->rows_per_sym && left; k++)
        for (int i = 0; i < n && left; i++)
            if (s->q_len[s->b_sym[i]] > k) s->b_pick[i]++, left--;
    return n;
}

static void step(sym_shard *s) {
    int B = 0, F = s->features, n = pick_rows(s);
    if (!n) return; /* every symbol with work waits for a slot, or failed to get one */
    /* laid out from the last symbol back, so that b_sym[i] is read before
     * a row overwrites it: symbol i's rows start at or after i */
    for (int i = 0; i < n; i++) B += s->b_pick[i];
    for (int i = n - 1, at = B; i >= 0; i--) {
        const int sym = s->b_sym[i], rows = s->b_pick[i];
        const int32_t slot = sym_slot_table_lookup(&s->slots, sym);
        at -= rows;
        /* a symbol's rows sit together, in arrival order */
        for (int idx = s->q_head[sym], k = 0; k < rows; idx = s->pool_next[idx], k++) {
            s->b_sym[at + k] = sym;
            s->b_idx[at + k] = idx;
            s->b_slots[at + k] = slot;
            memcpy(s->b_feat + (size_t)(at + k) * (size_t)F, s->pool_req[idx].features, (size_t)F * sizeof(float));
        }
    }
    sym_err e = {{0}};
    uint64_t t0 = sym_now_ns();
    int rc = sym_backend_step_runs(s->backend, B, s->b_slots, s->b_feat, s->b_out, s->b_ok, &e);
    uint64_t t1 = sym_now_ns();
    for (int r = 0; r < B; r++) {
        int sym = s->b_sym[r], idx = s->b_idx[r];
        const sym_request *q = &s->pool_req[idx];
        sym_msg m = {.type = SYM_MSG_DONE, .sym = sym, .shard = s->index, .t_step_ns = t0, .step_ns = t1 - t0,
                     .batch = r == 0 ? B : 0};
        sym_prediction *p = &m.u.pred;
        p->uid = q->uid;
        p->status = s->b_ok[r] ? 0 : -1; /* on a failed step, the rows of the passes before it ran */
        p->t_submit_ns = q->t_submit_ns;
        p->t_done_ns = t1;
        if (!s->b_ok[r]) snprintf(p->error, sizeof p->error, "%.159s", rc ? e.msg : "not stepped");
        else memcpy(p->pred, s->b_out + (size_t)r * SYM_TOWERS, sizeof p->pred);
        reply(s, &m);
        /* pop the request (the symbol's rows come in queue order); after its
         * last row, a symbol with more work goes to the back of the line */
        s->q_head[sym] = s->pool_next[idx];
        s->pool_next[idx] = s->pool_free;
        s->pool_free = idx;
        if (--s->q_len[sym] && (r + 1 == B || s->b_sym[r + 1] != sym))
            s->ready[(s->ready_head + s->ready_len++) % s->n_ids] = sym;
    }
}

static void *shard_main(void *arg) {
    sym_shard *s = arg;
    sym_msg m;
    uint64_t idle_since = 0;
    for (;;) {
        unsigned seen = sym_doorbell_seq(&s->bell);
        int got = 0;
        while (sym_mailbox_pop(&s->inbox, &m)) {
            got = 1;
            if (!handle(s, &m)) {
                finish_export(s, 1);
                return NULL;
            }
        }
        finish_export(s, 0);
        if (s->drain_sym >= 0 && !s->q_len[s->drain_sym]) {
            s->drain_sym = -1;
            slot_now(s, &s->drain);
        }
        if (s->ready_len) {
            step(s);
            idle_since = 0;
            continue;
        }
        if (got) {
            idle_since = 0;
            continue;
        }
        if (s->exporting) { /* nothing to step: wait for the copy here rather than poll it */
            finish_export(s, 1);
            continue;
        }
        uint64_t now = sym_now_ns();
        if (!idle_since) idle_since = now;
        if (now - idle_since < (uint64_t)(s->idle_spin_us * 1e3)) continue;
        sym_doorbell_wait(&s->bell, seen, 0);
        idle_since = 0;
    }
}

static void free_shard(sym_shard *s) {
    sym_slot_table_free(&s->slots);
    sym_host_tier_free(&s->tier);
    sym_disk_tier_free(&s->disk);
    free(s->pending), free(s->defer);
    free(s->pool_req), free(s->pool_next), free(s->q_head), free(s->q_tail), free(s->q_len), free(s->ready);
    free(s->b_slots), free(s->b_sym), free(s->b_idx), free(s->b_pick), free(s->b_feat), free(s->b_out), free(s->b_ok);
    sym_doorbell_destroy(&s->bell);
    free(s);
}

sym_shard *sym_shard_create(const sym_shard_params *p, sym_backend *b, sym_doorbell *router_bell,
                            sym_slot_pool *slots, sym_err *e) {
    sym_shard *s = calloc(1, sizeof *s);
    if (!s) {
        sym_fail(e, "out of memory for shard %d", p->index);
        return NULL;
    }
    s->index = p->index;
    s->backend = b;
    s->bufs = slots;
    s->n_ids = p->n_ids;
    s->queue_cap = p->queue_cap;
    s->max_batch = p->max_batch < b->max_batch ? p->max_batch : b->max_batch;
    s->rows_per_sym = p->rows_per_symbol > 0 ? p->rows_per_symbol : 1;
    s->features = p->features;
    s->idle_spin_us = p->idle_spin_us;
    s->drain_sym = -1;
    s->host_tier_mb = p->host_tier_mb;
    s->disk_tier_mb = p->disk_tier_mb > 0 ? p->disk_tier_mb : 0;
    sym_doorbell_init(&s->bell);
    if (s->rows_per_sym > 1 && b->ops->prepare_runs && b->ops->prepare_runs(b, e)) {
        sym_failctx(e, "shard %d: preparing steps with several rows of a symbol", p->index);
        free_shard(s);
        return NULL;
    }
    int F = s->features, ok = 1;
    s->pool_req = malloc((size_t)s->queue_cap * sizeof *s->pool_req);
    s->pool_next = malloc((size_t)s->queue_cap * sizeof *s->pool_next);
    s->q_head = calloc((size_t)s->n_ids, sizeof(int));
    s->q_tail = calloc((size_t)s->n_ids, sizeof(int));
    s->q_len = calloc((size_t)s->n_ids, sizeof(int));
    s->ready = calloc((size_t)s->n_ids, sizeof(int));
    s->pending = calloc((size_t)s->n_ids, 1);
    s->defer = malloc((size_t)s->n_ids * sizeof(int));
    s->b_slots = malloc((size_t)s->max_batch * sizeof *s->b_slots);
    s->b_sym = malloc((size_t)s->max_batch * sizeof(int));
    s->b_idx = malloc((size_t)s->max_batch * sizeof(int));
    s->b_pick = malloc((size_t)s->max_batch * sizeof(int));
    s->b_feat = malloc((size_t)s->max_batch * (size_t)F * sizeof(float));
    s->b_out = malloc((size_t)s->max_batch * SYM_TOWERS * sizeof(double));
    s->b_ok = malloc((size_t)s->max_batch);
    ok = s->pool_req && s->pool_next && s->q_head && s->q_tail && s->q_len && s->ready && s->pending && s->defer &&
         s->b_slots && s->b_sym &&
         s->b_idx && s->b_pick && s->b_feat && s->b_out && s->b_ok;
    if (!ok) sym_fail(e, "out of memory for shard %d", p->index);
    if (ok && sym_slot_table_init(&s->slots, s->n_ids, b->n_slots, e)) ok = 0;
    if (ok && sym_host_tier_init(&s->tier, s->n_ids, b->slot_bytes, (size_t)s->host_tier_mb << 20, b->ops->host_mem, e))
        ok = 0;
    if (ok && sym_disk_tier_init(&s->disk, p->state_dir, s->index, s->n_ids, b->slot_bytes,
                                 (uint64_t)s->disk_tier_mb << 20, e)) {
        sym_failctx(e, "shard %d", s->index);
        ok = 0;
    }
    if (ok && sym_mailbox_init(&s->inbox, s->queue_cap + 64, 0, &s->bell, e)) ok = 0;
    if (ok && sym_mailbox_init(&s->outbox, s->queue_cap + 64, 0, router_bell, e)) {
        sym_mailbox_destroy(&s->inbox);
        ok = 0;
    }
    if (!ok) {
        free_shard(s); /* not the backend: it stays the caller's */
        return NULL;
    }
    for (int i = 0; i < s->queue_cap; i++) s->pool_next[i] = i + 1 < s->queue_cap ? i + 1 : -1;
    s->pool_free = 0;
    return s;
}

sym_shard *sym_shard_create_remote(const sym_shard_params *p, const sym_shard_remote *r, sym_doorbell *router_bell,
                                   sym_err *e) {
    sym_shard *s = calloc(1, sizeof *s);
    if (!s) {
        sym_fail(e, "out of memory for shard %d", p->index);
        return NULL;
    }
    s->index = p->index;
    s->remote = *r;
    s->queue_cap = p->queue_cap;
    sym_doorbell_init(&s->bell);
    if (sym_mailbox_init(&s->inbox, s->queue_cap + 64, 0, &s->bell, e)) {
        free_shard(s);
        return NULL;
    }
    if (sym_mailbox_init(&s->outbox, s->queue_cap + 64, 0, router_bell, e)) {
        sym_mailbox_destroy(&s->inbox);
        free_shard(s);
        return NULL;
    }
    return s;
}

static void *remote_main(void *arg) {
    sym_shard *s = arg;
    s->remote.run(s->remote.ctx, &s->inbox, &s->outbox, &s->bell);
    return NULL;
}

int sym_shard_start(sym_shard *s, sym_err *e) {
    if (pthread_create(&s->thread, NULL, s->remote.run ? remote_main : shard_main, s))
        return sym_fail(e, "cannot start shard %d's thread", s->index);
    s->started = 1;
    return 0;
}

sym_mailbox *sym_shard_inbox(sym_shard *s) { return &s->inbox; }
sym_mailbox *sym_shard_outbox(sym_shard *s) { return &s->outbox; }

void sym_shard_paging(sym_shard *s, sym_paging_stats *out) {
    if (s->remote.run) {
        s->remote.paging(s->remote.ctx, out);
        return;
    }
    *out = (sym_paging_stats){
        .page_outs = atomic_load_explicit(&s->st_outs, memory_order_relaxed),
        .page_ins = atomic_load_explicit(&s->st_ins, memory_order_relaxed),
        .page_out_ns = atomic_load_explicit(&s->st_out_ns, memory_order_relaxed),
        .page_in_ns = atomic_load_explicit(&s->st_in_ns, memory_order_relaxed),
        .steps = atomic_load_explicit(&s->st_steps, memory_order_relaxed),
        .steps_paged = atomic_load_explicit(&s->st_steps_paged, memory_order_relaxed),
        .resident = atomic_load_explicit(&s->st_resident, memory_order_relaxed),
        .paged = atomic_load_explicit(&s->st_paged, memory_order_relaxed),
        .disk_outs = atomic_load_explicit(&s->st_disk_outs, memory_order_relaxed),
        .disk_ins = atomic_load_explicit(&s->st_disk_ins, memory_order_relaxed),
        .on_disk = atomic_load_explicit(&s->st_on_disk, memory_order_relaxed),
        .slots = s->slots.n_slots,
    };
}

void sym_shard_stop(sym_shard *s) {
    sym_msg m = {.type = SYM_MSG_STOP};
    sym_mailbox_push(&s->inbox, &m);
}

void sym_shard_join(sym_shard *s) {
    if (s->started) pthread_join(s->thread, NULL);
    s->started = 0;
}

void sym_shard_join_destroy(sym_shard *s) {
    if (!s) return;
    if (s->started) pthread_join(s->thread, NULL);
    if (s->remote.destroy) s->remote.destroy(s->remote.ctx);
    sym_backend_destroy(s->backend);
    sym_mailbox_destroy(&s->inbox);
    sym_mailbox_destroy(&s->outbox);
    free_shard(s);
}
