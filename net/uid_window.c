/* The window of accepted unique_ids; see uid_window.h. */
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

sym_uid_entry *sym_uid_window_get(const sym_uid_window *w, uint64_t uid) {
    int32_t *i = sym_uid_map_get(&w->map, uid);
    return i ? &w->ring[*i] : NULL;
}

/* Doubles the ring, unwrapping it: every live entry's index changes. */
static int grow(sym_uid_window *w) {
    size_t cap = w->cap * 2;
    if (cap > INT32_MAX) return -1;
    sym_uid_entry *r = malloc(cap * sizeof *r);
    if (!r) return -1;
    for (size_t i = 0; i < w->n; i++) {
        r[i] = w->ring[(w->head + i) % w->cap];
        if (r[i].state != SYM_UID_FREE) *sym_uid_map_get(&w->map, r[i].uid) = (int32_t)i;
    }
    free(w->ring);
    w->ring = r, w->cap = cap, w->head = 0;
    return 0;
}

sym_uid_entry *sym_uid_window_add(sym_uid_window *w, uint64_t uid) {
    while (w->n >= w->window) { /* forget the oldest, unless it is still in flight */
        sym_uid_entry *old = &w->ring[w->head];
        if (old->state == SYM_UID_IN_FLIGHT) break;
        if (old->state != SYM_UID_FREE) sym_uid_map_del(&w->map, old->uid);
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
    if (w->n == w->cap && grow(w)) return NULL;
    size_t i = (w->head + w->n) % w->cap;
    if (sym_uid_map_put(&w->map, uid, (int32_t)i)) return NULL;
    w->n++;
    memset(&w->ring[i], 0, sizeof w->ring[i]);
    w->ring[i].uid = uid;
    return &w->ring[i];
}

void sym_uid_window_forget(sym_uid_window *w, uint64_t uid) {
    int32_t *i = sym_uid_map_get(&w->map, uid);
    if (!i) return;
    w->ring[*i].state = SYM_UID_FREE;
    sym_uid_map_del(&w->map, uid);
}

uint64_t sym_uid_digest(const char *symbol, const float *features, int n_features) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *s = symbol; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull; /* the symbol's end */
    const unsigned char *b = (const unsigned char *)features;
    for (size_t i = 0; i < (size_t)n_features * sizeof *features; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
