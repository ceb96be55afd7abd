/* SPDX-License-Identifier: MIT */
/*
 * plugins/hosts/hosts_test.c - the hosts-file parser, its table, the
 * Corefile syntax and reloads.
 *
 * Table-driven: parser cases give hosts-file text (and inline text) and
 * the answers a table must give; Corefile cases load a whole Corefile
 * with the real plugin table and check either a summary of the hosts
 * config or the exact error a user would see.  Reload cases drive the
 * reload job by hand on files in a temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conf.h"
#include "plugins/hosts/hosts.h"
#include "util/duration.h"
#include "util/log.h"

static cnd_opts_t opts = {.dns_port = 53};


/* ---- helpers ---------------------------------------------------------- */

/* Zones from "a.org,b.net" (static storage, enough for a case). */
static size_t
zones_of(const char *csv, const knot_dname_t **out, uint8_t store[][256],
         size_t max)
{
    char buf[512];
    size_t n = 0;
    snprintf(buf, sizeof(buf), "%s", csv != NULL ? csv : ".");
    for (char *save, *z = strtok_r(buf, ",", &save); z != NULL && n < max;
         z = strtok_r(NULL, ",", &save)) {
        assert_non_null(knot_dname_from_str(store[n], z, 256));
        knot_dname_to_lower(store[n]);
        out[n] = store[n];
        n++;
    }
    return n;
}


static cnd_hosts_table_t *
table_of(const char *file, const char *inl, const char *zones, bool no_reverse)
{
    const knot_dname_t *zv[8];
    uint8_t store[8][256];
    cnd_hosts_filter_t f = {zv, zones_of(zones, zv, store, 8)};
    cnd_hosts_list_t lf = {0}, li = {0};
    if (file != NULL) {
        assert_int_equal(cnd_hosts_parse(file, strlen(file), &f, &lf), 0);
    }
    if (inl != NULL) {
        assert_int_equal(cnd_hosts_parse(inl, strlen(inl), &f, &li), 0);
    }
    cnd_hosts_table_t *t = cnd_hosts_table_new(&lf, &li, no_reverse);
    assert_non_null(t);
    cnd_hosts_list_free(&lf);
    cnd_hosts_list_free(&li);
    return t;
}


static void
append(char *out, size_t size, const char *s)
{
    size_t o = strlen(out);
    snprintf(out + o, size - o, "%s%s", o != 0 ? "," : "", s);
}


/* What the plugin would answer: "10.0.0.1,10.0.0.2", "NODATA" for a
 * known name without the type, "UNKNOWN"; for PTR the names or "NEXT". */
static const char *
answer(const cnd_hosts_table_t *t, const char *qname, const char *type,
       char *out, size_t size)
{
    uint8_t name[KNOT_DNAME_MAXLEN];
    out[0] = '\0';
    assert_non_null(knot_dname_from_str(name, qname, sizeof(name)));
    knot_dname_to_lower(name);
    if (strcmp(type, "PTR") == 0) {
        uint8_t addr[16];
        bool v6;
        const cnd_hosts_ptr_t *p;
        if (!cnd_hosts_reverse(name, addr, &v6) ||
            (p = cnd_hosts_find_ptr(t, addr, v6)) == NULL) {
            snprintf(out, size, "NEXT");
            return out;
        }
        for (uint32_t i = 0; i < p->n; i++) {
            char text[KNOT_DNAME_TXT_MAXLEN + 1];
            knot_dname_to_str(text, t->ptr_names[p->first + i], sizeof(text));
            append(out, size, text);
        }
        return out;
    }
    cnd_hosts_match_t m;
    if (!cnd_hosts_match(t, name, &m)) {
        snprintf(out, size, "UNKNOWN");
        return out;
    }
    bool v6 = strcmp(type, "AAAA") == 0;
    for (int s = 0; s < CND_HOSTS_SOURCES; s++) {
        const cnd_hosts_name_t *e = v6 ? m.v6[s] : m.v4[s];
        uint32_t n = e == NULL ? 0 : v6 ? e->n6[s] : e->n4[s];
        for (uint32_t i = 0; i < n; i++) {
            char ip[INET6_ADDRSTRLEN];
            if (v6) {
                inet_ntop(AF_INET6, t->v6[e->v6[s] + i], ip, sizeof(ip));
            } else {
                inet_ntop(AF_INET, t->v4[e->v4[s] + i], ip, sizeof(ip));
            }
            append(out, size, ip);
        }
    }
    if (out[0] == '\0' || (strcmp(type, "A") != 0 && !v6)) {
        snprintf(out, size, "NODATA");
    }
    return out;
}


/* ---- the parser and the table ----------------------------------------- */

typedef struct {
    const char *q, *type, *want;
} q_case_t;

typedef struct {
    const char *name;
    const char *file, *inl, *zones;
    bool no_reverse;
    q_case_t q[16];
} parse_case_t;

static const parse_case_t parse_cases[] = {
    {"names, aliases, comments, case, order and repeats",
     "# a comment line\n"
     "10.0.0.1 a.example.org A.Example.ORG alias\n"
     "10.0.0.2\ta.example.org   # trailing comment 10.0.0.9 a.example.org\n"
     "   # 10.0.0.3 a.example.org\n"
     "\n"
     "2001:db8::1 a.example.org\n",
     NULL,
     ".",
     false,
     {{"a.example.org", "A", "10.0.0.1,10.0.0.1,10.0.0.2"},
      {"A.EXAMPLE.ORG.", "AAAA", "2001:db8::1"},
      {"alias", "A", "10.0.0.1"},
      {"alias", "AAAA", "NODATA"},
      {"a.example.org", "MX", "NODATA"},
      {"b.example.org", "A", "UNKNOWN"},
      {"1.0.0.10.in-addr.arpa", "PTR", "a.example.org.,a.example.org.,alias."},
      {"2.0.0.10.in-addr.arpa", "PTR", "a.example.org."},
      {"3.0.0.10.in-addr.arpa", "PTR", "NEXT"},
      {"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
       "ip6.arpa",
       "PTR", "a.example.org."},
      {NULL, NULL, NULL}}},
    {"addresses: zones dropped, mapped IPv4, bad lines skipped",
     "fe80::1%eth0 link.example.org\n"
     "10.0.0.5%x v4zone.example.org\n"
     "::ffff:10.9.9.9 mapped.example.org\n"
     "::10.9.9.8 compat.example.org\n"
     "010.0.0.1 leading.example.org\n"
     "10.0.0.256 big.example.org\n"
     "not-an-ip bogus.example.org\n"
     "10.0.0.7\n"
     "10.0.0.8 crlf.example.org\r\n"
     "10.0.0.9 last.example.org",
     NULL,
     ".",
     false,
     {{"link.example.org", "AAAA", "fe80::1"},
      {"v4zone.example.org", "A", "10.0.0.5"},
      {"mapped.example.org", "A", "10.9.9.9"},
      {"mapped.example.org", "AAAA", "NODATA"},
      {"compat.example.org", "AAAA", "::10.9.9.8"},
      {"leading.example.org", "A", "UNKNOWN"},
      {"big.example.org", "A", "UNKNOWN"},
      {"bogus.example.org", "A", "UNKNOWN"},
      {"crlf.example.org", "A", "10.0.0.8"},
      {"last.example.org", "A", "10.0.0.9"},
      {"9.9.9.10.in-addr.arpa", "PTR", "mapped.example.org."},
      /* the IPv4-mapped reverse name finds the IPv4 entry */
      {"9.0.9.0.9.0.a.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
       "ip6.arpa",
       "PTR", "mapped.example.org."},
      {NULL, NULL, NULL}}},
    {"names outside the zones are dropped, PTR too",
     "10.0.0.1 in.example.org out.example.net\n"
     "10.0.0.2 out.example.net\n",
     NULL,
     "example.org,in-addr.arpa",
     false,
     {{"in.example.org", "A", "10.0.0.1"},
      {"out.example.net", "A", "UNKNOWN"},
      {"1.0.0.10.in-addr.arpa", "PTR", "in.example.org."},
      {"2.0.0.10.in-addr.arpa", "PTR", "NEXT"},
      {NULL, NULL, NULL}}},
    {"wildcards match one label and make no PTR",
     "10.1.1.1 *.w.example.org\n"
     "10.1.1.2 x.w.example.org\n"
     "2001:db8::5 *.w.example.org\n",
     NULL,
     ".",
     false,
     {{"a.w.example.org", "A", "10.1.1.1"},
      {"a.w.example.org", "AAAA", "2001:db8::5"},
      {"w.example.org", "A", "UNKNOWN"},
      {"a.b.w.example.org", "A", "UNKNOWN"},
      /* the exact name wins for its family, the wildcard fills the
       * other */
      {"x.w.example.org", "A", "10.1.1.2"},
      {"x.w.example.org", "AAAA", "2001:db8::5"},
      {"1.1.1.10.in-addr.arpa", "PTR", "NEXT"},
      {"2.1.1.10.in-addr.arpa", "PTR", "x.w.example.org."},
      {NULL, NULL, NULL}}},
    {"no_reverse",
     "10.0.0.1 a.example.org\n",
     "10.0.0.1 b.example.org",
     ".",
     true,
     {{"a.example.org", "A", "10.0.0.1"},
      {"b.example.org", "A", "10.0.0.1"},
      {"1.0.0.10.in-addr.arpa", "PTR", "NEXT"},
      {NULL, NULL, NULL}}},
    {"inline entries come after the file's, per family",
     "10.0.0.1 a.example.org\n"
     "10.0.0.3 *.w.example.org\n",
     "10.0.0.2 a.example.org\n"
     "2001:db8::2 a.example.org\n"
     "10.0.0.4 x.w.example.org\n"
     "10.0.0.1 inline.example.org\n",
     ".",
     false,
     {{"a.example.org", "A", "10.0.0.1,10.0.0.2"},
      {"a.example.org", "AAAA", "2001:db8::2"},
      /* the file's wildcard, then the inline exact name */
      {"x.w.example.org", "A", "10.0.0.3,10.0.0.4"},
      {"1.0.0.10.in-addr.arpa", "PTR", "a.example.org.,inline.example.org."},
      {NULL, NULL, NULL}}},
    {"empty",
     "",
     NULL,
     ".",
     false,
     {{"a.example.org", "A", "UNKNOWN"},
      {"1.0.0.10.in-addr.arpa", "PTR", "NEXT"},
      {NULL, NULL, NULL}}},
};


static void
test_parse_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const parse_case_t *c = &parse_cases[i];
        cnd_hosts_table_t *t =
            table_of(c->file, c->inl, c->zones, c->no_reverse);
        for (const q_case_t *q = c->q; q->q != NULL; q++) {
            char got[512];
            answer(t, q->q, q->type, got, sizeof(got));
            if (strcmp(got, q->want) != 0) {
                cnd_ref_put(&t->ref);
                fail_msg("%s: %s %s:\n  got  %s\n  want %s", c->name, q->q,
                         q->type, got, q->want);
            }
        }
        cnd_ref_put(&t->ref);
    }
}


static void
test_long_fields(void **state)
{
    (void)state;
    /* A field over 1024 bytes is dropped, the rest of the line kept; a
     * line of any length never stops the lines after it. */
    size_t big = 5000;
    char *text = malloc(big + 200);
    assert_non_null(text);
    int o = sprintf(text, "10.0.0.1 ");
    memset(text + o, 'x', big);
    o += (int)big;
    o += sprintf(text + o, " ok.example.org\n10.0.0.2 next.example.org\n");
    cnd_hosts_table_t *t = table_of(text, NULL, ".", false);
    char got[256];
    assert_string_equal(answer(t, "ok.example.org", "A", got, sizeof(got)),
                        "10.0.0.1");
    assert_string_equal(answer(t, "next.example.org", "A", got, sizeof(got)),
                        "10.0.0.2");
    assert_int_equal(t->nnames, 2);
    cnd_ref_put(&t->ref);
    free(text);
}


static void
test_many_entries(void **state)
{
    (void)state;
    /* Tens of thousands of names: every one is found. */
    size_t n = 30000;
    char *text = malloc(n * 48);
    assert_non_null(text);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        o += (size_t)sprintf(text + o, "10.%zu.%zu.%zu host%zu.example.org\n",
                             (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, i);
    }
    cnd_hosts_table_t *t = table_of(text, NULL, ".", false);
    assert_int_equal(t->nnames, n);
    assert_int_equal(t->nptrs, n);
    for (size_t i = 0; i < n; i += 997) {
        char q[64], want[32], got[128];
        snprintf(q, sizeof(q), "HOST%zu.example.org", i);
        snprintf(want, sizeof(want), "10.%zu.%zu.%zu", (i >> 16) & 0xff,
                 (i >> 8) & 0xff, i & 0xff);
        assert_string_equal(answer(t, q, "A", got, sizeof(got)), want);
        snprintf(q, sizeof(q), "%zu.%zu.%zu.10.in-addr.arpa", i & 0xff,
                 (i >> 8) & 0xff, (i >> 16) & 0xff);
        snprintf(want, sizeof(want), "host%zu.example.org.", i);
        assert_string_equal(answer(t, q, "PTR", got, sizeof(got)), want);
    }
    cnd_ref_put(&t->ref);
    free(text);
}


static void
test_reverse_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *want; /* address, or NULL when it is no reverse name */
    } cases[] = {
        {"1.0.0.127.in-addr.arpa.", "127.0.0.1"},
        {"255.255.255.255.IN-ADDR.ARPA.", "255.255.255.255"},
        {"0.0.0.0.in-addr.arpa.", "0.0.0.0"},
        {"01.0.0.127.in-addr.arpa.", NULL},
        {"256.0.0.127.in-addr.arpa.", NULL},
        {"0.0.127.in-addr.arpa.", NULL},
        {"5.1.0.0.127.in-addr.arpa.", NULL},
        {"x.0.0.127.in-addr.arpa.", NULL},
        {"in-addr.arpa.", NULL},
        {"1.0.0.127.in-addr.arpa.example.", NULL},
        {"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
         "ip6.arpa.",
         "::1"},
        {"B.A.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2."
         "ip6.arpa.",
         "2001:db8::567:89ab"},
        {"4.0.3.0.2.0.1.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
         "ip6.arpa.",
         "1.2.3.4"},
        {"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
         "ip6.arpa.",
         "2001:db8::"},
        {"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
         "ip6.arpa.",
         NULL},
        {"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
         "ip6.arpa.",
         NULL},
        {"00.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
         "ip6.arpa.",
         NULL},
        {"example.org.", NULL},
        {".", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t name[KNOT_DNAME_MAXLEN], addr[16];
        bool v6;
        char got[INET6_ADDRSTRLEN] = "(none)";
        assert_non_null(knot_dname_from_str(name, cases[i].name, sizeof(name)));
        knot_dname_to_lower(name);
        if (cnd_hosts_reverse(name, addr, &v6)) {
            inet_ntop(v6 ? AF_INET6 : AF_INET, addr, got, sizeof(got));
        }
        const char *want = cases[i].want != NULL ? cases[i].want : "(none)";
        if (strcmp(got, want) != 0) {
            fail_msg("%s: got %s, want %s", cases[i].name, got, want);
        }
    }
}


/* ---- Corefile --------------------------------------------------------- */

/* The hosts instance of the first server block that has one. */
static cnd_hosts_conf_t *
hosts_conf(cnd_conf_t *cf)
{
    for (size_t i = 0; i < cf->ninsts; i++) {
        if (strcmp(cf->insts[i]->plugin->name, "hosts") == 0) {
            return cf->insts[i]->conf;
        }
    }
    return NULL;
}


static void
zones_str(const knot_dname_t **z, size_t n, char *out, size_t size)
{
    size_t o = (size_t)snprintf(out, size, "[");
    for (size_t i = 0; i < n; i++) {
        char text[KNOT_DNAME_TXT_MAXLEN + 1];
        knot_dname_to_str(text, z[i], sizeof(text));
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "," : "", text);
    }
    snprintf(out + o, size - o, "]");
}


/* "path=/etc/hosts zones=[.] fall=[] ttl=3600 reverse=yes reload=5s
 * inline=0" */
static void
summary(const cnd_hosts_conf_t *c, char *out, size_t size)
{
    char zones[512], fall[512], dur[32];
    zones_str(c->zones, c->nzones, zones, sizeof(zones));
    zones_str(c->fall, c->nfall, fall, sizeof(fall));
    snprintf(out, size,
             "path=%s zones=%s fall=%s ttl=%u reverse=%s reload=%s inline=%zu",
             c->path, zones, fall, c->ttl, c->no_reverse ? "no" : "yes",
             cnd_duration_format(c->reload_ns, dur, sizeof(dur)),
             c->inline_lines);
}


typedef struct {
    const char *name;
    const char *text;
    const char *want; /* summary, or NULL when it must fail */
    const char *err;  /* exact error when want is NULL */
} conf_case_t;

#define MISSING "highly_unlikely_to_exist_hosts_file"

static const conf_case_t conf_cases[] = {
    {"defaults", ". {\n hosts\n}",
     "path=/etc/hosts zones=[.] fall=[] ttl=3600 reverse=yes reload=5s "
     "inline=0",
     NULL},
    {"zones from the block keys", "Example.ORG:5300 example.net {\n hosts\n}",
     "path=/etc/hosts zones=[example.org.,example.net.] fall=[] ttl=3600 "
     "reverse=yes reload=5s inline=0",
     NULL},
    {"file and zones", ". {\n hosts /tmp miek.nl. pun.gent.\n}",
     "path=/tmp zones=[miek.nl.,pun.gent.] fall=[] ttl=3600 reverse=yes "
     "reload=5s inline=0",
     NULL},
    {"zones with a CIDR",
     ". {\n hosts /etc/hosts miek.nl 10.0.0.9/8 {\n  "
     "fallthrough\n }\n}",
     "path=/etc/hosts zones=[miek.nl.,10.in-addr.arpa.] fall=[.] ttl=3600 "
     "reverse=yes reload=5s inline=0",
     NULL},
    {"zones with scheme, port and a /23",
     ". {\n hosts /etc/hosts dns://Miek.NL:53 10.0.2.0/23\n}",
     "path=/etc/hosts zones=[miek.nl.,2.0.10.in-addr.arpa.,3.0.10.in-addr."
     "arpa.] fall=[] ttl=3600 reverse=yes reload=5s inline=0",
     NULL},
    {"every property",
     ". {\n hosts " MISSING " example.org {\n"
     "  10.0.0.1 example.org\n"
     "  ttl 60\n"
     "  no_reverse\n"
     "  reload 1m30s\n"
     "  fallthrough example.org 10.0.0.0/24\n"
     " }\n}",
     "path=" MISSING " zones=[example.org.] fall=[example.org.,0.0.10.in-"
     "addr.arpa.] ttl=60 reverse=no reload=1m30s inline=1",
     NULL},
    {"ttl bounds and sign", ". {\n hosts {\n  ttl +65535\n }\n}",
     "path=/etc/hosts zones=[.] fall=[] ttl=65535 reverse=yes reload=5s "
     "inline=0",
     NULL},
    {"ttl ignores extra arguments", ". {\n hosts {\n  ttl 1 2\n }\n}",
     "path=/etc/hosts zones=[.] fall=[] ttl=1 reverse=yes reload=5s "
     "inline=0",
     NULL},
    {"reload 0 turns it off", ". {\n hosts {\n  reload 0\n }\n}",
     "path=/etc/hosts zones=[.] fall=[] ttl=3600 reverse=yes reload=0s "
     "inline=0",
     NULL},
    {"inline lines before fallthrough",
     ". {\n hosts " MISSING " {\n"
     "  10.0.0.1 a.org b.org\n"
     "  ::1 a.org\n"
     "  junk\n"
     "  fallthrough\n"
     " }\n}",
     "path=" MISSING " zones=[.] fall=[.] ttl=3600 reverse=yes reload=5s "
     "inline=3",
     NULL},
    {"words after no_reverse are lines of their own",
     ". {\n hosts {\n  no_reverse 10.0.0.1 a.org\n }\n}",
     "path=/etc/hosts zones=[.] fall=[] ttl=3600 reverse=no reload=5s "
     "inline=1",
     NULL},
    {"the last fallthrough wins",
     ". {\n hosts {\n  fallthrough a.org\n  fallthrough\n }\n}",
     "path=/etc/hosts zones=[.] fall=[.] ttl=3600 reverse=yes reload=5s "
     "inline=0",
     NULL},
    {"empty block", ". {\n hosts {\n }\n}",
     "path=/etc/hosts zones=[.] fall=[] ttl=3600 reverse=yes reload=5s "
     "inline=0",
     NULL},

    /* errors, with CoreDNS's texts */
    {"hosts twice",
     ".:53 {\n\thosts /etc/hosts {\n\t\tfallthrough\n\t}\n\thosts "
     "/etc/hosts {\n\t\tfallthrough\n\t}\n}",
     NULL,
     "plugin/hosts: Corefile:5 - Error during parsing: this plugin can only "
     "be used once per Server Block"},
    {"unknown property after fallthrough",
     ". {\n hosts " MISSING " example.org {\n  fallthrough\n  10.0.0.1 "
     "example.org\n }\n}",
     NULL,
     "plugin/hosts: Corefile:4 - Error during parsing: unknown property "
     "'10.0.0.1'"},
    {"no_file after fallthrough",
     ". {\n hosts {\n  fallthrough\n  no_file\n "
     "}\n}",
     NULL,
     "plugin/hosts: Corefile:4 - Error during parsing: unknown property "
     "'no_file'"},
    {"ttl without a value", ". {\n hosts {\n  ttl\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: ttl needs a time in "
     "second"},
    {"ttl not a number", ". {\n hosts {\n  ttl 1h\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: ttl needs a number "
     "of second"},
    {"ttl overflow", ". {\n hosts {\n  ttl 99999999999999999999\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: ttl needs a number "
     "of second"},
    {"ttl zero", ". {\n hosts {\n  ttl 0\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: ttl provided is "
     "invalid"},
    {"ttl negative", ". {\n hosts {\n  ttl -1\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: ttl provided is "
     "invalid"},
    {"ttl too big", ". {\n hosts {\n  ttl 65536\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: ttl provided is "
     "invalid"},
    {"reload without a value", ". {\n hosts {\n  reload\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: reload needs a "
     "duration (zero seconds to disable)"},
    {"reload with two values", ". {\n hosts {\n  reload 1s 2s\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: reload needs a "
     "duration (zero seconds to disable)"},
    {"reload without a unit", ". {\n hosts {\n  reload 5\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: invalid duration for "
     "reload '5'"},
    {"reload negative", ". {\n hosts {\n  reload -1s\n }\n}", NULL,
     "plugin/hosts: Corefile:3 - Error during parsing: invalid negative "
     "duration for reload '-1s'"},
};


static void
run_conf_case(const conf_case_t *c)
{
    char err[1024], got[1024];
    cnd_conf_t *cf = cnd_conf_load(&opts, "Corefile", c->text, strlen(c->text),
                                   err, sizeof(err));
    if (c->want != NULL) {
        if (cf == NULL) {
            fail_msg("%s: unexpected error: %s", c->name, err);
        }
        cnd_hosts_conf_t *hc = hosts_conf(cf);
        assert_non_null(hc);
        summary(hc, got, sizeof(got));
        cnd_conf_unref(cf);
        if (strcmp(got, c->want) != 0) {
            fail_msg("%s:\n  got  %s\n  want %s", c->name, got, c->want);
        }
        return;
    }
    if (cf != NULL) {
        cnd_conf_unref(cf);
        fail_msg("%s: loaded, want error %s", c->name, c->err);
    }
    if (strcmp(err, c->err) != 0) {
        fail_msg("%s:\n  error %s\n  want  %s", c->name, err, c->err);
    }
}


static void
test_conf_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(conf_cases) / sizeof(conf_cases[0]); i++) {
        run_conf_case(&conf_cases[i]);
    }
}


/* Read a corpus file from the repository's copy or the shared one. */
static char *
read_corpus(const char *name)
{
    static const char *dirs[] = {"tests/corpus/corefile",
                                 "/work/shared/corpus/corefile"};
    for (size_t i = 0; i < 2; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dirs[i], name);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        char *buf = calloc(1, 65536);
        assert_non_null(buf);
        size_t n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
    }
    fail_msg("corpus file %s not found", name);
    return NULL;
}


static void
test_corpus(void **state)
{
    (void)state;
    char *ok = read_corpus("coredns_hosts_setup_ok.Corefile");
    char *bad = read_corpus("coredns_hosts_setup_error.Corefile");
    conf_case_t cases[] = {
        {"corpus: hosts ok", ok,
         "path=/etc/hosts zones=[.] fall=[] ttl=3600 reverse=yes reload=5s "
         "inline=0",
         NULL},
        {"corpus: hosts twice", bad, NULL,
         "plugin/hosts: Corefile:5 - Error during parsing: this plugin can "
         "only be used once per Server Block"},
    };
    for (size_t i = 0; i < 2; i++) {
        run_conf_case(&cases[i]);
    }
    free(ok);
    free(bad);
}


/* ---- files and reloads ------------------------------------------------ */

static char tmpdir[256];
static int logfd = -1;


static int
setup_files(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/candor-hosts-test-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    char path[300];
    snprintf(path, sizeof(path), "%s/log", tmpdir);
    logfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (logfd < 0) {
        return -1;
    }
    cnd_log_set_fd(logfd);
    return 0;
}


static int
teardown_files(void **state)
{
    (void)state;
    cnd_log_set_fd(1);
    close(logfd);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}


/* What was logged since the last call. */
static const char *
logged(void)
{
    static char buf[4096];
    ssize_t n = pread(logfd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    if (ftruncate(logfd, 0) != 0 || lseek(logfd, 0, SEEK_SET) != 0) {
        fail_msg("cannot reset the log");
    }
    return buf;
}


static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}


static cnd_conf_t *
load(const char *text, cnd_hosts_conf_t **hc)
{
    char err[1024];
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    if (cf == NULL) {
        fail_msg("unexpected error: %s", err);
    }
    *hc = hosts_conf(cf);
    assert_non_null(*hc);
    return cf;
}


static const char *
now(const cnd_hosts_conf_t *hc, const char *q, const char *type)
{
    static char buf[512];
    return answer(cnd_hosts_current(hc), q, type, buf, sizeof(buf));
}


static void
test_reload(void **state)
{
    (void)state;
    logged(); /* what earlier tests logged */
    char path[300], text[1024];
    snprintf(path, sizeof(path), "%s/hosts", tmpdir);
    write_file(path, "10.0.0.1 a.example.org\n");
    snprintf(text, sizeof(text),
             "example.org {\n hosts %s {\n  10.9.9.9 inl.example.org\n  "
             "reload 1s\n }\n}",
             path);
    cnd_hosts_conf_t *hc;
    cnd_conf_t *cf = load(text, &hc);
    assert_int_equal(cf->tickers != NULL, 1);
    assert_int_equal(cf->tickers->interval_ms, 1000);
    assert_string_equal(now(hc, "a.example.org", "A"), "10.0.0.1");
    assert_string_equal(now(hc, "inl.example.org", "A"), "10.9.9.9");
    assert_int_equal(cnd_hosts_current(hc)->file_err, 0);

    /* Unchanged: the same table stays. */
    const cnd_hosts_table_t *before = cnd_hosts_current(hc);
    cnd_hosts_reload_now(hc);
    assert_ptr_equal(cnd_hosts_current(hc), before);

    /* Changed: a new table with the file's new part and the inline one. */
    write_file(path, "10.0.0.2 a.example.org b.example.org\n");
    cnd_hosts_reload_now(hc);
    assert_ptr_not_equal(cnd_hosts_current(hc), before);
    assert_string_equal(now(hc, "a.example.org", "A"), "10.0.0.2");
    assert_string_equal(now(hc, "b.example.org", "A"), "10.0.0.2");
    assert_string_equal(now(hc, "inl.example.org", "A"), "10.9.9.9");

    /* Deleted: CoreDNS keeps serving what it had. */
    unlink(path);
    cnd_hosts_reload_now(hc);
    assert_string_equal(now(hc, "b.example.org", "A"), "10.0.0.2");
    cnd_conf_unref(cf);
    assert_string_equal(logged(), "");
}


static void
test_missing_file(void **state)
{
    (void)state;
    logged(); /* what earlier tests logged */
    char path[300], text[1024], want[512];
    snprintf(path, sizeof(path), "%s/later", tmpdir);
    snprintf(text, sizeof(text),
             ". {\n hosts %s {\n  10.9.9.9 inl.example.org\n }\n}", path);
    cnd_hosts_conf_t *hc;
    cnd_conf_t *cf = load(text, &hc);
    snprintf(want, sizeof(want),
             "[WARNING] plugin/hosts: File does not exist: %s\n", path);
    assert_string_equal(logged(), want);
    assert_int_equal(cnd_hosts_current(hc)->file_err, ENOENT);
    assert_string_equal(cnd_hosts_current(hc)->file_errstr,
                        "no such file or directory");
    assert_string_equal(now(hc, "inl.example.org", "A"), "10.9.9.9");

    /* It appears: the next check reads it. */
    write_file(path, "10.0.0.7 late.example.org\n");
    cnd_hosts_reload_now(hc);
    assert_int_equal(cnd_hosts_current(hc)->file_err, 0);
    assert_string_equal(now(hc, "late.example.org", "A"), "10.0.0.7");
    assert_string_equal(now(hc, "inl.example.org", "A"), "10.9.9.9");
    cnd_conf_unref(cf);
    unlink(path);
}


static void
test_bad_paths(void **state)
{
    (void)state;
    logged(); /* what earlier tests logged */
    char text[1024], want[1024];

    /* A directory: a warning at parse, an error when reading it. */
    snprintf(text, sizeof(text), ". {\n hosts %s\n}", tmpdir);
    cnd_hosts_conf_t *hc;
    cnd_conf_t *cf = load(text, &hc);
    snprintf(want, sizeof(want),
             "[WARNING] plugin/hosts: Hosts file \"%s\" is a directory\n"
             "[ERROR] plugin/hosts: Failed to parse hosts file \"%s\": read "
             "%s: is a directory\n",
             tmpdir, tmpdir, tmpdir);
    assert_string_equal(logged(), want);
    assert_int_equal(cnd_hosts_current(hc)->file_err, EISDIR);
    cnd_conf_unref(cf);

    /* Something stat() cannot get past: an error. */
    char file[300], err[1024];
    snprintf(file, sizeof(file), "%s/plain", tmpdir);
    write_file(file, "");
    snprintf(text, sizeof(text), ". {\n hosts %s/x\n}", file);
    cf = cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    assert_null(cf);
    snprintf(want, sizeof(want),
             "plugin/hosts: Corefile:2 - Error during parsing: unable to "
             "access hosts file '%s/x': stat %s/x: not a directory",
             file, file);
    assert_string_equal(err, want);
    unlink(file);
    logged();
}


static void
test_relative_path(void **state)
{
    (void)state;
    logged(); /* what earlier tests logged */
    /* Relative to the working directory (CoreDNS: to its root). */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    write_file("rel.hosts", "10.0.0.8 rel.example.org\n");
    cnd_hosts_conf_t *hc;
    cnd_conf_t *cf = load(". {\n hosts rel.hosts\n}", &hc);
    assert_string_equal(now(hc, "rel.example.org", "A"), "10.0.0.8");
    cnd_conf_unref(cf);
    unlink("rel.hosts");
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(logged(), "");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_cases),
        cmocka_unit_test(test_long_fields),
        cmocka_unit_test(test_many_entries),
        cmocka_unit_test(test_reverse_names),
        cmocka_unit_test(test_conf_cases),
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_relative_path),
    };
    return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
