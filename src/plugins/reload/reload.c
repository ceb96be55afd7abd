/* SPDX-License-Identifier: MIT */
/*
 * plugins/reload/reload.c - reload the Corefile when it changes.
 *
 * "reload [INTERVAL] [JITTER]" (30 s, 15 s) reads the Corefile every
 * INTERVAL, plus or minus half of JITTER, parses it and compares the
 * SHA-512 of its server blocks (keys, directives, tokens and line breaks:
 * comments and blank lines do not count) with the running one's.  On a
 * change it asks the core to reload (core/server.h), which keeps serving
 * the running configuration when the new one is invalid.  Process-wide:
 * the first reload line of a Corefile drives it, as in CoreDNS.  The
 * reading happens on the main thread, in a ticker of the snapshot.
 */
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "util/duration.h"
#include "util/log.h"

#define RELOAD_MIN_INTERVAL (2 * CND_NS_PER_SEC)
#define RELOAD_MIN_JITTER   (1 * CND_NS_PER_SEC)
#define RELOAD_HASH_LEN     64 /* SHA-512 */

typedef struct {
    int64_t interval_ns, jitter_ns;
    cnd_conf_t *cf;
    bool driver;  /* the first reload instance of the snapshot */
    unsigned gen; /* of its start: which one exports the version */
    uint8_t running[RELOAD_HASH_LEN];
    uint8_t last[RELOAD_HASH_LEN]; /* last seen on disk: tried once */
} reload_conf_t;

static const char *const reload_m_version_labels[] = {"hash", "value", NULL};
static const cnd_mfamily_t reload_m_version = {
    "coredns_reload_version_info",
    "A metric with a constant '1' value labeled by hash, and value which "
    "type of hash generated.",
    CND_METRIC_GAUGE,
    reload_m_version_labels,
    NULL,
    0};

/* The version series being exported and the start that made it.  Main
 * thread only. */
static cnd_series_t *reload_version;
static unsigned reload_gen;


static int
reload_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    reload_conf_t *c = conf;
    c->interval_ns = 30 * CND_NS_PER_SEC;
    c->jitter_ns = 15 * CND_NS_PER_SEC;
    cnd_disp_next(d); /* "reload" (once per block) */
    const char *args[3];
    size_t n = cnd_disp_args(d, args, 3);
    if (n > 2) {
        return cnd_disp_arg_err(d);
    }
    int64_t *v[2] = {&c->interval_ns, &c->jitter_ns};
    for (size_t i = 0; i < n; i++) {
        if (cnd_duration_parse(args[i], v[i]) != 0) {
            return cnd_disp_err(d, "time: invalid duration \"%s\"", args[i]);
        }
    }
    if (c->interval_ns < RELOAD_MIN_INTERVAL) {
        return cnd_disp_err(d, "interval value must be greater or equal to "
                               "2s");
    }
    if (c->jitter_ns < RELOAD_MIN_JITTER) {
        return cnd_disp_err(d, "jitter value must be greater or equal to 1s");
    }
    if (c->jitter_ns > c->interval_ns / 2) {
        c->jitter_ns = c->interval_ns / 2;
    }
    if (cnd_disp_next_block(d)) {
        return cnd_disp_arg_err(d);
    }
    return 0;
}


/* SHA-512 of the server blocks: what a Corefile means, not its layout. */
static int
reload_hash(const cnd_corefile_t *cf, uint8_t out[RELOAD_HASH_LEN])
{
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA512) != 0) {
        return -1;
    }
    for (size_t b = 0; b < cf->nblocks; b++) {
        const cnd_cf_block_t *blk = &cf->blocks[b];
        gnutls_hash(h, "\x1e", 1); /* a block */
        for (size_t k = 0; k < blk->nkeys; k++) {
            gnutls_hash(h, blk->keys[k].text, strlen(blk->keys[k].text) + 1);
        }
        for (size_t i = 0; i < blk->ndirs; i++) {
            const cnd_cf_dir_t *dir = &blk->dirs[i];
            int line = -1;
            const char *file = NULL;
            gnutls_hash(h, "\x1d", 1); /* a directive */
            for (size_t t = 0; t < dir->ntokens; t++) {
                const cnd_token_t *tk = &dir->tokens[t];
                if (tk->line != line || tk->file != file) {
                    gnutls_hash(h, "\n", 1); /* a line break */
                    line = tk->line;
                    file = tk->file;
                }
                gnutls_hash(h, tk->text, strlen(tk->text) + 1);
            }
        }
    }
    gnutls_hash_deinit(h, out);
    return 0;
}


static void
reload_hex(const uint8_t *hash, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < RELOAD_HASH_LEN; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 15];
    }
    out[2 * RELOAD_HASH_LEN] = '\0';
}


/* Every interval: has the Corefile changed? */
static void
reload_tick(void *arg)
{
    reload_conf_t *c = arg;
    size_t len;
    char *text = cnd_conf_read(cnd_conf_file(c->cf), &len);
    if (text == NULL) {
        return; /* CoreDNS skips a tick it cannot read */
    }
    cnd_arena_t a;
    cnd_arena_init(&a, NULL, 0, 16384);
    cnd_corefile_t parsed;
    char err[1024];
    uint8_t now[RELOAD_HASH_LEN];
    int rc =
        cnd_corefile_parse(&a, cnd_conf_file(c->cf), text, len,
                           cnd_conf_directive_known, &parsed, err, sizeof(err));
    if (rc != 0) {
        /* Said once per content of the file, and counted. */
        cnd_arena_deinit(&a);
        gnutls_hash_fast(GNUTLS_DIG_SHA512, text, len, now);
        free(text);
        if (memcmp(now, c->last, sizeof(now)) != 0) {
            memcpy(c->last, now, sizeof(now));
            cnd_log(CND_LOG_WARNING, "reload", "Corefile parse failed: %s",
                    err);
            cnd_server_reload_failed();
        }
        return;
    }
    free(text);
    rc = reload_hash(&parsed, now);
    cnd_arena_deinit(&a);
    if (rc != 0 || memcmp(now, c->running, sizeof(now)) == 0 ||
        memcmp(now, c->last, sizeof(now)) == 0) {
        return;
    }
    /* Try a changed file once, even when it is wrong. */
    memcpy(c->last, now, sizeof(now));
    if (cnd_server_reload(err, sizeof(err)) != 0) {
        cnd_log(CND_LOG_ERROR, "reload",
                "Corefile changed but reload failed: %s", err);
    }
    /* On success this snapshot's tickers are stopped: nothing after. */
}


static int
reload_init(cnd_conf_t *cf, cnd_inst_t *self)
{
    reload_conf_t *c = self->conf;
    c->cf = cf;
    /* Only the first reload line of the Corefile drives it. */
    size_t ninsts;
    cnd_inst_t *const *insts = cnd_conf_insts(cf, &ninsts);
    for (size_t i = 0; i < ninsts; i++) {
        if (insts[i]->plugin == self->plugin) {
            c->driver = insts[i] == self;
            break;
        }
    }
    if (!c->driver) {
        return 0;
    }
    if (reload_hash(cnd_conf_corefile(cf), c->running) != 0) {
        return cnd_conf_err(cf, self, "cannot compute SHA-512");
    }
    memcpy(c->last, c->running, sizeof(c->last));
    uint64_t r = 0;
    gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r));
    int64_t j = (int64_t)(r % (uint64_t)c->jitter_ns) - c->jitter_ns / 2;
    if (cnd_conf_every(cf, c->interval_ns + j, reload_tick, c) != 0) {
        return cnd_conf_err(cf, self, "out of memory");
    }
    return 0;
}


/* The snapshot serves: say which configuration runs. */
static int
reload_start(cnd_conf_t *cf, cnd_inst_t *self)
{
    (void)cf;
    reload_conf_t *c = self->conf;
    if (!c->driver) {
        return 0;
    }
    char hex[2 * RELOAD_HASH_LEN + 1];
    reload_hex(c->running, hex);
    cnd_log(CND_LOG_INFO, "reload", "Running configuration SHA512 = %s", hex);
    cnd_mstore_t *st = cnd_main_metrics();
    if (st != NULL) {
        cnd_metric_series_drop(st, reload_version);
        reload_version =
            cnd_metric_series(st, &reload_m_version, "sha512", hex, NULL);
        if (reload_version != NULL) {
            cnd_gauge_set(reload_version, 1);
        }
    }
    c->gen = ++reload_gen;
    return 0;
}


/* A reload starts the next snapshot before this one stops: take the
 * version off only when no later start replaced it (the new Corefile
 * has no reload line). */
static void
reload_stop(cnd_inst_t *self)
{
    reload_conf_t *c = self->conf;
    if (c->driver && c->gen == reload_gen && cnd_main_metrics() != NULL) {
        cnd_metric_series_drop(cnd_main_metrics(), reload_version);
        reload_version = NULL;
    }
}


const cnd_plugin_t cnd_plugin_reload = {
    .name = "reload",
    .flags = CND_PLUGIN_ONCE,
    .conf_size = sizeof(reload_conf_t),
    .parse = reload_parse,
    .init = reload_init,
    .start = reload_start,
    .stop = reload_stop,
};
