/* The play loop against a scripted server (tests/net/script_server.h) and
 * the fake engine: good requests answered exactly once (split across and
 * packed into TCP writes, several rows per message), and every kind of bad
 * input answered with an `error` the seed's decoder reads, while the client
 * keeps serving and no symbol's state advances for a refused request: a
 * line that is not one well-formed message is refused whole (its ids named
 * in the error), a bad row alone. Then the limits: a line over
 * max_line_bytes, a server that stops reading (max_output_bytes). Ends with
 * a message cut off by a disconnect: the client reconnects, registers again
 * and keeps its states. */
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
#include "tests/check.h"
#include "tests/net/fake_engine.h"
#include "tests/net/script_server.h"

#define F 79

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

/* A features list: F numbers 0.5 with the first replaced by `first`. */
static const char *feats_with(char *f, size_t cap, const char *first) {
    size_t l = (size_t)snprintf(f, cap, "%s", first);
    for (int i = 1; i < F; i++) l += (size_t)snprintf(f + l, cap - l, ",0.5");
    return f;
}

static void good_traffic(void) {
    char buf[4096];
    ss_send_str(request(buf, sizeof buf, 1, "SYM_000", NULL, 1.0));
    CHECKV(ss_pump(ss_answered, 1, 5000) && ss.ans_pred[1][0] == 1 && ss.ans_pred[1][1] == 1.0,
           "a request is answered (SYM_000 step 1)");
    char a[4096], b[2048];
    request(a, sizeof a, 2, "SYM_000", NULL, 2.0);
    request(b, sizeof b, 3, "SYM_001", NULL, 0.25);
    strcat(a, b);
    ss_send_str(a);
    CHECKV(ss_pump(ss_answered, 2, 5000) && ss_pump(ss_answered, 3, 5000) && ss.ans_pred[2][0] == 2 &&
               ss.ans_pred[2][1] == 3.0 && ss.ans_pred[3][0] == 1,
           "two messages packed into one TCP write: both answered, states in order");
    request(buf, sizeof buf, 4, "SYM_001", NULL, 0.5);
    for (size_t i = 0; buf[i]; i++) {
        ss_send(buf + i, 1);
        if (i % 97 == 0) usleep(200);
    }
    CHECKV(ss_pump(ss_answered, 4, 5000) && ss.ans_pred[4][0] == 2 && ss.ans_pred[4][1] == 0.75,
           "a message split across many TCP writes is answered");
    char f[1024];
    size_t l = 0;
    for (int i = 0; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, i ? ",0" : "1");
    snprintf(buf, sizeof buf,
             "{\"message_type\":\"inference_request\",\"unique_ids\":[5,6,7],\"symbols\":[\"SYM_002\",\"SYM_002\",\"SYM_003\"],"
             "\"features\":[[%s],[%s],[%s]],\"timestamp\":2}\n",
             f, f, f);
    int r0 = ss.responses;
    ss_send_str(buf);
    CHECKV(ss_pump(ss_answered, 5, 5000) && ss_pump(ss_answered, 6, 5000) && ss_pump(ss_answered, 7, 5000) &&
               ss.ans_pred[5][0] == 1 && ss.ans_pred[6][0] == 2 && ss.ans_pred[7][0] == 1,
           "three rows of one message answered, SYM_002 stepped in list order");
    CHECKV(ss.responses - r0 == 1, "rows completing together go out in one response (%d)", ss.responses - r0);
}

/* Lines refused whole: one error each, naming the ids it could read. */
static void refused_lines(void) {
    char buf[8192], f[2048];
    static const struct {
        const char *line, *what, *names;
    } cases[] = {
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[1\n", "malformed JSON", NULL},
        {"{\"message_type\":\"buy_everything\"}\n", "an unknown message_type", NULL},
        {"[1,2,3]\n", "not an object", NULL},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[100,101],\"symbols\":[\"SYM_000\"],\"features\":[[1],[2]]}\n", "lists of unequal length", "100, 101"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[100],\"symbols\":[\"SYM_000\"]}\n", "a missing features list", "100"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[102],\"symbols\":[\"SYM_005\\u0000XYZ\"],\"features\":[[%s]]}\n", "a symbol with an escaped NUL", "102"},
        {"{\"message_type\":\"inference_request\\u0000junk\",\"unique_ids\":[103],\"symbols\":[\"SYM_000\"],\"features\":[[%s]]}\n", "a message_type with a NUL", NULL},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[104],\"symbols\":[\"SYM_000\"],\"features\":[[%s]]}{\"message_type\":\"inference_request\",\"unique_ids\":[105],\"symbols\":[\"SYM_000\"],\"features\":[[%s]]}\n", "two objects on one line", "104"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[106],\"symbols\":[\"SYM_000\"],\"features\":[[%s]]} junk\n", "trailing garbage", "106"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[107],\"symbols\":[\"SYM_000\"],\"features\":[[1.,%s]]}\n", "the number 1.", "107"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[108],\"symbols\":[\"SYM_000\"],\"features\":[[-.5,%s]]}\n", "the number -.5", "108"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[109],\"symbols\":[\"SYM_000\"],\"features\":[[01,%s]]}\n", "the number 01", "109"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[110],\"symbols\":[\"SYM_000\"],\"features\":[[NaN,%s]]}\n", "a bare NaN", "110"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[111],\"symbols\":[\"SYM_000\"],\"features\":[[-Infinity,%s]]}\n", "a bare -Infinity", "111"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[112],\"symbols\":[\"SYM_000\"],\"features\":[[%s]],\"extra\":1}\n", "an unknown key", "112"},
        {"{\"message_type\":\"inference_request\",\"unique_ids\":[113],\"symbols\":[\"SYM_000\"],\"symbols\":[\"SYM_001\"],\"features\":[[%s]]}\n", "a duplicate key", "113"},
    };
    long steps0 = fake_engine_total_steps(ss.g);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int me = ss.msg_errors;
        feats_with(f, sizeof f, "0.5");
        snprintf(buf, sizeof buf, cases[i].line, f, f);
        ss_send_str(buf);
        int ok = ss_pump(ss_msg_errors_at_least, me + 1, 5000);
        if (cases[i].names) ok = ok && strstr(ss.last_error, cases[i].names) != NULL;
        CHECKV(ok, "%s -> refused whole (%s)", cases[i].what, ss.last_error);
    }
    /* a raw NUL byte in a symbol: the line cannot be built with snprintf */
    int me = ss.msg_errors;
    request(buf, sizeof buf, 114, "SYM_005@XYZ", NULL, 1.0);
    *strchr(buf, '@') = '\0';
    ss_send(buf, strlen(buf) + 1 + strlen(buf + strlen(buf) + 1));
    CHECKV(ss_pump(ss_msg_errors_at_least, me + 1, 5000) && strstr(ss.last_error, "114"),
           "a symbol with a raw NUL byte -> refused whole (%s)", ss.last_error);
    CHECKV(fake_engine_total_steps(ss.g) == steps0 && !ss.ans_count[104] && !ss.ans_count[105],
           "no refused line advanced any state");
}

static int answered_twice(long uid) { return ss.ans_count[uid] >= 2; }

static int big_uid_is(long uid) { return ss.big_uid == (uint64_t)uid; }

/* Rows refused alone: an error naming the unique_id in its details. */
static void refused_rows(void) {
    char buf[8192], f[2048];
    long steps0 = fake_engine_total_steps(ss.g);
    ss_send_str(request(buf, sizeof buf, 10, "SYM_000", "1,2,3", 0));
    CHECKV(ss_pump(ss_errored, 10, 5000), "feature row of the wrong length -> error for 10 (%s)", ss.last_error);
    ss_send_str(request(buf, sizeof buf, 11, "SYM_000", feats_with(f, sizeof f, "\"abc\""), 0));
    CHECKV(ss_pump(ss_errored, 11, 5000), "non-numeric feature -> error for 11 (%s)", ss.last_error);
    ss_send_str(request(buf, sizeof buf, 12, "SYM_000", feats_with(f, sizeof f, "1e999"), 0));
    CHECKV(ss_pump(ss_errored, 12, 5000), "feature overflowing to inf -> error for 12 (%s)", ss.last_error);
    ss_send_str(request(buf, sizeof buf, 15, "", NULL, 1.0));
    CHECKV(ss_pump(ss_errored, 15, 5000), "empty symbol -> error for 15 (%s)", ss.last_error);
    ss_send_str(request(buf, sizeof buf, 16, "S123456789012345678901234567890123456789012345678901234567890123456789", NULL, 1.0));
    CHECKV(ss_pump(ss_errored, 16, 5000), "symbol over 64 bytes -> error for 16 (%s)", ss.last_error);
    ss_send_str(request(buf, sizeof buf, 17, "SYM\\u0007X", NULL, 1.0));
    CHECKV(ss_pump(ss_errored, 17, 5000), "symbol with a control character -> error for 17 (%s)", ss.last_error);
    ss_send_str(request(buf, sizeof buf, 18, "SYM 0", NULL, 1.0));
    CHECKV(ss_pump(ss_errored, 18, 5000), "symbol with a space -> error for 18 (%s)", ss.last_error);
    int me = ss.msg_errors;
    ss_send_str("{\"message_type\":\"inference_request\",\"unique_ids\":[-3],\"symbols\":[\"SYM_000\"],\"features\":[[1]]}\n");
    CHECKV(ss_pump(ss_msg_errors_at_least, me + 1, 5000) && strstr(ss.last_error, "row 0"),
           "negative unique_id -> error naming the row (%s)", ss.last_error);
    ss_send_str(request(buf, sizeof buf, 1, "SYM_000", NULL, 1.0));
    CHECKV(ss_pump(answered_twice, 1, 5000) && !ss.err_count[1] && ss.reanswers == 1,
           "a request sent again (id 1, same symbol and features) is answered again with the same values");
    CHECKV(fake_engine_total_steps(ss.g) == steps0 && fake_engine_steps(ss.g, "SYM_000") == 2,
           "no state advanced for any refused request (%ld steps)", fake_engine_total_steps(ss.g));
    /* exact 64-bit ids both ways */
    snprintf(buf, sizeof buf,
             "{\"message_type\":\"inference_request\",\"unique_ids\":[9007199254740993],\"symbols\":[\"SYM_004\"],"
             "\"features\":[[%s]]}\n",
             feats_with(f, sizeof f, "0.5"));
    ss_send_str(buf);
    CHECKV(ss_pump(big_uid_is, 9007199254740993L, 5000), "unique_id 9007199254740993 answered as itself (%llu)",
           (unsigned long long)ss.big_uid);
}

static void capacity_and_mixed_rows(void) {
    char buf[8192];
    for (int s = 4; s < 8; s++) {
        char sym[16];
        snprintf(sym, sizeof sym, "SYM_%03d", s);
        ss_send_str(request(buf, sizeof buf, 20 + s, sym, NULL, 1.0));
    }
    ss_send_str(request(buf, sizeof buf, 30, "SYM_008", NULL, 1.0));
    CHECKV(ss_pump(ss_answered, 27, 5000) && ss_pump(ss_errored, 30, 5000) && !ss.ans_count[30],
           "a 9th distinct symbol over capacity 8 -> error for 30 (%s)", ss.last_error);
    char f[1024];
    size_t l = 0;
    for (int i = 0; i < F; i++) l += (size_t)snprintf(f + l, sizeof f - l, i ? ",0" : "1");
    snprintf(buf, sizeof buf,
             "{\"message_type\":\"inference_request\",\"unique_ids\":[40,41,42],\"symbols\":[\"SYM_000\",\"SYM_000\",\"SYM_000\"],"
             "\"features\":[[%s],[1,2],[%s]]}\n",
             f, f);
    ss_send_str(buf);
    CHECKV(ss_pump(ss_answered, 40, 5000) && ss_pump(ss_errored, 41, 5000) && ss_pump(ss_answered, 42, 5000) &&
               ss.ans_pred[40][0] == 3 && ss.ans_pred[42][0] == 4 && !ss.ans_count[41],
           "good, bad, good rows in one message: the bad one refused, SYM_000 steps 3 then 4");
}

static void quiet_messages(void) {
    char buf[4096];
    int me = ss.msg_errors;
    CHECKV(ss_pump(ss_heartbeats_at_least, 1, 2000), "heartbeats sent (%d)", ss.heartbeats);
    ss_send_str("{\"message_type\":\"score_update\",\"unique_ids\":[1],\"trade_pnls\":[0.5],\"accuracies\":[0.9],\"latencies_ms\":[1.5]}\n");
    ss_send_str("{\"message_type\":\"heartbeat\",\"timestamp\":3}\n");
    ss_send_str("{\"message_type\":\"stats_update\"}\n");
    ss_send_str("{\"message_type\":\"stats_update\",\"anything\":{\"x\":[1,2]}}\n");
    ss_send_str(request(buf, sizeof buf, 43, "SYM_001", NULL, 1.0));
    CHECKV(ss_pump(ss_answered, 43, 5000) && ss.ans_pred[43][0] == 3 && ss.msg_errors == me,
           "score_update, heartbeat and stats_update from the server taken quietly");
}

/* A line over max_line_bytes (1 MiB here): an error naming the ids read in
 * its head, and the next line is served. */
static void overlong_line(void) {
    char buf[4096];
    size_t big = ss.po.max_line_bytes + 100000, l;
    char *b = malloc(big + 1);
    l = (size_t)snprintf(b, big, "{\"message_type\":\"inference_request\",\"unique_ids\":[60,61,62],\"symbols\":[\"A\",\"B\",\"C\"],\"features\":[[");
    while (l < big - 4) b[l++] = '1', b[l++] = ',';
    memcpy(b + l, "1]]}", 4);
    b[big] = '\n';
    int me = ss.msg_errors;
    ss_send(b, big + 1);
    free(b);
    ss_send_str(request(buf, sizeof buf, 8, "SYM_000", NULL, 1.0));
    CHECKV(ss_pump(ss_msg_errors_at_least, me + 1, 5000) && strstr(ss.last_error, "60, 61, 62") && ss_pump(ss_answered, 8, 5000) &&
               ss.ans_pred[8][0] == 5,
           "a line over max_line_bytes -> one error naming its ids, resync at the next line which is served (%s)",
           ss.last_error);
}

/* One message whose errors alone pass max_output_bytes (256 KiB here): it
 * pauses at the limit and resumes as the server reads; every row refused,
 * none lost, the connection kept. */
static int errored_upto(long last) {
    for (long u = 70000; u <= last; u++)
        if (!ss.err_count[u]) return 0;
    return 1;
}

static void message_of_many_bad_rows(void) {
    const int n = 5000;
    size_t cap = (size_t)n * 40 + 256, l = 0;
    char *b = malloc(cap);
    l += (size_t)snprintf(b + l, cap - l, "{\"message_type\":\"inference_request\",\"unique_ids\":[");
    for (int k = 0; k < n; k++) l += (size_t)snprintf(b + l, cap - l, "%s%d", k ? "," : "", 70000 + k);
    l += (size_t)snprintf(b + l, cap - l, "],\"symbols\":[");
    for (int k = 0; k < n; k++) l += (size_t)snprintf(b + l, cap - l, "%s\"SYM_000\"", k ? "," : "");
    l += (size_t)snprintf(b + l, cap - l, "],\"features\":[");
    for (int k = 0; k < n; k++) l += (size_t)snprintf(b + l, cap - l, "%s[1]", k ? "," : "");
    l += (size_t)snprintf(b + l, cap - l, "]}\n");
    int connects = ss.registers;
    ss_send(b, l);
    free(b);
    CHECKV(ss_pump(errored_upto, 70000 + n - 1, 10000) && ss.registers == connects,
           "a message of %d bad rows (errors past max_output_bytes) pauses and resumes: every row refused, none lost", n);
}

/* A server that stops reading: answers pile up to max_output_bytes, then
 * play drops the connection (logged), comes back and serves on. */
static void server_stops_reading(void) {
    char line[] = "x\n"; /* each draws an error of some 150 bytes */
    size_t n = 200000;
    char *flood = malloc(n * 2);
    for (size_t i = 0; i < n; i++) memcpy(flood + 2 * i, line, 2);
    ss_send(flood, n * 2);
    free(flood);
    int old = ss.fd;
    ss_accept(); /* play comes back once it dropped the connection (stats checked at the end) */
    close(old);
    char buf[4096];
    CHECKV(ss.fd >= 0 && ss_pump(ss_registered_times, 2, 5000), "a server that does not read is dropped; play reconnects");
    ss_send_str(request(buf, sizeof buf, 44, "SYM_001", NULL, 1.0));
    CHECKV(ss_pump(ss_answered, 44, 5000) && ss.ans_pred[44][0] == 4, "and serves on with the states kept");
}

int main(void) {
    if (ss_init(8)) return 1;
    ss.po.max_line_bytes = (size_t)1 << 20;
    ss.po.max_output_bytes = (size_t)256 << 10;
    ss_start();
    ss_accept();
    CHECKV(ss.fd >= 0 && ss_pump(ss_registered_times, 1, 5000), "client connects and registers first");
    good_traffic();
    refused_lines();
    refused_rows();
    capacity_and_mixed_rows();
    quiet_messages();
    overlong_line();
    message_of_many_bad_rows();
    server_stops_reading();

    /* a message cut off by a disconnect */
    char buf[4096];
    request(buf, sizeof buf, 50, "SYM_000", NULL, 1.0);
    ss_send(buf, strlen(buf) / 2);
    usleep(50000);
    close(ss.fd);
    ss.fd = -1;
    ss_accept();
    CHECKV(ss.fd >= 0 && ss_pump(ss_registered_times, 3, 5000), "client reconnects after a cut-off message");
    ss_send_str(request(buf, sizeof buf, 51, "SYM_000", NULL, 1.0));
    CHECKV(ss_pump(ss_answered, 51, 5000) && ss.ans_pred[51][0] == 6 && !ss.ans_count[50] && !ss.err_count[50],
           "after the cut-off message the client serves on with SYM_000's state kept (step 6)");

    /* exactly once across connections: 51 sent again after a reconnect */
    close(ss.fd);
    ss.fd = -1;
    ss_accept();
    CHECKV(ss.fd >= 0 && ss_pump(ss_registered_times, 4, 5000), "client reconnects once more");
    ss_send_str(request(buf, sizeof buf, 51, "SYM_000", NULL, 1.0));
    CHECKV(ss_pump(answered_twice, 51, 5000) && fake_engine_steps(ss.g, "SYM_000") == 6,
           "a request sent again after a reconnect is answered from the window; SYM_000 does not step");
    /* an answered id that comes with another request: a server numbering from the start again */
    ss.ans_count[43] = 0;
    ss_send_str(request(buf, sizeof buf, 43, "SYM_001", NULL, 7.0));
    CHECKV(ss_pump(ss_answered, 43, 5000) && ss.ans_pred[43][0] == 5 && ss.ans_pred[43][3] == 0.5,
           "an id answered on an earlier connection, with another request, is served as a new one (SYM_001 step 5)");
    ss_send_str(request(buf, sizeof buf, 43, "SYM_001", NULL, 8.0));
    CHECKV(ss_pump(ss_errored, 43, 5000) && ss.ans_count[43] == 1 && fake_engine_steps(ss.g, "SYM_001") == 5,
           "an id used on this connection, with another request, is refused (%s)", ss.last_error);

    int dup = 0;
    for (int u = 0; u < SS_MAXU; u++) dup += ss.ans_count[u] > 1 && u != 1 && u != 51;
    ss_finish();
    sym_play_stats st = ss.st;
    CHECKV(ss.play_rc == 0, "play loop stops cleanly");
    CHECKV(st.cut_off == 1 && st.connects == 4 && st.overlong == 1 && st.duplicates == 2 && st.reanswered == 2 &&
               st.ids_reused == 1 && st.score_updates == 1 && st.stats_updates == 2 && st.output_overflows == 1,
           "stats: cut_off %llu connects %llu overlong %llu sent again %llu answered from the window %llu ids reused %llu "
           "score_updates %llu stats_updates %llu dropped for not reading %llu",
           (unsigned long long)st.cut_off, (unsigned long long)st.connects, (unsigned long long)st.overlong,
           (unsigned long long)st.duplicates, (unsigned long long)st.reanswered, (unsigned long long)st.ids_reused,
           (unsigned long long)st.score_updates, (unsigned long long)st.stats_updates, (unsigned long long)st.output_overflows);
    CHECKV(dup == 0, "no other unique_id answered twice");
    CHECKV(ss.bad_lines == 0 && ss.state_gaps == 0, "every line play wrote is one the seed reads (%d bad), no state gap (%ld)",
           ss.bad_lines, ss.state_gaps);
    printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
