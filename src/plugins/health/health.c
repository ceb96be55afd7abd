/* SPDX-License-Identifier: MIT */
/*
 * plugins/health/health.c - /health: 200 "OK" while the process runs.
 *
 * As CoreDNS's health: "health [ADDRESS] { lameduck DURATION }" serves
 * /health on ADDRESS (default :8080) through the admin HTTP server
 * (admin/http.h).  The answer never depends on upstreams: liveness must
 * not fail because the network does.  Several blocks may name the same or
 * different addresses; every endpoint says the same.
 *
 * lameduck: on SIGTERM the core keeps serving DNS for the longest
 * lameduck asked (cnd_conf_lameduck) before it stops; shutdown() only
 * logs that, and /health keeps answering 200 until stop(), which runs
 * once the workers are done.
 *
 * Every second each instance asks its own /health, as CoreDNS does, and
 * exports how long that took.  The probe is non-blocking on the main
 * thread's loop: a ticker (cnd_conf_every) starts it and libuv callbacks
 * finish it, so the main thread never waits on it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/plugin.h"
#include "util/duration.h"
#include "util/log.h"

#define HEALTH_PATH      "/health"
#define HEALTH_PROBE_MS  3000 /* the probe's client timeout (CoreDNS) */
#define HEALTH_SLOW_NS   CND_NS_PER_SEC
#define HEALTH_PROBE_BUF 512

typedef struct health_probe_s health_probe_t;

/* Config lifetime.  addr, url, lameduck_ns and target are const after
 * init(); the rest belongs to the main thread while the snapshot serves
 * (start() to stop()). */
typedef struct {
    const char *addr; /* "host:port", ":port" or "[v6]:port"        */
    int64_t lameduck_ns;
    char url[128];                  /* "http://:8080/health", for logs   */
    struct sockaddr_storage target; /* where the probe connects         */
    bool serving;                   /* start() ran, stop() not yet      */
    health_probe_t *probe;          /* the one in flight, or NULL       */
    cnd_series_t *m_duration;
    cnd_series_t *m_failures;
} health_conf_t;

/* One self-probe.  malloc'd, freed when both handles are closed, so it
 * may outlive its snapshot by a loop turn. */
struct health_probe_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    health_conf_t *owner; /* NULL once stop() let it go */
    uint64_t start_ns;
    int open; /* handles not closed yet */
    bool done;
    size_t len;
    char req[192];
    char buf[HEALTH_PROBE_BUF];
};

static const double health_buckets[] = {0.00025, 0.0025, 0.025, 0.25, 2.5};

static const cnd_mfamily_t health_m_duration = {
    "coredns_health_request_duration_seconds",
    "Histogram of the time (in seconds) each request took.",
    CND_METRIC_HISTOGRAM,
    NULL,
    health_buckets,
    sizeof(health_buckets) / sizeof(health_buckets[0]),
};

static const cnd_mfamily_t health_m_failures = {
    "coredns_health_request_failures_total",
    "The number of times the health check failed.",
    CND_METRIC_COUNTER,
    NULL,
    NULL,
    0,
};


/* ---- Corefile --------------------------------------------------------- */

/* Go's time.ParseDuration error text for @s, which did not parse. */
static void
health_duration_why(const char *s, char *buf, size_t size)
{
    const char *p = s;
    if (*p == '-' || *p == '+') {
        p++;
    }
    while (*p != '\0') {
        bool digits = false;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits = true;
        }
        if (*p == '.') {
            for (p++; isdigit((unsigned char)*p); p++) {
                digits = true;
            }
        }
        if (!digits) {
            break; /* no number here: "invalid duration" */
        }
        const char *unit = p;
        while (*p != '\0' && !isdigit((unsigned char)*p) && *p != '.') {
            p++;
        }
        size_t ul = (size_t)(p - unit);
        if (ul == 0) {
            snprintf(buf, size, "time: missing unit in duration \"%s\"", s);
            return;
        }
        static const char *const units[] = {
            "ns", "us", "\xc2\xb5s", "\xce\xbcs", "ms", "s", "m", "h", NULL};
        bool known = false;
        for (size_t i = 0; units[i] != NULL && !known; i++) {
            known = strlen(units[i]) == ul && memcmp(units[i], unit, ul) == 0;
        }
        if (!known) {
            snprintf(buf, size,
                     "time: unknown unit \"%.*s\" in duration \"%s\"", (int)ul,
                     unit, s);
            return;
        }
    }
    snprintf(buf, size, "time: invalid duration \"%s\"", s);
}


static int
health_lameduck(cnd_disp_t *d, health_conf_t *c)
{
    const char *args[2];
    size_t n = cnd_disp_args(d, args, 2);
    if (n != 1) {
        return cnd_disp_arg_err(d);
    }
    if (cnd_duration_parse(args[0], &c->lameduck_ns) != 0) {
        char why[160];
        health_duration_why(args[0], why, sizeof(why));
        return cnd_disp_err(d,
                            "unable to parse lameduck duration value: "
                            "\"%s\": %s",
                            args[0], why);
    }
    return 0;
}


/* Every "health" line of the block makes one instance: the last address
 * and lameduck given win, as in CoreDNS. */
static int
health_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    health_conf_t *c = conf;
    c->addr = ":8080";
    while (cnd_disp_next(d)) {
        if (cnd_http_addr_arg(d, &c->addr) != 0) {
            return -1;
        }
        while (cnd_disp_next_block(d)) {
            if (strcmp(cnd_disp_val(d), "lameduck") != 0) {
                return cnd_disp_err(d, "unknown property '%s'",
                                    cnd_disp_val(d));
            }
            if (health_lameduck(d, c) != 0) {
                return -1;
            }
        }
    }
    if (c->lameduck_ns > 0) {
        cnd_conf_lameduck(cf, c->lameduck_ns);
    }
    return 0;
}


/* ---- the self-probe --------------------------------------------------- */

/* Where the probe connects: the address's host, or 127.0.0.1 when there
 * is none or it is "localhost" (Go's client dials localhost then).  False
 * when the host is no IP: the endpoint cannot have started either. */
static bool
health_target(const char *addr, struct sockaddr_storage *ss)
{
    socklen_t len;
    return cnd_addr_parse(addr, 0, CND_ADDR_NEED_PORT | CND_ADDR_DIAL, ss, &len,
                          NULL, 0) == CND_ADDR_OK &&
           cnd_addr_port(ss) != 0;
}


static void
health_probe_closed(uv_handle_t *h)
{
    health_probe_t *p = h->data;
    if (--p->open == 0) {
        free(p);
    }
}


/* The probe is over: count it (unless its instance stopped), log as
 * CoreDNS does, and close its handles.  @err is NULL on success. */
static void
health_probe_end(health_probe_t *p, const char *err)
{
    if (p->done) {
        return;
    }
    p->done = true;
    health_conf_t *c = p->owner;
    if (c != NULL) {
        uint64_t took = uv_hrtime() - p->start_ns;
        cnd_histogram_observe(c->m_duration, (double)took / 1e9);
        if (err != NULL) {
            cnd_counter_add(c->m_failures, 1);
            cnd_log(CND_LOG_WARNING, "health",
                    "Local health request to \"%s\" failed: Get \"%s\": %s",
                    c->url, c->url, err);
        } else if (took > (uint64_t)HEALTH_SLOW_NS) {
            char d[32];
            cnd_log(CND_LOG_WARNING, "health",
                    "Local health request to \"%s\" took more than 1s: %s",
                    c->url, cnd_duration_format((int64_t)took, d, sizeof(d)));
        }
        c->probe = NULL;
    }
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, health_probe_closed);
    uv_close((uv_handle_t *)&p->tcp, health_probe_closed);
}


static void
health_probe_timeout(uv_timer_t *t)
{
    health_probe_end(t->data,
                     "context deadline exceeded (Client.Timeout exceeded "
                     "while awaiting headers)");
}


static void
health_probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    health_probe_t *p = h->data;
    /* Keep one byte spare: the reply is read as a string. */
    *buf =
        uv_buf_init(p->buf + p->len, (unsigned)(sizeof(p->buf) - 1 - p->len));
}


/* A reply counts once its status line and headers are in (that is when
 * Go's client returns), whatever the status: CoreDNS counts only
 * transport errors as failures. */
static void
health_probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    health_probe_t *p = s->data;
    if (p->done) {
        return;
    }
    if (n > 0) {
        p->len += (size_t)n;
        p->buf[p->len] = '\0';
    }
    bool head = strstr(p->buf, "\r\n\r\n") != NULL;
    bool full = p->len + 1 >= sizeof(p->buf);
    if (n >= 0 && !head && !full) {
        return; /* more to come */
    }
    if (strncmp(p->buf, "HTTP/1.", 7) == 0 && (head || full)) {
        health_probe_end(p, NULL);
    } else if (n >= 0) {
        health_probe_end(p, "malformed HTTP response");
    } else {
        health_probe_end(p, n == UV_EOF ? "EOF" : uv_strerror((int)n));
    }
}


static void
health_probe_written(uv_write_t *w, int status)
{
    health_probe_t *p = w->data;
    if (status < 0 && !p->done) {
        char err[96];
        snprintf(err, sizeof(err), "write: %s", uv_strerror(status));
        health_probe_end(p, err);
    }
}


static void
health_probe_connected(uv_connect_t *req, int status)
{
    health_probe_t *p = req->data;
    if (p->done) {
        return; /* closed before it connected (UV_ECANCELED) */
    }
    if (status < 0) {
        char err[192], ip[64];
        snprintf(err, sizeof(err), "dial tcp %s: connect: %s",
                 cnd_addr_str(&p->owner->target, ip, sizeof(ip), true),
                 uv_strerror(status));
        health_probe_end(p, err);
        return;
    }
    uv_buf_t b = uv_buf_init(p->req, (unsigned)strlen(p->req));
    p->write.data = p;
    int rc = uv_write(&p->write, (uv_stream_t *)&p->tcp, &b, 1,
                      health_probe_written);
    if (rc == 0) {
        rc = uv_read_start((uv_stream_t *)&p->tcp, health_probe_alloc,
                           health_probe_read);
    }
    if (rc != 0) {
        health_probe_end(p, uv_strerror(rc));
    }
}


/* Every second on the main thread: ask /health unless the last probe is
 * still waiting (its 3 s timeout ends it). */
static void
health_tick(void *arg)
{
    health_conf_t *c = arg;
    if (!c->serving || c->probe != NULL) {
        return;
    }
    health_probe_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return;
    }
    /* The tickers run on the main thread's loop, the default one
     * (core/server.c). */
    uv_loop_t *loop = uv_default_loop();
    p->owner = c;
    p->start_ns = uv_hrtime();
    snprintf(p->req, sizeof(p->req),
             "GET " HEALTH_PATH " HTTP/1.1\r\nHost: %s%s\r\n"
             "User-Agent: candor-health\r\nConnection: close\r\n\r\n",
             c->addr[0] == ':' ? "localhost" : "", c->addr);
    uv_tcp_init(loop, &p->tcp);
    uv_timer_init(loop, &p->timer);
    p->tcp.data = p->timer.data = p->connect.data = p;
    p->open = 2;
    c->probe = p;
    uv_timer_start(&p->timer, health_probe_timeout, HEALTH_PROBE_MS, 0);
    int rc = uv_tcp_connect(&p->connect, &p->tcp,
                            (const struct sockaddr *)&c->target,
                            health_probe_connected);
    if (rc != 0) {
        char err[160], ip[64];
        snprintf(err, sizeof(err), "dial tcp %s: %s",
                 cnd_addr_str(&c->target, ip, sizeof(ip), true),
                 uv_strerror(rc));
        health_probe_end(p, err);
    }
}


/* ---- serving ---------------------------------------------------------- */

/* Always healthy while the process runs (CoreDNS: deliberately no
 * dependency on plugins or upstreams). */
static int
health_http(void *arg, char **body, size_t *len, const char **ctype)
{
    (void)arg;
    (void)ctype;
    *body = strdup("OK");
    *len = *body != NULL ? 2 : 0;
    return 200;
}


static int
health_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    health_conf_t *c = self->conf;
    snprintf(c->url, sizeof(c->url), "http://%s" HEALTH_PATH, c->addr);
    /* A host that is no IP fails in start(), with the HTTP server's
     * reason; until then there is nothing to probe. */
    if (health_target(c->addr, &c->target) &&
        cnd_conf_every(cf, CND_NS_PER_SEC, health_tick, c) != 0) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    return 0;
}


static int
health_start(cnd_conf_t *cf, cnd_inst_t *self)
{
    health_conf_t *c = self->conf;
    char err[256];
    cnd_mstore_t *st = cnd_main_metrics();
    if (st != NULL) {
        c->m_duration = cnd_metric_series(st, &health_m_duration, NULL);
        c->m_failures = cnd_metric_series(st, &health_m_failures, NULL);
    }
    if (c->m_duration == NULL || c->m_failures == NULL) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    if (cnd_http_serve(c->addr, HEALTH_PATH, health_http, NULL, err,
                       sizeof(err)) != 0) {
        return cnd_conf_err(cf, self, "%s", err);
    }
    c->serving = true;
    return 0;
}


/* SIGTERM: say how long DNS stays up; the core does the waiting. */
static void
health_shutdown(cnd_inst_t *self)
{
    health_conf_t *c = self->conf;
    if (c->lameduck_ns > 0) {
        char d[32];
        cnd_log(CND_LOG_INFO, "health", "Going into lameduck mode for %s",
                cnd_duration_format(c->lameduck_ns, d, sizeof(d)));
    }
}


static void
health_stop(cnd_inst_t *self)
{
    health_conf_t *c = self->conf;
    if (!c->serving) {
        return;
    }
    c->serving = false;
    if (c->probe != NULL) {
        health_probe_t *p = c->probe;
        p->owner = NULL; /* uncounted: the snapshot is going away */
        c->probe = NULL;
        health_probe_end(p, NULL);
    }
    cnd_http_unserve(c->addr, HEALTH_PATH);
}


/* For "candor doctor": where the endpoint is. */
static void
health_facts(const cnd_inst_t *self,
             void (*emit)(void *ud, const cnd_fact_t *f), void *ud)
{
    const health_conf_t *c = self->conf;
    emit(ud, &(cnd_fact_t){
                 .kind = CND_FACT_HTTP, .text = c->addr, .path = "/health"});
}


const cnd_plugin_t cnd_plugin_health = {
    .name = "health",
    .conf_size = sizeof(health_conf_t),
    .parse = health_parse,
    .init = health_init,
    .start = health_start,
    .shutdown = health_shutdown,
    .stop = health_stop,
    .facts = health_facts,
};
