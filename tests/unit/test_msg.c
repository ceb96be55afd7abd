/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_msg.c - finishing answers: OPT, EDE, truncation; the
 * EDE priority; Go durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <libknot/libknot.h>

#include "dns/ede.h"
#include "dns/msg.h"
#include "util/duration.h"

/* A response for "big.test. A" with @n A records, no OPT. */
static size_t
make_answer(uint8_t *buf, size_t size, int n, bool with_opt)
{
    memset(buf, 0, size);
    knot_pkt_t *pkt = knot_pkt_new(buf, (uint16_t)size, NULL);
    knot_pkt_clear(pkt);
    uint8_t qname[64];
    knot_dname_from_str(qname, "big.test.", sizeof(qname));
    knot_pkt_put_question(pkt, qname, KNOT_CLASS_IN, KNOT_RRTYPE_A);
    knot_wire_set_qr(pkt->wire);
    knot_wire_set_aa(pkt->wire);
    knot_wire_set_id(pkt->wire, 0x1234);
    knot_pkt_begin(pkt, KNOT_ANSWER);
    knot_rrset_t *rr =
        knot_rrset_new(qname, KNOT_RRTYPE_A, KNOT_CLASS_IN, 300, NULL);
    for (int i = 0; i < n; i++) {
        uint8_t ip[4] = {10, 0, (uint8_t)(i >> 8), (uint8_t)i};
        knot_rrset_add_rdata(rr, ip, 4, NULL);
    }
    knot_pkt_put(pkt, KNOT_COMPR_HINT_QNAME, rr, 0);
    if (with_opt) {
        knot_rrset_t opt;
        knot_edns_init(&opt, 4096, 0, 0, NULL);
        uint8_t nsid[3] = {'u', 'p', 's'};
        knot_edns_add_option(&opt, KNOT_EDNS_OPTION_NSID, 3, nsid, NULL);
        knot_pkt_begin(pkt, KNOT_ADDITIONAL);
        knot_pkt_put(pkt, 0, &opt, 0);
        knot_rrset_clear(&opt, NULL);
    }
    size_t len = pkt->size;
    knot_rrset_free(rr, NULL);
    knot_pkt_free(pkt);
    return len;
}


/* Parse @wire with libknot: the finished answer must be well formed. */
static knot_pkt_t *
parse(uint8_t *wire, size_t len)
{
    knot_pkt_t *pkt = knot_pkt_new(wire, (uint16_t)len, NULL);
    assert_non_null(pkt);
    assert_int_equal(knot_pkt_parse(pkt, 0), KNOT_EOK);
    return pkt;
}


static void
test_finalize_fits(void **state)
{
    (void)state;
    uint8_t resp[2048], out[4096];
    size_t len = make_answer(resp, sizeof(resp), 3, false);
    cnd_finalize_t f = {.id = 0x9999, .max_size = 512};
    int n = cnd_msg_finalize(resp, len, &f, out, sizeof(out));
    assert_int_equal(n, (int)len);
    knot_pkt_t *p = parse(out, (size_t)n);
    assert_int_equal(knot_wire_get_id(out), 0x9999);
    assert_false(knot_wire_get_tc(out));
    assert_int_equal(knot_wire_get_ancount(out), 3);
    assert_null(p->opt_rr);
    knot_pkt_free(p);
}


static void
test_finalize_edns_and_ede(void **state)
{
    (void)state;
    uint8_t resp[2048], out[4096];
    size_t len = make_answer(resp, sizeof(resp), 1, true);
    cnd_ede_out_t ede[2] = {{22, "forward: 2 upstreams timed out"}, {3, NULL}};
    cnd_finalize_t f = {.id = 1,
                        .max_size = 1232,
                        .edns = true,
                        .do_bit = true,
                        .ede = ede,
                        .nede = 2};
    int n = cnd_msg_finalize(resp, len, &f, out, sizeof(out));
    assert_true(n > 0);
    knot_pkt_t *p = parse(out, (size_t)n);
    assert_non_null(p->opt_rr);
    assert_int_equal(knot_edns_get_payload(p->opt_rr), CND_EDNS_PAYLOAD);
    assert_true(knot_edns_do(p->opt_rr));
    /* the upstream's NSID is gone, both EDEs are there */
    assert_null(knot_pkt_edns_option(p, KNOT_EDNS_OPTION_NSID));
    /* OPT rdata: EDE 22 with its text, then EDE 3 without */
    const uint8_t *rd = p->opt_rr->rrs.rdata->data;
    assert_int_equal(p->opt_rr->rrs.rdata->len, (4 + 2 + 30) + (4 + 2));
    assert_int_equal((rd[0] << 8) | rd[1], CND_EDNS_EDE);
    assert_int_equal((rd[2] << 8) | rd[3], 2 + 30);
    assert_int_equal((rd[4] << 8) | rd[5], 22);
    assert_memory_equal(rd + 6, "forward: 2 upstreams timed out", 30);
    assert_int_equal((rd[36] << 8) | rd[37], CND_EDNS_EDE);
    assert_int_equal((rd[38] << 8) | rd[39], 2);
    assert_int_equal((rd[40] << 8) | rd[41], 3);
    assert_int_equal(knot_wire_get_arcount(out), 1);
    knot_pkt_free(p);
}


static void
test_finalize_truncates(void **state)
{
    (void)state;
    uint8_t resp[4096], out[4096];
    /* 60 A records: about 60 * 16 bytes, more than 512 */
    size_t len = make_answer(resp, sizeof(resp), 60, false);
    assert_true(len > 512);
    cnd_finalize_t f = {.id = 7, .max_size = 512};
    int n = cnd_msg_finalize(resp, len, &f, out, sizeof(out));
    assert_true(n > 0 && n <= 512);
    assert_true(knot_wire_get_tc(out));
    uint16_t an = knot_wire_get_ancount(out);
    assert_true(an > 0 && an < 60);
    knot_pkt_free(parse(out, (size_t)n));

    /* with EDNS, the OPT still fits and the cut honours it */
    cnd_finalize_t g = {.id = 7, .max_size = 600, .edns = true};
    n = cnd_msg_finalize(resp, len, &g, out, sizeof(out));
    assert_true(n > 0 && n <= 600);
    assert_true(knot_wire_get_tc(out));
    knot_pkt_t *p = parse(out, (size_t)n);
    assert_non_null(p->opt_rr);
    knot_pkt_free(p);

    /* TCP: everything */
    cnd_finalize_t h = {.id = 7, .max_size = 65535};
    n = cnd_msg_finalize(resp, len, &h, out, sizeof(out));
    assert_int_equal(n, (int)len);
    assert_false(knot_wire_get_tc(out));
    assert_int_equal(knot_wire_get_ancount(out), 60);
}


/* RFC 8914 3: EDE goes before data, with TC. */
static void
test_finalize_drops_ede_first(void **state)
{
    (void)state;
    uint8_t resp[4096], out[4096];
    size_t len = make_answer(resp, sizeof(resp), 28, false);
    char text[200];
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    cnd_ede_out_t ede = {0, text};
    cnd_finalize_t f = {.id = 1,
                        .max_size = (uint16_t)(len + 11 + 50),
                        .edns = true,
                        .ede = &ede,
                        .nede = 1};
    int n = cnd_msg_finalize(resp, len, &f, out, sizeof(out));
    assert_int_equal(n, (int)(len + 11));
    assert_true(knot_wire_get_tc(out));
    assert_int_equal(knot_wire_get_ancount(out), 28);
    knot_pkt_t *p = parse(out, (size_t)n);
    assert_null(knot_pkt_edns_option(p, CND_EDNS_EDE));
    knot_pkt_free(p);
}


static void
test_finalize_rejects_garbage(void **state)
{
    (void)state;
    uint8_t out[512];
    const uint8_t junk[] = {0, 1, 0x81, 0x80, 0, 1,   0,  5,
                            0, 0, 0,    0,    3, 'a', 'b'};
    cnd_finalize_t f = {.id = 1, .max_size = 512};
    assert_true(cnd_msg_finalize(junk, sizeof(junk), &f, out, sizeof(out)) < 0);
    /* a pointer loop in an owner name is malformed, as libknot says */
    const uint8_t loop[] = {0,    1,  0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0,
                            0xc0, 12, 0,    1,    0, 1, 0, 0, 0, 0, 0, 0};
    assert_true(cnd_msg_finalize(loop, sizeof(loop), &f, out, sizeof(out)) < 0);
    /* a backward pointer is followed and is fine */
    const uint8_t back[] = {
        0,    1,  0x81, 0x80, 0, 1, 0, 1, 0, 0,  0, 0, 1, 'a', 0, 0,
        1,    0,  1, /* question a. A IN */
        0xc0, 12, 0,    1,    0, 1, 0, 0, 0, 60, 0, 4, 1, 2,   3, 4};
    assert_true(cnd_msg_finalize(back, sizeof(back), &f, out, sizeof(out)) > 0);
}


/* A name of 256 octets is one too long: 255 is the limit, the root's
 * octet included (RFC 1035 3.1). */
static void
test_skip_name_limit(void **state)
{
    (void)state;
    uint8_t wire[300];
    size_t o = 0;
    /* 3 labels of 63 and one of 61: 3 * 64 + 62 + 1 = 255 octets */
    for (int i = 0; i < 3; i++) {
        wire[o++] = 63;
        memset(wire + o, 'a', 63);
        o += 63;
    }
    wire[o++] = 61;
    memset(wire + o, 'b', 61);
    o += 61;
    wire[o++] = 0;
    assert_int_equal(o, 255);
    assert_int_equal(cnd_wire_skip_name(wire, o, 0), 255);
    /* one more octet in the last label: 256 */
    o = 3 * 64;
    wire[o++] = 62;
    memset(wire + o, 'b', 62);
    o += 62;
    wire[o++] = 0;
    assert_int_equal(o, 256);
    assert_int_equal(cnd_wire_skip_name(wire, o, 0), -1);
}


static void
test_bare_reply(void **state)
{
    (void)state;
    /* query: id 0xabcd, RD and CD set, one question */
    uint8_t q[64] = {0xab, 0xcd, 0x01, 0x10, 0,   1, 0, 0, 0, 0, 0,
                     0,    3,    'f',  'o',  'o', 0, 0, 1, 0, 1};
    uint8_t out[64];
    int n = cnd_msg_bare_reply(q, 21, KNOT_RCODE_SERVFAIL, out, sizeof(out));
    assert_int_equal(n, 21);
    assert_int_equal(knot_wire_get_id(out), 0xabcd);
    assert_true(knot_wire_get_qr(out));
    assert_true(knot_wire_get_rd(out));
    assert_true(knot_wire_get_cd(out));
    assert_false(knot_wire_get_aa(out));
    assert_false(knot_wire_get_ra(out));
    assert_int_equal(knot_wire_get_rcode(out), KNOT_RCODE_SERVFAIL);
    char flags[64];
    assert_string_equal(cnd_flags_str(out, flags, sizeof(flags)), "qr,rd,cd");
}


static void
test_typify(void **state)
{
    (void)state;
    uint8_t resp[2048];
    size_t len = make_answer(resp, sizeof(resp), 1, false);
    assert_int_equal(cnd_msg_typify(resp, len), CND_RESP_NOERROR);
    knot_wire_set_rcode(resp, KNOT_RCODE_SERVFAIL);
    assert_int_equal(cnd_msg_typify(resp, len), CND_RESP_OTHERERROR);
    len = make_answer(resp, sizeof(resp), 0, false);
    knot_wire_set_rcode(resp, KNOT_RCODE_NXDOMAIN);
    assert_int_equal(cnd_msg_typify(resp, len), CND_RESP_NXDOMAIN);
}


static void
test_names(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(cnd_rcode_str(0, buf, sizeof(buf)), "NOERROR");
    assert_string_equal(cnd_rcode_str(4, buf, sizeof(buf)), "NOTIMP");
    assert_string_equal(cnd_rcode_str(16, buf, sizeof(buf)), "BADSIG");
    assert_string_equal(cnd_rcode_str(12, buf, sizeof(buf)), "12");
    assert_string_equal(cnd_type_str(1, buf, sizeof(buf)), "A");
    assert_string_equal(cnd_type_str(65280, buf, sizeof(buf)), "TYPE65280");
    assert_string_equal(cnd_class_str(3, buf, sizeof(buf)), "CH");
    assert_string_equal(cnd_class_str(7, buf, sizeof(buf)), "CLASS7");
}


/* A DNSSEC verdict beats no reachable authority, which beats other. */
static void
test_ede_priority(void **state)
{
    (void)state;
    assert_true(cnd_ede_priority(6) > cnd_ede_priority(22));
    assert_true(cnd_ede_priority(7) > cnd_ede_priority(6));
    assert_true(cnd_ede_priority(22) > cnd_ede_priority(0));
    assert_true(cnd_ede_priority(0) > cnd_ede_priority(0xffff));
    assert_int_equal(cnd_ede_priority(22), cnd_ede_priority(23));
    assert_string_equal(cnd_ede_name(22), "No Reachable Authority");
}


static void
test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ns;
        const char *out;
    } ok[] = {
        {"0", 0, "0s"},
        {"5s", 5 * CND_NS_PER_SEC, "5s"},
        {"1m30s", 90 * CND_NS_PER_SEC, "1m30s"},
        {"5m", 300 * CND_NS_PER_SEC, "5m0s"},
        {"1.5s", 1500 * CND_NS_PER_MS, "1.5s"},
        {"250ms", 250 * CND_NS_PER_MS, "250ms"},
        {"2h45m", (2 * 3600 + 45 * 60) * CND_NS_PER_SEC, "2h45m0s"},
        {"100us", 100000, "100\xc2\xb5s"},
        {"10ns", 10, "10ns"},
        {"-1s", -CND_NS_PER_SEC, "-1s"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ns;
        assert_int_equal(cnd_duration_parse(ok[i].in, &ns), 0);
        assert_int_equal(ns, ok[i].ns);
        assert_string_equal(cnd_duration_format(ns, buf, sizeof(buf)),
                            ok[i].out);
    }
    static const char *bad[] = {"", "5", "s", "1x", "1.s.", "--1s", "1s2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ns;
        if (cnd_duration_parse(bad[i], &ns) == 0) {
            fail_msg("\"%s\" parsed", bad[i]);
        }
    }
    int64_t ns;
    assert_int_equal(cnd_duration_arg("30", &ns), 0);
    assert_int_equal(ns, 30 * CND_NS_PER_SEC);
    assert_string_equal(cnd_duration_secs(122033, buf, sizeof(buf)),
                        "0.000122033s");
    assert_string_equal(cnd_duration_secs(1500000000, buf, sizeof(buf)),
                        "1.5s");
    assert_string_equal(cnd_duration_secs(2000000000, buf, sizeof(buf)), "2s");
}


/* A reply answers a query only with its ID and question (any case);
 * FORMERR and NOTIMP may come without a question. */
static void
test_check_reply(void **state)
{
    (void)state;
    uint8_t q[512], r[512];
    size_t qlen = make_answer(q, sizeof(q), 0, false);
    knot_wire_clear_qr(q);
    size_t rlen = make_answer(r, sizeof(r), 2, false);
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, rlen), CND_REPLY_OK);

    /* the name in another case */
    r[KNOT_WIRE_HEADER_SIZE + 1] = 'B';
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, rlen), CND_REPLY_OK);
    /* another name */
    r[KNOT_WIRE_HEADER_SIZE + 1] = 'c';
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, rlen),
                     CND_REPLY_WRONG_QUESTION);
    r[KNOT_WIRE_HEADER_SIZE + 1] = 'b';
    /* another type, another class ("big.test." is 10 bytes) */
    size_t qt = KNOT_WIRE_HEADER_SIZE + 10;
    r[qt + 1] = KNOT_RRTYPE_AAAA;
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, rlen),
                     CND_REPLY_WRONG_QUESTION);
    r[qt + 1] = KNOT_RRTYPE_A;
    r[qt + 3] = KNOT_CLASS_CH;
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, rlen),
                     CND_REPLY_WRONG_QUESTION);
    r[qt + 3] = KNOT_CLASS_IN;
    /* two questions */
    knot_wire_set_qdcount(r, 2);
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, rlen),
                     CND_REPLY_WRONG_QUESTION);
    knot_wire_set_qdcount(r, 1);
    /* another ID; QR clear; too short; a name running off the end */
    knot_wire_set_id(r, 0x4321);
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, rlen), CND_REPLY_WRONG_ID);
    knot_wire_set_id(r, 0x1234);
    knot_wire_clear_qr(r);
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, rlen),
                     CND_REPLY_MALFORMED);
    knot_wire_set_qr(r);
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, 11), CND_REPLY_MALFORMED);
    assert_int_equal(cnd_msg_check_reply(q, qlen, r, KNOT_WIRE_HEADER_SIZE + 5),
                     CND_REPLY_MALFORMED);
    /* no question: only FORMERR and NOTIMP pass */
    uint8_t bare[KNOT_WIRE_HEADER_SIZE];
    memcpy(bare, r, sizeof(bare));
    knot_wire_set_qdcount(bare, 0);
    knot_wire_set_ancount(bare, 0);
    static const struct {
        uint8_t rcode;
        cnd_reply_check_t want;
    } bare_cases[] = {
        {KNOT_RCODE_NOERROR, CND_REPLY_NO_QUESTION},
        {KNOT_RCODE_NXDOMAIN, CND_REPLY_NO_QUESTION},
        {KNOT_RCODE_SERVFAIL, CND_REPLY_NO_QUESTION},
        {KNOT_RCODE_REFUSED, CND_REPLY_NO_QUESTION},
        {KNOT_RCODE_FORMERR, CND_REPLY_OK},
        {KNOT_RCODE_NOTIMPL, CND_REPLY_OK},
    };
    for (size_t i = 0; i < sizeof(bare_cases) / sizeof(bare_cases[0]); i++) {
        knot_wire_set_rcode(bare, bare_cases[i].rcode);
        assert_int_equal(cnd_msg_check_reply(q, qlen, bare, sizeof(bare)),
                         bare_cases[i].want);
    }
}


/* A query for @name @type, with an OPT (payload 1232, DO) when @edns. */
static size_t
make_query(uint8_t *buf, size_t size, const char *name, uint16_t type,
           bool edns)
{
    knot_pkt_t *pkt = knot_pkt_new(buf, (uint16_t)size, NULL);
    knot_pkt_clear(pkt);
    uint8_t qname[KNOT_DNAME_MAXLEN];
    knot_dname_from_str(qname, name, sizeof(qname));
    knot_pkt_put_question(pkt, qname, KNOT_CLASS_IN, type);
    knot_wire_set_id(pkt->wire, 0x4242);
    knot_wire_set_rd(pkt->wire);
    if (edns) {
        knot_rrset_t opt;
        knot_edns_init(&opt, 1232, 0, 0, NULL);
        knot_edns_set_do(&opt);
        knot_pkt_begin(pkt, KNOT_ADDITIONAL);
        knot_pkt_put(pkt, 0, &opt, 0);
        knot_rrset_clear(&opt, NULL);
    }
    size_t len = pkt->size;
    knot_pkt_free(pkt);
    return len;
}


/* One message both ways: whatever the light read takes, libknot's
 * parse takes too and reads alike.  Returns whether the light read took
 * it. */
static bool
light_matches_full(const uint8_t *wire, size_t len)
{
    uint8_t name[KNOT_DNAME_MAXLEN];
    cnd_qlight_t q;
    if (!cnd_msg_read_light(wire, len, name, &q)) {
        return false;
    }
    uint8_t copy[KNOT_WIRE_MAX_PKTSIZE];
    memcpy(copy, wire, len);
    knot_pkt_t *pkt = knot_pkt_new(copy, (uint16_t)len, NULL);
    assert_non_null(pkt);
    assert_int_equal(knot_pkt_parse(pkt, 0), KNOT_EOK);
    assert_true(knot_dname_is_equal(name, knot_pkt_qname(pkt)));
    assert_int_equal(q.qtype, knot_pkt_qtype(pkt));
    assert_int_equal(q.qclass, knot_pkt_qclass(pkt));
    assert_int_equal(q.question_end,
                     KNOT_WIRE_HEADER_SIZE + knot_pkt_question_size(pkt));
    assert_int_equal(q.edns, pkt->opt_rr != NULL);
    if (pkt->opt_rr != NULL) {
        assert_int_equal(pkt->opt_rr->owner[0], 0);
        assert_int_equal(q.do_bit, knot_edns_do(pkt->opt_rr));
        assert_int_equal(q.edns_version, knot_edns_get_version(pkt->opt_rr));
        assert_int_equal(q.udp_size, knot_edns_get_payload(pkt->opt_rr));
        assert_int_equal(pkt->opt_rr->rrs.rdata->len, 0);
    }
    knot_pkt_free(pkt);
    return true;
}


/* The light read (req.c's admission) against libknot over every cut and
 * every byte changed of a few queries, and random messages. */
static void
test_read_light(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint16_t type;
        bool edns;
    } bases[] = {
        {"a.example.", KNOT_RRTYPE_A, false},
        {"WwW.ExAmPlE.", KNOT_RRTYPE_AAAA, true},
        {".", KNOT_RRTYPE_NS, true},
        {"x-y_z.0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU."
         "b.",
         KNOT_RRTYPE_TXT, false},
    };
    static const uint8_t values[] = {0x00, 0x01, 0x29, 0x3f, 0x40,
                                     0x41, 0x5a, 0x80, 0xc0, 0xff};
    unsigned taken = 0, tried = 0;
    for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
        uint8_t wire[512], v[513];
        size_t len = make_query(wire, sizeof(wire), bases[b].name,
                                bases[b].type, bases[b].edns);
        assert_true(light_matches_full(wire, len)); /* a plain query */
        for (size_t n = 0; n < len; n++) {
            assert_false(light_matches_full(wire, n)); /* every cut */
        }
        memcpy(v, wire, len);
        v[len] = 0;
        assert_false(light_matches_full(v, len + 1)); /* trailing byte */
        for (size_t i = 0; i < len; i++) {
            for (size_t k = 0; k <= sizeof(values); k++) {
                memcpy(v, wire, len);
                v[i] = k < sizeof(values) ? values[k] : (uint8_t)(v[i] ^ 0x20);
                taken += light_matches_full(v, len);
                tried++;
            }
        }
    }
    /* random messages, of the sizes of queries */
    uint32_t seed = 7;
    for (int i = 0; i < 20000; i++) {
        uint8_t v[64];
        size_t len = 12 + (size_t)(i % 52);
        for (size_t k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            v[k] = (uint8_t)(seed >> 16);
        }
        v[4] = 0;
        v[5] = 1; /* one question, so some get past the counts */
        v[6] = v[7] = v[8] = v[9] = 0;
        taken += light_matches_full(v, len);
        tried++;
    }
    assert_true(taken > 0 && taken < tried);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finalize_fits),
        cmocka_unit_test(test_finalize_edns_and_ede),
        cmocka_unit_test(test_finalize_truncates),
        cmocka_unit_test(test_finalize_drops_ede_first),
        cmocka_unit_test(test_finalize_rejects_garbage),
        cmocka_unit_test(test_bare_reply),
        cmocka_unit_test(test_typify),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_ede_priority),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_check_reply),
        cmocka_unit_test(test_read_light),
        cmocka_unit_test(test_skip_name_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
