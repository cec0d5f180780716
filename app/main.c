/* symserve: serves the four-tower recurrent ensemble over per-symbol request
 * streams. See README.md. */
#include <stdio.h>
#include <string.h>

#include "app/commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: symserve COMMAND [options]\n"
            "  predict   run a request CSV through the engine, write predictions CSV\n"
            "  play      competition client: connect to a scoring server and answer its requests\n"
            "  serve     the engine as a server: many clients send requests over the game protocol\n"
            "  shard     one shard in its own process, for a router's shards.endpoints (tcp:// or ipc://)\n"
            "  replay    scoring server stand-in: stream a trace or a Poisson load and score the answers\n"
            "  weights   write synthetic weights (MODEL.md's initialisation) as a model folder, or check one\n"
            "Run `symserve COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "predict")) return sym_cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "play")) return sym_cmd_play(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return sym_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "shard")) return sym_cmd_shard(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay")) return sym_cmd_replay(argc - 1, argv + 1);
    if (!strcmp(cmd, "weights")) return sym_cmd_convert(argc - 1, argv + 1);
    fprintf(stderr, "symserve: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
