/* Placeholder until the replay command lands (owned by the net work). */
#include <stdio.h>

#include "app/commands.h"

int sym_cmd_replay(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "symserve replay: not built yet\n");
    return 1;
}
