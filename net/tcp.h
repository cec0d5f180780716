/* Loopback-friendly TCP helpers and an output buffer for non-blocking
 * sockets. Every socket made here is non-blocking with TCP_NODELAY (one
 * small JSON line per message: Nagle would add up to 40 ms of latency). */
#ifndef SYM_NET_TCP_H
#define SYM_NET_TCP_H

#include <stddef.h>

#include "common/err.h"

/* Listens on host:port (port 0: the kernel picks one, written to *bound).
 * Returns the fd or -1 with e. */
int sym_tcp_listen(const char *host, int port, int *bound, sym_err *e);

/* Accepts one pending connection: fd, or -1 (errno EAGAIN when none). */
int sym_tcp_accept(int lfd);

/* Connects to host:port, waiting up to timeout_ms. Returns the fd or -1. */
int sym_tcp_connect(const char *host, int port, int timeout_ms, sym_err *e);

/* Bytes waiting to be written on a non-blocking socket. */
typedef struct {
    char *buf;
    size_t off, len, cap; /* unsent bytes are buf[off, len) */
} sym_outbuf;

void sym_outbuf_free(sym_outbuf *o);
void sym_outbuf_reset(sym_outbuf *o);
int sym_outbuf_append(sym_outbuf *o, const char *s, size_t n);
static inline size_t sym_outbuf_pending(const sym_outbuf *o) { return o->len - o->off; }

/* Writes what the socket takes now. 0 (maybe with bytes left: wait for
 * POLLOUT), or -1 when the peer is gone. */
int sym_outbuf_flush(sym_outbuf *o, int fd);

#endif
