/* SPDX-License-Identifier: MIT */
/*
 * core/worker.c - one worker: its thread, loop, request pool and stop.
 *
 * The main thread makes a worker's sockets and starts its thread; the
 * thread sets up its loop, its view of the snapshot (running every
 * plugin's worker_init()), adopts the sockets and runs until stopped.
 *
 * Graceful stop (SIGTERM): the listening sockets close at once, so no new
 * query comes in; requests in flight finish and are answered; idle TCP
 * connections close; after CND_STOP_GRACE_MS whatever is still parked is
 * cancelled (and answered SERVFAIL).  When nothing is left, worker_fini()
 * runs and the loop ends.
 *
 * Requests come from a per-worker pool: a request is malloc'd once and
 * reused, so the hot path does not allocate.
 */
#include "core/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/plugin.h"
#include "util/log.h"


uv_loop_t *
cnd_worker_loop(cnd_worker_t *w)
{
    return &w->loop;
}


unsigned
cnd_worker_id(const cnd_worker_t *w)
{
    return w->id;
}


uint64_t
cnd_worker_now(const cnd_worker_t *w)
{
    return uv_now(&w->loop);
}


cnd_mstore_t *
cnd_worker_metrics(cnd_worker_t *w)
{
    return w->metrics;
}


unsigned
cnd_worker_inflight(const cnd_worker_t *w)
{
    return w->ninflight;
}


static void view_retired_done(cnd_worker_t *w, cnd_wconf_t *wc);

static const char *const worker_l[] = {"worker", NULL};
static const cnd_mfamily_t worker_m_current = {
    "candor_requestlist_current",
    "Requests in flight on the worker now (candor ctl dump_requestlist "
    "lists them).",
    CND_METRIC_GAUGE,
    worker_l,
    NULL,
    0};
static const cnd_mfamily_t worker_m_max = {
    "candor_requestlist_max",
    "The most requests in flight at once on the worker since start.",
    CND_METRIC_GAUGE,
    worker_l,
    NULL,
    0};


/* ---- request pool ----------------------------------------------------- */

/* Unit tests run workers without metrics. */
static inline void
worker_gauge(cnd_series_t *s, unsigned v)
{
    if (s != NULL) {
        cnd_gauge_set(s, v);
    }
}


cnd_req_t *
cnd__req_get(cnd_worker_t *w, cnd_wconf_t *wc)
{
    if (w->ninflight >= CND_REQ_MAX || wc == NULL) {
        return NULL;
    }
    cnd_req_t *r = w->free;
    if (r != NULL) {
        w->free = r->next;
        w->nfree--;
    } else {
        r = malloc(sizeof(*r));
        if (r == NULL) {
            return NULL;
        }
        uv_timer_init(&w->loop, &r->deadline);
        uv_timer_init(&w->loop, &r->timer);
        w->nreqs++;
    }
    memset(r, 0, offsetof(cnd_req_t, remote));
    r->worker = w;
    r->wc = wc;
    wc->inflight++;
    r->state = CND_REQ_RUN;
    cnd_arena_init(&r->arena, r->arena_buf, sizeof(r->arena_buf), 8192);
    /* in-flight list, newest first */
    r->prev = &w->inflight;
    r->next = w->inflight.next;
    w->inflight.next->prev = r;
    w->inflight.next = r;
    if (++w->ninflight > w->ninflight_max) {
        w->ninflight_max = w->ninflight;
        worker_gauge(w->m_max, w->ninflight_max);
    }
    return r;
}


static void
req_free_cb(uv_handle_t *h)
{
    cnd_req_t *r = h->data;
    cnd_worker_t *w = r->worker;
    /* Two handles: free after the second has closed, whichever order
     * libuv runs their callbacks in. */
    if (--r->open_handles > 0) {
        return;
    }
    w->nreqs--;
    free(r);
    cnd__worker_maybe_done(w);
}


/* Close a pooled request's handles; req_free_cb frees it. */
static void
req_free(cnd_req_t *r)
{
    r->open_handles = 2;
    r->deadline.data = r;
    r->timer.data = r;
    uv_close((uv_handle_t *)&r->deadline, req_free_cb);
    uv_close((uv_handle_t *)&r->timer, req_free_cb);
}


void
cnd__req_release(cnd_req_t *r)
{
    cnd_worker_t *w = r->worker;
    if (r->deadline_on) {
        uv_timer_stop(&r->deadline);
        r->deadline_on = false;
    }
    uv_timer_stop(&r->timer);
    r->prev->next = r->next;
    r->next->prev = r->prev;
    w->ninflight--;
    cnd_wconf_t *wc = r->wc;
    wc->inflight--;
    cnd_arena_reset(&r->arena);
    r->state = CND_REQ_FREE;
    bool tcp = r->proto == CND_PROTO_TCP && r->conn != NULL;
    if (tcp) {
        /* Tell the connection first: it may take its next message. */
        cnd__tcp_req_done(r);
    }
    if (w->nfree < CND_REQ_KEEP && !w->stopping) {
        r->next = w->free;
        w->free = r;
        w->nfree++;
    } else {
        req_free(r);
    }
    if (wc->inflight == 0 && wc != w->wc && wc != w->next_wc) {
        view_retired_done(w, wc);
    }
    cnd__worker_maybe_done(w);
}


/* ---- snapshot view ---------------------------------------------------- */

static cnd_wconf_t *
wconf_new(cnd_worker_t *w, cnd_conf_t *conf, char *err, size_t errlen)
{
    cnd_wconf_t *wc = calloc(1, sizeof(*wc));
    if (wc == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    wc->pdata = calloc(conf->ninsts + 1, sizeof(void *));
    if (wc->pdata == NULL) {
        free(wc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cnd_conf_ref(conf);
    atomic_fetch_add(&conf->views, 1);
    wc->conf = conf;
    for (size_t i = 0; i < conf->ninsts; i++) {
        cnd_inst_t *in = conf->insts[i];
        if (in->plugin->worker_init != NULL &&
            in->plugin->worker_init(w, in, &wc->pdata[in->wslot]) != 0) {
            snprintf(err, errlen,
                     "plugin/%s: %s:%d - worker %u could not "
                     "start",
                     in->plugin->name, in->file, in->line, w->id);
            /* undo the ones that started */
            while (i-- > 0) {
                in = conf->insts[i];
                if (in->plugin->worker_fini != NULL) {
                    in->plugin->worker_fini(w, in, wc->pdata[in->wslot]);
                }
            }
            atomic_fetch_sub(&conf->views, 1);
            cnd_conf_unref(conf);
            free(wc->pdata);
            free(wc);
            return NULL;
        }
    }
    wc->inited = true;
    return wc;
}


static void
wlisten_close(cnd_wlisten_t *wl)
{
    cnd__udp_close(&wl->udp);
    cnd__tcp_close_listener(&wl->tcpl);
}


void
cnd__wlisten_closed(cnd_wlisten_t *wl)
{
    if (--wl->open == 0) {
        free(wl);
    }
}


static void
wconf_free(cnd_worker_t *w, cnd_wconf_t *wc)
{
    cnd_conf_t *conf = wc->conf;
    for (size_t i = conf->ninsts; i-- > 0;) {
        cnd_inst_t *in = conf->insts[i];
        if (in->plugin->worker_fini != NULL) {
            in->plugin->worker_fini(w, in, wc->pdata[in->wslot]);
        }
    }
    while (wc->retired != NULL) {
        cnd_wlisten_t *wl = wc->retired;
        wc->retired = wl->next;
        wlisten_close(wl);
    }
    /* The main thread holds a reference to a retired snapshot until its
     * last view is gone, so the last unref (and fini) runs there. */
    atomic_fetch_sub(&conf->views, 1);
    cnd_conf_unref(conf);
    free(wc->pdata);
    free(wc);
}


cnd_wconf_t *
cnd__worker_view(cnd_worker_t *w, const cnd_conf_t *conf)
{
    if (w->wc != NULL && w->wc->conf == conf) {
        return w->wc;
    }
    for (cnd_wconf_t *wc = w->old; wc != NULL; wc = wc->older) {
        if (wc->conf == conf) {
            return wc;
        }
    }
    return NULL;
}


/* A retired view's last request is done. */
static void
view_retired_done(cnd_worker_t *w, cnd_wconf_t *wc)
{
    cnd_wconf_t **pp = &w->old;
    while (*pp != NULL && *pp != wc) {
        pp = &(*pp)->older;
    }
    if (*pp == wc) {
        *pp = wc->older;
        wconf_free(w, wc);
    }
}


/* ---- listeners -------------------------------------------------------- */

/* Watch the sockets of @ws for listen address @l. */
static cnd_wlisten_t *
wlisten_open(cnd_worker_t *w, const cnd_listen_t *l, cnd_wsock_t *ws)
{
    cnd_wlisten_t *wl = calloc(1, sizeof(*wl));
    if (wl == NULL) {
        return NULL;
    }
    wl->udp.w = wl->tcpl.w = w;
    wl->udp.wl = wl->tcpl.wl = wl;
    wl->udp.listen = wl->tcpl.listen = l;
    wl->udp.fd = ws->udp_fd;
    wl->udp.wildcard = ws->wildcard;
    ws->udp_fd = -1;
    int tfd = ws->tcp_fd;
    ws->tcp_fd = -1;
    wl->open = 2;
    if (cnd__udp_start(&wl->udp) != 0) {
        /* no handle was made */
        close(wl->udp.fd);
        close(tfd);
        free(wl);
        return NULL;
    }
    if (cnd__tcp_start(&wl->tcpl, tfd) != 0) {
        wlisten_close(wl);
        return NULL;
    }
    return wl;
}


/* ---- stop ------------------------------------------------------------- */

static void
worker_handle_closed(uv_handle_t *h)
{
    (void)h;
}


void
cnd__worker_maybe_done(cnd_worker_t *w)
{
    if (!w->stopping || w->ninflight != 0 || w->nconns != 0 || w->wc == NULL) {
        return;
    }
    /* Nothing in flight and no connection: end the loop. */
    for (size_t i = 0; i < w->nlisten; i++) {
        if (w->ls[i] != NULL) {
            wlisten_close(w->ls[i]);
            w->ls[i] = NULL;
        }
    }
    while (w->old != NULL) {
        view_retired_done(w, w->old);
    }
    wconf_free(w, w->wc);
    w->wc = NULL;
    while (w->free != NULL) {
        cnd_req_t *r = w->free;
        w->free = r->next;
        w->nfree--;
        req_free(r);
    }
    uv_close((uv_handle_t *)&w->async, worker_handle_closed);
    uv_close((uv_handle_t *)&w->prepare, worker_handle_closed);
    uv_close((uv_handle_t *)&w->check, worker_handle_closed);
    uv_close((uv_handle_t *)&w->stop_timer, worker_handle_closed);
}


/* The grace is over: cancel what is still parked, close connections. */
static void
worker_grace_cb(uv_timer_t *t)
{
    cnd_worker_t *w = t->data;
    w->stop_grace_over = true;
    cnd_req_t *r = w->inflight.next;
    while (r != &w->inflight) {
        cnd_req_t *next = r->next;
        if (r->state == CND_REQ_PARKED) {
            cnd__req_cancel(r, "server shutting down");
        }
        r = next;
    }
    cnd__tcp_stop(w);
    cnd__worker_maybe_done(w);
}


void
cnd__worker_stop(cnd_worker_t *w)
{
    if (w->stopping) {
        return;
    }
    w->stopping = true;
    for (size_t i = 0; i < w->nlisten; i++) {
        if (w->ls[i] != NULL) {
            cnd__udp_stop(&w->ls[i]->udp);
            cnd__tcp_close_listener(&w->ls[i]->tcpl);
        }
    }
    cnd__tcp_stop(w);
    w->stop_timer.data = w;
    uv_timer_start(&w->stop_timer, worker_grace_cb, CND_STOP_GRACE_MS, 0);
    cnd__worker_maybe_done(w);
}


static void
worker_async_cb(uv_async_t *h)
{
    cnd_worker_t *w = h->data;
    uv_mutex_lock(&w->msg_lock);
    unsigned msgs = w->msgs;
    w->msgs = 0;
    uv_mutex_unlock(&w->msg_lock);
    if (msgs & CND_MSG_CALL) {
        w->call_fn(w, w->call_arg);
        uv_sem_post(&w->call_done);
    }
    if (msgs & CND_MSG_STOP) {
        cnd__worker_stop(w);
    }
}


/* Before the loop sleeps: the turn's answers out, and the request list
 * gauge set once (not for every request). */
static void
worker_prepare_cb(uv_prepare_t *h)
{
    cnd_worker_t *w = h->data;
    cnd__udp_flush(w);
    worker_gauge(w->m_current, w->ninflight);
}


static void
worker_check_cb(uv_check_t *h)
{
    cnd__udp_flush(h->data);
}


/* ---- thread ----------------------------------------------------------- */

int
cnd__worker_setup(cnd_worker_t *w, cnd_conf_t *conf)
{
    w->deadline_ms = CND_REQ_DEADLINE_MS;
    w->inflight.next = w->inflight.prev = &w->inflight;
    w->conns.next = w->conns.prev = &w->conns;
    if (uv_loop_init(&w->loop) != 0) {
        snprintf(w->start_err, sizeof(w->start_err), "uv_loop_init failed");
        return -1;
    }
    uv_mutex_init(&w->msg_lock);
    uv_sem_init(&w->call_done, 0);
    uv_async_init(&w->loop, &w->async, worker_async_cb);
    w->async.data = w;
    uv_prepare_init(&w->loop, &w->prepare);
    w->prepare.data = w;
    uv_prepare_start(&w->prepare, worker_prepare_cb);
    uv_check_init(&w->loop, &w->check);
    w->check.data = w;
    uv_check_start(&w->check, worker_check_cb);
    uv_timer_init(&w->loop, &w->stop_timer);

    w->scratch = knot_pkt_new(NULL, KNOT_WIRE_MAX_PKTSIZE, NULL);
    w->rx_buf = malloc(sizeof(*w->rx_buf) * CND_UDP_BATCH);
    w->metrics = cnd_mstore_new();
    if (w->rx_buf == NULL || w->metrics == NULL ||
        cnd_metrics_add_store(w->metrics) != 0) {
        snprintf(w->start_err, sizeof(w->start_err), "out of memory");
        return -1;
    }
    char id[16];
    snprintf(id, sizeof(id), "%u", w->id);
    w->m_current = cnd_metric_series(w->metrics, &worker_m_current, id, NULL);
    w->m_max = cnd_metric_series(w->metrics, &worker_m_max, id, NULL);
    if (w->m_current == NULL || w->m_max == NULL) {
        snprintf(w->start_err, sizeof(w->start_err), "out of memory");
        return -1;
    }
    w->nlisten = conf->nlistens;
    w->ls = calloc(w->nlisten + 1, sizeof(*w->ls));
    if (w->scratch == NULL || w->rx_buf == NULL || w->ls == NULL) {
        snprintf(w->start_err, sizeof(w->start_err), "out of memory");
        return -1;
    }
    w->wc = wconf_new(w, conf, w->start_err, sizeof(w->start_err));
    if (w->wc == NULL) {
        return -1;
    }
    for (size_t i = 0; i < w->nlisten; i++) {
        w->ls[i] = wlisten_open(w, &conf->listens[i], &w->socks[i]);
        if (w->ls[i] == NULL) {
            snprintf(w->start_err, sizeof(w->start_err),
                     "listen %s: cannot watch the sockets",
                     conf->listens[i].name);
            return -1;
        }
    }
    return 0;
}


void
cnd__worker_teardown(cnd_worker_t *w)
{
    /* Every handle is closed: the loop is empty. */
    uv_loop_close(&w->loop);
    knot_pkt_free(w->scratch);
    free(w->rx_buf);
    free(w->ls);
    w->scratch = NULL;
    w->rx_buf = NULL;
    w->ls = NULL;
}


static void
worker_main(void *arg)
{
    cnd_worker_t *w = arg;
    char name[16]; /* "candor-w0": per-thread tools (top -H, perf) */
    snprintf(name, sizeof(name), "candor-w%u", w->id);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    cnd_conf_t *conf = w->start_conf;
    w->start_conf = NULL;
    w->start_rc = cnd__worker_setup(w, conf);
    cnd_conf_unref(conf);
    uv_sem_post(&w->started);
    if (w->start_rc != 0) {
        /* The process exits on a failed start: nothing to tidy. */
        return;
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    cnd__worker_teardown(w);
    atomic_store(&w->exited, true);
    /* Counters outlive the loop: a scrape may still run.  The store is
     * freed (and taken off the list) with the process. */
    if (w->on_exit != NULL) {
        w->on_exit();
    }
}


int
cnd__worker_start(cnd_worker_t *w, cnd_conf_t *conf)
{
    uv_sem_init(&w->started, 0);
    cnd_conf_ref(conf);
    w->start_conf = conf;
    if (uv_thread_create(&w->thread, worker_main, w) != 0) {
        cnd_conf_unref(conf);
        snprintf(w->start_err, sizeof(w->start_err), "cannot start a thread");
        return -1;
    }
    uv_sem_wait(&w->started);
    uv_sem_destroy(&w->started);
    if (w->start_rc != 0) {
        uv_thread_join(&w->thread);
        return -1;
    }
    return 0;
}


void
cnd__worker_post(cnd_worker_t *w, unsigned msg)
{
    uv_mutex_lock(&w->msg_lock);
    w->msgs |= msg;
    uv_mutex_unlock(&w->msg_lock);
    uv_async_send(&w->async);
}


int
cnd__worker_call(cnd_worker_t *w, cnd_call_fn fn, void *arg)
{
    if (atomic_load(&w->exited)) {
        return -1;
    }
    uv_mutex_lock(&w->msg_lock);
    w->call_fn = fn;
    w->call_arg = arg;
    w->msgs |= CND_MSG_CALL;
    uv_mutex_unlock(&w->msg_lock);
    uv_async_send(&w->async);
    uv_sem_wait(&w->call_done);
    return 0;
}


void
cnd__worker_join(cnd_worker_t *w)
{
    uv_thread_join(&w->thread);
    uv_mutex_destroy(&w->msg_lock);
    uv_sem_destroy(&w->call_done);
}


/* ---- reload ----------------------------------------------------------- */

static void
worker_socks_close(cnd_worker_t *w, size_t n)
{
    for (size_t i = 0; w->socks != NULL && i < n; i++) {
        if (w->socks[i].udp_fd >= 0) {
            close(w->socks[i].udp_fd);
            w->socks[i].udp_fd = -1;
        }
        if (w->socks[i].tcp_fd >= 0) {
            close(w->socks[i].tcp_fd);
            w->socks[i].tcp_fd = -1;
        }
    }
}


void
cnd__worker_prepare(cnd_worker_t *w, void *arg)
{
    cnd_reload_t *rl = arg;
    if (w->stopping) {
        snprintf(w->start_err, sizeof(w->start_err), "the server is stopping");
        rl->rc = -1;
        return;
    }
    w->next_ls = calloc(rl->conf->nlistens + 1, sizeof(*w->next_ls));
    if (w->next_ls == NULL) {
        snprintf(w->start_err, sizeof(w->start_err), "out of memory");
        rl->rc = -1;
        return;
    }
    w->next_wc = wconf_new(w, rl->conf, w->start_err, sizeof(w->start_err));
    if (w->next_wc == NULL) {
        free(w->next_ls);
        w->next_ls = NULL;
        rl->rc = -1;
    }
}


void
cnd__worker_abort(cnd_worker_t *w, void *arg)
{
    cnd_reload_t *rl = arg;
    if (w->next_wc != NULL) {
        wconf_free(w, w->next_wc);
        w->next_wc = NULL;
    }
    free(w->next_ls);
    w->next_ls = NULL;
    worker_socks_close(w, rl->conf->nlistens);
}


void
cnd__worker_commit(cnd_worker_t *w, void *arg)
{
    cnd_reload_t *rl = arg;
    const cnd_conf_t *conf = rl->conf;
    cnd_wconf_t *old = w->wc;
    cnd_wlisten_t **ls = w->next_ls;

    /* Keep the addresses both listen on, open the new ones. */
    for (size_t i = 0; i < conf->nlistens; i++) {
        const cnd_listen_t *l = &conf->listens[i];
        for (size_t j = 0; j < w->nlisten && ls[i] == NULL; j++) {
            if (w->ls[j] != NULL &&
                strcmp(w->ls[j]->udp.listen->name, l->name) == 0) {
                ls[i] = w->ls[j];
                w->ls[j] = NULL;
                ls[i]->udp.listen = ls[i]->tcpl.listen = l;
            }
        }
        if (ls[i] == NULL) {
            ls[i] = wlisten_open(w, l, &w->socks[i]);
            if (ls[i] == NULL) {
                cnd_log(CND_LOG_ERROR, NULL,
                        "reload: worker %u cannot listen on %s: out of "
                        "memory or socket error; the others serve it",
                        w->id, l->name);
            }
        }
    }
    /* Retire the others: no more reading; they close with the old view
     * (UDP answers of its requests still go out through them). */
    for (size_t j = 0; j < w->nlisten; j++) {
        cnd_wlisten_t *wl = w->ls[j];
        if (wl != NULL) {
            cnd__udp_stop(&wl->udp);
            cnd__tcp_close_listener(&wl->tcpl);
            wl->next = old->retired;
            old->retired = wl;
        }
    }
    free(w->ls);
    w->ls = ls;
    w->nlisten = conf->nlistens;
    w->next_ls = NULL;
    worker_socks_close(w, conf->nlistens);
    cnd__tcp_retarget(w, conf);

    w->wc = w->next_wc;
    w->next_wc = NULL;
    old->older = w->old;
    w->old = old;
    if (old->inflight == 0) {
        view_retired_done(w, old);
    }
}
