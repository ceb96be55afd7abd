/* SPDX-License-Identifier: MIT */
/*
 * core/internal.h - what the files of core/ share and nothing else sees.
 *
 * The worker (worker.c) owns the loop, the request pool and the listening
 * sockets; udp.c and tcp.c move bytes; req.c runs the chain.  Names with
 * "cnd__" are private to core/.
 */
#ifndef CND_CORE_INTERNAL_H
#define CND_CORE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "core/conf.h"
#include "core/metrics.h"
#include "core/plugin.h"
#include "core/req.h"

/* Datagrams read per recvmmsg() and answers sent per sendmmsg(). */
#define CND_UDP_BATCH 32
/* Largest query taken over UDP; longer datagrams are dropped. */
#define CND_UDP_RX_SIZE 4096
/* Free requests kept per worker; more are freed on release. */
#define CND_REQ_KEEP 1024
/* Requests in flight per worker; a query beyond it is dropped. */
#define CND_REQ_MAX 16384
/* The overall deadline of a request (CoreDNS's 5 s). */
#define CND_REQ_DEADLINE_MS 5000
/* Graceful stop: how long in-flight requests may take. */
#define CND_STOP_GRACE_MS 5000
/* Pipelined queries in flight on one TCP connection before it stops
 * reading (back pressure). */
#define CND_TCP_PIPELINE 64
/* Default cap on TCP connections per worker. */
#define CND_TCP_MAX_CONNS 1024

typedef struct cnd_wlisten_s cnd_wlisten_t;

/* A UDP listening socket of one worker.  Worker lifetime. */
typedef struct cnd_udp_s {
    uv_poll_t poll;
    int fd;
    int family;    /* of the socket                   */
    bool wildcard; /* bound to any: answer from pktinfo */
    bool reading;  /* started and not stopped: in nudp  */
    bool waits;    /* blocking, with a receive timeout  */
    cnd_worker_t *w;
    cnd_wlisten_t *wl;
    const cnd_listen_t *listen; /* of the current snapshot       */
} cnd_udp_t;

/* A TCP listening socket of one worker.  Worker lifetime. */
typedef struct cnd_tcpl_s {
    uv_tcp_t tcp;
    cnd_worker_t *w;
    cnd_wlisten_t *wl;
    const cnd_listen_t *listen;
} cnd_tcpl_t;

/* One listen address of one worker: its UDP and TCP sockets.  Malloc'd;
 * handles do not move, so requests may point at its UDP socket.  A
 * reload keeps it when the new snapshot listens there too (pointing it
 * at the new cnd_listen_t), else retires it with the old view: it stops
 * reading and closes when the old view's last request is done.  Freed
 * when both handles have closed. */
struct cnd_wlisten_s {
    cnd_udp_t udp;
    cnd_tcpl_t tcpl;
    unsigned open;       /* handles not yet closed           */
    cnd_wlisten_t *next; /* a retired view's list            */
};

/* One TCP client connection (RFC 7766).  Worker lifetime (malloc). */
typedef struct cnd_conn_s cnd_conn_t;
struct cnd_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer; /* idle, read or write deadline      */
    cnd_worker_t *w;
    const cnd_listen_t *listen;
    struct sockaddr_storage remote, local;
    uint8_t *buf; /* read buffer: one frame at most    */
    size_t len, cap;
    cnd_req_t *reqs; /* in flight on this connection      */
    unsigned nreqs;
    unsigned nwrites; /* answers being written             */
    int64_t nqueries; /* taken so far                      */
    unsigned handles; /* open libuv handles (socket, timer) */
    bool reading, eof, closing;
    bool processing; /* inside tcp_process(): no re-entry  */
    bool retired;    /* its address is gone (reload): finish and close */
    /* Loop time (uv_now, ms) the timeouts run from; never reset by a
     * byte, so a client that trickles cannot hold the connection. */
    uint64_t msg_start;   /* the first byte of the message in buf  */
    uint64_t active;      /* accepted, a message taken, an answer out */
    uint64_t write_since; /* writes pending and none done since    */
    /* The worker's connections, the most recently active first: the
     * last is the idlest, closed first when the worker is at its cap. */
    cnd_conn_t *next, *prev;
};

/* A message from the main thread. */
typedef enum {
    CND_MSG_STOP = 1, /* graceful stop                          */
    CND_MSG_CALL = 2, /* run call_fn on the worker, post call_done */
} cnd_msg_type_t;

/* A function the main thread runs on a worker (cnd__worker_call). */
typedef void (*cnd_call_fn)(cnd_worker_t *w, void *arg);

/* Sockets of one listen address for one worker, made by the main thread
 * (so bind errors are reported before anything runs) and handed to the
 * worker, which owns them from its setup on. */
typedef struct cnd_wsock_s {
    int udp_fd, tcp_fd;
    bool wildcard;
} cnd_wsock_t;

struct cnd_worker_s {
    unsigned id;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t async;      /* the main thread's doorbell          */
    uv_prepare_t prepare;  /* before the loop sleeps: send        */
    uv_check_t check;      /* after I/O: send                     */
    uv_timer_t stop_timer; /* graceful stop grace                 */
    cnd_wconf_t *wc;       /* current view of the snapshot        */
    cnd_wconf_t *old;      /* views retired by reloads, in use    */
    cnd_wconf_t *next_wc;  /* made by a reload, not yet current   */
    const cnd_opts_t *opts;

    /* Messages from the main thread (under msg_lock). */
    uv_mutex_t msg_lock;
    unsigned msgs; /* bit set of cnd_msg_type_t           */
    cnd_call_fn call_fn;
    void *call_arg;
    uv_sem_t call_done;
    atomic_bool exited; /* the loop has ended: no more calls   */

    /* Requests. */
    cnd_req_t *free;
    unsigned nfree, nreqs;
    cnd_req_t inflight; /* list head (sentinel)                */
    unsigned ninflight;

    /* Listeners and connections. */
    cnd_wsock_t *socks; /* from the main thread, per listen    */
    cnd_wlisten_t **ls; /* by the current snapshot's listens   */
    size_t nlisten;
    cnd_wlisten_t **next_ls; /* a reload's, made by prepare     */
    cnd_conn_t conns;        /* list head (sentinel)                */
    unsigned nconns;
    unsigned nconns_closing; /* of nconns, closed and not yet freed  */
    uint64_t tcp_evicted;    /* idlest connections closed at the cap */

    /* UDP receive batch. */
    struct mmsghdr rx[CND_UDP_BATCH];
    struct iovec rx_iov[CND_UDP_BATCH];
    struct sockaddr_storage rx_addr[CND_UDP_BATCH];
    uint8_t rx_ctl[CND_UDP_BATCH][64];
    uint8_t (*rx_buf)[CND_UDP_RX_SIZE];
    struct sockaddr_storage rx_local[CND_UDP_BATCH]; /* wildcard: dst */
    cnd_req_t *rx_req[CND_UDP_BATCH]; /* the batch, admitted           */
    uint64_t rx_ns;                   /* when the batch was read (uv_hrtime)  */

    /* UDP send queue, flushed with sendmmsg. */
    struct mmsghdr tx[CND_UDP_BATCH];
    struct iovec tx_iov[CND_UDP_BATCH];
    struct sockaddr_storage tx_addr[CND_UDP_BATCH];
    uint8_t tx_ctl[CND_UDP_BATCH][64];
    cnd_req_t *tx_req[CND_UDP_BATCH]; /* released once sent          */
    int tx_fd[CND_UDP_BATCH];
    unsigned ntx;

    /* Answers built with libknot go here first (cnd_req_answer_begin). */
    knot_pkt_t *scratch;

    unsigned deadline_ms; /* a request's overall deadline        */
    bool stopping;
    bool stop_grace_over;   /* the grace ran out: close everything */
    cnd_conf_t *start_conf; /* handed to the thread at start       */
    void (*on_exit)(void);  /* the loop has ended (worker thread)  */
    int start_rc;           /* worker_init result for the main thread */
    char start_err[512];
    uv_sem_t started; /* posted once start-up is done        */

    /* Counters (read by ctl and metrics). */
    uint64_t dropped;       /* queries dropped: malformed, overload */
    uint64_t light;         /* queries admitted by the light read (req.c) */
    uint64_t udp_waits;     /* batches read waiting in recvmmsg    */
    unsigned nudp;          /* UDP sockets reading (udp.c)         */
    unsigned ninflight_max; /* the most in flight at once          */
    cnd_mstore_t *metrics;  /* this worker's series                */
    cnd_series_t *m_current, *m_max; /* candor_requestlist_*     */
};

/* worker.c: start the thread of @w on @conf, using w->socks; wait until
 * it serves (0) or failed (-1, reason in w->start_err). */
int cnd__worker_start(cnd_worker_t *w, cnd_conf_t *conf);
/* The three parts of a worker's thread, for a worker run on a thread of
 * its own choosing (tests/unit/vloop.c runs one on the test's thread):
 * set up the loop, the view of @conf and the listeners of w->socks (0,
 * or -1 with the reason in w->start_err); begin the graceful stop (the
 * loop ends once it is done); after the loop has ended, free what is
 * left.  w->id and w->opts are set before. */
int cnd__worker_setup(cnd_worker_t *w, cnd_conf_t *conf);
void cnd__worker_stop(cnd_worker_t *w);
void cnd__worker_teardown(cnd_worker_t *w);
/* Ring the doorbell of @w with a CND_MSG_* bit.  Any thread. */
void cnd__worker_post(cnd_worker_t *w, unsigned msg);
/* Run @fn(@w, @arg) on the thread of @w and wait until it returned.
 * Main thread; returns -1 without running it when the worker's loop has
 * ended. */
int cnd__worker_call(cnd_worker_t *w, cnd_call_fn fn, void *arg);
void cnd__worker_join(cnd_worker_t *w);

/* Reload, in two steps run on each worker through cnd__worker_call.
 * Prepare: make the view of @conf (every plugin's worker_init), using
 * w->socks for the listen addresses it does not have yet; fails with the
 * reason in w->start_err.  Then commit on every worker (the view becomes
 * current, listeners are kept, opened or retired, the old view retires
 * until its last request ends) or abort (the new view is undone). */
typedef struct cnd_reload_s {
    cnd_conf_t *conf;
    int rc;
} cnd_reload_t;
void cnd__worker_prepare(cnd_worker_t *w, void *reload);
void cnd__worker_commit(cnd_worker_t *w, void *reload);
void cnd__worker_abort(cnd_worker_t *w, void *reload);

/* A request from the pool for view @wc (the worker's current one, or an
 * older one for requests spawned by its plugins), or NULL. */
cnd_req_t *cnd__req_get(cnd_worker_t *w, cnd_wconf_t *wc);
/* The view of @w whose snapshot is @conf, or NULL. */
cnd_wconf_t *cnd__worker_view(cnd_worker_t *w, const cnd_conf_t *conf);
void cnd__req_release(cnd_req_t *r);
void cnd__worker_maybe_done(cnd_worker_t *w);

/* req.c: admit a query that the transport read (@conn is the UDP
 * listener or TCP connection): a request from the pool, the query read
 * and routed.  Returns the request, ready to run; or NULL when it was
 * answered at once (FORMERR, REFUSED, ...) or dropped (no request free,
 * not a query). */
cnd_req_t *cnd__req_admit(cnd_worker_t *w, cnd_proto_t proto, void *conn,
                          const cnd_listen_t *listen, const uint8_t *wire,
                          size_t len, const struct sockaddr_storage *remote,
                          const struct sockaddr_storage *local);
/* Walk an admitted request down its chain. */
void cnd__req_run(cnd_req_t *r);
/* The prefetch hook of @r's chain (plugin.h), @step 0 or 1. */
void cnd__req_prefetch(cnd_req_t *r, int step);
/* Admit and run. */
void cnd__req_input(cnd_worker_t *w, cnd_proto_t proto, void *conn,
                    const cnd_listen_t *listen, const uint8_t *wire, size_t len,
                    const struct sockaddr_storage *remote,
                    const struct sockaddr_storage *local);
/* Drop a parked request: cancel(), then finish as a failure with @why. */
void cnd__req_cancel(cnd_req_t *r, const char *why);

/* udp.c */
int cnd__udp_start(cnd_udp_t *u);
/* Stop reading (graceful stop: answers still go out on it). */
void cnd__udp_stop(cnd_udp_t *u);
void cnd__udp_close(cnd_udp_t *u);
/* Queue @r's answer (r->out), released once sent. */
void cnd__udp_send(cnd_req_t *r);
/* Queue @len bytes at @out to @remote from @local on @u; @r (or NULL)
 * is released once they are sent, and @out must live until then. */
void cnd__udp_queue(cnd_udp_t *u, const uint8_t *out, size_t len,
                    const struct sockaddr_storage *remote,
                    const struct sockaddr_storage *local, cnd_req_t *r);
void cnd__udp_flush(cnd_worker_t *w);

/* tcp.c */
int cnd__tcp_start(cnd_tcpl_t *l, int fd);
void cnd__tcp_close_listener(cnd_tcpl_t *l);
/* A reload made @conf current: connections to an address it still
 * listens on move to its listen; the others finish and close. */
void cnd__tcp_retarget(cnd_worker_t *w, const cnd_conf_t *conf);
void cnd__tcp_send(cnd_req_t *r);
/* A request of a connection starts / ends (released). */
void cnd__tcp_req_attach(cnd_req_t *r);
void cnd__tcp_req_done(cnd_req_t *r);
void cnd__tcp_stop(cnd_worker_t *w);

/* server.c: the workers of the serving process (for ctl), or NULL. */
cnd_worker_t *cnd__server_workers(unsigned *n);

/* A handle of @wl has closed; frees it after the last (worker.c). */
void cnd__wlisten_closed(cnd_wlisten_t *wl);

#endif
