/* Snapshot files read back exactly, and never read when damaged: a file of
 * three symbols is cut at many lengths and has bytes flipped all over; the
 * reader must fail somewhere before its footer every time (recovery then
 * skips the file). Another engine's file and another slot size are
 * refused by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/snapshot.h"
#include "tests/check.h"

#define FP 0x5eedf00dull
#define SLOT 1000

static int read_all(const char *path, uint64_t fp, size_t slot, int *entries, sym_err *e) {
    sym_snapshot_reader r;
    char name[SYM_SYMBOL_MAX + 1];
    uint64_t steps;
    static unsigned char buf[SLOT];
    int k;
    *entries = 0;
    if (sym_snapshot_open(&r, path, fp, slot, e)) {
        sym_snapshot_close(&r);
        return -1;
    }
    while ((k = sym_snapshot_next(&r, name, &steps, buf, e)) == 1) ++*entries;
    sym_snapshot_close(&r);
    return k;
}

int main(void) {
    char dir[] = "/tmp/test_snapshot_XXXXXX", path[1100], copy[1200];
    if (!mkdtemp(dir)) return 2;
    unsigned char state[3][SLOT];
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < SLOT; i++) state[s][i] = (unsigned char)(i * 7 + s * 13);
    const char *names[3] = {"SYM_000", "A", "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"};
    sym_snapshot_writer w;
    sym_err e = {{0}};
    int ok = !sym_snapshot_begin(&w, dir, 7, 5, FP, SLOT, &e);
    w.writeback_bytes = 256; /* handed to the disk in pieces across entries and within a state */
    for (int s = 0; s < 3 && ok; s++) ok = !sym_snapshot_put(&w, names[s], 100 + (uint64_t)s, state[s], &e);
    ok = ok && !sym_snapshot_finish(&w, &e);
    CHECKV(ok, "written: %s", ok ? "3 symbols" : e.msg);
    CHECKV(w.handed > SLOT && w.waited > 0 && w.handed - w.waited <= 2 * 256 + SLOT,
           "handed to the disk as written: %llu bytes, %llu waited for", (unsigned long long)w.handed,
           (unsigned long long)w.waited);
    sym_snapshot_path(dir, 7, path, sizeof path);
    uint64_t num = 0;
    CHECKV(!sym_snapshot_number("snap-00000007.bin", &num) && num == 7 && sym_snapshot_number("snap-7.bin.tmp", &num) &&
               sym_snapshot_number("snap-0000000x.bin", &num), "file names read strictly");
    snprintf(copy, sizeof copy, "%s.tmp", path);
    CHECKV(access(copy, F_OK) != 0, "no temporary file left once finished");

    sym_snapshot_reader r;
    char name[SYM_SYMBOL_MAX + 1];
    uint64_t steps;
    unsigned char buf[SLOT];
    int k, n = 0, same = 1;
    CHECK(!sym_snapshot_open(&r, path, FP, SLOT, &e), "open: %s", e.msg);
    CHECK(r.segment == 7 && r.log_from == 5, "segment, log_from");
    while ((k = sym_snapshot_next(&r, name, &steps, buf, &e)) == 1) {
        same &= n < 3 && !strcmp(name, names[n]) && steps == 100 + (uint64_t)n && !memcmp(buf, state[n], SLOT);
        n++;
    }
    sym_snapshot_close(&r);
    CHECKV(k == 0 && n == 3 && same, "read back: 3 entries, names, steps and bytes equal, the footer matched");

    FILE *f = fopen(path, "rb");
    unsigned char *whole = malloc(4 * SLOT);
    size_t len = fread(whole, 1, 4 * SLOT, f);
    fclose(f);
    int cut_read = 0, flip_read = 0, cuts = 0, flips = 0;
    for (size_t l = 0; l < len; l += 7, cuts++) {
        f = fopen(copy, "wb");
        fwrite(whole, 1, l, f);
        fclose(f);
        if (read_all(copy, FP, SLOT, &n, &e) == 0) cut_read++;
    }
    CHECKV(!cut_read, "cut at %d lengths: never read to its end (%d were)", cuts, cut_read);
    for (size_t at = 0; at < len; at += 5, flips++) {
        whole[at] ^= 0x10;
        f = fopen(copy, "wb");
        fwrite(whole, 1, len, f);
        fclose(f);
        whole[at] ^= 0x10;
        if (read_all(copy, FP, SLOT, &n, &e) == 0) flip_read++;
    }
    CHECKV(!flip_read, "a byte flipped at %d places: never read to its end (%d were)", flips, flip_read);
    f = fopen(copy, "wb");
    fwrite(whole, 1, len, f);
    fputc(0, f);
    fclose(f);
    CHECKV(read_all(copy, FP, SLOT, &n, &e) < 0 && strstr(e.msg, "footer"), "a byte after the footer: %s", e.msg);
    CHECKV(read_all(path, FP + 1, SLOT, &n, &e) < 0 && strstr(e.msg, "another engine"), "another engine's: %s", e.msg);
    CHECKV(read_all(path, FP, SLOT + 4, &n, &e) < 0 && strstr(e.msg, "slots of"), "another slot size: %s", e.msg);

    /* an aborted snapshot leaves nothing */
    ok = !sym_snapshot_begin(&w, dir, 9, 9, FP, SLOT, &e) && !sym_snapshot_put(&w, "B", 1, state[0], &e);
    sym_snapshot_abort(&w);
    sym_snapshot_path(dir, 9, path, sizeof path);
    snprintf(copy, sizeof copy, "%s.tmp", path);
    CHECKV(ok && access(path, F_OK) != 0 && access(copy, F_OK) != 0, "an aborted snapshot leaves no file");
    free(whole);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 2;
    return failures != 0;
}
