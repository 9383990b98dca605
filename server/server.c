#define _GNU_SOURCE
#include "server.h"

#include "config.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "routes.h"
#include "sequencer.h"
#include "stream.h"
#include "actions.h"
#include "tls.h"
#include "util.h"
#include "work.h"
#include "xmalloc.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct worker {
    int id;
    pthread_t thread;
    struct event_base *base;         /* owned */
    struct event *stop_ev;           /* owned; activated from the main thread */
    struct event *drain_ev;          /* owned; polls in-flight requests while stopping */
    struct db_pool *db;              /* owned */
    struct http_server *http;        /* owned */
    struct stream_worker *stream;    /* owned */
    struct actions_sweeper *sweeper; /* owned; worker 0 only */
    int listen_fd;                   /* handed to the http server when the thread starts */
    uint64_t deadline_ms;
};

static struct {
    struct config *cfg; /* borrowed */
    pthread_mutex_t tls_lock;
    SSL_CTX *tls; /* owned; replaced on SIGHUP */
    time_t started;
    struct worker *workers;    /* owned */
    int nworkers;              /* allocated */
    int nthreads;              /* started; each owns its worker's listening socket */
    struct event_base *base;   /* owned; main thread: signals */
    struct db_pool *listener;  /* owned; main thread: LISTEN raise_events, sequencer events */
    struct db_pool *sequencer; /* owned; main thread: the sequencer's audit lane */
} srv = {.tls_lock = PTHREAD_MUTEX_INITIALIZER};

const struct config *server_config(void)
{
    return srv.cfg;
}

long server_uptime(void)
{
    return (long)(time(NULL) - srv.started);
}

SSL *server_ssl_new(void)
{
    pthread_mutex_lock(&srv.tls_lock);
    SSL *ssl = SSL_new(srv.tls);
    pthread_mutex_unlock(&srv.tls_lock);
    return ssl;
}

static int reload_tls(void)
{
    char *cause = NULL;
    SSL_CTX *ctx =
        tls_server_ctx_new(srv.cfg->tls_cert, srv.cfg->tls_key, srv.cfg->tls_client_ca, &cause);
    if (ctx == NULL) {
        log_error("%s (keeping the current certificate)", cause);
        free(cause);
        return -1;
    }
    pthread_mutex_lock(&srv.tls_lock);
    SSL_CTX *old = srv.tls;
    srv.tls = ctx;
    pthread_mutex_unlock(&srv.tls_lock);
    SSL_CTX_free(old); /* connections still using it hold their own reference */
    return 0;
}

/* SO_REUSEPORT lets every worker have its own socket on one port, but it would also let a
 * second raised share the port silently. Bind once without it to find out. */
static int port_in_use(const struct addrinfo *ai)
{
    int one = 1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int busy = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno == EADDRINUSE;
    close(fd);
    return busy;
}

static int listen_socket(const char *host, int port, int probe, char **cause)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc != 0) {
        *cause = xasprintf("listen: cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int one = 1;
    if (probe && port != 0 && port_in_use(ai)) {
        *cause = xasprintf("listen: %s:%d: address already in use", host, port);
        freeaddrinfo(ai);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        /* accepted sockets inherit it: a reply's head and body must not wait for an ACK */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        *cause = xasprintf("listen: %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int write_port_file(const char *path, int port, char **cause)
{
    char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f != NULL && fprintf(f, "%d\n", port) > 0 && fclose(f) == 0) {
        f = NULL;
        rc = rename(tmp, path);
    }
    if (f != NULL)
        fclose(f);
    if (rc < 0)
        *cause = xasprintf("port_file: cannot write %s: %s", path, strerror(errno));
    free(tmp);
    return rc;
}

/* ---- worker threads */

static void worker_finish(struct worker *w)
{
    actions_sweeper_free(w->sweeper);
    w->sweeper = NULL;
    stream_worker_free(w->stream);
    w->stream = NULL;
    http_server_free(w->http);
    w->http = NULL;
    db_pool_free(w->db);
    w->db = NULL;
    event_base_loopexit(w->base, NULL);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    /* requests, replies being written, and statements still running (the stream's last
     * delivery audit) */
    int n = http_server_inflight(w->http) + db_pool_pending(w->db);
    if (n == 0 || util_now_ms() >= w->deadline_ms) {
        if (n > 0)
            log_warn("stop: %d requests still running after %d s; closing", n,
                     srv.cfg->shutdown_timeout);
        event_del(w->drain_ev);
        worker_finish(w);
    }
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    if (w->http == NULL)
        return;
    stream_worker_stop(w->stream);    /* streams end now; clients resume with Last-Event-ID */
    actions_sweeper_free(w->sweeper); /* a sweep still running finishes in the database */
    w->sweeper = NULL;
    http_server_stop_accepting(w->http);
    w->deadline_ms = util_now_ms() + (uint64_t)srv.cfg->shutdown_timeout * 1000u;
    struct timeval tick = {0, 20 * 1000};
    event_add(w->drain_ev, &tick);
    drain_cb(-1, 0, w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    log_set_worker(w->id + 1);
    struct db_pool_opts o = {
        .conninfo = srv.cfg->database_url,
        .size = srv.cfg->db_pool_size,
        .queue_max = srv.cfg->db_queue_size,
        .queue_wait_ms = srv.cfg->db_queue_wait,
        .statement_timeout_ms = srv.cfg->statement_timeout,
        .worker_id = w->id,
        .after_ok = sequencer_after, /* it may have queued rows: number and chain them */
    };
    w->db = db_pool_new(w->base, &o);
    w->http = http_server_new(w->base, w->id, w->listen_fd, srv.cfg, w->db);
    if (w->http != NULL) {
        w->stream = stream_worker_new(w->base, w->db, w->id);
        http_server_set_stream(w->http, w->stream);
        if (w->id == 0)
            w->sweeper = actions_sweeper_new(w->base, w->db, srv.cfg->overdue_check);
    }
    if (w->http == NULL) {
        db_pool_free(w->db);
        w->db = NULL;
        return NULL;
    }
    event_base_dispatch(w->base);
    return NULL;
}

static void worker_free(struct worker *w)
{
    if (w->stop_ev != NULL)
        event_free(w->stop_ev);
    if (w->drain_ev != NULL)
        event_free(w->drain_ev);
    if (w->base != NULL)
        event_base_free(w->base);
}

/* ---- main thread: signals */

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    if (sig == SIGHUP) {
        if (reload_tls() == 0) {
            metrics_count(COUNTER_TLS_RELOADS);
            log_info("SIGHUP: reloaded certificate %s", srv.cfg->tls_cert);
        }
        return;
    }
    log_info("%s: stopping (waiting up to %d s for requests in flight)",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", srv.cfg->shutdown_timeout);
    for (int i = 0; i < srv.nthreads; i++)
        event_active(srv.workers[i].stop_ev, EV_READ, 0);
    event_base_loopexit(srv.base, NULL);
}

static int open_listeners(char **cause)
{
    int port = srv.cfg->listen_port;
    for (int i = 0; i < srv.nworkers; i++) {
        struct worker *w = &srv.workers[i];
        w->listen_fd = listen_socket(srv.cfg->listen_host, port, i == 0, cause);
        if (w->listen_fd < 0)
            return -1;
        if (i == 0)
            port = bound_port(w->listen_fd); /* port 0: the others share the chosen one */
    }
    srv.cfg->listen_port = port;
    return 0;
}

static int start_workers(char **cause)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* workers never take signals */
    int rc = 0;
    for (int i = 0; i < srv.nworkers && rc == 0; i++) {
        struct worker *w = &srv.workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            *cause = xasprintf("cannot start worker thread %d", i);
            rc = -1;
        } else {
            srv.nthreads++;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int setup(char **cause)
{
    srv.tls =
        tls_server_ctx_new(srv.cfg->tls_cert, srv.cfg->tls_key, srv.cfg->tls_client_ca, cause);
    if (srv.tls == NULL)
        return -1;
    if (migrate_check(srv.cfg->database_url, cause) < 0)
        return -1;
    if (srv.cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        srv.cfg->workers = n < 1 ? 1 : n > LIMIT_WORKERS_MAX ? LIMIT_WORKERS_MAX : (int)n;
    }
    srv.nworkers = srv.cfg->workers;
    srv.workers = xcalloc((size_t)srv.nworkers, sizeof(*srv.workers));
    for (int i = 0; i < srv.nworkers; i++) {
        struct worker *w = &srv.workers[i];
        w->id = i;
        w->listen_fd = -1;
        w->base = event_base_new();
        w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
        w->drain_ev = event_new(w->base, -1, EV_PERSIST, drain_cb, w);
    }
    if (open_listeners(cause) < 0)
        return -1;
    if (srv.cfg->port_file != NULL &&
        write_port_file(srv.cfg->port_file, srv.cfg->listen_port, cause) < 0)
        return -1;
    return 0;
}

static void teardown(void)
{
    for (int i = 0; i < srv.nworkers; i++) {
        if (i >= srv.nthreads && srv.workers[i].listen_fd >= 0)
            close(srv.workers[i].listen_fd);
        worker_free(&srv.workers[i]);
    }
    free(srv.workers);
    srv.workers = NULL;
    SSL_CTX_free(srv.tls);
    srv.tls = NULL;
    if (srv.base != NULL)
        event_base_free(srv.base);
    srv.base = NULL;
}

int server_run(struct config *cfg)
{
    char *cause = NULL;
    srv.cfg = cfg;
    srv.started = time(NULL);
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    http_global_init();
    routes_init_metrics();
    log_set_level(cfg->log_level);

    srv.base = event_base_new();
    struct event *sigs[3];
    const int signos[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(srv.base, signos[i], signal_cb, NULL);
        event_add(sigs[i], NULL);
    }
    int rc = 1;
    work_start(2); /* helper threads for password hashing */
    if (setup(&cause) < 0 || start_workers(&cause) < 0) {
        fprintf(stderr, "raised: %s\n", cause);
        free(cause);
        for (int i = 0; i < srv.nthreads; i++)
            event_active(srv.workers[i].stop_ev, EV_READ, 0);
    } else {
        log_info("raised %s listening on https://%s:%d/ with %d workers", RAISE_VERSION,
                 cfg->listen_host, cfg->listen_port, srv.nworkers);
        struct db_pool_opts lo = {.conninfo = cfg->database_url,
                                  .size = 1,
                                  .queue_max = 4,
                                  .queue_wait_ms = cfg->db_queue_wait,
                                  .statement_timeout_ms = cfg->statement_timeout,
                                  .worker_id = 0,
                                  .name = "raised-events",
                                  .listen_channel = "raise_events",
                                  .notify_cb = stream_notify_all,
                                  .background = 1};
        srv.listener = db_pool_new(srv.base, &lo);
        stream_shared_start(srv.listener);
        struct db_pool_opts ao = lo; /* the sequencer's audit lane: no LISTEN */
        ao.name = "raised-audit";
        ao.listen_channel = NULL;
        ao.notify_cb = NULL;
        srv.sequencer = db_pool_new(srv.base, &ao);
        if (sequencer_start(srv.base, srv.listener, srv.sequencer) < 0) {
            fprintf(stderr, "raised: cannot start the sequencer\n");
            for (int i = 0; i < srv.nthreads; i++)
                event_active(srv.workers[i].stop_ev, EV_READ, 0);
        } else {
            event_base_dispatch(srv.base);
            rc = 0;
        }
        sequencer_stop();
        stream_shared_stop();
    }
    for (int i = 0; i < srv.nthreads; i++)
        pthread_join(srv.workers[i].thread, NULL);
    if (rc == 0) { /* what the last requests queued; else the next server's first run */
        char *why = NULL;
        if (sequencer_flush(cfg->database_url, &why) < 0) {
            log_warn("stop: events and audit rows stay queued until a server runs (%s)", why);
            free(why);
        }
    }
    work_stop();
    db_pool_free(srv.listener);
    srv.listener = NULL;
    db_pool_free(srv.sequencer);
    srv.sequencer = NULL;
    for (int i = 0; i < 3; i++)
        event_free(sigs[i]);
    if (rc == 0 && cfg->port_file != NULL)
        unlink(cfg->port_file);
    teardown();
    if (rc == 0)
        log_info("stopped cleanly");
    return rc;
}
