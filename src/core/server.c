/* SPDX-License-Identifier: MIT */
/*
 * core/server.c - the serving process: sockets, workers, signals, stop.
 *
 * The main thread binds every socket before any worker runs, so a port in
 * use or an address that does not exist is reported at start with
 * CoreDNS's message and exit 1.  Each listen address gets, per worker, one
 * UDP and one TCP socket with SO_REUSEPORT; the kernel spreads queries and
 * connections over them.  A first bind without SO_REUSEPORT checks that
 * no other process holds the port (another server with SO_REUSEPORT would
 * otherwise silently share it).
 *
 * Then the main thread runs its own loop for signals, as CoreDNS's caddy
 * does: SIGTERM and SIGINT stop gracefully (a second SIGINT forces exit
 * 2), SIGQUIT exits at once, SIGHUP is ignored.  Workers report back
 * through an async handle when their loops have ended.
 */
#include "core/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/internal.h"
#include "util/log.h"

#ifndef CND_VERSION
#define CND_VERSION "0.1.0"
#endif
#ifndef CND_COMMIT
#define CND_COMMIT "unknown"
#endif

const char cnd_version[] = "candor-" CND_VERSION;

/* The serving process.  Main thread only, but for `done`, which workers
 * raise through `done_async`. */
typedef struct {
    const cnd_opts_t *opts;
    cnd_conf_t *conf;
    cnd_worker_t *workers;
    unsigned nworkers;
    uv_loop_t *loop;
    uv_signal_t sig[5];
    uv_async_t done_async;
    atomic_uint done; /* workers whose loop has ended */
    int sigints;
    bool stopping;
} server_t;


const char *
cnd_build_line(void)
{
    static char line[128];
    struct utsname u;
    if (line[0] == '\0') {
        if (uname(&u) != 0) {
            snprintf(u.machine, sizeof(u.machine), "unknown");
        }
        snprintf(line, sizeof(line), "linux/%s, gcc %d.%d.%d, %s", u.machine,
                 __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__, CND_COMMIT);
    }
    return line;
}


/* ---- sockets ---------------------------------------------------------- */

static bool
server_is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
               htonl(INADDR_ANY);
    }
    return IN6_IS_ADDR_UNSPECIFIED(
        &((const struct sockaddr_in6 *)ss)->sin6_addr);
}


/* "listen udp 127.0.0.1:53: bind: address already in use" */
static void
server_sock_err(char *err, size_t errlen, int type, const cnd_listen_t *l,
                const char *op, int e)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "%s", strerror(e));
    msg[0] = (char)tolower((unsigned char)msg[0]);
    snprintf(err, errlen, "Listen: listen %s %s: %s: %s",
             type == SOCK_DGRAM ? "udp" : "tcp", l->name, op, msg);
}


static int
server_socket(const cnd_listen_t *l, int type, bool reuseport, char *err,
              size_t errlen)
{
    int fd = socket(l->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        server_sock_err(err, errlen, type, l, "socket", errno);
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    bool any = server_is_any(&l->addr);
    if (l->addr.ss_family == AF_INET6) {
        /* [::] takes IPv4 too; a specific IPv6 address only IPv6. */
        int v6only = any ? 0 : 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &v6only,
                   sizeof(int));
    }
    if (type == SOCK_DGRAM && any) {
        /* Learn each query's destination to answer from it. */
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
        if (l->addr.ss_family == AF_INET6) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
        }
    }
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) != 0) {
        server_sock_err(err, errlen, type, l, "bind", errno);
        close(fd);
        return -1;
    }
    return fd;
}


/* Every worker's sockets for every listener, or -1 with @err set. */
static int
server_bind(server_t *s, char *err, size_t errlen)
{
    const cnd_conf_t *cf = s->conf;
    for (unsigned w = 0; w < s->nworkers; w++) {
        s->workers[w].socks = calloc(cf->nlistens + 1, sizeof(cnd_wsock_t));
        if (s->workers[w].socks == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < cf->nlistens; i++) {
            s->workers[w].socks[i].udp_fd = -1;
            s->workers[w].socks[i].tcp_fd = -1;
        }
    }
    for (size_t i = 0; i < cf->nlistens; i++) {
        const cnd_listen_t *l = &cf->listens[i];
        for (int t = 0; t < 2; t++) {
            int type = t == 0 ? SOCK_DGRAM : SOCK_STREAM;
            /* Probe without SO_REUSEPORT: fails if anyone holds it. */
            int probe = server_socket(l, type, false, err, errlen);
            if (probe < 0) {
                return -1;
            }
            close(probe);
        }
        for (unsigned w = 0; w < s->nworkers; w++) {
            cnd_wsock_t *ws = &s->workers[w].socks[i];
            ws->wildcard = server_is_any(&l->addr);
            ws->udp_fd = server_socket(l, SOCK_DGRAM, true, err, errlen);
            if (ws->udp_fd < 0) {
                return -1;
            }
            ws->tcp_fd = server_socket(l, SOCK_STREAM, true, err, errlen);
            if (ws->tcp_fd < 0) {
                return -1;
            }
        }
    }
    return 0;
}


/* ---- start-up lines --------------------------------------------------- */

/* CoreDNS prints each zone of each server: "example.org.:53", with
 * " on 127.0.0.1" when bound, then its version lines. */
static void
server_banner(const cnd_conf_t *cf)
{
    for (size_t s = 0; s < cf->nservers; s++) {
        const cnd_server_t *srv = &cf->servers[s];
        for (size_t z = 0; z < srv->nzones; z++) {
            const cnd_zone_t *zone = &srv->zones[z];
            if (srv->nbinds == 0) {
                printf("%s:%u\n", zone->name, zone->port);
            }
            for (size_t b = 0; b < srv->nbinds; b++) {
                char ip[64];
                printf("%s:%u on %s\n", zone->name, zone->port,
                       cnd_addr_str(&srv->binds[b], ip, sizeof(ip), false));
            }
        }
    }
    printf("%s\n%s\n", cnd_version, cnd_build_line());
    fflush(stdout);
}


/* ---- signals and stop ------------------------------------------------- */

static void
server_stop(server_t *s)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    for (unsigned i = 0; i < s->nworkers; i++) {
        cnd__worker_post(&s->workers[i], CND_MSG_STOP);
    }
}


static void
server_signal_cb(uv_signal_t *h, int signum)
{
    server_t *s = h->data;
    switch (signum) {
    case SIGTERM:
        cnd_log(CND_LOG_INFO, NULL,
                "SIGTERM: Shutting down servers then terminating");
        server_stop(s);
        break;
    case SIGINT:
        if (s->sigints++ > 0) {
            cnd_log(CND_LOG_INFO, NULL, "SIGINT: Force quit");
            exit(2);
        }
        cnd_log(CND_LOG_INFO, NULL, "SIGINT: Shutting down");
        server_stop(s);
        break;
    case SIGQUIT:
        cnd_log(CND_LOG_INFO, NULL, "SIGQUIT: Quitting process immediately");
        exit(0);
    case SIGUSR1:
        /* Reload arrives with the reload plugin (ops issue); until then
         * say so rather than pretend. */
        cnd_log(CND_LOG_WARNING, NULL,
                "SIGUSR1: reload is not supported yet; keeping the running "
                "configuration");
        break;
    default: /* SIGHUP: ignored, as CoreDNS does */
        break;
    }
}


static void
server_done_cb(uv_async_t *h)
{
    server_t *s = h->data;
    if (atomic_load(&s->done) == s->nworkers) {
        uv_stop(s->loop);
    }
}


static void
server_close_cb(uv_handle_t *h)
{
    (void)h;
}


/* Set by a worker thread when its loop has ended. */
static server_t *server_self;

static void
server_worker_exit(void)
{
    atomic_fetch_add(&server_self->done, 1);
    uv_async_send(&server_self->done_async);
}


static unsigned
server_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}


int
cnd_server_run(const cnd_opts_t *opts, cnd_conf_t *conf, const char *pidfile)
{
    static server_t s;
    char err[1024];
    int rc = 1;

    memset(&s, 0, sizeof(s));
    s.opts = opts;
    s.conf = conf;
    s.loop = uv_default_loop();
    s.nworkers = opts->workers != 0 ? opts->workers : server_cpus();
    s.workers = calloc(s.nworkers, sizeof(*s.workers));
    server_self = &s;
    if (s.workers == NULL) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    if (server_bind(&s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    uv_async_init(s.loop, &s.done_async, server_done_cb);
    s.done_async.data = &s;
    for (unsigned i = 0; i < s.nworkers; i++) {
        cnd_worker_t *w = &s.workers[i];
        w->id = i;
        w->opts = opts;
        w->on_exit = server_worker_exit;
        if (cnd__worker_start(w, conf) != 0) {
            fprintf(stderr, "%s\n", w->start_err);
            exit(1); /* workers already running cannot be unwound */
        }
    }
    if (pidfile != NULL) {
        FILE *f = fopen(pidfile, "w");
        if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0) {
            fprintf(stderr, "Could not write pidfile: %s\n", strerror(errno));
            exit(1);
        }
        fclose(f);
    }
    char serr[1024];
    conf->err = serr;
    conf->errlen = sizeof(serr);
    for (size_t i = 0; i < conf->ninsts; i++) {
        cnd_inst_t *in = conf->insts[i];
        if (in->plugin->start != NULL && in->plugin->start(conf, in) != 0) {
            fprintf(stderr, "%s\n", serr);
            exit(1); /* workers already running cannot be unwound */
        }
    }
    conf->err = NULL;
    conf->errlen = 0;
    if (!opts->quiet) {
        server_banner(conf);
    }
    cnd_conf_tickers_start(conf, s.loop);
    static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGHUP};
    for (size_t i = 0; i < 5; i++) {
        uv_signal_init(s.loop, &s.sig[i]);
        s.sig[i].data = &s;
        uv_signal_start(&s.sig[i], server_signal_cb, sigs[i]);
    }
    uv_run(s.loop, UV_RUN_DEFAULT);

    for (unsigned i = 0; i < s.nworkers; i++) {
        cnd__worker_join(&s.workers[i]);
    }
    cnd_conf_tickers_stop(conf);
    for (size_t i = conf->ninsts; i-- > 0;) {
        cnd_inst_t *in = conf->insts[i];
        if (in->plugin->stop != NULL) {
            in->plugin->stop(in);
        }
    }
    for (size_t i = 0; i < 5; i++) {
        uv_close((uv_handle_t *)&s.sig[i], server_close_cb);
    }
    uv_close((uv_handle_t *)&s.done_async, server_close_cb);
    uv_run(s.loop, UV_RUN_DEFAULT);
    if (pidfile != NULL) {
        unlink(pidfile);
    }
    rc = 0;
out:
    if (s.workers != NULL) {
        for (unsigned i = 0; i < s.nworkers; i++) {
            free(s.workers[i].socks);
            cnd_mstore_free(s.workers[i].metrics); /* off the list too */
        }
        free(s.workers);
    }
    cnd_conf_unref(conf);
    return rc;
}
