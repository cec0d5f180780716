/* The play event loop; see play.h. */
#include "net/play.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "net/line_reader.h"
#include "net/protocol.h"
#include "net/request_reader.h"
#include "net/tcp.h"
#include "net/uid_window.h"

#define POLL_BATCH 256
#define READS_PER_WAKE 16 /* bound the bytes read per wake so answers go out between reads */

void sym_play_opts_default(sym_play_opts *o) {
    *o = (sym_play_opts){.host = "127.0.0.1",
                         .heartbeat_s = 5,
                         .backoff_min_s = 0.1,
                         .backoff_max_s = 5,
                         .max_reconnects = -1,
                         .connect_timeout_ms = 2000,
                         .max_line_bytes = SYM_NET_MAX_LINE_DEFAULT,
                         .max_output_bytes = SYM_NET_MAX_OUTPUT_DEFAULT,
                         .id_window = SYM_NET_ID_WINDOW_DEFAULT};
}

typedef struct {
    sym_engine *g;
    const sym_play_opts *o;
    sym_play_stats *st;
    int fd;
    int32_t gen;       /* connection number (the window's entries in flight name theirs) */
    uint64_t inflight; /* requests to be answered on the current connection */
    int n_features;
    sym_line_reader lr;
    sym_outbuf out;
    sym_uid_window seen; /* the unique_ids accepted, across connections (exactly once) */
    sym_request req;
    sym_request_msg msg; /* the rows of the inference_request being served */
    sym_prediction preds[POLL_BATCH];
    uint64_t ok_uids[POLL_BATCH];
    double ok_pred[POLL_BATCH][4];
    int n_re, cap_re; /* re-sent requests of the current message answered from the window */
    uint64_t *re_uids;
    double (*re_pred)[4];
    int oom;
    /* with a store: the engine holds a lost shard process's symbols until
     * the store restores them (sym_engine_hold_lost); a restore that fails
     * stops play (lost, why), as nothing else gives them their state */
    int lost_seen;   /* sym_engine_shards_lost handled so far */
    int restore_due; /* a loss counted since the last restore began */
    int restoring;   /* a restore runs */
    int lost;
    char lost_why[512];
    int tries;      /* connection attempts since the last good one (1 right after a loss) */
    int lines_wait; /* complete lines left in the reader while answers wait (drain_lines) */
    int row_next;   /* the next row of a message paused by waiting answers; -1: none */
} play;

/* The server stopped reading: answers pile up past max_output_bytes. */
static int out_full(const play *p) { return sym_outbuf_pending(&p->out) > p->o->max_output_bytes; }

static int stopped(const play *p) { return p->o->stop && atomic_load(p->o->stop); }

static void send_error(play *p, const char *error, const char *details) {
    if (p->fd < 0) return;
    if (sym_proto_write_error(&p->out, error, details)) p->oom = 1;
}

static void refuse_row(play *p, uint64_t uid, const char *why) {
    char details[640];
    snprintf(details, sizeof details, "unique_id %llu: %s", (unsigned long long)uid, why);
    sym_warn("play: request rejected: %s", details);
    p->st->rejected++;
    send_error(p, "request rejected", details);
}

static void refuse_message(play *p, const char *why) {
    sym_warn("play: bad message: %s", why);
    p->st->bad_messages++;
    send_error(p, "bad message", why);
}

/* A line refused whole: the error names the unique_ids that could be read
 * in it (none of them served), so the server knows what went unanswered. */
static void refuse_line(play *p, const char *why) {
    char details[1024];
    p->st->rejected += (uint64_t)sym_request_refusal(&p->msg, why, details, sizeof details);
    refuse_message(p, details);
}

/* Moves every finished prediction to the wire: one response for the
 * successes, one error per engine refusal. An answer whose connection is
 * gone is kept in the window: the server may send its request again. */
static void collect(play *p) {
    /* read before the polls: a loss counted here has every answer that came
     * before it in the queue they empty, so the log holds them all when
     * its restore reads it */
    int lost = p->o->store ? sym_engine_shards_lost(p->g) : 0;
    int n;
    do {
        n = sym_engine_poll(p->g, p->preds, POLL_BATCH, 0);
        int k_ok = 0, orphans = 0;
        for (int i = 0; i < n; i++) {
            const sym_prediction *r = &p->preds[i];
            sym_uid_entry *en = sym_uid_window_get(&p->seen, r->uid);
            if (!en || en->state != SYM_UID_IN_FLIGHT) { /* cannot happen: in flight ids are never forgotten */
                sym_warn("play: a prediction for unique_id %llu that is not in flight is dropped", (unsigned long long)r->uid);
                continue;
            }
            int here = en->conn == p->gen && p->fd >= 0;
            if (here) p->inflight--;
            if (r->status != 0) { /* refused by the engine: never accepted after all */
                if (p->o->store && sym_store_log_refused(p->o->store, r->uid)) p->oom = 1;
                sym_uid_window_forget(&p->seen, r->uid);
                if (here) refuse_row(p, r->uid, r->error[0] ? r->error : "refused by the engine");
                continue;
            }
            en->state = SYM_UID_ANSWERED;
            memcpy(en->pred, r->pred, sizeof en->pred);
            if (p->o->store && sym_store_log_answer(p->o->store, en->sym, r->uid, en->digest, r->pred)) p->oom = 1;
            if (!here) {
                orphans++;
                continue;
            }
            p->ok_uids[k_ok] = r->uid;
            memcpy(p->ok_pred[k_ok], r->pred, sizeof p->ok_pred[k_ok]);
            for (int t = 0; t < 4; t++)
                if (!isfinite(r->pred[t]))
                    sym_warn("play: request %llu: tower %d output is not finite (sent as null)", (unsigned long long)r->uid, t);
            k_ok++;
        }
        if (orphans) {
            p->st->orphaned += (uint64_t)orphans;
            sym_info("play: %d answers of a lost connection kept for a re-send", orphans);
        }
        if (k_ok) {
            if (sym_proto_write_response(&p->out, p->ok_uids, (const double(*)[4])p->ok_pred, k_ok, sym_proto_wall_s()))
                p->oom = 1;
            p->st->answered += (uint64_t)k_ok;
            p->st->responses_sent++;
        }
    } while (n == POLL_BATCH);
    if (lost > p->lost_seen) p->lost_seen = lost, p->restore_due = 1;
}

/* Answers of re-sent requests found in the window, one response. */
static void flush_reanswers(play *p) {
    if (!p->n_re) return;
    if (p->fd >= 0) {
        if (sym_proto_write_response(&p->out, p->re_uids, (const double(*)[4])p->re_pred, p->n_re, sym_proto_wall_s()))
            p->oom = 1;
        p->st->responses_sent++;
    }
    p->n_re = 0;
}

static void reanswer(play *p, const sym_uid_entry *en) {
    if (p->n_re == p->cap_re) {
        int cap = p->cap_re ? 2 * p->cap_re : 64;
        uint64_t *u = realloc(p->re_uids, (size_t)cap * sizeof *u);
        if (u) p->re_uids = u;
        double(*pr)[4] = realloc(p->re_pred, (size_t)cap * sizeof *pr);
        if (pr) p->re_pred = pr;
        if (!u || !pr) {
            p->oom = 1;
            return;
        }
        p->cap_re = cap;
    }
    p->re_uids[p->n_re] = en->uid;
    memcpy(p->re_pred[p->n_re], en->pred, sizeof en->pred);
    p->n_re++;
    p->st->reanswered++;
}

/* A valid row (p->req holds its symbol and features) whose id is already in
 * the window: the same request sent again is answered from the window or,
 * still in flight, once when done, on this connection; it never steps its
 * symbol again. Another request under an id answered on an earlier
 * connection is a server numbering from the start again: 0, the id is
 * forgotten and the request served anew. Under an id in flight, or one
 * this connection already used, it is refused. 1 when handled. */
static int seen_before(play *p, sym_uid_entry *en, uint64_t uid, uint64_t digest) {
    if (en->digest != digest) {
        if (en->state == SYM_UID_IN_FLIGHT || en->conn == p->gen) {
            refuse_row(p, uid, en->state == SYM_UID_IN_FLIGHT ? "unique_id is in flight for a different request"
                                                             : "unique_id was used on this connection for a different request");
            return 1;
        }
        p->st->ids_reused++;
        sym_info("play: unique_id %llu was answered on an earlier connection for another request: served as a new one",
                 (unsigned long long)uid);
        sym_uid_window_forget(&p->seen, uid);
        return 0;
    }
    p->st->duplicates++;
    if (en->state == SYM_UID_ANSWERED) {
        reanswer(p, en);
    } else if (en->conn != p->gen) { /* sent on a lost connection: its answer comes here */
        p->inflight++;
    } /* else in flight on this connection already: answered once */
    en->conn = p->gen;
    return 1;
}

/* One row with a usable unique_id: a bad row (rc, why) is refused; a row
 * whose id was accepted before goes to seen_before; the rest is submitted
 * (p->req: symbol and features already in place). */
static void serve_row(play *p, uint64_t uid, int rc, const char *why) {
    if (rc) {
        refuse_row(p, uid, why);
        return;
    }
    uint64_t digest = sym_uid_digest(p->req.symbol, p->req.features, p->n_features);
    sym_uid_entry *en = sym_uid_window_get(&p->seen, uid);
    if (en && seen_before(p, en, uid, digest)) return;
    sym_err e = {{0}};
    p->req.uid = uid;
    p->req.n_features = p->n_features;
    if (sym_engine_submit(p->g, &p->req, &e)) {
        refuse_row(p, uid, e.msg);
        return;
    }
    int32_t sym = 0;
    if (p->o->store && ((sym = sym_store_symbol(p->o->store, p->req.symbol)) < 0 ||
                        sym_store_log_request(p->o->store, uid, p->req.symbol, p->req.features, p->n_features))) {
        p->oom = 1;
        return;
    }
    if (!(en = sym_uid_window_add(&p->seen, uid))) {
        p->oom = 1;
        return;
    }
    en->sym = sym;
    en->digest = digest;
    en->conn = p->gen;
    en->state = SYM_UID_IN_FLIGHT;
    p->inflight++;
    p->st->submitted++;
}

/* The rows of a well-formed inference_request, in list order, from
 * p->row_next on. When the answers waiting pass max_output_bytes the
 * message pauses there (a message of many bad rows would otherwise make
 * errors without bound) and drain_lines resumes it once the server has
 * taken some. */
static void on_request(play *p) {
    const sym_request_msg *m = &p->msg;
    for (int k = p->row_next; k < m->n && !p->oom; k++) {
        if (out_full(p)) {
            flush_reanswers(p);
            p->row_next = k;
            return;
        }
        uint64_t uid;
        int uid_ok;
        const char *symbol;
        const float *features;
        sym_err e = {{0}};
        p->st->requests++;
        int rc = sym_request_row(m, k, &uid, &uid_ok, &symbol, &features, &e);
        if (!uid_ok) {
            char why[640];
            snprintf(why, sizeof why, "row %d of the message: %s", k, e.msg);
            p->st->rejected++;
            sym_warn("play: request without a usable unique_id rejected: %s", why);
            send_error(p, "request rejected", why);
            continue;
        }
        if (!rc) {
            memcpy(p->req.symbol, symbol, strlen(symbol) + 1);
            memcpy(p->req.features, features, (size_t)p->n_features * sizeof *features);
        }
        serve_row(p, uid, rc, e.msg);
    }
    flush_reanswers(p);
    p->row_next = -1;
}

static void on_score(play *p, const cJSON *root) {
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(root, "latencies_ms");
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(root, "accuracies");
    p->st->score_updates++;
    const cJSON *x;
    cJSON_ArrayForEach(x, lat) {
        if (cJSON_IsNumber(x)) p->st->score_latency_ms_sum += x->valuedouble, p->st->score_rows++;
    }
    cJSON_ArrayForEach(x, acc) {
        if (cJSON_IsNumber(x)) p->st->score_accuracy_sum += x->valuedouble;
    }
    sym_debug("play: score_update of %d rows", cJSON_GetArraySize(lat));
}

/* A message other than inference_request, read into a tree. */
static void on_other(play *p, const char *line, size_t len) {
    cJSON *root;
    sym_msg_type t;
    sym_err e = {{0}};
    if (len > SYM_PLAY_MAX_OTHER) {
        char why[160];
        snprintf(why, sizeof why, "a '%s' message of %zu bytes: only inference_request may be longer than %d bytes",
                 p->msg.type, len, SYM_PLAY_MAX_OTHER);
        refuse_message(p, why);
        return;
    }
    if (sym_proto_parse(line, len, &root, &t, &e)) {
        refuse_message(p, e.msg);
        return;
    }
    switch (t) {
    case SYM_MSG_SCORE_UPDATE: on_score(p, root); break;
    case SYM_MSG_HEARTBEAT: break;
    case SYM_MSG_STATS_UPDATE: p->st->stats_updates++; break;
    case SYM_MSG_ERROR: {
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(root, "error"), *d = cJSON_GetObjectItemCaseSensitive(root, "details");
        p->st->errors_received++;
        sym_warn("play: server says error: %s (%s)", cJSON_IsString(er) ? er->valuestring : "?", cJSON_IsString(d) ? d->valuestring : "no details");
        break;
    }
    default: {
        char why[96];
        snprintf(why, sizeof why, "message_type '%s' is not sent by a server", sym_msg_type_name(t));
        refuse_message(p, why);
    }
    }
    cJSON_Delete(root);
}

static void on_line(play *p, const char *line, size_t len) {
    sym_err e = {{0}};
    if (len == 0) return; /* blank line: keep-alive, nothing to answer */
    p->st->messages++;
    switch (sym_request_read(&p->msg, line, len, p->n_features, &e)) {
    case SYM_LINE_REQUEST:
        p->row_next = 0;
        on_request(p);
        break;
    case SYM_LINE_OTHER: on_other(p, line, len); break;
    case SYM_LINE_BAD: refuse_line(p, e.msg); break;
    }
}

/* A line past max_line_bytes, dropped up to its end: the ids in the part
 * that was read are named in the error. */
static void on_overlong(play *p, const char *head, size_t len) {
    sym_err e = {{0}};
    char why[200];
    p->st->messages++;
    p->st->overlong++;
    snprintf(why, sizeof why, "message longer than max_line_bytes (%zu bytes): dropped up to its end of line",
             p->o->max_line_bytes);
    if (sym_request_read(&p->msg, head, len, p->n_features, &e) == SYM_LINE_OTHER) p->msg.nu = 0;
    refuse_line(p, why);
}

static void disconnect(play *p, const char *why) {
    size_t partial = sym_lr_partial(&p->lr);
    if (p->row_next >= 0) {
        sym_warn("play: %d rows of a message not yet served are dropped with the connection", p->msg.n - p->row_next);
        p->row_next = -1;
    }
    if (partial && p->lines_wait) {
        sym_warn("play: %zu bytes of lines read but not yet served are dropped with the connection", partial);
    } else if (partial) {
        p->st->cut_off++;
        sym_warn("play: a message cut off by the disconnect (%zu bytes) is dropped", partial);
    }
    sym_warn("play: connection lost (%s); %llu requests of it in flight will not be answered", why,
             (unsigned long long)p->inflight);
    close(p->fd);
    p->fd = -1;
    p->tries = 1;
    p->inflight = 0;
    p->lines_wait = 0;
    sym_lr_reset(&p->lr);
    sym_outbuf_reset(&p->out);
}

/* Serves the complete lines buffered, until none is left or the answers
 * waiting pass max_output_bytes: then the rest waits in the reader
 * (lines_wait) and nothing more is read until the server takes some. */
static void drain_lines(play *p) {
    char *line;
    size_t len;
    int k;
    p->lines_wait = 0;
    while (!p->oom && p->fd >= 0) {
        if (p->row_next >= 0) on_request(p); /* the rest of a paused message first */
        if (out_full(p)) {
            p->lines_wait = 1;
            return;
        }
        if ((k = sym_lr_next(&p->lr, &line, &len)) == SYM_LR_NONE) return;
        if (k == SYM_LR_OVERLONG) on_overlong(p, line, len);
        else on_line(p, line, len);
    }
}

/* Reads what the socket has; 0, or -1 when the connection ended. */
static int on_readable(play *p) {
    for (int r = 0; r < READS_PER_WAKE && !p->lines_wait; r++) {
        ssize_t n = sym_lr_read_fd(&p->lr, p->fd);
        if (n == 0) {
            disconnect(p, "closed by the server");
            return -1;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            disconnect(p, strerror(errno));
            return -1;
        }
        drain_lines(p);
    }
    return 0;
}

/* Answers go out only once the log holds them: -1 (e set) when it cannot
 * be written. Then the store's periodic work (snapshots). */
static int commit(play *p, sym_err *e) {
    return p->o->store ? sym_store_commit(p->o->store, e) || sym_store_tick(p->o->store, e) : 0;
}

static void restore_failed(play *p, const char *why) {
    p->lost = 1;
    snprintf(p->lost_why, sizeof p->lost_why, "%s", why);
}

static void log_restore(play *p, const sym_restore_stats *r) {
    char onto[512] = "";
    size_t len = 0;
    for (int s = 0; s < SYM_MAX_SHARDS && len < sizeof onto; s++)
        if (r->onto[s])
            len += (size_t)snprintf(onto + len, sizeof onto - len, "%s%d onto shard %d", len ? ", " : "", r->onto[s], s);
    p->st->restores++;
    p->st->restored_symbols += (uint64_t)r->symbols;
    p->st->restore_s += r->seconds;
    if (!r->symbols) {
        sym_info("play: a shard process was lost holding no symbol's state: nothing to restore");
        return;
    }
    sym_info("play: restored %d symbols lost with a shard process from the state dir in %.2f s: %s (%d from snapshot "
             "%s, %d log segments read, %llu logged steps replayed, %llu requests in flight to it re-issued)",
             r->symbols, r->seconds, onto, r->from_snapshot, r->snapshot[0] ? r->snapshot : "none", r->segments,
             (unsigned long long)r->replayed, (unsigned long long)r->reissued);
}

/* After a commit: a finished restore's outcome, and the next one started
 * when a loss was counted since (the log now holds every answer before
 * it: collect). */
static void restore_turn(play *p) {
    sym_restore_stats r;
    sym_err e = {{0}};
    int k = p->restoring ? sym_store_restore_poll(p->o->store, &r, &e) : 0;
    if (k) p->restoring = 0;
    if (k < 0) return restore_failed(p, e.msg);
    if (k > 0) log_restore(p, &r);
    if (k > 0 && r.more) p->restore_due = 1;
    if (!p->restore_due || p->restoring) return;
    p->restore_due = 0;
    if (sym_store_restore_start(p->o->store, p->lost_seen, &e)) return restore_failed(p, e.msg);
    p->restoring = 1;
}

/* Sleeps up to s seconds, waking early on stop; keeps draining the engine
 * so its queues never fill while we are away, and the store's log and
 * snapshots going. -1 (e set) when the log fails. */
static int backoff_wait(play *p, double s, sym_err *e) {
    uint64_t until = sym_now_ns() + (uint64_t)(s * 1e9);
    while (!stopped(p) && sym_now_ns() < until) {
        struct pollfd f = {.fd = sym_engine_ready_fd(p->g), .events = POLLIN};
        if (poll(&f, 1, 50) > 0) {
            uint64_t v;
            if (read(f.fd, &v, sizeof v) < 0) { /* cleared elsewhere: fine */
            }
        }
        collect(p);
        if (commit(p, e)) return -1;
        if (p->o->store) restore_turn(p);
    }
    return 0;
}

/* An id answered before this process, read back from the store's log. */
static void recovered_answer(void *ctx, uint64_t uid, uint64_t digest, const double pred[SYM_TOWERS]) {
    play *p = ctx;
    sym_uid_entry *en = sym_uid_window_get(&p->seen, uid);
    if (!en && !(en = sym_uid_window_add(&p->seen, uid))) {
        p->oom = 1;
        return;
    }
    en->digest = digest;
    en->state = SYM_UID_ANSWERED;
    en->conn = 0;
    memcpy(en->pred, pred, sizeof en->pred);
}

int sym_play_run(sym_engine *g, const sym_play_opts *o, sym_play_stats *st, sym_err *e) {
    play p = {.g = g, .o = o, .st = st, .fd = -1, .row_next = -1};
    memset(st, 0, sizeof *st);
    p.n_features = sym_engine_model(g)->features;
    if (p.n_features < 1 || p.n_features > SYM_MAX_FEATURES) return sym_fail(e, "engine model has %d features", p.n_features);
    if (o->max_line_bytes < 1024 || o->max_output_bytes < 1024 || o->id_window < 1)
        return sym_fail(e, "play: max_line_bytes and max_output_bytes must be at least 1024, id_window at least 1");
    if (sym_lr_init(&p.lr, o->max_line_bytes)) return sym_fail(e, "out of memory");
    if (sym_uid_window_init(&p.seen, o->id_window)) {
        sym_lr_free(&p.lr);
        return sym_fail(e, "out of memory");
    }
    int rc = 0;
    if (o->store) {
        if (sym_store_recover(o->store, g, recovered_answer, &p, &st->recovery, e)) {
            sym_lr_free(&p.lr);
            sym_uid_window_free(&p.seen);
            return -1;
        }
        const sym_recovery_stats *r = &st->recovery;
        sym_info("play: state recovered in %.2f s: snapshot %s (%llu symbols, %.1f MB, %.2f s; %d newer skipped), "
                 "%d log segments (%.1f MB, %llu records), %llu steps replayed over %d symbols, %llu ids answered before, "
                 "%llu requests in flight at the stop not applied, %llu torn bytes cut",
                 r->seconds, r->snapshot[0] ? r->snapshot : "none", (unsigned long long)r->snapshot_symbols,
                 (double)r->snapshot_bytes / 1e6, r->snapshot_seconds, r->snapshots_skipped, r->segments,
                 (double)r->log_bytes / 1e6, (unsigned long long)r->records, (unsigned long long)r->replayed, r->symbols,
                 (unsigned long long)r->answers, (unsigned long long)r->unanswered, (unsigned long long)r->torn_bytes);
        if (r->mismatched)
            sym_warn("play: %llu replayed steps answered differently from the log (largest difference %.3g)",
                     (unsigned long long)r->mismatched, r->max_diff);
        if (sym_engine_hold_lost(g, e)) { /* a lost shard process's symbols wait for their restore */
            sym_lr_free(&p.lr);
            sym_uid_window_free(&p.seen);
            return -1;
        }
    }
    double backoff = o->backoff_min_s;
    uint64_t next_hb = 0, hb_ns = (uint64_t)(o->heartbeat_s * 1e9);
    int efd = sym_engine_ready_fd(g);
    while (!stopped(&p) && !p.oom && !p.lost) {
        if (p.fd < 0) {
            if (p.tries > 0) { /* after a failed attempt or a lost connection */
                if (o->max_reconnects >= 0 && p.tries > o->max_reconnects) {
                    if (!st->connects) rc = sym_fail(e, "could not connect to %s:%d", o->host, o->port);
                    break;
                }
                if (backoff_wait(&p, backoff, e)) {
                    rc = -1;
                    break;
                }
                backoff = fmin(backoff * 2, o->backoff_max_s);
                if (stopped(&p)) break;
            }
            sym_err ce = {{0}};
            p.fd = sym_tcp_connect(o->host, o->port, o->connect_timeout_ms, &ce);
            if (p.fd < 0) {
                sym_warn("play: %s", ce.msg);
                p.tries++;
                continue;
            }
            p.tries = 0;
            p.gen++;
            st->connects++;
            /* the window of ids outlives the connection: a request sent
             * again is answered from it, never stepped twice */
            backoff = o->backoff_min_s;
            if (sym_proto_write_register(&p.out)) p.oom = 1;
            next_hb = sym_now_ns() + hb_ns;
            sym_info("play: connected to %s:%d, registered", o->host, o->port);
        }
        /* while lines wait for the server to take answers, only its reading wakes us */
        struct pollfd f[2] = {{.fd = p.fd, .events = (p.lines_wait ? 0 : POLLIN) | (sym_outbuf_pending(&p.out) ? POLLOUT : 0)},
                              {.fd = efd, .events = POLLIN}};
        uint64_t now = sym_now_ns();
        int timeout = next_hb > now ? (int)((next_hb - now) / 1000000) + 1 : 0;
        if (timeout > 100) timeout = 100;
        int n = poll(f, 2, timeout);
        if (n < 0 && errno != EINTR) {
            rc = sym_fail(e, "poll: %s", strerror(errno));
            break;
        }
        if (n > 0 && (f[1].revents & POLLIN)) {
            uint64_t v;
            if (read(efd, &v, sizeof v) < 0) { /* EAGAIN: already cleared */
            }
        }
        if (n > 0 && (f[0].revents & (POLLIN | POLLHUP | POLLERR)) && on_readable(&p)) continue;
        collect(&p);
        if (o->on_turn) o->on_turn(st, o->turn_ctx);
        if (p.fd < 0) continue;
        now = sym_now_ns();
        if (now >= next_hb) {
            if (sym_proto_write_heartbeat(&p.out, sym_proto_wall_s())) p.oom = 1;
            st->heartbeats_sent++;
            next_hb = now + hb_ns;
            if (st->score_rows)
                sym_info("play: %llu answered, %llu rejected; score: %llu updates, mean latency %.2f ms, mean accuracy %.4g",
                         (unsigned long long)st->answered, (unsigned long long)st->rejected,
                         (unsigned long long)st->score_updates, st->score_latency_ms_sum / (double)st->score_rows,
                         st->score_accuracy_sum / (double)st->score_rows);
        }
        if (commit(&p, e)) {
            rc = -1;
            break;
        }
        if (o->store) restore_turn(&p);
        if (sym_outbuf_flush(&p.out, p.fd)) disconnect(&p, strerror(errno));
        else if (out_full(&p)) {
            char why[160];
            snprintf(why, sizeof why, "the server is not reading: %zu bytes of answers wait, over max_output_bytes %zu",
                     sym_outbuf_pending(&p.out), o->max_output_bytes);
            st->output_overflows++;
            disconnect(&p, why);
        } else if (p.lines_wait) {
            drain_lines(&p);
        }
    }
    if (p.oom) rc = sym_fail(e, "out of memory");
    if (p.lost)
        rc = sym_fail(e, "a shard process was lost, and restoring the state of its symbols from the state dir failed "
                         "(%s): stopping without answering them, so that play started again restores every symbol "
                         "from the state dir", p.lost_why);
    if (p.fd >= 0) {
        sym_err ce;
        if (!rc && !commit(&p, &ce)) sym_outbuf_flush(&p.out, p.fd); /* best effort: answers already made */
        close(p.fd);
    }
    sym_lr_free(&p.lr);
    sym_outbuf_free(&p.out);
    sym_uid_window_free(&p.seen);
    sym_request_msg_free(&p.msg);
    free(p.re_uids);
    free(p.re_pred);
    return rc;
}
