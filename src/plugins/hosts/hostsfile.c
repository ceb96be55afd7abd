/* SPDX-License-Identifier: MIT */
/*
 * plugins/hosts/hostsfile.c - hosts-file text to an immutable lookup table.
 *
 * Parsing follows CoreDNS's hostsfile.go: each line is "IP NAME...", '#'
 * starts a comment, fields are split on ASCII white space, a field longer
 * than 1024 bytes is dropped (no DNS name is that long), an IPv6 zone
 * ("%eth0") is dropped, an IPv4-mapped IPv6 address counts as IPv4 (Go's
 * To4), a line whose first field is no address is skipped, and so is a
 * name outside the plugin's zones.  Names become lowercase wire format.
 *
 * The table is built once per (re)load on the main thread and then only
 * read: names sorted by their wire bytes for binary search, each with the
 * ranges of its IPv4 and IPv6 addresses per source (file, inline), and
 * addresses sorted for PTR, each with the range of its names.  CoreDNS
 * keeps two maps (file and inline) and answers the file's part first; the
 * source is part of the sort key so one table gives the same order.
 * Building sorts arrays of small items, so tens of thousands of entries
 * load in milliseconds and a lookup is some twenty comparisons.
 */
#include "plugins/hosts/hosts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* CoreDNS's maxFieldSize: a longer field is dropped whole. */
#define HOSTS_FIELD_MAX 1024


/* ---- parsing ---------------------------------------------------------- */

static bool
hosts_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}


/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is IPv4 to Go (To4), so
 * to CoreDNS: move it to the IPv4 form.  Sets *v6. */
static void
hosts_unmap(uint8_t addr[16], bool *v6)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    *v6 = memcmp(addr, mapped, sizeof(mapped)) != 0;
    if (!*v6) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
    }
}


/* An address field: IPv4 or IPv6, a zone suffix ignored.  inet_pton is
 * as strict as Go's net.ParseIP here: no leading zeros in IPv4. */
static bool
hosts_parse_ip(const char *s, size_t n, uint8_t addr[16], bool *v6)
{
    const char *pct = memchr(s, '%', n);
    if (pct != NULL) {
        n = (size_t)(pct - s);
    }
    char buf[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, buf, addr) != 1) {
        return false;
    }
    hosts_unmap(addr, v6);
    return true;
}


static bool
hosts_in_zones(const knot_dname_t *name, const cnd_hosts_filter_t *f)
{
    for (size_t i = 0; i < f->nzones; i++) {
        if (knot_dname_in_bailiwick(name, f->zones[i]) >= 0) {
            return true;
        }
    }
    return false;
}


static int
hosts_list_push(cnd_hosts_list_t *l, const knot_dname_t *name, size_t len,
                const uint8_t addr[16], bool v6)
{
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 64;
        cnd_hosts_rec_t *r = realloc(l->recs, cap * sizeof(*r));
        if (r == NULL) {
            return -ENOMEM;
        }
        l->recs = r;
        l->cap = cap;
    }
    if (l->blob_len + len > l->blob_cap) {
        size_t cap = l->blob_cap != 0 ? l->blob_cap * 2 : 4096;
        while (cap < l->blob_len + len) {
            cap *= 2;
        }
        uint8_t *b = realloc(l->blob, cap);
        if (b == NULL) {
            return -ENOMEM;
        }
        l->blob = b;
        l->blob_cap = cap;
    }
    cnd_hosts_rec_t *r = &l->recs[l->n++];
    r->name = (uint32_t)l->blob_len;
    r->name_len = (uint8_t)len;
    r->v6 = v6;
    /* CoreDNS's isWildcardName: the name starts with "*.". */
    r->wild = name[0] == 1 && name[1] == '*';
    memcpy(r->addr, addr, 16);
    memcpy(l->blob + l->blob_len, name, len);
    l->blob_len += len;
    return 0;
}


/* A name field: as CoreDNS's plugin.Name().Normalize() (lowercase,
 * fully qualified), kept when it is inside the zones.  A field that is no
 * domain name at all could never be asked for, so it is skipped. */
static int
hosts_add_name(const char *s, size_t n, const uint8_t addr[16], bool v6,
               const cnd_hosts_filter_t *f, cnd_hosts_list_t *out)
{
    char text[HOSTS_FIELD_MAX + 1];
    uint8_t wire[KNOT_DNAME_MAXLEN];
    memcpy(text, s, n);
    text[n] = '\0';
    if (knot_dname_from_str(wire, text, sizeof(wire)) == NULL) {
        return 0;
    }
    knot_dname_to_lower(wire);
    if (!hosts_in_zones(wire, f)) {
        return 0;
    }
    return hosts_list_push(out, wire, knot_dname_size(wire), addr, v6);
}


/* One line without its comment: [p, end). */
static int
hosts_line(const char *p, const char *end, const cnd_hosts_filter_t *f,
           cnd_hosts_list_t *out)
{
    uint8_t addr[16];
    bool v6 = false;
    bool first = true;
    while (p < end) {
        while (p < end && hosts_space(*p)) {
            p++;
        }
        const char *field = p;
        while (p < end && !hosts_space(*p)) {
            p++;
        }
        size_t n = (size_t)(p - field);
        if (n == 0) {
            break;
        }
        if (first) {
            first = false;
            if (n > HOSTS_FIELD_MAX || !hosts_parse_ip(field, n, addr, &v6)) {
                return 0; /* no address: the line is unusable */
            }
            continue;
        }
        if (n <= HOSTS_FIELD_MAX &&
            hosts_add_name(field, n, addr, v6, f, out) != 0) {
            return -ENOMEM;
        }
    }
    return 0;
}


int
cnd_hosts_parse(const char *text, size_t len, const cnd_hosts_filter_t *f,
                cnd_hosts_list_t *out)
{
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *lend = eol != NULL ? eol : end;
        const char *hash = memchr(p, '#', (size_t)(lend - p));
        if (hosts_line(p, hash != NULL ? hash : lend, f, out) != 0) {
            return -ENOMEM;
        }
        p = eol != NULL ? eol + 1 : end;
    }
    return 0;
}


void
cnd_hosts_list_free(cnd_hosts_list_t *l)
{
    free(l->recs);
    free(l->blob);
    memset(l, 0, sizeof(*l));
}


/* ---- the table -------------------------------------------------------- */

/* A record while building: where its name now lives and its order. */
typedef struct {
    const cnd_hosts_rec_t *rec;
    const uint8_t *name;
    uint8_t src;
    uint32_t seq;
} hosts_item_t;


static int
hosts_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}


/* Names, then file before inline, IPv4 before IPv6, then text order: so
 * each (name, source, family) is one run of consecutive items. */
static int
hosts_item_by_name(const void *pa, const void *pb)
{
    const hosts_item_t *a = pa, *b = pb;
    int c =
        hosts_name_cmp(a->name, a->rec->name_len, b->name, b->rec->name_len);
    if (c != 0) {
        return c;
    }
    if (a->src != b->src) {
        return a->src < b->src ? -1 : 1;
    }
    if (a->rec->v6 != b->rec->v6) {
        return a->rec->v6 ? 1 : -1;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}


/* Addresses, then file before inline, then text order. */
static int
hosts_item_by_addr(const void *pa, const void *pb)
{
    const hosts_item_t *a = pa, *b = pb;
    if (a->rec->v6 != b->rec->v6) {
        return a->rec->v6 ? 1 : -1;
    }
    int c = memcmp(a->rec->addr, b->rec->addr, 16);
    if (c != 0) {
        return c;
    }
    if (a->src != b->src) {
        return a->src < b->src ? -1 : 1;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : 0;
}


static void
hosts_table_free(cnd_ref_t *ref)
{
    cnd_hosts_table_t *t = (cnd_hosts_table_t *)ref;
    free(t->names);
    free(t->v4);
    free(t->v6);
    free(t->ptrs);
    free(t->ptr_names);
    free(t->blob);
    free(t);
}


/* Names and their address ranges from items sorted by name. */
static int
hosts_build_names(cnd_hosts_table_t *t, const hosts_item_t *items, size_t n)
{
    size_t n4 = 0, n6 = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].rec->v6) {
            n6++;
        } else {
            n4++;
        }
    }
    t->names = calloc(n != 0 ? n : 1, sizeof(*t->names));
    t->v4 = malloc((n4 != 0 ? n4 : 1) * sizeof(*t->v4));
    t->v6 = malloc((n6 != 0 ? n6 : 1) * sizeof(*t->v6));
    if (t->names == NULL || t->v4 == NULL || t->v6 == NULL) {
        return -ENOMEM;
    }
    n4 = n6 = 0;
    cnd_hosts_name_t *e = NULL;
    for (size_t i = 0; i < n; i++) {
        const hosts_item_t *it = &items[i];
        if (e == NULL ||
            hosts_name_cmp(e->name, e->len, it->name, it->rec->name_len) != 0) {
            e = &t->names[t->nnames++];
            e->name = it->name;
            e->len = it->rec->name_len;
        }
        if (it->rec->v6) {
            if (e->n6[it->src]++ == 0) {
                e->v6[it->src] = (uint32_t)n6;
            }
            memcpy(t->v6[n6++], it->rec->addr, 16);
        } else {
            if (e->n4[it->src]++ == 0) {
                e->v4[it->src] = (uint32_t)n4;
            }
            memcpy(t->v4[n4++], it->rec->addr, 4);
        }
    }
    return 0;
}


/* PTR entries from items sorted by address; wildcards have none. */
static int
hosts_build_ptrs(cnd_hosts_table_t *t, const hosts_item_t *items, size_t n)
{
    t->ptrs = calloc(n != 0 ? n : 1, sizeof(*t->ptrs));
    t->ptr_names = malloc((n != 0 ? n : 1) * sizeof(*t->ptr_names));
    if (t->ptrs == NULL || t->ptr_names == NULL) {
        return -ENOMEM;
    }
    cnd_hosts_ptr_t *p = NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const cnd_hosts_rec_t *rec = items[i].rec;
        if (p == NULL || p->v6 != rec->v6 ||
            memcmp(p->addr, rec->addr, 16) != 0) {
            p = &t->ptrs[t->nptrs++];
            memcpy(p->addr, rec->addr, 16);
            p->v6 = rec->v6;
            p->first = (uint32_t)k;
        }
        t->ptr_names[k++] = items[i].name;
        p->n++;
    }
    return 0;
}


cnd_hosts_table_t *
cnd_hosts_table_new(const cnd_hosts_list_t *file, const cnd_hosts_list_t *inl,
                    bool no_reverse)
{
    static const cnd_hosts_list_t none;
    const cnd_hosts_list_t *src[CND_HOSTS_SOURCES] = {
        file != NULL ? file : &none, inl != NULL ? inl : &none};
    cnd_hosts_table_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    cnd_ref_init(&t->ref, hosts_table_free);
    size_t n = src[0]->n + src[1]->n;
    size_t blob = src[0]->blob_len + src[1]->blob_len;
    hosts_item_t *items = malloc((n != 0 ? n : 1) * sizeof(*items));
    t->blob = malloc(blob != 0 ? blob : 1);
    if (items == NULL || t->blob == NULL) {
        goto fail;
    }
    /* One blob for both sources: the table owns every name it points to,
     * so it never depends on the lists that made it. */
    size_t k = 0, off = 0;
    for (int s = 0; s < CND_HOSTS_SOURCES; s++) {
        if (src[s]->blob_len != 0) {
            memcpy(t->blob + off, src[s]->blob, src[s]->blob_len);
        }
        for (size_t i = 0; i < src[s]->n; i++, k++) {
            items[k].rec = &src[s]->recs[i];
            items[k].name = t->blob + off + src[s]->recs[i].name;
            items[k].src = (uint8_t)s;
            items[k].seq = (uint32_t)k;
        }
        off += src[s]->blob_len;
    }
    qsort(items, n, sizeof(*items), hosts_item_by_name);
    if (hosts_build_names(t, items, n) != 0) {
        goto fail;
    }
    t->entries = n;
    size_t np = 0;
    if (!no_reverse) {
        for (size_t i = 0; i < n; i++) {
            if (!items[i].rec->wild) {
                items[np++] = items[i];
            }
        }
        qsort(items, np, sizeof(*items), hosts_item_by_addr);
        t->entries += np;
    }
    if (hosts_build_ptrs(t, items, np) != 0) {
        goto fail;
    }
    t->has_inline = src[1]->n != 0;
    free(items);
    return t;

fail:
    free(items);
    hosts_table_free(&t->ref);
    return NULL;
}


/* ---- lookups (worker threads, read only) ------------------------------ */

const cnd_hosts_name_t *
cnd_hosts_find(const cnd_hosts_table_t *t, const uint8_t *name, size_t len)
{
    size_t lo = 0, hi = t->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cnd_hosts_name_t *e = &t->names[mid];
        int c = hosts_name_cmp(e->name, e->len, name, len);
        if (c == 0) {
            return e;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}


const cnd_hosts_name_t *
cnd_hosts_find_wild(const cnd_hosts_table_t *t, const uint8_t *name)
{
    /* CoreDNS's replaceWithAsteriskLabel: the first label becomes "*";
     * a name of one label (or the root) has no wildcard. */
    if (name[0] == 0) {
        return NULL;
    }
    const uint8_t *rest = name + 1 + name[0];
    if (rest[0] == 0) {
        return NULL;
    }
    uint8_t wild[KNOT_DNAME_MAXLEN];
    size_t rlen = knot_dname_size(rest);
    wild[0] = 1;
    wild[1] = '*';
    memcpy(wild + 2, rest, rlen);
    return cnd_hosts_find(t, wild, rlen + 2);
}


bool
cnd_hosts_match(const cnd_hosts_table_t *t, const knot_dname_t *name,
                cnd_hosts_match_t *m)
{
    const cnd_hosts_name_t *e = cnd_hosts_find(t, name, knot_dname_size(name));
    const cnd_hosts_name_t *w = cnd_hosts_find_wild(t, name);
    bool known = false;
    for (int s = 0; s < CND_HOSTS_SOURCES; s++) {
        m->v4[s] = e != NULL && e->n4[s] != 0   ? e
                   : w != NULL && w->n4[s] != 0 ? w
                                                : NULL;
        m->v6[s] = e != NULL && e->n6[s] != 0   ? e
                   : w != NULL && w->n6[s] != 0 ? w
                                                : NULL;
        known |= m->v4[s] != NULL || m->v6[s] != NULL;
    }
    return known;
}


const cnd_hosts_ptr_t *
cnd_hosts_find_ptr(const cnd_hosts_table_t *t, const uint8_t *addr, bool v6)
{
    uint8_t key[16] = {0};
    memcpy(key, addr, v6 ? 16 : 4);
    size_t lo = 0, hi = t->nptrs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cnd_hosts_ptr_t *p = &t->ptrs[mid];
        int c = p->v6 != v6 ? (p->v6 ? 1 : -1) : memcmp(p->addr, key, 16);
        if (c == 0) {
            return p;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}


/* A decimal octet as Go's ParseIP takes it: 0..255, no leading zero. */
static bool
hosts_octet(const uint8_t *label, uint8_t *out)
{
    uint8_t n = label[0];
    if (n == 0 || n > 3 || (n > 1 && label[1] == '0')) {
        return false;
    }
    unsigned v = 0;
    for (uint8_t i = 1; i <= n; i++) {
        if (label[i] < '0' || label[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(label[i] - '0');
    }
    if (v > 255) {
        return false;
    }
    *out = (uint8_t)v;
    return true;
}


static int
hosts_nibble(const uint8_t *label)
{
    if (label[0] != 1) {
        return -1;
    }
    uint8_t c = label[1];
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}


bool
cnd_hosts_reverse(const knot_dname_t *name, uint8_t addr[16], bool *v6)
{
    static const uint8_t in_addr[] = "\007in-addr\004arpa";
    static const uint8_t ip6[] = "\003ip6\004arpa";
    const uint8_t *labels[34];
    size_t n = 0;
    for (const uint8_t *l = name; *l != 0; l += 1 + *l) {
        if (n == 34) {
            return false;
        }
        labels[n++] = l;
    }
    memset(addr, 0, 16);
    if (n == 6 && knot_dname_is_case_equal(labels[4], in_addr)) {
        for (int i = 0; i < 4; i++) {
            if (!hosts_octet(labels[3 - i], &addr[i])) {
                return false;
            }
        }
        *v6 = false;
        return true;
    }
    if (n != 34 || !knot_dname_is_case_equal(labels[32], ip6)) {
        return false;
    }
    /* The leftmost label is the lowest nibble. */
    for (int k = 0; k < 32; k++) {
        int v = hosts_nibble(labels[k]);
        int j = 31 - k;
        if (v < 0) {
            return false;
        }
        addr[j / 2] |= (uint8_t)(j % 2 == 0 ? v << 4 : v);
    }
    /* Go prints an IPv4-mapped address as IPv4, so CoreDNS finds the IPv4
     * entry for it. */
    hosts_unmap(addr, v6);
    return true;
}
