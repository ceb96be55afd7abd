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
 *
 * This header, with dns/ and util/, is all a plugin includes.  It pulls in
 * the parts of the ABI that have headers of their own: core/req.h
 * (requests, answers, failures), core/metrics.h, core/shared.h (data
 * swapped whole), admin/http.h (the HTTP endpoints) and corefile/
 * corefile.h (the dispenser).  The rest of the core is opaque: a plugin
 * reaches a snapshot, a server block or a worker through the functions
 * below.  scripts/check-includes (part of "make test") fails a plugin
 * that includes anything else of the core.
 */
#ifndef CND_CORE_PLUGIN_H
#define CND_CORE_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <libknot/libknot.h>
#include <uv.h>

#include "admin/http.h"
#include "core/metrics.h"
#include "core/req.h"
#include "core/shared.h"
#include "corefile/corefile.h"
#include "util/addr.h"
#include "util/arena.h"

typedef struct cnd_plugin_s cnd_plugin_t;
typedef struct cnd_inst_s cnd_inst_t;
typedef struct cnd_conf_s cnd_conf_t;
typedef struct cnd_server_s cnd_server_t;
typedef struct cnd_worker_s cnd_worker_t;
typedef struct cnd_prop_s cnd_prop_t;
typedef struct cnd_ctl_cmd_s cnd_ctl_cmd_t;
typedef struct cnd_ctl_s cnd_ctl_t;
typedef struct cnd_fact_s cnd_fact_t;

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

/* One zone of a server block: a key of the block, normalised.  Config
 * lifetime; r->zone points at one. */
struct cnd_zone_s {
    const char *name; /* "example.org." (lowercase, FQDN)  */
    const knot_dname_t *dname;
    uint16_t port;
    cnd_server_t *srv;
    const char *key; /* the key as written                */
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

    /* For "candor doctor": what it may know of this instance (the
     * upstreams it asks, the HTTP address it serves, a name it answers),
     * one cnd_fact_t per @emit call.  Main thread, on a loaded snapshot
     * that is not serving: conf only. */
    void (*facts)(const cnd_inst_t *self,
                  void (*emit)(void *ud, const cnd_fact_t *f), void *ud);
};

/* What a facts() hook tells "candor doctor". */
typedef enum {
    /* An upstream the instance sends queries to: @addr, @text its name
     * ("1.2.3.4:53"), @file the resolv.conf it came from or NULL, @zone
     * the zone it is for as written ("."), @tls. */
    CND_FACT_UPSTREAM = 1,
    /* An HTTP address the instance serves (@text, "host:port"), and the
     * path (@path, "/health"). */
    CND_FACT_HTTP,
    /* A name the instance answers itself (@text), for doctor to ask as
     * an internal name. */
    CND_FACT_NAME,
} cnd_fact_kind_t;

struct cnd_fact_s {
    cnd_fact_kind_t kind;
    const char *text;
    const struct sockaddr_storage *addr;
    const char *file;
    const char *zone;
    const char *path;
    bool tls;
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
 * The snapshot and its server blocks.  Set up by parse() and init() on
 * the main thread; const once the load is done, so readable from any
 * thread after that.
 */

/* A periodic job of a snapshot (cnd_conf_every). */
typedef void (*cnd_tick_fn)(void *arg);

/* Config-lifetime memory: freed with the snapshot.  parse() and init()
 * only (main thread, no lock). */
cnd_arena_t *cnd_conf_arena(cnd_conf_t *cf);

/* The Corefile the snapshot was read from ("<built-in default>" for the
 * built-in one). */
const char *cnd_conf_file(const cnd_conf_t *cf);

/* The Corefile as parsed: its server blocks and directives. */
const cnd_corefile_t *cnd_conf_corefile(const cnd_conf_t *cf);

/* Every instance of the snapshot, by wslot; their number in @n. */
cnd_inst_t *const *cnd_conf_insts(const cnd_conf_t *cf, size_t *n);

/* For parse() hooks: the server block being parsed. */
cnd_server_t *cnd_conf_server(cnd_conf_t *cf);

/* For init() hooks: report @fmt as "plugin/NAME: FILE:LINE - Error during
 * parsing: ..." for instance @self.  Returns -1. */
int cnd_conf_err(cnd_conf_t *cf, const cnd_inst_t *self, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For parse() hooks: every remaining argument of the dispenser's line (up
 * to a "{"), in a NULL-terminated array in the config arena.  Returns
 * their number, or -1 when out of memory. */
long cnd_conf_args(cnd_conf_t *cf, cnd_disp_t *d, const char ***out);

/* Run @fn(@arg) every @interval_ns on the main thread while this snapshot
 * serves: for work that may block, such as re-reading a file.  Called from
 * init(); the job stops before fini().  Returns 0 or -ENOMEM. */
int cnd_conf_every(cnd_conf_t *cf, int64_t interval_ns, cnd_tick_fn fn,
                   void *arg);

/* Stop the job of @fn and @arg for good (it is done: a one-off check).
 * From the job itself or any main-thread code while the snapshot
 * serves. */
void cnd_conf_every_stop(cnd_conf_t *cf, cnd_tick_fn fn, void *arg);

/* For parse() and init() hooks: on SIGTERM, keep serving DNS for @ns
 * before stopping (the health plugin's lameduck).  The longest asked
 * wins. */
void cnd_conf_lameduck(cnd_conf_t *cf, int64_t ns);

/* For parse() hooks: add a listen address to the block being parsed (the
 * bind plugin).  Returns 0 or -ENOMEM. */
int cnd_conf_add_bind(cnd_conf_t *cf, const struct sockaddr_storage *ss);

/* TCP behaviour of a server block (the timeouts plugin sets it). */
typedef struct cnd_tcp_opts_s {
    int64_t read_ns;     /* a started message must arrive within  */
    int64_t write_ns;    /* an answer must be written within      */
    int64_t idle_ns;     /* an idle connection is closed after    */
    int64_t max_queries; /* per connection, -1 = no limit          */
} cnd_tcp_opts_t;

/* For parse() hooks: the TCP behaviour of block @srv, to change. */
cnd_tcp_opts_t *cnd_server_tcp(cnd_server_t *srv);

/* The snapshot server block @srv belongs to. */
cnd_conf_t *cnd_server_snapshot(const cnd_server_t *srv);

/* The block's zones (its keys), in the order written; @n their number
 * (0 for a NULL @srv).  A query's zone (r->zone) is one of them. */
const cnd_zone_t *cnd_server_zones(const cnd_server_t *srv, size_t *n);

/* The block's listen addresses (the bind plugin), ports not set: the
 * port is the zones'.  None (@n 0) means every address. */
const struct sockaddr_storage *cnd_server_binds(const cnd_server_t *srv,
                                                size_t *n);

/* The "server" label of CoreDNS's metrics for listen address @i of
 * block @srv: "dns://127.0.0.1:53", "dns://[::1]:53", or "dns://:53"
 * when the block has no bind (every address).  Returns @buf. */
const char *cnd_server_label(const cnd_server_t *srv, size_t i, char *buf,
                             size_t size);

/* The block's chain, in plugin.cfg order: the other instances. */
const cnd_inst_t *cnd_server_chain(const cnd_server_t *srv, size_t *n);

/*
 * The worker a request runs on.  Plugins arm timers and open upstream
 * sockets on the loop of the worker that runs the request, never on
 * another's.  Worker thread only, except cnd_worker_id().
 */

uv_loop_t *cnd_worker_loop(cnd_worker_t *w);

/* 0..N-1. */
unsigned cnd_worker_id(const cnd_worker_t *w);

/* Milliseconds of the loop's clock, cached once per loop turn. */
uint64_t cnd_worker_now(const cnd_worker_t *w);

/* The worker's metrics store: series looked up here are counted without
 * locks on this worker. */
cnd_mstore_t *cnd_worker_metrics(cnd_worker_t *w);

/* Requests of this worker that are in flight now. */
unsigned cnd_worker_inflight(const cnd_worker_t *w);

/* The worker data of instance @self on worker @w (its view of the
 * snapshot @self belongs to), or NULL.  On @w's thread. */
void *cnd_worker_pdata(cnd_worker_t *w, const cnd_inst_t *self);

/*
 * "candor ctl" commands (cnd_plugin_t.ctl), answered on the main thread.
 */

/* A plugin's command.  A table ends with a row whose name is NULL. */
struct cnd_ctl_cmd_s {
    const char *name; /* "upstreams"                          */
    const char *args; /* for help: "[NAME]", or ""            */
    const char *help; /* one line                             */
    /* Main thread: write the reply with cnd_ctl_printf(); return 0, or
     * cnd_ctl_error()'s -1.  @argv[0] is the command. */
    int (*run)(cnd_ctl_t *ctl, cnd_inst_t *self, int argc, char **argv);
};

/* Append to the reply. */
void cnd_ctl_printf(cnd_ctl_t *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fail the command with a reason (the client prints "error: ..." and
 * exits 1).  Returns -1. */
int cnd_ctl_error(cnd_ctl_t *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Run @fn(@w, @arg) on every worker's thread in turn, waiting for each:
 * to read what only a worker may touch.  Main thread, from a command. */
void cnd_ctl_workers(cnd_ctl_t *ctl, void (*fn)(cnd_worker_t *w, void *arg),
                     void *arg);

/*
 * The process.
 */

/* "0.1.0", and the commit it was built from. */
extern const char cnd_version_number[];
extern const char cnd_revision[];

/* For the reload plugin.  The text of Corefile @path (malloc'd,
 * NUL-terminated, length in @len), or of the built-in one; NULL with
 * errno set. */
char *cnd_conf_read(const char *path, size_t *len);

/* Is @name a CoreDNS directive (built or not)?  For parsing a Corefile
 * as the loader does. */
bool cnd_conf_directive_known(const char *name);

/* Load the Corefile the server was started with again and serve it: new
 * listen addresses are bound, gone ones closed, kept ones keep their
 * sockets, and queries in flight finish on the snapshot they started on.
 * On any error (returned -1, the reason in @err: CoreDNS's message with
 * FILE:LINE) the running configuration keeps serving, and
 * coredns_reload_failed_total counts it.  Logs "Reloading" and
 * "Reloading complete".  Main thread, while serving. */
int cnd_server_reload(char *err, size_t errlen);

/* Count a reload that failed before cnd_server_reload() was asked (the
 * reload plugin could not parse the changed Corefile).  Main thread. */
void cnd_server_reload_failed(void);


/*
 * Properties: the rows of a plugin's block ("{ max_fails 3  force_tcp }"),
 * read from a table as nginx reads ngx_command_t.  Each row names a
 * property, the setter that reads its arguments (the dispenser positioned
 * on the property name, cnd_disp_val() is the name), and where it stores:
 * conf + offset, offsetof(conf_t, field).  A property that sets several
 * fields has a setter of its own with offset 0, and gets the whole conf.
 * The table ends with a row whose name is NULL: its setter, when not
 * NULL, takes a name no row has; otherwise that is "unknown property 'X'".
 */
typedef int (*cnd_prop_set_fn)(cnd_conf_t *cf, cnd_disp_t *d, void *field);

struct cnd_prop_s {
    const char *name;
    cnd_prop_set_fn set;
    size_t offset;
};

/* Setters in CoreDNS's wording (its setup code's strconv and time
 * errors).  Each reads the arguments after the name; what follows on the
 * line is left for the block, as CoreDNS's dispenser does.
 * flag: no argument; sets a bool.
 * duration: a Go duration, not negative, into int64_t ns
 *   (time: invalid duration "x"; NAME can't be negative: -1s).
 * uint: a decimal 0..4294967295 into unsigned (strconv.ParseUint: parsing
 *   "x": invalid syntax; NAME can't be negative: -1; NAME: X is out of
 *   range).
 * string: one argument, kept as a config-lifetime const char *.
 * arg_err: for the end row, CoreDNS's "Wrong argument count or unexpected
 *   line ending" for a name no row has (the cache's). */
int cnd_prop_flag(cnd_conf_t *cf, cnd_disp_t *d, void *field);
int cnd_prop_duration(cnd_conf_t *cf, cnd_disp_t *d, void *field);
int cnd_prop_uint(cnd_conf_t *cf, cnd_disp_t *d, void *field);
int cnd_prop_string(cnd_conf_t *cf, cnd_disp_t *d, void *field);
int cnd_prop_arg_err(cnd_conf_t *cf, cnd_disp_t *d, void *field);

/* Read every row of the block with @props, storing into @conf.  Returns
 * 0, or -1 after a setter reported the error. */
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
