/* SPDX-License-Identifier: MIT */
/*
 * plugins/loop/loop_test.c - the loop plugin: Corefile, the probe's name
 * and address, sightings on the query path, and the probe's tries.
 *
 * Corefile cases load a whole Corefile with the real plugin table and
 * check what the instance made of it (zone, probe name, the address it
 * prints and the one it sends to) or the exact error.  The query hook is
 * called with hand-made requests; the third sighting exits, so it runs in
 * a child process whose log goes to a pipe.  The probe is driven by hand:
 * start(), then the instance's periodic job, against a UDP socket of the
 * test's own on 127.0.0.1, winding the clocks in the state instead of
 * waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/conf.h"
#include "plugins/loop/loop.h"
#include "util/log.h"

static cnd_opts_t opts = {.dns_port = 53};


/* ---- helpers ---------------------------------------------------------- */

/* Load @text; the first loop instance of the first block in @inst. */
static cnd_conf_t *
load(const char *text, cnd_inst_t **inst)
{
    char err[1024];
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    if (cf == NULL) {
        fail_msg("unexpected error: %s", err);
    }
    const cnd_server_t *srv = &cf->servers[0];
    for (size_t i = 0; i < srv->nchain; i++) {
        if (srv->chain[i].plugin == &cnd_plugin_loop) {
            *inst = &srv->chain[i];
            return cf;
        }
    }
    fail_msg("no loop instance in: %s", text);
    return NULL;
}


static bool
matches(const char *re, const char *s)
{
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}


/* The instance's periodic job, run once by hand. */
static void
tick(cnd_conf_t *cf, cnd_inst_t *inst)
{
    for (cnd_ticker_t *t = cf->tickers; t != NULL; t = t->next) {
        if (t->arg == inst->conf) {
            t->fn(t->arg);
            return;
        }
    }
    fail_msg("loop made no periodic job");
}


/* A UDP socket on 127.0.0.1 (port chosen by the kernel). */
static int
udp_server(uint16_t *port)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    socklen_t len = sizeof(in);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    *port = ntohs(in.sin_port);
    return fd;
}


/* Receive one datagram within a second; its length, and its sender in
 * @from. */
static ssize_t
recv_within(int fd, uint8_t *buf, size_t size, struct sockaddr_storage *from)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1000) != 1) {
        return -1;
    }
    socklen_t len = sizeof(*from);
    return recvfrom(fd, buf, size, 0, (struct sockaddr *)from, &len);
}


/* A ".:PORT" Corefile bound to 127.0.0.1 with loop. */
static cnd_conf_t *
load_port(uint16_t port, cnd_inst_t **inst)
{
    char text[128];
    snprintf(text, sizeof(text), ".:%u {\n bind 127.0.0.1\n loop\n}\n", port);
    return load(text, inst);
}


/* ---- Corefile --------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *text;
    const char *zone;   /* the probe's zone                          */
    const char *listen; /* as the FATAL line prints it               */
    const char *dest;   /* where the probe goes                      */
    const char *err;    /* or the exact error                        */
} conf_case_t;

static const conf_case_t conf_cases[] = {
    {"root, every address", ".:53 {\n loop\n}", ".", ":53", "127.0.0.1:53",
     NULL},
    {"default port", ". {\n loop\n}", ".", ":53", "127.0.0.1:53", NULL},
    {"zone and port", "Example.ORG:1053 {\n loop\n}", "example.org.", ":1053",
     "127.0.0.1:1053", NULL},
    {"first key", "a.org:1053 b.org:1054 {\n loop\n}", "a.org.", ":1053",
     "127.0.0.1:1053", NULL},
    {"dns scheme", "dns://.:5300 {\n loop\n}", ".", ":5300", "127.0.0.1:5300",
     NULL},
    {"bound", ".:53 {\n bind 127.0.0.5 127.0.0.6\n loop\n}", ".",
     "127.0.0.5:53", "127.0.0.5:53", NULL},
    {"bound v6", ".:53 {\n bind ::1\n loop\n}", ".", "[::1]:53", "[::1]:53",
     NULL},
    {"bound to any v4", ".:53 {\n bind 0.0.0.0\n loop\n}", ".", "0.0.0.0:53",
     "127.0.0.1:53", NULL},
    {"bound to any v6", ".:53 {\n bind ::\n loop\n}", ".", "[::]:53",
     "[::1]:53", NULL},
    {"argument", ". {\n loop foo\n}", NULL, NULL, NULL,
     "plugin/loop: Corefile:2 - Error during parsing: Wrong argument count "
     "or unexpected line ending after 'foo'"},
    {"twice", ". {\n loop\n loop\n}", NULL, NULL, NULL,
     "plugin/loop: Corefile:3 - Error during parsing: this plugin can only "
     "be used once per Server Block"},
};


static void
run_conf_case(const conf_case_t *c)
{
    char err[1024], dest[80];
    cnd_conf_t *cf = cnd_conf_load(&opts, "Corefile", c->text, strlen(c->text),
                                   err, sizeof(err));
    if (c->err != NULL) {
        if (cf != NULL) {
            cnd_conf_unref(cf);
            fail_msg("%s: loaded, want error %s", c->name, c->err);
        }
        if (strcmp(err, c->err) != 0) {
            fail_msg("%s:\n  error %s\n  want  %s", c->name, err, c->err);
        }
        return;
    }
    if (cf == NULL) {
        fail_msg("%s: unexpected error: %s", c->name, err);
    }
    cnd_inst_t *inst = NULL;
    for (size_t i = 0; i < cf->servers[0].nchain; i++) {
        if (cf->servers[0].chain[i].plugin == &cnd_plugin_loop) {
            inst = &cf->servers[0].chain[i];
        }
    }
    assert_non_null(inst);
    const cnd_loop_conf_t *lc = inst->conf;
    cnd_addr_str(&lc->dest, dest, sizeof(dest), true);
    char re[256];
    snprintf(re, sizeof(re), "^[0-9]+\\.[0-9]+\\.%s$",
             strcmp(c->zone, ".") == 0 ? "" : c->zone);
    bool ok =
        strcmp(lc->zone, c->zone) == 0 && strcmp(lc->listen, c->listen) == 0 &&
        strcmp(dest, c->dest) == 0 && lc->qname_ok && matches(re, lc->qtext);
    if (!ok) {
        fail_msg("%s:\n  got  zone=%s listen=%s dest=%s name=%s\n"
                 "  want zone=%s listen=%s dest=%s",
                 c->name, lc->zone, lc->listen, dest, lc->qtext, c->zone,
                 c->listen, c->dest);
    }
    cnd_conf_unref(cf);
}


static void
test_conf_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(conf_cases) / sizeof(conf_cases[0]); i++) {
        run_conf_case(&conf_cases[i]);
    }
}


/* Two numbers below 2^62, different from load to load; the wire name is
 * the text's. */
static void
test_probe_name(void **state)
{
    (void)state;
    char seen[8][KNOT_DNAME_TXT_MAXLEN + 1];
    for (int i = 0; i < 8; i++) {
        cnd_inst_t *inst;
        cnd_conf_t *cf = load("example.org {\n loop\n}", &inst);
        const cnd_loop_conf_t *lc = inst->conf;
        char *end;
        unsigned long long r1 = strtoull(lc->qtext, &end, 10);
        assert_int_equal(*end, '.');
        unsigned long long r2 = strtoull(end + 1, &end, 10);
        assert_string_equal(end, ".example.org.");
        assert_true(r1 < (1ULL << 62) && r2 < (1ULL << 62));
        char back[KNOT_DNAME_TXT_MAXLEN + 1];
        assert_non_null(knot_dname_to_str(back, lc->qname, sizeof(back)));
        assert_string_equal(back, lc->qtext);
        snprintf(seen[i], sizeof(seen[i]), "%s", lc->qtext);
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(seen[i], seen[j]);
        }
        cnd_conf_unref(cf);
    }
}


/* ---- the query path --------------------------------------------------- */

/* A request as the core would make it: only what the hook reads. */
static cnd_req_t req;

static cnd_rc_t
ask(cnd_inst_t *inst, const knot_dname_t *qname, uint16_t qtype)
{
    req.qname = qname;
    req.qtype = qtype;
    req.qclass = KNOT_CLASS_IN;
    return inst->plugin->query(&req, inst);
}


static void
test_sightings(void **state)
{
    (void)state;
    cnd_inst_t *inst;
    cnd_conf_t *cf = load(".:5300 {\n loop\n}", &inst);
    const cnd_loop_conf_t *lc = inst->conf;
    cnd_loop_state_t *st = lc->st;
    uint8_t other[KNOT_DNAME_MAXLEN];
    assert_non_null(knot_dname_from_str(other, "1.2.", sizeof(other)));

    struct sockaddr_in *in = (struct sockaddr_in *)&req.remote;
    memset(&req.remote, 0, sizeof(req.remote));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(0x7f000001);
    in->sin_port = htons(45111);

    /* Other types and names pass untouched and count nothing. */
    assert_int_equal(ask(inst, lc->qname, KNOT_RRTYPE_A), CND_NEXT);
    assert_int_equal(ask(inst, lc->qname, KNOT_RRTYPE_TXT), CND_NEXT);
    assert_int_equal(ask(inst, other, KNOT_RRTYPE_HINFO), CND_NEXT);
    assert_int_equal(atomic_load(&st->seen), 0);

    /* Two sightings are no loop. */
    assert_int_equal(ask(inst, lc->qname, KNOT_RRTYPE_HINFO), CND_NEXT);
    assert_int_equal(ask(inst, lc->qname, KNOT_RRTYPE_HINFO), CND_NEXT);
    assert_int_equal(atomic_load(&st->seen), 2);

    /* The third exits 1 with CoreDNS's line (in a child). */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        cnd_log_set_fd(pfd[1]);
        ask(inst, lc->qname, KNOT_RRTYPE_HINFO);
        _exit(99); /* not reached */
    }
    close(pfd[1]);
    char out[1024];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof(out) - 1 &&
           (k = read(pfd[0], out + n, sizeof(out) - 1 - n)) > 0) {
        n += (size_t)k;
    }
    out[n] = '\0';
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char want[512];
    snprintf(want, sizeof(want),
             "[FATAL] plugin/loop: Loop (127.0.0.1:45111 -> :5300) detected "
             "for zone \".\", see https://coredns.io/plugins/loop"
             "#troubleshooting. Query: \"HINFO %s\"\n",
             lc->qtext);
    assert_string_equal(out, want);

    /* Once off, nothing is counted. */
    atomic_store(&st->off, true);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ask(inst, lc->qname, KNOT_RRTYPE_HINFO), CND_NEXT);
    }
    assert_int_equal(atomic_load(&st->seen), 2);
    cnd_conf_unref(cf);
}


/* ---- the probe -------------------------------------------------------- */

/* The probe as it arrives: CoreDNS's dns.Exchange query. */
static uint16_t
check_probe(int fd, const cnd_loop_conf_t *lc)
{
    uint8_t buf[512];
    struct sockaddr_storage from;
    ssize_t n = recv_within(fd, buf, sizeof(buf), &from);
    size_t nlen = knot_dname_size(lc->qname);
    assert_int_equal(n, KNOT_WIRE_HEADER_SIZE + nlen + 4);
    assert_true(knot_wire_get_rd(buf));
    assert_false(knot_wire_get_qr(buf));
    assert_int_equal(knot_wire_get_qdcount(buf), 1);
    assert_int_equal(knot_wire_get_ancount(buf), 0);
    assert_int_equal(knot_wire_get_arcount(buf), 0);
    assert_memory_equal(buf + KNOT_WIRE_HEADER_SIZE, lc->qname, nlen);
    const uint8_t *p = buf + KNOT_WIRE_HEADER_SIZE + nlen;
    assert_int_equal(knot_wire_read_u16(p), KNOT_RRTYPE_HINFO);
    assert_int_equal(knot_wire_read_u16(p + 2), KNOT_CLASS_IN);
    assert_int_equal(knot_wire_get_id(buf), lc->st->id);
    return knot_wire_get_id(buf);
}


/* Reply to the last probe from @fd's socket: the query itself with QR,
 * @id as its ID, or @len bytes of junk when @junk. */
static void
reply(int fd, const cnd_loop_conf_t *lc, uint16_t id, bool junk)
{
    uint8_t buf[512];
    size_t nlen = knot_dname_size(lc->qname);
    size_t len = KNOT_WIRE_HEADER_SIZE + nlen + 4;
    memset(buf, 0, KNOT_WIRE_HEADER_SIZE);
    knot_wire_set_id(buf, id);
    knot_wire_set_qr(buf);
    knot_wire_set_rcode(buf, KNOT_RCODE_SERVFAIL);
    knot_wire_set_qdcount(buf, 1);
    memcpy(buf + KNOT_WIRE_HEADER_SIZE, lc->qname, nlen);
    knot_wire_write_u16(buf + KNOT_WIRE_HEADER_SIZE + nlen, KNOT_RRTYPE_HINFO);
    knot_wire_write_u16(buf + KNOT_WIRE_HEADER_SIZE + nlen + 2, KNOT_CLASS_IN);
    if (junk) {
        knot_wire_set_ancount(buf, 9); /* records that are not there */
    }
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    /* The probe's socket is connected: answer to its own address. */
    assert_int_equal(getsockname(lc->st->fd, (struct sockaddr *)&peer, &plen),
                     0);
    assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&peer, plen),
                     (ssize_t)len);
}


/* Wait until the probe's socket has what reply() sent (a second at
 * most): the event the next tick reads. */
static void
wait_reply(const cnd_loop_conf_t *lc)
{
    struct pollfd p = {.fd = lc->st->fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 1000), 1);
}


/* The reply is there: the tick takes it and the check settles. */
static void
tick_until_settled(cnd_conf_t *cf, cnd_inst_t *inst)
{
    wait_reply(inst->conf);
    tick(cf, inst);
}


/* A reply of any rcode ends the check; one with another ID does not. */
static void
test_probe_answered(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_server(&port);
    cnd_inst_t *inst;
    cnd_conf_t *cf = load_port(port, &inst);
    const cnd_loop_conf_t *lc = inst->conf;
    cnd_loop_state_t *st = lc->st;

    tick(cf, inst); /* before start(): nothing */
    assert_int_equal(st->phase, CND_LOOP_IDLE);
    assert_int_equal(inst->plugin->start(cf, inst), 0);
    assert_int_equal(st->phase, CND_LOOP_WAIT);
    uint16_t id = check_probe(fd, lc);
    tick(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_WAIT);

    reply(fd, lc, (uint16_t)(id + 1), false);
    wait_reply(lc);
    tick(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_WAIT);
    assert_false(atomic_load(&st->off));

    reply(fd, lc, id, false);
    tick_until_settled(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_DONE);
    assert_true(atomic_load(&st->off));
    assert_int_equal(st->fd, -1);
    tick(cf, inst); /* nothing more is sent */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 100), 0);

    cnd_conf_unref(cf);
    close(fd);
}


/* No reply in 2 s: the sightings are forgotten, and a second later the
 * same name goes out again from a new socket. */
static void
test_probe_timeout(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_server(&port);
    cnd_inst_t *inst;
    cnd_conf_t *cf = load_port(port, &inst);
    const cnd_loop_conf_t *lc = inst->conf;
    cnd_loop_state_t *st = lc->st;

    assert_int_equal(inst->plugin->start(cf, inst), 0);
    check_probe(fd, lc);
    atomic_store(&st->seen, 2);
    st->sent_ns -= CND_LOOP_TIMEOUT_NS - 200000000ULL; /* 1.8 s ago */
    tick(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_WAIT);
    st->sent_ns -= 200000000ULL; /* 2 s ago */
    tick(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_SLEEP);
    assert_int_equal(atomic_load(&st->seen), 0);
    assert_int_equal(st->fd, -1);
    assert_false(atomic_load(&st->off));

    tick(cf, inst); /* still sleeping */
    assert_int_equal(st->phase, CND_LOOP_SLEEP);
    st->wake_ns -= CND_LOOP_RETRY_NS;
    tick(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_WAIT);
    check_probe(fd, lc);

    /* After 30 s no new try starts, and the check is over. */
    st->sent_ns -= CND_LOOP_TIMEOUT_NS;
    st->begin_ns -= CND_LOOP_WINDOW_NS;
    tick(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_SLEEP);
    st->wake_ns -= CND_LOOP_RETRY_NS;
    tick(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_DONE);
    assert_true(atomic_load(&st->off));

    cnd_conf_unref(cf);
    close(fd);
}


/* A reply is judged by when it arrived, not by when the job read it: in
 * time but read after the 2 s, it ends the check; after the 2 s, it is a
 * timeout (Go's read deadline fires first). */
static void
test_probe_late_reply(void **state)
{
    (void)state;
    for (int late = 0; late < 2; late++) {
        uint16_t port;
        int fd = udp_server(&port);
        cnd_inst_t *inst;
        cnd_conf_t *cf = load_port(port, &inst);
        const cnd_loop_conf_t *lc = inst->conf;
        cnd_loop_state_t *st = lc->st;
        assert_int_equal(inst->plugin->start(cf, inst), 0);
        uint16_t id = check_probe(fd, lc);
        reply(fd, lc, id, false);
        wait_reply(lc);
        /* The job runs 2.1 s after the send... */
        st->sent_ns -= CND_LOOP_TIMEOUT_NS + 100000000ULL;
        if (late) {
            /* ...and the reply came 2.1 s after it too. */
            st->sent_rt_ns -= CND_LOOP_TIMEOUT_NS + 100000000ULL;
        }
        tick(cf, inst);
        assert_int_equal(st->phase, late ? CND_LOOP_SLEEP : CND_LOOP_DONE);
        assert_int_equal(atomic_load(&st->off), !late);
        cnd_conf_unref(cf);
        close(fd);
    }
}


/* Errors are retried as timeouts are: ICMP port unreachable, a reply
 * that does not parse. */
static void
test_probe_errors(void **state)
{
    (void)state;
    uint16_t port;
    int fd = udp_server(&port);
    close(fd); /* nobody listens there now */
    cnd_inst_t *inst;
    cnd_conf_t *cf = load_port(port, &inst);
    const cnd_loop_conf_t *lc = inst->conf;
    cnd_loop_state_t *st = lc->st;
    assert_int_equal(inst->plugin->start(cf, inst), 0);
    tick_until_settled(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_SLEEP);
    assert_false(atomic_load(&st->off));
    cnd_conf_unref(cf);

    fd = udp_server(&port);
    cf = load_port(port, &inst);
    lc = inst->conf;
    st = lc->st;
    assert_int_equal(inst->plugin->start(cf, inst), 0);
    uint16_t id = check_probe(fd, lc);
    reply(fd, lc, id, true);
    tick_until_settled(cf, inst);
    assert_int_equal(st->phase, CND_LOOP_SLEEP);
    assert_false(atomic_load(&st->off));
    /* stop() ends it whatever the phase. */
    inst->plugin->stop(inst);
    assert_int_equal(st->phase, CND_LOOP_DONE);
    cnd_conf_unref(cf);
    close(fd);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_cases),
        cmocka_unit_test(test_probe_name),
        cmocka_unit_test(test_sightings),
        cmocka_unit_test(test_probe_answered),
        cmocka_unit_test(test_probe_timeout),
        cmocka_unit_test(test_probe_late_reply),
        cmocka_unit_test(test_probe_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
