/* SPDX-License-Identifier: MIT */
/*
 * plugins/cache/cache_timers_test.c - the cache's clocks on virtual time.
 *
 * A real worker runs cache and forward from a Corefile on the test's
 * thread (tests/unit/vloop.h), with a scripted upstream on loopback and
 * the clock moved by the test: TTLs counting down, expiry, serve-stale in
 * both modes with its RESPONSE_TTL and RECHECK, prefetch of a popular
 * name, and the failure cache's hold.  Hours of TTL take milliseconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vloop.h"

static const vl_act_t drop = {.kind = VL_DROP};

/* A server with "cache" (@opts inside its block) before a forward to a
 * scripted upstream, returned in @up. */
static vl_server_t *
start(const char *opts, vl_upstream_t **up)
{
    vl_clock_on();
    vl_server_t *s = vl_server_start(".:53 {\n whoami\n}");
    *up = vl_upstream(s, "127.0.0.2");
    assert_int_equal(vl_server_reload(s,
                                      ".:53 {\n cache {\n%s\n }\n"
                                      " forward . %s {\n  max_fails 0\n }\n}",
                                      opts, vl_upstream_addr(*up)),
                     0);
    return s;
}


/* A hit gives the TTL counted down and does not go upstream; once the
 * TTL is over the name is asked again. */
static void
test_ttl_counts_down(void **state)
{
    (void)state;
    vl_upstream_t *up;
    vl_server_t *s = start("", &up);
    const vl_act_t ttl300 = {.kind = VL_ANSWER, .ttl = 300};
    vl_upstream_script(up, &ttl300, 1);
    vl_answer_t ans;
    assert_true(vl_ask(s, "a.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.ttl, 300);
    vl_run_for(s, 100 * 1000);
    assert_true(vl_ask(s, "a.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.ttl, 200);
    assert_true(ans.aa);
    assert_int_equal(vl_upstream_count(up, "a.example."), 1);
    vl_run_for(s, 200 * 1000);
    assert_true(vl_ask(s, "a.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.ttl, 300);
    assert_int_equal(vl_upstream_count(up, "a.example."), 2);
    vl_server_stop(s);
}


/* serve_stale (immediate): an expired entry is answered at once with EDE
 * 3 and RESPONSE_TTL (30 s) while one refresh goes upstream; after it
 * failed, no refresh for RECHECK (30 s), and the stale answers say why. */
static void
test_serve_stale_immediate(void **state)
{
    (void)state;
    vl_upstream_t *up;
    vl_server_t *s = start("  serve_stale 1h", &up);
    const vl_act_t ttl10 = {.kind = VL_ANSWER, .ttl = 10};
    vl_upstream_script(up, &ttl10, 1);
    vl_answer_t ans;
    assert_true(vl_ask(s, "s.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.ttl, 10);
    vl_upstream_script(up, &drop, 1);
    vl_run_for(s, 22 * 1000);

    uint64_t t1 = vl_now_ms();
    assert_true(vl_ask(s, "s.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.at_ms, t1); /* at once */
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(ans.ancount, 1);
    assert_int_equal(ans.ttl, 30);
    assert_int_equal(ans.ede, 3);
    assert_non_null(strstr(ans.ede_text, "stale answer, expired 12s ago"));
    /* one refresh went upstream (two tries: at once and at the RTO) and
     * failed in the background, at 3 s */
    vl_run_for(s, 6000);
    assert_int_equal(vl_upstream_count(up, "s.example."), 3);
    assert_int_equal(vl_server_inflight(s), 0);

    /* within RECHECK: stale at once, saying why, nothing upstream */
    assert_true(vl_ask(s, "s.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.ede, 3);
    assert_non_null(strstr(ans.ede_text, "refresh failed: forward: "));
    assert_non_null(strstr(ans.ede_text, vl_upstream_addr(up)));
    vl_run_for(s, 100);
    assert_int_equal(vl_upstream_count(up, "s.example."), 3);

    /* RECHECK over (30 s after the refresh failed): the next query
     * refreshes again, and the upstream is back: the fresh answer is
     * stored */
    vl_upstream_script(up, &ttl10, 1);
    vl_run_for(s, 30 * 1000);
    assert_true(vl_ask(s, "s.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.ede, 3);
    vl_run_for(s, 100);
    assert_int_equal(vl_upstream_count(up, "s.example."), 4);
    assert_true(vl_ask(s, "s.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.ede, -1);
    assert_int_equal(ans.ttl, 10);
    vl_server_stop(s);
}


/* serve_stale verify: the expired entry waits for the refresh; when the
 * upstream is silent, the stale answer comes at TIMEOUT (1.8 s). */
static void
test_serve_stale_verify(void **state)
{
    (void)state;
    vl_upstream_t *up;
    vl_server_t *s = start("  serve_stale 1h verify", &up);
    const vl_act_t ttl10 = {.kind = VL_ANSWER, .ttl = 10};
    vl_upstream_script(up, &ttl10, 1);
    vl_answer_t ans;
    assert_true(vl_ask(s, "v.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    vl_upstream_script(up, &drop, 1);
    vl_run_for(s, 15 * 1000);
    uint64_t t1 = vl_now_ms();
    assert_true(vl_ask(s, "v.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.at_ms, t1 + 1800);
    assert_int_equal(ans.ede, 3);
    assert_int_equal(ans.ttl, 30);

    /* The refresh failed 2.3 s after it started (its second try, sent
     * at the RTO of 300 ms once an RTT is known, timed out).  Until
     * RECHECK (30 s) after that: stale at once, nothing upstream. */
    const vl_act_t slow = {.kind = VL_ANSWER, .ttl = 10, .delay_ms = 200};
    vl_upstream_script(up, &slow, 1);
    vl_run_for(s, 1500);
    assert_int_equal(vl_upstream_count(up, "v.example."), 3);
    vl_run_for(s, 27 * 1000);
    uint64_t t2 = vl_now_ms();
    assert_true(vl_ask(s, "v.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.at_ms, t2);
    assert_int_equal(ans.ede, 3);
    assert_non_null(strstr(ans.ede_text, "refresh failed: forward: "));
    vl_run_for(s, 100);
    assert_int_equal(vl_upstream_count(up, "v.example."), 3);

    /* past RECHECK, an answering upstream: the fresh answer */
    vl_run_for(s, 3000);
    t1 = vl_now_ms();
    assert_true(vl_ask(s, "v.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.at_ms, t1 + 200);
    assert_int_equal(ans.ede, -1);
    assert_int_equal(ans.ttl, 10);
    vl_server_stop(s);
}


/* prefetch 2 1m 10%: asked twice within a minute, a query with under 10%
 * of the TTL left is answered from the cache and refreshes it. */
static void
test_prefetch(void **state)
{
    (void)state;
    vl_upstream_t *up;
    vl_server_t *s = start("  prefetch 2 1m 10%", &up);
    const vl_act_t ttl100 = {.kind = VL_ANSWER, .ttl = 100};
    vl_upstream_script(up, &ttl100, 1);
    vl_answer_t ans;
    assert_true(vl_ask(s, "p.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    vl_run_for(s, 50 * 1000);
    assert_true(vl_ask(s, "p.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.ttl, 50);
    assert_int_equal(vl_upstream_count(up, "p.example."), 1);
    vl_run_for(s, 45 * 1000); /* 5 s left: under 10% */
    uint64_t t1 = vl_now_ms();
    assert_true(vl_ask(s, "p.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.at_ms, t1);
    assert_int_equal(ans.ttl, 5);
    vl_run_for(s, 10);
    assert_int_equal(vl_upstream_count(up, "p.example."), 2);
    /* the refreshed entry: a full TTL again, and no expiry at 100 s */
    vl_run_for(s, 10 * 1000);
    assert_true(vl_ask(s, "p.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.ttl, 90);
    assert_int_equal(vl_upstream_count(up, "p.example."), 2);
    vl_server_stop(s);
}


/* A SERVFAIL is held for `servfail` (2 s here) with its cause and EDE 13
 * counting down; after that the upstream is asked again. */
static void
test_failure_cache_hold(void **state)
{
    (void)state;
    vl_upstream_t *up;
    vl_server_t *s = start("  servfail 2s", &up);
    const vl_act_t bogus = {.kind = VL_EDE, .ede = 6, .text = "sig expired"};
    vl_upstream_script(up, &bogus, 1);
    vl_answer_t ans;
    assert_true(vl_ask(s, "f.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_SERVFAIL);
    assert_int_equal(ans.ede, 6);
    vl_run_for(s, 1000);
    assert_true(vl_ask(s, "f.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_SERVFAIL);
    assert_int_equal(ans.ede, 6);
    assert_non_null(strstr(ans.ede_text, "13: cache: cached failure, 1s left"));
    assert_int_equal(vl_upstream_count(up, "f.example."), 1);
    vl_run_for(s, 1500);
    const vl_act_t answer = {.kind = VL_ANSWER};
    vl_upstream_script(up, &answer, 1);
    assert_true(vl_ask(s, "f.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(vl_upstream_count(up, "f.example."), 2);
    vl_server_stop(s);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl_counts_down),
        cmocka_unit_test(test_serve_stale_immediate),
        cmocka_unit_test(test_serve_stale_verify),
        cmocka_unit_test(test_prefetch),
        cmocka_unit_test(test_failure_cache_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
