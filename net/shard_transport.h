/* How a session's frames (net/shard_wire.h) travel between a router's link
 * (net/shard_link.c) and a shard process (net/shard_server.c), chosen in
 * this one place: over the link's nanomsg NN_PAIR socket, or through the
 * two rings of a shared-memory region (net/shm_ring.h) that the router
 * offered in its HELLO for an ipc:// endpoint and the shard process
 * mapped. The frames are the same bytes either way, so everything above
 * (sequence numbers, sessions, batching, credit, heartbeats, a loss) is
 * unchanged.
 *
 * The handshake always goes over the socket, which the caller owns. With
 * a ring, a receive still looks at the socket first, without waiting (at
 * most every 10 ms; when idle, before each wait of up to recv_ms): frames
 * of other sessions come there, and a new router's HELLO, which ends a
 * shard process's session as it does without the ring.
 *
 * One thread sends and one receives (each ring has one producer and one
 * consumer). */
#ifndef SYM_NET_SHARD_TRANSPORT_H
#define SYM_NET_SHARD_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "net/shm_ring.h"

typedef struct {
    int sock;    /* the nanomsg socket (the caller's: opened and closed by it) */
    sym_shm *shm; /* the session's region, or NULL: frames over the socket */
    int recv_ms, send_ms;
    void *held;         /* the socket's message that recv returned last */
    unsigned char *buf; /* a frame out of the ring */
    uint64_t next_poll; /* the ring's receive looks at the socket from then */
} sym_shard_transport;

/* A session's frames from now on: through shm's rings when it is not NULL
 * (taken: closed at end), else over t->sock. A receive waits up to recv_ms
 * for a frame, a send up to send_ms for the peer to take it. When no
 * buffer for the ring's frames can be had, the frames go over the socket
 * and shm is closed: t->shm says which. */
void sym_transport_begin(sym_shard_transport *t, sym_shm *shm, int recv_ms, int send_ms);
/* The session over: the region unmapped, the last message freed; the
 * socket stays. */
void sym_transport_end(sym_shard_transport *t);
/* "a shared-memory ring" or "nanomsg", for the logs. */
const char *sym_transport_name(const sym_shard_transport *t);

/* 0 when the frame is out; else the error number: ETIMEDOUT (the peer did
 * not take it within send_ms), EPROTO (the ring's reader is impossible),
 * or nanomsg's (nn_strerror names each). */
int sym_transport_send(sym_shard_transport *t, const void *frame, size_t len);
/* 1: a frame, valid until the next receive or end; 0: none within
 * recv_ms (or the wait was interrupted); -1 with e: the link cannot go on
 * (the socket failed, the ring holds what no peer of this wire writes). */
int sym_transport_recv(sym_shard_transport *t, const void **frame, size_t *len, sym_err *e);

#endif
