/* SPDX-License-Identifier: MIT */
/*
 * core/metrics.c - per-thread metric stores and the Prometheus scrape.
 *
 * A store is a small chained hash table of series keyed by (family
 * pointer, rendered label string), used by its own thread to find a
 * series once, plus a list of its series in insertion order, which is
 * what a scrape walks.  The store's mutex is taken to link a new series
 * into that list and by the scrape while it walks it; the hash chains are
 * read and written by the store's thread only and need no lock.  Counting
 * never locks: the owner is the only writer of a series, so a relaxed
 * load and store is exact, and the scrape's relaxed loads see some recent
 * value.
 *
 * Every store that should be scraped is on a process-wide list under a
 * global mutex.  A scrape holds that mutex for its whole run, so no
 * listed store (and hence no series) can be freed under it; it copies the
 * series pointers of each store under the store's lock, sorts them by
 * family name and labels, sums the runs with the same name and labels,
 * and formats them into one malloc'd buffer.
 */
#include "core/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define METRICS_NHASH_MIN 16

struct cnd_mstore_s {
    uv_mutex_t lock;     /* insert, and the scrape's walk        */
    cnd_series_t **hash; /* chains by (fam, labels); owner only  */
    size_t nhash;        /* a power of two                       */
    size_t n;            /* series in the store                  */
    cnd_series_t *head;  /* insertion order, under lock          */
    cnd_series_t *tail;
    cnd_mstore_t *next_store; /* process-wide list, under metrics_mu  */
    bool listed;              /* on that list, under metrics_mu       */
};

/* A growable output buffer; @oom sticks so callers check once at the
 * end. */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
} metrics_buf_t;

const double cnd_buckets_time[16] = {
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032,
    0.064,   0.128,  0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
};

const double cnd_buckets_size[14] = {
    0,    100,  200,  300,   400,   511,   1023,
    2047, 4095, 8291, 16000, 32000, 48000, 64000,
};

static uv_once_t metrics_once = UV_ONCE_INIT;
static uv_mutex_t metrics_mu;
static bool metrics_mu_ok;
static cnd_mstore_t *metrics_stores;


static void
metrics_init_once(void)
{
    metrics_mu_ok = uv_mutex_init(&metrics_mu) == 0;
}


static bool
metrics_reserve(metrics_buf_t *b, size_t more)
{
    if (b->oom) {
        return false;
    }
    if (b->len + more + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}


static void
metrics_putn(metrics_buf_t *b, const char *s, size_t n)
{
    if (!metrics_reserve(b, n)) {
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}


static void
metrics_puts(metrics_buf_t *b, const char *s)
{
    metrics_putn(b, s, strlen(s));
}


static void
metrics_putc(metrics_buf_t *b, char c)
{
    metrics_putn(b, &c, 1);
}


static void
metrics_put_u64(metrics_buf_t *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    metrics_putn(b, tmp, (size_t)n);
}


static void
metrics_put_i64(metrics_buf_t *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    metrics_putn(b, tmp, (size_t)n);
}


/* Append @s escaped for a label value (backslash, quote, newline) or,
 * with !@quote, for HELP text (backslash, newline), as the text format
 * requires. */
static void
metrics_put_escaped(metrics_buf_t *b, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            metrics_puts(b, "\\\\");
        } else if (*s == '\n') {
            metrics_puts(b, "\\n");
        } else if (*s == '"' && quote) {
            metrics_puts(b, "\\\"");
        } else {
            metrics_putc(b, *s);
        }
    }
}


/*
 * Format @v as Go's strconv.FormatFloat(v, 'g', -1, 64) does, which is
 * what the Prometheus Go client (and so CoreDNS) writes for le and _sum:
 * the shortest digits that read back as @v, in %e form (two-digit
 * exponent at least) when the decimal exponent is < -4 or >= 6, else
 * plain, with no decimal point for integers: 0.00025, 100000, 1e+06.
 * C's %g cannot do it: its switch to %e depends on the precision.
 */
static void
metrics_fmt_float(char *out, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        /* the Go client writes -0 as 0 too */
        snprintf(out, size, "0");
        return;
    }
    /* the closest p-digit decimal round-trips if any p-digit one does */
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) {
            break;
        }
    }
    /* e is [-]d[.ddd]e(+|-)xx: split it into digits and exponent */
    const char *s = e;
    bool neg = *s == '-';
    if (neg) {
        s++;
    }
    char digs[24];
    size_t nd = 0;
    for (; *s != 'e' && *s != '\0'; s++) {
        if (*s != '.' && nd < sizeof(digs) - 1) {
            digs[nd++] = *s;
        }
    }
    int exp = *s == 'e' ? atoi(s + 1) : 0;
    while (nd > 1 && digs[nd - 1] == '0') {
        nd--;
    }
    digs[nd] = '\0';

    size_t o = 0;
#define PUT(c)                                                                 \
    do {                                                                       \
        if (o + 1 < size) {                                                    \
            out[o++] = (c);                                                    \
        }                                                                      \
    } while (0)
    if (neg) {
        PUT('-');
    }
    if (exp < -4 || exp >= 6) {
        PUT(digs[0]);
        if (nd > 1) {
            PUT('.');
            for (size_t i = 1; i < nd; i++) {
                PUT(digs[i]);
            }
        }
        PUT('e');
        PUT(exp < 0 ? '-' : '+');
        int ax = exp < 0 ? -exp : exp;
        char xd[8];
        int nx = snprintf(xd, sizeof(xd), "%02d", ax);
        for (int i = 0; i < nx; i++) {
            PUT(xd[i]);
        }
    } else if (exp < 0) {
        PUT('0');
        PUT('.');
        for (int i = exp + 1; i < 0; i++) {
            PUT('0');
        }
        for (size_t i = 0; i < nd; i++) {
            PUT(digs[i]);
        }
    } else {
        size_t dp = (size_t)exp + 1; /* digits before the point */
        for (size_t i = 0; i < dp; i++) {
            PUT(i < nd ? digs[i] : '0');
        }
        if (nd > dp) {
            PUT('.');
            for (size_t i = dp; i < nd; i++) {
                PUT(digs[i]);
            }
        }
    }
#undef PUT
    out[o] = '\0';
}


static void
metrics_put_float(metrics_buf_t *b, double v)
{
    char tmp[48];
    metrics_fmt_float(tmp, sizeof(tmp), v);
    metrics_puts(b, tmp);
}


static size_t
metrics_hash(const cnd_mfamily_t *fam, const char *labels)
{
    uint64_t h = 14695981039346656037u ^ (uint64_t)(uintptr_t)fam;
    for (const unsigned char *p = (const unsigned char *)labels; *p != '\0';
         p++) {
        h = (h ^ *p) * 1099511628211u;
    }
    return (size_t)(h ^ (h >> 32));
}


/* Double the hash table when chains get long.  Failing to grow only
 * makes lookups slower, so it is not an error. */
static void
metrics_grow(cnd_mstore_t *st)
{
    size_t nhash = st->nhash * 2;
    cnd_series_t **hash = calloc(nhash, sizeof(*hash));
    if (hash == NULL) {
        return;
    }
    for (size_t i = 0; i < st->nhash; i++) {
        cnd_series_t *s = st->hash[i];
        while (s != NULL) {
            cnd_series_t *next = s->next;
            size_t h = metrics_hash(s->fam, s->labels) & (nhash - 1);
            s->next = hash[h];
            hash[h] = s;
            s = next;
        }
    }
    free(st->hash);
    st->hash = hash;
    st->nhash = nhash;
}


cnd_mstore_t *
cnd_mstore_new(void)
{
    cnd_mstore_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    st->nhash = METRICS_NHASH_MIN;
    st->hash = calloc(st->nhash, sizeof(*st->hash));
    if (st->hash == NULL || uv_mutex_init(&st->lock) != 0) {
        free(st->hash);
        free(st);
        return NULL;
    }
    return st;
}


void
cnd_mstore_free(cnd_mstore_t *st)
{
    if (st == NULL) {
        return;
    }
    /* a store still listed would be walked by the next scrape */
    cnd_metrics_remove_store(st);
    cnd_series_t *s = st->head;
    while (s != NULL) {
        cnd_series_t *next = s->all;
        free(s->labels);
        free(s->bucket);
        free(s);
        s = next;
    }
    free(st->hash);
    uv_mutex_destroy(&st->lock);
    free(st);
}


static cnd_series_t *metrics_series(cnd_mstore_t *st, const cnd_mfamily_t *fam,
                                    va_list ap);


cnd_series_t *
cnd_metric_series(cnd_mstore_t *st, const cnd_mfamily_t *fam, ...)
{
    va_list ap;
    va_start(ap, fam);
    cnd_series_t *s = metrics_series(st, fam, ap);
    va_end(ap);
    return s;
}


cnd_series_t *
cnd_metric_series_ref(cnd_mstore_t *st, const cnd_mfamily_t *fam, ...)
{
    va_list ap;
    va_start(ap, fam);
    cnd_series_t *s = metrics_series(st, fam, ap);
    va_end(ap);
    if (s != NULL) {
        s->refs++;
    }
    return s;
}


void
cnd_metric_series_unref(cnd_mstore_t *st, cnd_series_t *s)
{
    if (s != NULL && --s->refs == 0) {
        cnd_metric_series_drop(st, s);
    }
}


static cnd_series_t *
metrics_series(cnd_mstore_t *st, const cnd_mfamily_t *fam, va_list ap)
{
    metrics_buf_t lb = {0};
    if (!metrics_reserve(&lb, 0)) {
        return NULL;
    }
    lb.p[0] = '\0'; /* a family without labels has "" */
    bool ended = false;
    for (size_t i = 0; fam->labels != NULL && fam->labels[i] != NULL; i++) {
        /* stop reading at the NULL: the missing values are "" */
        const char *v = NULL;
        if (!ended) {
            v = va_arg(ap, const char *);
            ended = v == NULL;
        }
        if (i > 0) {
            metrics_putc(&lb, ',');
        }
        metrics_puts(&lb, fam->labels[i]);
        metrics_puts(&lb, "=\"");
        metrics_put_escaped(&lb, v != NULL ? v : "", true);
        metrics_putc(&lb, '"');
    }
    if (lb.oom) {
        free(lb.p);
        return NULL;
    }

    size_t h = metrics_hash(fam, lb.p);
    for (cnd_series_t *s = st->hash[h & (st->nhash - 1)]; s != NULL;
         s = s->next) {
        if (s->fam == fam && strcmp(s->labels, lb.p) == 0) {
            free(lb.p);
            return s;
        }
    }

    cnd_series_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        free(lb.p);
        return NULL;
    }
    s->fam = fam;
    s->labels = lb.p;
    atomic_init(&s->value, 0);
    atomic_init(&s->sum_bits, 0); /* the bits of +0.0 */
    if (fam->type == CND_METRIC_HISTOGRAM) {
        s->bucket = calloc((size_t)fam->nbuckets + 1, sizeof(*s->bucket));
        if (s->bucket == NULL) {
            free(s->labels);
            free(s);
            return NULL;
        }
        for (unsigned i = 0; i <= fam->nbuckets; i++) {
            atomic_init(&s->bucket[i], 0);
        }
    }

    /* the hash chains are the owner's alone; the list is the scrape's */
    size_t i = h & (st->nhash - 1);
    s->next = st->hash[i];
    st->hash[i] = s;
    uv_mutex_lock(&st->lock);
    if (st->tail != NULL) {
        st->tail->all = s;
    } else {
        st->head = s;
    }
    st->tail = s;
    st->n++;
    uv_mutex_unlock(&st->lock);
    if (st->n > 2 * st->nhash) {
        metrics_grow(st);
    }
    return s;
}


void
cnd_metric_series_drop(cnd_mstore_t *st, cnd_series_t *s)
{
    if (s == NULL) {
        return;
    }
    size_t i = metrics_hash(s->fam, s->labels) & (st->nhash - 1);
    cnd_series_t **pp = &st->hash[i];
    while (*pp != NULL && *pp != s) {
        pp = &(*pp)->next;
    }
    if (*pp == NULL) {
        return;
    }
    *pp = s->next;
    uv_mutex_lock(&st->lock);
    cnd_series_t *prev = NULL;
    for (cnd_series_t *x = st->head; x != s; x = x->all) {
        prev = x;
    }
    if (prev != NULL) {
        prev->all = s->all;
    } else {
        st->head = s->all;
    }
    if (st->tail == s) {
        st->tail = prev;
    }
    st->n--;
    uv_mutex_unlock(&st->lock);
    free(s->labels);
    free(s->bucket);
    free(s);
}


void
cnd_histogram_observe(cnd_series_t *s, double v)
{
    const cnd_mfamily_t *fam = s->fam;
    if (s->bucket == NULL) {
        return;
    }
    /* the first bound >= v; NaN and v above every bound go to +Inf */
    unsigned lo = 0, hi = fam->nbuckets;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (fam->buckets[mid] >= v) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    uint64_t n = atomic_load_explicit(&s->bucket[lo], memory_order_relaxed);
    atomic_store_explicit(&s->bucket[lo], n + 1, memory_order_relaxed);

    uint64_t bits = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
    double sum;
    memcpy(&sum, &bits, sizeof(sum));
    sum += v;
    memcpy(&bits, &sum, sizeof(bits));
    atomic_store_explicit(&s->sum_bits, bits, memory_order_relaxed);
}


int
cnd_metrics_add_store(cnd_mstore_t *st)
{
    uv_once(&metrics_once, metrics_init_once);
    if (!metrics_mu_ok) {
        return -1;
    }
    uv_mutex_lock(&metrics_mu);
    if (!st->listed) {
        st->next_store = metrics_stores;
        metrics_stores = st;
        st->listed = true;
    }
    uv_mutex_unlock(&metrics_mu);
    return 0;
}


void
cnd_metrics_remove_store(cnd_mstore_t *st)
{
    uv_once(&metrics_once, metrics_init_once);
    if (!metrics_mu_ok) {
        return;
    }
    uv_mutex_lock(&metrics_mu);
    if (st->listed) {
        cnd_mstore_t **pp = &metrics_stores;
        while (*pp != NULL && *pp != st) {
            pp = &(*pp)->next_store;
        }
        if (*pp == st) {
            *pp = st->next_store;
        }
        st->next_store = NULL;
        st->listed = false;
    }
    uv_mutex_unlock(&metrics_mu);
}


/* Main thread only. */
static cnd_mstore_t *metrics_main;

cnd_mstore_t *
cnd_main_metrics(void)
{
    if (metrics_main == NULL) {
        cnd_mstore_t *st = cnd_mstore_new();
        if (st == NULL || cnd_metrics_add_store(st) != 0) {
            cnd_mstore_free(st);
            return NULL;
        }
        metrics_main = st;
    }
    return metrics_main;
}


static int
metrics_cmp(const void *a, const void *b)
{
    const cnd_series_t *x = *(cnd_series_t *const *)a;
    const cnd_series_t *y = *(cnd_series_t *const *)b;
    int c = strcmp(x->fam->name, y->fam->name);
    if (c == 0) {
        c = strcmp(x->labels, y->labels);
    }
    if (c == 0 && x->fam != y->fam) {
        /* same name from two definitions: keep the output stable */
        c = (uintptr_t)x->fam < (uintptr_t)y->fam ? -1 : 1;
    }
    return c;
}


/* Whether @s can be summed into a family printed as @fam: two families
 * with one name but another type or other buckets are a bug in their
 * owners, and adding them up would print nonsense. */
static bool
metrics_compatible(const cnd_mfamily_t *fam, const cnd_series_t *s)
{
    const cnd_mfamily_t *f = s->fam;
    if (f == fam) {
        return true;
    }
    if (f->type != fam->type) {
        return false;
    }
    if (f->type != CND_METRIC_HISTOGRAM) {
        return true;
    }
    if (f->nbuckets != fam->nbuckets) {
        return false;
    }
    for (unsigned i = 0; i < f->nbuckets; i++) {
        if (f->buckets[i] != fam->buckets[i]) {
            return false;
        }
    }
    return true;
}


/* name{labels[,extra]} value-to-come: the start of one sample line. */
static void
metrics_put_name(metrics_buf_t *b, const char *name, const char *suffix,
                 const char *labels, const char *extra)
{
    metrics_puts(b, name);
    metrics_puts(b, suffix);
    if (labels[0] == '\0' && extra == NULL) {
        metrics_putc(b, ' ');
        return;
    }
    metrics_putc(b, '{');
    metrics_puts(b, labels);
    if (extra != NULL) {
        if (labels[0] != '\0') {
            metrics_putc(b, ',');
        }
        metrics_puts(b, extra);
    }
    metrics_puts(b, "} ");
}


/* The series @ss[0..n) of one family, sorted by labels: sum each run of
 * the same labels and write its lines. */
static void
metrics_put_family(metrics_buf_t *b, cnd_series_t *const *ss, size_t n,
                   uint64_t *counts)
{
    const cnd_mfamily_t *fam = ss[0]->fam;
    static const char *const types[] = {
        [CND_METRIC_COUNTER] = "counter",
        [CND_METRIC_GAUGE] = "gauge",
        [CND_METRIC_HISTOGRAM] = "histogram",
    };
    metrics_puts(b, "# HELP ");
    metrics_puts(b, fam->name);
    metrics_putc(b, ' ');
    metrics_put_escaped(b, fam->help != NULL ? fam->help : "", false);
    metrics_puts(b, "\n# TYPE ");
    metrics_puts(b, fam->name);
    metrics_putc(b, ' ');
    metrics_puts(b, types[fam->type]);
    metrics_putc(b, '\n');

    size_t nb = fam->type == CND_METRIC_HISTOGRAM ? fam->nbuckets + 1 : 0;
    for (size_t i = 0; i < n;) {
        const char *labels = ss[i]->labels;
        uint64_t value = 0;
        double sum = 0;
        memset(counts, 0, nb * sizeof(*counts));
        size_t j = i;
        for (; j < n && strcmp(ss[j]->labels, labels) == 0; j++) {
            const cnd_series_t *s = ss[j];
            if (!metrics_compatible(fam, s)) {
                continue;
            }
            /* modular sum: right for gauges' negative int64 bits too */
            value += atomic_load_explicit(&s->value, memory_order_relaxed);
            for (size_t k = 0; k < nb; k++) {
                counts[k] +=
                    atomic_load_explicit(&s->bucket[k], memory_order_relaxed);
            }
            if (nb > 0) {
                uint64_t bits =
                    atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
                double d;
                memcpy(&d, &bits, sizeof(d));
                sum += d;
            }
        }
        i = j;

        if (fam->type == CND_METRIC_COUNTER) {
            metrics_put_name(b, fam->name, "", labels, NULL);
            metrics_put_u64(b, value);
            metrics_putc(b, '\n');
            continue;
        }
        if (fam->type == CND_METRIC_GAUGE) {
            metrics_put_name(b, fam->name, "", labels, NULL);
            metrics_put_i64(b, (int64_t)value);
            metrics_putc(b, '\n');
            continue;
        }
        /* stored per bucket; Prometheus wants each bucket to count
         * everything at or below its bound */
        uint64_t cum = 0;
        for (size_t k = 0; k < nb; k++) {
            char le[64] = "le=\"";
            if (k < fam->nbuckets) {
                metrics_fmt_float(le + 4, sizeof(le) - 6, fam->buckets[k]);
            } else {
                strcpy(le + 4, "+Inf");
            }
            strcat(le, "\"");
            cum += counts[k];
            metrics_put_name(b, fam->name, "_bucket", labels, le);
            metrics_put_u64(b, cum);
            metrics_putc(b, '\n');
        }
        metrics_put_name(b, fam->name, "_sum", labels, NULL);
        metrics_put_float(b, sum);
        metrics_putc(b, '\n');
        metrics_put_name(b, fam->name, "_count", labels, NULL);
        metrics_put_u64(b, cum);
        metrics_putc(b, '\n');
    }
}


/* Render @stores; the caller keeps them alive (the list lock, or a
 * test). */
static char *
metrics_render(cnd_mstore_t *const *stores, size_t nstores)
{
    cnd_series_t **all = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < nstores; i++) {
        cnd_mstore_t *st = stores[i];
        uv_mutex_lock(&st->lock);
        if (n + st->n > cap) {
            size_t ncap = cap != 0 ? cap : 64;
            while (ncap < n + st->n) {
                ncap *= 2;
            }
            cnd_series_t **p = realloc(all, ncap * sizeof(*all));
            if (p == NULL) {
                uv_mutex_unlock(&st->lock);
                free(all);
                return NULL;
            }
            all = p;
            cap = ncap;
        }
        for (cnd_series_t *s = st->head; s != NULL; s = s->all) {
            all[n++] = s;
        }
        uv_mutex_unlock(&st->lock);
    }
    if (n > 0) {
        qsort(all, n, sizeof(*all), metrics_cmp);
    }

    /* the scratch for bucket sums is as large as the largest family's */
    size_t maxb = 1;
    for (size_t i = 0; i < n; i++) {
        if (all[i]->fam->type == CND_METRIC_HISTOGRAM &&
            all[i]->fam->nbuckets + 1 > maxb) {
            maxb = all[i]->fam->nbuckets + 1;
        }
    }
    uint64_t *counts = malloc(maxb * sizeof(*counts));
    metrics_buf_t b = {0};
    if (counts == NULL || !metrics_reserve(&b, 4096)) {
        free(counts);
        free(b.p);
        free(all);
        return NULL;
    }
    b.p[0] = '\0';
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(all[j]->fam->name, all[i]->fam->name) == 0) {
            j++;
        }
        metrics_put_family(&b, all + i, j - i, counts);
        i = j;
    }
    free(counts);
    free(all);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}


char *
cnd_metrics_render_stores(cnd_mstore_t *const *stores, size_t n)
{
    return metrics_render(stores, n);
}


char *
cnd_metrics_render(void)
{
    uv_once(&metrics_once, metrics_init_once);
    if (!metrics_mu_ok) {
        return NULL;
    }
    uv_mutex_lock(&metrics_mu);
    size_t n = 0;
    for (cnd_mstore_t *st = metrics_stores; st != NULL; st = st->next_store) {
        n++;
    }
    cnd_mstore_t **stores = malloc((n != 0 ? n : 1) * sizeof(*stores));
    char *out = NULL;
    if (stores != NULL) {
        size_t i = 0;
        for (cnd_mstore_t *st = metrics_stores; st != NULL;
             st = st->next_store) {
            stores[i++] = st;
        }
        /* still under the list lock: no store can be freed meanwhile */
        out = metrics_render(stores, n);
        free(stores);
    }
    uv_mutex_unlock(&metrics_mu);
    return out;
}
