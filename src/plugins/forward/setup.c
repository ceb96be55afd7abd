/* SPDX-License-Identifier: MIT */
/*
 * plugins/forward/setup.c - the forward line of a Corefile.
 *
 *     forward FROM TO... { properties }
 *
 * FROM is the zone whose names go upstream.  Each TO is an address
 * ("1.2.3.4", "1.2.3.4:5353", "[::1]:53", "dns://...", "tls://1.2.3.4",
 * "tls://1.2.3.4%dns.example:853") or a file in resolv.conf format whose
 * nameserver lines are read now, at load.  Several forward lines make
 * several chain entries, in Corefile order.  Errors are CoreDNS's, with
 * the file and line.  init() loads the TLS credentials and warns about
 * targets that likely loop back to this server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/plugin.h"
#include "dns/zone.h"
#include "dns/msg.h"
#include "plugins/forward/forward.h"
#include "util/duration.h"
#include "util/log.h"
#include "util/resolvconf.h"


/* ---- TO ---------------------------------------------------------------- */

/* An IP with an optional port ("1.2.3.4", "1.2.3.4:53", "::1",
 * "[::1]:53"; an IPv6 zone is dropped) into @ss.  Port 0 is refused.
 * Returns 0 or -EINVAL. */
static int
fwd_parse_addr(const char *s, uint16_t def_port, struct sockaddr_storage *ss,
               socklen_t *len)
{
    if (cnd_addr_parse(s, def_port, 0, ss, len, NULL, 0) != CND_ADDR_OK ||
        cnd_addr_port(ss) == 0) {
        return -EINVAL;
    }
    return 0;
}


/* Add one upstream, skipping duplicates. */
static int
fwd_add_upstream(cnd_disp_t *d, fwd_conf_t *c,
                 const struct sockaddr_storage *ss, socklen_t len, bool tls,
                 const char *servername, const char *file)
{
    for (size_t i = 0; i < c->nups; i++) {
        if (c->ups[i].addrlen == len && c->ups[i].tls == tls &&
            memcmp(&c->ups[i].addr, ss, len) == 0) {
            return 0;
        }
    }
    if (c->nups == FWD_MAX_UPSTREAMS) {
        /* CoreDNS counts them all first; the count is at least this. */
        return cnd_disp_err(d, "more than %d TOs configured: %zu",
                            FWD_MAX_UPSTREAMS, c->nups + 1);
    }
    fwd_upstream_t *u = &c->ups[c->nups];
    u->addr = *ss;
    u->addrlen = len;
    u->tls = tls;
    u->servername = servername;
    u->file = file;
    u->index = (unsigned)c->nups;
    cnd_addr_str(ss, u->name, sizeof(u->name), true);
    atomic_init(&u->fails, 0);
    atomic_init(&u->checking, false);
    atomic_init(&u->last_reply_ns, 0);
    atomic_init(&u->srtt_us, 0);
    atomic_init(&u->rttvar_us, 0);
    c->nups++;
    return 0;
}


/* Reading a resolv.conf given as TO (cnd_resolv_conf_read's callback).
 * Stack, for one parse(). */
typedef struct {
    cnd_disp_t *d;
    fwd_conf_t *c;
    const char *file;
} fwd_resolv_t;


static int
fwd_resolv_one(void *ud, const char *addr)
{
    fwd_resolv_t *x = ud;
    struct sockaddr_storage ss;
    socklen_t len;
    if (strchr(addr, ']') != NULL ||
        fwd_parse_addr(addr, FWD_DEFAULT_PORT, &ss, &len) != 0) {
        return 0; /* not an address: skipped, as miekg/dns does */
    }
    /* 1 stops the reading: the error is reported */
    return fwd_add_upstream(x->d, x->c, &ss, len, false, NULL, x->file) != 0;
}


/* The nameserver lines of a resolv.conf file.  Returns 0 (possibly
 * none), 1 when @path is not a readable file, -1 on a reported error. */
static int
fwd_resolv_conf(cnd_conf_t *cf, cnd_disp_t *d, fwd_conf_t *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        return 1;
    }
    fwd_resolv_t x = {d, c, cnd_arena_strdup(cnd_conf_arena(cf), path)};
    int rc = cnd_resolv_conf_read(path, fwd_resolv_one, &x);
    if (rc < 0) {
        return cnd_disp_err(d, "failed to open file \"%s\": %s", path,
                            strerror(-rc));
    }
    return rc == 0 ? 0 : -1;
}


/* One TO argument. */
static int
fwd_parse_to(cnd_conf_t *cf, cnd_disp_t *d, fwd_conf_t *c, const char *to)
{
    const char *host = to;
    bool tls = false;
    const char *sep = strstr(to, "://");
    if (sep != NULL) {
        size_t sl = (size_t)(sep - to);
        if (sl == 3 && strncmp(to, "tls", 3) == 0) {
            tls = true;
        } else if (sl != 3 || strncmp(to, "dns", 3) != 0) {
            char scheme[16];
            snprintf(scheme, sizeof(scheme), "%.*s", (int)sl, to);
            return cnd_disp_err(d,
                                "'%s' is not supported as a destination "
                                "protocol in forward: %s",
                                scheme, to);
        }
        host = sep + 3;
    }
    if (host[0] == '\0') {
        return cnd_disp_err(d, "invalid address: \"%s\"", to);
    }
    /* tls://IP%servername[:port] */
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", host);
    const char *servername = NULL;
    char *pct = tls ? strchr(buf, '%') : NULL;
    if (pct != NULL && strchr(buf, '[') == NULL) {
        char *name = pct + 1;
        char *port = strchr(name, ':');
        char rest[512] = "";
        if (port != NULL) {
            snprintf(rest, sizeof(rest), "%s", port);
            *port = '\0';
        }
        servername = cnd_arena_strdup(cnd_conf_arena(cf), name);
        snprintf(pct, sizeof(buf) - (size_t)(pct - buf), "%s", rest);
    }
    struct sockaddr_storage ss;
    socklen_t len;
    if (fwd_parse_addr(buf, tls ? FWD_DEFAULT_TLS_PORT : FWD_DEFAULT_PORT, &ss,
                       &len) == 0) {
        return fwd_add_upstream(d, c, &ss, len, tls, servername, NULL);
    }
    if (!tls) {
        int rc = fwd_resolv_conf(cf, d, c, host);
        if (rc <= 0) {
            return rc;
        }
    }
    return cnd_disp_err(d, "not an IP address or file: \"%s\"", host);
}


/* ---- properties ------------------------------------------------------- */

/* next / failover RCODE...: a bit per rcode. */
static int
fwd_prop_rcodes(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    uint32_t *mask = field;
    const char *prop = cnd_disp_val(d);
    const char *args[32];
    size_t n = cnd_disp_args(d, args, 32);
    if (n == 0 || n > 32) {
        return cnd_disp_arg_err(d);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = cnd_rcode_parse(args[i]);
        if (rc < 0) {
            return cnd_disp_err(d, "%s: %s is not a valid rcode", prop,
                                args[i]);
        }
        if (strcmp(prop, "failover") == 0 && rc == KNOT_RCODE_NOERROR) {
            return cnd_disp_err(d, "NoError cannot be used in failover");
        }
        *mask |= 1u << rc;
    }
    return 0;
}


/* Zones collected from arguments (cnd_zone_expand's callback). */
typedef struct {
    cnd_conf_t *cf;
    const knot_dname_t **v;
    size_t n, cap;
} fwd_zones_t;


static int
fwd_zone_keep(void *ud, const knot_dname_t *zone)
{
    fwd_zones_t *z = ud;
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 4;
        const knot_dname_t **v =
            cnd_arena_alloc(cnd_conf_arena(z->cf), cap * sizeof(*v));
        if (v == NULL) {
            return -ENOMEM;
        }
        if (z->n) {
            memcpy(v, z->v, z->n * sizeof(*v));
        }
        z->v = v;
        z->cap = cap;
    }
    z->v[z->n] =
        cnd_arena_memdup(cnd_conf_arena(z->cf), zone, knot_dname_size(zone));
    return z->v[z->n++] != NULL ? 0 : -ENOMEM;
}


static int
fwd_prop_except(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    fwd_conf_t *c = conf;
    const char **names;
    long n = cnd_conf_args(cf, d, &names);
    if (n == 0) {
        return cnd_disp_arg_err(d);
    }
    fwd_zones_t z = {cf, c->except, c->nexcept, c->nexcept};
    for (long i = 0; i < n; i++) {
        int rc = cnd_zone_expand(names[i], fwd_zone_keep, &z);
        if (rc != 0 && rc != -EINVAL) {
            return cnd_disp_err(d, "out of memory");
        }
    }
    c->except = z.v;
    c->nexcept = z.n;
    return 0;
}


static int
fwd_prop_read_timeout(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    int rc = cnd_prop_duration(cf, d, field);
    if (rc == 0 && *(int64_t *)field == 0) {
        return cnd_disp_err(d, "read_timeout must be positive");
    }
    return rc;
}


static int
fwd_prop_policy(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    fwd_policy_t *policy = field;
    if (!cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    const char *v = cnd_disp_val(d);
    if (strcmp(v, "random") == 0) {
        *policy = FWD_POLICY_RANDOM;
    } else if (strcmp(v, "round_robin") == 0) {
        *policy = FWD_POLICY_ROUND_ROBIN;
    } else if (strcmp(v, "sequential") == 0) {
        *policy = FWD_POLICY_SEQUENTIAL;
    } else {
        return cnd_disp_err(d, "unknown policy '%s'", v);
    }
    return 0;
}


/* health_check DURATION [no_rec] [domain NAME] */
static int
fwd_prop_health_check(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    fwd_conf_t *c = conf;
    int rc = cnd_prop_duration(cf, d, &c->hc_interval_ns);
    if (rc != 0) {
        return rc;
    }
    while (cnd_disp_next_arg(d)) {
        const char *o = cnd_disp_val(d);
        if (strcmp(o, "no_rec") == 0) {
            c->hc_no_rec = true;
        } else if (strcmp(o, "domain") == 0) {
            if (!cnd_disp_next_arg(d)) {
                return cnd_disp_arg_err(d);
            }
            knot_dname_t *dn =
                cnd_arena_alloc(cnd_conf_arena(cf), KNOT_DNAME_MAXLEN);
            if (dn == NULL || knot_dname_from_str(dn, cnd_disp_val(d),
                                                  KNOT_DNAME_MAXLEN) == NULL) {
                return cnd_disp_err(d, "health_check: invalid domain name %s",
                                    cnd_disp_val(d));
            }
            knot_dname_to_lower(dn);
            c->hc_domain = dn;
        } else {
            return cnd_disp_err(d, "health_check: unknown option %s", o);
        }
    }
    return 0;
}


/* tls [CERT KEY] [CA]: none = system roots; one = CA; two = cert, key;
 * three = cert, key, CA (CoreDNS). */
static int
fwd_prop_tls(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    fwd_conf_t *c = conf;
    const char *args[4];
    size_t n = cnd_disp_args(d, args, 4);
    if (n > 3) {
        return cnd_disp_arg_err(d);
    }
    c->tls_ca = n == 1 ? args[0] : n == 3 ? args[2] : NULL;
    c->tls_cert = n >= 2 ? args[0] : NULL;
    c->tls_key = n >= 2 ? args[1] : NULL;
    return 0;
}


static int
fwd_prop_source(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    struct sockaddr_storage *source = field;
    if (!cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    socklen_t len;
    if (fwd_parse_addr(cnd_disp_val(d), 1, source, &len) != 0) {
        return cnd_disp_err(d, "source_address: not an IP address: %s",
                            cnd_disp_val(d));
    }
    cnd_addr_set_port(source, 0);
    return 0;
}


#define FWD_AT(field) offsetof(fwd_conf_t, field)

static const cnd_prop_t fwd_props[] = {
    {"except", fwd_prop_except, 0},
    {"max_fails", cnd_prop_uint, FWD_AT(max_fails)},
    {"max_connect_attempts", cnd_prop_uint, FWD_AT(max_attempts)},
    {"max_idle_conns", cnd_prop_uint, FWD_AT(max_idle)},
    {"max_concurrent", cnd_prop_uint, FWD_AT(max_concurrent)},
    {"expire", cnd_prop_duration, FWD_AT(expire_ns)},
    {"max_age", cnd_prop_duration, FWD_AT(max_age_ns)},
    {"read_timeout", fwd_prop_read_timeout, FWD_AT(read_timeout_ns)},
    {"force_tcp", cnd_prop_flag, FWD_AT(force_tcp)},
    {"prefer_udp", cnd_prop_flag, FWD_AT(prefer_udp)},
    {"failfast_all_unhealthy_upstreams", cnd_prop_flag, FWD_AT(failfast)},
    {"next", fwd_prop_rcodes, FWD_AT(next_rcodes)},
    {"failover", fwd_prop_rcodes, FWD_AT(failover_rcodes)},
    {"policy", fwd_prop_policy, FWD_AT(policy)},
    {"health_check", fwd_prop_health_check, 0},
    {"tls", fwd_prop_tls, 0},
    {"tls_servername", cnd_prop_string, FWD_AT(tls_servername)},
    {"source_address", fwd_prop_source, FWD_AT(source)},
    {NULL, NULL, 0},
};


static int
fwd_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    fwd_conf_t *c = conf;
    c->expire_ns = 10 * CND_NS_PER_SEC;
    c->read_timeout_ns = 2 * CND_NS_PER_SEC;
    c->max_fails = 2;
    c->hc_interval_ns = 500 * CND_NS_PER_MS;
    c->policy = FWD_POLICY_RANDOM;
    atomic_init(&c->concurrent, 0);
    atomic_init(&c->rr, 0);

    cnd_disp_next(d); /* "forward": one line per instance */
    c->file = cnd_disp_file(d);
    c->line = cnd_disp_line(d);
    if (!cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    c->from_text = cnd_disp_val(d);
    /* FROM may be a CIDR of several zones: CoreDNS takes the first. */
    fwd_zones_t from = {cf, NULL, 0, 0};
    if (cnd_zone_expand(c->from_text, fwd_zone_keep, &from) != 0 ||
        from.n == 0) {
        return cnd_disp_err(d, "unable to normalize '%s'", c->from_text);
    }
    c->from = from.v[0];
    if (from.n > 1) {
        char name[KNOT_DNAME_TXT_MAXLEN + 1];
        knot_dname_to_str(name, c->from, sizeof(name));
        cnd_log(CND_LOG_WARNING, "forward",
                "Unsupported CIDR notation: '%s' expands to multiple zones. "
                "Using only '%s'.",
                c->from_text, name);
    }

    const char **to;
    long n = cnd_conf_args(cf, d, &to);
    if (n <= 0) {
        return n < 0 ? cnd_disp_err(d, "out of memory") : cnd_disp_arg_err(d);
    }
    for (long i = 0; i < n; i++) {
        if (fwd_parse_to(cf, d, c, to[i]) != 0) {
            return -1;
        }
    }
    if (c->nups == 0) {
        return cnd_disp_err(d, "no valid upstream addresses found");
    }
    if (cnd_props_block(cf, d, fwd_props, c) != 0) {
        return -1;
    }
    if (c->max_attempts == 0) {
        c->max_attempts = 2 * (unsigned)c->nups;
    }
    if (c->hc_domain == NULL) {
        static const knot_dname_t root[1] = {0};
        c->hc_domain = root;
    }
    for (size_t i = 0; i < c->nups; i++) {
        fwd_upstream_t *up = &c->ups[i];
        if (up->tls && up->servername != NULL && c->tls_servername != NULL) {
            return cnd_disp_err(d,
                                "both the server name in tls://...%%%s and "
                                "tls_servername '%s' are set; keep one",
                                up->servername, c->tls_servername);
        }
        if (up->tls && up->servername == NULL) {
            up->servername = c->tls_servername;
        }
    }
    return 0;
}


/* ---- init ------------------------------------------------------------- */

/* Does @up point at this server block's own listener? */
static bool
fwd_is_self(const cnd_server_t *srv, const fwd_upstream_t *up)
{
    uint16_t port = cnd_addr_port(&up->addr);
    bool port_match = false;
    size_t nzones, nbinds;
    const cnd_zone_t *zones = cnd_server_zones(srv, &nzones);
    const struct sockaddr_storage *binds = cnd_server_binds(srv, &nbinds);
    for (size_t z = 0; z < nzones; z++) {
        port_match |= zones[z].port == port;
    }
    if (!port_match) {
        return false;
    }
    if (nbinds > 0) {
        for (size_t b = 0; b < nbinds; b++) {
            if (cnd_addr_same_ip(&up->addr, &binds[b])) {
                return true;
            }
        }
        return false;
    }
    /* Listening on every address: any address of this host. */
    if (cnd_addr_is_loopback(&up->addr)) {
        return true;
    }
    struct ifaddrs *ifs;
    bool self = false;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i != NULL && !self; i = i->ifa_next) {
            /* ifa_addr is as long as its family's sockaddr: all that
             * cnd_addr_same_ip() reads of it. */
            self =
                i->ifa_addr != NULL &&
                cnd_addr_same_ip(
                    &up->addr,
                    (const struct sockaddr_storage *)(const void *)i->ifa_addr);
        }
        freeifaddrs(ifs);
    }
    return self;
}


static int
fwd_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    fwd_conf_t *c = self->conf;
    for (size_t i = 0; i < c->nups; i++) {
        const fwd_upstream_t *up = &c->ups[i];
        if (fwd_is_self(self->srv, up)) {
            cnd_log(CND_LOG_WARNING, "forward",
                    "%s:%d: %s%s%s is this server's own listener: queries "
                    "forwarded there come back here and loop; forward to a "
                    "real resolver",
                    self->file, self->line, up->name, up->file ? " from " : "",
                    up->file ? up->file : "");
        } else if (up->file != NULL && cnd_addr_is_loopback(&up->addr)) {
            cnd_log(CND_LOG_WARNING, "forward",
                    "%s:%d: %s lists %s, a resolver on this host's loopback "
                    "(a local stub such as systemd-resolved): in a pod or "
                    "behind a stub this likely loops back here; point "
                    "forward (or the kubelet's --resolv-conf) at the real "
                    "upstreams, e.g. /run/systemd/resolve/resolv.conf",
                    self->file, self->line, up->file, up->name);
        }
    }
    fwd_loop_init();
    if (fwd_ops_init(cf, self) != 0) {
        return -1;
    }
    bool any_tls = false;
    for (size_t i = 0; i < c->nups; i++) {
        any_tls |= c->ups[i].tls;
    }
    if (!any_tls) {
        return 0;
    }
    int rc = gnutls_certificate_allocate_credentials(&c->creds);
    if (rc < 0) {
        return cnd_conf_err(cf, self, "tls: %s", gnutls_strerror(rc));
    }
    if (c->tls_ca != NULL) {
        rc = gnutls_certificate_set_x509_trust_file(c->creds, c->tls_ca,
                                                    GNUTLS_X509_FMT_PEM);
        if (rc <= 0) {
            return cnd_conf_err(
                cf, self, "tls: cannot load the CA %s: %s", c->tls_ca,
                rc == 0 ? "no certificate in it" : gnutls_strerror(rc));
        }
    } else {
        rc = gnutls_certificate_set_x509_system_trust(c->creds);
        if (rc < 0) {
            return cnd_conf_err(cf, self, "tls: no system trust store: %s",
                                gnutls_strerror(rc));
        }
    }
    if (c->tls_cert != NULL) {
        rc = gnutls_certificate_set_x509_key_file(
            c->creds, c->tls_cert, c->tls_key, GNUTLS_X509_FMT_PEM);
        if (rc < 0) {
            return cnd_conf_err(cf, self, "tls: cannot load %s and %s: %s",
                                c->tls_cert, c->tls_key, gnutls_strerror(rc));
        }
    }
    return 0;
}


static void
fwd_fini(cnd_inst_t *self)
{
    fwd_conf_t *c = self->conf;
    if (c != NULL && c->creds != NULL) {
        gnutls_certificate_free_credentials(c->creds);
        c->creds = NULL;
    }
}


/* For "candor doctor": every upstream, where it came from. */
static void
fwd_facts(const cnd_inst_t *self, void (*emit)(void *ud, const cnd_fact_t *f),
          void *ud)
{
    const fwd_conf_t *c = self->conf;
    for (size_t i = 0; i < c->nups; i++) {
        cnd_fact_t f = {.kind = CND_FACT_UPSTREAM,
                        .text = c->ups[i].name,
                        .addr = &c->ups[i].addr,
                        .file = c->ups[i].file,
                        .zone = c->from_text,
                        .tls = c->ups[i].tls};
        emit(ud, &f);
    }
}


const cnd_plugin_t cnd_plugin_forward = {
    .name = "forward",
    .flags = CND_PLUGIN_PER_LINE | CND_PLUGIN_ANY_CLASS,
    .conf_size = sizeof(fwd_conf_t),
    .ctx_size = sizeof(fwd_ctx_t),
    .parse = fwd_parse,
    .init = fwd_init,
    .fini = fwd_fini,
    .start = fwd_ops_start,
    .stop = fwd_ops_stop,
    .worker_init = fwd_worker_init,
    .worker_fini = fwd_worker_fini,
    .query = fwd_query,
    .cancel = fwd_cancel,
    .describe = fwd_describe,
    .facts = fwd_facts,
    .ctl = fwd_ctl,
};
