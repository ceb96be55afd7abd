/* SPDX-License-Identifier: MIT */
/*
 * plugins/health/health_test.c - the two probe endpoints, health and
 * ready: their Corefile syntax and errors, the lameduck line, /health
 * and its self-probe metrics, and /ready over real HTTP with stand-in
 * plugins whose readiness the test sets.
 *
 * Corefiles go through cnd_conf_load() with the real plugin table.  For
 * /ready, the loaded snapshot's erratic and whoami instances get copies
 * of their plugins with another name and a ready() hook, since no plugin
 * built now has one of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "admin/http.h"
#include "core/conf.h"
#include "core/metrics.h"
#include "util/duration.h"
#include "util/log.h"

static cnd_opts_t opts = {.dns_port = 53};


/* ---- helpers ---------------------------------------------------------- */

/* A TCP port nobody listens on now, on 127.0.0.1. */
static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET};
    socklen_t len = sizeof(in);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    close(fd);
    return ntohs(in.sin_port);
}


/* GET @path from 127.0.0.1:@port: the status (body in @body), or -1 when
 * the connection is refused. */
static int
http_get(int port, const char *path, char *body, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = 5};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in.sin_port = htons((uint16_t)port);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) {
        close(fd);
        return -1;
    }
    char req[128], buf[2048];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t k;
    while (len < sizeof(buf) - 1 &&
           (k = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)k;
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &status), 1);
    const char *b = strstr(buf, "\r\n\r\n");
    assert_non_null(b);
    snprintf(body, size, "%s", b + 4);
    return status;
}


static cnd_conf_t *
load(const char *text)
{
    char err[1024];
    cnd_conf_t *cf =
        cnd_conf_load(&opts, "Corefile", text, strlen(text), err, sizeof(err));
    if (cf == NULL) {
        fail_msg("unexpected error: %s", err);
    }
    return cf;
}


/* The first instance of plugin @name in @cf (in block @srv, if given). */
static cnd_inst_t *
inst_of(cnd_conf_t *cf, const char *name, const cnd_server_t *srv)
{
    for (size_t i = 0; i < cf->ninsts; i++) {
        if (strcmp(cf->insts[i]->plugin->name, name) == 0 &&
            (srv == NULL || cf->insts[i]->srv == srv)) {
            return cf->insts[i];
        }
    }
    fail_msg("no %s instance", name);
    return NULL;
}


static void
start_all(cnd_conf_t *cf)
{
    char err[512];
    cf->err = err;
    cf->errlen = sizeof(err);
    for (size_t i = 0; i < cf->ninsts; i++) {
        cnd_inst_t *in = cf->insts[i];
        if (in->plugin->start != NULL && in->plugin->start(cf, in) != 0) {
            fail_msg("start: %s", err);
        }
    }
    cf->err = NULL;
    cf->errlen = 0;
}


static void
shutdown_all(cnd_conf_t *cf)
{
    for (size_t i = 0; i < cf->ninsts; i++) {
        cnd_inst_t *in = cf->insts[i];
        if (in->plugin->shutdown != NULL) {
            in->plugin->shutdown(in);
        }
    }
}


static void
stop_all(cnd_conf_t *cf)
{
    for (size_t i = cf->ninsts; i-- > 0;) {
        cnd_inst_t *in = cf->insts[i];
        if (in->plugin->stop != NULL) {
            in->plugin->stop(in);
        }
    }
}


/* The log goes to a temporary file; logged() returns what came since the
 * last call. */
static FILE *logf_;
static long logpos;

static int
setup_log(void **state)
{
    (void)state;
    logf_ = tmpfile();
    logpos = 0;
    if (logf_ == NULL) {
        return -1;
    }
    cnd_log_set_fd(fileno(logf_));
    return 0;
}


static int
teardown_log(void **state)
{
    (void)state;
    cnd_log_set_fd(1);
    fclose(logf_);
    return 0;
}


static const char *
logged(void)
{
    static char buf[4096];
    fseek(logf_, logpos, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, logf_);
    buf[n] = '\0';
    logpos += (long)n;
    return buf;
}


/* ---- Corefile --------------------------------------------------------- */

typedef struct {
    const char *body; /* inside ". { ... }", from line 2 */
    const char *err;  /* the whole message, or NULL: loads */
    int64_t lameduck_ns;
} conf_case_t;

/* An error case: the message, and no lameduck. */
#define E(where, msg) "plugin/" where " - Error during parsing: " msg, 0

static const conf_case_t conf_cases[] = {
    /* health */
    {"health", NULL, 0},
    {"health localhost:1234", NULL, 0},
    /* CoreDNS finds these only when it starts; candor at load, so that
     * -validate refuses them too */
    {"health bla:a",
     E("health: Corefile:2", "listen tcp: lookup tcp/a: unknown port (give the "
                             "port as a number, 0-65535)")},
    {"health :99999",
     E("health: Corefile:2", "listen tcp: address 99999: invalid port (a port "
                             "is 0-65535)")},
    {"health name.example:8080",
     E("health: Corefile:2", "listen tcp name.example:8080: host "
                             "name.example is not an IP address (give an IP "
                             "address, localhost, or no host for every "
                             "address: :8080)")},
    {"health [::1]:8080", NULL, 0},
    {"health :8080 {\n  lameduck 4s\n }", NULL, 4 * CND_NS_PER_SEC},
    {"health {\n  lameduck 1m30s\n }", NULL, 90 * CND_NS_PER_SEC},
    {"health {\n  lameduck -1s\n }", NULL, 0},
    {"health :1 {\n  lameduck 2s\n }\n health :2 {\n  lameduck 300ms\n }", NULL,
     300 * CND_NS_PER_MS},
    {"health bla", E("health: Corefile:2", "address bla: missing port in "
                                           "address")},
    {"health bla bla", E("health: Corefile:2", "Wrong argument count or "
                                               "unexpected line ending "
                                               "after 'bla'")},
    {"health ::1:80", E("health: Corefile:2", "address ::1:80: too many "
                                              "colons in address")},
    {"health [::1]", E("health: Corefile:2", "address [::1]: missing port "
                                             "in address")},
    {"health [::1:80", E("health: Corefile:2", "address [::1:80: missing "
                                               "']' in address")},
    {"health [::1]x:80", E("health: Corefile:2", "address [::1]x:80: "
                                                 "missing port in address")},
    {"health [::1]:80:1", E("health: Corefile:2", "address [::1]:80:1: "
                                                  "too many colons in "
                                                  "address")},
    {"health a]:80", E("health: Corefile:2", "address a]:80: unexpected "
                                             "']' in address")},
    {"health a[:80", E("health: Corefile:2", "address a[:80: unexpected "
                                             "'[' in address")},
    {"health {\n  lameduck\n }",
     E("health: Corefile:3", "Wrong argument count or unexpected line "
                             "ending after 'lameduck'")},
    {"health {\n  lameduck 1s 2s\n }",
     E("health: Corefile:3", "Wrong argument count or "
                             "unexpected line ending after "
                             "'2s'")},
    {"health {\n  lameduck a\n }",
     E("health: Corefile:3", "unable to parse lameduck duration value: "
                             "\"a\": time: invalid duration \"a\"")},
    {"health {\n  lameduck 5\n }",
     E("health: Corefile:3", "unable to parse lameduck duration value: "
                             "\"5\": time: missing unit in duration \"5\"")},
    {"health {\n  lameduck 5x\n }",
     E("health: Corefile:3", "unable to parse lameduck duration value: "
                             "\"5x\": time: unknown unit \"x\" in duration "
                             "\"5x\"")},
    {"health {\n  lameduck 1.5.5s\n }",
     E("health: Corefile:3", "unable to parse lameduck duration value: "
                             "\"1.5.5s\": time: missing unit in duration "
                             "\"1.5.5s\"")},
    {"health {\n  lamedudk 4\n }", E("health: Corefile:3", "unknown "
                                                           "property "
                                                           "'lamedudk'")},
    /* ready */
    {"ready", NULL, 0},
    {"ready localhost:1234", NULL, 0},
    {"ready {\n  monitor until-ready\n }", NULL, 0},
    {"ready localhost:1234 {\n  monitor continuously\n }", NULL, 0},
    {"ready bla", E("ready: Corefile:2", "address bla: missing port in "
                                         "address")},
    {"ready localhost:1234 b",
     E("ready: Corefile:2", "Wrong argument count or unexpected line "
                            "ending after 'b'")},
    {"ready {\n  monitor\n }",
     E("ready: Corefile:3", "Wrong argument count or unexpected line "
                            "ending after 'monitor'")},
    {"ready {\n  monitor continuously\n  frobnicate 1\n }",
     E("ready: Corefile:4", "unknown property 'frobnicate'")},
    {"ready {\n  monitor 404\n }", E("ready: Corefile:3", "monitor type "
                                                          "'404' not "
                                                          "supported")},
    {"ready\n ready :1", E("ready: Corefile:3", "this plugin can only be "
                                                "used once per Server "
                                                "Block")},
};


static void
test_conf_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(conf_cases) / sizeof(conf_cases[0]); i++) {
        const conf_case_t *c = &conf_cases[i];
        char text[512], err[1024];
        snprintf(text, sizeof(text), ". {\n %s\n whoami\n}\n", c->body);
        cnd_conf_t *cf = cnd_conf_load(&opts, "Corefile", text, strlen(text),
                                       err, sizeof(err));
        if (c->err == NULL) {
            if (cf == NULL) {
                fail_msg("%s: unexpected error: %s", c->body, err);
            }
            if (cf->lameduck_ns != c->lameduck_ns) {
                fail_msg("%s: lameduck %lld, want %lld", c->body,
                         (long long)cf->lameduck_ns, (long long)c->lameduck_ns);
            }
            cnd_conf_unref(cf);
        } else {
            if (cf != NULL) {
                cnd_conf_unref(cf);
                fail_msg("%s: loaded, want: %s", c->body, c->err);
            }
            if (strcmp(err, c->err) != 0) {
                fail_msg("%s:\n  got  %s\n  want %s", c->body, err, c->err);
            }
        }
    }
}


/* The lameduck line, the duration as Go prints it; none without one. */
static void
test_lameduck_line(void **state)
{
    (void)state;
    static const struct {
        const char *dur, *line;
    } cases[] = {
        {"5s", "[INFO] plugin/health: Going into lameduck mode for 5s\n"},
        {"1.5s", "[INFO] plugin/health: Going into lameduck mode for 1.5s\n"},
        {"500ms", "[INFO] plugin/health: Going into lameduck mode for "
                  "500ms\n"},
        {"90s", "[INFO] plugin/health: Going into lameduck mode for 1m30s\n"},
        {"0s", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 ". {\n health {\n  lameduck %s\n }\n whoami\n}\n",
                 cases[i].dur);
        cnd_conf_t *cf = load(text);
        cnd_inst_t *h = inst_of(cf, "health", NULL);
        logged();
        h->plugin->shutdown(h);
        assert_string_equal(logged(), cases[i].line);
        cnd_conf_unref(cf);
    }
}


/* ---- /health ---------------------------------------------------------- */

static void
loop_stop_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}


/* Run the default loop (where the probe lives) for @ms. */
static void
run_loop(uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(uv_default_loop(), &t);
    uv_timer_start(&t, loop_stop_cb, ms, 0);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}


/* The value of the line starting with @prefix in the metrics, or -1. */
static double
metric(const char *prefix)
{
    char *text = cnd_metrics_render();
    double v = -1;
    assert_non_null(text);
    for (char *l = text; l != NULL && *l != '\0';) {
        char *nl = strchr(l, '\n');
        if (strncmp(l, prefix, strlen(prefix)) == 0 &&
            l[strlen(prefix)] == ' ') {
            v = strtod(l + strlen(prefix) + 1, NULL);
        }
        l = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
    return v;
}


/* 200 "OK" on every address named, whatever else is served; each
 * instance probes itself every second; stop takes it all down. */
static void
test_health_serves_and_probes(void **state)
{
    (void)state;
    int p1 = free_port(), p2 = free_port();
    char text[512], body[256];
    snprintf(text, sizeof(text),
             "a. {\n health 127.0.0.1:%d\n whoami\n}\n"
             "b. {\n health 127.0.0.1:%d\n whoami\n}\n"
             "c. {\n health 127.0.0.1:%d\n prometheus 127.0.0.1:%d\n}\n",
             p1, p2, p1, p1);
    cnd_conf_t *cf = load(text);
    start_all(cf);
    assert_int_equal(http_get(p1, "/health", body, sizeof(body)), 200);
    assert_string_equal(body, "OK");
    assert_int_equal(http_get(p2, "/health", body, sizeof(body)), 200);
    assert_string_equal(body, "OK");
    assert_int_equal(http_get(p1, "/healthz", body, sizeof(body)), 404);

    double before = metric("coredns_health_request_duration_seconds_count");
    assert_true(before >= 0);
    cnd_conf_tickers_start(cf, uv_default_loop());
    run_loop(1500);
    cnd_conf_tickers_stop(cf);
    /* three instances, one probe each after a second */
    assert_true(metric("coredns_health_request_duration_seconds_count") >=
                before + 3);
    assert_true(metric("coredns_health_request_duration_seconds_bucket{le="
                       "\"2.5\"}") >= before + 3);
    assert_int_equal(metric("coredns_health_request_failures_total"), 0);
    assert_string_equal(logged(), "");

    /* shutdown() leaves /health up: it answers through the lameduck */
    shutdown_all(cf);
    assert_int_equal(http_get(p1, "/health", body, sizeof(body)), 200);
    stop_all(cf);
    run_loop(10);
    assert_int_equal(http_get(p1, "/health", body, sizeof(body)), -1);
    assert_int_equal(http_get(p2, "/health", body, sizeof(body)), -1);
    cnd_conf_unref(cf);
}


/* A probe in flight when the snapshot stops is dropped, uncounted. */
static void
test_health_stop_during_probe(void **state)
{
    (void)state;
    int port = free_port();
    char text[256];
    snprintf(text, sizeof(text), ". {\n health 127.0.0.1:%d\n whoami\n}\n",
             port);
    cnd_conf_t *cf = load(text);
    start_all(cf);
    double before = metric("coredns_health_request_duration_seconds_count");
    /* the tick, by hand: the probe connects on the next loop turn */
    cf->tickers->fn(cf->tickers->arg);
    stop_all(cf);
    run_loop(50);
    assert_true(metric("coredns_health_request_duration_seconds_count") ==
                before);
    cnd_conf_unref(cf);
}


/* A stand-in for /health that answers @reply (NULL: says nothing and
 * keeps the connection open until the test is done with it). */
typedef struct {
    int fd;
    const char *reply;
} fake_http_t;

static void *
fake_http_main(void *arg)
{
    fake_http_t *f = arg;
    int c = accept(f->fd, NULL, NULL);
    if (c >= 0 && f->reply != NULL) {
        char buf[512];
        ssize_t n = read(c, buf, sizeof(buf));
        (void)n;
        n = write(c, f->reply, strlen(f->reply));
        (void)n;
        close(c);
    }
    return c >= 0 && f->reply == NULL ? (void *)(intptr_t)c : NULL;
}


/* Probe failures are counted and logged as CoreDNS words them: nothing
 * listening, a reply that is no HTTP, and no reply within 3 s. */
static void
test_health_probe_failures(void **state)
{
    (void)state;
    int port = free_port();
    char text[256], addr[64], url[128], want[512];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(url, sizeof(url), "http://%s/health", addr);
    snprintf(text, sizeof(text), ". {\n health %s\n whoami\n}\n", addr);
    cnd_conf_t *cf = load(text);
    start_all(cf);
    cnd_http_unserve(addr, "/health"); /* the endpoint goes away */
    double fails = metric("coredns_health_request_failures_total");
    double count = metric("coredns_health_request_duration_seconds_count");
    cnd_ticker_t *tick = cf->tickers;
    logged();

    tick->fn(tick->arg);
    run_loop(200);
    snprintf(want, sizeof(want),
             "[WARNING] plugin/health: Local health request to \"%s\" "
             "failed: Get \"%s\": dial tcp %s: connect: connection "
             "refused\n",
             url, url, addr);
    assert_string_equal(logged(), want);
    assert_true(metric("coredns_health_request_failures_total") == fails + 1);

    static const struct {
        const char *reply, *why;
        uint64_t wait_ms;
    } cases[] = {
        {"SSH-2.0-OpenSSH\r\n\r\n", "malformed HTTP response", 300},
        {"", "EOF", 300},
        {NULL,
         "context deadline exceeded (Client.Timeout exceeded while "
         "awaiting headers)",
         3300},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        struct sockaddr_in in = {.sin_family = AF_INET};
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        in.sin_port = htons((uint16_t)port);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
        assert_int_equal(listen(fd, 4), 0);
        fake_http_t f = {fd, cases[i].reply};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, fake_http_main, &f), 0);
        tick->fn(tick->arg);
        run_loop(cases[i].wait_ms);
        void *held;
        pthread_join(th, &held);
        if (held != NULL) {
            close((int)(intptr_t)held);
        }
        close(fd);
        snprintf(want, sizeof(want),
                 "[WARNING] plugin/health: Local health request to \"%s\" "
                 "failed: Get \"%s\": %s\n",
                 url, url, cases[i].why);
        assert_string_equal(logged(), want);
    }
    assert_true(metric("coredns_health_request_failures_total") == fails + 4);
    assert_true(metric("coredns_health_request_duration_seconds_count") ==
                count + 4);
    stop_all(cf); /* unserves nothing more: the daemon is gone already */
    run_loop(10);
    cnd_conf_unref(cf);
}


/* A port in use fails start() with the socket's reason. */
static void
test_health_port_in_use(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in = {.sin_family = AF_INET};
    socklen_t len = sizeof(in);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    char text[256], err[512], want[256];
    snprintf(text, sizeof(text), ". {\n health 127.0.0.1:%d\n whoami\n}\n",
             ntohs(in.sin_port));
    cnd_conf_t *cf = load(text);
    cnd_inst_t *h = inst_of(cf, "health", NULL);
    cf->err = err;
    cf->errlen = sizeof(err);
    assert_int_equal(h->plugin->start(cf, h), -1);
    snprintf(want, sizeof(want),
             "plugin/health: Corefile:2 - Error during parsing: listen tcp "
             "127.0.0.1:%d: bind: address already in use",
             ntohs(in.sin_port));
    assert_string_equal(err, want);
    h->plugin->stop(h); /* after a failed start: nothing to undo */
    cnd_conf_unref(cf);
    close(fd);
}


/* ---- /ready ----------------------------------------------------------- */

/* A stand-in plugin: a copy of a real one, renamed, with a ready() hook
 * answering what the test sets.  The hook runs on the HTTP thread. */
typedef struct {
    cnd_plugin_t p;
    atomic_int ready;
    atomic_int asked;
} fake_t;

static int
fake_ready(cnd_inst_t *self)
{
    fake_t *f = (fake_t *)self->plugin;
    atomic_fetch_add(&f->asked, 1);
    return atomic_load(&f->ready);
}


static void
fake_as(fake_t *f, cnd_inst_t *in, const char *name)
{
    f->p = *in->plugin;
    f->p.name = name;
    f->p.ready = fake_ready;
    atomic_init(&f->ready, 0);
    atomic_init(&f->asked, 0);
    in->plugin = &f->p;
}


/* The /ready of a next snapshot, for the test below. */
static int
next_ready(void *arg, char **body, size_t *len, const char **ctype)
{
    (void)arg;
    (void)ctype;
    *body = strdup("next");
    *len = 4;
    return 200;
}


/*
 * Block a. (until-ready) has zeta and alpha, block b. (no ready) has
 * beta, block c. (continuously, another address) has alpha again: only
 * the blocks that enable ready count, names are sorted and listed once,
 * and every address says the same.
 */
static void
test_ready_endpoint(void **state)
{
    (void)state;
    int p1 = free_port(), p2 = free_port();
    char text[512], body[256];
    snprintf(text, sizeof(text),
             "a. {\n ready 127.0.0.1:%d\n erratic\n whoami\n}\n"
             "b. {\n erratic\n}\n"
             "c. {\n ready 127.0.0.1:%d {\n  monitor continuously\n }\n"
             " erratic\n}\n",
             p1, p2);
    cnd_conf_t *cf = load(text);
    static fake_t zeta, alpha_a, beta, alpha_c;
    fake_as(&zeta, inst_of(cf, "erratic", &cf->servers[0]), "zeta");
    fake_as(&alpha_a, inst_of(cf, "whoami", &cf->servers[0]), "alpha");
    fake_as(&beta, inst_of(cf, "erratic", &cf->servers[1]), "beta");
    fake_as(&alpha_c, inst_of(cf, "erratic", &cf->servers[2]), "alpha");
    start_all(cf);
    logged();

    assert_int_equal(http_get(p1, "/ready", body, sizeof(body)), 503);
    assert_string_equal(body, "alpha,zeta");
    assert_string_equal(logged(), "[INFO] plugin/ready: Plugins not ready: "
                                  "\"alpha,zeta\"\n");
    assert_int_equal(http_get(p2, "/ready", body, sizeof(body)), 503);
    assert_string_equal(body, "alpha,zeta");
    assert_int_equal(atomic_load(&beta.asked), 0);
    logged();

    atomic_store(&zeta.ready, 1);
    assert_int_equal(http_get(p1, "/ready", body, sizeof(body)), 503);
    assert_string_equal(body, "alpha");
    atomic_store(&alpha_a.ready, 1);
    atomic_store(&alpha_c.ready, 1);
    assert_int_equal(http_get(p1, "/ready", body, sizeof(body)), 200);
    assert_string_equal(body, "OK");
    assert_string_equal(logged(),
                        "[INFO] plugin/ready: Plugins not ready: \"alpha\"\n");

    /* until-ready: zeta and a.'s alpha are not asked again; c.'s alpha
     * (continuously) is. */
    int zeta_asked = atomic_load(&zeta.asked);
    atomic_store(&zeta.ready, 0);
    atomic_store(&alpha_a.ready, 0);
    assert_int_equal(http_get(p2, "/ready", body, sizeof(body)), 200);
    atomic_store(&alpha_c.ready, 0);
    assert_int_equal(http_get(p2, "/ready", body, sizeof(body)), 503);
    assert_string_equal(body, "alpha");
    assert_int_equal(atomic_load(&zeta.asked), zeta_asked);
    logged();

    /* SIGTERM: /ready goes away at once on every address */
    shutdown_all(cf);
    assert_int_equal(http_get(p1, "/ready", body, sizeof(body)), -1);
    assert_int_equal(http_get(p2, "/ready", body, sizeof(body)), -1);
    /* A next snapshot serving /ready on p1 is not taken down by this
     * one's stop(): shutdown() already let go. */
    char addr[64], err[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", p1);
    assert_int_equal(
        cnd_http_serve(addr, "/ready", next_ready, NULL, err, sizeof(err)), 0);
    stop_all(cf);
    assert_int_equal(http_get(p1, "/ready", body, sizeof(body)), 200);
    assert_string_equal(body, "next");
    cnd_http_unserve(addr, "/ready");
    assert_int_equal(http_get(p1, "/ready", body, sizeof(body)), -1);
    cnd_conf_unref(cf);
    assert_string_equal(logged(), "");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_cases),
        cmocka_unit_test(test_lameduck_line),
        cmocka_unit_test(test_health_serves_and_probes),
        cmocka_unit_test(test_health_stop_during_probe),
        cmocka_unit_test(test_health_probe_failures),
        cmocka_unit_test(test_health_port_in_use),
        cmocka_unit_test(test_ready_endpoint),
    };
    return cmocka_run_group_tests(tests, setup_log, teardown_log);
}
