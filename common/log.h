/* One-line log messages on stderr with a wall-clock timestamp. Thread-safe
 * (one fprintf per line). Messages below the threshold are dropped: info
 * by default; a command sets it once at start, from its config (`log.level`,
 * docs/CONFIG.md) or its command line (`replay --log-level`). */
#ifndef SYM_LOG_H
#define SYM_LOG_H

enum { SYM_LOG_DEBUG = 0, SYM_LOG_INFO = 1, SYM_LOG_WARN = 2, SYM_LOG_ERROR = 3 };

void sym_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The threshold: SYM_LOG_DEBUG..SYM_LOG_ERROR (a value outside is clamped). */
void sym_log_set_level(int level);
int sym_log_level(void);
/* "debug", "info", "warn" or "error": its level, or -1 for any other name. */
int sym_log_level_parse(const char *name);
/* The name of a level, "?" outside SYM_LOG_DEBUG..SYM_LOG_ERROR. */
const char *sym_log_level_name(int level);

#define sym_debug(...) sym_log(SYM_LOG_DEBUG, __VA_ARGS__)
#define sym_info(...) sym_log(SYM_LOG_INFO, __VA_ARGS__)
#define sym_warn(...) sym_log(SYM_LOG_WARN, __VA_ARGS__)
#define sym_error(...) sym_log(SYM_LOG_ERROR, __VA_ARGS__)

#endif
