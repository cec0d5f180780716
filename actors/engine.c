/* The engine object: it creates the actors (weights once, one backend and
 * one shard actor per shard, the router) and the parts they share (the
 * mailboxes, the output queue, the control answers, the slot buffers), and
 * is the API's side of them: submit's validation and symbol registry, poll
 * through the output queue, and the blocking control calls (migrate,
 * rebalance) that the router answers. It calls into the actors; they never
 * call it. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/control.h"
#include "actors/engine.h"
#include "actors/mailbox.h"
#include "actors/model_backends.h"
#include "actors/output_queue.h"
#include "actors/router.h"
#include "actors/shard.h"
#include "actors/slot_pool.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/request.h"
#include "kernels/backend.h"
#include "sharding/symbol_table.h"

#define RESTORE_MAILBOX 256 /* a restore's steps in flight to the router; its writer waits beyond */

struct sym_engine {
    sym_config cfg;
    sym_model_config model;
    sym_model_backends *mb; /* the built-in factory's weights (NULL with a test's factory) */
    sym_backend_factory make_backend;
    void *factory_ctx;
    sym_shard_connector connect; /* shards in other processes (connect.fn NULL: none reachable) */

    sym_doorbell router_bell;
    sym_mailbox inbox; /* producers -> router, several producers */
    int have_inbox;
    /* shards[i] is written by the control thread before the router learns of
     * it (through the inbox) and freed only after the router stopped it */
    sym_shard *shards[SYM_MAX_SHARDS];
    int n_shards; /* control-side view, under ctl_api_mu */
    sym_router *router;
    sym_output_queue out;
    int have_out;
    sym_control control;
    sym_slot_pool slots;
    size_t slot_bytes, state_elem_size; /* every shard's backend keeps states of this format */

    /* front door: symbol registry, under front_mu */
    pthread_mutex_t front_mu;
    sym_symbol_table symbols;
    atomic_llong submitted;
    atomic_int *where; /* [max_symbols]: router's published shard of each symbol, -1 unknown */

    /* control calls (migrate, rebalance): one at a time, under ctl_api_mu */
    pthread_mutex_t ctl_api_mu;
    /* the restore of a lost shard's symbols: its own mailbox and answers,
     * one call at a time under restore_mu (router_lost.c says why) */
    sym_mailbox restore_inbox;
    int have_restore_inbox;
    sym_control restore_control;
    pthread_mutex_t restore_mu;
};

/* --- creation and teardown ------------------------------------------------ */

static int check_config(const sym_config *c, sym_err *e) {
    if (c->shard_count < 1 || c->shard_count > SYM_MAX_SHARDS) return sym_fail(e, "config key 'shards.count': out of range");
    if (c->n_shard_devices < 1) return sym_fail(e, "config key 'shards.devices': empty");
    if (c->max_batch < 1) return sym_fail(e, "config key 'max_batch': must be >= 1");
    if (c->max_symbols < 1) return sym_fail(e, "config key 'max_symbols': must be >= 1");
    if (c->queue_capacity < 2) return sym_fail(e, "config key 'queue_capacity': must be >= 2");
    if (c->slots_per_shard < 0) return sym_fail(e, "config key 'slots_per_shard': must be >= 1");
    if (c->host_tier_mb < 0) return sym_fail(e, "config key 'host_tier_mb': must be >= 0");
    return 0;
}

static sym_engine *engine_alloc(const sym_config *cfg, sym_err *e) {
    if (check_config(cfg, e)) return NULL;
    sym_engine *g = calloc(1, sizeof *g);
    if (!g) {
        sym_fail(e, "out of memory for the engine");
        return NULL;
    }
    g->cfg = *cfg;
    sym_doorbell_init(&g->router_bell);
    pthread_mutex_init(&g->front_mu, NULL);
    pthread_mutex_init(&g->ctl_api_mu, NULL);
    pthread_mutex_init(&g->restore_mu, NULL);
    sym_control_init(&g->control);
    sym_control_init(&g->restore_control);
    sym_slot_pool_init(&g->slots);
    atomic_init(&g->submitted, 0);
    return g;
}

/* Shard i's parameters (a shard in another process uses the first ones:
 * its tiers are its own process's). */
static sym_shard_params shard_params(const sym_engine *g, int i) {
    const sym_config *c = &g->cfg;
    return (sym_shard_params){.index = i, .n_ids = c->max_symbols, .queue_cap = c->queue_capacity,
                              .max_batch = c->max_batch, .rows_per_symbol = c->rows_per_symbol,
                              .features = g->model.features, .idle_spin_us = c->idle_spin_us,
                              .host_tier_mb = c->host_tier_mb,
                              .state_dir = c->state_dir[0] ? c->state_dir : NULL, .disk_tier_mb = c->disk_tier_mb};
}

/* Shard 0 sets the state format; every other must keep the same, so that
 * a state moves between any two shards as bytes. -1 (e names what) when
 * shard i's (described by what) differs. */
static int same_format(sym_engine *g, int i, size_t slot_bytes, size_t elem, const char *what, sym_err *e) {
    if (i == 0) g->slot_bytes = slot_bytes, g->state_elem_size = elem;
    if (slot_bytes == g->slot_bytes && elem == g->state_elem_size) return 0;
    return sym_fail(e, "shard %d (%s) keeps %zu-byte states of %zu-byte elements, shard 0's %zu of %zu", i, what,
                    slot_bytes, elem, g->slot_bytes, g->state_elem_size);
}

/* Shard i over backend b, started; on failure b is destroyed. */
static sym_shard *start_shard(sym_engine *g, int i, sym_backend *b, sym_err *e) {
    if (same_format(g, i, b->slot_bytes, b->state_elem_size, b->ops->name, e)) {
        sym_backend_destroy(b);
        return NULL;
    }
    sym_shard_params p = shard_params(g, i);
    sym_shard *s = sym_shard_create(&p, b, &g->router_bell, &g->slots, e);
    if (!s) {
        sym_backend_destroy(b);
        return NULL;
    }
    if (sym_shard_start(s, e)) {
        sym_shard_join_destroy(s);
        return NULL;
    }
    return s;
}

static sym_backend *model_backend(void *ctx, int shard, sym_err *e) { return sym_model_backends_make(ctx, shard, e); }

/* Shard i in another process, through the connector, started. */
static sym_shard *connect_shard(sym_engine *g, int i, const char *endpoint, sym_err *e) {
    if (!g->connect.fn)
        return sym_fail(e, "shard %d: endpoint %s: this program reaches no shard process", i, endpoint), NULL;
    sym_shard_params p = shard_params(g, i);
    size_t slot_bytes = 0, elem = 0;
    sym_shard *s = g->connect.fn(g->connect.ctx, &p, endpoint, &g->router_bell, &g->slots, &slot_bytes, &elem, e);
    if (!s) return sym_failctx(e, "shard %d at %s", i, endpoint), NULL;
    if (same_format(g, i, slot_bytes, elem, endpoint, e) || sym_shard_start(s, e)) {
        sym_shard_stop(s);
        sym_shard_join_destroy(s);
        return NULL;
    }
    return s;
}

/* Shard i, started: in another process when the config gives it an
 * endpoint, else over a backend of the factory. */
static sym_shard *make_shard(sym_engine *g, int i, sym_err *e) {
    const char *endpoint = sym_config_shard_endpoint(&g->cfg, i);
    if (endpoint) return connect_shard(g, i, endpoint, e);
    if (!g->make_backend && !(g->mb = sym_model_backends_create(&g->cfg, e))) return NULL; /* the first local shard */
    if (!g->make_backend) g->make_backend = model_backend, g->factory_ctx = g->mb;
    sym_backend *b = g->make_backend(g->factory_ctx, i, e);
    if (!b) return sym_failctx(e, "shard %d", i), NULL;
    sym_slot_pool_use(&g->slots, b->ops->host_mem); /* the first shard's kind: later ones are alike */
    return start_shard(g, i, b, e);
}

static int engine_start(sym_engine *g, sym_err *e) {
    const sym_config *c = &g->cfg;
    if (sym_symbol_table_init(&g->symbols, c->max_symbols, e)) return -1;
    g->where = malloc((size_t)c->max_symbols * sizeof *g->where);
    if (!g->where) return sym_fail(e, "out of memory for the engine");
    for (int i = 0; i < c->max_symbols; i++) atomic_init(&g->where[i], -1);
    g->have_out = 1; /* destroy undoes a half-done init too */
    if (sym_output_queue_init(&g->out, e)) return -1;
    if (sym_mailbox_init(&g->inbox, c->queue_capacity, 1, &g->router_bell, e)) return -1;
    g->have_inbox = 1;
    if (sym_mailbox_init(&g->restore_inbox, RESTORE_MAILBOX, 1, &g->router_bell, e)) return -1;
    g->have_restore_inbox = 1;
    for (int i = 0; i < c->shard_count; i++) {
        if (!(g->shards[i] = make_shard(g, i, e))) return -1;
        g->n_shards = i + 1;
    }
    if (g->mb) sym_model_backends_placed_done(g->mb);
    if (sym_slot_pool_prepare(&g->slots, g->slot_bytes)) /* the first move's buffer pinned now, not mid-serving */
        sym_warn("engine: no host memory for a slot's buffer yet (%zu bytes)", g->slot_bytes);
    sym_router_links links = {.cfg = &g->cfg, .inbox = &g->inbox, .bell = &g->router_bell, .shards = g->shards,
                              .where = g->where, .out = &g->out, .control = &g->control, .slots = &g->slots,
                              .restore_inbox = &g->restore_inbox, .restore_control = &g->restore_control};
    if (!(g->router = sym_router_create(&links, e))) return -1;
    return sym_router_start(g->router, e);
}

sym_engine *sym_engine_create_with(const sym_config *cfg, const sym_model_config *model, sym_backend_factory make,
                                   void *ctx, sym_err *e) {
    sym_engine *g = engine_alloc(cfg, e);
    if (!g) return NULL;
    g->model = *model;
    g->make_backend = make;
    g->factory_ctx = ctx;
    if (engine_start(g, e)) {
        sym_engine_destroy(g);
        return NULL;
    }
    return g;
}

sym_engine *sym_engine_create_connected(const sym_config *cfg, const sym_shard_connector *connect, sym_err *e) {
    sym_engine *g = engine_alloc(cfg, e);
    if (!g) {
        if (connect && connect->free) connect->free(connect->ctx);
        return NULL;
    }
    if (connect) g->connect = *connect;
    int local = 0;
    for (int i = 0; i < cfg->shard_count; i++) local |= !sym_config_shard_endpoint(cfg, i);
    if (local) { /* else the weights stay with the shard processes: only the model's shape is read here */
        if (!(g->mb = sym_model_backends_create(cfg, e))) {
            sym_engine_destroy(g);
            return NULL;
        }
        g->model = *sym_model_backends_model(g->mb);
        g->make_backend = model_backend;
        g->factory_ctx = g->mb;
    } else if (cfg->model_dir[0]) {
        char path[1100];
        snprintf(path, sizeof path, "%s/config.json", cfg->model_dir);
        if (sym_model_config_load(path, &g->model, e)) {
            sym_engine_destroy(g);
            return NULL;
        }
    } else {
        g->model = cfg->synthetic_full ? sym_model_config_full() : sym_model_config_small();
    }
    if (engine_start(g, e)) {
        sym_engine_destroy(g);
        return NULL;
    }
    return g;
}

sym_engine *sym_engine_create(const sym_config *cfg, sym_err *e) { return sym_engine_create_connected(cfg, NULL, e); }

void sym_engine_destroy(sym_engine *g) {
    if (!g) return;
    /* a running router stops the shards; else we are their only producer
     * (shards[0..n_shards-1] have all started: start_shard) */
    if (!sym_router_stop(g->router))
        for (int i = 0; i < g->n_shards; i++) sym_shard_stop(g->shards[i]);
    sym_router_destroy(g->router);
    for (int i = 0; i < g->n_shards; i++) sym_shard_join_destroy(g->shards[i]);
    if (g->have_inbox) sym_mailbox_destroy(&g->inbox);
    if (g->have_restore_inbox) sym_mailbox_destroy(&g->restore_inbox);
    if (g->have_out) sym_output_queue_destroy(&g->out);
    sym_symbol_table_free(&g->symbols);
    free(g->where);
    sym_model_backends_destroy(g->mb);
    if (g->connect.free) g->connect.free(g->connect.ctx);
    sym_slot_pool_destroy(&g->slots);
    sym_control_destroy(&g->control);
    sym_control_destroy(&g->restore_control);
    sym_doorbell_destroy(&g->router_bell);
    pthread_mutex_destroy(&g->front_mu);
    pthread_mutex_destroy(&g->ctl_api_mu);
    pthread_mutex_destroy(&g->restore_mu);
    free(g);
}

const sym_model_config *sym_engine_model(const sym_engine *g) { return &g->model; }

/* --- the front door and the output ------------------------------------------ */

int sym_engine_submit(sym_engine *g, const sym_request *r, sym_err *e) {
    size_t len = strnlen(r->symbol, sizeof r->symbol);
    if (len == sizeof r->symbol)
        return sym_fail(e, "request %llu: symbol is not terminated within %d bytes", (unsigned long long)r->uid,
                        SYM_SYMBOL_MAX);
    if (sym_symbol_check(r->symbol, len, e)) return sym_failctx(e, "request %llu", (unsigned long long)r->uid);
    if (r->n_features != g->model.features)
        return sym_fail(e, "request %llu: %d features, the model takes %d", (unsigned long long)r->uid, r->n_features,
                        g->model.features);
    for (int i = 0; i < r->n_features; i++)
        if (!isfinite(r->features[i]))
            return sym_fail(e, "request %llu: feature %d is not a finite number", (unsigned long long)r->uid, i);
    pthread_mutex_lock(&g->front_mu);
    int id = sym_symbol_table_intern(&g->symbols, r->symbol, e);
    pthread_mutex_unlock(&g->front_mu);
    if (id < 0) return sym_failctx(e, "request %llu", (unsigned long long)r->uid);
    sym_msg m = {.type = SYM_MSG_REQUEST, .sym = id};
    m.u.req = *r;
    m.u.req.t_submit_ns = sym_now_ns();
    atomic_fetch_add(&g->submitted, 1);
    sym_mailbox_push(&g->inbox, &m);
    return 0;
}

int sym_engine_poll(sym_engine *g, sym_prediction *out, int max, int timeout_ms) {
    return sym_output_queue_poll(&g->out, out, max, timeout_ms);
}

int sym_engine_ready_fd(const sym_engine *g) { return g->out.efd; }

void sym_engine_drain(sym_engine *g) { sym_output_queue_wait_completed(&g->out, atomic_load(&g->submitted)); }

/* --- control calls ---------------------------------------------------------- */

/* Sends a control message and waits for the router's answer (ctl_api_mu held). */
static int control(sym_engine *g, sym_msg *m, sym_err *e) {
    m->token = sym_control_token(&g->control);
    sym_mailbox_push(&g->inbox, m);
    return sym_control_wait(&g->control, m->token, e);
}

static int symbol_id(sym_engine *g, const char *symbol) {
    pthread_mutex_lock(&g->front_mu);
    int id = sym_symbol_table_find(&g->symbols, symbol);
    pthread_mutex_unlock(&g->front_mu);
    return id;
}

int sym_engine_migrate(sym_engine *g, const char *symbol, int to_shard, sym_err *e) {
    int id = symbol_id(g, symbol);
    if (id < 0) return sym_fail(e, "migrate: unknown symbol '%s'", symbol);
    pthread_mutex_lock(&g->ctl_api_mu);
    int rc;
    if (to_shard < 0 || to_shard >= g->n_shards)
        rc = sym_fail(e, "migrate: shard %d out of range 0..%d", to_shard, g->n_shards - 1);
    else {
        sym_msg m = {.type = SYM_MSG_MIGRATE, .sym = id, .shard = to_shard};
        rc = control(g, &m, e);
    }
    pthread_mutex_unlock(&g->ctl_api_mu);
    return rc;
}

int sym_engine_rebalance(sym_engine *g, int n_shards, sym_err *e) {
    if (n_shards < 1 || n_shards > SYM_MAX_SHARDS) return sym_fail(e, "rebalance: %d shards (1..%d)", n_shards, SYM_MAX_SHARDS);
    pthread_mutex_lock(&g->ctl_api_mu);
    int old = g->n_shards, rc = 0;
    /* new shards exist (and run) before the router may place anything on them */
    for (int i = old; i < n_shards; i++) {
        if (!(g->shards[i] = make_shard(g, i, e))) {
            rc = sym_failctx(e, "rebalance: shard %d", i);
            break;
        }
        g->n_shards = i + 1;
    }
    if (g->mb) sym_model_backends_placed_done(g->mb); /* weights first loaded here (all shards were remote) */
    if (rc) {
        /* the router never heard of them: stop them ourselves */
        for (int i = old; i < g->n_shards; i++) {
            sym_shard_stop(g->shards[i]);
            sym_shard_join_destroy(g->shards[i]);
            g->shards[i] = NULL;
        }
        g->n_shards = old;
        pthread_mutex_unlock(&g->ctl_api_mu);
        return -1;
    }
    sym_msg m = {.type = SYM_MSG_REBALANCE, .shard = n_shards};
    rc = control(g, &m, e);
    /* the router stopped the shards beyond n_shards after moving their
     * symbols away; after a failed move it stopped none */
    if (rc && n_shards < old) n_shards = old;
    for (int i = n_shards; i < old; i++) {
        sym_shard_join_destroy(g->shards[i]);
        g->shards[i] = NULL;
    }
    g->n_shards = n_shards;
    pthread_mutex_unlock(&g->ctl_api_mu);
    return rc;
}

size_t sym_engine_slot_bytes(const sym_engine *g) { return g->slot_bytes; }

/* EXPORT_SYMBOL or IMPORT_SYMBOL of symbol id through a pool buffer: the
 * router's answer (1 or 0 for an export, 0 for an import), or -1. */
/* A pool buffer for a message to the router, holding a copy of state
 * when given: its index in *buf (-1 when none was taken); -1 with e. */
static int lend_buffer(sym_engine *g, const void *state, int *buf, sym_err *e) {
    *buf = sym_slot_pool_acquire(&g->slots);
    if (*buf < 0) return sym_fail(e, "every slot buffer is lent");
    void *dst = state ? sym_slot_pool_reserve(&g->slots, *buf, g->slot_bytes) : NULL;
    if (state && !dst) return sym_fail(e, "out of memory for a %zu-byte state", g->slot_bytes);
    if (state) memcpy(dst, state, g->slot_bytes);
    return 0;
}

static int slot_call(sym_engine *g, int type, int id, const char *symbol, void *out, const void *in, sym_err *e) {
    pthread_mutex_lock(&g->ctl_api_mu);
    int buf, rc = lend_buffer(g, in, &buf, e);
    if (!rc) {
        sym_msg m = {.type = type, .sym = id};
        m.u.io.buf = buf;
        snprintf(m.u.io.symbol, sizeof m.u.io.symbol, "%s", symbol);
        rc = control(g, &m, e);
        size_t len = 0;
        const void *src = sym_slot_pool_bytes(&g->slots, buf, &len);
        if (rc == 1 && len != g->slot_bytes) rc = sym_fail(e, "exported %zu bytes, not %zu", len, g->slot_bytes);
        else if (rc == 1) memcpy(out, src, len);
    }
    if (buf >= 0) sym_slot_pool_release(&g->slots, buf);
    pthread_mutex_unlock(&g->ctl_api_mu);
    return rc;
}

int sym_engine_export_symbol(sym_engine *g, const char *symbol, void *buf, sym_err *e) {
    int id = symbol_id(g, symbol);
    if (id < 0) return 0;
    int rc = slot_call(g, SYM_MSG_EXPORT_SYMBOL, id, symbol, buf, NULL, e);
    return rc < 0 ? sym_failctx(e, "exporting '%s'", symbol) : rc;
}

int sym_engine_import_symbol(sym_engine *g, const char *symbol, const void *state, sym_err *e) {
    size_t len = strnlen(symbol, SYM_SYMBOL_MAX + 1);
    if (len > SYM_SYMBOL_MAX) return sym_fail(e, "import: symbol longer than %d bytes", SYM_SYMBOL_MAX);
    if (sym_symbol_check(symbol, len, e)) return sym_failctx(e, "import");
    pthread_mutex_lock(&g->front_mu);
    int id = sym_symbol_table_intern(&g->symbols, symbol, e);
    pthread_mutex_unlock(&g->front_mu);
    if (id < 0) return sym_failctx(e, "import");
    return slot_call(g, SYM_MSG_IMPORT_SYMBOL, id, symbol, NULL, state, e) < 0 ? sym_failctx(e, "importing '%s'", symbol)
                                                                             : 0;
}

int sym_engine_symbol_shard(sym_engine *g, const char *symbol) {
    int id = symbol_id(g, symbol);
    return id < 0 ? -1 : atomic_load_explicit(&g->where[id], memory_order_relaxed);
}

int sym_engine_paging(sym_engine *g, int shard, sym_paging_stats *out, sym_err *e) {
    pthread_mutex_lock(&g->ctl_api_mu);
    int rc = 0;
    if (shard < 0 || shard >= g->n_shards) rc = sym_fail(e, "paging: shard %d out of range 0..%d", shard, g->n_shards - 1);
    else sym_shard_paging(g->shards[shard], out);
    pthread_mutex_unlock(&g->ctl_api_mu);
    return rc;
}

int sym_engine_shard_count(sym_engine *g) {
    pthread_mutex_lock(&g->ctl_api_mu);
    int n = g->n_shards;
    pthread_mutex_unlock(&g->ctl_api_mu);
    return n;
}

/* --- the router's numbers ---------------------------------------------------- */

int sym_engine_shard_stats(sym_engine *g, int shard, sym_shard_stats *out, sym_err *e) {
    pthread_mutex_lock(&g->ctl_api_mu);
    int rc = 0;
    if (shard < 0 || shard >= g->n_shards) rc = sym_fail(e, "shard stats: shard %d out of range 0..%d", shard, g->n_shards - 1);
    else sym_router_shard_stats(g->router, shard, out);
    pthread_mutex_unlock(&g->ctl_api_mu);
    return rc;
}

void sym_engine_migration_stats(sym_engine *g, sym_migration_stats *out) { sym_router_migration_stats(g->router, out); }

int sym_engine_shards_lost(sym_engine *g) { return sym_router_shards_lost(g->router); }

void sym_engine_held_stats(sym_engine *g, sym_held_stats *out) { sym_router_held_stats(g->router, out); }

/* --- the symbols of a lost shard process, restored ----------------------------- */

/* A call on the restore mailbox, answered on the restore control
 * (restore_mu held). */
static int restore_call(sym_engine *g, sym_msg *m, sym_err *e) {
    m->token = sym_control_token(&g->restore_control);
    sym_mailbox_push(&g->restore_inbox, m);
    return sym_control_wait(&g->restore_control, m->token, e);
}

int sym_engine_hold_lost(sym_engine *g, sym_err *e) {
    pthread_mutex_lock(&g->restore_mu);
    sym_msg m = {.type = SYM_MSG_HOLD_LOST};
    int rc = restore_call(g, &m, e);
    pthread_mutex_unlock(&g->restore_mu);
    return rc;
}

int sym_engine_held_symbols(sym_engine *g, int upto, char (*names)[SYM_SYMBOL_MAX + 1], int max, sym_err *e) {
    pthread_mutex_lock(&g->restore_mu);
    int n, buf = sym_slot_pool_acquire(&g->slots);
    if (buf < 0) {
        n = sym_fail(e, "every slot buffer is lent");
    } else {
        sym_msg m = {.type = SYM_MSG_HELD_LIST, .shard = upto};
        m.u.io.buf = buf;
        n = restore_call(g, &m, e);
        size_t len = 0;
        const int32_t *ids = sym_slot_pool_bytes(&g->slots, buf, &len);
        if (n > max) n = max;
        if (n > 0 && (!ids || len < (size_t)n * sizeof *ids)) n = sym_fail(e, "the list of held symbols is cut short");
        pthread_mutex_lock(&g->front_mu); /* an id's name never changes once interned */
        for (int i = 0; i < n; i++) memcpy(names[i], g->symbols.names[ids[i]], sizeof names[i]);
        pthread_mutex_unlock(&g->front_mu);
        sym_slot_pool_release(&g->slots, buf);
    }
    pthread_mutex_unlock(&g->restore_mu);
    return n;
}

int sym_engine_restore_begin(sym_engine *g, const char *symbol, const void *state, sym_err *e) {
    int id = symbol_id(g, symbol);
    if (id < 0) return sym_fail(e, "restore: unknown symbol '%s'", symbol);
    pthread_mutex_lock(&g->restore_mu);
    int buf = -1, rc = state ? lend_buffer(g, state, &buf, e) : 0; /* no state: the initial one */
    if (!rc) {
        sym_msg m = {.type = SYM_MSG_RESTORE_BEGIN, .sym = id};
        m.u.io.buf = buf;
        rc = restore_call(g, &m, e);
    }
    if (buf >= 0) sym_slot_pool_release(&g->slots, buf);
    pthread_mutex_unlock(&g->restore_mu);
    return rc < 0 ? sym_failctx(e, "restoring '%s'", symbol) : rc;
}

/* A step or a re-issue of a held symbol, in order behind the earlier ones. */
static int restore_send(sym_engine *g, int type, const sym_request *q, sym_err *e) {
    int id = symbol_id(g, q->symbol);
    if (id < 0) return sym_fail(e, "restore: unknown symbol '%.64s'", q->symbol);
    if (q->n_features != g->model.features)
        return sym_fail(e, "restore: request %llu has %d features, the model takes %d", (unsigned long long)q->uid,
                        q->n_features, g->model.features);
    sym_msg m = {.type = type, .sym = id};
    m.u.req = *q;
    pthread_mutex_lock(&g->restore_mu);
    sym_mailbox_push(&g->restore_inbox, &m);
    pthread_mutex_unlock(&g->restore_mu);
    return 0;
}

int sym_engine_restore_step(sym_engine *g, const sym_request *q, sym_err *e) {
    return restore_send(g, SYM_MSG_RESTORE_STEP, q, e);
}

int sym_engine_restore_reissue(sym_engine *g, const sym_request *q, sym_err *e) {
    return restore_send(g, SYM_MSG_RESTORE_REISSUE, q, e);
}

int sym_engine_restore_end(sym_engine *g, const char *symbol, sym_err *e) {
    int id = symbol_id(g, symbol);
    if (id < 0) return sym_fail(e, "restore: unknown symbol '%s'", symbol);
    pthread_mutex_lock(&g->restore_mu);
    sym_msg m = {.type = SYM_MSG_RESTORE_END, .sym = id};
    int rc = restore_call(g, &m, e);
    pthread_mutex_unlock(&g->restore_mu);
    return rc < 0 ? sym_failctx(e, "restoring '%s'", symbol) : rc;
}
