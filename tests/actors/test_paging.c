/* Paging between a shard's slot pool and its host tier (actors/shard.h),
 * on the CPU fp64 backend over golden_small's weights: every prediction
 * and every exported state of a run with a small pool (slots_per_shard 8
 * or 4) is bit-identical to the same stream on a pool that holds every
 * symbol, and the small pool did page.
 *  - round robin over 3x the pool, one round at a time and all at once;
 *  - a Zipf-like mix over 2x the pool, a request at a time (prints the
 *    share of steps that paged and the latency; hot symbols stay
 *    resident, so it pages far less often than round robin);
 *  - a full host tier refuses a new symbol, naming both limits, while the
 *    admitted symbols keep stepping exactly;
 *  - export_symbol, import_symbol, a rebalance and a migration of paged-out
 *    symbols, with the states exported before and after;
 *  - the CPU backend allocates a slot only when it is used;
 *  - every backend call on its shard's thread.
 * Usage: test_paging MODEL_DIR (golden_small). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/engine.h"
#include "actors/slot_pool.h"
#include "kernels/backend.h"
#include "kernels/weights.h"
#include "tests/actors/paging_rig.h"
#include "tests/actors/thread_check_backend.h"
#include "tests/check.h"

static const char *model_dir;

typedef paging_run run;

static int start(run *r, int n_slots, int host_tier_mb, int max_symbols) {
    pr_config(&r->cfg, n_slots, host_tier_mb, max_symbols);
    return pr_start(r);
}

/* 24 symbols, round robin, on a pool of 8: a round at a time, then all
 * rounds at once (symbols wait for a slot while every resident one has
 * work). */
static double round_robin(void) {
    enum { SYMS = 24, ROUNDS = 20, N = SYMS * ROUNDS };
    static sym_prediction ref[N], small[N], burst[N];
    int syms[N];
    for (int i = 0; i < N; i++) syms[i] = i % SYMS;
    run a, b;
    if (start(&a, SYMS, 0, 64) || start(&b, 8, 4096, 64)) return 0;
    for (int k = 0; k < ROUNDS; k++) {
        pr_submit_wait(&a, syms + k * SYMS, SYMS, (uint64_t)(k * SYMS), ref + k * SYMS);
        pr_submit_wait(&b, syms + k * SYMS, SYMS, (uint64_t)(k * SYMS), small + k * SYMS);
    }
    sym_paging_stats pa = pr_paging(&a, 0), pb = pr_paging(&b, 0);
    pr_same("round robin, 24 symbols on 8 slots", ref, small, N, NULL);
    CHECK(pa.page_outs == 0 && pa.page_ins == 0 && pa.resident == SYMS, "24 slots paged: %llu out, %llu in",
          (unsigned long long)pa.page_outs, (unsigned long long)pa.page_ins);
    CHECK(pb.page_outs > 0 && pb.page_ins > 0 && pb.resident == 8 && pb.paged == SYMS - 8,
          "8 slots: %llu out, %llu in, %d resident, %d paged", (unsigned long long)pb.page_outs,
          (unsigned long long)pb.page_ins, pb.resident, pb.paged);
    double share = (double)pb.page_ins / N;
    printf("round robin, 24 symbols on 8 slots: %llu page-outs, %llu page-ins, %llu of %llu steps paged, %.0f%% of the requests paged in\n",
           (unsigned long long)pb.page_outs, (unsigned long long)pb.page_ins, (unsigned long long)pb.steps_paged,
           (unsigned long long)pb.steps, 100 * share);
    sym_engine_destroy(b.g);

    if (!start(&b, 8, 4096, 64)) {
        pr_submit_wait(&b, syms, N, 0, burst);
        pr_same("round robin, all rounds at once, on 8 slots", ref, burst, N, NULL);
        sym_paging_stats pc = pr_paging(&b, 0);
        CHECK(pc.page_outs > 0, "all at once: no page-out");
        sym_engine_destroy(b.g);
    }
    sym_engine_destroy(a.g);
    return share;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile of the n predictions' submit -> done time, in ms. */
static double latency_ms(const sym_prediction *p, int n, double q) {
    uint64_t *t = malloc((size_t)n * sizeof *t);
    if (!t) return 0;
    for (int i = 0; i < n; i++) t[i] = p[i].t_done_ns - p[i].t_submit_ns;
    qsort(t, (size_t)n, sizeof *t, cmp_u64);
    double v = (double)t[(int)(q * (n - 1))] * 1e-6;
    free(t);
    return v;
}

/* 16 symbols on 8 slots, symbol k drawn with weight 1/(k+1)^1.1, one
 * request at a time (a step each): the share of steps that paged is the
 * pool's miss rate. */
static void zipf(double rr_per_request) {
    enum { SYMS = 16, N = 640 };
    static sym_prediction ref[N], small[N];
    int syms[N];
    double w[SYMS], total = 0;
    for (int k = 0; k < SYMS; k++) total += w[k] = pow(k + 1, -1.1);
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0 * total;
        int k = 0;
        while (k < SYMS - 1 && (u -= w[k]) > 0) k++;
        syms[i] = k;
    }
    run a, b;
    if (start(&a, SYMS, 0, 64) || start(&b, 8, 4096, 64)) return;
    for (int i = 0; i < N; i++) {
        pr_submit_wait(&a, syms + i, 1, (uint64_t)i, ref + i);
        pr_submit_wait(&b, syms + i, 1, (uint64_t)i, small + i);
    }
    pr_same("zipf, 16 symbols on 8 slots", ref, small, N, NULL);
    sym_paging_stats pb = pr_paging(&b, 0);
    double share = pb.steps ? (double)pb.steps_paged / (double)pb.steps : 1;
    printf("zipf 1.1, 16 symbols on 8 slots, one request a step: %llu page-ins over %d requests, %llu of %llu steps "
           "paged (%.0f%%; round robin pages %.0f%% of its requests in); p50/p99 %.3f/%.3f ms, without paging "
           "%.3f/%.3f ms; a page-in took %.1f us, a page-out %.1f us\n",
           (unsigned long long)pb.page_ins, N, (unsigned long long)pb.steps_paged, (unsigned long long)pb.steps,
           100 * share, 100 * rr_per_request, latency_ms(small, N, 0.5), latency_ms(small, N, 0.99),
           latency_ms(ref, N, 0.5), latency_ms(ref, N, 0.99),
           pb.page_ins ? (double)pb.page_in_ns * 1e-3 / (double)pb.page_ins : 0,
           pb.page_outs ? (double)pb.page_out_ns * 1e-3 / (double)pb.page_outs : 0);
    CHECK(pb.page_ins > 0, "zipf: no page-in");
    CHECK(share < 0.5 * rr_per_request, "zipf pages in %.0f%% of steps, round robin %.0f%% of its requests: hot symbols "
          "do not stay", 100 * share, 100 * rr_per_request);
    sym_engine_destroy(a.g);
    sym_engine_destroy(b.g);
}

/* slots_per_shard 4 and a host tier of 4 MiB: as many symbols as the pool
 * and the tier hold are admitted, the next new one is refused by name and
 * steps nothing, and the others keep stepping exactly. */
static void tier_full(void) {
    run a, b;
    if (start(&b, 4, 4, 64)) return;
    size_t slot = sym_engine_slot_bytes(b.g);
    int room = (int)(((size_t)4 << 20) / slot) - 1, cap = 4 + (room > 0 ? room : 0);
    if (start(&a, cap, 0, 64)) return;
    enum { MAXN = 512 };
    static sym_prediction ref[MAXN], small[MAXN];
    int syms[MAXN], n = 0;
    for (int k = 0; k < cap; k++) syms[n++] = k;
    pr_submit_wait(&a, syms, n, 0, ref);
    pr_submit_wait(&b, syms, n, 0, small);
    int extra = cap;
    sym_prediction refused;
    pr_submit_wait(&b, &extra, 1, 1000, &refused);
    char want[160];
    snprintf(want, sizeof want, "symbol capacity: slots_per_shard 4 in use and host_tier_mb 4 full (%d states) on shard 0",
             room);
    CHECK(refused.status == -1 && strstr(refused.error, want), "new symbol past the tier: status %d (%s), want '%s'",
          refused.status, refused.error, want);
    void *buf = malloc(slot);
    sym_err e;
    char name[16];
    snprintf(name, sizeof name, "S%03d", extra);
    CHECK(buf && sym_engine_export_symbol(b.g, name, buf, &e) == 0, "the refused symbol has a state");
    for (int round = 0; round < 3; round++) {
        pr_submit_wait(&a, syms, cap, (uint64_t)(2000 + round * cap), ref + cap * (round + 1));
        pr_submit_wait(&b, syms, cap, (uint64_t)(2000 + round * cap), small + cap * (round + 1));
    }
    pr_same("admitted symbols after a refusal", ref, small, cap * 4, NULL);
    sym_paging_stats pb = pr_paging(&b, 0);
    printf("host tier of 4 MiB (%zu-byte states): %d paged-out states beside 4 slots; refused: %s\n", slot, room,
           refused.error);
    CHECK(pb.paged == room && pb.resident == 4, "tier: %d paged, %d resident", pb.paged, pb.resident);
    free(buf);
    sym_engine_destroy(a.g);
    sym_engine_destroy(b.g);
}

/* The same script on a pool of 4 and one of 64 slots: rounds over 12
 * symbols, every state exported (most of them paged out on the small
 * pool), a state imported into a paged-out symbol and into a new one, a
 * rebalance to 2 shards and a migration, more rounds, every state exported
 * again. */
enum { SCRIPT_SYMS = 12, SCRIPT_N = 6 * (SCRIPT_SYMS + 1) };
static int script(run *r, sym_prediction *out, unsigned char **states, sym_paging_stats *at_export) {
    sym_err e;
    int syms[SCRIPT_SYMS + 1], n = 0;
    for (int k = 0; k < SCRIPT_SYMS; k++) syms[k] = k;
    syms[SCRIPT_SYMS] = 99; /* "S099": imported below */
    for (int round = 0; round < 3; round++, n += SCRIPT_SYMS)
        pr_submit_wait(r, syms, SCRIPT_SYMS, (uint64_t)n, out + n);
    *at_export = pr_paging(r, 0);
    char name[16];
    for (int k = 0; k < SCRIPT_SYMS; k++) {
        snprintf(name, sizeof name, "S%03d", k);
        CHECK(sym_engine_export_symbol(r->g, name, states[k], &e) == 1, "export %s: %s", name, e.msg);
    }
    CHECK(!sym_engine_import_symbol(r->g, "S005", states[0], &e), "import into S005: %s", e.msg);
    CHECK(!sym_engine_import_symbol(r->g, "S099", states[1], &e), "import of S099: %s", e.msg);
    CHECK(!sym_engine_rebalance(r->g, 2, &e), "rebalance to 2: %s", e.msg);
    int where = sym_engine_symbol_shard(r->g, "S002");
    CHECK(!sym_engine_migrate(r->g, "S002", 1 - where, &e), "migrate S002: %s", e.msg);
    for (int round = 0; round < 3; round++, n += SCRIPT_SYMS + 1)
        pr_submit_wait(r, syms, SCRIPT_SYMS + 1, (uint64_t)n, out + n);
    for (int k = 0; k <= SCRIPT_SYMS; k++) {
        snprintf(name, sizeof name, "S%03d", syms[k]);
        CHECK(sym_engine_export_symbol(r->g, name, states[SCRIPT_SYMS + k], &e) == 1, "export %s: %s", name, e.msg);
    }
    return n;
}

static void slot_messages(void) {
    run a, b;
    if (start(&a, 64, 0, 128)) return;
    pr_mem_on = 1; /* b's buffers from its backends' host memory */
    if (start(&b, 4, 4096, 128)) return;
    size_t slot = sym_engine_slot_bytes(a.g);
    static sym_prediction ref[SCRIPT_N], small[SCRIPT_N];
    unsigned char *sa[2 * SCRIPT_SYMS + 1], *sb[2 * SCRIPT_SYMS + 1];
    for (int i = 0; i < 2 * SCRIPT_SYMS + 1; i++) sa[i] = calloc(1, slot), sb[i] = calloc(1, slot);
    sym_paging_stats pa, pb;
    int n = script(&a, ref, sa, &pa);
    script(&b, small, sb, &pb);
    pr_same("export, import, rebalance, migrate on 4 slots", ref, small, n, NULL);
    CHECK(pa.page_outs == 0 && pb.paged == SCRIPT_SYMS - 4 && pb.page_outs > 0,
          "before the exports: 64 slots paged %llu; 4 slots had %d paged out", (unsigned long long)pa.page_outs,
          pb.paged);
    int diff = 0;
    for (int i = 0; i < 2 * SCRIPT_SYMS + 1; i++) diff += memcmp(sa[i], sb[i], slot) != 0;
    CHECK(diff == 0, "%d of %d exported states differ", diff, 2 * SCRIPT_SYMS + 1);
    for (int i = 0; i < 2 * SCRIPT_SYMS + 1; i++) free(sa[i]), free(sb[i]);
    sym_engine_destroy(a.g);
    sym_engine_destroy(b.g);
    pr_mem_on = 0;
    /* the host tier's paged-out states, and the buffers of the exports,
     * imports and migration, all from the backend's host memory */
    CHECK(pr_mem_allocs > 4 && pr_mem_n == 0 && pr_mem_strays == 0,
          "the backend's host memory: %d buffers lent, %d not given back, %d frees of others'", pr_mem_allocs, pr_mem_n,
          pr_mem_strays);
    printf("the backend's host memory: %d buffers (host tier, exports, imports, a migration), all given back\n",
           pr_mem_allocs);
}

/* The buffers a symbol's state moves in come from the backends' host
 * memory (kernels/backend.h): the pool's, fixed before its first buffer,
 * and an engine's, on a tier-less engine where nothing else lends (one
 * buffer allocated at start, before any move). */
static void host_mem(void) {
    sym_slot_pool p;
    sym_slot_pool_init(&p);
    int before = pr_mem_allocs, b = sym_slot_pool_acquire(&p);
    CHECK(!sym_slot_pool_use(&p, &pr_mem) && sym_slot_pool_reserve(&p, b, 100) && pr_mem_allocs == before + 1 &&
              sym_slot_pool_use(&p, NULL) == -1,
          "a pool's memory: from the one given, and fixed once a buffer exists");
    sym_slot_pool_release(&p, b);
    sym_slot_pool_destroy(&p);
    run r;
    pr_mem_on = 1;
    before = pr_mem_allocs;
    if (!start(&r, 8, 0, 16)) {
        CHECK(pr_mem_allocs == before + 1, "the first move's buffer at start: %d allocated", pr_mem_allocs - before);
        int syms[4] = {0, 1, 2, 3};
        sym_prediction out[4];
        pr_submit_wait(&r, syms, 4, 0, out);
        unsigned char *st = malloc(sym_engine_slot_bytes(r.g));
        sym_err e;
        CHECK(st && sym_engine_export_symbol(r.g, "S001", st, &e) == 1 && !sym_engine_import_symbol(r.g, "S009", st, &e),
              "export and import: %s", e.msg);
        free(st);
        sym_engine_destroy(r.g);
    }
    pr_mem_on = 0;
    CHECK(pr_mem_allocs > before && pr_mem_n == 0 && pr_mem_strays == 0,
          "an engine's slot buffers: %d lent by the backend's host memory, %d not given back, %d frees of others'",
          pr_mem_allocs - before, pr_mem_n, pr_mem_strays);
}

/* A CPU backend of 2^20 slots holds memory only for the slots it uses: a
 * slot never written steps and exports from a reset state. */
static void lazy_cpu_slots(void) {
    sym_err e;
    sym_backend *b = sym_cpu_backend_create(&pr_weights, SYM_PREC_FP64, 1 << 20, &e);
    CHECK(b != NULL, "a CPU backend of 2^20 slots of %zu bytes: %s", b ? b->slot_bytes : 0, e.msg);
    if (!b) return;
    sym_backend *r = sym_cpu_backend_create(&pr_weights, SYM_PREC_FP64, 2, &e);
    unsigned char *x = malloc(b->slot_bytes), *y = malloc(b->slot_bytes);
    CHECK(r && x && y && !b->ops->export_slot(b, 1000000, x, &e) && !r->ops->reset_slot(r, 0, &e) &&
              !r->ops->export_slot(r, 0, y, &e) && !memcmp(x, y, b->slot_bytes),
          "a slot never used exports as reset");
    sym_request q = pr_request(1, 7);
    double o1[SYM_TOWERS], o2[SYM_TOWERS];
    int32_t s1 = 999999, s2 = 1;
    CHECK(!sym_backend_step(b, 1, &s1, q.features, o1, &e) && !sym_backend_step(r, 1, &s2, q.features, o2, &e) &&
              !memcmp(o1, o2, sizeof o1),
          "a step of a slot never used: %s", e.msg);
    free(x), free(y);
    sym_backend_destroy(r);
    sym_backend_destroy(b);
}

int main(int argc, char **argv) {
    if (argc != 2) return fprintf(stderr, "usage: test_paging MODEL_DIR\n"), 2;
    model_dir = argv[1];
    sym_err e;
    if (sym_weights_load_dir(&pr_weights, model_dir, &e)) return fprintf(stderr, "weights: %s\n", e.msg), 1;
    lazy_cpu_slots();
    host_mem();
    double rr = round_robin();
    zipf(rr);
    tier_full();
    slot_messages();
    CHECK(sym_thread_check_violations() == 0, "backend calls off the shard's thread: %s", sym_thread_check_report());
    sym_weights_free(&pr_weights);
    printf("%d failures\n", failures);
    return failures != 0;
}
