/* SPDX-License-Identifier: MIT */
/*
 * core/req.c - the request driver: admit, route, walk, finish.
 *
 * The driver decides when, plugins decide what (Knot Resolver's rule).
 * A query copied in by udp.c or tcp.c is checked as CoreDNS checks it
 * (miekg/dns's accept function, then the server's EDNS and class rules),
 * routed to the server block with the longest matching zone, then walked
 * down the block's chain:
 *
 *     cnd__req_input -> req_walk -> query() ... DONE | FAIL | end
 *                          ^            |
 *                          |          ASYNC: parked; the plugin arms its
 *                          |            own timer, the driver the 5 s
 *                          |            deadline
 *              cnd_req_resume(r, rc) <--+
 *
 * and finished: a bare reply when no plugin wrote one, response() in
 * reverse on every plugin that passed the request on, then the answer the
 * client gets (ID, OPT with EDE, truncation) and the send.
 */
#include "core/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/plugin.h"
#include "dns/ede.h"
#include "dns/msg.h"
#include "util/log.h"

/* Longest EXTRA-TEXT candor sends: keep answers small (RFC 8914 3). */
#define REQ_EDE_TEXT_MAX 240

static void req_walk(cnd_req_t *r);
static void req_finish(cnd_req_t *r);

static const char *const req_fail_labels[] = {"plugin", "code", "upstream",
                                              NULL};
/* Every error answer with its cause: the layer, the EDE code ("" when it
 * had none) and the upstream it concerns ("" when none). */
static const cnd_mfamily_t req_m_failures = {
    "candor_failures_total",
    "Queries answered with an error, by the layer that failed, the "
    "Extended DNS Error code and the upstream.",
    CND_METRIC_COUNTER,
    req_fail_labels,
    NULL,
    0};


/* ---- failure records -------------------------------------------------- */

/* The plugin now being run, for the failure's layer. */
static const char *
req_layer(const cnd_req_t *r)
{
    if (r->srv != NULL && r->state != CND_REQ_BACK && r->pos < r->srv->nchain) {
        return r->srv->chain[r->pos].plugin->name;
    }
    return "server";
}


static int
req_add_record(cnd_req_t *r, const char *plugin, uint16_t rcode, uint16_t ede,
               bool note, const char *upstream, const char *fmt, va_list ap)
{
    char text[REQ_EDE_TEXT_MAX + 1];
    vsnprintf(text, sizeof(text), fmt, ap);
    if (r->nfails == CND_REQ_MAX_FAILS) {
        /* Full: replace the least diagnostic failure if this one ranks
         * higher, so the report never loses the best cause. */
        int worst = -1;
        for (int i = 0; i < CND_REQ_MAX_FAILS; i++) {
            if (!r->fails[i].note &&
                (worst < 0 || cnd_ede_priority(r->fails[i].ede) <
                                  cnd_ede_priority(r->fails[worst].ede))) {
                worst = i;
            }
        }
        if (worst < 0 || note ||
            cnd_ede_priority(ede) <= cnd_ede_priority(r->fails[worst].ede)) {
            return 0;
        }
        r->nfails--;
        r->fails[worst] = r->fails[r->nfails];
    }
    cnd_fail_t *f = &r->fails[r->nfails];
    f->text = cnd_arena_strdup(&r->arena, text);
    if (f->text == NULL) {
        return -ENOMEM;
    }
    f->rcode = rcode;
    f->ede = ede;
    f->note = note;
    f->plugin = plugin;
    f->upstream = upstream;
    r->nfails++;
    return 0;
}


cnd_rc_t
cnd_req_fail_by(cnd_req_t *r, const char *plugin, const char *upstream,
                uint16_t rcode, uint16_t ede, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    req_add_record(r, plugin != NULL ? plugin : req_layer(r), rcode, ede, false,
                   upstream, fmt, ap);
    va_end(ap);
    return CND_FAIL;
}


int
cnd_req_note(cnd_req_t *r, uint16_t ede, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = req_add_record(r, req_layer(r), 0, ede, true, NULL, fmt, ap);
    va_end(ap);
    return rc;
}


const cnd_fail_t *
cnd_req_failure(const cnd_req_t *r)
{
    const cnd_fail_t *best = NULL;
    if (r->nfails == 0) {
        return NULL;
    }
    for (unsigned i = 0; i < r->nfails; i++) {
        const cnd_fail_t *f = &r->fails[i];
        if (!f->note && (best == NULL || cnd_ede_priority(f->ede) >
                                             cnd_ede_priority(best->ede))) {
            best = f;
        }
    }
    return best;
}


/* ---- answers ---------------------------------------------------------- */

int
cnd_req_answer_own(cnd_req_t *r, uint8_t *wire, size_t len, size_t cap)
{
    if (len < KNOT_WIRE_HEADER_SIZE || len > 65535 || cap < len) {
        return -EINVAL;
    }
    r->resp = wire;
    r->resp_len = (uint16_t)len;
    r->resp_cap = (uint16_t)(cap < 65535 ? cap : 65535);
    r->resp_synth = false;
    r->resp_owned = true;
    r->answered_by = req_layer(r);
    return 0;
}


int
cnd_req_answer(cnd_req_t *r, const uint8_t *wire, size_t len)
{
    if (len < 12 || len > 65535) {
        return -EINVAL;
    }
    uint8_t *copy = cnd_arena_memdup(&r->arena, wire, len);
    if (copy == NULL) {
        return -ENOMEM;
    }
    r->resp = copy;
    r->resp_len = (uint16_t)len;
    r->resp_synth = false;
    r->resp_owned = false;
    r->answered_by = req_layer(r);
    return 0;
}


knot_pkt_t *
cnd_req_answer_begin(cnd_req_t *r)
{
    knot_pkt_t *pkt = r->worker->scratch;
    knot_pkt_clear(pkt);
    knot_pkt_t *q = cnd_req_pkt(r);
    if (q == NULL || knot_pkt_init_response(pkt, q) != KNOT_EOK) {
        return NULL;
    }
    knot_wire_set_rcode(pkt->wire, KNOT_RCODE_NOERROR);
    return pkt;
}


int
cnd_req_answer_pkt(cnd_req_t *r, knot_pkt_t *pkt)
{
    if (pkt->size > 65535) {
        return -ENOSPC;
    }
    return cnd_req_answer(r, pkt->wire, pkt->size);
}


void
cnd_req_drop(cnd_req_t *r)
{
    r->drop = true;
}


uint16_t
cnd_req_rcode(const cnd_req_t *r)
{
    if (r->resp == NULL) {
        return KNOT_RCODE_SERVFAIL;
    }
    return knot_wire_get_rcode(r->resp);
}


/* The answer the core writes itself: CoreDNS's SetRcode reply. */
static void
req_bare_reply(cnd_req_t *r, uint16_t rcode)
{
    size_t qsize = r->question_end;
    if (qsize < KNOT_WIRE_HEADER_SIZE || qsize > r->qlen) {
        qsize = KNOT_WIRE_HEADER_SIZE;
    }
    uint8_t *out = cnd_arena_alloc(&r->arena, qsize);
    if (out == NULL ||
        cnd_msg_bare_reply(r->qwire, qsize, rcode, out, qsize) < 0) {
        r->resp = NULL;
        return;
    }
    r->resp = out;
    r->resp_len = (uint16_t)qsize;
    r->resp_synth = true;
    r->resp_owned = false;
    r->answered_by = NULL;
}


/* ---- admission -------------------------------------------------------- */

/* Reject a query before any plugin: header-only (@whole false) or with
 * the question; a record says why. */
static void req_reject(cnd_req_t *r, uint16_t rcode, uint16_t ede,
                       bool question, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
req_reject(cnd_req_t *r, uint16_t rcode, uint16_t ede, bool question,
           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    req_add_record(r, "server", rcode, ede, false, NULL, fmt, ap);
    va_end(ap);
    if (!question) {
        r->question_end = KNOT_WIRE_HEADER_SIZE;
    }
    req_bare_reply(r, rcode);
    req_finish(r);
}


/* The light read (dns/msg.h): most queries are read without libknot's
 * parse of the whole message, the name lowercased into r->qname_buf. */
static bool
req_read_light(cnd_req_t *r)
{
    cnd_qlight_t q;
    if (!cnd_msg_read_light(r->qwire, r->qlen, r->qname_buf, &q)) {
        return false;
    }
    r->qname = r->qname_buf;
    r->qtype = q.qtype;
    r->qclass = q.qclass;
    r->question_end = q.question_end;
    r->has_edns = q.edns;
    r->udp_size = q.udp_size;
    r->do_bit = q.do_bit;
    r->edns_version = q.edns_version;
    r->worker->light++;
    return true;
}


/* Parse the query with libknot into r->q.  Returns 0, -ENOMEM, or a
 * libknot error (the message is malformed). */
static int
req_parse(cnd_req_t *r)
{
    knot_mm_t mm;
    cnd_knot_mm(&mm, &r->arena);
    r->q = knot_pkt_new((uint8_t *)r->qwire, r->qlen, &mm);
    if (r->q == NULL) {
        return -ENOMEM;
    }
    /* The knot_pkt_t keeps a pointer to its allocator: give it one that
     * lives as long as the packet. */
    r->q->mm = mm;
    int prc = knot_pkt_parse(r->q, 0);
    if (prc == KNOT_ETRAIL) {
        prc = KNOT_EOK; /* miekg/dns takes trailing bytes too */
    }
    return prc;
}


knot_pkt_t *
cnd_req_pkt(cnd_req_t *r)
{
    if (r->q == NULL && r->qwire != NULL && req_parse(r) != KNOT_EOK) {
        r->q = NULL;
    }
    return r->q;
}


/* The full read, for what the light one leaves: libknot's parse, the
 * OPT's rules.  Returns true when the query goes on; else it has been
 * answered (or dropped). */
static bool
req_read_full(cnd_req_t *r)
{
    int prc = req_parse(r);
    if (prc == -ENOMEM) {
        cnd_worker_t *w = r->worker;
        cnd__req_release(r);
        w->dropped++;
        return false;
    }
    if (prc != KNOT_EOK) {
        bool question = r->q->qname_size != 0;
        r->question_end =
            (uint16_t)(KNOT_WIRE_HEADER_SIZE + knot_pkt_question_size(r->q));
        req_reject(r, KNOT_RCODE_FORMERR, CND_EDE_NONE, question,
                   "malformed query: %s", knot_strerror(prc));
        return false;
    }
    r->qname = knot_pkt_qname(r->q);
    r->qtype = knot_pkt_qtype(r->q);
    r->qclass = knot_pkt_qclass(r->q);
    r->question_end =
        (uint16_t)(KNOT_WIRE_HEADER_SIZE + knot_pkt_question_size(r->q));
    const knot_rrset_t *opt = r->q->opt_rr;
    if (opt != NULL) {
        if (opt->owner[0] != 0) {
            /* RFC 6891 6.1.2: the OPT's owner is the root. */
            req_reject(r, KNOT_RCODE_FORMERR, CND_EDE_NONE, true,
                       "malformed query: OPT owner is not the root");
            return false;
        }
        r->has_edns = true;
        r->do_bit = knot_edns_do(opt);
        r->udp_size = knot_edns_get_payload(opt);
        r->edns_version = knot_edns_get_version(opt);
        r->edns_options = opt->rrs.count > 0 && opt->rrs.rdata->len > 0;
    }
    return true;
}


cnd_req_t *
cnd__req_admit(cnd_worker_t *w, cnd_proto_t proto, void *conn,
               const cnd_listen_t *listen, const uint8_t *wire, size_t len,
               const struct sockaddr_storage *remote,
               const struct sockaddr_storage *local)
{
    /* miekg/dns: a message without a header, or a response, gets no
     * answer at all (answering would only help reflection). */
    if (len < KNOT_WIRE_HEADER_SIZE || knot_wire_get_qr(wire)) {
        w->dropped++;
        return NULL;
    }
    cnd_req_t *r = cnd__req_get(w, w->wc);
    if (r == NULL) {
        w->dropped++;
        return NULL;
    }
    r->proto = proto;
    r->conn = conn;
    if (proto == CND_PROTO_TCP) {
        cnd__tcp_req_attach(r);
        r->start_ns = uv_hrtime();
    } else {
        r->start_ns = w->rx_ns; /* its batch's receipt */
    }
    r->remote = *remote;
    r->local = *local;
    r->qwire = cnd_arena_memdup(&r->arena, wire, len);
    r->qlen = (uint16_t)len;
    r->question_end = KNOT_WIRE_HEADER_SIZE;
    r->id = knot_wire_get_id(wire);
    r->max_size = proto == CND_PROTO_TCP ? 65535 : 512;
    if (r->qwire == NULL) {
        cnd__req_release(r);
        w->dropped++;
        return NULL;
    }

    uint8_t opcode = knot_wire_get_opcode(wire);
    if (opcode != KNOT_OPCODE_QUERY && opcode != KNOT_OPCODE_NOTIFY) {
        req_reject(r, KNOT_RCODE_NOTIMPL, CND_EDE_NONE, false,
                   "opcode %u is not implemented", opcode);
        return NULL;
    }
    if (knot_wire_get_qdcount(wire) != 1 || knot_wire_get_ancount(wire) > 1 ||
        knot_wire_get_nscount(wire) > 1 || knot_wire_get_arcount(wire) > 2) {
        req_reject(r, KNOT_RCODE_FORMERR, CND_EDE_NONE, false,
                   "malformed query: section counts %u/%u/%u/%u",
                   knot_wire_get_qdcount(wire), knot_wire_get_ancount(wire),
                   knot_wire_get_nscount(wire), knot_wire_get_arcount(wire));
        return NULL;
    }
    if (!req_read_light(r) && !req_read_full(r)) {
        return NULL;
    }
    if (r->has_edns) {
        if (r->udp_size < 512) {
            r->udp_size = 512;
        }
        if (proto == CND_PROTO_UDP) {
            r->max_size = r->udp_size;
        }
        if (r->edns_version != 0) {
            /* RFC 6891 6.1.3: BADVERS (16) with an OPT of version 0. */
            req_reject(r, KNOT_RCODE_BADVERS, CND_EDE_NONE, true,
                       "EDNS version %u is not supported", r->edns_version);
            return NULL;
        }
    }

    const cnd_zone_t *zone = cnd_listen_route(listen, r->qname, r->qtype);
    char name[KNOT_DNAME_TXT_MAXLEN + 1];
    if (zone == NULL) {
        r->unrouted = listen->unrouted;
        knot_dname_to_str(name, r->qname, sizeof(name));
        req_reject(r, KNOT_RCODE_REFUSED, CND_EDE_NOT_AUTHORITATIVE, true,
                   "no server block on %s serves %s", listen->name, name);
        return NULL;
    }
    r->zone = zone;
    r->srv = zone->srv;
    if (r->qclass != KNOT_CLASS_IN && !listen->any_class) {
        char cls[16];
        req_reject(r, KNOT_RCODE_REFUSED, CND_EDE_NOT_SUPPORTED, true,
                   "class %s is not served on %s: only IN, as no server "
                   "block there has forward",
                   cnd_class_str(r->qclass, cls, sizeof(cls)), listen->name);
        return NULL;
    }
    if (r->srv->nchain == 0) {
        req_reject(r, KNOT_RCODE_REFUSED, CND_EDE_NOT_AUTHORITATIVE, true,
                   "the server block of %s has no plugins", zone->name);
        return NULL;
    }
    r->ctx = cnd_arena_zalloc(&r->arena, r->srv->nchain * sizeof(void *));
    if (r->ctx == NULL) {
        req_reject(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER, true,
                   "out of memory");
        return NULL;
    }
    r->pos = r->first = 0;
    return r;
}


void
cnd__req_input(cnd_worker_t *w, cnd_proto_t proto, void *conn,
               const cnd_listen_t *listen, const uint8_t *wire, size_t len,
               const struct sockaddr_storage *remote,
               const struct sockaddr_storage *local)
{
    cnd_req_t *r =
        cnd__req_admit(w, proto, conn, listen, wire, len, remote, local);
    if (r != NULL) {
        cnd__req_run(r);
    }
}


/* The context of the plugin at chain index @pos, made on first use. */
static inline void *
req_ctx(cnd_req_t *r, unsigned pos)
{
    size_t size = r->srv->chain[pos].plugin->ctx_size;
    if (size != 0 && r->ctx[pos] == NULL) {
        r->ctx[pos] = cnd_arena_zalloc(&r->arena, size);
    }
    return r->ctx[pos];
}


void
cnd__req_prefetch(cnd_req_t *r, int step)
{
    cnd_inst_t *self = r->srv->prefetch;
    if (self != NULL && r->first <= self->slot &&
        (self->plugin->ctx_size == 0 || req_ctx(r, self->slot) != NULL)) {
        self->plugin->prefetch(r, self, step);
    }
}


/* ---- the walk --------------------------------------------------------- */

static void
req_deadline_cb(uv_timer_t *t)
{
    cnd_req_t *r = t->data;
    r->deadline_on = false;
    cnd__req_cancel(r, NULL);
}


static void
req_park(cnd_req_t *r)
{
    r->state = CND_REQ_PARKED;
    if (!r->deadline_on) {
        uint64_t limit = r->worker->deadline_ms;
        uint64_t spent = (uv_hrtime() - r->start_ns) / 1000000;
        uint64_t left = spent < limit ? limit - spent : 0;
        r->deadline.data = r;
        uv_timer_start(&r->deadline, req_deadline_cb, left, 0);
        r->deadline_on = true;
    }
}


void
cnd__req_run(cnd_req_t *r)
{
    req_walk(r);
}


/* Walk down from r->pos until an answer, a failure or a park. */
static void
req_walk(cnd_req_t *r)
{
    const cnd_server_t *srv = r->srv;
    r->state = CND_REQ_RUN;
    while (r->pos < srv->nchain) {
        cnd_inst_t *self = &srv->chain[r->pos];
        const cnd_plugin_t *p = self->plugin;
        if (p->query == NULL) {
            r->pos++;
            continue;
        }
        if (p->ctx_size != 0 && req_ctx(r, r->pos) == NULL) {
            cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                         "out of memory");
            req_finish(r);
            return;
        }
        cnd_rc_t rc = p->query(r, self);
        switch (rc) {
        case CND_NEXT:
            r->pos++;
            continue;
        case CND_DONE:
            if (r->resp == NULL && !r->drop) {
                cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                             "returned DONE without an answer (bug)");
            }
            req_finish(r);
            return;
        case CND_FAIL:
            if (cnd_req_failure(r) == NULL) {
                cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                             "failed without saying why (bug)");
            }
            req_finish(r);
            return;
        case CND_ASYNC:
            req_park(r);
            return;
        default:
            cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                         "returned an invalid state %d (bug)", (int)rc);
            req_finish(r);
            return;
        }
    }
    /* Ran off the end of the chain: CoreDNS's "no next plugin found". */
    const char *last = srv->chain[srv->nchain - 1].plugin->name;
    cnd_req_fail_by(r, last, NULL, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                    "no next plugin found");
    req_finish(r);
}


void
cnd_req_resume(cnd_req_t *r, cnd_rc_t rc)
{
    if (r->state != CND_REQ_PARKED) {
        /* A double or late resume would send twice or touch a freed
         * request: refuse it loudly rather than corrupt anything. */
        cnd_log(CND_LOG_ERROR, NULL,
                "request resumed while not parked (state %u): plugin bug",
                r->state);
        return;
    }
    if (r->deadline_on) {
        uv_timer_stop(&r->deadline);
        r->deadline_on = false;
    }
    r->state = CND_REQ_RUN;
    switch (rc) {
    case CND_NEXT:
        r->pos++;
        req_walk(r);
        return;
    case CND_DONE:
    case CND_FAIL:
        if ((rc == CND_DONE && r->resp == NULL && !r->drop) ||
            (rc == CND_FAIL && cnd_req_failure(r) == NULL)) {
            cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                         "resumed without an answer or a cause (bug)");
        }
        req_finish(r);
        return;
    default:
        cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                     "resumed with an invalid state %d (bug)", (int)rc);
        req_finish(r);
        return;
    }
}


void
cnd__req_cancel(cnd_req_t *r, const char *why)
{
    if (r->state != CND_REQ_PARKED) {
        return;
    }
    if (r->deadline_on) {
        uv_timer_stop(&r->deadline);
        r->deadline_on = false;
    }
    cnd_inst_t *self = &r->srv->chain[r->pos];
    unsigned before = r->nfails;
    r->resp = NULL;         /* whatever was prepared is not the answer */
    r->state = CND_REQ_RUN; /* cancel() may record why it was waiting */
    if (self->plugin->cancel != NULL) {
        self->plugin->cancel(r, self);
    }
    if (r->nfails == before || cnd_req_failure(r) == NULL) {
        if (why != NULL) {
            cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER, "%s", why);
        } else {
            cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                         "no answer within the %u ms request deadline",
                         r->worker->deadline_ms);
        }
    }
    req_finish(r);
}


static void
req_timer_cb(uv_timer_t *t)
{
    cnd_req_t *r = t->data;
    cnd_req_timer_cb cb = r->timer_cb;
    r->timer_cb = NULL;
    if (cb != NULL) {
        cb(r, r->timer_arg);
    }
}


int
cnd_req_timer_start(cnd_req_t *r, uint64_t ms, cnd_req_timer_cb cb, void *arg)
{
    r->timer_cb = cb;
    r->timer_arg = arg;
    r->timer.data = r;
    return uv_timer_start(&r->timer, req_timer_cb, ms, 0);
}


void
cnd_req_timer_stop(cnd_req_t *r)
{
    uv_timer_stop(&r->timer);
    r->timer_cb = NULL;
}


const cnd_inst_t *
cnd_req_parked_in(const cnd_req_t *r)
{
    if (r->state != CND_REQ_PARKED) {
        return NULL;
    }
    return &r->srv->chain[r->pos];
}


/* ---- the way back ----------------------------------------------------- */

/* The EDE options the client gets: the reported failure @best when the
 * answer is an error, and every note. */
static size_t
req_edes(const cnd_req_t *r, const cnd_fail_t *best, cnd_ede_out_t *out,
         size_t max)
{
    size_t n = 0;
    uint16_t rcode = cnd_req_rcode(r);
    if (best != NULL && best->ede != CND_EDE_NONE &&
        rcode != KNOT_RCODE_NOERROR && rcode != KNOT_RCODE_NXDOMAIN) {
        out[n].code = best->ede;
        out[n].text = cnd_arena_printf((cnd_arena_t *)&r->arena, "%s: %s",
                                       best->plugin, best->text);
        n++;
    }
    for (unsigned i = 0; i < r->nfails && n < max; i++) {
        if (r->fails[i].note && r->fails[i].ede != CND_EDE_NONE) {
            out[n].code = r->fails[i].ede;
            out[n].text =
                cnd_arena_printf((cnd_arena_t *)&r->arena, "%s: %s",
                                 r->fails[i].plugin, r->fails[i].text);
            n++;
        }
    }
    return n;
}


/* The common case finished in place: an owned answer (cnd_req_answer_own)
 * without an OPT or records after it to cut, nothing to add but the
 * server's bare OPT, and room for it.  Returns false for the general
 * case. */
static bool
req_finalize_in_place(cnd_req_t *r)
{
    size_t opt = r->has_edns ? CND_MSG_OPT_SIZE : 0;
    size_t n = (size_t)r->resp_len + opt;
    if (!r->resp_owned || r->nfails != 0 ||
        knot_wire_get_arcount(r->resp) != 0 || n > r->max_size ||
        n > r->resp_cap) {
        return false;
    }
    knot_wire_set_id(r->resp, r->id);
    if (opt != 0) {
        cnd_msg_write_opt(r->resp + r->resp_len, r->do_bit);
        knot_wire_set_arcount(r->resp, 1);
    }
    r->out = r->resp;
    r->out_len = (uint16_t)n;
    return true;
}


/* Build r->out: the bytes the client gets. */
static int
req_finalize(cnd_req_t *r, const cnd_fail_t *best)
{
    if (req_finalize_in_place(r)) {
        return 0;
    }
    cnd_ede_out_t ede[CND_REQ_MAX_FAILS];
    uint16_t rcode = best != NULL && r->resp_synth ? best->rcode : 0;
    cnd_finalize_t f = {
        .id = r->id,
        .max_size = r->max_size,
        .edns = r->has_edns,
        .do_bit = r->do_bit,
        .ext_rcode = (uint8_t)(rcode >> 4),
    };
    f.nede = req_edes(r, best, ede, CND_REQ_MAX_FAILS);
    f.ede = ede;
    size_t cap = cnd_msg_final_size(r->resp_len, &f);
    uint8_t *out = cnd_arena_alloc(&r->arena, cap);
    if (out == NULL) {
        return -ENOMEM;
    }
    int n = cnd_msg_finalize(r->resp, r->resp_len, &f, out, cap);
    if (n < 0) {
        return n;
    }
    r->out = out;
    r->out_len = (uint16_t)n;
    return 0;
}


/* candor_failures_total: an error answer only. */
static void
req_count_failure(cnd_req_t *r, const cnd_fail_t *f)
{
    uint16_t rcode = cnd_req_rcode(r);
    if (f == NULL || r->worker->metrics == NULL ||
        r->proto == CND_PROTO_INTERNAL || rcode == KNOT_RCODE_NOERROR ||
        rcode == KNOT_RCODE_NXDOMAIN) {
        return;
    }
    char code[8] = "";
    if (f->ede != CND_EDE_NONE) {
        snprintf(code, sizeof(code), "%u", f->ede);
    }
    cnd_series_t *s =
        cnd_metric_series(r->worker->metrics, &req_m_failures, f->plugin, code,
                          f->upstream != NULL ? f->upstream : "", NULL);
    if (s != NULL) {
        cnd_counter_add(s, 1);
    }
}


static void
req_finish(cnd_req_t *r)
{
    r->state = CND_REQ_BACK;
    if (r->drop) {
        r->worker->dropped++;
        if (r->proto == CND_PROTO_INTERNAL && r->spawn_cb != NULL) {
            r->resp = NULL;
            r->spawn_cb(r, r->spawn_arg);
        }
        cnd__req_release(r);
        return;
    }
    const cnd_fail_t *best = cnd_req_failure(r);
    if (r->resp == NULL) {
        req_bare_reply(r, best != NULL ? best->rcode : KNOT_RCODE_SERVFAIL);
    }
    if (r->srv != NULL) {
        for (unsigned i = r->pos < r->srv->nchain ? r->pos : r->srv->nchain;
             i-- > r->first;) {
            cnd_inst_t *self = &r->srv->chain[i];
            if (self->plugin->response != NULL) {
                self->plugin->response(r, self);
            }
        }
    }
    if (r->nfails != 0) {
        best = cnd_req_failure(r); /* response() hooks may have added */
    }
    req_count_failure(r, best);
    if (r->resp != NULL && req_finalize(r, best) != 0) {
        /* A plugin's answer that does not parse as a message: say so
         * rather than send it. */
        const char *by = r->answered_by != NULL ? r->answered_by : "server";
        cnd_req_fail_by(r, "server", NULL, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                        "malformed answer from %s", by);
        req_bare_reply(r, KNOT_RCODE_SERVFAIL);
        if (r->resp == NULL || req_finalize(r, cnd_req_failure(r)) != 0) {
            r->out = NULL;
        }
    }
    if (r->unrouted != NULL && r->out != NULL) {
        r->unrouted->plugin->unrouted(r, r->unrouted);
    }
    if (r->srv != NULL && r->out != NULL) {
        for (unsigned i = r->pos < r->srv->nchain ? r->pos : r->srv->nchain;
             i-- > r->first;) {
            cnd_inst_t *self = &r->srv->chain[i];
            if (self->plugin->finish != NULL) {
                self->plugin->finish(r, self);
            }
        }
    }
    switch (r->proto) {
    case CND_PROTO_UDP:
        cnd__udp_send(r);
        break;
    case CND_PROTO_TCP:
        cnd__tcp_send(r);
        break;
    case CND_PROTO_INTERNAL:
        if (r->spawn_cb != NULL) {
            r->spawn_cb(r, r->spawn_arg);
        }
        cnd__req_release(r);
        break;
    }
}


/* ---- internal requests ------------------------------------------------ */

int
cnd_req_spawn(cnd_worker_t *w, const cnd_inst_t *from, const cnd_question_t *q,
              cnd_spawn_cb done, void *arg)
{
    if (from->slot == UINT_MAX || from->slot + 1 >= from->srv->nchain) {
        return -EINVAL; /* nothing after it to ask */
    }
    /* The view of the snapshot @from belongs to: after a reload, the
     * plugins of the old one still spawn (a refresh for its request). */
    cnd_req_t *r = cnd__req_get(w, cnd__worker_view(w, from->srv->conf));
    if (r == NULL) {
        return -EBUSY;
    }
    knot_mm_t mm;
    cnd_knot_mm(&mm, &r->arena);
    /* header, the longest name, type, class and an OPT */
    knot_pkt_t *pkt = knot_pkt_new(NULL, 512, &mm);
    if (pkt == NULL ||
        knot_pkt_put_question(pkt, q->qname, q->qclass, q->qtype) != 0) {
        cnd__req_release(r);
        return -EINVAL;
    }
    knot_wire_set_id(pkt->wire, (uint16_t)(uv_hrtime() & 0xffff));
    if (q->rd) {
        knot_wire_set_rd(pkt->wire);
    }
    if (q->cd) {
        knot_wire_set_cd(pkt->wire);
    }
    if (q->do_bit) {
        knot_rrset_t opt;
        if (knot_edns_init(&opt, CND_EDNS_PAYLOAD, 0, 0, &mm) != KNOT_EOK) {
            cnd__req_release(r);
            return -ENOMEM;
        }
        knot_edns_set_do(&opt);
        knot_pkt_begin(pkt, KNOT_ADDITIONAL);
        if (knot_pkt_put(pkt, 0, &opt, 0) != KNOT_EOK) {
            cnd__req_release(r);
            return -ENOMEM;
        }
    }
    r->proto = CND_PROTO_INTERNAL;
    memset(&r->remote, 0, sizeof(r->remote)); /* no client */
    memset(&r->local, 0, sizeof(r->local));
    r->start_ns = uv_hrtime();
    r->qwire = pkt->wire;
    r->qlen = (uint16_t)pkt->size;
    r->id = knot_wire_get_id(pkt->wire);
    r->max_size = 65535;
    r->q = knot_pkt_new(pkt->wire, pkt->size, &mm);
    if (r->q == NULL || knot_pkt_parse(r->q, 0) != KNOT_EOK) {
        cnd__req_release(r);
        return -EINVAL;
    }
    r->q->mm = mm;
    r->question_end =
        (uint16_t)(KNOT_WIRE_HEADER_SIZE + knot_pkt_question_size(r->q));
    r->qname = knot_pkt_qname(r->q);
    r->qtype = q->qtype;
    r->qclass = q->qclass;
    r->has_edns = q->do_bit;
    r->do_bit = q->do_bit;
    r->udp_size = q->do_bit ? CND_EDNS_PAYLOAD : 0;
    r->srv = from->srv;
    r->zone = NULL;
    for (size_t i = 0; i < from->srv->nzones; i++) {
        const cnd_zone_t *z = &from->srv->zones[i];
        if (knot_dname_in_bailiwick(r->qname, z->dname) >= 0 &&
            (r->zone == NULL || knot_dname_labels(z->dname, NULL) >
                                    knot_dname_labels(r->zone->dname, NULL))) {
            r->zone = z;
        }
    }
    r->spawn_cb = done;
    r->spawn_arg = arg;
    r->ctx = cnd_arena_zalloc(&r->arena, r->srv->nchain * sizeof(void *));
    if (r->ctx == NULL) {
        cnd__req_release(r);
        return -ENOMEM;
    }
    r->pos = r->first = from->slot + 1;
    req_walk(r);
    return 0;
}
