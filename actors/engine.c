/* The engine object: creation (weights once, one backend and one shard
 * actor per shard, the router), the front door (submit's validation and
 * symbol registry), the output queue behind poll() and ready_fd, and the
 * blocking control calls (migrate, rebalance) that the router completes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "actors/engine_internal.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/request.h"
#include "kernels/cuda_backend.h"
#include "kernels/split_backend.h"

/* --- the built-in backend factory ---------------------------------------- */

/* The device of part j of shard i: shards take consecutive runs of
 * tower_split entries of shards.devices, wrapping around. */
static int part_device(const sym_config *c, int shard, int part) {
    return c->shard_devices[(shard * c->tower_split + part) % c->n_shard_devices];
}

static sym_backend *one_backend(sym_engine *g, int dev, sym_err *e) {
    if (!g->use_cuda) return sym_cpu_backend_create(&g->w, (sym_precision)g->cpu_precision, g->cfg.max_symbols, e);
    if (sym_cuda_device_weights_has(g->placed, dev))
        return sym_cuda_backend_create_placed(g->placed, g->cuda_prec, dev, g->cfg.max_symbols, g->cfg.max_batch, e);
    return sym_cuda_backend_create(&g->w, g->cuda_prec, dev, g->cfg.max_symbols, g->cfg.max_batch, e);
}

/* A shard's backend: one, or tower_split parts that each step some towers. */
static sym_backend *model_backend(void *ctx, int shard, sym_err *e) {
    sym_engine *g = ctx;
    int n = g->cfg.tower_split, masks[SYM_MAX_SPLIT];
    if (n == 1) return one_backend(g, part_device(&g->cfg, shard, 0), e);
    sym_backend *parts[SYM_MAX_SPLIT];
    if (sym_split_masks(n, masks)) {
        sym_fail(e, "tower_split %d: 1, 2 or 4", n);
        return NULL;
    }
    for (int j = 0; j < n; j++) {
        if (!(parts[j] = one_backend(g, part_device(&g->cfg, shard, j), e))) {
            for (int k = 0; k < j; k++) sym_backend_destroy(parts[k]);
            sym_failctx(e, "tower split part %d", j);
            return NULL;
        }
    }
    sym_info("shard %d: towers split over %d parts", shard, n);
    return sym_split_backend_create(parts, masks, n, e);
}

/* The weights onto every GPU that the first shards use, once per GPU (a
 * broadcast between GPUs, not one host upload per shard). One shard
 * uploads its own: the placed copy would only take room from its slots. */
static int place_weights(sym_engine *g, sym_err *e) {
    const sym_config *c = &g->cfg;
    if (c->shard_count * c->tower_split == 1) return 0;
    int devs[SYM_MAX_PLACE_DEVICES], n = 0;
    for (int i = 0; i < c->shard_count * c->tower_split; i++) {
        int d = part_device(c, i / c->tower_split, i % c->tower_split), seen = 0;
        for (int k = 0; k < n; k++) seen |= devs[k] == d;
        if (!seen && n < SYM_MAX_PLACE_DEVICES) devs[n++] = d;
    }
    uint64_t t0 = sym_now_ns();
    g->placed = sym_cuda_weights_place(&g->w, devs, n, SYM_PLACE_AUTO, e);
    if (!g->placed) return -1;
    sym_info("weights placed on %d GPU%s in %.0f ms", n, n > 1 ? "s" : "", (double)(sym_now_ns() - t0) * 1e-6);
    return 0;
}

/* Picks the backend kind and precisions, loads or makes the weights. */
static int prepare_model(sym_engine *g, sym_err *e) {
    const sym_config *c = &g->cfg;
    g->use_cuda = c->backend == SYM_BACKEND_CUDA || (c->backend == SYM_BACKEND_AUTO && sym_cuda_device_count() > 0);
    if (g->use_cuda && sym_cuda_device_count() <= 0) return sym_fail(e, "backend cuda: no CUDA device");
    if (g->use_cuda) {
        for (int t = 0; t < SYM_TOWERS; t++) {
            g->cuda_prec[t] = c->precision_set ? c->tower_precision[t]
                              : t == SYM_TOWER_RETNET ? SYM_PREC_FP32 : SYM_PREC_BF16;
            if (g->cuda_prec[t] == SYM_PREC_FP64) return sym_fail(e, "precision fp64 is not available on cuda (fp32, bf16, mixed)");
        }
        for (int i = 0; i < c->n_shard_devices; i++)
            if (c->shard_devices[i] >= sym_cuda_device_count())
                return sym_fail(e, "config key 'shards.devices': device %d does not exist (%d present)",
                                c->shard_devices[i], sym_cuda_device_count());
    }
    if (c->model_dir[0]) {
        if (sym_weights_load_dir(&g->w, c->model_dir, e)) return -1;
    } else {
        sym_model_config mc = c->synthetic_full ? sym_model_config_full() : sym_model_config_small();
        /* with a GPU, draw the same numbers there: seconds instead of a minute at full size */
        if (g->use_cuda) {
            if (sym_weights_alloc(&g->w, &mc, e)) return -1;
            if (sym_cuda_synthetic_to_host(&g->w, c->synthetic_seed, c->shard_devices[0], e)) {
                sym_weights_free(&g->w);
                return -1;
            }
        } else if (sym_weights_synthetic(&g->w, &mc, c->synthetic_seed, e)) {
            return -1;
        }
    }
    g->have_weights = 1;
    g->model = g->w.cfg;
    if (g->use_cuda && place_weights(g, e)) return -1;
    if (!g->use_cuda) {
        /* cpu: fp64 unless told; bf16 towers mean the fp64 reference of
         * bf16 storage (weights rounded, arithmetic fp64) */
        int mask = 0, all32 = 1;
        for (int t = 0; t < SYM_TOWERS; t++) {
            if (c->tower_precision[t] == SYM_PREC_BF16) mask |= 1 << t;
            if (c->tower_precision[t] != SYM_PREC_FP32) all32 = 0;
        }
        g->cpu_precision = SYM_PREC_FP64;
        if (c->precision_set && mask) sym_weights_round_bf16(&g->w, mask);
        else if (c->precision_set && all32) g->cpu_precision = SYM_PREC_FP32;
    }
    g->make_backend = model_backend;
    g->factory_ctx = g;
    return 0;
}

/* --- creation and teardown ------------------------------------------------ */

static int check_config(const sym_config *c, sym_err *e) {
    if (c->shard_count < 1 || c->shard_count > SYM_MAX_SHARDS) return sym_fail(e, "config key 'shards.count': out of range");
    if (c->n_shard_devices < 1) return sym_fail(e, "config key 'shards.devices': empty");
    if (c->max_batch < 1) return sym_fail(e, "config key 'max_batch': must be >= 1");
    if (c->max_symbols < 1) return sym_fail(e, "config key 'max_symbols': must be >= 1");
    if (c->queue_capacity < 2) return sym_fail(e, "config key 'queue_capacity': must be >= 2");
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
    g->efd = -1;
    sym_doorbell_init(&g->router_bell);
    pthread_mutex_init(&g->front_mu, NULL);
    pthread_mutex_init(&g->out_mu, NULL);
    pthread_mutex_init(&g->ctl_api_mu, NULL);
    pthread_mutex_init(&g->ctl_mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&g->out_cv, &a);
    pthread_cond_init(&g->ctl_cv, &a);
    pthread_condattr_destroy(&a);
    atomic_init(&g->submitted, 0);
    return g;
}

static int engine_start(sym_engine *g, sym_err *e) {
    const sym_config *c = &g->cfg;
    if (sym_symbol_table_init(&g->symbols, c->max_symbols, e)) return -1;
    g->where = malloc((size_t)c->max_symbols * sizeof *g->where);
    g->out_cap = 1024;
    g->outq = malloc((size_t)g->out_cap * sizeof *g->outq);
    if (!g->where || !g->outq) return sym_fail(e, "out of memory for the engine");
    for (int i = 0; i < c->max_symbols; i++) atomic_init(&g->where[i], -1);
    g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g->efd < 0) return sym_fail(e, "cannot create the engine's eventfd");
    if (sym_mailbox_init(&g->inbox, c->queue_capacity, 1, &g->router_bell, e)) return -1;
    if (sym_router_create(g, e)) return -1;
    for (int i = 0; i < c->shard_count; i++) {
        sym_backend *b = g->make_backend(g->factory_ctx, i, e);
        if (!b) return sym_failctx(e, "shard %d", i);
        if (!(g->shards[i] = sym_shard_create(g, i, b, e))) {
            sym_backend_destroy(b);
            return -1;
        }
        g->n_shards = i + 1;
        if (sym_shard_start(g->shards[i], e)) return -1;
    }
    /* every shard has built its weights: the placed copies go */
    sym_cuda_device_weights_free(g->placed);
    g->placed = NULL;
    if (pthread_create(&g->router_thread, NULL, sym_router_main, g)) return sym_fail(e, "cannot start the router thread");
    g->router_started = 1;
    return 0;
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

sym_engine *sym_engine_create(const sym_config *cfg, sym_err *e) {
    sym_engine *g = engine_alloc(cfg, e);
    if (!g) return NULL;
    if (prepare_model(g, e) || engine_start(g, e)) {
        sym_engine_destroy(g);
        return NULL;
    }
    return g;
}

void sym_engine_destroy(sym_engine *g) {
    if (!g) return;
    if (g->router_started) {
        sym_msg m = {.type = SYM_MSG_SHUTDOWN};
        sym_mailbox_push(&g->inbox, &m);
        pthread_join(g->router_thread, NULL);
    } else {
        /* the router never ran: stop the shards ourselves (we are their only producer now) */
        for (int i = 0; i < g->n_shards; i++) {
            sym_msg m = {.type = SYM_MSG_STOP};
            if (g->shards[i] && g->shards[i]->started) sym_mailbox_push(&g->shards[i]->inbox, &m);
        }
    }
    for (int i = 0; i < g->n_shards; i++) sym_shard_join_destroy(g->shards[i]);
    sym_router_destroy(g);
    if (g->inbox.buf) sym_mailbox_destroy(&g->inbox);
    if (g->efd >= 0) close(g->efd);
    sym_symbol_table_free(&g->symbols);
    free(g->where);
    free(g->outq);
    sym_cuda_device_weights_free(g->placed);
    if (g->have_weights) sym_weights_free(&g->w);
    sym_doorbell_destroy(&g->router_bell);
    pthread_mutex_destroy(&g->front_mu);
    pthread_mutex_destroy(&g->out_mu);
    pthread_mutex_destroy(&g->ctl_api_mu);
    pthread_mutex_destroy(&g->ctl_mu);
    pthread_cond_destroy(&g->out_cv);
    pthread_cond_destroy(&g->ctl_cv);
    free(g);
}

const sym_model_config *sym_engine_model(const sym_engine *g) { return &g->model; }

/* --- the front door --------------------------------------------------------- */

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

/* --- the output queue ------------------------------------------------------- */

void sym_engine_publish(sym_engine *g, const sym_prediction *p, int n) {
    pthread_mutex_lock(&g->out_mu);
    if (g->out_len + n > g->out_cap) {
        long long cap = g->out_cap;
        while (cap < g->out_len + n) cap *= 2;
        sym_prediction *q = malloc((size_t)cap * sizeof *q);
        if (!q) { /* no silent drop: this is fatal */
            sym_error("out of memory for %lld waiting predictions", cap);
            abort();
        }
        for (long long i = 0; i < g->out_len; i++) q[i] = g->outq[(g->out_head + i) % g->out_cap];
        free(g->outq);
        g->outq = q, g->out_cap = cap, g->out_head = 0;
    }
    for (int i = 0; i < n; i++) g->outq[(g->out_head + g->out_len + i) % g->out_cap] = p[i];
    g->out_len += n;
    g->completed += n;
    uint64_t one = 1;
    if (write(g->efd, &one, sizeof one) < 0) { /* EAGAIN: the counter is already non-zero, so readable */
    }
    pthread_cond_broadcast(&g->out_cv);
    pthread_mutex_unlock(&g->out_mu);
}

static void deadline_in(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

int sym_engine_poll(sym_engine *g, sym_prediction *out, int max, int timeout_ms) {
    struct timespec until;
    if (timeout_ms > 0) deadline_in(&until, timeout_ms);
    pthread_mutex_lock(&g->out_mu);
    while (!g->out_len && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&g->out_cv, &g->out_mu);
        else if (pthread_cond_timedwait(&g->out_cv, &g->out_mu, &until)) break;
    }
    int n = 0;
    for (; n < max && g->out_len; n++) {
        out[n] = g->outq[g->out_head];
        g->out_head = (g->out_head + 1) % g->out_cap;
        g->out_len--;
    }
    /* the fd is readable exactly while predictions wait */
    uint64_t v;
    if (!g->out_len) {
        if (read(g->efd, &v, sizeof v) < 0) { /* EAGAIN: already clear */
        }
    } else {
        v = 1;
        if (write(g->efd, &v, sizeof v) < 0) {
        }
    }
    pthread_mutex_unlock(&g->out_mu);
    return n;
}

int sym_engine_ready_fd(const sym_engine *g) { return g->efd; }

void sym_engine_drain(sym_engine *g) {
    long long target = atomic_load(&g->submitted);
    pthread_mutex_lock(&g->out_mu);
    while (g->completed < target) pthread_cond_wait(&g->out_cv, &g->out_mu);
    pthread_mutex_unlock(&g->out_mu);
}

/* --- control calls ---------------------------------------------------------- */

void sym_engine_control_done(sym_engine *g, uint64_t token, int rc, const char *err) {
    pthread_mutex_lock(&g->ctl_mu);
    g->ctl_done = token;
    g->ctl_rc = rc;
    snprintf(g->ctl_err, sizeof g->ctl_err, "%s", err ? err : "");
    pthread_cond_broadcast(&g->ctl_cv);
    pthread_mutex_unlock(&g->ctl_mu);
}

/* Sends a control message and waits for the router's answer (ctl_api_mu held). */
static int control(sym_engine *g, sym_msg *m, sym_err *e) {
    m->token = ++g->ctl_next;
    sym_mailbox_push(&g->inbox, m);
    pthread_mutex_lock(&g->ctl_mu);
    while (g->ctl_done != m->token) pthread_cond_wait(&g->ctl_cv, &g->ctl_mu);
    int rc = g->ctl_rc;
    if (rc) sym_fail(e, "%s", g->ctl_err);
    pthread_mutex_unlock(&g->ctl_mu);
    return rc;
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
    for (int i = old; i < n_shards && !rc; i++) {
        sym_backend *b = g->make_backend(g->factory_ctx, i, e);
        if (!b) {
            rc = sym_failctx(e, "rebalance: shard %d", i);
            break;
        }
        if (!(g->shards[i] = sym_shard_create(g, i, b, e))) {
            sym_backend_destroy(b);
            rc = -1;
            break;
        }
        if (sym_shard_start(g->shards[i], e)) rc = -1;
        g->n_shards = i + 1; /* joined at destroy even when it failed to start */
    }
    if (rc) {
        /* the router never heard of them: stop them ourselves */
        for (int i = old; i < g->n_shards; i++) {
            sym_msg stop = {.type = SYM_MSG_STOP};
            if (g->shards[i]->started) sym_mailbox_push(&g->shards[i]->inbox, &stop);
            sym_shard_join_destroy(g->shards[i]);
            g->shards[i] = NULL;
        }
        g->n_shards = old;
        pthread_mutex_unlock(&g->ctl_api_mu);
        return -1;
    }
    sym_msg m = {.type = SYM_MSG_REBALANCE, .shard = n_shards};
    rc = control(g, &m, e);
    /* the router stopped the shards beyond n_shards after moving their symbols away */
    for (int i = n_shards; i < old; i++) {
        sym_shard_join_destroy(g->shards[i]);
        g->shards[i] = NULL;
    }
    g->n_shards = n_shards;
    pthread_mutex_unlock(&g->ctl_api_mu);
    return rc;
}

int sym_engine_symbol_shard(sym_engine *g, const char *symbol) {
    int id = symbol_id(g, symbol);
    return id < 0 ? -1 : atomic_load_explicit(&g->where[id], memory_order_relaxed);
}

int sym_engine_shard_count(sym_engine *g) {
    pthread_mutex_lock(&g->ctl_api_mu);
    int n = g->n_shards;
    pthread_mutex_unlock(&g->ctl_api_mu);
    return n;
}
