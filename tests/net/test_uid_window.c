/* The sliding window of unique_ids (net/uid_window.h) and the map under it
 * (common/uid_map.h, deletion by backward shift): duplicates found within the
 * window, memory flat under millions of ids, ids in flight never
 * forgotten; the map against a plain array under random puts and deletes. */
#include <stdlib.h>
#include <string.h>

#include "net/uid_window.h"
#include "tests/check.h"

static void map_against_array(void) {
    enum { N = 4096 };
    static int32_t ref[N]; /* 0: absent, else value */
    sym_uid_map m;
    sym_uid_map_init(&m, 16);
    uint64_t x = 12345;
    int bad = 0;
    for (int it = 0; it < 200000; it++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t k = x % N;
        if ((x >> 32) % 3) {
            if (sym_uid_map_put(&m, k * 0x9e3779b97f4a7c15ull, (int32_t)(it + 1))) bad++;
            ref[k] = it + 1;
        } else {
            sym_uid_map_del(&m, k * 0x9e3779b97f4a7c15ull);
            ref[k] = 0;
        }
        if (it % 1000 == 0)
            for (uint64_t j = 0; j < N; j++) {
                int32_t *v = sym_uid_map_get(&m, j * 0x9e3779b97f4a7c15ull);
                if ((v ? *v : 0) != ref[j]) bad++;
            }
    }
    size_t n = 0;
    for (int j = 0; j < N; j++) n += ref[j] != 0;
    CHECKV(!bad && m.n == n, "the map equals a plain array over 200,000 random puts and deletes (%d mismatches)", bad);
    sym_uid_map_free(&m);
}

static sym_uid_entry *add(sym_uid_window *w, uint64_t id, int state) {
    sym_uid_entry *e = sym_uid_window_add(w, id);
    if (e) e->state = (uint8_t)state;
    return e;
}

int main(void) {
    map_against_array();

    sym_uid_window w;
    sym_uid_window_init(&w, 1000);
    int ok = 1;
    for (uint64_t id = 0; id < 3000000; id++) {
        if (sym_uid_window_get(&w, id)) ok = 0; /* new ids are not in it */
        if (!add(&w, id, SYM_UID_ANSWERED)) ok = 0;
        if (id >= 10 && !sym_uid_window_get(&w, id - 10)) ok = 0; /* recent ones are */
    }
    CHECKV(ok, "3,000,000 ids through a window of 1,000: each new one unseen, each recent one found");
    CHECKV(w.n == 1000 && w.map.n == 1000 && w.cap <= 4096 && w.map.cap <= 4096,
           "memory stays flat: %zu ids kept, map capacity %zu, ring %zu", w.n, w.map.cap, w.cap);
    CHECKV(!sym_uid_window_get(&w, 0) && sym_uid_window_get(&w, 2999000), "the oldest are forgotten, the last 1,000 kept");
    sym_uid_window_free(&w);

    /* an id in flight is never forgotten; the window grows past its size
     * (the ring too: entries keep their values across the move) until it
     * is answered */
    sym_uid_window_init(&w, 1000);
    sym_uid_entry *e = add(&w, 5, SYM_UID_IN_FLIGHT);
    e->conn = 7, e->digest = 99;
    for (uint64_t id = 100; id < 9000; id++) add(&w, id, SYM_UID_ANSWERED)->pred[0] = (double)id;
    e = sym_uid_window_get(&w, 5);
    CHECKV(e && e->state == SYM_UID_IN_FLIGHT && e->conn == 7 && e->digest == 99 && sym_uid_window_get(&w, 8000)->pred[0] == 8000,
           "an id in flight outlives 8,900 later ids, every entry intact through the ring's growth (%zu kept)", w.n);
    e->state = SYM_UID_ANSWERED;
    add(&w, 9000, SYM_UID_ANSWERED);
    CHECKV(!sym_uid_window_get(&w, 5) && w.n == 1000, "once answered it goes, and the window is back to its size (%zu)", w.n);

    /* a forgotten id leaves a hole the window skips */
    sym_uid_window_forget(&w, 8500);
    CHECKV(!sym_uid_window_get(&w, 8500) && sym_uid_window_get(&w, 8501), "a forgotten id is gone, its neighbours stay");
    for (uint64_t id = 10000; id < 12000; id++) add(&w, id, SYM_UID_ANSWERED);
    CHECKV(w.n == 1000 && w.map.n == 1000, "holes age out like the rest (%zu, %zu)", w.n, w.map.n);
    sym_uid_window_free(&w);

    uint64_t d1 = sym_uid_digest("SYM_1", (const float[]){1, 2}, 2), d2 = sym_uid_digest("SYM_1", (const float[]){1, 2.0000002f}, 2),
             d3 = sym_uid_digest("SYM_", (const float[]){1, 2}, 2);
    CHECKV(d1 == sym_uid_digest("SYM_1", (const float[]){1, 2}, 2) && d1 != d2 && d1 != d3,
           "the digest tells the same request from one ulp or one symbol byte apart");
    return failures != 0;
}
