/* A client of `symserve serve` that never reads: it sends N requests (300
 * symbols of its own, STUCK_000..STUCK_299, so the engine answers it fast; F
 * features of 0.5 each; 50 rows a message) with a tiny receive buffer, so
 * its answers pile up at the server, then waits for the server to drop it.
 *
 *   serve_stuck_client HOST PORT N F TIMEOUT_S
 *
 * Exit 0 when the server dropped the connection (a reset or a failed send)
 * within TIMEOUT_S; 1 when it did not; 2 on a usage or connect error. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: serve_stuck_client HOST PORT N F TIMEOUT_S\n");
        return 2;
    }
    int port = atoi(argv[2]), n = atoi(argv[3]), nf = atoi(argv[4]);
    double timeout = atof(argv[5]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int rcvbuf = 4096; /* before connect: the window the server may fill stays small */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        perror("serve_stuck_client: connect");
        return 2;
    }
    size_t cap = (size_t)nf * 4 + 256, len;
    char *row = malloc(cap), *msg = malloc(50 * cap + 256);
    if (!row || !msg) return 2;
    double t0 = now_s();
    int sent = 0, dropped = 0;
    while (sent < n && !dropped) {
        len = (size_t)sprintf(msg, "{\"message_type\":\"inference_request\",\"unique_ids\":[");
        int k = 0;
        for (; k < 50 && sent + k < n; k++) len += (size_t)sprintf(msg + len, "%s%d", k ? "," : "", sent + k);
        len += (size_t)sprintf(msg + len, "],\"symbols\":[");
        for (int j = 0; j < k; j++) len += (size_t)sprintf(msg + len, "%s\"STUCK_%03d\"", j ? "," : "", (sent + j) % 300);
        len += (size_t)sprintf(msg + len, "],\"features\":[");
        for (int j = 0; j < k; j++) {
            size_t r = 0;
            for (int f = 0; f < nf; f++) r += (size_t)sprintf(row + r, f ? ",0.5" : "[0.5");
            len += (size_t)sprintf(msg + len, "%s%s]", j ? "," : "", row);
        }
        len += (size_t)sprintf(msg + len, "],\"timestamp\":0}\n");
        if (send_all(fd, msg, len)) dropped = 1; /* the server stopped reading us, then reset */
        else sent += k;
    }
    printf("serve_stuck_client: %d requests sent%s\n", sent, dropped ? ", then the server dropped us" : "");
    while (!dropped && now_s() - t0 < timeout) {
        struct pollfd p = {.fd = fd, .events = 0}; /* never reads: only a hang-up or an error wakes us */
        if (poll(&p, 1, 100) > 0 && (p.revents & (POLLHUP | POLLERR))) dropped = 1;
    }
    printf("serve_stuck_client: %s after %.1f s\n", dropped ? "dropped by the server" : "NOT dropped", now_s() - t0);
    free(row), free(msg);
    close(fd);
    return dropped ? 0 : 1;
}
