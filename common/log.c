#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static _Atomic int current_level = LOG_INFO;
static _Thread_local int worker_id;

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void log_set_level(enum log_level level)
{
    atomic_store(&current_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&current_level);
}

void log_set_worker(int id)
{
    worker_id = id;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&current_level))
        return;
    struct timeval tv;
    struct tm tm;
    char when[32], line[2048];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per line: stdio locks the stream, so lines from threads never interleave. */
    fprintf(stderr, "%s.%03ldZ %-5s w%d %s\n", when, (long)(tv.tv_usec / 1000), level_names[level],
            worker_id, line);
}
