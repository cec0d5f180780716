/* The sliding window of unique_ids; see uid_window.h. */
#include "net/uid_window.h"

#include <stdlib.h>
#include <string.h>

int sym_uid_window_init(sym_uid_window *w, size_t window) {
    memset(w, 0, sizeof *w);
    w->window = window ? window : 1;
    w->cap = w->window < 4096 ? w->window : 4096; /* grows with use up to the window */
    w->ring = malloc(w->cap * sizeof *w->ring);
    if (!w->ring || sym_uid_map_init(&w->map, w->cap)) {
        sym_uid_window_free(w);
        return -1;
    }
    return 0;
}

void sym_uid_window_free(sym_uid_window *w) {
    sym_uid_map_free(&w->map);
    free(w->ring);
    memset(w, 0, sizeof *w);
}

int sym_uid_window_reset(sym_uid_window *w) {
    size_t window = w->window;
    sym_uid_window_free(w);
    return sym_uid_window_init(w, window);
}

int32_t *sym_uid_window_get(const sym_uid_window *w, uint64_t uid) { return sym_uid_map_get(&w->map, uid); }

/* Doubles the ring, unwrapping it. */
static int grow(sym_uid_window *w) {
    size_t cap = w->cap * 2;
    uint64_t *r = malloc(cap * sizeof *r);
    if (!r) return -1;
    for (size_t i = 0; i < w->n; i++) r[i] = w->ring[(w->head + i) % w->cap];
    free(w->ring);
    w->ring = r, w->cap = cap, w->head = 0;
    return 0;
}

int sym_uid_window_add(sym_uid_window *w, uint64_t uid, int32_t val) {
    while (w->n >= w->window) { /* forget the oldest, unless it is still in flight */
        uint64_t old = w->ring[w->head];
        int32_t *v = sym_uid_map_get(&w->map, old);
        if (v && *v != 0) break;
        sym_uid_map_del(&w->map, old);
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    if (w->n == w->cap && grow(w)) return -1;
    if (sym_uid_map_put(&w->map, uid, val)) return -1;
    w->ring[(w->head + w->n) % w->cap] = uid;
    w->n++;
    return 0;
}
