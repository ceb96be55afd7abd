/* SPDX-License-Identifier: MIT */
/*
 * plugins/forward/forward.h - what the files of the forward plugin share.
 *
 * setup.c reads the Corefile into a fwd_conf_t; forward.c runs a query
 * through the upstreams (policy, tries, failover, the failure record);
 * net.c moves bytes (a UDP socket per try, pooled TCP and TLS
 * connections); health.c probes upstreams that failed.
 *
 * Lifetimes: fwd_conf_t and its upstreams are config lifetime; the health
 * of an upstream (its consecutive failures, RTT, last reply) is shared by
 * every worker through atomics in fwd_upstream_t.  fwd_worker_t and what
 * hangs off it (sockets, connections, tries) are worker lifetime; a
 * fwd_ctx_t is request lifetime (the request's arena) and never holds a
 * libuv handle: handles live in pooled worker objects that outlive their
 * close callbacks.
 */
#ifndef CND_PLUGINS_FORWARD_H
#define CND_PLUGINS_FORWARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <libknot/libknot.h>
#include <uv.h>

#include "core/plugin.h"

#define FWD_MAX_UPSTREAMS    15
#define FWD_DEFAULT_PORT     53
#define FWD_DEFAULT_TLS_PORT 853

typedef enum {
    FWD_POLICY_RANDOM = 0,
    FWD_POLICY_ROUND_ROBIN,
    FWD_POLICY_SEQUENTIAL,
} fwd_policy_t;

typedef enum {
    FWD_UDP = 0,
    FWD_TCP,
    FWD_TLS,
} fwd_proto_t;

/* One upstream.  Config lifetime for its address and settings; its health
 * fields are snapshot-shared mutable state, written by every worker of the
 * snapshot (and health checks) and only touched with atomics. */
typedef struct fwd_upstream_s {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char name[64];          /* "127.0.0.1:53", "[::1]:853"          */
    bool tls;               /* tls://                                */
    const char *servername; /* TLS name to verify (tls://IP%NAME)    */
    const char *file;       /* the resolv.conf it came from, or NULL */
    unsigned index;

    atomic_uint fails;              /* consecutive failures: queries, checks */
    atomic_bool checking;           /* a worker runs its health check        */
    _Atomic uint64_t last_reply_ns; /* monotonic time of the last reply */
    atomic_uint srtt_us;            /* smoothed RTT, 0 before the first      */
    atomic_uint rttvar_us;
    /* The last failure, for "candor ctl upstreams". */
    _Atomic uint64_t last_fail_ns;   /* monotonic, 0: never               */
    _Atomic(const char *) last_what; /* static: "timed out", ...          */
    atomic_int last_err;             /* errno (> 0), GnuTLS (< 0), 0 none */
    atomic_uint last_proto;          /* fwd_proto_t                       */
    struct cnd_series_s *m_healthy;  /* main thread (ctl.c)            */
} fwd_upstream_t;

/* The config of one forward line.  Config lifetime. */
typedef struct fwd_conf_s {
    const char *from_text;
    const knot_dname_t *from; /* lowercase                      */
    const knot_dname_t **except;
    size_t nexcept;
    fwd_upstream_t ups[FWD_MAX_UPSTREAMS];
    size_t nups;

    bool force_tcp, prefer_udp, failfast;
    fwd_policy_t policy;
    int64_t expire_ns;       /* idle connection lifetime       */
    int64_t max_age_ns;      /* connection lifetime, 0 = none  */
    unsigned max_idle;       /* idle connections kept, 0 = any */
    int64_t read_timeout_ns; /* per try, CoreDNS's 2 s         */
    unsigned max_fails;      /* 0: never down, no checks       */
    unsigned max_attempts;   /* tries per query, 0 = 2 x ups   */
    int64_t hc_interval_ns;
    bool hc_no_rec;
    const knot_dname_t *hc_domain;
    unsigned max_concurrent;        /* 0: no limit                    */
    uint32_t next_rcodes;           /* bit per rcode: next plugin     */
    uint32_t failover_rcodes;       /* bit per rcode: next upstream   */
    struct sockaddr_storage source; /* source_address, family 0 = any */

    /* TLS */
    const char *tls_cert, *tls_key, *tls_ca;
    const char *tls_servername;
    gnutls_certificate_credentials_t creds;

    /* Shared counters. */
    atomic_uint concurrent;          /* queries in flight, all workers */
    atomic_uint rr;                  /* round_robin position           */
    _Atomic uint64_t loop_logged_ns; /* the last loop log line    */

    const char *file; /* where the line is              */
    int line;
} fwd_conf_t;

typedef struct fwd_worker_s fwd_worker_t;
typedef struct fwd_try_s fwd_try_t;
typedef struct fwd_conn_s fwd_conn_t;
typedef struct fwd_port_s fwd_port_t;

/* How a try ended, for whoever started it. */
typedef enum {
    FWD_OK = 0,  /* a reply that matches                           */
    FWD_SOFT,    /* no reply yet within the upstream's RTO: still open */
    FWD_TIMEOUT, /* no reply within read_timeout                   */
    FWD_ERROR,   /* refused, unreachable, reset, TLS...            */
} fwd_result_t;

/* Why a reply was dropped (candor_forward_replies_rejected_total). */
typedef enum {
    FWD_REJ_LATE = 0,       /* no query waits for it any more          */
    FWD_REJ_WRONG_ID,       /* queries wait, none with this ID         */
    FWD_REJ_WRONG_QUESTION, /* the ID, but another name, type or class */
    FWD_REJ_NO_QUESTION,    /* the ID, no question, not FORMERR/NOTIMP */
    FWD_REJ_MALFORMED,      /* not a DNS reply at all                  */
    FWD_REJ_COUNT
} fwd_reject_t;

/* Whoever owns a try: a query (forward.c) or a health check (health.c). */
typedef struct fwd_owner_s {
    void (*done)(fwd_try_t *t, fwd_result_t res, const uint8_t *wire,
                 size_t len);
} fwd_owner_t;

/* One query sent to one upstream.  Pooled per worker (its timer lives as
 * long as the pool); the owner is NULL once the try is closed. */
struct fwd_try_s {
    fwd_worker_t *fw;
    fwd_upstream_t *up;
    const fwd_owner_t *owner;
    void *arg; /* the owner's                    */
    fwd_proto_t proto;
    uint16_t id; /* the ID on the wire             */
    uint64_t sent_ns;
    bool soft_done; /* the RTO passed, reported       */
    bool open;
    bool retried;             /* a dead pooled conn was replaced */
    int64_t rto_ns, limit_ns; /* the timer's two stages         */
    uint8_t *qwire_framed;    /* length, then the query, our ID  */
    uint8_t qbuf[2 + 512];    /* ...here when it fits (most do)  */
    uint16_t qlen;
    /* UDP: the shared socket it went out on (net.c) */
    fwd_port_t *port;
    fwd_try_t *port_prev, *port_next;
    /* TCP/TLS */
    fwd_conn_t *conn;
    /* timer: RTO, then read timeout */
    uv_timer_t timer;
    /* replies dropped because they did not match */
    unsigned bad_id, bad_question, garbage;
    int err;             /* FWD_ERROR: errno or GnuTLS code */
    const char *errwhat; /* FWD_ERROR: static explanation   */
    fwd_try_t *next;     /* pool / owner's list             */
    fwd_try_t *all;      /* every try of the worker         */
};

/* Counters of one worker (see the metric families in forward.c). */
typedef struct fwd_wup_s fwd_wup_t;

/* One forward instance on one worker.  Worker lifetime. */
struct fwd_worker_s {
    cnd_worker_t *w;
    uv_loop_t *loop;
    fwd_conf_t *conf;
    fwd_try_t *free; /* tries ready for use             */
    fwd_try_t *all;
    fwd_wup_t *wups;  /* per upstream: conns, counters   */
    uint8_t rnd[256]; /* random bytes for IDs, policy    */
    unsigned rnd_pos;
    uint8_t *rxbuf;   /* replies are read into it        */
    unsigned handles; /* open libuv handles              */
    cnd_mstore_t *store;
    cnd_series_t *broken, *rejects; /* healthcheck_broken, max_concurrent */
    bool closing;
};

/* Per upstream on one worker.  Worker lifetime. */
struct fwd_wup_s {
    fwd_conn_t *idle; /* idle connections, newest first  */
    unsigned nidle;
    fwd_port_t *ports; /* UDP sockets taking new queries */
    unsigned nports, next_port;
    struct fwd_health_s *health; /* the probe, if this worker runs it */
    cnd_series_t *requests;      /* coredns_forward_requests_total  */
    cnd_series_t *rcode[24];     /* coredns_forward_responses_total */
    cnd_series_t *duration[24];  /* coredns_proxy_request_duration  */
    cnd_series_t *hc_fail;       /* healthcheck failures            */
    cnd_series_t *hc_fail_legacy;
    cnd_series_t *conn_hit[3], *conn_miss[3];
    cnd_series_t *conn_hit_legacy[3], *conn_miss_legacy[3];
    cnd_series_t *sent, *received;         /* candor_forward_packets_* */
    cnd_series_t *rejected[FWD_REJ_COUNT]; /* by reason, on first use  */
};

/* What happened with one upstream during one query: the failure text is
 * made from these.  Request lifetime. */
typedef struct fwd_outcome_s {
    uint8_t tries, timeouts, errors;
    fwd_proto_t proto; /* of the last try                  */
    int err;           /* of the last error                */
    const char *what;  /* its explanation (static)         */
    uint16_t bad_id, bad_question, garbage;
} fwd_outcome_t;

/* One query on its way through the upstreams.  Request lifetime. */
typedef struct fwd_ctx_s {
    cnd_req_t *r;
    cnd_inst_t *self;
    fwd_worker_t *fw;
    fwd_try_t *tries;  /* open tries                       */
    fwd_try_t *latest; /* the newest try                   */
    uint8_t order[FWD_MAX_UPSTREAMS];
    uint8_t cursor; /* next position in order           */
    uint8_t attempts;
    uint8_t pending;  /* open tries                       */
    bool counted;     /* holds a max_concurrent slot      */
    bool broken;      /* all upstreams were down          */
    bool in_query;    /* inside query(): do not resume    */
    cnd_rc_t sync_rc; /* what query() returns then        */
    uint64_t start_ns;
    fwd_outcome_t out[FWD_MAX_UPSTREAMS];
} fwd_ctx_t;

/* forward.c: the request hooks. */
int fwd_worker_init(cnd_worker_t *w, cnd_inst_t *self, void **wdata);
void fwd_worker_fini(cnd_worker_t *w, cnd_inst_t *self, void *wdata);
cnd_rc_t fwd_query(cnd_req_t *r, cnd_inst_t *self);
void fwd_cancel(cnd_req_t *r, cnd_inst_t *self);

/* net.c: start a try of @wire (@len bytes; its ID is replaced) to @up
 * over @proto.  The owner's done() runs later, from an event, never
 * inside this call: with FWD_SOFT at most once (the try goes on), with
 * FWD_OK for each reply whose ID matches (the owner then closes the try,
 * or leaves it open to wait for another), or once with FWD_TIMEOUT or
 * FWD_ERROR (the owner closes it).  @rto_ns is when to report FWD_SOFT
 * (0: never); @timeout_ns the try's limit (0: read_timeout).  Returns the
 * try, or NULL with an errno in *@err (no done() then). */
fwd_try_t *fwd_try_start(fwd_worker_t *fw, fwd_upstream_t *up,
                         fwd_proto_t proto, const uint8_t *wire, size_t len,
                         int64_t rto_ns, int64_t timeout_ns,
                         const fwd_owner_t *owner, void *arg, int *err);

/* Close a try; done() does not run again. */
void fwd_try_close(fwd_try_t *t);

/* A random 16-bit number from the worker's pool (GnuTLS nonces). */
uint16_t fwd_random16(fwd_worker_t *fw);

/* Worker set-up and tear-down of net.c's pools and connections.  The
 * fwd_worker_t is freed when its last handle has closed: every close
 * callback calls fwd_worker_maybe_free(). */
int fwd_net_worker_init(fwd_worker_t *fw);
void fwd_net_worker_fini(fwd_worker_t *fw);
void fwd_worker_maybe_free(fwd_worker_t *fw);

/* forward.c: count a query sent, a connection taken from the pool (hit)
 * or made (miss). */
void fwd_count_sent(fwd_worker_t *fw, const fwd_try_t *t);
void fwd_count_conn(fwd_worker_t *fw, const fwd_upstream_t *up,
                    fwd_proto_t proto, bool hit);
/* Count a reply from @up dropped for @why. */
void fwd_count_rejected(fwd_worker_t *fw, const fwd_upstream_t *up,
                        fwd_reject_t why);
extern const cnd_mfamily_t fwd_m_hc_failures, fwd_m_hc_failures_legacy;

/* The protocol's name for texts: "udp", "tcp", "tls". */
const char *fwd_proto_name(fwd_proto_t p);

/* health.c: an upstream failed once more (a query): note why (@what
 * static, @err an errno or GnuTLS code), start its health check on this
 * worker unless one runs somewhere. */
void fwd_upstream_failed(fwd_worker_t *fw, fwd_upstream_t *up,
                         fwd_proto_t proto, const char *what, int err);
/* Note a failure of @up for "candor ctl upstreams". */
void fwd_upstream_note(fwd_upstream_t *up, fwd_proto_t proto, const char *what,
                       int err);
/* An upstream answered: healthy again. */
void fwd_upstream_replied(fwd_upstream_t *up, uint64_t rtt_ns);
/* Is @up down (more than max_fails consecutive failures)? */
bool fwd_upstream_down(const fwd_conf_t *c, fwd_upstream_t *up);
/* The per-try time after which the query also goes to the next upstream:
 * RTT-based, 1 s before the first reply, at most read_timeout. */
int64_t fwd_upstream_rto(const fwd_conf_t *c, fwd_upstream_t *up);
void fwd_health_worker_fini(fwd_worker_t *fw);

/* Monotonic nanoseconds. */
uint64_t fwd_now_ns(void);

/* forward.c: make this process's loop mark (once, main thread). */
void fwd_loop_init(void);

/* forward.c: one upstream's part of a query's failure text. */
size_t fwd_outcome_text(const fwd_ctx_t *x, size_t i, char *buf, size_t size);
/* An errno (> 0) or GnuTLS code (< 0) as text. */
const char *fwd_strerror(int err);

/* ctl.c: operations. */
void fwd_describe(const cnd_req_t *r, cnd_inst_t *self, char *buf, size_t size);
int fwd_ops_init(cnd_conf_t *cf, cnd_inst_t *self);
int fwd_ops_start(cnd_conf_t *cf, cnd_inst_t *self);
void fwd_ops_stop(cnd_inst_t *self);
extern const cnd_ctl_cmd_t fwd_ctl[];

#endif
