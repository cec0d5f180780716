/* The line reader: split and packed messages, CRLF, blank lines, the 1 MiB
 * limit with resync at the next newline, and a partial line at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/line_reader.h"

static int fails;
#define CHECK(c, what)                                                  \
    do {                                                                \
        if (c) printf("ok   %s\n", what);                               \
        else fails++, printf("FAIL %s:%d %s\n", __FILE__, __LINE__, what); \
    } while (0)

/* Feeds text in chunks of `chunk` bytes; collects lines joined by '|',
 * an over-long line as "<LONG>". */
static void run(sym_line_reader *r, const char *text, size_t n, size_t chunk, char *out, size_t cap) {
    out[0] = '\0';
    for (size_t i = 0; i < n; i += chunk) {
        sym_lr_feed(r, text + i, i + chunk <= n ? chunk : n - i);
        char *line;
        size_t len;
        int k;
        while ((k = sym_lr_next(r, &line, &len)) != SYM_LR_NONE) {
            if (strlen(out) + len + 8 >= cap) continue;
            strcat(out, k == SYM_LR_LINE ? line : "<LONG>");
            strcat(out, "|");
        }
    }
}

int main(void) {
    sym_line_reader r;
    char out[4096];
    const char *t = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n";
    for (size_t chunk = 1; chunk <= strlen(t); chunk++) {
        sym_lr_init(&r, 64);
        run(&r, t, strlen(t), chunk, out, sizeof out);
        if (strcmp(out, "{\"a\":1}|{\"b\":2}||{\"c\":3}|")) {
            printf("FAIL chunk %zu: %s\n", chunk, out);
            fails++;
        }
        sym_lr_free(&r);
    }
    CHECK(!fails, "any chunking gives the same lines (packed, split, CRLF, blank)");

    /* over-long lines with a small limit, in every chunking */
    char big[1024];
    size_t l = (size_t)snprintf(big, sizeof big, "ok1\n");
    memset(big + l, 'x', 300), l += 300;
    l += (size_t)snprintf(big + l, sizeof big - l, "\nok2\n");
    memset(big + l, 'y', 65), l += 65; /* 65 > 64: too long even though it ends soon */
    l += (size_t)snprintf(big + l, sizeof big - l, "\nok3\npart");
    int bad = 0;
    for (size_t chunk = 1; chunk <= l; chunk += 7) {
        sym_lr_init(&r, 64);
        run(&r, big, l, chunk, out, sizeof out);
        if (strcmp(out, "ok1|<LONG>|ok2|<LONG>|ok3|")) printf("FAIL chunk %zu: %s\n", chunk, out), bad++;
        if (sym_lr_partial(&r) != 4) printf("FAIL chunk %zu: partial %zu\n", chunk, sym_lr_partial(&r)), bad++;
        if (r.n_overlong != 2) printf("FAIL chunk %zu: n_overlong %llu\n", chunk, (unsigned long long)r.n_overlong), bad++;
        sym_lr_free(&r);
    }
    fails += bad;
    CHECK(!bad, "lines over the limit reported once each, resync at the next newline, partial tail kept");

    /* a 1 MiB limit: 1 MiB + 1 byte is refused with its head handed out,
     * 1 MiB exactly is served */
    const size_t lim = (size_t)1 << 20, n = lim + 1;
    sym_lr_init(&r, lim);
    char *b = malloc(2 * n + 4);
    memset(b, 'z', 2 * n + 4);
    b[lim] = '\n';          /* line 1: exactly 1 MiB */
    b[lim + 1] = 'h';       /* line 2: 1 MiB + 1, starting "h" */
    b[lim + 1 + n] = '\n';
    b[2 * n + 1] = 'o', b[2 * n + 2] = 'k', b[2 * n + 3] = '\n';
    out[0] = '\0';
    int kinds[4], nk = 0, head_ok = 0;
    for (size_t i = 0; i < 2 * n + 4; i += 65536) {
        sym_lr_feed(&r, b + i, i + 65536 <= 2 * n + 4 ? 65536 : 2 * n + 4 - i);
        char *line;
        size_t len;
        int k;
        while ((k = sym_lr_next(&r, &line, &len)) != SYM_LR_NONE && nk < 4) {
            kinds[nk++] = k * 10 + (k == SYM_LR_LINE && len == 2);
            if (k == SYM_LR_OVERLONG) head_ok = len > lim && line[0] == 'h' && line[1] == 'z';
        }
    }
    CHECK(nk == 3 && kinds[0] == 10 && kinds[1] == 20 && kinds[2] == 11, "1 MiB line served, 1 MiB + 1 refused, next line served");
    CHECK(head_ok, "the refused line's head is handed out with it");
    free(b);
    sym_lr_free(&r);
    printf("%s\n", fails ? "FAILED" : "PASSED");
    return fails ? 1 : 0;
}
