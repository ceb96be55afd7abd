/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_metrics.c - metric stores and the Prometheus text they
 * render: sums across stores, escaping, histograms, Go's float format,
 * the exact output of a small example (also fed to promtool when it is
 * installed), and counting on one thread while another scrapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "core/metrics.h"

static const char *const lbl_server_zone[] = {"server", "zone", NULL};
static const char *const lbl_server[] = {"server", NULL};

static const cnd_mfamily_t fam_req = {
    .name = "test_dns_requests_total",
    .help = "Counter of DNS requests made per zone.",
    .type = CND_METRIC_COUNTER,
    .labels = lbl_server_zone,
};

static const cnd_mfamily_t fam_temp = {
    .name = "test_temperature_celsius",
    .help = "Current temperature.",
    .type = CND_METRIC_GAUGE,
};

static const double small_buckets[] = {0.00025, 0.512, 100, 1e6};

static const cnd_mfamily_t fam_dur = {
    .name = "test_request_duration_seconds",
    .help = "Histogram of the time each request took.",
    .type = CND_METRIC_HISTOGRAM,
    .labels = lbl_server,
    .buckets = small_buckets,
    .nbuckets = 4,
};

/* Never given a series: must not be printed. */
static const cnd_mfamily_t fam_unused = {
    .name = "test_unused_total",
    .help = "Nothing.",
    .type = CND_METRIC_COUNTER,
};

static const cnd_mfamily_t fam_time = {
    .name = "test_time_seconds",
    .help = "CoreDNS's duration buckets.",
    .type = CND_METRIC_HISTOGRAM,
    .buckets = cnd_buckets_time,
    .nbuckets = 16,
};

static const cnd_mfamily_t fam_size = {
    .name = "test_size_bytes",
    .help = "CoreDNS's size buckets.",
    .type = CND_METRIC_HISTOGRAM,
    .buckets = cnd_buckets_size,
    .nbuckets = 14,
};

static const double odd_buckets[] = {
    1.25e-05, 0.00025, 0.512, 8.192, 100, 123456, 1e6, 1.23456789e8, 1e21};

static const cnd_mfamily_t fam_odd = {
    .name = "test_odd_seconds",
    .help = "Bounds that exercise Go's float format.",
    .type = CND_METRIC_HISTOGRAM,
    .buckets = odd_buckets,
    .nbuckets = 9,
};

/* The small example: two stores, every type, families added out of
 * order. */
static const char example_text[] =
    "# HELP test_dns_requests_total Counter of DNS requests made per zone.\n"
    "# TYPE test_dns_requests_total counter\n"
    "test_dns_requests_total{server=\"dns://:53\",zone=\"a.org.\"} 1\n"
    "test_dns_requests_total{server=\"dns://:53\",zone=\"example.org.\"} 7\n"
    "# HELP test_request_duration_seconds Histogram of the time each "
    "request took.\n"
    "# TYPE test_request_duration_seconds histogram\n"
    "test_request_duration_seconds_bucket{server=\"dns://:53\","
    "le=\"0.00025\"} 1\n"
    "test_request_duration_seconds_bucket{server=\"dns://:53\","
    "le=\"0.512\"} 2\n"
    "test_request_duration_seconds_bucket{server=\"dns://:53\","
    "le=\"100\"} 3\n"
    "test_request_duration_seconds_bucket{server=\"dns://:53\","
    "le=\"1e+06\"} 3\n"
    "test_request_duration_seconds_bucket{server=\"dns://:53\","
    "le=\"+Inf\"} 4\n"
    "test_request_duration_seconds_sum{server=\"dns://:53\"} "
    "2.00010050025e+06\n"
    "test_request_duration_seconds_count{server=\"dns://:53\"} 4\n"
    "# HELP test_temperature_celsius Current temperature.\n"
    "# TYPE test_temperature_celsius gauge\n"
    "test_temperature_celsius -5\n";


static void
fill_example(cnd_mstore_t *a, cnd_mstore_t *b)
{
    /* the gauge and histogram first: output order must not follow this */
    cnd_gauge_set(cnd_metric_series(a, &fam_temp, NULL), 20);
    cnd_gauge_add(cnd_metric_series(b, &fam_temp, NULL), -25);
    cnd_series_t *ha = cnd_metric_series(a, &fam_dur, "dns://:53", NULL);
    cnd_series_t *hb = cnd_metric_series(b, &fam_dur, "dns://:53", NULL);
    cnd_histogram_observe(ha, 0.00025);
    cnd_histogram_observe(ha, 0.5);
    cnd_histogram_observe(hb, 100);
    cnd_histogram_observe(hb, 2e6);
    cnd_counter_add(
        cnd_metric_series(a, &fam_req, "dns://:53", "example.org.", NULL), 3);
    cnd_counter_add(
        cnd_metric_series(b, &fam_req, "dns://:53", "example.org.", NULL), 4);
    cnd_counter_add(cnd_metric_series(a, &fam_req, "dns://:53", "a.org.", NULL),
                    1);
}


static char *
render2(cnd_mstore_t *a, cnd_mstore_t *b)
{
    cnd_mstore_t *stores[2] = {a, b};
    char *out = cnd_metrics_render_stores(stores, b != NULL ? 2 : 1);
    assert_non_null(out);
    return out;
}


static void
test_counter_sums(void **state)
{
    cnd_mstore_t *a = cnd_mstore_new();
    cnd_mstore_t *b = cnd_mstore_new();
    assert_non_null(a);
    assert_non_null(b);
    cnd_series_t *s1 = cnd_metric_series(a, &fam_req, "x", "y.", NULL);
    cnd_series_t *s2 = cnd_metric_series(b, &fam_req, "x", "y.", NULL);
    assert_non_null(s1);
    assert_ptr_not_equal(s1, s2);
    /* the same labels again give the same series */
    assert_ptr_equal(cnd_metric_series(a, &fam_req, "x", "y.", NULL), s1);
    assert_string_equal(s1->labels, "server=\"x\",zone=\"y.\"");
    cnd_counter_add(s1, 3);
    cnd_counter_add(s1, 2);
    cnd_counter_add(s2, 10);
    char *out = render2(a, b);
    assert_non_null(strstr(out, "test_dns_requests_total{server=\"x\","
                                "zone=\"y.\"} 15\n"));
    /* summed into one line */
    assert_null(strstr(strstr(out, "} 15\n") + 1, "zone=\"y.\""));
    assert_null(strstr(out, "test_unused_total"));
    free(out);
    cnd_mstore_free(a);
    cnd_mstore_free(b);
}


static void
test_labels(void **state)
{
    cnd_mstore_t *st = cnd_mstore_new();
    cnd_series_t *s =
        cnd_metric_series(st, &fam_req, "q\"uo\\te", "new\nline", NULL);
    assert_string_equal(s->labels, "server=\"q\\\"uo\\\\te\","
                                   "zone=\"new\\nline\"");
    /* missing values are "" */
    cnd_series_t *m = cnd_metric_series(st, &fam_req, "only", NULL);
    assert_string_equal(m->labels, "server=\"only\",zone=\"\"");
    assert_ptr_equal(cnd_metric_series(st, &fam_req, "only", "", NULL), m);
    /* no labels: an empty string and no braces */
    cnd_series_t *g = cnd_metric_series(st, &fam_temp, NULL);
    assert_string_equal(g->labels, "");
    cnd_gauge_set(g, 7);
    cnd_counter_add(s, 1);
    char *out = render2(st, NULL);
    assert_non_null(strstr(out, "\ntest_temperature_celsius 7\n"));
    assert_non_null(strstr(out, "test_dns_requests_total{server=\"q\\\"uo"
                                "\\\\te\",zone=\"new\\nline\"} 1\n"));
    /* "only" sorts before "q..." */
    assert_true(strstr(out, "\"only\"") < strstr(out, "\"q\\\""));
    free(out);
    cnd_mstore_free(st);
}


static void
test_gauge_negative(void **state)
{
    cnd_mstore_t *a = cnd_mstore_new();
    cnd_mstore_t *b = cnd_mstore_new();
    cnd_gauge_set(cnd_metric_series(a, &fam_temp, NULL), -40);
    cnd_series_t *g = cnd_metric_series(b, &fam_temp, NULL);
    cnd_gauge_add(g, 5);
    cnd_gauge_add(g, -2);
    char *out = render2(a, b);
    assert_string_equal(out, "# HELP test_temperature_celsius Current "
                             "temperature.\n"
                             "# TYPE test_temperature_celsius gauge\n"
                             "test_temperature_celsius -37\n");
    free(out);
    cnd_mstore_free(a);
    cnd_mstore_free(b);
}


static void
test_histogram(void **state)
{
    assert_true(cnd_buckets_time[0] == 0.00025);
    assert_true(cnd_buckets_time[15] == 8.192);
    for (int k = 1; k < 16; k++) {
        assert_true(cnd_buckets_time[k] == 2 * cnd_buckets_time[k - 1]);
    }
    cnd_mstore_t *st = cnd_mstore_new();
    cnd_series_t *s = cnd_metric_series(st, &fam_time, NULL);
    assert_non_null(s->bucket);
    cnd_histogram_observe(s, 0);       /* below the first bound */
    cnd_histogram_observe(s, 0.00025); /* exactly on the first */
    cnd_histogram_observe(s, 0.0003);  /* into the second */
    cnd_histogram_observe(s, 0.512);   /* exactly on one inside */
    cnd_histogram_observe(s, 8.192);   /* exactly on the last */
    cnd_histogram_observe(s, 8.193);   /* above it: +Inf */
    cnd_histogram_observe(s, 1e9);
    static const uint64_t want[17] = {2, 1, 0, 0, 0, 0, 0, 0, 0,
                                      0, 0, 1, 0, 0, 0, 1, 2};
    for (int i = 0; i < 17; i++) {
        assert_int_equal(atomic_load(&s->bucket[i]), want[i]);
    }
    cnd_series_t *z = cnd_metric_series(st, &fam_size, NULL);
    cnd_histogram_observe(z, 0);
    cnd_histogram_observe(z, 512);
    cnd_histogram_observe(z, 64001);

    char *out = render2(st, NULL);
    static const char *const lines[] = {
        "# TYPE test_time_seconds histogram\n",
        "test_time_seconds_bucket{le=\"0.00025\"} 2\n",
        "test_time_seconds_bucket{le=\"0.0005\"} 3\n",
        "test_time_seconds_bucket{le=\"0.001\"} 3\n",
        "test_time_seconds_bucket{le=\"0.256\"} 3\n",
        "test_time_seconds_bucket{le=\"0.512\"} 4\n",
        "test_time_seconds_bucket{le=\"1.024\"} 4\n",
        "test_time_seconds_bucket{le=\"8.192\"} 5\n",
        "test_time_seconds_bucket{le=\"+Inf\"} 7\n",
        "test_time_seconds_count 7\n",
        "test_size_bytes_bucket{le=\"0\"} 1\n",
        "test_size_bytes_bucket{le=\"511\"} 1\n",
        "test_size_bytes_bucket{le=\"1023\"} 2\n",
        "test_size_bytes_bucket{le=\"8291\"} 2\n",
        "test_size_bytes_bucket{le=\"64000\"} 2\n",
        "test_size_bytes_bucket{le=\"+Inf\"} 3\n",
        "test_size_bytes_sum 64513\n",
        "test_size_bytes_count 3\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (strstr(out, lines[i]) == NULL) {
            fail_msg("missing %s in\n%s", lines[i], out);
        }
    }
    /* _bucket lines, then _sum, then _count; families by name */
    assert_true(strstr(out, "test_time_seconds_bucket{le=\"+Inf\"}") <
                strstr(out, "test_time_seconds_sum "));
    assert_true(strstr(out, "test_time_seconds_sum ") <
                strstr(out, "test_time_seconds_count "));
    assert_true(strstr(out, "# HELP test_size_bytes") <
                strstr(out, "# HELP test_time_seconds"));
    free(out);
    cnd_mstore_free(st);
}


static void
test_float_format(void **state)
{
    cnd_mstore_t *st = cnd_mstore_new();
    cnd_series_t *s = cnd_metric_series(st, &fam_odd, NULL);
    cnd_histogram_observe(s, 0.1);
    cnd_histogram_observe(s, 0.2);
    char *out = render2(st, NULL);
    /* what Go's strconv.FormatFloat(v, 'g', -1, 64) writes */
    static const char *const les[] = {
        "le=\"1.25e-05\"} 0\n",
        "le=\"0.00025\"} 0\n",
        "le=\"0.512\"} 2\n",
        "le=\"8.192\"} 2\n",
        "le=\"100\"} 2\n",
        "le=\"123456\"} 2\n",
        "le=\"1e+06\"} 2\n",
        "le=\"1.23456789e+08\"} 2\n",
        "le=\"1e+21\"} 2\n",
        "le=\"+Inf\"} 2\n",
        "test_odd_seconds_sum 0.30000000000000004\n",
    };
    for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
        if (strstr(out, les[i]) == NULL) {
            fail_msg("missing %s in\n%s", les[i], out);
        }
    }
    free(out);
    cnd_mstore_free(st);

    /* negative and small sums */
    st = cnd_mstore_new();
    s = cnd_metric_series(st, &fam_odd, NULL);
    cnd_histogram_observe(s, -0.5);
    out = render2(st, NULL);
    assert_non_null(strstr(out, "test_odd_seconds_sum -0.5\n"));
    free(out);
    cnd_mstore_free(st);
}


static void
test_example_exact(void **state)
{
    cnd_mstore_t *a = cnd_mstore_new();
    cnd_mstore_t *b = cnd_mstore_new();
    (void)fam_unused;
    fill_example(a, b);
    char *out = render2(a, b);
    assert_string_equal(out, example_text);
    free(out);
    /* an empty store renders as nothing, not NULL */
    cnd_mstore_t *e = cnd_mstore_new();
    out = render2(e, NULL);
    assert_string_equal(out, "");
    free(out);
    cnd_mstore_free(e);
    cnd_mstore_free(a);
    cnd_mstore_free(b);
}


static void
test_registry(void **state)
{
    cnd_mstore_t *a = cnd_mstore_new();
    cnd_mstore_t *b = cnd_mstore_new();
    fill_example(a, b);
    assert_int_equal(cnd_metrics_add_store(a), 0);
    assert_int_equal(cnd_metrics_add_store(b), 0);
    assert_int_equal(cnd_metrics_add_store(b), 0); /* twice is once */
    char *out = cnd_metrics_render();
    assert_non_null(out);
    assert_string_equal(out, example_text);
    free(out);
    cnd_metrics_remove_store(a);
    out = cnd_metrics_render();
    assert_non_null(strstr(out, "zone=\"example.org.\"} 4\n"));
    assert_null(strstr(out, "a.org."));
    free(out);
    /* freeing a listed store takes it off the list */
    cnd_mstore_free(b);
    out = cnd_metrics_render();
    assert_string_equal(out, "");
    free(out);
    cnd_mstore_free(a);
}


static void
test_promtool(void **state)
{
    if (access("/usr/bin/promtool", X_OK) != 0) {
        skip();
    }
    cnd_mstore_t *a = cnd_mstore_new();
    cnd_mstore_t *b = cnd_mstore_new();
    fill_example(a, b);
    cnd_counter_add(
        cnd_metric_series(a, &fam_req, "q\"uo\\te", "new\nline", NULL), 2);
    cnd_histogram_observe(cnd_metric_series(b, &fam_time, NULL), 0.01);
    cnd_histogram_observe(cnd_metric_series(b, &fam_size, NULL), 300);
    char *out = render2(a, b);

    char path[] = "/tmp/candor-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(out);
    assert_int_equal(write(fd, out, len), (ssize_t)len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        fail_msg("promtool check metrics: status %d for\n%s", rc, out);
    }
    free(out);
    cnd_mstore_free(a);
    cnd_mstore_free(b);
}


#define MT_COUNT 1000000

static const cnd_mfamily_t fam_mt = {
    .name = "test_mt_total",
    .help = "Counted on another thread.",
    .type = CND_METRIC_COUNTER,
};

typedef struct {
    cnd_mstore_t *st;
    atomic_bool started;
} mt_arg_t;


static void
mt_count(void *p)
{
    mt_arg_t *arg = p;
    /* the store's own thread creates its series, racing the scrapes */
    cnd_series_t *s = cnd_metric_series(arg->st, &fam_mt, NULL);
    atomic_store(&arg->started, true);
    for (int i = 0; i < MT_COUNT; i++) {
        cnd_counter_add(s, 1);
    }
}


static void
test_threads(void **state)
{
    mt_arg_t arg = {.st = cnd_mstore_new()};
    atomic_init(&arg.started, false);
    assert_int_equal(cnd_metrics_add_store(arg.st), 0);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, mt_count, &arg), 0);
    while (!atomic_load(&arg.started)) {
        uv_sleep(0);
    }
    unsigned long last = 0;
    for (int i = 0; i < 100; i++) {
        char *out = cnd_metrics_render();
        assert_non_null(out);
        const char *p = strstr(out, "\ntest_mt_total ");
        assert_non_null(p);
        unsigned long v = strtoul(p + strlen("\ntest_mt_total "), NULL, 10);
        /* one writer: the scrape never sees the count go back */
        assert_true(v >= last && v <= MT_COUNT);
        last = v;
        free(out);
    }
    assert_int_equal(uv_thread_join(&t), 0);
    char *out = cnd_metrics_render();
    assert_string_equal(out, "# HELP test_mt_total Counted on another "
                             "thread.\n"
                             "# TYPE test_mt_total counter\n"
                             "test_mt_total 1000000\n");
    free(out);
    cnd_mstore_free(arg.st);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_sums),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_gauge_negative),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_float_format),
        cmocka_unit_test(test_example_exact),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_promtool),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
