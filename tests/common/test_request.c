/* The symbol rule (common/request.h) as docs/PROTOCOL.md states it: 1 to 64
 * bytes of printable ASCII without space (0x21..0x7e), and the places that
 * store a symbol (a request, a CSV row, the engine's symbol registry) taking
 * exactly the symbols it accepts: 64 bytes fit everywhere, 65 nowhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/request.h"
#include "common/requests_csv.h"
#include "sharding/symbol_table.h"
#include "tests/check.h"

static int valid(const char *s, size_t len) { return sym_symbol_check(s, len, NULL) == 0; }

static void syntax(void) {
    char s[80];
    memset(s, 'A', sizeof s);
    CHECKV(SYM_SYMBOL_MAX == 64, "SYM_SYMBOL_MAX is PROTOCOL.md's 64 (%d)", SYM_SYMBOL_MAX);
    CHECKV(!valid(s, 0), "an empty symbol is refused");
    CHECKV(valid(s, 1), "1 byte is accepted");
    CHECKV(valid(s, 64), "64 bytes are accepted");
    CHECKV(!valid(s, 65), "65 bytes are refused");
    for (int c = 0; c < 256; c++) {
        s[3] = (char)c;
        int printable = c >= 0x21 && c <= 0x7e;
        CHECK(valid(s, 8) == printable, "byte 0x%02x: %s", c, printable ? "refused" : "accepted");
    }
    printf("ok   bytes 0x21..0x7e accepted, every other byte refused\n");
    sym_err e = {{0}};
    memset(s, 'A', sizeof s);
    CHECKV(sym_symbol_check(s, 65, &e) && strstr(e.msg, "longer than 64 bytes"), "the error names the limit (%s)", e.msg);
}

static void storage(void) {
    CHECKV(sizeof ((sym_request *)0)->symbol == SYM_SYMBOL_MAX + 1, "sym_request holds SYM_SYMBOL_MAX bytes and a NUL");
    CHECKV(sizeof ((sym_csv_request *)0)->symbol == SYM_SYMBOL_MAX + 1,
           "sym_csv_request holds SYM_SYMBOL_MAX bytes and a NUL");

    char s64[65], s65[66];
    memset(s64, 'B', 64), s64[64] = 0;
    memset(s65, 'C', 65), s65[65] = 0;

    sym_symbol_table t;
    sym_err e = {{0}};
    CHECK(!sym_symbol_table_init(&t, 4, &e), "symbol table: %s", e.msg);
    CHECKV(sym_symbol_table_intern(&t, s64, &e) == 0, "the symbol table takes a 64-byte symbol");
    CHECKV(sym_symbol_table_intern(&t, s65, &e) < 0 && strstr(e.msg, "longer than 64 bytes"),
           "the symbol table refuses a 65-byte one (%s)", e.msg);
    sym_symbol_table_free(&t);

    char path[] = "/tmp/sym_test_request_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "unique_id,symbol,feature_00\n1,%s,0.5\n", s64);
    fclose(f);
    sym_request_file rf;
    CHECKV(!sym_requests_load(path, 1, &rf, &e) && rf.n == 1 && !strcmp(rf.rows[0].symbol, s64),
           "the CSV reader takes a 64-byte symbol");
    sym_requests_free(&rf);
    f = fopen(path, "w");
    fprintf(f, "unique_id,symbol,feature_00\n1,%s,0.5\n", s65);
    fclose(f);
    CHECKV(sym_requests_load(path, 1, &rf, &e) && strstr(e.msg, "longer than 64 bytes"),
           "the CSV reader refuses a 65-byte one (%s)", e.msg);
    unlink(path);
}

int main(void) {
    syntax();
    storage();
    return failures != 0;
}
