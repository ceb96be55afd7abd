/* SPDX-License-Identifier: MIT */
/*
 * core/conf.c - build a config snapshot from Corefile text.
 *
 * Steps, in CoreDNS's order:
 *   1. parse the text into server blocks (corefile/), unknown directives
 *      failing there;
 *   2. normalise every key into zones: scheme, port, reverse zones of a
 *      CIDR;
 *   3. for each plugin of plugin.cfg in order, for each block that uses
 *      it: make the instance(s) and run parse() over its tokens;
 *   4. build each block's chain (plugins with request hooks), run init();
 *   5. refuse a zone+port served twice, and group zones by listen address.
 * Any error stops the load and leaves its text in the caller's buffer.
 */
#include "core/conf.h"
#include "dns/zone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/duration.h"
#include "util/log.h"

const char cnd_default_corefile[] = ". {\n"
                                    "    bind 127.0.0.1\n"
                                    "    whoami\n"
                                    "    log\n"
                                    "    errors\n"
                                    "}\n";


/* ---- errors ----------------------------------------------------------- */

static int conf_errf(cnd_conf_t *cf, const char *file, int line,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int conf_plugin_errf(cnd_conf_t *cf, const char *plugin,
                            const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
conf_errf(cnd_conf_t *cf, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnd_cf_verr(cf->err, cf->errlen, NULL, file, line, fmt, ap);
    va_end(ap);
    return -1;
}


/* As conf_errf(), for plugin @plugin ("plugin/NAME: " first). */
static int
conf_plugin_errf(cnd_conf_t *cf, const char *plugin, const char *file, int line,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnd_cf_verr(cf->err, cf->errlen, plugin, file, line, fmt, ap);
    va_end(ap);
    return -1;
}


int
cnd_conf_err(cnd_conf_t *cf, const cnd_inst_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnd_cf_verr(cf->err, cf->errlen, self->plugin->name, self->file, self->line,
                fmt, ap);
    va_end(ap);
    return -1;
}


/* Prefix the error a parse() wrote with "plugin/NAME: ". */
static void
conf_prefix_plugin(cnd_conf_t *cf, const char *name)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", cf->err);
    snprintf(cf->err, cf->errlen, "plugin/%s: %s", name, tmp);
}


/* ---- keys ------------------------------------------------------------- */

/* Where the zones of one key go (cnd_zone_expand's callback). */
typedef struct {
    cnd_conf_t *cf;
    cnd_server_t *srv;
    const cnd_token_t *key;
    uint16_t port;
    size_t *cap;
} conf_key_t;


static int
conf_add_zone(void *ud, const knot_dname_t *zone)
{
    conf_key_t *k = ud;
    cnd_conf_t *cf = k->cf;
    cnd_server_t *srv = k->srv;
    if (srv->nzones == *k->cap) {
        size_t c = *k->cap != 0 ? *k->cap * 2 : 4;
        cnd_zone_t *z = cnd_arena_zalloc(&cf->arena, c * sizeof(*z));
        if (z == NULL) {
            return -ENOMEM;
        }
        if (srv->nzones != 0) {
            memcpy(z, srv->zones, srv->nzones * sizeof(*z));
        }
        srv->zones = z;
        *k->cap = c;
    }
    char text[KNOT_DNAME_TXT_MAXLEN + 1];
    cnd_zone_t *z = &srv->zones[srv->nzones];
    z->dname = cnd_arena_memdup(&cf->arena, zone, knot_dname_size(zone));
    z->name = knot_dname_to_str(text, zone, sizeof(text)) != NULL
                  ? cnd_arena_strdup(&cf->arena, text)
                  : NULL;
    if (z->dname == NULL || z->name == NULL) {
        return -ENOMEM;
    }
    z->port = k->port;
    z->srv = srv;
    z->key = k->key->text;
    srv->nzones++;
    return 0;
}


/* Normalise one key "[scheme://]zone[:port]" into zones of @srv. */
static int
conf_parse_key(cnd_conf_t *cf, cnd_server_t *srv, const cnd_token_t *key,
               size_t *cap)
{
    const char *s = key->text;
    const char *sep = strstr(s, "://");
    if (sep != NULL) {
        size_t sl = (size_t)(sep - s);
        if (sl != 3 || strncmp(s, "dns", 3) != 0) {
            return conf_errf(cf, key->file, key->line,
                             "%s: candor serves dns:// only (plain DNS over "
                             "UDP and TCP); remove the scheme or use dns://",
                             s);
        }
        s = sep + 3;
    }
    char host[512];
    snprintf(host, sizeof(host), "%s", s);
    uint16_t port = cf->opts->dns_port;
    int rc0;
    char *colon = strrchr(host, ':');
    if (colon != NULL && colon[1] == '\0') {
        return conf_errf(cf, key->file, key->line,
                         "expecting data after last colon: \"%s\"", s);
    }
    if (colon != NULL) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end == '\0') {
            if (p < 0 || p > 65535) {
                return conf_errf(cf, key->file, key->line,
                                 "invalid port %ld in \"%s\"", p, s);
            }
            port = (uint16_t)p;
            *colon = '\0';
        }
    }
    if (port == 0 && (rc0 = cnd_port_zero(&port)) != 0) {
        return conf_errf(cf, key->file, key->line,
                         "port 0 in \"%s\": no port to pick: %s", s,
                         strerror(-rc0));
    }
    if (strlen(host) > 255) {
        return conf_errf(cf, key->file, key->line,
                         "specified zone is too long: %zu > 255", strlen(host));
    }
    conf_key_t k = {cf, srv, key, port, cap};
    int rc = cnd_zone_expand(host, conf_add_zone, &k);
    if (rc == -EINVAL) {
        return conf_errf(cf, key->file, key->line,
                         "zone is not a valid domain name: %s",
                         host[0] != '\0' ? host : s);
    }
    if (rc != 0) {
        return conf_errf(cf, key->file, key->line, "out of memory");
    }
    return 0;
}


/* ---- plugins ---------------------------------------------------------- */

const cnd_plugin_entry_t *
cnd_plugin_find(const char *name)
{
    for (const cnd_plugin_entry_t *e = cnd_plugin_table; e->name; e++) {
        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }
    return NULL;
}


bool
cnd_conf_directive_known(const char *name)
{
    return cnd_plugin_find(name) != NULL;
}


cnd_server_t *
cnd_conf_server(cnd_conf_t *cf)
{
    return cf->cur;
}


/* ---- accessors for plugins (core/plugin.h) ----------------------------- */

cnd_arena_t *
cnd_conf_arena(cnd_conf_t *cf)
{
    return &cf->arena;
}


const char *
cnd_conf_file(const cnd_conf_t *cf)
{
    return cf->file;
}


const cnd_corefile_t *
cnd_conf_corefile(const cnd_conf_t *cf)
{
    return &cf->cf;
}


cnd_inst_t *const *
cnd_conf_insts(const cnd_conf_t *cf, size_t *n)
{
    *n = cf->ninsts;
    return cf->insts;
}


cnd_tcp_opts_t *
cnd_server_tcp(cnd_server_t *srv)
{
    return &srv->tcp;
}


cnd_conf_t *
cnd_server_snapshot(const cnd_server_t *srv)
{
    return srv->conf;
}


const cnd_zone_t *
cnd_server_zones(const cnd_server_t *srv, size_t *n)
{
    *n = srv != NULL ? srv->nzones : 0;
    return srv != NULL ? srv->zones : NULL;
}


const struct sockaddr_storage *
cnd_server_binds(const cnd_server_t *srv, size_t *n)
{
    *n = srv->nbinds;
    return srv->binds;
}


const char *
cnd_server_label(const cnd_server_t *srv, size_t i, char *buf, size_t size)
{
    uint16_t port = srv->nzones > 0 ? srv->zones[0].port : 53;
    char ip[INET6_ADDRSTRLEN] = "";
    if (i < srv->nbinds) {
        cnd_addr_str(&srv->binds[i], ip, sizeof(ip), false);
    }
    bool v6 = i < srv->nbinds && srv->binds[i].ss_family == AF_INET6;
    snprintf(buf, size, v6 ? "dns://[%s]:%u" : "dns://%s:%u", ip, port);
    return buf;
}


const cnd_inst_t *
cnd_server_chain(const cnd_server_t *srv, size_t *n)
{
    *n = srv->nchain;
    return srv->chain;
}


int
cnd_conf_add_bind(cnd_conf_t *cf, const struct sockaddr_storage *ss)
{
    cnd_server_t *srv = cf->cur;
    for (size_t i = 0; i < srv->nbinds; i++) {
        if (cnd_addr_equal(&srv->binds[i], ss)) {
            return 0;
        }
    }
    struct sockaddr_storage *b =
        cnd_arena_alloc(&cf->arena, (srv->nbinds + 1) * sizeof(*b));
    if (b == NULL) {
        return -ENOMEM;
    }
    if (srv->nbinds != 0) {
        memcpy(b, srv->binds, srv->nbinds * sizeof(*b));
    }
    b[srv->nbinds++] = *ss;
    srv->binds = b;
    return 0;
}


/* Split a directive's tokens into its lines of use: each starts with the
 * directive's name at the start of a line, outside any block.  Writes the
 * start index of each into @starts (at most @max); returns the count. */
static size_t
conf_occurrences(const cnd_cf_dir_t *dir, size_t *starts, size_t max)
{
    size_t n = 0;
    int nesting = 0;
    for (size_t i = 0; i < dir->ntokens; i++) {
        const cnd_token_t *t = &dir->tokens[i];
        bool line_start = i == 0 ||
                          strcmp(t->file, dir->tokens[i - 1].file) != 0 ||
                          t->line > dir->tokens[i - 1].line;
        if (nesting == 0 && line_start && strcmp(t->text, dir->name) == 0) {
            if (n < max) {
                starts[n] = i;
            }
            n++;
        }
        if (strcmp(t->text, "{") == 0) {
            nesting++;
        } else if (strcmp(t->text, "}") == 0 && nesting > 0) {
            nesting--;
        }
    }
    return n;
}


/* Make one instance of @p in @srv over tokens [@from, @to) and parse. */
static int
conf_instance(cnd_conf_t *cf, cnd_server_t *srv, const cnd_plugin_t *p,
              const cnd_cf_dir_t *dir, size_t from, size_t to,
              cnd_inst_t ***list, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap != 0 ? *cap * 2 : 16;
        cnd_inst_t **v = realloc(*list, c * sizeof(*v));
        if (v == NULL) {
            return conf_errf(cf, cf->file, 0, "out of memory");
        }
        *list = v;
        *cap = c;
    }
    cnd_inst_t *in = cnd_arena_zalloc(&cf->arena, sizeof(*in));
    if (in == NULL) {
        return conf_errf(cf, cf->file, 0, "out of memory");
    }
    in->plugin = p;
    in->srv = srv;
    in->file = dir->tokens[from].file;
    in->line = dir->tokens[from].line;
    in->slot = UINT_MAX;
    if (p->conf_size != 0) {
        in->conf = cnd_arena_zalloc(&cf->arena, p->conf_size);
        if (in->conf == NULL) {
            return conf_errf(cf, cf->file, 0, "out of memory");
        }
    }
    (*list)[(*n)++] = in;
    if (p->parse != NULL) {
        cnd_disp_t d;
        cnd_disp_init(&d, dir->tokens + from, to - from, cf->err, cf->errlen);
        cf->cur = srv;
        int rc = p->parse(cf, &d, in->conf);
        cf->cur = NULL;
        if (rc != 0) {
            conf_prefix_plugin(cf, p->name);
            return -1;
        }
    }
    return 0;
}


/* Step 3: every plugin in plugin.cfg order, every block that uses it. */
static int
conf_setup_plugins(cnd_conf_t *cf, cnd_inst_t ***out, size_t *nout)
{
    cnd_inst_t **list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    for (const cnd_plugin_entry_t *e = cnd_plugin_table; e->name; e++) {
        for (size_t s = 0; s < cf->nservers; s++) {
            cnd_server_t *srv = &cf->servers[s];
            const cnd_cf_dir_t *dir = NULL;
            for (size_t i = 0; i < srv->cf->ndirs; i++) {
                if (strcmp(srv->cf->dirs[i].name, e->name) == 0) {
                    dir = &srv->cf->dirs[i];
                }
            }
            if (dir == NULL) {
                continue;
            }
            const cnd_token_t *t0 = &dir->tokens[0];
            if (e->plugin == NULL) {
                rc = conf_errf(cf, t0->file, t0->line,
                               "plugin/%s: this CoreDNS plugin is not in "
                               "candor yet; remove it from the Corefile "
                               "(candor -plugins lists what is)",
                               e->name);
                goto out;
            }
            size_t starts[256];
            size_t occ = conf_occurrences(dir, starts, 256);
            if (occ > 256) {
                rc = conf_errf(cf, t0->file, t0->line,
                               "plugin/%s: used more than 256 times", e->name);
                goto out;
            }
            if ((e->plugin->flags & CND_PLUGIN_ONCE) && occ > 1) {
                const cnd_token_t *t = &dir->tokens[starts[1]];
                rc = conf_plugin_errf(cf, e->name, t->file, t->line,
                                      "this plugin can only be used once "
                                      "per Server Block");
                goto out;
            }
            if (e->plugin->flags & CND_PLUGIN_PER_LINE) {
                for (size_t o = 0; o < occ && rc == 0; o++) {
                    size_t to = o + 1 < occ ? starts[o + 1] : dir->ntokens;
                    rc = conf_instance(cf, srv, e->plugin, dir, starts[o], to,
                                       &list, &n, &cap);
                }
            } else {
                rc = conf_instance(cf, srv, e->plugin, dir, 0, dir->ntokens,
                                   &list, &n, &cap);
            }
            if (rc != 0) {
                goto out;
            }
        }
    }
out:
    /* Even on failure: every instance made gets its fini(). */
    *out = list;
    *nout = n;
    return rc;
}


/* The plugin of @srv whose prefetch hook the batch calls
 * (cnd_server_t.prefetch): the first of its chain with one. */
static void
conf_prefetch(cnd_server_t *srv)
{
    srv->prefetch = NULL;
    for (size_t i = 0; i < srv->nchain && srv->prefetch == NULL; i++) {
        if (srv->chain[i].plugin->prefetch != NULL) {
            srv->prefetch = &srv->chain[i];
        }
    }
}


/* Step 4: chains, worker slots and init(). */
static int
conf_build_chains(cnd_conf_t *cf, cnd_inst_t **list, size_t n)
{
    cf->insts = cnd_arena_alloc(&cf->arena, (n + 1) * sizeof(*cf->insts));
    if (cf->insts == NULL) {
        return conf_errf(cf, cf->file, 0, "out of memory");
    }
    for (size_t s = 0; s < cf->nservers; s++) {
        cnd_server_t *srv = &cf->servers[s];
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            const cnd_plugin_t *p = list[i]->plugin;
            if (list[i]->srv == srv &&
                (p->query != NULL || p->response != NULL ||
                 p->finish != NULL)) {
                len++;
            }
        }
        srv->chain =
            cnd_arena_zalloc(&cf->arena, (len + 1) * sizeof(*srv->chain));
        if (srv->chain == NULL) {
            return conf_errf(cf, cf->file, 0, "out of memory");
        }
    }
    /* Instances live inside the chain arrays once they have hooks, so
     * a request walks one contiguous array. */
    for (size_t i = 0; i < n; i++) {
        cnd_inst_t *in = list[i];
        cnd_server_t *srv = in->srv;
        const cnd_plugin_t *p = in->plugin;
        in->wslot = (unsigned)i;
        if (p->query != NULL || p->response != NULL || p->finish != NULL) {
            in->slot = (unsigned)srv->nchain;
            srv->chain[srv->nchain] = *in;
            in = &srv->chain[srv->nchain++];
        }
        if (p->flags & CND_PLUGIN_ANY_CLASS) {
            srv->any_class = true;
        }
        cf->insts[i] = in;
    }
    cf->ninsts = n; /* from here the snapshot runs every fini() */
    for (size_t s = 0; s < cf->nservers; s++) {
        conf_prefetch(&cf->servers[s]);
    }
    for (size_t i = 0; i < n; i++) {
        cnd_inst_t *in = cf->insts[i];
        if (in->plugin->init != NULL && in->plugin->init(cf, in) != 0) {
            return -1;
        }
    }
    return 0;
}


/* Step 5: a zone+port served twice, then listeners. */
static int
conf_build_listens(cnd_conf_t *cf)
{
    /* Duplicates: the same zone and port on overlapping addresses. */
    for (size_t a = 0; a < cf->nservers; a++) {
        const cnd_server_t *sa = &cf->servers[a];
        for (size_t za = 0; za < sa->nzones; za++) {
            for (size_t b = a; b < cf->nservers; b++) {
                const cnd_server_t *sb = &cf->servers[b];
                for (size_t zb = (a == b ? za + 1 : 0); zb < sb->nzones; zb++) {
                    const cnd_zone_t *x = &sa->zones[za], *y = &sb->zones[zb];
                    if (x->port != y->port ||
                        !knot_dname_is_equal(x->dname, y->dname)) {
                        continue;
                    }
                    bool overlap = sa->nbinds == 0 || sb->nbinds == 0;
                    for (size_t i = 0; i < sa->nbinds && !overlap; i++) {
                        for (size_t j = 0; j < sb->nbinds && !overlap; j++) {
                            overlap =
                                cnd_addr_equal(&sa->binds[i], &sb->binds[j]);
                        }
                    }
                    if (overlap) {
                        const cnd_token_t *k = &sb->cf->keys[0];
                        return conf_errf(cf, k->file, k->line,
                                         "cannot serve dns://%s:%u - it is "
                                         "already defined",
                                         y->name, y->port);
                    }
                }
            }
        }
    }

    /* Every (address, port) a zone needs. */
    size_t cap = 0;
    for (size_t s = 0; s < cf->nservers; s++) {
        cnd_server_t *srv = &cf->servers[s];
        struct sockaddr_storage any;
        memset(&any, 0, sizeof(any));
        any.ss_family = AF_INET6; /* [::], dual-stack */
        size_t nb = srv->nbinds != 0 ? srv->nbinds : 1;
        for (size_t z = 0; z < srv->nzones; z++) {
            cnd_zone_t *zone = &srv->zones[z];
            for (size_t b = 0; b < nb; b++) {
                struct sockaddr_storage addr =
                    srv->nbinds != 0 ? srv->binds[b] : any;
                cnd_addr_set_port(&addr, zone->port);
                cnd_listen_t *l = NULL;
                for (size_t i = 0; i < cf->nlistens; i++) {
                    if (cnd_addr_equal(&cf->listens[i].addr, &addr)) {
                        l = &cf->listens[i];
                    }
                }
                if (l == NULL) {
                    if (cf->nlistens == cap) {
                        size_t c = cap != 0 ? cap * 2 : 4;
                        cnd_listen_t *v =
                            cnd_arena_zalloc(&cf->arena, c * sizeof(*v));
                        if (v == NULL) {
                            return conf_errf(cf, cf->file, 0, "out of memory");
                        }
                        if (cf->nlistens != 0) {
                            memcpy(v, cf->listens, cf->nlistens * sizeof(*v));
                        }
                        cf->listens = v;
                        cap = c;
                    }
                    l = &cf->listens[cf->nlistens++];
                    l->addr = addr;
                    l->addrlen = addr.ss_family == AF_INET
                                     ? sizeof(struct sockaddr_in)
                                     : sizeof(struct sockaddr_in6);
                    cnd_addr_str(&addr, l->name, sizeof(l->name), true);
                    l->tcp = srv->tcp;
                }
                cnd_zone_t **zv =
                    cnd_arena_alloc(&cf->arena, (l->nzones + 1) * sizeof(*zv));
                if (zv == NULL) {
                    return conf_errf(cf, cf->file, 0, "out of memory");
                }
                if (l->nzones != 0) {
                    memcpy(zv, l->zones, l->nzones * sizeof(*zv));
                }
                zv[l->nzones++] = zone;
                l->zones = zv;
                l->any_class |= srv->any_class;
                for (size_t i = 0; i < srv->nchain && l->unrouted == NULL;
                     i++) {
                    if (srv->chain[i].plugin->unrouted != NULL) {
                        l->unrouted = &srv->chain[i];
                    }
                }
            }
        }
    }
    return 0;
}


const cnd_zone_t *
cnd_listen_route(const cnd_listen_t *l, const knot_dname_t *qname,
                 uint16_t qtype)
{
    /* Longest suffix first: walk qname label by label towards the root
     * and take the first suffix that is a zone.  For DS the parent side
     * answers, so a zone equal to the whole name is only the fallback. */
    const cnd_zone_t *fallback = NULL;
    const knot_dname_t *suffix = qname;
    for (;;) {
        for (size_t i = 0; i < l->nzones; i++) {
            if (knot_dname_is_equal(l->zones[i]->dname, suffix)) {
                if (qtype == KNOT_RRTYPE_DS && suffix == qname &&
                    *suffix != 0) {
                    fallback = l->zones[i];
                    break;
                }
                return l->zones[i];
            }
        }
        if (*suffix == 0) {
            break;
        }
        suffix = knot_wire_next_label(suffix, NULL);
    }
    return fallback;
}


/* ---- periodic jobs ---------------------------------------------------- */

int
cnd_conf_every(cnd_conf_t *cf, int64_t interval_ns, cnd_tick_fn fn, void *arg)
{
    cnd_ticker_t *t = cnd_arena_zalloc(&cf->arena, sizeof(*t));
    if (t == NULL) {
        return -ENOMEM;
    }
    t->interval_ms =
        interval_ns > 1000000 ? (uint64_t)(interval_ns / 1000000) : 1;
    t->fn = fn;
    t->arg = arg;
    t->next = cf->tickers;
    cf->tickers = t;
    return 0;
}


void
cnd_conf_every_stop(cnd_conf_t *cf, cnd_tick_fn fn, void *arg)
{
    for (cnd_ticker_t *t = cf->tickers; t != NULL; t = t->next) {
        if (t->fn == fn && t->arg == arg) {
            t->stopped = true;
            if (cf->tickers_started) {
                uv_timer_stop(&t->timer); /* closed with the others */
            }
        }
    }
}


static void
conf_tick_cb(uv_timer_t *h)
{
    cnd_ticker_t *t = h->data;
    t->fn(t->arg);
}


void
cnd_conf_tickers_start(cnd_conf_t *cf, uv_loop_t *loop)
{
    for (cnd_ticker_t *t = cf->tickers; t != NULL; t = t->next) {
        uv_timer_init(loop, &t->timer);
        t->timer.data = t;
        if (!t->stopped) {
            uv_timer_start(&t->timer, conf_tick_cb, t->interval_ms,
                           t->interval_ms);
        }
    }
    cf->tickers_started = true;
}


static void
conf_ticker_closed(uv_handle_t *h)
{
    (void)h;
}


void
cnd_conf_tickers_stop(cnd_conf_t *cf)
{
    if (!cf->tickers_started) {
        return;
    }
    for (cnd_ticker_t *t = cf->tickers; t != NULL; t = t->next) {
        uv_close((uv_handle_t *)&t->timer, conf_ticker_closed);
    }
    cf->tickers_started = false;
}


void
cnd_conf_lameduck(cnd_conf_t *cf, int64_t ns)
{
    if (ns > cf->lameduck_ns) {
        cf->lameduck_ns = ns;
    }
}


char *
cnd_conf_read(const char *path, size_t *len)
{
    if (strcmp(path, CND_BUILTIN_FILE) == 0) {
        *len = strlen(cnd_default_corefile);
        return strdup(cnd_default_corefile);
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        errno = EISDIR;
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    *len = fread(buf, 1, (size_t)st.st_size, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}


/* ---- load ------------------------------------------------------------- */

void
cnd_conf_ref(cnd_conf_t *cf)
{
    atomic_fetch_add(&cf->refs, 1);
}


void
cnd_conf_unref(cnd_conf_t *cf)
{
    if (cf == NULL || atomic_fetch_sub(&cf->refs, 1) != 1) {
        return;
    }
    for (size_t i = cf->ninsts; i-- > 0;) {
        cnd_inst_t *in = cf->insts[i];
        if (in->plugin->fini != NULL) {
            in->plugin->fini(in);
        }
    }
    cnd_arena_deinit(&cf->arena);
    free(cf);
}


cnd_conf_t *
cnd_conf_load(const cnd_opts_t *opts, const char *file, const char *text,
              size_t len, char *err, size_t errlen)
{
    cnd_conf_t *cf = calloc(1, sizeof(*cf));
    if (cf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cnd_arena_init(&cf->arena, NULL, 0, 16384);
    atomic_init(&cf->refs, 1);
    cf->opts = opts;
    cf->err = err;
    cf->errlen = errlen;
    cf->file = cnd_arena_strdup(&cf->arena, file);
    cf->text = cnd_arena_strndup(&cf->arena, text, len);
    err[0] = '\0';
    cnd_inst_t **list = NULL;
    size_t ninst = 0;

    if (cf->file == NULL || cf->text == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cnd_corefile_parse(&cf->arena, file, text, len,
                           cnd_conf_directive_known, &cf->cf, err,
                           errlen) != 0) {
        goto fail;
    }
    if (cf->cf.nblocks == 0) {
        snprintf(err, errlen,
                 "%s: no server blocks: add one such as \". {\" "
                 "... \"}\" (see the README)",
                 file);
        goto fail;
    }
    cf->nservers = cf->cf.nblocks;
    cf->servers =
        cnd_arena_zalloc(&cf->arena, cf->nservers * sizeof(*cf->servers));
    if (cf->servers == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cf->nservers; i++) {
        cnd_server_t *srv = &cf->servers[i];
        srv->conf = cf;
        srv->index = (unsigned)i;
        srv->cf = &cf->cf.blocks[i];
        srv->tcp = (cnd_tcp_opts_t){
            .read_ns = 3 * CND_NS_PER_SEC,
            .write_ns = 5 * CND_NS_PER_SEC,
            .idle_ns = 10 * CND_NS_PER_SEC,
            .max_queries = -1,
        };
        size_t cap = 0;
        for (size_t k = 0; k < srv->cf->nkeys; k++) {
            if (conf_parse_key(cf, srv, &srv->cf->keys[k], &cap) != 0) {
                goto fail;
            }
        }
    }
    if (conf_setup_plugins(cf, &list, &ninst) != 0 ||
        conf_build_chains(cf, list, ninst) != 0 ||
        conf_build_listens(cf) != 0) {
        goto fail;
    }
    free(list);
    cf->err = NULL;
    cf->errlen = 0;
    return cf;

fail:
    if (cf->ninsts == 0) {
        /* Failed before the chains: fini() what parse() made. */
        for (size_t i = ninst; i-- > 0;) {
            if (list[i]->plugin->fini != NULL) {
                list[i]->plugin->fini(list[i]);
            }
        }
    }
    free(list);
    cnd_conf_unref(cf);
    return NULL;
}
