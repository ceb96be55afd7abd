/* SPDX-License-Identifier: MIT */
/*
 * plugins/loadbalance/loadbalance.h - the loadbalance plugin's parts, for
 * its unit test.
 *
 * The plugin reorders records of an answer in place, on its wire: the
 * config (policy, weight file, preferred networks), the per-worker state
 * the reordering needs (a random generator and scratch arrays, so the
 * query path never allocates), and the one call that does the work.
 */
#ifndef CND_PLUGINS_LOADBALANCE_H
#define CND_PLUGINS_LOADBALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Policies. */
enum { CND_LB_ROUND_ROBIN = 0, CND_LB_WEIGHTED = 1 };

/* A "prefer" network.  Config lifetime. */
typedef struct cnd_lb_net_s {
    uint8_t addr[16]; /* masked; an IPv4 network uses the first 4 bytes */
    uint8_t bits;
    bool v6;
} cnd_lb_net_t;

/* The weight file's state (init() on, malloc'd, main thread but for the
 * table workers read through core/shared.h). */
typedef struct cnd_lb_wstate_s cnd_lb_wstate_t;

/* The plugin's config.  Config lifetime (the snapshot arena), const
 * after init() but for ws, which init() makes and fini() frees. */
typedef struct cnd_lb_conf_s {
    int policy;           /* CND_LB_*                            */
    const char *wfile;    /* weighted: the weight file           */
    int64_t reload_ns;    /* weighted: re-read period, 0 = never */
    cnd_lb_net_t *prefer; /* in order of preference              */
    size_t nprefer;
    cnd_lb_wstate_t *ws; /* weighted only                       */
} cnd_lb_conf_t;

/* What a worker needs to reorder answers: its random generator, its view
 * of the weight table and scratch space for the largest message.  Worker
 * lifetime (malloc). */
typedef struct cnd_lb_work_s cnd_lb_work_t;

/* A new worker state; @seed 0 seeds from getrandom(2).  NULL when out of
 * memory. */
cnd_lb_work_t *cnd_lb_work_new(uint64_t seed);
void cnd_lb_work_free(cnd_lb_work_t *w);

/* Reorder the answer @wire (@len bytes) in place as @c says: nothing
 * unless it is a NOERROR answer to a question other than AXFR/IXFR;
 * then, per RRset (consecutive records of one owner, type and class in
 * one section), shuffle A, AAAA and MX (round_robin) or move a weighted
 * choice of address first (weighted), then move addresses of the
 * preferred networks first.  Compression pointers into moved bytes are
 * rewritten; an RRset whose new order no valid pointer can express keeps
 * its order.  Returns how many RRsets changed order, or -1 when @wire is
 * left alone because it is malformed or too large to track. */
int cnd_lb_apply(const cnd_lb_conf_t *c, cnd_lb_work_t *w, uint8_t *wire,
                 size_t len);

/* Check the weight file of @c now, as the reload timer does (tests). */
void cnd_lb_reload_now(cnd_lb_conf_t *c);

/* Entries of the current weight table (tests): -1 without one. */
long cnd_lb_weight_count(const cnd_lb_conf_t *c);

#endif
