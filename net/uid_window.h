/* The unique_ids a connection has sent, the last `window` of them in
 * arrival order, each with a value (play: the connection number while the
 * request is in flight, 0 once it was answered or refused). A sliding
 * window keeps memory flat under any number of ids: the oldest answered id
 * is forgotten when a new one comes and the window is full. An id still in
 * flight is never forgotten (its answer must find it): the window then
 * grows past its size, bounded by what the engine holds in flight. */
#ifndef SYM_NET_UID_WINDOW_H
#define SYM_NET_UID_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "net/uid_map.h"

typedef struct {
    sym_uid_map map;
    uint64_t *ring; /* ids in arrival order: ring[(head + i) % cap], i < n */
    size_t cap, head, n, window;
} sym_uid_window;

/* window >= 1. -1 when memory runs out. */
int sym_uid_window_init(sym_uid_window *w, size_t window);
void sym_uid_window_free(sym_uid_window *w);
/* Forgets every id. */
int sym_uid_window_reset(sym_uid_window *w);
/* Pointer to uid's value, or NULL when it is not in the window. */
int32_t *sym_uid_window_get(const sym_uid_window *w, uint64_t uid);
/* Adds uid (not in the window) with val. -1 when memory runs out. */
int sym_uid_window_add(sym_uid_window *w, uint64_t uid, int32_t val);

#endif
