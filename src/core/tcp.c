/* SPDX-License-Identifier: MIT */
/*
 * core/tcp.c - DNS over TCP per RFC 7766.
 *
 * Each message is framed by a two-byte length.  A client may pipeline: the
 * connection keeps reading while earlier queries are answered, and each
 * answer is written when it is ready (out of order is allowed, 7766 6.2.1).
 * Past CND_TCP_PIPELINE queries in flight the connection stops taking
 * messages (and reading) until some are answered.  One timer per
 * connection enforces CoreDNS's limits: a whole message must arrive
 * within the read timeout (3 s) of its first byte, a quiet connection
 * closes after the idle timeout (10 s), an answer must make progress
 * within the write timeout (5 s).  The deadlines run from fixed points
 * (the message's first byte, the last message or answer), so a client
 * that sends a byte a second holds a connection no longer than one that
 * sends nothing.  A worker holds at most -tcp.max_conns connections; at
 * the cap, a new connection closes the idlest one that has nothing in
 * flight (nginx's reusable connections), so clients that connect and
 * stall cannot lock new ones out; only when every connection is busy is
 * the new one closed at once.
 *
 * A connection is freed when both its handles have closed and no request
 * points at it any more.
 */
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define TCP_BACKLOG 1024
/* Read buffer: starts small, grows to hold one whole message. */
#define TCP_BUF_INIT 2048
#define TCP_BUF_MAX  (2 * (65535 + 2))

static void tcp_close(cnd_conn_t *c);
static void tcp_read_start(cnd_conn_t *c);


static void
tcp_conn_free(cnd_conn_t *c)
{
    cnd_worker_t *w = c->w;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    w->nconns--;
    w->nconns_closing--;
    free(c->buf);
    free(c);
    cnd__worker_maybe_done(w);
}


static void
tcp_handle_closed(uv_handle_t *h)
{
    cnd_conn_t *c = h->data;
    if (--c->handles == 0 && c->nreqs == 0) {
        tcp_conn_free(c);
    }
}


static uint64_t
tcp_now(const cnd_conn_t *c)
{
    return uv_now(&c->w->loop);
}


/* @from + @ns in loop ms, or 0 when the timeout is off. */
static uint64_t
tcp_after(uint64_t from, int64_t ns)
{
    return ns > 0 ? from + (uint64_t)(ns / 1000000) : 0;
}


/* When the connection times out, in loop ms; 0 for never. */
static uint64_t
tcp_deadline(const cnd_conn_t *c)
{
    const cnd_tcp_opts_t *o = &c->listen->tcp;
    if (c->nwrites > 0) {
        return tcp_after(c->write_since, o->write_ns);
    }
    if (c->nreqs > 0) {
        return 0; /* waiting on the chain: the request deadline rules */
    }
    if (c->len > 0) {
        return tcp_after(c->msg_start, o->read_ns);
    }
    if (c->nqueries == 0) {
        return tcp_after(c->active, o->read_ns); /* the first message */
    }
    return tcp_after(c->active, o->idle_ns);
}


static void
tcp_timer_cb(uv_timer_t *t)
{
    tcp_close(t->data);
}


static void
tcp_arm(cnd_conn_t *c)
{
    uint64_t at = tcp_deadline(c), now = tcp_now(c);
    if (at == 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, tcp_timer_cb, at > now ? at - now : 0, 0);
}


/* Something happened on @c: it is the most recently active now. */
static void
tcp_touch(cnd_conn_t *c)
{
    cnd_worker_t *w = c->w;
    c->active = tcp_now(c);
    if (w->conns.next == c) {
        return;
    }
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->prev = &w->conns;
    c->next = w->conns.next;
    w->conns.next->prev = c;
    w->conns.next = c;
}


/* Close the connection: cancel what is parked, drop queued writes. */
static void
tcp_close(cnd_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->w->nconns_closing++;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    uv_timer_stop(&c->timer);
    cnd_req_t *r = c->reqs;
    while (r != NULL) {
        cnd_req_t *next = r->conn_next;
        if (r->state == CND_REQ_PARKED) {
            cnd__req_cancel(r, "the client closed the TCP connection");
        }
        r = next;
    }
    /* Writes still queued complete with UV_ECANCELED and release their
     * requests before the socket's close callback runs. */
    uv_close((uv_handle_t *)&c->timer, tcp_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, tcp_handle_closed);
}


static bool
tcp_at_limit(const cnd_conn_t *c)
{
    return c->listen->tcp.max_queries >= 0 &&
           c->nqueries >= c->listen->tcp.max_queries;
}


/* Run every whole message in the buffer, as far as the pipeline allows. */
static void
tcp_process(cnd_conn_t *c)
{
    if (c->processing) {
        return; /* an answer finished inside the loop below */
    }
    c->processing = true;
    size_t off = 0;
    while (!c->closing && c->len - off >= 2 && c->nreqs < CND_TCP_PIPELINE &&
           !tcp_at_limit(c) && !c->w->stopping && !c->retired) {
        size_t flen = (size_t)((c->buf[off] << 8) | c->buf[off + 1]);
        if (flen < KNOT_WIRE_HEADER_SIZE) {
            /* No DNS message is that short: this stream is not DNS. */
            c->w->dropped++;
            c->processing = false;
            tcp_close(c);
            return;
        }
        if (c->len - off < 2 + flen) {
            break;
        }
        c->nqueries++;
        /* The request copies the message; the buffer moves on. */
        cnd__req_input(c->w, CND_PROTO_TCP, c, c->listen, c->buf + off + 2,
                       flen, &c->remote, &c->local);
        off += 2 + flen;
    }
    c->processing = false;
    if (c->closing) {
        return;
    }
    if (off > 0) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
        tcp_touch(c);
        /* What is left began after the messages taken: its read
         * timeout runs from now. */
        c->msg_start = c->active;
    }
}


/* After any change: close when done, read when there is room, re-arm. */
static void
tcp_update(cnd_conn_t *c)
{
    if (c->closing) {
        return;
    }
    bool done = c->eof || tcp_at_limit(c) || c->w->stopping || c->retired;
    if (done && c->nreqs == 0) {
        tcp_close(c);
        return;
    }
    bool room = c->nreqs < CND_TCP_PIPELINE && c->len < TCP_BUF_MAX;
    if (!done && room && !c->reading) {
        if (c->len > 0) {
            /* A message waited in the buffer while the pipeline was
             * full: that wait was ours, not the client's. */
            c->msg_start = tcp_now(c);
        }
        tcp_read_start(c);
    } else if ((done || !room) && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    tcp_arm(c);
}


static void
tcp_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    cnd_conn_t *c = h->data;
    (void)hint;
    /* Room for the rest of the first message, or at least 512 bytes. */
    size_t need = c->len + 512;
    if (c->len >= 2) {
        size_t frame = 2 + (size_t)((c->buf[0] << 8) | c->buf[1]);
        if (frame > need) {
            need = frame;
        }
    }
    if (need < TCP_BUF_INIT) {
        need = TCP_BUF_INIT;
    }
    if (need > TCP_BUF_MAX) {
        need = TCP_BUF_MAX;
    }
    if (c->cap < need) {
        uint8_t *b = realloc(c->buf, need);
        if (b != NULL) {
            c->buf = b;
            c->cap = need;
        }
    }
    buf->base = (char *)c->buf + c->len;
    buf->len = c->cap - c->len;
}


static void
tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    cnd_conn_t *c = s->data;
    (void)buf;
    if (nread == UV_EOF) {
        /* Half-close: the client may still read its answers. */
        c->eof = true;
        uv_read_stop(s);
        c->reading = false;
        tcp_update(c);
        return;
    }
    if (nread < 0 || (nread == 0 && buf->len == 0)) {
        tcp_close(c); /* reset, or no memory for the buffer */
        return;
    }
    if (c->len == 0 && nread > 0) {
        c->msg_start = tcp_now(c); /* a new message's first bytes */
    }
    c->len += (size_t)nread;
    tcp_process(c);
    tcp_update(c);
}


static void
tcp_read_start(cnd_conn_t *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc_cb, tcp_read_cb) == 0) {
        c->reading = true;
    }
}


static void
tcp_refuse_closed(uv_handle_t *h)
{
    free(h);
}


/* At the cap: close the idlest connection with nothing in flight (the
 * list's tail is the least recently active).  False when every one is
 * busy. */
static bool
tcp_evict_idlest(cnd_worker_t *w)
{
    for (cnd_conn_t *c = w->conns.prev; c != &w->conns; c = c->prev) {
        if (!c->closing && c->nreqs == 0 && c->nwrites == 0) {
            tcp_close(c);
            w->tcp_evicted++;
            return true;
        }
    }
    return false;
}


static void
tcp_accept_cb(uv_stream_t *server, int status)
{
    cnd_tcpl_t *l = server->data;
    cnd_worker_t *w = l->w;
    if (status < 0) {
        return;
    }
    unsigned max = w->opts->tcp_max_conns != 0 ? w->opts->tcp_max_conns
                                               : CND_TCP_MAX_CONNS;
    if (w->stopping ||
        (w->nconns - w->nconns_closing >= max && !tcp_evict_idlest(w))) {
        /* Stopping, or at the cap with every connection busy: accept
         * and close, so the client learns at once instead of waiting in
         * the backlog. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL) {
            return;
        }
        uv_tcp_init(&w->loop, t);
        uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, tcp_refuse_closed);
        w->dropped++;
        return;
    }
    cnd_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return;
    }
    c->w = w;
    c->listen = l->listen;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->handles = 2;
    c->tcp.data = c;
    c->timer.data = c;
    c->prev = &w->conns;
    c->next = w->conns.next;
    w->conns.next->prev = c;
    w->conns.next = c;
    w->nconns++;
    c->active = tcp_now(c);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        tcp_close(c);
        return;
    }
    int len = sizeof(c->remote);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->remote, &len);
    len = sizeof(c->local);
    uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&c->local, &len);
    cnd_addr_unmap(&c->remote);
    cnd_addr_unmap(&c->local);
    uv_tcp_nodelay(&c->tcp, 1);
    tcp_update(c);
}


int
cnd__tcp_start(cnd_tcpl_t *l, int fd)
{
    uv_tcp_init(&l->w->loop, &l->tcp);
    l->tcp.data = l;
    if (uv_tcp_open(&l->tcp, fd) != 0) {
        return -1;
    }
    return uv_listen((uv_stream_t *)&l->tcp, TCP_BACKLOG, tcp_accept_cb);
}


static void
tcp_listener_closed(uv_handle_t *h)
{
    cnd_tcpl_t *l = h->data;
    cnd__wlisten_closed(l->wl);
}


void
cnd__tcp_close_listener(cnd_tcpl_t *l)
{
    if (!uv_is_closing((uv_handle_t *)&l->tcp)) {
        uv_close((uv_handle_t *)&l->tcp, tcp_listener_closed);
    }
}


void
cnd__tcp_retarget(cnd_worker_t *w, const cnd_conf_t *conf)
{
    cnd_conn_t *c = w->conns.next;
    while (c != &w->conns) {
        cnd_conn_t *next = c->next;
        const cnd_listen_t *to = NULL;
        for (size_t i = 0; i < conf->nlistens && to == NULL; i++) {
            if (strcmp(conf->listens[i].name, c->listen->name) == 0) {
                to = &conf->listens[i];
            }
        }
        if (to != NULL) {
            c->listen = to;
        } else {
            c->retired = true;
            tcp_update(c);
        }
        c = next;
    }
}


/* Graceful stop: no more reading; connections with nothing pending close
 * now, the others when their answers are out (or when the grace ends). */
void
cnd__tcp_stop(cnd_worker_t *w)
{
    cnd_conn_t *c = w->conns.next;
    while (c != &w->conns) {
        cnd_conn_t *next = c->next;
        if (w->stop_grace_over) {
            tcp_close(c);
        } else {
            tcp_update(c);
        }
        c = next;
    }
}


static void
tcp_write_cb(uv_write_t *wr, int status)
{
    cnd_req_t *r = wr->data;
    cnd_conn_t *c = r->conn;
    c->nwrites--;
    if (status < 0 && status != UV_ECANCELED) {
        tcp_close(c); /* before the release, which may free c */
    } else if (!c->closing) {
        tcp_touch(c);
        c->write_since = c->active; /* progress: the next write's clock */
    }
    cnd__req_release(r);
}


void
cnd__tcp_send(cnd_req_t *r)
{
    cnd_conn_t *c = r->conn;
    if (r->out == NULL || c->closing) {
        cnd__req_release(r);
        return;
    }
    r->lenbuf[0] = (uint8_t)(r->out_len >> 8);
    r->lenbuf[1] = (uint8_t)r->out_len;
    uv_buf_t bufs[2] = {
        uv_buf_init((char *)r->lenbuf, 2),
        uv_buf_init((char *)r->out, r->out_len),
    };
    r->write.data = r;
    if (uv_write(&r->write, (uv_stream_t *)&c->tcp, bufs, 2, tcp_write_cb) !=
        0) {
        tcp_close(c);
        cnd__req_release(r);
        return;
    }
    if (c->nwrites++ == 0) {
        c->write_since = tcp_now(c);
    }
    tcp_arm(c);
}


void
cnd__tcp_req_attach(cnd_req_t *r)
{
    cnd_conn_t *c = r->conn;
    r->conn_next = c->reqs;
    c->reqs = r;
    c->nreqs++;
}


void
cnd__tcp_req_done(cnd_req_t *r)
{
    cnd_conn_t *c = r->conn;
    for (cnd_req_t **p = &c->reqs; *p != NULL; p = &(*p)->conn_next) {
        if (*p == r) {
            *p = r->conn_next;
            break;
        }
    }
    c->nreqs--;
    if (c->closing) {
        if (c->nreqs == 0 && c->handles == 0) {
            tcp_conn_free(c);
        }
        return;
    }
    if (c->processing) {
        return; /* tcp_process() goes on and updates after */
    }
    /* Room in the pipeline again: take messages already buffered. */
    tcp_process(c);
    tcp_update(c);
}
