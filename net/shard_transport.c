/* A session's frames over nanomsg or a shared-memory ring; see
 * shard_transport.h. */
#include "net/shard_transport.h"

#include <errno.h>
#include <nanomsg/nn.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/log.h"
#include "net/shard_wire.h"

#define POLL_NS 10000000ull /* with a ring, the socket is looked at this often at most */

void sym_transport_begin(sym_shard_transport *t, sym_shm *shm, int recv_ms, int send_ms) {
    t->recv_ms = recv_ms, t->send_ms = send_ms, t->next_poll = 0;
    t->shm = shm;
    if (shm && !(t->buf = malloc(sym_wire_max_frame()))) {
        sym_warn("out of memory for a frame of the shared-memory ring: frames over nanomsg");
        sym_shm_close(shm);
        t->shm = NULL;
    }
    nn_setsockopt(t->sock, NN_SOL_SOCKET, NN_RCVTIMEO, &recv_ms, sizeof recv_ms);
    nn_setsockopt(t->sock, NN_SOL_SOCKET, NN_SNDTIMEO, &send_ms, sizeof send_ms);
}

void sym_transport_end(sym_shard_transport *t) {
    if (t->held) nn_freemsg(t->held), t->held = NULL;
    sym_shm_close(t->shm);
    t->shm = NULL;
    free(t->buf);
    t->buf = NULL;
}

const char *sym_transport_name(const sym_shard_transport *t) { return t->shm ? "a shared-memory ring" : "nanomsg"; }

int sym_transport_send(sym_shard_transport *t, const void *frame, size_t len) {
    if (t->shm) return sym_shm_ring_write(t->shm, frame, len, (uint64_t)t->send_ms * 1000000u) ? errno : 0;
    for (;;) {
        if (nn_send(t->sock, frame, len, 0) >= 0) return 0;
        int er = nn_errno();
        if (er != EINTR) return er;
    }
}

/* The socket's next message: 1, 0 (none: timed out, or nothing there
 * with flags NN_DONTWAIT), -1 with e. */
static int socket_recv(sym_shard_transport *t, int flags, const void **frame, size_t *len, sym_err *e) {
    void *buf = NULL;
    int n = nn_recv(t->sock, &buf, NN_MSG, flags);
    if (n < 0) {
        int er = nn_errno();
        if (er == ETIMEDOUT || er == EAGAIN || er == EINTR) return 0;
        return sym_fail(e, "receive: %s", nn_strerror(er));
    }
    t->held = buf;
    *frame = buf, *len = (size_t)n;
    return 1;
}

int sym_transport_recv(sym_shard_transport *t, const void **frame, size_t *len, sym_err *e) {
    if (t->held) nn_freemsg(t->held), t->held = NULL;
    if (!t->shm) return socket_recv(t, 0, frame, len, e);
    uint64_t now = sym_now_ns();
    if (now >= t->next_poll) {
        t->next_poll = now + POLL_NS;
        int r = socket_recv(t, NN_DONTWAIT, frame, len, e);
        if (r) return r;
    }
    int r = sym_shm_ring_read(t->shm, t->buf, sym_wire_max_frame(), len, (uint64_t)t->recv_ms * 1000000u, e);
    if (r > 0) *frame = t->buf;
    return r;
}
