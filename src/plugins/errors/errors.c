/* SPDX-License-Identifier: MIT */
/*
 * plugins/errors/errors.c - log every failure with its cause.
 *
 * On the way back, a request that ends in an error rcode with a failure
 * record gets CoreDNS's line:
 *
 *     [ERROR] plugin/errors: 2 example.org. A: forward: <cause>
 *
 * where the cause is the same record the client's EDE carries.
 *
 * "consolidate DURATION REGEXP [LEVEL] [show_first]" folds a burst: the
 * first matching error starts a window on the worker that saw it; errors
 * matching in the window are counted, not logged, and when the window
 * closes that worker logs "N errors like 'REGEXP' occurred in last DUR"
 * (at LEVEL, default error).  With show_first the first one is logged at
 * once and a window of one says nothing more.  The count is shared by all
 * workers (an atomic in the config); each worker owns the timers of the
 * windows it started.  Pending counts are flushed at shutdown.
 */
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "dns/msg.h"
#include "util/duration.h"
#include "util/log.h"

#define ERRORS_MAX_PATTERNS 32
#define ERRORS_MAX_REGEXP   10000

/* One consolidate line.  Config lifetime; count shared by workers. */
typedef struct {
    regex_t re;
    const char *src; /* as written, for the summary      */
    int64_t period_ns;
    cnd_log_level_t level;
    bool show_first;
    atomic_uint count; /* matches in the current window    */
} errors_pattern_t;

/* The plugin's config.  Config lifetime; only the patterns' counts change
 * (atomics). */
typedef struct {
    errors_pattern_t pats[ERRORS_MAX_PATTERNS];
    size_t npats;
    bool stacktrace;
} errors_conf_t;

/* A worker's window timers, one per pattern.  Worker lifetime. */
typedef struct errors_worker_s errors_worker_t;
typedef struct {
    uv_timer_t timer;
    errors_pattern_t *pat;
    errors_worker_t *ew;
    bool active; /* this worker started the window    */
} errors_timer_t;

struct errors_worker_s {
    size_t npats;
    size_t open; /* timers not yet closed             */
    errors_timer_t t[];
};


/* Go's RE2 classes that POSIX ERE lacks, rewritten: \d \w \s and their
 * negations.  Returns a copy in the config arena. */
static char *
errors_regex_posix(cnd_conf_t *cf, const char *re)
{
    static const struct {
        char c;
        const char *posix;
    } cls[] = {
        {'d', "[0-9]"},         {'D', "[^0-9]"},      {'w', "[A-Za-z0-9_]"},
        {'W', "[^A-Za-z0-9_]"}, {'s', "[[:space:]]"}, {'S', "[^[:space:]]"},
    };
    size_t n = strlen(re);
    char *out = cnd_arena_alloc(cnd_conf_arena(cf), n * 14 + 1);
    if (out == NULL) {
        return NULL;
    }
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '\\' && i + 1 < n) {
            bool done = false;
            for (size_t k = 0; k < sizeof(cls) / sizeof(cls[0]); k++) {
                if (re[i + 1] == cls[k].c) {
                    o += sprintf(o, "%s", cls[k].posix);
                    done = true;
                }
            }
            if (done) {
                i++;
                continue;
            }
            *o++ = re[i++];
        }
        *o++ = re[i];
    }
    *o = '\0';
    return out;
}


static int
errors_consolidate(cnd_conf_t *cf, cnd_disp_t *d, errors_conf_t *c)
{
    const char *args[5];
    size_t n = cnd_disp_args(d, args, 5);
    if (n < 2 || n > 4) {
        return cnd_disp_arg_err(d);
    }
    if (c->npats == ERRORS_MAX_PATTERNS) {
        return cnd_disp_err(d, "more than %d consolidate lines",
                            ERRORS_MAX_PATTERNS);
    }
    errors_pattern_t *p = &c->pats[c->npats];
    if (cnd_duration_parse(args[0], &p->period_ns) != 0 || p->period_ns <= 0) {
        return cnd_disp_err(d, "time: invalid duration \"%s\"", args[0]);
    }
    if (strlen(args[1]) > ERRORS_MAX_REGEXP) {
        return cnd_disp_err(d, "regexp too long (more than %d characters)",
                            ERRORS_MAX_REGEXP);
    }
    char *posix = errors_regex_posix(cf, args[1]);
    int rc = posix != NULL ? regcomp(&p->re, posix, REG_EXTENDED | REG_NOSUB)
                           : REG_ESPACE;
    if (rc != 0) {
        char msg[128];
        regerror(rc, &p->re, msg, sizeof(msg));
        return cnd_disp_err(d, "error parsing regexp: %s: `%s`", msg, args[1]);
    }
    p->src = args[1];
    p->level = CND_LOG_ERROR;
    c->npats++; /* compiled: fini() frees it */
    for (size_t i = 2; i < n; i++) {
        static const struct {
            const char *name;
            cnd_log_level_t level;
        } levels[] = {{"warning", CND_LOG_WARNING},
                      {"error", CND_LOG_ERROR},
                      {"info", CND_LOG_INFO},
                      {"debug", CND_LOG_DEBUG},
                      {NULL, 0}};
        if (strcmp(args[i], "show_first") == 0) {
            p->show_first = true;
            continue;
        }
        if (i != 2) {
            return cnd_disp_err(d, "unknown option in consolidate: %s",
                                args[i]);
        }
        size_t k = 0;
        while (levels[k].name && strcmp(levels[k].name, args[i]) != 0) {
            k++;
        }
        if (levels[k].name == NULL) {
            return cnd_disp_err(d,
                                "unknown log level argument in consolidate: "
                                "%s",
                                args[i]);
        }
        p->level = levels[k].level;
    }
    atomic_init(&p->count, 0);
    return 0;
}


static int
errors_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    errors_conf_t *c = conf;
    cnd_disp_next(d); /* "errors" (once per block) */
    const char *args[2];
    size_t n = cnd_disp_args(d, args, 2);
    if (n == 1 && strcmp(args[0], "stdout") != 0) {
        return cnd_disp_err(d, "invalid log file: %s", args[0]);
    }
    if (n > 1) {
        return cnd_disp_arg_err(d);
    }
    while (cnd_disp_next_block(d)) {
        const char *prop = cnd_disp_val(d);
        if (strcmp(prop, "stacktrace") == 0) {
            c->stacktrace = true; /* C has no panics to trace */
        } else if (strcmp(prop, "consolidate") == 0) {
            if (errors_consolidate(cf, d, c) != 0) {
                return -1;
            }
        } else {
            /* CoreDNS's exact wording for an unknown property. */
            snprintf(d->err, d->errlen,
                     "%s:%d - Syntax error: Unexpected token '%s', "
                     "expecting 'Unknown field %s'",
                     cnd_disp_file(d), cnd_disp_line(d), prop, prop);
            return -1;
        }
    }
    return 0;
}


static void
errors_fini(cnd_inst_t *self)
{
    errors_conf_t *c = self->conf;
    for (size_t i = 0; i < c->npats; i++) {
        regfree(&c->pats[i].re);
    }
}


/* Log the window's count of pattern @p and start a new window. */
static void
errors_flush(errors_pattern_t *p)
{
    unsigned n = atomic_exchange(&p->count, 0);
    if (n == 0 || (p->show_first && n == 1)) {
        return;
    }
    char dur[32];
    cnd_log(p->level, "errors", "%u errors like '%s' occurred in last %s", n,
            p->src, cnd_duration_format(p->period_ns, dur, sizeof(dur)));
}


static void
errors_window_cb(uv_timer_t *h)
{
    errors_timer_t *t = h->data;
    t->active = false;
    errors_flush(t->pat);
}


static int
errors_worker_init(cnd_worker_t *w, cnd_inst_t *self, void **wdata)
{
    errors_conf_t *c = self->conf;
    errors_worker_t *ew =
        calloc(1, sizeof(*ew) + c->npats * sizeof(errors_timer_t));
    if (ew == NULL) {
        return -1;
    }
    ew->npats = c->npats;
    for (size_t i = 0; i < c->npats; i++) {
        uv_timer_init(cnd_worker_loop(w), &ew->t[i].timer);
        ew->t[i].timer.data = &ew->t[i];
        ew->t[i].pat = &c->pats[i];
        ew->t[i].ew = ew;
    }
    *wdata = ew;
    return 0;
}


static void
errors_timer_closed(uv_handle_t *h)
{
    errors_worker_t *ew = ((errors_timer_t *)h->data)->ew;
    if (--ew->open == 0) {
        free(ew);
    }
}


static void
errors_worker_fini(cnd_worker_t *w, cnd_inst_t *self, void *wdata)
{
    (void)w;
    (void)self;
    errors_worker_t *ew = wdata;
    if (ew->npats == 0) {
        free(ew);
        return;
    }
    ew->open = ew->npats;
    for (size_t i = 0; i < ew->npats; i++) {
        if (ew->t[i].active) {
            errors_flush(ew->t[i].pat); /* pending counts at shutdown */
        }
        uv_close((uv_handle_t *)&ew->t[i].timer, errors_timer_closed);
    }
}


static void
errors_response(cnd_req_t *r, cnd_inst_t *self)
{
    errors_conf_t *c = self->conf;
    const cnd_fail_t *f = cnd_req_failure(r);
    uint16_t rcode = cnd_req_rcode(r);
    if (f == NULL || rcode == KNOT_RCODE_NOERROR ||
        rcode == KNOT_RCODE_NXDOMAIN) {
        return; /* no failure, or one that was recovered from */
    }
    char text[512], name[KNOT_DNAME_TXT_MAXLEN + 1], type[16];
    snprintf(text, sizeof(text), "%s: %s", f->plugin, f->text);
    knot_dname_to_str(name, r->qname, sizeof(name));
    cnd_type_str(r->qtype, type, sizeof(type));

    for (size_t i = 0; i < c->npats; i++) {
        errors_pattern_t *p = &c->pats[i];
        if (regexec(&p->re, text, 0, NULL, 0) != 0) {
            continue;
        }
        if (atomic_fetch_add(&p->count, 1) == 0) {
            /* First of a window: this worker times it. */
            errors_worker_t *ew = cnd_req_wdata(r, self);
            errors_timer_t *t = &ew->t[i];
            t->active = true;
            uv_timer_start(&t->timer, errors_window_cb,
                           (uint64_t)(p->period_ns / CND_NS_PER_MS), 0);
            if (p->show_first) {
                cnd_log(p->level, "errors", "%u %s %s: %s", rcode, name, type,
                        text);
            }
        }
        return;
    }
    cnd_log(CND_LOG_ERROR, "errors", "%u %s %s: %s", rcode, name, type, text);
}


const cnd_plugin_t cnd_plugin_errors = {
    .name = "errors",
    .flags = CND_PLUGIN_ONCE,
    .conf_size = sizeof(errors_conf_t),
    .parse = errors_parse,
    .fini = errors_fini,
    .worker_init = errors_worker_init,
    .worker_fini = errors_worker_fini,
    .response = errors_response,
};
