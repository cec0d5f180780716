/* Placeholder until the predict command lands (owned by the actors work). */
#include <stdio.h>

#include "app/commands.h"

int sym_cmd_predict(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "symserve predict: not built yet\n");
    return 1;
}
