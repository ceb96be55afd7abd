/* SPDX-License-Identifier: MIT */
/*
 * core/server.c - the serving process: sockets, workers, signals, stop.
 *
 * The main thread binds every socket before any worker runs, so a port in
 * use or an address that does not exist is reported at start with
 * CoreDNS's message and exit 1.  Each listen address gets, per worker, one
 * UDP and one TCP socket with SO_REUSEPORT; the kernel spreads queries and
 * connections over them.  With more workers than usable CPUs, the
 * workers beyond them share the UDP sockets of the first ones
 * (server_bind).  A first bind without SO_REUSEPORT checks that no other
 * process holds the port (another server with SO_REUSEPORT would
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
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/ctl.h"
#include "core/internal.h"
#include "util/cpus.h"
#include "util/log.h"

#ifndef CND_VERSION
#define CND_VERSION "0.1.0"
#endif
#ifndef CND_COMMIT
#define CND_COMMIT "unknown"
#endif

const char cnd_version[] = "candor-" CND_VERSION;
const char cnd_version_number[] = CND_VERSION;
const char cnd_revision[] = CND_COMMIT;

/* The serving process.  Main thread only, but for `done`, which workers
 * raise through `done_async`. */
typedef struct {
    const cnd_opts_t *opts;
    cnd_conf_t *conf;
    cnd_worker_t *workers;
    unsigned nworkers;
    unsigned nudp; /* UDP sockets per listener: min(workers, usable CPUs) */
    uv_loop_t *loop;
    uv_signal_t sig[5];
    uv_timer_t lameduck;
    uv_timer_t sweep; /* frees replaced snapshots once unused */
    uv_async_t done_async;
    atomic_uint done;    /* workers whose loop has ended */
    cnd_conf_t *retired; /* replaced by reloads, still in use    */
    int sigints;
    bool stopping;
    cnd_series_t *reload_failed;
} server_t;

/* The serving process, for cnd_server_reload().  Main thread only. */
static server_t *server_self;

static const cnd_mfamily_t server_m_reload_failed = {
    "coredns_reload_failed_total",
    "Counter of the number of failed reload attempts.",
    CND_METRIC_COUNTER,
    NULL,
    NULL,
    0};


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
    bool any = cnd_addr_is_any(&l->addr);
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


/* The port 0 stands for, and the sockets that hold it until the server's
 * own are bound.  Process lifetime, main thread. */
static uint16_t port_zero;
static int port_zero_fd[2] = {-1, -1};


int
cnd_port_zero(uint16_t *port)
{
    if (port_zero != 0) {
        *port = port_zero;
        return 0;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int e = EADDRINUSE;
    /* The kernel picks a UDP port; the TCP one of the same number may be
     * taken, so try a few. */
    for (int tries = 0; tries < 32 && port_zero == 0; tries++) {
        int fd[2];
        int one = 1;
        fd[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        socklen_t len = sizeof(sin);
        sin.sin_port = 0;
        if (fd[0] < 0 || fd[1] < 0 ||
            setsockopt(fd[0], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
            setsockopt(fd[1], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
            bind(fd[0], (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
            getsockname(fd[0], (struct sockaddr *)&sin, &len) != 0 ||
            bind(fd[1], (struct sockaddr *)&sin, sizeof(sin)) != 0) {
            e = errno;
            close(fd[0]); /* close(-1) is harmless */
            close(fd[1]);
            continue;
        }
        port_zero = ntohs(sin.sin_port);
        port_zero_fd[0] = fd[0];
        port_zero_fd[1] = fd[1];
    }
    *port = port_zero;
    return port_zero != 0 ? 0 : -e;
}


void
cnd_port_zero_release(void)
{
    for (int i = 0; i < 2; i++) {
        if (port_zero_fd[i] >= 0) {
            close(port_zero_fd[i]);
            port_zero_fd[i] = -1;
        }
    }
}


bool
cnd_port_zero_is(uint16_t port)
{
    return port != 0 && port == port_zero;
}


void
cnd_port_zero_set(uint16_t port)
{
    port_zero = port;
}


uint16_t
cnd_port_zero_get(void)
{
    return port_zero;
}


static bool
server_listens_on(const cnd_conf_t *cf, const char *name)
{
    for (size_t i = 0; cf != NULL && i < cf->nlistens; i++) {
        if (strcmp(cf->listens[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}


static void
server_socks_close(server_t *s, size_t n)
{
    for (unsigned w = 0; w < s->nworkers; w++) {
        cnd_wsock_t *ws = s->workers[w].socks;
        for (size_t i = 0; ws != NULL && i < n; i++) {
            if (ws[i].udp_fd >= 0) {
                close(ws[i].udp_fd);
                ws[i].udp_fd = -1;
            }
            if (ws[i].tcp_fd >= 0) {
                close(ws[i].tcp_fd);
                ws[i].tcp_fd = -1;
            }
        }
    }
}


/* A UDP socket for worker @w, which has no CPU of its own: a descriptor
 * of worker (w mod nudp)'s socket for listener @i.  Two workers that take
 * turns on one CPU and each wait on a socket of their own both wake up,
 * each to half the batch; on one socket, whichever runs reads it all.
 * bench/README.md: two workers on one CPU, 7% more answers per
 * CPU-second this way. */
static int
server_udp_share(const server_t *s, unsigned w, size_t i)
{
    return fcntl(s->workers[w % s->nudp].socks[i].udp_fd, F_DUPFD_CLOEXEC, 0);
}


/* Every worker's sockets for every listener of @cf that @old does not
 * have (at start, @old is NULL), in each worker's socks, or -1 with @err
 * set and nothing left open. */
static int
server_bind(server_t *s, const cnd_conf_t *cf, const cnd_conf_t *old, char *err,
            size_t errlen)
{
    for (unsigned w = 0; w < s->nworkers; w++) {
        free(s->workers[w].socks);
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
        if (server_listens_on(old, l->name)) {
            continue;
        }
        for (int t = 0; t < 2; t++) {
            int type = t == 0 ? SOCK_DGRAM : SOCK_STREAM;
            /* Probe without SO_REUSEPORT: fails if anyone holds it (the
             * port 0 stands for is held by its reservation). */
            if (cnd_port_zero_is(cnd_addr_port(&l->addr))) {
                break;
            }
            int probe = server_socket(l, type, false, err, errlen);
            if (probe < 0) {
                server_socks_close(s, cf->nlistens);
                return -1;
            }
            close(probe);
        }
        for (unsigned w = 0; w < s->nworkers; w++) {
            cnd_wsock_t *ws = &s->workers[w].socks[i];
            ws->wildcard = cnd_addr_is_any(&l->addr);
            if (w < s->nudp) {
                ws->udp_fd = server_socket(l, SOCK_DGRAM, true, err, errlen);
            } else if ((ws->udp_fd = server_udp_share(s, w, i)) < 0) {
                snprintf(err, errlen, "cannot share a UDP socket: %s",
                         strerror(errno));
            }
            if (ws->udp_fd >= 0) {
                ws->tcp_fd = server_socket(l, SOCK_STREAM, true, err, errlen);
            }
            if (ws->udp_fd < 0 || ws->tcp_fd < 0) {
                server_socks_close(s, cf->nlistens);
                return -1;
            }
        }
    }
    /* Our own sockets hold the port now; a reservation left in the group
     * of a wildcard listener would take a share of its queries. */
    cnd_port_zero_release();
    return 0;
}


/* Take every file descriptor the hard limit allows, as Go (1.19 and
 * later) does for CoreDNS at start: each TCP client holds one, and the
 * usual soft limit of 1024 is below one worker's connection cap. */
static void
server_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}


/* ---- plugins' start and stop ------------------------------------------ */

/* Run every start() hook of @cf; on an error, stop the ones started and
 * return -1 with the reason in @err. */
static int
server_plugins_start(cnd_conf_t *cf, char *err, size_t errlen)
{
    cf->err = err;
    cf->errlen = errlen;
    int rc = 0;
    size_t i;
    for (i = 0; i < cf->ninsts && rc == 0; i++) {
        cnd_inst_t *in = cf->insts[i];
        if (in->plugin->start != NULL && in->plugin->start(cf, in) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc != 0) {
        while (i-- > 0) {
            cnd_inst_t *in = cf->insts[i];
            if (in->plugin->stop != NULL) {
                in->plugin->stop(in);
            }
        }
    }
    cf->err = NULL;
    cf->errlen = 0;
    return rc;
}


static void
server_plugins_stop(cnd_conf_t *cf)
{
    for (size_t i = cf->ninsts; i-- > 0;) {
        cnd_inst_t *in = cf->insts[i];
        if (in->plugin->stop != NULL) {
            in->plugin->stop(in);
        }
    }
}


/* The port of the first listen address: it names the default control
 * socket, so servers on other ports do not share one. */
static uint16_t
server_first_port(const cnd_conf_t *cf)
{
    if (cf->nlistens == 0) {
        return 0;
    }
    const struct sockaddr_storage *a = &cf->listens[0].addr;
    return ntohs(a->ss_family == AF_INET
                     ? ((const struct sockaddr_in *)a)->sin_port
                     : ((const struct sockaddr_in6 *)a)->sin6_port);
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


/* ---- reload ----------------------------------------------------------- */

/* Free the replaced snapshots no worker uses any more.  Runs from a timer,
 * so the close callbacks of their tickers have run. */
static void
server_sweep_cb(uv_timer_t *t)
{
    server_t *s = t->data;
    cnd_conf_t **pp = &s->retired;
    while (*pp != NULL) {
        cnd_conf_t *cf = *pp;
        if (atomic_load(&cf->views) == 0) {
            *pp = cf->next_retired;
            cnd_conf_unref(cf);
        } else {
            pp = &cf->next_retired;
        }
    }
    if (s->retired == NULL) {
        uv_timer_stop(t);
    }
}


void
cnd_server_reload_failed(void)
{
    server_t *s = server_self;
    if (s->reload_failed == NULL) {
        s->reload_failed = cnd_metric_series(cnd_main_metrics(),
                                             &server_m_reload_failed, NULL);
    }
    if (s->reload_failed != NULL) {
        cnd_counter_add(s->reload_failed, 1);
    }
}


int
cnd_server_reload(char *err, size_t errlen)
{
    server_t *s = server_self;
    if (s == NULL || s->stopping || uv_is_active((uv_handle_t *)&s->lameduck)) {
        snprintf(err, errlen, "the server is stopping");
        return -1;
    }
    cnd_conf_t *old = s->conf;
    cnd_log(CND_LOG_INFO, NULL, "Reloading");
    size_t len = 0;
    char *text = cnd_conf_read(old->file, &len);
    if (text == NULL) {
        snprintf(err, errlen, "unable to read Corefile %s: %s", old->file,
                 strerror(errno));
        cnd_server_reload_failed();
        return -1;
    }
    cnd_conf_t *cf = cnd_conf_load(s->opts, old->file, text, len, err, errlen);
    free(text);
    if (cf == NULL) {
        cnd_server_reload_failed();
        return -1;
    }
    if (server_bind(s, cf, old, err, errlen) != 0) {
        goto fail;
    }
    if (server_plugins_start(cf, err, errlen) != 0) {
        server_socks_close(s, cf->nlistens);
        goto fail;
    }
    cnd_reload_t rl = {.conf = cf, .rc = 0};
    unsigned prepared = 0;
    while (prepared < s->nworkers && rl.rc == 0) {
        cnd_worker_t *w = &s->workers[prepared++];
        if (cnd__worker_call(w, cnd__worker_prepare, &rl) != 0) {
            rl.rc = -1;
            snprintf(w->start_err, sizeof(w->start_err), "worker %u ended",
                     w->id);
        }
        if (rl.rc != 0) {
            snprintf(err, errlen, "%s", w->start_err);
        }
    }
    if (rl.rc != 0) {
        for (unsigned i = 0; i < prepared; i++) {
            cnd__worker_call(&s->workers[i], cnd__worker_abort, &rl);
        }
        server_socks_close(s, cf->nlistens);
        server_plugins_stop(cf);
        goto fail;
    }
    for (unsigned i = 0; i < s->nworkers; i++) {
        cnd__worker_call(&s->workers[i], cnd__worker_commit, &rl);
    }
    /* Every worker serves @cf now; the old snapshot finishes what it has
     * in flight and is freed by the sweep. */
    cnd_conf_tickers_stop(old);
    server_plugins_stop(old);
    old->next_retired = s->retired;
    s->retired = old;
    if (!uv_is_active((uv_handle_t *)&s->sweep)) {
        uv_timer_start(&s->sweep, server_sweep_cb, 100, 100);
    }
    s->conf = cf;
    cnd_conf_tickers_start(cf, s->loop);
    cnd_log(CND_LOG_INFO, NULL, "Reloading complete");
    return 0;
fail:
    cnd_conf_unref(cf);
    cnd_server_reload_failed();
    return -1;
}


cnd_worker_t *
cnd__server_workers(unsigned *n)
{
    if (server_self == NULL || server_self->stopping) {
        *n = 0;
        return NULL;
    }
    *n = server_self->nworkers;
    return server_self->workers;
}


const cnd_conf_t *
cnd_server_conf(void)
{
    return server_self != NULL ? server_self->conf : NULL;
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
server_lameduck_cb(uv_timer_t *t)
{
    server_stop(t->data);
}


/* SIGTERM, SIGINT: tell the plugins (ready closes /ready), keep serving
 * DNS through the lameduck, then stop. */
static void
server_shutdown(server_t *s)
{
    if (s->stopping || uv_is_active((uv_handle_t *)&s->lameduck)) {
        return;
    }
    cnd_conf_t *cf = s->conf;
    for (size_t i = 0; i < cf->ninsts; i++) {
        cnd_inst_t *in = cf->insts[i];
        if (in->plugin->shutdown != NULL) {
            in->plugin->shutdown(in);
        }
    }
    if (cf->lameduck_ns <= 0) {
        server_stop(s);
        return;
    }
    s->lameduck.data = s;
    uv_timer_start(&s->lameduck, server_lameduck_cb,
                   (uint64_t)(cf->lameduck_ns / 1000000), 0);
}


static void
server_signal_cb(uv_signal_t *h, int signum)
{
    server_t *s = h->data;
    switch (signum) {
    case SIGTERM:
        cnd_log(CND_LOG_INFO, NULL,
                "SIGTERM: Shutting down servers then terminating");
        server_shutdown(s);
        break;
    case SIGINT:
        if (s->sigints++ > 0) {
            cnd_log(CND_LOG_INFO, NULL, "SIGINT: Force quit");
            exit(2);
        }
        cnd_log(CND_LOG_INFO, NULL, "SIGINT: Shutting down");
        server_shutdown(s);
        break;
    case SIGQUIT:
        cnd_log(CND_LOG_INFO, NULL, "SIGQUIT: Quitting process immediately");
        exit(0);
    case SIGUSR1: {
        char err[1024];
        cnd_log(CND_LOG_INFO, NULL, "SIGUSR1: Reloading");
        if (cnd_server_reload(err, sizeof(err)) != 0) {
            cnd_log(CND_LOG_ERROR, NULL,
                    "SIGUSR1: %s; the running configuration keeps serving",
                    err);
        }
        break;
    }
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


static void
server_worker_exit(void)
{
    atomic_fetch_add(&server_self->done, 1);
    uv_async_send(&server_self->done_async);
}


/* The worker count: -workers, else one per CPU this process can use
 * (util/cpus.h), at most 64; and one UDP socket per listener for each
 * worker that has a CPU.  More workers than usable CPUs take turns on
 * them and pay for it in wake-ups: say so, and how to fix it. */
static void
server_workers(server_t *s, const cnd_opts_t *opts)
{
    cnd_cpus_t c;
    cnd_cpus("", &c);
    unsigned usable = c.usable > 64 ? 64 : c.usable;
    s->nworkers = opts->workers != 0 ? opts->workers : usable;
    s->nudp = s->nworkers < usable ? s->nworkers : usable;
    if (s->nworkers > c.usable) {
        char lim[320] = "no cgroup CPU limit";
        if (c.limit > 0) {
            snprintf(lim, sizeof(lim), "cgroup limit %.2f in %s", c.limit,
                     c.limit_file);
        }
        CND_LOG_WARN("-workers %u, but this process can use %u CPU%s "
                     "(affinity mask %u, %s): workers that share a CPU "
                     "answer fewer queries per CPU-second. Fix: -workers "
                     "%u, or leave -workers out for one per usable CPU",
                     opts->workers, c.usable, c.usable == 1 ? "" : "s",
                     c.affinity, lim, c.usable);
    }
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
    server_workers(&s, opts);
    s.workers = calloc(s.nworkers, sizeof(*s.workers));
    server_self = &s;
    if (s.workers == NULL) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    server_raise_nofile();
    if (server_bind(&s, conf, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    uv_async_init(s.loop, &s.done_async, server_done_cb);
    uv_timer_init(s.loop, &s.lameduck);
    uv_timer_init(s.loop, &s.sweep);
    s.sweep.data = &s;
    s.done_async.data = &s;
    /* Before the workers answer anything: a SIGTERM that follows the
     * first answer must stop the server gracefully, not kill it. */
    static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGHUP};
    for (size_t i = 0; i < 5; i++) {
        uv_signal_init(s.loop, &s.sig[i]);
        s.sig[i].data = &s;
        uv_signal_start(&s.sig[i], server_signal_cb, sigs[i]);
    }
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
    if (server_plugins_start(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1); /* workers already running cannot be unwound */
    }
    /* The control socket before the banner: whoever waits for the
     * banner may use it at once. */
    if (cnd_ctl_start(s.loop, opts->ctl_path, server_first_port(conf),
                      !opts->quiet) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    if (!opts->quiet) {
        server_banner(conf);
    }
    cnd_conf_tickers_start(conf, s.loop);
    uv_run(s.loop, UV_RUN_DEFAULT);

    for (unsigned i = 0; i < s.nworkers; i++) {
        cnd__worker_join(&s.workers[i]);
    }
    cnd_ctl_stop();
    conf = s.conf; /* the one serving last */
    cnd_conf_tickers_stop(conf);
    server_plugins_stop(conf);
    for (size_t i = 0; i < 5; i++) {
        uv_close((uv_handle_t *)&s.sig[i], server_close_cb);
    }
    uv_close((uv_handle_t *)&s.done_async, server_close_cb);
    uv_close((uv_handle_t *)&s.lameduck, server_close_cb);
    uv_close((uv_handle_t *)&s.sweep, server_close_cb);
    uv_run(s.loop, UV_RUN_DEFAULT);
    while (s.retired != NULL) {
        /* the workers are gone, and their views with them */
        cnd_conf_t *cf = s.retired;
        s.retired = cf->next_retired;
        cnd_conf_unref(cf);
    }
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
