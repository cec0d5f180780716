/* The router's insides, shared by its two files: router.c (routing,
 * credit, jobs, the loop) and router_lost.c (the symbols of a lost shard:
 * refused, or held and restored). Not a public header: the router's
 * thread alone touches any of it. */
#ifndef SYM_ROUTER_INTERNAL_H
#define SYM_ROUTER_INTERNAL_H

#include "actors/router.h"
#include "actors/status.h"
#include "sharding/shard_map.h"

#define OUT_BATCH 256

/* What the router does one at a time, in order: a migration (of a
 * MIGRATE or a REBALANCE), a symbol's state copied out (EXPORT_SYMBOL) or
 * in (IMPORT_SYMBOL) for the caller, through the caller's buffer, or a
 * held symbol's restore begun (RESTORE_BEGIN) or ended (RESTORE_END). */
enum { JOB_MOVE, JOB_EXPORT, JOB_IMPORT, JOB_RESTORE_BEGIN, JOB_RESTORE_END };
typedef struct {
    int kind;
    int sym, to; /* to: a move's target */
    int buf;     /* an export's or import's buffer (the caller's); -1: a restore from the initial state */
    uint64_t token;
    int of_rebalance, of_restore; /* of_restore: answered on the restore channel */
    int reissued;                 /* a restore's end: the taken requests sent again */
} router_job;

/* where the running job is */
enum { JOB_WAIT_CREDIT, JOB_EXPORTING, JOB_IMPORTING, JOB_REPLAYING, JOB_REISSUING };

/* lost[sym]: what became of a symbol whose shard was lost */
enum {
    SYM_LIVE = 0,
    LOST_GONE,      /* refused here until an import gives it a state */
    LOST_HELD,      /* held, in order, until its restore begins */
    LOST_RESTORING, /* placed on a live shard: its logged steps replay there, then the requests its lost
                     * shard took go again; the others are still held */
};
/* moving[sym]: why its new requests are held here (bits) */
enum { HOLD_JOB = 1, HOLD_LOST = 2 };

/* A request a lost shard took with it (its failed answer came back),
 * kept until the log gives its features again and its restore ends. */
typedef struct {
    sym_request req;
    int next;
} router_taken;

struct sym_router {
    sym_router_links l;
    pthread_t thread;
    int started;
    sym_mailbox *to_shard[SYM_MAX_SHARDS], *from_shard[SYM_MAX_SHARDS]; /* NULL: no such shard now */
    sym_shard_map map;
    int n_ids, cap;
    int n_shards, n_live; /* placement count; shards still polled (>= n_shards while shrinking) */
    /* per symbol */
    int *loc, *moving, *waiting; /* waiting: requests parked in a shard's credit queue here */
    unsigned char *lost;         /* SYM_LIVE, or what its shard's loss made of it */
    int *h_head, *h_tail;        /* hold queue while moving or held */
    /* pool of requests waiting here */
    sym_request *pool;
    int *pool_sym, *pool_next, pool_free, pool_used;
    /* per shard */
    int inflight[SYM_MAX_SHARDS];
    int w_head[SYM_MAX_SHARDS], w_tail[SYM_MAX_SHARDS], w_len[SYM_MAX_SHARDS];
    /* migrations */
    router_job *jobs;
    int jobs_head, jobs_len, jobs_cap;
    int active; /* a job is running */
    router_job job;
    int phase, from, buf; /* from: where the symbol lived when the job started */
    uint64_t job_serial;  /* the token of the running job's last slot message */
    /* rebalance */
    uint64_t rb_token;
    int rb_pending, rb_active, rb_rc;
    char rb_err[512];
    /* output */
    sym_prediction out[OUT_BATCH];
    int n_out;
    sym_status status;
    sym_paging_stats paging[SYM_MAX_SHARDS]; /* read from the shards for the status line */
    /* for other threads (sym_router_shard_stats), and what of it was last
     * published: a depth is stored only when it changed */
    sym_router_pub pub;
    int pub_depth[SYM_MAX_SHARDS];
    uint64_t move_t0; /* when the running move started */
    int quit;
    /* lost shards (router_lost.c) */
    unsigned char down[SYM_MAX_SHARDS];     /* lost and not joined again: nothing new is placed there */
    unsigned char settling[SYM_MAX_SHARDS]; /* lost, its failed answers still coming (until LOST_SETTLED) */
    int hold_lost;    /* HOLD_LOST came: a lost shard's symbols are held for a restore, not refused */
    int n_held;       /* symbols LOST_HELD or LOST_RESTORING: only then does a DONE look further */
    /* per symbol, allocated by HOLD_LOST */
    int *replay_out;  /* replayed steps sent and not answered */
    int *t_head, *t_tail, *t_fill; /* requests its lost shard took (router_taken), and the first not filled */
    int *held_at;     /* the loss count once its shard's loss was counted (0: not yet): HELD_LIST's filter */
    unsigned char *bad;            /* its restore failed (bad_why says how, for the symbol bad_sym) */
    char bad_why[240];
    int bad_sym;
    router_taken *taken;
    int taken_cap, taken_free;
    int *scratch;       /* [cap]: a credit queue's entries, to put them back in order */
    sym_msg restore_next; /* a RESTORE_STEP taken off the restore mailbox, waiting for its shard's credit */
    int have_next;
};

/* router.c */
void router_flush_out(sym_router *r);
void router_place(sym_router *r, int sym, int shard);
void router_route(sym_router *r, int sym, const sym_request *q);
void router_send_to_shard(sym_router *r, int shard, int sym, const sym_request *q);
/* A DONE's prediction on its way to poll(), counted in the shard's numbers. */
void router_publish_done(sym_router *r, int shard, const sym_msg *m);
void router_send_ctl(sym_router *r, int shard, int type, int sym);
void router_send_slot_msg(sym_router *r, int shard, int type, int after_queued);
void router_push_job(sym_router *r, router_job j);
void router_job_finished(sym_router *r, int rc, const char *err);
/* Clears bit of moving[sym]; with no bit left, routes its held requests. */
void router_release_held(sym_router *r, int sym, int bit);

/* router_lost.c */
/* A symbol new to the router: its owner, or, when that shard is down,
 * the rendezvous winner among the live ones (set as its override). */
int router_live_owner(sym_router *r, int sym);
void router_on_lost(sym_router *r, int shard);
void router_on_settled(sym_router *r, int shard);
void router_on_joined(sym_router *r, int shard);
/* A DONE of a symbol LOST_HELD or LOST_RESTORING (the credit already
 * counted back). */
void router_held_done(sym_router *r, int shard, const sym_msg *m);
/* The restore mailbox: what may go now (steps only as credit allows). */
void router_restore_drain(sym_router *r);
/* The running RESTORE_BEGIN or RESTORE_END job: started, advanced, and
 * the IMPORTED answer of a begin. */
void router_restore_start_job(sym_router *r);
void router_restore_advance(sym_router *r);
void router_restore_imported(sym_router *r, const sym_msg *m);
void router_lost_free(sym_router *r);

#endif
