/* SPDX-License-Identifier: MIT */
/*
 * plugins/hosts/hosts.c - answer from an /etc/hosts style file.
 *
 * As CoreDNS's hosts: A and AAAA from the entries of a hosts file and of
 * the lines inlined in the Corefile, PTR for their addresses (unless
 * no_reverse), authoritative, with one TTL.  "*.name" entries match one
 * label.  A name with entries but not of the asked type gets NODATA; an
 * unknown name goes to the next plugin with fallthrough, else fails with
 * SERVFAIL (there is no SOA to make an NXDOMAIN from), and the failure
 * record says why; an unknown PTR always goes to the next plugin.
 *
 * Data: the file is read on the main thread, at init() and then from a
 * periodic job (reload, every 5 s by default) that stat()s it and re-reads
 * it when its mtime or size changed.  Each read builds a whole new table
 * (hostsfile.c) from the file's records and the inline ones, parsed once,
 * and swaps it in with cnd_shared_publish(); workers read the current table
 * through their own cnd_shared_view_t, so the query path takes no lock
 * and allocates nothing but the answer's bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "core/plugin.h"
#include "dns/zone.h"
#include "plugins/hosts/hosts.h"
#include "util/duration.h"
#include "util/log.h"

#define HOSTS_DEFAULT_PATH "/etc/hosts"
#define HOSTS_DEFAULT_TTL  3600

/* What init() makes: the shared table and what reloads need.  malloc'd;
 * the stamps are read and written by the main thread only. */
struct cnd_hosts_state_s {
    cnd_shared_t shared;   /* the current table, read by workers   */
    cnd_hosts_list_t inl;  /* inline records: kept by every reload */
    bool loaded;           /* the file was read once               */
    struct timespec mtime; /* of the file last read                */
    off_t size;
};

/* The inline lines while parse() collects them (config arena). */
typedef struct {
    char *buf;
    size_t len, cap;
    size_t lines;
} hosts_text_t;

/* A growing list of zones (config arena). */
typedef struct {
    const knot_dname_t **v;
    size_t n, cap;
} hosts_zones_t;


/* ---- Corefile --------------------------------------------------------- */

/* Go's error text for an errno: strerror, first letter lowercase. */
static const char *
hosts_errstr(int err, char *buf, size_t size)
{
    char tmp[128];
    const char *s = strerror_r(err, tmp, sizeof(tmp));
    snprintf(buf, size, "%s", s);
    if (buf[0] >= 'A' && buf[0] <= 'Z') {
        buf[0] = (char)(buf[0] - 'A' + 'a');
    }
    return buf;
}


static int
hosts_zone_add(cnd_conf_t *cf, hosts_zones_t *zl, const char *text)
{
    uint8_t wire[KNOT_DNAME_MAXLEN];
    if (knot_dname_from_str(wire, text, sizeof(wire)) == NULL) {
        return 0; /* CoreDNS skips what it cannot normalise */
    }
    knot_dname_to_lower(wire);
    if (zl->n == zl->cap) {
        size_t cap = zl->cap != 0 ? zl->cap * 2 : 8;
        const knot_dname_t **v =
            cnd_arena_alloc(cnd_conf_arena(cf), cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        if (zl->n != 0) {
            memcpy(v, zl->v, zl->n * sizeof(*v));
        }
        zl->v = v;
        zl->cap = cap;
    }
    zl->v[zl->n] =
        cnd_arena_memdup(cnd_conf_arena(cf), wire, knot_dname_size(wire));
    return zl->v[zl->n++] != NULL ? 0 : -1;
}


/* Where cnd_zone_expand() puts the zones of an argument. */
typedef struct {
    cnd_conf_t *cf;
    hosts_zones_t *zl;
} hosts_zone_ctx_t;


static int
hosts_zone_keep(void *ud, const knot_dname_t *zone)
{
    hosts_zone_ctx_t *z = ud;
    char text[KNOT_DNAME_TXT_MAXLEN + 1];
    if (knot_dname_to_str(text, zone, sizeof(text)) == NULL) {
        return 0;
    }
    return hosts_zone_add(z->cf, z->zl, text);
}


/* The zones an argument stands for (dns/zone.h); one that is no valid
 * name is skipped, as CoreDNS skips what it cannot normalise. */
static int
hosts_arg_zones(cnd_conf_t *cf, hosts_zones_t *zl, const char *arg)
{
    hosts_zone_ctx_t z = {cf, zl};
    int rc = cnd_zone_expand(arg, hosts_zone_keep, &z);
    return rc == -EINVAL ? 0 : rc;
}


static int
hosts_zones_from_args(cnd_conf_t *cf, const char **args, size_t n,
                      hosts_zones_t *zl)
{
    for (size_t i = 0; i < n; i++) {
        if (hosts_arg_zones(cf, zl, args[i]) != 0) {
            return -1;
        }
    }
    return 0;
}


/* "fallthrough [ZONES...]": no zones means the root.  A later line
 * replaces an earlier one, as in CoreDNS. */
static int
hosts_prop_fallthrough(cnd_conf_t *cf, cnd_disp_t *d, cnd_hosts_conf_t *c)
{
    const char **args;
    long n = cnd_conf_args(cf, d, &args);
    hosts_zones_t zl = {0};
    if (n < 0 || hosts_zones_from_args(cf, args, (size_t)n, &zl) != 0 ||
        (n == 0 && hosts_zone_add(cf, &zl, ".") != 0)) {
        return cnd_disp_err(d, "out of memory");
    }
    c->fall = zl.v;
    c->nfall = zl.n;
    /* Zones that all failed to normalise still mean "fallthrough was
     * given", which is what turns later unknown lines into errors. */
    c->fall_seen = true;
    return 0;
}


/* "no_reverse": takes no arguments; like CoreDNS, whatever follows on the
 * line is read as the next line of the block. */
static int
hosts_prop_no_reverse(cnd_conf_t *cf, cnd_disp_t *d, cnd_hosts_conf_t *c)
{
    (void)cf;
    (void)d;
    c->no_reverse = true;
    return 0;
}


/* Go's strconv.Atoi on a 64-bit host: optional sign, decimal digits. */
static bool
hosts_atoi(const char *s, long long *out)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (*p == '\0' || strspn(p, "0123456789") != strlen(p)) {
        return false;
    }
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE) {
        return false;
    }
    *out = v;
    return true;
}


/* "ttl SECONDS": 1..65535, CoreDNS's texts; extra arguments ignored. */
static int
hosts_prop_ttl(cnd_conf_t *cf, cnd_disp_t *d, cnd_hosts_conf_t *c)
{
    const char **args;
    long n = cnd_conf_args(cf, d, &args);
    long long ttl;
    if (n < 0) {
        return cnd_disp_err(d, "out of memory");
    }
    if (n < 1) {
        return cnd_disp_err(d, "ttl needs a time in second");
    }
    if (!hosts_atoi(args[0], &ttl)) {
        return cnd_disp_err(d, "ttl needs a number of second");
    }
    if (ttl <= 0 || ttl > 65535) {
        return cnd_disp_err(d, "ttl provided is invalid");
    }
    c->ttl = (uint32_t)ttl;
    return 0;
}


/* "reload DURATION": a Go duration, 0 turns reloading off. */
static int
hosts_prop_reload(cnd_conf_t *cf, cnd_disp_t *d, cnd_hosts_conf_t *c)
{
    const char **args;
    long n = cnd_conf_args(cf, d, &args);
    int64_t ns;
    if (n < 0) {
        return cnd_disp_err(d, "out of memory");
    }
    if (n != 1) {
        return cnd_disp_err(d, "reload needs a duration (zero seconds to "
                               "disable)");
    }
    if (cnd_duration_parse(args[0], &ns) != 0) {
        return cnd_disp_err(d, "invalid duration for reload '%s'", args[0]);
    }
    if (ns < 0) {
        return cnd_disp_err(d, "invalid negative duration for reload '%s'",
                            args[0]);
    }
    c->reload_ns = ns;
    return 0;
}


typedef int (*hosts_prop_fn)(cnd_conf_t *cf, cnd_disp_t *d,
                             cnd_hosts_conf_t *c);

static const struct {
    const char *name;
    hosts_prop_fn set;
} hosts_props[] = {
    {"fallthrough", hosts_prop_fallthrough},
    {"no_reverse", hosts_prop_no_reverse},
    {"ttl", hosts_prop_ttl},
    {"reload", hosts_prop_reload},
    {NULL, NULL},
};


static int
hosts_text_add(cnd_conf_t *cf, hosts_text_t *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap != 0 ? t->cap * 2 : 256;
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        char *buf = cnd_arena_alloc(cnd_conf_arena(cf), cap);
        if (buf == NULL) {
            return -1;
        }
        if (t->len != 0) {
            memcpy(buf, t->buf, t->len);
        }
        t->buf = buf;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return 0;
}


/* A block line that is no property: hosts-file content.  CoreDNS joins
 * its tokens with spaces and parses the lines as a hosts file, so a
 * quoted token with spaces or a '#' means the same here. */
static int
hosts_inline_line(cnd_conf_t *cf, cnd_disp_t *d, hosts_text_t *t)
{
    const char *first = cnd_disp_val(d);
    const char **args;
    long n = cnd_conf_args(cf, d, &args);
    if (n < 0 || hosts_text_add(cf, t, first) != 0) {
        return -1;
    }
    for (long i = 0; i < n; i++) {
        if (hosts_text_add(cf, t, " ") != 0 ||
            hosts_text_add(cf, t, args[i]) != 0) {
            return -1;
        }
    }
    t->lines++;
    return hosts_text_add(cf, t, "\n");
}


/* FILE given on the directive: CoreDNS checks it at once but only warns
 * when it is missing or a directory; the inline entries still serve. */
static int
hosts_check_file(cnd_disp_t *d, const char *path)
{
    struct stat sb;
    char why[96];
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT) {
            cnd_log(CND_LOG_WARNING, "hosts", "File does not exist: %s", path);
            return 0;
        }
        return cnd_disp_err(d, "unable to access hosts file '%s': stat %s: %s",
                            path, path, hosts_errstr(errno, why, sizeof(why)));
    }
    if (S_ISDIR(sb.st_mode)) {
        cnd_log(CND_LOG_WARNING, "hosts", "Hosts file \"%s\" is a directory",
                path);
    }
    return 0;
}


static int
hosts_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    cnd_hosts_conf_t *c = conf;
    hosts_text_t text = {0};
    hosts_zones_t zl = {0};
    const char **args;

    c->path = HOSTS_DEFAULT_PATH;
    c->ttl = HOSTS_DEFAULT_TTL;
    c->reload_ns = 5 * CND_NS_PER_SEC;
    cnd_disp_next(d); /* "hosts" */
    long n = cnd_conf_args(cf, d, &args);
    if (n < 0) {
        return cnd_disp_err(d, "out of memory");
    }
    if (n >= 1) {
        c->path = args[0];
        if (hosts_check_file(d, c->path) != 0) {
            return -1;
        }
    }
    if (n >= 2) {
        if (hosts_zones_from_args(cf, args + 1, (size_t)n - 1, &zl) != 0) {
            return cnd_disp_err(d, "out of memory");
        }
    } else {
        size_t nzones;
        const cnd_zone_t *zones =
            cnd_server_zones(cnd_conf_server(cf), &nzones);
        for (size_t i = 0; i < nzones; i++) {
            if (hosts_zone_add(cf, &zl, zones[i].name) != 0) {
                return cnd_disp_err(d, "out of memory");
            }
        }
    }
    c->zones = zl.v;
    c->nzones = zl.n;

    while (cnd_disp_next_block(d)) {
        const char *name = cnd_disp_val(d);
        size_t i = 0;
        while (hosts_props[i].name != NULL &&
               strcmp(hosts_props[i].name, name) != 0) {
            i++;
        }
        if (hosts_props[i].name != NULL) {
            if (hosts_props[i].set(cf, d, c) != 0) {
                return -1;
            }
            continue;
        }
        /* Lines before a fallthrough are hosts entries; after it, CoreDNS
         * takes an unknown word for a mistyped property. */
        if (c->fall_seen) {
            return cnd_disp_err(d, "unknown property '%s'", name);
        }
        if (hosts_inline_line(cf, d, &text) != 0) {
            return cnd_disp_err(d, "out of memory");
        }
    }
    c->inline_text = text.buf;
    c->inline_len = text.len;
    c->inline_lines = text.lines;
    return 0;
}


/* ---- loading ---------------------------------------------------------- */

/* Read all of @fd and parse it into @out.  A read error stops the read
 * (what was read is kept, as CoreDNS keeps it) and is left in @err.
 * Returns 0 or -ENOMEM. */
static int
hosts_read(const cnd_hosts_conf_t *c, int fd, off_t hint, cnd_hosts_list_t *out,
           int *err)
{
    size_t cap = hint > 0 ? (size_t)hint + 1 : 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return -ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            char *b = realloc(buf, cap * 2);
            if (b == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            *err = errno;
            break;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    cnd_hosts_filter_t f = {c->zones, c->nzones};
    int rc = cnd_hosts_parse(buf, len, &f, out);
    free(buf);
    return rc;
}


/* CoreDNS's count of a parsed map: names, plus reverse entries. */
static size_t
hosts_count(const cnd_hosts_list_t *l, bool no_reverse)
{
    size_t n = l->n;
    for (size_t i = 0; i < l->n && !no_reverse; i++) {
        n += l->recs[i].wild ? 0 : 1;
    }
    return n;
}


/* CoreDNS's hosts metrics, set on the main thread each time the file is
 * read, as CoreDNS sets them.  One series each, as CoreDNS's (no labels):
 * with several hosts plugins the last file read is what they show. */
static const cnd_mfamily_t hosts_m_entries = {
    "coredns_hosts_entries",
    "The combined number of entries in hosts and Corefile.",
    CND_METRIC_GAUGE,
    NULL,
    NULL,
    0,
};
static const cnd_mfamily_t hosts_m_reload = {
    "coredns_hosts_reload_timestamp_seconds",
    "The timestamp of the last reload of hosts file.",
    CND_METRIC_GAUGE,
    NULL,
    NULL,
    0,
};


static void
hosts_metrics(size_t entries, const struct timespec *mtime)
{
    cnd_mstore_t *st = cnd_main_metrics();
    cnd_series_t *e =
        st != NULL ? cnd_metric_series(st, &hosts_m_entries) : NULL;
    cnd_series_t *r =
        st != NULL ? cnd_metric_series(st, &hosts_m_reload) : NULL;
    if (e != NULL) {
        cnd_gauge_set(e, (int64_t)entries);
    }
    if (r != NULL) {
        cnd_gauge_set(r, (int64_t)mtime->tv_sec); /* the file's mtime */
    }
}


/* (Re)read the file when it changed and swap a new table in.  At start
 * (@first) a file that cannot be opened still gives a table of the inline
 * entries; later, CoreDNS keeps serving what it has, and so does this.
 * Main thread.  Returns 0, or -1 when the first table cannot be made. */
static int
hosts_load(cnd_hosts_conf_t *c, bool first)
{
    cnd_hosts_state_t *st = c->state;
    cnd_hosts_list_t file = {0};
    struct stat sb;
    int err = 0;
    bool file_read = false;
    char why[64];

    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        err = errno;
        if (fd >= 0) {
            close(fd);
        }
        if (!first) {
            return 0;
        }
    } else if (st->loaded && sb.st_size == st->size &&
               sb.st_mtim.tv_sec == st->mtime.tv_sec &&
               sb.st_mtim.tv_nsec == st->mtime.tv_nsec) {
        close(fd);
        return 0;
    } else {
        int rc = hosts_read(c, fd, sb.st_size, &file, &err);
        close(fd);
        if (rc != 0) {
            cnd_hosts_list_free(&file);
            cnd_log(CND_LOG_ERROR, "hosts",
                    "Failed to parse hosts file \"%s\": out of memory",
                    c->path);
            return first ? -1 : 0;
        }
        if (err != 0) {
            cnd_log(CND_LOG_ERROR, "hosts",
                    "Failed to parse hosts file \"%s\": read %s: %s", c->path,
                    c->path, hosts_errstr(err, why, sizeof(why)));
        }
        st->loaded = true;
        st->mtime = sb.st_mtim;
        st->size = sb.st_size;
        file_read = true;
    }

    cnd_hosts_table_t *t = cnd_hosts_table_new(&file, &st->inl, c->no_reverse);
    size_t parsed = hosts_count(&file, c->no_reverse);
    cnd_hosts_list_free(&file);
    if (t == NULL) {
        cnd_log(CND_LOG_ERROR, "hosts",
                "Failed to parse hosts file \"%s\": out of memory", c->path);
        return first ? -1 : 0;
    }
    t->file_err = err;
    if (err != 0) {
        hosts_errstr(err, t->file_errstr, sizeof(t->file_errstr));
    }
    if (file_read) {
        hosts_metrics(parsed + hosts_count(&st->inl, c->no_reverse),
                      &st->mtime);
    }
    if (cnd_log_debug_on() && st->loaded) {
        cnd_log(CND_LOG_DEBUG, "hosts", "Parsed hosts file into %zu entries",
                parsed);
    }
    return cnd_shared_publish(&st->shared, &t->ref);
}


static void
hosts_tick(void *arg)
{
    hosts_load(arg, false);
}


void
cnd_hosts_reload_now(cnd_hosts_conf_t *c)
{
    if (c->state != NULL) {
        hosts_load(c, false);
    }
}


const cnd_hosts_table_t *
cnd_hosts_current(const cnd_hosts_conf_t *c)
{
    if (c->state == NULL) {
        return NULL;
    }
    return (const cnd_hosts_table_t *)cnd_shared_current(&c->state->shared);
}


static int
hosts_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    cnd_hosts_conf_t *c = self->conf;
    c->state = calloc(1, sizeof(*c->state));
    if (c->state == NULL) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    cnd_hosts_filter_t f = {c->zones, c->nzones};
    if (c->inline_len != 0 && cnd_hosts_parse(c->inline_text, c->inline_len, &f,
                                              &c->state->inl) != 0) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    if (hosts_load(c, true) != 0) {
        return cnd_conf_err(cf, self, "cannot load %s: out of memory", c->path);
    }
    if (c->reload_ns > 0 &&
        cnd_conf_every(cf, c->reload_ns, hosts_tick, c) != 0) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    return 0;
}


static void
hosts_fini(cnd_inst_t *self)
{
    cnd_hosts_conf_t *c = self->conf;
    if (c == NULL || c->state == NULL) {
        return;
    }
    cnd_shared_deinit(&c->state->shared);
    cnd_hosts_list_free(&c->state->inl);
    free(c->state);
    c->state = NULL;
}


/* ---- queries ---------------------------------------------------------- */

static int
hosts_worker_init(cnd_worker_t *w, cnd_inst_t *self, void **wdata)
{
    (void)w;
    (void)self;
    *wdata = calloc(1, sizeof(cnd_shared_view_t));
    return *wdata != NULL ? 0 : -1;
}


static void
hosts_worker_fini(cnd_worker_t *w, cnd_inst_t *self, void *wdata)
{
    (void)w;
    (void)self;
    if (wdata != NULL) {
        cnd_shared_drop(wdata);
        free(wdata);
    }
}


static bool
hosts_in(const knot_dname_t *name, const knot_dname_t *const *zones, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (knot_dname_in_bailiwick(name, zones[i]) >= 0) {
            return true;
        }
    }
    return false;
}


/* An authoritative NOERROR answer to fill. */
static knot_pkt_t *
hosts_begin(cnd_req_t *r)
{
    knot_pkt_t *pkt = cnd_req_answer_begin(r);
    if (pkt == NULL || knot_pkt_begin(pkt, KNOT_ANSWER) != KNOT_EOK) {
        return NULL;
    }
    knot_wire_set_aa(pkt->wire);
    return pkt;
}


/* Put one record.  Each record is its own RRset so the answer keeps the
 * file's order and repeats, as CoreDNS's does (a libknot RRset would sort
 * and merge them).  The rdata lives on the stack: knot_pkt_put() writes
 * the wire at once.  Returns KNOT_EOK, KNOT_ESPACE when full, or an
 * error. */
static int
hosts_put(knot_pkt_t *pkt, const knot_dname_t *owner, uint16_t type,
          uint32_t ttl, const uint8_t *data, uint16_t len)
{
    _Alignas(8) uint8_t buf[2 + KNOT_DNAME_MAXLEN + 1];
    knot_rdata_t *rd = (knot_rdata_t *)buf;
    knot_rdata_init(rd, len, data);
    knot_rrset_t rr;
    knot_rrset_init(&rr, (knot_dname_t *)owner, type, KNOT_CLASS_IN, ttl);
    rr.rrs.count = 1;
    rr.rrs.size = (uint32_t)knot_rdata_size(len);
    rr.rrs.rdata = rd;
    return knot_pkt_put(pkt, KNOT_COMPR_HINT_QNAME, &rr, 0);
}


/* Finish: a record that did not fit sets TC (only past 64 KiB: the core
 * cuts to the client's size and sets TC itself). */
static cnd_rc_t
hosts_finish(cnd_req_t *r, knot_pkt_t *pkt, int rc)
{
    if (rc == KNOT_ESPACE) {
        knot_wire_set_tc(pkt->wire);
    } else if (rc != KNOT_EOK) {
        return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                            "cannot build an answer: %s", knot_strerror(rc));
    }
    if (cnd_req_answer_pkt(r, pkt) != 0) {
        return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                            "cannot build an answer: out of memory");
    }
    return CND_DONE;
}


static cnd_rc_t
hosts_ptr(cnd_req_t *r, const cnd_hosts_conf_t *c, const cnd_hosts_table_t *t)
{
    uint8_t addr[16];
    bool v6;
    const cnd_hosts_ptr_t *p;
    if (!cnd_hosts_reverse(r->qname, addr, &v6) ||
        (p = cnd_hosts_find_ptr(t, addr, v6)) == NULL) {
        return CND_NEXT; /* an unknown PTR always goes on, as in CoreDNS */
    }
    knot_pkt_t *pkt = hosts_begin(r);
    if (pkt == NULL) {
        return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                            "cannot build an answer");
    }
    int rc = KNOT_EOK;
    for (uint32_t i = 0; i < p->n && rc == KNOT_EOK; i++) {
        const uint8_t *name = t->ptr_names[p->first + i];
        rc = hosts_put(pkt, r->qname, KNOT_RRTYPE_PTR, c->ttl, name,
                       (uint16_t)knot_dname_size(name));
    }
    return hosts_finish(r, pkt, rc);
}


/* The name has no entry at all and there is no fallthrough for it. */
static cnd_rc_t
hosts_unknown(cnd_req_t *r, const cnd_hosts_conf_t *c,
              const cnd_hosts_table_t *t)
{
    char name[KNOT_DNAME_TXT_MAXLEN + 1];
    if (knot_dname_to_str(name, r->qname, sizeof(name)) == NULL) {
        snprintf(name, sizeof(name), "the name");
    }
    const char *inl = t->has_inline ? " or the inline entries" : "";
    if (t->file_err != 0) {
        return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                            "%s is not in %s (unreadable: %s)%s and there "
                            "is no fallthrough: add it, or fallthrough to "
                            "pass it on",
                            name, c->path, t->file_errstr, inl);
    }
    return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                        "%s is not in %s%s and there is no fallthrough: add "
                        "it, or fallthrough to pass it on",
                        name, c->path, inl);
}


static cnd_rc_t
hosts_query(cnd_req_t *r, cnd_inst_t *self)
{
    const cnd_hosts_conf_t *c = self->conf;
    const knot_dname_t *qname = r->qname;
    if (r->qclass != KNOT_CLASS_IN) {
        return CND_NEXT; /* its names are IN data (forward may take CH) */
    }
    /* PTR names need not be in the zones (CoreDNS answers them from the
     * addresses of names that are). */
    if (r->qtype != KNOT_RRTYPE_PTR && !hosts_in(qname, c->zones, c->nzones)) {
        return CND_NEXT;
    }
    const cnd_hosts_table_t *t = (const cnd_hosts_table_t *)cnd_shared_get(
        &c->state->shared, cnd_req_wdata(r, self));
    if (r->qtype == KNOT_RRTYPE_PTR) {
        return hosts_ptr(r, c, t);
    }

    cnd_hosts_match_t m;
    bool known = cnd_hosts_match(t, qname, &m);
    if (!known) {
        if (hosts_in(qname, c->fall, c->nfall)) {
            return CND_NEXT;
        }
        return hosts_unknown(r, c, t);
    }

    /* Known: the addresses of the asked family, or NODATA (AA, no SOA). */
    knot_pkt_t *pkt = hosts_begin(r);
    if (pkt == NULL) {
        return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, 0,
                            "cannot build an answer");
    }
    int rc = KNOT_EOK;
    for (int s = 0; s < CND_HOSTS_SOURCES && rc == KNOT_EOK; s++) {
        const cnd_hosts_name_t *e4 = m.v4[s], *e6 = m.v6[s];
        if (r->qtype == KNOT_RRTYPE_A && e4 != NULL) {
            for (uint32_t i = 0; i < e4->n4[s] && rc == KNOT_EOK; i++) {
                rc = hosts_put(pkt, qname, KNOT_RRTYPE_A, c->ttl,
                               t->v4[e4->v4[s] + i], 4);
            }
        } else if (r->qtype == KNOT_RRTYPE_AAAA && e6 != NULL) {
            for (uint32_t i = 0; i < e6->n6[s] && rc == KNOT_EOK; i++) {
                rc = hosts_put(pkt, qname, KNOT_RRTYPE_AAAA, c->ttl,
                               t->v6[e6->v6[s] + i], 16);
            }
        }
    }
    return hosts_finish(r, pkt, rc);
}


/* For "candor doctor": one name this instance answers, to ask as an
 * internal name: an entry of the Corefile's own first, else of the file;
 * no wildcard. */
static void
hosts_facts(const cnd_inst_t *self, void (*emit)(void *ud, const cnd_fact_t *f),
            void *ud)
{
    const cnd_hosts_conf_t *c = self->conf;
    char ip[64], name[KNOT_DNAME_TXT_MAXLEN + 1] = "";
    if (c->inline_text == NULL ||
        sscanf(c->inline_text, "%63s %253s", ip, name) != 2 || name[0] == '*') {
        name[0] = '\0';
        const cnd_hosts_table_t *tb = cnd_hosts_current(c);
        for (size_t k = 0; tb != NULL && k < tb->nnames; k++) {
            if (tb->names[k].name[0] != 1 || tb->names[k].name[1] != '*') {
                knot_dname_to_str(name, tb->names[k].name, sizeof(name));
                break;
            }
        }
    }
    if (name[0] != '\0') {
        emit(ud, &(cnd_fact_t){.kind = CND_FACT_NAME, .text = name});
    }
}


const cnd_plugin_t cnd_plugin_hosts = {
    .name = "hosts",
    .flags = CND_PLUGIN_ONCE,
    .conf_size = sizeof(cnd_hosts_conf_t),
    .parse = hosts_parse,
    .init = hosts_init,
    .fini = hosts_fini,
    .worker_init = hosts_worker_init,
    .worker_fini = hosts_worker_fini,
    .query = hosts_query,
    .facts = hosts_facts,
};
