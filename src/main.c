/* SPDX-License-Identifier: MIT */
/*
 * main.c - the candor binary: subcommands and CoreDNS's flags.
 *
 * "candor [flags]" and "candor serve [flags]" serve, taking CoreDNS's
 * flags (-conf, -dns.port, -quiet, -pidfile, -plugins, -version) in Go's
 * flag syntax (-flag value, -flag=value, --flag), plus candor's own
 * (-validate, -workers, -tcp.max_conns).  Other subcommands come from the
 * table below.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/ctl.h"
#include "core/plugin.h"
#include "core/server.h"
#include "tools/dig.h"
#include "tools/doctor.h"
#include "util/log.h"

/* Port of the built-in Corefile when -dns.port is not given: 1053, so it
 * runs without root. */
#define MAIN_DEFAULT_PORT 1053

typedef struct {
    cnd_opts_t opts;
    const char *pidfile;
    bool plugins, version, validate, help, port_set;
} main_flags_t;

typedef enum { FLAG_STR, FLAG_BOOL, FLAG_PORT, FLAG_UINT } flag_kind_t;

typedef struct {
    const char *name;
    flag_kind_t kind;
    size_t offset;
    const char *help;
} main_flag_t;

#define F(field) offsetof(main_flags_t, field)

static const main_flag_t main_flags[] = {
    {"conf", FLAG_STR, F(opts.conf_file),
     "Corefile to load (default: ./Corefile, else the built-in default)"},
    {"dns.port", FLAG_PORT, F(opts.dns_port),
     "default port for server blocks without one (default 53)"},
    {"pidfile", FLAG_STR, F(pidfile), "write the process ID to this file"},
    {"plugins", FLAG_BOOL, F(plugins), "list the plugins and exit"},
    {"quiet", FLAG_BOOL, F(opts.quiet), "do not print the start-up lines"},
    {"version", FLAG_BOOL, F(version), "print the version and exit"},
    {"validate", FLAG_BOOL, F(validate),
     "check the Corefile and exit: 0 valid, 1 not"},
    {"workers", FLAG_UINT, F(opts.workers),
     "worker threads (default: one per CPU this process can use)"},
    {"tcp.max_conns", FLAG_UINT, F(opts.tcp_max_conns),
     "TCP connections per worker (default 1024)"},
    {"ctl", FLAG_STR, F(opts.ctl_path),
     "control socket for \"candor ctl\" (default /run/candor-PORT.ctl as "
     "root, PORT the first listen port; off: none)"},
    {"help", FLAG_BOOL, F(help), "show this help"},
    {NULL, 0, 0, NULL},
};


static void
main_usage(FILE *f)
{
    fprintf(f, "Usage: candor [serve] [flags]\n"
               "       candor ctl [-s PATH] COMMAND [ARGS...]\n"
               "       candor dig [@SERVER] [-p PORT] [+OPTIONS] NAME [TYPE]\n"
               "       candor doctor [NAME...] [-conf FILE] [-server ADDR] "
               "[-ctl PATH] [-json]\n"
               "       candor version\n\nFlags:\n");
    for (const main_flag_t *fl = main_flags; fl->name != NULL; fl++) {
        fprintf(f, "  -%-15s %s\n", fl->name, fl->help);
    }
}


/* Go's flag syntax.  Returns 0, or 2 after printing the error. */
static int
main_parse_flags(int argc, char **argv, main_flags_t *mf)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            fprintf(stderr, "candor: unexpected argument %s\n", arg);
            main_usage(stderr);
            return 2;
        }
        arg += arg[1] == '-' ? 2 : 1;
        char name[64];
        const char *value = strchr(arg, '=');
        size_t nl = value != NULL ? (size_t)(value - arg) : strlen(arg);
        if (nl >= sizeof(name)) {
            nl = sizeof(name) - 1;
        }
        memcpy(name, arg, nl);
        name[nl] = '\0';
        if (value != NULL) {
            value++;
        }
        if (strcmp(name, "h") == 0) {
            snprintf(name, sizeof(name), "help"); /* Go's flag takes -h */
        }
        const main_flag_t *fl = main_flags;
        while (fl->name != NULL && strcmp(fl->name, name) != 0) {
            fl++;
        }
        if (fl->name == NULL) {
            fprintf(stderr, "flag provided but not defined: -%s\n", name);
            main_usage(stderr);
            return 2;
        }
        void *field = (char *)mf + fl->offset;
        if (fl->kind == FLAG_BOOL) {
            bool v = value == NULL || strcmp(value, "true") == 0 ||
                     strcmp(value, "1") == 0;
            if (value != NULL && !v && strcmp(value, "false") != 0 &&
                strcmp(value, "0") != 0) {
                fprintf(stderr, "invalid boolean value \"%s\" for -%s\n", value,
                        name);
                return 2;
            }
            *(bool *)field = v;
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "flag needs an argument: -%s\n", name);
                return 2;
            }
            value = argv[++i];
        }
        if (fl->kind == FLAG_STR) {
            *(const char **)field = value;
            continue;
        }
        char *end;
        errno = 0;
        unsigned long n = strtoul(value, &end, 10);
        bool bad =
            *value == '\0' || *end != '\0' || errno != 0 || *value == '-';
        if (fl->kind == FLAG_PORT) {
            if (bad || n > 65535) { /* 0: one the kernel picks */
                fprintf(stderr,
                        "invalid value \"%s\" for flag -%s: a port "
                        "number 0-65535\n",
                        value, name);
                return 2;
            }
            *(uint16_t *)field = (uint16_t)n;
            mf->port_set = true;
        } else {
            if (bad || n > 4096) {
                fprintf(stderr,
                        "invalid value \"%s\" for flag -%s: a "
                        "number 0-4096\n",
                        value, name);
                return 2;
            }
            *(unsigned *)field = (unsigned)n;
        }
    }
    return 0;
}


static int
main_plugins(void)
{
    printf("Server types:\n  dns\n\nCaddyfile loaders:\n  flag\n  default\n"
           "\nOther plugins:\n");
    /* CoreDNS lists them sorted by name. */
    const char *names[128];
    size_t n = 0;
    for (const cnd_plugin_entry_t *e = cnd_plugin_table; e->name; e++) {
        if (e->plugin != NULL && n < 128) {
            names[n++] = e->name;
        }
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        printf("  dns.%s\n", names[i]);
    }
    return 0;
}


static int
cmd_serve(int argc, char **argv)
{
    main_flags_t mf;
    memset(&mf, 0, sizeof(mf));
    mf.opts.dns_port = 53;
    int rc = main_parse_flags(argc, argv, &mf);
    if (rc != 0) {
        return rc;
    }
    if (mf.help) {
        main_usage(stdout);
        return 0;
    }
    if (mf.version) {
        printf("%s\n%s\n", cnd_version, cnd_build_line());
        return 0;
    }
    if (mf.plugins) {
        return main_plugins();
    }

    const char *file = mf.opts.conf_file;
    size_t len = 0;
    char *text = NULL;
    bool builtin = false;
    if (file != NULL) {
        text = cnd_conf_read(file, &len);
        if (text == NULL) {
            fprintf(stderr, "unable to read Corefile %s: %s\n", file,
                    strerror(errno));
            return 1;
        }
    } else {
        file = "Corefile";
        text = cnd_conf_read(file, &len);
        if (text == NULL && errno != ENOENT) {
            fprintf(stderr, "unable to read Corefile %s: %s\n", file,
                    strerror(errno));
            return 1;
        }
        if (text == NULL) {
            builtin = true;
            file = CND_BUILTIN_FILE;
            text = cnd_conf_read(file, &len);
            if (!mf.port_set) {
                mf.opts.dns_port = MAIN_DEFAULT_PORT;
            }
        }
    }

    char err[1024];
    cnd_conf_t *conf =
        cnd_conf_load(&mf.opts, file, text, len, err, sizeof(err));
    free(text);
    if (conf == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (mf.validate) {
        printf("%s: valid: %zu server block(s), %zu plugin instance(s), "
               "%zu listener(s)\n",
               file, conf->nservers, conf->ninsts, conf->nlistens);
        cnd_conf_unref(conf);
        return 0;
    }
    if (builtin && !mf.opts.quiet) {
        printf("No Corefile: serving the built-in default on 127.0.0.1:%u "
               "(whoami, log, errors).\nTry:  dig @127.0.0.1 -p %u "
               "example.org\n",
               mf.opts.dns_port, mf.opts.dns_port);
        fflush(stdout);
    }
    return cnd_server_run(&mf.opts, conf, mf.pidfile);
}


static void
ctl_usage(FILE *f)
{
    char path[108];
    fprintf(f,
            "Usage: candor ctl [-s PATH|PORT] COMMAND [ARGS...]\n"
            "  -s PATH  the server's control socket (its -ctl PATH)\n"
            "  -s PORT  the default socket of the server whose first listen "
            "port is PORT\n"
            "           (%s for port 53)\n"
            "Without -s: the one candor running here.  \"candor ctl help\" "
            "lists the\ncommands of the running server.\n",
            cnd_ctl_default_path(53, path, sizeof(path)));
}


/* candor ctl [-s PATH|PORT] COMMAND [ARGS...] */
static int
cmd_ctl(int argc, char **argv)
{
    const char *path = NULL;
    if (argc >= 1 &&
        (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "-help") == 0 ||
         strcmp(argv[0], "--help") == 0)) {
        ctl_usage(stdout);
        return 0;
    }
    if (argc >= 2 &&
        (strcmp(argv[0], "-s") == 0 || strcmp(argv[0], "--s") == 0)) {
        path = argv[1];
        argc -= 2;
        argv += 2;
    }
    if (argc == 0) {
        ctl_usage(stderr);
        return 2;
    }
    return cnd_ctl_client(path, argc, argv);
}


static int
cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("%s\n%s\n", cnd_version, cnd_build_line());
    return 0;
}


/* Subcommands: the first argument, when it is not a flag. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} main_cmds[] = {
    {"serve", cmd_serve},     {"ctl", cmd_ctl},
    {"dig", cnd_dig_main},    {"doctor", cnd_doctor_main},
    {"version", cmd_version}, {NULL, NULL},
};


int
main(int argc, char **argv)
{
    /* Lines of the log and the start-up output go out whole. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && argv[1][0] != '-') {
        for (size_t i = 0; main_cmds[i].name != NULL; i++) {
            if (strcmp(argv[1], main_cmds[i].name) == 0) {
                return main_cmds[i].run(argc - 2, argv + 2);
            }
        }
        fprintf(stderr, "candor: unknown command \"%s\"\n", argv[1]);
        main_usage(stderr);
        return 2;
    }
    return cmd_serve(argc - 1, argv + 1);
}
