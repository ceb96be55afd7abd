/* SPDX-License-Identifier: MIT */
/*
 * core/fast.c - the fast path: a UDP query answered before a request
 * exists.
 *
 * Most queries a busy server gets are cache hits.  On the normal path
 * (req.c) a hit pays for a request from the pool, libknot's parse of the
 * whole query, the walk and the answer's finalisation: together about a
 * tenth of the CPU a hit costs, the rest being the kernel's
 * (bench/README.md).  Here a query is read only as far as a hit needs -
 * the header, the question, a bare OPT - and routed; when the server
 * block's first plugin with a query() hook has a fast() hook (cache) and
 * every plugin before it that sees answers has fast variants of its
 * response() and finish() (loadbalance, prometheus) or minds only
 * failures (errors; conf_fast_path), that hook writes the answer straight
 * into the worker's send queue, and those variants run on it as the
 * normal way back would.
 *
 * udp.c reads a whole batch (cnd__fast_read) before answering any of it
 * (cnd__fast_answer): the plugin's fast_prefetch() hook gets each query
 * twice, when the batch is read and once more just before the query
 * ahead of it is answered, so that the memory a hit reads (the cache's
 * bucket, then its entry) is on its way by the time it is needed.
 *
 * Anything out of the ordinary returns false and takes the normal path,
 * which answers it exactly as before: another opcode, section counts
 * other than a plain query's, an OPT with options or of another version,
 * trailing bytes, a compression pointer or a reserved label type in the
 * name, a class other than IN, no zone, an answer larger than the client
 * takes or than CND_FAST_MAX.
 */
#include "core/internal.h"

#include <string.h>

#include "core/plugin.h"
#include "dns/msg.h"


/* Read the question of @wire (@len bytes) from its header on, the name
 * lowercased into @name (KNOT_DNAME_MAXLEN bytes).  Returns the offset
 * after the question, or 0 when the fast path should not take it. */
static size_t
fast_question(const uint8_t *wire, size_t len, uint8_t *name, uint16_t *qtype,
              uint16_t *qclass)
{
    size_t pos = KNOT_WIRE_HEADER_SIZE, n = 0;
    for (;;) {
        if (pos >= len) {
            return 0;
        }
        uint8_t l = wire[pos++];
        /* A label, and room for the root label after it. */
        if (l > 63 || pos + l > len ||
            n + 1 + l + (l != 0) > KNOT_DNAME_MAXLEN) {
            return 0;
        }
        name[n++] = l;
        if (l == 0) {
            break;
        }
        for (uint8_t i = 0; i < l; i++) {
            uint8_t c = wire[pos++];
            name[n++] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
        }
    }
    if (pos + 4 > len) {
        return 0;
    }
    *qtype = knot_wire_read_u16(wire + pos);
    *qclass = knot_wire_read_u16(wire + pos + 2);
    return pos + 4;
}


bool
cnd__fast_read(cnd_worker_t *w, cnd_udp_t *u, const uint8_t *wire, size_t len,
               const struct sockaddr_storage *remote,
               const struct sockaddr_storage *local, cnd_fast_t *f)
{
    f->self = NULL;
    /* A query (QR clear, opcode QUERY) of one question, and at most an
     * OPT besides. */
    if (w->wc == NULL || len < KNOT_WIRE_HEADER_SIZE || (wire[2] & 0xf8) != 0 ||
        knot_wire_get_qdcount(wire) != 1 || knot_wire_get_ancount(wire) != 0 ||
        knot_wire_get_nscount(wire) != 0 || knot_wire_get_arcount(wire) > 1) {
        return false;
    }
    uint16_t qtype, qclass;
    size_t qend = fast_question(wire, len, f->name, &qtype, &qclass);
    if (qend == 0 || qclass != KNOT_CLASS_IN) {
        return false;
    }

    /* The OPT, if any: the last bytes, root owner, version 0, no
     * options.  Without one the answer must fit in 512 bytes. */
    bool edns = knot_wire_get_arcount(wire) == 1, do_bit = false;
    size_t limit = 512;
    if (edns) {
        const uint8_t *opt = wire + qend;
        if (qend + CND_MSG_OPT_SIZE != len || opt[0] != 0 ||
            knot_wire_read_u16(opt + 1) != KNOT_RRTYPE_OPT || opt[6] != 0 ||
            knot_wire_read_u16(opt + 9) != 0) {
            return false;
        }
        uint16_t payload = knot_wire_read_u16(opt + 3);
        limit = payload < 512 ? 512 : payload;
        do_bit = (opt[7] & 0x80) != 0;
    } else if (qend != len) {
        return false;
    }

    const cnd_zone_t *zone = cnd_listen_route(u->listen, f->name, qtype);
    cnd_inst_t *self = zone != NULL ? zone->srv->fast : NULL;
    if (self == NULL) {
        return false;
    }
    f->self = self;
    f->limit = limit;
    f->edns = edns;
    f->q = (cnd_fastq_t){
        .worker = w,
        .wire = wire,
        .len = len,
        .question_end = qend,
        .qname = f->name,
        .qtype = qtype,
        .qclass = qclass,
        .do_bit = do_bit,
        .zone = zone,
        .remote = remote,
        .local = local,
        .start_ns = w->rx_ns,
        .by = self->plugin->name,
    };
    if (self->plugin->fast_prefetch != NULL) {
        self->plugin->fast_prefetch(&f->q, self, w->wc->pdata[self->wslot], 0);
    }
    return true;
}


bool
cnd__fast_answer(cnd_worker_t *w, cnd_udp_t *u, cnd_fast_t *f, cnd_fast_t *next)
{
    void **pdata = w->wc->pdata;
    if (next != NULL && next->self->plugin->fast_prefetch != NULL) {
        next->self->plugin->fast_prefetch(&next->q, next->self,
                                          pdata[next->self->wslot], 1);
    }

    /* The answer goes in the send queue's slot it will be sent from. */
    if (w->ntx == CND_UDP_BATCH) {
        cnd__udp_flush(w);
    }
    uint8_t *out = w->tx_fast[w->ntx];
    const cnd_fastq_t *q = &f->q;
    cnd_inst_t *self = f->self;
    size_t opt = f->edns ? CND_MSG_OPT_SIZE : 0;
    size_t cap = (f->limit < CND_FAST_MAX ? f->limit : CND_FAST_MAX) - opt;
    size_t n = self->plugin->fast(q, self, pdata[self->wslot], out, cap);
    if (n < q->question_end || n > cap) {
        return false; /* declined (0), or not a whole answer */
    }

    /* The way back, as req.c's: response hooks in reverse, the answer
     * made final, finish hooks in reverse. */
    cnd_inst_t *chain = q->zone->srv->chain;
    for (unsigned i = self->slot; i-- > 0;) {
        cnd_inst_t *in = &chain[i];
        if (in->plugin->fast_response != NULL) {
            in->plugin->fast_response(q, in, pdata[in->wslot], out, n);
        }
    }
    memcpy(out, q->wire, 2); /* the ID */
    if (f->edns) {
        n += cnd_msg_write_opt(out + n, q->do_bit);
        knot_wire_set_arcount(out, knot_wire_get_arcount(out) + 1);
    }
    for (unsigned i = self->slot; i-- > 0;) {
        cnd_inst_t *in = &chain[i];
        if (in->plugin->fast_finish != NULL) {
            in->plugin->fast_finish(q, in, pdata[in->wslot], out, n);
        }
    }
    cnd__udp_queue(u, out, n, q->remote, q->local, NULL);
    w->fast++;
    return true;
}
