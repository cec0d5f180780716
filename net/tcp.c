/* TCP sockets and the output buffer; see tcp.h. */
#include "net/tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int tune(int fd) {
    int one = 1;
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* best effort: not TCP for AF_UNIX tests */
    return 0;
}

static int resolve(const char *host, int port, struct sockaddr_storage *sa, socklen_t *sl, sym_err *e) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) return sym_fail(e, "cannot resolve %s: %s", host, gai_strerror(rc));
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int sym_tcp_listen(const char *host, int port, int *bound, sym_err *e) {
    struct sockaddr_storage sa;
    socklen_t sl;
    if (port < 0 || port > 65535) return sym_fail(e, "port %d out of range", port);
    if (resolve(host, port, &sa, &sl, e)) return -1;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return sym_fail(e, "socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sl) || listen(fd, 16) || tune(fd)) {
        sym_fail(e, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    if (bound) {
        sl = sizeof sa;
        getsockname(fd, (struct sockaddr *)&sa, &sl);
        *bound = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                : ((struct sockaddr_in *)&sa)->sin_port);
    }
    return fd;
}

int sym_tcp_accept(int lfd) {
    int fd;
    do fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd >= 0 && tune(fd)) {
        close(fd);
        return -1;
    }
    return fd;
}

int sym_tcp_connect(const char *host, int port, int timeout_ms, sym_err *e) {
    struct sockaddr_storage sa;
    socklen_t sl;
    if (resolve(host, port, &sa, &sl, e)) return -1;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return sym_fail(e, "socket: %s", strerror(errno));
    if (tune(fd)) goto fail;
    if (connect(fd, (struct sockaddr *)&sa, sl) == 0) return fd;
    if (errno != EINPROGRESS) goto fail;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n;
    do n = poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n == 0) errno = ETIMEDOUT;
    if (n <= 0) goto fail;
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        errno = err;
        goto fail;
    }
    return fd;
fail:
    sym_fail(e, "cannot connect to %s:%d: %s", host, port, strerror(errno));
    close(fd);
    return -1;
}

void sym_outbuf_free(sym_outbuf *o) {
    free(o->buf);
    memset(o, 0, sizeof *o);
}

void sym_outbuf_reset(sym_outbuf *o) { o->off = o->len = 0; }

int sym_outbuf_append(sym_outbuf *o, const char *s, size_t n) {
    if (o->off == o->len) o->off = o->len = 0;
    if (o->cap - o->len < n) {
        if (o->off > 0) { /* compact before growing */
            memmove(o->buf, o->buf + o->off, o->len - o->off);
            o->len -= o->off;
            o->off = 0;
        }
        size_t cap = o->cap ? o->cap : 65536;
        while (cap - o->len < n) cap *= 2;
        if (cap != o->cap) {
            char *b = realloc(o->buf, cap);
            if (!b) return -1;
            o->buf = b;
            o->cap = cap;
        }
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

int sym_outbuf_flush(sym_outbuf *o, int fd) {
    while (o->off < o->len) {
        ssize_t n = send(fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        o->off += (size_t)n;
    }
    o->off = o->len = 0;
    return 0;
}
