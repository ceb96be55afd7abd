/* SPDX-License-Identifier: MIT */
/*
 * plugins/ready/ready.c - /ready: 200 once every plugin says it is ready.
 *
 * As CoreDNS's ready: "ready [ADDRESS] { monitor until-ready|continuously }"
 * serves /ready on ADDRESS (default :8181).  It answers 200 "OK" when
 * every plugin instance with a ready() hook, in every server block that
 * enables ready, says ready; otherwise 503 with the sorted names of those
 * that do not ("erratic,kubernetes"), logged as
 *
 *     [INFO] plugin/ready: Plugins not ready: "erratic,kubernetes"
 *
 * The answer is process-wide: every ready endpoint, on any address, says
 * the same.  With until-ready (the default) an instance that said ready
 * once is not asked again; with continuously it is asked every time.
 *
 * The handler runs on the HTTP server's threads (admin/http.h), one per
 * address, under one lock of this plugin: ready() hooks are called one
 * at a time, but from there, concurrently with the workers.
 *
 * On SIGTERM, shutdown() takes /ready down before the lameduck wait, as
 * CoreDNS shuts its ready server first: orchestrators stop sending
 * traffic while DNS is still served.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "util/log.h"

#define READY_PATH "/ready"

/* Config lifetime.  addr and continuously are const after parse();
 * seen and next are under ready_lock, served is the main thread's. */
typedef struct {
    const char *addr;
    bool continuously;
    bool *seen;       /* by wslot: said ready once (until-ready)  */
    bool served;      /* /ready registered by this instance       */
    cnd_inst_t *next; /* the registry, under ready_lock           */
} ready_conf_t;

/* ---- Corefile --------------------------------------------------------- */

static int
ready_monitor(cnd_disp_t *d, ready_conf_t *c)
{
    const char *args[2];
    if (cnd_disp_args(d, args, 2) != 1) {
        return cnd_disp_arg_err(d);
    }
    if (strcmp(args[0], "until-ready") == 0) {
        c->continuously = false;
    } else if (strcmp(args[0], "continuously") == 0) {
        c->continuously = true;
    } else {
        return cnd_disp_err(d, "monitor type '%s' not supported", args[0]);
    }
    return 0;
}


static int
ready_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    ready_conf_t *c = conf;
    c->addr = ":8181";
    cnd_disp_next(d); /* "ready" (once per block) */
    if (cnd_http_addr_arg(d, &c->addr) != 0) {
        return -1;
    }
    while (cnd_disp_next_block(d)) {
        if (strcmp(cnd_disp_val(d), "monitor") != 0) {
            return cnd_disp_err(d, "unknown property '%s'", cnd_disp_val(d));
        }
        if (ready_monitor(d, c) != 0) {
            return -1;
        }
    }
    return 0;
}


static int
ready_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    ready_conf_t *c = self->conf;
    size_t ninsts;
    cnd_conf_insts(cf, &ninsts);
    c->seen =
        cnd_arena_zalloc(cnd_conf_arena(cf), ninsts * sizeof(*c->seen) + 1);
    if (c->seen == NULL) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    return 0;
}


/* ---- the registry ----------------------------------------------------- */

/*
 * The ready instances whose snapshot serves, in start order: shared by
 * the main thread (start, shutdown, stop) and the HTTP threads (the
 * handler), under ready_lock.  The handler answers for the newest
 * snapshot on the list, so during a reload (the new snapshot starts
 * before the old one stops) and after a failed one (the new snapshot's
 * instances are stopped again) it always reads a snapshot that is still
 * alive: an instance leaves the list before its snapshot may be freed.
 * Never call into admin/http.c holding the lock: a handler runs under
 * the daemon's lock and then takes this one.
 */
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static cnd_inst_t *ready_head, *ready_tail;


static void
ready_list_add(cnd_inst_t *self)
{
    ready_conf_t *c = self->conf;
    pthread_mutex_lock(&ready_lock);
    c->next = NULL;
    if (ready_tail != NULL) {
        ((ready_conf_t *)ready_tail->conf)->next = self;
    } else {
        ready_head = self;
    }
    ready_tail = self;
    pthread_mutex_unlock(&ready_lock);
}


static void
ready_list_remove(cnd_inst_t *self)
{
    pthread_mutex_lock(&ready_lock);
    cnd_inst_t *prev = NULL;
    for (cnd_inst_t *in = ready_head; in != NULL;
         prev = in, in = ((ready_conf_t *)in->conf)->next) {
        if (in != self) {
            continue;
        }
        cnd_inst_t *next = ((ready_conf_t *)in->conf)->next;
        if (prev != NULL) {
            ((ready_conf_t *)prev->conf)->next = next;
        } else {
            ready_head = next;
        }
        if (ready_tail == self) {
            ready_tail = prev;
        }
        break;
    }
    pthread_mutex_unlock(&ready_lock);
}


/* ---- the endpoint ----------------------------------------------------- */

/* Add to @names (@n so far) the instances of @r's block that are not
 * ready; returns the new count. */
static size_t
ready_block(const cnd_conf_t *cf, const cnd_inst_t *r, const char **names,
            size_t n)
{
    ready_conf_t *c = r->conf;
    size_t ninsts;
    cnd_inst_t *const *insts = cnd_conf_insts(cf, &ninsts);
    for (size_t i = 0; i < ninsts; i++) {
        cnd_inst_t *in = insts[i];
        if (in->srv != r->srv || in->plugin->ready == NULL) {
            continue;
        }
        if (!c->continuously && c->seen[i]) {
            continue;
        }
        if (in->plugin->ready(in)) {
            c->seen[i] = true;
            continue;
        }
        names[n++] = in->plugin->name;
    }
    return n;
}


static int
ready_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}


/* "a,b,c" of @names (sorted, each once), malloc'd; NULL when out of
 * memory. */
static char *
ready_join(const char **names, size_t n)
{
    qsort(names, n, sizeof(*names), ready_cmp);
    size_t size = 1;
    for (size_t i = 0; i < n; i++) {
        size += strlen(names[i]) + 1;
    }
    char *out = malloc(size), *p = out;
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(names[i], names[i - 1]) == 0) {
            continue;
        }
        if (p != out) {
            *p++ = ',';
        }
        size_t l = strlen(names[i]);
        memcpy(p, names[i], l);
        p += l;
    }
    *p = '\0';
    return out;
}


/* Under ready_lock, with a snapshot on the list: NULL when every plugin
 * is ready, else the names of those that are not (malloc'd).  *@status
 * is the HTTP status. */
static char *
ready_check(int *status)
{
    const cnd_conf_t *cf = cnd_server_snapshot(ready_tail->srv);
    size_t ninsts;
    cnd_conf_insts(cf, &ninsts);
    const char **names = malloc((ninsts + 1) * sizeof(*names));
    *status = 500;
    if (names == NULL) {
        return NULL;
    }
    size_t n = 0;
    for (cnd_inst_t *in = ready_head; in != NULL;
         in = ((ready_conf_t *)in->conf)->next) {
        if (cnd_server_snapshot(in->srv) == cf) {
            n = ready_block(cf, in, names, n);
        }
    }
    char *list = NULL;
    if (n == 0) {
        *status = 200;
    } else if ((list = ready_join(names, n)) != NULL) {
        *status = 503;
    }
    free(names);
    return list;
}


/* The HTTP thread.  Every registration passes no argument: the answer
 * is the process's, whichever block or address asks. */
static int
ready_http(void *arg, char **body, size_t *len, const char **ctype)
{
    (void)arg;
    (void)ctype;
    int status = 503;
    char *list = NULL;
    pthread_mutex_lock(&ready_lock);
    if (ready_tail != NULL) {
        list = ready_check(&status);
    }
    pthread_mutex_unlock(&ready_lock);
    if (status == 503 && list == NULL) {
        *body = strdup("Shutting down"); /* a request racing the stop */
    } else if (status == 503) {
        cnd_log(CND_LOG_INFO, "ready", "Plugins not ready: \"%s\"", list);
        *body = list;
    } else if (status == 200) {
        *body = strdup("OK");
    }
    *len = *body != NULL ? strlen(*body) : 0;
    return status;
}


static int
ready_start(cnd_conf_t *cf, cnd_inst_t *self)
{
    ready_conf_t *c = self->conf;
    char err[256];
    if (cnd_http_serve(c->addr, READY_PATH, ready_http, NULL, err,
                       sizeof(err)) != 0) {
        return cnd_conf_err(cf, self, "%s", err);
    }
    ready_list_add(self);
    c->served = true;
    return 0;
}


/* SIGTERM (before the lameduck wait) or the snapshot stops serving:
 * whichever comes first takes /ready down. */
static void
ready_unserve(cnd_inst_t *self)
{
    ready_conf_t *c = self->conf;
    if (c->served) {
        c->served = false;
        ready_list_remove(self);
        cnd_http_unserve(c->addr, READY_PATH);
    }
}


/* For "candor doctor": where the endpoint is. */
static void
ready_facts(const cnd_inst_t *self, void (*emit)(void *ud, const cnd_fact_t *f),
            void *ud)
{
    const ready_conf_t *c = self->conf;
    emit(ud, &(cnd_fact_t){
                 .kind = CND_FACT_HTTP, .text = c->addr, .path = "/ready"});
}


const cnd_plugin_t cnd_plugin_ready = {
    .name = "ready",
    .flags = CND_PLUGIN_ONCE,
    .conf_size = sizeof(ready_conf_t),
    .parse = ready_parse,
    .init = ready_init,
    .start = ready_start,
    .shutdown = ready_unserve,
    .stop = ready_unserve,
    .facts = ready_facts,
};
