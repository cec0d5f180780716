/* A shard process (net/shard_server.h, here in a thread of the test)
 * against frames no router sends: a HELLO longer than the longest frame
 * of the wire (sym_wire_max_frame) is dropped unread, never answered;
 * frames that are not the wire's are ignored; then a HELLO of another
 * wire version is refused by name, on the same socket, so the process
 * read on after all of them. The model is golden_small on the CPU. */
#include <nanomsg/nn.h>
#include <nanomsg/pair.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "net/shard_server.h"
#include "net/shard_wire.h"
#include "tests/check.h"

static volatile sig_atomic_t stop_flag;
/* stop_flag is a signal handler's to set, as in symserve shard: the
 * server's thread runs it (pthread_kill), not another thread's store */
static void on_stop(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void *serve(void *arg) {
    sym_shard_server_opts *o = arg;
    sym_err e = {{0}};
    if (sym_shard_server_run(o, &e)) fprintf(stderr, "FAIL shard server: %s\n", e.msg), exit(1);
    return NULL;
}

/* A HELLO of wire version `version`, padded with zeros to `len` bytes
 * (at least its own length). */
static void hello(sym_wire_out *o, uint32_t version, size_t len) {
    sym_wire_hello h = {.version = version, .msg_size = sizeof(sym_msg), .index = 0, .max_symbols = 8,
                        .queue_capacity = 64, .max_batch = 8, .rows_per_symbol = 1, .features = 79,
                        .heartbeat_ms = 100, .timeout_ms = 1000};
    if (sym_wire_begin(o, SYM_WIRE_HELLO, 0x5eed, 1) || sym_wire_put(o, &h, sizeof h)) exit(1);
    static const unsigned char zero[4096];
    while (o->len < len)
        if (sym_wire_put(o, zero, len - o->len < sizeof zero ? len - o->len : sizeof zero)) exit(1);
}

/* The kind of the next frame within ms, or 0 when none came; its text
 * (a REFUSE's why) into why. */
static int answer(int sock, int ms, char *why, size_t cap) {
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &ms, sizeof ms);
    void *buf = NULL;
    int n = nn_recv(sock, &buf, NN_MSG, 0);
    if (n < 0) return 0;
    sym_wire_in in;
    sym_err e;
    int kind = sym_wire_open(&in, buf, (size_t)n, &e) ? -1 : in.kind;
    size_t left = kind > 0 ? (size_t)(in.end - in.p) : 0;
    snprintf(why, cap, "%.*s", (int)(left < cap ? left : cap - 1), kind > 0 ? (const char *)in.p : "");
    nn_freemsg(buf);
    return kind;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    sym_config cfg;
    sym_config_defaults(&cfg);
    snprintf(cfg.model_dir, sizeof cfg.model_dir, "%s/golden_small", argv[1]);
    cfg.backend = SYM_BACKEND_CPU;
    cfg.max_symbols = 8;
    cfg.status_interval_s = 0;
    char url[128];
    snprintf(url, sizeof url, "ipc:///tmp/symserve-frames-%d.ipc", (int)getpid());
    sym_shard_server_opts o = {.listen = url, .cfg = &cfg, .stop = &stop_flag};
    struct sigaction sa = {.sa_handler = on_stop};
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, serve, &o);

    int sock = nn_socket(AF_SP, NN_PAIR);
    CHECK(sock >= 0 && nn_connect(sock, url) >= 0, "connect %s: %s", url, nn_strerror(nn_errno()));
    int big = -1;
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &big, sizeof big);
    sym_wire_out out = {0};
    char why[512] = "";
    const size_t most = sym_wire_max_frame();
    /* the server builds its model first: the first frame waits for its socket */
    int ms = 10000;
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO, &ms, sizeof ms);
    hello(&out, 0, most + 1);
    CHECK(nn_send(sock, out.p, out.len, 0) == (int)out.len, "send: %s", nn_strerror(nn_errno()));
    int k = answer(sock, 2000, why, sizeof why);
    CHECKV(k == 0, "a HELLO of %zu bytes, one past the wire's longest frame, is dropped unread (answer kind %d: %s)",
           out.len, k, why);
    static const char junk[] = "not a frame of the wire";
    CHECK(nn_send(sock, junk, sizeof junk, 0) == (int)sizeof junk, "send: %s", nn_strerror(nn_errno()));
    hello(&out, 0, 0);
    out.p[0] = 'X'; /* the magic broken */
    CHECK(nn_send(sock, out.p, out.len, 0) == (int)out.len, "send: %s", nn_strerror(nn_errno()));
    k = answer(sock, 1000, why, sizeof why);
    CHECKV(k == 0, "frames that are not the wire's are ignored (answer kind %d)", k);
    /* the dropped frame's connection comes back (nanomsg reconnects): a
     * HELLO of the wire's longest length, of another version, is read and
     * refused by name */
    for (int tries = 0; tries < 20 && !k; tries++) {
        hello(&out, 0, most);
        nn_send(sock, out.p, out.len, 0);
        k = answer(sock, 500, why, sizeof why);
    }
    CHECKV(k == SYM_WIRE_REFUSE && strstr(why, "version"),
           "then a HELLO of another wire version, %zu bytes long, is refused: \"%s\"", most, why);
    sym_wire_out_free(&out);
    nn_close(sock);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    unlink(url + strlen("ipc://"));
    return failures != 0;
}
