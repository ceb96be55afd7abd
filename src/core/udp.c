/* SPDX-License-Identifier: MIT */
/*
 * core/udp.c - UDP listeners: batched receive and send.
 *
 * Each worker has its own SO_REUSEPORT socket per listen address, watched
 * with uv_poll so the worker reads a batch with one recvmmsg() and sends
 * the answers of a loop turn with one sendmmsg() per socket (the Redis
 * "before sleep" pattern: the flush runs in the loop's prepare and check
 * phases).  A socket bound to the wildcard address answers from the
 * address the query came to, read from IP_PKTINFO / IPV6_PKTINFO.
 */
#include "core/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

/* Receive rounds per readable event before letting other sockets run. */
#define UDP_ROUNDS 4


void
cnd__addr_unmap(struct sockaddr_storage *ss)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        return;
    }
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = in6->sin6_port;
    memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], 4);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &in, sizeof(in));
}


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
            cnd__addr_unmap(local);
            return;
        }
    }
}


static void
udp_read_cb(uv_poll_t *h, int status, int events)
{
    cnd_udp_t *u = h->data;
    cnd_worker_t *w = u->w;
    (void)events;
    if (status < 0) {
        return;
    }
    for (int round = 0; round < UDP_ROUNDS && !w->stopping; round++) {
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
        int n = recvmmsg(u->fd, w->rx, CND_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            return; /* EAGAIN, or an error the next event repeats */
        }
        w->rx_ns = uv_hrtime(); /* the fast path's receipt time */
        for (int i = 0; i < n; i++) {
            struct msghdr *m = &w->rx[i].msg_hdr;
            if (m->msg_flags & MSG_TRUNC) {
                w->dropped++; /* larger than any query we take */
                continue;
            }
            /* Addresses used in place: no copies on the hot path. */
            struct sockaddr_storage *remote = &w->rx_addr[i], dst;
            const struct sockaddr_storage *local = &u->listen->addr;
            cnd__addr_unmap(remote);
            if (u->wildcard) {
                udp_local(u, m, &dst);
                local = &dst;
            }
            if (!cnd__fast_answer(w, u, w->rx_buf[i], w->rx[i].msg_len, remote,
                                  local)) {
                cnd__req_input(w, CND_PROTO_UDP, u, u->listen, w->rx_buf[i],
                               w->rx[i].msg_len, remote, local);
            }
        }
        if (n < CND_UDP_BATCH) {
            return;
        }
    }
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
    return uv_poll_start(&u->poll, UV_READABLE, udp_read_cb);
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
    }
}


void
cnd__udp_close(cnd_udp_t *u)
{
    if (u->fd >= 0 && !uv_is_closing((uv_handle_t *)&u->poll)) {
        uv_poll_stop(&u->poll);
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
