/* Splits a TCP byte stream into lines ('\n'-terminated, a trailing '\r' is
 * stripped). Bytes may arrive in any chunking: a message split across reads
 * is reassembled, several messages packed into one read come out one by one.
 *
 * A line longer than max_line bytes is never buffered whole: once the
 * unfinished line passes the limit, sym_lr_next() reports it once with
 * SYM_LR_OVERLONG and the bytes read of it (so the caller's error can say
 * what it held), then its bytes are thrown away up to and including the
 * next '\n' (resync). */
#ifndef SYM_NET_LINE_READER_H
#define SYM_NET_LINE_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum { SYM_LR_NONE = 0, SYM_LR_LINE = 1, SYM_LR_OVERLONG = 2 };

typedef struct {
    char *buf;
    size_t start, len, cap; /* unread bytes are buf[start, len) */
    size_t scan;            /* bytes after start already known to hold no '\n' */
    size_t max_line;
    int discarding;         /* inside an over-long line, waiting for its '\n' */
    uint64_t n_overlong;
} sym_line_reader;

int sym_lr_init(sym_line_reader *r, size_t max_line);
void sym_lr_free(sym_line_reader *r);
/* Forgets buffered bytes (a new connection). */
void sym_lr_reset(sym_line_reader *r);

/* Appends bytes. Returns 0, or -1 when memory runs out. */
int sym_lr_feed(sym_line_reader *r, const char *data, size_t n);

/* One read() from fd into the buffer: >0 bytes read, 0 end of stream,
 * -1 error with errno set (EAGAIN/EWOULDBLOCK: nothing there now). */
ssize_t sym_lr_read_fd(sym_line_reader *r, int fd);

/* SYM_LR_LINE: *line points at a NUL-terminated line (no '\n'), valid until
 * the next call; SYM_LR_OVERLONG: a line over the limit is dropped, *line
 * and *len are the bytes of it read so far (more than max_line, not
 * NUL-terminated), valid until the next call; SYM_LR_NONE: no complete
 * line buffered. */
int sym_lr_next(sym_line_reader *r, char **line, size_t *len);

/* Bytes of an unfinished line (e.g. a message cut off by a disconnect). */
size_t sym_lr_partial(const sym_line_reader *r);

#endif
