/* SPDX-License-Identifier: MIT */
/*
 * plugins/forward/net.c - tries: a query to one upstream over UDP, TCP or
 * TLS.
 *
 * UDP: each worker keeps a few sockets ("ports") per upstream, connected
 * to it, so the kernel drops datagrams from anyone else; tries share them
 * and a reply is matched to its try by its random ID (and question).
 * Opening and closing a socket per query cost five system calls (socket,
 * connect, two epoll_ctl, close): 40% of a cache miss's CPU time.  A
 * port takes NET_PORT_USES queries or lives NET_PORT_AGE, then retires
 * and closes once its last try is done, so source ports keep changing
 * (RFC 5452): a spoofer must guess the port among NET_PORTS and the 16
 * bits of the ID.  An ICMP error (port unreachable) arrives as
 * ECONNREFUSED on the connected socket: every try on it fails at once
 * instead of timing out, as they all went to the same upstream.
 *
 * TCP and TLS: connections are kept per upstream on each worker and reused
 * while idle for less than `expire` (and younger than `max_age`); one
 * query at a time on a connection.  A reused connection that the upstream
 * closed before answering is replaced once, transparently (CoreDNS's
 * ErrCachedClosed).  TLS is GnuTLS over the libuv stream: GnuTLS pulls
 * ciphertext from a buffer the read callback fills and pushes through
 * uv_write; the certificate and the name are verified in the handshake.
 *
 * Each try has a timer: first the RTO (reported as FWD_SOFT, the try goes
 * on), then the try's limit (FWD_TIMEOUT).  libuv handles live in pooled
 * objects of the worker, never in request memory, because they must
 * outlive their close callbacks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "core/plugin.h"
#include "dns/msg.h"
#include "plugins/forward/forward.h"
#include "util/duration.h"

#define NET_RXBUF 65535
/* UDP sockets per upstream per worker, and how long one serves. */
#define NET_PORTS     8
#define NET_PORT_USES 1024
#define NET_PORT_AGE  (30 * (uint64_t)CND_NS_PER_SEC)
/* Ended tries whose IDs a port remembers, to tell a late reply from a
 * wrong one. */
#define NET_PORT_GONE 16

/* A UDP socket to one upstream, shared by the tries sent on it.  Worker
 * lifetime (malloc); freed when its poll handle has closed. */
struct fwd_port_s {
    uv_poll_t poll;
    int fd;
    fwd_worker_t *fw;
    fwd_upstream_t *up;
    fwd_try_t *tries; /* in flight on it, newest first        */
    unsigned ntries;
    unsigned uses; /* queries sent on it                   */
    uint64_t born_ns;
    bool retired;     /* takes no new query                   */
    fwd_port_t *next; /* the upstream's list, while not retired */
    /* IDs of its latest tries that ended: a reply with one is late */
    uint16_t gone[NET_PORT_GONE];
    unsigned ngone;
};

/* A TCP or TLS connection to one upstream.  Worker lifetime. */
struct fwd_conn_s {
    uv_tcp_t tcp;
    uv_timer_t idle; /* expire while idle                  */
    uv_connect_t connect;
    uv_write_t wreq; /* the query's write (TCP)            */
    fwd_worker_t *fw;
    fwd_upstream_t *up;
    fwd_proto_t proto; /* FWD_TCP or FWD_TLS                 */
    gnutls_session_t tls;
    enum { NET_CONNECTING, NET_HANDSHAKE, NET_READY, NET_CLOSED } state;
    fwd_try_t *try; /* the query on it, or NULL (idle)    */
    uint8_t *in;    /* plaintext received: frames         */
    size_t inlen, incap;
    uint8_t *cin; /* TLS: ciphertext not yet pulled     */
    size_t cinlen, cinoff, cincap;
    uint8_t out[2 + 65535]; /* the framed query                   */
    size_t outlen;
    uint64_t born_ns;
    bool reused;      /* served a query before this one     */
    bool got_data;    /* bytes came for the current query   */
    bool answered;    /* the current query's reply came     */
    unsigned handles; /* open: tcp, idle                    */
    fwd_conn_t *next; /* idle list                          */
};

/* A TLS record on its way out (uv_write needs it until done). */
typedef struct {
    uv_write_t req;
    size_t len;
    uint8_t data[];
} net_write_t;

static void net_conn_close(fwd_conn_t *cn);
static void net_conn_send(fwd_conn_t *cn);
static void net_port_retire(fwd_port_t *p);
static int net_conn_open(fwd_worker_t *fw, fwd_try_t *t);


uint64_t
fwd_now_ns(void)
{
    return uv_hrtime();
}


const char *
fwd_proto_name(fwd_proto_t p)
{
    return p == FWD_TLS ? "tls" : p == FWD_TCP ? "tcp" : "udp";
}


uint16_t
fwd_random16(fwd_worker_t *fw)
{
    if (fw->rnd_pos + 2 > sizeof(fw->rnd)) {
        /* A nonce-grade generator: IDs must not be guessable. */
        if (gnutls_rnd(GNUTLS_RND_NONCE, fw->rnd, sizeof(fw->rnd)) != 0) {
            for (size_t i = 0; i < sizeof(fw->rnd); i++) {
                fw->rnd[i] = (uint8_t)(uv_hrtime() >> (i % 8));
            }
        }
        fw->rnd_pos = 0;
    }
    uint16_t v =
        (uint16_t)((fw->rnd[fw->rnd_pos] << 8) | fw->rnd[fw->rnd_pos + 1]);
    fw->rnd_pos += 2;
    return v;
}


/* ---- handles and the worker ------------------------------------------- */

void
fwd_worker_maybe_free(fwd_worker_t *fw)
{
    if (fw->closing && fw->handles == 0) {
        while (fw->all != NULL) {
            fwd_try_t *t = fw->all;
            fw->all = t->all;
            free(t);
        }
        free(fw->rxbuf);
        free(fw->wups);
        free(fw);
    }
}


static void
net_handle_closed(uv_handle_t *h)
{
    fwd_worker_t *fw = h->data;
    fw->handles--;
    fwd_worker_maybe_free(fw);
}


int
fwd_net_worker_init(fwd_worker_t *fw)
{
    fw->rxbuf = malloc(NET_RXBUF);
    return fw->rxbuf != NULL ? 0 : -1;
}


void
fwd_net_worker_fini(fwd_worker_t *fw)
{
    for (size_t i = 0; i < fw->conf->nups; i++) {
        while (fw->wups[i].idle != NULL) {
            net_conn_close(fw->wups[i].idle);
        }
    }
    for (fwd_try_t *t = fw->all; t != NULL; t = t->all) {
        if (t->open) {
            fwd_try_close(t);
        }
        t->timer.data = fw;
        uv_close((uv_handle_t *)&t->timer, net_handle_closed);
    }
    for (size_t i = 0; i < fw->conf->nups; i++) {
        while (fw->wups[i].ports != NULL) {
            net_port_retire(fw->wups[i].ports); /* empty now: closes */
        }
    }
    fwd_worker_maybe_free(fw);
}


/* ---- tries ------------------------------------------------------------ */

static fwd_try_t *
net_try_get(fwd_worker_t *fw)
{
    fwd_try_t *t = fw->free;
    if (t != NULL) {
        fw->free = t->next;
    } else {
        t = calloc(1, sizeof(*t));
        if (t == NULL) {
            return NULL;
        }
        uv_timer_init(fw->loop, &t->timer);
        fw->handles++;
        t->all = fw->all;
        fw->all = t;
    }
    uv_timer_t timer = t->timer;
    fwd_try_t *all = t->all;
    memset(t, 0, sizeof(*t));
    t->timer = timer; /* an initialised handle that never moved */
    t->all = all;
    t->fw = fw;
    t->timer.data = t;
    return t;
}


static void
net_try_put(fwd_try_t *t)
{
    fwd_worker_t *fw = t->fw;
    t->next = fw->free;
    fw->free = t;
}


/* Report to the owner, if the try is still open. */
static void
net_done(fwd_try_t *t, fwd_result_t res, const uint8_t *wire, size_t len)
{
    if (t->open && t->owner != NULL) {
        t->owner->done(t, res, wire, len);
    }
}


static void
net_fail(fwd_try_t *t, int err, const char *what)
{
    t->err = err;
    t->errwhat = what;
    net_done(t, FWD_ERROR, NULL, 0);
}


static void net_timer_cb(uv_timer_t *h);


static void
net_arm(fwd_try_t *t, int64_t rto_ns, int64_t limit_ns)
{
    t->limit_ns = limit_ns;
    if (rto_ns > 0 && rto_ns < limit_ns) {
        t->rto_ns = rto_ns;
        uv_timer_start(&t->timer, net_timer_cb, (uint64_t)(rto_ns / 1000000),
                       0);
    } else {
        t->soft_done = true;
        uv_timer_start(&t->timer, net_timer_cb, (uint64_t)(limit_ns / 1000000),
                       0);
    }
}


static void
net_timer_cb(uv_timer_t *h)
{
    fwd_try_t *t = h->data;
    if (!t->soft_done) {
        t->soft_done = true;
        uv_timer_start(&t->timer, net_timer_cb,
                       (uint64_t)((t->limit_ns - t->rto_ns) / 1000000), 0);
        net_done(t, FWD_SOFT, NULL, 0);
        return;
    }
    net_done(t, FWD_TIMEOUT, NULL, 0);
}


/* Does @wire look like a DNS response at all: a header with QR and one
 * question that parses?  Tells a wrong ID from plain garbage. */
static bool
net_looks_like_dns(const uint8_t *wire, size_t len)
{
    if (len < KNOT_WIRE_HEADER_SIZE || !knot_wire_get_qr(wire) ||
        knot_wire_get_qdcount(wire) != 1) {
        return false;
    }
    long p = cnd_wire_skip_name(wire, len, KNOT_WIRE_HEADER_SIZE);
    return p > 0 && (size_t)p + 4 <= len;
}


/* Count a reply dropped for @why, on the try it was meant for (for the
 * failure text; NULL when none) and in the upstream's metric. */
static void
net_reject(fwd_worker_t *fw, fwd_upstream_t *up, fwd_try_t *t, fwd_reject_t why)
{
    if (t != NULL) {
        switch (why) {
        case FWD_REJ_WRONG_ID:
            t->bad_id++;
            break;
        case FWD_REJ_WRONG_QUESTION:
        case FWD_REJ_NO_QUESTION:
            t->bad_question++;
            break;
        case FWD_REJ_MALFORMED:
            t->garbage++;
            break;
        default:
            break;
        }
    }
    fwd_count_rejected(fw, up, why);
}


/* A reply on @t's socket or connection: it must carry the try's ID and
 * question (dns/msg.h), else it is dropped and counted and the try goes
 * on waiting. */
static void
net_reply(fwd_try_t *t, const uint8_t *wire, size_t len)
{
    switch (cnd_msg_check_reply(t->qwire_framed + 2, t->qlen, wire, len)) {
    case CND_REPLY_OK:
        if (t->conn != NULL) {
            t->conn->answered = true;
        }
        net_done(t, FWD_OK, wire, len);
        return;
    case CND_REPLY_WRONG_ID:
        net_reject(t->fw, t->up, t,
                   net_looks_like_dns(wire, len) ? FWD_REJ_WRONG_ID
                                                 : FWD_REJ_MALFORMED);
        return;
    case CND_REPLY_WRONG_QUESTION:
        net_reject(t->fw, t->up, t, FWD_REJ_WRONG_QUESTION);
        return;
    case CND_REPLY_NO_QUESTION:
        net_reject(t->fw, t->up, t, FWD_REJ_NO_QUESTION);
        return;
    case CND_REPLY_MALFORMED:
        net_reject(t->fw, t->up, t, FWD_REJ_MALFORMED);
        return;
    }
}


/* ---- UDP -------------------------------------------------------------- */

static const char *
net_udp_error(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return "connection refused (ICMP port unreachable)";
    case EHOSTUNREACH:
        return "host unreachable (ICMP)";
    case ENETUNREACH:
        return "network unreachable";
    default:
        return "receive failed";
    }
}


static void
net_port_closed(uv_handle_t *h)
{
    fwd_port_t *p = h->data;
    fwd_worker_t *fw = p->fw;
    close(p->fd);
    free(p);
    fw->handles--;
    fwd_worker_maybe_free(fw);
}


static void
net_port_close(fwd_port_t *p)
{
    uv_poll_stop(&p->poll);
    uv_close((uv_handle_t *)&p->poll, net_port_closed);
}


/* Take @p out of its upstream's list: no new query goes on it; it closes
 * with its last try. */
static void
net_port_retire(fwd_port_t *p)
{
    if (p->retired) {
        return;
    }
    p->retired = true;
    fwd_wup_t *wu = &p->fw->wups[p->up->index];
    fwd_port_t **pp = &wu->ports;
    while (*pp != NULL && *pp != p) {
        pp = &(*pp)->next;
    }
    if (*pp == p) {
        *pp = p->next;
        wu->nports--;
    }
    if (p->ntries == 0) {
        net_port_close(p);
    }
}


static void
net_port_unlink(fwd_try_t *t)
{
    fwd_port_t *p = t->port;
    p->gone[p->ngone++ % NET_PORT_GONE] = t->id;
    if (t->port_prev != NULL) {
        t->port_prev->port_next = t->port_next;
    } else {
        p->tries = t->port_next;
    }
    if (t->port_next != NULL) {
        t->port_next->port_prev = t->port_prev;
    }
    t->port = NULL;
    t->port_prev = t->port_next = NULL;
    if (--p->ntries == 0 && p->retired) {
        net_port_close(p);
    }
}


/* The socket error: fail every try on the port (they all went to the one
 * upstream, which will not answer them either), and retire it: libuv
 * stops a poll handle that reported an error, so the port would go deaf. */
static void
net_port_fail(fwd_port_t *p, int e)
{
    bool icmp = e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH;
    unsigned guard = p->ntries;
    p->ntries++; /* hold it open while the tries go */
    net_port_retire(p);
    while (p->tries != NULL && guard-- > 0) {
        fwd_try_t *t = p->tries;
        net_fail(t, icmp ? 0 : e, net_udp_error(e));
        if (t->port == p) {
            net_port_unlink(t); /* the owner did not close it */
            t->open = false;
        }
    }
    if (--p->ntries == 0) {
        net_port_close(p);
    }
}


/* Did a try of @p that ended lately carry @id? */
static bool
net_port_gone(const fwd_port_t *p, uint16_t id)
{
    unsigned n = p->ngone < NET_PORT_GONE ? p->ngone : NET_PORT_GONE;
    for (unsigned i = 0; i < n; i++) {
        if (p->gone[i] == id) {
            return true;
        }
    }
    return false;
}


/* The try of a datagram that carries no in-flight ID: the one asking the
 * same question, else the oldest.  For counting what was dropped. */
static fwd_try_t *
net_port_blame(fwd_port_t *p, const uint8_t *wire, size_t len)
{
    fwd_try_t *oldest = NULL;
    long qend = len >= KNOT_WIRE_HEADER_SIZE
                    ? cnd_wire_skip_name(wire, len, KNOT_WIRE_HEADER_SIZE)
                    : -1;
    for (fwd_try_t *t = p->tries; t != NULL; t = t->port_next) {
        oldest = t;
        const uint8_t *q = t->qwire_framed + 2;
        if (qend > 0 && (size_t)qend + 4 <= len &&
            (size_t)qend + 4 <= t->qlen &&
            memcmp(q + KNOT_WIRE_HEADER_SIZE, wire + KNOT_WIRE_HEADER_SIZE,
                   (size_t)qend + 4 - KNOT_WIRE_HEADER_SIZE) == 0) {
            return t;
        }
    }
    return oldest;
}


static void
net_port_cb(uv_poll_t *h, int status, int events)
{
    fwd_port_t *p = h->data;
    fwd_worker_t *fw = p->fw;
    (void)events;
    if (status < 0) {
        /* EPOLLERR: the ICMP error is pending on the socket */
        int e = -status;
        socklen_t sl = sizeof(e);
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0 || e == 0) {
            e = -status;
        }
        net_port_fail(p, e);
        return;
    }
    /* Read whatever came, whether or not a try still waits on the port:
     * the poll is level-triggered, and a datagram left unread (a reply
     * after its query gave up) would wake the loop for ever.  A bounded
     * batch per event, so one busy port cannot starve the loop; the poll
     * fires again while more is queued. */
    for (int i = 0; i < 32; i++) {
        ssize_t n = recv(p->fd, fw->rxbuf, NET_RXBUF, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                net_port_fail(p, errno);
            }
            return;
        }
        const uint8_t *w = fw->rxbuf;
        size_t len = (size_t)n;
        fwd_try_t *t = NULL;
        if (len >= KNOT_WIRE_HEADER_SIZE) {
            uint16_t id = knot_wire_get_id(w);
            for (t = p->tries; t != NULL && t->id != id; t = t->port_next) {
            }
        }
        if (t != NULL) {
            net_reply(t, w, len);
        } else if (!net_looks_like_dns(w, len)) {
            net_reject(fw, p->up, net_port_blame(p, w, len), FWD_REJ_MALFORMED);
        } else if (p->ntries == 0 || net_port_gone(p, knot_wire_get_id(w))) {
            net_reject(fw, p->up, NULL, FWD_REJ_LATE);
        } else {
            net_reject(fw, p->up, net_port_blame(p, w, len), FWD_REJ_WRONG_ID);
        }
    }
}


static fwd_port_t *
net_port_open(fwd_worker_t *fw, fwd_upstream_t *up, int *err)
{
    const fwd_conf_t *c = fw->conf;
    int fd = socket(up->addr.ss_family,
                    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    if ((c->source.ss_family == up->addr.ss_family &&
         bind(fd, (const struct sockaddr *)&c->source,
              c->source.ss_family == AF_INET
                  ? sizeof(struct sockaddr_in)
                  : sizeof(struct sockaddr_in6)) != 0) ||
        connect(fd, (const struct sockaddr *)&up->addr, up->addrlen) != 0) {
        *err = errno;
        close(fd);
        return NULL;
    }
    fwd_port_t *p = calloc(1, sizeof(*p));
    if (p == NULL || uv_poll_init_socket(fw->loop, &p->poll, fd) != 0) {
        free(p);
        close(fd);
        *err = ENOMEM;
        return NULL;
    }
    fw->handles++;
    p->fd = fd;
    p->fw = fw;
    p->up = up;
    p->born_ns = fwd_now_ns();
    p->poll.data = p;
    uv_poll_start(&p->poll, UV_READABLE, net_port_cb);
    fwd_wup_t *wu = &fw->wups[up->index];
    p->next = wu->ports;
    wu->ports = p;
    wu->nports++;
    return p;
}


/* A port for the next query: a new one while there are fewer than
 * NET_PORTS, else the next in turn; worn-out ones retire first. */
static fwd_port_t *
net_port_pick(fwd_worker_t *fw, fwd_upstream_t *up, int *err)
{
    fwd_wup_t *wu = &fw->wups[up->index];
    uint64_t now = fwd_now_ns();
    fwd_port_t *p = wu->ports;
    while (p != NULL) {
        fwd_port_t *next = p->next;
        if (p->uses >= NET_PORT_USES || now - p->born_ns >= NET_PORT_AGE) {
            net_port_retire(p);
        }
        p = next;
    }
    if (wu->nports < NET_PORTS) {
        return net_port_open(fw, up, err);
    }
    unsigned k = wu->next_port++ % wu->nports;
    for (p = wu->ports; k-- > 0; p = p->next) {
    }
    return p;
}


static int
net_udp_start(fwd_try_t *t, uint8_t *wire, size_t len)
{
    int err = 0;
    fwd_port_t *p = net_port_pick(t->fw, t->up, &err);
    if (p == NULL) {
        return -err;
    }
    /* The ID must be unique among the port's tries. */
    for (fwd_try_t *o = p->tries; o != NULL;) {
        if (o->id == t->id) {
            t->id = fwd_random16(t->fw);
            knot_wire_set_id(wire, t->id);
            o = p->tries;
        } else {
            o = o->port_next;
        }
    }
    if (send(p->fd, wire, len, 0) < 0) {
        int e = errno;
        /* An error left by an earlier datagram's ICMP, or a local one:
         * this port is suspect; the next query takes another. */
        net_port_retire(p);
        return -e;
    }
    p->uses++;
    t->port = p;
    t->port_next = p->tries;
    if (p->tries != NULL) {
        p->tries->port_prev = t;
    }
    p->tries = t;
    p->ntries++;
    return 0;
}


/* ---- TCP and TLS ------------------------------------------------------ */

static void
net_conn_closed(uv_handle_t *h)
{
    fwd_conn_t *cn = h->data;
    fwd_worker_t *fw = cn->fw;
    if (--cn->handles == 0) {
        if (cn->tls != NULL) {
            gnutls_deinit(cn->tls);
        }
        free(cn->in);
        free(cn->cin);
        free(cn);
        fw->handles -= 2;
        fwd_worker_maybe_free(fw);
    }
}


/* Take @cn off its upstream's idle list, if it is there. */
static void
net_conn_unidle(fwd_conn_t *cn)
{
    fwd_wup_t *wu = &cn->fw->wups[cn->up->index];
    for (fwd_conn_t **p = &wu->idle; *p != NULL; p = &(*p)->next) {
        if (*p == cn) {
            *p = cn->next;
            wu->nidle--;
            uv_timer_stop(&cn->idle);
            return;
        }
    }
}


static void
net_conn_close(fwd_conn_t *cn)
{
    if (cn->state == NET_CLOSED) {
        return;
    }
    /* Whole replies read and left over (a duplicate behind the answer)
     * are dropped with the connection: count them. */
    for (size_t off = 0; off + 2 <= cn->inlen;) {
        size_t flen = (size_t)((cn->in[off] << 8) | cn->in[off + 1]);
        if (off + 2 + flen > cn->inlen) {
            break;
        }
        fwd_count_rejected(cn->fw, cn->up, FWD_REJ_LATE);
        off += 2 + flen;
    }
    cn->inlen = 0;
    net_conn_unidle(cn);
    cn->state = NET_CLOSED;
    if (cn->try != NULL) {
        cn->try->conn = NULL;
        cn->try = NULL;
    }
    uv_close((uv_handle_t *)&cn->idle, net_conn_closed);
    uv_close((uv_handle_t *)&cn->tcp, net_conn_closed);
}


static void
net_idle_cb(uv_timer_t *h)
{
    net_conn_close(h->data);
}


/* The connection is free again: keep it for the next query, or close. */
static void
net_conn_release(fwd_conn_t *cn)
{
    fwd_worker_t *fw = cn->fw;
    const fwd_conf_t *c = fw->conf;
    fwd_wup_t *wu = &fw->wups[cn->up->index];
    cn->try = NULL;
    uint64_t age = fwd_now_ns() - cn->born_ns;
    if (cn->state != NET_READY || fw->closing || c->expire_ns == 0 ||
        (c->max_age_ns > 0 && age >= (uint64_t)c->max_age_ns) ||
        (c->max_idle > 0 && wu->nidle >= c->max_idle) || cn->inlen != 0) {
        net_conn_close(cn);
        return;
    }
    cn->reused = true;
    cn->next = wu->idle;
    wu->idle = cn;
    wu->nidle++;
    uv_timer_start(&cn->idle, net_idle_cb, (uint64_t)(c->expire_ns / 1000000),
                   0);
}


/* The connection failed under its query.  A reused connection that died
 * before saying anything gets one fresh replacement; else the try fails. */
static void
net_conn_failed(fwd_conn_t *cn, int err, const char *what)
{
    fwd_try_t *t = cn->try;
    bool retry = t != NULL && cn->reused && !cn->got_data && !t->retried;
    net_conn_close(cn);
    if (t == NULL) {
        return;
    }
    if (retry) {
        t->retried = true;
        if (net_conn_open(t->fw, t) == 0) {
            return;
        }
    }
    net_fail(t, err, what);
}


/* Whole frames in cn->in: replies to the current query.  Each is copied
 * out before it is delivered, because delivering may hand the connection
 * to the next query or close it. */
static void
net_conn_frames(fwd_conn_t *cn)
{
    fwd_worker_t *fw = cn->fw;
    while (cn->state != NET_CLOSED && cn->inlen >= 2) {
        size_t flen = (size_t)((cn->in[0] << 8) | cn->in[1]);
        if (cn->inlen < 2 + flen) {
            break;
        }
        memcpy(fw->rxbuf, cn->in + 2, flen);
        memmove(cn->in, cn->in + 2 + flen, cn->inlen - 2 - flen);
        cn->inlen -= 2 + flen;
        if (cn->try != NULL) {
            net_reply(cn->try, fw->rxbuf, flen);
        } else {
            /* idle: nothing was asked on it */
            fwd_count_rejected(fw, cn->up, FWD_REJ_LATE);
        }
    }
}


static int
net_in_reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need) {
        return 0;
    }
    size_t c = *cap ? *cap : 1024;
    while (c < need) {
        c *= 2;
    }
    uint8_t *b = realloc(*buf, c);
    if (b == NULL) {
        return -ENOMEM;
    }
    *buf = b;
    *cap = c;
    return 0;
}


/* GnuTLS's transport: records go out through uv_write. */
static void
net_tls_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows as a read error */
    free(req);
}


static ssize_t
net_tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    fwd_conn_t *cn = ptr;
    net_write_t *w = malloc(sizeof(*w) + len);
    if (w == NULL) {
        gnutls_transport_set_errno(cn->tls, ENOMEM);
        return -1;
    }
    memcpy(w->data, data, len);
    w->len = len;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&cn->tcp, &b, 1, net_tls_written) !=
        0) {
        free(w);
        gnutls_transport_set_errno(cn->tls, EPIPE);
        return -1;
    }
    return (ssize_t)len;
}


/* ...and come in from what the read callback buffered. */
static ssize_t
net_tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    fwd_conn_t *cn = ptr;
    size_t avail = cn->cinlen - cn->cinoff;
    if (avail == 0) {
        gnutls_transport_set_errno(cn->tls, EAGAIN);
        return -1;
    }
    size_t n = len < avail ? len : avail;
    memcpy(data, cn->cin + cn->cinoff, n);
    cn->cinoff += n;
    if (cn->cinoff == cn->cinlen) {
        cn->cinoff = cn->cinlen = 0;
    }
    return (ssize_t)n;
}


/* Why a certificate was refused, in a few words. */
static const char *
net_tls_verify_reason(unsigned status)
{
    if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
        return "TLS certificate does not match the server name";
    }
    if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
        return "TLS certificate is not signed by a trusted CA";
    }
    if (status & GNUTLS_CERT_EXPIRED) {
        return "TLS certificate has expired";
    }
    if (status & GNUTLS_CERT_NOT_ACTIVATED) {
        return "TLS certificate is not yet valid";
    }
    if (status & GNUTLS_CERT_REVOKED) {
        return "TLS certificate is revoked";
    }
    return "TLS certificate verification failed";
}


static void
net_tls_handshake(fwd_conn_t *cn)
{
    int rc = gnutls_handshake(cn->tls);
    if (rc == GNUTLS_E_SUCCESS) {
        cn->state = NET_READY;
        net_conn_send(cn);
        return;
    }
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
        !gnutls_error_is_fatal(rc)) {
        return; /* more bytes to come */
    }
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        unsigned status = gnutls_session_get_verify_cert_status(cn->tls);
        net_conn_failed(cn, 0, net_tls_verify_reason(status));
        return;
    }
    net_conn_failed(cn, rc, "TLS handshake failed");
}


static void
net_tls_records(fwd_conn_t *cn)
{
    for (;;) {
        size_t before = cn->cinlen - cn->cinoff;
        if (net_in_reserve(&cn->in, &cn->incap, cn->inlen + 4096) != 0) {
            net_conn_failed(cn, ENOMEM, "out of memory");
            return;
        }
        ssize_t n = gnutls_record_recv(cn->tls, cn->in + cn->inlen,
                                       cn->incap - cn->inlen);
        if (n > 0) {
            cn->inlen += (size_t)n;
            continue;
        }
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            /* GnuTLS also says AGAIN after a post-handshake message (a
             * TLS 1.3 session ticket) with records still buffered: go on
             * while it consumes something. */
            size_t left = cn->cinlen - cn->cinoff;
            if (left > 0 && left < before) {
                continue;
            }
            break;
        }
        if (n == 0) {
            net_conn_frames(cn);
            net_conn_failed(cn, 0, "connection closed by the upstream");
            return;
        }
        net_conn_failed(cn, (int)n, "TLS error");
        return;
    }
    net_conn_frames(cn);
}


static void
net_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    fwd_conn_t *cn = h->data;
    (void)hint;
    uint8_t **b = cn->proto == FWD_TLS ? &cn->cin : &cn->in;
    size_t *len = cn->proto == FWD_TLS ? &cn->cinlen : &cn->inlen;
    size_t *cap = cn->proto == FWD_TLS ? &cn->cincap : &cn->incap;
    if (net_in_reserve(b, cap, *len + 4096) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)*b + *len;
    buf->len = *cap - *len;
}


static void
net_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    fwd_conn_t *cn = s->data;
    (void)buf;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        if (cn->try == NULL) {
            net_conn_close(cn); /* an idle connection the upstream closed */
            return;
        }
        net_conn_failed(cn, nread == UV_EOF ? 0 : (int)-nread,
                        nread == UV_EOF ? "connection closed by the upstream"
                                        : "connection failed");
        return;
    }
    cn->got_data = true;
    if (cn->proto == FWD_TLS) {
        cn->cinlen += (size_t)nread;
        if (cn->state == NET_HANDSHAKE) {
            net_tls_handshake(cn);
        }
        if (cn->state == NET_READY) {
            net_tls_records(cn);
        }
        return;
    }
    cn->inlen += (size_t)nread;
    net_conn_frames(cn);
}


static void
net_tcp_written(uv_write_t *req, int status)
{
    fwd_conn_t *cn = req->data;
    if (status < 0 && status != UV_ECANCELED && cn->state != NET_CLOSED) {
        net_conn_failed(cn, -status, "write failed");
    }
}


/* Send the current try's query on a ready connection. */
static void
net_conn_send(fwd_conn_t *cn)
{
    fwd_try_t *t = cn->try;
    if (t == NULL) {
        return;
    }
    cn->got_data = false;
    cn->answered = false;
    t->sent_ns = fwd_now_ns();
    fwd_count_sent(cn->fw, t);
    if (cn->proto == FWD_TLS) {
        ssize_t n = gnutls_record_send(cn->tls, cn->out, cn->outlen);
        if (n < 0 && n != GNUTLS_E_AGAIN) {
            net_conn_failed(cn, (int)n, "TLS send failed");
        }
        return;
    }
    /* One query at a time per connection: one write request. */
    uv_buf_t b = uv_buf_init((char *)cn->out, (unsigned)cn->outlen);
    cn->wreq.data = cn;
    if (uv_write(&cn->wreq, (uv_stream_t *)&cn->tcp, &b, 1, net_tcp_written) !=
        0) {
        net_conn_failed(cn, EPIPE, "write failed");
    }
}


static const char *
net_connect_error(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return "connection refused";
    case ETIMEDOUT:
        return "connect timed out";
    case EHOSTUNREACH:
        return "host unreachable";
    case ENETUNREACH:
        return "network unreachable";
    default:
        return "cannot connect";
    }
}


static void
net_connect_cb(uv_connect_t *req, int status)
{
    fwd_conn_t *cn = req->data;
    if (cn->state == NET_CLOSED) {
        return;
    }
    if (status < 0) {
        int e = -status;
        bool known = e == ECONNREFUSED || e == ETIMEDOUT || e == EHOSTUNREACH ||
                     e == ENETUNREACH;
        net_conn_failed(cn, known ? 0 : e, net_connect_error(e));
        return;
    }
    uv_tcp_nodelay(&cn->tcp, 1);
    uv_read_start((uv_stream_t *)&cn->tcp, net_alloc_cb, net_read_cb);
    if (cn->proto != FWD_TLS) {
        cn->state = NET_READY;
        net_conn_send(cn);
        return;
    }
    const fwd_conf_t *c = cn->fw->conf;
    const char *name = cn->up->servername;
    char ip[64];
    if (gnutls_init(&cn->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) != 0 ||
        gnutls_set_default_priority(cn->tls) != 0 ||
        gnutls_credentials_set(cn->tls, GNUTLS_CRD_CERTIFICATE, c->creds) !=
            0) {
        net_conn_failed(cn, 0, "TLS set-up failed");
        return;
    }
    if (name != NULL) {
        gnutls_server_name_set(cn->tls, GNUTLS_NAME_DNS, name, strlen(name));
    } else {
        /* No name given: the certificate must name the address. */
        cnd_addr_str(&cn->up->addr, ip, sizeof(ip), false);
        name = ip;
    }
    gnutls_session_set_verify_cert(cn->tls, name, 0);
    gnutls_transport_set_ptr(cn->tls, cn);
    gnutls_transport_set_push_function(cn->tls, net_tls_push);
    gnutls_transport_set_pull_function(cn->tls, net_tls_pull);
    cn->state = NET_HANDSHAKE;
    net_tls_handshake(cn);
}


/* A new connection for @t. */
static int
net_conn_open(fwd_worker_t *fw, fwd_try_t *t)
{
    fwd_conn_t *cn = calloc(1, sizeof(*cn));
    if (cn == NULL) {
        return -ENOMEM;
    }
    const fwd_conf_t *c = fw->conf;
    cn->fw = fw;
    cn->up = t->up;
    cn->proto = t->proto;
    cn->born_ns = fwd_now_ns();
    uv_tcp_init(fw->loop, &cn->tcp);
    uv_timer_init(fw->loop, &cn->idle);
    cn->handles = 2;
    fw->handles += 2;
    cn->tcp.data = cn->idle.data = cn->connect.data = cn;
    cn->state = NET_CONNECTING;
    cn->try = t;
    t->conn = cn;
    memcpy(cn->out, t->qwire_framed, t->qlen + 2);
    cn->outlen = t->qlen + 2u;
    fwd_count_conn(fw, t->up, t->proto, false);
    if (c->source.ss_family == t->up->addr.ss_family) {
        uv_tcp_bind(&cn->tcp, (const struct sockaddr *)&c->source, 0);
    }
    int rc =
        uv_tcp_connect(&cn->connect, &cn->tcp,
                       (const struct sockaddr *)&t->up->addr, net_connect_cb);
    if (rc != 0) {
        t->conn = NULL;
        cn->try = NULL;
        net_conn_close(cn);
        return rc;
    }
    return 0;
}


/* A connection for @t: an idle one if there is one still good, else new. */
static int
net_tcp_start(fwd_try_t *t)
{
    fwd_worker_t *fw = t->fw;
    const fwd_conf_t *c = fw->conf;
    fwd_wup_t *wu = &fw->wups[t->up->index];
    uint64_t now = fwd_now_ns();
    while (wu->idle != NULL) {
        fwd_conn_t *cn = wu->idle;
        net_conn_unidle(cn);
        if (cn->proto != t->proto || cn->state != NET_READY ||
            (c->max_age_ns > 0 &&
             now - cn->born_ns >= (uint64_t)c->max_age_ns)) {
            net_conn_close(cn);
            continue;
        }
        cn->try = t;
        t->conn = cn;
        memcpy(cn->out, t->qwire_framed, t->qlen + 2);
        cn->outlen = t->qlen + 2u;
        fwd_count_conn(fw, t->up, t->proto, true);
        net_conn_send(cn);
        return 0;
    }
    return net_conn_open(fw, t);
}


/* ---- the try API ------------------------------------------------------ */

fwd_try_t *
fwd_try_start(fwd_worker_t *fw, fwd_upstream_t *up, fwd_proto_t proto,
              const uint8_t *wire, size_t len, int64_t rto_ns,
              int64_t timeout_ns, const fwd_owner_t *owner, void *arg, int *err)
{
    if (len < KNOT_WIRE_HEADER_SIZE || len > 65535) {
        *err = EINVAL;
        return NULL;
    }
    fwd_try_t *t = net_try_get(fw);
    if (t == NULL) {
        *err = ENOMEM;
        return NULL;
    }
    t->up = up;
    t->proto = proto;
    t->owner = owner;
    t->arg = arg;
    t->id = fwd_random16(fw);
    t->qlen = (uint16_t)len;
    /* The query with its framing and our ID: in the try when it fits,
     * so a forwarded query allocates nothing. */
    t->qwire_framed = len <= sizeof(t->qbuf) - 2 ? t->qbuf : malloc(len + 2);
    if (t->qwire_framed == NULL) {
        net_try_put(t);
        *err = ENOMEM;
        return NULL;
    }
    t->qwire_framed[0] = (uint8_t)(len >> 8);
    t->qwire_framed[1] = (uint8_t)len;
    memcpy(t->qwire_framed + 2, wire, len);
    knot_wire_set_id(t->qwire_framed + 2, t->id);
    t->open = true;
    t->sent_ns = fwd_now_ns();
    int rc;
    if (proto == FWD_UDP) {
        rc = net_udp_start(t, t->qwire_framed + 2, len);
        if (rc == 0) {
            fwd_count_sent(fw, t);
        }
    } else {
        rc = net_tcp_start(t);
    }
    if (rc != 0) {
        t->open = false;
        if (t->qwire_framed != t->qbuf) {
            free(t->qwire_framed);
        }
        t->qwire_framed = NULL;
        net_try_put(t);
        *err = -rc;
        return NULL;
    }
    int64_t limit = timeout_ns > 0 ? timeout_ns : fw->conf->read_timeout_ns;
    net_arm(t, proto == FWD_UDP ? rto_ns : 0, limit);
    return t;
}


void
fwd_try_close(fwd_try_t *t)
{
    if (!t->open) {
        return;
    }
    t->open = false;
    t->owner = NULL;
    uv_timer_stop(&t->timer);
    if (t->qwire_framed != t->qbuf) {
        free(t->qwire_framed);
    }
    t->qwire_framed = NULL;
    if (t->conn != NULL) {
        fwd_conn_t *cn = t->conn;
        t->conn = NULL;
        cn->try = NULL;
        if (cn->state == NET_READY && cn->answered) {
            net_conn_release(cn);
        } else {
            /* A reply may still be on its way (or the handshake is not
             * over): the connection cannot serve another query. */
            net_conn_close(cn);
        }
    }
    if (t->port != NULL) {
        net_port_unlink(t);
    }
    net_try_put(t);
}
