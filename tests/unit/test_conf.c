/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_conf.c - from Corefile text to a snapshot.
 *
 * Table-driven: each case loads a Corefile with the real plugin table and
 * checks either a summary of the snapshot (zones, chains, listeners) or
 * the exact error a user would see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"

typedef struct {
    const char *name;
    const char *text;
    const char *want; /* summary, or NULL when it must fail */
    const char *err;  /* exact error when want is NULL */
} conf_case_t;

static cnd_opts_t opts = {.dns_port = 53};


/* "zones=[a.:53,b.:53] chain=[errors,log,whoami] | ... listen=[[::]:53]" */
static void
summary(const cnd_conf_t *cf, char *out, size_t size)
{
    size_t o = 0;
    for (size_t s = 0; s < cf->nservers; s++) {
        const cnd_server_t *srv = &cf->servers[s];
        o += (size_t)snprintf(out + o, size - o, "%szones=[", s ? " | " : "");
        for (size_t z = 0; z < srv->nzones; z++) {
            o += (size_t)snprintf(out + o, size - o, "%s%s:%u", z ? "," : "",
                                  srv->zones[z].name, srv->zones[z].port);
        }
        o += (size_t)snprintf(out + o, size - o, "] chain=[");
        for (size_t i = 0; i < srv->nchain; i++) {
            o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "," : "",
                                  srv->chain[i].plugin->name);
        }
        o += (size_t)snprintf(out + o, size - o, "]");
    }
    o += (size_t)snprintf(out + o, size - o, " listen=[");
    for (size_t l = 0; l < cf->nlistens; l++) {
        o += (size_t)snprintf(out + o, size - o, "%s%s", l ? "," : "",
                              cf->listens[l].name);
    }
    snprintf(out + o, size - o, "]");
}


static void
run(const conf_case_t *c)
{
    char err[1024], got[4096];
    cnd_conf_t *cf = cnd_conf_load(&opts, "Corefile", c->text, strlen(c->text),
                                   err, sizeof(err));
    if (c->want != NULL) {
        if (cf == NULL) {
            fail_msg("%s: unexpected error: %s", c->name, err);
        }
        summary(cf, got, sizeof(got));
        cnd_conf_unref(cf);
        if (strcmp(got, c->want) != 0) {
            fail_msg("%s:\n  got  %s\n  want %s", c->name, got, c->want);
        }
        return;
    }
    if (cf != NULL) {
        summary(cf, got, sizeof(got));
        cnd_conf_unref(cf);
        fail_msg("%s: loaded (%s), want error %s", c->name, got, c->err);
    }
    if (strcmp(err, c->err) != 0) {
        fail_msg("%s:\n  error %s\n  want  %s", c->name, err, c->err);
    }
}


static const conf_case_t cases[] = {
    {"root zone, default port", ". {\n whoami\n}",
     "zones=[.:53] chain=[whoami] listen=[[::]:53]", NULL},
    {"plugin.cfg order, not Corefile order",
     ".:1053 {\n whoami\n log\n errors\n}",
     "zones=[.:1053] chain=[errors,log,whoami] listen=[[::]:1053]", NULL},
    {"zones are lowercase FQDNs", "Example.ORG:5300 {\n whoami\n}",
     "zones=[example.org.:5300] chain=[whoami] listen=[[::]:5300]", NULL},
    {"dns:// scheme", "dns://example.org:5300 {\n whoami\n}",
     "zones=[example.org.:5300] chain=[whoami] listen=[[::]:5300]", NULL},
    {"several keys share one chain", "a.org b.org:5300 {\n whoami\n}",
     "zones=[a.org.:53,b.org.:5300] chain=[whoami] "
     "listen=[[::]:53,[::]:5300]",
     NULL},
    {"reverse zone of a /24", "10.0.0.0/24 {\n whoami\n}",
     "zones=[0.0.10.in-addr.arpa.:53] chain=[whoami] listen=[[::]:53]", NULL},
    {"reverse zone of a /16 with a port", "172.16.0.0/16:5300 {\n whoami\n}",
     "zones=[16.172.in-addr.arpa.:5300] chain=[whoami] listen=[[::]:5300]",
     NULL},
    {"a /23 covers two /24 zones", "10.0.2.0/23 {\n whoami\n}",
     "zones=[2.0.10.in-addr.arpa.:53,3.0.10.in-addr.arpa.:53] "
     "chain=[whoami] listen=[[::]:53]",
     NULL},
    {"IPv6 reverse zone", "fd00::/8 {\n whoami\n}",
     "zones=[d.f.ip6.arpa.:53] chain=[whoami] listen=[[::]:53]", NULL},
    {"IPv6 /7 covers two nibble zones", "fc00::/7 {\n whoami\n}",
     "zones=[c.f.ip6.arpa.:53,d.f.ip6.arpa.:53] chain=[whoami] "
     "listen=[[::]:53]",
     NULL},
    {"bind", ".:5300 {\n bind 127.0.0.1 ::1\n whoami\n}",
     "zones=[.:5300] chain=[whoami] listen=[127.0.0.1:5300,[::1]:5300]", NULL},
    {"bind with except",
     ".:5300 {\n bind 127.0.0.1 127.0.0.2 {\n  except "
     "127.0.0.2\n }\n whoami\n}",
     "zones=[.:5300] chain=[whoami] listen=[127.0.0.1:5300]", NULL},
    {"same zone on different addresses",
     "a.org:5300 {\n bind 127.0.0.1\n whoami\n}\na.org:5300 {\n bind "
     "127.0.0.2\n whoami\n}",
     "zones=[a.org.:5300] chain=[whoami] | zones=[a.org.:5300] "
     "chain=[whoami] listen=[127.0.0.1:5300,127.0.0.2:5300]",
     NULL},
    {"block without plugins", "a.org {\n}",
     "zones=[a.org.:53] chain=[] "
     "listen=[[::]:53]",
     NULL},
    {"erratic and timeouts",
     ". {\n timeouts {\n  idle 2s\n  read 1s\n }\n erratic {\n  delay 2 "
     "10ms\n }\n}",
     "zones=[.:53] chain=[erratic] listen=[[::]:53]", NULL},
    {"corpus: errors ok", ".:53 {\n\terrors\n}",
     "zones=[.:53] chain=[errors] listen=[[::]:53]", NULL},
    {"corpus: log ok", ".:53 {\n\tlog\n}",
     "zones=[.:53] chain=[log] listen=[[::]:53]", NULL},
    {"log formats and classes",
     ". {\n log a.org b.org {combined}\n log . \"{remote} {rcode}\" {\n  "
     "class denial error\n }\n}",
     "zones=[.:53] chain=[log] listen=[[::]:53]", NULL},
    {"errors consolidate",
     ". {\n errors {\n  consolidate 5m \".* i/o timeout$\" warning\n  "
     "consolidate 30s \"^Failed to .+\" show_first\n }\n}",
     "zones=[.:53] chain=[errors] listen=[[::]:53]", NULL},

    /* errors */
    {"duplicate zone and port", ".:53 {\n whoami\n}\n.:53 {\n log\n}", NULL,
     "Corefile:4 - Error during parsing: cannot serve dns://.:53 - it is "
     "already defined"},
    {"duplicate inside one block", "a.org a.org {\n whoami\n}", NULL,
     "Corefile:1 - Error during parsing: cannot serve dns://a.org.:53 - it "
     "is already defined"},
    {"unknown directive", ". {\n whoami\n frobnicate\n}", NULL,
     "Corefile:3 - Error during parsing: Unknown directive 'frobnicate'"},
    {"CoreDNS plugin not built", ". {\n route53 example.org.:Z1\n}", NULL,
     "Corefile:2 - Error during parsing: plugin/route53: this CoreDNS "
     "plugin is not in candor yet; remove it from the Corefile (candor "
     "-plugins lists what is)"},
    {"errors twice", ". {\n errors\n whoami\n errors\n}", NULL,
     "plugin/errors: Corefile:4 - Error during parsing: this plugin can "
     "only be used once per Server Block"},
    {"corpus: errors bad argument", ".:53 {\n\terrors errors.txt\n}", NULL,
     "plugin/errors: Corefile:2 - Error during parsing: invalid log file: "
     "errors.txt"},
    {"errors unknown property", ". {\n errors {\n  bogus\n }\n}", NULL,
     "plugin/errors: Corefile:3 - Syntax error: Unexpected token 'bogus', "
     "expecting 'Unknown field bogus'"},
    {"errors bad regexp", ". {\n errors {\n  consolidate 1m \"(\"\n }\n}", NULL,
     "plugin/errors: Corefile:3 - Error during parsing: error parsing "
     "regexp: Unmatched ( or \\(: `(`"},
    {"errors bad level", ". {\n errors {\n  consolidate 1m x loud\n }\n}", NULL,
     "plugin/errors: Corefile:3 - Error during parsing: unknown log level "
     "argument in consolidate: loud"},
    {"corpus: log bad class", ".:53 {\n\tlog {\n\t\tclass abracadabra\n\t}\n}",
     NULL,
     "plugin/log: Corefile:3 - Error during parsing: invalid class: "
     "abracadabra"},
    {"whoami takes no argument", ". {\n whoami now\n}", NULL,
     "plugin/whoami: Corefile:2 - Error during parsing: Wrong argument "
     "count or unexpected line ending after 'now'"},
    {"bind needs an address", ". {\n bind\n whoami\n}", NULL,
     "plugin/bind: Corefile:2 - Error during parsing: at least one address "
     "or interface name is expected"},
    {"bind of nothing real", ". {\n bind not-an-interface-0\n whoami\n}", NULL,
     "plugin/bind: Corefile:2 - Error during parsing: not a valid IP "
     "address or interface name: \"not-an-interface-0\""},
    {"timeouts out of range", ". {\n timeouts {\n  idle 500ms\n }\n}", NULL,
     "plugin/timeouts: Corefile:3 - Error during parsing: timeout provided "
     "'500ms' needs to be between 1 second and 24 hours"},
    {"timeouts empty", ". {\n timeouts {\n }\n}", NULL,
     "plugin/timeouts: Corefile:3 - Error during parsing: timeouts block "
     "with no timeouts specified"},
    {"erratic negative", ". {\n erratic {\n  drop -1\n }\n}", NULL,
     "plugin/erratic: Corefile:3 - Error during parsing: illegal amount "
     "value given \"-1\""},
    {"scheme not served", "tls://example.org {\n whoami\n}", NULL,
     "Corefile:1 - Error during parsing: tls://example.org: candor serves "
     "dns:// only (plain DNS over UDP and TCP); remove the scheme or use "
     "dns://"},
    {"colon without port", "example.org: {\n whoami\n}", NULL,
     "Corefile:1 - Error during parsing: expecting data after last colon: "
     "\"example.org:\""},
    {"bad zone", "exa..mple {\n whoami\n}", NULL,
     "Corefile:1 - Error during parsing: zone is not a valid domain name: "
     "exa..mple"},
    {"no server blocks", "# empty\n", NULL,
     "Corefile: no server blocks: add one such as \". {\" ... \"}\" (see "
     "the README)"},
};


static void
test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run(&cases[i]);
    }
}


/* kubeadm's Corefile parses; it fails only on the plugins candor does
 * not have yet, each named with its line. */
static void
test_kubeadm(void **state)
{
    (void)state;
    FILE *f = fopen("tests/corpus/corefile/kubeadm_default.Corefile", "rb");
    assert_non_null(f);
    char text[4096], err[1024];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, len, err, sizeof(err));
    if (cf != NULL) {
        cnd_conf_unref(cf); /* every plugin exists: even better */
        return;
    }
    assert_non_null(strstr(err, "this CoreDNS plugin is not in candor yet"));
    assert_non_null(strstr(err, "Corefile:"));
}


/* Routing: the longest zone wins; DS prefers the parent side. */
static void
test_route(void **state)
{
    (void)state;
    const char *text = ". {\n whoami\n}\nexample.org {\n log\n}\n"
                       "sub.example.org {\n errors\n}\n";
    char err[512];
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    assert_non_null(cf);
    assert_int_equal(cf->nlistens, 1);
    const cnd_listen_t *l = &cf->listens[0];
    struct {
        const char *qname;
        uint16_t qtype;
        const char *zone;
    } want[] = {
        {"www.example.org.", KNOT_RRTYPE_A, "example.org."},
        {"EXAMPLE.org.", KNOT_RRTYPE_A, "example.org."},
        {"a.b.sub.example.org.", KNOT_RRTYPE_A, "sub.example.org."},
        {"sub.example.org.", KNOT_RRTYPE_A, "sub.example.org."},
        {"sub.example.org.", KNOT_RRTYPE_DS, "example.org."},
        {"example.com.", KNOT_RRTYPE_A, "."},
        {".", KNOT_RRTYPE_NS, "."},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        uint8_t name[KNOT_DNAME_MAXLEN];
        knot_dname_from_str(name, want[i].qname, sizeof(name));
        knot_dname_to_lower(name);
        const cnd_zone_t *z = cnd_listen_route(l, name, want[i].qtype);
        assert_non_null(z);
        if (strcmp(z->name, want[i].zone) != 0) {
            fail_msg("%s: routed to %s, want %s", want[i].qname, z->name,
                     want[i].zone);
        }
    }
    cnd_conf_unref(cf);

    /* No catch-all: a name outside every zone is not routed. */
    text = "example.org {\n whoami\n}\n";
    cf = cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    assert_non_null(cf);
    uint8_t name[KNOT_DNAME_MAXLEN];
    knot_dname_from_str(name, "example.com.", sizeof(name));
    assert_null(cnd_listen_route(&cf->listens[0], name, KNOT_RRTYPE_A));
    cnd_conf_unref(cf);
}


/* Properties read from a table (cnd_props_block) with the core's setters,
 * in CoreDNS's wording. */
typedef struct {
    bool flag;
    int64_t dur;
    unsigned n;
    const char *str;
    int custom;
} props_conf_t;

static int
props_custom(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    ((props_conf_t *)conf)->custom = 1 + (int)cnd_disp_args(d, NULL, 0);
    return 0;
}

static const cnd_prop_t props_table[] = {
    {"flag", cnd_prop_flag, offsetof(props_conf_t, flag)},
    {"dur", cnd_prop_duration, offsetof(props_conf_t, dur)},
    {"n", cnd_prop_uint, offsetof(props_conf_t, n)},
    {"str", cnd_prop_string, offsetof(props_conf_t, str)},
    {"custom", props_custom, 0},
    {NULL, NULL, 0},
};

static const cnd_prop_t props_strict[] = {
    {"flag", cnd_prop_flag, offsetof(props_conf_t, flag)},
    {NULL, cnd_prop_arg_err, 0},
};

/* Read "x { BODY }" with @table; returns the rc, the error in @err. */
static int
props_read(const char *body, const cnd_prop_t *table, props_conf_t *c,
           char *err, size_t errlen)
{
    static cnd_arena_t a;
    char text[256];
    snprintf(text, sizeof(text), ". {\n x {\n%s\n }\n}\n", body);
    cnd_arena_deinit(&a);
    cnd_arena_init(&a, NULL, 0, 4096);
    cnd_corefile_t cf;
    assert_int_equal(cnd_corefile_parse(&a, "Corefile", text, strlen(text),
                                        NULL, &cf, err, errlen),
                     0);
    const cnd_cf_dir_t *dir = &cf.blocks[0].dirs[0];
    cnd_disp_t d;
    cnd_disp_init(&d, dir->tokens, dir->ntokens, err, errlen);
    assert_true(cnd_disp_next(&d));
    memset(c, 0, sizeof(*c));
    err[0] = '\0';
    return cnd_props_block(NULL, &d, table, c);
}

static void
test_props(void **state)
{
    (void)state;
    props_conf_t c;
    char err[512];
    assert_int_equal(props_read("flag\ndur 1m30s\nn 42\nstr abc\ncustom a b",
                                props_table, &c, err, sizeof(err)),
                     0);
    assert_true(c.flag);
    assert_int_equal(c.dur, 90LL * 1000000000LL);
    assert_int_equal(c.n, 42);
    assert_string_equal(c.str, "abc");
    assert_int_equal(c.custom, 3);

    static const struct {
        const char *body;
        const cnd_prop_t *table;
        const char *err;
    } bad[] = {
        {"flag yes", props_table,
         "Corefile:3 - Error during parsing: Wrong argument count or "
         "unexpected line ending after 'yes'"},
        {"dur", props_table,
         "Corefile:3 - Error during parsing: Wrong argument count or "
         "unexpected line ending after 'dur'"},
        {"dur 5x", props_table,
         "Corefile:3 - Error during parsing: time: invalid duration \"5x\""},
        {"dur -1s", props_table,
         "Corefile:3 - Error during parsing: dur can't be negative: -1s"},
        {"n x", props_table,
         "Corefile:3 - Error during parsing: strconv.ParseUint: parsing "
         "\"x\": invalid syntax"},
        {"n -2", props_table,
         "Corefile:3 - Error during parsing: n can't be negative: -2"},
        {"n 4294967296", props_table,
         "Corefile:3 - Error during parsing: n: 4294967296 is out of range"},
        {"bogus 1", props_table,
         "Corefile:3 - Error during parsing: unknown property 'bogus'"},
        {"bogus", props_strict,
         "Corefile:3 - Error during parsing: Wrong argument count or "
         "unexpected line ending after 'bogus'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            props_read(bad[i].body, bad[i].table, &c, err, sizeof(err)), -1);
        assert_string_equal(err, bad[i].err);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_kubeadm),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_props),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
