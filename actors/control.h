/* The answer to a blocking control call (migrate, rebalance): the caller
 * sends the router a message carrying a fresh token and waits here; the
 * router answers that token once the work is done. One call at a time
 * (the engine serialises them). */
#ifndef SYM_CONTROL_H
#define SYM_CONTROL_H

#include <pthread.h>
#include <stdint.h>

#include "common/err.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next, done;
    int rc;
    char err[512];
} sym_control;

void sym_control_init(sym_control *c);
void sym_control_destroy(sym_control *c);

/* A token for the next call's message. */
uint64_t sym_control_token(sym_control *c);
/* The router's side: token's call finished with rc (>= 0, or -1 with err). */
void sym_control_answer(sym_control *c, uint64_t token, int rc, const char *err);
/* The caller's side: waits for token's answer; returns its rc (err in e
 * when it is -1). */
int sym_control_wait(sym_control *c, uint64_t token, sym_err *e);

#endif
