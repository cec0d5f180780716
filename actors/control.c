#include "actors/control.h"

#include <stdio.h>

void sym_control_init(sym_control *c) {
    *c = (sym_control){0};
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

void sym_control_destroy(sym_control *c) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

uint64_t sym_control_token(sym_control *c) {
    pthread_mutex_lock(&c->mu);
    uint64_t t = ++c->next;
    pthread_mutex_unlock(&c->mu);
    return t;
}

void sym_control_answer(sym_control *c, uint64_t token, int rc, const char *err) {
    pthread_mutex_lock(&c->mu);
    c->done = token;
    c->rc = rc;
    snprintf(c->err, sizeof c->err, "%s", err ? err : "");
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int sym_control_wait(sym_control *c, uint64_t token, sym_err *e) {
    pthread_mutex_lock(&c->mu);
    while (c->done != token) pthread_cond_wait(&c->cv, &c->mu);
    int rc = c->rc;
    if (rc < 0) sym_fail(e, "%s", c->err);
    pthread_mutex_unlock(&c->mu);
    return rc;
}
