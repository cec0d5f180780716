/* Where a request's time goes, hop by hop, at a slow pace (every thread
 * sleeps between requests, as at the seed trace's 90 req/s): one shard in
 * this process, or one shard process (forked from this one, so the same
 * build and model) reached at an ipc:// endpoint, its frames through the
 * shared-memory ring (shards.shm) or over nanomsg (SYM_BENCH_SHM=0), on
 * the CPU backend with the small synthetic model (SYM_BENCH_BACKEND=cuda:
 * the CUDA engine, full size, mixed precision).
 *
 * The engine is not instrumented: this program is linked with
 * -Wl,--wrap for the mailbox pushes and pops, for nn_send / nn_recv and
 * for the ring's sym_shm_ring_write / sym_shm_ring_read
 * (bench/net/CMakeLists.txt), so every hand-off of a request or its answer
 * between threads, and every frame on the socket or through the ring, is
 * timestamped as it happens, in both processes (CLOCK_MONOTONIC is one clock for every
 * process of a host; the timestamps go into memory the two processes
 * share). Each row of the table is a hand-off or a piece of work, its p50
 * and p90 over the requests (the first 20 left out); a wake row is the
 * time from the push of a message to its pop by the thread that was asleep
 * (or spinning) for it.
 *
 *   bench_net_hops inproc|ipc [rate_per_s=90] [requests=1000] [symbols=10]
 *   env: SYM_BENCH_SPIN_US (idle_spin_us),
 *        SYM_BENCH_SHM=0 (shards.shm false: ipc:// over nanomsg),
 *        SYM_BENCH_SHM_SPIN_US (shards.shm_spin_us),
 *        SYM_BENCH_CPU_THREADS (cpu.threads),
 *        SYM_BENCH_STEP_US=T: each step is a sleep of T µs instead of the CPU
 *        backend's arithmetic (outputs zero), as a GPU's step leaves the host's
 *        cores free: a host with cores to spare, on one that has few,
 *        SYM_BENCH_CSV=FILE (every request's timestamps) */
#include <errno.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors/engine.h"
#include "actors/mailbox.h"
#include "common/clock.h"
#include "net/shard_link.h"
#include "net/shard_server.h"
#include "net/shard_wire.h"
#include "net/shm_ring.h"

enum {
    E_SUBMIT,      /* submit: pushed to the router */
    E_ROUTER_TAKE, /* the router has it */
    E_ROUTER_SEND, /* pushed to the shard's inbox (a local shard, or the link) */
    E_INBOX_TAKE,  /* taken from that inbox: the local shard, or the link's thread */
    E_LINK_SEND0,  /* the link's nn_send (or ring write) called */
    E_LINK_SEND1,  /* returned */
    E_SRV_RECV,    /* the shard process's receiver has the frame */
    E_SRV_PUSH,    /* pushed to its shard's inbox */
    E_SHARD_TAKE,  /* its shard has it */
    E_STEP0,       /* the step began */
    E_STEP1,       /* and ended */
    E_SHARD_DONE,  /* the answer pushed to the shard's outbox */
    E_SENDER_TAKE, /* the shard process's sender has it */
    E_SRV_SEND0,   /* its nn_send (or ring write) called */
    E_SRV_SEND1,
    E_LINK_RECV,   /* the link's receiver has the frame */
    E_LINK_PUSH,   /* pushed to the shard's outbox in the router's process */
    E_ROUTER_DONE, /* the router has the answer */
    E_POLL,        /* poll() returned it */
    E_N
};

static uint64_t (*ts)[E_N]; /* [request][event], shared by both processes */
static int n_req, remote, in_shard_proc;

static void note(uint64_t uid, int ev, uint64_t t) {
    if (uid < (uint64_t)n_req && !ts[uid][ev]) ts[uid][ev] = t;
}

static uint64_t uid_of(const sym_msg *m) {
    if (m->type == SYM_MSG_REQUEST || m->type == SYM_MSG_STEP_REQ) return m->u.req.uid;
    if (m->type == SYM_MSG_DONE) return m->u.pred.uid;
    return UINT64_MAX;
}

static void on_push(const sym_msg *m, uint64_t t) {
    uint64_t uid = uid_of(m);
    if (m->type == SYM_MSG_REQUEST) note(uid, E_SUBMIT, t);
    else if (m->type == SYM_MSG_STEP_REQ) note(uid, in_shard_proc ? E_SRV_PUSH : E_ROUTER_SEND, t);
    else if (m->type == SYM_MSG_DONE && (in_shard_proc || !remote)) {
        note(uid, E_STEP0, m->t_step_ns);
        note(uid, E_STEP1, m->t_step_ns + m->step_ns);
        note(uid, E_SHARD_DONE, t);
    } else if (m->type == SYM_MSG_DONE) note(uid, E_LINK_PUSH, t);
}

static void on_pop(const sym_msg *m, uint64_t t) {
    uint64_t uid = uid_of(m);
    if (m->type == SYM_MSG_REQUEST) note(uid, E_ROUTER_TAKE, t);
    else if (m->type == SYM_MSG_STEP_REQ) note(uid, in_shard_proc ? E_SHARD_TAKE : E_INBOX_TAKE, t);
    else if (m->type == SYM_MSG_DONE) note(uid, in_shard_proc ? E_SENDER_TAKE : E_ROUTER_DONE, t);
}

void __real_sym_mailbox_push(sym_mailbox *mb, const sym_msg *m);
int __real_sym_mailbox_try_push(sym_mailbox *mb, const sym_msg *m);
int __real_sym_mailbox_pop(sym_mailbox *mb, sym_msg *out);
int __real_nn_send(int s, const void *buf, size_t len, int flags);
int __real_nn_recv(int s, void *buf, size_t len, int flags);

void __wrap_sym_mailbox_push(sym_mailbox *mb, const sym_msg *m) {
    on_push(m, sym_now_ns());
    __real_sym_mailbox_push(mb, m);
}
int __wrap_sym_mailbox_try_push(sym_mailbox *mb, const sym_msg *m) {
    uint64_t t = sym_now_ns();
    int ok = __real_sym_mailbox_try_push(mb, m);
    if (ok) on_push(m, t);
    return ok;
}
int __wrap_sym_mailbox_pop(sym_mailbox *mb, sym_msg *out) {
    int ok = __real_sym_mailbox_pop(mb, out);
    if (ok) on_pop(out, sym_now_ns());
    return ok;
}

static long step_us; /* SYM_BENCH_STEP_US */
int __real_sym_backend_step_runs(sym_backend *b, int B, const int32_t *slots, const float *features, double *out,
                                 unsigned char *ok, sym_err *e);
int __wrap_sym_backend_step_runs(sym_backend *b, int B, const int32_t *slots, const float *features, double *out,
                                 unsigned char *ok, sym_err *e) {
    if (step_us <= 0) return __real_sym_backend_step_runs(b, B, slots, features, out, ok, e);
    struct timespec d = {.tv_sec = step_us / 1000000, .tv_nsec = (step_us % 1000000) * 1000};
    while (nanosleep(&d, &d) && errno == EINTR) {
    }
    memset(out, 0, (size_t)B * SYM_TOWERS * sizeof *out);
    if (ok) memset(ok, 1, (size_t)B);
    return 0;
}

/* Each message of a MSGS frame noted as ev. */
static void note_frame(const void *frame, size_t len, int want_type, int ev, uint64_t t) {
    sym_wire_in in;
    sym_err e;
    uint32_t n;
    if (sym_wire_open(&in, frame, len, &e) || in.kind != SYM_WIRE_MSGS || sym_wire_get(&in, &n, 4, &e)) return;
    for (uint32_t k = 0; k < n; k++) {
        static __thread sym_msg m;
        if (sym_wire_get_msg(&in, &m, &e)) return;
        if (m.type == want_type) note(uid_of(&m), ev, t);
    }
}

int __wrap_nn_send(int s, const void *buf, size_t len, int flags) {
    uint64_t t0 = sym_now_ns();
    int rc = __real_nn_send(s, buf, len, flags);
    uint64_t t1 = sym_now_ns();
    if (rc >= 0) {
        int type = in_shard_proc ? SYM_MSG_DONE : SYM_MSG_STEP_REQ;
        note_frame(buf, len, type, in_shard_proc ? E_SRV_SEND0 : E_LINK_SEND0, t0);
        note_frame(buf, len, type, in_shard_proc ? E_SRV_SEND1 : E_LINK_SEND1, t1);
    }
    return rc;
}

int __wrap_nn_recv(int s, void *buf, size_t len, int flags) {
    int rc = __real_nn_recv(s, buf, len, flags);
    if (rc > 0 && len == NN_MSG) {
        uint64_t t = sym_now_ns();
        note_frame(*(void **)buf, (size_t)rc, in_shard_proc ? SYM_MSG_STEP_REQ : SYM_MSG_DONE,
                   in_shard_proc ? E_SRV_RECV : E_LINK_RECV, t);
    }
    return rc;
}

/* The ring's write and read, noted as nanomsg's send and receive are. */
int __real_sym_shm_ring_write(sym_shm *m, const void *frame, size_t len, uint64_t timeout_ns);
int __real_sym_shm_ring_read(sym_shm *m, void *buf, size_t cap, size_t *len, uint64_t timeout_ns, sym_err *e);

int __wrap_sym_shm_ring_write(sym_shm *m, const void *frame, size_t len, uint64_t timeout_ns) {
    uint64_t t0 = sym_now_ns();
    int rc = __real_sym_shm_ring_write(m, frame, len, timeout_ns);
    uint64_t t1 = sym_now_ns();
    if (rc == 0) {
        int type = in_shard_proc ? SYM_MSG_DONE : SYM_MSG_STEP_REQ;
        note_frame(frame, len, type, in_shard_proc ? E_SRV_SEND0 : E_LINK_SEND0, t0);
        note_frame(frame, len, type, in_shard_proc ? E_SRV_SEND1 : E_LINK_SEND1, t1);
    }
    return rc;
}

int __wrap_sym_shm_ring_read(sym_shm *m, void *buf, size_t cap, size_t *len, uint64_t timeout_ns, sym_err *e) {
    int rc = __real_sym_shm_ring_read(m, buf, cap, len, timeout_ns, e);
    if (rc == 1)
        note_frame(buf, *len, in_shard_proc ? SYM_MSG_STEP_REQ : SYM_MSG_DONE, in_shard_proc ? E_SRV_RECV : E_LINK_RECV,
                   sym_now_ns());
    return rc;
}

/* --- the load ---------------------------------------------------------------- */

typedef struct {
    sym_engine *g;
    int n, failed;
} consumer;

static void *consume(void *arg) {
    consumer *c = arg;
    sym_prediction p[64];
    for (int got = 0; got < c->n;) {
        int k = sym_engine_poll(c->g, p, 64, 1000);
        uint64_t now = sym_now_ns();
        if (k < 0) break;
        for (int i = 0; i < k; i++, got++) {
            note(p[i].uid, E_POLL, now);
            c->failed += p[i].status != 0;
        }
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* p50 and p90 of ts[i][to] - ts[i][from] in µs, over the requests that have both. */
static void row(const char *what, int from, int to, int skip) {
    int64_t *v = malloc((size_t)n_req * sizeof *v);
    int k = 0;
    for (int i = skip; i < n_req; i++)
        if (ts[i][from] && ts[i][to]) v[k++] = (int64_t)(ts[i][to] - ts[i][from]);
    if (k) {
        qsort(v, (size_t)k, sizeof *v, cmp_i64);
        printf("  %-52s %8.1f %8.1f %6d\n", what, (double)v[k / 2] * 1e-3, (double)v[(k * 9) / 10] * 1e-3, k);
    }
    free(v);
}

static void set_model(sym_config *c) {
    sym_config_defaults(c);
    const char *be = getenv("SYM_BENCH_BACKEND");
    c->backend = be && !strcmp(be, "cuda") ? SYM_BACKEND_CUDA : SYM_BACKEND_CPU;
    c->synthetic_seed = 1;
    c->synthetic_full = c->backend == SYM_BACKEND_CUDA;
    c->status_interval_s = 0;
    c->max_symbols = 130;
    if (getenv("SYM_BENCH_SPIN_US")) c->idle_spin_us = atof(getenv("SYM_BENCH_SPIN_US"));
    if (getenv("SYM_BENCH_CPU_THREADS")) c->cpu_threads = atoi(getenv("SYM_BENCH_CPU_THREADS"));
    if (getenv("SYM_BENCH_STEP_US")) step_us = atol(getenv("SYM_BENCH_STEP_US"));
    if (getenv("SYM_BENCH_SHM")) c->shard_shm = atoi(getenv("SYM_BENCH_SHM")) != 0;
    if (getenv("SYM_BENCH_SHM_SPIN_US")) c->shard_shm_spin_us = atof(getenv("SYM_BENCH_SHM_SPIN_US"));
}

static volatile sig_atomic_t child_stop;

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "inproc") && strcmp(argv[1], "ipc")))
        return fprintf(stderr, "usage: bench_net_hops inproc|ipc [rate_per_s] [requests] [symbols]\n"), 2;
    remote = !strcmp(argv[1], "ipc");
    double rate = argc > 2 ? atof(argv[2]) : 90;
    n_req = argc > 3 ? atoi(argv[3]) : 1000;
    int n_sym = argc > 4 ? atoi(argv[4]) : 10;
    if (rate <= 0 || n_req < 30 || n_sym < 1 || n_sym > 100) return fprintf(stderr, "bad arguments\n"), 2;
    ts = mmap(NULL, (size_t)n_req * sizeof *ts, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ts == MAP_FAILED) return perror("mmap"), 1;
    sym_config c;
    set_model(&c);
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/bench_hops.%d.ipc", (int)getpid());
    pid_t child = -1;
    if (remote) { /* before any thread: the shard process is this program, forked */
        if ((child = fork()) < 0) return perror("fork"), 1;
        if (child == 0) {
            in_shard_proc = 1;
            sym_shard_server_opts so = {.listen = endpoint, .cfg = &c, .stop = &child_stop, .max_sessions = 1};
            sym_err e = {{0}};
            int rc = sym_shard_server_run(&so, &e);
            if (rc) fprintf(stderr, "shard process: %s\n", e.msg);
            _exit(rc ? 1 : 0);
        }
        snprintf(c.shard_endpoints[0], SYM_ENDPOINT_MAX, "%s", endpoint);
        c.n_shard_endpoints = 1;
    }
    sym_err e = {{0}};
    sym_engine *g = sym_shard_link_engine(&c, c.backend == SYM_BACKEND_CUDA, &e);
    if (!g) return fprintf(stderr, "engine: %s\n", e.msg), 1;
    consumer cons = {.g = g, .n = n_req};
    pthread_t t;
    pthread_create(&t, NULL, consume, &cons);
    static sym_request q;
    q.n_features = sym_engine_model(g)->features;
    srand48(7);
    uint64_t next = sym_now_ns() + 100000000ull;
    for (int i = 0; i < n_req; i++) {
        next += (uint64_t)(-log(1.0 - drand48()) / rate * 1e9); /* Poisson arrivals */
        struct timespec at = {.tv_sec = (time_t)(next / 1000000000ull), .tv_nsec = (long)(next % 1000000000ull)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {
        }
        q.uid = (uint64_t)i;
        snprintf(q.symbol, sizeof q.symbol, "S%02d", i % n_sym);
        for (int f = 0; f < q.n_features; f++) q.features[f] = (float)sin(0.37 * (double)(i * 79 + f));
        if (sym_engine_submit(g, &q, &e)) return fprintf(stderr, "submit: %s\n", e.msg), 1;
    }
    pthread_join(t, NULL);
    sym_engine_destroy(g);
    if (remote) {
        int st = 0;
        waitpid(child, &st, 0);
        unlink(endpoint + strlen("ipc://"));
    }
    const char *csv = getenv("SYM_BENCH_CSV");
    if (csv) {
        FILE *f = fopen(csv, "w");
        for (int i = 0; f && i < n_req; i++) {
            for (int k = 0; k < E_N; k++) fprintf(f, "%s%llu", k ? "," : "", (unsigned long long)ts[i][k]);
            fputc('\n', f);
        }
        if (f) fclose(f);
    }
    int skip = 20;
    if (step_us > 0) printf("steps: a sleep of %ld us each (SYM_BENCH_STEP_US), not the CPU backend's\n", step_us);
    char how[96] = "one shard in the router's process";
    if (remote && c.shard_shm)
        snprintf(how, sizeof how, "one shard process at ipc://, frames through a shared-memory ring (shm_spin_us %g)",
                 c.shard_shm_spin_us);
    else if (remote)
        snprintf(how, sizeof how, "one shard process at ipc://, frames over nanomsg");
    printf("%s, %s, idle_spin_us %g, %.0f req/s Poisson over %d symbols, %d requests "
           "(%d failed), first %d left out; us\n",
           how, c.backend == SYM_BACKEND_CUDA ? "CUDA engine (full synthetic model, mixed)" : "CPU backend (small synthetic model)",
           c.idle_spin_us, rate, n_sym, n_req, cons.failed, skip);
    printf("  %-52s %8s %8s %6s\n", "hop", "p50", "p90", "n");
    row("router wakes for the request (submit -> router)", E_SUBMIT, E_ROUTER_TAKE, skip);
    row("router routes it (-> shard inbox)", E_ROUTER_TAKE, E_ROUTER_SEND, skip);
    if (remote) {
        row("link thread wakes (inbox -> link)", E_ROUTER_SEND, E_INBOX_TAKE, skip);
        row(c.shard_shm ? "link ring write call" : "link nn_send call", E_LINK_SEND0, E_LINK_SEND1, skip);
        row(c.shard_shm ? "link pop -> ring write" : "link pop -> nn_send", E_INBOX_TAKE, E_LINK_SEND0, skip);
        row(c.shard_shm ? "ring, router -> shard process (write -> rx_main)"
                        : "nanomsg, router -> shard process (send -> rx_main)",
            E_LINK_SEND0, E_SRV_RECV, skip);
        row("shard process rx_main -> shard inbox", E_SRV_RECV, E_SRV_PUSH, skip);
        row("shard wakes (inbox -> shard)", E_SRV_PUSH, E_SHARD_TAKE, skip);
    } else {
        row("shard wakes (inbox -> shard)", E_ROUTER_SEND, E_INBOX_TAKE, skip);
    }
    row("shard: taken -> step begins", remote ? E_SHARD_TAKE : E_INBOX_TAKE, E_STEP0, skip);
    row("step", E_STEP0, E_STEP1, skip);
    row("step end -> answer pushed", E_STEP1, E_SHARD_DONE, skip);
    if (remote) {
        row("shard process sender wakes (outbox -> serve_session)", E_SHARD_DONE, E_SENDER_TAKE, skip);
        row(c.shard_shm ? "sender pop -> ring write" : "sender pop -> nn_send", E_SENDER_TAKE, E_SRV_SEND0, skip);
        row(c.shard_shm ? "shard process ring write call" : "shard process nn_send call", E_SRV_SEND0, E_SRV_SEND1, skip);
        row(c.shard_shm ? "ring, shard process -> router (write -> rx_main)"
                        : "nanomsg, shard process -> router (send -> rx_main)",
            E_SRV_SEND0, E_LINK_RECV, skip);
        row("link rx_main -> outbox", E_LINK_RECV, E_LINK_PUSH, skip);
        row("router wakes for the answer (outbox -> router)", E_LINK_PUSH, E_ROUTER_DONE, skip);
    } else {
        row("router wakes for the answer (outbox -> router)", E_SHARD_DONE, E_ROUTER_DONE, skip);
    }
    row("router -> poll() returns", E_ROUTER_DONE, E_POLL, skip);
    row("submit -> step begins (the status line's queue wait, in-process)", E_SUBMIT, E_STEP0, skip);
    row("step end -> poll()", E_STEP1, E_POLL, skip);
    {
        int64_t *v = malloc((size_t)n_req * sizeof *v);
        int k = 0;
        for (int i = skip; i < n_req; i++)
            if (ts[i][E_SUBMIT] && ts[i][E_POLL] && ts[i][E_STEP1])
                v[k++] = (int64_t)(ts[i][E_POLL] - ts[i][E_SUBMIT]) - (int64_t)(ts[i][E_STEP1] - ts[i][E_STEP0]);
        qsort(v, (size_t)k, sizeof *v, cmp_i64);
        if (k) printf("  %-52s %8.1f %8.1f %6d\n", "overhead (submit -> poll, less the step)", (double)v[k / 2] * 1e-3,
                      (double)v[(k * 9) / 10] * 1e-3, k);
        free(v);
    }
    row("submit -> poll() returns", E_SUBMIT, E_POLL, skip);
    return cons.failed ? 1 : 0;
}
