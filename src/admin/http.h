/* SPDX-License-Identifier: MIT */
/*
 * admin/http.h - the HTTP endpoints: /metrics, and later /health, /ready.
 *
 * One libmicrohttpd daemon per listen address, with its own thread;
 * plugins register paths on addresses when their snapshot starts serving
 * and take them off when it stops.  Several plugins (or server blocks)
 * may share one address, as CoreDNS's do.  Registration is main-thread
 * only; handlers run on the daemon's thread and must be thread-safe.
 */
#ifndef CND_ADMIN_HTTP_H
#define CND_ADMIN_HTTP_H

#include <stddef.h>

#include "corefile/corefile.h"

/* Answer a GET of the path: return the HTTP status and set *@body to a
 * malloc'd body of *@len bytes (freed by the caller) and *@ctype to its
 * content type (static). */
typedef int (*cnd_http_fn)(void *arg, char **body, size_t *len,
                           const char **ctype);

/* Check a listen address as Go's net.SplitHostPort does (for CoreDNS's
 * messages): NULL when it splits into host and port, else the reason,
 * worded as Go's ("missing port in address", "too many colons in
 * address", ...). */
const char *cnd_http_addr_err(const char *addr);

/* For parse() hooks of plugins with an HTTP endpoint (health, ready,
 * prometheus): the directive's optional ADDRESS argument into *@addr
 * (left as it is when absent), checked as CoreDNS checks it.  Returns 0,
 * or -1 after cnd_disp_err()/cnd_disp_arg_err(). */
int cnd_http_addr_arg(cnd_disp_t *d, const char **addr);

/* Serve @path on @addr ("host:port", ":port", "[::1]:port",
 * "localhost:port") with @fn.  Starts a daemon for the address on first
 * use.  Returns 0, or -1 with the reason in @err ("listen tcp ...: bind:
 * address already in use"). */
int cnd_http_serve(const char *addr, const char *path, cnd_http_fn fn,
                   void *arg, char *err, size_t errlen);

/* Serving the same path again (another server block, or the next
 * snapshot during a reload) counts it and replaces its handler: the
 * latest registration serves.  A handler runs under the daemon's lock,
 * so once unserve returns no call of it is in progress. */

/* Stop serving @path on @addr once as often as it was served; the daemon
 * stops with its last path. */
void cnd_http_unserve(const char *addr, const char *path);

#endif
