/* Symbol name -> dense id (0..capacity-1), in order of first appearance.
 * The engine's front door interns each request's symbol here (under its
 * lock), which is where "more distinct symbols than capacity" is caught.
 * Open addressing; never shrinks. */
#ifndef SYM_SYMBOL_TABLE_H
#define SYM_SYMBOL_TABLE_H

#include "common/err.h"
#include "common/request.h"

typedef struct {
    int capacity, count;
    int n_buckets;                     /* power of two >= 2 * capacity */
    int *bucket;                       /* id + 1, 0: empty */
    char (*names)[SYM_SYMBOL_MAX + 1]; /* [capacity] */
} sym_symbol_table;

int sym_symbol_table_init(sym_symbol_table *t, int capacity, sym_err *e);
void sym_symbol_table_free(sym_symbol_table *t);

/* The id of name, adding it when new; -1 with e set when the table is full. */
int sym_symbol_table_intern(sym_symbol_table *t, const char *name, sym_err *e);

/* The id of name, or -1 when never interned. */
int sym_symbol_table_find(const sym_symbol_table *t, const char *name);

#endif
