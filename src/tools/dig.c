/* SPDX-License-Identifier: MIT */
/*
 * tools/dig.c - "candor dig": one query, printed as dig 9.18 prints it.
 *
 * The output is dig's, line for line, so that whatever reads dig's output
 * (people, scripts, the tests) reads this too: the banner, the header and
 * flags, the OPT pseudosection with every Extended DNS Error, the sections
 * in dig's columns, the statistics; and on failure dig's own words
 * ("communications error to ...: timed out", "no servers could be
 * reached") and exit statuses.  The query goes through tools/dnsclient.h;
 * records are read and printed with libknot.
 *
 * Everything goes to stdout as dig does, except usage errors (stderr).
 */
#include "tools/dig.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libknot/libknot.h>

#include "core/server.h"
#include "dns/ede.h"
#include "dns/msg.h"
#include "tools/dnsclient.h"

#define DIG_MAX_SERVERS 8
#define DIG_RESOLV_CONF "/etc/resolv.conf"
/* Room for any RDATA in text: \DDD escapes take 4 bytes per byte. */
#define DIG_TEXT_MAX (4 * 65536 + 64)

/* What the command line asked for. */
typedef struct {
    const char *server; /* @SERVER, or NULL: resolv.conf's first       */
    bool server_first;  /* it came before the name (dig then says how
                           many addresses it found)                    */
    unsigned port;
    const char *name;
    unsigned type, cls;
    bool type_set;
    bool tcp, dnssec, cd, rec, shortf, edns, ignore, help;
    unsigned timeout_s, tries, bufsize;
    bool timeout_set, tcp_set;
    int argc; /* for the banner */
    char **argv;
} dig_args_t;

/* One server address to try. */
typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
    char host[64]; /* "127.0.0.1"                 */
    char port[8];  /* "53"                        */
} dig_server_t;

/* Everything one run prints from. */
typedef struct {
    const dig_args_t *a;
    const char *server_name; /* as given, or from resolv.conf */
    size_t nservers;
    const dig_server_t *srv; /* the one being asked           */
    uint8_t *query;          /* CND_DNSC_MAX_MSG bytes        */
    uint8_t *reply;          /* CND_DNSC_MAX_MSG bytes        */
    char *text;              /* DIG_TEXT_MAX bytes for RDATA  */
} dig_run_t;


/* ---- the command line ------------------------------------------------- */

typedef enum { OPT_BOOL, OPT_UINT, OPT_RETRY, OPT_EDNS } dig_opt_kind_t;

#define A(field) offsetof(dig_args_t, field)

/* The +options, dig's names and aliases. */
static const struct {
    const char *name;
    dig_opt_kind_t kind;
    size_t offset;
    unsigned max;
} dig_opts[] = {
    {"tcp", OPT_BOOL, A(tcp), 0},
    {"vc", OPT_BOOL, A(tcp), 0},
    {"dnssec", OPT_BOOL, A(dnssec), 0},
    {"cd", OPT_BOOL, A(cd), 0},
    {"cdflag", OPT_BOOL, A(cd), 0},
    {"rec", OPT_BOOL, A(rec), 0},
    {"recurse", OPT_BOOL, A(rec), 0},
    {"short", OPT_BOOL, A(shortf), 0},
    {"ignore", OPT_BOOL, A(ignore), 0},
    {"edns", OPT_EDNS, A(edns), 0},
    {"time", OPT_UINT, A(timeout_s), 3600},
    {"timeout", OPT_UINT, A(timeout_s), 3600},
    {"tries", OPT_UINT, A(tries), 100},
    {"retry", OPT_RETRY, A(tries), 99},
    {"bufsize", OPT_UINT, A(bufsize), 65535},
};


static void
dig_usage(FILE *f)
{
    fprintf(f, "Usage: candor dig [@SERVER] [-p PORT] [-t TYPE] [-c CLASS] "
               "[-q NAME] [+OPTION...]\n"
               "                  NAME [TYPE] [CLASS]\n"
               "  @SERVER       the server to ask, an address or a name "
               "(default: the first\n"
               "                nameserver of " DIG_RESOLV_CONF ")\n"
               "  -p PORT       its port (default 53)\n"
               "  +tcp          ask over TCP (default: UDP, and TCP when the "
               "answer is truncated)\n"
               "  +ignore       do not ask again over TCP when the answer is "
               "truncated\n"
               "  +dnssec       set the DO bit\n"
               "  +cd           set the CD bit\n"
               "  +norec        clear the RD bit (default: set)\n"
               "  +noedns       send no OPT record (default: EDNS, payload "
               "1232)\n"
               "  +bufsize=N    the EDNS UDP payload size\n"
               "  +short        print the answer's data only\n"
               "  +timeout=N    seconds to wait for each try (default 5, TCP "
               "10)\n"
               "  +tries=N      tries (default 3); +retry=N: N+1 tries\n"
               "Exit status: 0 an answer came (whatever its rcode), 1 usage, "
               "9 no reply,\n"
               "10 a bad name or an unknown server.\n");
}


/* Print a usage error and return the usage exit status. */
static int
dig_bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "candor dig: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    dig_usage(stderr);
    return CND_DIG_EXIT_USAGE;
}


/* A decimal number 0..@max: 0, or -1. */
static int
dig_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || errno != 0 || v > max) {
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}


/* One +option (without the '+').  0, or the usage exit status. */
static int
dig_plus(dig_args_t *a, const char *arg)
{
    bool no = strncmp(arg, "no", 2) == 0;
    const char *name = no ? arg + 2 : arg;
    const char *value = strchr(name, '=');
    size_t nl = value != NULL ? (size_t)(value - name) : strlen(name);
    size_t i, n = sizeof(dig_opts) / sizeof(dig_opts[0]);
    for (i = 0; i < n; i++) {
        if (strlen(dig_opts[i].name) == nl &&
            strncmp(dig_opts[i].name, name, nl) == 0) {
            break;
        }
    }
    if (i == n) {
        return dig_bad("unknown option +%s", arg);
    }
    void *field = (char *)a + dig_opts[i].offset;
    if (value != NULL) {
        value++;
    }
    switch (dig_opts[i].kind) {
    case OPT_BOOL:
        if (value != NULL) {
            return dig_bad("+%s takes no value", arg);
        }
        *(bool *)field = !no;
        a->tcp_set |= dig_opts[i].offset == A(tcp);
        return 0;
    case OPT_EDNS:
        if (value != NULL && (no || strcmp(value, "0") != 0)) {
            return dig_bad("+%s: only EDNS version 0 is supported", arg);
        }
        *(bool *)field = !no;
        return 0;
    case OPT_UINT:
    case OPT_RETRY: {
        unsigned v;
        if (no || dig_uint(value, dig_opts[i].max, &v) != 0) {
            fprintf(stderr,
                    "candor dig: invalid +%s: give +%.*s=N, N a number "
                    "0-%u\n",
                    arg, (int)nl, name, dig_opts[i].max);
            return CND_DIG_EXIT_USAGE;
        }
        *(unsigned *)field = dig_opts[i].kind == OPT_RETRY ? v + 1 : v;
        if (dig_opts[i].offset == A(timeout_s)) {
            a->timeout_set = true;
        }
        return 0;
    }
    }
    return 0;
}


/* A TYPE or CLASS word: 1 taken, 0 not one. */
static int
dig_type_or_class(dig_args_t *a, const char *arg)
{
    uint16_t v;
    if (knot_rrtype_from_string(arg, &v) == 0) {
        if (a->type_set) {
            fprintf(stderr, ";; Warning, extra type option\n");
        }
        a->type = v;
        a->type_set = true;
        return 1;
    }
    if (knot_rrclass_from_string(arg, &v) == 0) {
        a->cls = v;
        return 1;
    }
    return 0;
}


static int
dig_set_name(dig_args_t *a, const char *name)
{
    if (a->name != NULL) {
        fprintf(stderr,
                "candor dig: one NAME per run: got '%s' and '%s' (candor "
                "dig sends one query; run it once per name)\n",
                a->name, name);
        return CND_DIG_EXIT_USAGE;
    }
    a->name = name;
    return 0;
}


/* -h, and -p PORT, -t TYPE, -c CLASS, -q NAME (the value joined or
 * the next argument) at argv[*i].  0, or the usage exit status. */
static int
dig_dash(dig_args_t *a, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    char f = arg[1];
    if (strcmp(arg, "-h") == 0) {
        a->help = true;
        return 0;
    }
    if (strchr("ptcq", f) == NULL) {
        return dig_bad("unknown option %s", arg);
    }
    const char *v = arg[2] != '\0'  ? arg + 2
                    : *i + 1 < argc ? argv[++*i]
                                    : NULL;
    uint16_t n16;
    if (v == NULL) {
        return dig_bad("%s needs a value", arg);
    }
    switch (f) {
    case 'p':
        if (dig_uint(v, 65535, &a->port) != 0 || a->port == 0) {
            return dig_bad("invalid port '%s': give a number 1-65535", v);
        }
        return 0;
    case 't':
        if (knot_rrtype_from_string(v, &n16) != 0) {
            return dig_bad("unknown type '%s': give a name (MX) or TYPEnnn", v);
        }
        a->type = n16;
        a->type_set = true;
        return 0;
    case 'c':
        if (knot_rrclass_from_string(v, &n16) != 0) {
            return dig_bad("unknown class '%s': give IN, CH, HS or CLASSnnn",
                           v);
        }
        a->cls = n16;
        return 0;
    default:
        return dig_set_name(a, v);
    }
}


static int
dig_parse(int argc, char **argv, dig_args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->port = 53;
    a->type = KNOT_RRTYPE_A;
    a->cls = KNOT_CLASS_IN;
    a->rec = a->edns = true;
    a->timeout_s = 5;
    a->tries = 3;
    a->bufsize = CND_EDNS_PAYLOAD;
    a->argc = argc;
    a->argv = argv;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int rc = 0;
        if (arg[0] == '@') {
            if (arg[1] == '\0') {
                return dig_bad("'%s' names no server: give @ADDRESS", arg);
            }
            a->server = arg + 1;
            a->server_first = a->name == NULL;
        } else if (arg[0] == '+') {
            rc = dig_plus(a, arg + 1);
        } else if (arg[0] == '-' && arg[1] != '\0') {
            rc = dig_dash(a, argc, argv, &i);
        } else if (!dig_type_or_class(a, arg)) {
            rc = dig_set_name(a, arg);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (a->type == KNOT_RRTYPE_AXFR || a->type == KNOT_RRTYPE_IXFR) {
        fprintf(stderr, "candor dig: zone transfers (AXFR, IXFR) are not "
                        "supported: use dig or kdig for them\n");
        return CND_DIG_EXIT_USAGE;
    }
    if (a->name == NULL) {
        /* dig's default: the root's name servers. */
        a->name = ".";
        if (!a->type_set) {
            a->type = KNOT_RRTYPE_NS;
        }
    }
    if (a->type == KNOT_RRTYPE_ANY && !a->tcp_set) {
        a->tcp = true; /* as dig 9.18: ANY answers are big */
    }
    if (a->timeout_s == 0) {
        a->timeout_s = 1;
    }
    if (a->tcp && !a->timeout_set) {
        a->timeout_s = 10;
    }
    if (a->tries == 0) {
        a->tries = 1;
    }
    return 0;
}


/* The addresses of @name, port @port: their number, or 0 after saying
 * why there are none. */
static size_t
dig_servers(const char *name, unsigned port, dig_server_t *out, size_t max)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV,
                             .ai_socktype = SOCK_DGRAM};
    struct addrinfo *res = NULL;
    char svc[8];
    snprintf(svc, sizeof(svc), "%u", port);
    int rc = getaddrinfo(name, svc, &hints, &res);
    if (rc != 0) {
        fprintf(stderr,
                "candor dig: couldn't get address for '%s': %s (give "
                "@SERVER as an IP address or a name this host resolves)\n",
                name, gai_strerror(rc));
        return 0;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
        dig_server_t *s = &out[n];
        if (ai->ai_addrlen > sizeof(s->ss) ||
            getnameinfo(ai->ai_addr, ai->ai_addrlen, s->host, sizeof(s->host),
                        s->port, sizeof(s->port),
                        NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
            continue;
        }
        memcpy(&s->ss, ai->ai_addr, ai->ai_addrlen);
        s->len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        fprintf(stderr, "candor dig: no usable address for '%s'\n", name);
    }
    return n;
}


/* ---- printing ------------------------------------------------------------ */

/* Move from column *col to column @to as dig does: tabs (8 wide) to cross
 * tab stops, spaces otherwise, and at least one space. */
static void
dig_indent(size_t *col, size_t to)
{
    if (to < *col + 1) {
        to = *col + 1;
    }
    size_t tabs = to / 8 - *col / 8;
    size_t spaces = tabs > 0 ? to % 8 : to - *col;
    for (size_t i = 0; i < tabs; i++) {
        putchar('\t');
    }
    for (size_t i = 0; i < spaces; i++) {
        putchar(' ');
    }
    *col = to;
}


/* Print @s and advance *col by its length. */
static void
dig_col_puts(size_t *col, const char *s)
{
    fputs(s, stdout);
    *col += strlen(s);
}


/* Text as dig shows it in EDE and options: bytes below space and DEL as
 * '.', the rest (UTF-8 included) as they are. */
static void
dig_put_text(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        putchar(p[i] < 0x20 || p[i] == 0x7f ? '.' : p[i]);
    }
}


/* "6e 73 31 ("ns1")": bytes in hex, then as text. */
static void
dig_put_hex_text(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        printf("%s%02x", i ? " " : "", p[i]);
    }
    printf(" (\"");
    for (size_t i = 0; i < len; i++) {
        putchar(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.');
    }
    printf("\")");
}


/* One EDE option: "; EDE: 22 (No Reachable Authority): (text)". */
static void
dig_put_ede(const uint8_t *data, uint16_t dlen)
{
    uint16_t code = knot_wire_read_u16(data);
    /* dig names code 0 "Other"; the rest as the IANA registry. */
    const char *name = code == 0 ? "Other" : cnd_ede_name(code);
    printf("; EDE: %u", code);
    if (strcmp(name, "Unknown") != 0) {
        printf(" (%s)", name);
    }
    if (dlen > 2) {
        printf(": (");
        dig_put_text(data + 2, dlen - 2u);
        putchar(')');
    }
    putchar('\n');
}


static void
dig_put_opt(const uint8_t *wire, const cnd_dnsc_reply_t *r)
{
    printf(";; OPT PSEUDOSECTION:\n; EDNS: version: %u, flags:%s;",
           r->edns_version, (r->edns_flags & CND_DNSC_DO) ? " do" : "");
    if (r->edns_flags & ~CND_DNSC_DO) {
        printf(" MBZ: 0x%04x,", r->edns_flags & ~CND_DNSC_DO);
    }
    printf(" udp: %u\n", r->payload);
    size_t pos = 0;
    uint16_t code, dlen;
    const uint8_t *data;
    while (cnd_dnsc_opt_next(wire + r->opt_rdata, r->opt_rdlen, &pos, &code,
                             &data, &dlen) == 1) {
        if (code == CND_EDNS_EDE && dlen >= 2) {
            dig_put_ede(data, dlen);
        } else if (code == KNOT_EDNS_OPTION_COOKIE) {
            printf("; COOKIE: ");
            for (size_t i = 0; i < dlen; i++) {
                printf("%02x", data[i]);
            }
            putchar('\n');
        } else {
            if (code == KNOT_EDNS_OPTION_NSID) {
                printf("; NSID");
            } else {
                printf("; OPT=%u", code);
            }
            putchar(':');
            if (dlen > 0) {
                putchar(' ');
                dig_put_hex_text(data, dlen);
            }
            putchar('\n');
        }
    }
}


/* A walk over the questions and records of a message, as knot_rrset_t
 * (owner and RDATA malloc'd; knot_rrset_clear() each). */
typedef struct {
    const uint8_t *wire;
    size_t len, pos;
    int section; /* 0 question, 1 answer, 2 authority, 3 additional */
    uint16_t left[4];
} dig_walk_t;


static void
dig_walk_init(dig_walk_t *w, const uint8_t *wire, size_t len)
{
    memset(w, 0, sizeof(*w));
    w->wire = wire;
    w->len = len;
    w->pos = 12;
    if (len >= 12) {
        w->left[0] = knot_wire_get_qdcount(wire);
        w->left[1] = knot_wire_get_ancount(wire);
        w->left[2] = knot_wire_get_nscount(wire);
        w->left[3] = knot_wire_get_arcount(wire);
    }
}


/* The next question or record into @rr, its section in w->section:
 * 1, 0 at the end, -1 when it does not parse. */
static int
dig_walk_next(dig_walk_t *w, knot_rrset_t *rr)
{
    while (w->section < 4 && w->left[w->section] == 0) {
        w->section++;
    }
    if (w->section == 4 || w->len < 12) {
        return w->len < 12 ? -1 : 0;
    }
    w->left[w->section]--;
    if (w->section > 0) {
        knot_rrset_init_empty(rr);
        return knot_rrset_rr_from_wire(w->wire, &w->pos, w->len, rr, NULL,
                                       false) == KNOT_EOK
                   ? 1
                   : -1;
    }
    uint8_t name[KNOT_DNAME_MAXLEN];
    const uint8_t *p = w->wire + w->pos;
    int size = knot_dname_wire_check(p, w->wire + w->len, w->wire);
    if (size <= 0 || w->pos + (size_t)size + 4 > w->len ||
        knot_dname_unpack(name, p, sizeof(name), w->wire) <= 0) {
        return -1;
    }
    p += size;
    knot_rrset_init(rr, knot_dname_copy(name, NULL), knot_wire_read_u16(p),
                    knot_wire_read_u16(p + 2), 0);
    w->pos += (size_t)size + 4;
    return rr->owner != NULL ? 1 : -1;
}


/* Do the questions and records of @wire all parse? */
static bool
dig_parses(const uint8_t *wire, size_t len)
{
    dig_walk_t w;
    knot_rrset_t rr;
    int rc;
    dig_walk_init(&w, wire, len);
    while ((rc = dig_walk_next(&w, &rr)) == 1) {
        knot_rrset_clear(&rr, NULL);
    }
    return rc == 0;
}


/* Types whose last field (base64 or hex) dig cuts into chunks of
 * DIG_CHUNK characters. */
static const uint16_t dig_chunked[] = {
    KNOT_RRTYPE_DS,    KNOT_RRTYPE_CDS,     KNOT_RRTYPE_DNSKEY,
    KNOT_RRTYPE_RRSIG, KNOT_RRTYPE_CDNSKEY,
};
#define DIG_CHUNK 56


/* Cut the last field of @text (@cap bytes) into chunks, in place. */
static void
dig_chunk(char *text, size_t cap)
{
    size_t len = strlen(text);
    char *blob = strrchr(text, ' ');
    blob = blob != NULL ? blob + 1 : text;
    size_t blen = len - (size_t)(blob - text);
    size_t cuts = blen > 0 ? (blen - 1) / DIG_CHUNK : 0;
    if (cuts == 0 || len + cuts >= cap) {
        return;
    }
    /* From the end backwards: each chunk moves right by the cuts before
     * it. */
    text[len + cuts] = '\0';
    for (size_t i = blen; i-- > 0;) {
        size_t shift = i / DIG_CHUNK;
        blob[i + shift] = blob[i];
        if (i % DIG_CHUNK == 0 && shift > 0) {
            blob[i + shift - 1] = ' ';
        }
    }
}


/* The RDATA of @rr in text, as libknot writes zone files, with dig's
 * chunks. */
static const char *
dig_rdata(const dig_run_t *run, const knot_rrset_t *rr)
{
    knot_dump_style_t style = KNOT_DUMP_STYLE_DEFAULT;
    if (knot_rrset_txt_dump_data(rr, 0, run->text, DIG_TEXT_MAX, &style) < 0) {
        style.generic = true; /* RFC 3597 "\# LEN HEX": always fits */
        if (knot_rrset_txt_dump_data(rr, 0, run->text, DIG_TEXT_MAX, &style) <
            0) {
            snprintf(run->text, DIG_TEXT_MAX, "\\# 0");
        }
        return run->text;
    }
    for (size_t i = 0; i < sizeof(dig_chunked) / sizeof(dig_chunked[0]); i++) {
        if (rr->type == dig_chunked[i]) {
            dig_chunk(run->text, DIG_TEXT_MAX);
        }
    }
    return run->text;
}


/* One line of a section, in dig's columns: owner, TTL at 24, class at
 * 32, type at 40, RDATA at 48; questions start with ';' and have no TTL
 * (nor is the ';' counted). */
static void
dig_put_rr(const dig_run_t *run, const knot_rrset_t *rr, bool question)
{
    char owner[KNOT_DNAME_TXT_MAXLEN + 1], tbuf[32], cbuf[32], ttl[16];
    if (knot_dname_to_str(owner, rr->owner, sizeof(owner)) == NULL) {
        snprintf(owner, sizeof(owner), "?");
    }
    size_t col = 0;
    if (question) {
        putchar(';');
    }
    dig_col_puts(&col, owner);
    if (!question) {
        dig_indent(&col, 24);
        snprintf(ttl, sizeof(ttl), "%u", rr->ttl);
        dig_col_puts(&col, ttl);
    }
    dig_indent(&col, 32);
    dig_col_puts(&col, cnd_class_str(rr->rclass, cbuf, sizeof(cbuf)));
    dig_indent(&col, 40);
    dig_col_puts(&col, cnd_type_str(rr->type, tbuf, sizeof(tbuf)));
    if (!question) {
        dig_indent(&col, 48);
        fputs(dig_rdata(run, rr), stdout);
    }
    putchar('\n');
}


/* The sections, up to the first record that does not parse; the OPT
 * record is the pseudosection, printed before. */
static void
dig_put_sections(const dig_run_t *run, const uint8_t *wire, size_t len,
                 bool edns)
{
    static const char *const names[] = {"QUESTION", "ANSWER", "AUTHORITY",
                                        "ADDITIONAL"};
    dig_walk_t w;
    knot_rrset_t rr;
    int cur = -1;
    dig_walk_init(&w, wire, len);
    while (dig_walk_next(&w, &rr) == 1) {
        if (rr.type != KNOT_RRTYPE_OPT || w.section != 3) {
            if (w.section != cur) {
                printf("%s;; %s SECTION:\n", cur >= 0 ? "\n" : "",
                       names[w.section]);
                cur = w.section;
            }
            dig_put_rr(run, &rr, w.section == 0);
        }
        knot_rrset_clear(&rr, NULL);
    }
    if (cur >= 0 || edns) {
        putchar('\n');
    }
}


/* +short: the RDATA of the answer section, a line each. */
static void
dig_put_short(const dig_run_t *run, const uint8_t *wire, size_t len)
{
    dig_walk_t w;
    knot_rrset_t rr;
    dig_walk_init(&w, wire, len);
    while (dig_walk_next(&w, &rr) == 1) {
        if (w.section == 1) {
            printf("%s\n", dig_rdata(run, &rr));
        }
        knot_rrset_clear(&rr, NULL);
    }
}


/* dig's status words: rcode 16 is BADVERS here (an OPT answer), 11-15
 * are RESERVED. */
static const char *
dig_rcode(uint16_t rcode, char *buf, size_t size)
{
    if (rcode == 16) {
        return "BADVERS";
    }
    if (rcode >= 11 && rcode <= 15) {
        snprintf(buf, size, "RESERVED%u", rcode);
        return buf;
    }
    return cnd_rcode_str(rcode, buf, size);
}


static void
dig_put_banner(const dig_run_t *run)
{
    printf("\n; <<>> candor dig %s <<>>", cnd_version_number);
    for (int i = 0; i < run->a->argc; i++) {
        printf(" %s", run->a->argv[i]);
    }
    putchar('\n');
    if (run->a->server_first) {
        printf("; (%zu server%s found)\n", run->nservers,
               run->nservers == 1 ? "" : "s");
    }
    printf(";; global options: +cmd\n");
}


static void
dig_put_header(const uint8_t *wire, size_t len, const cnd_dnsc_reply_t *r,
               bool whole)
{
    static const char *const opcodes[16] = {
        "QUERY",      "IQUERY",     "STATUS",     "RESERVED3",
        "NOTIFY",     "UPDATE",     "RESERVED6",  "RESERVED7",
        "RESERVED8",  "RESERVED9",  "RESERVED10", "RESERVED11",
        "RESERVED12", "RESERVED13", "RESERVED14", "RESERVED15",
    };
    static const struct {
        uint16_t bit;
        const char *name;
    } flags[] = {
        {CND_DNSC_QR, "qr"}, {CND_DNSC_AA, "aa"}, {CND_DNSC_TC, "tc"},
        {CND_DNSC_RD, "rd"}, {CND_DNSC_RA, "ra"}, {CND_DNSC_AD, "ad"},
        {CND_DNSC_CD, "cd"},
    };
    char rbuf[16];
    printf(";; Got answer:\n;; ->>HEADER<<- opcode: %s, status: %s, id: %u\n"
           ";; flags:",
           opcodes[r->opcode & 0x0f], dig_rcode(r->rcode, rbuf, sizeof(rbuf)),
           r->id);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (r->flags & flags[i].bit) {
            printf(" %s", flags[i].name);
        }
    }
    putchar(';');
    if (r->flags & CND_DNSC_Z) {
        printf(" MBZ: 0x4;");
    }
    printf(" QUERY: %u, ANSWER: %u, AUTHORITY: %u, ADDITIONAL: %u\n",
           r->qdcount, r->ancount, r->nscount, r->arcount);
    if ((r->flags & CND_DNSC_RD) && !(r->flags & CND_DNSC_RA)) {
        printf(";; WARNING: recursion requested but not available\n");
    }
    if (whole && r->end < len) {
        printf(";; WARNING: Message has %zu extra bytes at end\n",
               len - r->end);
    }
    putchar('\n');
    if (r->edns) {
        dig_put_opt(wire, r);
    }
}


static void
dig_put_stats(const dig_run_t *run, const cnd_dnsc_res_t *res, size_t len)
{
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof(when), "%a %b %d %H:%M:%S %Z %Y", &tm);
    printf(";; Query time: %llu msec\n"
           ";; SERVER: %s#%s(%s) (%s)\n"
           ";; WHEN: %s\n"
           ";; MSG SIZE  rcvd: %zu\n\n",
           (unsigned long long)(res->rtt_us / 1000), run->srv->host,
           run->srv->port, run->server_name, res->tcp ? "TCP" : "UDP", when,
           len);
}


/* A reply came (well formed or not): print it as dig does. */
static void
dig_put_reply(const dig_run_t *run, const uint8_t *wire, size_t len,
              const cnd_dnsc_res_t *res)
{
    cnd_dnsc_reply_t r;
    bool whole = cnd_dnsc_parse(wire, len, &r) == 0;
    bool ok = whole && dig_parses(wire, len);
    if (res->tc_retried && !run->a->shortf) {
        printf(";; Truncated, retrying in TCP mode.\n");
    }
    if (!ok || res->err == CND_DNSC_EMALFORMED) {
        printf(";; Warning: Message parser reports malformed message "
               "packet.\n");
    }
    if (run->a->shortf) {
        dig_put_short(run, wire, len);
        return;
    }
    dig_put_banner(run);
    if (len >= 12) {
        dig_put_header(wire, len, &r, whole);
        dig_put_sections(run, wire, len, r.edns);
    }
    dig_put_stats(run, res, len);
}


/* A message that was not the reply: dig's warnings. */
static void
dig_on_drop(void *arg, cnd_dnsc_drop_t why, const uint8_t *wire, size_t len)
{
    const dig_run_t *run = arg;
    switch (why) {
    case CND_DNSC_DROP_SHORT:
        printf(";; Warning: short (< header size) message received\n");
        break;
    case CND_DNSC_DROP_NOT_REPLY:
        printf(";; Warning: query response not set\n");
        break;
    case CND_DNSC_DROP_ID:
        printf(";; Warning: ID mismatch: expected ID %u, got %u\n",
               knot_wire_get_id(run->query), knot_wire_get_id(wire));
        break;
    case CND_DNSC_DROP_QUESTION: {
        dig_walk_t w;
        knot_rrset_t rr;
        char name[KNOT_DNAME_TXT_MAXLEN + 1], tbuf[32], cbuf[32];
        dig_walk_init(&w, wire, len);
        if (dig_walk_next(&w, &rr) == 1) {
            if (knot_dname_to_str(name, rr.owner, sizeof(name)) == NULL) {
                snprintf(name, sizeof(name), "?");
            }
            size_t nl = strlen(name);
            if (nl > 1 && name[nl - 1] == '.') {
                name[nl - 1] = '\0'; /* dig writes it relative */
            }
            /* dig's own doubled ";; ". */
            printf(";; ;; Question section mismatch: got %s/%s/%s\n", name,
                   cnd_type_str(rr.type, tbuf, sizeof(tbuf)),
                   cnd_class_str(rr.rclass, cbuf, sizeof(cbuf)));
            knot_rrset_clear(&rr, NULL);
        }
        break;
    }
    }
}


/* A try that failed, in dig's words. */
static void
dig_put_failure(const dig_run_t *run, const cnd_dnsc_res_t *res)
{
    const char *why = cnd_dnsc_strerror(res->err, res->sys_errno);
    if (res->sent) {
        printf(";; communications error to %s#%s: %s\n", run->srv->host,
               run->srv->port, why);
        return;
    }
    printf(";; %s %s#%s(%s) for %s failed: %s.\n"
           ";; no servers could be reached\n",
           res->tcp ? "Connection to" : "UDP setup with", run->srv->host,
           run->srv->port, run->server_name, run->a->name, why);
}


/* Ask each server, each as many times as asked, until one answers. */
static int
dig_run(dig_run_t *run, const dig_server_t *servers)
{
    const dig_args_t *a = run->a;
    cnd_dnsc_query_t q;
    cnd_dnsc_query_init(&q, a->name);
    q.type = (uint16_t)a->type;
    q.cls = (uint16_t)a->cls;
    q.rd = a->rec;
    q.cd = a->cd;
    q.edns = a->edns;
    q.do_bit = a->dnssec;
    q.payload = (uint16_t)a->bufsize;
    cnd_dnsc_opts_t o = {
        .timeout_ms = a->timeout_s * 1000,
        .tcp = a->tcp,
        .tc_retry = !a->ignore,
        .on_drop = dig_on_drop,
        .arg = run,
    };
    uint8_t *query = run->query, *reply = run->reply;
    cnd_dnsc_res_t res = {0};
    for (size_t s = 0; s < run->nservers; s++) {
        run->srv = &servers[s];
        for (unsigned t = 0; t < a->tries; t++) {
            /* A fresh ID for every try. */
            int qlen = cnd_dnsc_build(&q, query, CND_DNSC_MAX_MSG);
            if (qlen < 0) {
                fprintf(stderr,
                        "candor dig: '%s' is not a legal name: labels are "
                        "1-63 bytes and names at most 255 bytes\n",
                        a->name);
                return CND_DIG_EXIT_INTERNAL;
            }
            int rc = cnd_dnsc_exchange((struct sockaddr *)&servers[s].ss,
                                       servers[s].len, query, (size_t)qlen,
                                       reply, CND_DNSC_MAX_MSG, &o, &res);
            if (rc == CND_DNSC_OK || rc == CND_DNSC_EMALFORMED) {
                dig_put_reply(run, reply, res.len, &res);
                return CND_DIG_EXIT_OK;
            }
            dig_put_failure(run, &res);
        }
    }
    if (res.sent) {
        dig_put_banner(run);
        printf(";; no servers could be reached\n");
    }
    return CND_DIG_EXIT_NO_REPLY;
}


int
cnd_dig_main(int argc, char **argv)
{
    dig_args_t a;
    int rc = dig_parse(argc, argv, &a);
    if (rc != 0) {
        return rc;
    }
    if (a.help) {
        dig_usage(stdout);
        return CND_DIG_EXIT_OK;
    }
    char conf_ns[256];
    const char *server = a.server;
    if (server == NULL) {
        /* dig's fallback when resolv.conf names none: this host. */
        server =
            cnd_dnsc_resolv_conf(DIG_RESOLV_CONF, conf_ns, sizeof(conf_ns)) == 0
                ? conf_ns
                : "127.0.0.1";
    }
    dig_server_t servers[DIG_MAX_SERVERS];
    dig_run_t run = {.a = &a, .server_name = server};
    run.nservers = dig_servers(server, a.port, servers, DIG_MAX_SERVERS);
    if (run.nservers == 0) {
        return CND_DIG_EXIT_INTERNAL;
    }
    run.text = malloc(DIG_TEXT_MAX);
    run.query = malloc(CND_DNSC_MAX_MSG);
    run.reply = malloc(CND_DNSC_MAX_MSG);
    if (run.text == NULL || run.query == NULL || run.reply == NULL) {
        fprintf(stderr, "candor dig: out of memory\n");
        rc = CND_DIG_EXIT_INTERNAL;
    } else {
        rc = dig_run(&run, servers);
    }
    free(run.text);
    free(run.query);
    free(run.reply);
    fflush(stdout);
    return rc;
}
