/* The shard process; see shard_server.h. In a session two threads move
 * frames: a receiver (rx_main: the transport into the shard's inbox, which
 * it alone feeds) and the caller's thread (serve_session: the shard's
 * outbox to the transport, heartbeats, the status line). The transport is
 * the socket, or the shared-memory ring the router offered
 * (shard_transport.h); the handshake is always on the socket. */
#include "net/shard_server.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/pair.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/model_backends.h"
#include "actors/shard.h"
#include "common/clock.h"
#include "common/log.h"
#include "net/metrics.h"
#include "net/shard_transport.h"
#include "net/shard_wire.h"
#include "state/fingerprint.h"

enum { RUNNING = 0, STOPPED = 1, LOST = 2 };

typedef struct {
    const sym_shard_server_opts *o;
    int sock;
    sym_shard_transport tp; /* the session's frames (tp.sock is sock) */
    sym_model_backends *mb;
    uint64_t fingerprint;
    /* the session */
    sym_shard *shard;
    sym_slot_pool pool;
    sym_doorbell bell; /* the shard's outbox rings it */
    int index, n_ids, features, heartbeat_ms, timeout_ms;
    size_t slot_bytes;
    uint64_t session; /* the router's number for this session (shard_wire.h) */
    uint64_t tx_seq, rx_seq;
    atomic_int state;     /* RUNNING, then STOPPED (STOP forwarded) or LOST, set by the receiver */
    atomic_int tx_failed; /* a send failed: the receiver ends the session */
    pthread_mutex_t mu;   /* the buffer maps */
    int local_of[SYM_SLOT_POOL_MAX]; /* the router's buffer -> ours (-1: none) */
    int router_of[SYM_SLOT_POOL_MAX];
    size_t got[SYM_SLOT_POOL_MAX]; /* an import's bytes so far, by the router's buffer */
    sym_metrics_loop pub;          /* what --metrics-port shows (the caller's thread) */
    int hello_waiting;             /* a new router's HELLO ended the session: it is in hello */
    int refused;                   /* the HELLO of session was refused */
    int listen_again;              /* the session was lost: its connection may be one the router has left */
    unsigned char hello[SYM_WIRE_HEADER_BYTES + sizeof(sym_wire_hello)];
    size_t hello_len;
} server;

/* A frame of the session, over its transport. */
static int send_out(server *s, const sym_wire_out *o) {
    int er = sym_transport_send(&s->tp, o->p, o->len);
    if (!er) return 0;
    if (!atomic_exchange(&s->tx_failed, 1)) sym_warn("shard: send to the router: %s", nn_strerror(er));
    return -1;
}

/* A handshake's answer (REFUSE, WELCOME): over the socket. */
static void send_simple(server *s, sym_wire_kind kind, uint64_t seq, const void *p, size_t n) {
    sym_wire_out o = {0};
    if (!sym_wire_begin(&o, kind, s->session, seq) && !sym_wire_put(&o, p, n))
        while (nn_send(s->sock, o.p, o.len, 0) < 0 && nn_errno() == EINTR) {
        }
    sym_wire_out_free(&o);
}

/* --- the receiver ------------------------------------------------------------ */

static int map_new(server *s, int rb, sym_err *e) {
    pthread_mutex_lock(&s->mu);
    int l = s->local_of[rb] >= 0 ? -2 : sym_slot_pool_acquire(&s->pool);
    if (l >= 0) s->local_of[rb] = l, s->router_of[l] = rb, s->got[rb] = 0;
    pthread_mutex_unlock(&s->mu);
    if (l == -2) return sym_fail(e, "router buffer %d is already in use here", rb);
    if (l < 0) return sym_fail(e, "no slot buffer free");
    return l;
}

/* A router's message, checked and made this process's (its buffer). */
static int take_msg(server *s, sym_msg *m, sym_err *e) {
    if (m->type == SYM_MSG_STOP) return 0;
    if (m->sym < 0 || m->sym >= s->n_ids) return sym_fail(e, "a message for symbol id %d (0..%d)", m->sym, s->n_ids - 1);
    switch (m->type) {
    case SYM_MSG_STEP_REQ:
        if (m->u.req.n_features != s->features)
            return sym_fail(e, "a request of %d features, the model takes %d", m->u.req.n_features, s->features);
        m->u.req.symbol[SYM_SYMBOL_MAX] = '\0';
        return 0;
    case SYM_MSG_EXPORT: {
        int rb = m->u.io.buf;
        if (rb < 0 || rb >= SYM_SLOT_POOL_MAX) return sym_fail(e, "an export into buffer %d", rb);
        int l = map_new(s, rb, e);
        if (l < 0) return -1;
        m->u.io.buf = l;
        return 0;
    }
    case SYM_MSG_IMPORT: {
        int rb = m->u.io.buf;
        if (rb < 0 || rb >= SYM_SLOT_POOL_MAX) return sym_fail(e, "an import from buffer %d", rb);
        pthread_mutex_lock(&s->mu);
        int l = s->local_of[rb];
        size_t got = s->got[rb];
        pthread_mutex_unlock(&s->mu);
        if (l < 0 || got != s->slot_bytes) return sym_fail(e, "an import from buffer %d without its %zu bytes", rb, s->slot_bytes);
        m->u.io.buf = l;
        m->u.io.symbol[SYM_SYMBOL_MAX] = '\0';
        return 0;
    }
    case SYM_MSG_RELEASE: return 0;
    default: return sym_fail(e, "a message of type %d from a router", m->type);
    }
}

static int take_bytes(server *s, sym_wire_in *in, sym_err *e) {
    int32_t rb;
    uint64_t off, total;
    if (sym_wire_get(in, &rb, 4, e) || sym_wire_get(in, &off, 8, e) || sym_wire_get(in, &total, 8, e)) return -1;
    size_t n = (size_t)(in->end - in->p);
    if (rb < 0 || rb >= SYM_SLOT_POOL_MAX || total != s->slot_bytes || n > total - off)
        return sym_fail(e, "slot bytes for buffer %d: %zu at %llu of %llu (a slot is %zu)", rb, n,
                        (unsigned long long)off, (unsigned long long)total, s->slot_bytes);
    int l;
    if (off == 0) {
        if ((l = map_new(s, rb, e)) < 0) return -1;
        if (!sym_slot_pool_reserve(&s->pool, l, total)) return sym_fail(e, "out of memory for a slot's bytes");
    } else {
        pthread_mutex_lock(&s->mu);
        l = s->local_of[rb];
        int in_order = l >= 0 && s->got[rb] == off;
        pthread_mutex_unlock(&s->mu);
        if (!in_order) return sym_fail(e, "slot bytes for buffer %d out of order", rb);
    }
    size_t have;
    unsigned char *dst = (unsigned char *)sym_slot_pool_bytes(&s->pool, l, &have);
    memcpy(dst + off, in->p, n);
    pthread_mutex_lock(&s->mu);
    s->got[rb] = off + n;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* 0 read; 1 STOP forwarded; 2 not of this session (dropped); -1 the
 * session cannot go on (e). */
static int take_frame(server *s, const void *buf, size_t len, sym_err *e) {
    sym_wire_in in;
    if (sym_wire_open(&in, buf, len, e)) return -1;
    if (in.kind == SYM_WIRE_HELLO && in.session == s->session) return 2; /* a copy sent before our WELCOME reached it */
    if (in.kind == SYM_WIRE_HELLO && len <= sizeof s->hello) { /* a new router: this session is over */
        memcpy(s->hello, buf, len);
        s->hello_len = len;
        s->hello_waiting = 1;
        return sym_fail(e, "another router connected");
    }
    int k = sym_wire_in_session(&in, s->session, &s->rx_seq, e);
    if (k) return k < 0 ? -1 : 2; /* 2: a router's before this one: gone */
    switch (in.kind) {
    case SYM_WIRE_MSGS: {
        uint32_t n;
        if (sym_wire_get(&in, &n, 4, e)) return -1;
        for (uint32_t k = 0; k < n; k++) {
            sym_msg m;
            if (sym_wire_get_msg(&in, &m, e) || take_msg(s, &m, e)) return -1;
            m.shard = s->index;
            sym_mailbox_push(sym_shard_inbox(s->shard), &m);
            if (m.type == SYM_MSG_STOP) return 1;
        }
        return 0;
    }
    case SYM_WIRE_BYTES: return take_bytes(s, &in, e);
    case SYM_WIRE_HEARTBEAT: return 0;
    default: return sym_fail(e, "a frame of kind %d in a session", in.kind);
    }
}

static void *rx_main(void *arg) {
    server *s = arg;
    uint64_t last = sym_now_ns(), timeout = (uint64_t)s->timeout_ms * 1000000u;
    int end = LOST;
    for (;;) {
        const void *buf = NULL;
        size_t len = 0;
        sym_err e = {{0}};
        int got = sym_transport_recv(&s->tp, &buf, &len, &e);
        uint64_t now = sym_now_ns();
        if (atomic_load(&s->tx_failed) || (s->o->stop && *s->o->stop)) {
            sym_warn("shard %d: the session ends: %s", s->index, atomic_load(&s->tx_failed) ? "a send failed" : "stopping");
            break;
        }
        if (got <= 0) {
            if (got == 0 && now - last <= timeout) continue;
            sym_warn("shard %d: the router is lost: %s", s->index, got == 0 ? "nothing heard within shards.timeout_ms" : e.msg);
            break;
        }
        int rc = take_frame(s, buf, len, &e);
        if (rc != 2) last = now; /* only this session's frames say the router is there */
        if (rc == 1) {
            end = STOPPED;
            break;
        }
        if (rc < 0) {
            sym_warn("shard %d: the session ends: %s", s->index, e.msg);
            break;
        }
    }
    if (end == LOST) {
        sym_msg stop = {.type = SYM_MSG_STOP};
        sym_mailbox_push(sym_shard_inbox(s->shard), &stop);
    }
    atomic_store(&s->state, end);
    sym_doorbell_ring(&s->bell);
    return NULL;
}

/* --- the sender ------------------------------------------------------------------ */

/* An answer made the router's again (its buffer), with an export's bytes
 * sent first; our buffer goes back to the pool. */
static int give_back(server *s, sym_msg *m, sym_wire_out *o, int sending) {
    if (m->type != SYM_MSG_EXPORTED && m->type != SYM_MSG_IMPORTED) return 0;
    int l = m->u.io.buf;
    pthread_mutex_lock(&s->mu);
    int rb = l >= 0 && l < SYM_SLOT_POOL_MAX ? s->router_of[l] : -1;
    if (rb >= 0) s->local_of[rb] = -1, s->router_of[l] = -1;
    pthread_mutex_unlock(&s->mu);
    if (rb < 0) return 0;
    int rc = 0;
    if (sending && m->type == SYM_MSG_EXPORTED && m->u.io.status == 0) {
        size_t len;
        const unsigned char *p = sym_slot_pool_bytes(&s->pool, l, &len);
        for (uint64_t off = 0, total = len; !rc && off < total; off += SYM_WIRE_CHUNK_BYTES) {
            size_t n = total - off < SYM_WIRE_CHUNK_BYTES ? (size_t)(total - off) : SYM_WIRE_CHUNK_BYTES;
            int32_t b = rb;
            rc = sym_wire_begin(o, SYM_WIRE_BYTES, s->session, ++s->tx_seq) || sym_wire_put(o, &b, 4) || sym_wire_put(o, &off, 8) ||
                 sym_wire_put(o, &total, 8) || sym_wire_put(o, p + off, n) || send_out(s, o);
        }
    }
    sym_slot_pool_release(&s->pool, l);
    m->u.io.buf = rb;
    return rc ? -1 : 0;
}

/* What the shard sent, to the router, in frames of up to SYM_WIRE_BATCH;
 * after a failed send, only drained (the buffers go back). */
static void forward(server *s, sym_wire_out *o, uint64_t *last_sent) {
    sym_msg m;
    int more = 1;
    while (more) {
        sym_wire_begin(o, SYM_WIRE_MSGS, s->session, s->tx_seq + 1);
        while (o->n < SYM_WIRE_BATCH && (more = sym_mailbox_pop(sym_shard_outbox(s->shard), &m))) {
            int sending = !atomic_load(&s->tx_failed);
            if (sending && m.type == SYM_MSG_EXPORTED && m.u.io.status == 0) { /* its bytes go before it */
                if (o->n) s->tx_seq++, send_out(s, o);
                give_back(s, &m, o, 1);
                sym_wire_begin(o, SYM_WIRE_MSGS, s->session, s->tx_seq + 1);
            } else {
                give_back(s, &m, o, 0);
            }
            if (sym_wire_put_msg(o, &m) && !atomic_exchange(&s->tx_failed, 1)) sym_warn("shard: out of memory for a frame");
        }
        if (o->n && !atomic_load(&s->tx_failed)) {
            s->tx_seq++;
            if (!send_out(s, o)) *last_sent = sym_now_ns();
        }
    }
}

/* The numbers for --metrics-port, from the caller's thread (never waits). */
static void publish(server *s) {
    if (!s->o->metrics) return;
    s->pub.in_session = s->shard != NULL;
    if (s->shard) sym_shard_paging(s->shard, &s->pub.shard);
    else s->pub.shard = (sym_paging_stats){0};
    sym_metrics_publish(s->o->metrics, &s->pub);
}

static void status_line(server *s) {
    sym_paging_stats pg;
    sym_shard_paging(s->shard, &pg);
    sym_info("shard %d: %llu steps, %d symbols (%d in slots)", s->index, (unsigned long long)pg.steps,
             pg.resident + pg.paged + pg.on_disk, pg.resident);
}

static void serve_session(server *s) {
    pthread_t rx;
    sym_wire_out o = {0};
    if (pthread_create(&rx, NULL, rx_main, s)) {
        sym_warn("shard %d: cannot start the receiving thread", s->index);
        sym_shard_stop(s->shard);
        sym_shard_join_destroy(s->shard);
        s->shard = NULL;
        sym_transport_end(&s->tp);
        return;
    }
    uint64_t last_sent = sym_now_ns(), hb = (uint64_t)s->heartbeat_ms * 1000000u, last_status = sym_now_ns();
    uint64_t every = (uint64_t)(s->o->status_every_s * 1e9);
    while (atomic_load(&s->state) == RUNNING) {
        unsigned seen = sym_doorbell_seq(&s->bell);
        forward(s, &o, &last_sent);
        uint64_t now = sym_now_ns();
        if (now - last_sent >= hb && !atomic_load(&s->tx_failed)) {
            sym_paging_stats pg;
            sym_shard_paging(s->shard, &pg);
            if (!sym_wire_begin(&o, SYM_WIRE_HEARTBEAT, s->session, ++s->tx_seq) && !sym_wire_put(&o, &pg, sizeof pg) && !send_out(s, &o))
                last_sent = now;
        }
        if (every && now - last_status >= every) status_line(s), last_status = now;
        publish(s);
        if (atomic_load(&s->state) != RUNNING) break;
        sym_doorbell_wait(&s->bell, seen, hb);
    }
    /* the shard ends at the STOP in its inbox (the router's, or ours for a
     * lost link); what it answered before goes out, then BYE */
    sym_shard_join(s->shard);
    forward(s, &o, &last_sent);
    int stopped = atomic_load(&s->state) == STOPPED;
    if (stopped && !atomic_load(&s->tx_failed) && !sym_wire_begin(&o, SYM_WIRE_BYE, s->session, ++s->tx_seq)) send_out(s, &o);
    pthread_join(rx, NULL);
    sym_transport_end(&s->tp); /* the session's ring unmapped: never used again */
    s->listen_again = !stopped && !s->hello_waiting;
    status_line(s);
    sym_info("shard %d: session %s; its states are dropped", s->index, stopped ? "ended by the router" : "lost");
    sym_shard_join_destroy(s->shard);
    s->shard = NULL;
    sym_wire_out_free(&o);
}

/* --- sessions ------------------------------------------------------------------- */

/* The router's HELLO, checked: 0 with the session's numbers set, or a
 * REFUSE sent (and why logged). */
static int check_hello(server *s, const sym_wire_hello *h, char *why, size_t cap) {
    const sym_config *c = s->o->cfg;
    const sym_model_config *mc = sym_model_backends_model(s->mb);
    if (h->version != SYM_WIRE_VERSION || h->msg_size != sizeof(sym_msg))
        snprintf(why, cap, "another symserve build: wire version %u with %u-byte messages, this shard %u with %zu",
                 h->version, h->msg_size, SYM_WIRE_VERSION, sizeof(sym_msg));
    else if (h->fingerprint != s->fingerprint)
        snprintf(why, cap, "another engine: fingerprint %016llx, this shard's %016llx (another model, backend, "
                 "precision or state precision)", (unsigned long long)h->fingerprint, (unsigned long long)s->fingerprint);
    else if (h->features != mc->features)
        snprintf(why, cap, "%d features, this shard's model takes %d", h->features, mc->features);
    else if (h->max_symbols != c->max_symbols)
        snprintf(why, cap, "config key 'max_symbols': the router's %d, this shard's %d", h->max_symbols, c->max_symbols);
    else if (h->queue_capacity != c->queue_capacity)
        snprintf(why, cap, "config key 'queue_capacity': the router's %d, this shard's %d", h->queue_capacity,
                 c->queue_capacity);
    else if (h->max_batch != c->max_batch)
        snprintf(why, cap, "config key 'max_batch': the router's %d, this shard's %d", h->max_batch, c->max_batch);
    else if (h->rows_per_symbol != c->rows_per_symbol)
        snprintf(why, cap, "config key 'rows_per_symbol': the router's %d, this shard's %d", h->rows_per_symbol,
                 c->rows_per_symbol);
    else if (h->index < 0 || h->index >= SYM_MAX_SHARDS || h->heartbeat_ms < 10 || h->timeout_ms < 2 * h->heartbeat_ms)
        snprintf(why, cap, "shard index %d, heartbeat %d ms, timeout %d ms", h->index, h->heartbeat_ms, h->timeout_ms);
    else
        return 0;
    return -1;
}

/* The shared-memory region the router's HELLO offers, mapped, its name
 * removed (it is mapped once); NULL when none is offered, shards.shm is
 * off here, or it cannot be mapped (why logged): the frames then go over
 * the socket, which the WELCOME says. */
static sym_shm *map_ring(server *s, const sym_wire_hello *h) {
    if (!memchr(h->shm, '\0', sizeof h->shm) || !h->shm[0]) return NULL;
    const sym_config *c = s->o->cfg;
    if (!c->shard_shm) {
        sym_info("shard: shards.shm is off here: the router's shared-memory ring is not used, frames go over nanomsg");
        return NULL;
    }
    sym_err e = {{0}};
    sym_shm *m = sym_shm_open(h->shm, sym_wire_max_frame(), (uint64_t)(c->shard_shm_spin_us * 1e3), &e);
    if (!m) sym_warn("shard: cannot map the router's shared-memory ring: %s; frames go over nanomsg", e.msg);
    sym_shm_unlink(m);
    return m;
}

/* A router's HELLO: a session served, or refused. 0 when it was not a
 * HELLO that starts one, or a copy of one refused already (refused again,
 * quietly: the first REFUSE may not have reached the router). */
static int start_session(server *s, const void *frame, size_t len) {
    sym_wire_in in;
    sym_wire_hello h;
    sym_err e = {{0}};
    char why[300];
    /* a HELLO of another wire version may be shorter or longer: what it
     * has of ours is read (its version first), the rest zero, and the
     * version check refuses it by name */
    memset(&h, 0, sizeof h);
    size_t have = 0;
    if (sym_wire_open(&in, frame, len, &e) || in.kind != SYM_WIRE_HELLO || in.seq != 1 ||
        (have = (size_t)(in.end - in.p)) < 8) {
        sym_warn("shard: a frame that does not start a session, ignored%s%s", e.msg[0] ? ": " : "", e.msg);
        return 0;
    }
    memcpy(&h, in.p, have < sizeof h ? have : sizeof h);
    if (h.version == SYM_WIRE_VERSION && have < sizeof h) {
        sym_warn("shard: a HELLO of %zu bytes, not %zu, ignored", have, sizeof h);
        return 0;
    }
    int again = s->refused && in.session == s->session;
    s->session = in.session; /* every frame to this router carries it, a refusal too */
    s->refused = 0;
    if (check_hello(s, &h, why, sizeof why)) {
        if (!again) {
            s->pub.refused_routers++;
            sym_warn("shard: a router refused: %s", why);
        }
        send_simple(s, SYM_WIRE_REFUSE, 1, why, strlen(why));
        s->refused = 1;
        return !again;
    }
    const sym_config *c = s->o->cfg;
    sym_backend *b = sym_model_backends_make(s->mb, 0, &e);
    sym_shard_params p = {.index = h.index, .n_ids = h.max_symbols, .queue_cap = h.queue_capacity,
                          .max_batch = h.max_batch, .rows_per_symbol = h.rows_per_symbol, .features = h.features,
                          .idle_spin_us = c->idle_spin_us, .host_tier_mb = c->host_tier_mb,
                          .state_dir = c->state_dir[0] ? c->state_dir : NULL, .disk_tier_mb = c->disk_tier_mb};
    sym_doorbell_init(&s->bell);
    sym_slot_pool_init(&s->pool);
    if (b && !sym_slot_pool_use(&s->pool, b->ops->host_mem) && sym_slot_pool_prepare(&s->pool, b->slot_bytes))
        sym_warn("shard: no host memory for a slot's buffer yet (%zu bytes)", b->slot_bytes);
    s->shard = b ? sym_shard_create(&p, b, &s->bell, &s->pool, &e) : NULL;
    if (!s->shard) sym_backend_destroy(b);
    if (s->shard && sym_shard_start(s->shard, &e)) {
        sym_shard_join_destroy(s->shard);
        s->shard = NULL;
    }
    if (!s->shard) {
        snprintf(why, sizeof why, "this shard cannot start: %.250s", e.msg);
        sym_warn("shard: %s", why);
        send_simple(s, SYM_WIRE_REFUSE, 1, why, strlen(why));
        sym_slot_pool_destroy(&s->pool);
        sym_doorbell_destroy(&s->bell);
        return 1;
    }
    s->index = h.index, s->n_ids = h.max_symbols, s->features = h.features;
    s->pub.sessions++, s->pub.shard_index = h.index;
    s->heartbeat_ms = h.heartbeat_ms, s->timeout_ms = h.timeout_ms;
    s->slot_bytes = b->slot_bytes;
    s->tx_seq = 1, s->rx_seq = 1;
    atomic_store(&s->state, RUNNING);
    atomic_store(&s->tx_failed, 0);
    for (int i = 0; i < SYM_SLOT_POOL_MAX; i++) s->local_of[i] = s->router_of[i] = -1, s->got[i] = 0;
    s->tp.sock = s->sock;
    sym_transport_begin(&s->tp, map_ring(s, &h), s->heartbeat_ms, s->timeout_ms);
    uint64_t w[3] = {b->slot_bytes, b->state_elem_size, s->tp.shm != NULL};
    send_simple(s, SYM_WIRE_WELCOME, 1, w, sizeof w);
    sym_info("shard %d: a router connected (%d symbols at most, %zu-byte states), frames through %s", s->index,
             s->n_ids, s->slot_bytes, sym_transport_name(&s->tp));
    serve_session(s);
    publish(s);
    sym_slot_pool_destroy(&s->pool);
    sym_doorbell_destroy(&s->bell);
    return 1;
}

/* A PAIR socket bound at url, or -1 (e). */
static int listen_socket(const char *url, sym_err *e) {
    int sock = nn_socket(AF_SP, NN_PAIR), most = (int)sym_wire_max_frame();
    if (sock < 0 || nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &most, sizeof most) < 0) {
        sym_fail(e, "nanomsg socket: %s", nn_strerror(nn_errno()));
        if (sock >= 0) nn_close(sock);
        return -1;
    }
    if (nn_bind(sock, url) < 0) {
        sym_fail(e, "listen on %s: %s", url, nn_strerror(nn_errno()));
        nn_close(sock);
        return -1;
    }
    return sock;
}

int sym_shard_server_run(const sym_shard_server_opts *o, sym_err *e) {
    server s = {.o = o, .sock = -1};
    pthread_mutex_init(&s.mu, NULL);
    int rc = -1, wait_ms = 200;
    sym_config one = *o->cfg;
    one.shard_count = 1, one.tower_split = 1;
    if (!(s.mb = sym_model_backends_create(&one, e))) goto done;
    if (sym_state_fingerprint(&one, sym_model_backends_cuda(s.mb), &s.fingerprint, e)) goto done;
    if ((s.sock = listen_socket(o->listen, e)) < 0) goto done;
    sym_info("shard: listening on %s (%s backend); waiting for a router", o->listen,
             sym_model_backends_cuda(s.mb) ? "cuda" : "cpu");
    rc = 0;
    s.pub.has_shard_process = 1;
    publish(&s);
    if (o->metrics) sym_metrics_set_healthy(o->metrics, 1);
    for (int sessions = 0, warned = 0; !(o->stop && *o->stop) && !(o->max_sessions && sessions >= o->max_sessions);) {
        /* A lost session leaves the connection it came on, whose end may
         * not have reached this process (a link down, a pause): while the
         * PAIR socket holds it, it drops every new connection, the next
         * router's included. A new socket holds none. */
        if (s.listen_again) {
            s.listen_again = 0;
            nn_close(s.sock);
            s.sock = -1;
        }
        if (s.sock < 0) {
            sym_err le = {{0}};
            if ((s.sock = listen_socket(o->listen, &le)) < 0) {
                if (!warned) sym_warn("shard: %s; trying again every %d ms", le.msg, wait_ms), warned = 1;
                nanosleep(&(struct timespec){.tv_nsec = (long)wait_ms * 1000000}, NULL);
                continue;
            }
            if (warned) sym_info("shard: listening on %s again", o->listen);
            warned = 0;
        }
        if (s.hello_waiting) {
            s.hello_waiting = 0;
            sessions += start_session(&s, s.hello, s.hello_len);
            continue;
        }
        nn_setsockopt(s.sock, NN_SOL_SOCKET, NN_RCVTIMEO, &wait_ms, sizeof wait_ms);
        publish(&s);
        void *buf = NULL;
        int n = nn_recv(s.sock, &buf, NN_MSG, 0);
        if (n < 0) continue;
        sym_wire_in in;
        sym_err fe = {{0}};
        int hello = !sym_wire_open(&in, buf, (size_t)n, &fe) && in.kind == SYM_WIRE_HELLO;
        if (hello) sessions += start_session(&s, buf, (size_t)n);
        nn_freemsg(buf); /* else: a frame of a session already over */
    }
done:
    if (o->metrics) sym_metrics_set_healthy(o->metrics, 0);
    if (s.sock >= 0) {
        /* nanomsg drops what is still queued when a socket closes (it has
         * no linger): give the last session's BYE time to leave */
        if (rc == 0) nanosleep(&(struct timespec){.tv_nsec = 200000000}, NULL);
        nn_close(s.sock);
    }
    sym_model_backends_destroy(s.mb);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
