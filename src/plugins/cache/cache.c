/* SPDX-License-Identifier: MIT */
/*
 * plugins/cache/cache.c - answer from the cache, store what comes back.
 *
 * The way down (cache_query): a fresh entry answers at once (a copy, the
 * TTLs counted down, AA set as CoreDNS does); a remembered failure answers
 * SERVFAIL with its original cause and EDE 13 (Cached Error); an expired
 * entry within the serve_stale window answers stale (TTL 30, EDE 3, or
 * 19 for NXDOMAIN, whose text says why it is stale) while a refresh runs
 * in the background, or in verify mode after the refresh failed or took
 * longer than the client response timer; anything else goes on (a miss).
 *
 * The way back (cache_response): the answer to a miss is stored when
 * CoreDNS would store it (not truncated, not REFUSED/NOTIMP/FORMERR, not
 * an NXDOMAIN without SOA, not a CNAME chain that ends nowhere), with all
 * its TTLs set to one, the smallest clamped to the configured bounds, on
 * the client's answer too.  A SERVFAIL is remembered for `servfail`
 * seconds with its cause (RFC 9520).
 *
 * Refreshes (serve-stale and prefetch) are internal requests started with
 * cnd_req_spawn() at the plugin after the cache; a worker runs at most one
 * per entry, and an entry at most one across workers (its refreshing
 * flag).  A failed refresh is not retried for 30 s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/ede.h"
#include "dns/msg.h"
#include "plugins/cache/cache.h"
#include "util/log.h"

static const char *const cache_l_type[] = {"server", "type", "zones", "view",
                                           NULL};
static const char *const cache_l_plain[] = {"server", "zones", "view", NULL};

static const cnd_mfamily_t cache_m_entries = {
    "coredns_cache_entries",
    "The number of elements in the cache.",
    CND_METRIC_GAUGE,
    cache_l_type,
    NULL,
    0};
static const cnd_mfamily_t cache_m_hits = {"coredns_cache_hits_total",
                                           "The count of cache hits.",
                                           CND_METRIC_COUNTER,
                                           cache_l_type,
                                           NULL,
                                           0};
static const cnd_mfamily_t cache_m_misses = {"coredns_cache_misses_total",
                                             "The count of cache misses.",
                                             CND_METRIC_COUNTER,
                                             cache_l_plain,
                                             NULL,
                                             0};
static const cnd_mfamily_t cache_m_requests = {"coredns_cache_requests_total",
                                               "The count of cache requests.",
                                               CND_METRIC_COUNTER,
                                               cache_l_plain,
                                               NULL,
                                               0};
static const cnd_mfamily_t cache_m_prefetch = {
    "coredns_cache_prefetch_total",
    "The number of times the cache has "
    "prefetched a cached item.",
    CND_METRIC_COUNTER,
    cache_l_plain,
    NULL,
    0};
static const cnd_mfamily_t cache_m_drops = {
    "coredns_cache_drops_total",
    "The number responses that are not cached, because the reply is "
    "malformed.",
    CND_METRIC_COUNTER,
    cache_l_plain,
    NULL,
    0};
static const cnd_mfamily_t cache_m_stale = {
    "coredns_cache_served_stale_total",
    "The number of requests served from stale cache entries.",
    CND_METRIC_COUNTER,
    cache_l_plain,
    NULL,
    0};
static const cnd_mfamily_t cache_m_evictions = {"coredns_cache_evictions_total",
                                                "The count of cache evictions.",
                                                CND_METRIC_COUNTER,
                                                cache_l_type,
                                                NULL,
                                                0};

/* A refresh running on this worker: an internal request, and the client
 * requests (verify mode) that wait for it.  Worker lifetime (malloc). */
struct cache_refresh_s {
    cache_refresh_t *next; /* the worker's list                 */
    cache_conf_t *conf;
    cnd_inst_t *self;
    cache_worker_t *cw;
    uint8_t key[CACHE_KEY_MAX];
    size_t keylen;
    uint64_t hash;
    cache_store_t *store; /* where the stale entry is          */
    cache_ctx_t *waiters;
    bool spawning;       /* inside cnd_req_spawn()            */
    bool finished, good; /* it ended inside cnd_req_spawn()   */
    char cause[256];     /* why it failed                     */
    uint16_t cause_code;
};

/* What a lookup found (request lifetime: wire is in the request arena). */
enum { CACHE_NONE = 0, CACHE_FRESH, CACHE_STALE };

typedef struct {
    int found;
    uint8_t kind;
    uint8_t *wire; /* a copy, TTLs set, in the arena    */
    uint16_t len;
    uint32_t remaining; /* fresh: seconds left               */
    uint32_t past;      /* stale: seconds past expiry        */
    bool refresh;       /* the caller starts the refresh     */
    bool refreshing;    /* one runs already                  */
    bool failed;        /* the last refresh failed: cause    */
    uint16_t cause_code;
    const char *cause_plugin;
    const char *cause_upstream;
    char *cause; /* in the arena                      */
} cache_hit_t;


void
cache_entries_forget(const cache_conf_t *c, const cache_store_t *st, size_t n)
{
    cnd_mstore_t *ms = cnd_main_metrics();
    if (ms == NULL || n == 0) {
        return;
    }
    cnd_series_t *s = cnd_metric_series(ms, &cache_m_entries, c->server,
                                        st == c->success ? "success" : "denial",
                                        c->zones_label, "", NULL);
    if (s != NULL) {
        cnd_gauge_add(s, -(int64_t)n);
    }
}


int
cache_worker_init(cnd_worker_t *w, cnd_inst_t *self, void **wdata)
{
    cache_conf_t *c = self->conf;
    cache_worker_t *cw = calloc(1, sizeof(*cw));
    if (cw == NULL) {
        return -1;
    }
    cnd_mstore_t *st = cnd_worker_metrics(w);
    static const char *const types[2] = {"success", "denial"};
    for (int t = 0; t < 2; t++) {
        cw->hits[t] = cnd_metric_series(st, &cache_m_hits, c->server, types[t],
                                        c->zones_label, "", NULL);
        cw->entries[t] = cnd_metric_series(st, &cache_m_entries, c->server,
                                           types[t], c->zones_label, "", NULL);
        cw->evictions[t] =
            cnd_metric_series(st, &cache_m_evictions, c->server, types[t],
                              c->zones_label, "", NULL);
    }
    cw->misses = cnd_metric_series(st, &cache_m_misses, c->server,
                                   c->zones_label, "", NULL);
    cw->requests = cnd_metric_series(st, &cache_m_requests, c->server,
                                     c->zones_label, "", NULL);
    cw->prefetch = cnd_metric_series(st, &cache_m_prefetch, c->server,
                                     c->zones_label, "", NULL);
    cw->drops = cnd_metric_series(st, &cache_m_drops, c->server, c->zones_label,
                                  "", NULL);
    cw->stale = cnd_metric_series(st, &cache_m_stale, c->server, c->zones_label,
                                  "", NULL);
    *wdata = cw;
    return 0;
}


void
cache_worker_fini(cnd_worker_t *w, cnd_inst_t *self, void *wdata)
{
    (void)w;
    (void)self;
    cache_worker_t *cw = wdata;
    /* Refreshes are requests: none is left when a worker stops. */
    free(cw);
}


/* The cache's clock, in ms: the loop's cached monotonic time, the same
 * clock for every worker.  Ages are whole seconds of it, as CoreDNS's. */
static uint64_t
cache_now(const cnd_req_t *r)
{
    return cnd_worker_now(r->worker);
}


static bool
cache_in(const cache_zones_t *z, const knot_dname_t *name)
{
    for (size_t i = 0; i < z->n; i++) {
        if (knot_dname_in_bailiwick(name, z->v[i]) >= 0) {
            return true;
        }
    }
    return false;
}


/* Set every TTL of a copy of @e's wire. */
static void
cache_set_ttls(uint8_t *wire, const cache_entry_t *e, uint32_t ttl)
{
    const uint16_t *off = cache_entry_ttls(e);
    for (unsigned i = 0; i < e->nttl; i++) {
        knot_wire_write_u32(wire + off[i], ttl);
    }
}


/* Count a fresh hit on @e (locked) for prefetch: AMOUNT hits without a
 * gap of DURATION, and little TTL left, start a refresh; returns whether
 * this hit does. */
static bool
cache_prefetch_hit(const cache_conf_t *c, cache_entry_t *e, uint32_t now_s,
                   uint32_t remaining)
{
    bool gap = now_s - e->touched >= c->prefetch_gap;
    uint8_t hits = gap ? 1 : e->hits < 255 ? e->hits + 1 : 255;
    uint32_t left = (e->ttl * c->prefetch_pct + 99) / 100;
    bool refresh = hits >= (c->prefetch < 255 ? c->prefetch : 255) &&
                   remaining <= left && !e->refreshing;
    e->hits = hits;
    e->touched = now_s;
    e->refreshing = e->refreshing || refresh;
    return refresh;
}


/* Look @x's key up in @st.  A fresh or stale entry is copied out, TTLs
 * set, while the shard is locked; refresh and prefetch are decided on the
 * entry under the same lock, so one worker starts them. */
static void
cache_lookup(cnd_req_t *r, const cache_conf_t *c, cache_store_t *st,
             const cache_ctx_t *x, uint64_t now, cache_hit_t *h)
{
    memset(h, 0, sizeof(*h));
    cache_shard_t *sh = cache_shard(st, x->hash);
    cache_entry_t *e = cache_find(sh, x->hash, x->key, x->keylen);
    if (e == NULL) {
        uv_mutex_unlock(&sh->lock);
        return;
    }
    /* Whole seconds of the cache clock, as CoreDNS counts ages. */
    uint32_t now_s = (uint32_t)(now / 1000);
    uint32_t age = now_s > e->stored ? now_s - e->stored : 0;
    uint32_t ttl;
    if (age < e->ttl) {
        h->found = CACHE_FRESH;
        h->remaining = e->ttl - age;
        ttl = c->keepttl ? e->ttl : h->remaining;
        if (c->prefetch > 0 && e->kind != CACHE_SERVFAIL) {
            h->refresh = cache_prefetch_hit(c, e, now_s, h->remaining);
        }
    } else if (c->stale != CACHE_STALE_OFF && e->kind != CACHE_SERVFAIL &&
               age - e->ttl < c->stale_max) {
        h->found = CACHE_STALE;
        h->past = age - e->ttl;
        ttl = c->stale_ttl;
        h->refreshing = e->refreshing;
        /* Stale, "touched" is when the last refresh started. */
        if (!e->refreshing &&
            (!e->refresh_failed || now_s - e->touched >= c->stale_recheck)) {
            e->refreshing = true;
            e->touched = now_s;
            h->refresh = true;
        }
    } else {
        uv_mutex_unlock(&sh->lock);
        return; /* expired: as good as absent */
    }
    h->kind = e->kind;
    h->len = e->wirelen;
    /* Room after it for the server's OPT: the core finishes the answer
     * in place (cnd_req_answer_own). */
    h->wire = cnd_arena_alloc(&r->arena, e->wirelen + CND_REQ_ANSWER_ROOM);
    if (h->wire != NULL) {
        memcpy(h->wire, cache_entry_wire(e), e->wirelen);
        cache_set_ttls(h->wire, e, ttl);
    }
    h->failed = e->refresh_failed;
    h->cause_code = CND_EDE_NONE;
    if (e->cause != NULL) {
        h->cause_code = e->cause->code;
        h->cause_plugin = e->cause->plugin;
        h->cause_upstream = e->cause->upstream;
        h->cause = cnd_arena_strdup(&r->arena, e->cause->text);
    }
    uv_mutex_unlock(&sh->lock);
    if (h->wire == NULL) {
        h->found = CACHE_NONE;
    }
}


/* Make cached @wire the answer to query @q (@qend bytes of header and
 * question): the question in the client's case, AA as CoreDNS sets it on
 * hits, RD/CD/opcode from the query, AD only for clients that asked for
 * it (DO or AD set).  The ID and OPT are the core's. */
static void
cache_patch(uint8_t *wire, size_t len, const uint8_t *q, size_t qend,
            bool do_bit)
{
    if (qend <= len) {
        memcpy(wire + KNOT_WIRE_HEADER_SIZE, q + KNOT_WIRE_HEADER_SIZE,
               qend - KNOT_WIRE_HEADER_SIZE);
    }
    uint8_t rcode = knot_wire_get_rcode(wire);
    bool ra = knot_wire_get_ra(wire), ad = knot_wire_get_ad(wire);
    wire[2] = (uint8_t)(0x80 | (q[2] & 0x79) | 0x04); /* QR op AA RD */
    wire[3] = (uint8_t)((q[3] & 0x10) | rcode);       /* CD rcode */
    if (ra) {
        knot_wire_set_ra(wire);
    }
    if (ad && (do_bit || knot_wire_get_ad(q))) {
        knot_wire_set_ad(wire);
    }
}


/* @wire is a copy cache_lookup() made in @r's arena, with room after it;
 * its records were checked when it was stored (cache_store). */
static void
cache_answer(cnd_req_t *r, uint8_t *wire, uint16_t len)
{
    cache_patch(wire, len, r->qwire, r->question_end, r->do_bit);
    cnd_req_answer_own(r, wire, len, (size_t)len + CND_REQ_ANSWER_ROOM);
}


/* A stale answer: EDE 3 (19 for NXDOMAIN) says how stale and why. */
static void
cache_answer_stale(cnd_req_t *r, cache_worker_t *cw, uint8_t *wire,
                   uint16_t len, uint32_t past, const char *why)
{
    cache_answer(r, wire, len);
    uint16_t code = knot_wire_get_rcode(wire) == KNOT_RCODE_NXDOMAIN
                        ? CND_EDE_STALE_NXDOMAIN
                        : CND_EDE_STALE;
    cnd_req_note(r, code, "stale answer, expired %us ago; %s", past, why);
    cnd_counter_add(cw->stale, 1);
}


static const char *
cache_stale_why(const cache_hit_t *h, char *buf, size_t size)
{
    if (h->failed && h->cause != NULL) {
        snprintf(buf, size, "refresh failed: %s", h->cause);
    } else if (h->refreshing) {
        snprintf(buf, size, "a refresh is running");
    } else {
        snprintf(buf, size, "refreshing in the background");
    }
    return buf;
}


/* ---- storing ---------------------------------------------------------- */

/* Does a NOERROR answer's CNAME chain end somewhere (a record of the
 * asked type, or an SOA for NODATA)?  CoreDNS does not cache one that
 * does not. */
static bool
cache_chain_ok(const uint8_t *wire, size_t len, uint16_t qtype)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    bool cname = false, target = false, soa = false;
    if (cnd_rr_iter_init(&it, wire, len) != 0) {
        return false;
    }
    while (cnd_rr_next(&it, &rr) == 1) {
        if (rr.section == KNOT_ANSWER) {
            cname |= rr.type == KNOT_RRTYPE_CNAME;
            target |= rr.type == qtype || qtype == KNOT_RRTYPE_ANY;
        } else if (rr.section == KNOT_AUTHORITY) {
            soa |= rr.type == KNOT_RRTYPE_SOA;
        }
    }
    return !cname || target || soa || qtype == KNOT_RRTYPE_CNAME;
}


/* The one TTL of an answer: its smallest, clamped; SOA-less and empty
 * answers get CoreDNS's fail-safe 5 s. */
static uint32_t
cache_ttl(const uint8_t *wire, size_t len, uint32_t min, uint32_t max,
          bool *has_soa)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    uint32_t ttl = UINT32_MAX;
    *has_soa = false;
    cnd_rr_iter_init(&it, wire, len);
    while (cnd_rr_next(&it, &rr) == 1) {
        if (rr.type == KNOT_RRTYPE_OPT || rr.type == KNOT_RRTYPE_TSIG) {
            continue;
        }
        *has_soa |= rr.section == KNOT_AUTHORITY && rr.type == KNOT_RRTYPE_SOA;
        if (rr.ttl < ttl) {
            ttl = rr.ttl;
        }
    }
    if (ttl == UINT32_MAX) {
        ttl = 5;
    }
    if (ttl < min) {
        ttl = min;
    }
    if (ttl > max) {
        ttl = max;
    }
    return ttl;
}


/* Set every TTL of @wire (not the OPT's) to @ttl: the client's answer on
 * a miss carries the TTL it is cached with, as in CoreDNS. */
static void
cache_flatten(uint8_t *wire, size_t len, uint32_t ttl)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    cnd_rr_iter_init(&it, wire, len);
    while (cnd_rr_next(&it, &rr) == 1) {
        if (rr.type != KNOT_RRTYPE_OPT && rr.type != KNOT_RRTYPE_TSIG) {
            knot_wire_write_u32(wire + rr.ttl_off, ttl);
        }
    }
}


/* Store an answer under @key if CoreDNS would.  @r is the request that
 * got it (for its failure record).  Returns true when it is cached as a
 * good answer (not a failure). */
static bool
cache_store(cache_conf_t *c, cache_worker_t *cw, cnd_req_t *r,
            const uint8_t *key, size_t keylen, uint64_t hash, uint8_t *wire,
            size_t len, bool client_ad, uint64_t now)
{
    if (len < KNOT_WIRE_HEADER_SIZE || knot_wire_get_tc(wire)) {
        return false;
    }
    uint8_t rcode = knot_wire_get_rcode(wire);
    uint8_t kind;
    uint32_t ttl;
    bool soa;
    if (rcode == KNOT_RCODE_SERVFAIL) {
        if (c->servfail_ttl == 0 || cache_in(&c->no_denial, r->qname)) {
            return false;
        }
        kind = CACHE_SERVFAIL;
        ttl = c->servfail_ttl;
    } else {
        switch (cnd_msg_typify(wire, len)) {
        case CND_RESP_NOERROR:
        case CND_RESP_DELEGATION:
            if (cache_in(&c->no_success, r->qname) ||
                !cache_chain_ok(wire, len, r->qtype)) {
                return false;
            }
            kind = CACHE_SUCCESS;
            ttl = cache_ttl(wire, len, c->minpttl, c->pttl, &soa);
            break;
        case CND_RESP_NXDOMAIN:
        case CND_RESP_NODATA:
            ttl = cache_ttl(wire, len, c->minnttl, c->nttl, &soa);
            if (!soa || cache_in(&c->no_denial, r->qname)) {
                return false; /* no SOA: nothing says how long */
            }
            kind = CACHE_DENIAL;
            break;
        default:
            return false; /* REFUSED, NOTIMP, FORMERR, meta, update */
        }
        if (!(r->do_bit || client_ad)) {
            knot_wire_clear_ad(wire);
        }
        cache_flatten(wire, len, ttl);
    }
    cache_entry_t *e =
        cache_entry_new(key, keylen, hash, wire, len, ttl, now, kind);
    if (e == NULL) {
        cnd_counter_add(cw->drops, 1); /* malformed (or no memory) */
        return false;
    }
    if (kind == CACHE_SERVFAIL) {
        const cnd_fail_t *f = cnd_req_failure(r);
        int rc =
            f != NULL
                ? cache_entry_cause(e, f->ede, f->plugin, f->upstream, f->text)
                : cache_entry_cause(e, CND_EDE_NONE,
                                    r->answered_by != NULL ? r->answered_by
                                                           : "cache",
                                    NULL, "answered SERVFAIL without a cause");
        if (rc != 0) {
            cache_entry_free(e);
            cnd_counter_add(cw->drops, 1);
            return false;
        }
    }
    cache_store_t *st = kind == CACHE_SUCCESS ? c->success : c->denial;
    int t = kind == CACHE_SUCCESS ? 0 : 1;
    bool replaced;
    int evicted = cache_insert(st, e, &replaced);
    if (!replaced) {
        cnd_gauge_add(cw->entries[t], 1 - evicted);
    }
    if (evicted > 0) {
        cnd_counter_add(cw->evictions[t], (uint64_t)evicted);
    }
    return kind != CACHE_SERVFAIL;
}


/* ---- refreshes -------------------------------------------------------- */

static void cache_refresh_done(cnd_req_t *sr, void *arg);


static cache_refresh_t *
cache_refresh_find(cache_worker_t *cw, const cache_ctx_t *x)
{
    for (cache_refresh_t *f = cw->refreshes; f != NULL; f = f->next) {
        if (f->hash == x->hash && f->keylen == x->keylen &&
            memcmp(f->key, x->key, x->keylen) == 0) {
            return f;
        }
    }
    return NULL;
}


static void
cache_refresh_unlink(cache_worker_t *cw, cache_refresh_t *f)
{
    for (cache_refresh_t **p = &cw->refreshes; *p != NULL; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            return;
        }
    }
}


/* The entry's refresh is over (failed): let it be retried later, and keep
 * why for the stale answers until then. */
static void
cache_refresh_failed(cache_refresh_t *f, uint64_t now)
{
    cache_shard_t *sh = cache_shard(f->store, f->hash);
    cache_entry_t *e = cache_find(sh, f->hash, f->key, f->keylen);
    if (e != NULL) {
        e->refreshing = false;
        e->refresh_failed = true;
        e->touched = (uint32_t)(now / 1000);
        cache_entry_cause(e, f->cause_code, NULL, NULL, f->cause);
    }
    uv_mutex_unlock(&sh->lock);
}


/* Start refreshing @x's entry (of @st) from request @r's question.
 * Returns the refresh, or NULL when it could not start (the entry's flag
 * is then cleared) or when it ended at once (then *@done says how). */
static cache_refresh_t *
cache_refresh_start(cnd_req_t *r, cnd_inst_t *self, const cache_ctx_t *x,
                    cache_store_t *st, int *done)
{
    cache_conf_t *c = self->conf;
    cache_worker_t *cw = cnd_req_wdata(r, self);
    *done = 0;
    cache_refresh_t *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->conf = c;
    f->self = self;
    f->cw = cw;
    memcpy(f->key, x->key, x->keylen);
    f->keylen = x->keylen;
    f->hash = x->hash;
    f->store = st;
    f->cause_code = CND_EDE_NONE;
    f->next = cw->refreshes;
    cw->refreshes = f;
    cnd_question_t q = {
        .qname = r->qname,
        .qtype = r->qtype,
        .qclass = r->qclass,
        .rd = true,
        .cd = knot_wire_get_cd(r->qwire),
        .do_bit = r->do_bit,
    };
    f->spawning = true;
    int rc = cnd_req_spawn(r->worker, self, &q, cache_refresh_done, f);
    f->spawning = false;
    if (rc != 0) {
        snprintf(f->cause, sizeof(f->cause),
                 "cache: cannot start a refresh (%d)", rc);
        cache_refresh_failed(f, cache_now(r));
        cache_refresh_unlink(cw, f);
        free(f);
        *done = -1;
        return NULL;
    }
    if (f->finished) {
        /* The chain answered at once: the caller looks again. */
        *done = f->good ? 1 : -1;
        cache_refresh_unlink(cw, f);
        free(f);
        return NULL;
    }
    return f;
}


/* A verify-mode client gets its answer: fresh if the refresh stored one,
 * else its stale copy with why. */
static void
cache_waiter_answer(cache_ctx_t *x, cnd_inst_t *self, bool good,
                    const char *why)
{
    cnd_req_t *r = x->r;
    cache_conf_t *c = self->conf;
    cache_worker_t *cw = cnd_req_wdata(r, self);
    if (good) {
        cache_hit_t h;
        uint64_t now = cache_now(r);
        cache_lookup(r, c, c->success, x, now, &h);
        if (h.found != CACHE_FRESH) {
            cache_lookup(r, c, c->denial, x, now, &h);
        }
        if (h.found == CACHE_FRESH && h.kind != CACHE_SERVFAIL) {
            cache_answer(r, h.wire, h.len);
            return;
        }
        why = "a refresh was stored but is gone";
    }
    char buf[300];
    snprintf(buf, sizeof(buf), "%s", why);
    cache_answer_stale(r, cw, x->stale, x->stale_len, x->stale_age, buf);
}


static void
cache_refresh_done(cnd_req_t *sr, void *arg)
{
    cache_refresh_t *f = arg;
    cache_conf_t *c = f->conf;
    uint64_t now = cache_now(sr);
    bool good = false;
    if (sr->resp != NULL && !sr->drop) {
        uint8_t rcode = knot_wire_get_rcode(sr->resp);
        if (rcode == KNOT_RCODE_NOERROR || rcode == KNOT_RCODE_NXDOMAIN) {
            /* The way back of a spawned request does not pass the cache:
             * store here.  The stored entry replaces the stale one. */
            good = cache_store(c, f->cw, sr, f->key, f->keylen, f->hash,
                               sr->resp, sr->resp_len, false, now);
        }
        if (!good) {
            const cnd_fail_t *fl = cnd_req_failure(sr);
            char rbuf[16];
            if (fl != NULL) {
                snprintf(f->cause, sizeof(f->cause), "%s: %s", fl->plugin,
                         fl->text);
                f->cause_code = fl->ede;
            } else {
                snprintf(f->cause, sizeof(f->cause), "the upstream answered %s",
                         cnd_rcode_str(rcode, rbuf, sizeof(rbuf)));
            }
        }
    } else {
        const cnd_fail_t *fl = cnd_req_failure(sr);
        snprintf(f->cause, sizeof(f->cause), "%s: %s",
                 fl != NULL ? fl->plugin : "cache",
                 fl != NULL ? fl->text : "no answer");
    }
    if (!good) {
        cache_refresh_failed(f, now);
    }
    if (f->spawning) {
        f->finished = true;
        f->good = good;
        return; /* cache_refresh_start() takes it from here */
    }
    cache_refresh_unlink(f->cw, f);
    /* Wake the clients waiting for it. */
    char why[300];
    snprintf(why, sizeof(why), "refresh failed: %s", f->cause);
    while (f->waiters != NULL) {
        cache_ctx_t *x = f->waiters;
        f->waiters = x->next_waiter;
        x->waiting = NULL;
        cnd_req_timer_stop(x->r);
        cache_waiter_answer(x, f->self, good, why);
        cnd_req_resume(x->r, CND_DONE);
    }
    free(f);
}


static void
cache_waiter_remove(cache_ctx_t *x)
{
    cache_refresh_t *f = x->waiting;
    if (f == NULL) {
        return;
    }
    for (cache_ctx_t **p = &f->waiters; *p != NULL; p = &(*p)->next_waiter) {
        if (*p == x) {
            *p = x->next_waiter;
            break;
        }
    }
    x->waiting = NULL;
}


/* verify: the client response timer ran out before the refresh ended. */
static void
cache_verify_timeout(cnd_req_t *r, void *arg)
{
    cnd_inst_t *self = arg;
    cache_ctx_t *x = cnd_req_ctx(r, self);
    cache_conf_t *c = self->conf;
    cache_waiter_remove(x);
    char why[96];
    snprintf(why, sizeof(why), "the refresh took longer than %ums",
             c->verify_ms);
    cache_waiter_answer(x, self, false, why);
    cnd_req_resume(r, CND_DONE);
}


void
cache_cancel(cnd_req_t *r, cnd_inst_t *self)
{
    cache_ctx_t *x = cnd_req_ctx(r, self);
    cache_waiter_remove(x);
    cnd_req_timer_stop(r);
    cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_OTHER,
                 "dropped while waiting for a refresh of a stale answer");
}


/* ---- prefetch ---------------------------------------------------------- */

/* Make @x's key and hash once, for the prefetch hook and query().
 * Returns false when out of memory. */
static bool
cache_keyed(cache_ctx_t *x, cnd_req_t *r)
{
    if (!x->keyed) {
        x->key = cnd_arena_alloc(&r->arena, CACHE_KEY_MAX);
        if (x->key == NULL) {
            return false;
        }
        x->keylen = cache_key(x->key, r->qname, r->qtype, r->qclass, r->do_bit,
                              knot_wire_get_cd(r->qwire));
        x->hash = cache_hash(x->key, x->keylen);
        x->keyed = true;
    }
    return true;
}


/* The prefetch hook (plugin.h): start loading the success entry of @r's
 * key, which is where a hit usually is.  Step 0 when the batch is
 * admitted, step 1 one request ahead of cache_query(): a hit's two
 * dependent memory misses (bucket, entry) then overlap with the work on
 * other queries.  About 2.5% more answers per CPU-second at 50,000 q/s
 * (bench/README.md). */
void
cache_prefetch_hook(cnd_req_t *r, cnd_inst_t *self, int step)
{
    const cache_conf_t *c = self->conf;
    cache_ctx_t *x = cnd_req_ctx(r, self);
    if (step == 0) {
        if (!cache_in(&c->zones, r->qname) ||
            cache_in(&c->no_success, r->qname)) {
            return;
        }
        cache_keyed(x, r);
    }
    if (x->keyed) {
        cache_prefetch(c->success, x->hash, step);
    }
}


/* ---- the hooks -------------------------------------------------------- */

cnd_rc_t
cache_query(cnd_req_t *r, cnd_inst_t *self)
{
    cache_conf_t *c = self->conf;
    if (!cache_in(&c->zones, r->qname)) {
        return CND_NEXT;
    }
    cache_worker_t *cw = cnd_req_wdata(r, self);
    cache_ctx_t *x = cnd_req_ctx(r, self);
    x->r = r;
    x->client_ad = knot_wire_get_ad(r->qwire);
    if (!cache_keyed(x, r)) {
        return CND_NEXT; /* out of memory: ask inward, store nothing */
    }
    cnd_counter_add(cw->requests, 1);
    uint64_t now = cache_now(r);

    cache_hit_t hs = {0}, hd = {0};
    if (!cache_in(&c->no_success, r->qname)) {
        cache_lookup(r, c, c->success, x, now, &hs);
    }
    if (hs.found == CACHE_FRESH) {
        cache_answer(r, hs.wire, hs.len);
        cnd_counter_add(cw->hits[0], 1);
        if (hs.refresh) {
            int done;
            cnd_counter_add(cw->prefetch, 1);
            cache_refresh_start(r, self, x, c->success, &done);
        }
        return CND_DONE;
    }
    if (!cache_in(&c->no_denial, r->qname)) {
        cache_lookup(r, c, c->denial, x, now, &hd);
    }
    if (hd.found == CACHE_FRESH && hd.kind == CACHE_DENIAL) {
        cache_answer(r, hd.wire, hd.len);
        cnd_counter_add(cw->hits[1], 1);
        if (hd.refresh) {
            int done;
            cnd_counter_add(cw->prefetch, 1);
            cache_refresh_start(r, self, x, c->denial, &done);
        }
        return CND_DONE;
    }

    /* Expired within the stale window: a stale answer beats a cached
     * failure, as a positive answer does in CoreDNS. */
    cache_hit_t *st = hs.found == CACHE_STALE   ? &hs
                      : hd.found == CACHE_STALE ? &hd
                                                : NULL;
    if (st != NULL) {
        cache_store_t *store = st == &hs ? c->success : c->denial;
        char why[320];
        cache_refresh_t *running =
            st->refresh ? NULL : cache_refresh_find(cw, x);
        if (c->stale == CACHE_STALE_VERIFY && running != NULL) {
            /* verify, and this worker refreshes it already: wait too */
            x->stale = st->wire;
            x->stale_len = st->len;
            x->stale_age = st->past;
            x->waiting = running;
            x->next_waiter = running->waiters;
            running->waiters = x;
            cnd_req_timer_start(r, c->verify_ms, cache_verify_timeout, self);
            return CND_ASYNC;
        }
        if (c->stale == CACHE_STALE_IMMEDIATE || !st->refresh) {
            /* immediate, or verify while the entry's refresh runs
             * elsewhere or failed less than the recheck time ago */
            cache_answer_stale(r, cw, st->wire, st->len, st->past,
                               cache_stale_why(st, why, sizeof(why)));
            if (st->refresh) {
                int done;
                cache_refresh_start(r, self, x, store, &done);
            }
            return CND_DONE;
        }
        /* verify: refresh first, wait at most verify_ms */
        x->stale = st->wire;
        x->stale_len = st->len;
        x->stale_age = st->past;
        int done;
        cache_refresh_t *f = cache_refresh_start(r, self, x, store, &done);
        if (f == NULL) {
            /* It ended at once: fresh now, or stale with its cause. */
            cache_hit_t again;
            cache_lookup(r, c, store, x, now, &again);
            if (done > 0 && again.found == CACHE_FRESH) {
                cache_answer(r, again.wire, again.len);
                return CND_DONE;
            }
            cache_answer_stale(r, cw, x->stale, x->stale_len, x->stale_age,
                               cache_stale_why(&again, why, sizeof(why)));
            return CND_DONE;
        }
        x->waiting = f;
        x->next_waiter = f->waiters;
        f->waiters = x;
        cnd_req_timer_start(r, c->verify_ms, cache_verify_timeout, self);
        return CND_ASYNC;
    }

    if (hd.found == CACHE_FRESH && hd.kind == CACHE_SERVFAIL) {
        /* A remembered failure: its cause again, and that it is cached. */
        cnd_counter_add(cw->hits[1], 1);
        cnd_req_fail_by(r, hd.cause_plugin ? hd.cause_plugin : "cache",
                        hd.cause_upstream, KNOT_RCODE_SERVFAIL, hd.cause_code,
                        "%s", hd.cause ? hd.cause : "a failure");
        cnd_req_note(r, CND_EDE_CACHED_ERROR,
                     "cached failure, %us left before it is asked again",
                     hd.remaining);
        return CND_FAIL;
    }

    /* A miss: ask inward with AD set, as CoreDNS does, and store the
     * answer on the way back. */
    cnd_counter_add(cw->misses, 1);
    x->missed = true;
    knot_wire_set_ad((uint8_t *)r->qwire);
    return CND_NEXT;
}


void
cache_response(cnd_req_t *r, cnd_inst_t *self)
{
    cache_ctx_t *x = cnd_req_ctx(r, self);
    if (x == NULL || !x->missed || r->resp == NULL) {
        return;
    }
    cache_conf_t *c = self->conf;
    cache_worker_t *cw = cnd_req_wdata(r, self);
    if (!x->client_ad) {
        knot_wire_clear_ad((uint8_t *)r->qwire); /* as the client sent it */
    }
    cache_store(c, cw, r, x->key, x->keylen, x->hash, r->resp, r->resp_len,
                x->client_ad, cache_now(r));
}
