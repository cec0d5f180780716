/* The frames between a router's link to a shard (net/shard_link.h) and a
 * `symserve shard` process (net/shard_server.h): one nanomsg message
 * (NN_PAIR socket, tcp:// or ipc://) per frame, or, after the handshake
 * of an ipc:// link, the same bytes through a shared-memory ring
 * (net/shard_transport.h).
 *
 *   header: u32 magic "SSW1" | u16 kind | u16 0 | u64 session | u64 seq
 *
 * session is the router's random number for one session (its HELLO): a
 * side drops a frame of another session (a shard process still sending to
 * a router that has gone, whose frames reach the next one on the same
 * socket). seq counts a direction's frames from 1 within a session: a
 * frame that does not carry the next number means frames were lost (a
 * connection that broke and came back) and ends the session, so a lost
 * request or answer is never mistaken for none.
 *
 *   HELLO     router -> shard   u32 wire version, u32 sizeof(sym_msg),
 *             u64 engine fingerprint (state/fingerprint.h), i32 shard
 *             index, i32 max_symbols, queue_capacity, max_batch,
 *             rows_per_symbol, features, heartbeat_ms, timeout_ms,
 *             char[32] the name of a shared-memory region for the
 *             session's frames (net/shm_ring.h; an ipc:// link only), or
 *             zeros; sent again, the same frame, every heartbeat_ms until
 *             the answer comes (a connection can drop it unseen): a shard
 *             process takes a copy of its session's HELLO as nothing
 *   WELCOME   shard -> router   u64 slot bytes, u64 state element size,
 *             u64 1 when the shard process mapped the HELLO's region:
 *             every later frame of the session, both ways, goes through
 *             its rings (net/shard_transport.h); 0: over the socket
 *   REFUSE    shard -> router   why, text to the end of the frame
 *   MSGS      either way        u32 n, then n x (u32 length, the first
 *             `length` bytes of a sym_msg: its fixed part, and of a
 *             request only its features): the actors' messages as they are
 *   BYTES     either way        i32 slot buffer (the router's index), u64
 *             offset, u64 total, bytes: a slot's state, in chunks, before
 *             the MSGS frame whose IMPORT or EXPORTED names that buffer
 *   HEARTBEAT either way        shard -> router: its sym_paging_stats
 *   BYE       shard -> router   the shard handled STOP: the session ends
 *
 * All integers little-endian (the host's: both ends are one build, which
 * HELLO's version and message size check). */
#ifndef SYM_NET_SHARD_WIRE_H
#define SYM_NET_SHARD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "actors/msg.h"
#include "actors/paging.h"
#include "common/err.h"
#include "net/shm_ring.h"

#define SYM_WIRE_VERSION 3u
#define SYM_WIRE_HEADER_BYTES 24
#define SYM_WIRE_CHUNK_BYTES ((size_t)1 << 20) /* a slot's bytes travel in frames of this much */
#define SYM_WIRE_BATCH 256                       /* messages per MSGS frame at most */

typedef enum {
    SYM_WIRE_HELLO = 1,
    SYM_WIRE_WELCOME,
    SYM_WIRE_REFUSE,
    SYM_WIRE_MSGS,
    SYM_WIRE_BYTES,
    SYM_WIRE_HEARTBEAT,
    SYM_WIRE_BYE,
} sym_wire_kind;

typedef struct {
    uint32_t version, msg_size;
    uint64_t fingerprint;
    int32_t index, max_symbols, queue_capacity, max_batch, rows_per_symbol, features, heartbeat_ms, timeout_ms;
    char shm[SYM_SHM_NAME_MAX]; /* "": none offered */
} sym_wire_hello;

/* A frame being written. */
typedef struct {
    unsigned char *p;
    size_t len, cap;
    size_t count_at; /* MSGS: where n is */
    uint32_t n;
} sym_wire_out;

/* The largest frame either side sends: a full MSGS frame, or a BYTES
 * frame of a whole chunk. Both sides' sockets drop a longer one from a
 * peer before keeping any of it (nanomsg's NN_RCVMAXSIZE; the connection
 * goes, and the session with it); a shared-memory ring's reader refuses
 * one before reading it (the session ends). */
size_t sym_wire_max_frame(void);

void sym_wire_out_free(sym_wire_out *o);
/* Each -1 when memory runs out. begin starts a new frame (len = header). */
int sym_wire_begin(sym_wire_out *o, sym_wire_kind kind, uint64_t session, uint64_t seq);
int sym_wire_put(sym_wire_out *o, const void *p, size_t n);
/* MSGS: one message appended (its encoded length, then its bytes). */
int sym_wire_put_msg(sym_wire_out *o, const sym_msg *m);

/* A frame read: its header checked. */
typedef struct {
    const unsigned char *p, *end; /* the payload not read yet */
    int kind;
    uint64_t session, seq;
} sym_wire_in;

/* -1 with e when the frame is shorter than a header or not ours. */
int sym_wire_open(sym_wire_in *in, const void *frame, size_t len, sym_err *e);
/* A frame of a session: 1 when it is of another session (to be dropped);
 * -1 with e when it is not the next of *seq (frames were lost); else 0,
 * *seq advanced. */
int sym_wire_in_session(const sym_wire_in *in, uint64_t session, uint64_t *seq, sym_err *e);
/* -1 with e when fewer than n bytes are left. */
int sym_wire_get(sym_wire_in *in, void *out, size_t n, sym_err *e);
/* MSGS: the next message, its unsent tail zeroed; -1 with e when the
 * length is impossible for its type. */
int sym_wire_get_msg(sym_wire_in *in, sym_msg *m, sym_err *e);

/* The bytes of m that travel (its fixed part; of a request, only its
 * n_features features). */
size_t sym_wire_msg_bytes(const sym_msg *m);

#endif
