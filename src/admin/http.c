/* SPDX-License-Identifier: MIT */
/*
 * admin/http.c - the HTTP endpoints on libmicrohttpd.
 *
 * A small table of daemons (address, paths, handlers).  The table is
 * changed on the main thread only; a daemon's thread reads the paths of
 * its own daemon under that daemon's mutex, so a path can be taken off
 * while a request is served.
 */
#include "admin/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>
#include <uv.h>

#include "util/addr.h"

/* Paths per address: the plugins serve three (/metrics, /health,
 * /ready), so no Corefile reaches it. */
#define HTTP_MAX_PATHS 8

typedef struct {
    char path[64];
    cnd_http_fn fn;
    void *arg;
    unsigned refs; /* blocks or snapshots serving it     */
} http_route_t;

/* One address and its daemon.  Malloc'd, as many as the Corefile has
 * addresses, so none is refused at start for a limit -validate cannot
 * see. */
typedef struct http_daemon_s {
    struct http_daemon_s *next;
    struct MHD_Daemon *d;
    uv_mutex_t lock;
    http_route_t routes[HTTP_MAX_PATHS];
    size_t nroutes;
    char addr[];
} http_daemon_t;

/* Main thread only, except routes (under each daemon's lock). */
static http_daemon_t *http_daemons;


/* "host:port" into a socket address; "localhost" is 127.0.0.1, no host
 * is every address.  On failure, @why (if not NULL) says why as Go's
 * net.Listen would, with the fix. */
static int
http_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
                char *why, size_t wl)
{
    char host[80], dummy[8];
    if (why == NULL) {
        why = dummy;
        wl = sizeof(dummy);
    }
    const char *colon = strrchr(addr, ':');
    const char *port = colon != NULL ? colon + 1 : "";
    switch (cnd_addr_parse(
        addr, 0, CND_ADDR_NEED_PORT | CND_ADDR_EMPTY_ANY | CND_ADDR_LOCALHOST,
        ss, len, host, sizeof(host))) {
    case CND_ADDR_OK:
        return 0;
    case CND_ADDR_NO_PORT:
        snprintf(why, wl, "address %s: missing port in address", addr);
        break;
    case CND_ADDR_BAD_PORT:
        snprintf(why, wl,
                 "listen tcp: lookup tcp/%s: unknown port (give the port "
                 "as a number, 0-65535)",
                 port);
        break;
    case CND_ADDR_PORT_RANGE:
        snprintf(why, wl,
                 "listen tcp: address %s: invalid port (a port is 0-65535)",
                 port);
        break;
    default:
        snprintf(why, wl,
                 "listen tcp %s: host %s is not an IP address (give an IP "
                 "address, localhost, or no host for every address: :%s)",
                 addr, host, port);
        break;
    }
    return -EINVAL;
}


const char *
cnd_http_addr_err(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    const char *tail = addr; /* where '[' may no longer appear */
    const char *close_from = addr;
    if (colon == NULL) {
        return "missing port in address";
    }
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL) {
            return "missing ']' in address";
        }
        if (end[1] == '\0') {
            return "missing port in address";
        }
        if (end + 1 != colon) {
            return end[1] == ':' ? "too many colons in address"
                                 : "missing port in address";
        }
        tail = addr + 1;
        close_from = end + 1;
    } else if (memchr(addr, ':', (size_t)(colon - addr)) != NULL) {
        return "too many colons in address";
    }
    if (strchr(tail, '[') != NULL) {
        return "unexpected '[' in address";
    }
    if (strchr(close_from, ']') != NULL) {
        return "unexpected ']' in address";
    }
    return NULL;
}


int
cnd_http_addr_arg(cnd_disp_t *d, const char **addr)
{
    const char *args[2];
    size_t n = cnd_disp_args(d, args, 2);
    if (n > 1) {
        return cnd_disp_arg_err(d);
    }
    if (n == 1) {
        const char *why = cnd_http_addr_err(args[0]);
        if (why != NULL) {
            return cnd_disp_err(d, "address %s: %s", args[0], why);
        }
        /* Everything the start checks short of binding, so that
         * -validate says what the start would. */
        struct sockaddr_storage ss;
        socklen_t len;
        char msg[256];
        if (http_parse_addr(args[0], &ss, &len, msg, sizeof(msg)) != 0) {
            return cnd_disp_err(d, "%s", msg);
        }
        *addr = args[0];
    }
    return 0;
}


static enum MHD_Result
http_handler(void *cls, struct MHD_Connection *conn, const char *url,
             const char *method, const char *version, const char *upload,
             size_t *upload_size, void **con_cls)
{
    http_daemon_t *hd = cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    char *body = NULL;
    size_t len = 0;
    const char *ctype = "text/plain; charset=utf-8";
    int status = MHD_HTTP_NOT_FOUND;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else {
        uv_mutex_lock(&hd->lock);
        for (size_t i = 0; i < hd->nroutes; i++) {
            if (strcmp(hd->routes[i].path, url) == 0) {
                status =
                    hd->routes[i].fn(hd->routes[i].arg, &body, &len, &ctype);
                break;
            }
        }
        uv_mutex_unlock(&hd->lock);
    }
    if (body == NULL) {
        const char *msg = status == MHD_HTTP_NOT_FOUND ? "404 page not found\n"
                          : status == MHD_HTTP_METHOD_NOT_ALLOWED
                              ? "method not allowed\n"
                              : "";
        body = strdup(msg);
        len = body != NULL ? strlen(body) : 0;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}


static http_daemon_t *
http_find(const char *addr)
{
    for (http_daemon_t *hd = http_daemons; hd != NULL; hd = hd->next) {
        if (strcmp(hd->addr, addr) == 0) {
            return hd;
        }
    }
    return NULL;
}


/* Bind and listen ourselves, so the error is the socket's and the
 * socket is IPv6 dual-stack when no host is given. */
static int
http_listen(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (http_parse_addr(addr, &ss, &len, err, errlen) != 0) {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "listen tcp %s: socket: %s", addr,
                 strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s", strerror(errno));
        msg[0] = (char)tolower((unsigned char)msg[0]);
        snprintf(err, errlen, "listen tcp %s: bind: %s", addr, msg);
        close(fd);
        return -1;
    }
    return fd;
}


int
cnd_http_serve(const char *addr, const char *path, cnd_http_fn fn, void *arg,
               char *err, size_t errlen)
{
    http_daemon_t *hd = http_find(addr);
    if (hd == NULL) {
        size_t al = strlen(addr) + 1;
        hd = calloc(1, sizeof(*hd) + al);
        if (hd == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        int fd = http_listen(addr, err, errlen);
        if (fd < 0) {
            free(hd);
            return -1;
        }
        memcpy(hd->addr, addr, al);
        uv_mutex_init(&hd->lock);
        hd->d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
            http_handler, hd, MHD_OPTION_LISTEN_SOCKET, fd,
            MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
        if (hd->d == NULL) {
            close(fd);
            uv_mutex_destroy(&hd->lock);
            free(hd);
            snprintf(err, errlen,
                     "listen tcp %s: cannot start the HTTP "
                     "server",
                     addr);
            return -1;
        }
        hd->next = http_daemons;
        http_daemons = hd;
    }
    uv_mutex_lock(&hd->lock);
    for (size_t i = 0; i < hd->nroutes; i++) {
        if (strcmp(hd->routes[i].path, path) == 0) {
            /* the same path again (another block, or the next snapshot
             * of a reload): the latest serves */
            hd->routes[i].fn = fn;
            hd->routes[i].arg = arg;
            hd->routes[i].refs++;
            uv_mutex_unlock(&hd->lock);
            return 0;
        }
    }
    if (hd->nroutes == HTTP_MAX_PATHS) {
        uv_mutex_unlock(&hd->lock);
        snprintf(err, errlen, "too many paths on %s", addr);
        return -1;
    }
    http_route_t *rt = &hd->routes[hd->nroutes++];
    snprintf(rt->path, sizeof(rt->path), "%s", path);
    rt->fn = fn;
    rt->arg = arg;
    rt->refs = 1;
    uv_mutex_unlock(&hd->lock);
    return 0;
}


void
cnd_http_unserve(const char *addr, const char *path)
{
    http_daemon_t *hd = http_find(addr);
    if (hd == NULL) {
        return;
    }
    uv_mutex_lock(&hd->lock);
    for (size_t i = 0; i < hd->nroutes; i++) {
        if (strcmp(hd->routes[i].path, path) == 0) {
            if (--hd->routes[i].refs == 0) {
                hd->routes[i] = hd->routes[--hd->nroutes];
            }
            break;
        }
    }
    size_t left = hd->nroutes;
    uv_mutex_unlock(&hd->lock);
    if (left == 0) {
        /* MHD_stop_daemon waits for its thread; it closes the socket. */
        MHD_stop_daemon(hd->d);
        uv_mutex_destroy(&hd->lock);
        http_daemon_t **pp = &http_daemons;
        while (*pp != hd) {
            pp = &(*pp)->next;
        }
        *pp = hd->next;
        free(hd);
    }
}
