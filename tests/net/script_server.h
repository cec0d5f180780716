/* A scripted game server for tests of the play loop: it listens on
 * loopback, runs sym_play_run (with the fake engine, fake_engine.h) on a
 * thread against itself, sends lines and books what play says:
 *  - every line play writes must be valid under the strict reader and, for
 *    an `error`, carry exactly message_type, error and details (strings),
 *    as the seed's decoder requires; anything else is a test failure;
 *  - answers and per-row errors are counted by unique_id (details of a row
 *    error start "unique_id N:"), the rest as message errors;
 *  - every answer's step must be its symbol's previous step + 1 (the fake
 *    engine's pred[0] and slot pred[2]): a refused request that advanced a
 *    state shows as a gap (ss.state_gaps); a second answer of an id must
 *    repeat the first (a re-sent request: ss.reanswers). */
#ifndef SYM_TESTS_SCRIPT_SERVER_H
#define SYM_TESTS_SCRIPT_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "net/play.h"

#define SS_MAXU (1 << 17) /* ids booked by value; larger ones in other_ids */
/* ids SS_PROBE + k (k < SS_MAXU) are booked apart, in probe_count/pred: a
 * test's own requests, out of reach of mutated ids */
#define SS_PROBE 1000000000000000ull
#define SS_SLOTS 4096

typedef struct {
    int ans_count[SS_MAXU], err_count[SS_MAXU];
    double ans_pred[SS_MAXU][4];
    int probe_count[SS_MAXU];
    double probe_pred[SS_MAXU][4];
    long answers, row_errors; /* every answer and every error naming an id */
    long other_ids; /* answers or errors for other ids >= SS_MAXU */
    uint64_t big_uid; /* the last answered id >= SS_MAXU, exactly */
    int msg_errors, registers, heartbeats, responses, bad_lines, reanswers;
    long state_gaps;
    long slot_step[SS_SLOTS];
    char last_error[1024];
    /* plumbing */
    int fd, lfd, port;
    sym_engine *g;
    sym_play_opts po;
    sym_play_stats st;
    atomic_int stop;
    int play_rc;
} script_server;

extern script_server ss;

/* Listens, creates the fake engine (max_symbols) and opts with defaults
 * suited to tests; the caller may change ss.po, then calls ss_start. */
int ss_init(int max_symbols);
void ss_start(void);
/* Waits for play's connection (up to 5 s). */
void ss_accept(void);
/* Stops play, joins it, frees everything. */
void ss_finish(void);

void ss_send(const char *s, size_t n);
void ss_send_str(const char *s);
/* Reads what play says until cond(arg) or timeout_ms; returns cond(arg). */
int ss_pump(int (*cond)(long), long arg, int timeout_ms);

int ss_answered(long uid);
int ss_errored(long uid);
int ss_msg_errors_at_least(long n);
int ss_registered_times(long n);
int ss_heartbeats_at_least(long n);

#endif
