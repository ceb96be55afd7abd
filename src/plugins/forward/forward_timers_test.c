/* SPDX-License-Identifier: MIT */
/*
 * plugins/forward/forward_timers_test.c - forward's timers on virtual time.
 *
 * A real worker runs a Corefile's forward on the test's thread
 * (tests/unit/vloop.h) with scripted upstreams on loopback, and the clock
 * jumps from timer to timer: the RTO that sends a query on to the next
 * upstream, the read timeout, failover to a healthy upstream and back once
 * a health check sees the first one again, truncation retried over TCP,
 * the request deadline cancelling a parked query, and a reload while
 * queries are parked.  Seconds of timers take milliseconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vloop.h"

static void
setup_clock(void)
{
    vl_clock_on();
}


/* A server whose forward line goes to upstream @a on 127.0.0.2 (and @b on
 * 127.0.0.3 when not NULL), with @opts (NULL: none) as its block. */
static vl_server_t *
forward_to(vl_upstream_t **a, vl_upstream_t **b, const char *opts)
{
    vl_server_t *s = vl_server_start(".:53 {\n whoami\n}");
    *a = vl_upstream(s, "127.0.0.2");
    if (b != NULL) {
        *b = vl_upstream(s, "127.0.0.3");
    }
    assert_int_equal(
        vl_server_reload(
            s, ".:53 {\n forward . %s %s {\n%s\n }\n}", vl_upstream_addr(*a),
            b != NULL ? vl_upstream_addr(*b) : "", opts != NULL ? opts : ""),
        0);
    return s;
}


/* The first upstream is silent: at its RTO (1 s before any RTT is known)
 * the query goes on to the second, whose answer the client gets. */
static void
test_rto_sends_on(void **state)
{
    (void)state;
    setup_clock();
    vl_upstream_t *a, *b;
    vl_server_t *s = forward_to(&a, &b, "  policy sequential");
    const vl_act_t drop = {.kind = VL_DROP};
    vl_upstream_script(a, &drop, 1);
    uint64_t t0 = vl_now_ms();
    vl_answer_t ans;
    assert_true(vl_ask(s, "a.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(ans.ancount, 1);
    assert_int_equal(vl_upstream_count(a, "a.example."), 1);
    assert_int_equal(vl_upstream_count(b, "a.example."), 1);
    assert_int_equal(vl_upstream_seen(a, 0)->at_ms, t0);
    assert_int_equal(vl_upstream_seen(b, 0)->at_ms, t0 + 1000);
    assert_int_equal(ans.at_ms, t0 + 1000);
    vl_server_stop(s);
}


/* Both silent: the query alternates between them, at each RTO and each
 * 2 s read timeout, until the request deadline (5 s) ends it: SERVFAIL
 * with EDE 22 naming both upstreams and what each did. */
static void
test_all_silent(void **state)
{
    (void)state;
    setup_clock();
    vl_upstream_t *a, *b;
    const vl_act_t drop = {.kind = VL_DROP};
    vl_server_t *s = forward_to(&a, &b, "  policy sequential");
    vl_upstream_script(a, &drop, 1);
    vl_upstream_script(b, &drop, 1);
    uint64_t t0 = vl_now_ms();
    vl_answer_t ans;
    assert_true(vl_ask(s, "a.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_SERVFAIL);
    assert_int_equal(ans.ede, 22);
    assert_int_equal(ans.at_ms, t0 + 5000);
    char want[256];
    snprintf(want, sizeof(want),
             "22: forward: no answer within the request deadline: %s udp "
             "timed out after 2s, 2 tries; %s udp timed out after 2s, 2 tries",
             vl_upstream_addr(a), vl_upstream_addr(b));
    assert_string_equal(ans.ede_text, want);
    /* a at 0, b at a's RTO (1 s), each again when its try timed out */
    const uint64_t when_a[] = {0, 2000}, when_b[] = {1000, 3000};
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < vl_upstream_nseen(a); i++) {
        if (strcmp(vl_upstream_seen(a, i)->qname, "a.example.") == 0) {
            assert_true(na < 2);
            assert_int_equal(vl_upstream_seen(a, i)->at_ms, t0 + when_a[na++]);
        }
    }
    for (size_t i = 0; i < vl_upstream_nseen(b); i++) {
        if (strcmp(vl_upstream_seen(b, i)->qname, "a.example.") == 0) {
            assert_true(nb < 2);
            assert_int_equal(vl_upstream_seen(b, i)->at_ms, t0 + when_b[nb++]);
        }
    }
    assert_int_equal(na + nb, 4);
    assert_int_equal(vl_server_inflight(s), 0);
    vl_server_stop(s);
}


/* A truncated answer over UDP: the same upstream at once over TCP. */
static void
test_tc_retries_over_tcp(void **state)
{
    (void)state;
    setup_clock();
    vl_upstream_t *a;
    const vl_act_t acts[] = {{.kind = VL_TC}, {.kind = VL_ANSWER}};
    vl_server_t *s = forward_to(&a, NULL, NULL);
    vl_upstream_script(a, acts, 2);
    vl_answer_t ans;
    assert_true(vl_ask(s, "big.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_false(ans.tc);
    assert_int_equal(ans.ancount, 1);
    assert_int_equal(vl_upstream_nseen(a), 2);
    assert_false(vl_upstream_seen(a, 0)->tcp);
    assert_true(vl_upstream_seen(a, 1)->tcp);
    assert_int_equal(vl_upstream_seen(a, 1)->at_ms,
                     vl_upstream_seen(a, 0)->at_ms);
    vl_server_stop(s);
}


/* A reply with the wrong ID is no answer: the try keeps waiting, and the
 * query goes on at the RTO; the next reply is taken. */
static void
test_wrong_id_ignored(void **state)
{
    (void)state;
    setup_clock();
    vl_upstream_t *a;
    const vl_act_t acts[] = {{.kind = VL_WRONG_ID}, {.kind = VL_ANSWER}};
    vl_server_t *s = forward_to(&a, NULL, NULL);
    vl_upstream_script(a, acts, 2);
    uint64_t t0 = vl_now_ms();
    vl_answer_t ans;
    assert_true(vl_ask(s, "a.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(vl_upstream_count(a, "a.example."), 2);
    assert_int_equal(vl_upstream_seen(a, 1)->at_ms, t0 + 1000);
    assert_int_equal(ans.at_ms, t0 + 1000);
    vl_server_stop(s);
}


/* max_fails 1: a timeout and a failed health check (more than max_fails)
 * mark the first upstream down, so queries go straight to the second (no
 * RTO wait); the check asks the first every interval, and once it
 * answers, queries go back to it. */
static void
test_failover_and_back(void **state)
{
    (void)state;
    setup_clock();
    vl_upstream_t *a, *b;
    const vl_act_t drop = {.kind = VL_DROP};
    vl_server_t *s = forward_to(&a, &b,
                                "  policy sequential\n  max_fails 1\n"
                                "  health_check 500ms");
    vl_upstream_script(a, &drop, 1);
    uint64_t t0 = vl_now_ms();
    vl_answer_t ans;
    assert_true(vl_ask(s, "one.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(ans.at_ms, t0 + 1000); /* a's RTO */
    /* the RTO counted one failure and started a check at once: ". NS",
     * which times out after 1 s: two failures, a is down */
    vl_run_for(s, 1500);
    assert_int_equal(vl_upstream_count(a, "."), 2); /* 1000 and 2500 */
    uint64_t t1 = vl_now_ms();
    assert_true(vl_ask(s, "two.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.at_ms, t1);
    assert_int_equal(vl_upstream_count(a, "two.example."), 0);
    assert_int_equal(vl_upstream_count(b, "two.example."), 1);

    /* a answers again: its next check brings it back */
    const vl_act_t answer = {.kind = VL_ANSWER};
    vl_upstream_script(a, &answer, 1);
    size_t checks = vl_upstream_count(a, ".");
    vl_run_for(s, 1500);
    assert_true(vl_upstream_count(a, ".") > checks);
    t1 = vl_now_ms();
    assert_true(vl_ask(s, "three.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(ans.at_ms, t1);
    assert_int_equal(vl_upstream_count(a, "three.example."), 1);
    assert_int_equal(vl_upstream_count(b, "three.example."), 0);
    vl_server_stop(s);
}


/* The request deadline comes before the upstream's reply: cancel() drops
 * the tries, the client gets SERVFAIL saying so, and the late reply finds
 * nobody waiting. */
static void
test_deadline_cancels_parked(void **state)
{
    (void)state;
    setup_clock();
    vl_upstream_t *a;
    const vl_act_t slow = {.kind = VL_ANSWER, .delay_ms = 1500};
    vl_server_t *s = forward_to(&a, NULL, "  max_fails 0");
    vl_upstream_script(a, &slow, 1);
    vl_server_set_deadline(s, 700);
    uint64_t t0 = vl_now_ms();
    vl_answer_t ans;
    assert_true(
        vl_ask(s, "slow.example.", KNOT_RRTYPE_A, VL_EDNS, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_SERVFAIL);
    assert_int_equal(ans.at_ms, t0 + 700);
    assert_non_null(strstr(ans.ede_text, "request deadline"));
    assert_int_equal(vl_server_inflight(s), 0);
    /* the late reply comes to a closed try: nothing breaks */
    vl_run_for(s, 2000);
    assert_int_equal(vl_upstream_count(a, "slow.example."), 1);
    vl_server_set_deadline(s, 5000);
    assert_true(vl_ask(s, "next.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    vl_server_stop(s);
}


/* A reload while a query is parked upstream: it is answered from the old
 * snapshot's forward, a new query uses the new upstream, and the old view
 * goes once its last request is done. */
static void
test_reload_while_parked(void **state)
{
    (void)state;
    setup_clock();
    vl_upstream_t *a;
    const vl_act_t slow = {.kind = VL_ANSWER, .delay_ms = 800};
    vl_server_t *s = forward_to(&a, NULL, NULL);
    vl_upstream_t *b = vl_upstream(s, "127.0.0.3"); /* the reload's */
    vl_upstream_script(a, &slow, 1);
    uint64_t t0 = vl_now_ms();
    int q1 = vl_send(s, "old.example.", KNOT_RRTYPE_A, 0);
    vl_run_for(s, 100);
    assert_int_equal(vl_server_inflight(s), 1);
    assert_int_equal(
        vl_server_reload(s, ".:53 {\n forward . %s\n}", vl_upstream_addr(b)),
        0);
    assert_int_equal(vl_server_old_views(s), 1);
    vl_answer_t ans;
    assert_true(vl_ask(s, "new.example.", KNOT_RRTYPE_A, 0, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(vl_upstream_nseen(b), 1);
    assert_int_equal(vl_upstream_count(b, "new.example."), 1);
    assert_true(vl_wait(s, q1, 10000, &ans));
    assert_int_equal(ans.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(ans.at_ms, t0 + 800);
    assert_int_equal(vl_upstream_nseen(a), 1);
    vl_run_for(s, 10);
    assert_int_equal(vl_server_old_views(s), 0);
    vl_server_stop(s);
}


/* Stopping with a query parked: it is answered (SERVFAIL once its tries
 * are over, within the grace) and the loop ends. */
static void
test_stop_while_parked(void **state)
{
    (void)state;
    setup_clock();
    vl_upstream_t *a;
    const vl_act_t drop = {.kind = VL_DROP};
    vl_server_t *s = forward_to(&a, NULL, NULL);
    vl_upstream_script(a, &drop, 1);
    vl_send(s, "parked.example.", KNOT_RRTYPE_A, 0);
    vl_run_for(s, 100);
    assert_int_equal(vl_server_inflight(s), 1);
    vl_server_stop(s); /* fails the test if the loop does not end */
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rto_sends_on),
        cmocka_unit_test(test_all_silent),
        cmocka_unit_test(test_tc_retries_over_tcp),
        cmocka_unit_test(test_wrong_id_ignored),
        cmocka_unit_test(test_failover_and_back),
        cmocka_unit_test(test_deadline_cancels_parked),
        cmocka_unit_test(test_reload_while_parked),
        cmocka_unit_test(test_stop_while_parked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
