/* raised configuration: INI-style `key = value` file, then RAISE_<KEY> environment (wins).
 * One table in config.c lists every key; adding a key is one line there. */
#ifndef RAISE_CONFIG_H
#define RAISE_CONFIG_H

enum metrics_access { METRICS_LOCAL, METRICS_PUBLIC, METRICS_OFF };

struct config {
    char *listen_host; /* owned; from `listen` */
    int listen_port;
    char *database_url;  /* owned */
    char *tls_cert;      /* owned */
    char *tls_key;       /* owned */
    char *tls_client_ca; /* owned; NULL = no client certificates */
    int workers;         /* 0 = CPU count (resolved by the server) */
    int db_pool_size;
    int log_level;   /* enum log_level */
    char *port_file; /* owned; NULL = none */
    int max_connections;
    int max_header_size;
    int max_body_size;
    int request_timeout;   /* seconds */
    int shutdown_timeout;  /* seconds */
    int statement_timeout; /* milliseconds */
    int db_queue_size;
    int db_queue_wait;        /* milliseconds */
    int metrics;              /* enum metrics_access */
    int stream_heartbeat;     /* seconds between SSE heartbeats (and credential checks) */
    int stream_stall_timeout; /* ms a paused stream may read < LIMIT_SSE_PROGRESS: cut off */
    int overdue_check;        /* seconds between overdue-action sweeps */
};

void config_init(struct config *cfg);
void config_clear(struct config *cfg);
/* Set one key from its text value. -1 + *cause (owned) naming the key on a bad key or value. */
int config_set(struct config *cfg, const char *key, const char *value, char **cause);
/* Read a config file (path may be NULL: none). -1 + *cause naming file, line and key. */
int config_load_file(struct config *cfg, const char *path, char **cause);
/* Apply RAISE_<KEY> variables from envp (NULL-terminated). Unknown RAISE_* names are ignored:
 * they belong to the clients (RAISE_URL, RAISE_TOKEN...). -1 + *cause on a bad value. */
int config_load_env(struct config *cfg, char *const *envp, char **cause);
/* Defaults, then file, then environment. */
int config_load(struct config *cfg, const char *path, char *const *envp, char **cause);
/* Keys the server itself needs (database_url, tls_cert, tls_key). -1 + *cause if missing. */
int config_check_server(const struct config *cfg, char **cause);
/* For --help: iterate keys. Returns NULL past the end. */
const char *config_key_name(int i, const char **help);

#endif
