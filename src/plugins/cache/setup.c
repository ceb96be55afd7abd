/* SPDX-License-Identifier: MIT */
/*
 * plugins/cache/setup.c - the cache line of a Corefile.
 *
 *     cache [TTL] [ZONES...] {
 *         success CAPACITY [TTL [MINTTL]]
 *         denial CAPACITY [TTL [MINTTL]]
 *         prefetch AMOUNT [[DURATION] [PERCENTAGE%]]
 *         serve_stale [DURATION] [immediate [RESPONSE_TTL [RECHECK]] |
 *                                 verify [TIMEOUT [RESPONSE_TTL [RECHECK]]]]
 *         servfail DURATION
 *         disable success|denial [ZONES...]
 *         keepttl
 *     }
 *
 * CoreDNS's defaults: 9984 entries each, TTL at most 3600 s (success) and
 * 1800 s (denial), at least 5 s; SERVFAIL remembered 5 s.  candor's own:
 * a stale answer carries TTL 30 (RFC 8767; CoreDNS 0), a failed refresh
 * is retried after 30 s, and verify waits 1.8 s (the RFC's client
 * response timer) before serving stale.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "dns/zone.h"
#include "plugins/cache/cache.h"
#include "util/duration.h"


/* Go's strconv.Atoi: a whole decimal number. */
static int
cache_atoi(cnd_disp_t *d, const char *s, long long *out)
{
    const char *p = s + (*s == '-' || *s == '+');
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*p == '\0' || *end != '\0' || errno != 0) {
        return cnd_disp_err(d, "strconv.Atoi: parsing \"%s\": invalid syntax",
                            s);
    }
    *out = v;
    return 0;
}


/* A duration in seconds: a Go duration, whole seconds taken. */
static int
cache_secs(cnd_disp_t *d, const char *s, uint32_t *out, const char *what)
{
    int64_t ns;
    if (cnd_duration_parse(s, &ns) != 0) {
        return cnd_disp_err(d, "invalid value for %s: %s", what, s);
    }
    if (ns < 0) {
        return cnd_disp_err(d, "invalid negative duration for %s: %s", what, s);
    }
    *out = (uint32_t)(ns / CND_NS_PER_SEC);
    return 0;
}


/* Zones collected from arguments (cnd_zone_expand's callback). */
typedef struct {
    cnd_conf_t *cf;
    cache_zones_t *z;
    size_t cap;
} cache_zone_ctx_t;


static int
cache_zone_keep(void *ud, const knot_dname_t *zone)
{
    cache_zone_ctx_t *c = ud;
    if (c->z->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        const knot_dname_t **v =
            cnd_arena_alloc(cnd_conf_arena(c->cf), cap * sizeof(*v));
        if (v == NULL) {
            return -ENOMEM;
        }
        if (c->z->n) {
            memcpy(v, c->z->v, c->z->n * sizeof(*v));
        }
        c->z->v = v;
        c->cap = cap;
    }
    c->z->v[c->z->n] =
        cnd_arena_memdup(cnd_conf_arena(c->cf), zone, knot_dname_size(zone));
    return c->z->v[c->z->n++] != NULL ? 0 : -ENOMEM;
}


static int
cache_zones_add(cnd_conf_t *cf, cnd_disp_t *d, cache_zones_t *z,
                const char *const *names, size_t n)
{
    cache_zone_ctx_t c = {cf, z, z->n};
    for (size_t i = 0; i < n; i++) {
        int rc = cnd_zone_expand(names[i], cache_zone_keep, &c);
        if (rc == -EINVAL) {
            return cnd_disp_err(d, "invalid zone: %s", names[i]);
        }
        if (rc != 0) {
            return cnd_disp_err(d, "out of memory");
        }
    }
    return 0;
}


/* success/denial CAPACITY [TTL [MINTTL]] */
static int
cache_prop_kind(cnd_disp_t *d, uint32_t *cap, uint32_t *ttl, uint32_t *min)
{
    const char *args[4];
    size_t n = cnd_disp_args(d, args, 4);
    long long v;
    if (n == 0 || n > 3) {
        return cnd_disp_arg_err(d);
    }
    if (cache_atoi(d, args[0], &v) != 0) {
        return -1;
    }
    if (v < 0) {
        return cnd_disp_err(d, "cache capacity can not be negative: %lld", v);
    }
    *cap = (uint32_t)v;
    if (n > 1) {
        if (cache_atoi(d, args[1], &v) != 0) {
            return -1;
        }
        if (v <= 0) {
            return cnd_disp_err(d,
                                "cache TTL can not be zero or negative: "
                                "%lld",
                                v);
        }
        *ttl = (uint32_t)v;
    }
    if (n > 2) {
        if (cache_atoi(d, args[2], &v) != 0) {
            return -1;
        }
        if (v < 0) {
            return cnd_disp_err(d, "cache min TTL can not be negative: %lld",
                                v);
        }
        *min = (uint32_t)v;
    }
    return 0;
}


static int
cache_prop_success(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    cache_conf_t *c = conf;
    return cache_prop_kind(d, &c->pcap, &c->pttl, &c->minpttl);
}


static int
cache_prop_denial(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    cache_conf_t *c = conf;
    return cache_prop_kind(d, &c->ncap, &c->nttl, &c->minnttl);
}


static int
cache_prop_prefetch(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    cache_conf_t *c = conf;
    const char *args[4];
    size_t n = cnd_disp_args(d, args, 4);
    long long v;
    if (n == 0 || n > 3) {
        return cnd_disp_arg_err(d);
    }
    if (cache_atoi(d, args[0], &v) != 0) {
        return -1;
    }
    if (v < 0) {
        return cnd_disp_err(d, "prefetch amount should be positive: %lld", v);
    }
    c->prefetch = (uint32_t)v;
    for (size_t i = 1; i < n; i++) {
        size_t l = strlen(args[i]);
        if (args[i][l - 1] == '%') {
            char num[16];
            snprintf(num, sizeof(num), "%.*s", (int)(l - 1), args[i]);
            if (cache_atoi(d, num, &v) != 0) {
                return -1;
            }
            if (v < 10 || v > 90) {
                return cnd_disp_err(d,
                                    "percentage should fall in range "
                                    "[10, 90]: %lld",
                                    v);
            }
            c->prefetch_pct = (uint32_t)v;
        } else if (i == 1) {
            if (cache_secs(d, args[i], &c->prefetch_gap, "prefetch") != 0) {
                return -1;
            }
        } else {
            return cnd_disp_err(d,
                                "last character of percentage should be "
                                "`%%`, but is: '%c'",
                                args[i][l - 1]);
        }
    }
    return 0;
}


/* serve_stale [DURATION] [immediate [TTL [RECHECK]] | verify [TIMEOUT
 * [TTL [RECHECK]]]] */
static int
cache_prop_stale(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    cache_conf_t *c = conf;
    const char *args[6];
    size_t n = cnd_disp_args(d, args, 6);
    if (n > 5) {
        return cnd_disp_arg_err(d);
    }
    c->stale = CACHE_STALE_IMMEDIATE;
    size_t i = 0;
    if (i < n && strcmp(args[i], "immediate") != 0 &&
        strcmp(args[i], "verify") != 0) {
        if (cache_secs(d, args[i], &c->stale_max, "serve_stale duration") !=
            0) {
            return -1;
        }
        i++;
    }
    if (i == n) {
        return 0;
    }
    bool verify = strcmp(args[i], "verify") == 0;
    if (!verify && strcmp(args[i], "immediate") != 0) {
        return cnd_disp_err(d, "invalid value for serve_stale refresh mode: %s",
                            args[i]);
    }
    c->stale = verify ? CACHE_STALE_VERIFY : CACHE_STALE_IMMEDIATE;
    i++;
    if (verify && i < n) {
        int64_t ns;
        if (cnd_duration_parse(args[i], &ns) != 0 || ns < 0) {
            return cnd_disp_err(d,
                                "invalid value for serve_stale verify "
                                "timeout: %s",
                                args[i]);
        }
        c->verify_ms = (uint32_t)(ns / CND_NS_PER_MS);
        i++;
    }
    if (i < n) {
        if (cache_secs(d, args[i], &c->stale_ttl, "serve_stale response ttl") !=
            0) {
            return -1;
        }
        if (c->stale_ttl == 0) {
            return cnd_disp_err(d, "serve_stale response ttl must be above "
                                   "0 (RFC 8767)");
        }
        i++;
    }
    if (i < n) {
        if (cache_secs(d, args[i], &c->stale_recheck,
                       "serve_stale failure recheck") != 0) {
            return -1;
        }
        if (c->stale_recheck > 300) {
            return cnd_disp_err(d, "serve_stale failure recheck must be at "
                                   "most 5m (RFC 8767)");
        }
        i++;
    }
    return i == n ? 0 : cnd_disp_arg_err(d);
}


/* servfail DURATION: at most 5 minutes. */
static int
cache_prop_servfail(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    const char *a[2];
    if (cnd_disp_args(d, a, 2) != 1) {
        return cnd_disp_arg_err(d);
    }
    if (cache_secs(d, a[0], field, "servfail") != 0) {
        return -1;
    }
    if (*(uint32_t *)field > 300) {
        return cnd_disp_err(d, "caching SERVFAIL responses over 5 minutes "
                               "is not permitted");
    }
    return 0;
}


/* disable success|denial [ZONES...] */
static int
cache_prop_disable(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    cache_conf_t *c = conf;
    const char **a;
    long m = cnd_conf_args(cf, d, &a);
    if (m < 1) {
        return cnd_disp_arg_err(d);
    }
    cache_zones_t *z = strcmp(a[0], "success") == 0  ? &c->no_success
                       : strcmp(a[0], "denial") == 0 ? &c->no_denial
                                                     : NULL;
    if (z == NULL) {
        return cnd_disp_err(d, "cache type for disable must be \"success\" "
                               "or \"denial\"");
    }
    static const char *const root[] = {"."};
    return m > 1 ? cache_zones_add(cf, d, z, a + 1, (size_t)(m - 1))
                 : cache_zones_add(cf, d, z, root, 1);
}


/* An unknown property is CoreDNS's ArgErr, as its cache's setup says. */
static const cnd_prop_t cache_props[] = {
    {"success", cache_prop_success, 0},
    {"denial", cache_prop_denial, 0},
    {"prefetch", cache_prop_prefetch, 0},
    {"serve_stale", cache_prop_stale, 0},
    {"servfail", cache_prop_servfail, offsetof(cache_conf_t, servfail_ttl)},
    {"disable", cache_prop_disable, 0},
    {"keepttl", cnd_prop_flag, offsetof(cache_conf_t, keepttl)},
    {NULL, cnd_prop_arg_err, 0},
};


static int
cache_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    cache_conf_t *c = conf;
    c->pcap = c->ncap = 10000;
    c->pttl = 3600;
    c->nttl = 1800;
    c->minpttl = c->minnttl = 5;
    c->servfail_ttl = 5;
    c->prefetch_gap = 60;
    c->prefetch_pct = 10;
    c->stale_max = 3600;
    c->stale_ttl = 30;
    c->stale_recheck = 30;
    c->verify_ms = 1800;

    cnd_disp_next(d); /* "cache" (once per block) */
    const char **args;
    long n = cnd_conf_args(cf, d, &args);
    if (n < 0) {
        return cnd_disp_err(d, "out of memory");
    }
    long first = 0;
    long long ttl;
    if (n > 0 && args[0][strspn(args[0], "-+0123456789")] == '\0') {
        if (cache_atoi(d, args[0], &ttl) != 0) {
            return -1;
        }
        if (ttl <= 0) {
            return cnd_disp_err(d,
                                "cache TTL can not be zero or negative: "
                                "%lld",
                                ttl);
        }
        c->pttl = c->nttl = (uint32_t)ttl;
        first = 1;
    }
    if (n > first) {
        if (cache_zones_add(cf, d, &c->zones, args + first,
                            (size_t)(n - first)) != 0) {
            return -1;
        }
    } else {
        size_t nzones;
        const cnd_zone_t *zones =
            cnd_server_zones(cnd_conf_server(cf), &nzones);
        for (size_t i = 0; i < nzones; i++) {
            const char *z = zones[i].name;
            if (cache_zones_add(cf, d, &c->zones, &z, 1) != 0) {
                return -1;
            }
        }
    }
    return cnd_props_block(cf, d, cache_props, c);
}


static int
cache_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    cache_conf_t *c = self->conf;
    c->success = calloc(1, sizeof(*c->success));
    c->denial = calloc(1, sizeof(*c->denial));
    if (c->success == NULL || c->denial == NULL ||
        cache_store_init(c->success, c->pcap) != 0 ||
        cache_store_init(c->denial, c->ncap) != 0) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    /* Metric labels, as CoreDNS's: the server and the zones. */
    cnd_server_label(self->srv, 0, c->server, sizeof(c->server));
    size_t o = 0;
    for (size_t i = 0; i < c->zones.n && o < sizeof(c->zones_label); i++) {
        char name[KNOT_DNAME_TXT_MAXLEN + 1];
        knot_dname_to_str(name, c->zones.v[i], sizeof(name));
        o += (size_t)snprintf(c->zones_label + o, sizeof(c->zones_label) - o,
                              "%s%s", i ? "," : "", name);
    }
    return 0;
}


static void
cache_fini(cnd_inst_t *self)
{
    cache_conf_t *c = self->conf;
    /* A reload starts an empty cache: its entries leave the gauge. */
    if (c->success != NULL && c->denial != NULL) {
        cache_entries_forget(c, c->success, cache_store_count(c->success));
        cache_entries_forget(c, c->denial, cache_store_count(c->denial));
    }
    cache_store_free(c->success);
    cache_store_free(c->denial);
    free(c->success);
    free(c->denial);
    c->success = c->denial = NULL;
}


const cnd_plugin_t cnd_plugin_cache = {
    .name = "cache",
    .flags = CND_PLUGIN_ONCE,
    .conf_size = sizeof(cache_conf_t),
    .ctx_size = sizeof(cache_ctx_t),
    .parse = cache_parse,
    .init = cache_init,
    .fini = cache_fini,
    .worker_init = cache_worker_init,
    .worker_fini = cache_worker_fini,
    .query = cache_query,
    .prefetch = cache_prefetch_hook,
    .response = cache_response,
    .cancel = cache_cancel,
    .ctl = cache_ctl,
};
