/* SPDX-License-Identifier: MIT */
/*
 * util/resolvconf.h - the nameserver lines of a resolv.conf.
 *
 * forward reads a resolv.conf given as TO (every nameserver an upstream,
 * as CoreDNS does through miekg/dns) and dig uses the first one when no
 * @server is given: both read the file here.
 */
#ifndef CND_UTIL_RESOLVCONF_H
#define CND_UTIL_RESOLVCONF_H

/* Called with the address text of each "nameserver ADDR" line, in order;
 * a non-zero return stops the reading and is returned. */
typedef int (*cnd_resolv_fn)(void *ud, const char *addr);

/* Read @path and call @fn for each nameserver.  Returns 0 after the last,
 * what @fn returned when it stopped, or -errno when the file cannot be
 * opened.  Other lines (search, options, comments) are skipped. */
int cnd_resolv_conf_read(const char *path, cnd_resolv_fn fn, void *ud);

#endif
