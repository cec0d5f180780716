/* Frame encoding and checked decoding; see shard_wire.h. */
#include "net/shard_wire.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "frames carry the host's bytes");

static const unsigned char magic[4] = {'S', 'S', 'W', '1'};

void sym_wire_out_free(sym_wire_out *o) {
    free(o->p);
    *o = (sym_wire_out){0};
}

static int reserve(sym_wire_out *o, size_t n) {
    if (o->len + n <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + n) cap *= 2;
    unsigned char *p = realloc(o->p, cap);
    if (!p) return -1;
    o->p = p, o->cap = cap;
    return 0;
}

int sym_wire_put(sym_wire_out *o, const void *p, size_t n) {
    if (reserve(o, n)) return -1;
    memcpy(o->p + o->len, p, n);
    o->len += n;
    return 0;
}

int sym_wire_begin(sym_wire_out *o, sym_wire_kind kind, uint64_t session, uint64_t seq) {
    uint16_t k = (uint16_t)kind, zero = 0;
    o->len = 0, o->n = 0, o->count_at = 0;
    if (sym_wire_put(o, magic, 4) || sym_wire_put(o, &k, 2) || sym_wire_put(o, &zero, 2) ||
        sym_wire_put(o, &session, 8) || sym_wire_put(o, &seq, 8))
        return -1;
    if (kind == SYM_WIRE_MSGS) {
        o->count_at = o->len;
        return sym_wire_put(o, &o->n, 4);
    }
    return 0;
}

size_t sym_wire_max_frame(void) {
    const size_t msgs = 4 + (size_t)SYM_WIRE_BATCH * (4 + sizeof(sym_msg)), bytes = 4 + 8 + 8 + SYM_WIRE_CHUNK_BYTES;
    const size_t other = sizeof(sym_wire_hello) + sizeof(sym_paging_stats) + 1024; /* HELLO, HEARTBEAT, REFUSE's why */
    size_t m = msgs > bytes ? msgs : bytes;
    return SYM_WIRE_HEADER_BYTES + (m > other ? m : other);
}

size_t sym_wire_msg_bytes(const sym_msg *m) {
    size_t fixed = offsetof(sym_msg, u);
    switch (m->type) {
    case SYM_MSG_STEP_REQ: {
        int n = m->u.req.n_features;
        if (n < 0) n = 0;
        if (n > SYM_MAX_FEATURES) n = SYM_MAX_FEATURES;
        return fixed + offsetof(sym_request, features) + (size_t)n * sizeof(float);
    }
    case SYM_MSG_DONE: return fixed + sizeof(sym_prediction);
    case SYM_MSG_EXPORT:
    case SYM_MSG_IMPORT:
    case SYM_MSG_EXPORTED:
    case SYM_MSG_IMPORTED: return fixed + sizeof(sym_slot_io);
    default: return fixed;
    }
}

int sym_wire_put_msg(sym_wire_out *o, const sym_msg *m) {
    uint32_t n = (uint32_t)sym_wire_msg_bytes(m);
    if (sym_wire_put(o, &n, 4) || sym_wire_put(o, m, n)) return -1;
    o->n++;
    memcpy(o->p + o->count_at, &o->n, 4);
    return 0;
}

int sym_wire_open(sym_wire_in *in, const void *frame, size_t len, sym_err *e) {
    const unsigned char *f = frame;
    uint16_t k;
    if (len < SYM_WIRE_HEADER_BYTES || memcmp(f, magic, 4)) return sym_fail(e, "a frame that is not a symserve shard frame");
    memcpy(&k, f + 4, 2);
    memcpy(&in->session, f + 8, 8);
    memcpy(&in->seq, f + 16, 8);
    if (k < SYM_WIRE_HELLO || k > SYM_WIRE_BYE) return sym_fail(e, "a frame of unknown kind %u", (unsigned)k);
    in->kind = k;
    in->p = f + SYM_WIRE_HEADER_BYTES, in->end = f + len;
    return 0;
}

int sym_wire_in_session(const sym_wire_in *in, uint64_t session, uint64_t *seq, sym_err *e) {
    if (in->session != session) return 1;
    if (in->seq != *seq + 1)
        return sym_fail(e, "frame %llu after %llu: frames were lost", (unsigned long long)in->seq,
                        (unsigned long long)*seq);
    *seq = in->seq;
    return 0;
}

int sym_wire_get(sym_wire_in *in, void *out, size_t n, sym_err *e) {
    if ((size_t)(in->end - in->p) < n) return sym_fail(e, "a frame cut short (kind %d)", in->kind);
    memcpy(out, in->p, n);
    in->p += n;
    return 0;
}

int sym_wire_get_msg(sym_wire_in *in, sym_msg *m, sym_err *e) {
    uint32_t n = 0;
    if (sym_wire_get(in, &n, 4, e)) return -1;
    if (n < offsetof(sym_msg, u) || n > sizeof *m) return sym_fail(e, "a message of %u bytes", n);
    memset(m, 0, sizeof *m);
    if (sym_wire_get(in, m, n, e)) return -1;
    if (n != sym_wire_msg_bytes(m)) return sym_fail(e, "a message of type %d in %u bytes", m->type, n);
    return 0;
}
