#include "common/request.h"

int sym_symbol_check(const char *s, size_t len, sym_err *e) {
    if (len == 0) return sym_fail(e, "empty symbol");
    if (len > SYM_SYMBOL_MAX) return sym_fail(e, "symbol longer than %d bytes", SYM_SYMBOL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e) return sym_fail(e, "symbol holds a control, space or non-ASCII byte (0x%02x)", c);
    }
    return 0;
}
