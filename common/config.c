#include "config.h"

#include "raise_limits.h"
#include "log.h"
#include "xmalloc.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum key_type { KEY_STRING, KEY_INT, KEY_LISTEN, KEY_LOG_LEVEL, KEY_METRICS };

struct config_key {
    const char *name;
    enum key_type type;
    size_t offset;
    long min, max;
    const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct config_key keys[] = {
    {"listen", KEY_LISTEN, 0, 0, 0, "host:port to listen on (port 0: kernel picks)"},
    {"database_url", KEY_STRING, OFF(database_url), 0, 0, "libpq conninfo or URI"},
    {"tls_cert", KEY_STRING, OFF(tls_cert), 0, 0, "server certificate chain (PEM)"},
    {"tls_key", KEY_STRING, OFF(tls_key), 0, 0, "server private key (PEM)"},
    {"tls_client_ca", KEY_STRING, OFF(tls_client_ca), 0, 0, "CA for client certificates"},
    {"workers", KEY_INT, OFF(workers), 0, LIMIT_WORKERS_MAX, "worker threads (0 = CPUs)"},
    {"db_pool_size", KEY_INT, OFF(db_pool_size), 1, 64, "database connections per worker"},
    {"log_level", KEY_LOG_LEVEL, OFF(log_level), 0, 0, "debug, info, warn or error"},
    {"port_file", KEY_STRING, OFF(port_file), 0, 0, "write the bound port here"},
    {"max_connections", KEY_INT, OFF(max_connections), 1, 1000000, "open connections"},
    {"max_header_size", KEY_INT, OFF(max_header_size), 1024, 1024 * 1024, "bytes of headers"},
    {"max_body_size", KEY_INT, OFF(max_body_size), 1024, 64 * 1024 * 1024, "bytes of body"},
    {"request_timeout", KEY_INT, OFF(request_timeout), 1, 3600, "seconds, read/write/idle"},
    {"shutdown_timeout", KEY_INT, OFF(shutdown_timeout), 0, 600, "seconds to drain on stop"},
    {"statement_timeout", KEY_INT, OFF(statement_timeout), 100, 600000, "ms per statement"},
    {"db_queue_size", KEY_INT, OFF(db_queue_size), 1, 1000000, "queued queries per worker"},
    {"db_queue_wait", KEY_INT, OFF(db_queue_wait), 10, 600000, "ms a query may queue"},
    {"metrics", KEY_METRICS, OFF(metrics), 0, 0, "/metrics: local, public or off"},
    {"stream_heartbeat", KEY_INT, OFF(stream_heartbeat), 1, 300,
     "seconds between live-stream heartbeats and credential checks"},
    {"stream_stall_timeout", KEY_INT, OFF(stream_stall_timeout), 1000, 600000,
     "ms a stalled live stream may go without reading 48 KiB before it is cut off"},
    {"overdue_check", KEY_INT, OFF(overdue_check), 1, 3600,
     "seconds between checks for actions that have become overdue"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = xstrdup("127.0.0.1");
    cfg->listen_port = 8443;
    cfg->db_pool_size = LIMIT_DB_POOL_DEFAULT;
    cfg->log_level = LOG_INFO;
    cfg->max_connections = LIMIT_CONNECTIONS_DEFAULT;
    cfg->max_header_size = LIMIT_HEADER_SIZE_DEFAULT;
    cfg->max_body_size = LIMIT_BODY_SIZE_DEFAULT;
    cfg->request_timeout = LIMIT_REQUEST_TIMEOUT_S;
    cfg->shutdown_timeout = LIMIT_SHUTDOWN_TIMEOUT_S;
    cfg->statement_timeout = LIMIT_STATEMENT_TIMEOUT_MS;
    cfg->db_queue_size = LIMIT_DB_QUEUE_DEFAULT;
    cfg->db_queue_wait = LIMIT_DB_QUEUE_WAIT_MS;
    cfg->metrics = METRICS_LOCAL;
    cfg->stream_heartbeat = LIMIT_SSE_HEARTBEAT_S;
    cfg->stream_stall_timeout = LIMIT_SSE_STALL_MS;
    cfg->overdue_check = LIMIT_OVERDUE_CHECK_S;
}

void config_clear(struct config *cfg)
{
    free(cfg->listen_host);
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].type == KEY_STRING)
            free(*(char **)((char *)cfg + keys[i].offset));
    memset(cfg, 0, sizeof(*cfg));
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_listen(struct config *cfg, const char *value)
{
    const char *colon = strrchr(value, ':');
    long port;
    if (colon == NULL || colon == value || parse_long(colon + 1, 0, 65535, &port) < 0)
        return -1;
    const char *host = value;
    size_t hlen = (size_t)(colon - value);
    if (host[0] == '[') { /* [::1]:8443 */
        if (hlen < 3 || host[hlen - 1] != ']')
            return -1;
        host++;
        hlen -= 2;
    }
    free(cfg->listen_host);
    cfg->listen_host = xstrndup(host, hlen);
    cfg->listen_port = (int)port;
    return 0;
}

static int set_value(struct config *cfg, const struct config_key *k, const char *value,
                     char **cause)
{
    void *field = (char *)cfg + k->offset;
    long n;
    int v;
    switch (k->type) {
    case KEY_STRING:
        free(*(char **)field);
        *(char **)field = value[0] == '\0' ? NULL : xstrdup(value);
        return 0;
    case KEY_INT:
        if (parse_long(value, k->min, k->max, &n) < 0) {
            *cause = xasprintf("config: %s: expected an integer from %ld to %ld, got '%s'", k->name,
                               k->min, k->max, value);
            return -1;
        }
        *(int *)field = (int)n;
        return 0;
    case KEY_LISTEN:
        if (parse_listen(cfg, value) < 0) {
            *cause = xasprintf("config: listen: expected host:port with a port from 0 to "
                               "65535, got '%s'",
                               value);
            return -1;
        }
        return 0;
    case KEY_LOG_LEVEL:
        if ((v = log_level_parse(value)) < 0) {
            *cause = xasprintf("config: log_level: expected debug, info, warn or error, "
                               "got '%s'",
                               value);
            return -1;
        }
        *(int *)field = v;
        return 0;
    case KEY_METRICS:
        if (strcmp(value, "local") == 0)
            v = METRICS_LOCAL;
        else if (strcmp(value, "public") == 0)
            v = METRICS_PUBLIC;
        else if (strcmp(value, "off") == 0)
            v = METRICS_OFF;
        else {
            *cause = xasprintf("config: metrics: expected local, public or off, got '%s'", value);
            return -1;
        }
        *(int *)field = v;
        return 0;
    }
    return -1;
}

int config_set(struct config *cfg, const char *key, const char *value, char **cause)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, key) == 0)
            return set_value(cfg, &keys[i], value, cause);
    *cause = xasprintf("config: unknown key '%s'", key);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Strip one pair of matching quotes, so `key = "a value"` works. */
static char *unquote(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s[n - 1] = '\0';
        return s + 1;
    }
    return s;
}

static int load_line(struct config *cfg, char *line, const char *path, int lineno, char **cause)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#' || *s == ';')
        return 0;
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        *cause = xasprintf("config: %s:%d: expected 'key = value'", path, lineno);
        return -1;
    }
    *eq = '\0';
    char *key = trim(s), *value = unquote(trim(eq + 1)), *why = NULL;
    if (config_set(cfg, key, value, &why) < 0) {
        *cause = xasprintf("%s (%s:%d)", why, path, lineno);
        free(why);
        return -1;
    }
    return 0;
}

int config_load_file(struct config *cfg, const char *path, char **cause)
{
    if (path == NULL)
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        *cause = xasprintf("config: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(buf, sizeof(buf), f) != NULL) {
        lineno++;
        if (strchr(buf, '\n') == NULL && !feof(f)) {
            *cause = xasprintf("config: %s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        rc = load_line(cfg, buf, path, lineno, cause);
    }
    fclose(f);
    return rc;
}

int config_load_env(struct config *cfg, char *const *envp, char **cause)
{
    char name[64];
    for (size_t i = 0; i < NKEYS; i++) {
        size_t n = (size_t)snprintf(name, sizeof(name), "RAISE_%s=", keys[i].name);
        for (size_t j = 6; j < n - 1; j++)
            name[j] = (char)toupper((unsigned char)name[j]);
        for (char *const *e = envp; e != NULL && *e != NULL; e++) {
            if (strncmp(*e, name, n) != 0)
                continue;
            char *why = NULL;
            if (set_value(cfg, &keys[i], *e + n, &why) < 0) {
                *cause = xasprintf("%s (environment %.*s)", why, (int)(n - 1), name);
                free(why);
                return -1;
            }
        }
    }
    return 0;
}

int config_load(struct config *cfg, const char *path, char *const *envp, char **cause)
{
    if (config_load_file(cfg, path, cause) < 0)
        return -1;
    return config_load_env(cfg, envp, cause);
}

int config_check_server(const struct config *cfg, char **cause)
{
    if (cfg->database_url == NULL)
        *cause = xstrdup("config: database_url: required");
    else if (cfg->tls_cert == NULL)
        *cause = xstrdup("config: tls_cert: required (the server speaks HTTPS only)");
    else if (cfg->tls_key == NULL)
        *cause = xstrdup("config: tls_key: required (the server speaks HTTPS only)");
    else
        return 0;
    return -1;
}

const char *config_key_name(int i, const char **help)
{
    if (i < 0 || (size_t)i >= NKEYS)
        return NULL;
    if (help != NULL)
        *help = keys[i].help;
    return keys[i].name;
}
