/* SPDX-License-Identifier: MIT */
/*
 * dns/zone.c - zone names as the Corefile writes them.
 */
#include "dns/zone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int
zone_text(const char *text, cnd_zone_fn add, void *ud)
{
    uint8_t wire[KNOT_DNAME_MAXLEN];
    if (text[0] == '\0' ||
        knot_dname_from_str(wire, text, sizeof(wire)) == NULL) {
        return -EINVAL;
    }
    knot_dname_to_lower(wire);
    return add(ud, wire);
}


/* The reverse zones of "IP/PREFIX", or 1 when @host is not that. */
static int
zone_cidr(const char *host, cnd_zone_fn add, void *ud)
{
    const char *slash = strchr(host, '/');
    char ip[INET6_ADDRSTRLEN + 1];
    size_t iplen = slash != NULL ? (size_t)(slash - host) : 0;
    if (slash == NULL || iplen == 0 || iplen >= sizeof(ip) ||
        slash[1] == '\0' || strlen(slash + 1) > 3 ||
        strspn(slash + 1, "0123456789") != strlen(slash + 1)) {
        return 1;
    }
    memcpy(ip, host, iplen);
    ip[iplen] = '\0';
    uint8_t a[16] = {0};
    bool v6 = strchr(ip, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, a) != 1) {
        return 1;
    }
    int bits = v6 ? 128 : 32, step = v6 ? 4 : 8;
    int prefix = atoi(slash + 1);
    if (prefix > bits) {
        return 1;
    }
    for (int b = prefix; b < bits; b++) {
        a[b / 8] &= (uint8_t) ~(0x80 >> (b % 8));
    }
    /* Whole digits of the rounded prefix; the bits between the prefix
     * and the rounding all vary in the last digit. */
    int digits = (prefix + step - 1) / step;
    unsigned spare = (unsigned)(digits * step - prefix);
    for (unsigned i = 0; i < (1u << spare); i++) {
        char name[160];
        size_t o = 0;
        for (int k = digits - 1; k >= 0; k--) {
            unsigned digit =
                v6 ? (a[k / 2] >> (k % 2 == 0 ? 4 : 0)) & 0x0f : a[k];
            if (k == digits - 1) {
                digit |= i;
            }
            o += (size_t)snprintf(name + o, sizeof(name) - o,
                                  v6 ? "%x." : "%u.", digit);
        }
        snprintf(name + o, sizeof(name) - o, "%s",
                 v6 ? "ip6.arpa." : "in-addr.arpa.");
        int rc = zone_text(name, add, ud);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


int
cnd_zone_expand(const char *arg, cnd_zone_fn add, void *ud)
{
    char host[512];
    const char *sep = strstr(arg, "://");
    snprintf(host, sizeof(host), "%s", sep != NULL ? sep + 3 : arg);
    char *colon = strrchr(host, ':');
    if (colon != NULL && colon[1] != '\0' &&
        strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
        *colon = '\0';
    }
    int rc = zone_cidr(host, add, ud);
    if (rc <= 0) {
        return rc;
    }
    return zone_text(host, add, ud);
}
