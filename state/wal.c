/* Log records: encoding, and reading back with the torn-tail rule; see
 * wal.h. */
#include "state/wal.h"

#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "log records are written as the host's bytes");

static const char magic[8] = {'S', 'Y', 'M', 'W', 'A', 'L', 0, 1};
#define FORMAT_VERSION 1u

void sym_wal_buf_free(sym_wal_buf *b) {
    free(b->p);
    *b = (sym_wal_buf){0};
}

static unsigned char *reserve(sym_wal_buf *b, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) return NULL;
        b->p = p, b->cap = cap;
    }
    return b->p + b->len;
}

/* A record of body (type + payload) n bytes: the frame is filled in by
 * close_record once the payload is written at the returned pointer + 9. */
static unsigned char *open_record(sym_wal_buf *b, int type, size_t payload) {
    unsigned char *r = reserve(b, 8 + 1 + payload);
    if (r) r[8] = (unsigned char)type;
    return r;
}

static void close_record(sym_wal_buf *b, unsigned char *r, size_t payload) {
    uint32_t len = (uint32_t)(1 + payload), crc = sym_crc32c(0, r + 8, len);
    memcpy(r, &len, 4);
    memcpy(r + 4, &crc, 4);
    b->len += 8 + len;
}

int sym_wal_put_request(sym_wal_buf *b, uint64_t uid, const char *symbol, const float *features, int n_features) {
    size_t sl = strlen(symbol), payload = 8 + 1 + sl + 2 + 4 * (size_t)n_features;
    if (sl > SYM_SYMBOL_MAX || n_features < 0 || n_features > SYM_MAX_FEATURES) return -1;
    unsigned char *r = open_record(b, SYM_WAL_REQUEST, payload), *q;
    if (!r) return -1;
    q = r + 9;
    uint8_t l8 = (uint8_t)sl;
    uint16_t n16 = (uint16_t)n_features;
    memcpy(q, &uid, 8), q += 8;
    *q++ = l8;
    memcpy(q, symbol, sl), q += sl;
    memcpy(q, &n16, 2), q += 2;
    memcpy(q, features, 4 * (size_t)n_features);
    close_record(b, r, payload);
    return 0;
}

int sym_wal_put_answer(sym_wal_buf *b, uint64_t uid, uint64_t step, uint64_t digest, const double pred[SYM_TOWERS],
                       const char *symbol) {
    size_t sl = strlen(symbol), payload = 3 * 8 + 8 * SYM_TOWERS + 1 + sl;
    if (sl > SYM_SYMBOL_MAX) return -1;
    unsigned char *r = open_record(b, SYM_WAL_ANSWER, payload);
    if (!r) return -1;
    memcpy(r + 9, &uid, 8);
    memcpy(r + 17, &step, 8);
    memcpy(r + 25, &digest, 8);
    memcpy(r + 33, pred, 8 * SYM_TOWERS);
    r[33 + 8 * SYM_TOWERS] = (unsigned char)sl;
    memcpy(r + 34 + 8 * SYM_TOWERS, symbol, sl);
    close_record(b, r, payload);
    return 0;
}

int sym_wal_put_refused(sym_wal_buf *b, uint64_t uid) {
    unsigned char *r = open_record(b, SYM_WAL_REFUSED, 8);
    if (!r) return -1;
    memcpy(r + 9, &uid, 8);
    close_record(b, r, 8);
    return 0;
}

/* magic 8 | version u32 | crc u32 of the rest | fingerprint u64 | segment u64 */
int sym_wal_put_header(sym_wal_buf *b, uint64_t fingerprint, uint64_t segment) {
    unsigned char *h = reserve(b, SYM_WAL_HEADER_BYTES);
    if (!h) return -1;
    uint32_t v = FORMAT_VERSION, crc;
    memcpy(h, magic, 8);
    memcpy(h + 8, &v, 4);
    memcpy(h + 16, &fingerprint, 8);
    memcpy(h + 24, &segment, 8);
    crc = sym_crc32c(0, h + 16, 16);
    memcpy(h + 12, &crc, 4);
    b->len += SYM_WAL_HEADER_BYTES;
    return 0;
}

int sym_state_file_number(const char *name, const char *prefix, const char *suffix, uint64_t *n) {
    size_t len = strlen(name), pl = strlen(prefix), sl = strlen(suffix);
    if (len < pl + 8 + sl || strncmp(name, prefix, pl) || strcmp(name + len - sl, suffix)) return -1;
    uint64_t v = 0;
    for (size_t i = pl; i < len - sl; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *n = v;
    return 0;
}

int sym_wal_reader_open(sym_wal_reader *r, FILE *f, const char *path, uint64_t fingerprint, uint64_t *segment,
                        sym_err *e) {
    unsigned char h[SYM_WAL_HEADER_BYTES];
    uint32_t v, crc;
    uint64_t fp;
    r->f = f, r->path = path, r->offset = 0;
    if (fread(h, 1, sizeof h, f) != sizeof h || memcmp(h, magic, 8))
        return sym_fail(e, "%s: not a symserve log segment (no header)", path);
    memcpy(&v, h + 8, 4);
    memcpy(&crc, h + 12, 4);
    if (v != FORMAT_VERSION) return sym_fail(e, "%s: log format version %u, this build reads %u", path, v, FORMAT_VERSION);
    if (crc != sym_crc32c(0, h + 16, 16)) return sym_fail(e, "%s: the header's checksum does not match: corrupt", path);
    memcpy(&fp, h + 16, 8);
    memcpy(segment, h + 24, 8);
    if (fp != fingerprint)
        return sym_fail(e, "%s: written for another engine (fingerprint %016llx, this one is %016llx: another model, "
                           "backend, precision or state precision)", path, (unsigned long long)fp, (unsigned long long)fingerprint);
    r->offset = SYM_WAL_HEADER_BYTES;
    return 0;
}

static int torn(sym_wal_reader *r, sym_err *e, const char *why) {
    sym_fail(e, "%s: %s at byte %llu", r->path, why, (unsigned long long)r->offset);
    return 2;
}

/* The payload of body (n bytes) into rec; -1 when its length does not fit
 * its type (a record that passed its checksum but is not one we write). */
static int decode(const unsigned char *body, uint32_t n, sym_wal_record *rec) {
    const unsigned char *q = body + 1;
    rec->type = body[0];
    switch (rec->type) {
    case SYM_WAL_REQUEST: {
        if (n < 1 + 8 + 1) return -1;
        memcpy(&rec->uid, q, 8), q += 8;
        size_t sl = *q++;
        if (sl == 0 || sl > SYM_SYMBOL_MAX || n < 1 + 8 + 1 + sl + 2) return -1;
        memcpy(rec->symbol, q, sl), q += sl;
        rec->symbol[sl] = '\0';
        uint16_t nf;
        memcpy(&nf, q, 2), q += 2;
        if (nf > SYM_MAX_FEATURES || n != 1 + 8 + 1 + sl + 2 + 4 * (size_t)nf) return -1;
        rec->n_features = nf;
        memcpy(rec->features, q, 4 * (size_t)nf);
        return 0;
    }
    case SYM_WAL_ANSWER: {
        size_t fixed = 1 + 3 * 8 + 8 * SYM_TOWERS + 1, sl;
        if (n < fixed || (sl = q[fixed - 2]) == 0 || sl > SYM_SYMBOL_MAX || n != fixed + sl) return -1;
        memcpy(&rec->uid, q, 8);
        memcpy(&rec->step, q + 8, 8);
        memcpy(&rec->digest, q + 16, 8);
        memcpy(rec->pred, q + 24, 8 * SYM_TOWERS);
        memcpy(rec->symbol, q + fixed - 1, sl);
        rec->symbol[sl] = '\0';
        return 0;
    }
    case SYM_WAL_REFUSED:
        if (n != 1 + 8) return -1;
        memcpy(&rec->uid, q, 8);
        return 0;
    default: return -1;
    }
}

int sym_wal_reader_next(sym_wal_reader *r, sym_wal_record *rec, sym_err *e) {
    unsigned char frame[8];
    size_t got = fread(frame, 1, 8, r->f);
    if (got == 0 && feof(r->f)) return 0;
    if (got < 8) return torn(r, e, "a record cut short (its frame)");
    uint32_t len, crc;
    memcpy(&len, frame, 4);
    memcpy(&crc, frame + 4, 4);
    if (len < 1 || len > SYM_WAL_MAX_BODY) return torn(r, e, "a record with an impossible length");
    if (fread(r->body, 1, len, r->f) != len) return torn(r, e, "a record cut short");
    if (sym_crc32c(0, r->body, len) != crc) return torn(r, e, "a record whose checksum does not match");
    if (decode(r->body, len, rec)) return torn(r, e, "a record of an unknown type or length");
    r->offset += 8 + len;
    return 1;
}
