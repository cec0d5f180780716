/* The store's insides, shared by its two files: store.c (files, symbols,
 * the hot path) and recover.c. Not a public header. */
#ifndef SYM_STATE_STORE_INTERNAL_H
#define SYM_STATE_STORE_INTERNAL_H

#include <ck_hs.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "state/store.h"
#include "state/wal.h"

/* A symbol the store has seen: name first, so that a name and an entry
 * both read as the string the hash set compares. */
typedef struct {
    char name[SYM_SYMBOL_MAX + 1];
    int32_t handle;
    uint64_t steps; /* answered steps: the symbol's step count */
} store_symbol;

struct sym_store {
    char dir[1024];
    uint64_t fingerprint;
    sym_fsync_policy fsync;
    int lock_fd, fd;     /* the directory's lock; the segment being written (-1: none yet) */
    uint64_t segment;    /* its number */
    sym_wal_buf buf;     /* records not yet written */
    uint64_t bytes;
    ck_hs_t names;       /* name -> store_symbol */
    store_symbol **syms; /* by handle */
    int32_t n_syms, cap_syms;
    /* the every_s flusher */
    pthread_t flusher;
    int flusher_on, flusher_stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int flush_errno; /* set by the flusher (under mu), reported by the next commit */
};

store_symbol *store_symbol_of(sym_store *s, const char *symbol);
int store_segment_path(const sym_store *s, uint64_t n, char *out, size_t cap);
/* The segment numbers in the directory, ascending. */
int store_list_segments(const sym_store *s, uint64_t **out, int *n, sym_err *e);
/* Starts segment s->segment + 1 (header written and synced). */
int store_open_segment(sym_store *s, sym_err *e);
/* Starts the every_s flusher when the policy asks for it. */
int store_start_flusher(sym_store *s, sym_err *e);

#endif
