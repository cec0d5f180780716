#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int threshold(void) {
    static int level = -1;
    if (level < 0) {
        const char *s = getenv("SYM_LOG_LEVEL");
        level = SYM_LOG_INFO;
        if (s && !strcmp(s, "debug")) level = SYM_LOG_DEBUG;
        if (s && !strcmp(s, "warn")) level = SYM_LOG_WARN;
        if (s && !strcmp(s, "error")) level = SYM_LOG_ERROR;
    }
    return level;
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
