#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Read once from the environment; threads may race to read it first, and
 * all of them compute the same value, so a relaxed atomic is enough. */
static int threshold(void) {
    static _Atomic int level = -1;
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l < 0) {
        const char *s = getenv("SYM_LOG_LEVEL");
        l = SYM_LOG_INFO;
        if (s && !strcmp(s, "debug")) l = SYM_LOG_DEBUG;
        if (s && !strcmp(s, "warn")) l = SYM_LOG_WARN;
        if (s && !strcmp(s, "error")) l = SYM_LOG_ERROR;
        atomic_store_explicit(&level, l, memory_order_relaxed);
    }
    return l;
}

void sym_log(int level, const char *fmt, ...) {
    if (level < threshold()) return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
