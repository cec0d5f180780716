/* The unique_ids play has accepted, the last `window` of them in arrival
 * order, across connections, each with what play knows of it: still in
 * flight (and which connection is to get the answer), or answered (the
 * prediction, so that a re-sent request is answered again with the same
 * values and never steps its symbol twice). A digest of the request's
 * symbol and features tells a re-send (the same request) from an id used
 * again for another request.
 *
 * A sliding window keeps memory flat under any number of ids (about 80
 * bytes an id): when a new id comes and the window is full, the oldest is
 * forgotten, unless it is still in flight (its answer must find it): the
 * window then grows past its size, bounded by what the engine holds in
 * flight. */
#ifndef SYM_NET_UID_WINDOW_H
#define SYM_NET_UID_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "common/uid_map.h"

enum { SYM_UID_FREE = 0, SYM_UID_IN_FLIGHT = 1, SYM_UID_ANSWERED = 2 };

typedef struct {
    uint64_t uid;
    uint64_t digest; /* sym_uid_digest of the request */
    double pred[4];  /* ANSWERED: the answer sent */
    int32_t conn;    /* the connection it last came on (IN_FLIGHT: the one to answer on); 0: before this process */
    int32_t sym;     /* IN_FLIGHT, with a store: the store's handle of its symbol */
    uint8_t state;   /* SYM_UID_*; FREE: forgotten, a hole the window skips */
} sym_uid_entry;

typedef struct {
    sym_uid_map map;     /* uid -> index in ring */
    sym_uid_entry *ring; /* arrival order: ring[(head + i) % cap], i < n */
    size_t cap, head, n, window;
} sym_uid_window;

/* window >= 1. -1 when memory runs out. */
int sym_uid_window_init(sym_uid_window *w, size_t window);
void sym_uid_window_free(sym_uid_window *w);
/* uid's entry, or NULL when it is not in the window. Valid until the next
 * add. */
sym_uid_entry *sym_uid_window_get(const sym_uid_window *w, uint64_t uid);
/* A new entry for uid (not in the window), zeroed but for uid; the caller
 * sets its state. NULL when memory runs out. */
sym_uid_entry *sym_uid_window_add(sym_uid_window *w, uint64_t uid);
/* Forgets uid (a request refused after all: it was never accepted). */
void sym_uid_window_forget(sym_uid_window *w, uint64_t uid);

/* The digest of a request: its symbol and features' bits (FNV-1a, 64). */
uint64_t sym_uid_digest(const char *symbol, const float *features, int n_features);

#endif
