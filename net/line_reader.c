/* Line splitting for the JSON-lines protocol; see line_reader.h. */
#include "net/line_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LR_READ_CHUNK 65536

int sym_lr_init(sym_line_reader *r, size_t max_line) {
    memset(r, 0, sizeof *r);
    r->max_line = max_line;
    r->cap = LR_READ_CHUNK * 2;
    r->buf = malloc(r->cap);
    return r->buf ? 0 : -1;
}

void sym_lr_free(sym_line_reader *r) {
    free(r->buf);
    memset(r, 0, sizeof *r);
}

void sym_lr_reset(sym_line_reader *r) {
    r->start = r->len = r->scan = 0;
    r->discarding = 0;
}

/* Makes room for at least n more bytes at the end, compacting first. */
static int reserve(sym_line_reader *r, size_t n) {
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (r->cap - r->len >= n) return 0;
    size_t cap = r->cap;
    while (cap - r->len < n) cap *= 2;
    char *b = realloc(r->buf, cap);
    if (!b) return -1;
    r->buf = b;
    r->cap = cap;
    return 0;
}

/* Drops bytes of an over-long line; leaves the buffer at the first byte
 * after its '\n', or empty while still inside it. */
static void discard(sym_line_reader *r) {
    char *nl = memchr(r->buf + r->start, '\n', r->len - r->start);
    if (nl) {
        r->start = (size_t)(nl - r->buf) + 1;
        r->discarding = 0;
    } else {
        r->start = r->len = 0;
    }
    r->scan = 0;
}

int sym_lr_feed(sym_line_reader *r, const char *data, size_t n) {
    if (reserve(r, n + 1)) return -1;
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return 0;
}

ssize_t sym_lr_read_fd(sym_line_reader *r, int fd) {
    if (reserve(r, LR_READ_CHUNK + 1)) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n;
    do n = read(fd, r->buf + r->len, r->cap - r->len - 1);
    while (n < 0 && errno == EINTR);
    if (n > 0) r->len += (size_t)n;
    return n;
}

int sym_lr_next(sym_line_reader *r, char **line, size_t *len) {
    if (r->discarding) discard(r);
    if (r->discarding) return SYM_LR_NONE;
    size_t avail = r->len - r->start;
    char *nl = memchr(r->buf + r->start + r->scan, '\n', avail - r->scan);
    if (!nl) {
        r->scan = avail;
        if (avail > r->max_line) { /* too long already: hand out its head, then drop it up to its '\n' */
            r->n_overlong++;
            r->discarding = 1;
            *line = r->buf + r->start;
            *len = avail;
            return SYM_LR_OVERLONG;
        }
        return SYM_LR_NONE;
    }
    char *s = r->buf + r->start;
    size_t n = (size_t)(nl - s);
    r->start += n + 1;
    r->scan = 0;
    if (n > r->max_line) {
        r->n_overlong++;
        *line = s;
        *len = n;
        return SYM_LR_OVERLONG;
    }
    if (n > 0 && s[n - 1] == '\r') n--;
    s[n] = '\0';
    *line = s;
    *len = n;
    return SYM_LR_LINE;
}

size_t sym_lr_partial(const sym_line_reader *r) { return r->discarding ? 0 : r->len - r->start; }
