/* SPDX-License-Identifier: MIT */
/*
 * plugins/log/log.c - the query log, in CoreDNS's format.
 *
 * "log [NAMES...] [FORMAT] { class success|denial|error|all ... }": on the
 * way back, the first rule whose name scope holds the query name prints
 * one line, if the answer's class is one it wants:
 *
 *     [INFO] 127.0.0.1:52665 - 32124 "A IN foo.test. udp 49 false 1232"
 *         NOERROR qr,aa,rd 50 0.000122033s          (one line)
 *
 * The format is compiled at config time into literal pieces and fields,
 * so a query costs one pass and one write.  Placeholders are CoreDNS's
 * replacer's; unknown ones are printed as written.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin.h"
#include "dns/msg.h"
#include "util/duration.h"
#include "util/log.h"

#define LOG_COMMON                                                             \
    "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} "    \
    "{>bufsize}\" {rcode} {>rflags} {rsize} {duration}"
#define LOG_COMBINED  LOG_COMMON " \"{>opcode}\""
#define LOG_MAX_RULES 64
#define LOG_LINE_MAX  2048

typedef enum {
    F_LITERAL = 0,
    F_TYPE,
    F_NAME,
    F_CLASS,
    F_PROTO,
    F_SIZE,
    F_REMOTE,
    F_PORT,
    F_LOCAL,
    F_ID,
    F_OPCODE,
    F_DO,
    F_BUFSIZE,
    F_RCODE,
    F_RSIZE,
    F_DURATION,
    F_RFLAGS,
} log_field_t;

static const struct {
    const char *label;
    log_field_t field;
} log_labels[] = {
    {"{type}", F_TYPE},      {"{name}", F_NAME},   {"{class}", F_CLASS},
    {"{proto}", F_PROTO},    {"{size}", F_SIZE},   {"{remote}", F_REMOTE},
    {"{port}", F_PORT},      {"{local}", F_LOCAL}, {"{>id}", F_ID},
    {"{>opcode}", F_OPCODE}, {"{>do}", F_DO},      {"{>bufsize}", F_BUFSIZE},
    {"{rcode}", F_RCODE},    {"{rsize}", F_RSIZE}, {"{duration}", F_DURATION},
    {"{>rflags}", F_RFLAGS}, {NULL, F_LITERAL},
};

/* Classes of answers (CoreDNS's response.Class). */
enum { LOG_SUCCESS = 1, LOG_DENIAL = 2, LOG_ERROR = 4, LOG_ALL = 7 };

/* One piece of a compiled format: a literal or a field. */
typedef struct {
    log_field_t field;
    const char *text; /* F_LITERAL */
    size_t len;
} log_piece_t;

/* One log line of the Corefile.  Config lifetime, like its pieces. */
typedef struct {
    const knot_dname_t *scope;
    log_piece_t *pieces;
    size_t npieces;
    unsigned classes;
} log_rule_t;

/* The plugin's config.  Config lifetime. */
typedef struct {
    log_rule_t rules[LOG_MAX_RULES];
    size_t nrules;
} log_conf_t;


/* Split @format into pieces (config arena). */
static int
log_compile(cnd_conf_t *cf, const char *format, log_rule_t *rule)
{
    /* {common} and {combined} expand wherever they appear. */
    char expanded[4096];
    size_t o = 0;
    for (const char *p = format; *p != '\0' && o < sizeof(expanded) - 1;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "{common}", 8) == 0) {
            rep = LOG_COMMON;
            skip = 8;
        } else if (strncmp(p, "{combined}", 10) == 0) {
            rep = LOG_COMBINED;
            skip = 10;
        }
        if (rep != NULL) {
            o +=
                (size_t)snprintf(expanded + o, sizeof(expanded) - o, "%s", rep);
            p += skip;
        } else {
            expanded[o++] = *p++;
        }
    }
    if (o >= sizeof(expanded)) {
        o = sizeof(expanded) - 1;
    }
    expanded[o] = '\0';
    const char *text = cnd_arena_strdup(cnd_conf_arena(cf), expanded);
    size_t max = 2 * strlen(expanded) + 1;
    log_piece_t *pieces =
        cnd_arena_zalloc(cnd_conf_arena(cf), max * sizeof(*pieces));
    if (text == NULL || pieces == NULL) {
        return -1;
    }
    size_t n = 0;
    const char *lit = text;
    for (const char *p = text; *p != '\0';) {
        log_field_t f = F_LITERAL;
        size_t l = 0;
        if (*p == '{') {
            for (size_t i = 0; log_labels[i].label != NULL; i++) {
                size_t ll = strlen(log_labels[i].label);
                if (strncmp(p, log_labels[i].label, ll) == 0) {
                    f = log_labels[i].field;
                    l = ll;
                    break;
                }
            }
        }
        if (f == F_LITERAL) {
            p++;
            continue;
        }
        if (p > lit) {
            pieces[n++] = (log_piece_t){F_LITERAL, lit, (size_t)(p - lit)};
        }
        pieces[n++] = (log_piece_t){f, NULL, 0};
        p += l;
        lit = p;
    }
    if (*lit != '\0') {
        pieces[n++] = (log_piece_t){F_LITERAL, lit, strlen(lit)};
    }
    rule->pieces = pieces;
    rule->npieces = n;
    return 0;
}


static int
log_add_rule(cnd_conf_t *cf, cnd_disp_t *d, log_conf_t *c, const char *name,
             const char *format)
{
    if (c->nrules == LOG_MAX_RULES) {
        return cnd_disp_err(d, "more than %d log rules", LOG_MAX_RULES);
    }
    log_rule_t *rule = &c->rules[c->nrules];
    knot_dname_t *dn = cnd_arena_alloc(cnd_conf_arena(cf), KNOT_DNAME_MAXLEN);
    if (dn == NULL ||
        knot_dname_from_str(dn, name, KNOT_DNAME_MAXLEN) == NULL) {
        return cnd_disp_err(d, "not a valid domain name: %s", name);
    }
    knot_dname_to_lower(dn);
    rule->scope = dn;
    if (log_compile(cf, format, rule) != 0) {
        return cnd_disp_err(d, "out of memory");
    }
    c->nrules++;
    return 0;
}


static int
log_parse(cnd_conf_t *cf, cnd_disp_t *d, void *conf)
{
    log_conf_t *c = conf;
    while (cnd_disp_next(d)) { /* each "log" line is one or more rules */
        const char *args[LOG_MAX_RULES + 1];
        size_t n = cnd_disp_args(d, args, LOG_MAX_RULES + 1);
        if (n > LOG_MAX_RULES) {
            return cnd_disp_err(d, "too many names");
        }
        size_t first = c->nrules;
        const char *format = LOG_COMMON;
        if (n == 0) {
            if (log_add_rule(cf, d, c, ".", format) != 0) {
                return -1;
            }
        } else if (n == 1) {
            /* One argument is a name, even with a brace (as CoreDNS). */
            if (log_add_rule(cf, d, c, args[0], format) != 0) {
                return -1;
            }
        } else {
            if (strchr(args[n - 1], '{') != NULL) {
                format = args[--n];
            }
            for (size_t i = 0; i < n; i++) {
                if (log_add_rule(cf, d, c, args[i], format) != 0) {
                    return -1;
                }
            }
        }
        unsigned classes = 0;
        while (cnd_disp_next_block(d)) {
            if (strcmp(cnd_disp_val(d), "class") != 0) {
                return cnd_disp_arg_err(d);
            }
            const char *cls[8];
            size_t m = cnd_disp_args(d, cls, 8);
            if (m == 0 || m > 8) {
                return cnd_disp_arg_err(d);
            }
            for (size_t i = 0; i < m; i++) {
                if (strcmp(cls[i], "all") == 0) {
                    classes |= LOG_ALL;
                } else if (strcmp(cls[i], "success") == 0) {
                    classes |= LOG_SUCCESS;
                } else if (strcmp(cls[i], "denial") == 0) {
                    classes |= LOG_DENIAL;
                } else if (strcmp(cls[i], "error") == 0) {
                    classes |= LOG_ERROR;
                } else {
                    return cnd_disp_err(d, "invalid class: %s", cls[i]);
                }
            }
        }
        for (size_t i = first; i < c->nrules; i++) {
            c->rules[i].classes = classes != 0 ? classes : LOG_ALL;
        }
    }
    return 0;
}


static unsigned
log_class(const cnd_req_t *r)
{
    switch (cnd_msg_typify(r->resp, r->resp_len)) {
    case CND_RESP_NOERROR:
    case CND_RESP_DELEGATION:
        return LOG_SUCCESS;
    case CND_RESP_NXDOMAIN:
    case CND_RESP_NODATA:
        return LOG_DENIAL;
    default:
        return LOG_ERROR;
    }
}


/* Append @s (@n bytes) to the line at *@o. */
static void
log_put(char *line, size_t *o, const char *s, size_t n)
{
    if (*o + n >= LOG_LINE_MAX) {
        n = LOG_LINE_MAX - 1 - *o;
    }
    memcpy(line + *o, s, n);
    *o += n;
}


/* An address as CoreDNS prints it: IPv6 in brackets. */
static const char *
log_ip(const struct sockaddr_storage *ss, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf,
                  (socklen_t)size);
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip,
                  sizeof(ip));
        snprintf(buf, size, "[%s]", ip);
    } else {
        snprintf(buf, size, "-");
    }
    return buf;
}


static unsigned
log_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    }
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}


static void
log_line(const cnd_req_t *r, const log_rule_t *rule)
{
    char line[LOG_LINE_MAX], buf[KNOT_DNAME_TXT_MAXLEN + 64];
    size_t o = 0;
    for (size_t i = 0; i < rule->npieces; i++) {
        const log_piece_t *p = &rule->pieces[i];
        const char *s = buf;
        switch (p->field) {
        case F_LITERAL:
            log_put(line, &o, p->text, p->len);
            continue;
        case F_TYPE:
            s = cnd_type_str(r->qtype, buf, sizeof(buf));
            break;
        case F_NAME:
            knot_dname_to_str(buf, r->qname, sizeof(buf));
            break;
        case F_CLASS:
            s = cnd_class_str(r->qclass, buf, sizeof(buf));
            break;
        case F_PROTO:
            s = r->proto == CND_PROTO_TCP ? "tcp" : "udp";
            break;
        case F_SIZE:
            snprintf(buf, sizeof(buf), "%u", r->qlen);
            break;
        case F_REMOTE:
            log_ip(&r->remote, buf, sizeof(buf));
            break;
        case F_PORT:
            snprintf(buf, sizeof(buf), "%u", log_port(&r->remote));
            break;
        case F_LOCAL:
            log_ip(&r->local, buf, sizeof(buf));
            break;
        case F_ID:
            snprintf(buf, sizeof(buf), "%u", r->id);
            break;
        case F_OPCODE:
            snprintf(buf, sizeof(buf), "%u", knot_wire_get_opcode(r->qwire));
            break;
        case F_DO:
            s = r->do_bit ? "true" : "false";
            break;
        case F_BUFSIZE:
            snprintf(buf, sizeof(buf), "%u",
                     r->proto == CND_PROTO_TCP ? 65535u
                     : r->has_edns             ? r->udp_size
                                               : 512u);
            break;
        case F_RCODE:
            s = cnd_rcode_str(cnd_req_rcode(r), buf, sizeof(buf));
            break;
        case F_RSIZE:
            /* what was sent: OPT, EDE and truncation included */
            snprintf(buf, sizeof(buf), "%u", r->out_len);
            break;
        case F_DURATION:
            cnd_duration_secs((int64_t)(uv_hrtime() - r->start_ns), buf,
                              sizeof(buf));
            break;
        case F_RFLAGS:
            s = cnd_flags_str(r->resp, buf, sizeof(buf));
            break;
        }
        log_put(line, &o, s, strlen(s));
    }
    cnd_log(CND_LOG_INFO, NULL, "%.*s", (int)o, line);
}


/* On the finished answer (finish, not response): the line gives the
 * size of what the client gets. */
static void
log_finish(cnd_req_t *r, cnd_inst_t *self)
{
    const log_conf_t *c = self->conf;
    if (r->resp == NULL || r->out == NULL || r->proto == CND_PROTO_INTERNAL) {
        return;
    }
    for (size_t i = 0; i < c->nrules; i++) {
        const log_rule_t *rule = &c->rules[i];
        if (knot_dname_in_bailiwick(r->qname, rule->scope) < 0) {
            continue;
        }
        if (rule->classes == LOG_ALL || (rule->classes & log_class(r))) {
            log_line(r, rule);
        }
        return; /* the first rule in scope decides */
    }
}


const cnd_plugin_t cnd_plugin_log = {
    .name = "log",
    .conf_size = sizeof(log_conf_t),
    .parse = log_parse,
    .finish = log_finish,
};
