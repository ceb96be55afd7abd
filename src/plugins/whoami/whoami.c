/* SPDX-License-Identifier: MIT */
/*
 * plugins/whoami/whoami.c - answer with the client's address and port.
 *
 * As CoreDNS's whoami: an authoritative answer whose additional section
 * holds an A (or AAAA) record of the client's IP and an SRV record
 * "_udp.<qname>" (or "_tcp.") carrying the client's port, both with TTL 0.
 * The answer section stays empty.  Useful to see which address and
 * transport reach the server, and as the built-in default's plugin.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/plugin.h"
#include "dns/msg.h"


static int
whoami_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    (void)conf;
    cnd_disp_next(d); /* "whoami" */
    if (cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    return 0;
}


static cnd_rc_t
whoami_query(cnd_req_t *r, cnd_inst_t *self)
{
    (void)self;
    knot_mm_t mm;
    cnd_knot_mm(&mm, &r->arena);
    knot_pkt_t *pkt = cnd_req_answer_begin(r);
    if (pkt == NULL) {
        return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                            "cannot build an answer");
    }
    knot_wire_set_aa(pkt->wire);
    /* The name as the client wrote it: whoami's answer keeps its case. */
    const knot_dname_t *qname = r->qwire + KNOT_WIRE_HEADER_SIZE;

    /* The client's address: A for IPv4, AAAA for IPv6. */
    knot_rrset_t addr;
    const uint8_t *ip;
    uint16_t type, iplen, port;
    if (r->remote.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)&r->remote;
        ip = (const uint8_t *)&in->sin_addr;
        iplen = 4;
        type = KNOT_RRTYPE_A;
        port = ntohs(in->sin_port);
    } else {
        const struct sockaddr_in6 *in6 = (const void *)&r->remote;
        ip = (const uint8_t *)&in6->sin6_addr;
        iplen = 16;
        type = KNOT_RRTYPE_AAAA;
        port = ntohs(in6->sin6_port);
    }
    knot_rrset_init(&addr, (knot_dname_t *)qname, type, r->qclass, 0);

    /* "_udp.<qname>" SRV 0 0 <port> . */
    size_t qlen = knot_dname_size(qname);
    knot_dname_t *srvname = cnd_arena_alloc(&r->arena, qlen + 5);
    uint8_t srvdata[7] = {0, 0, 0, 0, (uint8_t)(port >> 8), (uint8_t)port, 0};
    knot_rrset_t srv;
    if (srvname == NULL) {
        return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0, "out of memory");
    }
    srvname[0] = 4;
    memcpy(srvname + 1, r->proto == CND_PROTO_TCP ? "_tcp" : "_udp", 4);
    if (qlen + 5 > KNOT_DNAME_MAXLEN) {
        srvname[0] = 0; /* the name would be too long: use the root */
        qlen = 0;
    } else {
        memcpy(srvname + 5, qname, qlen);
    }
    knot_rrset_init(&srv, srvname, KNOT_RRTYPE_SRV, r->qclass, 0);

    if (knot_rrset_add_rdata(&addr, ip, iplen, &mm) != KNOT_EOK ||
        knot_rrset_add_rdata(&srv, srvdata, sizeof(srvdata), &mm) != KNOT_EOK ||
        knot_pkt_begin(pkt, KNOT_ADDITIONAL) != KNOT_EOK ||
        knot_pkt_put(pkt, KNOT_COMPR_HINT_QNAME, &addr, 0) != KNOT_EOK ||
        knot_pkt_put(pkt, 0, &srv, 0) != KNOT_EOK ||
        cnd_req_answer_pkt(r, pkt) != 0) {
        return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                            "cannot build an answer");
    }
    return CND_DONE;
}


const cnd_plugin_t cnd_plugin_whoami = {
    .name = "whoami",
    .parse = whoami_parse,
    .query = whoami_query,
};
