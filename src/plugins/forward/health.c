/* SPDX-License-Identifier: MIT */
/*
 * plugins/forward/health.c - is an upstream up?
 *
 * An upstream's health is shared by every worker: its consecutive
 * failures (tries that got no reply or a network error, and failed
 * checks) and when it last replied.  It is down when the failures exceed
 * max_fails (2: down at the third), and the policy skips it.  The first
 * failure starts a health check, on the worker that saw it unless one
 * runs already: ". IN NS" (health_check's domain and RD) every
 * health_check interval (0.5 s), each waiting up to 1 s; every failed
 * check counts, and the first reply (any rcode, as CoreDNS) makes the
 * upstream healthy again and ends the checks.  max_fails 0 means never
 * down and no checks.
 *
 * Failures of queries count too, not only failed checks (CoreDNS counts
 * only checks): a silent upstream is down as soon as three queries found
 * it silent, instead of after three slow checks.
 */
#include <stdlib.h>
#include <string.h>

#include "plugins/forward/forward.h"

/* How long a check waits for its reply (CoreDNS: 1 s). */
#define HEALTH_TIMEOUT_NS (1000LL * 1000 * 1000)
/* RTO before the first reply, and its floor. */
#define HEALTH_RTO_INITIAL_NS (1000LL * 1000 * 1000)
#define HEALTH_RTO_MIN_NS     (300LL * 1000 * 1000)

/* The health check of one upstream on the worker that runs it.  Worker
 * lifetime; what a check learns goes to the upstream's shared health
 * fields (atomics, fwd_upstream_t). */
typedef struct fwd_health_s {
    fwd_worker_t *fw;
    fwd_upstream_t *up;
    uv_timer_t timer; /* the next check                       */
    fwd_try_t *try;   /* the check in flight                  */
    uint8_t query[KNOT_WIRE_HEADER_SIZE + KNOT_DNAME_MAXLEN + 4];
    size_t qlen;
} fwd_health_t;

static void health_done(fwd_try_t *t, fwd_result_t res, const uint8_t *wire,
                        size_t len);
static const fwd_owner_t health_owner = {health_done};
static void health_timer_cb(uv_timer_t *t);


bool
fwd_upstream_down(const fwd_conf_t *c, fwd_upstream_t *up)
{
    return c->max_fails > 0 &&
           atomic_load_explicit(&up->fails, memory_order_relaxed) >
               c->max_fails;
}


int64_t
fwd_upstream_rto(const fwd_conf_t *c, fwd_upstream_t *up)
{
    uint64_t srtt = atomic_load_explicit(&up->srtt_us, memory_order_relaxed);
    uint64_t var = atomic_load_explicit(&up->rttvar_us, memory_order_relaxed);
    int64_t rto =
        srtt == 0 ? HEALTH_RTO_INITIAL_NS : (int64_t)(srtt + 4 * var) * 1000;
    if (rto < HEALTH_RTO_MIN_NS) {
        rto = HEALTH_RTO_MIN_NS;
    }
    return rto < c->read_timeout_ns ? rto : c->read_timeout_ns;
}


void
fwd_upstream_replied(fwd_upstream_t *up, uint64_t rtt_ns)
{
    atomic_store_explicit(&up->fails, 0, memory_order_relaxed);
    atomic_store_explicit(&up->last_reply_ns, fwd_now_ns(),
                          memory_order_relaxed);
    /* RFC 6298's smoothing; racing updates from workers lose a sample
     * now and then, which smoothing forgives. */
    unsigned rtt = (unsigned)(rtt_ns / 1000);
    unsigned srtt = atomic_load_explicit(&up->srtt_us, memory_order_relaxed);
    unsigned var = atomic_load_explicit(&up->rttvar_us, memory_order_relaxed);
    if (srtt == 0) {
        srtt = rtt > 0 ? rtt : 1;
        var = rtt / 2;
    } else {
        unsigned diff = srtt > rtt ? srtt - rtt : rtt - srtt;
        var = (3 * var + diff) / 4;
        srtt = (7 * srtt + rtt) / 8;
        if (srtt == 0) {
            srtt = 1;
        }
    }
    atomic_store_explicit(&up->srtt_us, srtt, memory_order_relaxed);
    atomic_store_explicit(&up->rttvar_us, var, memory_order_relaxed);
}


/* ". IN NS" (or the configured domain), RD unless no_rec. */
static size_t
health_query(const fwd_conf_t *c, uint8_t *buf, size_t size)
{
    size_t dlen = knot_dname_size(c->hc_domain);
    if (KNOT_WIRE_HEADER_SIZE + dlen + 4 > size) {
        return 0;
    }
    memset(buf, 0, KNOT_WIRE_HEADER_SIZE);
    if (!c->hc_no_rec) {
        knot_wire_set_rd(buf);
    }
    knot_wire_set_qdcount(buf, 1);
    memcpy(buf + KNOT_WIRE_HEADER_SIZE, c->hc_domain, dlen);
    uint8_t *p = buf + KNOT_WIRE_HEADER_SIZE + dlen;
    p[0] = 0;
    p[1] = KNOT_RRTYPE_NS;
    p[2] = 0;
    p[3] = KNOT_CLASS_IN;
    return KNOT_WIRE_HEADER_SIZE + dlen + 4;
}


/* A check failed: count it, check again after the interval. */
static void
health_failed(fwd_health_t *h, fwd_proto_t proto, const char *what, int err)
{
    fwd_upstream_note(h->up, proto, what, err);
    atomic_fetch_add_explicit(&h->up->fails, 1, memory_order_relaxed);
    fwd_wup_t *wu = &h->fw->wups[h->up->index];
    cnd_counter_add(wu->hc_fail, 1);
    cnd_counter_add(wu->hc_fail_legacy, 1);
    uv_timer_start(&h->timer, health_timer_cb,
                   (uint64_t)(h->fw->conf->hc_interval_ns / 1000000), 0);
}


static void
health_send(fwd_health_t *h)
{
    const fwd_conf_t *c = h->fw->conf;
    fwd_proto_t proto = h->up->tls ? FWD_TLS : c->force_tcp ? FWD_TCP : FWD_UDP;
    int err = 0;
    h->try = fwd_try_start(h->fw, h->up, proto, h->query, h->qlen, 0,
                           HEALTH_TIMEOUT_NS, &health_owner, h, &err);
    if (h->try == NULL) {
        health_failed(h, proto, "health check cannot send", err);
    }
}


static void
health_timer_cb(uv_timer_t *t)
{
    fwd_health_t *h = t->data;
    health_send(h);
}


static void
health_closed(uv_handle_t *hd)
{
    fwd_health_t *h = hd->data;
    fwd_worker_t *fw = h->fw;
    fw->handles--;
    free(h);
    fwd_worker_maybe_free(fw); /* it may wait for this last handle */
}


/* Stop checking on this worker (the upstream answered, or shutdown). */
static void
health_stop(fwd_health_t *h)
{
    fwd_wup_t *wu = &h->fw->wups[h->up->index];
    wu->health = NULL;
    if (h->try != NULL) {
        fwd_try_close(h->try);
        h->try = NULL;
    }
    atomic_store_explicit(&h->up->checking, false, memory_order_relaxed);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, health_closed);
}


static void
health_done(fwd_try_t *t, fwd_result_t res, const uint8_t *wire, size_t len)
{
    (void)wire;
    (void)len;
    fwd_health_t *h = t->arg;
    if (res == FWD_SOFT) {
        return;
    }
    uint64_t rtt = fwd_now_ns() - t->sent_ns;
    fwd_proto_t proto = t->proto;
    const char *what = res == FWD_ERROR ? t->errwhat : NULL;
    int err = res == FWD_ERROR ? t->err : 0;
    fwd_try_close(t);
    h->try = NULL;
    if (res == FWD_OK) {
        /* Any reply, whatever its rcode, means the upstream is there. */
        fwd_upstream_replied(h->up, rtt);
        health_stop(h);
        return;
    }
    health_failed(h, proto,
                  what != NULL ? what : "health check timed out after 1s", err);
}


void
fwd_upstream_note(fwd_upstream_t *up, fwd_proto_t proto, const char *what,
                  int err)
{
    atomic_store_explicit(&up->last_what, what, memory_order_relaxed);
    atomic_store_explicit(&up->last_err, err, memory_order_relaxed);
    atomic_store_explicit(&up->last_proto, (unsigned)proto,
                          memory_order_relaxed);
    atomic_store_explicit(&up->last_fail_ns, fwd_now_ns(),
                          memory_order_relaxed);
}


void
fwd_upstream_failed(fwd_worker_t *fw, fwd_upstream_t *up, fwd_proto_t proto,
                    const char *what, int err)
{
    const fwd_conf_t *c = fw->conf;
    fwd_upstream_note(up, proto, what, err);
    atomic_fetch_add_explicit(&up->fails, 1, memory_order_relaxed);
    if (c->max_fails == 0 || fw->closing ||
        atomic_exchange_explicit(&up->checking, true, memory_order_relaxed)) {
        return; /* no checks, or one runs already */
    }
    fwd_health_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        atomic_store_explicit(&up->checking, false, memory_order_relaxed);
        return;
    }
    h->fw = fw;
    h->up = up;
    h->qlen = health_query(c, h->query, sizeof(h->query));
    uv_timer_init(fw->loop, &h->timer);
    fw->handles++;
    h->timer.data = h;
    fw->wups[up->index].health = h;
    /* The first check at once; later ones every interval. */
    uv_timer_start(&h->timer, health_timer_cb, 0, 0);
}


void
fwd_health_worker_fini(fwd_worker_t *fw)
{
    for (size_t i = 0; i < fw->conf->nups; i++) {
        if (fw->wups[i].health != NULL) {
            health_stop(fw->wups[i].health);
        }
    }
}
