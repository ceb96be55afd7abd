/* SPDX-License-Identifier: MIT */
/*
 * core/metrics.h - counters, gauges and histograms, per worker, summed at
 * scrape time.
 *
 * A metric family (name, help, type, label names, buckets) is a static
 * const in the code that owns it.  A series is one family with one set of
 * label values.  Every thread that counts (each worker, and the main
 * thread) owns a store; a plugin looks a series up in its thread's store
 * once (cnd_metric_series, which may allocate and takes the store's
 * lock), keeps the pointer (in its worker data), and from then on counts
 * with plain loads and stores: no lock, no atomic read-modify-write, no
 * allocation on the query path.  A scrape (another thread) walks every
 * store under its lock, reads the values with relaxed atomic loads, sums
 * the series of the same family and labels across stores, and writes the
 * Prometheus text format.
 *
 * Stores live as long as their thread, not a config snapshot, so counters
 * keep counting across reloads, as Prometheus expects.
 */
#ifndef CND_CORE_METRICS_H
#define CND_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CND_METRIC_COUNTER = 0,
    CND_METRIC_GAUGE,
    CND_METRIC_HISTOGRAM,
} cnd_metric_type_t;

/* A metric family.  Static, const. */
typedef struct cnd_mfamily_s {
    const char *name; /* "coredns_dns_requests_total"    */
    const char *help;
    cnd_metric_type_t type;
    const char *const *labels; /* NULL-terminated names, or NULL  */
    const double *buckets;     /* histograms: upper bounds, sorted */
    unsigned nbuckets;         /* without +Inf                    */
} cnd_mfamily_t;

/* One series.  Owned by its store; written by the store's thread only. */
typedef struct cnd_series_s cnd_series_t;
struct cnd_series_s {
    const cnd_mfamily_t *fam;
    char *labels;              /* rendered: to="1.2.3.4:53",rcode="NOERROR" */
    _Atomic uint64_t value;    /* counter; gauge as int64 bits    */
    _Atomic uint64_t *bucket;  /* histogram: nbuckets + 1 (+Inf)  */
    _Atomic uint64_t sum_bits; /* histogram: sum, double's bits   */
    cnd_series_t *next;        /* store's hash chain              */
    unsigned refs;             /* cnd_metric_series_ref users     */
    cnd_series_t *all;         /* store's list, insertion order   */
};

typedef struct cnd_mstore_s cnd_mstore_t;

/* A store for one thread; NULL when out of memory.  Register it with
 * cnd_metrics_add_store() so scrapes see it. */
cnd_mstore_t *cnd_mstore_new(void);
void cnd_mstore_free(cnd_mstore_t *st);

/* The series of @fam with the label values given as NULL-terminated
 * varargs (as many as fam->labels names; missing ones are ""), created
 * the first time.  Returns NULL when out of memory.  The store's thread
 * only; may allocate: call at setup or on first use, then keep the
 * pointer. */
cnd_series_t *cnd_metric_series(cnd_mstore_t *st, const cnd_mfamily_t *fam,
                                ...);

/* For series that several config snapshots share during a reload (a
 * gauge per upstream, per plugin): cnd_metric_series() counted, and the
 * series dropped when the last user lets go.  The store's thread only. */
cnd_series_t *cnd_metric_series_ref(cnd_mstore_t *st, const cnd_mfamily_t *fam,
                                    ...);
void cnd_metric_series_unref(cnd_mstore_t *st, cnd_series_t *s);

/* Take series @s out of store @st and free it (a gauge whose labels
 * changed, such as the running configuration's hash).  The store's
 * thread only. */
void cnd_metric_series_drop(cnd_mstore_t *st, cnd_series_t *s);

/* Count.  The store's thread only: a plain load and store, no lock. */
static inline void
cnd_counter_add(cnd_series_t *s, uint64_t n)
{
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    atomic_store_explicit(&s->value, v + n, memory_order_relaxed);
}

static inline void
cnd_gauge_set(cnd_series_t *s, int64_t v)
{
    atomic_store_explicit(&s->value, (uint64_t)v, memory_order_relaxed);
}

static inline void
cnd_gauge_add(cnd_series_t *s, int64_t d)
{
    uint64_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    atomic_store_explicit(&s->value, v + (uint64_t)d, memory_order_relaxed);
}

/* Add one observation of @v to a histogram. */
void cnd_histogram_observe(cnd_series_t *s, double v);

/*
 * The process-wide list of stores, for scrapes.  Any thread.
 */
int cnd_metrics_add_store(cnd_mstore_t *st);
void cnd_metrics_remove_store(cnd_mstore_t *st);

/* Write every family with at least one series, summed over all stores,
 * in the Prometheus text exposition format (version 0.0.4): "# HELP",
 * "# TYPE", then one line per series (histograms: _bucket with le,
 * _sum, _count), families sorted by name and series by labels so the
 * output is stable.  Returns a malloc'd string (free it), NULL when out
 * of memory. */
char *cnd_metrics_render(void);

/* The main thread's store (reload, health probes, ...), made and listed
 * on first use.  Main thread only; NULL when out of memory. */
cnd_mstore_t *cnd_main_metrics(void);

/* Render only the given stores (tests). */
char *cnd_metrics_render_stores(cnd_mstore_t *const *stores, size_t n);

/* CoreDNS's histogram buckets: durations 0.00025 s x 2^k, k = 0..15, and
 * sizes in bytes. */
extern const double cnd_buckets_time[16];
extern const double cnd_buckets_size[14];

#endif
