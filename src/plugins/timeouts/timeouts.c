/* SPDX-License-Identifier: MIT */
/*
 * plugins/timeouts/timeouts.c - TCP read, write and idle timeouts.
 *
 * "timeouts { read D  write D  idle D  maxtcpqueries N }" sets the TCP
 * limits of the server block's listeners (CoreDNS: read 3 s, write 5 s,
 * idle 10 s, no query limit).  Durations are 1 s to 24 h, as a Go
 * duration or whole seconds.  Config only: no request hooks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "util/duration.h"


static int
timeouts_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)conf;
    cnd_tcp_opts_t *tcp = cnd_server_tcp(cnd_conf_server(cf));
    while (cnd_disp_next(d)) {
        const char *none[1];
        if (cnd_disp_args(d, none, 1) > 0) {
            return cnd_disp_arg_err(d);
        }
        int n = 0;
        while (cnd_disp_next_block(d)) {
            char name[32];
            snprintf(name, sizeof(name), "%s", cnd_disp_val(d));
            const char *args[2];
            if (cnd_disp_args(d, args, 2) != 1) {
                return cnd_disp_arg_err(d);
            }
            n++;
            if (strcmp(name, "maxtcpqueries") == 0) {
                char *end;
                long long q = strtoll(args[0], &end, 10);
                if (*end != '\0' || args[0][0] == '\0' || q == 0 || q < -1) {
                    return cnd_disp_err(d,
                                        "maxtcpqueries must be -1 (no limit) "
                                        "or a positive number, not '%s'",
                                        args[0]);
                }
                tcp->max_queries = q;
                continue;
            }
            int64_t ns;
            if (cnd_duration_arg(args[0], &ns) != 0) {
                return cnd_disp_err(d, "time: invalid duration \"%s\"",
                                    args[0]);
            }
            if (ns < CND_NS_PER_SEC || ns > 24 * 3600 * CND_NS_PER_SEC) {
                char buf[32];
                return cnd_disp_err(d,
                                    "timeout provided '%s' needs to be "
                                    "between 1 second and 24 hours",
                                    cnd_duration_format(ns, buf, sizeof(buf)));
            }
            if (strcmp(name, "read") == 0) {
                tcp->read_ns = ns;
            } else if (strcmp(name, "write") == 0) {
                tcp->write_ns = ns;
            } else if (strcmp(name, "idle") == 0) {
                tcp->idle_ns = ns;
            } else {
                return cnd_disp_err(d, "unknown option: '%s'", name);
            }
        }
        if (n == 0) {
            return cnd_disp_err(d, "timeouts block with no timeouts "
                                   "specified");
        }
    }
    return 0;
}


const cnd_plugin_t cnd_plugin_timeouts = {
    .name = "timeouts",
    .parse = timeouts_parse,
};
