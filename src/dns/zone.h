/* SPDX-License-Identifier: MIT */
/*
 * dns/zone.h - zone names as the Corefile writes them.
 *
 * Server block keys and plugin arguments name zones the same way:
 * "example.org", "dns://example.org:53", or a CIDR that stands for reverse
 * zones ("10.0.0.0/24" is 0.0.10.in-addr.arpa.).  This is the one place
 * that turns such text into zone names (CoreDNS's plugin.Host().
 * NormalizeExact() and its address parser).
 */
#ifndef CND_DNS_ZONE_H
#define CND_DNS_ZONE_H

#include <libknot/libknot.h>

/* Called with each zone, lowercase wire form; a non-zero return stops
 * and is returned. */
typedef int (*cnd_zone_fn)(void *ud, const knot_dname_t *zone);

/* Call @add with every zone @arg names: an optional "scheme://" and a
 * trailing ":port" are ignored; a CIDR stands for the reverse zones it
 * covers, rounded to whole octets (IPv4) or nibbles (IPv6) (a /27 is the
 * 32 /32 zones inside it); anything else is a domain name.  Returns 0,
 * -EINVAL when @arg is not a valid name, or what @add returned. */
int cnd_zone_expand(const char *arg, cnd_zone_fn add, void *ud);

#endif
