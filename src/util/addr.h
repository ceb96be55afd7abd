/* SPDX-License-Identifier: MIT */
/*
 * util/addr.h - socket addresses: the one parser, comparer and printer.
 *
 * Addresses come as text from the Corefile (forward's TO, bind, the
 * HTTP endpoints of health, ready and prometheus), from resolv.conf and
 * from the command line (doctor -server, dig @server).  Every one of them
 * is read here, so "[::1]:53", "127.0.0.1" and ":8080" mean the same thing
 * wherever they are written.
 */
#ifndef CND_UTIL_ADDR_H
#define CND_UTIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* How cnd_addr_parse() reads a host and port. */
enum {
    /* A port must be given ("IP:PORT", "[IP6]:PORT", ":PORT"). */
    CND_ADDR_NEED_PORT = 1 << 0,
    /* No host (":8080") is every address: :: with IPv4 mapped in. */
    CND_ADDR_EMPTY_ANY = 1 << 1,
    /* No host, and "localhost", are 127.0.0.1: where a client reaches a
     * server that listens on ":8080" or "localhost:8080". */
    CND_ADDR_DIAL = 1 << 2,
    /* "localhost" is 127.0.0.1 (Go's listeners resolve it so). */
    CND_ADDR_LOCALHOST = 1 << 3,
};

/* Why cnd_addr_parse() refused a text. */
typedef enum {
    CND_ADDR_OK = 0,
    CND_ADDR_NO_PORT,    /* "missing port in address"         */
    CND_ADDR_BAD_PORT,   /* the port is not a decimal number  */
    CND_ADDR_PORT_RANGE, /* the port is not 0..65535          */
    CND_ADDR_NO_HOST,    /* no host where one is needed       */
    CND_ADDR_NOT_IP,     /* the host is not an IP address     */
    CND_ADDR_SYNTAX,     /* brackets or colons out of place   */
} cnd_addr_err_t;

/* Read @s as "IP", "IP:PORT", "IP6", "[IP6]" or "[IP6]:PORT" (an IPv6
 * zone such as "%eth0" is dropped) into @ss and @len, with @def_port when
 * no port is given.  The port is 0..65535.  @flags: CND_ADDR_*.  Returns
 * CND_ADDR_OK or why not; the host text goes to @host (when not NULL,
 * @hostsize bytes) for error messages. */
cnd_addr_err_t cnd_addr_parse(const char *s, uint16_t def_port, unsigned flags,
                              struct sockaddr_storage *ss, socklen_t *len,
                              char *host, size_t hostsize);

/* The length of @ss for bind() and connect(). */
socklen_t cnd_addr_len(const struct sockaddr_storage *ss);

uint16_t cnd_addr_port(const struct sockaddr_storage *ss);
void cnd_addr_set_port(struct sockaddr_storage *ss, uint16_t port);

/* Same family and IP (ports not compared). */
bool cnd_addr_same_ip(const struct sockaddr_storage *a,
                      const struct sockaddr_storage *b);

/* Same family, IP and port. */
bool cnd_addr_equal(const struct sockaddr_storage *a,
                    const struct sockaddr_storage *b);

/* Is @ss the wildcard address (0.0.0.0 or ::)? */
bool cnd_addr_is_any(const struct sockaddr_storage *ss);

/* Is @ss a loopback address (127.0.0.0/8 or ::1)? */
bool cnd_addr_is_loopback(const struct sockaddr_storage *ss);

/* An IPv4-mapped IPv6 address (::ffff:1.2.3.4) as plain IPv4; any other
 * address is left alone. */
void cnd_addr_unmap(struct sockaddr_storage *ss);

/* Format @ss as "1.2.3.4:53" or "[::1]:53", or without the port as
 * "1.2.3.4" and "::1".  Returns @buf. */
const char *cnd_addr_str(const struct sockaddr_storage *ss, char *buf,
                         size_t size, bool with_port);

#endif
