/* SPDX-License-Identifier: MIT */
/*
 * dns/ede.h - RFC 8914 Extended DNS Errors: codes, names, priority.
 *
 * The priority decides which of several failures of one request is
 * reported (the 1.1.1.1 bug class, reference/resolvers.md 1.5): a DNSSEC
 * verdict beats "no reachable authority", which beats "other".  The order
 * is Knot Resolver's.
 */
#ifndef CND_DNS_EDE_H
#define CND_DNS_EDE_H

#include <stdint.h>

/* EDNS option code of EDE. */
#define CND_EDNS_EDE 15

/* The codes candor uses by name. */
enum {
    CND_EDE_OTHER = 0,
    CND_EDE_DNSSEC_BOGUS = 6,
    CND_EDE_STALE = 3,
    CND_EDE_CACHED_ERROR = 13,
    CND_EDE_NOT_READY = 14,
    CND_EDE_BLOCKED = 15,
    CND_EDE_PROHIBITED = 18,
    CND_EDE_STALE_NXDOMAIN = 19,
    CND_EDE_NOT_AUTHORITATIVE = 20,
    CND_EDE_NOT_SUPPORTED = 21,
    CND_EDE_NO_REACHABLE_AUTHORITY = 22,
    CND_EDE_NETWORK_ERROR = 23,
    CND_EDE_INVALID_DATA = 24,
};

/* Priority of @code: higher is more diagnostic.  Unknown codes rank with
 * the generic operational ones (200), "no code" (0xffff) lowest. */
int cnd_ede_priority(uint16_t code);

/* The registered name ("No Reachable Authority"), or "Unknown". */
const char *cnd_ede_name(uint16_t code);

#endif
