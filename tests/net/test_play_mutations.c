/* play under 20,000 mutated request lines (the scripted server of
 * script_server.h, the fake engine): each mutated line is followed by a
 * probe request, and play must
 *  - never crash, and write only lines the seed's decoder reads;
 *  - answer every line: each row of it answered or refused with an error
 *    naming its unique_id, or the whole line refused with one error;
 *  - advance no state for anything refused: every answer's step is its
 *    symbol's previous step + 1 (script_server books gaps), and the probe
 *    symbol's answers stay exact (its running feature sum) all along. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "tests/net/script_server.h"

#define F 79
#define CASES 20000

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static char line[16384];

/* A valid request of `rows` rows with ids from *uid on. */
static size_t valid_line(int rows, long *uid) {
    size_t l = (size_t)snprintf(line, sizeof line, "{\"message_type\":\"inference_request\",\"unique_ids\":[");
    for (int k = 0; k < rows; k++) l += (size_t)snprintf(line + l, sizeof line - l, "%s%ld", k ? "," : "", (*uid)++);
    l += (size_t)snprintf(line + l, sizeof line - l, "],\"symbols\":[");
    for (int k = 0; k < rows; k++) l += (size_t)snprintf(line + l, sizeof line - l, "%s\"SYM_%03d\"", k ? "," : "", (int)(next() % 8));
    l += (size_t)snprintf(line + l, sizeof line - l, "],\"features\":[");
    for (int k = 0; k < rows; k++) {
        l += (size_t)snprintf(line + l, sizeof line - l, "%s[", k ? "," : "");
        for (int i = 0; i < F; i++)
            l += (size_t)snprintf(line + l, sizeof line - l, "%s%.6g", i ? "," : "", (double)(int64_t)(next() % 2001 - 1000) / 317);
        line[l++] = ']';
    }
    l += (size_t)snprintf(line + l, sizeof line - l, "],\"timestamp\":1.5}");
    return l;
}

static void mutate(size_t *l) {
    static const char alphabet[] = "{}[]\",:0123456789.eE+-\\u \tnNaIx\x01\x7f\xc3\xa9\x80";
    for (int k = 0; k < 1 + (int)(next() % 3); k++) {
        size_t at = (size_t)(next() % *l);
        char c = alphabet[next() % (sizeof alphabet - 1)];
        if (next() % 8 == 0) c = '\0'; /* a raw NUL now and then */
        int op = (int)(next() % 3);
        if (op == 0) line[at] = c;
        else if (op == 1 && *l + 2 < sizeof line) memmove(line + at + 1, line + at, *l - at), line[at] = c, (*l)++;
        else if (*l > 1) memmove(line + at, line + at + 1, *l - at - 1), (*l)--;
    }
}

static int probe_answered(long k) { return ss.probe_count[k] > 0; }

int main(void) {
    if (ss_init(4096)) return 1;
    ss_start();
    ss_accept();
    CHECKV(ss.fd >= 0 && ss_pump(ss_registered_times, 1, 5000), "play connects and registers");
    long uid = 1, probe_steps = 0, silent = 0;
    double probe_sum = 0;
    int answered_rows = 0, refused_rows = 0, refused_lines = 0;
    char probe[4096];
    for (int c = 0; c < CASES && !failures; c++) {
        long first = uid;
        size_t l = valid_line(1 + (int)(next() % 3), &uid);
        mutate(&l);
        line[l++] = '\n';
        int me = ss.msg_errors;
        long said0 = ss.answers + ss.row_errors;
        ss_send(line, l);
        /* the probe: a valid request of its own symbol and id range */
        double x = (double)(int64_t)(next() % 1000) / 8;
        size_t pl = (size_t)snprintf(probe, sizeof probe,
                                     "{\"message_type\":\"inference_request\",\"unique_ids\":[%llu],\"symbols\":[\"PROBE\"],"
                                     "\"features\":[[%.17g",
                                     (unsigned long long)(SS_PROBE + (uint64_t)c), x);
        for (int i = 1; i < F; i++) pl += (size_t)snprintf(probe + pl, sizeof probe - pl, ",0");
        snprintf(probe + pl, sizeof probe - pl, "]]}\n");
        ss_send_str(probe);
        if (!ss_pump(probe_answered, c, 5000)) {
            CHECK(0, "case %d: the probe was not answered", c);
            break;
        }
        probe_steps++, probe_sum += x;
        CHECK(ss.probe_count[c] == 1 && ss.probe_pred[c][0] == (double)probe_steps && ss.probe_pred[c][1] == probe_sum,
              "case %d: the probe's state is off (step %g of %ld)", c, ss.probe_pred[c][0], probe_steps);
        /* the line's own ids answered or refused at most once, and something said */
        for (long u = first; u < uid; u++)
            CHECK(ss.ans_count[u] + ss.err_count[u] <= 1, "case %d: unique_id %ld answered %d times, refused %d times", c, u,
                  ss.ans_count[u], ss.err_count[u]);
        long said = ss.answers + ss.row_errors - said0 - 1 + (ss.msg_errors - me); /* less the probe's answer */
        refused_lines += ss.msg_errors - me;
        if (!said) {
            silent++;
            if (silent <= 3) printf("silent: %.*s\n", (int)l - 1, line);
        }
    }
    for (long u = 1; u < uid && u < SS_MAXU; u++) answered_rows += ss.ans_count[u], refused_rows += ss.err_count[u];
    CHECKV(silent == 0, "every mutated line drew an answer or an error (%ld silent)", silent);
    CHECKV(ss.state_gaps == 0, "no refused line or row advanced a state (%ld gaps)", ss.state_gaps);
    CHECKV(ss.bad_lines == 0, "every line play wrote is one the seed reads (%d not)", ss.bad_lines);
    printf("%d mutated lines: %d rows answered, %d rows refused, %d refusals of a line or an id-less row; probe at step %ld\n",
           CASES, answered_rows, refused_rows, refused_lines, probe_steps);
    CHECKV(probe_steps == CASES && answered_rows > 0 && refused_lines > 0, "all %d cases ran, with both outcomes", CASES);
    ss_finish();
    CHECKV(ss.play_rc == 0, "play stops cleanly");
    return failures != 0;
}
