/* The scoring server's stand-in (symserve replay): listens, waits for a
 * client's `register`, streams a request stream on its schedule, scores every
 * response (net/score.h) and answers each response with a score_update.
 *
 * One thread, one poll() over the listening socket, the client and the
 * connections that have not registered yet. The first connection to
 * register is the client; the others are closed then, and any that does
 * not register in time (or sends more than a register line's worth) is
 * closed anyway, so a silent connection never locks the client out.
 * A client that goes away may connect again (it must register again): the
 * stream goes on; requests not yet written whole go to the next
 * connection. Requests written to the lost connection and not answered
 * stay unanswered, or, with `resend`, go again to the next connection, in
 * stream order, ahead of the rows not yet sent; their latency then runs
 * from that last send (the client cannot answer a send it never got).
 * `drop_after` is a test switch: it cuts the connection (a reset) once,
 * right after the message holding the N-th request written is handed to
 * the kernel, whatever is in flight either way.
 *
 * A request is sent, and its latency clock starts, when the last byte of
 * its line is handed to the kernel (send() returned it), not when it was
 * queued: replay's own backlog is not the client's latency. While the
 * client leaves 1 MiB of our output unread, due requests wait in the
 * stream; a client that leaves 16 MiB unread (replies to its own flood) is
 * disconnected.
 *
 * With `connect_host`, replay is a client instead (of symserve serve,
 * net/serve.h): it connects, sends no register and waits for none, and
 * streams, scores and answers with score_updates the same way. The one
 * connection is the run: when it is lost, the run ends (1). */
#ifndef SYM_NET_REPLAY_H
#define SYM_NET_REPLAY_H

#include <stdint.h>

#include "common/err.h"
#include "net/score.h"

/* The stream: rows in send order, each due at due_ns after the register. */
typedef struct {
    int n, n_features;
    uint64_t *uids;
    const char **symbols;
    const float **features;
    uint64_t *due_ns;
    /* owned storage */
    void *csv;   /* sym_request_file of a CSV stream */
    char *names; /* symbol names of a Poisson stream */
    float *feat; /* features of a Poisson stream */
} sym_stream;

/* From a trace / request CSV; gaps are delay_ms / speed (speed 0: no gaps). */
int sym_stream_from_csv(sym_stream *s, const char *path, double speed, sym_err *e);
/* Poisson arrivals at rate req/s for duration_s over symbols SYM_000..,
 * features standard normal (deterministic in seed). */
int sym_stream_poisson(sym_stream *s, double rate, int n_symbols, double duration_s, int n_features, uint64_t seed,
                       sym_err *e);
void sym_stream_free(sym_stream *s);

typedef struct {
    const char *host; /* 127.0.0.1 */
    int port;         /* 0: any free port */
    int batch_rows;   /* rows per inference_request at most (rows due together are grouped) */
    double timeout_s; /* waiting for a client, and for answers after the last send */
    int inject_bad;   /* send malformed lines first; each should get an `error` back */
    double register_timeout_s; /* a connection not registered by then is closed (0: 10 s) */
    int resend;       /* requests sent to a lost client and not answered go again to the next
                       * (sym_score_allow_reanswers makes its repeated answers re-answers) */
    long long drop_after; /* > 0: reset the client once, after this many requests written (re-sends count) */
    void (*on_listen)(int port); /* told the bound port (e.g. to print it) */
    const char *connect_host;    /* non-NULL: connect to connect_host:connect_port instead of listening */
    int connect_port;
} sym_replay_opts;

/* Bad lines sent by inject_bad, each expected to draw exactly one `error`. */
int sym_replay_bad_line_count(void);

/* Runs the stream against one client (one at a time: it may reconnect).
 * 0 when every request was answered (and, with inject_bad, every bad line
 * drew an error); 1 on timeout; -1 with e on a failure. The score is
 * filled either way: invalid answers, non-integer ids and bad messages are
 * counted there, never as answers. */
int sym_replay_run(const sym_replay_opts *o, const sym_stream *st, sym_score *score, sym_err *e);

#endif
