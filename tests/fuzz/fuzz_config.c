/* libFuzzer target: configuration values, in memory only (no file is written).
 * The input is a config file: each line holding '=' becomes config_set(trimmed key, trimmed
 * value) on one config_init'd struct, then the same lines are offered to config_load_env as
 * an environment (only RAISE_<KEY>= entries count there). Checked besides the sanitizers: a
 * refusal always comes with a cause, success never does, and what was accepted is in range. */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 256

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static void check_ranges(const struct config *cfg)
{
    if (cfg->listen_host == NULL || cfg->listen_port < 0 || cfg->listen_port > 65535)
        abort();
    if (cfg->workers < 0 || cfg->db_pool_size < 1 || cfg->max_header_size < 1024 ||
        cfg->request_timeout < 1 || cfg->statement_timeout < 100 || cfg->stream_heartbeat < 1)
        abort();
    if (cfg->metrics != METRICS_LOCAL && cfg->metrics != METRICS_PUBLIC &&
        cfg->metrics != METRICS_OFF)
        abort();
    if ((cfg->database_url && !*cfg->database_url) || (cfg->port_file && !*cfg->port_file))
        abort(); /* an empty string value means "unset" */
}

static void set_lines(struct config *cfg, char *text)
{
    for (char *line = text, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *cause = NULL;
        int rc = config_set(cfg, trim(line), trim(eq + 1), &cause);
        if ((rc < 0) != (cause != NULL) || (rc != 0 && rc != -1))
            abort();
        free(cause);
        check_ranges(cfg);
    }
}

static void load_env(const char *text, size_t size)
{
    char *copy = malloc(size + 1), *envp[MAX_LINES + 1];
    size_t n = 0;
    if (copy == NULL)
        return;
    memcpy(copy, text, size + 1);
    for (char *line = copy, *next; line != NULL && n < MAX_LINES; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        envp[n++] = line;
    }
    envp[n] = NULL;

    struct config cfg;
    char *cause = NULL;
    config_init(&cfg);
    int rc = config_load_env(&cfg, envp, &cause);
    if ((rc < 0) != (cause != NULL))
        abort();
    free(cause);
    cause = NULL;
    check_ranges(&cfg);
    if (config_check_server(&cfg, &cause) < 0 && cause == NULL)
        abort();
    free(cause);
    config_clear(&cfg);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    load_env(text, size); /* before set_lines cuts text up */

    struct config cfg;
    config_init(&cfg);
    set_lines(&cfg, text);
    config_clear(&cfg);
    free(text);
    return 0;
}
