/* SPDX-License-Identifier: MIT */
/*
 * plugins/loadbalance/loadbalance_test.c - the loadbalance line of a
 * Corefile, the weight file, and the in-place reordering of answers.
 *
 * Parse cases load a Corefile with the real plugin table and check the
 * config or CoreDNS's error.  Reordering cases build answers with libknot
 * (and by hand where a test needs a particular compression), reorder them
 * many times and check, after every pass, that libknot still parses the
 * message, that every record (owner, TTL, RDATA, names behind compression
 * pointers) is intact, and which orders came out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "core/conf.h"
#include "plugins/loadbalance/loadbalance.h"
#include "util/duration.h"

static cnd_opts_t opts = {.dns_port = 53};
static char wfile[256], wbad[256], root[512];

#define PASSES 3000


/* ---- config ----------------------------------------------------------- */

static cnd_lb_conf_t *
lb_conf(cnd_conf_t *cf)
{
    for (size_t s = 0; s < cf->nservers; s++) {
        for (size_t i = 0; i < cf->servers[s].nchain; i++) {
            if (strcmp(cf->servers[s].chain[i].plugin->name, "loadbalance") ==
                0) {
                return cf->servers[s].chain[i].conf;
            }
        }
    }
    return NULL;
}


/* "policy=weighted file=F reload=30s prefer=[192.0.2.0/24,2001:db8::/32]" */
static void
summary(const cnd_conf_t *cf, char *out, size_t size)
{
    const cnd_lb_conf_t *c = lb_conf((cnd_conf_t *)cf);
    size_t o = 0;
    char d[64];
    if (c == NULL) {
        snprintf(out, size, "no loadbalance");
        return;
    }
    if (c->policy == CND_LB_WEIGHTED) {
        o += (size_t)snprintf(out + o, size - o,
                              "policy=weighted file=%s reload=%s",
                              strcmp(c->wfile, wfile) == 0 ? "WFILE" : c->wfile,
                              cnd_duration_format(c->reload_ns, d, sizeof(d)));
    } else {
        o += (size_t)snprintf(out + o, size - o, "policy=round_robin");
    }
    o += (size_t)snprintf(out + o, size - o, " prefer=[");
    for (size_t i = 0; i < c->nprefer; i++) {
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(c->prefer[i].v6 ? AF_INET6 : AF_INET, c->prefer[i].addr, ip,
                  sizeof(ip));
        o += (size_t)snprintf(out + o, size - o, "%s%s/%u", i ? "," : "", ip,
                              c->prefer[i].bits);
    }
    snprintf(out + o, size - o, "]");
}


typedef struct {
    const char *name;
    const char *text; /* WFILE and WBAD stand for the weight files */
    const char *want;
    const char *err;
} lb_case_t;

#define ERR(line, msg)                                                         \
    "plugin/loadbalance: Corefile:" #line " - Error during parsing: " msg

static const lb_case_t cases[] = {
    {"bare", ". {\n loadbalance\n}", "policy=round_robin prefer=[]", NULL},
    {"round_robin", ". {\n loadbalance round_robin\n}",
     "policy=round_robin prefer=[]", NULL},
    {"weighted", ". {\n loadbalance weighted WFILE\n}",
     "policy=weighted file=WFILE reload=30s prefer=[]", NULL},
    {"weighted reload",
     ". {\n loadbalance weighted WFILE {\n  reload 10s\n }\n}",
     "policy=weighted file=WFILE reload=10s prefer=[]", NULL},
    {"weighted no reload",
     ". {\n loadbalance weighted WFILE {\n  reload 0s\n }\n}",
     "policy=weighted file=WFILE reload=0s prefer=[]", NULL},
    {"weighted prefer then reload",
     ". {\n loadbalance weighted WFILE {\n  prefer 192.0.2.0/24 "
     "2001:db8::/32\n  reload 10s\n }\n}",
     "policy=weighted file=WFILE reload=10s "
     "prefer=[192.0.2.0/24,2001:db8::/32]",
     NULL},
    {"weighted reload then prefer",
     ". {\n loadbalance weighted WFILE {\n  reload 10s\n  prefer "
     "192.0.2.0/24 2001:db8::/32\n }\n}",
     "policy=weighted file=WFILE reload=10s "
     "prefer=[192.0.2.0/24,2001:db8::/32]",
     NULL},
    {"prefer masks and maps",
     ". {\n loadbalance {\n  prefer 10.1.2.3/8 ::ffff:192.0.2.0/120 "
     "2001:db8::1/0\n  prefer 172.16.0.0/12\n }\n}",
     "policy=round_robin prefer=[10.0.0.0/8,192.0.2.0/24,::/0,"
     "172.16.0.0/12]",
     NULL},
    {"missing file retried later",
     ". {\n loadbalance weighted /nonexistent/weights\n}",
     "policy=weighted file=/nonexistent/weights reload=30s prefer=[]", NULL},
    {"two lines: the last policy",
     ". {\n loadbalance weighted WFILE\n "
     "loadbalance round_robin\n}",
     "policy=round_robin prefer=[]", NULL},

    {"round_robin reload",
     ". {\n loadbalance round_robin {\n  reload 10s\n }\n}", NULL,
     ERR(3, "unknown property 'reload'")},
    {"reload without value",
     ". {\n loadbalance weighted WFILE {\n  reload\n }\n}", NULL,
     ERR(3, "reload duration value is missing")},
    {"invalid CIDR",
     ". {\n loadbalance weighted WFILE {\n  prefer invalid\n }\n}", NULL,
     ERR(3, "invalid CIDR \"invalid\": invalid CIDR address: invalid")},
    {"CIDR too long", ". {\n loadbalance {\n  prefer 192.0.2.0/33\n }\n}", NULL,
     ERR(3, "invalid CIDR \"192.0.2.0/33\": invalid CIDR address: "
            "192.0.2.0/33")},
    {"CIDR without length", ". {\n loadbalance {\n  prefer 192.0.2.1\n }\n}",
     NULL,
     ERR(3, "invalid CIDR \"192.0.2.1\": invalid CIDR address: 192.0.2.1")},
    {"unknown policy", ". {\n loadbalance fleeb\n}", NULL,
     ERR(2, "unknown policy: fleeb")},
    {"round_robin argument", ". {\n loadbalance round_robin a\n}", NULL,
     ERR(2, "unknown property for round_robin")},
    {"weighted without file", ". {\n loadbalance weighted\n}", NULL,
     ERR(2, "missing weight file argument")},
    {"weighted two files", ". {\n loadbalance weighted a b\n}", NULL,
     ERR(2, "unexpected argument(s)")},
    {"unknown property", ". {\n loadbalance weighted WFILE {\n  susu\n }\n}",
     NULL, ERR(3, "unknown property 'susu'")},
    {"bad duration", ". {\n loadbalance weighted WFILE {\n  reload a\n }\n}",
     NULL, ERR(3, "invalid reload duration 'a'")},
    {"duration without unit",
     ". {\n loadbalance weighted WFILE {\n  reload 30\n }\n}", NULL,
     ERR(3, "invalid reload duration '30'")},
    {"negative duration",
     ". {\n loadbalance weighted WFILE {\n  reload -1s\n }\n}", NULL,
     ERR(3, "invalid reload duration '-1s'")},
    {"reload two values",
     ". {\n loadbalance weighted WFILE {\n  reload 30s  a\n }\n}", NULL,
     ERR(3, "unexpected argument")},
    {"missing file, no reload",
     ". {\n loadbalance weighted /nonexistent/weights {\n  reload 0s\n "
     "}\n}",
     NULL,
     ERR(2, "weight file open error: /nonexistent/weights: no such file or "
            "directory")},
    {"broken weight file", ". {\n loadbalance weighted WBAD\n}", NULL, "WBAD"},
};


/* Replace WFILE and WBAD with the temporary files' names. */
static void
expand(const char *in, char *out, size_t size)
{
    size_t o = 0;
    while (*in != '\0' && o < size - 1) {
        const char *sub = NULL;
        if (strncmp(in, "WFILE", 5) == 0) {
            sub = wfile;
        } else if (strncmp(in, "WBAD", 4) == 0) {
            sub = wbad;
        }
        if (sub != NULL) {
            o += (size_t)snprintf(out + o, size - o, "%s", sub);
            in += 4 + (in[1] == 'F');
        } else {
            out[o++] = *in++;
        }
    }
    out[o] = '\0';
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
load(const char *text, char *err, size_t errlen)
{
    char buf[2048];
    expand(text, buf, sizeof(buf));
    return cnd_conf_load(&opts, "Corefile", buf, strlen(buf), err, errlen);
}


static void
test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const lb_case_t *c = &cases[i];
        char err[1024] = "", got[1024];
        cnd_conf_t *cf = load(c->text, err, sizeof(err));
        if (c->want != NULL) {
            if (cf == NULL) {
                fail_msg("%s: unexpected error: %s", c->name, err);
            }
            summary(cf, got, sizeof(got));
            cnd_conf_unref(cf);
            if (strcmp(got, c->want) != 0) {
                fail_msg("%s:\n  got  %s\n  want %s", c->name, got, c->want);
            }
            continue;
        }
        if (cf != NULL) {
            summary(cf, got, sizeof(got));
            cnd_conf_unref(cf);
            fail_msg("%s: loaded (%s), want %s", c->name, got, c->err);
        }
        if (strcmp(c->err, "WBAD") == 0) {
            char want[1024];
            snprintf(want, sizeof(want),
                     ERR(2, "wrong weight value:\"0\" in weight file %s:4"),
                     wbad);
            assert_string_equal(err, want);
        } else if (strcmp(err, c->err) != 0) {
            fail_msg("%s:\n  error %s\n  want  %s", c->name, err, c->err);
        }
    }
}


/* The two corpus files CoreDNS's own setup test is made from. */
static void
test_corpus(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *err;
    } files[] = {
        {"coredns_loadbalance_setup_ok.Corefile", NULL},
        {"coredns_loadbalance_setup_error.Corefile",
         "plugin/loadbalance: %s:2 - Error during parsing: unknown policy: "
         "fleeb"},
    };
    for (size_t i = 0; i < 2; i++) {
        char path[1024], text[4096], err[1024] = "";
        snprintf(path, sizeof(path), "%stests/corpus/corefile/%s", root,
                 files[i].file);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            fail_msg("cannot open %s", path);
        }
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        cnd_conf_t *cf = cnd_conf_load(&opts, path, text, n, err, sizeof(err));
        if (files[i].err == NULL) {
            if (cf == NULL) {
                fail_msg("%s: %s", path, err);
            }
            assert_non_null(lb_conf(cf));
            assert_int_equal(lb_conf(cf)->policy, CND_LB_ROUND_ROBIN);
            cnd_conf_unref(cf);
        } else {
            char want[2048];
            assert_null(cf);
            snprintf(want, sizeof(want), files[i].err, path);
            assert_string_equal(err, want);
        }
    }
}


/* Weight-file errors: CoreDNS's messages, with the line. */
static void
test_weight_file_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *msg; /* %s: the file */
    } bad[] = {
        {"# c\nwww.example.org\n10.0.0.1 1 extra\n",
         "could not parse weight line:\"10.0.0.1 1 extra\" in weight file "
         "%s:3"},
        {"www.example.org\n10.0.0.x 3\n",
         "wrong IP address:\"10.0.0.x\" in weight file %s:2"},
        {"www.example.org\n10.0.0.1 256\n",
         "wrong weight value:\"256\" in weight file %s:2"},
        {"www.example.org\n10.0.0.1 -1\n",
         "wrong weight value:\"-1\" in weight file %s:2"},
        {"10.0.0.1 3\n", "missing domain name in weight file %s:1"},
        {"www.example.org\n10.0.0.1\n",
         "wrong domain name:\"10.0.0.1\" in weight file %s:2. (Maybe a "
         "missing weight value?)"},
    };
    char path[256];
    snprintf(path, sizeof(path), "/tmp/cnd-lbw-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], err[1024] = "", msg[512], want[1024];
        write_file(path, bad[i].text);
        snprintf(text, sizeof(text), ". {\n loadbalance weighted %s\n}", path);
        cnd_conf_t *cf = cnd_conf_load(&opts, "Corefile", text, strlen(text),
                                       err, sizeof(err));
        if (cf != NULL) {
            cnd_conf_unref(cf);
            fail_msg("case %zu loaded", i);
        }
        snprintf(msg, sizeof(msg), bad[i].msg, path);
        snprintf(want, sizeof(want), ERR(2, "%s"), msg);
        assert_string_equal(err, want);
    }
    unlink(path);
}


/* ---- messages --------------------------------------------------------- */

typedef struct {
    uint8_t wire[65535];
    size_t len;
} msg_t;

static knot_dname_t *
dn(const char *s)
{
    static uint8_t bufs[16][KNOT_DNAME_MAXLEN];
    static int next;
    uint8_t *b = bufs[next++ % 16];
    assert_non_null(knot_dname_from_str(b, s, KNOT_DNAME_MAXLEN));
    return b;
}


/* RRsets put into the packet being built, freed by finish(). */
static knot_rrset_t made[64];
static size_t nmade;

static knot_rrset_t *
new_rrset(const char *owner, uint16_t type, uint32_t ttl)
{
    assert_true(nmade < 64);
    knot_rrset_t *rr = &made[nmade++];
    knot_rrset_init(rr, knot_dname_copy(dn(owner), NULL), type, KNOT_CLASS_IN,
                    ttl);
    return rr;
}


/* Add one RRset of @n records of @type for @owner; @rdata holds @n
 * entries of @rdlen bytes. */
static void
put(knot_pkt_t *pkt, const char *owner, uint16_t type, uint32_t ttl,
    const uint8_t *rdata, size_t rdlen, size_t n)
{
    knot_rrset_t *rr = new_rrset(owner, type, ttl);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(
            knot_rrset_add_rdata(rr, rdata + i * rdlen, (uint16_t)rdlen, NULL),
            KNOT_EOK);
    }
    assert_int_equal(knot_pkt_put(pkt, 0, rr, 0), KNOT_EOK);
}


static void
put_name(knot_pkt_t *pkt, const char *owner, uint16_t type, uint16_t pref,
         const char *target)
{
    uint8_t rd[2 + KNOT_DNAME_MAXLEN];
    size_t off = 0;
    if (type == KNOT_RRTYPE_MX) {
        rd[0] = (uint8_t)(pref >> 8);
        rd[1] = (uint8_t)pref;
        off = 2;
    }
    const knot_dname_t *t = dn(target);
    size_t tl = knot_dname_size(t);
    memcpy(rd + off, t, tl);
    put(pkt, owner, type, 300, rd, off + tl, 1);
}


static knot_pkt_t *
begin(const char *qname, uint16_t qtype)
{
    knot_pkt_t *pkt = knot_pkt_new(NULL, 65535, NULL);
    assert_non_null(pkt);
    assert_int_equal(
        knot_pkt_put_question(pkt, dn(qname), KNOT_CLASS_IN, qtype), KNOT_EOK);
    knot_wire_set_qr(pkt->wire);
    knot_wire_set_aa(pkt->wire);
    return pkt;
}


static void
finish(knot_pkt_t *pkt, msg_t *m)
{
    memcpy(m->wire, pkt->wire, pkt->size);
    m->len = pkt->size;
    knot_pkt_free(pkt);
    for (size_t i = 0; i < nmade; i++) {
        knot_rrset_clear(&made[i], NULL);
    }
    nmade = 0;
}


/* "www.example.org CNAME web.example.org" then @n A records of
 * web.example.org, 10.0.0.1 .. 10.0.0.n, TTL 60. */
static void
msg_cname_a(msg_t *m, size_t n)
{
    knot_pkt_t *pkt = begin("www.example.org", KNOT_RRTYPE_A);
    uint8_t rd[32][4];
    for (size_t i = 0; i < n; i++) {
        uint8_t a[4] = {10, 0, 0, (uint8_t)(i + 1)};
        memcpy(rd[i], a, 4);
    }
    knot_pkt_begin(pkt, KNOT_ANSWER);
    put_name(pkt, "www.example.org", KNOT_RRTYPE_CNAME, 0, "web.example.org");
    put(pkt, "web.example.org", KNOT_RRTYPE_A, 60, rd[0], 4, n);
    finish(pkt, m);
}


/* AAAA x3 and MX x4 of example.org, the exchanges' addresses in the
 * additional section (their owners point into the MX RDATA). */
static void
msg_aaaa_mx(msg_t *m)
{
    knot_pkt_t *pkt = begin("example.org", KNOT_RRTYPE_ANY);
    uint8_t v6[3][16];
    for (int i = 0; i < 3; i++) {
        inet_pton(AF_INET6, "2001:db8::1", v6[i]);
        v6[i][15] = (uint8_t)(i + 1);
    }
    knot_pkt_begin(pkt, KNOT_ANSWER);
    put(pkt, "example.org", KNOT_RRTYPE_AAAA, 120, v6[0], 16, 3);
    knot_rrset_t *mx = new_rrset("example.org", KNOT_RRTYPE_MX, 300);
    static const char *const ex[] = {"mx1.example.org", "mx2.example.org",
                                     "mx3.example.org", "mail.example.org"};
    for (int i = 0; i < 4; i++) {
        uint8_t rd[64] = {0, (uint8_t)(10 * (i + 1))};
        const knot_dname_t *t = dn(ex[i]);
        memcpy(rd + 2, t, knot_dname_size(t));
        knot_rrset_add_rdata(mx, rd, (uint16_t)(2 + knot_dname_size(t)), NULL);
    }
    assert_int_equal(knot_pkt_put(pkt, 0, mx, 0), KNOT_EOK);
    const knot_rrinfo_t *info = &pkt->rr_info[pkt->rrset_count - 1];
    uint16_t hint[4];
    for (int i = 0; i < 4; i++) {
        hint[i] = knot_compr_hint(info, KNOT_COMPR_HINT_RDATA + i);
    }
    /* As knotd does: the owners of the additional records point at the
     * exchanges in the MX RDATA. */
    knot_pkt_begin(pkt, KNOT_ADDITIONAL);
    for (int i = 0; i < 4; i++) {
        uint8_t a[4] = {192, 0, 2, (uint8_t)(i + 1)};
        knot_rrset_t *rr = new_rrset(ex[i], KNOT_RRTYPE_A, 30);
        knot_rrset_add_rdata(rr, a, 4, NULL);
        assert_int_equal(knot_pkt_put(pkt, hint[i], rr, 0), KNOT_EOK);
    }
    finish(pkt, m);
    /* Check that they do: 2 bytes each, a pointer into the answer. */
    size_t owners = 0;
    for (size_t o = 0; o + 1 < m->len; o++) {
        if ((m->wire[o] & 0xc0) == 0xc0 && o + 12 < m->len &&
            m->wire[o + 2] == 0 && m->wire[o + 3] == KNOT_RRTYPE_A &&
            m->wire[o + 11] == 4 &&
            (m->wire[o + 1] | (m->wire[o] & 0x3f) << 8) > 12 + 17) {
            owners++;
        }
    }
    assert_int_equal(owners, 4);
}


/* The records of a message as text, one line each, section by section:
 * "1 web.example.org.\t60\tA\t10.0.0.3".  Returns the count, or -1
 * when libknot does not parse the message. */
static int
dump(const uint8_t *wire, size_t len, char lines[][256], size_t max)
{
    uint8_t copy[65535];
    memcpy(copy, wire, len);
    knot_pkt_t *pkt = knot_pkt_new(copy, (uint16_t)len, NULL);
    if (pkt == NULL || knot_pkt_parse(pkt, 0) != KNOT_EOK) {
        knot_pkt_free(pkt);
        return -1;
    }
    size_t n = 0;
    for (int s = KNOT_ANSWER; s <= KNOT_ADDITIONAL; s++) {
        const knot_pktsection_t *sec = knot_pkt_section(pkt, s);
        for (uint16_t i = 0; i < sec->count && n < max; i++) {
            const knot_rrset_t *rr = knot_pkt_rr(sec, i);
            char owner[KNOT_DNAME_TXT_MAXLEN + 1], type[32], data[200];
            knot_dname_to_str(owner, rr->owner, sizeof(owner));
            knot_rrtype_to_string(rr->type, type, sizeof(type));
            if (knot_rrset_txt_dump_data(rr, 0, data, sizeof(data),
                                         &KNOT_DUMP_STYLE_DEFAULT) < 0) {
                knot_pkt_free(pkt);
                return -1;
            }
            snprintf(lines[n++], 256, "%d %s\t%u\t%s\t%s", s + 1, owner,
                     rr->ttl, type, data);
        }
    }
    knot_pkt_free(pkt);
    return (int)n;
}


static int
cmp_line(const void *a, const void *b)
{
    return strcmp(a, b);
}


/* @after holds exactly @before's records (a multiset) and parses. */
static void
assert_same_records(const msg_t *before, const uint8_t *after, size_t len)
{
    static char a[512][256], b[512][256];
    int na = dump(before->wire, before->len, a, 512);
    int nb = dump(after, len, b, 512);
    assert_true(na >= 0);
    if (nb != na) {
        fail_msg("records: %d before, %d after", na, nb);
    }
    qsort(a, (size_t)na, sizeof(a[0]), cmp_line);
    qsort(b, (size_t)nb, sizeof(b[0]), cmp_line);
    for (int i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0) {
            fail_msg("record changed:\n  %s\n  %s", a[i], b[i]);
        }
    }
}


/* A key for the order of the records of @type in @wire: their last
 * RDATA bytes, e.g. "3142". */
static void
order_key(const uint8_t *wire, size_t len, uint16_t type, char *key,
          size_t size)
{
    static char lines[512][256];
    int n = dump(wire, len, lines, 512);
    char tname[16];
    size_t o = 0;
    knot_rrtype_to_string(type, tname, sizeof(tname));
    key[0] = '\0';
    for (int i = 0; i < n; i++) {
        char pat[32];
        snprintf(pat, sizeof(pat), "\t%s\t", tname);
        const char *p = strstr(lines[i], pat);
        if (p == NULL) {
            continue;
        }
        const char *v = p + strlen(pat);
        if (type == KNOT_RRTYPE_MX) {
            v = strchr(v, ' ') + 1; /* the exchange's first label */
            o += (size_t)snprintf(key + o, size - o, "%.3s,", v);
        } else {
            o += (size_t)snprintf(
                key + o, size - o, "%s,",
                strrchr(v, type == KNOT_RRTYPE_A ? '.' : ':') + 1);
        }
    }
}


/* Distinct strings seen, with counts. */
typedef struct {
    char key[64][128];
    int count[64];
    size_t n;
} seen_t;

static void
seen_add(seen_t *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->key[i], key) == 0) {
            s->count[i]++;
            return;
        }
    }
    assert_true(s->n < 64);
    snprintf(s->key[s->n], sizeof(s->key[0]), "%s", key);
    s->count[s->n++] = 1;
}


static cnd_lb_conf_t rr_conf = {.policy = CND_LB_ROUND_ROBIN};


/* ---- reordering ------------------------------------------------------- */

/* CNAME then 8 A: the CNAME stays first, owners and TTLs stay, every
 * address leads sometimes; with 3 A every one of the 6 orders appears. */
static void
test_cname_then_a(void **state)
{
    (void)state;
    static msg_t orig, m;
    cnd_lb_work_t *w = cnd_lb_work_new(12345);
    assert_non_null(w);
    msg_cname_a(&orig, 8);
    static seen_t first;
    memset(&first, 0, sizeof(first));
    for (int pass = 0; pass < PASSES; pass++) {
        m = orig;
        assert_int_equal(cnd_lb_apply(&rr_conf, w, m.wire, m.len) >= 0, 1);
        assert_same_records(&orig, m.wire, m.len);
        char lines[16][256];
        assert_int_equal(dump(m.wire, m.len, lines, 16), 9);
        assert_string_equal(lines[0],
                            "1 www.example.org.\t300\tCNAME\tweb.example.org.");
        for (int i = 1; i < 9; i++) {
            assert_non_null(strstr(lines[i], "1 web.example.org.\t60\tA\t"));
        }
        char key[128];
        order_key(m.wire, m.len, KNOT_RRTYPE_A, key, sizeof(key));
        *strchr(key, ',') = '\0';
        seen_add(&first, key);
    }
    assert_int_equal(first.n, 8);
    for (size_t i = 0; i < first.n; i++) {
        assert_true(first.count[i] > PASSES / 8 / 2); /* roughly even */
    }

    static seen_t orders;
    memset(&orders, 0, sizeof(orders));
    msg_cname_a(&orig, 3);
    for (int pass = 0; pass < 600; pass++) {
        m = orig;
        cnd_lb_apply(&rr_conf, w, m.wire, m.len);
        assert_same_records(&orig, m.wire, m.len);
        char key[128];
        order_key(m.wire, m.len, KNOT_RRTYPE_A, key, sizeof(key));
        seen_add(&orders, key);
    }
    assert_int_equal(orders.n, 6);
    for (size_t i = 0; i < orders.n; i++) {
        assert_true(orders.count[i] > 50);
    }
    cnd_lb_work_free(w);
}


/* AAAA and MX, with additional records whose owners point into the MX
 * RDATA: every order of both sets appears, and every name behind a moved
 * pointer still reads the same (assert_same_records compares the
 * decompressed records). */
static void
test_aaaa_mx(void **state)
{
    (void)state;
    static msg_t orig, m;
    static seen_t aaaa, mx;
    memset(&aaaa, 0, sizeof(aaaa));
    memset(&mx, 0, sizeof(mx));
    cnd_lb_work_t *w = cnd_lb_work_new(777);
    msg_aaaa_mx(&orig);
    int changed = 0;
    for (int pass = 0; pass < PASSES; pass++) {
        m = orig;
        int r = cnd_lb_apply(&rr_conf, w, m.wire, m.len);
        assert_true(r >= 0);
        changed += r > 0;
        assert_same_records(&orig, m.wire, m.len);
        char key[128];
        order_key(m.wire, m.len, KNOT_RRTYPE_AAAA, key, sizeof(key));
        seen_add(&aaaa, key);
        order_key(m.wire, m.len, KNOT_RRTYPE_MX, key, sizeof(key));
        seen_add(&mx, key);
        /* the additional A records keep their names and order */
        char lines[16][256];
        assert_int_equal(dump(m.wire, m.len, lines, 16), 11);
        assert_string_equal(lines[7], "3 mx1.example.org.\t30\tA\t192.0.2.1");
        assert_string_equal(lines[10], "3 mail.example.org.\t30\tA\t192.0.2.4");
    }
    assert_true(changed > PASSES * 9 / 10);
    assert_int_equal(aaaa.n, 6);
    assert_int_equal(mx.n, 24);
    cnd_lb_work_free(w);
}


/* Write a name in wire format (no compression) at @p. */
static size_t
wname(uint8_t *p, const char *s)
{
    const knot_dname_t *d = dn(s);
    size_t l = knot_dname_size(d);
    memcpy(p, d, l);
    return l;
}


static size_t
whdr(uint8_t *p, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
    uint8_t h[10] = {(uint8_t)(type >> 8),
                     (uint8_t)type,
                     0,
                     1,
                     (uint8_t)(ttl >> 24),
                     (uint8_t)(ttl >> 16),
                     (uint8_t)(ttl >> 8),
                     (uint8_t)ttl,
                     (uint8_t)(rdlen >> 8),
                     (uint8_t)rdlen};
    memcpy(p, h, 10);
    return 10;
}


/* An MX set whose exchanges are compressed against each other, by hand:
 * "mx.provider.net" in full in the first record, "a" and "b" + pointer to
 * it in the next two.  The first must stay first; the other two swap. */
static void
test_mx_compressed_against_each_other(void **state)
{
    (void)state;
    static msg_t orig, m;
    uint8_t *p = orig.wire;
    uint8_t hdr[12] = {0x12, 0x34, 0x84, 0, 0, 1, 0, 3, 0, 0, 0, 1};
    memcpy(p, hdr, 12);
    size_t o = 12;
    o += wname(p + o, "example.org");
    p[o++] = 0;
    p[o++] = KNOT_RRTYPE_MX;
    p[o++] = 0;
    p[o++] = 1;
    /* MX 10 mx.provider.net */
    p[o++] = 0xc0;
    p[o++] = 12;
    o += whdr(p + o, KNOT_RRTYPE_MX, 300, 2 + 17);
    p[o++] = 0;
    p[o++] = 10;
    size_t first_ex = o;
    o += wname(p + o, "mx.provider.net");
    /* MX 20 a.<ptr>, MX 30 b.<ptr> */
    size_t second_ex = 0;
    for (int i = 0; i < 2; i++) {
        p[o++] = 0xc0;
        p[o++] = 12;
        o += whdr(p + o, KNOT_RRTYPE_MX, 300, 2 + 2 + 2);
        p[o++] = 0;
        p[o++] = (uint8_t)(20 + 10 * i);
        if (i == 0) {
            second_ex = o;
        }
        p[o++] = 1;
        p[o++] = (uint8_t)('a' + i);
        p[o++] = (uint8_t)(0xc0 | (first_ex >> 8));
        p[o++] = (uint8_t)first_ex;
    }
    /* additional: a.mx.provider.net A, owner pointing into record 2 */
    p[o++] = (uint8_t)(0xc0 | (second_ex >> 8));
    p[o++] = (uint8_t)second_ex;
    o += whdr(p + o, KNOT_RRTYPE_A, 30, 4);
    uint8_t a[4] = {192, 0, 2, 99};
    memcpy(p + o, a, 4);
    o += 4;
    orig.len = o;

    char lines[8][256];
    assert_int_equal(dump(orig.wire, orig.len, lines, 8), 4);
    assert_string_equal(lines[3], "3 a.mx.provider.net.\t30\tA\t192.0.2.99");

    static seen_t orders;
    memset(&orders, 0, sizeof(orders));
    cnd_lb_work_t *w = cnd_lb_work_new(99);
    for (int pass = 0; pass < 400; pass++) {
        m = orig;
        assert_true(cnd_lb_apply(&rr_conf, w, m.wire, m.len) >= 0);
        assert_same_records(&orig, m.wire, m.len);
        char key[128];
        order_key(m.wire, m.len, KNOT_RRTYPE_MX, key, sizeof(key));
        seen_add(&orders, key);
    }
    assert_int_equal(orders.n, 2);
    assert_true(strncmp(orders.key[0], "mx.", 3) == 0);
    assert_true(strncmp(orders.key[1], "mx.", 3) == 0);
    cnd_lb_work_free(w);
}


/* A set whose owner is written in full and whose next owners point to it:
 * the owners stay, only the bodies move. */
static void
test_owner_written_in_full(void **state)
{
    (void)state;
    static msg_t orig, m;
    knot_pkt_t *pkt = begin("x.example.org", KNOT_RRTYPE_NS);
    knot_pkt_begin(pkt, KNOT_ANSWER);
    put_name(pkt, "x.example.org", KNOT_RRTYPE_NS, 0, "ns.other.net");
    knot_pkt_begin(pkt, KNOT_ADDITIONAL);
    uint8_t rd[4][4] = {{1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}, {4, 4, 4, 4}};
    put(pkt, "glue.other.net", KNOT_RRTYPE_A, 30, rd[0], 4, 4);
    put(pkt, "glue.other.net", KNOT_RRTYPE_AAAA, 30,
        (const uint8_t *)"0123456789abcdef", 16, 1);
    finish(pkt, &orig);
    static seen_t orders;
    memset(&orders, 0, sizeof(orders));
    cnd_lb_work_t *w = cnd_lb_work_new(5);
    for (int pass = 0; pass < 1000; pass++) {
        m = orig;
        assert_true(cnd_lb_apply(&rr_conf, w, m.wire, m.len) >= 0);
        assert_same_records(&orig, m.wire, m.len);
        char key[128];
        order_key(m.wire, m.len, KNOT_RRTYPE_A, key, sizeof(key));
        seen_add(&orders, key);
    }
    assert_int_equal(orders.n, 24);
    cnd_lb_work_free(w);
}


/* Not NOERROR, AXFR, IXFR, single records, other types: not a byte
 * changes. */
static void
test_untouched(void **state)
{
    (void)state;
    static msg_t orig, m;
    cnd_lb_work_t *w = cnd_lb_work_new(1);
    msg_cname_a(&orig, 4);
    static const struct {
        uint8_t rcode;
        uint16_t qtype;
    } cases_[] = {
        {KNOT_RCODE_NXDOMAIN, KNOT_RRTYPE_A},
        {KNOT_RCODE_SERVFAIL, KNOT_RRTYPE_A},
        {KNOT_RCODE_REFUSED, KNOT_RRTYPE_A},
        {KNOT_RCODE_NOERROR, KNOT_RRTYPE_AXFR},
        {KNOT_RCODE_NOERROR, KNOT_RRTYPE_IXFR},
    };
    for (size_t i = 0; i < sizeof(cases_) / sizeof(cases_[0]); i++) {
        for (int pass = 0; pass < 50; pass++) {
            m = orig;
            knot_wire_set_rcode(m.wire, cases_[i].rcode);
            size_t qt = 12 + knot_dname_size(m.wire + 12);
            m.wire[qt] = (uint8_t)(cases_[i].qtype >> 8);
            m.wire[qt + 1] = (uint8_t)cases_[i].qtype;
            msg_t copy = m;
            assert_int_equal(cnd_lb_apply(&rr_conf, w, m.wire, m.len), 0);
            assert_memory_equal(m.wire, copy.wire, m.len);
        }
    }
    /* TXT and NS sets, single A: nothing to do */
    knot_pkt_t *pkt = begin("example.org", KNOT_RRTYPE_TXT);
    knot_pkt_begin(pkt, KNOT_ANSWER);
    put(pkt, "example.org", KNOT_RRTYPE_TXT, 60, (const uint8_t *)"\3abc\3def",
        4, 2);
    put(pkt, "example.org", KNOT_RRTYPE_A, 60, (const uint8_t *)"\1\2\3\4", 4,
        1);
    finish(pkt, &orig);
    for (int pass = 0; pass < 50; pass++) {
        m = orig;
        assert_int_equal(cnd_lb_apply(&rr_conf, w, m.wire, m.len), 0);
        assert_memory_equal(m.wire, orig.wire, m.len);
    }
    /* No question: CoreDNS would crash; candor leaves it. */
    uint8_t bare[12] = {0, 1, 0x84, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(cnd_lb_apply(&rr_conf, w, bare, sizeof(bare)), 0);
    cnd_lb_work_free(w);
}


/* prefer: the preferred addresses lead, in the networks' order, each
 * group still shuffled; the rest follows, shuffled. */
static void
test_prefer(void **state)
{
    (void)state;
    char err[512];
    const char *text = ". {\n loadbalance {\n  prefer 10.0.0.7/32 "
                       "10.0.0.0/30\n }\n}";
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    if (cf == NULL) {
        fail_msg("%s", err);
    }
    const cnd_lb_conf_t *c = lb_conf(cf);
    static msg_t orig, m;
    static seen_t second, rest;
    memset(&second, 0, sizeof(second));
    memset(&rest, 0, sizeof(rest));
    msg_cname_a(&orig, 8);
    cnd_lb_work_t *w = cnd_lb_work_new(4242);
    for (int pass = 0; pass < 1000; pass++) {
        m = orig;
        cnd_lb_apply(c, w, m.wire, m.len);
        assert_same_records(&orig, m.wire, m.len);
        char key[128];
        order_key(m.wire, m.len, KNOT_RRTYPE_A, key, sizeof(key));
        /* 10.0.0.7 first, then 1, 2, 3 (10.0.0.0/30) in some order */
        assert_true(strncmp(key, "7,", 2) == 0);
        char grp[8] = {key[2], key[4], key[6], 0};
        assert_non_null(strchr(grp, '1'));
        assert_non_null(strchr(grp, '2'));
        assert_non_null(strchr(grp, '3'));
        seen_add(&second, grp);
        seen_add(&rest, key + 8);
    }
    assert_int_equal(second.n, 6);
    assert_int_equal(rest.n, 24);
    cnd_conf_unref(cf);
    cnd_lb_work_free(w);
}


/* weighted: 10.0.0.3 weighs 200 against 1 for each of the other seven;
 * the rest keeps its order; other names and question types: uniform or
 * untouched; reload picks up a new file and keeps the old on errors. */
static void
test_weighted(void **state)
{
    (void)state;
    char path[256], err[512], text[512];
    snprintf(path, sizeof(path), "/tmp/cnd-lbw-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "# weights\n\nWEB.example.org\n10.0.0.3 200\n"
                     "::ffff:10.0.0.5 1\nother.example.org.\n10.9.9.9 9\n");
    snprintf(text, sizeof(text),
             ". {\n loadbalance weighted %s {\n  reload 0s\n }\n}", path);
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    if (cf == NULL) {
        fail_msg("%s", err);
    }
    cnd_lb_conf_t *c = lb_conf(cf);
    assert_int_equal(cnd_lb_weight_count(c), 3);
    static msg_t orig, m;
    msg_cname_a(&orig, 8);
    cnd_lb_work_t *w = cnd_lb_work_new(31337);
    int top3 = 0;
    for (int pass = 0; pass < PASSES; pass++) {
        m = orig;
        cnd_lb_apply(c, w, m.wire, m.len);
        assert_same_records(&orig, m.wire, m.len);
        char key[128];
        order_key(m.wire, m.len, KNOT_RRTYPE_A, key, sizeof(key));
        top3 += key[0] == '3';
        /* only the first moved: it swapped places with the old first */
        char want[] = "1,2,3,4,5,6,7,8,";
        size_t k = (size_t)(key[0] - '1') * 2;
        want[k] = '1';
        want[0] = key[0];
        assert_string_equal(key, want);
    }
    /* 200 / 207 expected */
    assert_true(top3 > PASSES * 93 / 100);

    /* MX question: weighted leaves the answer alone. */
    m = orig;
    size_t qt = 12 + knot_dname_size(m.wire + 12);
    m.wire[qt + 1] = KNOT_RRTYPE_MX;
    msg_t copy = m;
    assert_int_equal(cnd_lb_apply(c, w, m.wire, m.len), 0);
    assert_memory_equal(m.wire, copy.wire, m.len);

    /* A new file: 10.0.0.8 heavy.  A broken one later: kept. */
    write_file(path, "web.example.org\n10.0.0.8 255\n");
    cnd_lb_reload_now(c);
    assert_int_equal(cnd_lb_weight_count(c), 1);
    write_file(path, "web.example.org\n10.0.0.8 0\n");
    cnd_lb_reload_now(c);
    assert_int_equal(cnd_lb_weight_count(c), 1);
    int top8 = 0;
    for (int pass = 0; pass < 1000; pass++) {
        m = orig;
        cnd_lb_apply(c, w, m.wire, m.len);
        char key[128];
        order_key(m.wire, m.len, KNOT_RRTYPE_A, key, sizeof(key));
        top8 += key[0] == '8';
    }
    assert_true(top8 > 940); /* 255 / 262 */
    cnd_lb_work_free(w);
    cnd_conf_unref(cf);
    unlink(path);
}


/* Every response of the corpus (real servers' answers, hand-made
 * compression cases, fuzzer finds) and every malformed message: never a
 * crash or an out-of-bounds access (make asan), and a message libknot
 * parsed before still parses to the same records after. */
static void
test_corpus_messages(void **state)
{
    (void)state;
    static const char *const dirs[] = {"tests/corpus/responses",
                                       "tests/corpus/malformed"};
    cnd_lb_work_t *w = cnd_lb_work_new(2024);
    cnd_lb_conf_t pref = {.policy = CND_LB_ROUND_ROBIN};
    cnd_lb_net_t nets[1] = {{.addr = {192, 0, 2, 0}, .bits = 24}};
    pref.prefer = nets;
    pref.nprefer = 1;
    size_t files = 0, reordered = 0;
    static msg_t orig, m;
    for (size_t d = 0; d < 2; d++) {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s%s", root, dirs[d]);
        DIR *dh = opendir(dir);
        if (dh == NULL) {
            fail_msg("cannot open %s", dir);
        }
        struct dirent *de;
        while ((de = readdir(dh)) != NULL) {
            if (strstr(de->d_name, ".bin") == NULL) {
                continue;
            }
            char path[2048];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            FILE *f = fopen(path, "rb");
            assert_non_null(f);
            orig.len = fread(orig.wire, 1, sizeof(orig.wire), f);
            fclose(f);
            files++;
            static char lines[512][256];
            bool parses =
                orig.len > 0 && dump(orig.wire, orig.len, lines, 512) >= 0;
            for (int pass = 0; pass < 20; pass++) {
                m = orig;
                int r =
                    cnd_lb_apply(pass % 2 ? &pref : &rr_conf, w, m.wire, m.len);
                reordered += r > 0;
                if (parses) {
                    assert_same_records(&orig, m.wire, m.len);
                }
            }
        }
        closedir(dh);
    }
    assert_true(files > 150);
    assert_true(reordered > 0);
    cnd_lb_work_free(w);
}


int
main(void)
{
    /* The repository root, from this file's path as the build gave it. */
    const char *me = __FILE__, *tail = strstr(me, "src/plugins/loadbalance/");
    snprintf(root, sizeof(root), "%.*s", tail ? (int)(tail - me) : 0, me);

    snprintf(wfile, sizeof(wfile), "/tmp/cnd-lbw-XXXXXX");
    int fd = mkstemp(wfile);
    if (fd < 0) {
        return 1;
    }
    const char *good = "# weights\nwww.example.org\n192.0.2.1 3\n"
                       "192.0.2.2 1\n\nexample.net.\n2001:db8::1 255\n";
    if (write(fd, good, strlen(good)) < 0) {
        return 1;
    }
    close(fd);
    snprintf(wbad, sizeof(wbad), "/tmp/cnd-lbw-XXXXXX");
    fd = mkstemp(wbad);
    const char *bad = "# weights\nwww.example.org\n192.0.2.1 3\n192.0.2.2 0\n";
    if (fd < 0 || write(fd, bad, strlen(bad)) < 0) {
        return 1;
    }
    close(fd);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_weight_file_errors),
        cmocka_unit_test(test_cname_then_a),
        cmocka_unit_test(test_aaaa_mx),
        cmocka_unit_test(test_mx_compressed_against_each_other),
        cmocka_unit_test(test_owner_written_in_full),
        cmocka_unit_test(test_untouched),
        cmocka_unit_test(test_prefer),
        cmocka_unit_test(test_weighted),
        cmocka_unit_test(test_corpus_messages),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(wfile);
    unlink(wbad);
    return r;
}
