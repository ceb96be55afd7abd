/* SPDX-License-Identifier: MIT */
/*
 * plugins/hosts/hosts.h - the hosts plugin's parts, for its two files and
 * its unit test.
 *
 * hostsfile.c turns hosts-file text into a list of records (one per name
 * of a line) and a list into an immutable lookup table; hosts.c is the
 * plugin (Corefile, reload, queries).  A table is what workers read: it
 * is built on the main thread, swapped in whole (core/shared.h) and never
 * changed after, so the query path reads it without a lock.
 */
#ifndef CND_PLUGINS_HOSTS_H
#define CND_PLUGINS_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "core/plugin.h"

/* Where a record came from.  Lookups return the file's part first, as
 * CoreDNS does. */
enum { CND_HOSTS_FILE = 0, CND_HOSTS_INLINE = 1, CND_HOSTS_SOURCES = 2 };

/* One name of one hosts line.  Built and read on the main thread. */
typedef struct cnd_hosts_rec_s {
    uint32_t name;    /* offset of the wire name in the list's blob */
    uint8_t name_len; /* its size, root label included               */
    bool v6;          /* addr is 16 bytes, else 4                    */
    bool wild;        /* "*.rest": matches one label, has no PTR     */
    uint8_t addr[16];
} cnd_hosts_rec_t;

/* The records of one text, in text order, and their names.  malloc'd,
 * freed with cnd_hosts_list_free(). */
typedef struct cnd_hosts_list_s {
    cnd_hosts_rec_t *recs;
    size_t n, cap;
    uint8_t *blob; /* lowercase wire names, back to back */
    size_t blob_len, blob_cap;
} cnd_hosts_list_t;

/* What the parser keeps: names inside one of @zones (lowercase wire). */
typedef struct cnd_hosts_filter_s {
    const knot_dname_t *const *zones;
    size_t nzones;
} cnd_hosts_filter_t;

/* Parse @len bytes of hosts-file text into @out (appending): lines of
 * "IP NAME...", '#' comments, IPv6 zones ("%eth0") dropped, IPv4-mapped
 * IPv6 taken as IPv4, bad lines and names skipped as CoreDNS skips them.
 * Returns 0 or -ENOMEM. */
int cnd_hosts_parse(const char *text, size_t len, const cnd_hosts_filter_t *f,
                    cnd_hosts_list_t *out);
void cnd_hosts_list_free(cnd_hosts_list_t *l);

/* A name of the table: its addresses per source, as ranges of the
 * table's v4 and v6 arrays. */
typedef struct cnd_hosts_name_s {
    const uint8_t *name; /* lowercase wire, in the table's blob */
    uint32_t len;
    uint32_t v4[CND_HOSTS_SOURCES], n4[CND_HOSTS_SOURCES];
    uint32_t v6[CND_HOSTS_SOURCES], n6[CND_HOSTS_SOURCES];
} cnd_hosts_name_t;

/* An address of the table and the names it maps back to (PTR). */
typedef struct cnd_hosts_ptr_s {
    uint8_t addr[16];
    bool v6;
    uint32_t first, n; /* range of the table's ptr_names */
} cnd_hosts_ptr_t;

/* One version of the data: the file's records and the inline ones,
 * sorted for binary search.  Snapshot-shared, read-only once published
 * (core/shared.h swaps it whole).  Starts with its reference count; plain
 * memory, so whichever thread drops the last reference frees it. */
typedef struct cnd_hosts_table_s {
    cnd_ref_t ref;
    cnd_hosts_name_t *names; /* sorted by wire name */
    size_t nnames;
    uint8_t (*v4)[4];
    uint8_t (*v6)[16];
    cnd_hosts_ptr_t *ptrs; /* sorted by address; empty with no_reverse */
    size_t nptrs;
    const uint8_t **ptr_names;
    uint8_t *blob;        /* every name of the table */
    size_t entries;       /* CoreDNS's count: names and reverse entries */
    int file_err;         /* errno of reading the file, 0 when it was read */
    char file_errstr[64]; /* its text, made on the main thread          */
    bool has_inline;      /* the Corefile had inline entries */
} cnd_hosts_table_t;

/* Build a table from the file's records and the inline ones (either may
 * be NULL), with PTR entries unless @no_reverse.  Returns it with one
 * reference, or NULL when out of memory. */
cnd_hosts_table_t *cnd_hosts_table_new(const cnd_hosts_list_t *file,
                                       const cnd_hosts_list_t *inl,
                                       bool no_reverse);

/* The entry named exactly @name (lowercase wire), or NULL. */
const cnd_hosts_name_t *cnd_hosts_find(const cnd_hosts_table_t *t,
                                       const uint8_t *name, size_t len);

/* The wildcard entry "*.<@name minus its first label>" that @name falls
 * under, or NULL (a one-label name has none). */
const cnd_hosts_name_t *cnd_hosts_find_wild(const cnd_hosts_table_t *t,
                                            const uint8_t *name);

/* What answers a name: per source and family, the entry whose addresses
 * do (the exact name, else its wildcard, as CoreDNS looks them up), or
 * NULL. */
typedef struct cnd_hosts_match_s {
    const cnd_hosts_name_t *v4[CND_HOSTS_SOURCES];
    const cnd_hosts_name_t *v6[CND_HOSTS_SOURCES];
} cnd_hosts_match_t;

/* Fill @m for @name (lowercase wire).  Returns true when the name has an
 * address of either family: it is known. */
bool cnd_hosts_match(const cnd_hosts_table_t *t, const knot_dname_t *name,
                     cnd_hosts_match_t *m);

/* The PTR entry of an address, or NULL. */
const cnd_hosts_ptr_t *cnd_hosts_find_ptr(const cnd_hosts_table_t *t,
                                          const uint8_t *addr, bool v6);

/* The address a reverse name stands for: "4.3.2.1.in-addr.arpa." or the
 * 32 nibbles of ip6.arpa (an IPv4-mapped one gives the IPv4 address).
 * Returns true and fills @addr and @v6, or false. */
bool cnd_hosts_reverse(const knot_dname_t *name, uint8_t addr[16], bool *v6);

/*
 * The plugin's config, exposed for the unit test.  Config lifetime (the
 * snapshot arena); state is malloc'd by init() and freed by fini().
 */
typedef struct cnd_hosts_state_s cnd_hosts_state_t;

typedef struct cnd_hosts_conf_s {
    const char *path;           /* the hosts file               */
    const knot_dname_t **zones; /* served zones                 */
    size_t nzones;
    const knot_dname_t **fall; /* fallthrough zones            */
    size_t nfall;              /* 0: no fallthrough            */
    bool fall_seen;            /* a fallthrough line was read  */
    uint32_t ttl;
    bool no_reverse;
    int64_t reload_ns;       /* 0: no reload                 */
    const char *inline_text; /* inline lines, "\n"-joined    */
    size_t inline_len;
    size_t inline_lines;
    cnd_hosts_state_t *state; /* init() on                    */
} cnd_hosts_conf_t;

/* The current table of @c (main thread, for tests): no reference taken. */
const cnd_hosts_table_t *cnd_hosts_current(const cnd_hosts_conf_t *c);

/* Run one reload check of @c now, as the reload timer does. */
void cnd_hosts_reload_now(cnd_hosts_conf_t *c);

#endif
