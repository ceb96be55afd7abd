/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/vloop.c - a server on virtual time (see vloop.h).
 */
#include "vloop.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/conf.h"
#include "core/internal.h"

/* ---- the clock ------------------------------------------------------- */

static bool vl_on;
static uint64_t vl_ns; /* the virtual monotonic clock */

/* Every monotonic clock read in this process comes here: libuv's
 * uv__hrtime() calls clock_gettime() through the PLT, and the executable's
 * definition is found before libc's.  The others, and all of them before
 * vl_clock_on(), go to the kernel. */
int
clock_gettime(clockid_t id, struct timespec *ts)
{
    if (vl_on && (id == CLOCK_MONOTONIC || id == CLOCK_MONOTONIC_COARSE ||
                  id == CLOCK_MONOTONIC_RAW || id == CLOCK_BOOTTIME)) {
        ts->tv_sec = (time_t)(vl_ns / 1000000000u);
        ts->tv_nsec = (long)(vl_ns % 1000000000u);
        return 0;
    }
    return (int)syscall(SYS_clock_gettime, id, ts);
}


void
vl_clock_on(void)
{
    vl_ns = (uint64_t)VL_T0_MS * 1000000u;
    vl_on = true;
}


uint64_t
vl_now_ms(void)
{
    return vl_ns / 1000000u - VL_T0_MS;
}


/* ---- the server ------------------------------------------------------ */

#define VL_QUERIES 64

/* A query of the client, and its answer once it came. */
typedef struct {
    uint16_t id;
    int tcp_fd; /* VL_TCP: its connection; else -1 */
    uint8_t in[65537];
    size_t inlen;
    bool done;
    vl_answer_t ans;
} vl_query_t;

struct vl_upstream_s {
    vl_server_t *s;
    uv_udp_t udp;
    uv_tcp_t tcp;
    char addr[64];
    vl_act_t script[VL_SCRIPT_MAX];
    size_t nscript, next;
    vl_seen_t seen[VL_SEEN_MAX];
    size_t nseen;
    vl_upstream_t *link;
};

/* Things on the loop freed at stop: TCP connections and delayed replies
 * of the upstreams. */
typedef struct vl_obj_s vl_obj_t;
struct vl_obj_s {
    vl_obj_t *link;
    uv_handle_t *h; /* its handle; h->data is the object */
    bool closed;
};

typedef struct {
    vl_obj_t obj;
    uv_tcp_t h;
    vl_upstream_t *u;
    uint8_t buf[65537];
    size_t len;
} vl_tconn_t;

typedef struct {
    vl_obj_t obj;
    uv_timer_t timer;
    vl_upstream_t *u;
    vl_tconn_t *conn; /* TCP, or NULL for UDP */
    struct sockaddr_storage to;
    uint8_t wire[2 + 1024];
    size_t len;
} vl_reply_t;

struct vl_server_s {
    cnd_opts_t opts;
    cnd_conf_t *conf;
    cnd_worker_t *w;
    uint16_t ports[8];
    int client_fd;
    vl_query_t *queries;
    size_t nqueries;
    vl_upstream_t *ups;
    vl_obj_t *objs;
};


static void
vl_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vloop: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}


/* A socket on 127.0.0.1, at @port (0: the kernel's choice). */
static int
vl_socket(int type, uint16_t port)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        vl_die("socket on 127.0.0.1:%u: %s", port, strerror(errno));
    }
    if (type == SOCK_STREAM && listen(fd, 64) != 0) {
        vl_die("listen: %s", strerror(errno));
    }
    return fd;
}


static uint16_t
vl_fd_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    return ntohs(sin.sin_port);
}


/* UDP and TCP sockets with one port for each listen address of @cf that
 * @s does not serve yet (all of them at start). */
static cnd_wsock_t *
vl_socks(vl_server_t *s, const cnd_conf_t *cf, const cnd_conf_t *old)
{
    cnd_wsock_t *ws = calloc(cf->nlistens + 1, sizeof(*ws));
    for (size_t i = 0; i < cf->nlistens; i++) {
        ws[i].udp_fd = ws[i].tcp_fd = -1;
        bool kept = false;
        for (size_t j = 0; old != NULL && j < old->nlistens; j++) {
            kept |= strcmp(old->listens[j].name, cf->listens[i].name) == 0;
        }
        if (kept) {
            continue;
        }
        if (i >= sizeof(s->ports) / sizeof(s->ports[0])) {
            vl_die("more listen addresses than vloop serves");
        }
        for (int tries = 0; ws[i].udp_fd < 0; tries++) {
            ws[i].tcp_fd = vl_socket(SOCK_STREAM, 0);
            s->ports[i] = vl_fd_port(ws[i].tcp_fd);
            int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
            struct sockaddr_in sin = {.sin_family = AF_INET,
                                      .sin_port = htons(s->ports[i]),
                                      .sin_addr.s_addr =
                                          htonl(INADDR_LOOPBACK)};
            if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
                ws[i].udp_fd = fd;
            } else if (tries < 20) {
                close(fd); /* that UDP port is taken: another pair */
                close(ws[i].tcp_fd);
            } else {
                vl_die("no UDP port beside a TCP one: %s", strerror(errno));
            }
        }
    }
    return ws;
}


static cnd_conf_t *
vl_load(vl_server_t *s, const char *fmt, va_list ap)
{
    char text[4096], err[1024];
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        vl_die("Corefile too long");
    }
    cnd_conf_t *cf =
        cnd_conf_load(&s->opts, "Corefile", text, (size_t)n, err, sizeof(err));
    if (cf == NULL) {
        fprintf(stderr, "vloop: %s\n", err);
    }
    return cf;
}


vl_server_t *
vl_server_start(const char *corefile, ...)
{
    if (!vl_on) {
        vl_die("vl_server_start() before vl_clock_on()");
    }
    vl_server_t *s = calloc(1, sizeof(*s));
    s->opts.dns_port = 53;
    s->opts.workers = 1;
    s->opts.quiet = true;
    s->queries = calloc(VL_QUERIES, sizeof(*s->queries));
    va_list ap;
    va_start(ap, corefile);
    s->conf = vl_load(s, corefile, ap);
    va_end(ap);
    if (s->conf == NULL) {
        vl_die("the Corefile does not load");
    }
    s->w = calloc(1, sizeof(*s->w));
    s->w->opts = &s->opts;
    s->w->socks = vl_socks(s, s->conf, NULL);
    if (cnd__worker_setup(s->w, s->conf) != 0) {
        vl_die("worker: %s", s->w->start_err);
    }
    cnd_conf_tickers_start(s->conf, &s->w->loop);
    s->client_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    return s;
}


int
vl_server_reload(vl_server_t *s, const char *corefile, ...)
{
    va_list ap;
    va_start(ap, corefile);
    cnd_conf_t *cf = vl_load(s, corefile, ap);
    va_end(ap);
    if (cf == NULL) {
        return -1;
    }
    free(s->w->socks);
    s->w->socks = vl_socks(s, cf, s->conf);
    cnd_reload_t rl = {.conf = cf, .rc = 0};
    cnd__worker_prepare(s->w, &rl);
    if (rl.rc != 0) {
        fprintf(stderr, "vloop: reload: %s\n", s->w->start_err);
        cnd__worker_abort(s->w, &rl);
        cnd_conf_unref(cf);
        return -1;
    }
    cnd__worker_commit(s->w, &rl);
    cnd_conf_tickers_stop(s->conf);
    cnd_conf_tickers_start(cf, &s->w->loop);
    /* The old view holds the old snapshot until its last request. */
    cnd_conf_unref(s->conf);
    s->conf = cf;
    return 0;
}


static void
vl_obj_closed(uv_handle_t *h)
{
    vl_obj_t *o = h->data;
    o->closed = true;
}


void
vl_server_stop(vl_server_t *s)
{
    cnd__worker_stop(s->w);
    cnd_conf_tickers_stop(s->conf);
    for (vl_upstream_t *u = s->ups; u != NULL; u = u->link) {
        uv_close((uv_handle_t *)&u->udp, NULL);
        uv_close((uv_handle_t *)&u->tcp, NULL);
    }
    for (vl_obj_t *o = s->objs; o != NULL; o = o->link) {
        if (!o->closed && !uv_is_closing(o->h)) {
            uv_close(o->h, vl_obj_closed);
        }
    }
    for (int i = 0; i < 100000 && uv_loop_alive(&s->w->loop); i++) {
        if (!vl_run(s, NULL, NULL, 60000)) {
            break;
        }
    }
    if (uv_loop_alive(&s->w->loop)) {
        vl_die("the loop does not end after the stop");
    }
    cnd__worker_teardown(s->w);
    while (s->objs != NULL) {
        vl_obj_t *o = s->objs;
        s->objs = o->link;
        free(o);
    }
    while (s->ups != NULL) {
        vl_upstream_t *u = s->ups;
        s->ups = u->link;
        free(u);
    }
    for (size_t i = 0; i < s->nqueries; i++) {
        if (s->queries[i].tcp_fd >= 0) {
            close(s->queries[i].tcp_fd);
        }
    }
    close(s->client_fd);
    cnd_conf_unref(s->conf);
    free(s->w->socks);
    free(s->w);
    free(s->queries);
    free(s);
}


uv_loop_t *
vl_server_loop(vl_server_t *s)
{
    return &s->w->loop;
}


uint16_t
vl_server_port(const vl_server_t *s, size_t i)
{
    return s->ports[i];
}


unsigned
vl_server_inflight(const vl_server_t *s)
{
    return s->w->ninflight;
}


unsigned
vl_server_old_views(const vl_server_t *s)
{
    unsigned n = 0;
    for (const cnd_wconf_t *wc = s->w->old; wc != NULL; wc = wc->older) {
        n++;
    }
    return n;
}


void
vl_server_set_deadline(vl_server_t *s, unsigned ms)
{
    s->w->deadline_ms = ms;
}


/* ---- the stepper ----------------------------------------------------- */

/* A socket of the loop is ready, waiting at most @ms of real time (the
 * kernel delivers on loopback within the sender's call; the wait covers
 * what it does not). */
static bool
vl_io_ready(uv_loop_t *loop, int ms)
{
    struct pollfd p = {.fd = uv_backend_fd(loop), .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}


bool
vl_run_loop(uv_loop_t *loop, bool (*done)(void *), void *arg, uint64_t max_ms)
{
    if (!vl_on) {
        vl_die("vl_run_loop() before vl_clock_on()");
    }
    uint64_t end = vl_ns + max_ms * 1000000u;
    for (unsigned spins = 0;; spins++) {
        if (spins > 1000000) {
            vl_die("the loop spins: a socket is always ready");
        }
        uv_run(loop, UV_RUN_NOWAIT);
        if (done != NULL && done(arg)) {
            return true;
        }
        if (!uv_loop_alive(loop)) {
            return done == NULL;
        }
        if (vl_io_ready(loop, 0) || vl_io_ready(loop, 1)) {
            continue;
        }
        int t = uv_backend_timeout(loop);
        if (t == 0) {
            continue;
        }
        if (t < 0) {
            return false; /* no timer: only I/O could wake it */
        }
        if (vl_ns + (uint64_t)t * 1000000u > end) {
            vl_ns = end;
            uv_run(loop, UV_RUN_NOWAIT);
            return done != NULL ? done(arg) : true;
        }
        vl_ns += (uint64_t)t * 1000000u;
    }
}


bool
vl_run(vl_server_t *s, bool (*done)(void *), void *arg, uint64_t max_ms)
{
    return vl_run_loop(&s->w->loop, done, arg, max_ms);
}


void
vl_run_for(vl_server_t *s, uint64_t ms)
{
    vl_run(s, NULL, NULL, ms);
}


/* ---- the client ------------------------------------------------------ */

static void
vl_read_answer(vl_query_t *q, const uint8_t *wire, size_t len)
{
    vl_answer_t *a = &q->ans;
    memset(a, 0, sizeof(*a));
    a->got = true;
    a->at_ms = vl_now_ms();
    a->ede = -1;
    q->done = true;
    knot_pkt_t *pkt = knot_pkt_new((void *)wire, len, NULL);
    if (pkt == NULL || knot_pkt_parse(pkt, 0) != KNOT_EOK) {
        vl_die("an answer that does not parse");
    }
    a->rcode = knot_pkt_ext_rcode(pkt);
    a->tc = knot_wire_get_tc(wire);
    a->aa = knot_wire_get_aa(wire);
    const knot_pktsection_t *an = knot_pkt_section(pkt, KNOT_ANSWER);
    a->ancount = an->count;
    if (an->count > 0) {
        a->ttl = knot_pkt_rr(an, 0)->ttl;
    }
    const uint8_t *opt = NULL;
    size_t o = 0;
    while (pkt->opt_rr != NULL &&
           (opt = knot_edns_get_option(pkt->opt_rr, KNOT_EDNS_OPTION_EDE,
                                       opt)) != NULL) {
        uint16_t olen = knot_edns_opt_get_length(opt);
        const uint8_t *data = knot_edns_opt_get_data((uint8_t *)opt);
        if (olen < 2) {
            continue;
        }
        if (a->ede < 0) {
            a->ede = (int)knot_wire_read_u16(data);
        }
        o += (size_t)snprintf(a->ede_text + o, sizeof(a->ede_text) - o,
                              "%s%u: %.*s", o ? " | " : "",
                              knot_wire_read_u16(data), (int)(olen - 2),
                              (const char *)data + 2);
        if (o >= sizeof(a->ede_text)) {
            break;
        }
    }
    knot_pkt_free(pkt);
}


/* Read whatever answers came to the client. */
static void
vl_client_read(vl_server_t *s)
{
    uint8_t buf[65535];
    ssize_t n;
    while ((n = recv(s->client_fd, buf, sizeof(buf), 0)) >= 12) {
        uint16_t id = knot_wire_get_id(buf);
        for (size_t i = 0; i < s->nqueries; i++) {
            vl_query_t *q = &s->queries[i];
            if (q->tcp_fd < 0 && !q->done && q->id == id) {
                vl_read_answer(q, buf, (size_t)n);
            }
        }
    }
    for (size_t i = 0; i < s->nqueries; i++) {
        vl_query_t *q = &s->queries[i];
        while (q->tcp_fd >= 0 && !q->done &&
               (n = recv(q->tcp_fd, q->in + q->inlen, sizeof(q->in) - q->inlen,
                         0)) > 0) {
            q->inlen += (size_t)n;
            if (q->inlen >= 2 && q->inlen >= 2u + knot_wire_read_u16(q->in)) {
                vl_read_answer(q, q->in + 2, knot_wire_read_u16(q->in));
            }
        }
    }
}


int
vl_send(vl_server_t *s, const char *name, uint16_t type, unsigned flags)
{
    if (s->nqueries == VL_QUERIES) {
        vl_die("more than %d queries", VL_QUERIES);
    }
    vl_query_t *q = &s->queries[s->nqueries];
    q->tcp_fd = -1;
    uint8_t qname[KNOT_DNAME_MAXLEN];
    knot_pkt_t *pkt = knot_pkt_new(NULL, 512, NULL);
    if (knot_dname_from_str(qname, name, sizeof(qname)) == NULL ||
        knot_pkt_put_question(pkt, qname, KNOT_CLASS_IN, type) != KNOT_EOK) {
        vl_die("cannot ask %s", name);
    }
    q->id = (uint16_t)(0x1000 + s->nqueries);
    knot_wire_set_id(pkt->wire, q->id);
    knot_wire_set_rd(pkt->wire);
    if (flags & (VL_EDNS | VL_DO)) {
        knot_rrset_t opt;
        knot_edns_init(&opt, 1232, 0, 0, NULL);
        if (flags & VL_DO) {
            knot_edns_set_do(&opt);
        }
        knot_pkt_begin(pkt, KNOT_ADDITIONAL);
        knot_pkt_put(pkt, 0, &opt, KNOT_PF_FREE);
    }
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(s->ports[0]),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (flags & VL_TCP) {
        /* A blocking connect: the kernel completes it on loopback
         * without the server's help. */
        q->tcp_fd = socket(AF_INET, SOCK_STREAM, 0);
        uint8_t len[2];
        knot_wire_write_u16(len, (uint16_t)pkt->size);
        if (connect(q->tcp_fd, (struct sockaddr *)&to, sizeof(to)) != 0 ||
            write(q->tcp_fd, len, 2) != 2 ||
            write(q->tcp_fd, pkt->wire, pkt->size) != (ssize_t)pkt->size) {
            vl_die("TCP query: %s", strerror(errno));
        }
        shutdown(q->tcp_fd, SHUT_WR);
        int fl = 1;
        ioctl(q->tcp_fd, FIONBIO, &fl);
    } else if (sendto(s->client_fd, pkt->wire, pkt->size, 0,
                      (struct sockaddr *)&to,
                      sizeof(to)) != (ssize_t)pkt->size) {
        vl_die("UDP query: %s", strerror(errno));
    }
    knot_pkt_free(pkt);
    return (int)s->nqueries++;
}


typedef struct {
    vl_server_t *s;
    int q;
} vl_wait_t;

static bool
vl_answered(void *arg)
{
    vl_wait_t *wt = arg;
    vl_client_read(wt->s);
    return wt->s->queries[wt->q].done;
}


bool
vl_wait(vl_server_t *s, int q, uint64_t max_ms, vl_answer_t *ans)
{
    vl_wait_t wt = {s, q};
    bool got = vl_run(s, vl_answered, &wt, max_ms);
    *ans = s->queries[q].ans;
    return got;
}


bool
vl_ask(vl_server_t *s, const char *name, uint16_t type, unsigned flags,
       uint64_t max_ms, vl_answer_t *ans)
{
    return vl_wait(s, vl_send(s, name, type, flags), max_ms, ans);
}


/* ---- scripted upstreams ---------------------------------------------- */

static void
vl_obj_add(vl_server_t *s, vl_obj_t *o, uv_handle_t *h)
{
    o->h = h;
    o->link = s->objs;
    s->objs = o;
}


static void
vl_udp_sent(uv_udp_send_t *req, int status)
{
    (void)status;
    free(req);
}


static void
vl_tcp_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}


static void
vl_reply_send(vl_reply_t *rp)
{
    if (rp->conn != NULL) {
        if (rp->conn->obj.closed ||
            uv_is_closing((uv_handle_t *)&rp->conn->h)) {
            return;
        }
        uv_write_t *wr = malloc(sizeof(*wr) + rp->len);
        memcpy(wr + 1, rp->wire, rp->len);
        uv_buf_t b = uv_buf_init((char *)(wr + 1), (unsigned)rp->len);
        uv_write(wr, (uv_stream_t *)&rp->conn->h, &b, 1, vl_tcp_written);
        return;
    }
    uv_udp_send_t *sr = malloc(sizeof(*sr) + rp->len);
    memcpy(sr + 1, rp->wire + 2, rp->len - 2);
    uv_buf_t b = uv_buf_init((char *)(sr + 1), (unsigned)(rp->len - 2));
    uv_udp_send(sr, &rp->u->udp, &b, 1, (struct sockaddr *)&rp->to,
                vl_udp_sent);
}


static void
vl_reply_timer(uv_timer_t *t)
{
    vl_reply_t *rp = t->data;
    vl_reply_send(rp);
    uv_close((uv_handle_t *)&rp->timer, vl_obj_closed);
}


/* Build the reply @act asks for to @q (@qlen bytes) into rp->wire, after
 * a two-byte length. */
static bool
vl_build(vl_reply_t *rp, const vl_act_t *act, const uint8_t *qw, size_t qlen)
{
    uint8_t *out = rp->wire + 2;
    size_t cap = sizeof(rp->wire) - 2;
    if (act->kind == VL_GARBAGE) {
        memcpy(out, "garbage", 7);
        rp->len = 7;
    } else {
        knot_pkt_t *q = knot_pkt_new((void *)qw, qlen, NULL);
        knot_pkt_t *a = knot_pkt_new(out, cap, NULL);
        if (q == NULL || a == NULL || knot_pkt_parse(q, 0) != KNOT_EOK ||
            knot_pkt_init_response(a, q) != KNOT_EOK) {
            knot_pkt_free(q);
            knot_pkt_free(a);
            return false;
        }
        knot_wire_clear_aa(a->wire);
        if (act->kind == VL_ANSWER || act->kind == VL_WRONG_ID) {
            knot_rrset_t *rr =
                knot_rrset_new(knot_pkt_qname(q), KNOT_RRTYPE_A, KNOT_CLASS_IN,
                               act->ttl ? act->ttl : 300, NULL);
            const uint8_t ip[4] = {127, 0, 0, 53}; /* data only */
            knot_rrset_add_rdata(rr, ip, 4, NULL);
            knot_pkt_begin(a, KNOT_ANSWER);
            knot_pkt_put(a, 0, rr, KNOT_PF_FREE);
            free(rr);
        } else if (act->kind == VL_TC) {
            knot_wire_set_tc(a->wire);
        } else if (act->kind == VL_RCODE) {
            knot_wire_set_rcode(a->wire, (uint8_t)act->rcode);
        } else if (act->kind == VL_EDE) {
            knot_wire_set_rcode(a->wire, KNOT_RCODE_SERVFAIL);
            knot_rrset_t opt;
            knot_edns_init(&opt, 1232, 0, 0, NULL);
            uint8_t data[256];
            size_t tl = strlen(act->text);
            knot_wire_write_u16(data, act->ede);
            memcpy(data + 2, act->text, tl);
            knot_edns_add_option(&opt, KNOT_EDNS_OPTION_EDE, (uint16_t)(2 + tl),
                                 data, NULL);
            knot_pkt_begin(a, KNOT_ADDITIONAL);
            knot_pkt_put(a, 0, &opt, KNOT_PF_FREE);
        }
        if (act->kind == VL_WRONG_ID) {
            knot_wire_set_id(a->wire, knot_wire_get_id(a->wire) ^ 0x5a5a);
        }
        rp->len = a->size;
        knot_pkt_free(q);
        knot_pkt_free(a);
    }
    knot_wire_write_u16(rp->wire, (uint16_t)rp->len);
    rp->len += 2;
    return true;
}


/* A query came to @u: note it, act on it. */
static void
vl_upstream_got(vl_upstream_t *u, vl_tconn_t *conn, const struct sockaddr *from,
                const uint8_t *wire, size_t len)
{
    knot_pkt_t *q = knot_pkt_new((void *)wire, len, NULL);
    if (q == NULL || knot_pkt_parse(q, 0) != KNOT_EOK) {
        knot_pkt_free(q);
        return;
    }
    if (u->nseen < VL_SEEN_MAX) {
        vl_seen_t *sn = &u->seen[u->nseen++];
        sn->at_ms = vl_now_ms();
        sn->tcp = conn != NULL;
        sn->qtype = knot_pkt_qtype(q);
        knot_dname_to_str(sn->qname, knot_pkt_qname(q), sizeof(sn->qname));
    }
    knot_pkt_free(q);
    vl_act_t act = {.kind = VL_ANSWER};
    if (u->nscript > 0) {
        act = u->script[u->next < u->nscript ? u->next : u->nscript - 1];
        u->next++;
    }
    if (act.kind == VL_DROP) {
        return;
    }
    vl_reply_t *rp = calloc(1, sizeof(*rp));
    rp->u = u;
    rp->conn = conn;
    if (from != NULL) {
        memcpy(&rp->to, from, sizeof(struct sockaddr_in));
    }
    if (!vl_build(rp, &act, wire, len)) {
        free(rp);
        return;
    }
    vl_obj_add(u->s, &rp->obj, (uv_handle_t *)&rp->timer);
    uv_timer_init(&u->s->w->loop, &rp->timer);
    rp->timer.data = rp;
    if (act.delay_ms == 0) {
        vl_reply_send(rp);
        uv_close((uv_handle_t *)&rp->timer, vl_obj_closed);
    } else {
        uv_timer_start(&rp->timer, vl_reply_timer, act.delay_ms, 0);
    }
}


static void
vl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    static uint8_t udp_buf[65536];
    if (h->type == UV_UDP) {
        *buf = uv_buf_init((char *)udp_buf, sizeof(udp_buf));
        return;
    }
    vl_tconn_t *c = h->data;
    *buf = uv_buf_init((char *)c->buf + c->len,
                       (unsigned)(sizeof(c->buf) - c->len));
}


static void
vl_udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
            const struct sockaddr *from, unsigned flags)
{
    (void)flags;
    if (n > 0 && from != NULL) {
        vl_upstream_got(h->data, NULL, from, (const uint8_t *)buf->base,
                        (size_t)n);
    }
}


static void
vl_tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    vl_tconn_t *c = st->data;
    if (n < 0) {
        uv_close((uv_handle_t *)&c->h, vl_obj_closed);
        return;
    }
    c->len += (size_t)n;
    while (c->len >= 2 && c->len >= 2u + knot_wire_read_u16(c->buf)) {
        size_t ql = knot_wire_read_u16(c->buf);
        vl_upstream_got(c->u, c, NULL, c->buf + 2, ql);
        memmove(c->buf, c->buf + 2 + ql, c->len - 2 - ql);
        c->len -= 2 + ql;
    }
}


static void
vl_tcp_accept(uv_stream_t *st, int status)
{
    vl_upstream_t *u = st->data;
    if (status != 0) {
        return;
    }
    vl_tconn_t *c = calloc(1, sizeof(*c));
    c->u = u;
    uv_tcp_init(&u->s->w->loop, &c->h);
    c->h.data = c;
    vl_obj_add(u->s, &c->obj, (uv_handle_t *)&c->h);
    if (uv_accept(st, (uv_stream_t *)&c->h) != 0) {
        uv_close((uv_handle_t *)&c->h, vl_obj_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->h, vl_alloc, vl_tcp_read);
}


vl_upstream_t *
vl_upstream(vl_server_t *s, const char *ip)
{
    vl_upstream_t *u = calloc(1, sizeof(*u));
    u->s = s;
    uv_loop_t *loop = &s->w->loop;
    for (int tries = 0;; tries++) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        inet_pton(AF_INET, ip, &sin.sin_addr);
        uv_tcp_init(loop, &u->tcp);
        int sa_len = sizeof(sin);
        if (uv_tcp_bind(&u->tcp, (struct sockaddr *)&sin, 0) != 0 ||
            uv_listen((uv_stream_t *)&u->tcp, 16, vl_tcp_accept) != 0 ||
            uv_tcp_getsockname(&u->tcp, (struct sockaddr *)&sin, &sa_len) !=
                0) {
            vl_die("upstream on %s: TCP", ip);
        }
        uv_udp_init(loop, &u->udp);
        if (uv_udp_bind(&u->udp, (struct sockaddr *)&sin, 0) == 0) {
            snprintf(u->addr, sizeof(u->addr), "%s:%u", ip,
                     ntohs(sin.sin_port));
            break;
        }
        /* that UDP port is taken: another pair */
        uv_close((uv_handle_t *)&u->tcp, NULL);
        uv_close((uv_handle_t *)&u->udp, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        if (tries == 20) {
            vl_die("upstream on %s: no UDP port beside a TCP one", ip);
        }
    }
    u->tcp.data = u->udp.data = u;
    uv_udp_recv_start(&u->udp, vl_alloc, vl_udp_recv);
    u->link = s->ups;
    s->ups = u;
    return u;
}


const char *
vl_upstream_addr(const vl_upstream_t *u)
{
    return u->addr;
}


void
vl_upstream_script(vl_upstream_t *u, const vl_act_t *acts, size_t n)
{
    if (n > VL_SCRIPT_MAX) {
        vl_die("a script of more than %d actions", VL_SCRIPT_MAX);
    }
    memcpy(u->script, acts, n * sizeof(*acts));
    u->nscript = n;
    u->next = 0;
}


size_t
vl_upstream_nseen(const vl_upstream_t *u)
{
    return u->nseen;
}


const vl_seen_t *
vl_upstream_seen(const vl_upstream_t *u, size_t i)
{
    return i < u->nseen ? &u->seen[i] : NULL;
}


size_t
vl_upstream_count(const vl_upstream_t *u, const char *qname)
{
    size_t n = 0;
    for (size_t i = 0; i < u->nseen; i++) {
        n += strcmp(u->seen[i].qname, qname) == 0;
    }
    return n;
}
