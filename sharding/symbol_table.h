/* Symbol name -> dense id (0..capacity-1), in order of first appearance.
 * The engine's front door interns each request's symbol here (under its
 * lock), which is where "more distinct symbols than capacity" is caught.
 * Names live in one array indexed by id; a concurrencykit hash set (ck_hs)
 * of pointers into it finds a name's id. Never shrinks. */
#ifndef SYM_SYMBOL_TABLE_H
#define SYM_SYMBOL_TABLE_H

#include <ck_hs.h>

#include "common/err.h"
#include "common/request.h"

typedef struct {
    int capacity, count;
    char (*names)[SYM_SYMBOL_MAX + 1]; /* [capacity] */
    ck_hs_t set;                       /* of names[0..count-1] */
    int have_set;
} sym_symbol_table;

int sym_symbol_table_init(sym_symbol_table *t, int capacity, sym_err *e);
void sym_symbol_table_free(sym_symbol_table *t);

/* The id of name, adding it when new; -1 with e set when the table is full
 * (or memory runs out). */
int sym_symbol_table_intern(sym_symbol_table *t, const char *name, sym_err *e);

/* The id of name, or -1 when never interned. */
int sym_symbol_table_find(sym_symbol_table *t, const char *name);

#endif
