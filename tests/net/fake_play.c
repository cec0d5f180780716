/* `symserve play` with the fake engine (fake_engine.h) instead of the model:
 * lets the replay server be tested end to end before / without the real
 * engine. usage: fake_play PORT [MAX_SYMBOLS [MAX_RECONNECTS]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/play.h"

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: fake_play PORT [MAX_SYMBOLS [MAX_RECONNECTS]]\n"), 2;
    sym_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_symbols = argc > 2 ? atoi(argv[2]) : 1024;
    sym_err e = {{0}};
    sym_engine *g = sym_engine_create(&cfg, &e);
    if (!g) return fprintf(stderr, "fake_play: %s\n", e.msg), 1;
    sym_play_opts o;
    sym_play_opts_default(&o);
    o.port = atoi(argv[1]);
    o.max_reconnects = argc > 3 ? atoi(argv[3]) : 0; /* default: exit when the server closes */
    sym_play_stats st;
    int rc = sym_play_run(g, &o, &st, &e);
    fprintf(stderr, "fake_play: %llu requests, %llu answered, %llu rejected, %llu bad messages\n",
            (unsigned long long)st.requests, (unsigned long long)st.answered, (unsigned long long)st.rejected,
            (unsigned long long)st.bad_messages);
    sym_engine_destroy(g);
    if (rc) fprintf(stderr, "fake_play: %s\n", e.msg);
    return rc ? 1 : 0;
}
