/* raised: the RAISE risk-meeting server. */
#define _GNU_SOURCE
#include "cli.h"
#include "config.h"
#include "log.h"
#include "migrate.h"
#include "server.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

struct args {
    const char *config;      /* borrowed from argv */
    const char *command;     /* "serve", "migrate", "create-admin" */
    const char *username;    /* create-admin */
    const char *agency_name; /* create-admin */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: raised [--config FILE]                 run the server\n"
                 "       raised migrate [--config FILE]         apply database migrations\n"
                 "       raised create-admin [--config FILE] --username U --agency-name A\n"
                 "                                              create the first admin account\n"
                 "       raised --version | --help\n\n"
                 "Configuration: an INI-style file of `key = value` lines; every key can also be\n"
                 "set as RAISE_<KEY> in the environment, which wins. Keys:\n");
    const char *name, *help;
    for (int i = 0; (name = config_key_name(i, &help)) != NULL; i++)
        fprintf(out, "  %-18s %s\n", name, help);
    fprintf(out, "\nSignals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads tls_cert/tls_key.\n");
}

/* Options may come before or after the command. -1 on a usage error (message printed). */
static int parse_args(int argc, char **argv, struct args *a)
{
    a->command = "serve";
    int have_command = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **slot = NULL;
        if (strcmp(arg, "--config") == 0 || strcmp(arg, "-c") == 0)
            slot = &a->config;
        else if (strcmp(arg, "--username") == 0)
            slot = &a->username;
        else if (strcmp(arg, "--agency-name") == 0)
            slot = &a->agency_name;
        if (slot != NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "raised: %s needs a value\n", arg);
                return -1;
            }
            *slot = argv[++i];
        } else if (arg[0] == '-' || have_command) {
            fprintf(stderr, "raised: unknown argument '%s' (try --help)\n", arg);
            return -1;
        } else if (strcmp(arg, "migrate") == 0 || strcmp(arg, "create-admin") == 0 ||
                   strcmp(arg, "serve") == 0) {
            a->command = arg;
            have_command = 1;
        } else {
            fprintf(stderr, "raised: unknown command '%s' (try --help)\n", arg);
            return -1;
        }
    }
    return 0;
}

static int run_command(const struct args *a, struct config *cfg)
{
    char *cause = NULL;
    int rc = 0;
    if (strcmp(a->command, "serve") == 0) {
        if (config_check_server(cfg, &cause) < 0)
            rc = -1;
        else
            return server_run(cfg) == 0 ? 0 : 1;
    } else if (cfg->database_url == NULL) {
        cause = strdup("config: database_url: required");
        rc = -1;
    } else if (strcmp(a->command, "migrate") == 0) {
        rc = migrate_run(cfg->database_url, stdout, &cause);
    } else if (a->username == NULL || a->agency_name == NULL) {
        cause = strdup("create-admin needs --username and --agency-name");
        rc = -1;
    } else {
        rc = migrate_check(cfg->database_url, &cause);
        if (rc == 0)
            rc = cli_create_admin(cfg->database_url, a->username, a->agency_name, stdout, &cause);
    }
    if (rc < 0) {
        fprintf(stderr, "raised: %s\n", cause);
        free(cause);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("raised %s\n", RAISE_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    struct args a = {0};
    if (parse_args(argc, argv, &a) < 0)
        return 2;
    struct config cfg;
    char *cause = NULL;
    config_init(&cfg);
    if (config_load(&cfg, a.config, environ, &cause) < 0) {
        fprintf(stderr, "raised: %s\n", cause);
        free(cause);
        config_clear(&cfg);
        return 2;
    }
    log_set_level(cfg.log_level);
    int rc = run_command(&a, &cfg);
    config_clear(&cfg);
    libevent_global_shutdown();
    OPENSSL_cleanup();
    return rc;
}
