/* SPDX-License-Identifier: MIT */
/*
 * core/udp.c - UDP listeners: batched receive and send.
 *
 * Each worker has its own SO_REUSEPORT socket per listen address (shared
 * with the workers beyond the usable CPUs, server.c), watched with uv_poll so
 * the worker reads a batch with one recvmmsg() and sends the answers of a loop
 * turn with one sendmmsg() per socket (the Redis "before sleep" pattern: the
 * flush runs in the loop's prepare and check phases).  A socket bound to the
 * wildcard address answers from the address the query came to, read from
 * IP_PKTINFO / IPV6_PKTINFO.
 *
 * Under load a worker with a single UDP socket waits for the next batch
 * in recvmmsg() itself rather than in epoll_wait() (udp_wait): two
 * system calls per wake-up instead of three, as the echo ceiling of
 * bench/ pays.
 */
#include "core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* Receive rounds per readable event before letting other sockets run. */
#define UDP_ROUNDS 4

/* Waiting in recvmmsg (udp_wait): begun when a wake-up finds at least
 * UDP_WAIT_MIN datagrams queued (they arrive faster than we wake), each
 * wait at most UDP_WAIT_US (the socket's SO_RCVTIMEO), and libuv's loop
 * run again after UDP_WAIT_NS at the latest, so timers, the main
 * thread's messages and TCP wait no longer than that. */
#define UDP_WAIT_MIN 2
#define UDP_WAIT_US  1000
#define UDP_WAIT_NS  1000000


/* Map an IPv4 address for a dual-stack IPv6 socket. */
static socklen_t
udp_addr_for(const cnd_udp_t *u, const struct sockaddr_storage *in,
             struct sockaddr_storage *out)
{
    if (in->ss_family == AF_INET && u->family == AF_INET6) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)in;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
        memset(v6, 0, sizeof(*v6));
        v6->sin6_family = AF_INET6;
        v6->sin6_port = v4->sin_port;
        v6->sin6_addr.s6_addr[10] = 0xff;
        v6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&v6->sin6_addr.s6_addr[12], &v4->sin_addr, 4);
        return sizeof(*v6);
    }
    *out = *in;
    return in->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6);
}


/* The destination address of a received datagram, from its pktinfo. */
static void
udp_local(const cnd_udp_t *u, struct msghdr *m, struct sockaddr_storage *local)
{
    memcpy(local, &u->listen->addr, sizeof(*local));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            struct sockaddr_in *in = (struct sockaddr_in *)local;
            uint16_t port = ((struct sockaddr_in *)&u->listen->addr)->sin_port;
            if (u->listen->addr.ss_family == AF_INET6) {
                port = ((struct sockaddr_in6 *)&u->listen->addr)->sin6_port;
            }
            memset(local, 0, sizeof(*local));
            in->sin_family = AF_INET;
            in->sin_addr = pi.ipi_addr;
            in->sin_port = port;
            return;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)local;
            in6->sin6_addr = pi.ipi6_addr;
            cnd_addr_unmap(local);
            return;
        }
    }
}


/* Read a batch from @u and answer or start each query.  @flags go to
 * recvmmsg.  Returns the datagrams read, or -1 (EAGAIN, a timeout, or an
 * error the next event repeats). */
static int
udp_read(cnd_udp_t *u, int flags)
{
    cnd_worker_t *w = u->w;
    for (unsigned i = 0; i < CND_UDP_BATCH; i++) {
        struct msghdr *m = &w->rx[i].msg_hdr;
        w->rx_iov[i].iov_base = w->rx_buf[i];
        w->rx_iov[i].iov_len = CND_UDP_RX_SIZE;
        memset(m, 0, sizeof(*m));
        m->msg_name = &w->rx_addr[i];
        m->msg_namelen = sizeof(w->rx_addr[i]);
        m->msg_iov = &w->rx_iov[i];
        m->msg_iovlen = 1;
        if (u->wildcard) {
            m->msg_control = w->rx_ctl[i];
            m->msg_controllen = sizeof(w->rx_ctl[i]);
        }
    }
    int n = recvmmsg(u->fd, w->rx, CND_UDP_BATCH, flags, NULL);
    if (n <= 0) {
        return -1;
    }
    w->rx_ns = uv_hrtime(); /* the requests' receipt time */
    /* Two passes: the whole batch is admitted first, and its chains'
     * prefetch hooks (the cache's) start loading what each query will
     * read, so that the batch's memory misses overlap; then each runs,
     * the one after it getting its second prefetch meanwhile. */
    unsigned k = 0;
    for (int i = 0; i < n; i++) {
        struct msghdr *m = &w->rx[i].msg_hdr;
        if (m->msg_flags & MSG_TRUNC) {
            w->dropped++; /* larger than any query we take */
            continue;
        }
        /* Addresses used in place: admission copies them. */
        struct sockaddr_storage *remote = &w->rx_addr[i];
        const struct sockaddr_storage *local = &u->listen->addr;
        cnd_addr_unmap(remote);
        if (u->wildcard) {
            udp_local(u, m, &w->rx_local[i]);
            local = &w->rx_local[i];
        }
        cnd_req_t *r =
            cnd__req_admit(w, CND_PROTO_UDP, u, u->listen, w->rx_buf[i],
                           w->rx[i].msg_len, remote, local);
        if (r != NULL) {
            cnd__req_prefetch(r, 0);
            w->rx_req[k++] = r;
        }
    }
    for (unsigned i = 0; i < k; i++) {
        if (i + 1 < k) {
            cnd__req_prefetch(w->rx_req[i + 1], 1);
        }
        cnd__req_run(w->rx_req[i]);
    }
    return n;
}


/* Wait for the next batches in recvmmsg: the socket is blocking, with
 * SO_RCVTIMEO (cnd__udp_start), and each answer goes out before the
 * next wait.  Back to libuv as soon as a query is still in flight once
 * the answers are out (parked: its upstream's reply comes through the
 * loop), a TCP client is connected, the worker
 * stops, the socket stays quiet for UDP_WAIT_US, or UDP_WAIT_NS have
 * passed.  Saves 3-5% of a cache hit's CPU at 50,000 q/s
 * (bench/README.md). */
static void
udp_wait(cnd_udp_t *u)
{
    cnd_worker_t *w = u->w;
    uint64_t until = w->rx_ns + UDP_WAIT_NS;
    for (;;) {
        cnd__udp_flush(w); /* the answers out, their requests released */
        if (w->ninflight != 0 || w->nconns != 0 || w->stopping ||
            w->rx_ns >= until) {
            break;
        }
        if (udp_read(u, MSG_WAITFORONE) <= 0) {
            break;
        }
        w->udp_waits++;
        uv_update_time(&w->loop); /* for timers started meanwhile */
    }
}


static void
udp_read_cb(uv_poll_t *h, int status, int events)
{
    cnd_udp_t *u = h->data;
    cnd_worker_t *w = u->w;
    (void)events;
    if (status < 0 || w->stopping) {
        return;
    }
    int first = udp_read(u, MSG_DONTWAIT), n = first;
    for (int round = 1; round < UDP_ROUNDS && n == CND_UDP_BATCH; round++) {
        n = udp_read(u, MSG_DONTWAIT);
    }
    if (first >= UDP_WAIT_MIN && u->waits && w->nudp == 1) {
        udp_wait(u);
    }
}


/* Make @u's socket one udp_wait can block on: a receive timeout, then
 * blocking mode (every other read and send passes MSG_DONTWAIT).
 * Without both, the worker only ever waits in epoll. */
static void
udp_setup_wait(cnd_udp_t *u)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = UDP_WAIT_US};
    int fl = fcntl(u->fd, F_GETFL);
    u->waits =
        fl >= 0 &&
        setsockopt(u->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
        fcntl(u->fd, F_SETFL, fl & ~O_NONBLOCK) == 0;
}


int
cnd__udp_start(cnd_udp_t *u)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(u->fd, (struct sockaddr *)&ss, &sl) != 0) {
        return -errno;
    }
    u->family = ss.ss_family;
    if (uv_poll_init_socket(&u->w->loop, &u->poll, u->fd) != 0) {
        return -1;
    }
    u->poll.data = u;
    int rc = uv_poll_start(&u->poll, UV_READABLE, udp_read_cb);
    if (rc == 0) {
        udp_setup_wait(u); /* after uv_poll_init_socket made it non-blocking */
        u->reading = true;
        u->w->nudp++;
    }
    return rc;
}


/* @u reads no more: out of the count udp_wait goes by. */
static void
udp_not_reading(cnd_udp_t *u)
{
    if (u->reading) {
        u->reading = false;
        u->w->nudp--;
    }
}


static void
udp_closed_cb(uv_handle_t *h)
{
    cnd_udp_t *u = h->data;
    close(u->fd);
    u->fd = -1;
    cnd__wlisten_closed(u->wl);
}


void
cnd__udp_stop(cnd_udp_t *u)
{
    if (u->fd >= 0) {
        uv_poll_stop(&u->poll);
        udp_not_reading(u);
    }
}


void
cnd__udp_close(cnd_udp_t *u)
{
    if (u->fd >= 0 && !uv_is_closing((uv_handle_t *)&u->poll)) {
        uv_poll_stop(&u->poll);
        udp_not_reading(u);
        uv_close((uv_handle_t *)&u->poll, udp_closed_cb);
    }
}


void
cnd__udp_send(cnd_req_t *r)
{
    cnd_udp_t *u = r->conn;
    if (r->out == NULL || u->fd < 0) {
        cnd__req_release(r);
        return;
    }
    cnd__udp_queue(u, r->out, r->out_len, &r->remote, &r->local, r);
}


void
cnd__udp_queue(cnd_udp_t *u, const uint8_t *out, size_t len,
               const struct sockaddr_storage *remote,
               const struct sockaddr_storage *local, cnd_req_t *r)
{
    cnd_worker_t *w = u->w;
    if (w->ntx == CND_UDP_BATCH) {
        cnd__udp_flush(w);
    }
    unsigned i = w->ntx++;
    struct msghdr *m = &w->tx[i].msg_hdr;
    memset(m, 0, sizeof(*m));
    w->tx_iov[i].iov_base = (void *)out;
    w->tx_iov[i].iov_len = len;
    m->msg_iov = &w->tx_iov[i];
    m->msg_iovlen = 1;
    m->msg_name = &w->tx_addr[i];
    m->msg_namelen = udp_addr_for(u, remote, &w->tx_addr[i]);
    if (u->wildcard) {
        /* Answer from the address the query was sent to. */
        m->msg_control = w->tx_ctl[i];
        struct cmsghdr *c;
        if (local->ss_family == AF_INET) {
            m->msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
            c = CMSG_FIRSTHDR(m);
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
            struct in_pktinfo pi;
            memset(&pi, 0, sizeof(pi));
            pi.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
            memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        } else {
            m->msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
            c = CMSG_FIRSTHDR(m);
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
            struct in6_pktinfo pi;
            memset(&pi, 0, sizeof(pi));
            pi.ipi6_addr = ((const struct sockaddr_in6 *)local)->sin6_addr;
            memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        }
    }
    w->tx_fd[i] = u->fd;
    w->tx_req[i] = r;
}


void
cnd__udp_flush(cnd_worker_t *w)
{
    unsigned n = w->ntx;
    if (n == 0) {
        return;
    }
    /* Runs of answers for the same socket go out in one sendmmsg. */
    unsigned i = 0;
    while (i < n) {
        unsigned j = i;
        while (j < n && w->tx_fd[j] == w->tx_fd[i]) {
            j++;
        }
        unsigned k = i;
        while (k < j) {
            int sent = sendmmsg(w->tx_fd[i], &w->tx[k], j - k, MSG_DONTWAIT);
            if (sent < 0) {
                if (errno == EINTR) {
                    continue;
                }
                w->dropped++; /* buffer full or unreachable: lose it */
                k++;
                continue;
            }
            k += (unsigned)sent;
        }
        i = j;
    }
    w->ntx = 0;
    for (i = 0; i < n; i++) {
        if (w->tx_req[i] != NULL) {
            cnd__req_release(w->tx_req[i]);
        }
    }
}
