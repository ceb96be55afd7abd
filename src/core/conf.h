/* SPDX-License-Identifier: MIT */
/*
 * core/conf.h - the config snapshot: server blocks, zones, listeners.
 *
 * Loading a Corefile builds one immutable, reference-counted snapshot:
 * the parsed text, one cnd_server_t per server block with its chain of
 * plugin instances in plugin.cfg order, and the listeners those blocks
 * need, each with the zones it routes.  Workers hold a reference while
 * they serve from it; a reload (docs/architecture.md section 6) builds a
 * new snapshot and frees the old one when its last user lets go.
 *
 * Everything here is config lifetime: it lives in the snapshot's arena and
 * is const once cnd_conf_load() returns.
 */
#ifndef CND_CORE_CONF_H
#define CND_CORE_CONF_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "core/plugin.h"
#include "corefile/corefile.h"
#include "util/addr.h"
#include "util/arena.h"

/* Process settings from the command line: the same for every snapshot.
 * Process lifetime, set before the first load and read-only after. */
typedef struct cnd_opts_s {
    const char *conf_file;  /* -conf, or NULL                     */
    uint16_t dns_port;      /* -dns.port: default port of dns://  */
    unsigned workers;       /* -workers, 0 = one per usable CPU   */
    unsigned tcp_max_conns; /* -tcp.max_conns, per worker          */
    bool quiet;             /* -quiet                             */
    const char *ctl_path;   /* -ctl: control socket, NULL default */
} cnd_opts_t;

/* One server block.  Keys share the one chain.  Config lifetime. */
struct cnd_server_s {
    cnd_conf_t *conf;
    unsigned index;
    const cnd_cf_block_t *cf;
    cnd_zone_t *zones;
    size_t nzones;
    cnd_inst_t *chain; /* plugin.cfg order                  */
    size_t nchain;
    /* Listen addresses (the bind plugin); none = every address.  The
     * port is the zone's. */
    struct sockaddr_storage *binds;
    size_t nbinds;
    cnd_tcp_opts_t tcp;
    bool any_class; /* a plugin of it takes any QCLASS   */
    /* The first plugin of the chain with a prefetch() hook, or NULL. */
    cnd_inst_t *prefetch;
};

/* One address:port the snapshot listens on, UDP and TCP, and the zones
 * routed there (longest match wins).  Config lifetime. */
typedef struct cnd_listen_s {
    struct sockaddr_storage addr; /* port set                      */
    socklen_t addrlen;
    char name[64]; /* "127.0.0.1:53", "[::]:53"     */
    cnd_zone_t **zones;
    size_t nzones;
    cnd_tcp_opts_t tcp; /* of the first block on it      */
    /* A block on it has a plugin for any QCLASS (forward): queries of
     * every class reach every block on it, as in CoreDNS, whose
     * classChaos is per server (listen address), not per block. */
    bool any_class;
    /* The first plugin of a block on it with an unrouted() hook (the
     * metrics), for queries no block takes; or NULL. */
    cnd_inst_t *unrouted;
} cnd_listen_t;

/* A periodic job of a snapshot, on the main thread (cnd_conf_every). */
typedef struct cnd_ticker_s cnd_ticker_t;
struct cnd_ticker_s {
    uv_timer_t timer;
    uint64_t interval_ms;
    cnd_tick_fn fn;
    void *arg;
    bool stopped; /* cnd_conf_every_stop()               */
    cnd_ticker_t *next;
};

struct cnd_conf_s {
    cnd_arena_t arena;
    atomic_int refs;
    atomic_int views; /* workers' views of it (worker.c)   */
    const cnd_opts_t *opts;
    const char *file; /* where the text came from          */
    const char *text; /* the Corefile text                 */
    cnd_corefile_t cf;
    cnd_server_t *servers;
    size_t nservers;
    cnd_listen_t *listens;
    size_t nlistens;
    cnd_inst_t **insts; /* every instance, by wslot          */
    size_t ninsts;
    cnd_ticker_t *tickers;    /* periodic jobs (hosts reload, ...) */
    bool tickers_started;     /* their timers are on a loop        */
    int64_t lameduck_ns;      /* wait before stopping (health)     */
    cnd_conf_t *next_retired; /* server.c: replaced, still in use */
    /* During load only: the block being set up, and the error text. */
    cnd_server_t *cur;
    char *err;
    size_t errlen;
};

/* The built-in Corefile used when there is neither -conf nor ./Corefile,
 * and the name a snapshot made from it has as its file. */
extern const char cnd_default_corefile[];
#define CND_BUILTIN_FILE "<built-in default>"

/* Build a snapshot from @len bytes of @text read from @file.  Returns it
 * with one reference, or NULL with the reason in @err: CoreDNS's message
 * with FILE:LINE and "plugin/NAME: " when a plugin refused it.  Main
 * thread. */
cnd_conf_t *cnd_conf_load(const cnd_opts_t *opts, const char *file,
                          const char *text, size_t len, char *err,
                          size_t errlen);

/* Port 0 (".:0", "-dns.port 0"): one port the kernel picks, the same for
 * every key and every reload of the process, so that a test can start a
 * server without guessing a free port and read the real one from the
 * banner.  The first call picks it and holds it (a UDP and a TCP socket
 * on 0.0.0.0 with SO_REUSEPORT) until cnd_port_zero_release(), which the
 * server calls once its own sockets are bound.  0 or a negative errno;
 * main thread (process lifetime). */
int cnd_port_zero(uint16_t *port);
void cnd_port_zero_release(void);
/* Is @port the one port 0 stands for? */
bool cnd_port_zero_is(uint16_t port);
/* Take @port as the one port 0 stands for, unreserved: doctor, for the
 * port of the server it examines ("# port 0: N" in `ctl config`). */
void cnd_port_zero_set(uint16_t port);
/* The port 0 stands for, or 0 when no key has used it. */
uint16_t cnd_port_zero_get(void);

/* Reference counting; the last unref runs every fini() and frees it.  Any
 * thread. */
void cnd_conf_ref(cnd_conf_t *cf);
void cnd_conf_unref(cnd_conf_t *cf);

/* Start / stop the snapshot's jobs on @loop (the server, main thread).
 * Stopping closes the timers: run the loop once more before the snapshot
 * may be freed, so the close callbacks have run. */
void cnd_conf_tickers_start(cnd_conf_t *cf, uv_loop_t *loop);
void cnd_conf_tickers_stop(cnd_conf_t *cf);

/* The zone of @srv's listeners that @qname falls in (longest match), or
 * NULL: for plugins that need "the zone" of a query. */
const cnd_zone_t *cnd_listen_route(const cnd_listen_t *l,
                                   const knot_dname_t *qname, uint16_t qtype);

#endif
