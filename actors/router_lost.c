/* The symbols of a shard in another process that is lost (its link sends
 * LOST): their states went with it, and no request of theirs may ever
 * step on a fresh state in its place.
 *
 * Until HOLD_LOST comes, each becomes LOST_GONE: its requests are refused
 * here from then on, and only an import (sym_engine_import_symbol) gives
 * it a state again.
 *
 * Once HOLD_LOST came (play with a state dir), each is held instead
 * (LOST_HELD), its requests kept here in order: those that still waited
 * for the lost shard's credit first, then every later one. Each request
 * the lost shard took with it comes back from the link as a failed
 * answer, which is kept (router_taken), not published. Once the link has
 * answered everything sent before LOST_SEEN (LOST_SETTLED), every request
 * of the lost shard is accounted for, and the loss is counted
 * (sym_engine_shards_lost) after every answer that came before it is in
 * poll()'s queue: its caller can log them, then read its log to the end
 * of these symbols' answered steps. The restore, on the restore mailbox:
 *
 *  1. RESTORE_BEGIN places the symbol on a live shard (the rendezvous
 *     winner among the shards not down) with the caller's state (its
 *     snapshot), or with none (RELEASE there: its first step starts from
 *     the initial state); a job, so never during another one;
 *  2. RESTORE_STEP, each logged answered step after that state, in order:
 *     sent to that shard as its credit allows, ahead of the requests that
 *     wait here for it; its answer is counted, not published (it was
 *     given once already);
 *  3. RESTORE_REISSUE, each logged request of the symbol not answered, in
 *     log order: the requests the lost shard took are the first of them,
 *     in the same order, and are filled with their features; the others
 *     are held here already and are ignored;
 *  4. RESTORE_END, once every replayed step is answered, sends the taken
 *     requests (as credit allows), then routes the held ones, in order,
 *     and the symbol is served again. A replayed step that failed, or a
 *     taken request the log did not name, fails the end and the symbol
 *     stays held: its caller stops rather than step it on a state that
 *     may have missed a step.
 *
 * So the shard gets the symbol's replayed steps, then the taken requests,
 * then the held ones, each once, and poll() sees no answer of the symbol
 * between the loss and the first re-issued one. The restore's messages
 * have their own mailbox, read whether or not the pool is full of held
 * requests: ending a restore is what empties it.
 *
 * The held symbols, the restores ended and failed, the replayed steps
 * answered and the taken requests sent again are published for
 * sym_engine_held_stats (/metrics). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/router_internal.h"
#include "common/log.h"

int router_live_owner(sym_router *r, int sym) {
    int owner = sym_shard_map_owner(&r->map, sym);
    if (!r->down[owner]) return owner;
    int live = sym_shard_map_owner_among(&r->map, sym, r->down);
    if (live < 0) return owner; /* every shard down: its requests get the lost shard's refusal */
    sym_shard_map_set_override(&r->map, sym, live);
    return live;
}

/* The restore of sym cannot end well: why is kept for its END. Its first
 * failure is the one kept: the later ones follow from it (a re-issue out
 * of order puts every one after it out of order too). */
static void fail_restore(sym_router *r, int sym, const char *why) {
    if (r->bad[sym] && r->bad_sym == sym) return;
    if (!r->bad[sym]) sym_warn("router: restoring a symbol lost with its shard: %s", why);
    r->bad[sym] = 1;
    r->bad_sym = sym;
    snprintf(r->bad_why, sizeof r->bad_why, "%s", why);
}

/* --- the loss ------------------------------------------------------------- */

/* Before HOLD_LOST: the loss is counted before any failed answer it
 * precedes reaches poll(), and the shard's symbols are refused. */
static void lose_for_good(sym_router *r, int s) {
    sym_pub_lost(&r->pub);
    int n = 0;
    for (int i = 0; i < r->n_ids; i++)
        if (r->loc[i] == s && r->lost[i] == SYM_LIVE) r->lost[i] = LOST_GONE, n++;
    sym_warn("router: shard %d lost the state of %d symbols: they are refused until their state is imported", s, n);
}

static void hold(sym_router *r, int sym) {
    r->lost[sym] = LOST_HELD;
    r->moving[sym] |= HOLD_LOST;
    r->t_head[sym] = r->t_tail[sym] = r->t_fill[sym] = -1;
    r->replay_out[sym] = 0;
    r->held_at[sym] = 0;
    r->bad[sym] = 0;
    r->n_held++;
}

/* Shard s's credit queue: the requests of held symbols go to the front of
 * their hold queues, in order (they are older than any held there); the
 * others stay, in order. */
static void hold_waiting(sym_router *r, int s) {
    int n = 0;
    for (int i = r->w_head[s]; i >= 0; i = r->pool_next[i]) r->scratch[n++] = i;
    r->w_head[s] = r->w_tail[s] = -1;
    r->w_len[s] = 0;
    for (int k = 0; k < n; k++) {
        int i = r->scratch[k];
        if (r->moving[r->pool_sym[i]] & HOLD_LOST) continue;
        r->pool_next[i] = -1;
        if (r->w_len[s]++) r->pool_next[r->w_tail[s]] = i;
        else r->w_head[s] = i;
        r->w_tail[s] = i;
    }
    for (int k = n - 1; k >= 0; k--) {
        int i = r->scratch[k], sym = r->pool_sym[i];
        if (!(r->moving[sym] & HOLD_LOST)) continue;
        r->waiting[sym]--;
        r->pool_next[i] = r->h_head[sym];
        if (r->h_head[sym] < 0) r->h_tail[sym] = i;
        r->h_head[sym] = i;
    }
}

void router_on_lost(sym_router *r, int s) {
    r->down[s] = 1;
    if (!r->hold_lost) {
        lose_for_good(r, s);
    } else {
        int n = 0;
        for (int i = 0; i < r->n_ids; i++)
            if (r->loc[i] == s && r->lost[i] == SYM_LIVE) hold(r, i), n++;
        hold_waiting(r, s);
        sym_pub_held(&r->pub, r->n_held);
        r->settling[s] = 1;
        sym_warn("router: shard %d lost the state of %d symbols: their requests are held until their state is restored",
                 s, n);
    }
    router_send_ctl(r, s, SYM_MSG_LOST_SEEN, -1); /* no request of those symbols follows it */
}

void router_on_settled(sym_router *r, int s) {
    if (!r->settling[s]) return; /* lost before HOLD_LOST: nothing held */
    r->settling[s] = 0;
    router_flush_out(r); /* every answer that came before the loss reaches poll() before it is counted */
    sym_pub_lost(&r->pub);
    const int count = sym_pub_read_lost(&r->pub);
    int n = 0, taken = 0;
    for (int i = 0; i < r->n_ids; i++) {
        if (r->loc[i] != s || r->lost[i] != LOST_HELD) continue;
        r->held_at[i] = count;
        n++;
        for (int k = r->t_head[i]; k >= 0; k = r->taken[k].next) taken++;
    }
    sym_info("router: shard %d: every request sent to it is accounted for (%d taken with it); %d symbols wait for "
             "their state", s, taken, n);
}

void router_on_joined(sym_router *r, int s) {
    r->down[s] = 0;
    sym_info("router: shard %d serves again, as a new shard", s);
}

/* --- answers of held symbols ------------------------------------------------ */

static int taken_alloc(sym_router *r) {
    if (r->taken_free < 0) {
        int cap = r->taken_cap ? 2 * r->taken_cap : 64;
        if (cap > r->cap * SYM_MAX_SHARDS) return -1; /* more than every shard's credit: not a link we know */
        router_taken *t = realloc(r->taken, (size_t)cap * sizeof *t);
        if (!t) return -1;
        for (int i = r->taken_cap; i < cap; i++) t[i].next = i + 1 < cap ? i + 1 : -1;
        r->taken = t;
        r->taken_free = r->taken_cap;
        r->taken_cap = cap;
    }
    int i = r->taken_free;
    r->taken_free = r->taken[i].next;
    return i;
}

static void taken_give(sym_router *r, int i) {
    r->taken[i].next = r->taken_free;
    r->taken_free = i;
}

/* A request the lost shard took: its answer is the link's failure. */
static void keep_taken(sym_router *r, int s, const sym_msg *m) {
    char why[200];
    int sym = m->sym, i;
    if (m->u.pred.status == 0 || s != r->loc[sym]) { /* after LOST a lost shard answers nothing but failures */
        snprintf(why, sizeof why, "an answer from shard %d (unique_id %llu) after the loss of its state", s,
                 (unsigned long long)m->u.pred.uid);
        return fail_restore(r, sym, why);
    }
    if ((i = taken_alloc(r)) < 0) return fail_restore(r, sym, "no room for the requests taken with its shard");
    r->taken[i].req = (sym_request){.uid = m->u.pred.uid, .t_submit_ns = m->u.pred.t_submit_ns};
    r->taken[i].next = -1;
    if (r->t_tail[sym] >= 0) r->taken[r->t_tail[sym]].next = i;
    else r->t_head[sym] = i;
    r->t_tail[sym] = i;
    if (r->t_fill[sym] < 0) r->t_fill[sym] = i;
}

/* Restoring: its replayed steps are answered first (replay_out), then the
 * requests its lost shard took, sent again at its end. A failure of
 * either is not published: its restore fails, and its caller stops. */
void router_held_done(sym_router *r, int shard, const sym_msg *m) {
    int sym = m->sym;
    if (r->lost[sym] == LOST_HELD) return keep_taken(r, shard, m);
    const int replayed = r->replay_out[sym] > 0;
    if (m->u.pred.status) {
        char why[240];
        snprintf(why, sizeof why, "%s (unique_id %llu) failed on shard %d: %.150s",
                 replayed ? "its replayed step" : "a request sent again", (unsigned long long)m->u.pred.uid, shard,
                 m->u.pred.error);
        fail_restore(r, sym, why);
    } else if (!replayed) {
        return router_publish_done(r, shard, m);
    } else {
        if (m->batch > 0 && m->step_ns > 0) /* a step of that shard's all the same */
            sym_pub_step(&r->pub, shard, m->step_ns, m->batch);
        sym_pub_replayed(&r->pub);
    }
    if (replayed) r->replay_out[sym]--;
}

/* --- the restore channel ------------------------------------------------------ */

static void answer(sym_router *r, uint64_t token, int rc, const char *err) {
    sym_control_answer(r->l.restore_control, token, rc, err);
}

static void on_hold_lost(sym_router *r, const sym_msg *m) {
    if (!r->hold_lost) {
        size_t n = (size_t)r->n_ids;
        r->replay_out = calloc(n, sizeof(int));
        r->t_head = malloc(n * sizeof(int));
        r->t_tail = malloc(n * sizeof(int));
        r->t_fill = malloc(n * sizeof(int));
        r->held_at = calloc(n, sizeof(int));
        r->bad = calloc(n, 1);
        r->scratch = malloc((size_t)r->cap * sizeof(int));
        if (!r->replay_out || !r->t_head || !r->t_tail || !r->t_fill || !r->held_at || !r->bad || !r->scratch) {
            router_lost_free(r);
            return answer(r, m->token, -1, "out of memory for holding a lost shard's symbols");
        }
        r->taken_free = -1;
        r->bad_sym = -1;
        r->hold_lost = 1;
    }
    answer(r, m->token, 0, "");
}

/* A held symbol whose loss was counted, as one of the first upto. */
static int listed(const sym_router *r, int i, int upto) {
    return r->lost[i] == LOST_HELD && r->held_at[i] > 0 && r->held_at[i] <= upto;
}

/* The ids of the held symbols whose loss is among the first m->shard
 * counted (the caller has every answer before those), into the caller's
 * buffer; their count. */
static void on_held_list(sym_router *r, const sym_msg *m) {
    int n = 0;
    for (int i = 0; r->hold_lost && i < r->n_ids; i++) n += listed(r, i, m->shard);
    int32_t *ids = sym_slot_pool_reserve(r->l.slots, m->u.io.buf, (size_t)(n ? n : 1) * sizeof *ids);
    if (!ids) return answer(r, m->token, -1, "out of memory for the list of held symbols");
    n = 0;
    for (int i = 0; r->hold_lost && i < r->n_ids; i++)
        if (listed(r, i, m->shard)) ids[n++] = i;
    answer(r, m->token, n, "");
}

/* A symbol whose restore has begun, for a step or a re-issue; else the
 * message is dropped (and a held symbol's restore fails: 0). */
static int restoring(sym_router *r, const sym_msg *m) {
    if (r->hold_lost && m->sym >= 0 && m->sym < r->n_ids && r->lost[m->sym] == LOST_RESTORING) return 1;
    sym_warn("router: a restore message (type %d) for a symbol whose restore has not begun", m->type);
    if (r->hold_lost && m->sym >= 0 && m->sym < r->n_ids && r->lost[m->sym] == LOST_HELD)
        fail_restore(r, m->sym, "a restore message before its restore began");
    return 0;
}

/* A replayed step to the symbol's new shard: 1 sent (or dropped), 0 when
 * that shard has no credit yet. */
static int send_step(sym_router *r, const sym_msg *m) {
    if (!restoring(r, m)) return 1;
    int to = r->loc[m->sym];
    if (r->inflight[to] >= r->cap) return 0;
    r->replay_out[m->sym]++;
    router_send_to_shard(r, to, m->sym, &m->u.req);
    return 1;
}

/* The log's next unanswered request of the symbol: the next one its lost
 * shard took gets its features; after those, it is held here already. */
static void on_reissue(sym_router *r, const sym_msg *m) {
    if (!restoring(r, m)) return;
    int sym = m->sym, i = r->t_fill[sym];
    if (i < 0) return;
    if (r->taken[i].req.uid != m->u.req.uid) {
        char why[200];
        snprintf(why, sizeof why, "the log's next unanswered request of it is unique_id %llu, its lost shard took %llu",
                 (unsigned long long)m->u.req.uid, (unsigned long long)r->taken[i].req.uid);
        return fail_restore(r, sym, why);
    }
    uint64_t t_submit = r->taken[i].req.t_submit_ns; /* its latency counts from its first submit */
    r->taken[i].req = m->u.req;
    r->taken[i].req.t_submit_ns = t_submit;
    r->t_fill[sym] = r->taken[i].next;
}

static void reissue_some(sym_router *r);

/* The running begin or end of a held symbol's restore fails: the symbol
 * stays held. */
static void job_failed(sym_router *r, const char *why) {
    sym_pub_restore_end(&r->pub, 0); /* before the answer: a caller sees it counted */
    router_job_finished(r, -1, why);
}

static void end_failed(sym_router *r, int sym) {
    char why[sizeof r->bad_why];
    snprintf(why, sizeof why, "%s", r->bad_sym == sym ? r->bad_why : "its restore failed (logged above)");
    job_failed(r, why);
}

void router_restore_drain(sym_router *r) {
    sym_msg m;
    if (r->active && r->job.kind == JOB_RESTORE_END && r->phase == JOB_REISSUING) reissue_some(r);
    for (;;) {
        if (r->have_next) {
            if (!send_step(r, &r->restore_next)) return; /* the rest waits behind it, in order */
            r->have_next = 0;
        }
        if (!sym_mailbox_pop(r->l.restore_inbox, &m)) return;
        router_job j = {.sym = m.sym, .buf = m.u.io.buf, .token = m.token, .of_restore = 1};
        switch (m.type) {
        case SYM_MSG_HOLD_LOST: on_hold_lost(r, &m); break;
        case SYM_MSG_HELD_LIST: on_held_list(r, &m); break;
        case SYM_MSG_RESTORE_BEGIN: j.kind = JOB_RESTORE_BEGIN, router_push_job(r, j); break;
        case SYM_MSG_RESTORE_END: j.kind = JOB_RESTORE_END, router_push_job(r, j); break;
        case SYM_MSG_RESTORE_STEP: r->restore_next = m, r->have_next = 1; break;
        case SYM_MSG_RESTORE_REISSUE: on_reissue(r, &m); break;
        default: sym_warn("router: a message of type %d on the restore mailbox", m.type); break;
        }
    }
}

/* --- the restore jobs ------------------------------------------------------------ */

void router_restore_start_job(sym_router *r) {
    int sym = r->job.sym;
    if (sym < 0 || sym >= r->n_ids || !r->hold_lost) return router_job_finished(r, -1, "no such held symbol");
    if (r->job.kind == JOB_RESTORE_END) {
        if (r->lost[sym] != LOST_RESTORING) return router_job_finished(r, -1, "its restore has not begun");
        r->phase = JOB_REPLAYING;
        return;
    }
    if (r->lost[sym] != LOST_HELD || !r->held_at[sym])
        return router_job_finished(r, -1, "not a symbol held after its shard's loss was counted");
    if (r->bad[sym]) return end_failed(r, sym);
    int to = sym_shard_map_owner_among(&r->map, sym, r->down);
    if (to < 0) return job_failed(r, "no live shard to restore it on");
    router_place(r, sym, to);
    sym_shard_map_set_override(&r->map, sym, to);
    r->lost[sym] = LOST_RESTORING;
    r->job.to = to;
    if (r->buf < 0) { /* from the initial state: whatever an earlier stay there left goes */
        router_send_ctl(r, to, SYM_MSG_RELEASE, sym);
        return router_job_finished(r, to, "");
    }
    router_send_slot_msg(r, to, SYM_MSG_IMPORT, 0);
    r->phase = JOB_IMPORTING;
}

void router_restore_imported(sym_router *r, const sym_msg *m) {
    if (!m->u.io.status) return router_job_finished(r, r->job.to, "");
    char why[200];
    snprintf(why, sizeof why, "its state imported on shard %d: %.150s", r->job.to, m->u.io.error);
    fail_restore(r, r->job.sym, why);
    job_failed(r, why);
}

/* The taken requests, in order, as the shard's credit allows; then the
 * held ones, and the symbol is served again. */
static void reissue_some(sym_router *r) {
    int sym = r->job.sym, to = r->loc[sym];
    while (r->t_head[sym] >= 0 && r->inflight[to] < r->cap) {
        int i = r->t_head[sym];
        router_send_to_shard(r, to, sym, &r->taken[i].req);
        r->t_head[sym] = r->taken[i].next;
        taken_give(r, i);
        r->job.reissued++;
        sym_pub_reissued(&r->pub);
    }
    if (r->t_head[sym] >= 0) return; /* as answers free credit */
    r->t_tail[sym] = -1;
    if (r->bad[sym]) return end_failed(r, sym); /* a request sent again failed: that shard is lost too */
    r->lost[sym] = SYM_LIVE;
    r->n_held--;
    sym_pub_held(&r->pub, r->n_held);
    sym_pub_restore_end(&r->pub, 1);
    router_release_held(r, sym, HOLD_LOST);
    router_job_finished(r, r->job.reissued, "");
}

void router_restore_advance(sym_router *r) {
    int sym = r->job.sym;
    if (r->job.kind != JOB_RESTORE_END) return; /* a begin waits for its IMPORTED */
    if (r->phase == JOB_REPLAYING) {
        if (r->replay_out[sym]) return;
        if (r->bad[sym]) return end_failed(r, sym);
        int unnamed = 0;
        for (int i = r->t_fill[sym]; i >= 0; i = r->taken[i].next) unnamed++;
        if (unnamed) {
            char why[200];
            snprintf(why, sizeof why, "%d requests its lost shard took are not in the log as unanswered", unnamed);
            fail_restore(r, sym, why);
            return job_failed(r, why);
        }
        r->phase = JOB_REISSUING; /* its state is whole: answers from here on are its requests' */
    }
    reissue_some(r);
}

void router_lost_free(sym_router *r) {
    free(r->replay_out), free(r->t_head), free(r->t_tail), free(r->t_fill), free(r->held_at), free(r->bad);
    free(r->scratch), free(r->taken);
    r->replay_out = r->t_head = r->t_tail = r->t_fill = r->held_at = r->scratch = NULL;
    r->bad = NULL;
    r->taken = NULL;
}
