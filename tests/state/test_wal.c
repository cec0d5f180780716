/* The log's records read back exactly, and a torn or damaged tail never
 * read as a record: a log of every record type is cut at every byte, and
 * every byte of it is flipped in turn; the reader must return exactly the
 * records wholly before the damage and then say the rest is torn (or, cut
 * on a record's end, end cleanly). Plus the header rules: another engine's
 * fingerprint, another format version, not a segment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/wal.h"
#include "tests/check.h"

#define FP 0x0123456789abcdefull
#define N_REC 7

static FILE *file_of(const unsigned char *p, size_t n) {
    FILE *f = tmpfile();
    if (!f) exit(2);
    if (n && fwrite(p, 1, n, f) != n) exit(2);
    rewind(f);
    return f;
}

/* Reads the buffer's first n bytes: how many records came, and the last
 * status (0 clean end, 2 torn, -1 header refused). */
static int read_prefix(const unsigned char *p, size_t n, sym_wal_record *recs, int *count) {
    FILE *f = file_of(p, n);
    sym_wal_reader r;
    sym_err e;
    uint64_t seg;
    int k;
    *count = 0;
    if (sym_wal_reader_open(&r, f, "test", FP, &seg, &e)) {
        fclose(f);
        return -1;
    }
    while ((k = sym_wal_reader_next(&r, &recs[*count < N_REC ? *count : N_REC - 1], &e)) == 1) ++*count;
    fclose(f);
    return k;
}

int main(void) {
    sym_wal_buf b = {0};
    size_t ends[N_REC + 1]; /* byte offset after the header and after each record */
    float feat[79];
    for (int i = 0; i < 79; i++) feat[i] = (float)i * 0.25f - 3.0f;
    const double pred[4] = {0.5, -1e-300, 3.25, -0.0};
    CHECK(!sym_wal_put_header(&b, FP, 42), "header");
    ends[0] = b.len;
    CHECK(!sym_wal_put_request(&b, 7, "SYM_001", feat, 79), "request");
    ends[1] = b.len;
    CHECK(!sym_wal_put_answer(&b, 7, 1, 0xfeedull, pred, "SYM_001"), "answer");
    ends[2] = b.len;
    CHECK(!sym_wal_put_request(&b, UINT64_MAX, "A", feat, 1), "request");
    ends[3] = b.len;
    CHECK(!sym_wal_put_refused(&b, UINT64_MAX), "refused");
    ends[4] = b.len;
    char longsym[SYM_SYMBOL_MAX + 1];
    memset(longsym, 'x', SYM_SYMBOL_MAX);
    longsym[SYM_SYMBOL_MAX] = '\0';
    CHECK(!sym_wal_put_request(&b, 8, longsym, feat, 0), "request");
    ends[5] = b.len;
    CHECK(!sym_wal_put_answer(&b, 8, 1ull << 40, 1, pred, longsym), "answer");
    ends[6] = b.len;
    CHECK(!sym_wal_put_answer(&b, 9, 2, 2, pred, "A"), "answer");
    ends[7] = b.len;

    /* whole: every field back as written */
    sym_wal_record rec[N_REC];
    int n, k = read_prefix(b.p, b.len, rec, &n);
    CHECKV(k == 0 && n == N_REC, "the whole log reads back as %d records and a clean end (%d, %d)", N_REC, k, n);
    CHECK(rec[0].type == SYM_WAL_REQUEST && rec[0].uid == 7 && !strcmp(rec[0].symbol, "SYM_001") && rec[0].n_features == 79 &&
              !memcmp(rec[0].features, feat, sizeof feat), "request fields");
    CHECK(rec[1].type == SYM_WAL_ANSWER && rec[1].uid == 7 && rec[1].step == 1 && rec[1].digest == 0xfeed &&
              !memcmp(rec[1].pred, pred, sizeof pred) && !strcmp(rec[1].symbol, "SYM_001"), "answer fields");
    CHECK(rec[2].uid == UINT64_MAX && rec[2].n_features == 1 && rec[3].type == SYM_WAL_REFUSED && rec[3].uid == UINT64_MAX,
          "max id, refused");
    CHECK(!strcmp(rec[4].symbol, longsym) && rec[4].n_features == 0 && rec[5].step == 1ull << 40 && !strcmp(rec[5].symbol, longsym) &&
              !strcmp(rec[6].symbol, "A"), "long symbol, big step");

    /* cut at every byte */
    int cut_bad = 0;
    for (size_t len = ends[0]; len <= b.len; len++) {
        int whole = 0;
        while (whole < N_REC && ends[whole + 1] <= len) whole++;
        int on_end = ends[whole] == len;
        k = read_prefix(b.p, len, rec, &n);
        if (n != whole || k != (on_end ? 0 : 2)) cut_bad++;
    }
    CHECKV(!cut_bad, "cut at each of %zu bytes: exactly the whole records before the cut, then torn (%d wrong)",
           b.len - ends[0] + 1, cut_bad);

    /* flip every byte of the records: nothing from the damaged record on */
    int flip_bad = 0;
    unsigned char *c = malloc(b.len);
    for (size_t at = ends[0]; at < b.len; at++) {
        memcpy(c, b.p, b.len);
        c[at] ^= 0x5a;
        int rec_of = 0;
        while (ends[rec_of + 1] <= at) rec_of++;
        k = read_prefix(c, b.len, rec, &n);
        if (n > rec_of || k != 2) flip_bad++;
    }
    CHECKV(!flip_bad, "a flipped byte anywhere in %zu: no record read from the damaged one on (%d wrong)",
           b.len - ends[0], flip_bad);

    /* the header */
    FILE *f = file_of(b.p, b.len);
    sym_wal_reader r;
    sym_err e;
    uint64_t seg = 0;
    CHECKV(!sym_wal_reader_open(&r, f, "seg", FP, &seg, &e) && seg == 42, "the header gives the segment number");
    fclose(f);
    f = file_of(b.p, b.len);
    CHECKV(sym_wal_reader_open(&r, f, "seg", FP ^ 1, &seg, &e) && strstr(e.msg, "another engine"),
           "another engine's segment refused: %s", e.msg);
    fclose(f);
    memcpy(c, b.p, b.len);
    c[8] = 9; /* version */
    f = file_of(c, b.len);
    CHECKV(sym_wal_reader_open(&r, f, "seg", FP, &seg, &e) && strstr(e.msg, "version"), "another version refused: %s",
           e.msg);
    fclose(f);
    memcpy(c, b.p, b.len);
    c[20] ^= 1; /* fingerprint byte, under the header's checksum */
    f = file_of(c, b.len);
    CHECKV(sym_wal_reader_open(&r, f, "seg", FP, &seg, &e) && strstr(e.msg, "checksum"), "a damaged header refused: %s",
           e.msg);
    fclose(f);
    f = file_of((const unsigned char *)"hello", 5);
    CHECKV(sym_wal_reader_open(&r, f, "seg", FP, &seg, &e) && strstr(e.msg, "not a symserve log"),
           "not a segment: %s", e.msg);
    fclose(f);
    free(c);
    sym_wal_buf_free(&b);
    return failures != 0;
}
