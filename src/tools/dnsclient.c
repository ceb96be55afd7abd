/* SPDX-License-Identifier: MIT */
/*
 * tools/dnsclient.c - a small blocking DNS client for the command-line
 * tools.
 *
 * One exchange is one socket: UDP connected to the server (so an ICMP
 * port unreachable comes back as ECONNREFUSED and datagrams from anyone
 * else never arrive), or a TCP connection.  Waiting is poll() against one
 * deadline per transport, so every loop here ends when time runs out,
 * however many stray messages come.  Messages are checked with libknot
 * and dns/msg.h's record walk; nothing here trusts a count or a length.
 */
#include "tools/dnsclient.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <libknot/libknot.h>

#include "dns/ede.h"
#include "dns/msg.h"
#include "util/resolvconf.h"

#define DNSC_HDR 12


static uint64_t
dnsc_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}


/* Milliseconds left until @deadline (rounded up), 0 when it has passed. */
static int
dnsc_left_ms(uint64_t deadline)
{
    uint64_t now = dnsc_now_us();
    if (now >= deadline) {
        return 0;
    }
    uint64_t ms = (deadline - now + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}


void
cnd_dnsc_query_init(cnd_dnsc_query_t *q, const char *name)
{
    memset(q, 0, sizeof(*q));
    q->name = name;
    q->type = KNOT_RRTYPE_A;
    q->cls = KNOT_CLASS_IN;
    q->rd = true;
    q->edns = true;
    q->payload = CND_EDNS_PAYLOAD;
}


static bool
dnsc_digit(char c)
{
    return c >= '0' && c <= '9';
}


/* knot_dname_from_str() lowercases, but a query goes out as typed (the
 * server echoes the question as asked).  @text is a name it accepted:
 * each of its characters, or escapes, is one byte of @wire, in order, so
 * copy them back. */
static void
dnsc_keep_case(uint8_t *wire, const char *text)
{
    uint8_t *label = wire;
    size_t i = 0;
    for (const char *c = text; *c != '\0' && *label != 0; c++) {
        int b = (unsigned char)*c;
        if (b == '.') {
            label += *label + 1;
            i = 0;
            continue;
        }
        if (b == '\\' && dnsc_digit(c[1]) && dnsc_digit(c[2]) &&
            dnsc_digit(c[3])) {
            b = (c[1] - '0') * 100 + (c[2] - '0') * 10 + (c[3] - '0');
            c += 3;
        } else if (b == '\\' && c[1] != '\0') {
            b = (unsigned char)*++c;
        }
        if (i < *label) {
            label[1 + i++] = (uint8_t)b;
        }
    }
}


int
cnd_dnsc_build(const cnd_dnsc_query_t *q, uint8_t *buf, size_t size)
{
    uint8_t qname[KNOT_DNAME_MAXLEN];
    uint16_t id;
    if (q->name == NULL || q->name[0] == '\0' ||
        knot_dname_from_str(qname, q->name, sizeof(qname)) == NULL) {
        return -EINVAL;
    }
    dnsc_keep_case(qname, q->name);
    if (gnutls_rnd(GNUTLS_RND_NONCE, &id, sizeof(id)) != 0) {
        return -EIO;
    }
    if (size < DNSC_HDR) {
        return -ENOSPC;
    }
    knot_pkt_t *pkt =
        knot_pkt_new(buf, (uint16_t)(size > 65535 ? 65535 : size), NULL);
    if (pkt == NULL) {
        return -ENOMEM;
    }
    knot_pkt_clear(pkt);
    int rc = knot_pkt_put_question(pkt, qname, q->cls, q->type);
    knot_wire_set_id(pkt->wire, id);
    if (q->rd) {
        knot_wire_set_rd(pkt->wire);
    }
    if (q->cd) {
        knot_wire_set_cd(pkt->wire);
    }
    if (rc == KNOT_EOK && q->edns) {
        knot_rrset_t opt;
        rc = knot_edns_init(&opt, q->payload, 0, 0, NULL);
        if (rc == KNOT_EOK) {
            if (q->do_bit) {
                knot_edns_set_do(&opt);
            }
            rc = knot_pkt_begin(pkt, KNOT_ADDITIONAL);
            if (rc == KNOT_EOK) {
                rc = knot_pkt_put(pkt, KNOT_COMPR_HINT_NONE, &opt, 0);
            }
            knot_rrset_clear(&opt, NULL);
        }
    }
    size_t len = pkt->size;
    knot_pkt_free(pkt);
    if (rc != KNOT_EOK) {
        return rc == KNOT_ENOMEM ? -ENOMEM : -ENOSPC;
    }
    return (int)len;
}


/* ---- exchange ---------------------------------------------------------- */

/* The class of a socket error. */
static int
dnsc_classify(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return CND_DNSC_EREFUSED;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EADDRNOTAVAIL:
    case ENETDOWN:
    case EHOSTDOWN:
        return CND_DNSC_EUNREACH;
    case ECONNRESET:
    case EPIPE:
        return CND_DNSC_ERESET;
    case ETIMEDOUT:
        return CND_DNSC_ETIMEOUT;
    default:
        return CND_DNSC_ESYS;
    }
}


static int
dnsc_fail(cnd_dnsc_res_t *res, int e)
{
    res->sys_errno = e;
    res->err = dnsc_classify(e);
    return res->err;
}


/* Time ran out: a plain timeout, unless only strangers' replies came. */
static int
dnsc_timeout(cnd_dnsc_res_t *res)
{
    res->err = res->dropped > 0 ? CND_DNSC_EMISMATCH : CND_DNSC_ETIMEOUT;
    return res->err;
}


/* Is the question of reply @r (@rlen bytes) the one of query @q?  1 yes
 * (or the reply has none: FORMERR and the like may leave it out), 0 it
 * is another, -1 it does not parse. */
static int
dnsc_same_question(const uint8_t *q, size_t qlen, const uint8_t *r, size_t rlen)
{
    if (knot_wire_get_qdcount(r) == 0) {
        return 1;
    }
    long qend = cnd_wire_skip_name(q, qlen, DNSC_HDR);
    if (qend < 0 || (size_t)qend + 4 > qlen) {
        return 1; /* not a query of ours: nothing to compare with */
    }
    /* Ours is one uncompressed question: so must the reply's be. */
    int rname = knot_dname_wire_check(r + DNSC_HDR, r + rlen, NULL);
    if (rname <= 0 || (size_t)(DNSC_HDR + rname + 4) > rlen) {
        return -1;
    }
    return knot_wire_get_qdcount(r) == 1 &&
           knot_dname_is_case_equal(q + DNSC_HDR, r + DNSC_HDR) &&
           memcmp(q + qend, r + DNSC_HDR + rname, 4) == 0;
}


/* Do the records of @r (@rlen bytes) stay inside it? */
static bool
dnsc_well_formed(const uint8_t *r, size_t rlen)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    int rc;
    if (cnd_rr_iter_init(&it, r, rlen) != 0) {
        return false;
    }
    while ((rc = cnd_rr_next(&it, &rr)) == 1) {
    }
    return rc == 0;
}


/* Does the reply @r (@rlen bytes) answer the query @q?  1 yes (then
 * res->err is OK or EMALFORMED), 0 no: dropped and counted. */
static int
dnsc_check(const uint8_t *q, size_t qlen, const uint8_t *r, size_t rlen,
           const cnd_dnsc_opts_t *o, cnd_dnsc_res_t *res)
{
    cnd_dnsc_drop_t why;
    int same;
    if (rlen < DNSC_HDR) {
        why = CND_DNSC_DROP_SHORT;
    } else if (!knot_wire_get_qr(r)) {
        why = CND_DNSC_DROP_NOT_REPLY;
    } else if (knot_wire_get_id(r) != knot_wire_get_id(q)) {
        why = CND_DNSC_DROP_ID;
    } else if ((same = dnsc_same_question(q, qlen, r, rlen)) != 0) {
        res->len = rlen;
        res->err = same > 0 && dnsc_well_formed(r, rlen) ? CND_DNSC_OK
                                                         : CND_DNSC_EMALFORMED;
        return 1;
    } else {
        why = CND_DNSC_DROP_QUESTION;
    }
    res->dropped++;
    if (o->on_drop != NULL) {
        o->on_drop(o->arg, why, r, rlen);
    }
    return 0;
}


static int
dnsc_udp(const struct sockaddr *sa, socklen_t salen, const uint8_t *q,
         size_t qlen, uint8_t *reply, size_t cap, const cnd_dnsc_opts_t *o,
         cnd_dnsc_res_t *res, uint64_t timeout_us)
{
    int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return dnsc_fail(res, errno);
    }
    if (connect(fd, sa, salen) != 0) {
        int e = errno;
        close(fd);
        return dnsc_fail(res, e);
    }
    uint64_t start = dnsc_now_us(), deadline = start + timeout_us;
    if (send(fd, q, qlen, 0) != (ssize_t)qlen) {
        int e = errno;
        close(fd);
        return dnsc_fail(res, e);
    }
    res->sent = true;
    for (;;) {
        int left = dnsc_left_ms(deadline);
        if (left == 0) {
            close(fd);
            return dnsc_timeout(res);
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, left);
        if (n < 0 && errno != EINTR) {
            int e = errno;
            close(fd);
            return dnsc_fail(res, e);
        }
        if (n <= 0) {
            continue;
        }
        ssize_t got = recv(fd, reply, cap, MSG_DONTWAIT | MSG_TRUNC);
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            int e = errno;
            close(fd);
            return dnsc_fail(res, e);
        }
        if ((size_t)got > cap) {
            /* Bigger than the caller's buffer: not readable whole. */
            res->len = cap;
            res->err = CND_DNSC_EMALFORMED;
            res->sys_errno = EMSGSIZE;
            break;
        }
        if (dnsc_check(q, qlen, reply, (size_t)got, o, res)) {
            break;
        }
    }
    res->rtt_us = dnsc_now_us() - start;
    close(fd);
    return res->err;
}


/* Wait for @fd to be ready for @events before @deadline: 1, 0 on
 * timeout, -errno. */
static int
dnsc_wait(int fd, short events, uint64_t deadline)
{
    for (;;) {
        int left = dnsc_left_ms(deadline);
        if (left == 0) {
            return 0;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left);
        if (n > 0) {
            return 1;
        }
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
}


/* Read exactly @len bytes before @deadline: 1, 0 on timeout, -errno, or
 * -ENODATA when the server closed first. */
static int
dnsc_read_full(int fd, uint8_t *buf, size_t len, uint64_t deadline)
{
    size_t have = 0;
    while (have < len) {
        int w = dnsc_wait(fd, POLLIN, deadline);
        if (w <= 0) {
            return w;
        }
        ssize_t n = recv(fd, buf + have, len - have, MSG_DONTWAIT);
        if (n == 0) {
            return -ENODATA;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return -errno;
        }
        have += (size_t)n;
    }
    return 1;
}


/* A read or write on the connection ended with @w (see above). */
static int
dnsc_tcp_end(int fd, cnd_dnsc_res_t *res, int w)
{
    close(fd);
    if (w == 0) {
        return dnsc_timeout(res);
    }
    if (w == -ENODATA) {
        res->err = CND_DNSC_ECLOSED;
        return res->err;
    }
    return dnsc_fail(res, -w);
}


static int
dnsc_tcp(const struct sockaddr *sa, socklen_t salen, const uint8_t *q,
         size_t qlen, uint8_t *reply, size_t cap, const cnd_dnsc_opts_t *o,
         cnd_dnsc_res_t *res, uint64_t timeout_us)
{
    res->tcp = true;
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return dnsc_fail(res, errno);
    }
    uint64_t start = dnsc_now_us(), deadline = start + timeout_us;
    if (connect(fd, sa, salen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return dnsc_fail(res, e);
    }
    /* Connected or connecting: wait for the outcome. */
    int w = dnsc_wait(fd, POLLOUT, deadline), e = 0;
    socklen_t el = sizeof(e);
    if (w > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0) {
        e = errno;
    }
    if (w <= 0 || e != 0) {
        close(fd);
        return w == 0 ? dnsc_timeout(res) : dnsc_fail(res, w < 0 ? -w : e);
    }
    res->sent = true;

    uint8_t frame[2 + CND_DNSC_MAX_MSG];
    size_t flen = 2 + (qlen > CND_DNSC_MAX_MSG ? CND_DNSC_MAX_MSG : qlen);
    knot_wire_write_u16(frame, (uint16_t)(flen - 2));
    memcpy(frame + 2, q, flen - 2);
    for (size_t off = 0; off < flen;) {
        w = dnsc_wait(fd, POLLOUT, deadline);
        if (w <= 0) {
            return dnsc_tcp_end(fd, res, w);
        }
        ssize_t n = send(fd, frame + off, flen - off, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return dnsc_tcp_end(fd, res, -errno);
        }
        off += n > 0 ? (size_t)n : 0;
    }

    for (;;) {
        uint8_t hdr[2];
        w = dnsc_read_full(fd, hdr, 2, deadline);
        if (w <= 0) {
            return dnsc_tcp_end(fd, res, w);
        }
        size_t mlen = knot_wire_read_u16(hdr);
        if (mlen > cap) {
            /* Take what fits: enough to see it is not whole. */
            w = dnsc_read_full(fd, reply, cap, deadline);
            if (w <= 0) {
                return dnsc_tcp_end(fd, res, w);
            }
            res->len = cap;
            res->err = CND_DNSC_EMALFORMED;
            res->sys_errno = EMSGSIZE;
            break;
        }
        w = dnsc_read_full(fd, reply, mlen, deadline);
        if (w <= 0) {
            return dnsc_tcp_end(fd, res, w);
        }
        if (dnsc_check(q, qlen, reply, mlen, o, res)) {
            break;
        }
    }
    res->rtt_us = dnsc_now_us() - start;
    close(fd);
    return res->err;
}


int
cnd_dnsc_exchange(const struct sockaddr *sa, socklen_t salen,
                  const uint8_t *query, size_t qlen, uint8_t *reply, size_t cap,
                  const cnd_dnsc_opts_t *o, cnd_dnsc_res_t *res)
{
    memset(res, 0, sizeof(*res));
    uint64_t timeout_us =
        (uint64_t)(o->timeout_ms != 0 ? o->timeout_ms
                                      : CND_DNSC_DEFAULT_TIMEOUT_MS) *
        1000;
    if (qlen < DNSC_HDR || cap < DNSC_HDR) {
        res->err = CND_DNSC_ESYS;
        res->sys_errno = EINVAL;
        return res->err;
    }
    if (o->tcp) {
        return dnsc_tcp(sa, salen, query, qlen, reply, cap, o, res, timeout_us);
    }
    int rc = dnsc_udp(sa, salen, query, qlen, reply, cap, o, res, timeout_us);
    if (rc != CND_DNSC_OK || !o->tc_retry || !knot_wire_get_tc(reply)) {
        return rc;
    }
    unsigned dropped = res->dropped;
    memset(res, 0, sizeof(*res));
    res->dropped = dropped;
    res->tc_retried = true;
    return dnsc_tcp(sa, salen, query, qlen, reply, cap, o, res, timeout_us);
}


const char *
cnd_dnsc_strerror(int err, int sys_errno)
{
    switch (err) {
    case CND_DNSC_OK:
        return "success";
    case CND_DNSC_ETIMEOUT:
    case CND_DNSC_EMISMATCH:
        return "timed out";
    case CND_DNSC_EREFUSED:
        return "connection refused";
    case CND_DNSC_EUNREACH:
        return sys_errno == EHOSTUNREACH    ? "host unreachable"
               : sys_errno == EADDRNOTAVAIL ? "address not available"
               : sys_errno == ENETDOWN      ? "network down"
               : sys_errno == EHOSTDOWN     ? "host down"
                                            : "network unreachable";
    case CND_DNSC_ERESET:
        return "connection reset";
    case CND_DNSC_ECLOSED:
        return "end of file";
    case CND_DNSC_EMALFORMED:
        return sys_errno == EMSGSIZE ? "message too big"
                                     : "malformed message packet";
    default:
        return sys_errno != 0 ? strerror(sys_errno) : "unexpected error";
    }
}


/* ---- parsing ----------------------------------------------------------- */

int
cnd_dnsc_opt_next(const uint8_t *rdata, size_t rdlen, size_t *pos,
                  uint16_t *code, const uint8_t **data, uint16_t *dlen)
{
    if (*pos >= rdlen) {
        return 0;
    }
    if (rdlen - *pos < 4) {
        return -EINVAL;
    }
    const uint8_t *p = rdata + *pos;
    uint16_t len = knot_wire_read_u16(p + 2);
    if (rdlen - *pos - 4 < len) {
        return -EINVAL;
    }
    *code = knot_wire_read_u16(p);
    *dlen = len;
    *data = p + 4;
    *pos += 4 + (size_t)len;
    return 1;
}


/* Read the OPT record @rr of @buf into @r. */
static int
dnsc_parse_opt(const uint8_t *buf, const cnd_rr_t *rr, cnd_dnsc_reply_t *r)
{
    r->edns = true;
    r->payload = rr->cls;
    r->rcode = (uint16_t)(((rr->ttl >> 24) << 4) | (r->rcode & 0x0f));
    r->edns_version = (uint8_t)(rr->ttl >> 16);
    r->edns_flags = (uint16_t)rr->ttl;
    r->opt_rdata = rr->rdata;
    r->opt_rdlen = rr->rdlen;
    size_t pos = 0;
    uint16_t code, dlen;
    const uint8_t *data;
    int rc;
    while ((rc = cnd_dnsc_opt_next(buf + rr->rdata, rr->rdlen, &pos, &code,
                                   &data, &dlen)) == 1) {
        if (code != CND_EDNS_EDE) {
            continue;
        }
        if (dlen < 2) {
            return -EINVAL; /* RFC 8914: at least the INFO-CODE */
        }
        r->ede_total++;
        if (r->nede < CND_DNSC_MAX_EDE) {
            cnd_dnsc_ede_t *e = &r->ede[r->nede++];
            e->code = knot_wire_read_u16(data);
            e->text_len = (uint16_t)(dlen - 2);
            e->text = dlen > 2 ? data + 2 : NULL;
        }
    }
    return rc;
}


int
cnd_dnsc_parse(const uint8_t *buf, size_t len, cnd_dnsc_reply_t *r)
{
    memset(r, 0, sizeof(*r));
    if (len < DNSC_HDR) {
        return -EINVAL;
    }
    r->id = knot_wire_get_id(buf);
    r->flags = knot_wire_read_u16(buf + 2);
    r->opcode = knot_wire_get_opcode(buf);
    r->rcode = knot_wire_get_rcode(buf);
    r->qdcount = knot_wire_get_qdcount(buf);
    r->ancount = knot_wire_get_ancount(buf);
    r->nscount = knot_wire_get_nscount(buf);
    r->arcount = knot_wire_get_arcount(buf);
    r->end = DNSC_HDR;

    cnd_rr_iter_t it;
    cnd_rr_t rr;
    int rc;
    if (cnd_rr_iter_init(&it, buf, len) != 0) {
        return -EINVAL;
    }
    r->end = it.pos;
    while ((rc = cnd_rr_next(&it, &rr)) == 1) {
        if (rr.type == KNOT_RRTYPE_OPT) {
            /* One OPT, in the additional section, owned by the root. */
            if (r->edns || rr.section != KNOT_ADDITIONAL ||
                buf[rr.start] != 0 || dnsc_parse_opt(buf, &rr, r) != 0) {
                return -EINVAL;
            }
        }
        r->end = rr.end;
    }
    return rc < 0 ? -EINVAL : 0;
}


/* ---- addresses ----------------------------------------------------------- */

int
cnd_dnsc_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss,
              socklen_t *len)
{
    struct addrinfo hints = {
        .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
        .ai_socktype = SOCK_DGRAM,
    };
    struct addrinfo *ai = NULL;
    char svc[8];
    snprintf(svc, sizeof(svc), "%u", port);
    if (getaddrinfo(ip, svc, &hints, &ai) != 0 || ai == NULL) {
        return -EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}


/* The first nameserver (cnd_resolv_conf_read's callback). */
typedef struct {
    char *buf;
    size_t size;
} dnsc_first_t;


static int
dnsc_first_ns(void *ud, const char *addr)
{
    dnsc_first_t *x = ud;
    return snprintf(x->buf, x->size, "%s", addr) < (int)x->size ? 1 : -ENOSPC;
}


int
cnd_dnsc_resolv_conf(const char *path, char *buf, size_t size)
{
    dnsc_first_t x = {buf, size};
    int rc = cnd_resolv_conf_read(path, dnsc_first_ns, &x);
    return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}
