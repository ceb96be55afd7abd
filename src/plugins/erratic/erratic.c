/* SPDX-License-Identifier: MIT */
/*
 * plugins/erratic/erratic.c - deliberately bad answers, for testing.
 *
 * As CoreDNS's erratic: every query is numbered; every DROP-th gets no
 * answer, every DELAY-th is answered after DURATION, every TRUNCATE-th has
 * TC set.  A queries get "A 192.0.2.53" (thirty of them with "large"),
 * AAAA queries "AAAA 2001:db8::53", both TTL 0 and authoritative; other
 * types fail with SERVFAIL.
 *
 * The delay is candor's asynchronous path in its smallest form: the query
 * hook builds the answer, parks the request (CND_ASYNC) on the request's
 * timer, and the timer resumes it with CND_DONE; cancel() stops the timer
 * when the request is dropped first.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "dns/msg.h"
#include "util/duration.h"

/* Config lifetime; the counter is shared by every worker. */
typedef struct {
    uint64_t drop, delay, truncate;
    int64_t duration_ns;
    bool large;
    atomic_uint_fast64_t count;
} erratic_conf_t;

/* "AMOUNT": a non-negative integer. */
static int
erratic_amount(cnd_disp_t *d, const char *arg, uint64_t *out)
{
    char *end;
    long long v = strtoll(arg, &end, 10);
    if (*arg == '\0' || *end != '\0') {
        return cnd_disp_err(d,
                            "strconv.ParseInt: parsing \"%s\": invalid "
                            "syntax",
                            arg);
    }
    if (v < 0) {
        return cnd_disp_err(d, "illegal amount value given \"%s\"", arg);
    }
    *out = (uint64_t)v;
    return 0;
}


static int
erratic_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    erratic_conf_t *c = conf;
    bool drop_seen = false;
    c->drop = 2;
    while (cnd_disp_next(d)) {
        while (cnd_disp_next_block(d)) {
            char prop[32];
            snprintf(prop, sizeof(prop), "%s", cnd_disp_val(d));
            const char *args[3];
            size_t n = cnd_disp_args(d, args, 3);
            if (strcmp(prop, "drop") == 0 || strcmp(prop, "truncate") == 0) {
                if (n > 1) {
                    return cnd_disp_arg_err(d);
                }
                uint64_t *field = prop[0] == 'd' ? &c->drop : &c->truncate;
                if (n == 1 && erratic_amount(d, args[0], field) != 0) {
                    return -1;
                }
                drop_seen |= prop[0] == 'd' && n == 1;
            } else if (strcmp(prop, "delay") == 0) {
                if (n > 2) {
                    return cnd_disp_arg_err(d);
                }
                c->delay = 2;
                c->duration_ns = 100 * CND_NS_PER_MS;
                if (n >= 1 && erratic_amount(d, args[0], &c->delay) != 0) {
                    return -1;
                }
                if (n == 2 &&
                    cnd_duration_parse(args[1], &c->duration_ns) != 0) {
                    return cnd_disp_err(d, "time: invalid duration \"%s\"",
                                        args[1]);
                }
            } else if (strcmp(prop, "large") == 0) {
                c->large = true;
            } else {
                return cnd_disp_err(d, "unknown property '%s'", prop);
            }
        }
    }
    /* A delay or truncate without a drop line turns the default drop
     * off, as CoreDNS does. */
    if ((c->delay > 0 || c->truncate > 0) && !drop_seen) {
        c->drop = 0;
    }
    atomic_init(&c->count, 0);
    return 0;
}


/* The delay is over: answer (or fail) now. */
static void
erratic_delay_cb(cnd_req_t *r, void *arg)
{
    cnd_req_resume(r, (cnd_rc_t)(intptr_t)arg);
}


/* Build the answer: A or AAAA with TTL 0, or false for other types. */
static bool
erratic_answer(cnd_req_t *r, const erratic_conf_t *c, bool trunc)
{
    static const uint8_t a[4] = {192, 0, 2, 53};
    static const uint8_t aaaa[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                     0,    0,    0,    0,    0, 0, 0, 0x53};
    if (r->qtype != KNOT_RRTYPE_A && r->qtype != KNOT_RRTYPE_AAAA) {
        return false;
    }
    knot_mm_t mm;
    cnd_knot_mm(&mm, &r->arena);
    knot_pkt_t *pkt = cnd_req_answer_begin(r);
    if (pkt == NULL) {
        return false;
    }
    knot_wire_set_aa(pkt->wire);
    if (trunc) {
        knot_wire_set_tc(pkt->wire);
    }
    bool v4 = r->qtype == KNOT_RRTYPE_A;
    int copies = v4 && c->large ? 30 : 1;
    knot_pkt_begin(pkt, KNOT_ANSWER);
    for (int i = 0; i < copies; i++) {
        knot_rrset_t *rr = cnd_arena_alloc(&r->arena, sizeof(*rr));
        if (rr == NULL) {
            return false;
        }
        knot_rrset_init(rr, (knot_dname_t *)r->qwire + KNOT_WIRE_HEADER_SIZE,
                        r->qtype, r->qclass, 0);
        if (knot_rrset_add_rdata(rr, v4 ? a : aaaa, v4 ? 4 : 16, &mm) != 0 ||
            knot_pkt_put(pkt, KNOT_COMPR_HINT_QNAME, rr, 0) != 0) {
            return false;
        }
    }
    return cnd_req_answer_pkt(r, pkt) == 0;
}


static cnd_rc_t
erratic_query(cnd_req_t *r, cnd_inst_t *self)
{
    erratic_conf_t *c = self->conf;
    uint64_t n = atomic_fetch_add(&c->count, 1);
    bool drop = c->drop > 0 && n % c->drop == 0;
    bool delay = c->delay > 0 && n % c->delay == 0;
    bool trunc = c->truncate > 0 && n % c->truncate == 0;

    bool answered = erratic_answer(r, c, trunc);
    if (drop) {
        cnd_req_drop(r);
        return CND_DONE;
    }
    if (!answered) {
        char type[16];
        cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                     "only A and AAAA are answered, not %s",
                     cnd_type_str(r->qtype, type, sizeof(type)));
    }
    if (!delay) {
        return answered ? CND_DONE : CND_FAIL;
    }
    /* A failure waits too, as in CoreDNS. */
    cnd_rc_t rc = answered ? CND_DONE : CND_FAIL;
    cnd_req_timer_start(r, (uint64_t)(c->duration_ns / CND_NS_PER_MS),
                        erratic_delay_cb, (void *)(intptr_t)rc);
    return CND_ASYNC;
}


static void
erratic_cancel(cnd_req_t *r, cnd_inst_t *self)
{
    cnd_req_timer_stop(r);
    char dur[32];
    cnd_req_fail(
        r, KNOT_RCODE_SERVFAIL, 0, "dropped while delaying the answer by %s",
        cnd_duration_format(((erratic_conf_t *)self->conf)->duration_ns, dur,
                            sizeof(dur)));
}


/* For /ready, as CoreDNS's: ready while its query count is 3 or 4 (so
 * tests see both answers).  Any thread: the count is atomic. */
static int
erratic_ready(cnd_inst_t *self)
{
    erratic_conf_t *c = self->conf;
    uint64_t n = atomic_load(&c->count);
    return n >= 3 && n < 5;
}


const cnd_plugin_t cnd_plugin_erratic = {
    .name = "erratic",
    .conf_size = sizeof(erratic_conf_t),
    .parse = erratic_parse,
    .query = erratic_query,
    .cancel = erratic_cancel,
    .ready = erratic_ready,
};
