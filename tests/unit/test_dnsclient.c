/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_dnsclient.c - the tools' DNS client: queries, replies
 * read from any bytes, and exchanges with a scripted responder thread on
 * 127.0.0.1 (wrong IDs, other questions, short and broken replies,
 * truncation, silence, closed ports).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libknot/libknot.h>

#include "dns/ede.h"
#include "tools/dnsclient.h"

/* ---- queries ------------------------------------------------------------ */

static knot_pkt_t *
parse(uint8_t *wire, size_t len)
{
    knot_pkt_t *pkt = knot_pkt_new(wire, (uint16_t)len, NULL);
    assert_non_null(pkt);
    assert_int_equal(knot_pkt_parse(pkt, 0), KNOT_EOK);
    return pkt;
}


static void
test_build(void **state)
{
    (void)state;
    uint8_t buf[512];
    cnd_dnsc_query_t q;
    cnd_dnsc_query_init(&q, "www.Example.test");
    int n = cnd_dnsc_build(&q, buf, sizeof(buf));
    assert_true(n > 12);
    knot_pkt_t *pkt = parse(buf, (size_t)n);
    char name[KNOT_DNAME_TXT_MAXLEN];
    /* as typed: knot_pkt_qname() would be the lowercased copy */
    knot_dname_to_str(name, buf + 12, sizeof(name));
    assert_string_equal(name, "www.Example.test.");
    assert_int_equal(knot_pkt_qtype(pkt), KNOT_RRTYPE_A);
    assert_int_equal(knot_pkt_qclass(pkt), KNOT_CLASS_IN);
    assert_true(knot_wire_get_rd(buf));
    assert_false(knot_wire_get_cd(buf));
    assert_false(knot_wire_get_qr(buf));
    assert_non_null(pkt->opt_rr);
    assert_int_equal(knot_edns_get_payload(pkt->opt_rr), 1232);
    assert_false(knot_edns_do(pkt->opt_rr));
    knot_pkt_free(pkt);

    /* Escapes keep their place; the case is kept. */
    q.name = "W\\.x\\065y.Te\\st.";
    n = cnd_dnsc_build(&q, buf, sizeof(buf));
    assert_true(n > 12);
    assert_memory_equal(buf + 12, "\x05W.xAy\x04Test\x00", 12);

    q.type = KNOT_RRTYPE_MX;
    q.cls = KNOT_CLASS_CH;
    q.rd = false;
    q.cd = q.do_bit = true;
    q.payload = 4096;
    n = cnd_dnsc_build(&q, buf, sizeof(buf));
    pkt = parse(buf, (size_t)n);
    assert_int_equal(knot_pkt_qtype(pkt), KNOT_RRTYPE_MX);
    assert_int_equal(knot_pkt_qclass(pkt), KNOT_CLASS_CH);
    assert_false(knot_wire_get_rd(buf));
    assert_true(knot_wire_get_cd(buf));
    assert_int_equal(knot_edns_get_payload(pkt->opt_rr), 4096);
    assert_true(knot_edns_do(pkt->opt_rr));
    knot_pkt_free(pkt);

    q.edns = false;
    n = cnd_dnsc_build(&q, buf, sizeof(buf));
    pkt = parse(buf, (size_t)n);
    assert_null(pkt->opt_rr);
    assert_int_equal(knot_wire_get_arcount(buf), 0);
    knot_pkt_free(pkt);

    /* Random IDs: eight in a row are not all the same. */
    uint16_t first = knot_wire_get_id(buf);
    bool differ = false;
    for (int i = 0; i < 8; i++) {
        cnd_dnsc_build(&q, buf, sizeof(buf));
        differ |= knot_wire_get_id(buf) != first;
    }
    assert_true(differ);

    const char *bad[] = {"", "a..b", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        q.name = bad[i];
        assert_int_equal(cnd_dnsc_build(&q, buf, sizeof(buf)), -EINVAL);
    }
    char longlabel[80];
    memset(longlabel, 'a', 64);
    strcpy(longlabel + 64, ".x");
    q.name = longlabel;
    assert_int_equal(cnd_dnsc_build(&q, buf, sizeof(buf)), -EINVAL);
    q.name = "example.test";
    assert_int_equal(cnd_dnsc_build(&q, buf, 20), -ENOSPC);
    q.name = ".";
    assert_true(cnd_dnsc_build(&q, buf, sizeof(buf)) > 0);
}


/* ---- replies ------------------------------------------------------------ */

/* A SERVFAIL for "x.test. A" whose OPT has extended rcode bits @ext, DO,
 * an NSID, EDE 22 with text and EDE 6 without; @tail extra bytes. */
static size_t
make_servfail(uint8_t *w, uint8_t ext, size_t tail)
{
    static const uint8_t head[] = {
        0x12, 0x34, 0x81, 0x02, 0,   1,   0,   0, 0, 0, 0, 1, /* header */
        1,    'x',  4,    't',  'e', 's', 't', 0, 0, 1, 0, 1,
    };
    size_t n = sizeof(head);
    memcpy(w, head, n);
    static const char text[] = "forward: 127.0.0.1:53 refused";
    size_t tl = sizeof(text) - 1;
    uint16_t rdlen = (uint16_t)(4 + 3 + 4 + 2 + tl + 4 + 2);
    uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, ext, 0, 0x80, 0x01};
    memcpy(w + n, opt, sizeof(opt));
    n += sizeof(opt);
    knot_wire_write_u16(w + n, rdlen);
    n += 2;
    knot_wire_write_u16(w + n, KNOT_EDNS_OPTION_NSID);
    knot_wire_write_u16(w + n + 2, 3);
    memcpy(w + n + 4, "ns1", 3);
    n += 7;
    knot_wire_write_u16(w + n, CND_EDNS_EDE);
    knot_wire_write_u16(w + n + 2, (uint16_t)(2 + tl));
    knot_wire_write_u16(w + n + 4, CND_EDE_NO_REACHABLE_AUTHORITY);
    memcpy(w + n + 6, text, tl);
    n += 6 + tl;
    knot_wire_write_u16(w + n, CND_EDNS_EDE);
    knot_wire_write_u16(w + n + 2, 2);
    knot_wire_write_u16(w + n + 4, CND_EDE_DNSSEC_BOGUS);
    n += 6;
    memset(w + n, 0xee, tail);
    return n + tail;
}


static void
test_parse(void **state)
{
    (void)state;
    uint8_t w[512];
    size_t len = make_servfail(w, 0, 0);
    cnd_dnsc_reply_t r;
    assert_int_equal(cnd_dnsc_parse(w, len, &r), 0);
    assert_int_equal(r.id, 0x1234);
    assert_int_equal(r.rcode, KNOT_RCODE_SERVFAIL);
    assert_int_equal(r.opcode, 0);
    assert_true(r.flags & CND_DNSC_QR);
    assert_true(r.flags & CND_DNSC_RD);
    assert_false(r.flags & CND_DNSC_RA);
    assert_int_equal(r.qdcount, 1);
    assert_int_equal(r.arcount, 1);
    assert_true(r.edns);
    assert_int_equal(r.payload, 1232);
    assert_int_equal(r.edns_flags, CND_DNSC_DO | 1);
    assert_int_equal(r.nede, 2);
    assert_int_equal(r.ede_total, 2);
    assert_int_equal(r.ede[0].code, 22);
    assert_int_equal(r.ede[0].text_len, 29);
    assert_memory_equal(r.ede[0].text, "forward: 127.0.0.1:53 refused", 29);
    assert_int_equal(r.ede[1].code, 6);
    assert_int_equal(r.ede[1].text_len, 0);
    assert_null(r.ede[1].text);
    assert_int_equal(r.end, len);

    /* The options, one by one. */
    size_t pos = 0;
    uint16_t code, dlen;
    const uint8_t *data;
    uint16_t codes[4];
    int n = 0;
    while (n < 4 && cnd_dnsc_opt_next(w + r.opt_rdata, r.opt_rdlen, &pos, &code,
                                      &data, &dlen) == 1) {
        codes[n++] = code;
    }
    assert_int_equal(n, 3);
    assert_int_equal(codes[0], KNOT_EDNS_OPTION_NSID);
    assert_int_equal(codes[1], CND_EDNS_EDE);

    /* BADVERS: 16 = 1 << 4 | 0. */
    len = make_servfail(w, 1, 0);
    w[3] &= 0xf0;
    assert_int_equal(cnd_dnsc_parse(w, len, &r), 0);
    assert_int_equal(r.rcode, 16);

    /* Trailing bytes are not an error, but shown by end. */
    len = make_servfail(w, 0, 5);
    assert_int_equal(cnd_dnsc_parse(w, len, &r), 0);
    assert_int_equal(r.end, len - 5);
}


static void
test_parse_never_trusts(void **state)
{
    (void)state;
    uint8_t w[512], cut[512];
    size_t len = make_servfail(w, 0, 0);
    cnd_dnsc_reply_t r;

    /* Every prefix fails cleanly; the header is read whenever it is
     * there.  (Cut copies so ASan sees any read past the end.) */
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, w, n);
        assert_int_equal(cnd_dnsc_parse(p, n, &r), -EINVAL);
        if (n >= 12) {
            assert_int_equal(r.id, 0x1234);
        }
        free(p);
    }

    /* An option longer than the RDATA. */
    memcpy(cut, w, len);
    knot_wire_write_u16(cut + 37, 300); /* NSID's length */
    assert_int_equal(cnd_dnsc_parse(cut, len, &r), -EINVAL);

    /* An EDE without its INFO-CODE. */
    memcpy(cut, w, len);
    size_t ede2 = len - 6;
    knot_wire_write_u16(cut + ede2 + 2, 1);
    knot_wire_write_u16(cut + 33, (uint16_t)(knot_wire_read_u16(cut + 33) - 1));
    assert_int_equal(cnd_dnsc_parse(cut, len - 1, &r), -EINVAL);

    /* Two OPT records. */
    memcpy(cut, w, 24);
    memcpy(cut + 24, w + 24, len - 24);
    memcpy(cut + len, w + 24, len - 24);
    knot_wire_set_arcount(cut, 2);
    assert_int_equal(cnd_dnsc_parse(cut, len + len - 24, &r), -EINVAL);

    /* OPT outside the additional section. */
    memcpy(cut, w, len);
    knot_wire_set_arcount(cut, 0);
    knot_wire_set_ancount(cut, 1);
    assert_int_equal(cnd_dnsc_parse(cut, len, &r), -EINVAL);

    /* More EDE options than kept: counted. */
    uint8_t many[1024];
    memcpy(many, w, 24);
    size_t n = 24;
    uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0};
    memcpy(many + n, opt, sizeof(opt));
    n += sizeof(opt);
    knot_wire_write_u16(many + n, 12 * 6);
    n += 2;
    for (int i = 0; i < 12; i++, n += 6) {
        knot_wire_write_u16(many + n, CND_EDNS_EDE);
        knot_wire_write_u16(many + n + 2, 2);
        knot_wire_write_u16(many + n + 4, (uint16_t)i);
    }
    assert_int_equal(cnd_dnsc_parse(many, n, &r), 0);
    assert_int_equal(r.nede, CND_DNSC_MAX_EDE);
    assert_int_equal(r.ede_total, 12);
}


/* ---- exchanges with a scripted responder ------------------------------ */

typedef enum {
    RESP_SILENT,        /* read the query, say nothing                   */
    RESP_OK,            /* the query echoed with QR: NOERROR, no records  */
    RESP_STRANGERS_OK,  /* another ID, short, QR clear, other question,
                        then RESP_OK                                     */
    RESP_ONLY_WRONG_ID, /* replies with another ID only                   */
    RESP_MALFORMED,     /* our ID and question, ANCOUNT 1, no record      */
    RESP_TC,            /* UDP: TC set, no records; TCP: RESP_OK             */
    RESP_CLOSE,         /* TCP: close after reading the query             */
} resp_mode_t;

typedef struct {
    int udp, tcp; /* bound on 127.0.0.1, one port; -1 when unused */
    uint16_t port;
    resp_mode_t mode;
    pthread_t th;
    int answered; /* messages sent                            */
} resp_t;


/* Send @w (@n bytes) to the client, framed on TCP. */
static void
resp_send(resp_t *rs, int fd, const struct sockaddr_in *peer, uint8_t *w,
          size_t n)
{
    if (peer != NULL) {
        sendto(fd, w, n, 0, (const struct sockaddr *)peer, sizeof(*peer));
    } else {
        uint8_t frame[2 + 512];
        knot_wire_write_u16(frame, (uint16_t)n);
        memcpy(frame + 2, w, n);
        assert_int_equal(send(fd, frame, n + 2, MSG_NOSIGNAL), (ssize_t)n + 2);
    }
    rs->answered++;
}


/* The replies of @mode to query @q (@n bytes). */
static void
resp_answer(resp_t *rs, int fd, const struct sockaddr_in *peer,
            const uint8_t *q, size_t n, bool tcp)
{
    uint8_t w[512];
    memcpy(w, q, n);
    knot_wire_set_qr(w);
    switch (rs->mode) {
    case RESP_SILENT:
    case RESP_CLOSE:
        return;
    case RESP_STRANGERS_OK:
        knot_wire_set_id(w, (uint16_t)(knot_wire_get_id(q) + 1));
        resp_send(rs, fd, peer, w, n);
        knot_wire_set_id(w, knot_wire_get_id(q));
        resp_send(rs, fd, peer, w, 5);
        knot_wire_clear_qr(w);
        resp_send(rs, fd, peer, w, n);
        knot_wire_set_qr(w);
        w[13] ^= 0x20; /* the first letter's case: still the same name */
        w[12 + 1 + w[12] + 1] ^= 0x01; /* another label: another name */
        resp_send(rs, fd, peer, w, n);
        memcpy(w, q, n);
        knot_wire_set_qr(w);
        resp_send(rs, fd, peer, w, n);
        return;
    case RESP_OK:
        resp_send(rs, fd, peer, w, n);
        return;
    case RESP_ONLY_WRONG_ID:
        for (int i = 1; i <= 3; i++) {
            knot_wire_set_id(w, (uint16_t)(knot_wire_get_id(q) + i));
            resp_send(rs, fd, peer, w, n);
        }
        return;
    case RESP_MALFORMED:
        knot_wire_set_ancount(w, 1);
        resp_send(rs, fd, peer, w, n);
        return;
    case RESP_TC:
        if (!tcp) {
            knot_wire_set_tc(w);
        }
        resp_send(rs, fd, peer, w, n);
        return;
    }
}


/* Wait up to 3 s for @fd: every wait in the responder is bounded. */
static bool
resp_ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 3000) == 1;
}


static void *
resp_main(void *arg)
{
    resp_t *rs = arg;
    uint8_t q[512];
    if (rs->udp >= 0 && resp_ready(rs->udp)) {
        struct sockaddr_in peer;
        socklen_t pl = sizeof(peer);
        ssize_t n =
            recvfrom(rs->udp, q, sizeof(q), 0, (struct sockaddr *)&peer, &pl);
        if (n >= 12) {
            resp_answer(rs, rs->udp, &peer, q, (size_t)n, false);
        }
        if (rs->mode != RESP_TC) {
            return NULL;
        }
    }
    if (rs->tcp >= 0 && resp_ready(rs->tcp)) {
        int c = accept(rs->tcp, NULL, NULL);
        uint8_t hdr[2];
        if (c >= 0 && resp_ready(c) && recv(c, hdr, 2, MSG_WAITALL) == 2) {
            size_t n = knot_wire_read_u16(hdr);
            if (n <= sizeof(q) && recv(c, q, n, MSG_WAITALL) == (ssize_t)n) {
                resp_answer(rs, c, NULL, q, n, true);
            }
            /* Keep the connection until the client is done with it. */
            if (rs->mode != RESP_CLOSE && resp_ready(c)) {
                recv(c, hdr, 1, 0);
            }
        }
        if (c >= 0) {
            close(c);
        }
    }
    return NULL;
}


/* A responder on 127.0.0.1 with UDP and/or TCP on one free port. */
static void
resp_start(resp_t *rs, resp_mode_t mode, bool udp, bool tcp)
{
    memset(rs, 0, sizeof(*rs));
    rs->mode = mode;
    rs->udp = rs->tcp = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int attempt = 0; attempt < 50; attempt++) {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        sa.sin_port = 0;
        assert_int_equal(bind(u, (struct sockaddr *)&sa, sizeof(sa)), 0);
        socklen_t sl = sizeof(sa);
        getsockname(u, (struct sockaddr *)&sa, &sl);
        int t = -1;
        if (tcp) {
            t = socket(AF_INET, SOCK_STREAM, 0);
            if (bind(t, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
                listen(t, 4) != 0) {
                close(t);
                close(u);
                continue;
            }
        }
        rs->port = ntohs(sa.sin_port);
        if (udp) {
            rs->udp = u;
        } else {
            close(u);
        }
        rs->tcp = t;
        assert_int_equal(pthread_create(&rs->th, NULL, resp_main, rs), 0);
        return;
    }
    fail_msg("no free port on 127.0.0.1");
}


static void
resp_stop(resp_t *rs)
{
    pthread_join(rs->th, NULL);
    if (rs->udp >= 0) {
        close(rs->udp);
    }
    if (rs->tcp >= 0) {
        close(rs->tcp);
    }
}


/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
static uint16_t
closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    bind(u, (struct sockaddr *)&sa, sizeof(sa));
    socklen_t sl = sizeof(sa);
    getsockname(u, (struct sockaddr *)&sa, &sl);
    close(u);
    return ntohs(sa.sin_port);
}


static unsigned drops[4];


static void
count_drop(void *arg, cnd_dnsc_drop_t why, const uint8_t *wire, size_t len)
{
    (void)arg;
    (void)wire;
    (void)len;
    drops[why]++;
}


/* Ask "www.example.test. A" at 127.0.0.1:@port. */
static int
ask(uint16_t port, bool tcp, unsigned timeout_ms, cnd_dnsc_res_t *res,
    uint8_t *reply)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(cnd_dnsc_addr("127.0.0.1", port, &ss, &sl), 0);
    cnd_dnsc_query_t q;
    uint8_t query[512];
    cnd_dnsc_query_init(&q, "www.example.test");
    int n = cnd_dnsc_build(&q, query, sizeof(query));
    assert_true(n > 0);
    cnd_dnsc_opts_t o = {.timeout_ms = timeout_ms,
                         .tcp = tcp,
                         .tc_retry = true,
                         .on_drop = count_drop};
    memset(drops, 0, sizeof(drops));
    int rc = cnd_dnsc_exchange((struct sockaddr *)&ss, sl, query, (size_t)n,
                               reply, CND_DNSC_MAX_MSG, &o, res);
    assert_int_equal(rc, res->err);
    if (rc == CND_DNSC_OK) {
        assert_int_equal(knot_wire_get_id(reply), knot_wire_get_id(query));
    }
    return rc;
}


static void
test_exchange_ok(void **state)
{
    (void)state;
    static uint8_t reply[CND_DNSC_MAX_MSG];
    cnd_dnsc_res_t res;
    resp_t rs;
    for (int tcp = 0; tcp <= 1; tcp++) {
        resp_start(&rs, RESP_STRANGERS_OK, !tcp, tcp);
        assert_int_equal(ask(rs.port, tcp, 2000, &res, reply), CND_DNSC_OK);
        resp_stop(&rs);
        assert_true(res.sent);
        assert_int_equal(res.tcp, tcp);
        assert_int_equal(res.dropped, 4);
        assert_int_equal(drops[CND_DNSC_DROP_ID], 1);
        assert_int_equal(drops[CND_DNSC_DROP_SHORT], 1);
        assert_int_equal(drops[CND_DNSC_DROP_NOT_REPLY], 1);
        assert_int_equal(drops[CND_DNSC_DROP_QUESTION], 1);
        assert_true(res.rtt_us < 2000000);
        cnd_dnsc_reply_t r;
        assert_int_equal(cnd_dnsc_parse(reply, res.len, &r), 0);
        assert_int_equal(r.rcode, 0);
    }
}


static void
test_exchange_truncated(void **state)
{
    (void)state;
    static uint8_t reply[CND_DNSC_MAX_MSG];
    cnd_dnsc_res_t res;
    resp_t rs;
    resp_start(&rs, RESP_TC, true, true);
    assert_int_equal(ask(rs.port, false, 2000, &res, reply), CND_DNSC_OK);
    resp_stop(&rs);
    assert_true(res.tc_retried);
    assert_true(res.tcp);
    assert_false(knot_wire_get_tc(reply));
}


static void
test_exchange_failures(void **state)
{
    (void)state;
    static uint8_t reply[CND_DNSC_MAX_MSG];
    cnd_dnsc_res_t res;
    resp_t rs;
    struct timespec t0, t1;

    /* Silence: a timeout, after the time given. */
    for (int tcp = 0; tcp <= 1; tcp++) {
        resp_start(&rs, RESP_SILENT, !tcp, tcp);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(ask(rs.port, tcp, 200, &res, reply),
                         CND_DNSC_ETIMEOUT);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        resp_stop(&rs);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 +
                  (t1.tv_nsec - t0.tv_nsec) / 1000000;
        assert_true(ms >= 190 && ms < 1500);
        assert_true(res.sent);
        assert_string_equal(cnd_dnsc_strerror(res.err, res.sys_errno),
                            "timed out");
    }

    /* Only strangers' replies: a mismatch, at the timeout. */
    resp_start(&rs, RESP_ONLY_WRONG_ID, true, false);
    assert_int_equal(ask(rs.port, false, 200, &res, reply), CND_DNSC_EMISMATCH);
    resp_stop(&rs);
    assert_int_equal(res.dropped, 3);

    /* Ours, broken: returned as it is. */
    resp_start(&rs, RESP_MALFORMED, true, false);
    assert_int_equal(ask(rs.port, false, 2000, &res, reply),
                     CND_DNSC_EMALFORMED);
    resp_stop(&rs);
    assert_true(res.len > 12);
    assert_int_equal(knot_wire_get_ancount(reply), 1);

    /* TCP closed before the reply. */
    resp_start(&rs, RESP_CLOSE, false, true);
    assert_int_equal(ask(rs.port, true, 2000, &res, reply), CND_DNSC_ECLOSED);
    resp_stop(&rs);
    assert_true(res.sent);
    assert_string_equal(cnd_dnsc_strerror(res.err, 0), "end of file");

    /* A closed port: ICMP on UDP (after sending), RST on TCP (in the
     * setup). */
    uint16_t port = closed_port();
    assert_int_equal(ask(port, false, 2000, &res, reply), CND_DNSC_EREFUSED);
    assert_true(res.sent);
    assert_int_equal(ask(port, true, 2000, &res, reply), CND_DNSC_EREFUSED);
    assert_false(res.sent);
    assert_string_equal(cnd_dnsc_strerror(res.err, res.sys_errno),
                        "connection refused");
}


static void
test_strerror(void **state)
{
    (void)state;
    assert_string_equal(cnd_dnsc_strerror(CND_DNSC_EUNREACH, ENETUNREACH),
                        "network unreachable");
    assert_string_equal(cnd_dnsc_strerror(CND_DNSC_EUNREACH, EHOSTUNREACH),
                        "host unreachable");
    assert_string_equal(cnd_dnsc_strerror(CND_DNSC_ERESET, ECONNRESET),
                        "connection reset");
    assert_string_equal(cnd_dnsc_strerror(CND_DNSC_EMISMATCH, 0), "timed out");
}


static void
test_addresses(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(cnd_dnsc_addr("127.0.0.1", 5300, &ss, &sl), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 5300);
    assert_int_equal(cnd_dnsc_addr("::1", 53, &ss, &sl), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(cnd_dnsc_addr("fe80::1%1", 53, &ss, &sl), 0);
    assert_int_equal(cnd_dnsc_addr("localhost", 53, &ss, &sl), -EINVAL);
    assert_int_equal(cnd_dnsc_addr("127.0.0.300", 53, &ss, &sl), -EINVAL);

    char path[] = "/tmp/cnd-resolv-XXXXXX", buf[64];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# generated\nsearch example.org\n"
                       "nameserver\n; nameserver 10.0.0.1\n"
                       "nameserver  127.0.0.53 # local\n"
                       "nameserver 10.9.8.7\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(cnd_dnsc_resolv_conf(path, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "127.0.0.53");
    assert_int_equal(cnd_dnsc_resolv_conf(path, buf, 5), -ENOSPC);
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    assert_int_equal(cnd_dnsc_resolv_conf(path, buf, sizeof(buf)), -ENOENT);
    unlink(path);
    assert_int_equal(cnd_dnsc_resolv_conf(path, buf, sizeof(buf)), -ENOENT);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_never_trusts),
        cmocka_unit_test(test_exchange_ok),
        cmocka_unit_test(test_exchange_truncated),
        cmocka_unit_test(test_exchange_failures),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
