/* The one type the engine's API needs from a shard in another process:
 * how to reach it (actors/shard.h has the rest). Apart from shard.h so
 * that actors/engine.h names no actor message. */
#ifndef SYM_SHARD_CONNECTOR_H
#define SYM_SHARD_CONNECTOR_H

#include <stddef.h>

#include "common/err.h"

struct sym_shard;
struct sym_shard_params;
struct sym_doorbell;
struct sym_slot_pool;

/* How the engine reaches a shard in another process (config
 * shards.endpoints; net/shard_link.h has the nanomsg connector): fn
 * connects to endpoint, checks that the process there serves this engine,
 * and returns the shard, not started (sym_shard_create_remote), with
 * the format of its states in slot_bytes and elem_size. The engine knows
 * nothing of the wire. */
typedef struct {
    struct sym_shard *(*fn)(void *ctx, const struct sym_shard_params *p, const char *endpoint,
                            struct sym_doorbell *router_bell, struct sym_slot_pool *slots, size_t *slot_bytes,
                            size_t *elem_size, sym_err *e);
    void *ctx;
    void (*free)(void *ctx); /* called when the engine is destroyed */
} sym_shard_connector;

#endif
