/* The router's side of a shard in another process: `symserve shard
 * --listen URL` (net/shard_server.h) at an endpoint of the config's
 * shards.endpoints, over a nanomsg NN_PAIR socket (net/shard_wire.h has
 * the frames).
 *
 * To the router it is a shard like any other (sym_shard_create_remote):
 * its thread takes the inbox's messages as they come, sends them in
 * batches (one frame per batch of what is waiting), with an IMPORT's slot
 * bytes before it; a second thread receives the shard's answers into the
 * outbox, an EXPORTED's slot bytes into the router's buffer. The router's
 * credit bounds the requests in flight as for a shard in this process, and
 * the socket's send blocks when the peer does not read: push-back reaches
 * the router as it would through a full mailbox. At an ipc:// endpoint
 * (shards.shm on) the frames go through a shared-memory ring the link
 * offers in its handshake, when the shard process maps it
 * (net/shard_transport.h): the same frames, without nanomsg's threads.
 *
 * Connecting waits up to join_timeout_ms for the process to listen and to
 * answer (it builds its part of the engine first: seconds at full size),
 * sending its HELLO again every heartbeat_ms until the answer comes (a
 * connection the process drops can take a HELLO with it), and checks that the process serves this engine (the engine
 * fingerprint of state/fingerprint.h: model files, backend, precisions;
 * and the config keys both sides must agree on): a refusal names why.
 *
 * Each side sends a heartbeat when it has sent nothing for heartbeat_ms;
 * a side that hears nothing for timeout_ms, a frame out of sequence, or a
 * frame it cannot read ends the link: the shard is lost. Then every
 * request sent to it and not answered, and every later one, is answered
 * with an error that says the shard and its symbols' state are lost, and
 * a migration from or to it fails: never a prediction from a state that
 * missed a step. The shard process drops that session's states and waits
 * for a router again (it comes back as a new, empty shard). */
#ifndef SYM_NET_SHARD_LINK_H
#define SYM_NET_SHARD_LINK_H

#include <stdint.h>

#include "actors/shard.h"
#include "common/err.h"
#include "config/config.h"

/* The connector for sym_engine_create_connected (which takes it) to the
 * shard processes of cfg's shards.endpoints: cfg's heartbeat and timeouts,
 * and the fingerprint of the engine it describes (cuda: whether it runs on
 * CUDA), which reads the model's files. */
int sym_shard_link_connector(const sym_config *cfg, int cuda, sym_shard_connector *out, sym_err *e);

/* The engine cfg describes, its shards in this process or, with
 * shards.endpoints, in the shard processes there (through the connector
 * above; cuda as there); NULL with e. */
struct sym_engine *sym_shard_link_engine(const sym_config *cfg, int cuda, sym_err *e);

#endif
