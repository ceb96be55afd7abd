/* SPDX-License-Identifier: MIT */
/*
 * core/req.h - a request, its failure record, and the chain driver.
 *
 * A request is one client query on its way through a server block's chain
 * (or an internal query started with cnd_req_spawn()).  It lives on one
 * worker from receipt to release and comes from that worker's free list;
 * everything it allocates comes from its arena, reset on release.
 *
 * Failures are data (docs/architecture.md section 5): a plugin that fails
 * records the rcode, an RFC 8914 INFO-CODE and a text naming the layer and
 * the cause with cnd_req_fail().  The driver picks the most diagnostic
 * record (cnd_ede_priority()) and from that one record the client gets
 * its EDE option, the errors plugin its log line, and later metrics and
 * "candor ctl" their cause.
 */
#ifndef CND_CORE_REQ_H
#define CND_CORE_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <libknot/libknot.h>
#include <uv.h>

#include "util/arena.h"

typedef struct cnd_req_s cnd_req_t;
typedef struct cnd_worker_s cnd_worker_t;
typedef struct cnd_wconf_s cnd_wconf_t;
typedef struct cnd_server_s cnd_server_t;
typedef struct cnd_inst_s cnd_inst_t;
typedef struct cnd_zone_s cnd_zone_t;

/* What a query() hook returns.  The driver checks it is one of these. */
typedef enum {
    CND_NEXT = 0,  /* not mine, or my part is done: call the next plugin */
    CND_DONE = 1,  /* r->resp holds the answer: start the way back       */
    CND_ASYNC = 2, /* parked: I will call cnd_req_resume() exactly once */
    CND_FAIL = 3   /* cnd_req_fail() recorded the rcode and the cause   */
} cnd_rc_t;

/* How the query came in. */
typedef enum {
    CND_PROTO_UDP = 0,
    CND_PROTO_TCP,
    CND_PROTO_INTERNAL /* cnd_req_spawn(): no client */
} cnd_proto_t;

/* No EDE code: a failure known only by its rcode. */
#define CND_EDE_NONE 0xffff

/* At most this many records per request; later ones of no higher
 * priority are dropped. */
#define CND_REQ_MAX_FAILS 4

/* One failure (or, with note set, an informational EDE such as Stale
 * Answer that goes out whatever the rcode).  Request lifetime. */
typedef struct cnd_fail_s {
    uint16_t rcode;       /* DNS rcode, extended allowed (BADVERS = 16)   */
    uint16_t ede;         /* RFC 8914 INFO-CODE, or CND_EDE_NONE          */
    bool note;            /* informational: attached to any answer        */
    const char *plugin;   /* layer: plugin name, or "server" for the core */
    const char *text;     /* cause, in the request arena                  */
    const char *upstream; /* the upstream it concerns, or NULL          */
} cnd_fail_t;

/* Called once when a spawned request ends, on its worker, before the
 * request is released: r->resp (may be NULL) and r->fails are valid. */
typedef void (*cnd_spawn_cb)(cnd_req_t *r, void *arg);

/* What a request's plugin timer calls (cnd_req_timer_start). */
typedef void (*cnd_req_timer_cb)(cnd_req_t *r, void *arg);

/* Driver states. */
enum {
    CND_REQ_FREE = 0, /* on the free list                     */
    CND_REQ_RUN,      /* inside the walk down                  */
    CND_REQ_PARKED,   /* a plugin returned ASYNC               */
    CND_REQ_BACK,     /* the way back and the send             */
};

/* Arena bytes embedded in every request: enough for a typical query,
 * its parsed form and a small answer without calling malloc. */
#define CND_REQ_ARENA 6144

struct cnd_req_s {
    /* -- set by the core; plugins read them -- */
    cnd_worker_t *worker;
    cnd_wconf_t *wc;         /* the worker's view of the snapshot  */
    const cnd_server_t *srv; /* the routed server block            */
    const cnd_zone_t *zone;  /* the zone that matched              */
    cnd_arena_t arena;       /* request lifetime                   */
    cnd_proto_t proto;
    uint64_t start_ns; /* receipt, monotonic                 */

    /* The query: the wire as received (arena) and what the core read
     * from it.  Most queries (a question and at most an OPT without
     * options) are read that far only; libknot parses the whole message
     * when admission needs it or a plugin asks (cnd_req_pkt()). */
    const uint8_t *qwire;
    uint16_t qlen;
    uint16_t question_end;     /* bytes of header and question       */
    knot_pkt_t *q;             /* parsed, arena; see cnd_req_pkt()   */
    const knot_dname_t *qname; /* lowercased                         */
    uint16_t qtype, qclass, id;
    bool has_edns;     /* the client sent OPT                */
    bool edns_options; /* ... with options (then q is parsed) */
    uint8_t edns_version;
    bool do_bit;       /* DNSSEC OK                          */
    uint16_t udp_size; /* client's EDNS payload, 0 = none    */
    uint16_t max_size; /* limit for the answer: 512..65535   */

    /* -- the answer: a plugin sets it with cnd_req_answer() -- */
    uint8_t *resp; /* wire, arena; NULL until answered   */
    uint16_t resp_len;
    uint16_t resp_cap;       /* room at resp (cnd_req_answer_own)  */
    bool resp_synth;         /* written by the core (bare rcode)   */
    bool resp_owned;         /* cnd_req_answer_own(): no walk      */
    bool drop;               /* cnd_req_drop(): no answer at all   */
    const char *answered_by; /* plugin that wrote resp, or NULL    */

    /* -- failures: fails[0..nfails) -- */
    uint8_t nfails;

    /* -- the chain walk (driver only) -- */
    uint8_t state;  /* CND_REQ_*                          */
    unsigned pos;   /* chain index being called / parked  */
    unsigned first; /* first chain index (spawned: > 0)   */
    void **ctx;     /* per-slot plugin state              */
    bool deadline_on;
    /* No server block took the query: who counts it (cnd_listen_t) */
    cnd_inst_t *unrouted;

    /* -- transport (core only) -- */
    void *conn;           /* listener or TCP connection         */
    cnd_req_t *conn_next; /* TCP connection's list              */
    cnd_spawn_cb spawn_cb;
    void *spawn_arg;
    uint8_t *out; /* finalized wire to send             */
    cnd_req_timer_cb timer_cb;
    void *timer_arg;
    uint16_t out_len;

    /* Everything above is zeroed when the request is taken from the
     * pool.  What follows is not: the core writes each field before
     * anyone reads it (a request is taken for every query, and zeroing
     * these would be half its cost). */
    struct sockaddr_storage remote; /* client (IPv4-mapped unmapped) */
    struct sockaddr_storage local;  /* address the query came to     */
    cnd_fail_t fails[CND_REQ_MAX_FAILS];
    uv_write_t write;  /* TCP: the answer being written      */
    uint8_t lenbuf[2]; /* TCP: its length prefix             */

    /* The pooled request's own: lives as long as it. */
    uv_timer_t deadline;    /* overall deadline while parked      */
    uv_timer_t timer;       /* a plugin's (cnd_req_timer_start)    */
    unsigned open_handles;  /* of the two, while being freed       */
    cnd_req_t *next, *prev; /* worker's in-flight list / free list */
    uint8_t qname_buf[KNOT_DNAME_MAXLEN]; /* qname, when not in q   */
    _Alignas(16) uint8_t arena_buf[CND_REQ_ARENA];
};

/*
 * The failure record.
 */

/* Record a failure: the layer that failed (@plugin, NULL for the plugin
 * being run, or "server" for the core), the upstream it concerns (@upstream,
 * for metrics by upstream, or NULL; it must outlive the request), @rcode
 * for the client, RFC 8914 @ede (CND_EDE_NONE for none) and a printf text
 * naming the cause.  Returns CND_FAIL so a hook can end with
 * "return cnd_req_fail_by(...)".  Worker thread. */
cnd_rc_t cnd_req_fail_by(cnd_req_t *r, const char *plugin, const char *upstream,
                         uint16_t rcode, uint16_t ede, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The common case: the running plugin failed, no upstream named. */
#define cnd_req_fail(r, rcode, ede, ...)                                       \
    cnd_req_fail_by((r), NULL, NULL, (rcode), (ede), __VA_ARGS__)

/* Record an informational EDE that goes out with any answer (Stale
 * Answer, Cached Error).  Returns 0 or -ENOMEM. */
int cnd_req_note(cnd_req_t *r, uint16_t ede, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The record that is reported (highest priority, first among equals), or
 * NULL when there is none. */
const cnd_fail_t *cnd_req_failure(const cnd_req_t *r);

/*
 * The query.
 */

/* The query as libknot parses it, parsed now when admission did not need
 * to (r->q).  Request lifetime; NULL when out of memory. */
knot_pkt_t *cnd_req_pkt(cnd_req_t *r);

/*
 * Answers.
 */

/* Take @len bytes of @wire as the answer (copied into the arena); its ID
 * is set to the query's at the send.  Returns 0 or -ENOMEM. */
int cnd_req_answer(cnd_req_t *r, const uint8_t *wire, size_t len);

/* Take @wire, @len bytes in @r's arena with @cap bytes of room, as the
 * answer without a copy.  The plugin vouches that it is a well-formed
 * message (the cache, whose entries were checked when stored): the core
 * then finishes it in place when it can, without walking its records.
 * Room for CND_REQ_ANSWER_ROOM bytes after it lets the core add its OPT
 * there.  Returns 0 or -EINVAL. */
int cnd_req_answer_own(cnd_req_t *r, uint8_t *wire, size_t len, size_t cap);
#define CND_REQ_ANSWER_ROOM 11 /* the server's OPT without options */

/* Start building an answer with libknot: a packet over the worker's
 * scratch buffer, initialised as a response to the query (ID, question,
 * QR, opcode, RD and CD copied, AA clear).  Put RRsets with knot_pkt_put()
 * and finish with cnd_req_answer_pkt().  One at a time per worker. */
knot_pkt_t *cnd_req_answer_begin(cnd_req_t *r);

/* Copy the packet begun with cnd_req_answer_begin() into the request as
 * its answer.  Returns 0, or -ENOMEM, or -ENOSPC when the answer outgrew
 * 65535 bytes. */
int cnd_req_answer_pkt(cnd_req_t *r, knot_pkt_t *pkt);

/* Send no answer at all (CoreDNS's "return 0 without writing": erratic
 * drop, acl drop); the hook then returns CND_DONE.  The way back is
 * skipped. */
void cnd_req_drop(cnd_req_t *r);

/* The answer's rcode (header bits). */
uint16_t cnd_req_rcode(const cnd_req_t *r);

/*
 * The driver.
 */

/* Resume a request parked with CND_ASYNC, with NEXT, DONE or FAIL.  On
 * the request's worker only; exactly once; never from inside the query()
 * call that parked it; never after cancel(). */
void cnd_req_resume(cnd_req_t *r, cnd_rc_t rc);

/* A question for an internal request.  The caller's; copied by the spawn. */
typedef struct cnd_question_s {
    const knot_dname_t *qname;
    uint16_t qtype, qclass;
    bool rd, cd, do_bit;
} cnd_question_t;

/* Start an internal request (no client) at the plugin after @from in its
 * chain, e.g. cache prefetch or a serve-stale refresh.  @done runs once,
 * on this worker, when it ends.  Returns 0 or a negative errno (no free
 * request, bad question). */
int cnd_req_spawn(cnd_worker_t *w, const cnd_inst_t *from,
                  const cnd_question_t *q, cnd_spawn_cb done, void *arg);

/* A one-shot timer for the plugin that parked @r: @cb(@r, @arg) runs on
 * r's worker after @ms, unless stopped first or the request ends.  One
 * per request at a time (starting again re-arms it); no handle to manage:
 * it lives in the pooled request.  Returns 0 or a negative errno
 * (libuv's). */
int cnd_req_timer_start(cnd_req_t *r, uint64_t ms, cnd_req_timer_cb cb,
                        void *arg);
void cnd_req_timer_stop(cnd_req_t *r);

/* The plugin that request @r is parked in (NULL when not parked). */
const cnd_inst_t *cnd_req_parked_in(const cnd_req_t *r);

#endif
