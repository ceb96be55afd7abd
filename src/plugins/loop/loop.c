/* SPDX-License-Identifier: MIT */
/*
 * plugins/loop/loop.c - detect a forwarding loop at start-up and halt.
 *
 * As CoreDNS's loop: at start the server sends itself one query,
 * "<r1>.<r2>.<zone> HINFO" (two random numbers under the block's first
 * zone), to the block's first listen address.  The query runs the chain
 * like any other, normally out through forward.  If it comes back to this
 * plugin a third time, the upstreams send it back here: a loop, and the
 * process exits 1 with CoreDNS's FATAL line.  The first reply of any kind
 * to the probe ends the check for good; after an error or no reply in
 * 2 s the probe goes again a second later, for 30 s.
 *
 * Threads: the probe is the main thread's, which must never wait on it:
 * start() sends it from a nonblocking UDP socket and a 50 ms job
 * (cnd_conf_every) reads the reply, judged by its kernel arrival stamp,
 * times out, retries, and stops itself once the check is over.  Workers
 * count sightings in the query hook; the counter and the "off" flag are
 * the only state they share with the main thread, both atomic.  Once off,
 * a query costs one relaxed atomic load.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <libknot/libknot.h>
#include <uv.h>

#include "core/plugin.h"
#include "plugins/loop/loop.h"
#include "util/log.h"

#define LOOP_QUERY_MAX (KNOT_WIRE_HEADER_SIZE + KNOT_DNAME_MAXLEN + 4)


/* ---- Corefile --------------------------------------------------------- */

/* "loop": no arguments, no block. */
static int
loop_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    (void)conf;
    cnd_disp_next(d); /* "loop" */
    if (cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    return 0;
}


/* A random integer in [0, 2^62), as CoreDNS's probe labels. */
static int
loop_random62(uint64_t *out)
{
    uint64_t v;
    size_t got = 0;
    while (got < sizeof(v)) {
        ssize_t n = getrandom((uint8_t *)&v + got, sizeof(v) - got, 0);
        if (n < 0 && errno != EINTR) {
            return -1;
        }
        got += n > 0 ? (size_t)n : 0;
    }
    *out = v >> 2;
    return 0;
}


/* The block's first listen address, as CoreDNS's ListenHosts[0] and Port:
 * the first bind address, or none (printed ":53").  A wildcard is reached
 * on the loopback of its family. */
static void
loop_set_dest(cnd_loop_conf_t *c, const cnd_server_t *srv)
{
    size_t nzones, nbinds;
    uint16_t port = cnd_server_zones(srv, &nzones)[0].port;
    const struct sockaddr_storage *binds = cnd_server_binds(srv, &nbinds);
    memset(&c->dest, 0, sizeof(c->dest));
    if (nbinds == 0) {
        snprintf(c->listen, sizeof(c->listen), ":%u", port);
        struct sockaddr_in *in = (struct sockaddr_in *)&c->dest;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        in->sin_port = htons(port);
        c->destlen = sizeof(*in);
        return;
    }
    c->dest = binds[0];
    cnd_addr_set_port(&c->dest, port);
    c->destlen = cnd_addr_len(&c->dest);
    cnd_addr_str(&c->dest, c->listen, sizeof(c->listen), true);
    if (cnd_addr_is_any(&c->dest)) {
        if (c->dest.ss_family == AF_INET) {
            ((struct sockaddr_in *)&c->dest)->sin_addr.s_addr =
                htonl(INADDR_LOOPBACK);
        } else {
            ((struct sockaddr_in6 *)&c->dest)->sin6_addr = in6addr_loopback;
        }
    }
}


/* ---- the probe (main thread) ------------------------------------------ */

static void
loop_close(cnd_loop_state_t *st)
{
    if (st->fd >= 0) {
        close(st->fd);
        st->fd = -1;
    }
}


/* The check is over: from now on the query hook passes everything on. */
static void
loop_done(cnd_loop_state_t *st)
{
    loop_close(st);
    st->phase = CND_LOOP_DONE;
    atomic_store(&st->off, true);
}


/* A try failed at @at (CoreDNS: the exchange's error): forget the
 * sightings, try again a second later. */
static void
loop_failed(cnd_loop_state_t *st, uint64_t at)
{
    loop_close(st);
    atomic_store(&st->seen, 0);
    st->phase = CND_LOOP_SLEEP;
    st->wake_ns = at + CND_LOOP_RETRY_NS;
}


static uint64_t
loop_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}


/* One try, as dns.Exchange: a new socket, a random ID, RD set, no EDNS.
 * The socket stamps what arrives (SO_TIMESTAMPNS), so that a reply read
 * late by the job is still judged by when it came. */
static void
loop_try(const cnd_loop_conf_t *c, uint64_t now)
{
    cnd_loop_state_t *st = c->st;
    uint8_t q[LOOP_QUERY_MAX];
    uint16_t id;
    int one = 1;

    if (now - st->begin_ns >= CND_LOOP_WINDOW_NS) {
        loop_done(st);
        return;
    }
    if (!c->qname_ok || getrandom(&id, sizeof(id), 0) != sizeof(id)) {
        loop_failed(st, now);
        return;
    }
    size_t nlen = knot_dname_size(c->qname);
    memset(q, 0, KNOT_WIRE_HEADER_SIZE);
    knot_wire_set_id(q, id);
    knot_wire_set_rd(q);
    knot_wire_set_qdcount(q, 1);
    memcpy(q + KNOT_WIRE_HEADER_SIZE, c->qname, nlen);
    uint8_t *p = q + KNOT_WIRE_HEADER_SIZE + nlen;
    knot_wire_write_u16(p, KNOT_RRTYPE_HINFO);
    knot_wire_write_u16(p + 2, KNOT_CLASS_IN);
    size_t qlen = KNOT_WIRE_HEADER_SIZE + nlen + 4;

    st->fd =
        socket(c->dest.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (st->fd < 0) {
        loop_failed(st, now);
        return;
    }
    setsockopt(st->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    st->id = id;
    st->sent_ns = now;
    st->sent_rt_ns = loop_realtime();
    if (connect(st->fd, (const struct sockaddr *)&c->dest, c->destlen) != 0 ||
        send(st->fd, q, qlen, 0) != (ssize_t)qlen) {
        loop_failed(st, now);
        return;
    }
    st->phase = CND_LOOP_WAIT;
}


/* When the datagram of @mh arrived (CLOCK_REALTIME ns), or now. */
static uint64_t
loop_arrival(struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL;
         cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        }
    }
    return loop_realtime();
}


/* What loop_read() found. */
enum { LOOP_NOTHING = 0, LOOP_REPLY, LOOP_ERROR };

/* Read what arrived: LOOP_REPLY, LOOP_ERROR (ICMP unreachable, a message
 * that does not parse) or LOOP_NOTHING.  A datagram that came after the
 * 2 s is as if never read: Go's read deadline would have fired first.  As
 * miekg/dns, a well-formed message with another ID is skipped. */
static int
loop_read(cnd_loop_state_t *st)
{
    uint8_t buf[KNOT_WIRE_MAX_PKTSIZE];
    union {
        struct cmsghdr h;
        uint8_t b[CMSG_SPACE(sizeof(struct timespec))];
    } ctl;

    for (int i = 0; i < 16; i++) {
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = &ctl,
                            .msg_controllen = sizeof(ctl)};
        ssize_t n = recvmsg(st->fd, &mh, 0);
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                       ? LOOP_NOTHING
                       : LOOP_ERROR;
        }
        int64_t after = (int64_t)(loop_arrival(&mh) - st->sent_rt_ns);
        if (after >= (int64_t)CND_LOOP_TIMEOUT_NS) {
            return LOOP_NOTHING;
        }
        knot_pkt_t *pkt = knot_pkt_new(buf, (uint16_t)n, NULL);
        int rc = pkt != NULL ? knot_pkt_parse(pkt, 0) : KNOT_ENOMEM;
        knot_pkt_free(pkt);
        if (rc != KNOT_EOK) {
            return LOOP_ERROR;
        }
        if (knot_wire_get_id(buf) == st->id) {
            return LOOP_REPLY;
        }
    }
    return LOOP_NOTHING;
}


/* The probe's job, every CND_LOOP_TICK_NS while the snapshot serves; it
 * stops its own timer once the check is over. */
static void
loop_tick(void *arg)
{
    cnd_loop_conf_t *c = arg;
    cnd_loop_state_t *st = c->st;
    uint64_t now = uv_hrtime();

    switch (st->phase) {
    case CND_LOOP_WAIT: {
        int rc = loop_read(st);
        uint64_t deadline = st->sent_ns + CND_LOOP_TIMEOUT_NS;
        if (rc == LOOP_REPLY) {
            loop_done(st);
        } else if (rc == LOOP_ERROR || now >= deadline) {
            /* The next try a second after the failure, not after this
             * tick: the tries keep CoreDNS's 3 s beat on a timeout. */
            loop_failed(st, now >= deadline ? deadline : now);
        }
        break;
    }
    case CND_LOOP_SLEEP:
        if (now >= st->wake_ns) {
            loop_try(c, now);
        }
        break;
    default:
        break;
    }
    if (st->phase == CND_LOOP_DONE) {
        cnd_conf_every_stop(c->cf, loop_tick, c);
    }
}


/* ---- life cycle --------------------------------------------------------- */

static int
loop_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    cnd_loop_conf_t *c = self->conf;
    const cnd_server_t *srv = self->srv;
    uint64_t r1, r2;

    c->st = calloc(1, sizeof(*c->st));
    if (c->st == NULL) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    c->st->fd = -1;
    c->cf = cf;
    size_t nzones;
    c->zone = cnd_server_zones(srv, &nzones)[0].name;
    if (loop_random62(&r1) != 0 || loop_random62(&r2) != 0) {
        return cnd_conf_err(cf, self, "no random numbers: %s", strerror(errno));
    }
    /* dnsutil.Join: the root adds nothing but the final dot. */
    snprintf(c->qtext, sizeof(c->qtext), "%llu.%llu.%s", (unsigned long long)r1,
             (unsigned long long)r2, strcmp(c->zone, ".") == 0 ? "" : c->zone);
    /* A name over 255 octets cannot be sent: every try fails, as packing
     * CoreDNS's query does, and the check ends after 30 s. */
    c->qname_ok =
        knot_dname_from_str(c->qname, c->qtext, sizeof(c->qname)) != NULL;
    if (c->qname_ok) {
        knot_dname_to_lower(c->qname);
    }
    loop_set_dest(c, srv);
    if (cnd_conf_every(cf, CND_LOOP_TICK_NS, loop_tick, c) != 0) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    return 0;
}


/* The server listens (CoreDNS's OnStartup): the first try.  The job
 * starts right after and takes it from there. */
static int
loop_start(cnd_conf_t *cf, cnd_inst_t *self)
{
    (void)cf;
    cnd_loop_conf_t *c = self->conf;
    uint64_t now = uv_hrtime();
    c->st->begin_ns = now;
    loop_try(c, now);
    return 0;
}


static void
loop_stop(cnd_inst_t *self)
{
    cnd_loop_conf_t *c = self->conf;
    if (c->st != NULL) {
        loop_done(c->st);
    }
}


static void
loop_fini(cnd_inst_t *self)
{
    cnd_loop_conf_t *c = self->conf;
    if (c == NULL || c->st == NULL) {
        return;
    }
    loop_close(c->st);
    free(c->st);
    c->st = NULL;
}


/* ---- queries ------------------------------------------------------------ */

static cnd_rc_t
loop_query(cnd_req_t *r, cnd_inst_t *self)
{
    const cnd_loop_conf_t *c = self->conf;
    cnd_loop_state_t *st = c->st;

    if (atomic_load_explicit(&st->off, memory_order_relaxed) ||
        r->qtype != KNOT_RRTYPE_HINFO || !c->qname_ok ||
        !knot_dname_is_equal(r->qname, c->qname)) {
        return CND_NEXT;
    }
    if (atomic_fetch_add(&st->seen, 1) + 1 > 2) {
        char from[80];
        cnd_addr_str(&r->remote, from, sizeof(from), true);
        /* Prints the line and exits 1, as Go's log.Fatalf. */
        cnd_log(CND_LOG_FATAL, "loop",
                "Loop (%s -> %s) detected for zone \"%s\", see "
                "https://coredns.io/plugins/loop#troubleshooting. Query: "
                "\"HINFO %s\"",
                from, c->listen, c->zone, c->qtext);
    }
    return CND_NEXT;
}


const cnd_plugin_t cnd_plugin_loop = {
    .name = "loop",
    .flags = CND_PLUGIN_ONCE,
    .conf_size = sizeof(cnd_loop_conf_t),
    .parse = loop_parse,
    .init = loop_init,
    .start = loop_start,
    .stop = loop_stop,
    .fini = loop_fini,
    .query = loop_query,
};
