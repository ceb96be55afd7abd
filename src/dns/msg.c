/* SPDX-License-Identifier: MIT */
/*
 * dns/msg.c - thin helpers over wire-format messages.
 *
 * Finalizing copies records as opaque byte ranges: cutting a message at a
 * record boundary and removing OPT never breaks a compression pointer,
 * because pointers only point backwards and nothing points into an OPT
 * (its owner is the root).
 */
#include "dns/msg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns/ede.h"

#define WIRE_HDR  12
#define OPT_FIXED CND_MSG_OPT_SIZE /* owner, type, class, TTL, RDLENGTH */


static inline uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}


static inline void
wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}


long
cnd_wire_skip_name(const uint8_t *wire, size_t len, size_t pos)
{
    /* libknot's check: labels, the 255-octet limit (the root's octet
     * included), pointers only backwards, each target checked too. */
    if (pos >= len) {
        return -1;
    }
    int n = knot_dname_wire_check(wire + pos, wire + len, wire);
    return n > 0 ? (long)(pos + (size_t)n) : -1;
}


int
cnd_rr_iter_init(cnd_rr_iter_t *it, const uint8_t *wire, size_t len)
{
    memset(it, 0, sizeof(*it));
    if (len < WIRE_HDR) {
        return -EINVAL;
    }
    size_t pos = WIRE_HDR;
    for (uint16_t i = 0, qd = rd16(wire + 4); i < qd; i++) {
        long p = cnd_wire_skip_name(wire, len, pos);
        if (p < 0 || (size_t)p + 4 > len) {
            return -EINVAL;
        }
        pos = (size_t)p + 4;
    }
    it->wire = wire;
    it->len = len;
    it->pos = it->question_end = pos;
    it->left[0] = rd16(wire + 6);
    it->left[1] = rd16(wire + 8);
    it->left[2] = rd16(wire + 10);
    return 0;
}


int
cnd_rr_next(cnd_rr_iter_t *it, cnd_rr_t *rr)
{
    while (it->section < 3 && it->left[it->section] == 0) {
        it->section++;
    }
    if (it->section == 3) {
        return 0;
    }
    long p = cnd_wire_skip_name(it->wire, it->len, it->pos);
    if (p < 0 || (size_t)p + 10 > it->len) {
        return -EINVAL;
    }
    const uint8_t *h = it->wire + p;
    rr->start = it->pos;
    rr->type = rd16(h);
    rr->cls = rd16(h + 2);
    rr->ttl_off = (size_t)p + 4;
    rr->ttl = ((uint32_t)rd16(h + 4) << 16) | rd16(h + 6);
    rr->rdlen = rd16(h + 8);
    rr->rdata = (size_t)p + 10;
    rr->end = rr->rdata + rr->rdlen;
    rr->section = KNOT_ANSWER + it->section;
    if (rr->end > it->len) {
        return -EINVAL;
    }
    it->pos = rr->end;
    it->left[it->section]--;
    return 1;
}


static size_t
final_opt_size(const cnd_finalize_t *f, bool with_ede)
{
    if (!f->edns) {
        return 0;
    }
    size_t n = OPT_FIXED;
    for (size_t i = 0; with_ede && i < f->nede; i++) {
        n += 6 + (f->ede[i].text != NULL ? strlen(f->ede[i].text) : 0);
    }
    return n;
}


size_t
cnd_msg_final_size(size_t resp_len, const cnd_finalize_t *f)
{
    return resp_len + final_opt_size(f, true);
}


static size_t
write_opt(uint8_t *out, const cnd_finalize_t *f, bool with_ede)
{
    size_t n = 0;
    out[n++] = 0; /* root owner */
    wr16(out + n, KNOT_RRTYPE_OPT);
    n += 2;
    wr16(out + n, CND_EDNS_PAYLOAD);
    n += 2;
    out[n++] = f->ext_rcode;
    out[n++] = 0; /* version */
    out[n++] = f->do_bit ? 0x80 : 0;
    out[n++] = 0;
    size_t rdlen_at = n;
    n += 2;
    for (size_t i = 0; with_ede && i < f->nede; i++) {
        size_t tl = f->ede[i].text != NULL ? strlen(f->ede[i].text) : 0;
        wr16(out + n, CND_EDNS_EDE);
        wr16(out + n + 2, (uint16_t)(2 + tl));
        wr16(out + n + 4, f->ede[i].code);
        if (tl != 0) {
            memcpy(out + n + 6, f->ede[i].text, tl);
        }
        n += 6 + tl;
    }
    wr16(out + rdlen_at, (uint16_t)(n - rdlen_at - 2));
    return n;
}


size_t
cnd_msg_write_opt(uint8_t *out, bool do_bit)
{
    cnd_finalize_t f = {.edns = true, .do_bit = do_bit};
    return write_opt(out, &f, false);
}


int
cnd_msg_finalize(const uint8_t *resp, size_t resp_len, const cnd_finalize_t *f,
                 uint8_t *out, size_t outcap)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    int rc;
    if (cnd_rr_iter_init(&it, resp, resp_len) != 0) {
        return -EINVAL;
    }
    size_t hq = it.question_end;

    /* Pass 1: validate and measure the records that are kept. */
    size_t body = 0;
    while ((rc = cnd_rr_next(&it, &rr)) == 1) {
        if (rr.type != KNOT_RRTYPE_OPT) {
            body += rr.end - rr.start;
        }
    }
    if (rc < 0) {
        return -EINVAL;
    }
    size_t limit = f->max_size < 512 ? 512 : f->max_size;
    size_t full = final_opt_size(f, true), bare = final_opt_size(f, false);
    bool with_ede = true, tc = false;
    if (hq + body + full > limit) {
        with_ede = false;
        tc = f->nede > 0 && f->edns;
    }
    size_t opt = with_ede ? full : bare;
    if (outcap < hq + opt || hq + opt > limit) {
        return -ENOSPC;
    }

    /* Pass 2: copy what fits, in order, up to the first that does not. */
    memcpy(out, resp, hq);
    size_t o = hq;
    uint16_t kept[3] = {0, 0, 0};
    cnd_rr_iter_init(&it, resp, resp_len);
    while (cnd_rr_next(&it, &rr) == 1) {
        size_t rl = rr.end - rr.start;
        if (rr.type == KNOT_RRTYPE_OPT) {
            continue;
        }
        if (o + rl + opt > limit || o + rl + opt > outcap) {
            tc = true; /* this one and all after it are cut */
            break;
        }
        memcpy(out + o, resp + rr.start, rl);
        o += rl;
        kept[rr.section - KNOT_ANSWER]++;
    }
    wr16(out + 6, kept[0]);
    wr16(out + 8, kept[1]);
    wr16(out + 10, (uint16_t)(kept[2] + (f->edns ? 1 : 0)));
    wr16(out, f->id);
    if (tc) {
        out[2] |= 0x02;
    }
    if (f->edns) {
        o += write_opt(out + o, f, with_ede);
    }
    return (int)o;
}


int
cnd_msg_add_option(const uint8_t *q, size_t len, uint16_t code,
                   const uint8_t *data, uint16_t dlen, uint16_t payload,
                   uint8_t *out, size_t outcap)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr, opt = {0};
    int rc;
    bool has_opt = false, opt_last = false;
    if (cnd_rr_iter_init(&it, q, len) != 0) {
        return -EINVAL;
    }
    while ((rc = cnd_rr_next(&it, &rr)) == 1) {
        opt_last = false;
        if (rr.type == KNOT_RRTYPE_OPT && rr.section == KNOT_ADDITIONAL) {
            opt = rr;
            has_opt = opt_last = true;
        }
    }
    if (rc < 0 || (has_opt && (!opt_last || opt.end != len))) {
        return -EINVAL;
    }
    size_t add = 4 + (size_t)dlen + (has_opt ? 0 : 11);
    if (len + add > outcap || len + add > 65535 ||
        (has_opt && opt.rdlen + 4 + (size_t)dlen > 65535)) {
        return -ENOSPC;
    }
    memcpy(out, q, len);
    uint8_t *p = out + len;
    if (has_opt) {
        knot_wire_write_u16(out + opt.rdata - 2,
                            (uint16_t)(opt.rdlen + 4 + dlen));
    } else {
        /* root owner, OPT, payload, TTL 0 (no flags), RDLENGTH */
        *p++ = 0;
        knot_wire_write_u16(p, KNOT_RRTYPE_OPT);
        knot_wire_write_u16(p + 2, payload);
        memset(p + 4, 0, 4);
        knot_wire_write_u16(p + 8, (uint16_t)(4 + dlen));
        p += 10;
        knot_wire_set_arcount(out, (uint16_t)(knot_wire_get_arcount(out) + 1));
    }
    knot_wire_write_u16(p, code);
    knot_wire_write_u16(p + 2, dlen);
    if (dlen > 0) {
        memcpy(p + 4, data, dlen);
    }
    return (int)(len + add);
}


int
cnd_msg_bare_reply(const uint8_t *q, size_t qsize, uint16_t rcode, uint8_t *out,
                   size_t outcap)
{
    if (qsize < WIRE_HDR || outcap < qsize) {
        return -ENOSPC;
    }
    memcpy(out, q, qsize);
    /* flags1: QR | opcode | AA | TC | RD -> keep opcode and RD */
    out[2] = (uint8_t)(0x80 | (q[2] & 0x79));
    /* flags2: RA | Z | AD | CD | rcode -> keep CD */
    out[3] = (uint8_t)((q[3] & 0x10) | (rcode & 0x0f));
    if (qsize == WIRE_HDR) {
        wr16(out + 4, 0);
    }
    wr16(out + 6, 0);
    wr16(out + 8, 0);
    wr16(out + 10, 0);
    return (int)qsize;
}


bool
cnd_msg_read_light(const uint8_t *wire, size_t len, uint8_t *name,
                   cnd_qlight_t *q)
{
    if (len < WIRE_HDR || knot_wire_get_qdcount(wire) != 1 ||
        knot_wire_get_ancount(wire) != 0 || knot_wire_get_nscount(wire) != 0 ||
        knot_wire_get_arcount(wire) > 1) {
        return false;
    }
    int nl = knot_dname_wire_check(wire + WIRE_HDR, wire + len, NULL);
    size_t qend = WIRE_HDR + (size_t)nl + 4;
    if (nl <= 0 || qend > len) {
        return false;
    }
    size_t rest = knot_wire_get_arcount(wire) == 1 ? OPT_FIXED : 0;
    const uint8_t *opt = wire + qend;
    if (qend + rest != len ||
        (rest != 0 && (opt[0] != 0 || rd16(opt + 1) != KNOT_RRTYPE_OPT ||
                       rd16(opt + 9) != 0))) {
        return false;
    }
    /* Lowercased as it is copied: label lengths (0-63) are below 'A',
     * so the whole name can go through one loop. */
    const uint8_t *src = wire + WIRE_HDR;
    for (int i = 0; i < nl; i++) {
        uint8_t c = src[i];
        name[i] = (uint8_t)((unsigned)(c - 'A') < 26u ? c + 32 : c);
    }
    q->qtype = rd16(wire + qend - 4);
    q->qclass = rd16(wire + qend - 2);
    q->question_end = (uint16_t)qend;
    q->edns = rest != 0;
    q->udp_size = rest != 0 ? rd16(opt + 3) : 0;
    q->edns_version = rest != 0 ? opt[6] : 0;
    q->do_bit = rest != 0 && (opt[7] & 0x80) != 0;
    return true;
}


cnd_reply_check_t
cnd_msg_check_reply(const uint8_t *q, size_t qlen, const uint8_t *reply,
                    size_t rlen)
{
    if (rlen < WIRE_HDR || !knot_wire_get_qr(reply) || qlen < WIRE_HDR) {
        return CND_REPLY_MALFORMED;
    }
    if (knot_wire_get_id(reply) != knot_wire_get_id(q)) {
        return CND_REPLY_WRONG_ID;
    }
    uint16_t qd = knot_wire_get_qdcount(reply);
    if (qd == 0) {
        uint8_t rcode = knot_wire_get_rcode(reply);
        return rcode == KNOT_RCODE_FORMERR || rcode == KNOT_RCODE_NOTIMPL
                   ? CND_REPLY_OK
                   : CND_REPLY_NO_QUESTION;
    }
    /* The first name of a message has nothing before it to point to:
     * no compression (libknot's check without a packet refuses it). */
    int rn = knot_dname_wire_check(reply + WIRE_HDR, reply + rlen, NULL);
    int qn = knot_dname_wire_check(q + WIRE_HDR, q + qlen, NULL);
    if (rn <= 0 || WIRE_HDR + (size_t)rn + 4 > rlen) {
        return CND_REPLY_MALFORMED;
    }
    if (qd != 1 || qn <= 0 || WIRE_HDR + (size_t)qn + 4 > qlen ||
        !knot_dname_is_case_equal(reply + WIRE_HDR, q + WIRE_HDR) ||
        memcmp(reply + WIRE_HDR + rn, q + WIRE_HDR + qn, 4) != 0) {
        return CND_REPLY_WRONG_QUESTION;
    }
    return CND_REPLY_OK;
}


cnd_resp_type_t
cnd_msg_typify(const uint8_t *wire, size_t len)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    if (cnd_rr_iter_init(&it, wire, len) != 0) {
        return CND_RESP_OTHERERROR;
    }
    uint8_t opcode = (wire[2] >> 3) & 0x0f;
    uint8_t rcode = wire[3] & 0x0f;
    if (opcode == KNOT_OPCODE_UPDATE) {
        return CND_RESP_UPDATE;
    }
    if (opcode == KNOT_OPCODE_NOTIFY) {
        return CND_RESP_META;
    }
    if (rd16(wire + 4) > 0) {
        long p = cnd_wire_skip_name(wire, len, WIRE_HDR);
        uint16_t qtype = rd16(wire + p);
        if (qtype == KNOT_RRTYPE_AXFR || qtype == KNOT_RRTYPE_IXFR) {
            return CND_RESP_META;
        }
    }
    if (rd16(wire + 6) > 0 && rcode == KNOT_RCODE_NOERROR) {
        return CND_RESP_NOERROR;
    }
    bool soa = false;
    unsigned ns = 0;
    while (cnd_rr_next(&it, &rr) == 1) {
        if (rr.section == KNOT_AUTHORITY) {
            soa |= rr.type == KNOT_RRTYPE_SOA;
            ns += rr.type == KNOT_RRTYPE_NS;
        }
    }
    if (soa && rcode == KNOT_RCODE_NOERROR) {
        return CND_RESP_NODATA;
    }
    if (rcode == KNOT_RCODE_NXDOMAIN) {
        return CND_RESP_NXDOMAIN;
    }
    if (ns > 0 && rcode == KNOT_RCODE_NOERROR) {
        return CND_RESP_DELEGATION;
    }
    if (rcode == KNOT_RCODE_NOERROR) {
        return CND_RESP_NOERROR;
    }
    return CND_RESP_OTHERERROR;
}


static void *
arena_mm_alloc(void *ctx, size_t len)
{
    return cnd_arena_alloc(ctx, len);
}


static void
arena_mm_free(void *p)
{
    (void)p;
}


void
cnd_knot_mm(knot_mm_t *mm, cnd_arena_t *a)
{
    mm->ctx = a;
    mm->alloc = arena_mm_alloc;
    mm->free = arena_mm_free;
}


static const char *const rcode_names[] = {
    "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",   "REFUSED",
    "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE",  NULL,
    NULL,       NULL,      NULL,       NULL,       "BADSIG",   "BADKEY",
    "BADTIME",  "BADMODE", "BADNAME",  "BADALG",   "BADTRUNC", "BADCOOKIE",
};


int
cnd_rcode_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(rcode_names) / sizeof(rcode_names[0]));
         i++) {
        if (rcode_names[i] != NULL && strcasecmp(s, rcode_names[i]) == 0) {
            return i;
        }
    }
    return strcasecmp(s, "NOTIMPL") == 0 ? KNOT_RCODE_NOTIMPL : -1;
}


const char *
cnd_rcode_str(uint16_t rcode, char *buf, size_t size)
{
    if (rcode < sizeof(rcode_names) / sizeof(rcode_names[0]) &&
        rcode_names[rcode] != NULL) {
        return rcode_names[rcode];
    }
    snprintf(buf, size, "%u", rcode);
    return buf;
}


const char *
cnd_type_str(uint16_t type, char *buf, size_t size)
{
    if (knot_rrtype_to_string(type, buf, size) < 0) {
        snprintf(buf, size, "TYPE%u", type);
    }
    return buf;
}


const char *
cnd_class_str(uint16_t cls, char *buf, size_t size)
{
    switch (cls) {
    case 1:
        return "IN";
    case 3:
        return "CH";
    case 4:
        return "HS";
    case 254:
        return "NONE";
    case 255:
        return "ANY";
    default:
        snprintf(buf, size, "CLASS%u", cls);
        return buf;
    }
}


const char *
cnd_flags_str(const uint8_t *wire, char *buf, size_t size)
{
    static const struct {
        int byte;
        uint8_t bit;
        const char *name;
    } flags[] = {
        {2, 0x80, "qr"}, {2, 0x04, "aa"}, {2, 0x02, "tc"}, {2, 0x01, "rd"},
        {3, 0x80, "ra"}, {3, 0x40, "z"},  {3, 0x20, "ad"}, {3, 0x10, "cd"},
    };
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (wire[flags[i].byte] & flags[i].bit) {
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "," : "",
                                  flags[i].name);
            if (n >= size) {
                break;
            }
        }
    }
    if (n == 0) {
        snprintf(buf, size, "-");
    }
    return buf;
}
