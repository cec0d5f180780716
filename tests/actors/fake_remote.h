/* Shards "in another process", faked in this one, for the router's paths
 * of a lost shard process: the connector (sym_shard_connector) gives each
 * shard a remote shard (sym_shard_create_remote) whose thread carries the
 * router's messages to an echo shard of its own (echo_backend.h) and its
 * answers back, as net/shard_link.c carries them over the wire. A test
 * drives each one from its own thread:
 *  - hold: from then on what the router sends stays with the fake (taken
 *    by the "process", neither stepped nor answered);
 *  - lose: the link is lost: LOST, then the failed answer of each request
 *    or slot message it took and did not answer, in the order it took
 *    them; from then on it answers as a lost link does: each later request
 *    and EXPORT or IMPORT fails, and the router's LOST_SEEN gets
 *    LOST_SETTLED. It is never joined again.
 * The set belongs to the test: it outlives the engine (the connector's
 * free is NULL). */
#ifndef SYM_TEST_FAKE_REMOTE_H
#define SYM_TEST_FAKE_REMOTE_H

#include "actors/shard_connector.h"
#include "config/config.h"
#include "kernels/model_config.h"

typedef struct sym_fake_remotes sym_fake_remotes;

/* Echo shards of cfg's slots_per_shard slots and max_batch rows over
 * model; both outlive the set. NULL when out of memory. */
sym_fake_remotes *sym_fake_remotes_create(const sym_model_config *model, const sym_config *cfg);
void sym_fake_remotes_free(sym_fake_remotes *f);
sym_shard_connector sym_fake_remotes_connector(sym_fake_remotes *f);

void sym_fake_remote_hold(sym_fake_remotes *f, int shard);
/* Requests shard has taken since its hold. */
int sym_fake_remote_taken(sym_fake_remotes *f, int shard);
void sym_fake_remote_lose(sym_fake_remotes *f, int shard);

#endif
