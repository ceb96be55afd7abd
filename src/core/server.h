/* SPDX-License-Identifier: MIT */
/*
 * core/server.h - the serving process: sockets, workers, signals, stop.
 */
#ifndef CND_CORE_SERVER_H
#define CND_CORE_SERVER_H

#include "core/conf.h"

/* Serve @conf until SIGTERM or SIGINT: bind every listener (reporting
 * failures on stderr), start the workers, print CoreDNS's start-up lines
 * unless -quiet, write @pidfile when not NULL, then stop gracefully.
 * Takes over the caller's reference to @conf.  Returns the process exit
 * status (0 after a graceful stop, 1 when serving could not start). */
int cnd_server_run(const cnd_opts_t *opts, cnd_conf_t *conf,
                   const char *pidfile);

/* Load the Corefile the server was started with again and serve it: new
 * listen addresses are bound, gone ones closed, kept ones keep their
 * sockets, and queries in flight finish on the snapshot they started on.
 * On any error (returned -1, the reason in @err: CoreDNS's message with
 * FILE:LINE) the running configuration keeps serving, and
 * coredns_reload_failed_total counts it.  Logs "Reloading" and
 * "Reloading complete".  Main thread, while serving. */
int cnd_server_reload(char *err, size_t errlen);

/* Count a reload that failed before cnd_server_reload() was asked (the
 * reload plugin could not parse the changed Corefile).  Main thread. */
void cnd_server_reload_failed(void);

/* The snapshot being served, or NULL.  Main thread. */
const cnd_conf_t *cnd_server_conf(void);

/* candor's version and build line ("candor-0.1.0", "linux/x86_64, ..."). */
extern const char cnd_version[];
/* "0.1.0", and the commit it was built from. */
extern const char cnd_version_number[];
extern const char cnd_revision[];
const char *cnd_build_line(void);

#endif
