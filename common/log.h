/* One-line log messages on stderr with a wall-clock timestamp. Thread-safe
 * (one fprintf per line). SYM_LOG_LEVEL in the environment (debug, info,
 * warn, error) sets the threshold; info by default. */
#ifndef SYM_LOG_H
#define SYM_LOG_H

enum { SYM_LOG_DEBUG = 0, SYM_LOG_INFO = 1, SYM_LOG_WARN = 2, SYM_LOG_ERROR = 3 };

void sym_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sym_debug(...) sym_log(SYM_LOG_DEBUG, __VA_ARGS__)
#define sym_info(...) sym_log(SYM_LOG_INFO, __VA_ARGS__)
#define sym_warn(...) sym_log(SYM_LOG_WARN, __VA_ARGS__)
#define sym_error(...) sym_log(SYM_LOG_ERROR, __VA_ARGS__)

#endif
