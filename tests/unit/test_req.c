/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_req.c - the chain driver on a real loop, without sockets.
 *
 * A worker is set up by hand with a chain of test plugins, and internal
 * requests (cnd_req_spawn) walk it, on virtual time (tests/unit/vloop.h): NEXT,
 * DONE, FAIL, ASYNC then resume from a timer, the deadline cancelling a parked
 * request, the way back running response() in reverse on exactly the plugins
 * that passed the request on, the failure record choosing by priority, and a
 * late resume being refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/plugin.h"
#include "dns/ede.h"
#include "vloop.h"

/* What the test plugins saw. */
static char trace[256];
static cnd_req_t *parked;
static uv_timer_t resume_timer;

static void
trace_add(const char *s)
{
    strncat(trace, s, sizeof(trace) - strlen(trace) - 1);
}


/* "next": passes on, and notes the way back. */
static cnd_rc_t
next_query(cnd_req_t *r, cnd_inst_t *self)
{
    (void)r;
    (void)self;
    trace_add("n>");
    return CND_NEXT;
}


static void
next_response(cnd_req_t *r, cnd_inst_t *self)
{
    (void)r;
    (void)self;
    trace_add("<n");
}


/* "answer": answers NOERROR with no records. */
static cnd_rc_t
answer_query(cnd_req_t *r, cnd_inst_t *self)
{
    (void)self;
    trace_add("a!");
    knot_pkt_t *pkt = cnd_req_answer_begin(r);
    assert_non_null(pkt);
    assert_int_equal(cnd_req_answer_pkt(r, pkt), 0);
    return CND_DONE;
}


static void
answer_response(cnd_req_t *r, cnd_inst_t *self)
{
    (void)r;
    (void)self;
    trace_add("<a"); /* must never run: it answered */
}


/* "fail": two failures, the second more diagnostic. */
static cnd_rc_t
fail_query(cnd_req_t *r, cnd_inst_t *self)
{
    (void)self;
    trace_add("f!");
    cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_NO_REACHABLE_AUTHORITY,
                 "upstream %s timed out", "127.0.0.1:1");
    return cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_DNSSEC_BOGUS,
                        "upstream said bogus");
}


/* "park": parks; a timer resumes with NEXT after 10 ms. */
static void
resume_cb(uv_timer_t *t)
{
    (void)t;
    cnd_req_t *r = parked;
    parked = NULL;
    trace_add("r");
    cnd_req_resume(r, CND_NEXT);
}


static cnd_rc_t
park_query(cnd_req_t *r, cnd_inst_t *self)
{
    (void)self;
    trace_add("p~");
    parked = r;
    uv_timer_start(&resume_timer, resume_cb, 10, 0);
    return CND_ASYNC;
}


static void
park_cancel(cnd_req_t *r, cnd_inst_t *self)
{
    (void)self;
    trace_add("c");
    uv_timer_stop(&resume_timer);
    parked = NULL;
    cnd_req_fail(r, KNOT_RCODE_SERVFAIL, CND_EDE_NO_REACHABLE_AUTHORITY,
                 "still waiting");
}


/* "hang": parks and never resumes: the deadline must cancel it. */
static cnd_rc_t
hang_query(cnd_req_t *r, cnd_inst_t *self)
{
    (void)self;
    trace_add("h~");
    parked = r;
    return CND_ASYNC;
}


static void
hang_cancel(cnd_req_t *r, cnd_inst_t *self)
{
    (void)r;
    (void)self;
    trace_add("c");
    parked = NULL;
}


/* "bad": returns something that is not a state. */
static cnd_rc_t
bad_query(cnd_req_t *r, cnd_inst_t *self)
{
    (void)r;
    (void)self;
    return (cnd_rc_t)42;
}


static const cnd_plugin_t p_origin = {.name = "origin", .query = next_query};
static const cnd_plugin_t p_next = {
    .name = "next", .query = next_query, .response = next_response};
static const cnd_plugin_t p_answer = {
    .name = "answer", .query = answer_query, .response = answer_response};
static const cnd_plugin_t p_fail = {.name = "fail", .query = fail_query};
static const cnd_plugin_t p_park = {
    .name = "park", .query = park_query, .cancel = park_cancel};
static const cnd_plugin_t p_hang = {
    .name = "hang", .query = hang_query, .cancel = hang_cancel};
static const cnd_plugin_t p_bad = {.name = "bad", .query = bad_query};

/* The result a spawn callback saw. */
typedef struct {
    int calls;
    uint16_t rcode;
    uint16_t ede;
    char text[128];
    char plugin[32];
    bool answered;
} result_t;

static void
done_cb(cnd_req_t *r, void *arg)
{
    result_t *res = arg;
    res->calls++;
    res->answered = r->resp != NULL;
    res->rcode = cnd_req_rcode(r);
    const cnd_fail_t *f = cnd_req_failure(r);
    res->ede = f != NULL ? f->ede : CND_EDE_NONE;
    snprintf(res->text, sizeof(res->text), "%s", f != NULL ? f->text : "");
    snprintf(res->plugin, sizeof(res->plugin), "%s",
             f != NULL ? f->plugin : "");
    trace_add("D");
}


/* A worker with no sockets, serving one server block with @chain. */
typedef struct {
    cnd_worker_t *w;
    cnd_server_t srv;
    cnd_inst_t insts[8];
    cnd_wconf_t wc;
    void *pdata[8];
} rig_t;

static void
rig_init(rig_t *rig, const cnd_plugin_t *const *chain, size_t n)
{
    memset(rig, 0, sizeof(*rig));
    vl_clock_on(); /* before the loop reads the clock */
    rig->w = calloc(1, sizeof(*rig->w));
    cnd_worker_t *w = rig->w;
    assert_int_equal(uv_loop_init(&w->loop), 0);
    w->inflight.next = w->inflight.prev = &w->inflight;
    w->conns.next = w->conns.prev = &w->conns;
    w->scratch = knot_pkt_new(NULL, KNOT_WIRE_MAX_PKTSIZE, NULL);
    w->deadline_ms = 50;
    rig->wc.pdata = rig->pdata;
    w->wc = &rig->wc;
    for (size_t i = 0; i < n; i++) {
        rig->insts[i].plugin = chain[i];
        rig->insts[i].srv = &rig->srv;
        rig->insts[i].slot = (unsigned)i;
        rig->insts[i].wslot = (unsigned)i;
    }
    rig->srv.chain = rig->insts;
    rig->srv.nchain = n;
    uv_timer_init(&w->loop, &resume_timer);
    trace[0] = '\0';
}


static void
rig_close_cb(uv_handle_t *h)
{
    (void)h;
}


static void
rig_fini(rig_t *rig)
{
    cnd_worker_t *w = rig->w;
    w->stopping = true; /* the pool frees instead of keeping */
    while (w->free != NULL) {
        cnd_req_t *r = w->free;
        w->free = r->next;
        uv_close((uv_handle_t *)&r->deadline, rig_close_cb);
        uv_close((uv_handle_t *)&r->timer, rig_close_cb);
        uv_run(&w->loop, UV_RUN_NOWAIT);
        free(r);
    }
    uv_close((uv_handle_t *)&resume_timer, rig_close_cb);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    knot_pkt_free(w->scratch);
    free(w);
}


static void
spawn(rig_t *rig, result_t *res)
{
    uint8_t qname[32];
    knot_dname_from_str(qname, "test.example.", sizeof(qname));
    cnd_question_t q = {.qname = qname,
                        .qtype = KNOT_RRTYPE_A,
                        .qclass = KNOT_CLASS_IN,
                        .rd = true};
    memset(res, 0, sizeof(*res));
    assert_int_equal(cnd_req_spawn(rig->w, &rig->insts[0], &q, done_cb, res),
                     0);
    assert_true(vl_run_loop(&rig->w->loop, NULL, NULL, 60000));
    assert_int_equal(res->calls, 1);
    assert_int_equal(rig->w->ninflight, 0);
}


static void
test_walk_and_way_back(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin, &p_next, &p_next, &p_answer,
                                   &p_next};
    rig_t rig;
    result_t res;
    rig_init(&rig, chain, 5);
    spawn(&rig, &res);
    /* spawned after "origin": two nexts, the answer, back through both */
    assert_string_equal(trace, "n>n>a!<n<nD");
    assert_true(res.answered);
    assert_int_equal(res.rcode, KNOT_RCODE_NOERROR);
    assert_int_equal(res.ede, CND_EDE_NONE);
    rig_fini(&rig);
}


static void
test_off_the_end(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin, &p_next};
    rig_t rig;
    result_t res;
    rig_init(&rig, chain, 2);
    spawn(&rig, &res);
    assert_string_equal(trace, "n><nD");
    assert_int_equal(res.rcode, KNOT_RCODE_SERVFAIL);
    assert_string_equal(res.plugin, "next");
    assert_string_equal(res.text, "no next plugin found");
    rig_fini(&rig);
}


static void
test_fail_priority(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin, &p_next, &p_fail, &p_next};
    rig_t rig;
    result_t res;
    rig_init(&rig, chain, 4);
    spawn(&rig, &res);
    assert_string_equal(trace, "n>f!<nD");
    assert_int_equal(res.rcode, KNOT_RCODE_SERVFAIL);
    assert_int_equal(res.ede, CND_EDE_DNSSEC_BOGUS); /* beats 22 */
    assert_string_equal(res.plugin, "fail");
    assert_string_equal(res.text, "upstream said bogus");
    rig_fini(&rig);
}


static void
test_async_resume(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin, &p_next, &p_park, &p_answer};
    rig_t rig;
    result_t res;
    rig_init(&rig, chain, 4);
    uint64_t t0 = vl_now_ms();
    spawn(&rig, &res);
    assert_int_equal(vl_now_ms() - t0, 10); /* park's timer */
    /* parked in "park", resumed with NEXT, answered by "answer"; the way
     * back includes "park" (no response hook) and "next". */
    assert_string_equal(trace, "n>p~ra!<nD");
    assert_true(res.answered);
    assert_int_equal(res.rcode, KNOT_RCODE_NOERROR);
    rig_fini(&rig);
}


static void
test_deadline_cancels(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin, &p_next, &p_hang, &p_answer};
    rig_t rig;
    result_t res;
    rig_init(&rig, chain, 4);
    uint64_t t0 = vl_now_ms();
    spawn(&rig, &res);
    assert_int_equal(vl_now_ms() - t0, 50); /* the rig's deadline */
    assert_string_equal(trace, "n>h~c<nD");
    assert_int_equal(res.rcode, KNOT_RCODE_SERVFAIL);
    assert_string_equal(res.plugin, "hang");
    assert_non_null(strstr(res.text, "request deadline"));
    assert_null(parked);
    rig_fini(&rig);
}


/* cancel() that records why it waited: that cause is reported. */
static void
test_cancel_with_cause(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin, &p_park, &p_answer};
    rig_t rig;
    result_t res;
    rig_init(&rig, chain, 3);
    uint8_t qname[32];
    knot_dname_from_str(qname, "x.", sizeof(qname));
    cnd_question_t q = {
        .qname = qname, .qtype = KNOT_RRTYPE_A, .qclass = KNOT_CLASS_IN};
    memset(&res, 0, sizeof(res));
    assert_int_equal(cnd_req_spawn(rig.w, &rig.insts[0], &q, done_cb, &res), 0);
    cnd_req_t *r = parked;
    assert_non_null(r);
    assert_ptr_equal(cnd_req_parked_in(r), &rig.insts[1]);
    cnd__req_cancel(r, "the client went away");
    assert_int_equal(res.calls, 1);
    assert_int_equal(res.ede, CND_EDE_NO_REACHABLE_AUTHORITY);
    assert_string_equal(res.text, "still waiting");
    uv_run(&rig.w->loop, UV_RUN_DEFAULT);
    assert_string_equal(trace, "p~cD");
    rig_fini(&rig);
}


static void
test_bad_state(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin, &p_bad};
    rig_t rig;
    result_t res;
    rig_init(&rig, chain, 2);
    spawn(&rig, &res);
    assert_int_equal(res.rcode, KNOT_RCODE_SERVFAIL);
    assert_non_null(strstr(res.text, "invalid state 42"));
    rig_fini(&rig);
}


/* A resume on a request that is not parked is refused, not run. */
static void
test_late_resume(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin, &p_answer};
    rig_t rig;
    result_t res;
    rig_init(&rig, chain, 2);
    cnd_req_t fake;
    memset(&fake, 0, sizeof(fake));
    fake.state = CND_REQ_FREE;
    cnd_req_resume(&fake, CND_DONE); /* logs, does nothing */
    spawn(&rig, &res);
    assert_string_equal(trace, "a!D");
    rig_fini(&rig);
}


/* Spawning after the last plugin has nothing to ask. */
static void
test_spawn_at_end(void **state)
{
    (void)state;
    const cnd_plugin_t *chain[] = {&p_origin};
    rig_t rig;
    rig_init(&rig, chain, 1);
    uint8_t qname[8];
    knot_dname_from_str(qname, "x.", sizeof(qname));
    cnd_question_t q = {
        .qname = qname, .qtype = KNOT_RRTYPE_A, .qclass = KNOT_CLASS_IN};
    assert_int_equal(cnd_req_spawn(rig.w, &rig.insts[0], &q, done_cb, NULL),
                     -EINVAL);
    rig_fini(&rig);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_and_way_back),
        cmocka_unit_test(test_off_the_end),
        cmocka_unit_test(test_fail_priority),
        cmocka_unit_test(test_async_resume),
        cmocka_unit_test(test_deadline_cancels),
        cmocka_unit_test(test_cancel_with_cause),
        cmocka_unit_test(test_bad_state),
        cmocka_unit_test(test_late_resume),
        cmocka_unit_test(test_spawn_at_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
