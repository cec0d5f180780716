/* A scripted client for the replay tests: registers, reads the requests and
 * answers each unique_id with lines made from templates ("{id}" is replaced
 * by the id), so a test can send any answer, valid or not, byte for byte.
 * It can also misbehave around the real connection: silent connections
 * first, a connection that sends junk without a line break, a small receive
 * buffer and a stall before reading, a flood of bad lines while reading
 * nothing; and lose it: reset it itself, connect and register again when
 * the server cuts or closes it, hold back answers on the first connection,
 * answer again after a reconnect the ids it answered before.
 *
 * usage: replay_client PORT [options]
 *   --answer T      every id gets line T (several: all, in order)
 *   --rotate T      every id gets one of the --rotate lines, in turn, before its --answer lines
 *   --except K T    the K-th id received (from 0) gets line T instead
 *   --raw LINE      sent once right after register
 *   --idle N        first open N connections that never send anything
 *   --idle-wait-ms MS  then wait MS before connecting the client
 *   --junk BYTES    also first: a connection that sends BYTES without a line break
 *                   ("junk closed 1": the server closed it before the client connected)
 *   --rcvbuf BYTES  the client socket's SO_RCVBUF
 *   --stall-ms MS   read nothing for MS after register
 *   --flood N       after register send N lines "x" and read nothing
 *   --timeout-ms MS give up after MS (default 30000)
 *   --reconnect N   when the connection is lost, connect and register again (N times at most;
 *                   a refused connect ends the run)
 *   --reconnect-wait-ms MS  wait MS before each reconnect
 *   --answer-first K  on the first connection answer only the first K ids received (read the rest)
 *   --reanswer T    right after each reconnect's register, every id answered on an earlier
 *                   connection gets line T again
 *   --reset-after N the client resets its connection (SO_LINGER 0) once, after N ids received
 *   --ids-file F    writes "CONNECTION ID" for every id received, in order (connections from 1)
 * Prints one summary line: it counts the ids in score updates that are not
 * ids it was sent, exactly, and the ids received again (on a later
 * connection, or on the same one); "idle closed K of N" says how many of
 * the idle connections the server had closed when the client connected
 * (with --idle-wait-ms) or when the first request came. Exit 0 when the
 * server closed the client connection (the last one, with --reconnect), 1
 * otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "config/config.h"
#include "net/line_reader.h"
#include "net/protocol.h"
#include "net/tcp.h"
#include "common/uid_map.h"

#define MAX_T 64
#define MAX_IDLE 64

static const char *answers[MAX_T], *rotates[MAX_T], *raws[MAX_T], *except_t[MAX_T];
static long except_k[MAX_T];
static int n_answers, n_rotates, n_raws, n_excepts;

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static int set_blocking(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/* Writes all of buf (blocking socket); -1 when the peer is gone. */
static int write_all(int fd, const char *buf, size_t n) {
    while (n) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        buf += w, n -= (size_t)w;
    }
    return 0;
}

/* 1 when the server has closed fd (end of stream or reset), 0 while open;
 * reads and drops whatever it sent. */
static int is_closed(int fd) {
    char buf[4096];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) continue;
        if (r == 0) return 1;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : 1;
    }
}

/* How many of fds[0, n) are closed, waiting up to wait_ms for all. */
static int count_closed(const int *fds, int n, long wait_ms) {
    uint64_t end = sym_now_ns() + (uint64_t)wait_ms * 1000000ull;
    int k;
    do {
        k = 0;
        for (int i = 0; i < n; i++) k += is_closed(fds[i]);
        if (k == n) break;
        sleep_ms(10);
    } while (sym_now_ns() < end);
    return k;
}

/* Appends template t with every "{id}" replaced, and a '\n'. */
static int put_line(sym_outbuf *o, const char *t, unsigned long long id) {
    char num[24];
    int nl = snprintf(num, sizeof num, "%llu", id);
    for (const char *p; (p = strstr(t, "{id}")); t = p + 4)
        if (sym_outbuf_append(o, t, (size_t)(p - t)) || sym_outbuf_append(o, num, (size_t)nl)) return -1;
    return sym_outbuf_append(o, t, strlen(t)) || sym_outbuf_append(o, "\n", 1) ? -1 : 0;
}

static long n_ids;         /* ids received so far */
static sym_uid_map seen;   /* every id received: the connection it last came on */
static long again_later, again_same; /* ids received again on a later / the same connection */
static int conn_no;        /* the connection, from 1 */
static long answer_first = -1, first_answered; /* --answer-first */
static uint64_t *answered; /* ids answered, each once, in order (for --reanswer) */
static long n_answered, cap_answered;
static FILE *ids_file;

static int note_answered(unsigned long long id) {
    if (n_answered == cap_answered) {
        long cap = cap_answered ? cap_answered * 2 : 1024;
        uint64_t *a = realloc(answered, (size_t)cap * sizeof *a);
        if (!a) return -1;
        answered = a, cap_answered = cap;
    }
    answered[n_answered++] = id;
    return 0;
}

static int answer(sym_outbuf *o, unsigned long long id) {
    long k = n_ids++;
    int32_t *c = sym_uid_map_get(&seen, id);
    int first_time = !c;
    if (c && *c == conn_no) again_same++;
    else if (c) again_later++;
    if (ids_file) fprintf(ids_file, "%d %llu\n", conn_no, id);
    if (sym_uid_map_put(&seen, id, conn_no)) return -1;
    if (conn_no == 1 && answer_first >= 0 && first_answered++ >= answer_first) return 0;
    if (first_time && note_answered(id)) return -1;
    for (int i = 0; i < n_excepts; i++)
        if (except_k[i] == k) return put_line(o, except_t[i], id);
    if (n_rotates && put_line(o, rotates[k % n_rotates], id)) return -1;
    for (int i = 0; i < n_answers; i++)
        if (put_line(o, answers[i], id)) return -1;
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: replay_client PORT [--answer T] [--rotate T] [--except K T] [--raw LINE] [--idle N]\n"
                    "       [--idle-wait-ms MS] [--junk BYTES] [--rcvbuf BYTES] [--stall-ms MS] [--flood N] [--timeout-ms MS]\n"
                    "       [--reconnect N] [--reconnect-wait-ms MS] [--answer-first K] [--reanswer T] [--reset-after N] [--ids-file F]\n");
    return 2;
}

/* The client connection, registered (with the --raw lines): fd or -1. */
static int connect_client(int port, int rcvbuf) {
    sym_err e = {{0}};
    int fd, one = 1;
    if (rcvbuf > 0) { /* SO_RCVBUF must be set before connect */
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = {htonl(0x7f000001)}};
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) ||
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
            perror("replay_client: connect");
            if (fd >= 0) close(fd);
            return -1;
        }
    } else if ((fd = sym_tcp_connect("127.0.0.1", port, 5000, &e)) < 0 || set_blocking(fd)) {
        fprintf(stderr, "replay_client: %s\n", e.msg);
        if (fd >= 0) close(fd);
        return -1;
    }
    sym_outbuf o = {0};
    int rc = sym_proto_write_register(&o);
    for (int i = 0; i < n_raws; i++) rc |= sym_outbuf_append(&o, raws[i], strlen(raws[i])) | sym_outbuf_append(&o, "\n", 1);
    if (rc || write_all(fd, o.buf + o.off, sym_outbuf_pending(&o))) {
        fprintf(stderr, "replay_client: register refused\n");
        close(fd);
        fd = -1;
    }
    sym_outbuf_free(&o);
    return fd;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    int port = atoi(argv[1]), n_idle = 0, rcvbuf = 0;
    long idle_wait_ms = 0, junk = 0, stall_ms = 0, flood = 0, timeout_ms = 30000, reconnects = 0, reset_after = -1,
         reconnect_wait_ms = 0;
    const char *reanswer_t = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "--except")) {
            if (i + 2 >= argc || n_excepts == MAX_T) return usage();
            except_k[n_excepts] = atol(v), except_t[n_excepts++] = argv[i + 2];
            i += 2;
            continue;
        }
        if (!strcmp(a, "--answer") && n_answers < MAX_T) answers[n_answers++] = v;
        else if (!strcmp(a, "--rotate") && n_rotates < MAX_T) rotates[n_rotates++] = v;
        else if (!strcmp(a, "--raw") && n_raws < MAX_T) raws[n_raws++] = v;
        else if (!strcmp(a, "--idle")) n_idle = atoi(v);
        else if (!strcmp(a, "--idle-wait-ms")) idle_wait_ms = atol(v);
        else if (!strcmp(a, "--junk")) junk = atol(v);
        else if (!strcmp(a, "--rcvbuf")) rcvbuf = atoi(v);
        else if (!strcmp(a, "--stall-ms")) stall_ms = atol(v);
        else if (!strcmp(a, "--flood")) flood = atol(v);
        else if (!strcmp(a, "--timeout-ms")) timeout_ms = atol(v);
        else if (!strcmp(a, "--reconnect")) reconnects = atol(v);
        else if (!strcmp(a, "--reconnect-wait-ms")) reconnect_wait_ms = atol(v);
        else if (!strcmp(a, "--answer-first")) answer_first = atol(v);
        else if (!strcmp(a, "--reanswer")) reanswer_t = v;
        else if (!strcmp(a, "--reset-after")) reset_after = atol(v);
        else if (!strcmp(a, "--ids-file")) {
            if (!(ids_file = fopen(v, "w"))) return perror(v), 1;
        } else return usage();
        i++;
    }
    if (n_idle < 0 || n_idle > MAX_IDLE) return usage();
    uint64_t end = sym_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    sym_err e = {{0}};
    int idle[MAX_IDLE + 1], n_open = 0, idle_closed = -1, junk_fd = -1, junk_closed = 0;
    for (int i = 0; i < n_idle; i++) {
        if ((idle[n_open] = sym_tcp_connect("127.0.0.1", port, 5000, &e)) < 0) return fprintf(stderr, "replay_client: %s\n", e.msg), 1;
        n_open++;
    }
    if (junk > 0) {
        if ((junk_fd = sym_tcp_connect("127.0.0.1", port, 5000, &e)) < 0) return fprintf(stderr, "replay_client: %s\n", e.msg), 1;
        char *b = malloc((size_t)junk);
        if (!b) return 1;
        memset(b, 'x', (size_t)junk);
        for (long off = 0; off < junk && sym_now_ns() < end;) { /* until written or refused */
            ssize_t w = send(junk_fd, b + off, (size_t)(junk - off), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) off += w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
            else sleep_ms(5);
        }
        free(b);
        junk_closed = count_closed(&junk_fd, 1, 2000); /* before the client comes */
    }
    if (idle_wait_ms > 0) {
        sleep_ms(idle_wait_ms);
        idle_closed = count_closed(idle, n_open, 0);
    }

    int fd = connect_client(port, rcvbuf);
    if (fd < 0) return 1;
    conn_no = 1;
    sym_outbuf o = {0};
    if (stall_ms > 0) sleep_ms(stall_ms);
    int flood_cut = 0, closed = 0;
    if (flood > 0) { /* then read nothing: only wait for the server to hang up */
        char *b = malloc((size_t)flood * 2);
        if (!b) return 1;
        for (long i = 0; i < flood; i++) b[2 * i] = 'x', b[2 * i + 1] = '\n';
        flood_cut = write_all(fd, b, (size_t)flood * 2) != 0;
        free(b);
        while (!closed && sym_now_ns() < end) {
            struct pollfd p = {.fd = fd, .events = POLLRDHUP};
            closed = poll(&p, 1, 100) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
        }
    }

    sym_line_reader lr;
    if (sym_lr_init(&lr, SYM_NET_MAX_LINE_DEFAULT) || sym_uid_map_init(&seen, 1024)) return 1;
    long requests = 0, errors = 0, updates = 0, lines_out = 0, update_ids_unknown = 0, lines_lost = 0;
    int reset_done = 0;
    while (sym_now_ns() < end) {
        if (closed) { /* the connection is lost: again, while --reconnect allows */
            if (reconnects-- <= 0) break;
            close(fd);
            sym_lr_reset(&lr); /* a line cut off is gone with its connection */
            sym_outbuf_reset(&o);
            if (reconnect_wait_ms > 0) sleep_ms(reconnect_wait_ms);
            if ((fd = connect_client(port, rcvbuf)) < 0) break; /* the server is gone: closed stays 1 */
            closed = 0;
            conn_no++;
            if (reanswer_t) {
                for (long i = 0; i < n_answered; i++)
                    if (put_line(&o, reanswer_t, (unsigned long long)answered[i])) return 1;
                for (size_t i = o.off; i < o.len; i++) lines_out += o.buf[i] == '\n';
                if (write_all(fd, o.buf + o.off, sym_outbuf_pending(&o))) closed = 1;
                sym_outbuf_reset(&o);
            }
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t got = sym_lr_read_fd(&lr, fd);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (got <= 0) {
            lines_lost += lr.len > lr.start; /* part of a line the server had sent */
            closed = 1;
            continue;
        }
        char *line;
        size_t len;
        int k;
        while ((k = sym_lr_next(&lr, &line, &len)) != SYM_LR_NONE) {
            cJSON *root;
            sym_msg_type t;
            if (k != SYM_LR_LINE || sym_proto_parse(line, len, &root, &t, &e)) {
                fprintf(stderr, "replay_client: the server wrote a bad line: %.80s\n", k == SYM_LR_LINE ? line : "(over 1 MiB)");
                continue;
            }
            if (t == SYM_MSG_ERROR) errors++;
            else if (t == SYM_MSG_SCORE_UPDATE) { /* its ids must be ours, exactly */
                const cJSON *uids = cJSON_GetObjectItemCaseSensitive(root, "unique_ids");
                updates++;
                for (const cJSON *u = cJSON_IsArray(uids) ? uids->child : NULL; u; u = u->next) {
                    uint64_t id;
                    update_ids_unknown += sym_proto_uid(u, &id, &e) || !sym_uid_map_get(&seen, id);
                }
            }
            else if (t == SYM_MSG_INFERENCE_REQUEST) {
                if (!requests++ && idle_closed < 0) idle_closed = count_closed(idle, n_open, 1000);
                const cJSON *uids = cJSON_GetObjectItemCaseSensitive(root, "unique_ids");
                for (const cJSON *u = cJSON_IsArray(uids) ? uids->child : NULL; u; u = u->next) {
                    uint64_t id;
                    if (sym_proto_uid(u, &id, &e) == 0 && answer(&o, (unsigned long long)id)) return 1;
                }
            }
            cJSON_Delete(root);
        }
        for (size_t i = o.off; i < o.len; i++) lines_out += o.buf[i] == '\n';
        if (sym_outbuf_pending(&o) && write_all(fd, o.buf + o.off, sym_outbuf_pending(&o))) closed = 1;
        sym_outbuf_reset(&o);
        if (!closed && reset_after >= 0 && !reset_done && n_ids >= reset_after) {
            struct linger l = {.l_onoff = 1, .l_linger = 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            reset_done = closed = 1; /* closed below, on the reconnect */
        }
    }
    if (idle_closed < 0) idle_closed = count_closed(idle, n_open, 0);
    if (ids_file && fclose(ids_file)) return perror("replay_client: ids file"), 1;
    printf("replay_client: %ld ids, %ld lines written, %ld errors and %ld score updates received (%ld ids in them not ours), "
           "idle closed %d of %d, junk closed %d%s, %d connections, ids again %ld later and %ld on the same connection, "
           "%ld lines cut off, %s\n",
           n_ids, lines_out, errors, updates, update_ids_unknown, idle_closed, n_open, junk_closed,
           flood_cut ? ", flood cut off" : "", conn_no, again_later, again_same, lines_lost, closed ? "server closed" : "timed out");
    for (int i = 0; i < n_open; i++) close(idle[i]);
    if (junk_fd >= 0) close(junk_fd);
    close(fd);
    sym_lr_free(&lr);
    sym_uid_map_free(&seen);
    sym_outbuf_free(&o);
    free(answered);
    return closed ? 0 : 1;
}
