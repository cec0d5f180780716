/* Host buffers that carry a symbol's state between actors: a shard exports
 * a slot into one on its own thread (SYM_MSG_EXPORT), another shard imports
 * from it on its own (SYM_MSG_IMPORT). A message names a buffer by its
 * index, so messages stay plain data.
 *
 * Ownership: whoever acquired a buffer owns it until it releases it, and
 * lends it by sending a message that names it; the actor handling that
 * message is the only one touching the bytes until it replies. The
 * mailboxes order those accesses, so the bytes need no lock; only acquire
 * and release take the pool's lock.
 *
 * A released buffer keeps its memory: a rebalance that moves many symbols
 * one after the other allocates one slot's worth once, and the engine keeps
 * that much host memory afterwards (one slot, 153.5 MB at full size).
 * The memory is the backends' own kind where they have one (the CUDA
 * engine's page-locked host memory: kernels/backend.h, sym_host_mem). */
#ifndef SYM_SLOT_POOL_H
#define SYM_SLOT_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "kernels/backend.h"

#define SYM_SLOT_POOL_MAX 64 /* buffers lent at once */

typedef struct {
    void *data;
    size_t cap, len; /* len: the bytes the last exporter wrote */
} sym_slot_buf;

typedef struct sym_slot_pool {
    pthread_mutex_t mu;
    const sym_host_mem *mem; /* NULL: malloc */
    int allocated;           /* a buffer was ever allocated: mem is fixed */
    int n_free;
    int free[SYM_SLOT_POOL_MAX];
    sym_slot_buf buf[SYM_SLOT_POOL_MAX];
} sym_slot_pool;

void sym_slot_pool_init(sym_slot_pool *p);
void sym_slot_pool_destroy(sym_slot_pool *p);

/* The buffers' memory from m (a backend's ops->host_mem) from now on; only
 * before the first buffer is allocated (0), else -1 and nothing changes. */
int sym_slot_pool_use(sym_slot_pool *p, const sym_host_mem *m);

/* With a backend's host memory (mem set), one buffer of bytes allocated
 * now, the one the next acquire returns: pinning 153.5 MB takes tens of
 * ms, better paid at start than by the first move on a serving shard's
 * thread. 0; -1 when memory runs out (the move will try again). */
int sym_slot_pool_prepare(sym_slot_pool *p, size_t bytes);

/* A buffer's index, or -1 when all SYM_SLOT_POOL_MAX are lent. */
int sym_slot_pool_acquire(sym_slot_pool *p);
void sym_slot_pool_release(sym_slot_pool *p, int buf);

/* The holder's side. reserve: room for bytes (grown when needed), with len
 * set to bytes; NULL when buf is not an index of the pool or memory runs
 * out. bytes: what the buffer holds (NULL when buf is not an index). */
void *sym_slot_pool_reserve(sym_slot_pool *p, int buf, size_t bytes);
const void *sym_slot_pool_bytes(const sym_slot_pool *p, int buf, size_t *len);

#endif
