#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const names[] = {"debug", "info", "warn", "error"};

/* Set once at start, read by every thread that logs: a relaxed atomic is
 * enough (a message logged while it changes may go either way). */
static _Atomic int threshold = SYM_LOG_INFO;

void sym_log_set_level(int level) {
    if (level < SYM_LOG_DEBUG) level = SYM_LOG_DEBUG;
    if (level > SYM_LOG_ERROR) level = SYM_LOG_ERROR;
    atomic_store_explicit(&threshold, level, memory_order_relaxed);
}

int sym_log_level(void) { return atomic_load_explicit(&threshold, memory_order_relaxed); }

int sym_log_level_parse(const char *name) {
    for (int l = SYM_LOG_DEBUG; l <= SYM_LOG_ERROR; l++)
        if (!strcmp(name, names[l])) return l;
    return -1;
}

const char *sym_log_level_name(int level) {
    return level >= SYM_LOG_DEBUG && level <= SYM_LOG_ERROR ? names[level] : "?";
}

void sym_log(int level, const char *fmt, ...) {
    if (level < sym_log_level()) return;
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, sym_log_level_name(level));
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
