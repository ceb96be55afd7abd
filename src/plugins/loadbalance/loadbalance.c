/* SPDX-License-Identifier: MIT */
/*
 * plugins/loadbalance/loadbalance.c - reorder A, AAAA and MX records.
 *
 * As CoreDNS's loadbalance: on the way back, a NOERROR answer (not to
 * AXFR/IXFR) gets its address and MX records shuffled (round_robin), or a
 * weighted random choice of address moved first (weighted, weights from a
 * file re-read every 30 s), and then the addresses of "prefer" networks
 * moved first.  The plugin sits outside cache, so every answer, cached or
 * not, comes out in a new order.
 *
 * The answer is wire format with name compression, so records are not
 * re-encoded: an RRset (consecutive records of one owner, type and class
 * in one section) is rearranged in place.  Owner names stay where they
 * are; each record's type, class, TTL, length and RDATA move as one piece
 * into its new slot.  Every compression pointer of the message is known
 * (owners, and RDATA names as libknot's type descriptors lay them out),
 * so a pointer into a moved piece is rewritten to follow it, and the new
 * order is taken only if every pointer still points backwards, as RFC
 * 1035 requires.  MX exchanges compressed against each other constrain
 * the order (the referenced one must stay first), so MX sets are shuffled
 * in a random order that respects those references.
 *
 * Nothing here allocates on the query path: each worker has its random
 * generator and scratch arrays sized for the largest message.  The
 * weight table is built on the main thread and swapped in whole
 * (core/shared.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/plugin.h"
#include "dns/msg.h"
#include "plugins/loadbalance/loadbalance.h"
#include "util/duration.h"
#include "util/log.h"

#define LB_DEFAULT_RELOAD (30 * CND_NS_PER_SEC)
#define LB_MAX_PREFER     256
/* Records in the largest message: 11 bytes each at least. */
#define LB_MAX_RRS ((65535 - 12) / 11 + 1)
/* Compression pointers we track: an owner and at most two RDATA names,
 * each a 2-byte pointer, in a record of at least 16 bytes. */
#define LB_MAX_PTRS (65536 / 16 * 3)
/* References between the bodies of one RRset (MX exchanges compressed
 * against each other); more and the RRset keeps its order. */
#define LB_MAX_EDGES 256
/* The weight file is read whole. */
#define LB_MAX_WFILE (64 << 20)


/* ---- state ------------------------------------------------------------ */

/* One record of the message being reordered, as offsets.  Worker
 * scratch, valid for one message. */
typedef struct {
    uint16_t start; /* owner name                 */
    uint16_t hdr;   /* type, class, TTL, RDLENGTH */
    uint16_t end;   /* after the RDATA            */
    uint16_t type, cls;
    uint8_t section;
} lb_rr_t;

/* A compression pointer at @loc pointing to @tgt. */
typedef struct {
    uint16_t loc, tgt;
} lb_ptr_t;

/* Within one RRset: body @before must stay ahead of body @after, whose
 * RDATA points into it. */
typedef struct {
    uint16_t before, after;
} lb_edge_t;

/* One weight of the file. */
typedef struct {
    uint32_t name;  /* offset of the lowercase wire name in the blob */
    uint32_t index; /* line order, for first-match-wins              */
    uint8_t addr[16];
    bool v6;
    uint8_t weight;
} lb_weight_t;

/* One version of the weights, sorted by name then file order.  Plain
 * memory: whoever drops the last reference frees it. */
typedef struct {
    cnd_ref_t ref;
    lb_weight_t *w;
    size_t n;
    uint8_t *blob;
} lb_table_t;

/* The weight file's state.  Main thread, but for @shared. */
struct cnd_lb_wstate_s {
    cnd_shared_t shared; /* the current table, read by workers */
    char *last;          /* what the file held at the last read */
    size_t last_len;
    bool have_last;
};

/* Worker lifetime (malloc'd in worker_init): the random generator and
 * scratch arrays for the largest message, so that reordering never
 * allocates.  About 250 KiB. */
struct cnd_lb_work_s {
    uint64_t rng;           /* xorshift64* state, never 0 */
    cnd_shared_view_t view; /* of the weight table        */
    size_t nrr, nptr, nedge;
    bool scanned; /* ptr[] and bits[] hold this message's */
    lb_rr_t rr[LB_MAX_RRS];
    lb_ptr_t ptr[LB_MAX_PTRS]; /* by location */
    lb_edge_t edge[LB_MAX_EDGES];
    uint8_t bits[65536 / 8];       /* bytes some pointer targets */
    uint16_t order[LB_MAX_RRS];    /* slot -> record of the run  */
    uint16_t own_new[LB_MAX_RRS];  /* new offset of owner i      */
    uint16_t body_new[LB_MAX_RRS]; /* new offset of body i       */
    uint16_t aux[LB_MAX_RRS];      /* in-degrees, weights, ranks */
    uint16_t ready[LB_MAX_RRS];
    uint8_t tmp[65536];
};


/* ---- addresses and networks ------------------------------------------- */

/* An address as Go's net.IP compares it: IPv4-mapped IPv6 is IPv4. */
static bool
lb_addr_norm(const uint8_t *in, size_t len, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};
    memset(out, 0, 16);
    if (len == 16 && memcmp(in, mapped, 12) == 0) {
        memcpy(out, in + 12, 4);
        return false;
    }
    memcpy(out, in, len);
    return len == 16;
}


/* Parse an IP address as net.ParseIP: IPv4 or IPv6, no zone. */
static int
lb_parse_ip(const char *s, uint8_t out[16], bool *v6)
{
    uint8_t raw[16];
    if (inet_pton(AF_INET, s, raw) == 1) {
        *v6 = lb_addr_norm(raw, 4, out);
        return 0;
    }
    if (inet_pton(AF_INET6, s, raw) == 1) {
        *v6 = lb_addr_norm(raw, 16, out);
        return 0;
    }
    return -1;
}


static bool
lb_prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, bytes) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}


/* Parse "ADDR/BITS" as net.ParseCIDR: the address is masked, and an
 * IPv4-mapped network is an IPv4 one (Go's IPNet.Contains). */
static int
lb_parse_cidr(const char *s, cnd_lb_net_t *n)
{
    const char *slash = strchr(s, '/');
    char ip[INET6_ADDRSTRLEN + 1];
    if (slash == NULL || slash == s || (size_t)(slash - s) >= sizeof(ip)) {
        return -1;
    }
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    unsigned bits = 0;
    const char *p = slash + 1;
    if (*p == '\0') {
        return -1;
    }
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || bits > 128) {
            return -1;
        }
        bits = bits * 10 + (unsigned)(*p - '0');
    }
    uint8_t raw[16] = {0};
    unsigned max;
    if (inet_pton(AF_INET, ip, raw) == 1) {
        max = 32;
    } else if (inet_pton(AF_INET6, ip, raw) == 1) {
        max = 128;
    } else {
        return -1;
    }
    if (bits > max) {
        return -1;
    }
    /* Mask the host bits. */
    for (unsigned i = 0; i < max / 8; i++) {
        unsigned keep = bits > i * 8 ? bits - i * 8 : 0;
        if (keep < 8) {
            raw[i] &= (uint8_t)(0xff << (8 - keep));
        }
    }
    memset(n, 0, sizeof(*n));
    n->v6 = lb_addr_norm(raw, max / 8, n->addr);
    n->bits = (uint8_t)(max == 128 && !n->v6 ? bits - 96 : bits);
    return 0;
}


/* The rank of the address @rd (@len bytes) among @c's preferred
 * networks: the index of the first that holds it, else nprefer. */
static size_t
lb_rank(const cnd_lb_conf_t *c, const uint8_t *rd, size_t len)
{
    uint8_t a[16];
    bool v6 = lb_addr_norm(rd, len, a);
    for (size_t i = 0; i < c->nprefer; i++) {
        if (c->prefer[i].v6 == v6 &&
            lb_prefix_match(c->prefer[i].addr, a, c->prefer[i].bits)) {
            return i;
        }
    }
    return c->nprefer;
}


/* ---- Corefile --------------------------------------------------------- */

static int
lb_parse_block(cnd_conf_t *cf, cnd_disp_t *d, cnd_lb_conf_t *c)
{
    while (cnd_disp_next_block(d)) {
        const char *prop = cnd_disp_val(d);
        if (strcmp(prop, "reload") == 0 && c->policy == CND_LB_WEIGHTED) {
            const char *args[2];
            size_t n = cnd_disp_args(d, args, 2);
            if (n < 1) {
                return cnd_disp_err(d, "reload duration value is missing");
            }
            if (n > 1) {
                return cnd_disp_err(d, "unexpected argument");
            }
            int64_t ns;
            if (cnd_duration_parse(args[0], &ns) != 0 || ns < 0) {
                return cnd_disp_err(d, "invalid reload duration '%s'", args[0]);
            }
            c->reload_ns = ns;
        } else if (strcmp(prop, "prefer") == 0) {
            const char **cidrs;
            long n = cnd_conf_args(cf, d, &cidrs);
            if (n < 0) {
                return cnd_disp_err(d, "out of memory");
            }
            for (long i = 0; i < n; i++) {
                cnd_lb_net_t net;
                if (lb_parse_cidr(cidrs[i], &net) != 0) {
                    return cnd_disp_err(d,
                                        "invalid CIDR \"%s\": invalid CIDR "
                                        "address: %s",
                                        cidrs[i], cidrs[i]);
                }
                if (c->nprefer == LB_MAX_PREFER) {
                    return cnd_disp_err(d, "more than %d prefer networks",
                                        LB_MAX_PREFER);
                }
                c->prefer[c->nprefer++] = net;
            }
        } else {
            return cnd_disp_err(d, "unknown property '%s'", prop);
        }
    }
    return 0;
}


static int
lb_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    cnd_lb_conf_t *c = conf;
    c->prefer = cnd_arena_zalloc(cnd_conf_arena(cf),
                                 LB_MAX_PREFER * sizeof(*c->prefer));
    if (c->prefer == NULL) {
        return cnd_disp_err(d, "out of memory");
    }
    /* Every "loadbalance" line of the block: the last policy wins and the
     * prefer networks add up, as CoreDNS's setup does. */
    while (cnd_disp_next(d)) {
        const char *args[3];
        size_t n = cnd_disp_args(d, args, 3);
        if (n == 0 || strcmp(args[0], "round_robin") == 0) {
            if (n > 1) {
                return cnd_disp_err(d, "unknown property for %s", args[0]);
            }
            c->policy = CND_LB_ROUND_ROBIN;
            c->wfile = NULL;
        } else if (strcmp(args[0], "weighted") == 0) {
            if (n < 2) {
                return cnd_disp_err(d, "missing weight file argument");
            }
            if (n > 2) {
                return cnd_disp_err(d, "unexpected argument(s)");
            }
            c->policy = CND_LB_WEIGHTED;
            c->wfile = cnd_arena_strdup(cnd_conf_arena(cf), args[1]);
            c->reload_ns = LB_DEFAULT_RELOAD;
            if (c->wfile == NULL) {
                return cnd_disp_err(d, "out of memory");
            }
        } else {
            return cnd_disp_err(d, "unknown policy: %s", args[0]);
        }
        if (lb_parse_block(cf, d, c) != 0) {
            return -1;
        }
    }
    return 0;
}


/* ---- the weight file -------------------------------------------------- */

static void
lb_table_free(cnd_ref_t *ref)
{
    lb_table_t *t = (lb_table_t *)ref;
    free(t->w);
    free(t->blob);
    free(t);
}


/* Wire names compared as byte strings: any total order will do. */
static int
lb_name_cmp(const uint8_t *a, const uint8_t *b)
{
    size_t la = knot_dname_size(a), lb = knot_dname_size(b);
    int r = memcmp(a, b, la < lb ? la : lb);
    return r != 0 ? r : (la > lb) - (la < lb);
}


/* qsort_r order of weights: by name (@blob holds them), then file order. */
static int
lb_weight_cmp(const void *x, const void *y, void *blob)
{
    const lb_weight_t *a = x, *b = y;
    const uint8_t *names = blob;
    int r = lb_name_cmp(names + a->name, names + b->name);
    return r != 0 ? r : (a->index > b->index) - (a->index < b->index);
}


/* Go's error text for an errno: strerror, first letter lowercase. */
static const char *
lb_errstr(int err, char *buf, size_t size)
{
    snprintf(buf, size, "%s", strerror(err));
    if (buf[0] >= 'A' && buf[0] <= 'Z') {
        buf[0] = (char)(buf[0] - 'A' + 'a');
    }
    return buf;
}


/* White space as Go's strings.TrimSpace sees it in ASCII. */
static bool
lb_space(char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}


/* Grow @t's arrays to hold one more weight and @extra blob bytes. */
static int
lb_table_grow(lb_table_t *t, size_t *wcap, size_t *blen, size_t *bcap,
              size_t extra)
{
    if (t->n == *wcap) {
        size_t cap = *wcap ? *wcap * 2 : 64;
        lb_weight_t *w = realloc(t->w, cap * sizeof(*w));
        if (w == NULL) {
            return -1;
        }
        t->w = w;
        *wcap = cap;
    }
    if (*blen + extra > *bcap) {
        size_t cap = *bcap ? *bcap * 2 : 1024;
        while (cap < *blen + extra) {
            cap *= 2;
        }
        uint8_t *b = realloc(t->blob, cap);
        if (b == NULL) {
            return -1;
        }
        t->blob = b;
        *bcap = cap;
    }
    return 0;
}


/* Parse weight-file text as CoreDNS does: '#' comment lines, a domain
 * name alone on a line, then "IP WEIGHT" lines (1..255) for it.  Returns
 * a table with one reference, or NULL with CoreDNS's message (plus the
 * line) in @err. */
static lb_table_t *
lb_weights_parse(const char *path, const char *text, size_t len, char *err,
                 size_t errlen)
{
    lb_table_t *t = calloc(1, sizeof(*t));
    size_t wcap = 0, blen = 0, bcap = 0;
    long name = -1; /* blob offset of the current name; -2: unusable */
    int lineno = 0;
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cnd_ref_init(&t->ref, lb_table_free);
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        const char *line = text + pos;
        size_t llen = end - pos;
        pos = end + 1;
        lineno++;
        /* strings.TrimSpace, then strings.Fields. */
        while (llen > 0 && lb_space(line[0])) {
            line++;
            llen--;
        }
        while (llen > 0 && lb_space(line[llen - 1])) {
            llen--;
        }
        if (llen == 0 || line[0] == '#') {
            continue;
        }
        char buf[1024], *fields[3];
        size_t nf = 0;
        snprintf(buf, sizeof(buf), "%.*s", (int)llen, line);
        for (char *save = NULL, *f = strtok_r(buf, " \t\r\v\f", &save);
             f != NULL; f = strtok_r(NULL, " \t\r\v\f", &save)) {
            if (nf < 3) {
                fields[nf] = f;
            }
            nf++;
        }
        uint8_t addr[16];
        bool v6;
        if (nf == 1) {
            if (lb_parse_ip(fields[0], addr, &v6) == 0) {
                snprintf(err, errlen,
                         "wrong domain name:\"%s\" in weight file %s:%d. "
                         "(Maybe a missing weight value?)",
                         fields[0], path, lineno);
                goto fail;
            }
            uint8_t dn[KNOT_DNAME_MAXLEN];
            if (knot_dname_from_str(dn, fields[0], sizeof(dn)) == NULL) {
                name = -2; /* no answer can carry it: its lines never match */
                continue;
            }
            knot_dname_to_lower(dn);
            size_t dl = knot_dname_size(dn);
            if (lb_table_grow(t, &wcap, &blen, &bcap, dl) != 0) {
                goto oom;
            }
            memcpy(t->blob + blen, dn, dl);
            name = (long)blen;
            blen += dl;
        } else if (nf == 2) {
            if (lb_parse_ip(fields[0], addr, &v6) != 0) {
                snprintf(err, errlen,
                         "wrong IP address:\"%s\" in weight file %s:%d",
                         fields[0], path, lineno);
                goto fail;
            }
            unsigned long wv = 0;
            const char *p = fields[1];
            for (; *p >= '0' && *p <= '9' && wv <= 255; p++) {
                wv = wv * 10 + (unsigned long)(*p - '0');
            }
            if (*p != '\0' || wv == 0 || wv > 255) {
                snprintf(err, errlen,
                         "wrong weight value:\"%s\" in weight file %s:%d",
                         fields[1], path, lineno);
                goto fail;
            }
            if (name == -1) {
                snprintf(err, errlen,
                         "missing domain name in weight file %s:%d", path,
                         lineno);
                goto fail;
            }
            if (name == -2) {
                continue;
            }
            if (lb_table_grow(t, &wcap, &blen, &bcap, 0) != 0) {
                goto oom;
            }
            lb_weight_t *w = &t->w[t->n];
            w->name = (uint32_t)name;
            w->index = (uint32_t)t->n;
            memcpy(w->addr, addr, 16);
            w->v6 = v6;
            w->weight = (uint8_t)wv;
            t->n++;
        } else {
            snprintf(err, errlen,
                     "could not parse weight line:\"%.*s\" in weight file "
                     "%s:%d",
                     (int)llen, line, path, lineno);
            goto fail;
        }
    }
    if (t->n > 1) {
        qsort_r(t->w, t->n, sizeof(*t->w), lb_weight_cmp, t->blob);
    }
    return t;
oom:
    snprintf(err, errlen, "weight file %s: out of memory", path);
fail:
    cnd_ref_put(&t->ref);
    return NULL;
}


/* Read the whole file into a malloc'd buffer.  Returns 0, or an errno. */
static int
lb_read_file(const char *path, char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) {
        return errno;
    }
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    if (sb.st_size > LB_MAX_WFILE) {
        close(fd);
        return EFBIG;
    }
    size_t cap = (size_t)sb.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap > LB_MAX_WFILE) {
                free(buf);
                close(fd);
                return EFBIG;
            }
            char *b = realloc(buf, cap * 2);
            if (b == NULL) {
                free(buf);
                close(fd);
                return ENOMEM;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return e;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;
}


/* Read the weight file; when its content changed, parse it and swap the
 * new table in.  Returns 0 (also when unchanged), -1 with the parse error
 * in @err, or -2 when the file cannot be read (@err says why).  Main
 * thread. */
static int
lb_weights_load(cnd_lb_conf_t *c, char *err, size_t errlen)
{
    cnd_lb_wstate_t *ws = c->ws;
    char *text = NULL, why[96];
    size_t len = 0;
    int e = lb_read_file(c->wfile, &text, &len);
    if (e != 0) {
        snprintf(err, errlen, "weight file open error: %s: %s", c->wfile,
                 lb_errstr(e, why, sizeof(why)));
        return -2;
    }
    if (ws->have_last && len == ws->last_len &&
        memcmp(text, ws->last, len) == 0) {
        free(text);
        return 0;
    }
    /* As CoreDNS (which keeps the file's checksum before parsing), a
     * broken file is reported once, not at every tick. */
    free(ws->last);
    ws->last = text;
    ws->last_len = len;
    ws->have_last = true;
    lb_table_t *t = lb_weights_parse(c->wfile, text, len, err, errlen);
    if (t == NULL) {
        return -1;
    }
    if (cnd_shared_publish(&ws->shared, &t->ref) != 0) {
        snprintf(err, errlen, "weight file %s: out of memory", c->wfile);
        return -1;
    }
    cnd_log(CND_LOG_INFO, "loadbalance", "Successfully reloaded weight file %s",
            c->wfile);
    return 0;
}


static void
lb_tick(void *arg)
{
    char err[1024];
    if (lb_weights_load(arg, err, sizeof(err)) != 0) {
        cnd_log(CND_LOG_ERROR, "loadbalance", "%s", err);
    }
}


void
cnd_lb_reload_now(cnd_lb_conf_t *c)
{
    if (c->ws != NULL) {
        lb_tick(c);
    }
}


long
cnd_lb_weight_count(const cnd_lb_conf_t *c)
{
    const lb_table_t *t =
        c->ws != NULL ? (const lb_table_t *)cnd_shared_current(&c->ws->shared)
                      : NULL;
    return t != NULL ? (long)t->n : -1;
}


static int
lb_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    cnd_lb_conf_t *c = self->conf;
    char err[1024];
    if (c->policy != CND_LB_WEIGHTED) {
        return 0;
    }
    c->ws = calloc(1, sizeof(*c->ws));
    if (c->ws == NULL) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    int rc = lb_weights_load(c, err, sizeof(err));
    if (rc == -1 || (rc == -2 && c->reload_ns == 0)) {
        return cnd_conf_err(cf, self, "%s", err);
    }
    if (rc == -2) {
        char d[64];
        cnd_log(CND_LOG_WARNING, "loadbalance",
                "Failed to open weight file:%s. Will try again in %s", err,
                cnd_duration_format(c->reload_ns, d, sizeof(d)));
    }
    if (cnd_shared_current(&c->ws->shared) == NULL) {
        /* nothing read yet: every weight is 1 */
        lb_table_t *t = calloc(1, sizeof(*t));
        if (t == NULL) {
            return cnd_conf_err(cf, self, "out of memory");
        }
        cnd_ref_init(&t->ref, lb_table_free);
        if (cnd_shared_publish(&c->ws->shared, &t->ref) != 0) {
            return cnd_conf_err(cf, self, "out of memory");
        }
    }
    if (c->reload_ns > 0 && cnd_conf_every(cf, c->reload_ns, lb_tick, c) != 0) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    return 0;
}


static void
lb_fini(cnd_inst_t *self)
{
    cnd_lb_conf_t *c = self->conf;
    if (c == NULL || c->ws == NULL) {
        return;
    }
    cnd_shared_deinit(&c->ws->shared);
    free(c->ws->last);
    free(c->ws);
    c->ws = NULL;
}


/* ---- worker state ----------------------------------------------------- */

cnd_lb_work_t *
cnd_lb_work_new(uint64_t seed)
{
    cnd_lb_work_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    if (seed == 0 &&
        getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
               (uint64_t)(uintptr_t)w;
    }
    w->rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
    return w;
}


void
cnd_lb_work_free(cnd_lb_work_t *w)
{
    if (w != NULL) {
        cnd_shared_drop(&w->view);
        free(w);
    }
}


static int
lb_worker_init(cnd_worker_t *wk, cnd_inst_t *self, void **wdata)
{
    (void)wk;
    (void)self;
    *wdata = cnd_lb_work_new(0);
    return *wdata != NULL ? 0 : -1;
}


static void
lb_worker_fini(cnd_worker_t *wk, cnd_inst_t *self, void *wdata)
{
    (void)wk;
    (void)self;
    cnd_lb_work_free(wdata);
}


/* xorshift64*: load spreading, not security. */
static uint64_t
lb_rand(cnd_lb_work_t *w)
{
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}


/* Uniform in [0, n), n < 2^32 (multiply-shift; the bias is 2^-32). */
static uint32_t
lb_below(cnd_lb_work_t *w, uint32_t n)
{
    return (uint32_t)(((lb_rand(w) >> 32) * (uint64_t)n) >> 32);
}


/* ---- the wire --------------------------------------------------------- */

static uint16_t
lb_rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}


/* Walk the name at @pos (ending by @end) and record its compression
 * pointer, if any.  Sets *@after.  Returns 0, or -1 when it is malformed,
 * points forwards, or there are too many pointers. */
static int
lb_scan_name(cnd_lb_work_t *w, const uint8_t *wire, size_t pos, size_t end,
             size_t *after)
{
    while (pos < end) {
        uint8_t l = wire[pos];
        if ((l & 0xc0) == 0xc0) {
            if (pos + 2 > end || w->nptr == LB_MAX_PTRS) {
                return -1;
            }
            uint16_t tgt = (uint16_t)(((l & 0x3f) << 8) | wire[pos + 1]);
            if (tgt >= pos) {
                return -1;
            }
            w->ptr[w->nptr++] = (lb_ptr_t){(uint16_t)pos, tgt};
            w->bits[tgt >> 3] |= (uint8_t)(1u << (tgt & 7));
            *after = pos + 2;
            return 0;
        }
        if (l & 0xc0) {
            return -1;
        }
        if (l == 0) {
            *after = pos + 1;
            return 0;
        }
        pos += 1u + l;
    }
    return -1;
}


/* Record the pointers of one record's RDATA, laid out as libknot's
 * descriptor of its type says (the names RFC 3597 lets a decoder
 * decompress, obsolete types included). */
static int
lb_scan_rdata(cnd_lb_work_t *w, const uint8_t *wire, const lb_rr_t *rr)
{
    const knot_rdata_descriptor_t *d;
    switch (rr->type) {
    case KNOT_RRTYPE_MD:
    case KNOT_RRTYPE_MF:
    case KNOT_RRTYPE_MB:
    case KNOT_RRTYPE_MG:
    case KNOT_RRTYPE_MR:
    case KNOT_RRTYPE_PX:
    case KNOT_RRTYPE_NXT:
        d = knot_get_obsolete_rdata_descriptor(rr->type);
        break;
    default:
        d = knot_get_rdata_descriptor(rr->type);
    }
    size_t pos = rr->hdr + 10u, end = rr->end;
    for (int i = 0; d->block_types[i] != KNOT_RDATA_WF_END; i++) {
        int b = d->block_types[i];
        if (b > 0) {
            pos += (size_t)b;
        } else if (b == KNOT_RDATA_WF_FIXED_DNAME ||
                   b == KNOT_RDATA_WF_COMPRESSIBLE_DNAME ||
                   b == KNOT_RDATA_WF_DECOMPRESSIBLE_DNAME) {
            if (lb_scan_name(w, wire, pos, end, &pos) != 0) {
                return -1;
            }
        } else if (b == KNOT_RDATA_WF_NAPTR_HEADER) {
            pos += 4; /* order, preference, then three strings */
            for (int s = 0; s < 3; s++) {
                if (pos >= end) {
                    return -1;
                }
                pos += 1u + wire[pos];
            }
        } else { /* KNOT_RDATA_WF_REMAINDER */
            pos = end;
        }
        if (pos > end) {
            return -1;
        }
    }
    return pos == end ? 0 : -1;
}


/* Every compression pointer of the message, in wire order. */
static int
lb_scan_pointers(cnd_lb_work_t *w, const uint8_t *wire, size_t len)
{
    memset(w->bits, 0, len / 8 + 1);
    w->nptr = 0;
    for (size_t i = 0; i < w->nrr; i++) {
        const lb_rr_t *rr = &w->rr[i];
        size_t after;
        if (lb_scan_name(w, wire, rr->start, rr->hdr, &after) != 0 ||
            after != rr->hdr || lb_scan_rdata(w, wire, rr) != 0) {
            return -1;
        }
    }
    w->scanned = true;
    return 0;
}


/* Do the owners of records @a and @b name the same node? */
static bool
lb_same_owner(const uint8_t *wire, size_t len, const lb_rr_t *a,
              const lb_rr_t *b)
{
    size_t la = a->hdr - a->start, lb = b->hdr - b->start;
    if (la == lb && memcmp(wire + a->start, wire + b->start, la) == 0) {
        return true; /* the same bytes: the usual pointer to one name */
    }
    uint8_t na[KNOT_DNAME_MAXLEN], nb[KNOT_DNAME_MAXLEN];
    if (knot_dname_wire_check(wire + a->start, wire + len, wire) <= 0 ||
        knot_dname_wire_check(wire + b->start, wire + len, wire) <= 0 ||
        knot_dname_unpack(na, wire + a->start, sizeof(na), wire) <= 0 ||
        knot_dname_unpack(nb, wire + b->start, sizeof(nb), wire) <= 0) {
        return false;
    }
    return knot_dname_is_case_equal(na, nb);
}


/* First pointer located at or after @off. */
static size_t
lb_ptr_from(const cnd_lb_work_t *w, size_t off)
{
    size_t lo = 0, hi = w->nptr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->ptr[mid].loc < off) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}


static bool
lb_any_target(const cnd_lb_work_t *w, size_t from, size_t to)
{
    for (size_t x = from; x < to; x++) {
        if ((x & 7) == 0 && to - x >= 8 && w->bits[x >> 3] == 0) {
            x += 7;
            continue;
        }
        if (w->bits[x >> 3] & (1u << (x & 7))) {
            return true;
        }
    }
    return false;
}


/* The record of run @rr (@m records) that holds offset @x. */
static size_t
lb_find(const lb_rr_t *rr, size_t m, size_t x)
{
    size_t lo = 0, hi = m;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (rr[mid].start <= x) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}


/* Where offset @x of the run goes once own_new/body_new are set. */
static size_t
lb_map(const cnd_lb_work_t *w, const lb_rr_t *rr, size_t m, size_t x)
{
    if (x < rr[0].start || x >= rr[m - 1].end) {
        return x;
    }
    size_t i = lb_find(rr, m, x);
    if (x < rr[i].hdr) {
        return w->own_new[i] + (x - rr[i].start);
    }
    return w->body_new[i] + (x - rr[i].hdr);
}


/* The pointers a rearrangement of run @rr can change: [*pa, *pb). */
static void
lb_affected(const cnd_lb_work_t *w, const lb_rr_t *rr, size_t m, size_t *pa,
            size_t *pb)
{
    size_t rs = rr[0].start, re = rr[m - 1].end;
    *pa = lb_ptr_from(w, rs);
    *pb = lb_any_target(w, rs, re) ? w->nptr : lb_ptr_from(w, re);
}


/* The new location and target of pointer @q of the affected range; @i is
 * a cursor over the run's records, for pointers in wire order. */
static void
lb_move_ptr(const cnd_lb_work_t *w, const lb_rr_t *rr, size_t m, size_t *i,
            const lb_ptr_t *q, size_t *nl, size_t *nt)
{
    *nl = q->loc;
    if (q->loc < rr[m - 1].end) {
        while (rr[*i].end <= q->loc) {
            (*i)++;
        }
        const lb_rr_t *r = &rr[*i];
        *nl = q->loc < r->hdr ? w->own_new[*i] + (size_t)(q->loc - r->start)
                              : w->body_new[*i] + (size_t)(q->loc - r->hdr);
    }
    *nt = lb_map(w, rr, m, q->tgt);
}


/* Put the bodies of run @rr (@m records from index @f) in w->order: slot
 * j gets the type, class, TTL, length and RDATA of record order[j]; the
 * owners stay in their slots.  Pointers into moved bytes follow them.
 * Returns 1 when done, 0 when the order is the same, -1 when some pointer
 * would point forwards (nothing is changed). */
static int
lb_relocate(cnd_lb_work_t *w, uint8_t *wire, size_t f, size_t m)
{
    const lb_rr_t *rr = &w->rr[f];
    const uint16_t *order = w->order;
    size_t j, i, nl, nt;
    for (j = 0; j < m && order[j] == j; j++) {
    }
    if (j == m) {
        return 0;
    }
    size_t rs = rr[0].start, re = rr[m - 1].end, pos = rs;
    for (j = 0; j < m; j++) {
        w->own_new[j] = (uint16_t)pos;
        pos += (size_t)(rr[j].hdr - rr[j].start);
        size_t k = order[j];
        w->body_new[k] = (uint16_t)pos;
        pos += (size_t)(rr[k].end - rr[k].hdr);
    }
    size_t pa, pb;
    lb_affected(w, rr, m, &pa, &pb);
    i = 0;
    for (size_t p = pa; p < pb; p++) {
        lb_move_ptr(w, rr, m, &i, &w->ptr[p], &nl, &nt);
        if (nt >= nl || nt > 0x3fff) {
            return -1;
        }
    }
    memcpy(w->tmp, wire + rs, re - rs);
    for (j = 0; j < m; j++) {
        memcpy(wire + w->own_new[j], w->tmp + (rr[j].start - rs),
               (size_t)(rr[j].hdr - rr[j].start));
        memcpy(wire + w->body_new[j], w->tmp + (rr[j].hdr - rs),
               (size_t)(rr[j].end - rr[j].hdr));
    }
    i = 0;
    for (size_t p = pa; p < pb; p++) {
        lb_ptr_t *q = &w->ptr[p];
        lb_move_ptr(w, rr, m, &i, q, &nl, &nt);
        if (nl == q->loc && nt == q->tgt) {
            continue; /* its piece stayed, and so did its target */
        }
        wire[nl] = (uint8_t)(0xc0 | (nt >> 8));
        wire[nl + 1] = (uint8_t)nt;
        /* Later runs read the pointers after this one: keep them true.
         * Locations stay inside the run, so the array stays ordered for
         * every search that starts outside it. */
        q->loc = (uint16_t)nl;
        q->tgt = (uint16_t)nt;
    }
    return 1;
}


/* The references between bodies of run @rr: record i's RDATA points into
 * record k's, so k must stay before i.  Returns 0, or -1 when there are
 * too many to track or one is not between bodies. */
static int
lb_edges(cnd_lb_work_t *w, const lb_rr_t *rr, size_t m)
{
    size_t rs = rr[0].start, re = rr[m - 1].end;
    w->nedge = 0;
    for (size_t p = lb_ptr_from(w, rs); p < w->nptr && w->ptr[p].loc < re;
         p++) {
        const lb_ptr_t *q = &w->ptr[p];
        if (q->tgt < rs) {
            continue; /* before the run: never moves */
        }
        size_t i = lb_find(rr, m, q->loc), k = lb_find(rr, m, q->tgt);
        if (q->loc < rr[i].hdr) {
            continue; /* an owner: owners stay, lb_relocate() checks */
        }
        if (q->tgt < rr[k].hdr) {
            if (k == 0) {
                continue; /* the first owner never moves */
            }
            return -1; /* a body pointing into a later owner */
        }
        if (i == k) {
            continue; /* within one body: moves with it */
        }
        if (w->nedge == LB_MAX_EDGES) {
            return -1;
        }
        w->edge[w->nedge++] = (lb_edge_t){(uint16_t)k, (uint16_t)i};
    }
    return 0;
}


/* A random order of run @rr in w->order: uniform when no body refers to
 * another, else a random order that keeps every referenced body before
 * the bodies that refer to it.  Returns 0 or -1 (keep the order). */
static int
lb_shuffle(cnd_lb_work_t *w, const lb_rr_t *rr, size_t m)
{
    if (lb_edges(w, rr, m) != 0) {
        return -1;
    }
    uint16_t *indeg = w->aux, *ready = w->ready;
    size_t nready = 0;
    memset(indeg, 0, m * sizeof(*indeg));
    for (size_t e = 0; e < w->nedge; e++) {
        indeg[w->edge[e].after]++;
    }
    for (size_t i = 0; i < m; i++) {
        if (indeg[i] == 0) {
            ready[nready++] = (uint16_t)i;
        }
    }
    for (size_t j = 0; j < m; j++) {
        if (nready == 0) {
            return -1; /* a cycle: cannot happen with backward pointers */
        }
        size_t x = lb_below(w, (uint32_t)nready);
        uint16_t v = ready[x];
        ready[x] = ready[--nready];
        w->order[j] = v;
        for (size_t e = 0; e < w->nedge; e++) {
            if (w->edge[e].before == v && --indeg[w->edge[e].after] == 0) {
                ready[nready++] = w->edge[e].after;
            }
        }
    }
    return 0;
}


/* Weighted: swap a weighted random choice of address into slot 0, as
 * CoreDNS's setTopRecord does.  Weights come from the file by owner name
 * and address; an address it does not list weighs 1. */
static void
lb_pick_top(const cnd_lb_conf_t *c, cnd_lb_work_t *w, const uint8_t *wire,
            const lb_rr_t *rr, size_t m)
{
    const lb_table_t *t = NULL;
    if (c->ws != NULL) {
        t = (const lb_table_t *)cnd_shared_get(&c->ws->shared, &w->view);
    }
    size_t first = 0, last = 0;
    uint8_t owner[KNOT_DNAME_MAXLEN];
    if (t != NULL && t->n > 0 &&
        knot_dname_unpack(owner, wire + rr[0].start, sizeof(owner), wire) > 0) {
        knot_dname_to_lower(owner);
        size_t lo = 0, hi = t->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (lb_name_cmp(t->blob + t->w[mid].name, owner) < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        first = last = lo;
        while (last < t->n &&
               lb_name_cmp(t->blob + t->w[last].name, owner) == 0) {
            last++;
        }
    }
    uint16_t *weight = w->aux;
    uint32_t sum = 0;
    for (size_t i = 0; i < m; i++) {
        size_t rdlen = (size_t)(rr[i].end - rr[i].hdr - 10);
        uint8_t a[16];
        bool v6 = lb_addr_norm(wire + rr[i].hdr + 10, rdlen, a);
        weight[i] = 1;
        for (size_t e = first; e < last; e++) {
            if (t->w[e].v6 == v6 && memcmp(t->w[e].addr, a, 16) == 0) {
                weight[i] = t->w[e].weight;
                break;
            }
        }
        sum += weight[i];
    }
    uint32_t v = lb_below(w, sum), acc = 0;
    for (size_t i = 0; i < m; i++) {
        acc += weight[i];
        if (v < acc) {
            uint16_t tmp = w->order[0];
            w->order[0] = w->order[i];
            w->order[i] = tmp;
            return;
        }
    }
}


/* prefer: a stable partition of w->order by the first preferred network
 * that holds each address (CoreDNS's sortBySubnetPriority). */
static void
lb_prefer(const cnd_lb_conf_t *c, cnd_lb_work_t *w, const uint8_t *wire,
          const lb_rr_t *rr, size_t m)
{
    uint16_t *rank = w->aux, *out = w->ready;
    bool any = false;
    for (size_t i = 0; i < m; i++) {
        size_t rdlen = (size_t)(rr[i].end - rr[i].hdr - 10);
        rank[i] = (uint16_t)lb_rank(c, wire + rr[i].hdr + 10, rdlen);
        any |= rank[i] < c->nprefer;
    }
    if (!any) {
        return;
    }
    size_t n = 0;
    for (size_t r = 0; r <= c->nprefer && n < m; r++) {
        for (size_t j = 0; j < m; j++) {
            if (rank[w->order[j]] == r) {
                out[n++] = w->order[j];
            }
        }
    }
    memcpy(w->order, out, m * sizeof(*out));
}


/* Reorder one run: @f is its first record, @m its size. */
static int
lb_run(const cnd_lb_conf_t *c, cnd_lb_work_t *w, uint8_t *wire, size_t len,
       size_t f, size_t m, uint16_t qtype)
{
    const lb_rr_t *rr = &w->rr[f];
    bool addr = rr->type == KNOT_RRTYPE_A || rr->type == KNOT_RRTYPE_AAAA;
    bool an_ar = rr->section == KNOT_ANSWER || rr->section == KNOT_ADDITIONAL;
    bool shuffle =
        c->policy == CND_LB_ROUND_ROBIN && (addr || rr->type == KNOT_RRTYPE_MX);
    bool pick = c->policy == CND_LB_WEIGHTED && addr && an_ar &&
                (qtype == KNOT_RRTYPE_A || qtype == KNOT_RRTYPE_AAAA ||
                 qtype == KNOT_RRTYPE_SRV);
    bool pref = c->nprefer > 0 && addr && an_ar;
    if (!shuffle && !pick && !pref) {
        return 0;
    }
    if (!w->scanned && lb_scan_pointers(w, wire, len) != 0) {
        return -1;
    }
    for (size_t j = 0; j < m; j++) {
        w->order[j] = (uint16_t)j;
    }
    if (shuffle && lb_shuffle(w, rr, m) != 0) {
        return 0;
    }
    if (pick) {
        lb_pick_top(c, w, wire, rr, m);
    }
    if (pref) {
        lb_prefer(c, w, wire, rr, m);
    }
    return lb_relocate(w, wire, f, m) > 0 ? 1 : 0;
}


int
cnd_lb_apply(const cnd_lb_conf_t *c, cnd_lb_work_t *w, uint8_t *wire,
             size_t len)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    int rc;
    if (len < KNOT_WIRE_HEADER_SIZE || len > 65535 ||
        knot_wire_get_rcode(wire) != KNOT_RCODE_NOERROR ||
        knot_wire_get_qdcount(wire) == 0 ||
        cnd_rr_iter_init(&it, wire, len) != 0) {
        return 0;
    }
    /* The first question's type (CoreDNS: Question[0].Qtype). */
    long qend = cnd_wire_skip_name(wire, len, KNOT_WIRE_HEADER_SIZE);
    if (qend < 0 || (size_t)qend + 4 > len) {
        return 0;
    }
    uint16_t qtype = lb_rd16(wire + qend);
    if (qtype == KNOT_RRTYPE_AXFR || qtype == KNOT_RRTYPE_IXFR) {
        return 0;
    }
    w->nrr = 0;
    w->scanned = false;
    while ((rc = cnd_rr_next(&it, &rr)) == 1) {
        if (w->nrr == LB_MAX_RRS) {
            return -1;
        }
        w->rr[w->nrr++] = (lb_rr_t){(uint16_t)rr.start,
                                    (uint16_t)(rr.rdata - 10),
                                    (uint16_t)rr.end,
                                    rr.type,
                                    rr.cls,
                                    (uint8_t)rr.section};
    }
    if (rc < 0) {
        return -1;
    }
    int changed = 0;
    for (size_t f = 0; f < w->nrr;) {
        const lb_rr_t *a = &w->rr[f];
        size_t m = 1;
        bool kind = a->type == KNOT_RRTYPE_A || a->type == KNOT_RRTYPE_AAAA ||
                    a->type == KNOT_RRTYPE_MX;
        while (kind && f + m < w->nrr) {
            const lb_rr_t *b = &w->rr[f + m];
            if (b->section != a->section || b->type != a->type ||
                b->cls != a->cls || !lb_same_owner(wire, len, a, b)) {
                break;
            }
            m++;
        }
        if (m > 1) {
            int r = lb_run(c, w, wire, len, f, m, qtype);
            if (r < 0) {
                return -1;
            }
            changed += r;
        }
        f += m;
    }
    return changed;
}


/* ---- the plugin ------------------------------------------------------- */

static void
lb_response(cnd_req_t *r, cnd_inst_t *self)
{
    if (r->resp == NULL) {
        return;
    }
    cnd_lb_apply(self->conf, cnd_req_wdata(r, self), r->resp, r->resp_len);
}


const cnd_plugin_t cnd_plugin_loadbalance = {
    .name = "loadbalance",
    .conf_size = sizeof(cnd_lb_conf_t),
    .parse = lb_parse,
    .init = lb_init,
    .fini = lb_fini,
    .worker_init = lb_worker_init,
    .worker_fini = lb_worker_fini,
    .response = lb_response,
};
