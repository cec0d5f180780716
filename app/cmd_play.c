/* Placeholder until the play command lands (owned by the net work). */
#include <stdio.h>

#include "app/commands.h"

int sym_cmd_play(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "symserve play: not built yet\n");
    return 1;
}
