#include "actors/slot_pool.h"

#include <stdlib.h>

void sym_slot_pool_init(sym_slot_pool *p) {
    *p = (sym_slot_pool){.n_free = SYM_SLOT_POOL_MAX};
    pthread_mutex_init(&p->mu, NULL);
    for (int i = 0; i < SYM_SLOT_POOL_MAX; i++) p->free[i] = SYM_SLOT_POOL_MAX - 1 - i;
}

void sym_slot_pool_destroy(sym_slot_pool *p) {
    for (int i = 0; i < SYM_SLOT_POOL_MAX; i++) sym_host_mem_free(p->mem, p->buf[i].data);
    pthread_mutex_destroy(&p->mu);
}

int sym_slot_pool_use(sym_slot_pool *p, const sym_host_mem *m) {
    pthread_mutex_lock(&p->mu);
    int rc = p->allocated ? -1 : 0;
    if (!rc) p->mem = m;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int sym_slot_pool_acquire(sym_slot_pool *p) {
    pthread_mutex_lock(&p->mu);
    int b = p->n_free ? p->free[--p->n_free] : -1;
    pthread_mutex_unlock(&p->mu);
    return b;
}

void sym_slot_pool_release(sym_slot_pool *p, int buf) {
    if (buf < 0 || buf >= SYM_SLOT_POOL_MAX) return;
    pthread_mutex_lock(&p->mu);
    p->free[p->n_free++] = buf;
    pthread_mutex_unlock(&p->mu);
}

void *sym_slot_pool_reserve(sym_slot_pool *p, int buf, size_t bytes) {
    if (buf < 0 || buf >= SYM_SLOT_POOL_MAX) return NULL;
    sym_slot_buf *b = &p->buf[buf];
    if (b->cap < bytes) {
        pthread_mutex_lock(&p->mu); /* mem is fixed from here on */
        p->allocated = 1;
        pthread_mutex_unlock(&p->mu);
        /* not realloc: the old bytes are not wanted, so none are copied */
        sym_host_mem_free(p->mem, b->data);
        b->cap = 0, b->len = 0;
        if (!(b->data = sym_host_mem_alloc(p->mem, bytes))) return NULL;
        b->cap = bytes;
    }
    b->len = bytes;
    return b->data;
}

int sym_slot_pool_prepare(sym_slot_pool *p, size_t bytes) {
    if (!p->mem) return 0;
    int b = sym_slot_pool_acquire(p);
    if (b < 0) return 0;
    int rc = sym_slot_pool_reserve(p, b, bytes) ? 0 : -1;
    sym_slot_pool_release(p, b); /* on top of the free list: the next acquire's */
    return rc;
}

const void *sym_slot_pool_bytes(const sym_slot_pool *p, int buf, size_t *len) {
    if (buf < 0 || buf >= SYM_SLOT_POOL_MAX) return NULL;
    *len = p->buf[buf].len;
    return p->buf[buf].data;
}
