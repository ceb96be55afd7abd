/* SPDX-License-Identifier: MIT */
/*
 * util/addr.c - socket addresses: the one parser, comparer and printer.
 */
#include "util/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


cnd_addr_err_t
cnd_addr_parse(const char *s, uint16_t def_port, unsigned flags,
               struct sockaddr_storage *ss, socklen_t *len, char *host,
               size_t hostsize)
{
    char h[INET6_ADDRSTRLEN + 16];
    const char *hs = s, *ps = NULL;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            return CND_ADDR_SYNTAX;
        }
        hs = s + 1;
        hl = (size_t)(close - hs);
        if (close[1] == ':') {
            ps = close + 2;
        } else if (close[1] != '\0') {
            return CND_ADDR_SYNTAX;
        }
    } else {
        /* One colon: a host and a port.  More: a bare IPv6 address. */
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hl = (size_t)(colon - s);
            ps = colon + 1;
        } else {
            hl = strlen(s);
        }
    }
    snprintf(h, sizeof(h), "%.*s", (int)hl, hs);
    if (host != NULL && hostsize > 0) {
        snprintf(host, hostsize, "%.*s", (int)hl, hs);
    }

    long port = def_port;
    if (ps == NULL) {
        if (flags & CND_ADDR_NEED_PORT) {
            return CND_ADDR_NO_PORT;
        }
    } else {
        char *end;
        if (*ps < '0' || *ps > '9') {
            return CND_ADDR_BAD_PORT;
        }
        port = strtol(ps, &end, 10);
        if (*end != '\0') {
            return CND_ADDR_BAD_PORT;
        }
        if (port > 65535 || strlen(ps) > 5) {
            return CND_ADDR_PORT_RANGE;
        }
    }

    char *pct = strchr(h, '%');
    if (pct != NULL) {
        *pct = '\0';
    }
    bool dial = (flags & CND_ADDR_DIAL) != 0;
    if (hl >= sizeof(h)) {
        return CND_ADDR_NOT_IP;
    }
    if (h[0] == '\0' && !dial) {
        if (!(flags & CND_ADDR_EMPTY_ANY)) {
            return CND_ADDR_NO_HOST;
        }
        memset(ss, 0, sizeof(*ss));
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6; /* every address, IPv4 too */
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return CND_ADDR_OK;
    }
    if (h[0] == '\0' || ((dial || (flags & CND_ADDR_LOCALHOST)) &&
                         strcmp(h, "localhost") == 0)) {
        snprintf(h, sizeof(h), "127.0.0.1");
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof(*in);
        return CND_ADDR_OK;
    }
    if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
        return CND_ADDR_OK;
    }
    return CND_ADDR_NOT_IP;
}


socklen_t
cnd_addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6);
}


uint16_t
cnd_addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    }
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}


void
cnd_addr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET) {
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    } else {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    }
}


bool
cnd_addr_same_ip(const struct sockaddr_storage *a,
                 const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) {
        return false;
    }
    if (a->ss_family == AF_INET) {
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    }
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}


bool
cnd_addr_equal(const struct sockaddr_storage *a,
               const struct sockaddr_storage *b)
{
    return cnd_addr_same_ip(a, b) && cnd_addr_port(a) == cnd_addr_port(b);
}


bool
cnd_addr_is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
               htonl(INADDR_ANY);
    }
    return IN6_IS_ADDR_UNSPECIFIED(
        &((const struct sockaddr_in6 *)ss)->sin6_addr);
}


bool
cnd_addr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >>
                24) == 127;
    }
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}


void
cnd_addr_unmap(struct sockaddr_storage *ss)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        return;
    }
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = in6->sin6_port;
    memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], 4);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &in, sizeof(in));
}


const char *
cnd_addr_str(const struct sockaddr_storage *ss, char *buf, size_t size,
             bool with_port)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    bool v6 = ss->ss_family == AF_INET6;
    if (v6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip,
                  sizeof(ip));
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip,
                  sizeof(ip));
    }
    if (!with_port) {
        snprintf(buf, size, "%s", ip);
    } else {
        snprintf(buf, size, v6 ? "[%s]:%u" : "%s:%u", ip,
                 (unsigned)cnd_addr_port(ss));
    }
    return buf;
}
