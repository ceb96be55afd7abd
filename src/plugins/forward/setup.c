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

#include "core/conf.h"
#include "core/zone.h"
#include "dns/msg.h"
#include "plugins/forward/forward.h"
#include "util/duration.h"
#include "util/log.h"


/* ---- TO ---------------------------------------------------------------- */

/* Parse an IP with an optional port into @ss.  "1.2.3.4", "1.2.3.4:53",
 * "::1", "[::1]:53"; an IPv6 zone ("%eth0") is dropped.  Returns 0 or
 * -EINVAL. */
static int
fwd_parse_addr(const char *s, uint16_t def_port, struct sockaddr_storage *ss,
               socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 16];
    long port = def_port;
    const char *colon = strrchr(s, ':');
    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || (size_t)(close - s - 1) >= sizeof(host)) {
            return -EINVAL;
        }
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        if (close[1] == ':') {
            char *end;
            port = strtol(close + 2, &end, 10);
            if (close[2] == '\0' || *end != '\0') {
                return -EINVAL;
            }
        } else if (close[1] != '\0') {
            return -EINVAL;
        }
    } else if (colon != NULL && strchr(s, ':') == colon) {
        /* one colon: IPv4 with a port */
        size_t hl = (size_t)(colon - s);
        char *end;
        if (hl >= sizeof(host)) {
            return -EINVAL;
        }
        memcpy(host, s, hl);
        host[hl] = '\0';
        port = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0') {
            return -EINVAL;
        }
    } else {
        snprintf(host, sizeof(host), "%s", s);
    }
    char *pct = strchr(host, '%');
    if (pct != NULL) {
        *pct = '\0';
    }
    if (port < 1 || port > 65535) {
        return -EINVAL;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof(*in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
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


/* The nameserver lines of a resolv.conf file.  Returns 0 (possibly
 * none), 1 when @path is not a readable file, -1 on a reported error. */
static int
fwd_resolv_conf(cnd_conf_t *cf, cnd_disp_t *d, fwd_conf_t *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        return 1;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return cnd_disp_err(d, "failed to open file \"%s\": %s", path,
                            strerror(errno));
    }
    const char *file = cnd_arena_strdup(&cf->arena, path);
    char line[512];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        char key[32], val[256];
        if (sscanf(line, "%31s %255s", key, val) != 2 ||
            strcmp(key, "nameserver") != 0) {
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t len;
        if (fwd_parse_addr(val, FWD_DEFAULT_PORT, &ss, &len) != 0 ||
            strchr(val, ']') != NULL) {
            continue; /* not an address: skipped, as miekg/dns does */
        }
        rc = fwd_add_upstream(d, c, &ss, len, false, NULL, file);
    }
    fclose(f);
    return rc;
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
        servername = cnd_arena_strdup(&cf->arena, name);
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

static int
fwd_rcodes(cnd_disp_t *d, uint32_t *mask, const char *prop)
{
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


/* A Go duration argument that must not be negative. */
static int
fwd_duration(cnd_disp_t *d, const char *prop, int64_t *out)
{
    if (!cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    int64_t ns;
    if (cnd_duration_parse(cnd_disp_val(d), &ns) != 0) {
        return cnd_disp_err(d, "time: invalid duration \"%s\"",
                            cnd_disp_val(d));
    }
    if (ns < 0) {
        char buf[32];
        return cnd_disp_err(d, "%s can't be negative: %s", prop,
                            cnd_duration_format(ns, buf, sizeof(buf)));
    }
    *out = ns;
    return 0;
}


static int
fwd_uint(cnd_disp_t *d, const char *prop, unsigned *out)
{
    if (!cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    const char *v = cnd_disp_val(d);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0) {
        return cnd_disp_err(d,
                            "strconv.ParseUint: parsing \"%s\": invalid "
                            "syntax",
                            v);
    }
    if (n < 0) {
        return cnd_disp_err(d, "%s can't be negative: %lld", prop, n);
    }
    if (n > 0xffffffffLL) {
        return cnd_disp_err(d, "%s: %s is out of range", prop, v);
    }
    *out = (unsigned)n;
    return 0;
}


static int
fwd_flag(cnd_disp_t *d, bool *out)
{
    if (cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    *out = true;
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
            cnd_arena_alloc(&z->cf->arena, cap * sizeof(*v));
        if (v == NULL) {
            return -ENOMEM;
        }
        if (z->n) {
            memcpy(v, z->v, z->n * sizeof(*v));
        }
        z->v = v;
        z->cap = cap;
    }
    z->v[z->n] = cnd_arena_memdup(&z->cf->arena, zone, knot_dname_size(zone));
    return z->v[z->n++] != NULL ? 0 : -ENOMEM;
}


static int
fwd_property(cnd_conf_t *cf, cnd_disp_t *d, fwd_conf_t *c, fwd_zones_t *except)
{
    const char *p = cnd_disp_val(d);
    if (strcmp(p, "except") == 0) {
        const char **names;
        long n = cnd_conf_args(cf, d, &names);
        if (n == 0) {
            return cnd_disp_arg_err(d);
        }
        for (long i = 0; i < n; i++) {
            int rc = cnd_zone_expand(names[i], fwd_zone_keep, except);
            if (rc != 0 && rc != -EINVAL) {
                return cnd_disp_err(d, "out of memory");
            }
        }
        c->except = except->v;
        c->nexcept = except->n;
        return 0;
    }
    if (strcmp(p, "max_fails") == 0) {
        return fwd_uint(d, p, &c->max_fails);
    }
    if (strcmp(p, "max_connect_attempts") == 0) {
        return fwd_uint(d, p, &c->max_attempts);
    }
    if (strcmp(p, "max_idle_conns") == 0) {
        return fwd_uint(d, p, &c->max_idle);
    }
    if (strcmp(p, "max_concurrent") == 0) {
        return fwd_uint(d, p, &c->max_concurrent);
    }
    if (strcmp(p, "expire") == 0) {
        return fwd_duration(d, p, &c->expire_ns);
    }
    if (strcmp(p, "max_age") == 0) {
        return fwd_duration(d, p, &c->max_age_ns);
    }
    if (strcmp(p, "read_timeout") == 0) {
        int rc = fwd_duration(d, p, &c->read_timeout_ns);
        if (rc == 0 && c->read_timeout_ns == 0) {
            return cnd_disp_err(d, "read_timeout must be positive");
        }
        return rc;
    }
    if (strcmp(p, "force_tcp") == 0) {
        return fwd_flag(d, &c->force_tcp);
    }
    if (strcmp(p, "prefer_udp") == 0) {
        return fwd_flag(d, &c->prefer_udp);
    }
    if (strcmp(p, "failfast_all_unhealthy_upstreams") == 0) {
        return fwd_flag(d, &c->failfast);
    }
    if (strcmp(p, "next") == 0) {
        return fwd_rcodes(d, &c->next_rcodes, p);
    }
    if (strcmp(p, "failover") == 0) {
        return fwd_rcodes(d, &c->failover_rcodes, p);
    }
    if (strcmp(p, "policy") == 0) {
        if (!cnd_disp_next_arg(d)) {
            return cnd_disp_arg_err(d);
        }
        const char *v = cnd_disp_val(d);
        if (strcmp(v, "random") == 0) {
            c->policy = FWD_POLICY_RANDOM;
        } else if (strcmp(v, "round_robin") == 0) {
            c->policy = FWD_POLICY_ROUND_ROBIN;
        } else if (strcmp(v, "sequential") == 0) {
            c->policy = FWD_POLICY_SEQUENTIAL;
        } else {
            return cnd_disp_err(d, "unknown policy '%s'", v);
        }
        return 0;
    }
    if (strcmp(p, "health_check") == 0) {
        int rc = fwd_duration(d, "health_check", &c->hc_interval_ns);
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
                    cnd_arena_alloc(&cf->arena, KNOT_DNAME_MAXLEN);
                if (dn == NULL ||
                    knot_dname_from_str(dn, cnd_disp_val(d),
                                        KNOT_DNAME_MAXLEN) == NULL) {
                    return cnd_disp_err(d,
                                        "health_check: invalid domain name "
                                        "%s",
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
    if (strcmp(p, "tls") == 0) {
        const char *args[4];
        size_t n = cnd_disp_args(d, args, 4);
        if (n > 3) {
            return cnd_disp_arg_err(d);
        }
        /* CoreDNS: none = system roots; one = CA; two = cert, key; three =
         * cert, key, CA. */
        c->tls_ca = n == 1 ? args[0] : n == 3 ? args[2] : NULL;
        c->tls_cert = n >= 2 ? args[0] : NULL;
        c->tls_key = n >= 2 ? args[1] : NULL;
        return 0;
    }
    if (strcmp(p, "tls_servername") == 0) {
        if (!cnd_disp_next_arg(d)) {
            return cnd_disp_arg_err(d);
        }
        c->tls_servername = cnd_disp_val(d);
        return 0;
    }
    if (strcmp(p, "source_address") == 0) {
        if (!cnd_disp_next_arg(d)) {
            return cnd_disp_arg_err(d);
        }
        socklen_t len;
        char with_port[96];
        snprintf(with_port, sizeof(with_port), "%s", cnd_disp_val(d));
        if (fwd_parse_addr(with_port, 1, &c->source, &len) != 0) {
            return cnd_disp_err(d, "source_address: not an IP address: %s",
                                cnd_disp_val(d));
        }
        if (c->source.ss_family == AF_INET) {
            ((struct sockaddr_in *)&c->source)->sin_port = 0;
        } else {
            ((struct sockaddr_in6 *)&c->source)->sin6_port = 0;
        }
        return 0;
    }
    return cnd_disp_err(d, "unknown property '%s'", p);
}


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
    fwd_zones_t except = {cf, NULL, 0, 0};
    while (cnd_disp_next_block(d)) {
        if (fwd_property(cf, d, c, &except) != 0) {
            return -1;
        }
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

static bool
fwd_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *in6 = (const void *)ss;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}


static uint16_t
fwd_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET
                     ? ((const struct sockaddr_in *)ss)->sin_port
                     : ((const struct sockaddr_in6 *)ss)->sin6_port);
}


static bool
fwd_same_ip(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family) {
        return false;
    }
    if (a->ss_family == AF_INET) {
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    }
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}


/* Does @up point at this server block's own listener? */
static bool
fwd_is_self(const cnd_server_t *srv, const fwd_upstream_t *up)
{
    uint16_t port = fwd_port(&up->addr);
    bool port_match = false;
    for (size_t z = 0; z < srv->nzones; z++) {
        port_match |= srv->zones[z].port == port;
    }
    if (!port_match) {
        return false;
    }
    if (srv->nbinds > 0) {
        for (size_t b = 0; b < srv->nbinds; b++) {
            if (fwd_same_ip(&up->addr,
                            (const struct sockaddr *)&srv->binds[b])) {
                return true;
            }
        }
        return false;
    }
    /* Listening on every address: any address of this host. */
    if (fwd_is_loopback(&up->addr)) {
        return true;
    }
    struct ifaddrs *ifs;
    bool self = false;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i != NULL && !self; i = i->ifa_next) {
            self = i->ifa_addr != NULL && fwd_same_ip(&up->addr, i->ifa_addr);
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
        } else if (up->file != NULL && fwd_is_loopback(&up->addr)) {
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
    .ctl = fwd_ctl,
};
