/* SPDX-License-Identifier: MIT */
/*
 * plugins/forward/forward_test.c - the forward line of a Corefile.
 *
 * Each case loads a Corefile with the real plugin table and checks the
 * upstreams and options the forward instance got, or the exact error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conf.h"
#include "plugins/forward/forward.h"

static cnd_opts_t opts = {.dns_port = 53};
static char resolv[256], resolv_empty[256];


/* "ups=[1.2.3.4:53,tls:[::1]:853] policy=random fails=2 ..." of every
 * forward instance, joined by " | ". */
static void
summary(const cnd_conf_t *cf, char *out, size_t size)
{
    static const char *const policies[] = {"random", "round_robin",
                                           "sequential"};
    size_t o = 0;
    out[0] = '\0';
    for (size_t s = 0; s < cf->nservers; s++) {
        const cnd_server_t *srv = &cf->servers[s];
        for (size_t i = 0; i < srv->nchain; i++) {
            if (strcmp(srv->chain[i].plugin->name, "forward") != 0) {
                continue;
            }
            const fwd_conf_t *c = srv->chain[i].conf;
            char from[KNOT_DNAME_TXT_MAXLEN + 1];
            knot_dname_to_str(from, c->from, sizeof(from));
            o += (size_t)snprintf(out + o, size - o, "%sfrom=%s ups=[",
                                  o ? " | " : "", from);
            for (size_t u = 0; u < c->nups; u++) {
                o += (size_t)snprintf(
                    out + o, size - o, "%s%s%s%s%s", u ? "," : "",
                    c->ups[u].tls ? "tls:" : "", c->ups[u].name,
                    c->ups[u].servername ? "%" : "",
                    c->ups[u].servername ? c->ups[u].servername : "");
            }
            o += (size_t)snprintf(
                out + o, size - o,
                "] policy=%s fails=%u attempts=%u tcp=%d udp=%d except=%zu "
                "mc=%u",
                policies[c->policy], c->max_fails, c->max_attempts,
                c->force_tcp, c->prefer_udp, c->nexcept, c->max_concurrent);
        }
    }
}


typedef struct {
    const char *name;
    const char *text; /* RESOLV and EMPTY stand for resolv.conf files */
    const char *want;
    const char *err;
} fwd_case_t;

static const fwd_case_t cases[] = {
    {"one upstream", ". {\n forward . 127.0.0.1\n}",
     "from=. ups=[127.0.0.1:53] policy=random fails=2 attempts=2 tcp=0 "
     "udp=0 except=0 mc=0",
     NULL},
    {"ports, IPv6, dns://, duplicates removed",
     ". {\n forward . 127.0.0.1:5353 [::1]:53 ::2 dns://10.0.0.1 "
     "127.0.0.1:5353\n}",
     "from=. ups=[127.0.0.1:5353,[::1]:53,[::2]:53,10.0.0.1:53] "
     "policy=random fails=2 attempts=8 tcp=0 udp=0 except=0 mc=0",
     NULL},
    {"tls with a server name",
     ". {\n forward . tls://127.0.0.1%dns.test "
     "tls://[::1]:8853\n}",
     "from=. ups=[tls:127.0.0.1:853%dns.test,tls:[::1]:8853] policy=random "
     "fails=2 attempts=4 tcp=0 udp=0 except=0 mc=0",
     NULL},
    {"resolv.conf", ". {\n forward . RESOLV\n}",
     "from=. ups=[127.0.0.53:53,[fe80::1]:53,10.9.8.7:53] policy=random "
     "fails=2 attempts=6 tcp=0 udp=0 except=0 mc=0",
     NULL},
    {"every option",
     "example.org {\n forward example.org 127.0.0.1 127.0.0.2 {\n  except "
     "a.example.org b.example.org\n  force_tcp\n  expire 30s\n  max_fails "
     "5\n  policy sequential\n  health_check 1s no_rec domain "
     "example.net\n  max_concurrent 1000\n  next NXDOMAIN SERVFAIL\n  "
     "failover REFUSED\n  read_timeout 3s\n  max_connect_attempts 3\n  "
     "max_idle_conns 4\n  max_age 1m\n  source_address 127.0.0.1\n  "
     "failfast_all_unhealthy_upstreams\n }\n}",
     "from=example.org. ups=[127.0.0.1:53,127.0.0.2:53] policy=sequential "
     "fails=5 attempts=3 tcp=1 udp=0 except=2 mc=1000",
     NULL},
    {"several forward lines",
     ". {\n forward a.org 127.0.0.1\n forward . "
     "127.0.0.2 {\n  prefer_udp\n }\n}",
     "from=a.org. ups=[127.0.0.1:53] policy=random fails=2 attempts=2 tcp=0 "
     "udp=0 except=0 mc=0 | from=. ups=[127.0.0.2:53] policy=random fails=2 "
     "attempts=2 tcp=0 udp=1 except=0 mc=0",
     NULL},
    {"corpus ok", ".:53 {\n\tforward . ::1\n\tforward com ::2\n}",
     "from=. ups=[[::1]:53] policy=random fails=2 attempts=2 tcp=0 udp=0 "
     "except=0 mc=0 | from=com. ups=[[::2]:53] policy=random fails=2 "
     "attempts=2 tcp=0 udp=0 except=0 mc=0",
     NULL},

    {"no TO", ". {\n forward .\n}", NULL,
     "plugin/forward: Corefile:2 - Error during parsing: Wrong argument "
     "count or unexpected line ending after '.'"},
    {"nothing", ". {\n forward\n}", NULL,
     "plugin/forward: Corefile:2 - Error during parsing: Wrong argument "
     "count or unexpected line ending after 'forward'"},
    {"not an address", ". {\n forward . not-a-host\n}", NULL,
     "plugin/forward: Corefile:2 - Error during parsing: not an IP address "
     "or file: \"not-a-host\""},
    {"https", ". {\n forward . https://127.0.0.1\n}", NULL,
     "plugin/forward: Corefile:2 - Error during parsing: 'https' is not "
     "supported as a destination protocol in forward: https://127.0.0.1"},
    {"sixteen upstreams",
     ". {\n forward . 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 "
     "127.0.0.6 127.0.0.7 127.0.0.8 127.0.0.9 127.0.0.10 127.0.0.11 "
     "127.0.0.12 127.0.0.13 127.0.0.14 127.0.0.15 127.0.0.16\n}",
     NULL,
     "plugin/forward: Corefile:2 - Error during parsing: more than 15 TOs "
     "configured: 16"},
    {"unknown property", ". {\n forward . 127.0.0.1 {\n  bogus\n }\n}", NULL,
     "plugin/forward: Corefile:3 - Error during parsing: unknown property "
     "'bogus'"},
    {"bad policy", ". {\n forward . 127.0.0.1 {\n  policy fastest\n }\n}", NULL,
     "plugin/forward: Corefile:3 - Error during parsing: unknown policy "
     "'fastest'"},
    {"negative expire", ". {\n forward . 127.0.0.1 {\n  expire -1s\n }\n}",
     NULL,
     "plugin/forward: Corefile:3 - Error during parsing: expire can't be "
     "negative: -1s"},
    {"bad max_fails", ". {\n forward . 127.0.0.1 {\n  max_fails x\n }\n}", NULL,
     "plugin/forward: Corefile:3 - Error during parsing: "
     "strconv.ParseUint: parsing \"x\": invalid syntax"},
    {"bad health_check option",
     ". {\n forward . 127.0.0.1 {\n  health_check 1s sometimes\n }\n}", NULL,
     "plugin/forward: Corefile:3 - Error during parsing: health_check: "
     "unknown option sometimes"},
    {"except without names", ". {\n forward . 127.0.0.1 {\n  except\n }\n}",
     NULL,
     "plugin/forward: Corefile:3 - Error during parsing: Wrong argument "
     "count or unexpected line ending after 'except'"},
    {"bad rcode", ". {\n forward . 127.0.0.1 {\n  next NOPE\n }\n}", NULL,
     "plugin/forward: Corefile:3 - Error during parsing: next: NOPE is not "
     "a valid rcode"},
    {"failover NOERROR",
     ". {\n forward . 127.0.0.1 {\n  failover NOERROR\n "
     "}\n}",
     NULL,
     "plugin/forward: Corefile:3 - Error during parsing: NoError cannot be "
     "used in failover"},
    {"corpus error: two server names",
     ".:53 {\n\tforward . tls://127.0.0.1%example.net:854 {\n\t\t"
     "tls_servername foo\n\t}\n}",
     NULL,
     "plugin/forward: Corefile:4 - Error during parsing: both the server "
     "name in tls://...%example.net and tls_servername 'foo' are set; keep "
     "one"},
    {"a resolv.conf without nameservers", ". {\n forward . EMPTY\n}", NULL,
     "plugin/forward: Corefile:2 - Error during parsing: no valid upstream "
     "addresses found"},
};


static void
run(const fwd_case_t *c)
{
    char text[2048], err[1024], got[4096];
    /* RESOLV and EMPTY stand for the two resolv.conf files. */
    const char *p = c->text;
    size_t o = 0;
    while (*p != '\0' && o < sizeof(text) - 1) {
        const char *sub = NULL;
        size_t skip = 0;
        if (strncmp(p, "RESOLV", 6) == 0) {
            sub = resolv;
            skip = 6;
        } else if (strncmp(p, "EMPTY", 5) == 0) {
            sub = resolv_empty;
            skip = 5;
        }
        if (sub != NULL) {
            o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", sub);
            p += skip;
        } else {
            text[o++] = *p++;
        }
    }
    text[o] = '\0';
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
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
        fail_msg("%s: loaded (%s), want %s", c->name, got, c->err);
    }
    if (strcmp(err, c->err) != 0) {
        fail_msg("%s:\n  error %s\n  want  %s", c->name, err, c->err);
    }
}


static void
test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run(&cases[i]);
    }
}


/* FROM and except: which names go upstream. */
static void
test_match_config(void **state)
{
    (void)state;
    char err[512];
    const char *text = "example.org {\n forward example.org 127.0.0.1 {\n  "
                       "except internal.example.org\n }\n}";
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    assert_non_null(cf);
    const fwd_conf_t *c = cf->servers[0].chain[0].conf;
    assert_int_equal(c->nexcept, 1);
    char name[64];
    knot_dname_to_str(name, c->except[0], sizeof(name));
    assert_string_equal(name, "internal.example.org.");
    assert_int_equal(c->read_timeout_ns, 2000000000LL);
    assert_int_equal(c->hc_interval_ns, 500000000LL);
    assert_int_equal(c->expire_ns, 10000000000LL);
    cnd_conf_unref(cf);
}


int
main(void)
{
    snprintf(resolv, sizeof(resolv), "/tmp/cnd-resolv-XXXXXX");
    int fd = mkstemp(resolv);
    if (fd < 0) {
        return 1;
    }
    const char *rc = "# generated\nsearch example.org\nnameserver 127.0.0.53\n"
                     "nameserver fe80::1%eth0\noptions ndots:5\n"
                     "nameserver 10.9.8.7\nnameserver not-an-ip\n";
    if (write(fd, rc, strlen(rc)) < 0) {
        return 1;
    }
    close(fd);
    snprintf(resolv_empty, sizeof(resolv_empty), "/tmp/cnd-resolv-XXXXXX");
    fd = mkstemp(resolv_empty);
    if (fd < 0 || write(fd, "# nothing\n", 10) < 0) {
        return 1;
    }
    close(fd);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_match_config),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(resolv);
    unlink(resolv_empty);
    return r;
}
