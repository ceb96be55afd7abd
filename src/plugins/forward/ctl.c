/* SPDX-License-Identifier: MIT */
/*
 * plugins/forward/ctl.c - what forward shows about itself: the request
 * list's detail, "candor ctl upstreams", and per-upstream health gauges.
 *
 * The upstreams' health lives in atomics of the config (forward.h), so
 * the main thread reads it without asking the workers.  The health
 * gauge is set by a main-thread ticker every 500 ms and shared across a
 * reload (cnd_metric_series_ref).
 */
#include <stdio.h>
#include <string.h>

#include "core/plugin.h"
#include "plugins/forward/forward.h"
#include "util/duration.h"

#define FWD_GAUGE_NS (500 * CND_NS_PER_MS)

static const char *const fwd_l_to[] = {"to", NULL};
static const cnd_mfamily_t fwd_m_healthy = {
    "candor_forward_upstream_healthy",
    "1 while the upstream is up, 0 while forward marks it down (more than "
    "max_fails consecutive failures).",
    CND_METRIC_GAUGE,
    fwd_l_to,
    NULL,
    0};


/* "1.5s", "250ms": a duration in nanoseconds, briefly. */
static const char *
fwd_ago(uint64_t ns, char *buf, size_t size)
{
    return cnd_duration_format((int64_t)(ns / 1000000 * 1000000), buf, size);
}


void
fwd_describe(const cnd_req_t *r, cnd_inst_t *self, char *buf, size_t size)
{
    const fwd_conf_t *c = self->conf;
    const fwd_ctx_t *x = cnd_req_ctx(r, self);
    uint64_t now = fwd_now_ns();
    size_t n = (size_t)snprintf(buf, size, "waiting on");
    for (const fwd_try_t *t = x->tries; t != NULL && n < size; t = t->next) {
        char ago[32];
        n += (size_t)snprintf(buf + n, size - n, "%s %s %s (sent %s ago)",
                              t == x->tries ? "" : ",", t->up->name,
                              fwd_proto_name(t->proto),
                              fwd_ago(now - t->sent_ns, ago, sizeof(ago)));
    }
    if (n < size) {
        n += (size_t)snprintf(buf + n, size - n, "; try %u of %u", x->attempts,
                              c->max_attempts);
    }
    /* What the upstreams tried before did. */
    for (size_t i = 0; i < c->nups && n < size; i++) {
        const fwd_outcome_t *o = &x->out[i];
        if (o->timeouts + o->errors == 0) {
            continue;
        }
        n += (size_t)snprintf(buf + n, size - n, "; ");
        if (n < size) {
            n += fwd_outcome_text(x, i, buf + n, size - n);
        }
    }
}


/* candor ctl upstreams: each forward line, each upstream. */
static int
fwd_ctl_upstreams(cnd_ctl_t *ctl, cnd_inst_t *self, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        return cnd_ctl_error(ctl, "upstreams takes no arguments");
    }
    fwd_conf_t *c = self->conf;
    uint64_t now = fwd_now_ns();
    cnd_ctl_printf(ctl, "forward %s (%s:%d)\n", c->from_text, c->file, c->line);
    for (size_t i = 0; i < c->nups; i++) {
        fwd_upstream_t *up = &c->ups[i];
        unsigned srtt = atomic_load(&up->srtt_us);
        uint64_t failed = atomic_load(&up->last_fail_ns);
        char rtt[32] = "-", ago[32], why[160] = "-";
        if (srtt > 0) {
            snprintf(rtt, sizeof(rtt), "%u.%03ums", srtt / 1000, srtt % 1000);
        }
        if (failed != 0) {
            const char *what = atomic_load(&up->last_what);
            int err = atomic_load(&up->last_err);
            snprintf(why, sizeof(why), "%s ago: %s %s%s%s",
                     fwd_ago(now - failed, ago, sizeof(ago)),
                     fwd_proto_name((fwd_proto_t)atomic_load(&up->last_proto)),
                     what != NULL ? what : "failed", err != 0 ? ": " : "",
                     err != 0 ? fwd_strerror(err) : "");
        }
        cnd_ctl_printf(ctl, "  %s %s fails=%u rtt=%s last_error=%s\n", up->name,
                       fwd_upstream_down(c, up) ? "down" : "up",
                       atomic_load(&up->fails), rtt, why);
    }
    return 0;
}


const cnd_ctl_cmd_t fwd_ctl[] = {
    {"upstreams", "",
     "each forward target: up or down, consecutive failures, RTT, the last "
     "error",
     fwd_ctl_upstreams},
    {NULL, NULL, NULL, NULL},
};


static void
fwd_gauges_tick(void *arg)
{
    fwd_conf_t *c = arg;
    for (size_t i = 0; i < c->nups; i++) {
        fwd_upstream_t *up = &c->ups[i];
        if (up->m_healthy != NULL) {
            cnd_gauge_set(up->m_healthy, fwd_upstream_down(c, up) ? 0 : 1);
        }
    }
}


int
fwd_ops_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    if (cnd_conf_every(cf, FWD_GAUGE_NS, fwd_gauges_tick, self->conf) != 0) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    return 0;
}


int
fwd_ops_start(cnd_conf_t *cf, cnd_inst_t *self)
{
    (void)cf;
    fwd_conf_t *c = self->conf;
    cnd_mstore_t *st = cnd_main_metrics();
    for (size_t i = 0; st != NULL && i < c->nups; i++) {
        fwd_upstream_t *up = &c->ups[i];
        up->m_healthy =
            cnd_metric_series_ref(st, &fwd_m_healthy, up->name, NULL);
    }
    fwd_gauges_tick(c);
    return 0;
}


void
fwd_ops_stop(cnd_inst_t *self)
{
    fwd_conf_t *c = self->conf;
    cnd_mstore_t *st = cnd_main_metrics();
    for (size_t i = 0; st != NULL && i < c->nups; i++) {
        cnd_metric_series_unref(st, c->ups[i].m_healthy);
        c->ups[i].m_healthy = NULL;
    }
}
