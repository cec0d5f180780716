/* The serve event loop; see serve.h. */
#include "net/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/uid_map.h"
#include "net/line_reader.h"
#include "net/protocol.h"
#include "net/request_reader.h"
#include "net/tcp.h"

#define POLL_BATCH 256
#define READS_PER_WAKE 4     /* reads per client per wake: one busy client cannot starve the others */
#define STOP_DRAIN_NS 2000000000ull
#define NOTSENT_MAX (32 << 10) /* bytes the kernel holds for a client before they can go */

void sym_serve_opts_default(sym_serve_opts *o) {
    *o = (sym_serve_opts){.host = "127.0.0.1",
                          .max_clients = 64,
                          .stall_s = 5,
                          .status_s = 10,
                          .max_line_bytes = SYM_NET_MAX_LINE_DEFAULT,
                          .max_output_bytes = SYM_NET_MAX_OUTPUT_DEFAULT};
}

typedef struct {
    int fd;          /* -1: a free place */
    uint64_t serial; /* which connection (answers of an earlier one in this place are discarded) */
    char peer[64];
    sym_line_reader lr;
    sym_outbuf out;
    sym_request_msg msg; /* the rows of the inference_request being served */
    sym_uid_map ids;     /* its unique_ids in flight */
    uint64_t inflight;
    int row_next;        /* the next row of a message paused by waiting answers; -1: none */
    int lines_wait;      /* complete lines left in the reader while its answers wait */
    int eof;             /* it closed its side: closed once answered */
    uint64_t full_since; /* when its answers went past max_output_bytes; 0: they are not */
    int n_ans, cap_ans;  /* answers made at this wake-up, sent as one response */
    uint64_t *ans_uid;
    double (*ans_pred)[4];
} client;

/* A row in the engine: whose it is. */
typedef struct {
    uint64_t uid, serial;
    int32_t place; /* clients[place]; next free entry when free */
} flight;

typedef struct {
    sym_engine *g;
    const sym_serve_opts *o;
    sym_serve_stats *st;
    int n_features;
    int lfd;
    client *cl;
    int n_clients;
    uint64_t serial;
    uint64_t engine_uid; /* the next id a row goes to the engine under */
    sym_uid_map by_engine_uid; /* engine id -> flights[] */
    flight *flights;
    int32_t n_flights, cap_flights, free_flight;
    sym_request req;
    sym_prediction preds[POLL_BATCH];
    int oom;
} server;

static int out_full(const server *s, const client *c) { return sym_outbuf_pending(&c->out) > s->o->max_output_bytes; }

static void send_error(server *s, client *c, const char *error, const char *details) {
    if (sym_proto_write_error(&c->out, error, details)) s->oom = 1;
}

/* reason: the st counter of the refusal's cause */
static void refuse_row(server *s, client *c, uint64_t uid, const char *why, uint64_t *reason) {
    char details[640];
    snprintf(details, sizeof details, "unique_id %llu: %s", (unsigned long long)uid, why);
    sym_debug("serve: %s: request rejected: %s", c->peer, details);
    s->st->rejected++;
    (*reason)++;
    send_error(s, c, "request rejected", details);
}

static void refuse_message(server *s, client *c, const char *why) {
    sym_warn("serve: %s: bad message: %s", c->peer, why);
    s->st->bad_messages++;
    send_error(s, c, "bad message", why);
}

/* A line refused whole: the error names the unique_ids read in it. */
static void refuse_line(server *s, client *c, const char *why) {
    char details[1024];
    uint64_t n = (uint64_t)sym_request_refusal(&c->msg, why, details, sizeof details);
    s->st->rejected += n;
    s->st->rejected_line += n;
    refuse_message(s, c, details);
}

static int32_t flight_add(server *s, int place, uint64_t uid) {
    int32_t i = s->free_flight;
    if (i >= 0) {
        s->free_flight = s->flights[i].place;
    } else {
        if (s->n_flights == s->cap_flights) {
            int32_t cap = s->cap_flights ? 2 * s->cap_flights : 1024;
            flight *f = realloc(s->flights, (size_t)cap * sizeof *f);
            if (!f) return -1;
            s->flights = f, s->cap_flights = cap;
        }
        i = s->n_flights++;
    }
    s->flights[i] = (flight){.uid = uid, .serial = s->cl[place].serial, .place = place};
    return i;
}

static void flight_free(server *s, int32_t i) {
    s->flights[i].place = s->free_flight;
    s->free_flight = i;
}

static void add_answer(server *s, client *c, uint64_t uid, const double pred[4]) {
    if (c->n_ans == c->cap_ans) {
        int cap = c->cap_ans ? 2 * c->cap_ans : 64;
        uint64_t *u = realloc(c->ans_uid, (size_t)cap * sizeof *u);
        if (u) c->ans_uid = u;
        double(*p)[4] = realloc(c->ans_pred, (size_t)cap * sizeof *p);
        if (p) c->ans_pred = p;
        if (!u || !p) {
            s->oom = 1;
            return;
        }
        c->cap_ans = cap;
    }
    c->ans_uid[c->n_ans] = uid;
    memcpy(c->ans_pred[c->n_ans], pred, sizeof c->ans_pred[0]);
    c->n_ans++;
}

/* Moves every finished prediction to its client: one response per client
 * for its successes, one error per engine refusal. */
static void collect(server *s) {
    int n;
    do {
        n = sym_engine_poll(s->g, s->preds, POLL_BATCH, 0);
        uint64_t now = sym_now_ns();
        for (int i = 0; i < n; i++) {
            const sym_prediction *r = &s->preds[i];
            int32_t *fi = sym_uid_map_get(&s->by_engine_uid, r->uid);
            if (!fi) { /* cannot happen: every id sent is mapped until answered */
                sym_warn("serve: a prediction for engine id %llu that is not in flight is dropped", (unsigned long long)r->uid);
                continue;
            }
            flight f = s->flights[*fi];
            flight_free(s, *fi);
            sym_uid_map_del(&s->by_engine_uid, r->uid);
            s->st->in_flight--;
            client *c = &s->cl[f.place];
            if (c->fd < 0 || c->serial != f.serial) {
                s->st->discarded++;
                continue;
            }
            c->inflight--;
            sym_uid_map_del(&c->ids, f.uid);
            if (r->status != 0) {
                refuse_row(s, c, f.uid, r->error[0] ? r->error : "refused by the engine", &s->st->rejected_engine);
                continue;
            }
            for (int t = 0; t < 4; t++)
                if (!isfinite(r->pred[t]))
                    sym_warn("serve: %s: request %llu: tower %d output is not finite (sent as null)", c->peer,
                             (unsigned long long)f.uid, t);
            add_answer(s, c, f.uid, r->pred);
            sym_latency_hist_add(&s->st->latency, now > r->t_submit_ns ? now - r->t_submit_ns : 0);
        }
    } while (n == POLL_BATCH);
    for (int k = 0; k < s->o->max_clients; k++) {
        client *c = &s->cl[k];
        if (!c->n_ans) continue;
        if (sym_proto_write_response(&c->out, c->ans_uid, (const double(*)[4])c->ans_pred, c->n_ans, sym_proto_wall_s()))
            s->oom = 1;
        s->st->answered += (uint64_t)c->n_ans;
        s->st->responses_sent++;
        c->n_ans = 0;
    }
}

/* One valid row (s->req holds its symbol and features) of client c. */
static void submit_row(server *s, client *c, uint64_t uid) {
    if (sym_uid_map_get(&c->ids, uid)) {
        refuse_row(s, c, uid, "unique_id is in flight on this connection", &s->st->rejected_id_in_flight);
        return;
    }
    sym_err e = {{0}};
    uint64_t eid = s->engine_uid;
    s->req.uid = eid;
    s->req.n_features = s->n_features;
    if (sym_engine_submit(s->g, &s->req, &e)) {
        refuse_row(s, c, uid, e.msg, &s->st->rejected_engine);
        return;
    }
    s->engine_uid++;
    s->st->in_flight++;
    int32_t fi = flight_add(s, (int)(c - s->cl), uid);
    if (fi < 0 || sym_uid_map_put(&s->by_engine_uid, eid, fi) || sym_uid_map_put(&c->ids, uid, 1)) {
        s->oom = 1;
        return;
    }
    c->inflight++;
    s->st->submitted++;
}

/* The rows of a well-formed inference_request, in list order, from
 * row_next on; pauses while the client's answers are past the limit. */
static void on_request(server *s, client *c) {
    const sym_request_msg *m = &c->msg;
    for (int k = c->row_next; k < m->n && !s->oom; k++) {
        if (out_full(s, c)) {
            c->row_next = k;
            return;
        }
        uint64_t uid;
        int uid_ok;
        const char *symbol;
        const float *features;
        sym_err e = {{0}};
        s->st->requests++;
        int rc = sym_request_row(m, k, &uid, &uid_ok, &symbol, &features, &e);
        if (!uid_ok) {
            char why[640];
            snprintf(why, sizeof why, "row %d of the message: %s", k, e.msg);
            s->st->rejected++;
            s->st->rejected_row++;
            sym_debug("serve: %s: request without a usable unique_id rejected: %s", c->peer, why);
            send_error(s, c, "request rejected", why);
            continue;
        }
        if (rc) {
            refuse_row(s, c, uid, e.msg, &s->st->rejected_row);
            continue;
        }
        memcpy(s->req.symbol, symbol, strlen(symbol) + 1);
        memcpy(s->req.features, features, (size_t)s->n_features * sizeof *features);
        submit_row(s, c, uid);
    }
    c->row_next = -1;
}

/* A message other than inference_request, read into a tree. */
static void on_other(server *s, client *c, const char *line, size_t len) {
    cJSON *root;
    sym_msg_type t;
    sym_err e = {{0}};
    if (len > SYM_SERVE_MAX_OTHER) {
        char why[160];
        snprintf(why, sizeof why, "a '%s' message of %zu bytes: only inference_request may be longer than %d bytes",
                 c->msg.type, len, SYM_SERVE_MAX_OTHER);
        refuse_message(s, c, why);
        return;
    }
    if (sym_proto_parse(line, len, &root, &t, &e)) {
        refuse_message(s, c, e.msg);
        return;
    }
    switch (t) {
    case SYM_MSG_REGISTER:
    case SYM_MSG_HEARTBEAT:
    case SYM_MSG_SCORE_UPDATE:
    case SYM_MSG_STATS_UPDATE: break; /* what a game server sends besides requests: nothing to answer */
    case SYM_MSG_ERROR: {
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(root, "error"), *d = cJSON_GetObjectItemCaseSensitive(root, "details");
        s->st->errors_received++;
        sym_info("serve: %s says error: %s (%s)", c->peer, cJSON_IsString(er) ? er->valuestring : "?",
                 cJSON_IsString(d) ? d->valuestring : "no details");
        break;
    }
    default: {
        char why[96];
        snprintf(why, sizeof why, "message_type '%s' is not sent to a server", sym_msg_type_name(t));
        refuse_message(s, c, why);
    }
    }
    cJSON_Delete(root);
}

static void on_line(server *s, client *c, const char *line, size_t len) {
    sym_err e = {{0}};
    if (len == 0) return;
    s->st->messages++;
    switch (sym_request_read(&c->msg, line, len, s->n_features, &e)) {
    case SYM_LINE_REQUEST:
        c->row_next = 0;
        on_request(s, c);
        break;
    case SYM_LINE_OTHER: on_other(s, c, line, len); break;
    case SYM_LINE_BAD: refuse_line(s, c, e.msg); break;
    }
}

static void on_overlong(server *s, client *c, const char *head, size_t len) {
    sym_err e = {{0}};
    char why[200];
    s->st->messages++;
    s->st->overlong++;
    snprintf(why, sizeof why, "message longer than max_line_bytes (%zu bytes): dropped up to its end of line",
             s->o->max_line_bytes);
    if (sym_request_read(&c->msg, head, len, s->n_features, &e) == SYM_LINE_OTHER) c->msg.nu = 0;
    refuse_line(s, c, why);
}

/* Serves c's complete lines until none is left or its answers pass
 * max_output_bytes: then the rest waits (lines_wait), and its socket is
 * not read, until it takes some. */
static void drain_lines(server *s, client *c) {
    char *line;
    size_t len;
    int k;
    c->lines_wait = 0;
    while (!s->oom) {
        if (c->row_next >= 0) on_request(s, c);
        if (out_full(s, c)) {
            c->lines_wait = 1;
            return;
        }
        if ((k = sym_lr_next(&c->lr, &line, &len)) == SYM_LR_NONE) return;
        if (k == SYM_LR_OVERLONG) on_overlong(s, c, line, len);
        else on_line(s, c, line, len);
    }
}

/* Closes c. reset: with SO_LINGER 0, so a peer that does not read sees it
 * at once (an orderly close would wait behind the bytes it does not take). */
static void drop(server *s, client *c, int reset, const char *why) {
    if (reset) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        s->st->dropped++;
        sym_warn("serve: %s dropped: %s; %llu requests of it in flight are discarded", c->peer, why,
                 (unsigned long long)c->inflight);
    } else {
        s->st->closed++;
        if (c->inflight || sym_lr_partial(&c->lr))
            sym_info("serve: %s closed (%s); %llu requests in flight discarded, %zu bytes of a line cut off", c->peer,
                     why, (unsigned long long)c->inflight, sym_lr_partial(&c->lr));
        else
            sym_info("serve: %s closed (%s)", c->peer, why);
    }
    close(c->fd);
    c->fd = -1;
    sym_lr_free(&c->lr);
    sym_outbuf_free(&c->out);
    sym_request_msg_free(&c->msg);
    sym_uid_map_free(&c->ids);
    free(c->ans_uid);
    free(c->ans_pred);
    uint64_t serial = c->serial;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->serial = serial;
    s->n_clients--;
}

/* Reads what c's socket has (a few reads: the others get their turn). */
static void on_readable(server *s, client *c) {
    for (int r = 0; r < READS_PER_WAKE && !c->lines_wait && c->fd >= 0 && !c->eof; r++) {
        ssize_t n = sym_lr_read_fd(&c->lr, c->fd);
        if (n == 0) {
            c->eof = 1;
            if (sym_lr_partial(&c->lr))
                sym_warn("serve: %s: a line cut off by its close (%zu bytes) is dropped", c->peer, sym_lr_partial(&c->lr));
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            drop(s, c, 0, strerror(errno));
            return;
        }
        drain_lines(s, c);
    }
}

static void say_once(int fd, const char *error, const char *details) {
    sym_outbuf o = {0};
    if (!sym_proto_write_error(&o, error, details)) {
        ssize_t n = send(fd, o.buf + o.off, sym_outbuf_pending(&o), MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)n;
    }
    sym_outbuf_free(&o);
}

static void peer_name(int fd, uint64_t serial, char *buf, size_t cap) {
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (!getpeername(fd, (struct sockaddr *)&sa, &sl)) {
        if (sa.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            port = ntohs(a->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&sa;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(buf, cap, "client %llu (%s:%d)", (unsigned long long)serial, host, port);
}

static void accept_all(server *s) {
    for (int k = 0; k < 16; k++) {
        int fd = sym_tcp_accept(s->lfd);
        if (fd < 0) return;
        if (s->n_clients == s->o->max_clients) {
            s->st->refused_connections++;
            sym_warn("serve: a connection refused: %d clients connected, the most --max-clients allows", s->n_clients);
            say_once(fd, "server full", "the server has as many clients as it takes; try again later");
            close(fd);
            continue;
        }
        int place = 0;
        while (s->cl[place].fd >= 0) place++;
        client *c = &s->cl[place];
        c->serial = ++s->serial;
        c->row_next = -1;
        if (sym_lr_init(&c->lr, s->o->max_line_bytes) || sym_uid_map_init(&c->ids, 64)) {
            sym_lr_free(&c->lr);
            sym_warn("serve: out of memory for a connection; refused");
            close(fd);
            continue;
        }
        /* The kernel takes at most NOTSENT_MAX bytes a client cannot take
         * yet (it would grow its buffer to megabytes): the rest waits in
         * ours, where max_output_bytes sees it. Best effort. */
        int lowat = NOTSENT_MAX;
        setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
        c->fd = fd;
        s->n_clients++;
        s->st->connections++;
        peer_name(fd, c->serial, c->peer, sizeof c->peer);
        sym_info("serve: %s connected (%d clients)", c->peer, s->n_clients);
    }
}

/* After a wake-up: writes what each client takes; drops one whose answers
 * stay past max_output_bytes for stall_s; resumes the lines of one that
 * took enough; closes one that closed its side and has all its answers. */
static void flush_all(server *s, uint64_t now) {
    uint64_t stall_ns = (uint64_t)(s->o->stall_s * 1e9);
    for (int k = 0; k < s->o->max_clients; k++) {
        client *c = &s->cl[k];
        if (c->fd < 0) continue;
        if (sym_outbuf_flush(&c->out, c->fd)) {
            drop(s, c, 0, strerror(errno));
            continue;
        }
        if (out_full(s, c)) {
            if (!c->full_since) c->full_since = now;
            if (now - c->full_since > stall_ns) {
                char why[200];
                snprintf(why, sizeof why, "not reading: %zu bytes of answers wait, over max_output_bytes %zu for %.1f s",
                         sym_outbuf_pending(&c->out), s->o->max_output_bytes, s->o->stall_s);
                drop(s, c, 1, why);
            }
            continue;
        }
        c->full_since = 0;
        if (c->lines_wait) drain_lines(s, c);
        if (c->eof && !c->inflight && !c->lines_wait && c->row_next < 0 && !sym_outbuf_pending(&c->out))
            drop(s, c, 0, "closed by the client, every request answered");
    }
}

static void status_line(server *s, double dt, uint64_t answered_before) {
    sym_info("serve: %d clients, %.0f answers/s, %llu requests, %llu answered, %llu refused, %llu dropped clients",
             s->n_clients, dt > 0 ? (double)(s->st->answered - answered_before) / dt : 0,
             (unsigned long long)s->st->requests, (unsigned long long)s->st->answered,
             (unsigned long long)s->st->rejected, (unsigned long long)s->st->dropped);
}

static void publish(server *s) {
    if (!s->o->metrics) return;
    const sym_serve_stats *st = s->st;
    sym_metrics_loop l = {.messages = st->messages,
                          .bad_messages = st->bad_messages,
                          .requests = st->requests + st->rejected_line, /* so that requests = answered + refused + in flight */
                          .answered = st->answered,
                          .refused_bad_line = st->rejected_line,
                          .refused_bad_row = st->rejected_row,
                          .refused_in_flight_id = st->rejected_id_in_flight,
                          .refused_engine = st->rejected_engine,
                          .has_in_flight = 1,
                          .in_flight = st->in_flight,
                          .has_clients = 1,
                          .clients = s->n_clients,
                          .connections = st->connections,
                          .refused_connections = st->refused_connections,
                          .dropped_clients = st->dropped,
                          .discarded = st->discarded,
                          .latency = st->latency};
    sym_metrics_publish(s->o->metrics, &l);
}

int sym_serve_run(sym_engine *g, const sym_serve_opts *o, sym_serve_stats *st, sym_err *e) {
    server s = {.g = g, .o = o, .st = st, .lfd = -1, .free_flight = -1};
    memset(st, 0, sizeof *st);
    s.n_features = sym_engine_model(g)->features;
    if (s.n_features < 1 || s.n_features > SYM_MAX_FEATURES) return sym_fail(e, "engine model has %d features", s.n_features);
    if (o->max_line_bytes < 1024 || o->max_output_bytes < 1024 || o->max_clients < 1 || !(o->stall_s >= 0))
        return sym_fail(e, "serve: max_line_bytes and max_output_bytes must be at least 1024, max_clients at least 1");
    s.cl = calloc((size_t)o->max_clients, sizeof *s.cl);
    struct pollfd *f = calloc((size_t)o->max_clients + 2, sizeof *f);
    int *place = calloc((size_t)o->max_clients + 2, sizeof *place);
    int rc = -1;
    if (!s.cl || !f || !place || sym_uid_map_init(&s.by_engine_uid, 1024)) {
        sym_fail(e, "out of memory");
        goto out;
    }
    for (int k = 0; k < o->max_clients; k++) s.cl[k].fd = -1;
    int bound = 0;
    s.lfd = sym_tcp_listen(o->host, o->port, &bound, e);
    if (s.lfd < 0) goto out;
    sym_info("serve: listening on %s:%d (at most %d clients)", o->host, bound, o->max_clients);
    if (o->on_listen) o->on_listen(bound);
    publish(&s);
    if (o->metrics) sym_metrics_set_healthy(o->metrics, 1);
    int efd = sym_engine_ready_fd(g);
    uint64_t status_ns = (uint64_t)(o->status_s * 1e9), next_status = sym_now_ns() + status_ns, stop_at = 0;
    uint64_t answered_at_status = 0, t_status = sym_now_ns();
    for (;;) {
        uint64_t now = sym_now_ns();
        if (!stop_at && o->stop && atomic_load(o->stop)) {
            stop_at = now + STOP_DRAIN_NS;
            close(s.lfd);
            s.lfd = -1;
            sym_info("serve: stopping: no more requests taken; sending the answers in flight");
            if (o->metrics) sym_metrics_set_healthy(o->metrics, 0);
        }
        if (stop_at) {
            int busy = 0;
            for (int k = 0; k < o->max_clients; k++)
                busy |= s.cl[k].fd >= 0 && (s.cl[k].inflight || sym_outbuf_pending(&s.cl[k].out));
            if (!busy || now >= stop_at) break;
        }
        int nf = 0;
        f[nf] = (struct pollfd){.fd = efd, .events = POLLIN};
        place[nf++] = -1;
        if (s.lfd >= 0) {
            f[nf] = (struct pollfd){.fd = s.lfd, .events = POLLIN};
            place[nf++] = -2;
        }
        for (int k = 0; k < o->max_clients; k++) {
            const client *c = &s.cl[k];
            if (c->fd < 0) continue;
            short ev = sym_outbuf_pending(&c->out) ? POLLOUT : 0;
            if (!c->lines_wait && !c->eof && !stop_at) ev |= POLLIN;
            f[nf] = (struct pollfd){.fd = c->fd, .events = ev};
            place[nf++] = k;
        }
        int n = poll(f, (nfds_t)nf, 100);
        if (n < 0 && errno != EINTR) {
            sym_fail(e, "poll: %s", strerror(errno));
            goto out;
        }
        for (int i = 0; n > 0 && i < nf; i++) {
            if (!f[i].revents) continue;
            if (place[i] == -1) {
                uint64_t v;
                if (read(efd, &v, sizeof v) < 0) { /* EAGAIN: already cleared */
                }
            } else if (place[i] == -2) {
                accept_all(&s);
            } else if (f[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                client *c = &s.cl[place[i]];
                if (c->fd < 0) continue;
                if (f[i].events & POLLIN) on_readable(&s, c); /* the read says what a hang-up or error was */
                else if (f[i].revents & (POLLHUP | POLLERR)) drop(&s, c, 0, "connection lost");
            }
        }
        collect(&s);
        if (s.oom) {
            sym_fail(e, "out of memory");
            goto out;
        }
        now = sym_now_ns();
        flush_all(&s, now);
        if (status_ns && now >= next_status) {
            status_line(&s, (double)(now - t_status) / 1e9, answered_at_status);
            answered_at_status = st->answered, t_status = now, next_status = now + status_ns;
        }
        publish(&s);
    }
    rc = 0;
    status_line(&s, (double)(sym_now_ns() - t_status) / 1e9, answered_at_status);
out:
    if (o->metrics) sym_metrics_set_healthy(o->metrics, 0);
    if (s.cl)
        for (int k = 0; k < o->max_clients; k++)
            if (s.cl[k].fd >= 0) {
                sym_outbuf_flush(&s.cl[k].out, s.cl[k].fd); /* best effort: answers already made */
                drop(&s, &s.cl[k], 0, "the server stops");
            }
    publish(&s);
    if (s.lfd >= 0) close(s.lfd);
    free(s.cl);
    free(f);
    free(place);
    free(s.flights);
    sym_uid_map_free(&s.by_engine_uid);
    return rc;
}
