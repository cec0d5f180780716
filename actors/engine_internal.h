/* What the engine's actors share: the engine object (read-only after
 * creation, except the parts each field's comment names) and the shard
 * actor. Not a public header. */
#ifndef SYM_ENGINE_INTERNAL_H
#define SYM_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "actors/engine.h"
#include "actors/mailbox.h"
#include "kernels/backend.h"
#include "kernels/weights.h"
#include "sharding/slot_table.h"
#include "sharding/symbol_table.h"

typedef struct sym_shard {
    int index;
    struct sym_engine *g;
    sym_backend *backend;
    sym_doorbell bell;   /* the shard sleeps on it when idle */
    sym_mailbox inbox;   /* router -> shard, single producer */
    sym_mailbox outbox;  /* shard -> router, single producer; rings the router's bell */
    pthread_t thread;
    int started;
    /* everything below belongs to the shard thread */
    int n_ids, queue_cap, max_batch, rows_per_sym;
    sym_slot_table slots;
    sym_request *pool; /* queue_cap requests waiting for a step */
    int *pool_next, pool_free;
    int *q_head, *q_tail, *q_len; /* per symbol: FIFO of pool indices */
    int *ready, ready_head, ready_len; /* symbols with work, round robin */
    int drain_sym; /* DRAIN_PARK in progress: park when its queue is empty */
    int parked;
    int32_t *b_slots;
    int *b_sym, *b_idx;
    int *b_pick; /* a step's symbols, then how many rows each takes (pick_rows) */
    float *b_feat;
    double *b_out;
    unsigned char *b_ok; /* which rows the step ran (sym_backend_step_runs) */
} sym_shard;


struct router_state;

struct sym_engine {
    sym_config cfg;
    sym_model_config model;
    sym_weights w;
    int have_weights;
    sym_backend_factory make_backend;
    void *factory_ctx;
    int cpu_precision; /* for the built-in factory */
    sym_precision cuda_prec[SYM_TOWERS];
    int use_cuda;
    /* weights placed on each GPU of the first shards while they are built
     * (NULL after creation: shards added later upload from g->w) */
    struct sym_device_weights *placed;

    sym_doorbell router_bell;
    sym_mailbox inbox; /* producers -> router, several producers */
    /* shards[i] is written by the control thread before the router learns of
     * it (through the inbox) and freed only after the router stopped it */
    sym_shard *shards[SYM_MAX_SHARDS];
    int n_shards; /* control-side view, under ctl_api_mu */
    pthread_t router_thread;
    int router_started;
    struct router_state *router;

    /* front door: symbol registry, under front_mu */
    pthread_mutex_t front_mu;
    sym_symbol_table symbols;
    atomic_llong submitted;
    atomic_int *where; /* [max_symbols]: router's published shard of each symbol, -1 unknown */

    /* out: predictions waiting for poll(), under out_mu; not bounded (it
     * holds submitted - polled predictions) so the router never blocks */
    pthread_mutex_t out_mu;
    pthread_cond_t out_cv;
    sym_prediction *outq;
    long long out_cap, out_head, out_len, completed;
    int efd;

    /* control calls (migrate, rebalance): one at a time under ctl_api_mu;
     * the router reports completion of token under ctl_mu */
    pthread_mutex_t ctl_api_mu, ctl_mu;
    pthread_cond_t ctl_cv;
    uint64_t ctl_next, ctl_done;
    int ctl_rc;
    char ctl_err[512];
};

/* shard.c */
sym_shard *sym_shard_create(struct sym_engine *g, int index, sym_backend *b, sym_err *e);
int sym_shard_start(sym_shard *s, sym_err *e);
void sym_shard_join_destroy(sym_shard *s);

/* router.c */
int sym_router_create(struct sym_engine *g, sym_err *e);
void *sym_router_main(void *arg);
void sym_router_destroy(struct sym_engine *g);

/* engine.c: the router hands finished predictions to poll() and control results to the caller */
void sym_engine_publish(struct sym_engine *g, const sym_prediction *p, int n);
void sym_engine_control_done(struct sym_engine *g, uint64_t token, int rc, const char *err);

#endif
