/* The replay server; see replay.h. */
#include "net/replay.h"

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
#include "config/config.h"
#include "common/json.h"
#include "common/log.h"
#include "common/requests_csv.h"
#include "net/line_reader.h"
#include "net/protocol.h"
#include "net/tcp.h"

void sym_stream_free(sym_stream *s) {
    if (s->csv) sym_requests_free(s->csv);
    free(s->csv);
    free(s->names);
    free(s->feat);
    free(s->uids);
    free(s->symbols);
    free(s->features);
    free(s->due_ns);
    memset(s, 0, sizeof *s);
}

static int stream_alloc(sym_stream *s, int n, sym_err *e) {
    size_t m = (size_t)(n > 0 ? n : 1);
    s->n = n;
    s->uids = malloc(m * sizeof *s->uids);
    s->symbols = malloc(m * sizeof *s->symbols);
    s->features = malloc(m * sizeof *s->features);
    s->due_ns = malloc(m * sizeof *s->due_ns);
    if (!s->uids || !s->symbols || !s->features || !s->due_ns) {
        sym_stream_free(s);
        return sym_fail(e, "out of memory");
    }
    return 0;
}

int sym_stream_from_csv(sym_stream *s, const char *path, double speed, sym_err *e) {
    memset(s, 0, sizeof *s);
    sym_request_file *rf = malloc(sizeof *rf);
    if (!rf) return sym_fail(e, "out of memory");
    if (sym_requests_load(path, 0, rf, e)) {
        free(rf);
        return -1;
    }
    if (stream_alloc(s, rf->n, e)) {
        sym_requests_free(rf);
        free(rf);
        return -1;
    }
    s->csv = rf;
    s->n_features = rf->n_features;
    double t_ms = 0;
    for (int i = 0; i < rf->n; i++) {
        s->uids[i] = rf->rows[i].uid;
        s->symbols[i] = rf->rows[i].symbol;
        s->features[i] = rf->rows[i].features;
        if (speed > 0) t_ms += rf->rows[i].delay_ms / speed;
        s->due_ns[i] = (uint64_t)(t_ms * 1e6);
    }
    return 0;
}

static uint64_t rng_next(uint64_t *x) { /* splitmix64 */
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *x) { return ((double)(rng_next(x) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

int sym_stream_poisson(sym_stream *s, double rate, int n_symbols, double duration_s, int n_features, uint64_t seed,
                       sym_err *e) {
    memset(s, 0, sizeof *s);
    if (!(rate > 0) || n_symbols < 1 || n_symbols > 100000 || !(duration_s > 0) || n_features < 1)
        return sym_fail(e, "poisson stream needs rate > 0, 1..100000 symbols, duration > 0, features >= 1");
    double expect = rate * duration_s;
    if (expect > 5e7) return sym_fail(e, "poisson stream of %.0f requests is too large", expect);
    /* arrival times first, to know n */
    uint64_t x = seed;
    int cap = (int)(expect + 10 * sqrt(expect) + 16), n = 0;
    uint64_t *due = malloc((size_t)cap * sizeof *due);
    if (!due) return sym_fail(e, "out of memory");
    for (double t = -log(rng_unit(&x)) / rate; t < duration_s; t += -log(rng_unit(&x)) / rate) {
        if (n == cap) break;
        due[n++] = (uint64_t)(t * 1e9);
    }
    if (stream_alloc(s, n, e)) {
        free(due);
        return -1;
    }
    free(s->due_ns);
    s->due_ns = due;
    s->n_features = n_features;
    char *names = malloc((size_t)n_symbols * 16);
    float *feat = malloc((size_t)(n ? n : 1) * (size_t)n_features * sizeof *feat);
    s->names = names, s->feat = feat;
    if (!names || !feat) {
        sym_stream_free(s);
        return sym_fail(e, "out of memory");
    }
    for (int k = 0; k < n_symbols; k++) snprintf(names + k * 16, 16, "SYM_%03d", k);
    for (int i = 0; i < n; i++) {
        s->uids[i] = (uint64_t)i;
        s->symbols[i] = names + (rng_next(&x) % (uint64_t)n_symbols) * 16;
        float *f = feat + (size_t)i * (size_t)n_features;
        for (int j = 0; j < n_features; j += 2) { /* Box-Muller */
            double r = sqrt(-2 * log(rng_unit(&x))), a = 2 * M_PI * rng_unit(&x);
            f[j] = (float)(r * cos(a));
            if (j + 1 < n_features) f[j + 1] = (float)(r * sin(a));
        }
        s->features[i] = f;
    }
    return 0;
}

/* ---- bad input the client must refuse (--inject-bad) ---- */

#define BAD_UID 900000000000000ull /* far from any trace's ids */
#define N_BAD_LINES 13

int sym_replay_bad_line_count(void) { return N_BAD_LINES; }

/* Appends the bad lines: twelve short ones, each refused on its own, then
 * one longer than SYM_NET_MAX_LINE_DEFAULT (the line limit play has by default). */
static int send_bad(sym_outbuf *out, int F) {
    char feats[4096], rest[4096], line[8192];
    size_t l = 0;
    for (int i = 0; i < F && l < sizeof feats - 8; i++) l += (size_t)snprintf(feats + l, sizeof feats - l, i ? ",0.5" : "0.5");
    snprintf(rest, sizeof rest, "%s", strchr(feats, ',') ? strchr(feats, ',') : ""); /* features 1.. */
    const char *req = "{\"message_type\":\"inference_request\",\"unique_ids\":[%llu],\"symbols\":[\"%s\"],"
                      "\"features\":[[%s%s]],\"timestamp\":0}";
    int n = 0, rc = 0;
#define ADD(...) (snprintf(line, sizeof line, __VA_ARGS__), n++, \
                  rc |= sym_outbuf_append(out, line, strlen(line)) | sym_outbuf_append(out, "\n", 1))
    ADD("{\"message_type\":\"inference_request\",\"unique_ids\":[1,"); /* malformed JSON */
    ADD("{\"message_type\":\"frobnicate\",\"unique_ids\":[]}");        /* unknown message_type */
    ADD("{\"message_type\":\"inference_request\",\"unique_ids\":[%llu,%llu],\"symbols\":[\"SYM_000\"],\"features\":[[%s]]}",
        BAD_UID, BAD_UID + 1, feats);                                     /* lists of unequal length */
    ADD(req, BAD_UID + 2, "SYM_000", "0.5,", "0.5");                     /* wrong feature count */
    ADD(req, BAD_UID + 3, "SYM_000", "\"x\"", rest);                     /* non-numeric feature */
    ADD(req, BAD_UID + 4, "SYM_000", "1e999", rest);                     /* overflows to inf */
    ADD(req, BAD_UID + 5, "SYM_000", "NaN", rest);                       /* bare NaN, as Python writes it */
    ADD(req, BAD_UID + 6, "", feats, "");                                /* empty symbol */
    ADD(req, BAD_UID + 7, "S_0123456789012345678901234567890123456789012345678901234567890123", feats, ""); /* 66 bytes */
    ADD(req, BAD_UID + 8, "SYM\\u0001", feats, "");                      /* control character */
    ADD(req, BAD_UID + 9, "SYM_000", "1,", "2");                         /* refused ... */
    ADD(req, BAD_UID + 9, "SYM_000", "1,", "2");                         /* ... and again: a refused request is never remembered */
#undef ADD
    size_t big = SYM_NET_MAX_LINE_DEFAULT + 4096;
    char *b = malloc(big + 1);
    if (!b) return -1;
    memset(b, ' ', big);
    memcpy(b, "{\"message_type\":\"heartbeat\",\"pad\":\"", 35);
    b[big - 2] = '"', b[big - 1] = '}', b[big] = '\n';
    rc |= sym_outbuf_append(out, b, big + 1);
    free(b);
    n++;
    return rc || n != N_BAD_LINES ? -1 : 0;
}

/* ---- the server loop ---- */

#define PENDING_MAX 8              /* connections waiting to register */
#define PENDING_LINE_MAX 4096      /* before registering: a register line is ~30 bytes */
#define SEND_HIGH_WATER (1u << 20) /* due requests wait while this much output is unsent */
#define OUT_MAX ((size_t)16 << 20) /* a client that leaves this much unread is dropped */
#define NOTSENT_MAX (32 << 10)     /* bytes the kernel holds for the client before they can go */
#define LOG_BAD_MAX 8              /* bad answers logged one by one; the rest are counted */

typedef struct {
    int fd; /* -1: none */
    uint64_t t_accept;
    sym_line_reader lr;
} conn;

/* A request message in the client's output buffer, not yet handed to the
 * kernel whole: `end` is the offset just past its '\n' in the bytes queued
 * on this connection; it carries rows [first, first + n), or with `resend`
 * the rows resend[first, first + n). */
typedef struct {
    uint64_t end;
    int first, n, resend;
} unsent_msg;

typedef struct {
    const sym_replay_opts *o;
    const sym_stream *st;
    sym_score *score;
    int lfd;
    conn pend[PENDING_MAX]; /* connected, not registered, oldest first */
    int n_pend;
    conn cl; /* the registered client */
    sym_outbuf out;
    size_t out_limit; /* OUT_MAX, plus the bytes of --inject-bad's lines */
    uint64_t written; /* bytes of out handed to the kernel on this connection */
    unsent_msg *q;    /* ring of request messages not written whole, in order */
    size_t q_head, q_n, q_cap;
    uint64_t t0; /* first register time: the schedule's origin */
    int next;    /* next row to queue */
    int *resend; /* --resend: rows to send again, in stream order, before `next` */
    int rs_head, rs_n;
    uint64_t rows_written; /* requests handed to the kernel whole, re-sends included */
    int cut_done;          /* --drop-after has cut the connection */
    uint64_t *batch_uids;
    const char **batch_syms;
    const float **batch_feat;
    uint64_t *su_uids;
    double *su_zero, *su_acc, *su_lat;
    int su_cap;
} server;

static int conn_open(conn *c, int fd) {
    c->fd = fd;
    c->t_accept = sym_now_ns();
    return sym_lr_init(&c->lr, PENDING_LINE_MAX);
}

static void conn_close(conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    sym_lr_free(&c->lr);
}

/* One `error` line to a connection that is not the client, without
 * waiting: it is closed next, or may read it whenever it likes. */
static void say_once(int fd, const char *error, const char *details) {
    sym_outbuf o = {0};
    if (!sym_proto_write_error(&o, error, details)) {
        ssize_t n = send(fd, o.buf + o.off, sym_outbuf_pending(&o), MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)n;
    }
    sym_outbuf_free(&o);
}

static void pending_close(server *s, int i, const char *why) {
    sym_info("replay: connection closed before registering: %s", why);
    conn_close(&s->pend[i]);
    memmove(&s->pend[i], &s->pend[i + 1], (size_t)(s->n_pend - i - 1) * sizeof s->pend[0]);
    s->n_pend--;
}

static int pending_find(const server *s, int fd) {
    for (int i = 0; i < s->n_pend; i++)
        if (s->pend[i].fd == fd) return i;
    return -1;
}

/* --resend: every row sent (on this connection or an earlier one) and not
 * answered goes again, in stream order. A snapshot: the rows of the last
 * one's re-sends, written or not, are among them unless answered. */
static void queue_resend(server *s) {
    s->rs_head = s->rs_n = 0;
    for (int r = 0; r < s->next; r++)
        if (s->score->t_send_ns[r] && s->score->lat_ms[r] < 0) s->resend[s->rs_n++] = r;
    if (s->rs_n) sym_info("replay: %d requests sent and not answered go again to the next client (--resend)", s->rs_n);
}

/* Requests queued but not written whole were never sent: they go again, in
 * order, to the next client (re-sends come before every new row, so the
 * first new message not written whole is where the stream goes on). */
static void drop_client(server *s, const char *why) {
    sym_warn("replay: client gone (%s)", why);
    conn_close(&s->cl);
    for (size_t i = 0; i < s->q_n; i++) {
        const unsent_msg *m = &s->q[(s->q_head + i) % s->q_cap];
        if (m->resend) continue;
        int back = s->next - m->first;
        s->next = m->first;
        if (back) sym_info("replay: %d requests not written whole go to the next client", back);
        break;
    }
    s->q_head = s->q_n = 0;
    s->written = 0;
    sym_outbuf_reset(&s->out);
    if (s->o->resend) queue_resend(s);
}

/* Drops the client with a reset (SO_LINGER 0): what it has not read, and
 * what it sent that we have not read, is gone. */
static void reset_client(server *s, const char *why) {
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(s->cl.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    drop_client(s, why);
}

/* A client that does not read would never see an orderly close (its FIN
 * waits behind the bytes it does not take): reset the connection. */
static void abort_client(server *s) {
    char why[96];
    snprintf(why, sizeof why, "not reading: %zu bytes unsent, over the limit of %zu", sym_outbuf_pending(&s->out), s->out_limit);
    reset_client(s, why);
}

static int q_push(server *s, uint64_t end, int first, int n, int resend) {
    if (s->q_n == s->q_cap) {
        size_t cap = s->q_cap ? s->q_cap * 2 : 64;
        unsent_msg *q = malloc(cap * sizeof *q);
        if (!q) return -1;
        for (size_t i = 0; i < s->q_n; i++) q[i] = s->q[(s->q_head + i) % s->q_cap];
        free(s->q);
        s->q = q, s->q_cap = cap, s->q_head = 0;
    }
    s->q[(s->q_head + s->q_n++) % s->q_cap] = (unsent_msg){end, first, n, resend};
    return 0;
}

/* With --drop-after still to come: the bytes up to the end of the message
 * that holds the N-th request written, so the cut comes right after it. */
static size_t bytes_to_cut(const server *s) {
    size_t n = sym_outbuf_pending(&s->out);
    if (s->o->drop_after <= 0 || s->cut_done) return n;
    uint64_t rows = s->rows_written;
    for (size_t i = 0; i < s->q_n; i++) {
        const unsent_msg *m = &s->q[(s->q_head + i) % s->q_cap];
        if ((rows += (uint64_t)m->n) >= (uint64_t)s->o->drop_after) return (size_t)(m->end - s->written);
    }
    return n;
}

/* Writes what the socket takes now (with --drop-after still to come, no
 * further than its cut, which then follows); a request is sent, and its
 * latency clock starts, once the last byte of its line is handed to the
 * kernel. 1 when the client is gone (dropped here), 0 otherwise. */
static int flush_client(server *s) {
    size_t want = bytes_to_cut(s), done = 0;
    int err = 0;
    while (done < want) {
        ssize_t w = send(s->cl.fd, s->out.buf + s->out.off, want - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
            break;
        }
        s->out.off += (size_t)w, done += (size_t)w;
    }
    if (s->out.off == s->out.len) s->out.off = s->out.len = 0;
    s->written += done;
    if (s->q_n && s->q[s->q_head].end <= s->written) {
        uint64_t t = sym_now_ns();
        while (s->q_n && s->q[s->q_head].end <= s->written) {
            const unsent_msg *m = &s->q[s->q_head];
            for (int j = 0; j < m->n; j++) sym_score_sent(s->score, m->resend ? s->resend[m->first + j] : m->first + j, t);
            s->rows_written += (uint64_t)m->n;
            s->q_head = (s->q_head + 1) % s->q_cap;
            s->q_n--;
        }
    }
    if (err) {
        drop_client(s, strerror(err));
        return 1;
    }
    if (s->o->drop_after > 0 && !s->cut_done && s->rows_written >= (uint64_t)s->o->drop_after) {
        char why[96];
        snprintf(why, sizeof why, "cut by --drop-after %lld: %llu requests written", s->o->drop_after,
                 (unsigned long long)s->rows_written);
        s->cut_done = 1;
        reset_client(s, why);
        return 1;
    }
    return 0;
}

static int grow_su(server *s, int n) {
    if (n <= s->su_cap) return 0;
    int cap = n * 2;
    uint64_t *u = realloc(s->su_uids, (size_t)cap * sizeof *u);
    if (u) s->su_uids = u;
    double *z = realloc(s->su_zero, (size_t)cap * sizeof *z);
    if (z) s->su_zero = z;
    double *a = realloc(s->su_acc, (size_t)cap * sizeof *a);
    if (a) s->su_acc = a;
    double *l = realloc(s->su_lat, (size_t)cap * sizeof *l);
    if (l) s->su_lat = l;
    if (!u || !z || !a || !l) return -1;
    memset(s->su_zero, 0, (size_t)cap * sizeof *z);
    s->su_cap = cap;
    return 0;
}

/* Counts a bad input (sym_score_bad_input), logs the first few. */
static void note_bad(server *s, sym_bad_kind kind, const char *id, const char *text, size_t len, const char *why) {
    sym_score_bad_input(s->score, kind, id, text, len, why);
    uint64_t n = s->score->invalid + s->score->invalid_ids + s->score->bad_messages;
    if (n > LOG_BAD_MAX + 1) return;
    if (n == LOG_BAD_MAX + 1) sym_warn("replay: further bad input is counted in the report, not logged");
    else if (kind == SYM_BAD_PREDICTION) sym_warn("replay: bad prediction from the client for unique_id %s: %s", id, why);
    else if (kind == SYM_BAD_ID) sym_warn("replay: bad unique_id %s from the client: %s", id, why);
    else sym_warn("replay: bad message from the client: %s", why);
}

static int bad_message(server *s, const char *line, size_t len, const char *error, const char *why) {
    note_bad(s, SYM_BAD_MESSAGE, "", line, len, why);
    return sym_proto_write_error(&s->out, error, why);
}

/* A prediction row as text for the report: cJSON's printer, except that a
 * number too large for a double shows as inf (cJSON writes null). */
static void row_text(const cJSON *row, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    if (!cJSON_IsArray(row)) {
        char *t = cJSON_PrintUnformatted(row);
        snprintf(buf, cap, "%s", t ? t : "?");
        cJSON_free(t);
        return;
    }
    for (const cJSON *x = row->child; n < cap; x = x->next) {
        const char *sep = x == row->child ? "[" : ",";
        if (!x) {
            snprintf(buf + n, cap - n, "%s]", row->child ? "" : "[");
            return;
        }
        if (cJSON_IsNumber(x) && !isfinite(x->valuedouble)) {
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep, x->valuedouble < 0 ? "-inf" : "inf");
        } else {
            char *t = cJSON_PrintUnformatted(x);
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep, t ? t : "?");
            cJSON_free(t);
        }
    }
}

/* A bad row: counted, kept as an example while there is room (with the
 * row's prediction as text), answered with an `error` naming the id. */
static int bad_row(server *s, sym_bad_kind kind, const char *id, const cJSON *pred, const char *why) {
    char text[sizeof s->score->examples[0].text];
    text[0] = '\0';
    if (s->score->n_examples < SYM_SCORE_EXAMPLES) row_text(pred, text, sizeof text);
    note_bad(s, kind, id, text, strlen(text), why);
    char details[256];
    snprintf(details, sizeof details, "%s %s: %s", kind == SYM_BAD_ID ? "unique_id" : "request", id, why);
    return sym_proto_write_error(&s->out, "bad answer", details);
}

/* Rows are taken one by one: a bad row costs only itself. Its id stays
 * unanswered; a later valid answer of it counts. */
static int on_response(server *s, const cJSON *root, const char *line, size_t len, uint64_t t) {
    const cJSON *uids, *preds;
    int n;
    sym_err e = {{0}};
    if (sym_proto_response(root, &uids, &preds, &n, &e)) return bad_message(s, line, len, "bad message", e.msg);
    if (grow_su(s, n)) return -1;
    int k = 0;
    const cJSON *u = uids->child, *p = preds->child;
    for (; u && p; u = u->next, p = p->next) {
        uint64_t uid;
        double pred[SYM_TOWERS], lat, err;
        char id[40];
        if (sym_proto_uid(u, &uid, &e)) {
            if (sym_json_is_int(u)) { /* an integer, just not one of ours (-1, 2^64) */
                s->score->unknown++;
                sym_warn("replay: answer for unique_id %.32s: never sent", u->valuestring);
                continue;
            }
            if (cJSON_IsNumber(u)) { /* the source text is gone: say why the value shown is refused */
                snprintf(id, sizeof id, "%.17g", u->valuedouble);
                snprintf(e.msg, sizeof e.msg, "unique_id is a number with a fraction or an exponent, not an integer");
            } else {
                row_text(u, id, sizeof id);
            }
            if (bad_row(s, SYM_BAD_ID, id, p, e.msg)) return -1;
            continue;
        }
        snprintf(id, sizeof id, "%llu", (unsigned long long)uid);
        if (sym_proto_prediction(p, pred, &e)) { /* not 4 finite numbers */
            if (bad_row(s, SYM_BAD_PREDICTION, id, p, e.msg)) return -1;
            continue;
        }
        int r = sym_score_answer(s->score, uid, pred, t, &lat, &err);
        if (r == SYM_SCORE_OK) {
            s->su_uids[k] = uid, s->su_lat[k] = lat, s->su_acc[k] = isnan(err) ? 0 : err;
            k++;
        } else if (r == SYM_SCORE_REANSWERED) { /* scored once already: no score_update */
            sym_debug("replay: answer for unique_id %s again, the same", id);
        } else {
            sym_warn("replay: answer for unique_id %s: %s", id, r == SYM_SCORE_DUPLICATE ? "duplicate" : "never sent");
        }
    }
    /* accuracies: max abs error over the towers vs --expected (0 without) */
    return k ? sym_proto_write_score_update(&s->out, s->su_uids, s->su_zero, s->su_acc, s->su_lat, k) : 0;
}

static int on_client_line(server *s, const char *line, size_t len) {
    uint64_t t = sym_now_ns();
    cJSON *root;
    sym_msg_type type;
    sym_err e = {{0}};
    if (!len) return 0;
    if (sym_proto_parse(line, len, &root, &type, &e)) return bad_message(s, line, len, "bad message", e.msg);
    int rc = 0;
    if (type == SYM_MSG_INFERENCE_RESPONSE) {
        rc = on_response(s, root, line, len, t);
    } else if (type == SYM_MSG_ERROR) {
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(root, "error"), *d = cJSON_GetObjectItemCaseSensitive(root, "details");
        s->score->errors_received++;
        sym_debug("replay: client error: %s: %s", cJSON_IsString(er) ? er->valuestring : "?", cJSON_IsString(d) ? d->valuestring : "-");
    } else if (type == SYM_MSG_INFERENCE_REQUEST) {
        rc = bad_message(s, line, len, "unexpected message", "inference_request goes from the server to the client");
    } /* register again, heartbeat and the other messages that need no answer: nothing to do */
    cJSON_Delete(root);
    return rc;
}

/* The client's buffered lines. 0; 1 when it leaves too much of our output
 * unread (the caller drops it); -1 when memory runs out. */
static int client_lines(server *s) {
    char *line;
    size_t len;
    int k;
    while ((k = sym_lr_next(&s->cl.lr, &line, &len)) != SYM_LR_NONE) {
        int rc;
        if (k == SYM_LR_OVERLONG) {
            char why[64];
            snprintf(why, sizeof why, "line over %zu bytes", s->cl.lr.max_line);
            rc = bad_message(s, line, len, "bad message", why);
        } else {
            rc = on_client_line(s, line, len);
        }
        if (rc) return -1;
        if (sym_outbuf_pending(&s->out) > s->out_limit) return 1;
    }
    return 0;
}

/* s->cl is the client from now on (registered, or connected to with
 * --connect): the stream starts, or goes on. -1 when memory runs out. */
static int client_ready(server *s) {
    s->cl.lr.max_line = SYM_NET_MAX_LINE_DEFAULT;
    /* The kernel takes at most NOTSENT_MAX bytes it cannot send yet: the
     * rest of a backlog waits in our buffer, unstamped. Best effort. */
    int lowat = NOTSENT_MAX;
    setsockopt(s->cl.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
    if (!s->t0) s->t0 = sym_now_ns();
    s->out_limit = OUT_MAX;
    if (s->o->inject_bad && s->score->n_sent == 0) {
        if (send_bad(&s->out, s->st->n_features)) return -1;
        s->out_limit += sym_outbuf_pending(&s->out); /* our own lines are not the client's backlog */
    }
    return 0;
}

/* Pending connection i registered: it is the client from now on, and the
 * others waiting are closed. */
static int promote(server *s, int i) {
    s->cl = s->pend[i];
    memmove(&s->pend[i], &s->pend[i + 1], (size_t)(s->n_pend - i - 1) * sizeof s->pend[0]);
    s->n_pend--;
    while (s->n_pend) {
        say_once(s->pend[0].fd, "not registered", "another connection registered first");
        pending_close(s, 0, "another connection registered");
    }
    sym_info("replay: client registered; streaming %d requests", s->st->n);
    if (client_ready(s)) return -1;
    return client_lines(s) < 0 ? -1 : 0; /* what it sent after its register (the loop checks OUT_MAX) */
}

/* Reads a connection that has not registered: its first lines may only be
 * a register (anything else draws an error), and its input is bounded by
 * PENDING_LINE_MAX. */
static int read_pending(server *s, int i) {
    conn *c = &s->pend[i];
    ssize_t got = sym_lr_read_fd(&c->lr, c->fd);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (got <= 0) {
        pending_close(s, i, got == 0 ? "closed by the peer" : strerror(errno));
        return 0;
    }
    char *line;
    size_t len;
    int k;
    while ((k = sym_lr_next(&c->lr, &line, &len)) != SYM_LR_NONE) {
        if (k == SYM_LR_OVERLONG) {
            pending_close(s, i, "a line over 4 KiB before register");
            return 0;
        }
        cJSON *root;
        sym_msg_type type;
        sym_err e = {{0}};
        if (!len) continue;
        if (sym_proto_parse(line, len, &root, &type, &e)) {
            say_once(c->fd, "bad message", e.msg);
            continue;
        }
        cJSON_Delete(root);
        if (type == SYM_MSG_REGISTER) return promote(s, i);
        say_once(c->fd, "not registered", "send register first");
    }
    return 0;
}

static void accept_all(server *s) {
    for (int k = 0; k < 16; k++) {
        int c = sym_tcp_accept(s->lfd);
        if (c < 0) return;
        if (s->cl.fd >= 0) {
            sym_warn("replay: a connection while a client is registered; refused");
            say_once(c, "not registered", "a client is already registered");
            close(c);
            continue;
        }
        if (s->n_pend == PENDING_MAX) pending_close(s, 0, "the oldest of too many connections waiting to register");
        if (conn_open(&s->pend[s->n_pend], c)) {
            sym_warn("replay: out of memory for a connection; refused");
            conn_close(&s->pend[s->n_pend]);
            continue;
        }
        s->n_pend++;
        sym_info("replay: connection accepted; waiting for its register");
    }
}

static void batch_row(server *s, int k, int i) {
    s->batch_uids[k] = s->st->uids[i], s->batch_syms[k] = s->st->symbols[i], s->batch_feat[k] = s->st->features[i];
}

/* Queues the rows to re-send, then every row due now, batch_rows per
 * message, while the client takes our bytes. 0, 1 when the client is gone
 * (dropped), -1 when memory runs out. */
static int send_due(server *s) {
    uint64_t now = sym_now_ns();
    while (sym_outbuf_pending(&s->out) < SEND_HIGH_WATER) {
        int k = 0, resend = s->rs_head < s->rs_n, first = resend ? s->rs_head : s->next;
        if (resend) {
            for (; k < s->o->batch_rows && first + k < s->rs_n; k++) batch_row(s, k, s->resend[first + k]);
        } else {
            if (s->next == s->st->n || s->t0 + s->st->due_ns[s->next] > now) break;
            for (; k < s->o->batch_rows && first + k < s->st->n && s->t0 + s->st->due_ns[first + k] <= now; k++)
                batch_row(s, k, first + k);
        }
        if (sym_proto_write_request(&s->out, s->batch_uids, s->batch_syms, s->batch_feat, k, s->st->n_features,
                                    sym_proto_wall_s()) ||
            q_push(s, s->written + sym_outbuf_pending(&s->out), first, k, resend))
            return -1;
        if (resend) s->rs_head += k;
        else s->next += k;
        if (flush_client(s)) return 1;
    }
    return 0;
}

static int done(const server *s) {
    return s->next == s->st->n && s->score->answered == (uint64_t)s->st->n &&
           (!s->o->inject_bad || s->score->errors_received >= (uint64_t)sym_replay_bad_line_count());
}

int sym_replay_run(const sym_replay_opts *o, const sym_stream *st, sym_score *score, sym_err *e) {
    server s = {.o = o, .st = st, .score = score, .lfd = -1, .cl = {.fd = -1}};
    int bound = 0, rc = -1;
    int bmax = o->batch_rows > 0 ? o->batch_rows : 1;
    s.batch_uids = malloc((size_t)bmax * sizeof *s.batch_uids);
    s.batch_syms = malloc((size_t)bmax * sizeof *s.batch_syms);
    s.batch_feat = malloc((size_t)bmax * sizeof *s.batch_feat);
    if (o->resend) s.resend = malloc((size_t)(st->n > 0 ? st->n : 1) * sizeof *s.resend);
    if (!s.batch_uids || !s.batch_syms || !s.batch_feat || (o->resend && !s.resend)) {
        sym_fail(e, "out of memory");
        goto out;
    }
    if (o->connect_host) { /* a client of serve: no listening, no register */
        int fd = sym_tcp_connect(o->connect_host, o->connect_port, (int)(o->timeout_s * 1000), e);
        if (fd < 0) goto out;
        if (conn_open(&s.cl, fd)) {
            conn_close(&s.cl);
            sym_fail(e, "out of memory");
            goto out;
        }
        sym_info("replay: connected to %s:%d; streaming %d requests", o->connect_host, o->connect_port, st->n);
        if (client_ready(&s)) {
            sym_fail(e, "out of memory");
            goto out;
        }
    } else {
        s.lfd = sym_tcp_listen(o->host, o->port, &bound, e);
        if (s.lfd < 0) goto out;
        sym_info("replay: listening on %s:%d", o->host, bound);
        if (o->on_listen) o->on_listen(bound);
    }
    uint64_t timeout_ns = (uint64_t)(o->timeout_s * 1e9), idle_since = sym_now_ns();
    double reg_s = o->register_timeout_s > 0 ? o->register_timeout_s : 10;
    uint64_t reg_ns = (uint64_t)(reg_s * 1e9);
    for (;;) {
        if (done(&s)) {
            rc = 0;
            break;
        }
        if (o->connect_host && s.cl.fd < 0) { /* the server is gone: nothing more can be answered */
            sym_warn("replay: connection to %s:%d lost: %llu of %d answered", o->connect_host, o->connect_port,
                     (unsigned long long)score->answered, st->n);
            rc = 1;
            break;
        }
        uint64_t now = sym_now_ns();
        /* the clock runs while there is no client, after the last send, and
         * while the client leaves our bytes unread */
        int stalled = sym_outbuf_pending(&s.out) >= SEND_HIGH_WATER;
        int all_sent = s.next == st->n && s.rs_head == s.rs_n;
        int waiting = s.cl.fd < 0 || all_sent || stalled;
        if (!waiting) idle_since = now;
        if (waiting && now - idle_since > timeout_ns) {
            sym_warn("replay: timed out after %.1f s: %llu of %d answered", o->timeout_s,
                     (unsigned long long)score->answered, st->n);
            rc = 1;
            break;
        }
        for (int i = 0; i < s.n_pend;) {
            if (now - s.pend[i].t_accept > reg_ns) {
                char why[64];
                snprintf(why, sizeof why, "no register within %.1f s", reg_s);
                say_once(s.pend[i].fd, "not registered", why);
                pending_close(&s, i, why);
            } else {
                i++;
            }
        }
        struct pollfd f[2 + PENDING_MAX];
        f[0] = (struct pollfd){.fd = s.lfd, .events = POLLIN}; /* -1 with --connect */
        f[1] = (struct pollfd){.fd = s.cl.fd, .events = POLLIN}; /* fd -1: poll skips it */
        if (s.cl.fd >= 0 && sym_outbuf_pending(&s.out)) f[1].events |= POLLOUT;
        int nf = 2;
        for (int i = 0; i < s.n_pend; i++) f[nf++] = (struct pollfd){.fd = s.pend[i].fd, .events = POLLIN};
        /* sub-millisecond waits: poll's ms granularity would add up to 1 ms to every gap */
        struct timespec ts = {0, 100000000};
        if (s.cl.fd >= 0 && s.rs_head < s.rs_n && !stalled) {
            ts.tv_nsec = 0;
        } else if (s.cl.fd >= 0 && s.next < st->n && !stalled) {
            uint64_t due = s.t0 + st->due_ns[s.next];
            uint64_t w = due > now ? due - now : 0;
            if (w < 100000000) ts.tv_nsec = (long)w;
        }
        int n = ppoll(f, (nfds_t)nf, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            sym_fail(e, "poll: %s", strerror(errno));
            break;
        }
        if (n > 0 && s.cl.fd >= 0 && (f[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            for (int r = 0; r < 16 && s.cl.fd >= 0; r++) {
                ssize_t got = sym_lr_read_fd(&s.cl.lr, s.cl.fd);
                if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (got <= 0) {
                    drop_client(&s, got == 0 ? "closed" : strerror(errno));
                    break;
                }
                int c = client_lines(&s);
                if (c < 0) {
                    sym_fail(e, "out of memory");
                    goto out;
                }
                if (c > 0) abort_client(&s);
            }
        }
        for (int k = 2; n > 0 && k < nf; k++) {
            int i = f[k].revents ? pending_find(&s, f[k].fd) : -1; /* a register closes the others */
            if (i >= 0 && read_pending(&s, i)) {
                sym_fail(e, "out of memory");
                goto out;
            }
        }
        if (n > 0 && (f[0].revents & POLLIN)) accept_all(&s);
        if (s.cl.fd >= 0 && sym_outbuf_pending(&s.out) > s.out_limit) abort_client(&s); /* lines read with its register */
        if (s.cl.fd >= 0) {
            int r = send_due(&s);
            if (r < 0) {
                sym_fail(e, "out of memory");
                goto out;
            }
            if (r == 0) flush_client(&s); /* what waited for POLLOUT; drops a client that is gone */
        }
    }
    if (s.cl.fd >= 0) flush_client(&s);
out:
    conn_close(&s.cl);
    while (s.n_pend) conn_close(&s.pend[--s.n_pend]);
    if (s.lfd >= 0) close(s.lfd);
    sym_outbuf_free(&s.out);
    free(s.q);
    free(s.resend);
    free(s.batch_uids), free(s.batch_syms), free(s.batch_feat);
    free(s.su_uids), free(s.su_zero), free(s.su_acc), free(s.su_lat);
    return rc;
}
