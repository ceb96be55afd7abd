/* SPDX-License-Identifier: MIT */
/*
 * plugins/bind/bind.c - the addresses a server block listens on.
 *
 * "bind ADDRESS|INTERFACE ... { except ADDRESS|INTERFACE ... }": each
 * argument is an IP address or the name of a network interface (all its
 * addresses).  Every bind line of a block adds to the list, minus the
 * exceptions.  The core opens the block's listeners on these addresses
 * instead of the wildcard.  No request hooks: bind is config only.
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

#include "core/plugin.h"

#define BIND_MAX 64

/* The addresses of one bind line while parse() collects them (stack). */
typedef struct {
    struct sockaddr_storage addr[BIND_MAX];
    size_t n;
} bind_list_t;


static void
bind_push(bind_list_t *l, const struct sockaddr_storage *ss)
{
    for (size_t i = 0; i < l->n; i++) {
        if (cnd_addr_same_ip(&l->addr[i], ss)) {
            return;
        }
    }
    if (l->n < BIND_MAX) {
        l->addr[l->n++] = *ss;
    }
}


/* Add the address(es) that @arg names to @l. */
static int
bind_resolve(cnd_disp_t *d, const char *arg, bind_list_t *l)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, arg, &in->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        bind_push(l, &ss);
        return 0;
    }
    if (inet_pton(AF_INET6, arg, &in6->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        bind_push(l, &ss);
        return 0;
    }
    struct ifaddrs *ifs, *i;
    bool found = false;
    if (getifaddrs(&ifs) == 0) {
        for (i = ifs; i != NULL; i = i->ifa_next) {
            if (i->ifa_addr == NULL || strcmp(i->ifa_name, arg) != 0) {
                continue;
            }
            found = true;
            int fam = i->ifa_addr->sa_family;
            if (fam != AF_INET && fam != AF_INET6) {
                continue;
            }
            memset(&ss, 0, sizeof(ss));
            memcpy(&ss, i->ifa_addr,
                   fam == AF_INET ? sizeof(*in) : sizeof(*in6));
            bind_push(l, &ss);
        }
        freeifaddrs(ifs);
    }
    if (!found) {
        return cnd_disp_err(d,
                            "not a valid IP address or interface name: "
                            "\"%s\"",
                            arg);
    }
    return 0;
}


static int
bind_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    (void)conf;
    bind_list_t all = {.n = 0}, except = {.n = 0};
    while (cnd_disp_next(d)) { /* each "bind" line */
        const char *args[BIND_MAX];
        size_t n = cnd_disp_args(d, args, BIND_MAX);
        if (n == 0) {
            return cnd_disp_err(d, "at least one address or interface "
                                   "name is expected");
        }
        if (n > BIND_MAX) {
            return cnd_disp_err(d, "more than %d addresses", BIND_MAX);
        }
        bind_list_t line = {.n = 0};
        for (size_t i = 0; i < n; i++) {
            if (bind_resolve(d, args[i], &line) != 0) {
                return -1;
            }
        }
        while (cnd_disp_next_block(d)) {
            if (strcmp(cnd_disp_val(d), "except") != 0) {
                return cnd_disp_err(d, "invalid option \"%s\"",
                                    cnd_disp_val(d));
            }
            const char *ex[BIND_MAX];
            size_t m = cnd_disp_args(d, ex, BIND_MAX);
            if (m == 0) {
                return cnd_disp_err(d, "at least one address or interface "
                                       "must be given to except "
                                       "subdirective");
            }
            for (size_t i = 0; i < m && i < BIND_MAX; i++) {
                if (bind_resolve(d, ex[i], &except) != 0) {
                    return -1;
                }
            }
        }
        for (size_t i = 0; i < line.n; i++) {
            bind_push(&all, &line.addr[i]);
        }
    }
    for (size_t i = 0; i < all.n; i++) {
        bool skip = false;
        for (size_t j = 0; j < except.n && !skip; j++) {
            skip = cnd_addr_same_ip(&all.addr[i], &except.addr[j]);
        }
        if (!skip && cnd_conf_add_bind(cf, &all.addr[i]) != 0) {
            return cnd_disp_err(d, "out of memory");
        }
    }
    size_t nbinds;
    cnd_server_binds(cnd_conf_server(cf), &nbinds);
    if (nbinds == 0) {
        return cnd_disp_err(d, "every address is excepted: nothing to "
                               "listen on");
    }
    return 0;
}


const cnd_plugin_t cnd_plugin_bind = {
    .name = "bind",
    .parse = bind_parse,
};
