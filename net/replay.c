/* The replay server; see replay.h. */
#include "net/replay.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
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
 * one over 1 MiB. */
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
    ADD(req, BAD_UID + 9, "SYM_000", "1,", "2");                         /* ... then refused as a duplicate id */
#undef ADD
    size_t big = SYM_LINE_MAX + 4096;
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

typedef struct {
    const sym_replay_opts *o;
    const sym_stream *st;
    sym_score *score;
    int lfd, fd, registered;
    sym_line_reader lr;
    sym_outbuf out;
    uint64_t t0; /* register time: the schedule's origin */
    int next;    /* next row to send */
    uint64_t *batch_uids;
    const char **batch_syms;
    const float **batch_feat;
    uint64_t *su_uids;
    double *su_zero, *su_acc, *su_lat;
    int su_cap;
} server;

static void drop_client(server *s, const char *why) {
    sym_warn("replay: client gone (%s)", why);
    close(s->fd);
    s->fd = -1;
    s->registered = 0;
    sym_lr_reset(&s->lr);
    sym_outbuf_reset(&s->out);
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

static int on_response(server *s, const cJSON *root, uint64_t t) {
    const cJSON *uids, *preds;
    int n;
    sym_err e = {{0}};
    if (sym_proto_response(root, &uids, &preds, &n, &e)) {
        sym_warn("replay: bad inference_response: %s", e.msg);
        return sym_proto_write_error(&s->out, "bad message", e.msg, -1);
    }
    if (grow_su(s, n)) return -1;
    int k = 0;
    const cJSON *u = uids->child, *p = preds->child;
    for (; u && p; u = u->next, p = p->next) {
        uint64_t uid;
        double pred[4] = {NAN, NAN, NAN, NAN}, lat, err;
        if (sym_proto_uid(u, &uid, &e)) {
            sym_warn("replay: response row: %s", e.msg);
            continue;
        }
        if (sym_proto_prediction(p, pred, &e)) { /* null (non-finite) towers count as such */
            int i = 0;
            for (const cJSON *x = cJSON_IsArray(p) ? p->child : NULL; x && i < 4; x = x->next, i++)
                if (cJSON_IsNumber(x)) pred[i] = x->valuedouble;
        }
        int r = sym_score_answer(s->score, uid, pred, t, &lat, &err);
        if (r == SYM_SCORE_OK) {
            s->su_uids[k] = uid, s->su_lat[k] = lat, s->su_acc[k] = isnan(err) ? 0 : err;
            k++;
        } else {
            sym_warn("replay: answer for unique_id %llu: %s", (unsigned long long)uid,
                     r == SYM_SCORE_DUPLICATE ? "duplicate" : "never sent");
        }
    }
    /* accuracies: max abs error over the towers vs --expected (0 without) */
    return k ? sym_proto_write_score_update(&s->out, s->su_uids, s->su_zero, s->su_acc, s->su_lat, k) : 0;
}

static int on_line(server *s, const char *line, size_t len) {
    uint64_t t = sym_now_ns();
    cJSON *root;
    sym_msg_type type;
    sym_err e = {{0}};
    if (!len) return 0;
    if (sym_proto_parse(line, len, &root, &type, &e)) {
        sym_warn("replay: bad message from the client: %s", e.msg);
        return sym_proto_write_error(&s->out, "bad message", e.msg, -1);
    }
    int rc = 0;
    if (type == SYM_MSG_REGISTER) {
        if (!s->registered) {
            s->registered = 1;
            if (!s->t0) s->t0 = sym_now_ns();
            sym_info("replay: client registered; streaming %d requests", s->st->n);
            if (s->o->inject_bad && s->score->n_sent == 0) rc = send_bad(&s->out, s->st->n_features);
        }
    } else if (!s->registered) {
        rc = sym_proto_write_error(&s->out, "not registered", "send register first", -1);
    } else if (type == SYM_MSG_INFERENCE_RESPONSE) {
        rc = on_response(s, root, t);
    } else if (type == SYM_MSG_ERROR) {
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(root, "error"), *d = cJSON_GetObjectItemCaseSensitive(root, "details");
        s->score->errors_received++;
        sym_debug("replay: client error: %s: %s", cJSON_IsString(er) ? er->valuestring : "?", cJSON_IsString(d) ? d->valuestring : "-");
    } else if (type != SYM_MSG_HEARTBEAT) {
        rc = sym_proto_write_error(&s->out, "unexpected message", sym_msg_type_name(type), -1);
    }
    cJSON_Delete(root);
    return rc;
}

/* Sends every row due now, batch_rows per message. */
static int send_due(server *s) {
    uint64_t now = sym_now_ns();
    while (s->next < s->st->n && s->t0 + s->st->due_ns[s->next] <= now) {
        int k = 0;
        while (k < s->o->batch_rows && s->next + k < s->st->n && s->t0 + s->st->due_ns[s->next + k] <= now) {
            int i = s->next + k;
            s->batch_uids[k] = s->st->uids[i], s->batch_syms[k] = s->st->symbols[i], s->batch_feat[k] = s->st->features[i];
            k++;
        }
        if (sym_proto_write_request(&s->out, s->batch_uids, s->batch_syms, s->batch_feat, k, s->st->n_features,
                                    sym_proto_wall_s()))
            return -1;
        uint64_t t = sym_now_ns();
        for (int j = 0; j < k; j++) sym_score_sent(s->score, s->next + j, t);
        s->next += k;
        if (sym_outbuf_flush(&s->out, s->fd)) return 1;
    }
    return 0;
}

static int done(const server *s) {
    return s->next == s->st->n && s->score->answered == (uint64_t)s->st->n &&
           (!s->o->inject_bad || s->score->errors_received >= (uint64_t)sym_replay_bad_line_count());
}

int sym_replay_run(const sym_replay_opts *o, const sym_stream *st, sym_score *score, sym_err *e) {
    server s = {.o = o, .st = st, .score = score, .fd = -1, .lfd = -1};
    int bound = 0, rc = -1;
    int bmax = o->batch_rows > 0 ? o->batch_rows : 1;
    s.batch_uids = malloc((size_t)bmax * sizeof *s.batch_uids);
    s.batch_syms = malloc((size_t)bmax * sizeof *s.batch_syms);
    s.batch_feat = malloc((size_t)bmax * sizeof *s.batch_feat);
    if (!s.batch_uids || !s.batch_syms || !s.batch_feat || sym_lr_init(&s.lr, SYM_LINE_MAX)) {
        sym_fail(e, "out of memory");
        goto out;
    }
    s.lfd = sym_tcp_listen(o->host, o->port, &bound, e);
    if (s.lfd < 0) goto out;
    sym_info("replay: listening on %s:%d", o->host, bound);
    if (o->on_listen) o->on_listen(bound);
    uint64_t timeout_ns = (uint64_t)(o->timeout_s * 1e9), idle_since = sym_now_ns();
    for (;;) {
        if (done(&s)) {
            rc = 0;
            break;
        }
        uint64_t now = sym_now_ns();
        /* the clock runs while there is no client, and after the last send */
        int waiting = s.fd < 0 || !s.registered || s.next == st->n;
        if (!waiting) idle_since = now;
        if (waiting && now - idle_since > timeout_ns) {
            sym_warn("replay: timed out after %.1f s: %llu of %d answered", o->timeout_s,
                     (unsigned long long)score->answered, st->n);
            rc = 1;
            break;
        }
        struct pollfd f[2] = {{.fd = s.lfd, .events = POLLIN}, {.fd = s.fd, .events = POLLIN}};
        if (s.fd >= 0 && sym_outbuf_pending(&s.out)) f[1].events |= POLLOUT;
        /* sub-millisecond waits: poll's ms granularity would add up to 1 ms to every gap */
        struct timespec ts = {0, 0};
        if (s.registered && s.next < st->n) {
            uint64_t due = s.t0 + st->due_ns[s.next];
            uint64_t w = due > now ? due - now : 0;
            if (w > 100000000) w = 100000000;
            ts.tv_sec = (time_t)(w / 1000000000), ts.tv_nsec = (long)(w % 1000000000);
        } else {
            ts.tv_nsec = 100000000;
        }
        int n = ppoll(f, s.fd >= 0 ? 2 : 1, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            sym_fail(e, "poll: %s", strerror(errno));
            break;
        }
        if (n > 0 && (f[0].revents & POLLIN)) {
            int c = sym_tcp_accept(s.lfd);
            if (c >= 0 && s.fd >= 0) { /* one client at a time */
                sym_warn("replay: a second client connected; refused");
                close(c);
            } else if (c >= 0) {
                s.fd = c;
                sym_info("replay: client connected");
            }
        }
        if (s.fd >= 0 && n > 0 && (f[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            for (int r = 0; r < 16 && s.fd >= 0; r++) {
                ssize_t got = sym_lr_read_fd(&s.lr, s.fd);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                    drop_client(&s, got == 0 ? "closed" : strerror(errno));
                    break;
                }
                if (got < 0) break;
                char *line;
                size_t len;
                int k;
                while ((k = sym_lr_next(&s.lr, &line, &len)) != SYM_LR_NONE) {
                    if (k == SYM_LR_OVERLONG) {
                        sym_warn("replay: client line over 1 MiB dropped");
                        continue;
                    }
                    if (on_line(&s, line, len)) {
                        sym_fail(e, "out of memory");
                        goto out;
                    }
                }
            }
        }
        if (s.fd >= 0 && s.registered) {
            int r = send_due(&s);
            if (r < 0) {
                sym_fail(e, "out of memory");
                goto out;
            }
        }
        if (s.fd >= 0 && sym_outbuf_flush(&s.out, s.fd)) drop_client(&s, strerror(errno));
    }
    if (s.fd >= 0) sym_outbuf_flush(&s.out, s.fd);
out:
    if (s.fd >= 0) close(s.fd);
    if (s.lfd >= 0) close(s.lfd);
    sym_lr_free(&s.lr);
    sym_outbuf_free(&s.out);
    free(s.batch_uids), free(s.batch_syms), free(s.batch_feat);
    free(s.su_uids), free(s.su_zero), free(s.su_acc), free(s.su_lat);
    return rc;
}
