/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/vloop.h - a server on virtual time, for millisecond tests of
 * what takes seconds of timers.
 *
 * As Unbound's testbound replays a scenario on a fake event base, this
 * runs one real worker (udp.c, tcp.c, req.c and the plugins of a real
 * Corefile) on the test's own thread, with the clock under the test's
 * control:
 *
 * - The virtual clock.  Once vl_clock_on() runs, CLOCK_MONOTONIC (and its
 *   COARSE, RAW and BOOTTIME kin) reads a counter instead of the kernel's:
 *   the test binary defines clock_gettime(), which libuv, and so
 *   uv_now(), uv_hrtime() and every timer of the loop, calls instead of
 *   libc's.  Only this thread may use the loop while it is on.
 * - The stepper.  vl_run() turns the loop without blocking; whenever no
 *   socket is ready it moves the clock straight to the next timer.  A
 *   forward try's 2 s timeout takes no real time at all.
 * - Peers on loopback.  vl_server_start() gives the worker UDP and TCP
 *   sockets on 127.0.0.1 with ports the kernel picked; a vl_upstream_t is
 *   a scripted upstream on the same loop (it drops, answers late,
 *   truncates, fails, answers with garbage or the wrong ID, one action
 *   per query it gets) that records when each query came and how.
 *
 * Virtual time starts at VL_T0_MS; vl_now_ms() is relative to it, so a
 * test reads "the second try went out at 200 ms".
 */
#ifndef CND_TESTS_VLOOP_H
#define CND_TESTS_VLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libknot/libknot.h>
#include <uv.h>

#define VL_T0_MS 1000000u

/* ---- the clock ------------------------------------------------------- */

/* Monotonic clocks read virtual time from now on (VL_T0_MS at first). */
void vl_clock_on(void);
/* Virtual milliseconds since vl_clock_on(). */
uint64_t vl_now_ms(void);
/* Turn any @loop on virtual time until @done(@arg) (true), @max_ms of
 * virtual time passed or nothing is left that could happen (false): the
 * stepper vl_run() uses, for tests with a loop of their own.  Time moves
 * only here, timer by timer, so timers fire in order and on time. */
bool vl_run_loop(uv_loop_t *loop, bool (*done)(void *), void *arg,
                 uint64_t max_ms);

/* ---- the server ------------------------------------------------------ */

typedef struct vl_server_s vl_server_t;

/* Load @corefile (printf format) and run one worker of it on this thread.
 * Every listen address of it is served on 127.0.0.1 at a port of the
 * kernel's choosing (vl_server_port); the addresses the Corefile names
 * are never bound.  Fails the test on an error. */
vl_server_t *vl_server_start(const char *corefile, ...);
/* Stop gracefully (requests in flight are answered or cancelled), run the
 * loop until it ends, free everything. */
void vl_server_stop(vl_server_t *s);
/* Reload to @corefile as SIGUSR1 would: requests in flight finish on the
 * old snapshot.  Returns 0, or -1 (with the error printed) when the new
 * one does not load. */
int vl_server_reload(vl_server_t *s, const char *corefile, ...);
uv_loop_t *vl_server_loop(vl_server_t *s);
/* The UDP and TCP port of listen address @i. */
uint16_t vl_server_port(const vl_server_t *s, size_t i);
/* Requests in flight on the worker. */
unsigned vl_server_inflight(const vl_server_t *s);
/* Views of older snapshots the worker still holds (reloads whose last
 * request has not ended). */
unsigned vl_server_old_views(const vl_server_t *s);
/* A request's overall deadline (CND_REQ_DEADLINE_MS, 5 s, by default). */
void vl_server_set_deadline(vl_server_t *s, unsigned ms);

/* Turn the loop on virtual time until @done(@arg) is true (returns true)
 * or @max_ms of virtual time have passed, or nothing is left that could
 * happen (returns false). */
bool vl_run(vl_server_t *s, bool (*done)(void *), void *arg, uint64_t max_ms);
/* Turn the loop for @ms of virtual time. */
void vl_run_for(vl_server_t *s, uint64_t ms);

/* ---- a client -------------------------------------------------------- */

/* Query flags for vl_ask(). */
enum {
    VL_TCP = 1 << 0,  /* over TCP (a connection of its own)    */
    VL_EDNS = 1 << 1, /* with an OPT record (1232 bytes)       */
    VL_DO = 1 << 2,   /* DO set (implies VL_EDNS)              */
};

/* What came back for one query. */
typedef struct {
    bool got;           /* an answer came                        */
    uint64_t at_ms;     /* when (vl_now_ms)                      */
    uint16_t rcode;     /* header rcode                          */
    bool tc, aa;        /* header bits                           */
    uint16_t ancount;   /* records in the answer section         */
    uint32_t ttl;       /* TTL of the first answer record        */
    int ede;            /* first EDE info code, -1 none          */
    char ede_text[512]; /* its text; every EDE, " | " between    */
} vl_answer_t;

/* Ask @name @type (a name like "a.example.", a type like
 * KNOT_RRTYPE_A) and run the loop until the answer comes or @max_ms of
 * virtual time pass.  Returns whether it came. */
bool vl_ask(vl_server_t *s, const char *name, uint16_t type, unsigned flags,
            uint64_t max_ms, vl_answer_t *ans);

/* Asked without waiting: vl_send() returns a handle (index); vl_wait()
 * runs until that query's answer came. */
int vl_send(vl_server_t *s, const char *name, uint16_t type, unsigned flags);
bool vl_wait(vl_server_t *s, int q, uint64_t max_ms, vl_answer_t *ans);

/* ---- scripted upstreams ---------------------------------------------- */

typedef enum {
    VL_ANSWER = 0, /* NOERROR, one A record (127.0.0.53)  */
    VL_DROP,       /* no reply at all                      */
    VL_TC,         /* an empty answer with TC set          */
    VL_RCODE,      /* an empty answer with .rcode          */
    VL_GARBAGE,    /* bytes that are not DNS               */
    VL_WRONG_ID,   /* the answer with another ID           */
    VL_EDE,        /* SERVFAIL with EDE .ede, text .text   */
} vl_act_kind_t;

typedef struct {
    vl_act_kind_t kind;
    uint32_t delay_ms; /* reply this long after the query   */
    uint16_t rcode;    /* VL_RCODE                          */
    uint32_t ttl;      /* VL_ANSWER: the record's TTL (300) */
    uint16_t ede;      /* VL_EDE                            */
    const char *text;  /* VL_EDE                            */
} vl_act_t;

/* One query an upstream got. */
typedef struct {
    uint64_t at_ms;
    bool tcp;
    uint16_t qtype;
    char qname[KNOT_DNAME_TXT_MAXLEN + 1];
} vl_seen_t;

#define VL_SCRIPT_MAX 16
#define VL_SEEN_MAX   256

typedef struct vl_upstream_s vl_upstream_t;

/* An upstream on @ip (a 127.0.0.x address) at a kernel-picked port, UDP
 * and TCP, on the server's loop.  Until scripted it answers (VL_ANSWER). */
vl_upstream_t *vl_upstream(vl_server_t *s, const char *ip);
/* Its address as forward takes it: "127.0.0.2:40123". */
const char *vl_upstream_addr(const vl_upstream_t *u);
/* Act @acts[0] on the next query, @acts[1] on the one after...; the last
 * repeats.  Replaces the script and its place. */
void vl_upstream_script(vl_upstream_t *u, const vl_act_t *acts, size_t n);
/* Queries it got so far. */
size_t vl_upstream_nseen(const vl_upstream_t *u);
const vl_seen_t *vl_upstream_seen(const vl_upstream_t *u, size_t i);
/* Of them, the ones for @qname ("a.example."; "." is a health check). */
size_t vl_upstream_count(const vl_upstream_t *u, const char *qname);
/* Closed with the server (vl_server_stop). */

#endif
