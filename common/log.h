/* One logger: level, ISO time, worker id, then the message. Never log secrets or case content. */
#ifndef RAISE_LOG_H
#define RAISE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Parse "debug" | "info" | "warn" | "error"; -1 if unknown. */
int log_level_parse(const char *name);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Worker id for lines written by this thread (0 = main). */
void log_set_worker(int id);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
