/* sharding/: the placement hash is stable and spreads symbols evenly, a
 * shard-count change moves only about the share it must, overrides win, and
 * the symbol and slot tables hand out and take back ids and slots. */
#include <stdio.h>
#include <string.h>

#include "sharding/hash.h"
#include "sharding/shard_map.h"
#include "sharding/slot_table.h"
#include "sharding/symbol_table.h"
#include "tests/check.h"


#define N 10000

int main(void) {
    sym_err e;
    /* stable: a fixed name and seed always give the same key and shard */
    CHECK(sym_hash_symbol("SYM_000", 0) == sym_hash_symbol("SYM_000", 0), "hash not deterministic");
    CHECK(sym_hash_symbol("SYM_000", 0) != sym_hash_symbol("SYM_000", 1), "seed ignored");
    CHECK(sym_hash_symbol("SYM_000", 0) != sym_hash_symbol("SYM_001", 0), "names collide");

    sym_shard_map m;
    CHECK(!sym_shard_map_init(&m, N, 4, 7, &e), "init: %s", e.msg);
    char name[32];
    int count[8] = {0};
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "SYM_%05d", i);
        sym_shard_map_add(&m, i, name);
        count[sym_shard_map_owner(&m, i)]++;
    }
    for (int s = 0; s < 4; s++) CHECK(count[s] > N / 4 * 0.9 && count[s] < N / 4 * 1.1, "shard %d has %d of %d", s, count[s], N);

    /* N -> N+1 moves ~1/(N+1), only onto the new shard; N -> N-1 moves only the removed shard's */
    int moved = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        int a = sym_shard_map_hash_owner(&m, i, 4), b = sym_shard_map_hash_owner(&m, i, 5);
        if (a != b) moved++, wrong += b != 4;
    }
    CHECK(wrong == 0 && moved > N / 5 * 0.9 && moved < N / 5 * 1.1, "4->5 moved %d (%d not to the new shard)", moved, wrong);
    moved = wrong = 0;
    for (int i = 0; i < N; i++) {
        int a = sym_shard_map_hash_owner(&m, i, 4), b = sym_shard_map_hash_owner(&m, i, 3);
        if (a != b) moved++, wrong += a != 3;
    }
    CHECK(wrong == 0 && moved == count[3], "4->3 moved %d (%d not from the removed shard)", moved, wrong);
    moved = 0;
    for (int i = 0; i < N; i++) moved += sym_shard_map_hash_owner(&m, i, 3) != sym_shard_map_hash_owner(&m, i, 5);
    CHECK(moved < N / 2, "3->5 moved %d of %d", moved, N);

    /* overrides win, and are cleared */
    int own = sym_shard_map_owner(&m, 0);
    sym_shard_map_set_override(&m, 0, (own + 1) % 4);
    CHECK(sym_shard_map_owner(&m, 0) == (own + 1) % 4, "override ignored");
    sym_shard_map_clear_overrides(&m);
    CHECK(sym_shard_map_owner(&m, 0) == own, "override not cleared");
    sym_shard_map_free(&m);

    /* symbol table: dense ids in order, capacity enforced */
    sym_symbol_table t;
    CHECK(!sym_symbol_table_init(&t, 3, &e), "init");
    CHECK(sym_symbol_table_intern(&t, "A", &e) == 0 && sym_symbol_table_intern(&t, "B", &e) == 1, "ids");
    CHECK(sym_symbol_table_intern(&t, "A", &e) == 0, "A again");
    CHECK(sym_symbol_table_intern(&t, "C", &e) == 2, "C");
    CHECK(sym_symbol_table_intern(&t, "D", &e) == -1 && strstr(e.msg, "max_symbols"), "capacity: %s", e.msg);
    CHECK(sym_symbol_table_find(&t, "B") == 1 && sym_symbol_table_find(&t, "D") == -1, "find");
    sym_symbol_table_free(&t);

    /* many names, of every length up to the limit: ids in order of first
     * appearance, each found again, the one past capacity refused and not
     * added, a name longer than the limit refused */
    CHECK(!sym_symbol_table_init(&t, N, &e), "init %d", N);
    char big[SYM_SYMBOL_MAX + 2];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int len = snprintf(name, sizeof name, "S%d_", i);
        memset(big, 'a' + i % 26, sizeof big);
        memcpy(big, name, (size_t)len);
        big[len + i % (SYM_SYMBOL_MAX - len + 1)] = 0;
        bad += sym_symbol_table_intern(&t, big, &e) != i;
    }
    for (int i = 0; i < N; i++) {
        int len = snprintf(name, sizeof name, "S%d_", i);
        memset(big, 'a' + i % 26, sizeof big);
        memcpy(big, name, (size_t)len);
        big[len + i % (SYM_SYMBOL_MAX - len + 1)] = 0;
        bad += sym_symbol_table_find(&t, big) != i || sym_symbol_table_intern(&t, big, &e) != i;
    }
    CHECK(bad == 0, "%d of %d names did not keep their id", bad, N);
    CHECK(sym_symbol_table_intern(&t, "ONE_TOO_MANY", &e) == -1 && strstr(e.msg, "max_symbols"), "capacity %d: %s", N, e.msg);
    CHECK(sym_symbol_table_find(&t, "ONE_TOO_MANY") == -1, "a refused name was added");
    memset(big, 'x', sizeof big);
    big[SYM_SYMBOL_MAX + 1] = 0;
    CHECK(sym_symbol_table_intern(&t, big, &e) == -1 && strstr(e.msg, "longer"), "a %d-byte name: %s", SYM_SYMBOL_MAX + 1, e.msg);
    sym_symbol_table_free(&t);

    /* slot table: allocation, reuse, exhaustion */
    sym_slot_table s;
    int fresh;
    CHECK(!sym_slot_table_init(&s, 10, 2, &e), "init");
    CHECK(sym_slot_table_alloc(&s, 5, &fresh) == 0 && fresh, "first slot");
    CHECK(sym_slot_table_alloc(&s, 5, &fresh) == 0 && !fresh, "same id, same slot");
    CHECK(sym_slot_table_alloc(&s, 7, &fresh) == 1 && fresh, "second slot");
    CHECK(sym_slot_table_alloc(&s, 8, &fresh) == -1, "third slot of 2");
    sym_slot_table_release(&s, 5);
    CHECK(sym_slot_table_lookup(&s, 5) == -1, "released");
    CHECK(sym_slot_table_alloc(&s, 8, &fresh) == 0 && fresh, "reused slot");
    sym_slot_table_free(&s);

    /* recency: the least recently used idle symbol, busy ones skipped */
    int busy[10] = {0};
    CHECK(!sym_slot_table_init(&s, 10, 3, &e), "init");
    CHECK(sym_slot_table_lru_idle(&s, busy) == -1, "an empty table has no symbol to give up");
    for (int id = 1; id <= 3; id++) sym_slot_table_touch(&s, sym_slot_table_alloc(&s, id, &fresh), (uint64_t)(10 + id));
    CHECK(sym_slot_table_full(&s), "3 of 3 slots taken");
    CHECK(sym_slot_table_lru_idle(&s, busy) == 1, "least recent: %d", sym_slot_table_lru_idle(&s, busy));
    sym_slot_table_touch(&s, sym_slot_table_lookup(&s, 1), 20);
    CHECK(sym_slot_table_lru_idle(&s, busy) == 2, "after 1 stepped: %d", sym_slot_table_lru_idle(&s, busy));
    busy[2] = 1;
    CHECK(sym_slot_table_lru_idle(&s, busy) == 3, "2 busy: %d", sym_slot_table_lru_idle(&s, busy));
    busy[1] = busy[3] = 1;
    CHECK(sym_slot_table_lru_idle(&s, busy) == -1, "all busy: %d", sym_slot_table_lru_idle(&s, busy));
    busy[1] = 0;
    sym_slot_table_release(&s, 1);
    CHECK(sym_slot_table_lru_idle(&s, busy) == -1 && !sym_slot_table_full(&s), "1 released: no idle symbol holds a slot");
    sym_slot_table_free(&s);
    printf("%d failures\n", failures);
    return failures != 0;
}
