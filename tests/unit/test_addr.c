/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_addr.c - util/addr: the one address parser and comparer.
 *
 * Table-driven: each text with the flags it is read with, and either the
 * address it must give (as cnd_addr_str prints it) or the reason it is
 * refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "util/addr.h"

#define NEED  CND_ADDR_NEED_PORT
#define ANY   CND_ADDR_EMPTY_ANY
#define DIAL  CND_ADDR_DIAL
#define LOCAL CND_ADDR_LOCALHOST

typedef struct {
    const char *text;
    uint16_t def_port;
    unsigned flags;
    cnd_addr_err_t err;
    const char *want; /* cnd_addr_str with the port, when err is OK */
} addr_case_t;

static const addr_case_t cases[] = {
    /* forward's TO and resolv.conf: an IP, a port optional */
    {"1.2.3.4", 53, 0, CND_ADDR_OK, "1.2.3.4:53"},
    {"1.2.3.4:5353", 53, 0, CND_ADDR_OK, "1.2.3.4:5353"},
    {"::1", 53, 0, CND_ADDR_OK, "[::1]:53"},
    {"[::1]", 53, 0, CND_ADDR_OK, "[::1]:53"},
    {"[::1]:54", 53, 0, CND_ADDR_OK, "[::1]:54"},
    {"fe80::1%eth0", 53, 0, CND_ADDR_OK, "[fe80::1]:53"},
    {"[fe80::1%eth0]:53", 53, 0, CND_ADDR_OK, "[fe80::1]:53"},
    {"1.2.3.4:", 53, 0, CND_ADDR_BAD_PORT, NULL},
    {"1.2.3.4:x", 53, 0, CND_ADDR_BAD_PORT, NULL},
    {"1.2.3.4:-1", 53, 0, CND_ADDR_BAD_PORT, NULL},
    {"1.2.3.4:65536", 53, 0, CND_ADDR_PORT_RANGE, NULL},
    {"1.2.3.4:0000000053", 53, 0, CND_ADDR_PORT_RANGE, NULL},
    {"[::1", 53, 0, CND_ADDR_SYNTAX, NULL},
    {"[::1]x", 53, 0, CND_ADDR_SYNTAX, NULL},
    {"example.org", 53, 0, CND_ADDR_NOT_IP, NULL},
    {"1.2.3.999", 53, 0, CND_ADDR_NOT_IP, NULL},
    {":53", 53, 0, CND_ADDR_NO_HOST, NULL},
    {"", 53, 0, CND_ADDR_NO_HOST, NULL},
    /* the HTTP endpoints, as Go's net.Listen reads them */
    {":8080", 0, NEED | ANY | LOCAL, CND_ADDR_OK, "[::]:8080"},
    {"localhost:8080", 0, NEED | ANY | LOCAL, CND_ADDR_OK, "127.0.0.1:8080"},
    {"[::1]:8080", 0, NEED | ANY | LOCAL, CND_ADDR_OK, "[::1]:8080"},
    {"8080", 0, NEED | ANY | LOCAL, CND_ADDR_NO_PORT, NULL},
    {"127.0.0.1", 0, NEED | ANY | LOCAL, CND_ADDR_NO_PORT, NULL},
    {"host:8080", 0, NEED | ANY | LOCAL, CND_ADDR_NOT_IP, NULL},
    {"localhost:8080", 0, NEED | ANY, CND_ADDR_NOT_IP, NULL},
    /* where a client reaches such an endpoint */
    {":8080", 0, NEED | DIAL, CND_ADDR_OK, "127.0.0.1:8080"},
    {"localhost:8181", 0, NEED | DIAL, CND_ADDR_OK, "127.0.0.1:8181"},
    {"[::]:8181", 0, NEED | DIAL, CND_ADDR_OK, "[::]:8181"},
};


static void
test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const addr_case_t *c = &cases[i];
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char host[64], got[80];
        cnd_addr_err_t err = cnd_addr_parse(c->text, c->def_port, c->flags, &ss,
                                            &len, host, sizeof(host));
        if (err != c->err) {
            fail_msg("%s: error %d, want %d", c->text, err, c->err);
        }
        if (c->want != NULL) {
            assert_string_equal(cnd_addr_str(&ss, got, sizeof(got), true),
                                c->want);
            assert_int_equal(len, cnd_addr_len(&ss));
        }
    }
}


static void
test_host_reported(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char host[64];
    assert_int_equal(
        cnd_addr_parse("[nothere]:80", 0, 0, &ss, &len, host, sizeof(host)),
        CND_ADDR_NOT_IP);
    assert_string_equal(host, "nothere");
}


static struct sockaddr_storage
addr(const char *s)
{
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(cnd_addr_parse(s, 53, 0, &ss, &len, NULL, 0), CND_ADDR_OK);
    return ss;
}


static void
test_compare(void **state)
{
    (void)state;
    struct sockaddr_storage a = addr("127.0.0.1:53"), b = addr("127.0.0.1:54");
    struct sockaddr_storage c = addr("127.0.0.2:53"), d = addr("[::1]:53");
    struct sockaddr_storage e = addr("::ffff:127.0.0.1");
    assert_true(cnd_addr_same_ip(&a, &b));
    assert_false(cnd_addr_equal(&a, &b));
    assert_true(cnd_addr_equal(&a, &a));
    assert_false(cnd_addr_same_ip(&a, &c));
    assert_false(cnd_addr_same_ip(&a, &d));
    assert_true(cnd_addr_is_loopback(&c));
    assert_true(cnd_addr_is_loopback(&d));
    assert_false(cnd_addr_same_ip(&a, &e));
    cnd_addr_unmap(&e);
    assert_true(cnd_addr_equal(&a, &e));
    struct sockaddr_storage any = addr("0.0.0.0"), any6 = addr("::");
    assert_true(cnd_addr_is_any(&any));
    assert_true(cnd_addr_is_any(&any6));
    assert_false(cnd_addr_is_any(&a));
    cnd_addr_set_port(&d, 8053);
    assert_int_equal(cnd_addr_port(&d), 8053);
    char buf[64];
    assert_string_equal(cnd_addr_str(&d, buf, sizeof(buf), false), "::1");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_host_reported),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
