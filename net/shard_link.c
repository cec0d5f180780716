/* The router's link to a shard process; see shard_link.h. Two threads:
 * the shard's own (link_run: the inbox to the transport, heartbeats) and
 * a receiver (rx_main: the transport to the outbox); the transport is the
 * nanomsg socket or a shared-memory ring (shard_transport.h). The outbox
 * has one producer at a time: the receiver while the link lives; once it
 * is lost, the receiver fails what was in flight and exits, and link_run
 * (after joining it) answers every later message itself. */
#include "net/shard_link.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pair.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "actors/engine.h"
#include "common/clock.h"
#include "common/log.h"
#include "net/shard_transport.h"
#include "net/shard_wire.h"
#include "state/fingerprint.h"

typedef struct {
    uint64_t fingerprint; /* the engine's (state/fingerprint.h) */
    int heartbeat_ms, timeout_ms, join_timeout_ms;
    int shm;          /* an ipc:// endpoint's frames through a shared-memory ring */
    uint64_t spin_ns; /* its reader's (and a writer's without room) poll before sleeping */
} sym_shard_link_opts;

typedef struct {
    int sym, next;
    uint64_t uid, t_submit_ns;
} in_flight;

typedef struct {
    sym_shard_transport tp; /* tp.sock: the nanomsg socket (-1: none) */
    int index;
    char endpoint[SYM_ENDPOINT_MAX];
    sym_slot_pool *slots;
    size_t slot_bytes;
    int n_ids, heartbeat_ms, timeout_ms;
    sym_shard_params p;     /* as connected, for joining again */
    sym_shard_link_opts o;
    uint64_t session; /* this session's number (shard_wire.h), new at each connection */
    uint64_t tx_seq;  /* link_run's */
    uint64_t rx_seq; /* rx_main's */
    sym_mailbox *outbox;
    sym_doorbell *inbox_bell;
    pthread_t rx;
    int rx_running; /* link_run's view: started and not joined */
    int seen_early; /* link_run's: the router's LOST_SEEN came while the session loop still ran */
    atomic_int stop_sent;
    /* a slot's bytes arriving (rx_main's): buffer, bytes so far */
    int rx_buf;
    size_t rx_got;

    pthread_mutex_t mu; /* everything below */
    int lost;
    char why[200];
    sym_paging_stats pg;
    in_flight *fl; /* requests sent and not answered, a FIFO per symbol */
    int fl_cap, fl_free, *fl_head, *fl_tail;
    sym_msg slot_wait[SYM_SLOT_POOL_MAX]; /* EXPORT and IMPORT sent and not answered */
    int n_slot_wait;
} shard_link;

static void declare_lost(shard_link *l, const char *why) {
    pthread_mutex_lock(&l->mu);
    if (!l->lost) {
        l->lost = 1;
        size_t n = strnlen(why, sizeof l->why - 1); /* a longer reason is cut, as the log line shows it whole */
        memcpy(l->why, why, n);
        l->why[n] = '\0';
        sym_error("shard %d at %s is lost: %s; the state of its symbols is gone with it", l->index, l->endpoint, why);
    }
    pthread_mutex_unlock(&l->mu);
}

static int is_lost(shard_link *l) {
    pthread_mutex_lock(&l->mu);
    int v = l->lost;
    pthread_mutex_unlock(&l->mu);
    return v;
}

/* --- what is in flight ---------------------------------------------------- */

/* 0 tracked; 1 the link is lost (not tracked: the caller answers it). */
static int track(shard_link *l, const sym_msg *m) {
    pthread_mutex_lock(&l->mu);
    int rc = l->lost;
    if (!rc && m->type == SYM_MSG_STEP_REQ) {
        if (l->fl_free < 0) { /* more than the router's credit: not a router we know */
            pthread_mutex_unlock(&l->mu);
            declare_lost(l, "more requests in flight than the router's credit");
            return 1;
        }
        int i = l->fl_free;
        l->fl_free = l->fl[i].next;
        l->fl[i] = (in_flight){.sym = m->sym, .next = -1, .uid = m->u.req.uid, .t_submit_ns = m->u.req.t_submit_ns};
        if (l->fl_tail[m->sym] >= 0) l->fl[l->fl_tail[m->sym]].next = i;
        else l->fl_head[m->sym] = i;
        l->fl_tail[m->sym] = i;
    } else if (!rc && (m->type == SYM_MSG_EXPORT || m->type == SYM_MSG_IMPORT)) {
        if (l->n_slot_wait == SYM_SLOT_POOL_MAX) rc = -1;
        else l->slot_wait[l->n_slot_wait++] = *m;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc < 0) declare_lost(l, "more slot messages in flight than slot buffers");
    return rc != 0;
}

/* An answer arrived: what it answers leaves the books. -1 when it answers
 * nothing sent. */
static int settle(shard_link *l, const sym_msg *m) {
    int rc = -1;
    pthread_mutex_lock(&l->mu);
    if (m->type == SYM_MSG_DONE) { /* the oldest of its symbol's, as a shard answers them; else by uid */
        for (int prev = -1, i = l->fl_head[m->sym]; i >= 0; prev = i, i = l->fl[i].next) {
            if (l->fl[i].uid != m->u.pred.uid) continue;
            if (prev < 0) l->fl_head[m->sym] = l->fl[i].next;
            else l->fl[prev].next = l->fl[i].next;
            if (l->fl_tail[m->sym] == i) l->fl_tail[m->sym] = prev;
            l->fl[i].next = l->fl_free;
            l->fl_free = i;
            rc = 0;
            break;
        }
    } else {
        int want = m->type == SYM_MSG_EXPORTED ? SYM_MSG_EXPORT : SYM_MSG_IMPORT;
        for (int k = 0; k < l->n_slot_wait; k++) {
            const sym_msg *w = &l->slot_wait[k];
            if (w->type == want && w->sym == m->sym && w->token == m->token && w->u.io.buf == m->u.io.buf) {
                l->slot_wait[k] = l->slot_wait[--l->n_slot_wait];
                rc = 0;
                break;
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* The answer a lost shard gives m (a request or a slot message). */
static int lost_answer(shard_link *l, const sym_msg *m, sym_msg *a) {
    char why[200];
    pthread_mutex_lock(&l->mu);
    snprintf(why, sizeof why, "%s", l->why);
    pthread_mutex_unlock(&l->mu);
    if (m->type == SYM_MSG_STEP_REQ) {
        *a = (sym_msg){.type = SYM_MSG_DONE, .sym = m->sym, .shard = l->index, .batch = 1};
        a->u.pred.uid = m->u.req.uid;
        a->u.pred.status = -1;
        a->u.pred.t_submit_ns = m->u.req.t_submit_ns;
        a->u.pred.t_done_ns = a->t_step_ns = sym_now_ns();
        snprintf(a->u.pred.error, sizeof a->u.pred.error,
                 "shard %d is lost (%.50s): the state of %.30s is gone; not answered", l->index, why,
                 m->u.req.symbol);
        return 1;
    }
    if (m->type == SYM_MSG_EXPORT || m->type == SYM_MSG_IMPORT) {
        *a = *m;
        a->type = m->type == SYM_MSG_EXPORT ? SYM_MSG_EXPORTED : SYM_MSG_IMPORTED;
        a->shard = l->index;
        a->u.io.status = -1;
        snprintf(a->u.io.error, sizeof a->u.io.error, "shard %d at %.60s is lost (%.60s)", l->index, l->endpoint, why);
        return 1;
    }
    return 0; /* RELEASE: nothing to free any more */
}

/* The receiver's last act on a lost link: everything in flight answered. */
static void fail_in_flight(shard_link *l) {
    sym_msg m, a;
    pthread_mutex_lock(&l->mu);
    for (int s = 0; s < l->n_ids; s++) {
        for (int i = l->fl_head[s]; i >= 0; i = l->fl[i].next) {
            m = (sym_msg){.type = SYM_MSG_STEP_REQ, .sym = s};
            m.u.req.uid = l->fl[i].uid;
            m.u.req.t_submit_ns = l->fl[i].t_submit_ns;
            pthread_mutex_unlock(&l->mu);
            lost_answer(l, &m, &a);
            sym_mailbox_push(l->outbox, &a);
            pthread_mutex_lock(&l->mu);
        }
        l->fl_head[s] = l->fl_tail[s] = -1;
    }
    int n = l->n_slot_wait;
    sym_msg waiting[SYM_SLOT_POOL_MAX];
    memcpy(waiting, l->slot_wait, (size_t)n * sizeof *waiting);
    l->n_slot_wait = 0;
    pthread_mutex_unlock(&l->mu);
    for (int k = 0; k < n; k++)
        if (lost_answer(l, &waiting[k], &a)) sym_mailbox_push(l->outbox, &a);
}

static int in_flight_count(shard_link *l) {
    pthread_mutex_lock(&l->mu);
    int n = l->n_slot_wait;
    for (int s = 0; s < l->n_ids && !n; s++) n += l->fl_head[s] >= 0;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* --- the receiver ---------------------------------------------------------- */

/* 0 read, 1 BYE, 2 not of this session (dropped), -1 a frame this link
 * cannot take (e says why). */
static int take_frame(shard_link *l, const void *buf, size_t len, sym_err *e) {
    sym_wire_in in;
    if (sym_wire_open(&in, buf, len, e)) return -1;
    int k = sym_wire_in_session(&in, l->session, &l->rx_seq, e);
    if (k) return k < 0 ? -1 : 2; /* 2: sent to a router before us on this socket */
    switch (in.kind) {
    case SYM_WIRE_MSGS: {
        uint32_t n;
        if (sym_wire_get(&in, &n, 4, e)) return -1;
        for (uint32_t k = 0; k < n; k++) {
            sym_msg m;
            if (sym_wire_get_msg(&in, &m, e)) return -1;
            if ((m.type != SYM_MSG_DONE && m.type != SYM_MSG_EXPORTED && m.type != SYM_MSG_IMPORTED) || m.sym < 0 ||
                m.sym >= l->n_ids)
                return sym_fail(e, "a message of type %d for symbol id %d from a shard", m.type, m.sym);
            if (settle(l, &m)) return sym_fail(e, "an answer (type %d, symbol id %d) to nothing sent", m.type, m.sym);
            if (m.type == SYM_MSG_EXPORTED && m.u.io.status == 0) {
                if (m.u.io.buf != l->rx_buf || l->rx_got != l->slot_bytes)
                    return sym_fail(e, "an export of symbol id %d without its %zu bytes", m.sym, l->slot_bytes);
                l->rx_buf = -1, l->rx_got = 0;
            }
            m.shard = l->index;
            if (m.type == SYM_MSG_DONE) { /* its times on this host's clock: it ended now, after step_ns */
                uint64_t now = sym_now_ns();
                m.u.pred.t_done_ns = now;
                m.t_step_ns = m.step_ns < now ? now - m.step_ns : now;
                m.u.pred.error[sizeof m.u.pred.error - 1] = '\0';
            } else {
                m.u.io.error[sizeof m.u.io.error - 1] = '\0';
            }
            sym_mailbox_push(l->outbox, &m);
        }
        return 0;
    }
    case SYM_WIRE_BYTES: {
        int32_t b;
        uint64_t off, total;
        if (sym_wire_get(&in, &b, 4, e) || sym_wire_get(&in, &off, 8, e) || sym_wire_get(&in, &total, 8, e)) return -1;
        size_t n = (size_t)(in.end - in.p);
        int lent = 0;
        pthread_mutex_lock(&l->mu);
        for (int k = 0; k < l->n_slot_wait; k++)
            lent |= l->slot_wait[k].type == SYM_MSG_EXPORT && l->slot_wait[k].u.io.buf == b;
        pthread_mutex_unlock(&l->mu);
        if (!lent || total != l->slot_bytes || off != (off ? l->rx_got : 0) || (off && b != l->rx_buf) ||
            n > total - off)
            return sym_fail(e, "slot bytes (buffer %d, %llu of %llu at %llu) that no export asked for", b,
                            (unsigned long long)n, (unsigned long long)total, (unsigned long long)off);
        size_t have = 0;
        void *dst = off ? (void *)sym_slot_pool_bytes(l->slots, b, &have) : sym_slot_pool_reserve(l->slots, b, total);
        if (!dst) return sym_fail(e, "out of memory for a slot's bytes");
        memcpy((unsigned char *)dst + off, in.p, n);
        l->rx_buf = b, l->rx_got = off + n;
        return 0;
    }
    case SYM_WIRE_HEARTBEAT: {
        sym_paging_stats pg;
        if (sym_wire_get(&in, &pg, sizeof pg, e)) return -1;
        pthread_mutex_lock(&l->mu);
        l->pg = pg;
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    case SYM_WIRE_BYE: return 1;
    default: return sym_fail(e, "a frame of kind %d in a session", in.kind);
    }
}

static void *rx_main(void *arg) {
    shard_link *l = arg;
    uint64_t last = sym_now_ns(), timeout = (uint64_t)l->timeout_ms * 1000000u;
    char why[240];
    for (;;) {
        const void *buf = NULL;
        size_t len = 0;
        sym_err e = {{0}};
        int got = sym_transport_recv(&l->tp, &buf, &len, &e);
        uint64_t now = sym_now_ns();
        if (got <= 0) {
            if (is_lost(l)) break;
            if (got == 0) {
                if (now - last <= timeout) continue;
                if (atomic_load(&l->stop_sent) && !in_flight_count(l)) { /* its BYE went missing: nothing is lost */
                    sym_info("shard %d at %s: no goodbye after STOP, with nothing in flight", l->index, l->endpoint);
                    break;
                }
                snprintf(why, sizeof why, "no message for %d ms", l->timeout_ms);
            } else {
                snprintf(why, sizeof why, "%.200s", e.msg);
            }
            declare_lost(l, why);
            break;
        }
        int rc = take_frame(l, buf, len, &e);
        if (rc != 2) last = now; /* only this session's frames say the shard is there */
        if (rc == 1) break;
        if (rc < 0) {
            snprintf(why, sizeof why, "%.200s", e.msg);
            declare_lost(l, why);
            break;
        }
    }
    if (is_lost(l)) {
        sym_msg lost = {.type = SYM_MSG_LOST, .shard = l->index};
        sym_mailbox_push(l->outbox, &lost); /* before the failed answers: the router counts the loss first */
        fail_in_flight(l);
    }
    sym_doorbell_ring(l->inbox_bell);
    return NULL;
}

/* --- the sender (the shard's thread) ---------------------------------------- */

static int send_frame(shard_link *l, const sym_wire_out *o) {
    int er = sym_transport_send(&l->tp, o->p, o->len);
    if (!er) return 0;
    char why[200];
    snprintf(why, sizeof why, "send: %s", er == ETIMEDOUT ? "the shard did not take a frame in time" : nn_strerror(er));
    declare_lost(l, why);
    return -1;
}

/* An IMPORT's bytes, in chunks, before the frame that names them. */
static int send_bytes(shard_link *l, sym_wire_out *o, int32_t buf) {
    size_t len = 0;
    const unsigned char *p = sym_slot_pool_bytes(l->slots, buf, &len);
    if (!p || len != l->slot_bytes) {
        declare_lost(l, "an import whose buffer does not hold one slot");
        return -1;
    }
    for (uint64_t off = 0, total = len; off < total; off += SYM_WIRE_CHUNK_BYTES) {
        size_t n = total - off < SYM_WIRE_CHUNK_BYTES ? (size_t)(total - off) : SYM_WIRE_CHUNK_BYTES;
        if (sym_wire_begin(o, SYM_WIRE_BYTES, l->session, ++l->tx_seq) || sym_wire_put(o, &buf, 4) || sym_wire_put(o, &off, 8) ||
            sym_wire_put(o, &total, 8) || sym_wire_put(o, p + off, n)) {
            declare_lost(l, "out of memory for a frame");
            return -1;
        }
        if (send_frame(l, o)) return -1;
    }
    return 0;
}

static int rejoin(shard_link *l, sym_mailbox *inbox);

/* After the link is lost: the receiver has answered what was in flight;
 * this thread answers the rest, and once the router has seen the loss
 * (LOST_SEEN: it sends no request of a lost symbol after it) tells it
 * that everything sent before has had its answer (LOST_SETTLED) and tries
 * to join the shard process again, as a new shard (JOINED once it is).
 * This thread is the outbox's one producer here. 0 after STOP; 1 joined. */
static int run_lost(shard_link *l, sym_mailbox *inbox, sym_doorbell *bell, const sym_msg *first) {
    if (l->rx_running) pthread_join(l->rx, NULL), l->rx_running = 0; /* what was in flight is answered */
    sym_transport_end(&l->tp); /* the session's ring unmapped: a new session makes a new one */
    if (l->tp.sock >= 0) nn_close(l->tp.sock), l->tp.sock = -1; /* the shard process sees the session end */
    sym_msg m, a;
    int seen_by_router = l->seen_early;
    l->seen_early = 0;
    if (seen_by_router) {
        a = (sym_msg){.type = SYM_MSG_LOST_SETTLED, .shard = l->index};
        sym_mailbox_push(l->outbox, &a);
    }
    if (first) {
        if (first->type == SYM_MSG_STOP) return 0;
        if (lost_answer(l, first, &a)) sym_mailbox_push(l->outbox, &a);
    }
    uint64_t next_try = 0, retry = (uint64_t)l->timeout_ms * 1000000u;
    for (;;) {
        unsigned seen = sym_doorbell_seq(bell);
        while (sym_mailbox_pop(inbox, &m)) {
            if (m.type == SYM_MSG_STOP) return 0;
            if (m.type == SYM_MSG_LOST_SEEN) {
                seen_by_router = 1;
                a = (sym_msg){.type = SYM_MSG_LOST_SETTLED, .shard = l->index};
                sym_mailbox_push(l->outbox, &a);
            } else if (lost_answer(l, &m, &a)) {
                sym_mailbox_push(l->outbox, &a);
            }
        }
        uint64_t now = sym_now_ns();
        if (seen_by_router && now >= next_try) {
            int rc = rejoin(l, inbox);
            if (rc == 0) {
                a = (sym_msg){.type = SYM_MSG_JOINED, .shard = l->index};
                sym_mailbox_push(l->outbox, &a); /* before the receiver starts: one producer at a time */
                return 1;
            }
            if (rc == 2) return 0; /* a STOP came while it waited */
            next_try = (now = sym_now_ns()) + retry;
        }
        sym_doorbell_wait(bell, seen, seen_by_router ? next_try - now : 0);
    }
}

/* One session, until STOP (0) or the link is lost (1; *pending: a message
 * taken from the inbox and not in the books, to be answered as lost, or
 * type 0). */
static int run_session(shard_link *l, sym_mailbox *inbox, sym_doorbell *bell, sym_msg *pending) {
    sym_wire_out o = {0};
    uint64_t last_sent = sym_now_ns(), hb = (uint64_t)l->heartbeat_ms * 1000000u;
    int rc = 1;
    for (;;) {
        unsigned seen = sym_doorbell_seq(bell);
        sym_msg m;
        int got = 0, stop = 0, failed = 0;
        if (sym_wire_begin(&o, SYM_WIRE_MSGS, l->session, l->tx_seq + 1)) failed = 1;
        while (!failed && o.n < SYM_WIRE_BATCH && sym_mailbox_pop(inbox, &m)) {
            got = 1;
            if (m.type == SYM_MSG_LOST_SEEN) { /* the router saw this session's loss before this loop did */
                l->seen_early = 1;
                continue;
            }
            if (track(l, &m)) { /* lost meanwhile: m is not in the books, so it is answered as lost */
                *pending = m;
                goto out;
            }
            if (m.type == SYM_MSG_IMPORT) { /* its bytes go first, outside this frame */
                if (o.n && (l->tx_seq++, send_frame(l, &o))) break;
                if (send_bytes(l, &o, m.u.io.buf) || sym_wire_begin(&o, SYM_WIRE_MSGS, l->session, l->tx_seq + 1)) break;
            }
            if (sym_wire_put_msg(&o, &m)) failed = 1;
            if (m.type == SYM_MSG_STOP) stop = 1, atomic_store(&l->stop_sent, 1);
            if (stop) break;
        }
        if (failed) declare_lost(l, "out of memory for a frame");
        if (!is_lost(l) && o.n) {
            l->tx_seq++;
            if (!send_frame(l, &o)) last_sent = sym_now_ns();
        }
        if (is_lost(l)) {
            if (stop) *pending = m;
            goto out;
        }
        if (stop) { /* the receiver ends at the shard's BYE (or when it gives up) */
            pthread_join(l->rx, NULL);
            l->rx_running = 0;
            rc = 0;
            goto out;
        }
        if (got) continue;
        uint64_t now = sym_now_ns();
        if (now - last_sent >= hb) {
            if (sym_wire_begin(&o, SYM_WIRE_HEARTBEAT, l->session, ++l->tx_seq) || send_frame(l, &o)) continue;
            last_sent = now;
            continue;
        }
        sym_doorbell_wait(bell, seen, hb - (now - last_sent));
    }
out:
    sym_wire_out_free(&o);
    return rc;
}

static void link_run(void *ctx, sym_mailbox *inbox, sym_mailbox *outbox, sym_doorbell *bell) {
    shard_link *l = ctx;
    l->outbox = outbox, l->inbox_bell = bell;
    for (;;) {
        sym_msg pending = {0};
        if (pthread_create(&l->rx, NULL, rx_main, l)) {
            declare_lost(l, "cannot start the receiving thread");
            sym_msg lost = {.type = SYM_MSG_LOST, .shard = l->index};
            sym_mailbox_push(outbox, &lost);
        } else {
            l->rx_running = 1;
            if (!run_session(l, inbox, bell, &pending)) return;
        }
        if (!run_lost(l, inbox, bell, pending.type ? &pending : NULL)) return;
    }
}

static void link_paging(void *ctx, sym_paging_stats *out) {
    shard_link *l = ctx;
    pthread_mutex_lock(&l->mu);
    *out = l->pg;
    pthread_mutex_unlock(&l->mu);
}

static void link_destroy(void *ctx) {
    shard_link *l = ctx;
    if (!l) return;
    sym_transport_end(&l->tp);
    if (l->tp.sock >= 0) nn_close(l->tp.sock);
    free(l->fl), free(l->fl_head), free(l->fl_tail);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* --- connecting ------------------------------------------------------------- */

static int set_ms(int sock, int opt, int ms) { return nn_setsockopt(sock, NN_SOL_SOCKET, opt, &ms, sizeof ms); }

/* HELLO, and the shard's WELCOME (or REFUSE). */
/* A number no earlier session of this shard process has had. */
static uint64_t new_session(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v || !v) { /* no entropy: the clock and the process */
        static atomic_uint_fast64_t n;
        v = sym_now_ns() ^ ((uint64_t)getpid() << 32) ^ (atomic_fetch_add(&n, 1) * 0x9e3779b97f4a7c15ull);
        v ^= v >> 31, v *= 0xbf58476d1ce4e5b9ull, v ^= v >> 29;
    }
    return v;
}

/* A handshake's wait for the shard process: nn_send and nn_recv in slices
 * of JOIN_SLICE_MS, up to shards.join_timeout_ms in all. The process may
 * not listen yet, or may be building its part of the engine, which it does
 * before it answers (seconds at full size): neither is a loss. A slice is
 * short so that a rejoin answers its inbox while it waits. */
#define JOIN_SLICE_MS 100
typedef struct {
    uint64_t start, deadline, next_note;
    int notes;                             /* say every 10 s what it waits for */
    int (*stop)(shard_link *l, void *ctx); /* between slices: 1 to give up (rejoin: a STOP came) */
    void *ctx;
    int stopped, er; /* er: the last nanomsg error */
} join_wait;

/* After a slice that failed: 1 to wait on. */
static int join_wait_on(shard_link *l, join_wait *w, const char *what) {
    int er = w->er = nn_errno();
    if (er != ETIMEDOUT && er != EAGAIN && er != EINTR) return 0;
    uint64_t now = sym_now_ns();
    if (w->stop && w->stop(l, w->ctx)) return w->stopped = 1, 0;
    if (now >= w->deadline) return 0;
    if (w->notes && now >= w->next_note) {
        sym_info("shard %d: waiting for the shard process at %s to %s (%.0f s of shards.join_timeout_ms)", l->index,
                 l->endpoint, what, (double)(now - w->start) * 1e-9);
        w->next_note = now + 10000000000ull;
    }
    return 1;
}

/* A PAIR socket connected to endpoint (connecting goes on in the
 * background until a peer listens) with the handshake's slices as its
 * timeouts, or -1 (errno as nanomsg set it). */
static int link_socket(const char *endpoint) {
    int sock = nn_socket(AF_SP, NN_PAIR), most = (int)sym_wire_max_frame();
    if (sock < 0) return -1;
    if (nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &most, sizeof most) < 0 || nn_connect(sock, endpoint) < 0 ||
        set_ms(sock, NN_SNDTIMEO, JOIN_SLICE_MS) < 0 || set_ms(sock, NN_RCVTIMEO, JOIN_SLICE_MS) < 0) {
        int er = errno;
        nn_close(sock);
        errno = er;
        return -1;
    }
    return sock;
}

/* HELLO, then WELCOME or REFUSE, on l->tp.sock (from link_socket). 0,
 * with *ring the session's shared-memory region when the shard process
 * mapped it (else NULL: frames over the socket); -1 (e says why;
 * w->stopped set when w->stop gave up).
 *
 * For an ipc:// endpoint (the same host) the HELLO offers a new region
 * (net/shm_ring.h), unless shards.shm is off; its name is removed once the
 * answer comes or none does, so that nothing is left of it when either
 * process ends. A shard process that cannot map it (or whose shards.shm is
 * off) says so in its WELCOME and logs why: the frames go over the socket.
 *
 * The HELLO goes again every heartbeat_ms until an answer comes. The
 * shard process's PAIR socket takes one connection at a time and drops a
 * new one while it holds another (a connection of this link before a
 * loss, or of an earlier router, whose end it has not seen yet): nanomsg's
 * send can have put the HELLO on a connection that the shard process then
 * drops, and nothing says so. The next connection carries the next copy;
 * the shard process takes a copy of the HELLO of the session it serves as
 * nothing (net/shard_server.c).
 *
 * A connection to a local port nobody listens on yet can, while it
 * retries, be TCP's self-connect (the source port chosen equal to the
 * target's): the router then hears its own HELLO, and connects again. */
static int handshake(shard_link *l, const sym_shard_params *p, const sym_shard_link_opts *o, join_wait *w, size_t *elem,
                     sym_shm **ring, sym_err *e) {
    sym_wire_out out = {0};
    l->session = new_session();
    *ring = NULL;
    sym_wire_hello h = {.version = SYM_WIRE_VERSION, .msg_size = sizeof(sym_msg), .fingerprint = o->fingerprint,
                        .index = p->index, .max_symbols = p->n_ids, .queue_capacity = p->queue_cap,
                        .max_batch = p->max_batch, .rows_per_symbol = p->rows_per_symbol, .features = p->features,
                        .heartbeat_ms = o->heartbeat_ms, .timeout_ms = o->timeout_ms};
    sym_shm *shm = NULL;
    if (o->shm && !strncmp(l->endpoint, "ipc://", 6)) {
        sym_err se = {{0}};
        /* a router killed inside a handshake, before its shard process
         * mapped the region, left its name: older than any live one's */
        double twice_join_s = 2e-3 * o->join_timeout_ms, stale_s = twice_join_s > 60 ? twice_join_s : 60;
        int swept = sym_shm_sweep(stale_s);
        if (swept > 0)
            sym_info("shard %d: removed %d shared-memory region%s left by routers gone", l->index, swept,
                     swept > 1 ? "s" : "");
        if ((shm = sym_shm_create(sym_wire_max_frame(), o->spin_ns, &se)))
            snprintf(h.shm, sizeof h.shm, "%s", sym_shm_name(shm));
        else
            sym_warn("shard %d at %s: no shared-memory ring (%s): its frames go over nanomsg", l->index, l->endpoint, se.msg);
    }
    if (sym_wire_begin(&out, SYM_WIRE_HELLO, l->session, ++l->tx_seq) || sym_wire_put(&out, &h, sizeof h)) {
        sym_wire_out_free(&out);
        sym_shm_close(shm);
        return sym_fail(e, "out of memory");
    }
    w->start = sym_now_ns();
    w->deadline = w->start + (uint64_t)o->join_timeout_ms * 1000000u;
    w->next_note = w->start + 5000000000ull;
    void *buf = NULL;
    sym_wire_in in;
    const char *failed = NULL; /* what did not happen in time */
    uint64_t next_hello = 0, again = (uint64_t)o->heartbeat_ms * 1000000u;
    for (int n, sent = 0;;) {
        if (sym_now_ns() >= next_hello) {
            if (nn_send(l->tp.sock, out.p, out.len, 0) >= 0) {
                sent = 1, next_hello = sym_now_ns() + again;
            } else if (!sent) { /* nothing can answer before one copy is out */
                if (join_wait_on(l, w, "take the handshake")) continue;
                failed = "no shard process took the handshake";
                break;
            }
        }
        if ((n = nn_recv(l->tp.sock, &buf, NN_MSG, 0)) < 0) {
            if (join_wait_on(l, w, "answer")) continue;
            failed = "the shard process did not answer";
            break;
        }
        int ours = !sym_wire_open(&in, buf, (size_t)n, e) && in.session == l->session;
        if (ours && in.kind != SYM_WIRE_HELLO) break;
        nn_freemsg(buf); /* frames of an earlier session (to a router gone) may come first: not ours */
        if (!ours) continue;
        int sock = link_socket(l->endpoint); /* its own HELLO: connected to itself */
        if (sock < 0) {
            sym_wire_out_free(&out);
            sym_shm_close(shm);
            return sym_fail(e, "nanomsg socket: %s", nn_strerror(nn_errno()));
        }
        nn_close(l->tp.sock);
        l->tp.sock = sock, sent = 0, next_hello = 0;
        sym_info("shard %d at %s: connected to itself (TCP self-connect while nothing listened); connecting again",
                 l->index, l->endpoint);
    }
    sym_wire_out_free(&out);
    sym_shm_unlink(shm); /* mapped by now, or never will be */
    if (failed) {
        sym_shm_close(shm);
        return sym_fail(e, "%s within %d ms (shards.join_timeout_ms): %s", failed, o->join_timeout_ms,
                        w->stopped ? "stopped" : nn_strerror(w->er));
    }
    int rc = 0;
    uint64_t mapped = 0;
    if (in.seq != 1) rc = sym_fail(e, "its answer is frame %llu, not 1", (unsigned long long)in.seq);
    if (!rc && in.kind == SYM_WIRE_REFUSE) {
        rc = sym_fail(e, "refused by the shard process: %.*s", (int)(in.end - in.p), (const char *)in.p);
    } else if (!rc && in.kind != SYM_WIRE_WELCOME) {
        rc = sym_fail(e, "its answer is a frame of kind %d, not a welcome", in.kind);
    } else if (!rc) {
        uint64_t sb, el;
        if (!(rc = sym_wire_get(&in, &sb, 8, e) || sym_wire_get(&in, &el, 8, e) || sym_wire_get(&in, &mapped, 8, e))) {
            l->slot_bytes = (size_t)sb, *elem = (size_t)el;
            l->rx_seq = 1;
        }
    }
    nn_freemsg(buf);
    if (!rc && shm && mapped == 1) {
        *ring = shm;
    } else {
        if (!rc && shm)
            sym_warn("shard %d at %s: the shard process did not map the shared-memory ring (its log says why): its "
                     "frames go over nanomsg", l->index, l->endpoint);
        sym_shm_close(shm);
    }
    return rc ? -1 : 0;
}

/* A session begun: its frames over the socket or through ring (taken),
 * a receive waking at least once per heartbeat to check the time; the
 * books as new (nothing in flight, no slot bytes awaited). */
static void session_begin(shard_link *l, sym_shm *ring) {
    sym_transport_begin(&l->tp, ring, l->heartbeat_ms, l->timeout_ms);
    pthread_mutex_lock(&l->mu);
    l->lost = 0, l->why[0] = '\0';
    for (int i = 0; i < l->fl_cap; i++) l->fl[i].next = i + 1 < l->fl_cap ? i + 1 : -1;
    l->fl_free = 0;
    for (int s = 0; s < l->n_ids; s++) l->fl_head[s] = l->fl_tail[s] = -1;
    l->n_slot_wait = 0;
    pthread_mutex_unlock(&l->mu);
    l->rx_buf = -1, l->rx_got = 0;
    atomic_store(&l->stop_sent, 0);
}

/* While a rejoin waits: the inbox answered as run_lost does; 1 at a STOP. */
static int rejoin_drain(shard_link *l, void *ctx) {
    sym_mailbox *inbox = ctx;
    sym_msg m, a;
    while (sym_mailbox_pop(inbox, &m)) {
        if (m.type == SYM_MSG_STOP) return 1;
        if (m.type != SYM_MSG_LOST_SEEN && lost_answer(l, &m, &a)) sym_mailbox_push(l->outbox, &a);
    }
    return 0;
}

/* A fresh session with the shard process, on a new socket: the link as
 * new (nothing in flight, every frame counted from 1). 0; 1 (the process
 * is not back yet, or refused: logged); 2 (a STOP came while it waited). */
static int rejoin(shard_link *l, sym_mailbox *inbox) {
    size_t old_bytes = l->slot_bytes, elem = 0;
    sym_err e = {{0}};
    sym_shm *ring = NULL;
    if ((l->tp.sock = link_socket(l->endpoint)) < 0) return 1;
    l->tx_seq = 0;
    join_wait w = {.stop = rejoin_drain, .ctx = inbox};
    if (handshake(l, &l->p, &l->o, &w, &elem, &ring, &e) || l->slot_bytes != old_bytes) {
        sym_shm_close(ring);
        if (e.msg[0] && !strstr(e.msg, "within")) sym_warn("shard %d at %s: joining again: %s", l->index, l->endpoint, e.msg);
        else if (!e.msg[0]) sym_warn("shard %d at %s: joining again: %zu-byte states, not %zu", l->index, l->endpoint,
                                     l->slot_bytes, old_bytes);
        l->slot_bytes = old_bytes;
        nn_close(l->tp.sock), l->tp.sock = -1;
        return w.stopped ? 2 : 1;
    }
    session_begin(l, ring);
    sym_info("shard %d at %s: joined again, as a new, empty shard (a symbol whose state was lost with it gets one "
             "only from an import or a restore); frames through %s", l->index, l->endpoint, sym_transport_name(&l->tp));
    return 0;
}

static sym_shard *link_connect(void *ctx, const sym_shard_params *p, const char *endpoint, sym_doorbell *router_bell,
                               sym_slot_pool *slots, size_t *slot_bytes, size_t *elem_size, sym_err *e) {
    const sym_shard_link_opts *o = ctx;
    shard_link *l = calloc(1, sizeof *l);
    if (!l) return sym_fail(e, "out of memory"), NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->index = p->index, l->slots = slots, l->n_ids = p->n_ids, l->rx_buf = -1;
    l->heartbeat_ms = o->heartbeat_ms, l->timeout_ms = o->timeout_ms;
    l->p = *p, l->o = *o;
    l->p.state_dir = NULL;
    snprintf(l->endpoint, sizeof l->endpoint, "%s", endpoint);
    l->fl_cap = p->queue_cap + 64;
    l->fl = malloc((size_t)l->fl_cap * sizeof *l->fl);
    l->fl_head = malloc((size_t)l->n_ids * sizeof(int));
    l->fl_tail = malloc((size_t)l->n_ids * sizeof(int));
    l->tp.sock = -1;
    sym_shm *ring = NULL;
    if (!l->fl || !l->fl_head || !l->fl_tail) {
        sym_fail(e, "out of memory");
    } else if ((l->tp.sock = link_socket(endpoint)) < 0) {
        sym_fail(e, "%s: %s", endpoint, nn_strerror(nn_errno()));
    } else if (!handshake(l, p, o, &(join_wait){.notes = 1}, elem_size, &ring, e)) {
        session_begin(l, ring);
        *slot_bytes = l->slot_bytes;
        sym_shard_remote r = {.ctx = l, .run = link_run, .paging = link_paging, .destroy = link_destroy};
        sym_shard *s = sym_shard_create_remote(p, &r, router_bell, e);
        if (s) {
            sym_info("shard %d: the shard process at %s, %zu-byte states, frames through %s", p->index, endpoint,
                     l->slot_bytes, sym_transport_name(&l->tp));
            return s;
        }
    }
    link_destroy(l);
    return NULL;
}

int sym_shard_link_connector(const sym_config *cfg, int cuda, sym_shard_connector *out, sym_err *e) {
    sym_shard_link_opts *o = calloc(1, sizeof *o);
    if (!o) return sym_fail(e, "out of memory");
    o->heartbeat_ms = cfg->shard_heartbeat_ms;
    o->timeout_ms = cfg->shard_timeout_ms;
    o->join_timeout_ms = cfg->shard_join_timeout_ms;
    o->shm = cfg->shard_shm;
    o->spin_ns = (uint64_t)(cfg->shard_shm_spin_us * 1e3);
    if (sym_state_fingerprint(cfg, cuda, &o->fingerprint, e)) {
        free(o);
        return -1;
    }
    *out = (sym_shard_connector){.fn = link_connect, .ctx = o, .free = free};
    return 0;
}

sym_engine *sym_shard_link_engine(const sym_config *cfg, int cuda, sym_err *e) {
    if (!cfg->n_shard_endpoints) return sym_engine_create(cfg, e);
    sym_shard_connector c;
    if (sym_shard_link_connector(cfg, cuda, &c, e)) return NULL;
    return sym_engine_create_connected(cfg, &c, e);
}
