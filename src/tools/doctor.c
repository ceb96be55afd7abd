/* SPDX-License-Identifier: MIT */
/*
 * tools/doctor.c - "candor doctor": the triage an engineer runs by hand
 * when a name fails, in one command.
 *
 * It reads the configuration (from the server itself over the control
 * socket when it can, else the Corefile), then gathers evidence: the name
 * through the server, an internal and an external name, every forward
 * target asked directly over UDP and TCP, loops, the server's health,
 * readiness, request list, max_concurrent rejects and SERVFAIL rate, and
 * the query again with CD set when validation may be the cause.  Each
 * check prints its result and evidence; then one verdict, the most likely
 * root cause, with the steps to fix it.  -json prints the same as one
 * object for scripts.
 *
 * Everything here blocks and runs once: it is a command-line tool, not
 * server code.
 */
#include "tools/doctor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libknot/libknot.h>

#include "core/conf.h"
#include "core/ctl.h"
#include "dns/ede.h"
#include "dns/msg.h"
#include "tools/dnsclient.h"
#include "util/log.h"

#define DOC_MAX_NAMES   8
#define DOC_MAX_TARGETS 32
#define DOC_MAX_CHECKS  96
/* Asking through the server: past its 5 s deadline. */
#define DOC_SERVER_MS 6000
/* Asking a target directly: forward's read timeout. */
#define DOC_TARGET_MS 2000
#define DOC_HTTP_MS   2000

typedef enum { DOC_OK = 0, DOC_WARN, DOC_FAIL, DOC_SKIP } doc_status_t;

static const char *const doc_status_tag[] = {"ok", "warn", "fail", "skip"};

/* One exchange: what came back, or how it failed. */
typedef struct {
    bool asked;
    int err; /* cnd_dnsc_err_t */
    int sys_errno;
    bool sent; /* UDP sent / TCP connected before the failure */
    uint16_t rcode;
    uint16_t ancount;
    uint64_t rtt_us;
    uint16_t ede_code; /* the first EDE, CND_EDE_NONE for none */
    char ede[600];     /* every EDE: "22 (No Reachable Authority): text" */
} doc_ans_t;

/* One forward target of the configuration. */
typedef struct {
    char name[64]; /* "127.0.0.1:53" */
    struct sockaddr_storage ss;
    socklen_t sslen;
    const char *file; /* the resolv.conf it came from, or NULL */
    const char *line; /* "forward . (Corefile:5)" */
    bool loopback, self;
    doc_ans_t udp, tcp, cd;
    bool known;          /* the server's ctl reported it          */
    bool replied_before; /* ...and has an RTT: it answered once   */
    bool down;           /* ...and marks it down                  */
    unsigned fails;      /* ...after this many failures in a row  */
} doc_target_t;

typedef struct {
    char id[64];
    char title[64];
    doc_status_t status;
    char text[700];
} doc_check_t;

typedef struct {
    const char *id, *title;
    char why[1200];
    char fix[3][600];
    int exit;
} doc_verdict_t;

typedef struct {
    /* flags */
    const char *names[DOC_MAX_NAMES];
    size_t nnames;
    const char *conf_path, *server_arg, *ctl_path;
    bool json;
    /* what it learned */
    cnd_opts_t opts;
    cnd_conf_t *cf;
    char conf_from[300];
    struct sockaddr_storage server;
    socklen_t server_len;
    char server_name[80];
    bool ctl_ok;
    char ctl_buf[108];       /* the socket ctl_path resolved to   */
    char ctl_why[512];       /* why none was found, or ""          */
    char *stats, *upstreams; /* ctl replies */
    char internal[KNOT_DNAME_TXT_MAXLEN + 1];
    /* The first /health, /ready and /metrics addresses (facts), or NULL */
    const char *http_health, *http_ready, *http_metrics;
    doc_target_t t[DOC_MAX_TARGETS];
    size_t nt;
    doc_ans_t name[DOC_MAX_NAMES], internal_ans, external;
    double rejects0, rejects1; /* max_concurrent rejects, twice */
    bool rejects_seen;
    double servfails, answers;
    bool loop_ede, overload_ede;
    int health, ready; /* HTTP status, 0: not configured, -1: no answer */
    doc_check_t checks[DOC_MAX_CHECKS];
    size_t nchecks;
} doc_t;


/* ---- output helpers --------------------------------------------------- */

static doc_check_t *doc_check(doc_t *d, doc_status_t st, const char *id,
                              const char *title, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static doc_check_t *
doc_check(doc_t *d, doc_status_t st, const char *id, const char *title,
          const char *fmt, ...)
{
    if (d->nchecks == DOC_MAX_CHECKS) {
        return NULL;
    }
    doc_check_t *c = &d->checks[d->nchecks++];
    c->status = st;
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->title, sizeof(c->title), "%s", title);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->text, sizeof(c->text), fmt, ap);
    va_end(ap);
    return c;
}


static void
doc_json_str(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}


/* ---- asking ----------------------------------------------------------- */

static void
doc_ask(const struct sockaddr_storage *ss, socklen_t len, const char *name,
        uint16_t type, bool tcp, bool cd, unsigned timeout_ms, doc_ans_t *a)
{
    memset(a, 0, sizeof(*a));
    a->asked = true;
    a->ede_code = CND_EDE_NONE;
    cnd_dnsc_query_t q;
    cnd_dnsc_query_init(&q, name);
    q.type = type;
    q.cd = cd;
    uint8_t query[512];
    static uint8_t reply[CND_DNSC_MAX_MSG];
    int qlen = cnd_dnsc_build(&q, query, sizeof(query));
    if (qlen < 0) {
        a->err = CND_DNSC_ESYS;
        a->sys_errno = -qlen;
        return;
    }
    cnd_dnsc_opts_t o = {
        .timeout_ms = timeout_ms, .tcp = tcp, .tc_retry = !tcp};
    cnd_dnsc_res_t res;
    a->err = cnd_dnsc_exchange((const struct sockaddr *)ss, len, query,
                               (size_t)qlen, reply, sizeof(reply), &o, &res);
    a->sys_errno = res.sys_errno;
    a->sent = res.sent;
    a->rtt_us = res.rtt_us;
    if (a->err != CND_DNSC_OK) {
        return;
    }
    cnd_dnsc_reply_t r;
    if (cnd_dnsc_parse(reply, res.len, &r) != 0) {
        a->err = CND_DNSC_EMALFORMED;
        return;
    }
    a->rcode = r.rcode;
    a->ancount = r.ancount;
    size_t o2 = 0;
    for (size_t i = 0; i < r.nede && o2 < sizeof(a->ede); i++) {
        if (i == 0) {
            a->ede_code = r.ede[i].code;
        }
        o2 += (size_t)snprintf(
            a->ede + o2, sizeof(a->ede) - o2, "%s%u (%s): %.*s", i ? "; " : "",
            r.ede[i].code, cnd_ede_name(r.ede[i].code), (int)r.ede[i].text_len,
            (const char *)r.ede[i].text);
    }
}


/* "NOERROR in 0.4 ms, 1 answer", "timed out after 2000 ms", ... */
static const char *
doc_ans_text(const doc_ans_t *a, unsigned timeout_ms, char *buf, size_t size)
{
    char rc[16];
    if (a->err == CND_DNSC_OK) {
        int n = snprintf(buf, size, "%s in %.1f ms",
                         cnd_rcode_str(a->rcode, rc, sizeof(rc)),
                         (double)a->rtt_us / 1000.0);
        if (a->rcode == KNOT_RCODE_NOERROR && n > 0 && (size_t)n < size) {
            n += snprintf(buf + n, size - (size_t)n, ", %u answer%s",
                          a->ancount, a->ancount == 1 ? "" : "s");
        }
        if (a->ede[0] != '\0' && n > 0 && (size_t)n < size) {
            snprintf(buf + n, size - (size_t)n, "; EDE %s", a->ede);
        }
    } else if (a->err == CND_DNSC_ETIMEOUT) {
        snprintf(buf, size, "%s, no reply within %u ms",
                 a->sent ? "sent" : "no connection", timeout_ms);
    } else {
        snprintf(buf, size, "%s", cnd_dnsc_strerror(a->err, a->sys_errno));
    }
    return buf;
}


static bool
doc_answered(const doc_ans_t *a)
{
    return a->asked && a->err == CND_DNSC_OK;
}


static bool
doc_refused(const doc_ans_t *a)
{
    return a->asked && a->err == CND_DNSC_EREFUSED;
}


static bool
doc_silent(const doc_ans_t *a)
{
    return a->asked && a->err == CND_DNSC_ETIMEOUT;
}


/* ---- the server's own view: control socket and HTTP ------------------- */

static char *
doc_ctl(doc_t *d, const char *cmd)
{
    char *out = NULL;
    size_t len = 0;
    if (d->ctl_path[0] == '\0') {
        return NULL;
    }
    int rc = cnd_ctl_request(d->ctl_path, cmd, &out, &len);
    if (rc != 0) {
        free(out);
        return NULL;
    }
    char *s = realloc(out, len + 1);
    if (s == NULL) {
        free(out);
        return NULL;
    }
    s[len] = '\0';
    return s;
}


/* The value of the line "KEY=V" (stats), summed over every line whose key
 * starts with @prefix and contains every one of @has (NULL-ended). */
static double
doc_stat(const char *stats, const char *prefix, const char *has)
{
    double sum = 0;
    size_t pl = strlen(prefix);
    for (const char *l = stats; l != NULL && *l != '\0';) {
        const char *nl = strchr(l, '\n');
        size_t len = nl != NULL ? (size_t)(nl - l) : strlen(l);
        const char *eq = memrchr(l, '=', len);
        if (len > pl && strncmp(l, prefix, pl) == 0 && eq != NULL &&
            (l[pl] == '{' || l[pl] == '=')) {
            char line[1024];
            snprintf(line, sizeof(line), "%.*s", (int)len, l);
            if (has == NULL || strstr(line, has) != NULL) {
                sum += strtod(line + (eq - l) + 1, NULL);
            }
        }
        l = nl != NULL ? nl + 1 : NULL;
    }
    return sum;
}


/* GET http://ADDR/PATH: the status, or -1 when nothing answered. */
static int
doc_http(const char *addr, const char *path)
{
    char host[80];
    struct sockaddr_storage ss;
    socklen_t len;
    if (cnd_addr_parse(addr, 0, CND_ADDR_NEED_PORT | CND_ADDR_DIAL, &ss, &len,
                       host, sizeof(host)) != CND_ADDR_OK) {
        return -1;
    }
    int fd =
        socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    int status = -1;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if ((connect(fd, (struct sockaddr *)&ss, len) == 0 ||
         errno == EINPROGRESS) &&
        poll(&p, 1, DOC_HTTP_MS) == 1) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        char req[256], buf[512];
        int n = snprintf(req, sizeof(req),
                         "GET %s HTTP/1.0\r\nHost: %s\r\n"
                         "User-Agent: candor-doctor\r\n\r\n",
                         path, addr);
        size_t got = 0;
        if (soerr == 0 && write(fd, req, (size_t)n) == n) {
            p.events = POLLIN;
            while (got < sizeof(buf) - 1 && poll(&p, 1, DOC_HTTP_MS) == 1) {
                ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
                if (r <= 0) {
                    break;
                }
                got += (size_t)r;
            }
        }
        buf[got] = '\0';
        if (strncmp(buf, "HTTP/1.", 7) == 0 && got > 12) {
            status = atoi(buf + 9);
        }
    }
    close(fd);
    return status;
}


/* ---- the configuration ------------------------------------------------ */

/* The Corefile's text: from the server (the one it runs), else a file. */
static int
doc_load_conf(doc_t *d)
{
    char *text = NULL;
    size_t len = 0;
    const char *file = NULL;
    char path[256] = "";
    if (d->conf_path == NULL) {
        char *cfg = doc_ctl(d, "config");
        if (cfg != NULL) {
            /* "# FILE\n" then the text */
            char *nl = strchr(cfg, '\n');
            if (strncmp(cfg, "# ", 2) == 0 && nl != NULL) {
                snprintf(path, sizeof(path), "%.*s", (int)(nl - cfg - 2),
                         cfg + 2);
                unsigned p0;
                char *nl2 = strchr(nl + 1, '\n');
                if (nl2 != NULL && sscanf(nl + 1, "# port 0: %u", &p0) == 1 &&
                    p0 > 0 && p0 <= 65535) {
                    /* the server's ":0" is its one kernel-picked port */
                    cnd_port_zero_set((uint16_t)p0);
                    nl = nl2;
                }
                text = strdup(nl + 1);
                len = text != NULL ? strlen(text) : 0;
                file = path;
                snprintf(d->conf_from, sizeof(d->conf_from),
                         "%s, from the running server", path);
            }
            free(cfg);
        }
    }
    if (text == NULL) {
        static const char *const tries[] = {"Corefile", "/etc/coredns/Corefile",
                                            NULL};
        for (size_t i = 0;
             text == NULL && (d->conf_path != NULL ? i == 0 : tries[i] != NULL);
             i++) {
            file = d->conf_path != NULL ? d->conf_path : tries[i];
            text = cnd_conf_read(file, &len);
            if (text == NULL && d->conf_path != NULL) {
                fprintf(stderr,
                        "candor doctor: cannot read %s: %s (give the "
                        "Corefile with -conf FILE, or the control socket "
                        "with -ctl PATH)\n",
                        file, strerror(errno));
                return -1;
            }
        }
        if (text == NULL) {
            fprintf(stderr,
                    "candor doctor: no configuration: the server's control "
                    "socket does not answer and there is no ./Corefile or "
                    "/etc/coredns/Corefile; give -conf FILE or -ctl PATH\n");
            return -1;
        }
        snprintf(d->conf_from, sizeof(d->conf_from), "%s", file);
    }
    char err[1024];
    d->opts.dns_port = 53;
    /* Plugins' start-up warnings are evidence, not output. */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cnd_log_set_fd(devnull);
    d->cf = cnd_conf_load(&d->opts, file, text, len, err, sizeof(err));
    cnd_log_set_fd(STDOUT_FILENO);
    close(devnull);
    free(text);
    if (d->cf == NULL) {
        fprintf(stderr, "candor doctor: the configuration does not load: %s\n",
                err);
        return -1;
    }
    return 0;
}


/* Where to ask: -server, else the first block's first listen address
 * (a wildcard is reached on the loopback). */
static int
doc_server(doc_t *d)
{
    if (d->server_arg != NULL) {
        if (cnd_addr_parse(d->server_arg, 53, 0, &d->server, &d->server_len,
                           NULL, 0) != CND_ADDR_OK) {
            fprintf(stderr,
                    "candor doctor: -server %s: not an IP address (give "
                    "ADDR[:PORT], e.g. 10.96.0.10 or [::1]:53)\n",
                    d->server_arg);
            return -1;
        }
    } else if (d->cf->nlistens > 0) {
        /* The first block's first listen address; a wildcard is reached
         * on the loopback of its family. */
        d->server = d->cf->listens[0].addr;
        if (cnd_addr_is_any(&d->server)) {
            struct sockaddr_storage lo;
            socklen_t lolen;
            cnd_addr_parse(d->server.ss_family == AF_INET6 ? "::1"
                                                           : "127.0.0.1",
                           cnd_addr_port(&d->server), 0, &lo, &lolen, NULL, 0);
            d->server = lo;
        }
        d->server_len = cnd_addr_len(&d->server);
    } else {
        cnd_addr_parse("127.0.0.1", 53, 0, &d->server, &d->server_len, NULL, 0);
    }
    cnd_addr_str(&d->server, d->server_name, sizeof(d->server_name), true);
    return 0;
}


/* Is @ss one of the server's own listen addresses? */
static bool
doc_is_self(const doc_t *d, const struct sockaddr_storage *ss)
{
    for (size_t i = 0; i < d->cf->nlistens; i++) {
        const struct sockaddr_storage *l = &d->cf->listens[i].addr;
        if (cnd_addr_port(l) != cnd_addr_port(ss)) {
            continue;
        }
        if (cnd_addr_same_ip(l, ss) ||
            (cnd_addr_is_any(l) && cnd_addr_is_loopback(ss))) {
            return true;
        }
    }
    return false;
}


/* What doctor learns of one instance through its facts() hook. */
typedef struct {
    doc_t *d;
    const cnd_inst_t *in;
} doc_facts_t;


static void
doc_fact(void *ud, const cnd_fact_t *f)
{
    doc_facts_t *x = ud;
    doc_t *d = x->d;
    if (f->kind == CND_FACT_NAME) {
        if (d->internal[0] == '\0') {
            snprintf(d->internal, sizeof(d->internal), "%s", f->text);
        }
        return;
    }
    if (f->kind == CND_FACT_HTTP) {
        const char **slot = strcmp(f->path, "/health") == 0  ? &d->http_health
                            : strcmp(f->path, "/ready") == 0 ? &d->http_ready
                            : strcmp(f->path, "/metrics") == 0
                                ? &d->http_metrics
                                : NULL;
        if (slot != NULL && *slot == NULL) {
            *slot = f->text;
        }
        return;
    }
    if (f->kind != CND_FACT_UPSTREAM || f->tls || d->nt >= DOC_MAX_TARGETS) {
        return; /* DoT targets: not asked directly (yet) */
    }
    for (size_t k = 0; k < d->nt; k++) {
        if (strcmp(d->t[k].name, f->text) == 0) {
            return;
        }
    }
    doc_target_t *t = &d->t[d->nt++];
    snprintf(t->name, sizeof(t->name), "%s", f->text);
    t->ss = *f->addr;
    t->sslen = cnd_addr_len(f->addr);
    t->file = f->file;
    t->line =
        cnd_arena_printf(&d->cf->arena, "%s %s (%s:%d)", x->in->plugin->name,
                         f->zone ? f->zone : "", x->in->file, x->in->line);
    t->loopback = cnd_addr_is_loopback(&t->ss);
    t->self = doc_is_self(d, &t->ss);
}


/* Ask every instance's facts() hook: the forward targets (once each), an
 * internal name, the HTTP endpoints. */
static void
doc_facts(doc_t *d)
{
    doc_facts_t x = {.d = d};
    for (size_t i = 0; i < d->cf->ninsts; i++) {
        x.in = d->cf->insts[i];
        if (x.in->plugin->facts != NULL) {
            x.in->plugin->facts(x.in, doc_fact, &x);
        }
    }
    /* A zone plugin without its own facts: a name at its apex. */
    for (size_t i = 0; i < d->cf->ninsts && d->internal[0] == '\0'; i++) {
        const cnd_inst_t *in = d->cf->insts[i];
        const char *name = in->plugin->name;
        size_t nzones;
        const cnd_zone_t *zones = cnd_server_zones(in->srv, &nzones);
        bool k8s = strcmp(name, "kubernetes") == 0;
        if ((k8s || strcmp(name, "file") == 0) && in->plugin->facts == NULL &&
            nzones > 0) {
            snprintf(d->internal, sizeof(d->internal), "%s%s",
                     k8s ? "kubernetes.default.svc." : "", zones[0].name);
        }
    }
}


/* Which control socket: -ctl (a path, or a port), else the default one
 * of -server's port, else the one server running here. */
static void
doc_find_ctl(doc_t *d)
{
    uint16_t port = 0;
    struct sockaddr_storage ss;
    socklen_t len;
    if (d->server_arg != NULL && cnd_addr_parse(d->server_arg, 0, 0, &ss, &len,
                                                NULL, 0) == CND_ADDR_OK) {
        port = cnd_addr_port(&ss);
    }
    if (cnd_ctl_resolve(d->ctl_path, port, d->ctl_buf, sizeof(d->ctl_buf),
                        d->ctl_why, sizeof(d->ctl_why)) == 0) {
        d->ctl_path = d->ctl_buf;
        d->ctl_why[0] = '\0';
    } else {
        d->ctl_path = ""; /* none: doc_ctl() gets nothing */
    }
}


/* What the server's control socket says of each target. */
static void
doc_server_view(doc_t *d)
{
    d->stats = doc_ctl(d, "stats");
    d->upstreams = doc_ctl(d, "upstreams");
    d->ctl_ok = d->stats != NULL;
    for (size_t i = 0; d->upstreams != NULL && i < d->nt; i++) {
        char key[80];
        snprintf(key, sizeof(key), "  %s ", d->t[i].name);
        const char *l = strstr(d->upstreams, key);
        if (l != NULL) {
            d->t[i].known = true;
            d->t[i].down = strncmp(l + strlen(key), "down", 4) == 0;
            const char *f = strstr(l, " fails=");
            d->t[i].fails = f != NULL ? (unsigned)atoi(f + 7) : 0;
            const char *rtt = strstr(l, " rtt=");
            d->t[i].replied_before = rtt != NULL && rtt[5] != '-';
        }
    }
}


/* ---- checks ----------------------------------------------------------- */

static void
doc_check_names(doc_t *d)
{
    char buf[800];
    for (size_t i = 0; i < d->nnames; i++) {
        doc_ans_t *a = &d->name[i];
        doc_ask(&d->server, d->server_len, d->names[i], KNOT_RRTYPE_A, false,
                false, DOC_SERVER_MS, a);
        doc_status_t st = !doc_answered(a)                  ? DOC_FAIL
                          : a->rcode == KNOT_RCODE_NOERROR  ? DOC_OK
                          : a->rcode == KNOT_RCODE_NXDOMAIN ? DOC_WARN
                                                            : DOC_FAIL;
        char id[64];
        snprintf(id, sizeof(id), "name:%s", d->names[i]);
        doc_check(d, st, id, "the name through the server", "%s A via %s: %s",
                  d->names[i], d->server_name,
                  doc_ans_text(a, DOC_SERVER_MS, buf, sizeof(buf)));
        d->loop_ede |= strstr(a->ede, "loop:") != NULL;
        d->overload_ede |= strstr(a->ede, "max_concurrent") != NULL;
    }
    if (d->internal[0] != '\0') {
        doc_ask(&d->server, d->server_len, d->internal, KNOT_RRTYPE_A, false,
                false, DOC_SERVER_MS, &d->internal_ans);
        doc_check(
            d,
            doc_answered(&d->internal_ans) &&
                    d->internal_ans.rcode == KNOT_RCODE_NOERROR
                ? DOC_OK
                : DOC_FAIL,
            "internal", "an internal name", "%s A: %s", d->internal,
            doc_ans_text(&d->internal_ans, DOC_SERVER_MS, buf, sizeof(buf)));
    } else {
        doc_check(d, DOC_SKIP, "internal", "an internal name",
                  "none in the configuration (no hosts, file or kubernetes)");
    }
    if (d->nt > 0) {
        doc_ask(&d->server, d->server_len, ".", KNOT_RRTYPE_NS, false, false,
                DOC_SERVER_MS, &d->external);
        /* REFUSED: the upstream is authoritative for some zones only. */
        uint16_t rc = d->external.rcode;
        doc_check(d,
                  !doc_answered(&d->external) ? DOC_FAIL
                  : rc == KNOT_RCODE_NOERROR  ? DOC_OK
                  : rc == KNOT_RCODE_REFUSED  ? DOC_WARN
                                              : DOC_FAIL,
                  "external", "an external name", ". NS (forwarded): %s%s",
                  doc_ans_text(&d->external, DOC_SERVER_MS, buf, sizeof(buf)),
                  doc_answered(&d->external) && rc == KNOT_RCODE_REFUSED
                      ? " (the upstream serves some zones only?)"
                      : "");
    } else {
        doc_check(d, DOC_SKIP, "external", "an external name",
                  "not asked: the configuration forwards nothing");
    }
}


static void
doc_check_targets(doc_t *d)
{
    const char *name = d->nnames > 0 ? d->names[0] : ".";
    uint16_t type = d->nnames > 0 ? KNOT_RRTYPE_A : KNOT_RRTYPE_NS;
    char buf[800], id[96];
    for (size_t i = 0; i < d->nt; i++) {
        doc_target_t *t = &d->t[i];
        if (t->self) {
            snprintf(id, sizeof(id), "upstream:%s", t->name);
            doc_check(d, DOC_FAIL, id, "a forward target",
                      "%s: not asked; it is this server's own address (%s)",
                      t->name, t->line);
            continue;
        }
        for (int tcp = 0; tcp < 2; tcp++) {
            doc_ans_t *a = tcp ? &t->tcp : &t->udp;
            doc_ask(&t->ss, t->sslen, name, type, tcp, false, DOC_TARGET_MS, a);
            snprintf(id, sizeof(id), "upstream:%s:%s", t->name,
                     tcp ? "tcp" : "udp");
            doc_status_t st = !doc_answered(a) ? DOC_FAIL
                              : a->rcode == KNOT_RCODE_SERVFAIL ||
                                      a->rcode == KNOT_RCODE_REFUSED
                                  ? DOC_FAIL
                                  : DOC_OK;
            doc_check(d, st, id, "a forward target",
                      "%s %s, asked directly: %s", t->name, tcp ? "tcp" : "udp",
                      doc_ans_text(a, DOC_TARGET_MS, buf, sizeof(buf)));
        }
        if (t->known) {
            snprintf(id, sizeof(id), "server-view:%s", t->name);
            doc_check(d,
                      t->down        ? DOC_FAIL
                      : t->fails > 0 ? DOC_WARN
                                     : DOC_OK,
                      id, "the server's view of it",
                      "%s: %s by the server (%u failures in a row)%s", t->name,
                      t->down ? "marked down" : "not marked down", t->fails,
                      t->replied_before ? "; it has answered before"
                                        : "; no answer from it since start");
        }
    }
}


static void
doc_check_loops(doc_t *d)
{
    char what[600] = "";
    size_t o = 0;
    doc_status_t st = DOC_OK;
    for (size_t i = 0; i < d->nt && o < sizeof(what); i++) {
        const doc_target_t *t = &d->t[i];
        if (t->self) {
            o += (size_t)snprintf(what + o, sizeof(what) - o,
                                  "%s%s is this server (%s)", o ? "; " : "",
                                  t->name, t->line);
            st = DOC_FAIL;
        } else if (t->file != NULL && t->loopback) {
            o += (size_t)snprintf(what + o, sizeof(what) - o,
                                  "%s%s lists %s, a stub on this host's "
                                  "loopback",
                                  o ? "; " : "", t->file, t->name);
            st = st == DOC_FAIL ? DOC_FAIL : DOC_WARN;
        }
    }
    if (d->loop_ede) {
        snprintf(what + o, sizeof(what) - o,
                 "%sthe server's answer says the query looped", o ? "; " : "");
        st = DOC_FAIL;
    }
    doc_check(d, st, "loop", "loops", "%s",
              st == DOC_OK ? "no forward target is this server or a "
                             "loopback stub from a resolv.conf"
                           : what);
}


static void
doc_check_server(doc_t *d)
{
    const char *health = d->http_health, *ready = d->http_ready;
    d->health = health != NULL ? doc_http(health, "/health") : 0;
    d->ready = ready != NULL ? doc_http(ready, "/ready") : 0;
    doc_check(d,
              d->health == 200 ? DOC_OK
              : d->health == 0 ? DOC_SKIP
                               : DOC_FAIL,
              "health", "health",
              d->health == 0  ? "no health plugin in the configuration"
              : d->health < 0 ? "/health on %s does not answer"
                              : "/health on %s: HTTP %d",
              health != NULL ? health : "", d->health);
    doc_check(d,
              d->ready == 200 ? DOC_OK
              : d->ready == 0 ? DOC_SKIP
                              : DOC_FAIL,
              "ready", "readiness",
              d->ready == 0  ? "no ready plugin in the configuration"
              : d->ready < 0 ? "/ready on %s does not answer"
                             : "/ready on %s: HTTP %d",
              ready != NULL ? ready : "", d->ready);
    if (!d->ctl_ok) {
        doc_check(d, DOC_SKIP, "requestlist", "the request list", "%s",
                  d->ctl_why[0] != '\0'
                      ? d->ctl_why
                      : "the control socket does not answer (give -ctl PATH)");
        doc_check(d, DOC_SKIP, "max_concurrent", "max_concurrent rejects",
                  "the control socket does not answer");
        doc_check(d, DOC_SKIP, "servfail_rate", "the SERVFAIL rate",
                  "the control socket does not answer");
        return;
    }
    /* Fresh counters: the checks above asked the server too. */
    char *now = doc_ctl(d, "stats");
    if (now != NULL) {
        free(d->stats);
        d->stats = now;
    }
    double cur = doc_stat(d->stats, "requestlist.current", NULL);
    double max = doc_stat(d->stats, "requestlist.max", NULL);
    doc_check(d, cur > 1000 ? DOC_WARN : DOC_OK, "requestlist",
              "the request list", "%.0f queries in flight now, %.0f at most",
              cur, max);
    /* Rejects, now and a second later: rising means overload now. */
    d->rejects0 = doc_stat(
        d->stats, "coredns_forward_max_concurrent_rejects_total", NULL);
    sleep(1);
    char *again = doc_ctl(d, "stats");
    d->rejects1 =
        again != NULL
            ? doc_stat(again, "coredns_forward_max_concurrent_rejects_total",
                       NULL)
            : d->rejects0;
    free(again);
    d->rejects_seen = d->rejects1 > d->rejects0;
    doc_check(d,
              d->rejects_seen   ? DOC_FAIL
              : d->rejects1 > 0 ? DOC_WARN
                                : DOC_OK,
              "max_concurrent", "max_concurrent rejects",
              "%.0f refused so far, %.0f in the last second", d->rejects1,
              d->rejects1 - d->rejects0);
    d->servfails =
        doc_stat(d->stats, "coredns_dns_responses_total", "rcode=\"SERVFAIL\"");
    d->answers = doc_stat(d->stats, "coredns_dns_responses_total", NULL);
    if (d->answers > 0) {
        doc_check(d, d->servfails / d->answers > 0.05 ? DOC_WARN : DOC_OK,
                  "servfail_rate", "the SERVFAIL rate",
                  "%.0f SERVFAIL of %.0f answers (%.1f%%) since start, "
                  "these checks included",
                  d->servfails, d->answers, 100.0 * d->servfails / d->answers);
    } else {
        doc_check(d, DOC_SKIP, "servfail_rate", "the SERVFAIL rate",
                  "no coredns_dns_responses_total (no prometheus plugin)");
    }
}


/* A DNSSEC code (1 to 12), or an upstream SERVFAIL: ask again with CD. */
static void
doc_check_dnssec(doc_t *d)
{
    char buf[800];
    bool asked = false;
    for (size_t i = 0; i < d->nt; i++) {
        doc_target_t *t = &d->t[i];
        if (!doc_answered(&t->udp) || t->udp.rcode != KNOT_RCODE_SERVFAIL) {
            continue;
        }
        doc_ask(&t->ss, t->sslen, d->nnames > 0 ? d->names[0] : ".",
                d->nnames > 0 ? KNOT_RRTYPE_A : KNOT_RRTYPE_NS, false, true,
                DOC_TARGET_MS, &t->cd);
        char id[96];
        snprintf(id, sizeof(id), "dnssec:%s", t->name);
        bool bypass =
            doc_answered(&t->cd) && t->cd.rcode != KNOT_RCODE_SERVFAIL;
        doc_check(d, bypass ? DOC_FAIL : DOC_OK, id, "validation (with CD)",
                  "%s with CD: %s%s", t->name,
                  doc_ans_text(&t->cd, DOC_TARGET_MS, buf, sizeof(buf)),
                  bypass ? ": the answer exists; its validation fails" : "");
        asked = true;
    }
    if (!asked) {
        doc_check(d, DOC_SKIP, "dnssec", "validation (with CD)",
                  "not asked: no upstream answers SERVFAIL");
    }
}


/* ---- the verdict ------------------------------------------------------ */

static void doc_fix(doc_verdict_t *v, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
doc_fix(doc_verdict_t *v, int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->fix[i], sizeof(v->fix[i]), fmt, ap);
    va_end(ap);
}


static void doc_why(doc_verdict_t *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
doc_why(doc_verdict_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof(v->why), fmt, ap);
    va_end(ap);
}


/* Targets that are not this server: how many, and how many do what. */
typedef struct {
    size_t n, answer, servfail, refused, silent, unreach, before, down;
    const doc_target_t *first_servfail, *first_bad;
} doc_tally_t;


static doc_tally_t
doc_tally(const doc_t *d)
{
    doc_tally_t y = {0};
    for (size_t i = 0; i < d->nt; i++) {
        const doc_target_t *t = &d->t[i];
        if (t->self) {
            continue;
        }
        y.n++;
        bool ans = doc_answered(&t->udp) || doc_answered(&t->tcp);
        if (ans && t->udp.rcode == KNOT_RCODE_SERVFAIL) {
            y.servfail++;
            y.first_servfail = y.first_servfail ? y.first_servfail : t;
        } else if (ans) {
            y.answer++;
        } else {
            y.first_bad = y.first_bad ? y.first_bad : t;
            if (doc_refused(&t->udp) && doc_refused(&t->tcp)) {
                y.refused++;
            } else if (doc_silent(&t->udp) && doc_silent(&t->tcp)) {
                y.silent++;
            } else {
                y.unreach++;
            }
            y.before += t->replied_before;
        }
        y.down += t->down;
    }
    return y;
}


static void
doc_decide(const doc_t *d, doc_verdict_t *v)
{
    const doc_ans_t *a = d->nnames > 0 ? &d->name[0] : &d->external;
    const char *name = d->nnames > 0 ? d->names[0] : ". NS";
    doc_tally_t y = doc_tally(d);
    v->exit = 1;
    const doc_target_t *self = NULL, *stub = NULL;
    for (size_t i = 0; i < d->nt; i++) {
        self = self ? self : d->t[i].self ? &d->t[i] : NULL;
        stub = stub                                       ? stub
               : d->t[i].file != NULL && d->t[i].loopback ? &d->t[i]
                                                          : NULL;
    }
    if (doc_answered(a) && a->rcode == KNOT_RCODE_NOERROR) {
        v->id = "healthy";
        v->title = "all healthy";
        doc_why(v, "%s resolves through %s (%.1f ms)%s", name, d->server_name,
                (double)a->rtt_us / 1000.0,
                y.answer < y.n ? "; some forward targets fail, but the "
                                 "others answer"
                               : "");
        doc_fix(v, 0,
                "nothing to fix in DNS: if the client still fails, "
                "look at what it asks (the name, search domains, "
                "ndots) and where it sends it");
        v->exit = 0;
        return;
    }
    if (doc_answered(a) && a->rcode == KNOT_RCODE_NXDOMAIN) {
        v->id = "nxdomain";
        v->title = "the name does not exist";
        doc_why(v,
                "%s gets NXDOMAIN: the authority for it says there is no "
                "such name.  DNS works; the name is wrong or what it "
                "names is gone",
                name);
        doc_fix(v, 0,
                "fix the name (spelling, namespace, the cluster "
                "domain), or create the Service or record it refers "
                "to: not DNS");
        doc_fix(v, 1,
                "in a pod, mind the search domains: a name with "
                "fewer dots than ndots is tried with each suffix first");
        return;
    }
    if (self != NULL || d->loop_ede) {
        v->id = "loop";
        v->title = "forward loop";
        doc_why(v, "queries forwarded by this server come back to it: %s",
                self != NULL ? "a forward target is the server's own address"
                             : "the server's answer says the query looped");
        doc_fix(v, 0,
                "point %s at resolvers that do not send queries back "
                "here (the node's real upstreams, not this server or "
                "a stub that forwards to it)",
                self != NULL ? self->line : "forward");
        return;
    }
    if (stub != NULL &&
        !(doc_answered(&stub->udp) && stub->udp.rcode == KNOT_RCODE_NOERROR)) {
        v->id = "resolv_conf_stub";
        v->title = "resolv.conf points at a local stub";
        doc_why(v,
                "%s lists %s, a resolver on the loopback of the host the "
                "server runs on; it %s.  In a pod (or behind "
                "systemd-resolved) that address is not a real upstream",
                stub->file, stub->name,
                doc_refused(&stub->udp)  ? "refuses: nothing listens there"
                : doc_silent(&stub->udp) ? "does not answer"
                                         : "fails");
        doc_fix(v, 0,
                "forward to the real upstreams: give their addresses "
                "in %s, or a resolv.conf that lists them (on "
                "systemd hosts /run/systemd/resolve/resolv.conf)",
                stub->line);
        doc_fix(v, 1,
                "in Kubernetes, set the kubelet's resolvConf to that "
                "file, so pods with the Default policy (CoreDNS "
                "included) get real upstreams");
        return;
    }
    if (d->rejects_seen || d->overload_ede ||
        (doc_answered(a) && a->rcode == KNOT_RCODE_REFUSED &&
         d->rejects1 > 0)) {
        v->id = "overloaded";
        v->title = "server overloaded";
        doc_why(v,
                "forward's max_concurrent limit is refusing queries "
                "(%.0f in the last second, %.0f so far): more queries "
                "are waiting on upstreams than the limit allows",
                d->rejects1 - d->rejects0, d->rejects1);
        doc_fix(v, 0,
                "find why upstream answers are slow (candor ctl "
                "upstreams, candor ctl dump_requestlist): slow "
                "upstreams fill the limit");
        doc_fix(v, 1,
                "add replicas or raise max_concurrent if the "
                "upstreams are healthy and the load is real; a cache "
                "in front cuts what reaches them");
        return;
    }
    if (y.servfail > 0) {
        const doc_target_t *t = y.first_servfail;
        bool bypass =
            doc_answered(&t->cd) && t->cd.rcode != KNOT_RCODE_SERVFAIL;
        v->id = "upstream_servfail";
        v->title = bypass ? "the upstream's DNSSEC validation fails"
                          : "the upstream answers SERVFAIL";
        doc_why(v, "%s, asked directly, answers SERVFAIL%s%s%s%s", t->name,
                t->udp.ede[0] ? " with EDE " : " without an extended error",
                t->udp.ede,
                bypass ? "; with CD (no validation) the answer comes: the "
                         "data exists but does not validate"
                       : "",
                "; the server passes that on");
        if (bypass) {
            doc_fix(v, 0,
                    "the zone's DNSSEC is broken (expired or missing "
                    "signatures, a DS that matches no key): its "
                    "owner must fix it; meanwhile a negative trust "
                    "anchor on the upstream resolver lets it through");
            doc_fix(v, 1,
                    "if many zones fail, check the upstream's clock "
                    "and trust anchor");
        } else {
            doc_fix(v, 0,
                    "the fault is past the upstream (its own "
                    "upstreams or the zone's servers): read its EDE "
                    "and logs, or try another upstream");
        }
        return;
    }
    if (y.n > 0 && y.refused == y.n) {
        const doc_target_t *t = y.first_bad;
        if (y.before > 0) {
            v->id = "upstream_down";
            v->title = "upstream down";
            doc_why(v,
                    "nothing listens at %s any more (UDP and TCP refused), "
                    "yet it answered the server before: its DNS service "
                    "has stopped",
                    t->name);
            doc_fix(v, 0,
                    "restart or repair the upstream resolver at %s, "
                    "or forward to another one in %s",
                    t->name, t->line);
        } else {
            v->id = "forward_target_wrong";
            v->title = "forward target wrong";
            doc_why(v,
                    "nothing listens at %s (UDP and TCP refused) and it "
                    "has not answered since the server started: the "
                    "address or port in the configuration is wrong",
                    t->name);
            doc_fix(v, 0,
                    "fix the target in %s: the resolver's address "
                    "and port",
                    t->line);
        }
        return;
    }
    if (y.n > 0 && y.silent == y.n) {
        v->id = "egress_blocked";
        v->title = "egress blocked";
        doc_why(v,
                "no forward target answers, over UDP or TCP, and none "
                "says it is unreachable: traffic to them is dropped on "
                "the way%s",
                y.before > 0 ? " (they answered before: something changed "
                               "on the path)"
                             : "");
        doc_fix(v, 0,
                "allow DNS (UDP and TCP port 53, or the targets' "
                "ports) from the server to %s: firewall rules, "
                "NetworkPolicy egress, security groups",
                y.first_bad->name);
        doc_fix(v, 1,
                "if the path is open, the upstream drops queries: "
                "check its own limits and logs");
        return;
    }
    if (y.n > 0 && y.answer == 0) {
        v->id = "upstream_down";
        v->title = "upstream down or unreachable";
        doc_why(v, "no forward target answers: %s %s", y.first_bad->name,
                cnd_dnsc_strerror(y.first_bad->udp.err,
                                  y.first_bad->udp.sys_errno));
        doc_fix(v, 0,
                "bring the upstream back, or forward to one that is "
                "reachable (%s)",
                y.first_bad->line);
        return;
    }
    if (!doc_answered(a)) {
        v->id = "server_unreachable";
        v->title = "the server does not answer";
        doc_why(v, "%s: %s", d->server_name,
                cnd_dnsc_strerror(a->err, a->sys_errno));
        doc_fix(v, 0,
                "check that candor runs and listens there (its "
                "bind and port), and that the client can reach it");
        return;
    }
    v->id = "unknown";
    v->title = "a failure without a known cause";
    char rc[16];
    doc_why(v, "%s gets %s%s%s, while the forward targets answer", name,
            cnd_rcode_str(a->rcode, rc, sizeof(rc)), a->ede[0] ? ": " : "",
            a->ede);
    doc_fix(v, 0,
            "read the Extended DNS Error above and the server's log "
            "(plugin/errors) for the layer that fails");
}


/* ---- printing --------------------------------------------------------- */

static void
doc_print(const doc_t *d, const doc_verdict_t *v)
{
    static const char *const mark[] = {" ok ", "WARN", "FAIL", " -- "};
    printf("candor doctor: %s via %s\nconfiguration: %s\ncontrol socket: "
           "%s\n\n",
           d->nnames > 0 ? d->names[0] : "(no name given)", d->server_name,
           d->conf_from, d->ctl_ok ? "answers" : "does not answer");
    for (size_t i = 0; i < d->nchecks; i++) {
        const doc_check_t *c = &d->checks[i];
        printf("[%s] %-30s %s\n", mark[c->status], c->title, c->text);
    }
    printf("\nverdict: %s\n  %s.\nfix:\n", v->title, v->why);
    for (int i = 0; i < 3 && v->fix[i][0] != '\0'; i++) {
        printf("  %d. %s\n", i + 1, v->fix[i]);
    }
}


static void
doc_print_json(const doc_t *d, const doc_verdict_t *v)
{
    printf("{\"names\":[");
    for (size_t i = 0; i < d->nnames; i++) {
        printf(i ? "," : "");
        doc_json_str(d->names[i]);
    }
    printf("],\"server\":");
    doc_json_str(d->server_name);
    printf(",\"configuration\":");
    doc_json_str(d->conf_from);
    printf(",\"control_socket\":%s,\"checks\":[", d->ctl_ok ? "true" : "false");
    for (size_t i = 0; i < d->nchecks; i++) {
        const doc_check_t *c = &d->checks[i];
        printf("%s{\"id\":", i ? "," : "");
        doc_json_str(c->id);
        printf(",\"title\":");
        doc_json_str(c->title);
        printf(",\"status\":\"%s\",\"text\":", doc_status_tag[c->status]);
        doc_json_str(c->text);
        printf("}");
    }
    printf("],\"verdict\":{\"id\":\"%s\",\"title\":", v->id);
    doc_json_str(v->title);
    printf(",\"why\":");
    doc_json_str(v->why);
    printf(",\"fix\":[");
    for (int i = 0; i < 3 && v->fix[i][0] != '\0'; i++) {
        printf(i ? "," : "");
        doc_json_str(v->fix[i]);
    }
    printf("]},\"exit\":%d}\n", v->exit);
}


/* ---- main ------------------------------------------------------------- */

/* The usage: on stdout for -h (exit 0), on stderr after @why (exit 2). */
static int
doc_usage(const char *why)
{
    FILE *f = why != NULL ? stderr : stdout;
    if (why != NULL) {
        fprintf(stderr, "candor doctor: %s\n", why);
    }
    fprintf(f, "Usage: candor doctor [NAME...] [-conf FILE] [-server "
               "ADDR[:PORT]] [-ctl SOCKET] [-json]\n"
               "  NAME     a name that fails (asked for A); none: the server "
               "and its upstreams only\n"
               "  -conf    the Corefile, when the control socket does not "
               "give it\n"
               "  -server  where to ask (default: the first listen address)\n"
               "  -ctl     the server's control socket, a path or a port "
               "(default: that of\n"
               "           -server's port, else the one server running here)\n"
               "  -json    one JSON object instead of text\n"
               "Exit: 0 healthy, 1 a problem found, 2 doctor could not run.\n");
    return why != NULL ? 2 : 0;
}


int
cnd_doctor_main(int argc, char **argv)
{
    static doc_t d;
    memset(&d, 0, sizeof(d));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *flag = a[0] == '-' ? a + (a[1] == '-' ? 2 : 1) : NULL;
        const char **val = NULL;
        if (flag == NULL) {
            if (d.nnames == DOC_MAX_NAMES) {
                return doc_usage("too many names");
            }
            d.names[d.nnames++] = a;
            continue;
        }
        if (strcmp(flag, "json") == 0) {
            d.json = true;
            continue;
        }
        if (strcmp(flag, "help") == 0 || strcmp(flag, "h") == 0) {
            doc_usage(NULL);
            return 0;
        }
        val = strcmp(flag, "conf") == 0     ? &d.conf_path
              : strcmp(flag, "server") == 0 ? &d.server_arg
              : strcmp(flag, "ctl") == 0    ? &d.ctl_path
                                            : NULL;
        if (val == NULL) {
            char why[128];
            snprintf(why, sizeof(why), "unknown flag %s", a);
            return doc_usage(why);
        }
        if (i + 1 >= argc) {
            char why[128];
            snprintf(why, sizeof(why), "%s needs a value", a);
            return doc_usage(why);
        }
        *val = argv[++i];
    }
    doc_find_ctl(&d);
    if (doc_load_conf(&d) != 0 || doc_server(&d) != 0) {
        if (d.cf != NULL) {
            cnd_conf_unref(d.cf);
        }
        return 2;
    }
    doc_facts(&d);
    doc_check_names(&d);
    doc_server_view(&d); /* after the names: what the server did with them */
    doc_check_targets(&d);
    doc_check_loops(&d);
    doc_check_server(&d);
    doc_check_dnssec(&d);
    doc_verdict_t v;
    memset(&v, 0, sizeof(v));
    doc_decide(&d, &v);
    if (d.json) {
        doc_print_json(&d, &v);
    } else {
        doc_print(&d, &v);
    }
    free(d.stats);
    free(d.upstreams);
    cnd_conf_unref(d.cf);
    return v.exit;
}
