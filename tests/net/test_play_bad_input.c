/* The play loop against a scripted server (this test) and the fake engine:
 * good requests answered exactly once (split across and packed into TCP
 * writes, several rows per message), and every kind of bad input answered
 * with an `error` while the client keeps serving and no symbol's state
 * advances for a refused request. Ends with a message cut off by a
 * disconnect: the client reconnects, registers again and keeps its states. */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "net/line_reader.h"
#include "net/play.h"
#include "net/protocol.h"
#include "net/tcp.h"
#include "tests/net/fake_engine.h"
#include "tests/check.h"

#define F 79
#define MAXU 4096


/* what the client said, by unique_id */
static int ans_count[MAXU], err_count[MAXU], msg_errors, registers, heartbeats, responses;
static double ans_pred[MAXU][4];
static char last_error[1024];

static int fd = -1, lfd = -1;
static sym_line_reader lr;

static void on_message(const char *line, size_t len) {
    cJSON *j;
    sym_msg_type t;
    sym_err e;
    if (sym_proto_parse(line, len, &j, &t, &e)) {
        printf("FAIL client wrote a bad line: %s\n", e.msg);
        failures++;
        return;
    }
    if (t == SYM_MSG_REGISTER) registers++;
    else if (t == SYM_MSG_HEARTBEAT) heartbeats++;
    else if (t == SYM_MSG_ERROR) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "unique_id"), *er = cJSON_GetObjectItemCaseSensitive(j, "error"),
                    *d = cJSON_GetObjectItemCaseSensitive(j, "details");
        snprintf(last_error, sizeof last_error, "%s: %s", cJSON_IsString(er) ? er->valuestring : "?",
                 cJSON_IsString(d) ? d->valuestring : "null");
        if (cJSON_IsNumber(u) && u->valuedouble >= 0 && u->valuedouble < MAXU) err_count[(int)u->valuedouble]++;
        else msg_errors++;
    } else if (t == SYM_MSG_INFERENCE_RESPONSE) {
        const cJSON *uids, *preds;
        int n;
        responses++;
        if (sym_proto_response(j, &uids, &preds, &n, &e)) {
            printf("FAIL bad response: %s\n", e.msg);
            failures++;
        }
        for (int k = 0; k < n; k++) {
            uint64_t uid;
            double p[4];
            if (sym_proto_uid(cJSON_GetArrayItem(uids, k), &uid, &e) || uid >= MAXU ||
                sym_proto_prediction(cJSON_GetArrayItem(preds, k), p, &e)) {
                printf("FAIL bad response row\n");
                failures++;
                continue;
            }
            ans_count[uid]++;
            memcpy(ans_pred[uid], p, sizeof p);
        }
    }
    cJSON_Delete(j);
}

/* Reads from the client until cond() or timeout; returns cond(). */
static int pump(int (*cond)(long), long arg, int timeout_ms) {
    uint64_t end = sym_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (!cond(arg) && sym_now_ns() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0) continue;
        ssize_t n = sym_lr_read_fd(&lr, fd);
        if (n <= 0) continue;
        char *line;
        size_t len;
        int k;
        while ((k = sym_lr_next(&lr, &line, &len)) == SYM_LR_LINE) on_message(line, len);
    }
    return cond(arg);
}

static int answered(long uid) { return ans_count[uid] > 0; }
static int errored(long uid) { return err_count[uid] > 0; }
static int msg_errors_at_least(long n) { return msg_errors >= n; }
static int registered_times(long n) { return registers >= n; }
static int heartbeats_at_least(long n) { return heartbeats >= n; }

static void send_all(const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 100);
            continue;
        }
        s += w, n -= (size_t)w;
    }
}
static void send_str(const char *s) { send_all(s, strlen(s)); }

/* One request line; feats NULL: F features = 0.5 (feature 0 = x). */
static char *request(char *buf, size_t cap, long uid, const char *sym, const char *feats, double x) {
    char f[2048];
    if (!feats) {
        size_t l = (size_t)snprintf(f, sizeof f, "%.17g", x);
        for (int i = 1; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, ",0.5");
        feats = f;
    }
    int n = snprintf(buf, cap,
                     "{\"message_type\":\"inference_request\",\"unique_ids\":[%ld],\"symbols\":[\"%s\"],\"features\":[[%s]],\"timestamp\":1.5}\n",
                     uid, sym, feats);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "test request line does not fit in %zu bytes\n", cap);
        exit(1);
    }
    return buf;
}

static void accept_client(void) {
    uint64_t end = sym_now_ns() + 5000000000ull;
    while ((fd = sym_tcp_accept(lfd)) < 0 && sym_now_ns() < end) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        poll(&p, 1, 50);
    }
    sym_lr_reset(&lr);
}

static sym_engine *g;
static sym_play_opts po;
static sym_play_stats st;
static atomic_int stop;
static int play_rc;
static sym_err play_err;

static void *run_play(void *arg) {
    (void)arg;
    play_rc = sym_play_run(g, &po, &st, &play_err);
    return NULL;
}

int main(void) {
    sym_err e = {{0}};
    char buf[4096];
    int port;
    sym_lr_init(&lr, SYM_LINE_MAX);
    lfd = sym_tcp_listen("127.0.0.1", 0, &port, &e);
    if (lfd < 0) return printf("FAIL listen: %s\n", e.msg), 1;
    sym_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_symbols = 8;
    g = sym_engine_create(&cfg, &e);
    sym_play_opts_default(&po);
    po.port = port;
    po.heartbeat_s = 0.2;
    po.backoff_min_s = 0.05;
    po.stop = &stop;
    pthread_t th;
    pthread_create(&th, NULL, run_play, NULL);

    accept_client();
    CHECKV(fd >= 0 && pump(registered_times, 1, 5000), "client connects and registers first");

    /* good traffic */
    send_str(request(buf, sizeof buf, 1, "SYM_000", NULL, 1.0));
    CHECKV(pump(answered, 1, 5000) && ans_pred[1][0] == 1 && ans_pred[1][1] == 1.0, "a request is answered (SYM_000 step 1)");
    {   /* two lines packed into one write */
        char a[4096], b[2048];
        request(a, sizeof a, 2, "SYM_000", NULL, 2.0);
        request(b, sizeof b, 3, "SYM_001", NULL, 0.25);
        strcat(a, b);
        send_str(a);
        CHECKV(pump(answered, 2, 5000) && pump(answered, 3, 5000) && ans_pred[2][0] == 2 && ans_pred[2][1] == 3.0 &&
                  ans_pred[3][0] == 1,
              "two messages packed into one TCP write: both answered, states in order");
    }
    {   /* one line split into single bytes */
        request(buf, sizeof buf, 4, "SYM_001", NULL, 0.5);
        for (size_t i = 0; buf[i]; i++) {
            send_all(buf + i, 1);
            if (i % 97 == 0) usleep(200);
        }
        CHECKV(pump(answered, 4, 5000) && ans_pred[4][0] == 2 && ans_pred[4][1] == 0.75, "a message split across many TCP writes is answered");
    }
    {   /* several rows in one message, same symbol twice: list order */
        char f[1024];
        size_t l = 0;
        for (int i = 0; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, i ? ",0" : "1");
        snprintf(buf, sizeof buf, "{\"message_type\":\"inference_request\",\"unique_ids\":[5,6,7],\"symbols\":[\"SYM_002\",\"SYM_002\",\"SYM_003\"],\"features\":[[%s],[%s],[%s]],\"timestamp\":2}\n", f, f, f);
        int r0 = responses;
        send_str(buf);
        CHECKV(pump(answered, 5, 5000) && pump(answered, 6, 5000) && pump(answered, 7, 5000) && ans_pred[5][0] == 1 &&
                  ans_pred[6][0] == 2 && ans_pred[7][0] == 1,
              "three rows of one message answered, SYM_002 stepped in list order");
        CHECKV(responses - r0 == 1, "rows completing together go out in one response (%d)", responses - r0);
    }

    /* message-level bad input: an error, nothing stepped */
    long steps0 = fake_engine_total_steps(g);
    int me = msg_errors;
    send_str("{\"message_type\":\"inference_request\",\"unique_ids\":[1\n");
    CHECKV(pump(msg_errors_at_least, me + 1, 5000), "malformed JSON -> error (%s)", last_error);
    send_str("{\"message_type\":\"buy_everything\"}\n");
    CHECKV(pump(msg_errors_at_least, me + 2, 5000), "unknown message_type -> error (%s)", last_error);
    send_str("[1,2,3]\n");
    CHECKV(pump(msg_errors_at_least, me + 3, 5000), "not an object -> error (%s)", last_error);
    send_str("{\"message_type\":\"inference_request\",\"unique_ids\":[100,101],\"symbols\":[\"SYM_000\"],\"features\":[[1],[2]]}\n");
    CHECKV(pump(msg_errors_at_least, me + 4, 5000), "lists of unequal length -> error (%s)", last_error);
    send_str("{\"message_type\":\"inference_request\",\"unique_ids\":[100],\"symbols\":[\"SYM_000\"]}\n");
    CHECKV(pump(msg_errors_at_least, me + 5, 5000), "missing features list -> error (%s)", last_error);
    {
        size_t big = SYM_LINE_MAX + 100000;
        char *b = malloc(big + 1);
        memset(b, ' ', big);
        memcpy(b, "{\"message_type\":\"heartbeat\",\"x\":\"", 33);
        b[big - 2] = '"', b[big - 1] = '}', b[big] = '\n';
        send_all(b, big + 1);
        free(b);
        send_str(request(buf, sizeof buf, 8, "SYM_000", NULL, 1.0));
        CHECKV(pump(msg_errors_at_least, me + 6, 5000) && pump(answered, 8, 5000) && ans_pred[8][0] == 3,
              "line over 1 MiB -> error, resync at the next line which is served (%s)", last_error);
    }
    steps0 += 1; /* uid 8 */

    /* row-level bad input: an error naming the unique_id */
    send_str(request(buf, sizeof buf, 10, "SYM_000", "1,2,3", 0));
    CHECKV(pump(errored, 10, 5000), "feature row of the wrong length -> error for 10 (%s)", last_error);
    {
        char f[2048];
        size_t l = (size_t)snprintf(f, sizeof f, "\"abc\"");
        for (int i = 1; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, ",0.5");
        send_str(request(buf, sizeof buf, 11, "SYM_000", f, 0));
        CHECKV(pump(errored, 11, 5000), "non-numeric feature -> error for 11 (%s)", last_error);
        l = (size_t)snprintf(f, sizeof f, "1e999");
        for (int i = 1; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, ",0.5");
        send_str(request(buf, sizeof buf, 12, "SYM_000", f, 0));
        CHECKV(pump(errored, 12, 5000), "feature overflowing to inf -> error for 12 (%s)", last_error);
        l = (size_t)snprintf(f, sizeof f, "0.5,NaN");
        for (int i = 2; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, ",0.5");
        send_str(request(buf, sizeof buf, 13, "SYM_000", f, 0));
        CHECKV(pump(errored, 13, 5000), "bare NaN feature -> error for 13 (%s)", last_error);
        l = (size_t)snprintf(f, sizeof f, "-Infinity");
        for (int i = 1; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, ",0.5");
        send_str(request(buf, sizeof buf, 14, "SYM_000", f, 0));
        CHECKV(pump(errored, 14, 5000), "bare -Infinity feature -> error for 14 (%s)", last_error);
    }
    send_str(request(buf, sizeof buf, 15, "", NULL, 1.0));
    CHECKV(pump(errored, 15, 5000), "empty symbol -> error for 15 (%s)", last_error);
    send_str(request(buf, sizeof buf, 16, "S123456789012345678901234567890123456789012345678901234567890123456789", NULL, 1.0));
    CHECKV(pump(errored, 16, 5000), "symbol over 64 bytes -> error for 16 (%s)", last_error);
    send_str(request(buf, sizeof buf, 17, "SYM\\u0007X", NULL, 1.0));
    CHECKV(pump(errored, 17, 5000), "symbol with a control character -> error for 17 (%s)", last_error);
    send_str(request(buf, sizeof buf, 18, "SYM 0", NULL, 1.0));
    CHECKV(pump(errored, 18, 5000), "symbol with a space -> error for 18 (%s)", last_error);
    send_str("{\"message_type\":\"inference_request\",\"unique_ids\":[-3],\"symbols\":[\"SYM_000\"],\"features\":[[1]]}\n");
    CHECKV(pump(msg_errors_at_least, me + 7, 5000), "negative unique_id -> error (%s)", last_error);
    send_str(request(buf, sizeof buf, 1, "SYM_000", NULL, 1.0));
    CHECKV(pump(errored, 1, 5000) && ans_count[1] == 1, "duplicated unique_id -> error, answered once only (%s)", last_error);
    CHECKV(fake_engine_total_steps(g) == steps0 && fake_engine_steps(g, "SYM_000") == 3,
          "no state advanced for any refused request (%ld steps)", fake_engine_total_steps(g));

    /* capacity: 8 symbols; SYM_000..003 in use */
    for (int s = 4; s < 8; s++) {
        char sym[16];
        snprintf(sym, sizeof sym, "SYM_%03d", s);
        send_str(request(buf, sizeof buf, 20 + s, sym, NULL, 1.0));
    }
    send_str(request(buf, sizeof buf, 30, "SYM_008", NULL, 1.0));
    CHECKV(pump(answered, 27, 5000) && pump(errored, 30, 5000) && !ans_count[30],
          "a 9th distinct symbol over capacity 8 -> error for 30 (%s)", last_error);
    {   /* a good row, a bad row, a good row in one message */
        char f[1024], g2[1024];
        size_t l = 0;
        for (int i = 0; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, i ? ",0" : "1");
        snprintf(g2, sizeof g2, "1,2");
        snprintf(buf, sizeof buf, "{\"message_type\":\"inference_request\",\"unique_ids\":[40,41,42],\"symbols\":[\"SYM_000\",\"SYM_000\",\"SYM_000\"],\"features\":[[%s],[%s],[%s]]}\n", f, g2, f);
        send_str(buf);
        CHECKV(pump(answered, 40, 5000) && pump(errored, 41, 5000) && pump(answered, 42, 5000) && ans_pred[40][0] == 4 &&
                  ans_pred[42][0] == 5 && !ans_count[41],
              "good, bad, good rows in one message: the bad one refused, SYM_000 steps 4 then 5");
    }
    CHECKV(pump(heartbeats_at_least, 1, 2000), "heartbeats sent (%d)", heartbeats);
    send_str("{\"message_type\":\"score_update\",\"unique_ids\":[1],\"trade_pnls\":[0.5],\"accuracies\":[0.9],\"latencies_ms\":[1.5]}\n");
    send_str("{\"message_type\":\"heartbeat\",\"timestamp\":3}\n");
    send_str(request(buf, sizeof buf, 43, "SYM_001", NULL, 1.0));
    CHECKV(pump(answered, 43, 5000) && ans_pred[43][0] == 3, "score_update and heartbeat from the server taken quietly");

    /* a message cut off by a disconnect */
    request(buf, sizeof buf, 50, "SYM_000", NULL, 1.0);
    send_all(buf, strlen(buf) / 2);
    usleep(50000);
    close(fd);
    fd = -1;
    accept_client();
    CHECKV(fd >= 0 && pump(registered_times, 2, 5000), "client reconnects and registers again");
    send_str(request(buf, sizeof buf, 51, "SYM_000", NULL, 1.0));
    CHECKV(pump(answered, 51, 5000) && ans_pred[51][0] == 6 && !ans_count[50] && !err_count[50],
          "after the cut-off message the client serves on with SYM_000's state kept (step 6)");

    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    CHECKV(play_rc == 0, "play loop stops cleanly (%s)", play_err.msg);
    CHECKV(st.cut_off == 1 && st.connects == 2 && st.overlong == 1 && st.duplicates == 1 && st.score_updates == 1,
          "stats: cut_off %llu connects %llu overlong %llu duplicates %llu score_updates %llu", (unsigned long long)st.cut_off,
          (unsigned long long)st.connects, (unsigned long long)st.overlong, (unsigned long long)st.duplicates,
          (unsigned long long)st.score_updates);
    int dup = 0;
    for (int u = 0; u < MAXU; u++) dup += ans_count[u] > 1;
    CHECKV(dup == 0, "no unique_id answered twice");
    close(fd);
    close(lfd);
    sym_engine_destroy(g);
    sym_lr_free(&lr);
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
