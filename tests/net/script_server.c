/* The scripted game server for play tests; see script_server.h. */
#include "tests/net/script_server.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "net/line_reader.h"
#include "net/protocol.h"
#include "net/tcp.h"

script_server ss;
static sym_line_reader lr;
static pthread_t th;

static void fail_line(const char *why, const char *line) {
    printf("FAIL play wrote %s: %.200s\n", why, line);
    ss.bad_lines++;
}

static void book_error(const cJSON *j, const char *line) {
    int n = 0;
    for (const cJSON *k = j->child; k; k = k->next, n++)
        if (!cJSON_IsString(k) || (strcmp(k->string, "message_type") && strcmp(k->string, "error") && strcmp(k->string, "details")))
            return fail_line("an error the seed cannot decode (a key other than message_type, error, details, or not a string)", line);
    if (n != 3) return fail_line("an error without exactly three keys", line);
    const char *er = cJSON_GetObjectItemCaseSensitive(j, "error")->valuestring;
    const char *d = cJSON_GetObjectItemCaseSensitive(j, "details")->valuestring;
    snprintf(ss.last_error, sizeof ss.last_error, "%s: %s", er, d);
    unsigned long long uid;
    if (sscanf(d, "unique_id %llu:", &uid) == 1) {
        ss.row_errors++;
        if (uid < SS_MAXU) ss.err_count[uid]++;
        else ss.other_ids++;
    } else {
        ss.msg_errors++;
    }
}

static void book_answers(const cJSON *j, const char *line) {
    const cJSON *uids, *preds;
    int n;
    sym_err e;
    ss.responses++;
    if (sym_proto_response(j, &uids, &preds, &n, &e)) return fail_line("a bad response", line);
    const cJSON *u = uids->child, *p = preds->child;
    for (int k = 0; k < n; k++, u = u->next, p = p->next) {
        uint64_t uid;
        double pred[4];
        if (sym_proto_uid(u, &uid, &e) || sym_proto_prediction(p, pred, &e)) return fail_line("a bad response row", line);
        if (uid < SS_MAXU && ss.ans_count[uid]) { /* a re-sent request's answer: the same values, no new step */
            if (memcmp(ss.ans_pred[uid], pred, sizeof pred)) fail_line("two different answers for one unique_id", line);
            ss.ans_count[uid]++;
            ss.reanswers++;
            continue;
        }
        int slot = (int)pred[2];
        if (slot >= 0 && slot < SS_SLOTS) {
            if ((long)pred[0] != ss.slot_step[slot] + 1) {
                printf("FAIL slot %d stepped %ld -> %ld (unique_id %llu)\n", slot, ss.slot_step[slot], (long)pred[0],
                       (unsigned long long)uid);
                ss.state_gaps++;
            }
            ss.slot_step[slot] = (long)pred[0];
        }
        ss.answers++;
        if (uid >= SS_PROBE && uid - SS_PROBE < SS_MAXU) {
            ss.probe_count[uid - SS_PROBE]++;
            memcpy(ss.probe_pred[uid - SS_PROBE], pred, sizeof pred);
            continue;
        }
        if (uid >= SS_MAXU) {
            ss.other_ids++;
            ss.big_uid = uid;
            continue;
        }
        ss.ans_count[uid]++;
        memcpy(ss.ans_pred[uid], pred, sizeof pred);
    }
}

static void on_line(const char *line, size_t len) {
    cJSON *j;
    sym_msg_type t;
    sym_err e;
    if (sym_proto_parse(line, len, &j, &t, &e)) return fail_line("a line the strict reader refuses", line);
    if (t == SYM_MSG_REGISTER) ss.registers++;
    else if (t == SYM_MSG_HEARTBEAT) ss.heartbeats++;
    else if (t == SYM_MSG_ERROR) book_error(j, line);
    else if (t == SYM_MSG_INFERENCE_RESPONSE) book_answers(j, line);
    else fail_line("a message a client does not send", line);
    cJSON_Delete(j);
}

int ss_pump(int (*cond)(long), long arg, int timeout_ms) {
    uint64_t end = sym_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (!cond(arg) && sym_now_ns() < end) {
        struct pollfd p = {.fd = ss.fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        ssize_t n = sym_lr_read_fd(&lr, ss.fd);
        if (n <= 0) continue;
        char *line;
        size_t len;
        while (sym_lr_next(&lr, &line, &len) == SYM_LR_LINE) on_line(line, len);
    }
    return cond(arg);
}

int ss_answered(long uid) { return ss.ans_count[uid] > 0; }
int ss_errored(long uid) { return ss.err_count[uid] > 0; }
int ss_msg_errors_at_least(long n) { return ss.msg_errors >= n; }
int ss_registered_times(long n) { return ss.registers >= n; }
int ss_heartbeats_at_least(long n) { return ss.heartbeats >= n; }

void ss_send(const char *s, size_t n) {
    while (n) {
        ssize_t w = send(ss.fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            struct pollfd p = {.fd = ss.fd, .events = POLLOUT};
            poll(&p, 1, 100);
            continue;
        }
        if (w < 0) return; /* play dropped the connection: what it did is what the test checks */
        s += w, n -= (size_t)w;
    }
}

void ss_send_str(const char *s) { ss_send(s, strlen(s)); }

void ss_accept(void) {
    uint64_t end = sym_now_ns() + 5000000000ull;
    while ((ss.fd = sym_tcp_accept(ss.lfd)) < 0 && sym_now_ns() < end) {
        struct pollfd p = {.fd = ss.lfd, .events = POLLIN};
        poll(&p, 1, 50);
    }
    sym_lr_reset(&lr);
}

static void *run_play(void *arg) {
    (void)arg;
    sym_err e = {{0}};
    ss.play_rc = sym_play_run(ss.g, &ss.po, &ss.st, &e);
    if (ss.play_rc) printf("play: %s\n", e.msg);
    return NULL;
}

int ss_init(int max_symbols) {
    sym_err e = {{0}};
    ss.fd = -1;
    if (sym_lr_init(&lr, (size_t)16 << 20)) return -1;
    ss.lfd = sym_tcp_listen("127.0.0.1", 0, &ss.port, &e);
    if (ss.lfd < 0) return printf("FAIL listen: %s\n", e.msg), -1;
    sym_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_symbols = max_symbols;
    ss.g = sym_engine_create(&cfg, &e);
    if (!ss.g) return printf("FAIL engine: %s\n", e.msg), -1;
    sym_play_opts_default(&ss.po);
    ss.po.port = ss.port;
    ss.po.heartbeat_s = 0.2;
    ss.po.backoff_min_s = 0.05;
    ss.po.stop = &ss.stop;
    return 0;
}

void ss_start(void) { pthread_create(&th, NULL, run_play, NULL); }

void ss_finish(void) {
    atomic_store(&ss.stop, 1);
    pthread_join(th, NULL);
    if (ss.fd >= 0) close(ss.fd);
    close(ss.lfd);
    sym_engine_destroy(ss.g);
    sym_lr_free(&lr);
}
