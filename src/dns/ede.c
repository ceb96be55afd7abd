/* SPDX-License-Identifier: MIT */
/*
 * dns/ede.c - RFC 8914 Extended DNS Errors: codes, names, priority.
 */
#include "dns/ede.h"

#include <stddef.h>

/* IANA "Extended DNS Error Codes" 0-30 (RFC 8914 and later). */
static const char *const ede_names[] = {
    "Other Error",
    "Unsupported DNSKEY Algorithm",
    "Unsupported DS Digest Type",
    "Stale Answer",
    "Forged Answer",
    "DNSSEC Indeterminate",
    "DNSSEC Bogus",
    "Signature Expired",
    "Signature Not Yet Valid",
    "DNSKEY Missing",
    "RRSIGs Missing",
    "No Zone Key Bit Set",
    "NSEC Missing",
    "Cached Error",
    "Not Ready",
    "Blocked",
    "Censored",
    "Filtered",
    "Prohibited",
    "Stale NXDOMAIN Answer",
    "Not Authoritative",
    "Not Supported",
    "No Reachable Authority",
    "Network Error",
    "Invalid Data",
    "Signature Expired before Valid",
    "Too Early",
    "Unsupported NSEC3 Iterations Value",
    "Unable to Conform to Policy",
    "Synthesized",
    "Invalid Query Type",
};


const char *
cnd_ede_name(uint16_t code)
{
    if (code < sizeof(ede_names) / sizeof(ede_names[0])) {
        return ede_names[code];
    }
    return "Unknown";
}


int
cnd_ede_priority(uint16_t code)
{
    switch (code) {
    case 26: /* Too Early */
        return 910;
    case 7: /* the specific DNSSEC causes */
    case 8:
    case 9:
    case 10:
    case 11:
    case 12:
    case 25:
        return 900;
    case 6: /* DNSSEC Bogus */
        return 800;
    case 4: /* Forged, Filtered */
    case 17:
        return 700;
    case 15: /* Blocked, Censored, Prohibited */
    case 16:
    case 18:
        return 600;
    case 1: /* unsupported algorithm, digest, iterations */
    case 2:
    case 27:
        return 500;
    case 3: /* stale */
    case 19:
        return 300;
    case 0:
        return 100;
    case 0xffff: /* no code */
        return 0;
    default: /* 5, 13, 14, 20-24, 29 and unknown codes */
        return 200;
    }
}
