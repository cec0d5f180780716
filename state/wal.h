/* The write-ahead log of symbol steps: what a symbol's state is made of,
 * so that a restart rebuilds it exactly (state/recover.h).
 *
 * A log is a sequence of segment files `wal-NNNNNNNN.log` in the state
 * directory. A segment starts with a header (magic, format version, the
 * engine fingerprint it was written for, its number) and holds records:
 *
 *   u32 body length | u32 CRC-32C of the body | body = u8 type, payload
 *
 *   REQUEST  uid u64, symbol (u8 length, bytes), u16 n, n x f32 features
 *            a request the engine accepted, logged before it is stepped;
 *   ANSWER   uid u64, step u64, digest u64, 4 x f64, symbol (u8, bytes)
 *            it was stepped: the symbol's step count after it, the
 *            request's digest (net/uid_window.h), the answer sent, and
 *            the symbol again, so that an answer reads alone once the
 *            segment of its request is gone (state/snapshot.h);
 *   REFUSED  uid u64
 *            the engine refused it after all: it never stepped.
 *
 * All integers little-endian. Every answer is in the log before it leaves
 * the process (write(2) to the page cache, which outlives a kill -9; fsync
 * per the policy for a machine crash), so an answer a peer has seen is
 * never lost. A record cut by a crash (a torn tail) fails its length or
 * checksum: reading stops there and the rest of the file is cut, never
 * applied. */
#ifndef SYM_STATE_WAL_H
#define SYM_STATE_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/request.h"

enum { SYM_WAL_REQUEST = 1, SYM_WAL_ANSWER = 2, SYM_WAL_REFUSED = 3 };

#define SYM_WAL_HEADER_BYTES 32
#define SYM_WAL_MAX_BODY (1 + 8 + 1 + SYM_SYMBOL_MAX + 2 + 4 * SYM_MAX_FEATURES)

typedef struct {
    int type;
    uint64_t uid;
    char symbol[SYM_SYMBOL_MAX + 1]; /* REQUEST, ANSWER */
    /* REQUEST */
    int n_features;
    float features[SYM_MAX_FEATURES];
    /* ANSWER */
    uint64_t step, digest;
    double pred[SYM_TOWERS];
} sym_wal_record;

/* A growable byte buffer records are encoded into before one write(2). */
typedef struct {
    unsigned char *p;
    size_t len, cap;
} sym_wal_buf;

void sym_wal_buf_free(sym_wal_buf *b);
/* -1 when memory runs out (nothing appended). */
int sym_wal_put_request(sym_wal_buf *b, uint64_t uid, const char *symbol, const float *features, int n_features);
int sym_wal_put_answer(sym_wal_buf *b, uint64_t uid, uint64_t step, uint64_t digest, const double pred[SYM_TOWERS],
                       const char *symbol);
int sym_wal_put_refused(sym_wal_buf *b, uint64_t uid);
/* A segment's header. */
int sym_wal_put_header(sym_wal_buf *b, uint64_t fingerprint, uint64_t segment);

/* The number in a state file's name, strictly: prefix, 8 or more digits,
 * suffix ("wal-00000012.log", "snap-00000012.bin"). -1 for any other
 * name. */
int sym_state_file_number(const char *name, const char *prefix, const char *suffix, uint64_t *n);

/* Reads a segment from an open file, record by record. */
typedef struct {
    FILE *f;
    const char *path;
    uint64_t offset; /* end of the last whole record */
    unsigned char body[SYM_WAL_MAX_BODY];
} sym_wal_reader;

/* Checks the header: -1 with e naming the file when it is not a segment,
 * another format version, or another engine's (fingerprint). */
int sym_wal_reader_open(sym_wal_reader *r, FILE *f, const char *path, uint64_t fingerprint, uint64_t *segment,
                        sym_err *e);
/* 1: a record in rec; 0: the clean end of the file; 2: a torn or corrupt
 * record at r->offset (why in e): nothing from there on is valid. */
int sym_wal_reader_next(sym_wal_reader *r, sym_wal_record *rec, sym_err *e);

#endif
