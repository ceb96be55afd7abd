/* SPDX-License-Identifier: MIT */
/*
 * tools/dnsclient.h - a small blocking DNS client for the command-line
 * tools.
 *
 * "candor dig" and "candor doctor" ask one question at a time and wait for
 * the answer: build a query, exchange it with one server over UDP or TCP
 * within a time limit, and read what came back (rcode, flags, counts, the
 * Extended DNS Errors).  Every failure is classified (timed out, refused,
 * unreachable, ...) so that a tool can say what went wrong, in dig's words.
 *
 * These calls block: the server's workers never use them.  The parsing
 * functions take (buf, len), trust no length or count in the message and
 * are safe on any input.
 */
#ifndef CND_TOOLS_DNSCLIENT_H
#define CND_TOOLS_DNSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The biggest DNS message: size reply buffers with it. */
#define CND_DNSC_MAX_MSG 65535

/* How long an exchange may take when the caller gives 0 (ms). */
#define CND_DNSC_DEFAULT_TIMEOUT_MS 5000

/* Header flags, as in cnd_dnsc_reply_t.flags (bytes 2 and 3 of the
 * header). */
#define CND_DNSC_QR 0x8000
#define CND_DNSC_AA 0x0400
#define CND_DNSC_TC 0x0200
#define CND_DNSC_RD 0x0100
#define CND_DNSC_RA 0x0080
#define CND_DNSC_Z  0x0040
#define CND_DNSC_AD 0x0020
#define CND_DNSC_CD 0x0010

/* The DO bit of cnd_dnsc_reply_t.edns_flags. */
#define CND_DNSC_DO 0x8000

/* How an exchange ended: 0, or one of these (negative). */
typedef enum {
    CND_DNSC_OK = 0,
    CND_DNSC_ETIMEOUT = -1,   /* no reply within the time limit           */
    CND_DNSC_EREFUSED = -2,   /* ICMP port unreachable; TCP: RST to SYN    */
    CND_DNSC_EUNREACH = -3,   /* no route to the network or host          */
    CND_DNSC_ERESET = -4,     /* TCP: reset after the connection was made */
    CND_DNSC_ECLOSED = -5,    /* TCP: closed before the whole reply came  */
    CND_DNSC_EMALFORMED = -6, /* the reply has our ID and question but
                                 does not parse (it is returned anyway)   */
    CND_DNSC_EMISMATCH = -7,  /* time ran out after replies that were not
                                 ours (another ID or question) came        */
    CND_DNSC_ESYS = -8,       /* a local error: socket(), memory, address */
} cnd_dnsc_err_t;

/* Why a datagram or TCP message that came was not taken as the reply. */
typedef enum {
    CND_DNSC_DROP_SHORT = 0, /* shorter than a header          */
    CND_DNSC_DROP_NOT_REPLY, /* QR is clear                    */
    CND_DNSC_DROP_ID,        /* another ID                     */
    CND_DNSC_DROP_QUESTION,  /* our ID, another question       */
} cnd_dnsc_drop_t;

/* A question to ask.  cnd_dnsc_query_init() sets the defaults. */
typedef struct cnd_dnsc_query_s {
    const char *name; /* text: "example.com" or "example.com."      */
    uint16_t type;    /* KNOT_RRTYPE_*; default A                  */
    uint16_t cls;     /* KNOT_CLASS_*; default IN                  */
    bool rd;          /* recursion desired; default on             */
    bool cd;          /* checking disabled                         */
    bool do_bit;      /* DNSSEC OK (needs edns)                    */
    bool edns;        /* send an OPT record; default on            */
    uint16_t payload; /* its UDP payload size; default 1232        */
} cnd_dnsc_query_t;

/* How to exchange a query. */
typedef struct cnd_dnsc_opts_s {
    unsigned timeout_ms; /* the whole exchange, per transport; 0: 5 s */
    bool tcp;            /* TCP from the start                        */
    bool tc_retry;       /* UDP reply with TC: ask again over TCP     */
    /* Called for each message dropped (see cnd_dnsc_drop_t), or NULL. */
    void (*on_drop)(void *arg, cnd_dnsc_drop_t why, const uint8_t *wire,
                    size_t len);
    void *arg;
} cnd_dnsc_opts_t;

/* What an exchange did. */
typedef struct cnd_dnsc_res_s {
    int err;          /* CND_DNSC_OK or a cnd_dnsc_err_t            */
    int sys_errno;    /* the errno behind err, or 0                 */
    bool sent;        /* set up (UDP: sent; TCP: connected) before
                         err: the exchange failed, not the setup    */
    bool tcp;         /* the last attempt went over TCP             */
    bool tc_retried;  /* the UDP reply had TC: TCP was used         */
    unsigned dropped; /* messages dropped (cnd_dnsc_drop_t)         */
    uint64_t rtt_us;  /* from sending (TCP: connecting) to the reply */
    size_t len;       /* the reply's length (also with EMALFORMED)  */
} cnd_dnsc_res_t;

/* One Extended DNS Error of a reply. */
typedef struct cnd_dnsc_ede_s {
    uint16_t code;       /* RFC 8914 INFO-CODE (names: dns/ede.h)     */
    uint16_t text_len;   /* bytes of EXTRA-TEXT, 0 when none           */
    const uint8_t *text; /* into the reply: UTF-8, not NUL-terminated */
} cnd_dnsc_ede_t;

/* EDE options kept per reply; more are counted in ede_total only. */
#define CND_DNSC_MAX_EDE 8

/* What cnd_dnsc_parse() read from a reply. */
typedef struct cnd_dnsc_reply_s {
    uint16_t id;
    uint16_t flags;   /* CND_DNSC_QR ... CND_DNSC_CD                */
    uint8_t opcode;   /* KNOT_OPCODE_*                               */
    uint16_t rcode;   /* 12 bits: the header's 4 and the OPT's 8     */
    uint16_t qdcount; /* the header's counts                         */
    uint16_t ancount;
    uint16_t nscount;
    uint16_t arcount;
    bool edns;            /* an OPT record came                      */
    uint8_t edns_version; /* its version, flags and payload size     */
    uint16_t edns_flags;  /* CND_DNSC_DO and the MBZ bits            */
    uint16_t payload;
    size_t opt_rdata; /* where its options are: offset and length   */
    uint16_t opt_rdlen;
    size_t nede;      /* EDE options in ede[]                       */
    size_t ede_total; /* EDE options in the reply                   */
    cnd_dnsc_ede_t ede[CND_DNSC_MAX_EDE];
    size_t end; /* where the last record ends: after it is trailing
                   garbage (end < len), or up to where it parsed   */
} cnd_dnsc_reply_t;

/* Fill @q with the defaults: @name, type A, class IN, RD, EDNS 1232. */
void cnd_dnsc_query_init(cnd_dnsc_query_t *q, const char *name);

/* Write @q into @buf (@size bytes) with a random ID.  Returns the length,
 * -EINVAL when the name is not a legal name, -ENOSPC when @size is too
 * small, -EIO when no random number could be had. */
int cnd_dnsc_build(const cnd_dnsc_query_t *q, uint8_t *buf, size_t size);

/* Send @query (@qlen bytes, as cnd_dnsc_build() made it) to @sa and wait
 * for the reply, at most @o->timeout_ms per transport.  UDP goes through a
 * connected socket, so that ICMP errors are reported (EREFUSED) and the
 * kernel drops datagrams from other addresses.  A reply must carry the
 * query's ID and question (none is accepted: FORMERR and the like may
 * leave it out); other messages are dropped, counted and reported to
 * @o->on_drop, and the wait goes on.  The reply is written to @reply
 * (@cap bytes; CND_DNSC_MAX_MSG holds any).  Fills @res and returns
 * @res->err. */
int cnd_dnsc_exchange(const struct sockaddr *sa, socklen_t salen,
                      const uint8_t *query, size_t qlen, uint8_t *reply,
                      size_t cap, const cnd_dnsc_opts_t *o,
                      cnd_dnsc_res_t *res);

/* dig's words for @err, e.g. "timed out", "connection refused",
 * "network unreachable" (@sys_errno tells which unreachable). */
const char *cnd_dnsc_strerror(int err, int sys_errno);

/* Read the reply @buf (@len bytes) into @r.  Returns 0, or -EINVAL when
 * it is malformed: then @r holds what came before the fault (the header's
 * fields whenever @len >= 12). */
int cnd_dnsc_parse(const uint8_t *buf, size_t len, cnd_dnsc_reply_t *r);

/* Walk the options of an OPT record's RDATA (@rdata, @rdlen bytes) from
 * *@pos (start at 0): 1 with the next one's code and data, 0 at the end,
 * -EINVAL when an option runs past the end. */
int cnd_dnsc_opt_next(const uint8_t *rdata, size_t rdlen, size_t *pos,
                      uint16_t *code, const uint8_t **data, uint16_t *dlen);

/* A numeric IPv4 or IPv6 address (with an IPv6 zone: "fe80::1%eth0") and
 * a port into @ss.  Returns 0, or -EINVAL when @ip is not an address. */
int cnd_dnsc_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss,
                  socklen_t *len);

/* The first "nameserver" of the resolv.conf file @path into @buf.
 * Returns 0, -ENOENT when the file names none, -errno when it cannot be
 * read, -ENOSPC when @size is too small. */
int cnd_dnsc_resolv_conf(const char *path, char *buf, size_t size);

#endif
