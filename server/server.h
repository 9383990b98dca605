/* The process: worker threads, listening sockets, signals, the reloadable TLS context. */
#ifndef RAISE_SERVER_H
#define RAISE_SERVER_H

#include <openssl/ssl.h>

struct config;

/* Run the server until SIGTERM/SIGINT. Returns the exit status. cfg is borrowed. */
int server_run(struct config *cfg);
/* A new SSL for an accepted connection, from the current (reloadable) context. */
SSL *server_ssl_new(void);
const struct config *server_config(void);
long server_uptime(void);

#endif
