/* SPDX-License-Identifier: MIT */
/*
 * core/ctl.c - the control socket and the core's commands.
 *
 * The main thread accepts on a unix socket, reads one command line per
 * connection (at most CTL_LINE_MAX bytes, within CTL_READ_MS), runs it
 * and writes the reply, then closes.  Commands that need a worker's
 * state run a function on each worker in turn (cnd__worker_call): the
 * main thread waits, so the reply buffer has one writer at a time.
 */
#include "core/ctl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/server.h"
#include "dns/msg.h"
#include "util/log.h"

#define CTL_LINE_MAX 1024
#define CTL_ARGS_MAX 16
#define CTL_READ_MS  5000

struct cnd_ctl_s {
    char *out;
    size_t len, cap;
    bool failed, oom;
};

/* One client connection. */
typedef struct {
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_write_t wr;
    char line[CTL_LINE_MAX + 1];
    size_t len;
    cnd_ctl_t reply;
    unsigned handles;
    bool done;
} ctl_conn_t;

/* The listening socket.  Main thread only. */
static struct {
    uv_pipe_t pipe;
    bool on;
    char path[108];
} ctl_srv;


/* ---- replies ---------------------------------------------------------- */

static void
ctl_vprintf(cnd_ctl_t *ctl, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || ctl->oom) {
        return;
    }
    if (ctl->len + (size_t)n + 1 > ctl->cap) {
        size_t cap = ctl->cap ? ctl->cap : 4096;
        while (cap < ctl->len + (size_t)n + 1) {
            cap *= 2;
        }
        char *p = realloc(ctl->out, cap);
        if (p == NULL) {
            ctl->oom = true;
            return;
        }
        ctl->out = p;
        ctl->cap = cap;
    }
    vsnprintf(ctl->out + ctl->len, ctl->cap - ctl->len, fmt, ap);
    ctl->len += (size_t)n;
}


void
cnd_ctl_printf(cnd_ctl_t *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctl_vprintf(ctl, fmt, ap);
    va_end(ap);
}


int
cnd_ctl_error(cnd_ctl_t *ctl, const char *fmt, ...)
{
    ctl->len = 0;
    ctl->failed = true;
    cnd_ctl_printf(ctl, "error: ");
    va_list ap;
    va_start(ap, fmt);
    ctl_vprintf(ctl, fmt, ap);
    va_end(ap);
    cnd_ctl_printf(ctl, "\n");
    return -1;
}


void
cnd_ctl_workers(cnd_ctl_t *ctl, void (*fn)(cnd_worker_t *w, void *arg),
                void *arg)
{
    (void)ctl;
    unsigned n;
    cnd_worker_t *ws = cnd__server_workers(&n);
    for (unsigned i = 0; i < n; i++) {
        cnd__worker_call(&ws[i], fn, arg);
    }
}


void *
cnd_worker_pdata(cnd_worker_t *w, const cnd_inst_t *self)
{
    cnd_wconf_t *wc = cnd__worker_view(w, self->srv->conf);
    return wc != NULL ? wc->pdata[self->wslot] : NULL;
}


/* ---- the core's commands ---------------------------------------------- */

typedef struct {
    cnd_ctl_t *ctl;
    uint64_t now_ns;
    unsigned total, max;
} ctl_walk_t;


static void
ctl_stats_worker(cnd_worker_t *w, void *arg)
{
    ctl_walk_t *wk = arg;
    cnd_ctl_printf(wk->ctl,
                   "worker.%u.requestlist.current=%u\n"
                   "worker.%u.requestlist.max=%u\n"
                   "worker.%u.queries.dropped=%llu\n"
                   "worker.%u.queries.light=%llu\n"
                   "worker.%u.udp.waits=%llu\n"
                   "worker.%u.tcp.connections=%u\n"
                   "worker.%u.tcp.evicted=%llu\n",
                   w->id, w->ninflight, w->id, w->ninflight_max, w->id,
                   (unsigned long long)w->dropped, w->id,
                   (unsigned long long)w->light, w->id,
                   (unsigned long long)w->udp_waits, w->id,
                   w->nconns - w->nconns_closing, w->id,
                   (unsigned long long)w->tcp_evicted);
    wk->total += w->ninflight;
    wk->max += w->ninflight_max;
}


/* The counters: the request list, then every metric as NAME{LABELS}=V. */
static int
ctl_stats(cnd_ctl_t *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        return cnd_ctl_error(ctl, "stats takes no arguments");
    }
    ctl_walk_t wk = {.ctl = ctl};
    cnd_ctl_workers(ctl, ctl_stats_worker, &wk);
    cnd_ctl_printf(ctl, "requestlist.current=%u\nrequestlist.max=%u\n",
                   wk.total, wk.max);
    char *text = cnd_metrics_render();
    if (text == NULL) {
        return cnd_ctl_error(ctl, "out of memory");
    }
    for (char *line = strtok(text, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        char *sp = strrchr(line, ' ');
        if (line[0] == '#' || sp == NULL || strstr(line, "_bucket{") != NULL) {
            continue;
        }
        *sp = '=';
        cnd_ctl_printf(ctl, "%s\n", line);
    }
    free(text);
    return 0;
}


static void
ctl_dump_worker(cnd_worker_t *w, void *arg)
{
    ctl_walk_t *wk = arg;
    for (cnd_req_t *r = w->inflight.next; r != &w->inflight; r = r->next) {
        char client[64] = "-", name[KNOT_DNAME_TXT_MAXLEN + 1] = "?";
        char type[16] = "?", detail[512] = "";
        const char *proto = r->proto == CND_PROTO_UDP   ? "udp"
                            : r->proto == CND_PROTO_TCP ? "tcp"
                                                        : "internal";
        if (r->proto != CND_PROTO_INTERNAL) {
            cnd_addr_str(&r->remote, client, sizeof(client), true);
        }
        if (r->qname != NULL) {
            knot_dname_to_str(name, r->qname, sizeof(name));
            cnd_type_str(r->qtype, type, sizeof(type));
        }
        const cnd_inst_t *in = cnd_req_parked_in(r);
        const char *state = r->state == CND_REQ_PARKED ? "waiting"
                            : r->state == CND_REQ_BACK ? "answering"
                                                       : "running";
        if (in != NULL && in->plugin->describe != NULL) {
            in->plugin->describe(r, (cnd_inst_t *)in, detail, sizeof(detail));
        }
        uint64_t age_us = (wk->now_ns - r->start_ns) / 1000;
        cnd_ctl_printf(wk->ctl, "%u %u.%03us %s %s %s %s %s %s%s%s\n", w->id,
                       (unsigned)(age_us / 1000000),
                       (unsigned)(age_us / 1000 % 1000), client, proto, name,
                       type, state, in != NULL ? in->plugin->name : "-",
                       detail[0] ? " " : "", detail);
        wk->total++;
    }
}


/* Every request in flight on every worker, oldest age first per worker:
 * WORKER AGE CLIENT PROTO NAME TYPE STATE PLUGIN [WHAT IT WAITS ON]. */
static int
ctl_dump_requestlist(cnd_ctl_t *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        return cnd_ctl_error(ctl, "dump_requestlist takes no arguments");
    }
    ctl_walk_t wk = {.ctl = ctl, .now_ns = uv_hrtime()};
    cnd_ctl_printf(ctl, "# worker age client proto name type state plugin "
                        "detail\n");
    cnd_ctl_workers(ctl, ctl_dump_worker, &wk);
    cnd_ctl_printf(ctl, "# %u in flight\n", wk.total);
    return 0;
}


static int
ctl_reload(cnd_ctl_t *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        return cnd_ctl_error(ctl, "reload takes no arguments");
    }
    char err[1024];
    cnd_log(CND_LOG_INFO, NULL, "ctl: Reloading");
    if (cnd_server_reload(err, sizeof(err)) != 0) {
        cnd_log(CND_LOG_ERROR, NULL,
                "ctl: %s; the running configuration keeps serving", err);
        return cnd_ctl_error(ctl,
                             "%s; the running configuration keeps "
                             "serving",
                             err);
    }
    cnd_ctl_printf(ctl, "ok\n");
    return 0;
}


static int
ctl_config(cnd_ctl_t *ctl, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        return cnd_ctl_error(ctl, "config takes no arguments");
    }
    const cnd_conf_t *cf = cnd_server_conf();
    cnd_ctl_printf(ctl, "# %s\n", cf->file);
    if (cnd_port_zero_get() != 0) {
        /* what ":0" in the text stands for (doctor reads it) */
        cnd_ctl_printf(ctl, "# port 0: %u\n", cnd_port_zero_get());
    }
    cnd_ctl_printf(ctl, "%s", cf->text);
    if (cf->text[0] != '\0' && cf->text[strlen(cf->text) - 1] != '\n') {
        cnd_ctl_printf(ctl, "\n");
    }
    return 0;
}


static int ctl_help(cnd_ctl_t *ctl, int argc, char **argv);

static const struct {
    const char *name, *args, *help;
    int (*run)(cnd_ctl_t *ctl, int argc, char **argv);
} ctl_core[] = {
    {"help", "", "list the commands", ctl_help},
    {"stats", "", "counters as key=value lines", ctl_stats},
    {"dump_requestlist", "",
     "every query in flight: worker, age, client, question, what it "
     "waits on",
     ctl_dump_requestlist},
    {"reload", "", "load the Corefile again (as SIGUSR1)", ctl_reload},
    {"config", "", "the running Corefile", ctl_config},
};
#define CTL_NCORE (sizeof(ctl_core) / sizeof(ctl_core[0]))


/* Each plugin command once, whatever the number of instances. */
static bool
ctl_listed_before(const cnd_conf_t *cf, size_t upto, const char *name)
{
    for (size_t i = 0; i < upto; i++) {
        const cnd_ctl_cmd_t *c = cf->insts[i]->plugin->ctl;
        for (; c != NULL && c->name != NULL; c++) {
            if (strcmp(c->name, name) == 0) {
                return true;
            }
        }
    }
    return false;
}


static int
ctl_help(cnd_ctl_t *ctl, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < CTL_NCORE; i++) {
        cnd_ctl_printf(ctl, "%-18s %s\n", ctl_core[i].name, ctl_core[i].help);
    }
    const cnd_conf_t *cf = cnd_server_conf();
    for (size_t i = 0; i < cf->ninsts; i++) {
        const cnd_ctl_cmd_t *c = cf->insts[i]->plugin->ctl;
        for (; c != NULL && c->name != NULL; c++) {
            if (!ctl_listed_before(cf, i, c->name)) {
                char head[64];
                snprintf(head, sizeof(head), "%s%s%s", c->name,
                         c->args[0] ? " " : "", c->args);
                cnd_ctl_printf(ctl, "%-18s %s (%s)\n", head, c->help,
                               cf->insts[i]->plugin->name);
            }
        }
    }
    return 0;
}


static void
ctl_run(cnd_ctl_t *ctl, int argc, char **argv)
{
    if (argc == 0) {
        cnd_ctl_error(ctl, "no command; try \"candor ctl help\"");
        return;
    }
    for (size_t i = 0; i < CTL_NCORE; i++) {
        if (strcmp(argv[0], ctl_core[i].name) == 0) {
            ctl_core[i].run(ctl, argc, argv);
            return;
        }
    }
    const cnd_conf_t *cf = cnd_server_conf();
    bool found = false;
    for (size_t i = 0; i < cf->ninsts && !ctl->failed; i++) {
        cnd_inst_t *in = cf->insts[i];
        const cnd_ctl_cmd_t *c = in->plugin->ctl;
        for (; c != NULL && c->name != NULL; c++) {
            if (strcmp(c->name, argv[0]) == 0) {
                found = true;
                c->run(ctl, in, argc, argv);
            }
        }
    }
    if (!found) {
        cnd_ctl_error(ctl,
                      "unknown command \"%s\" (not a core command, and no "
                      "plugin of the running Corefile has it); try \"candor "
                      "ctl help\"",
                      argv[0]);
    }
}


/* ---- the socket ------------------------------------------------------- */

static void
ctl_conn_closed(uv_handle_t *h)
{
    ctl_conn_t *c = h->data;
    if (--c->handles == 0) {
        free(c->reply.out);
        free(c);
    }
}


static void
ctl_conn_close(ctl_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->pipe)) {
        uv_close((uv_handle_t *)&c->pipe, ctl_conn_closed);
        uv_close((uv_handle_t *)&c->timer, ctl_conn_closed);
    }
}


static void
ctl_written(uv_write_t *wr, int status)
{
    (void)status;
    ctl_conn_close(wr->data);
}


static void
ctl_reply(ctl_conn_t *c)
{
    c->done = true;
    uv_read_stop((uv_stream_t *)&c->pipe);
    uv_timer_stop(&c->timer);
    if (c->reply.oom) {
        c->reply.len = 0;
        cnd_ctl_error(&c->reply, "out of memory");
    }
    uv_buf_t buf = uv_buf_init(c->reply.out, (unsigned)c->reply.len);
    c->wr.data = c;
    if (c->reply.len == 0 ||
        uv_write(&c->wr, (uv_stream_t *)&c->pipe, &buf, 1, ctl_written) != 0) {
        ctl_conn_close(c);
    }
}


static void
ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    ctl_conn_t *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->line + c->len, (unsigned)(CTL_LINE_MAX - c->len));
}


static void
ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    ctl_conn_t *c = s->data;
    (void)buf;
    if (c->done) {
        return;
    }
    if (n < 0) {
        ctl_conn_close(c);
        return;
    }
    c->len += (size_t)n;
    char *nl = memchr(c->line, '\n', c->len);
    if (nl == NULL && c->len < CTL_LINE_MAX) {
        return;
    }
    if (nl == NULL) {
        cnd_ctl_error(&c->reply, "command longer than %d bytes", CTL_LINE_MAX);
        ctl_reply(c);
        return;
    }
    *nl = '\0';
    char *argv[CTL_ARGS_MAX + 1];
    int argc = 0;
    char *save = NULL;
    for (char *t = strtok_r(c->line, " \t\r", &save); t != NULL;
         t = strtok_r(NULL, " \t\r", &save)) {
        if (argc == CTL_ARGS_MAX) {
            cnd_ctl_error(&c->reply, "more than %d arguments", CTL_ARGS_MAX);
            ctl_reply(c);
            return;
        }
        argv[argc++] = t;
    }
    argv[argc] = NULL;
    ctl_run(&c->reply, argc, argv);
    ctl_reply(c);
}


static void
ctl_timeout(uv_timer_t *t)
{
    ctl_conn_close(t->data);
}


static void
ctl_accept(uv_stream_t *server, int status)
{
    if (status != 0) {
        return;
    }
    ctl_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    uv_pipe_init(server->loop, &c->pipe, 0);
    uv_timer_init(server->loop, &c->timer);
    c->pipe.data = c->timer.data = c;
    c->handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        ctl_conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, ctl_timeout, CTL_READ_MS, 0);
    uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc, ctl_read);
}


/* Where default sockets live: $CANDOR_CTL_DIR, else /run for root, else
 * $XDG_RUNTIME_DIR, else /tmp (where the name carries the user ID: the
 * folder is everyone's). */
static const char *
ctl_dir(bool *shared)
{
    const char *own = getenv("CANDOR_CTL_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    *shared = false;
    if (own != NULL && own[0] == '/') {
        return own;
    }
    if (geteuid() == 0) {
        return "/run";
    }
    if (xdg != NULL && xdg[0] == '/') {
        return xdg;
    }
    *shared = true;
    return "/tmp";
}


/* "candor-" or, in /tmp, "candor-UID-": the names of default sockets. */
static void
ctl_prefix(char *buf, size_t size, bool shared)
{
    if (shared) {
        snprintf(buf, size, "candor-%u-", (unsigned)geteuid());
    } else {
        snprintf(buf, size, "candor-");
    }
}


const char *
cnd_ctl_default_path(uint16_t port, char *buf, size_t size)
{
    bool shared;
    const char *dir = ctl_dir(&shared);
    char prefix[32];
    ctl_prefix(prefix, sizeof(prefix), shared);
    snprintf(buf, size, "%s/%s%u.ctl", dir, prefix, port);
    return buf;
}


static bool ctl_alive(const char *path);


int
cnd_ctl_resolve(const char *hint, uint16_t port, char *buf, size_t size,
                char *err, size_t errlen)
{
    if (hint != NULL && hint[0] != '\0') {
        bool digits = true;
        for (const char *c = hint; *c != '\0'; c++) {
            digits &= isdigit((unsigned char)*c) != 0;
        }
        long n = digits ? strtol(hint, NULL, 10) : 0;
        if (digits && n > 0 && n <= 65535) {
            cnd_ctl_default_path((uint16_t)n, buf, size);
        } else {
            snprintf(buf, size, "%s", hint);
        }
        return 0;
    }
    if (port != 0) {
        cnd_ctl_default_path(port, buf, size);
        if (ctl_alive(buf)) {
            return 0;
        }
    }
    /* None given: the one live default socket. */
    bool shared;
    const char *dir = ctl_dir(&shared);
    char prefix[32], found[8][108];
    ctl_prefix(prefix, sizeof(prefix), shared);
    size_t pl = strlen(prefix), n = 0;
    DIR *dh = opendir(dir);
    for (struct dirent *de; dh != NULL && (de = readdir(dh)) != NULL;) {
        size_t l = strlen(de->d_name);
        char path[108];
        if (l <= pl + 4 || strncmp(de->d_name, prefix, pl) != 0 ||
            strcmp(de->d_name + l - 4, ".ctl") != 0 ||
            !isdigit((unsigned char)de->d_name[pl]) ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
                sizeof(path) ||
            !ctl_alive(path)) {
            continue;
        }
        if (n < 8) {
            memcpy(found[n], path, sizeof(path));
        }
        n++;
    }
    if (dh != NULL) {
        closedir(dh);
    }
    if (n == 1) {
        snprintf(buf, size, "%s", found[0]);
        return 0;
    }
    if (n == 0) {
        snprintf(err, errlen,
                 "no candor control socket in %s (is candor running? give "
                 "its -ctl path with -s PATH, or its first port with -s "
                 "PORT)",
                 dir);
        return -1;
    }
    size_t o =
        (size_t)snprintf(err, errlen, "%zu candor servers run here (", n);
    for (size_t i = 0; i < n && i < 8 && o < errlen; i++) {
        o += (size_t)snprintf(err + o, errlen - o, "%s%s", i ? ", " : "",
                              found[i]);
    }
    if (o < errlen) {
        snprintf(err + o, errlen - o, "%s): say which with -s PATH or -s PORT",
                 n > 8 ? ", ..." : "");
    }
    return -1;
}


/* Is a server answering on @path? */
static bool
ctl_alive(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    bool alive = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return alive;
}


static void
ctl_closed(uv_handle_t *h)
{
    (void)h;
}


int
cnd_ctl_start(uv_loop_t *loop, const char *path, uint16_t port, bool announce)
{
    char def[108];
    bool is_default = path == NULL;
    if (path == NULL) {
        path = cnd_ctl_default_path(port, def, sizeof(def));
    }
    if (path[0] == '\0' || strcmp(path, "off") == 0) {
        return 0;
    }
    if (strlen(path) >= sizeof(ctl_srv.path)) {
        cnd_log(CND_LOG_WARNING, NULL,
                "ctl: socket path %s is longer than %zu bytes; no control "
                "socket (give a shorter -ctl PATH)",
                path, sizeof(ctl_srv.path) - 1);
        return 0;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode) || ctl_alive(path)) {
            cnd_log(CND_LOG_WARNING, NULL,
                    "ctl: %s is %s; no control socket (give another -ctl "
                    "PATH, or -ctl off)",
                    path,
                    S_ISSOCK(st.st_mode) ? "in use by another server"
                                         : "not a socket");
            return 0;
        }
        unlink(path); /* a stale socket of a server that is gone */
    }
    uv_pipe_init(loop, &ctl_srv.pipe, 0);
    mode_t old = umask(0177); /* owner-only, from the start */
    int rc = uv_pipe_bind(&ctl_srv.pipe, path);
    umask(old);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&ctl_srv.pipe, 16, ctl_accept);
    }
    if (rc != 0) {
        cnd_log(CND_LOG_WARNING, NULL,
                "ctl: cannot listen on %s: %s; no control socket (give "
                "another -ctl PATH)",
                path, uv_strerror(rc));
        uv_close((uv_handle_t *)&ctl_srv.pipe, ctl_closed);
        return 0;
    }
    chmod(path, 0600);
    snprintf(ctl_srv.path, sizeof(ctl_srv.path), "%s", path);
    ctl_srv.on = true;
    if (!announce) {
        return 0;
    }
    if (is_default) {
        cnd_log(CND_LOG_INFO, NULL, "Control socket %s: candor ctl -s %u help",
                path, port);
    } else {
        cnd_log(CND_LOG_INFO, NULL, "Control socket %s: candor ctl -s %s help",
                path, path);
    }
    return 0;
}


void
cnd_ctl_stop(void)
{
    if (!ctl_srv.on) {
        return;
    }
    uv_close((uv_handle_t *)&ctl_srv.pipe, ctl_closed);
    unlink(ctl_srv.path);
    ctl_srv.on = false;
}


/* ---- the client ------------------------------------------------------- */

int
cnd_ctl_request(const char *path, const char *line, char **out, size_t *len)
{
    char def[108], why[8];
    if (path == NULL) {
        if (cnd_ctl_resolve(NULL, 0, def, sizeof(def), why, sizeof(why)) != 0) {
            return -ENOENT;
        }
        path = def;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t ll = strlen(line);
    if (strlen(path) >= sizeof(sa.sun_path) || ll > CTL_LINE_MAX) {
        return -ENAMETOOLONG;
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        return -e;
    }
    struct iovec iov[2] = {{(void *)line, ll}, {"\n", 1}};
    if (writev(fd, iov, 2) != (ssize_t)ll + 1) {
        int e = errno;
        close(fd);
        return -e;
    }
    shutdown(fd, SHUT_WR);
    cnd_ctl_t reply = {0};
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        cnd_ctl_printf(&reply, "%.*s", (int)n, buf);
    }
    close(fd);
    if (reply.oom) {
        free(reply.out);
        return -ENOMEM;
    }
    if (reply.len == 0) {
        free(reply.out);
        return -ECONNRESET; /* closed without a reply */
    }
    *out = reply.out;
    *len = reply.len;
    return strncmp(reply.out, "error: ", 7) == 0 ? 1 : 0;
}


int
cnd_ctl_client(const char *hint, int argc, char **argv)
{
    char path[108], line[CTL_LINE_MAX + 1], err[1024];
    if (cnd_ctl_resolve(hint, 0, path, sizeof(path), err, sizeof(err)) != 0) {
        fprintf(stderr, "candor ctl: %s\n", err);
        return 2;
    }
    size_t len = 0;
    for (int i = 0; i < argc; i++) {
        int n = snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "",
                         argv[i]);
        if (n < 0 || len + (size_t)n >= sizeof(line)) {
            fprintf(stderr, "candor ctl: command longer than %d bytes\n",
                    CTL_LINE_MAX);
            return 1;
        }
        len += (size_t)n;
    }
    char *out = NULL;
    size_t olen = 0;
    int rc = cnd_ctl_request(path, line, &out, &olen);
    if (rc < 0) {
        if (rc == -ECONNRESET) {
            fprintf(stderr, "candor ctl: %s closed without a reply\n", path);
        } else {
            fprintf(stderr,
                    "candor ctl: cannot connect to %s: %s (is candor "
                    "running, and with this -ctl path? give it with -s "
                    "PATH)\n",
                    path, strerror(-rc));
        }
        return 2;
    }
    fwrite(out, 1, olen, rc == 1 ? stderr : stdout);
    free(out);
    return rc;
}
