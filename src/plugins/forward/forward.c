/* SPDX-License-Identifier: MIT */
/*
 * plugins/forward/forward.c - a query through the upstreams.
 *
 * A query whose name is under FROM (and not under an except name) is sent
 * to the upstreams in the policy's order (random, round_robin,
 * sequential), skipping those that are down.  Each try waits for its
 * upstream's RTO (RTT-based, 1 s before the first reply, at most
 * read_timeout); past it, the query also goes to the next upstream while
 * the first try stays open until read_timeout, and whichever answers first
 * wins.  An error (refused, unreachable, reset, TLS) moves on at once.  At
 * most max_connect_attempts tries (2 per upstream), within the core's 5 s
 * deadline.
 *
 * The answer is the upstream's, with its flags and rcode; TC over UDP is
 * retried over TCP; an rcode listed in `failover` tries the next upstream,
 * one listed in `next` hands the query to the next plugin.  An
 * upstream's own EDE is passed on with its code, the text attributed
 * "from ADDR: ...".  When nothing answers, one failure record says what
 * happened with each upstream: EDE 22 (No Reachable Authority) when
 * anything timed out, EDE 23 (Network Error) when every try failed on the
 * network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "core/plugin.h"
#include "dns/ede.h"
#include "dns/msg.h"
#include "plugins/forward/forward.h"
#include "util/duration.h"
#include "util/log.h"

/* Metric families: CoreDNS's names (and the pre-1.11 ones, which many
 * dashboards still use), then candor's. */
static const char *const fwd_l_to[] = {"to", NULL};
static const char *const fwd_l_rcode_to[] = {"rcode", "to", NULL};
static const char *const fwd_l_proxy_to_rcode[] = {"proxy_name", "to", "rcode",
                                                   NULL};
static const char *const fwd_l_proxy_to[] = {"proxy_name", "to", NULL};
static const char *const fwd_l_proxy_to_proto[] = {"proxy_name", "to", "proto",
                                                   NULL};
static const char *const fwd_l_to_proto[] = {"to", "proto", NULL};

static const cnd_mfamily_t fwd_m_requests = {
    "coredns_forward_requests_total",
    "Counter of requests made per upstream.",
    CND_METRIC_COUNTER,
    fwd_l_to,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_responses = {
    "coredns_forward_responses_total",
    "Counter of responses received per upstream.",
    CND_METRIC_COUNTER,
    fwd_l_rcode_to,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_duration = {
    "coredns_proxy_request_duration_seconds",
    "Histogram of the time each request took.",
    CND_METRIC_HISTOGRAM,
    fwd_l_proxy_to_rcode,
    cnd_buckets_time,
    16};
const cnd_mfamily_t fwd_m_hc_failures = {
    "coredns_proxy_healthcheck_failures_total",
    "Counter of the number of failed healthchecks.",
    CND_METRIC_COUNTER,
    fwd_l_proxy_to,
    NULL,
    0};
const cnd_mfamily_t fwd_m_hc_failures_legacy = {
    "coredns_forward_healthcheck_failures_total",
    "Counter of the number of failed healthchecks.",
    CND_METRIC_COUNTER,
    fwd_l_to,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_conn_hits = {
    "coredns_proxy_conn_cache_hits_total",
    "Counter of connection cache hits per upstream and protocol.",
    CND_METRIC_COUNTER,
    fwd_l_proxy_to_proto,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_conn_misses = {
    "coredns_proxy_conn_cache_misses_total",
    "Counter of connection cache misses per upstream and protocol.",
    CND_METRIC_COUNTER,
    fwd_l_proxy_to_proto,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_conn_hits_legacy = {
    "coredns_forward_conn_cache_hits_total",
    "Counter of connection cache hits per upstream and protocol.",
    CND_METRIC_COUNTER,
    fwd_l_to_proto,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_conn_misses_legacy = {
    "coredns_forward_conn_cache_misses_total",
    "Counter of connection cache misses per upstream and protocol.",
    CND_METRIC_COUNTER,
    fwd_l_to_proto,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_broken = {
    "coredns_forward_healthcheck_broken_total",
    "Counter of the number of complete failures of the healthchecks.",
    CND_METRIC_COUNTER,
    NULL,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_rejects = {
    "coredns_forward_max_concurrent_rejects_total",
    "Counter of the number of queries rejected because the concurrent "
    "queries were at maximum.",
    CND_METRIC_COUNTER,
    NULL,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_sent = {
    "candor_forward_packets_sent_total",
    "Queries sent to each upstream, by transport.",
    CND_METRIC_COUNTER,
    fwd_l_to_proto,
    NULL,
    0};
static const cnd_mfamily_t fwd_m_received = {
    "candor_forward_packets_received_total",
    "Replies received from each upstream that matched a query, by "
    "transport.",
    CND_METRIC_COUNTER,
    fwd_l_to_proto,
    NULL,
    0};

static const char *const fwd_l_to_reason[] = {"to", "reason", NULL};
static const cnd_mfamily_t fwd_m_rejected = {
    "candor_forward_replies_rejected_total",
    "Replies from each upstream that were read and dropped, by reason: "
    "late (no query waits for it), wrong_id, wrong_question, no_question, "
    "malformed.",
    CND_METRIC_COUNTER,
    fwd_l_to_reason,
    NULL,
    0};
static const char *const fwd_reject_names[FWD_REJ_COUNT] = {
    [FWD_REJ_LATE] = "late",
    [FWD_REJ_WRONG_ID] = "wrong_id",
    [FWD_REJ_WRONG_QUESTION] = "wrong_question",
    [FWD_REJ_NO_QUESTION] = "no_question",
    [FWD_REJ_MALFORMED] = "malformed",
};

static void fwd_send_next(fwd_ctx_t *x);
static void fwd_finish(fwd_ctx_t *x, cnd_rc_t rc);
static void fwd_try_done(fwd_try_t *t, fwd_result_t res, const uint8_t *wire,
                         size_t len);
static const fwd_owner_t fwd_query_owner = {fwd_try_done};


/* ---- loops ------------------------------------------------------------ */

/* Every forwarded query carries, in an EDNS option of the local range
 * (RFC 6891 section 9), this process's nonce and the upstream it went
 * to.  Forwarders that pass queries on as they are (CoreDNS, candor,
 * most stubs) keep it, so a query that comes back carries our mark.  A
 * query marked twice went round twice: that is a loop, answered SERVFAIL
 * with the path instead of going round until the deadline.  Twice, not
 * once, so the loop plugin's start-up probe still sees its third
 * sighting and stops the server as CoreDNS's does.  Written once by the
 * first init (main thread), read-only afterwards. */
#define FWD_LOOP_OPTION 65302
#define FWD_NONCE_LEN   8
static uint8_t fwd_nonce[FWD_NONCE_LEN];

void
fwd_loop_init(void)
{
    static const uint8_t zero[FWD_NONCE_LEN];
    while (memcmp(fwd_nonce, zero, sizeof(zero)) == 0) {
        gnutls_rnd(GNUTLS_RND_NONCE, fwd_nonce, sizeof(fwd_nonce));
    }
}


/* How many of our marks the query carries; @via gets the upstream named
 * in the last one. */
static unsigned
fwd_loop_marks(cnd_req_t *r, char *via, size_t size)
{
    /* A query read light has no options (req.h): nothing to look at. */
    knot_pkt_t *q = r->edns_options ? cnd_req_pkt(r) : NULL;
    if (q == NULL || q->opt_rr == NULL) {
        return 0;
    }
    unsigned n = 0;
    for (uint8_t *o = knot_edns_get_option(q->opt_rr, FWD_LOOP_OPTION, NULL);
         o != NULL; o = knot_edns_get_option(q->opt_rr, FWD_LOOP_OPTION, o)) {
        uint16_t len = knot_edns_opt_get_length(o);
        const uint8_t *data = knot_edns_opt_get_data(o);
        if (len >= FWD_NONCE_LEN &&
            memcmp(data, fwd_nonce, FWD_NONCE_LEN) == 0) {
            n++;
            snprintf(via, size, "%.*s", (int)(len - FWD_NONCE_LEN),
                     (const char *)data + FWD_NONCE_LEN);
        }
    }
    return n;
}


/* A marked query came back: SERVFAIL naming the path, and a log line at
 * most every 10 s per forward line. */
static cnd_rc_t
fwd_loop_detected(fwd_ctx_t *x, const char *via)
{
    const fwd_conf_t *c = x->self->conf;
    cnd_req_t *r = x->r;
    char from[64];
    cnd_addr_str(&r->remote, from, sizeof(from), true);
    cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                 "loop: sent twice by forward %s (%s:%d) to %s, came back "
                 "from %s; forward to a resolver that does not send "
                 "queries here",
                 c->from_text, c->file, c->line, via, from);
    uint64_t now = fwd_now_ns();
    uint64_t last = atomic_load_explicit(&x->fw->conf->loop_logged_ns,
                                         memory_order_relaxed);
    if ((last == 0 || now - last >= 10 * (uint64_t)CND_NS_PER_SEC) &&
        atomic_compare_exchange_strong(&x->fw->conf->loop_logged_ns, &last,
                                       now)) {
        char name[KNOT_DNAME_TXT_MAXLEN + 1], type[16];
        knot_dname_to_str(name, r->qname, sizeof(name));
        cnd_log(CND_LOG_ERROR, "forward",
                "Loop detected (%s -> %s) for \"%s %s\": forward %s at "
                "%s:%d sends queries to %s, which sends them back here",
                from, via, cnd_type_str(r->qtype, type, sizeof(type)), name,
                c->from_text, c->file, c->line, via);
    }
    return CND_FAIL;
}


/* The query for @up: the client's with our mark added, or as it is when
 * it cannot take one (a TSIG after the OPT, 64 KiB). */
static const uint8_t *
fwd_wire_for(fwd_ctx_t *x, const fwd_upstream_t *up, size_t *len)
{
    cnd_req_t *r = x->r;
    uint8_t data[FWD_NONCE_LEN + sizeof(up->name)];
    size_t nl = strlen(up->name);
    memcpy(data, fwd_nonce, FWD_NONCE_LEN);
    memcpy(data + FWD_NONCE_LEN, up->name, nl);
    size_t cap = (size_t)r->qlen + 15 + FWD_NONCE_LEN + nl;
    uint8_t *out = cnd_arena_alloc(&r->arena, cap);
    int n = out == NULL
                ? -ENOMEM
                : cnd_msg_add_option(r->qwire, r->qlen, FWD_LOOP_OPTION, data,
                                     (uint16_t)(FWD_NONCE_LEN + nl),
                                     CND_EDNS_PAYLOAD, out, cap);
    if (n < 0) {
        *len = r->qlen;
        return r->qwire;
    }
    *len = (size_t)n;
    return out;
}


/* ---- worker ----------------------------------------------------------- */

int
fwd_worker_init(cnd_worker_t *w, cnd_inst_t *self, void **wdata)
{
    fwd_conf_t *c = self->conf;
    fwd_worker_t *fw = calloc(1, sizeof(*fw));
    if (fw == NULL) {
        return -1;
    }
    fw->w = w;
    fw->loop = cnd_worker_loop(w);
    fw->conf = c;
    fw->rnd_pos = sizeof(fw->rnd);
    fw->store = cnd_worker_metrics(w);
    fw->wups = calloc(c->nups, sizeof(*fw->wups));
    if (fw->wups == NULL || fwd_net_worker_init(fw) != 0) {
        free(fw->wups);
        free(fw);
        return -1;
    }
    /* Series whose labels are known now; the rcode ones come on first
     * use. */
    static const char *const protos[3] = {"udp", "tcp", "tcp-tls"};
    for (size_t i = 0; i < c->nups; i++) {
        fwd_wup_t *wu = &fw->wups[i];
        const char *to = c->ups[i].name;
        wu->requests = cnd_metric_series(fw->store, &fwd_m_requests, to, NULL);
        wu->hc_fail = cnd_metric_series(fw->store, &fwd_m_hc_failures,
                                        "forward", to, NULL);
        wu->hc_fail_legacy =
            cnd_metric_series(fw->store, &fwd_m_hc_failures_legacy, to, NULL);
        for (int p = 0; p < 3; p++) {
            wu->conn_hit[p] = cnd_metric_series(fw->store, &fwd_m_conn_hits,
                                                "forward", to, protos[p], NULL);
            wu->conn_miss[p] = cnd_metric_series(
                fw->store, &fwd_m_conn_misses, "forward", to, protos[p], NULL);
            wu->conn_hit_legacy[p] = cnd_metric_series(
                fw->store, &fwd_m_conn_hits_legacy, to, protos[p], NULL);
            wu->conn_miss_legacy[p] = cnd_metric_series(
                fw->store, &fwd_m_conn_misses_legacy, to, protos[p], NULL);
        }
    }
    fw->broken = cnd_metric_series(fw->store, &fwd_m_broken, NULL);
    fw->rejects = cnd_metric_series(fw->store, &fwd_m_rejects, NULL);
    *wdata = fw;
    return 0;
}


void
fwd_worker_fini(cnd_worker_t *w, cnd_inst_t *self, void *wdata)
{
    (void)w;
    (void)self;
    fwd_worker_t *fw = wdata;
    fw->closing = true;
    fwd_health_worker_fini(fw);
    fwd_net_worker_fini(fw); /* frees fw once its handles have closed */
}


/* The series of a reply's rcode, made on first use. */
static void
fwd_count_reply(fwd_worker_t *fw, const fwd_try_t *t, unsigned rcode,
                uint64_t rtt_ns)
{
    fwd_wup_t *wu = &fw->wups[t->up->index];
    if (rcode >= 24) {
        rcode = 0; /* cannot happen: the header has 4 bits */
    }
    if (wu->rcode[rcode] == NULL) {
        char buf[8];
        const char *name = cnd_rcode_str((uint16_t)rcode, buf, sizeof(buf));
        wu->rcode[rcode] = cnd_metric_series(fw->store, &fwd_m_responses, name,
                                             t->up->name, NULL);
        wu->duration[rcode] = cnd_metric_series(
            fw->store, &fwd_m_duration, "forward", t->up->name, name, NULL);
    }
    cnd_counter_add(wu->rcode[rcode], 1);
    cnd_histogram_observe(wu->duration[rcode], (double)rtt_ns / 1e9);
}


void
fwd_count_sent(fwd_worker_t *fw, const fwd_try_t *t)
{
    fwd_wup_t *wu = &fw->wups[t->up->index];
    if (wu->sent == NULL) {
        const char *proto = fwd_proto_name(t->proto);
        wu->sent =
            cnd_metric_series(fw->store, &fwd_m_sent, t->up->name, proto, NULL);
        wu->received = cnd_metric_series(fw->store, &fwd_m_received,
                                         t->up->name, proto, NULL);
    }
    /* CoreDNS counts queries, not health checks, as requests; packets
     * are packets. */
    if (t->owner == &fwd_query_owner) {
        cnd_counter_add(wu->requests, 1);
    }
    cnd_counter_add(wu->sent, 1);
}


void
fwd_count_conn(fwd_worker_t *fw, const fwd_upstream_t *up, fwd_proto_t proto,
               bool hit)
{
    fwd_wup_t *wu = &fw->wups[up->index];
    int p = proto == FWD_TLS ? 2 : proto == FWD_TCP ? 1 : 0;
    cnd_counter_add(hit ? wu->conn_hit[p] : wu->conn_miss[p], 1);
    cnd_counter_add(hit ? wu->conn_hit_legacy[p] : wu->conn_miss_legacy[p], 1);
}


void
fwd_count_rejected(fwd_worker_t *fw, const fwd_upstream_t *up, fwd_reject_t why)
{
    fwd_wup_t *wu = &fw->wups[up->index];
    if (wu->rejected[why] == NULL) {
        wu->rejected[why] = cnd_metric_series(
            fw->store, &fwd_m_rejected, up->name, fwd_reject_names[why], NULL);
    }
    cnd_counter_add(wu->rejected[why], 1);
}


/* ---- matching and order ----------------------------------------------- */

/* Is the query name for this forward line? */
static bool
fwd_match(const fwd_conf_t *c, const knot_dname_t *qname)
{
    if (knot_dname_in_bailiwick(qname, c->from) < 0) {
        return false;
    }
    if (knot_dname_is_equal(qname, c->from)) {
        return true;
    }
    for (size_t i = 0; i < c->nexcept; i++) {
        if (knot_dname_in_bailiwick(qname, c->except[i]) >= 0) {
            return false;
        }
    }
    return true;
}


static void
fwd_order(fwd_ctx_t *x, const fwd_conf_t *c)
{
    size_t n = c->nups;
    for (size_t i = 0; i < n; i++) {
        x->order[i] = (uint8_t)i;
    }
    switch (c->policy) {
    case FWD_POLICY_RANDOM:
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = fwd_random16(x->fw) % (i + 1);
            uint8_t tmp = x->order[i];
            x->order[i] = x->order[j];
            x->order[j] = tmp;
        }
        break;
    case FWD_POLICY_ROUND_ROBIN: {
        fwd_conf_t *mc = (fwd_conf_t *)c;
        unsigned start =
            atomic_fetch_add_explicit(&mc->rr, 1, memory_order_relaxed) %
            (unsigned)n;
        for (size_t i = 0; i < n; i++) {
            x->order[i] = (uint8_t)((start + i) % n);
        }
        break;
    }
    case FWD_POLICY_SEQUENTIAL:
        break;
    }
}


/* The next upstream to try, skipping the ones that are down; when all are,
 * any (CoreDNS: "health checking has failed"), or none with failfast. */
static fwd_upstream_t *
fwd_pick(fwd_ctx_t *x)
{
    fwd_conf_t *c = x->self->conf;
    size_t n = c->nups;
    for (size_t k = 0; k < n; k++) {
        fwd_upstream_t *up = &c->ups[x->order[x->cursor % n]];
        x->cursor++;
        if (!fwd_upstream_down(c, up)) {
            return up;
        }
    }
    if (!x->broken) {
        x->broken = true;
        cnd_counter_add(x->fw->broken, 1);
    }
    if (c->failfast) {
        return NULL;
    }
    return &c->ups[x->order[fwd_random16(x->fw) % n]];
}


static fwd_proto_t
fwd_proto_for(const fwd_ctx_t *x, const fwd_upstream_t *up)
{
    const fwd_conf_t *c = x->self->conf;
    if (up->tls) {
        return FWD_TLS;
    }
    if (c->force_tcp) {
        return FWD_TCP;
    }
    if (c->prefer_udp) {
        return FWD_UDP;
    }
    return x->r->proto == CND_PROTO_TCP ? FWD_TCP : FWD_UDP;
}


/* ---- the end of a query ----------------------------------------------- */

static void
fwd_release(fwd_ctx_t *x)
{
    while (x->tries != NULL) {
        fwd_try_t *t = x->tries;
        x->tries = t->next;
        fwd_try_close(t);
    }
    x->pending = 0;
    if (x->counted) {
        fwd_conf_t *c = x->self->conf;
        atomic_fetch_sub_explicit(&c->concurrent, 1, memory_order_relaxed);
        x->counted = false;
    }
}


const char *
fwd_strerror(int err)
{
    /* errno values are positive, GnuTLS's negative */
    return err < 0 ? gnutls_strerror(err) : strerror(err);
}


size_t
fwd_outcome_text(const fwd_ctx_t *x, size_t i, char *buf, size_t size)
{
    const fwd_conf_t *c = x->self->conf;
    const fwd_outcome_t *o = &x->out[i];
    char err[128] = "";
    size_t n;
    if (o->errors > 0 && o->what != NULL) {
        snprintf(err, sizeof(err), "%s", o->what);
        if (o->err != 0) {
            size_t l = strlen(err);
            snprintf(err + l, sizeof(err) - l, ": %s", fwd_strerror(o->err));
        }
    }
    if (o->timeouts > 0 && o->errors == 0) {
        char dur[32];
        n = (size_t)snprintf(
            buf, size, "%s %s timed out after %s", c->ups[i].name,
            fwd_proto_name(o->proto),
            cnd_duration_format(c->read_timeout_ns, dur, sizeof(dur)));
    } else if (o->errors > 0) {
        n = (size_t)snprintf(buf, size, "%s %s %s", c->ups[i].name,
                             fwd_proto_name(o->proto), err);
    } else {
        n = (size_t)snprintf(buf, size, "%s %s no reply yet", c->ups[i].name,
                             fwd_proto_name(o->proto));
    }
    if (n < size && o->tries > 1) {
        n += (size_t)snprintf(buf + n, size - n, ", %u tries", o->tries);
    }
    if (n < size && o->bad_id + o->bad_question + o->garbage > 0) {
        n += (size_t)snprintf(buf + n, size - n,
                              " (dropped %u bad replies: %u wrong ID, %u "
                              "wrong question, %u malformed)",
                              o->bad_id + o->bad_question + o->garbage,
                              o->bad_id, o->bad_question, o->garbage);
    }
    return n < size ? n : size - 1;
}


/* Record why no upstream answered: one record, every upstream tried. */
static void
fwd_record_failure(fwd_ctx_t *x, const char *prefix)
{
    const fwd_conf_t *c = x->self->conf;
    char text[512];
    size_t o = (size_t)snprintf(text, sizeof(text), "%s", prefix);
    bool timeouts = false, any = false;
    const char *last = NULL;
    for (size_t k = 0; k < c->nups; k++) {
        size_t i = x->order[k];
        const fwd_outcome_t *oc = &x->out[i];
        if (oc->tries == 0) {
            continue;
        }
        timeouts |= oc->errors == 0;
        last = c->ups[i].name;
        if (o + 4 < sizeof(text)) {
            o += (size_t)snprintf(text + o, sizeof(text) - o, "%s",
                                  any ? "; " : "");
            o += fwd_outcome_text(x, i, text + o, sizeof(text) - o);
        }
        any = true;
    }
    if (!any) {
        snprintf(text + o, sizeof(text) - o, "no upstream was tried");
        timeouts = true;
    }
    /* The metric's upstream: the last one tried. */
    cnd_req_fail_by(x->r, NULL, last, KNOT_RCODE_SERVFAIL,
                    timeouts ? CND_EDE_NO_REACHABLE_AUTHORITY
                             : CND_EDE_NETWORK_ERROR,
                    "%s", text);
}


/* End the query: close what is open, then resume the request (or, when
 * still inside query(), leave the result for it to return). */
static void
fwd_finish(fwd_ctx_t *x, cnd_rc_t rc)
{
    fwd_release(x);
    if (x->in_query) {
        x->sync_rc = rc;
        return;
    }
    cnd_req_resume(x->r, rc);
}


static void
fwd_fail(fwd_ctx_t *x)
{
    fwd_conf_t *c = x->self->conf;
    if (x->broken && c->failfast && x->attempts == 0) {
        char list[256];
        size_t o = 0;
        for (size_t i = 0; i < c->nups && o < sizeof(list); i++) {
            o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
                                  i ? ", " : "", c->ups[i].name);
        }
        cnd_req_fail(x->r, KNOT_RCODE_SERVFAIL, CND_EDE_NO_REACHABLE_AUTHORITY,
                     "all %zu upstreams are down (%s) and "
                     "failfast_all_unhealthy_upstreams is set",
                     c->nups, list);
    } else {
        fwd_record_failure(x, "");
    }
    fwd_finish(x, CND_FAIL);
}


/* Pass the upstream's EDE options on, attributed; a SERVFAIL without one
 * says so. */
static void
fwd_pass_ede(fwd_ctx_t *x, const fwd_try_t *t, knot_pkt_t *pkt)
{
    uint16_t rcode = knot_wire_get_rcode(pkt->wire);
    bool error = rcode != KNOT_RCODE_NOERROR && rcode != KNOT_RCODE_NXDOMAIN;
    bool any = false;
    char rbuf[16];
    const char *rname = cnd_rcode_str(rcode, rbuf, sizeof(rbuf));
    const uint8_t *o = NULL;
    while (pkt->opt_rr != NULL &&
           (o = knot_edns_get_option(pkt->opt_rr, CND_EDNS_EDE, o)) != NULL) {
        uint16_t len = knot_edns_opt_get_length(o);
        if (len < 2) {
            continue;
        }
        const uint8_t *data = knot_edns_opt_get_data((uint8_t *)o);
        uint16_t info = knot_wire_read_u16(data);
        int tl = len - 2;
        const char *txt = (const char *)data + 2;
        if (error) {
            cnd_req_fail_by(x->r, NULL, t->up->name, rcode, info,
                            "from %s: %s%s%.*s", t->up->name, rname,
                            tl > 0 ? ": " : "", tl, txt);
        } else {
            cnd_req_note(x->r, info, "from %s: %.*s", t->up->name, tl, txt);
        }
        any = true;
    }
    if (error && !any) {
        cnd_req_fail_by(x->r, NULL, t->up->name, rcode, CND_EDE_OTHER,
                        "from %s: %s without an extended error", t->up->name,
                        rname);
    }
}


static void
fwd_unlink(fwd_ctx_t *x, fwd_try_t *t)
{
    for (fwd_try_t **p = &x->tries; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
}


/* A reply that matched: take it, or move on (failover, TC, next). */
static void
fwd_reply(fwd_ctx_t *x, fwd_try_t *t, const uint8_t *wire, size_t len)
{
    fwd_conf_t *c = x->self->conf;
    cnd_req_t *r = x->r;
    knot_mm_t mm;
    cnd_knot_mm(&mm, &r->arena);
    uint8_t *copy = cnd_arena_memdup(&r->arena, wire, len);
    knot_pkt_t *pkt = copy ? knot_pkt_new(copy, (uint16_t)len, &mm) : NULL;
    fwd_outcome_t *o = &x->out[t->up->index];
    if (pkt == NULL) {
        cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER, "out of memory");
        fwd_finish(x, CND_FAIL);
        return;
    }
    int prc = knot_pkt_parse(pkt, 0);
    if (prc != KNOT_EOK && prc != KNOT_ETRAIL) {
        /* net.c checked the ID and the question; a reply whose records
         * do not parse is no answer either: count it, keep waiting. */
        o->garbage++;
        fwd_count_rejected(x->fw, t->up, FWD_REJ_MALFORMED);
        return;
    }
    uint16_t rcode = knot_wire_get_rcode(wire);
    fwd_count_reply(x->fw, t, rcode, fwd_now_ns() - t->sent_ns);
    cnd_counter_add(x->fw->wups[t->up->index].received, 1);
    fwd_upstream_replied(t->up, fwd_now_ns() - t->sent_ns);

    /* From here the try is done. */
    fwd_unlink(x, t);
    fwd_try_close(t);
    x->pending--;
    if (t->proto == FWD_UDP && knot_wire_get_tc(wire) && !c->prefer_udp &&
        x->attempts < c->max_attempts + 1) {
        /* Truncated over UDP: the same upstream over TCP. */
        int err = 0;
        x->attempts++;
        o->tries++;
        o->proto = FWD_TCP;
        size_t qlen;
        const uint8_t *q = fwd_wire_for(x, t->up, &qlen);
        fwd_try_t *tt = fwd_try_start(x->fw, t->up, FWD_TCP, q, qlen, 0, 0,
                                      &fwd_query_owner, x, &err);
        if (tt != NULL) {
            tt->next = x->tries;
            x->tries = tt;
            x->latest = tt;
            x->pending++;
            return;
        }
        /* No TCP: the truncated answer is better than none. */
    }
    if (rcode < 32 && (c->failover_rcodes & (1u << rcode)) &&
        x->attempts < c->max_attempts) {
        /* Keep what it said: if nobody does better, the most diagnostic
         * cause is reported (an EDE 6 beats a later timeout). */
        fwd_pass_ede(x, t, pkt);
        o->errors++;
        o->what = "answered with a failover rcode";
        o->err = 0;
        fwd_send_next(x);
        return;
    }
    if (rcode < 32 && (c->next_rcodes & (1u << rcode))) {
        fwd_finish(x, CND_NEXT);
        return;
    }
    fwd_pass_ede(x, t, pkt);
    if (cnd_req_answer(r, wire, len) != 0) {
        cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER, "out of memory");
        fwd_finish(x, CND_FAIL);
        return;
    }
    fwd_finish(x, CND_DONE);
}


/* ---- tries ------------------------------------------------------------ */

static void
fwd_try_done(fwd_try_t *t, fwd_result_t res, const uint8_t *wire, size_t len)
{
    fwd_ctx_t *x = t->arg;
    fwd_outcome_t *o = &x->out[t->up->index];
    o->bad_id += (uint16_t)t->bad_id;
    o->bad_question += (uint16_t)t->bad_question;
    o->garbage += (uint16_t)t->garbage;
    t->bad_id = t->bad_question = t->garbage = 0;
    switch (res) {
    case FWD_OK:
        fwd_reply(x, t, wire, len);
        return;
    case FWD_SOFT:
        /* Past the RTO: a failure for the upstream only if it has been
         * silent since (a slow name is not a dead server); either way the
         * query also goes to the next one. */
        if (atomic_load_explicit(&t->up->last_reply_ns, memory_order_relaxed) <
            t->sent_ns) {
            fwd_upstream_failed(x->fw, t->up, t->proto,
                                "no reply within its RTO", 0);
        }
        if (t == x->latest) {
            fwd_send_next(x);
        }
        return;
    case FWD_TIMEOUT:
        o->timeouts++;
        if (!t->soft_done) {
            fwd_upstream_failed(x->fw, t->up, t->proto, "timed out", 0);
        } else {
            fwd_upstream_note(t->up, t->proto, "timed out", 0);
        }
        break;
    case FWD_ERROR:
        o->errors++;
        o->err = t->err;
        o->what = t->errwhat;
        fwd_upstream_failed(x->fw, t->up, t->proto, t->errwhat, t->err);
        break;
    }
    bool latest = t == x->latest;
    fwd_unlink(x, t);
    x->pending--;
    fwd_try_close(t);
    if (latest || x->pending == 0) {
        fwd_send_next(x);
    }
}


/* Start the next try, or end the query when there is nothing left. */
static void
fwd_send_next(fwd_ctx_t *x)
{
    fwd_conf_t *c = x->self->conf;
    while (x->attempts < c->max_attempts) {
        fwd_upstream_t *up = fwd_pick(x);
        if (up == NULL) {
            break; /* failfast */
        }
        fwd_proto_t proto = fwd_proto_for(x, up);
        fwd_outcome_t *o = &x->out[up->index];
        x->attempts++;
        o->tries++;
        o->proto = proto;
        int err = 0;
        int64_t rto = proto == FWD_UDP ? fwd_upstream_rto(c, up) : 0;
        size_t qlen;
        const uint8_t *q = fwd_wire_for(x, up, &qlen);
        fwd_try_t *t = fwd_try_start(x->fw, up, proto, q, qlen, rto, 0,
                                     &fwd_query_owner, x, &err);
        if (t == NULL) {
            o->errors++;
            o->err = err;
            o->what = "cannot send";
            fwd_upstream_failed(x->fw, up, proto, o->what, err);
            continue;
        }
        t->next = x->tries;
        x->tries = t;
        x->latest = t;
        x->pending++;
        return;
    }
    if (x->pending == 0) {
        fwd_fail(x);
    }
}


/* ---- hooks ------------------------------------------------------------ */

cnd_rc_t
fwd_query(cnd_req_t *r, cnd_inst_t *self)
{
    fwd_conf_t *c = self->conf;
    if (!fwd_match(c, r->qname)) {
        return CND_NEXT;
    }
    fwd_ctx_t *x = cnd_req_ctx(r, self);
    x->r = r;
    x->self = self;
    x->fw = cnd_req_wdata(r, self);
    x->start_ns = fwd_now_ns();
    char via[sizeof(c->ups[0].name)] = "";
    if (fwd_loop_marks(r, via, sizeof(via)) >= 2) {
        return fwd_loop_detected(x, via);
    }
    if (c->max_concurrent > 0) {
        unsigned n =
            atomic_fetch_add_explicit(&c->concurrent, 1, memory_order_relaxed);
        if (n >= c->max_concurrent) {
            atomic_fetch_sub_explicit(&c->concurrent, 1, memory_order_relaxed);
            cnd_counter_add(x->fw->rejects, 1);
            return cnd_req_fail(r, KNOT_RCODE_REFUSED, CND_EDE_OTHER,
                                "%u queries in flight, the max_concurrent "
                                "limit: refused, not sent upstream",
                                c->max_concurrent);
        }
        x->counted = true;
    }
    fwd_order(x, c);
    x->in_query = true;
    x->sync_rc = CND_ASYNC;
    fwd_send_next(x); /* nothing sent at all: fails at once */
    x->in_query = false;
    return x->sync_rc;
}


void
fwd_cancel(cnd_req_t *r, cnd_inst_t *self)
{
    fwd_ctx_t *x = cnd_req_ctx(r, self);
    fwd_record_failure(x, "no answer within the request deadline: ");
    fwd_release(x);
}
