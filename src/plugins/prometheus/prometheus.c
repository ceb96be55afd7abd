/* SPDX-License-Identifier: MIT */
/*
 * plugins/prometheus/prometheus.c - /metrics in the Prometheus format.
 *
 * "prometheus [ADDRESS]" (default localhost:9153) serves every metric of
 * every thread, summed at scrape time (core/metrics.h), on the admin HTTP
 * server (admin/http.h).  Server blocks naming the same address share
 * one endpoint.
 *
 * It also counts the server's own coredns_dns_* family for the queries
 * of its block, as CoreDNS's metrics plugin does: its finish() hook sees
 * each final answer.  The series of a (zone, listen address) are looked
 * up once per worker and kept in the worker data, so counting a query is
 * a few plain stores.  coredns_build_info, coredns_panics_total and
 * coredns_plugin_enabled are set when the snapshot starts serving.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "dns/msg.h"

/* The type label: CoreDNS's monitored types, everything else "other". */
static const struct {
    uint16_t type;
    const char *name;
} prom_types[] = {
    {KNOT_RRTYPE_A, "A"},         {KNOT_RRTYPE_AAAA, "AAAA"},
    {KNOT_RRTYPE_CNAME, "CNAME"}, {KNOT_RRTYPE_DNSKEY, "DNSKEY"},
    {KNOT_RRTYPE_DS, "DS"},       {KNOT_RRTYPE_MX, "MX"},
    {KNOT_RRTYPE_NSEC3, "NSEC3"}, {KNOT_RRTYPE_NSEC, "NSEC"},
    {KNOT_RRTYPE_NS, "NS"},       {KNOT_RRTYPE_PTR, "PTR"},
    {KNOT_RRTYPE_RRSIG, "RRSIG"}, {KNOT_RRTYPE_SOA, "SOA"},
    {KNOT_RRTYPE_SRV, "SRV"},     {KNOT_RRTYPE_TXT, "TXT"},
    {KNOT_RRTYPE_HTTPS, "HTTPS"}, {KNOT_RRTYPE_SVCB, "SVCB"},
    {KNOT_RRTYPE_IXFR, "IXFR"},   {KNOT_RRTYPE_AXFR, "AXFR"},
    {KNOT_RRTYPE_ANY, "ANY"},
};
#define PROM_NTYPES (sizeof(prom_types) / sizeof(prom_types[0]) + 1)
/* Distinct (rcode, plugin) pairs kept per zone; more are looked up. */
#define PROM_NRESP 16

static const char *const prom_l_req[] = {"server", "zone", "view", "proto",
                                         "family", "type", NULL};
static const char *const prom_l_zone[] = {"server", "zone", "view", NULL};
static const char *const prom_l_size[] = {"server", "zone", "view", "proto",
                                          NULL};
static const char *const prom_l_resp[] = {"server", "zone",   "view",
                                          "rcode",  "plugin", NULL};
static const char *const prom_l_build[] = {"version", "revision", "goversion",
                                           NULL};
static const char *const prom_l_enabled[] = {"server", "zone", "view", "name",
                                             NULL};

static const cnd_mfamily_t prom_m_requests = {
    "coredns_dns_requests_total",
    "Counter of DNS requests made per zone, "
    "protocol and family.",
    CND_METRIC_COUNTER,
    prom_l_req,
    NULL,
    0};
static const cnd_mfamily_t prom_m_do = {
    "coredns_dns_do_requests_total",
    "Counter of DNS requests with DO bit set per zone.",
    CND_METRIC_COUNTER,
    prom_l_zone,
    NULL,
    0};
static const cnd_mfamily_t prom_m_duration = {
    "coredns_dns_request_duration_seconds",
    "Histogram of the time (in seconds) each request took per zone.",
    CND_METRIC_HISTOGRAM,
    prom_l_zone,
    cnd_buckets_time,
    16};
static const cnd_mfamily_t prom_m_req_size = {
    "coredns_dns_request_size_bytes",
    "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and "
    "protocol.",
    CND_METRIC_HISTOGRAM,
    prom_l_size,
    cnd_buckets_size,
    14};
static const cnd_mfamily_t prom_m_resp_size = {
    "coredns_dns_response_size_bytes",
    "Size of the returned response in bytes.",
    CND_METRIC_HISTOGRAM,
    prom_l_size,
    cnd_buckets_size,
    14};
static const cnd_mfamily_t prom_m_responses = {
    "coredns_dns_responses_total",
    "Counter of response status codes.",
    CND_METRIC_COUNTER,
    prom_l_resp,
    NULL,
    0};
static const cnd_mfamily_t prom_m_build = {
    "coredns_build_info",
    "A metric with a constant '1' value labeled by version, revision, and "
    "goversion from which CoreDNS was built.",
    CND_METRIC_GAUGE,
    prom_l_build,
    NULL,
    0};
static const cnd_mfamily_t prom_m_panics = {
    "coredns_panics_total",
    "A metrics that counts the number of panics.",
    CND_METRIC_COUNTER,
    NULL,
    NULL,
    0};
static const cnd_mfamily_t prom_m_enabled = {
    "coredns_plugin_enabled",
    "A metric that indicates whether a plugin is enabled on per server and "
    "zone basis.",
    CND_METRIC_GAUGE,
    prom_l_enabled,
    NULL,
    0};

/* The plugin's config.  Config lifetime. */
typedef struct {
    const char *addr; /* the /metrics endpoint, "host:port" */
    /* The server label of each listen address of the block: one per bind,
     * or one "dns://:PORT" without. */
    const char **servers;
    size_t nservers;
    /* The block's zones and listen addresses (cnd_server_zones/binds). */
    const cnd_zone_t *zones;
    size_t nzones;
    const struct sockaddr_storage *binds;
    size_t nbinds;
} prom_conf_t;

/* The series of one (zone, server) on one worker, made on first use.
 * Worker lifetime, as is prom_worker_t. */
typedef struct {
    cnd_series_t *req[PROM_NTYPES][2][2]; /* type, tcp, IPv6 */
    cnd_series_t *do_req, *duration;
    cnd_series_t *req_size[2], *resp_size[2];
    struct {
        uint16_t rcode;
        const char *plugin;
        cnd_series_t *s;
    } resp[PROM_NRESP];
    unsigned nresp;
} prom_zs_t;

typedef struct {
    cnd_mstore_t *st;
    prom_zs_t *zs; /* [zone][server]; zone nzones: "dropped" */
} prom_worker_t;


static int
prom_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    prom_conf_t *c = conf;
    c->addr = "localhost:9153";
    cnd_disp_next(d); /* "prometheus" (once per block) */
    if (cnd_http_addr_arg(d, &c->addr) != 0) {
        return -1;
    }
    while (cnd_disp_next_block(d)) {
        return cnd_disp_err(d, "unknown property '%s'", cnd_disp_val(d));
    }
    return 0;
}


/* CoreDNS's server label: "dns://" and the bound address, or nothing,
 * and the port. */
static int
prom_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    prom_conf_t *c = self->conf;
    c->zones = cnd_server_zones(self->srv, &c->nzones);
    c->binds = cnd_server_binds(self->srv, &c->nbinds);
    c->nservers = c->nbinds > 0 ? c->nbinds : 1;
    c->servers =
        cnd_arena_zalloc(cnd_conf_arena(cf), c->nservers * sizeof(char *));
    if (c->servers == NULL) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    for (size_t i = 0; i < c->nservers; i++) {
        char label[80];
        cnd_server_label(self->srv, i, label, sizeof(label));
        c->servers[i] = cnd_arena_strdup(cnd_conf_arena(cf), label);
        if (c->servers[i] == NULL) {
            return cnd_conf_err(cf, self, "out of memory");
        }
    }
    return 0;
}


static int
prom_render(void *arg, char **body, size_t *len, const char **ctype)
{
    (void)arg;
    *body = cnd_metrics_render();
    if (*body == NULL) {
        return 500;
    }
    *len = strlen(*body);
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    return 200;
}


/* coredns_plugin_enabled: 1 for every handler of the block (plugins with
 * request hooks), per server and zone.  Referenced by each snapshot that
 * starts and let go by each that stops, so a reload keeps the ones both
 * have and drops the others. */
static void
prom_enabled(cnd_inst_t *self, bool start)
{
    prom_conf_t *c = self->conf;
    cnd_mstore_t *st = cnd_main_metrics();
    if (st == NULL) {
        return;
    }
    size_t nchain;
    const cnd_inst_t *chain = cnd_server_chain(self->srv, &nchain);
    for (size_t s = 0; s < c->nservers; s++) {
        for (size_t z = 0; z < c->nzones; z++) {
            for (size_t i = 0; i < nchain; i++) {
                const cnd_plugin_t *p = chain[i].plugin;
                if (p->query == NULL && p->response == NULL &&
                    p->finish == NULL) {
                    continue;
                }
                cnd_series_t *m =
                    cnd_metric_series_ref(st, &prom_m_enabled, c->servers[s],
                                          c->zones[z].name, "", p->name, NULL);
                if (m == NULL) {
                    continue;
                }
                cnd_gauge_set(m, 1);
                if (!start) {
                    /* the reference of the start, and this lookup's */
                    cnd_metric_series_unref(st, m);
                    cnd_metric_series_unref(st, m);
                }
            }
        }
    }
}


static int
prom_start(cnd_conf_t *cf, cnd_inst_t *self)
{
    prom_conf_t *c = self->conf;
    char err[256];
    if (cnd_http_serve(c->addr, "/metrics", prom_render, NULL, err,
                       sizeof(err)) != 0) {
        return cnd_conf_err(cf, self, "%s", err);
    }
    cnd_mstore_t *st = cnd_main_metrics();
    if (st != NULL) {
        char gcc[32];
        snprintf(gcc, sizeof(gcc), "gcc%d.%d.%d", __GNUC__, __GNUC_MINOR__,
                 __GNUC_PATCHLEVEL__);
        cnd_series_t *b = cnd_metric_series(
            st, &prom_m_build, cnd_version_number, cnd_revision, gcc, NULL);
        if (b != NULL) {
            cnd_gauge_set(b, 1);
        }
        cnd_metric_series(st, &prom_m_panics, NULL);
    }
    prom_enabled(self, true);
    return 0;
}


static void
prom_stop(cnd_inst_t *self)
{
    prom_conf_t *c = self->conf;
    prom_enabled(self, false);
    cnd_http_unserve(c->addr, "/metrics");
}


static int
prom_worker_init(cnd_worker_t *w, cnd_inst_t *self, void **wdata)
{
    prom_conf_t *c = self->conf;
    prom_worker_t *pw = calloc(1, sizeof(*pw));
    if (pw == NULL) {
        return -1;
    }
    pw->st = cnd_worker_metrics(w);
    pw->zs = calloc((c->nzones + 1) * c->nservers, sizeof(*pw->zs));
    if (pw->zs == NULL) {
        free(pw);
        return -1;
    }
    *wdata = pw;
    return 0;
}


static void
prom_worker_fini(cnd_worker_t *w, cnd_inst_t *self, void *wdata)
{
    (void)w;
    (void)self;
    prom_worker_t *pw = wdata;
    free(pw->zs);
    free(pw);
}


/* Which listen address of the block the query came to (@local). */
static size_t
prom_server_of(const struct sockaddr_storage *local, const prom_conf_t *c)
{
    for (size_t i = 0; i < c->nbinds; i++) {
        if (cnd_addr_same_ip(&c->binds[i], local)) {
            return i;
        }
    }
    return 0;
}


static cnd_series_t *
prom_responses(prom_worker_t *pw, prom_zs_t *zs, const char *server,
               const char *zone, uint16_t rcode, const char *plugin)
{
    for (unsigned i = 0; i < zs->nresp; i++) {
        if (zs->resp[i].rcode == rcode && zs->resp[i].plugin == plugin) {
            return zs->resp[i].s;
        }
    }
    char buf[16];
    cnd_series_t *s =
        cnd_metric_series(pw->st, &prom_m_responses, server, zone, "",
                          cnd_rcode_str(rcode, buf, sizeof(buf)),
                          plugin != NULL ? plugin : "", NULL);
    if (s != NULL && zs->nresp < PROM_NRESP) {
        zs->resp[zs->nresp].rcode = rcode;
        zs->resp[zs->nresp].plugin = plugin;
        zs->resp[zs->nresp++].s = s;
    }
    return s;
}


/* Look a series up the first time, then keep it. */
#define PROM_SERIES(slot, ...)                                                 \
    ((slot) != NULL ? (slot) : ((slot) = cnd_metric_series(__VA_ARGS__, NULL)))


/* Count one answer: a request's (prom_finish), or the REFUSED of a query
 * no block took (prom_unrouted, r->zone NULL). */
static void
prom_count(cnd_req_t *r, cnd_inst_t *self, prom_worker_t *pw)
{
    prom_conf_t *c = self->conf;
    /* CoreDNS counts a query no block took under zone "dropped". */
    size_t zi = r->zone != NULL ? (size_t)(r->zone - c->zones) : c->nzones;
    if (zi > c->nzones) {
        return;
    }
    size_t si = prom_server_of(&r->local, c);
    prom_zs_t *zs = &pw->zs[zi * c->nservers + si];
    const char *server = c->servers[si];
    const char *zone = r->zone != NULL ? r->zone->name : "dropped";
    bool tcp = r->proto == CND_PROTO_TCP;
    bool v6 = r->remote.ss_family == AF_INET6;
    const char *proto = tcp ? "tcp" : "udp";

    size_t t = 0;
    while (t < PROM_NTYPES - 1 && prom_types[t].type != r->qtype) {
        t++;
    }
    const char *tname = t < PROM_NTYPES - 1 ? prom_types[t].name : "other";
    cnd_series_t *s;
    if ((s = PROM_SERIES(zs->req[t][tcp][v6], pw->st, &prom_m_requests, server,
                         zone, "", proto, v6 ? "2" : "1", tname)) != NULL) {
        cnd_counter_add(s, 1);
    }
    if (r->do_bit && (s = PROM_SERIES(zs->do_req, pw->st, &prom_m_do, server,
                                      zone, "")) != NULL) {
        cnd_counter_add(s, 1);
    }
    if ((s = PROM_SERIES(zs->req_size[tcp], pw->st, &prom_m_req_size, server,
                         zone, "", proto)) != NULL) {
        cnd_histogram_observe(s, (double)r->qlen);
    }
    if ((s = PROM_SERIES(zs->resp_size[tcp], pw->st, &prom_m_resp_size, server,
                         zone, "", proto)) != NULL) {
        cnd_histogram_observe(s, (double)r->out_len);
    }
    if ((s = PROM_SERIES(zs->duration, pw->st, &prom_m_duration, server, zone,
                         "")) != NULL) {
        cnd_histogram_observe(s, (double)(uv_hrtime() - r->start_ns) / 1e9);
    }
    s = prom_responses(pw, zs, server, zone, cnd_req_rcode(r), r->answered_by);
    if (s != NULL) {
        cnd_counter_add(s, 1);
    }
}


static void
prom_finish(cnd_req_t *r, cnd_inst_t *self)
{
    if (r->proto != CND_PROTO_INTERNAL && r->zone != NULL) {
        prom_count(r, self, cnd_req_wdata(r, self));
    }
}


static void
prom_unrouted(cnd_req_t *r, cnd_inst_t *self)
{
    if (r->proto != CND_PROTO_INTERNAL) {
        prom_count(r, self, cnd_req_wdata(r, self));
    }
}


/* For "candor doctor": where the endpoint is. */
static void
prom_facts(const cnd_inst_t *self, void (*emit)(void *ud, const cnd_fact_t *f),
           void *ud)
{
    const prom_conf_t *c = self->conf;
    emit(ud, &(cnd_fact_t){
                 .kind = CND_FACT_HTTP, .text = c->addr, .path = "/metrics"});
}


const cnd_plugin_t cnd_plugin_prometheus = {
    .name = "prometheus",
    .flags = CND_PLUGIN_ONCE,
    .conf_size = sizeof(prom_conf_t),
    .parse = prom_parse,
    .init = prom_init,
    .start = prom_start,
    .stop = prom_stop,
    .worker_init = prom_worker_init,
    .worker_fini = prom_worker_fini,
    .finish = prom_finish,
    .unrouted = prom_unrouted,
    .facts = prom_facts,
};
