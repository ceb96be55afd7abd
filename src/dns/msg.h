/* SPDX-License-Identifier: MIT */
/*
 * dns/msg.h - thin helpers over wire-format messages.
 *
 * libknot parses and builds messages; these are the few things candor
 * does to whole messages on the way out that libknot has no call for:
 * walking the records of an answer to re-count and cut them, replacing
 * the OPT with the server's own (EDE options included), truncating to the
 * client's size with TC, and the bare replies the server writes itself.
 * Every function bounds-checks the wire and never trusts the counts.
 */
#ifndef CND_DNS_MSG_H
#define CND_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libknot/libknot.h>

#include "util/arena.h"

/* The UDP payload size candor advertises (DNS Flag Day 2020). */
#define CND_EDNS_PAYLOAD 1232

/* One EDE option to add. */
typedef struct cnd_ede_out_s {
    uint16_t code;
    const char *text; /* UTF-8, may be NULL */
} cnd_ede_out_t;

/* How to finish an answer for the client. */
typedef struct cnd_finalize_s {
    uint16_t id;       /* the query's ID                         */
    uint16_t max_size; /* the client's limit (512..65535)        */
    bool edns;         /* the client sent OPT: add ours          */
    bool do_bit;       /* echo DO                                */
    uint8_t ext_rcode; /* upper 8 bits of the rcode (BADVERS: 1) */
    const cnd_ede_out_t *ede;
    size_t nede;
} cnd_finalize_t;

/* Skip the (possibly compressed) name at @pos of @wire, checked by
 * knot_dname_wire_check(): at most 255 octets, compression pointers only
 * backwards.  Returns the offset after it, or -1 when it runs past @len or
 * is malformed. */
long cnd_wire_skip_name(const uint8_t *wire, size_t len, size_t pos);

/* One resource record of a message, as offsets into its wire. */
typedef struct cnd_rr_s {
    size_t start, end; /* the record's bytes                        */
    size_t ttl_off;    /* its TTL field                             */
    size_t rdata;      /* its RDATA                                 */
    uint16_t rdlen;
    uint16_t type, cls;
    uint32_t ttl;
    int section; /* KNOT_ANSWER, KNOT_AUTHORITY, KNOT_ADDITIONAL */
} cnd_rr_t;

/* A walk over the records of a message, section by section. */
typedef struct cnd_rr_iter_s {
    const uint8_t *wire;
    size_t len;
    size_t pos;
    size_t question_end; /* where the records start                  */
    uint16_t left[3];    /* records not yet walked, per section      */
    int section;
} cnd_rr_iter_t;

/* Start walking @wire's records, after its header and questions.
 * Returns 0, or -EINVAL when the header or a question is malformed. */
int cnd_rr_iter_init(cnd_rr_iter_t *it, const uint8_t *wire, size_t len);

/* The next record: 1 (and @rr filled), 0 at the end, -EINVAL when the
 * message is malformed (a record runs past the end, a bad name). */
int cnd_rr_next(cnd_rr_iter_t *it, cnd_rr_t *rr);

/* Bytes needed for cnd_msg_finalize() output: an upper bound. */
size_t cnd_msg_final_size(size_t resp_len, const cnd_finalize_t *f);

/* Write the answer the client gets into @out (@outcap bytes, at least
 * cnd_msg_final_size()): @resp's header and records with any OPT removed,
 * the ID set, the server's OPT (payload 1232, DO echoed, EDE options)
 * when the client sent one, cut to @f->max_size at a record boundary with
 * TC set when records were dropped; EDE options are dropped first (with
 * TC, RFC 8914 section 3).  Returns the length, or -EINVAL when @resp is
 * not a well-formed message. */
int cnd_msg_finalize(const uint8_t *resp, size_t resp_len,
                     const cnd_finalize_t *f, uint8_t *out, size_t outcap);

/* Bytes of an OPT record without options. */
#define CND_MSG_OPT_SIZE 11

/* Write the server's OPT without options (payload 1232, DO as @do_bit)
 * at @out, which has CND_MSG_OPT_SIZE bytes: what cnd_msg_finalize()
 * appends to an answer that carries no EDE.  Returns CND_MSG_OPT_SIZE. */
size_t cnd_msg_write_opt(uint8_t *out, bool do_bit);

/* CoreDNS's SetRcode reply to query @q (@qsize bytes of header and
 * question): QR set; ID, opcode, RD, CD and the question copied; AA, RA,
 * TC, AD clear; no records.  @rcode's low 4 bits go in the header.
 * Returns the length (== @qsize) or -ENOSPC. */
int cnd_msg_bare_reply(const uint8_t *q, size_t qsize, uint16_t rcode,
                       uint8_t *out, size_t outcap);

/* Copy query @q (@len bytes) to @out with one more EDNS option (@code,
 * @dlen bytes of @data) in its OPT, adding an OPT (payload @payload, no
 * flags) when it has none.  The OPT must be the last record (no TSIG
 * after it).  Returns the new length, -ENOSPC when @outcap is too small,
 * or -EINVAL when @q is malformed or its OPT is not last. */
int cnd_msg_add_option(const uint8_t *q, size_t len, uint16_t code,
                       const uint8_t *data, uint16_t dlen, uint16_t payload,
                       uint8_t *out, size_t outcap);

/* What the light read of a query found. */
typedef struct cnd_qlight_s {
    uint16_t qtype, qclass;
    uint16_t question_end; /* bytes of header and question     */
    bool edns;             /* an OPT                           */
    bool do_bit;           /* its DO                           */
    uint8_t edns_version;  /* its version                      */
    uint16_t udp_size;     /* its payload size, as sent        */
} cnd_qlight_t;

/* The light read of a query: a message of exactly a header, one
 * question whose name is not compressed, and at most an OPT (root owner)
 * without options, which is what nearly every client sends, is read
 * without libknot's parse of the whole message, the name lowercased into
 * @name (KNOT_DNAME_MAXLEN bytes).  Returns false for anything else,
 * which only libknot may read: the light read takes no message libknot
 * refuses, and reads what it takes as libknot does (test_msg.c holds it
 * to that over every byte of mutated queries). */
bool cnd_msg_read_light(const uint8_t *wire, size_t len, uint8_t *name,
                        cnd_qlight_t *q);

/* Whether a reply answers a query, and if not, why. */
typedef enum {
    CND_REPLY_OK = 0,
    CND_REPLY_MALFORMED,      /* shorter than a header, QR clear, or a
                                 question that does not parse          */
    CND_REPLY_WRONG_ID,       /* another ID                            */
    CND_REPLY_NO_QUESTION,    /* QDCOUNT 0, not a FORMERR or NOTIMP    */
    CND_REPLY_WRONG_QUESTION, /* another name, type or class, or QD > 1 */
} cnd_reply_check_t;

/* Does @reply (@rlen bytes) answer query @q (@qlen bytes, a header and
 * one question)?  Its ID, and its question's name (in any case), type
 * and class must be the query's.  A FORMERR or NOTIMP without a
 * question is taken too (old servers answer EDNS so); whoever calls
 * checks that it came from the address and port asked. */
cnd_reply_check_t cnd_msg_check_reply(const uint8_t *q, size_t qlen,
                                      const uint8_t *reply, size_t rlen);

/* What kind of answer a message is (CoreDNS's response.Typify). */
typedef enum {
    CND_RESP_NOERROR = 0, /* NOERROR with answers                  */
    CND_RESP_NXDOMAIN,    /* name error                             */
    CND_RESP_NODATA,      /* NOERROR, no answer, SOA in authority   */
    CND_RESP_DELEGATION,  /* NOERROR, no answer, NS in authority    */
    CND_RESP_META,        /* NOTIFY, AXFR, IXFR                     */
    CND_RESP_UPDATE,      /* UPDATE                                 */
    CND_RESP_OTHERERROR,  /* anything else: SERVFAIL, REFUSED, ...  */
} cnd_resp_type_t;

/* Classify an answer as CoreDNS does for cache and log. */
cnd_resp_type_t cnd_msg_typify(const uint8_t *wire, size_t len);

/* A knot_mm_t that allocates from @a (free is a no-op). */
void cnd_knot_mm(knot_mm_t *mm, cnd_arena_t *a);

/* Names as CoreDNS prints them: "NOERROR", "NXDOMAIN", "BADSIG" (16),
 * else the number; "A", "TYPE65280"; "IN", "CH", "CLASS7".  The
 * returned string is static or written to @buf. */
const char *cnd_rcode_str(uint16_t rcode, char *buf, size_t size);
/* The rcode named @s ("SERVFAIL", any case; "NOTIMPL" too), or -1. */
int cnd_rcode_parse(const char *s);
const char *cnd_type_str(uint16_t type, char *buf, size_t size);
const char *cnd_class_str(uint16_t cls, char *buf, size_t size);

/* Header flags in CoreDNS's log order, comma-separated: "qr,aa,rd,ra". */
const char *cnd_flags_str(const uint8_t *wire, char *buf, size_t size);

#endif
