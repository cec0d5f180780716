#include "tests/actors/fake_remote.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/shard.h"
#include "common/clock.h"
#include "tests/actors/echo_backend.h"

/* A list of messages in the order taken. */
typedef struct {
    sym_msg *m;
    int n, cap;
} msg_list;

typedef struct {
    sym_fake_remotes *set;
    int index;
    sym_shard *inner;  /* the echo shard the "process" runs */
    sym_doorbell bell; /* the inner shard's outbox rings it */
    atomic_int hold, lose, taken;
    /* the fake's thread only */
    msg_list sent; /* forwarded to the inner shard, not answered yet */
    msg_list kept; /* taken while holding */
} fake_shard;

struct sym_fake_remotes {
    const sym_model_config *model;
    const sym_config *cfg;
    fake_shard shard[SYM_MAX_SHARDS];
};

static int list_push(msg_list *l, const sym_msg *m) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        sym_msg *p = realloc(l->m, (size_t)cap * sizeof *p);
        if (!p) return -1;
        l->m = p, l->cap = cap;
    }
    l->m[l->n++] = *m;
    return 0;
}

/* Drops the message a (an answer of the inner shard) answers. */
static void list_answered(msg_list *l, const sym_msg *a) {
    for (int i = 0; i < l->n; i++) {
        const sym_msg *m = &l->m[i];
        int match = a->type == SYM_MSG_DONE ? m->type == SYM_MSG_STEP_REQ && m->u.req.uid == a->u.pred.uid
                                            : (m->type == SYM_MSG_EXPORT || m->type == SYM_MSG_IMPORT) &&
                                                  m->token == a->token && m->sym == a->sym;
        if (!match) continue;
        for (int k = i + 1; k < l->n; k++) l->m[k - 1] = l->m[k];
        l->n--;
        return;
    }
}

/* The answer a lost link gives m (net/shard_link.c's lost_answer); 0: none. */
static int lost_answer(const fake_shard *f, const sym_msg *m, sym_msg *a) {
    if (m->type == SYM_MSG_STEP_REQ) {
        *a = (sym_msg){.type = SYM_MSG_DONE, .sym = m->sym, .shard = f->index, .batch = 1};
        a->u.pred.uid = m->u.req.uid;
        a->u.pred.status = -1;
        a->u.pred.t_submit_ns = m->u.req.t_submit_ns;
        a->u.pred.t_done_ns = a->t_step_ns = sym_now_ns();
        snprintf(a->u.pred.error, sizeof a->u.pred.error, "fake shard %d is lost", f->index);
        return 1;
    }
    if (m->type == SYM_MSG_EXPORT || m->type == SYM_MSG_IMPORT) {
        *a = *m;
        a->type = m->type == SYM_MSG_EXPORT ? SYM_MSG_EXPORTED : SYM_MSG_IMPORTED;
        a->shard = f->index;
        a->u.io.status = -1;
        snprintf(a->u.io.error, sizeof a->u.io.error, "fake shard %d is lost", f->index);
        return 1;
    }
    if (m->type == SYM_MSG_LOST_SEEN) {
        *a = (sym_msg){.type = SYM_MSG_LOST_SETTLED, .shard = f->index};
        return 1;
    }
    return 0; /* RELEASE: nothing to free any more */
}

/* LOST, then what it took and did not answer fails, in the order taken. */
static void go_lost(fake_shard *f, sym_mailbox *outbox) {
    sym_msg a = {.type = SYM_MSG_LOST, .shard = f->index};
    sym_mailbox_push(outbox, &a);
    const msg_list *l[2] = {&f->sent, &f->kept};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < l[k]->n; i++)
            if (lost_answer(f, &l[k]->m[i], &a)) sym_mailbox_push(outbox, &a);
    f->sent.n = f->kept.n = 0;
}

static void fake_run(void *ctx, sym_mailbox *inbox, sym_mailbox *outbox, sym_doorbell *bell) {
    fake_shard *f = ctx;
    sym_err e = {{0}};
    int lost = 0;
    if (sym_shard_start(f->inner, &e)) {
        fprintf(stderr, "fake shard %d: %s\n", f->index, e.msg);
        atomic_store(&f->lose, 1);
    }
    sym_msg m, a;
    for (;;) {
        unsigned seen = sym_doorbell_seq(bell);
        int got = 0;
        if (!lost && atomic_load(&f->lose)) go_lost(f, outbox), lost = 1;
        while (!lost && sym_mailbox_pop(sym_shard_outbox(f->inner), &m)) {
            got = 1;
            list_answered(&f->sent, &m);
            sym_mailbox_push(outbox, &m);
        }
        while (sym_mailbox_pop(inbox, &m)) {
            got = 1;
            if (m.type == SYM_MSG_STOP) {
                sym_shard_stop(f->inner);
                sym_shard_join(f->inner);
                return;
            }
            if (lost) {
                if (lost_answer(f, &m, &a)) sym_mailbox_push(outbox, &a);
                continue;
            }
            int keep = atomic_load(&f->hold);
            if (keep && m.type == SYM_MSG_STEP_REQ) atomic_fetch_add(&f->taken, 1);
            if (keep || m.type == SYM_MSG_STEP_REQ || m.type == SYM_MSG_EXPORT || m.type == SYM_MSG_IMPORT)
                if (list_push(keep ? &f->kept : &f->sent, &m)) {
                    fprintf(stderr, "fake shard %d: out of memory: lost\n", f->index);
                    atomic_store(&f->lose, 1);
                }
            if (!keep) sym_mailbox_push(sym_shard_inbox(f->inner), &m);
        }
        /* the inner shard's answers ring its own bell, not this one: a
         * short wait picks them up */
        if (!got) sym_doorbell_wait(bell, seen, 1000000);
    }
}

static void fake_paging(void *ctx, sym_paging_stats *out) { sym_shard_paging(((fake_shard *)ctx)->inner, out); }

static void fake_destroy(void *ctx) {
    fake_shard *f = ctx;
    sym_shard_join_destroy(f->inner);
    f->inner = NULL;
    sym_doorbell_destroy(&f->bell);
    free(f->sent.m), free(f->kept.m);
    f->sent = f->kept = (msg_list){0};
}

static sym_shard *fake_connect(void *ctx, const sym_shard_params *p, const char *endpoint, sym_doorbell *router_bell,
                               sym_slot_pool *slots, size_t *slot_bytes, size_t *elem_size, sym_err *e) {
    (void)endpoint;
    sym_fake_remotes *set = ctx;
    if (p->index < 0 || p->index >= SYM_MAX_SHARDS || set->shard[p->index].inner)
        return sym_fail(e, "fake shard %d: no such shard, or connected already", p->index), NULL;
    fake_shard *f = &set->shard[p->index];
    memset(f, 0, sizeof *f);
    f->set = set, f->index = p->index;
    atomic_init(&f->hold, 0), atomic_init(&f->lose, 0), atomic_init(&f->taken, 0);
    sym_backend *b = sym_echo_backend_create(set->model, sym_config_slots_per_shard(set->cfg), set->cfg->max_batch, e);
    if (!b) return NULL;
    *slot_bytes = b->slot_bytes, *elem_size = b->state_elem_size;
    sym_doorbell_init(&f->bell);
    if (!(f->inner = sym_shard_create(p, b, &f->bell, slots, e))) {
        sym_backend_destroy(b);
        sym_doorbell_destroy(&f->bell);
        return NULL;
    }
    sym_shard_remote r = {.ctx = f, .run = fake_run, .paging = fake_paging, .destroy = fake_destroy};
    sym_shard *s = sym_shard_create_remote(p, &r, router_bell, e);
    if (!s) fake_destroy(f);
    return s;
}

sym_fake_remotes *sym_fake_remotes_create(const sym_model_config *model, const sym_config *cfg) {
    sym_fake_remotes *f = calloc(1, sizeof *f);
    if (f) f->model = model, f->cfg = cfg;
    return f;
}

void sym_fake_remotes_free(sym_fake_remotes *f) { free(f); }

sym_shard_connector sym_fake_remotes_connector(sym_fake_remotes *f) {
    return (sym_shard_connector){.fn = fake_connect, .ctx = f, .free = NULL};
}

void sym_fake_remote_hold(sym_fake_remotes *f, int shard) { atomic_store(&f->shard[shard].hold, 1); }

int sym_fake_remote_taken(sym_fake_remotes *f, int shard) { return atomic_load(&f->shard[shard].taken); }

void sym_fake_remote_lose(sym_fake_remotes *f, int shard) { atomic_store(&f->shard[shard].lose, 1); }
