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
#include "core/req.h"
#include "core/worker.h"

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

/* A UDP listening socket of one worker. */
typedef struct cnd_udp_s {
    uv_poll_t poll;
    int fd;
    int family;    /* of the socket                   */
    bool wildcard; /* bound to any: answer from pktinfo */
    cnd_worker_t *w;
    const cnd_listen_t *listen;
} cnd_udp_t;

/* A TCP listening socket of one worker. */
typedef struct cnd_tcpl_s {
    uv_tcp_t tcp;
    cnd_worker_t *w;
    const cnd_listen_t *listen;
} cnd_tcpl_t;

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
    bool processing;         /* inside tcp_process(): no re-entry  */
    cnd_conn_t *next, *prev; /* the worker's connections          */
};

/* A message from the main thread. */
typedef enum {
    CND_MSG_STOP = 1, /* graceful stop */
} cnd_msg_type_t;

/* Sockets of one listen address for one worker, made by the main thread
 * (so bind errors are reported before anything runs). */
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
    cnd_wconf_t *wc;       /* current snapshot                    */
    const cnd_opts_t *opts;

    /* Messages from the main thread (under msg_lock). */
    uv_mutex_t msg_lock;
    unsigned msgs; /* bit set of cnd_msg_type_t           */

    /* Requests. */
    cnd_req_t *free;
    unsigned nfree, nreqs;
    cnd_req_t inflight; /* list head (sentinel)                */
    unsigned ninflight;

    /* Listeners and connections. */
    cnd_wsock_t *socks; /* from the main thread, per listen    */
    cnd_udp_t *udp;
    cnd_tcpl_t *tcpl;
    size_t nlisten;
    cnd_conn_t conns; /* list head (sentinel)                */
    unsigned nconns;

    /* UDP receive batch. */
    struct mmsghdr rx[CND_UDP_BATCH];
    struct iovec rx_iov[CND_UDP_BATCH];
    struct sockaddr_storage rx_addr[CND_UDP_BATCH];
    uint8_t rx_ctl[CND_UDP_BATCH][64];
    uint8_t (*rx_buf)[CND_UDP_RX_SIZE];

    /* UDP send queue, flushed with sendmmsg. */
    struct mmsghdr tx[CND_UDP_BATCH];
    struct iovec tx_iov[CND_UDP_BATCH];
    struct sockaddr_storage tx_addr[CND_UDP_BATCH];
    uint8_t tx_ctl[CND_UDP_BATCH][64];
    cnd_req_t *tx_req[CND_UDP_BATCH];
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
    uint64_t dropped;      /* queries dropped: malformed, overload */
    cnd_mstore_t *metrics; /* this worker's series                */
};

/* worker.c: start the thread of @w on @conf, using w->socks; wait until
 * it serves (0) or failed (-1, reason in w->start_err). */
int cnd__worker_start(cnd_worker_t *w, cnd_conf_t *conf);
/* Ring the doorbell of @w with a CND_MSG_* bit.  Any thread. */
void cnd__worker_post(cnd_worker_t *w, unsigned msg);
void cnd__worker_join(cnd_worker_t *w);
cnd_req_t *cnd__req_get(cnd_worker_t *w);
void cnd__req_release(cnd_req_t *r);
void cnd__worker_maybe_done(cnd_worker_t *w);

/* req.c: run a query that the transport copied in.  @conn is the UDP
 * listener or TCP connection.  Takes a request from the pool; drops the
 * query when there is none. */
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
void cnd__udp_send(cnd_req_t *r);
void cnd__udp_flush(cnd_worker_t *w);

/* tcp.c */
int cnd__tcp_start(cnd_tcpl_t *l, int fd);
void cnd__tcp_close_listener(cnd_tcpl_t *l);
void cnd__tcp_send(cnd_req_t *r);
/* A request of a connection starts / ends (released). */
void cnd__tcp_req_attach(cnd_req_t *r);
void cnd__tcp_req_done(cnd_req_t *r);
void cnd__tcp_stop(cnd_worker_t *w);

/* Unmap an IPv4-mapped IPv6 address in place. */
void cnd__addr_unmap(struct sockaddr_storage *ss);

#endif
