/* play, serve and shard in a build without the engine (sym_actors or
 * sym_config missing: their dependencies were not found): each says so. */
#include <stdio.h>

#include "app/commands.h"

static int no_engine(const char *cmd) {
    fprintf(stderr, "symserve %s: this build has no engine (targets sym_actors and sym_config were not built)\n", cmd);
    return 1;
}

int sym_cmd_play(int argc, char **argv) {
    (void)argc, (void)argv;
    return no_engine("play");
}

int sym_cmd_serve(int argc, char **argv) {
    (void)argc, (void)argv;
    return no_engine("serve");
}

int sym_cmd_shard(int argc, char **argv) {
    (void)argc, (void)argv;
    return no_engine("shard");
}
