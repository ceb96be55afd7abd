/* SPDX-License-Identifier: MIT */
/*
 * plugins/prometheus/prometheus.c - /metrics in the Prometheus format.
 *
 * "prometheus [ADDRESS]" (default localhost:9153) serves every metric of
 * every worker, summed at scrape time (core/metrics.h), on the admin HTTP
 * server (admin/http.h).  Server blocks naming the same address share
 * one endpoint.  No request hooks: counting is done where things happen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http.h"
#include "core/conf.h"
#include "core/metrics.h"
#include "core/plugin.h"

typedef struct {
    const char *addr;
} prom_conf_t;


static int
prom_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)cf;
    prom_conf_t *c = conf;
    c->addr = "localhost:9153";
    cnd_disp_next(d); /* "prometheus" (once per block) */
    const char *args[2];
    size_t n = cnd_disp_args(d, args, 2);
    if (n > 1) {
        return cnd_disp_arg_err(d);
    }
    if (n == 1) {
        const char *colon = strrchr(args[0], ':');
        char *end = NULL;
        long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
        if (colon == NULL || colon[1] == '\0' || *end != '\0' || port < 0 ||
            port > 65535) {
            return cnd_disp_err(d, "address %s: missing port in address",
                                args[0]);
        }
        c->addr = args[0];
    }
    while (cnd_disp_next_block(d)) {
        return cnd_disp_err(d, "unknown property '%s'", cnd_disp_val(d));
    }
    return 0;
}


static int
prom_render(void *arg, char **body, size_t *len, const char **ctype)
{
    (void)arg;
    *body = cnd_metrics_render();
    if (*body == NULL) {
        return 500;
    }
    *len = strlen(*body);
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    return 200;
}


static int
prom_start(cnd_conf_t *cf, cnd_inst_t *self)
{
    prom_conf_t *c = self->conf;
    char err[256];
    if (cnd_http_serve(c->addr, "/metrics", prom_render, NULL, err,
                       sizeof(err)) != 0) {
        return cnd_conf_err(cf, self, "%s", err);
    }
    return 0;
}


static void
prom_stop(cnd_inst_t *self)
{
    prom_conf_t *c = self->conf;
    cnd_http_unserve(c->addr, "/metrics");
}


const cnd_plugin_t cnd_plugin_prometheus = {
    .name = "prometheus",
    .flags = CND_PLUGIN_ONCE,
    .conf_size = sizeof(prom_conf_t),
    .parse = prom_parse,
    .start = prom_start,
    .stop = prom_stop,
};
