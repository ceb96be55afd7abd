/* SPDX-License-Identifier: MIT */
/*
 * core/plugin.h - the plugin ABI.
 *
 * A plugin is a const struct of data and hooks (cnd_plugin_t), exported as
 * cnd_plugin_NAME and listed in plugin.cfg.  Each server block owns a
 * chain: an array of instances (cnd_inst_t) in plugin.cfg order, whatever
 * order the Corefile lists them in.
 *
 * A request walks the chain calling query() until a plugin answers (DONE),
 * fails (FAIL) or parks (ASYNC).  A parked request costs nothing until the
 * plugin calls cnd_req_resume() from an event callback; the walk then goes
 * on from that plugin.  Once there is an answer or a failure, response()
 * runs in reverse order on every plugin that passed the request on, so
 * cache, errors and log see the final answer on the way back.
 *
 * Lifetimes: a plugin's conf is config lifetime (the snapshot arena, const
 * after init()); its worker data is worker lifetime (made in worker_init(),
 * freed in worker_fini(), on that worker's thread); its request context is
 * request lifetime (zeroed in the request arena, ctx_size bytes).
 *
 * Threads: parse/init/fini run on the main thread and may block.
 * worker_init/worker_fini and the request hooks run on a worker thread and
 * never block.  A request never leaves its worker.
 */
#ifndef CND_CORE_PLUGIN_H
#define CND_CORE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corefile/corefile.h"
#include "core/req.h"

typedef struct cnd_plugin_s cnd_plugin_t;
typedef struct cnd_inst_s cnd_inst_t;
typedef struct cnd_conf_s cnd_conf_t;
typedef struct cnd_server_s cnd_server_t;
typedef struct cnd_worker_s cnd_worker_t;
typedef struct cnd_prop_s cnd_prop_t;
/* A "candor ctl" command row; defined with the control socket. */
typedef struct cnd_ctl_cmd_s cnd_ctl_cmd_t;

/* Plugin flags. */
enum {
    /* Once per server block; a second use is CoreDNS's ErrOnce error. */
    CND_PLUGIN_ONCE = 1 << 0,
    /* One instance per Corefile line (forward, template): several lines
     * make several chain entries, in Corefile order. */
    CND_PLUGIN_PER_LINE = 1 << 1,
    /* Queries of any class reach the chain (CoreDNS: forward, chaos);
     * otherwise a server answers REFUSED to a class other than IN. */
    CND_PLUGIN_ANY_CLASS = 1 << 2,
};

/* One use of a plugin in one server block.  Config lifetime. */
struct cnd_inst_s {
    const cnd_plugin_t *plugin;
    void *conf;        /* conf_size bytes, zeroed before parse()   */
    cnd_server_t *srv; /* the server block whose chain holds it    */
    unsigned slot;     /* index in the chain == r->ctx[] slot      */
    unsigned wslot;    /* index of its worker data                 */
    const char *file;  /* where its directive is (file:line)       */
    int line;
};

struct cnd_plugin_s {
    const char *name;         /* Corefile directive, e.g. "hosts"        */
    unsigned flags;           /* CND_PLUGIN_*                            */
    size_t conf_size;         /* zeroed, in the config arena             */
    size_t ctx_size;          /* per-request state; 0 = none             */
    const cnd_ctl_cmd_t *ctl; /* "candor ctl" rows, or NULL              */

    /* Config time, main thread.  @d is positioned before the directive
     * token; errors go through cnd_disp_err() (FILE:LINE) and return -1;
     * the core adds "plugin/NAME: ". */
    int (*parse)(cnd_conf_t *cf, cnd_disp_t *d, void *conf);
    /* After every block is parsed, in chain order: open files, resolve
     * addresses.  Errors: cnd_conf_err() and -1. */
    int (*init)(cnd_conf_t *cf, cnd_inst_t *self);
    /* The snapshot starts serving / stops serving (main thread): for
     * what a plugin runs outside queries, such as an HTTP endpoint.  An
     * error from start() stops the server at start-up (cnd_conf_err). */
    int (*start)(cnd_conf_t *cf, cnd_inst_t *self);
    void (*stop)(cnd_inst_t *self);
    /* SIGTERM or SIGINT: the server is about to stop.  Runs in chain
     * order on the serving snapshot before the lameduck wait
     * (cnd_conf_lameduck), while DNS is still served; stop() follows
     * once the workers are done. */
    void (*shutdown)(cnd_inst_t *self);
    /* The snapshot is being freed (no request uses it any more), or the
     * load failed: runs for every instance whose parse() ran, even when
     * parse() or init() failed or never ran, so it must cope with a
     * half-made conf (zeroed where nothing was set). */
    void (*fini)(cnd_inst_t *self);

    /* Worker lifetime, on that worker's thread: sockets, timers. */
    int (*worker_init)(cnd_worker_t *w, cnd_inst_t *self, void **wdata);
    void (*worker_fini)(cnd_worker_t *w, cnd_inst_t *self, void *wdata);

    /* Request path: worker thread, never blocks.  NULL query == NEXT. */
    cnd_rc_t (*query)(cnd_req_t *r, cnd_inst_t *self);
    /* Optional: start loading the memory query() will read for @r, so
     * that the cache misses of a UDP batch's queries overlap instead of
     * coming one after another (udp.c admits a whole batch before it
     * runs any of it).  Called twice per request of a batch: @step 0
     * when the batch is admitted, @step 1 just before the request ahead
     * of @r runs.  Only the first plugin of a chain with this hook gets
     * it.  Only prefetches (and may keep what it computed in its request
     * context for query()); worker thread, no blocking. */
    void (*prefetch)(cnd_req_t *r, cnd_inst_t *self, int step);
    /* The way back, on every plugin before the one that answered. */
    void (*response)(cnd_req_t *r, cnd_inst_t *self);
    /* The answer is final (r->out, r->out_len: what the client gets)
     * and about to be sent: for metrics.  Runs after every response(),
     * on the same plugins. */
    void (*finish)(cnd_req_t *r, cnd_inst_t *self);
    /* As finish(), for a query that came to an address this block listens
     * on but that no server block took (REFUSED, r->zone NULL): called on
     * one instance per listen address, the first conf.c finds. */
    void (*unrouted)(cnd_req_t *r, cnd_inst_t *self);
    /* The request parked by this plugin is dropped (deadline, client
     * gone, shutdown): stop timers, forget r.  Never resume after it. */
    void (*cancel)(cnd_req_t *r, cnd_inst_t *self);

    /* For "candor ctl dump_requestlist": what request @r, parked in this
     * plugin, waits on ("127.0.0.1:53 udp, try 2 of 2, sent 1.2s ago").
     * Worker thread; writes at most @size bytes to @buf. */
    void (*describe)(const cnd_req_t *r, cnd_inst_t *self, char *buf,
                     size_t size);

    /* For /ready: 1 ready, 0 not yet.  NULL means always ready.  Runs on
     * the HTTP server's thread while workers serve: read only atomics or
     * what is const. */
    int (*ready)(cnd_inst_t *self);
};

/* A worker's view of one snapshot: the snapshot and its plugins' worker
 * data.  Worker lifetime (malloc); plugins reach it only through
 * cnd_req_wdata(). */
struct cnd_wconf_s {
    cnd_conf_t *conf;  /* one reference held                 */
    void **pdata;      /* by cnd_inst_t.wslot                */
    unsigned inflight; /* requests that use it               */
    bool inited;       /* worker_init() ran for every inst   */
    /* Core only: a view retired by a reload, until its last request. */
    struct cnd_wconf_s *older;     /* the worker's list of them     */
    struct cnd_wlisten_s *retired; /* listeners only it still uses */
};

/* This plugin's request context (zeroed, ctx_size bytes). */
#define cnd_req_ctx(r, self) ((r)->ctx[(self)->slot])

/* This plugin's worker data, as worker_init() made it. */
#define cnd_req_wdata(r, self) ((r)->wc->pdata[(self)->wslot])

/*
 * Properties: the rows of a plugin's block ("{ ttl 60  no_reverse }").
 * A setter reads its arguments with the dispenser (positioned on the
 * property name) and stores at conf + offset.
 */
typedef int (*cnd_prop_set_fn)(cnd_conf_t *cf, cnd_disp_t *d, void *field);

struct cnd_prop_s {
    const char *name;
    cnd_prop_set_fn set;
    size_t offset;
};

/* Generic setters.  flag: no argument, sets a bool.  duration: one Go
 * duration, > 0, into int64_t ns.  uint: one decimal integer into
 * unsigned. */
int cnd_prop_flag(cnd_conf_t *cf, cnd_disp_t *d, void *field);
int cnd_prop_duration(cnd_conf_t *cf, cnd_disp_t *d, void *field);
int cnd_prop_uint(cnd_conf_t *cf, cnd_disp_t *d, void *field);

/* Read a property block with @props (NULL-name terminated), storing into
 * @conf.  An unknown name fails with "unknown property 'X'". */
int cnd_props_block(cnd_conf_t *cf, cnd_disp_t *d, const cnd_prop_t *props,
                    void *conf);

/* The plugin table generated from plugin.cfg: every CoreDNS directive in
 * order, with its implementation or NULL when candor does not build it. */
typedef struct cnd_plugin_entry_s {
    const char *name;
    const cnd_plugin_t *plugin;
} cnd_plugin_entry_t;

extern const cnd_plugin_entry_t cnd_plugin_table[];

/* The entry for directive @name, or NULL when it is no CoreDNS
 * directive. */
const cnd_plugin_entry_t *cnd_plugin_find(const char *name);

#endif
