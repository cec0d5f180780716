/* Metrics over libmicrohttpd; see metrics.h. */
#include "net/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"

const double sym_metrics_latency_le[SYM_METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 1, 5};

void sym_latency_hist_add(sym_latency_hist *h, uint64_t ns) {
    double s = (double)ns * 1e-9;
    int b = 0;
    while (b < SYM_METRICS_LATENCY_BUCKETS && s > sym_metrics_latency_le[b]) b++;
    h->count[b]++;
    h->n++;
    h->sum_s += s;
}

struct sym_metrics {
    struct MHD_Daemon *d;
    sym_engine *g;
    pthread_mutex_t mu; /* guards loop and have_loop */
    sym_metrics_loop loop;
    int have_loop;
    atomic_int healthy;
};

/* --- the text ------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...) {
    for (;;) {
        if (t->oom) return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = 2 * t->cap + (size_t)n;
        char *b = realloc(t->buf, cap);
        if (!b) {
            t->oom = 1;
            return;
        }
        t->buf = b, t->cap = cap;
    }
}

static void head(text *t, const char *name, const char *type, const char *help) {
    put(t, "# HELP symserve_%s %s\n# TYPE symserve_%s %s\n", name, help, name, type);
}

static void one(text *t, const char *name, const char *type, const char *help, uint64_t v) {
    head(t, name, type, help);
    put(t, "symserve_%s %llu\n", name, (unsigned long long)v);
}

/* symserve shard: its sessions and its shard, labelled with the index
 * its router gave it */
static void render_shard_process(text *t, const sym_metrics_loop *l) {
    const sym_paging_stats *p = &l->shard;
    one(t, "shard_sessions_total", "counter", "Router sessions this shard process served (the current one included).",
        l->sessions);
    one(t, "shard_routers_refused_total", "counter", "Routers refused at their handshake (another engine or config).",
        l->refused_routers);
    one(t, "shard_session_active", "gauge", "1 while a router is connected.", (uint64_t)(l->in_session != 0));
    struct {
        const char *name, *type, *help;
        uint64_t v;
    } f[] = {
        {"shard_symbols", "gauge", "Symbols a shard holds: in slots, in its host tier, on disk.",
         (uint64_t)p->resident + (uint64_t)p->paged + (uint64_t)p->on_disk},
        {"shard_symbols_resident", "gauge", "Symbols in a shard's state slots.", (uint64_t)p->resident},
        {"shard_slots", "gauge", "State slots of a shard's pool.", (uint64_t)p->slots},
        {"shard_steps_total", "counter", "Steps the shard ran in the current router session.", p->steps},
        {"shard_page_outs_total", "counter", "States copied from a slot to a tier in the current router session.", p->page_outs},
        {"shard_page_ins_total", "counter", "States copied from a tier to a slot in the current router session.", p->page_ins},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        head(t, f[i].name, f[i].type, f[i].help);
        put(t, "symserve_%s{shard=\"%d\"} %llu\n", f[i].name, l->shard_index, (unsigned long long)f[i].v);
    }
}

static void render_loop(text *t, const sym_metrics_loop *l) {
    if (l->has_shard_process) return render_shard_process(t, l);
    one(t, "messages_total", "counter", "Lines read from clients.", l->messages);
    one(t, "bad_messages_total", "counter", "Lines refused whole (not one well-formed message, or over max_line_bytes).",
        l->bad_messages);
    one(t, "requests_total", "counter", "Request rows received (a line refused whole: the unique_ids read in it).", l->requests);
    one(t, "answers_total", "counter", "Request rows answered with a prediction.", l->answered);
    head(t, "requests_refused_total", "counter", "Request rows refused with an error, by reason; none advanced a state.");
    put(t, "symserve_requests_refused_total{reason=\"bad_line\"} %llu\n", (unsigned long long)l->refused_bad_line);
    put(t, "symserve_requests_refused_total{reason=\"bad_row\"} %llu\n", (unsigned long long)l->refused_bad_row);
    put(t, "symserve_requests_refused_total{reason=\"id_in_flight\"} %llu\n", (unsigned long long)l->refused_in_flight_id);
    put(t, "symserve_requests_refused_total{reason=\"engine\"} %llu\n", (unsigned long long)l->refused_engine);
    if (l->refused_other)
        put(t, "symserve_requests_refused_total{reason=\"other\"} %llu\n", (unsigned long long)l->refused_other);
    if (l->has_in_flight)
        one(t, "requests_in_flight", "gauge", "Request rows submitted to the engine and not answered yet.", l->in_flight);
    if (l->has_clients) {
        one(t, "clients", "gauge", "Clients connected now.", (uint64_t)l->clients);
        one(t, "connections_total", "counter", "Client connections accepted.", l->connections);
        one(t, "connections_refused_total", "counter", "Client connections refused: max_clients reached.",
            l->refused_connections);
        one(t, "clients_dropped_total", "counter", "Clients dropped for not reading their answers.", l->dropped_clients);
        one(t, "answers_discarded_total", "counter", "Predictions discarded because their client was gone.", l->discarded);
    }
    if (l->has_store) {
        one(t, "state_log_bytes_total", "counter", "Bytes of write-ahead log written by this process.", l->log_bytes);
        one(t, "state_snapshots_total", "counter", "Snapshots finished.", l->snapshots);
        head(t, "state_last_snapshot_seconds", "gauge", "How long the last snapshot took.");
        put(t, "symserve_state_last_snapshot_seconds %.9g\n", l->last_snapshot_s);
        one(t, "state_restores_total", "counter",
            "Restores of a lost shard process's symbols from the state dir finished (a failed one stops play).",
            l->restores);
        head(t, "state_restore_seconds_total", "counter", "Time those restores took.");
        put(t, "symserve_state_restore_seconds_total %.9g\n", l->restore_s);
    }
    head(t, "answer_latency_seconds", "histogram", "Time from a row's submit to the engine to its answer being written.");
    uint64_t cum = 0;
    for (int b = 0; b < SYM_METRICS_LATENCY_BUCKETS; b++) {
        cum += l->latency.count[b];
        put(t, "symserve_answer_latency_seconds_bucket{le=\"%g\"} %llu\n", sym_metrics_latency_le[b],
            (unsigned long long)cum);
    }
    put(t, "symserve_answer_latency_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)l->latency.n);
    put(t, "symserve_answer_latency_seconds_sum %.9g\n", l->latency.sum_s);
    put(t, "symserve_answer_latency_seconds_count %llu\n", (unsigned long long)l->latency.n);
}

/* One metric family over every shard: field picks the value. */
typedef uint64_t (*shard_field)(const sym_paging_stats *p);
static uint64_t f_symbols(const sym_paging_stats *p) { return (uint64_t)p->resident + (uint64_t)p->paged + (uint64_t)p->on_disk; }
static uint64_t f_resident(const sym_paging_stats *p) { return (uint64_t)p->resident; }
static uint64_t f_host(const sym_paging_stats *p) { return (uint64_t)p->paged; }
static uint64_t f_disk(const sym_paging_stats *p) { return (uint64_t)p->on_disk; }
static uint64_t f_slots(const sym_paging_stats *p) { return (uint64_t)p->slots; }
static uint64_t f_steps(const sym_paging_stats *p) { return p->steps; }
static uint64_t f_steps_paged(const sym_paging_stats *p) { return p->steps_paged; }
static uint64_t f_outs(const sym_paging_stats *p) { return p->page_outs; }
static uint64_t f_ins(const sym_paging_stats *p) { return p->page_ins; }
static uint64_t f_disk_outs(const sym_paging_stats *p) { return p->disk_outs; }
static uint64_t f_disk_ins(const sym_paging_stats *p) { return p->disk_ins; }

static void per_shard(text *t, const sym_paging_stats *pg, int n, const char *name, const char *type, const char *help,
                      shard_field f) {
    head(t, name, type, help);
    for (int i = 0; i < n; i++) put(t, "symserve_%s{shard=\"%d\"} %llu\n", name, i, (unsigned long long)f(&pg[i]));
}

/* The router's numbers of shards 0..n-1: steps, their time and rows, queue depth. */
static void render_router(text *t, const sym_shard_stats *ss, int n) {
    head(t, "shard_queue_depth", "gauge",
         "Requests the router has sent a shard and not had answered, and those it holds for the shard's credit.");
    for (int i = 0; i < n; i++) put(t, "symserve_shard_queue_depth{shard=\"%d\"} %d\n", i, ss[i].queue_depth);
    head(t, "shard_step_seconds", "histogram", "Time a shard's backend took for a step.");
    for (int i = 0; i < n; i++) {
        uint64_t cum = 0;
        for (int b = 0; b < SYM_STEP_BUCKETS; b++) {
            cum += ss[i].step_count[b];
            put(t, "symserve_shard_step_seconds_bucket{shard=\"%d\",le=\"%g\"} %llu\n", i,
                (double)sym_step_le_ns[b] * 1e-9, (unsigned long long)cum);
        }
        put(t, "symserve_shard_step_seconds_bucket{shard=\"%d\",le=\"+Inf\"} %llu\n", i, (unsigned long long)ss[i].steps);
        put(t, "symserve_shard_step_seconds_sum{shard=\"%d\"} %.9g\n", i, (double)ss[i].step_ns * 1e-9);
        put(t, "symserve_shard_step_seconds_count{shard=\"%d\"} %llu\n", i, (unsigned long long)ss[i].steps);
    }
    head(t, "shard_batch_rows", "summary", "Rows a shard's step took (its batch size): _sum rows, _count steps.");
    for (int i = 0; i < n; i++) {
        put(t, "symserve_shard_batch_rows_sum{shard=\"%d\"} %llu\n", i, (unsigned long long)ss[i].rows);
        put(t, "symserve_shard_batch_rows_count{shard=\"%d\"} %llu\n", i, (unsigned long long)ss[i].steps);
    }
}

static void render_migrations(text *t, const sym_migration_stats *m) {
    head(t, "migrations_total", "counter", "Moves of a symbol's state between shards (migrate, and a rebalance's), by result.");
    put(t, "symserve_migrations_total{result=\"done\"} %llu\n", (unsigned long long)m->done);
    put(t, "symserve_migrations_total{result=\"failed\"} %llu\n", (unsigned long long)m->failed);
    head(t, "migration_seconds_total", "counter",
         "Time migrations took, from holding the symbol's new requests to its move done or failed.");
    put(t, "symserve_migration_seconds_total %.9g\n", (double)m->ns * 1e-9);
    one(t, "rebalances_total", "counter", "Rebalances finished (their moves are counted in migrations_total).", m->rebalances);
}

/* The symbols of lost shard processes, held and restored. */
static void render_held(text *t, sym_engine *g) {
    sym_held_stats h;
    sym_engine_held_stats(g, &h);
    one(t, "symbols_held", "gauge",
        "Symbols of lost shard processes held for a restore: their requests wait in the router, none answered.",
        (uint64_t)h.held);
    head(t, "symbol_restores_total", "counter",
         "Restores of a held symbol, by result: done (served again), failed (its begin or end failed: it stays held).");
    put(t, "symserve_symbol_restores_total{result=\"done\"} %llu\n", (unsigned long long)h.restored);
    put(t, "symserve_symbol_restores_total{result=\"failed\"} %llu\n", (unsigned long long)h.failed);
    one(t, "restore_replayed_steps_total", "counter", "Logged steps of held symbols stepped again by their restores.",
        h.replayed);
    one(t, "restore_reissued_requests_total", "counter",
        "Requests a lost shard process took with it, sent again at the end of their symbol's restore.", h.reissued);
}

static void render_engine(text *t, sym_engine *g) {
    int n = sym_engine_shard_count(g);
    if (n < 0) n = 0;
    if (n > SYM_MAX_SHARDS) n = SYM_MAX_SHARDS;
    sym_paging_stats pg[SYM_MAX_SHARDS];
    sym_shard_stats *ss = calloc((size_t)(n ? n : 1), sizeof *ss); /* 200 bytes a shard: off the HTTP thread's stack */
    if (!ss) {
        t->oom = 1;
        return;
    }
    int got = 0;
    for (; got < n; got++) {
        sym_err e = {{0}};
        /* either fails when a rebalance removed the shard meanwhile */
        if (sym_engine_paging(g, got, &pg[got], &e) || sym_engine_shard_stats(g, got, &ss[got], &e)) break;
    }
    one(t, "shards", "gauge", "Shard actors of the engine.", (uint64_t)got);
    one(t, "shards_lost_total", "counter",
        "Shards in other processes lost (no heartbeat within shards.timeout_ms, or a broken link): their symbols' "
        "state is gone.", (uint64_t)sym_engine_shards_lost(g));
    render_held(t, g);
    per_shard(t, pg, got, "shard_symbols", "gauge", "Symbols a shard holds: in slots, in its host tier, on disk.", f_symbols);
    per_shard(t, pg, got, "shard_symbols_resident", "gauge", "Symbols in a shard's state slots.", f_resident);
    per_shard(t, pg, got, "shard_symbols_host_tier", "gauge", "Symbols paged out to a shard's host tier.", f_host);
    per_shard(t, pg, got, "shard_symbols_disk_tier", "gauge", "Symbols paged out to a shard's disk tier.", f_disk);
    per_shard(t, pg, got, "shard_slots", "gauge", "State slots of a shard's pool.", f_slots);
    per_shard(t, pg, got, "shard_steps_total", "counter", "Steps a shard ran.", f_steps);
    per_shard(t, pg, got, "shard_steps_paged_total", "counter", "Steps that paged a state in or out first.", f_steps_paged);
    per_shard(t, pg, got, "shard_page_outs_total", "counter", "States copied from a slot to a tier.", f_outs);
    per_shard(t, pg, got, "shard_page_ins_total", "counter", "States copied from a tier to a slot.", f_ins);
    per_shard(t, pg, got, "shard_disk_outs_total", "counter", "States written to the disk tier.", f_disk_outs);
    per_shard(t, pg, got, "shard_disk_ins_total", "counter", "States read back from the disk tier.", f_disk_ins);
    head(t, "shard_page_seconds_total", "counter", "Time spent copying states between slots and tiers.");
    for (int i = 0; i < got; i++) {
        put(t, "symserve_shard_page_seconds_total{shard=\"%d\",direction=\"out\"} %.9g\n", i, (double)pg[i].page_out_ns * 1e-9);
        put(t, "symserve_shard_page_seconds_total{shard=\"%d\",direction=\"in\"} %.9g\n", i, (double)pg[i].page_in_ns * 1e-9);
    }
    render_router(t, ss, got);
    free(ss);
    sym_migration_stats ms;
    sym_engine_migration_stats(g, &ms);
    render_migrations(t, &ms);
}

char *sym_metrics_render(const sym_metrics_loop *l, sym_engine *g, size_t *len) {
    text t = {.cap = 8192};
    if (!(t.buf = malloc(t.cap))) return NULL;
    t.buf[0] = '\0';
    if (l) render_loop(&t, l);
    if (g) render_engine(&t, g);
    if (t.oom) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}

/* --- HTTP ---------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body, const char *type) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result serve_metrics(sym_metrics *m, struct MHD_Connection *c) {
    sym_metrics_loop l;
    pthread_mutex_lock(&m->mu);
    int have = m->have_loop;
    if (have) l = m->loop;
    pthread_mutex_unlock(&m->mu);
    size_t len = 0;
    char *body = sym_metrics_render(have ? &l : NULL, m->g, &len);
    if (!body) return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", "text/plain; charset=utf-8");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version, (void)upload, (void)upload_size, (void)con_cls;
    sym_metrics *m = cls;
    int known = !strcmp(url, "/metrics") || !strcmp(url, "/healthz");
    if (!known) return reply(c, MHD_HTTP_NOT_FOUND, "not found: only /metrics and /healthz\n", "text/plain; charset=utf-8");
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
        /* answered before any body is read: MHD closes the connection after it */
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", "text/plain; charset=utf-8");
    }
    if (!strcmp(url, "/healthz"))
        return atomic_load(&m->healthy) ? reply(c, MHD_HTTP_OK, "ok\n", "text/plain; charset=utf-8")
                                        : reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not serving\n", "text/plain; charset=utf-8");
    return serve_metrics(m, c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    sym_warn("metrics: %s", msg);
}

sym_metrics *sym_metrics_start(const char *host, int port, sym_engine *g, int *bound, sym_err *e) {
    if (port < 0 || port > 65535) {
        sym_fail(e, "metrics: port %d out of range 0..65535", port);
        return NULL;
    }
    struct sockaddr_storage sa = {0};
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (!host) host = "0.0.0.0";
    struct sockaddr_in *a4 = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&sa;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        sym_fail(e, "metrics: '%s' is not an IPv4 or IPv6 address", host);
        return NULL;
    }
    sym_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        sym_fail(e, "out of memory");
        return NULL;
    }
    m->g = g;
    pthread_mutex_init(&m->mu, NULL);
    m->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, m,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)SYM_METRICS_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SYM_METRICS_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!m->d) {
        sym_fail(e, "metrics: cannot listen on %s:%d (in use, or not an address of this host)", host, port);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = info ? (int)info->port : port;
    sym_info("metrics: http://%s:%d/metrics and /healthz", host, *bound);
    return m;
}

int sym_metrics_publish(sym_metrics *m, const sym_metrics_loop *l) {
    if (pthread_mutex_trylock(&m->mu)) return 0;
    m->loop = *l;
    m->have_loop = 1;
    pthread_mutex_unlock(&m->mu);
    return 1;
}

void sym_metrics_set_healthy(sym_metrics *m, int healthy) { atomic_store(&m->healthy, healthy ? 1 : 0); }

void sym_metrics_stop(sym_metrics *m) {
    if (!m) return;
    MHD_stop_daemon(m->d);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
