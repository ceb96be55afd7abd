/* SPDX-License-Identifier: MIT */
/*
 * corefile/corefile.c - the Corefile (Caddyfile) lexer, parser, dispenser.
 *
 * A faithful port of the grammar of coredns/caddy's caddyfile package, so
 * that every Corefile CoreDNS accepts parses the same here and every one it
 * rejects fails with the same message.  The parser works on one growable
 * token vector with a cursor, exactly like Caddy's: "import" splices the
 * imported tokens into the vector in place of the two import tokens and
 * parsing carries on from the first imported token.
 *
 * Token text and the final blocks live in the caller's arena; the working
 * vectors are malloc'd and freed before returning.
 */
#include "corefile/corefile.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/* Caps on import expansion (coredns/caddy parse.go): stop cycles. */
#define CF_MAX_SNIPPET_EXPANSIONS 1000
#define CF_MAX_FILE_EXPANSIONS    1000
/* Largest file the parser reads (a Corefile is a few KiB). */
#define CF_MAX_FILE_SIZE (16 * 1024 * 1024)

/* A growable token vector (working storage, malloc'd). */
typedef struct {
    cnd_token_t *v;
    size_t n, cap;
} cf_vec_t;

typedef struct {
    const char *name;
    cf_vec_t tokens;
} cf_named_t;

/* A growable array of named token vectors: a block's directives, or the
 * snippets defined so far. */
typedef struct {
    cf_named_t *v;
    size_t n, cap;
} cf_map_t;

typedef struct {
    cnd_arena_t *a;
    const char *filename; /* the file given to the parser */
    cnd_cf_valid_fn valid;
    cf_vec_t toks; /* all tokens; imports splice into it */
    long cursor;
    bool eof;
    cf_vec_t keys; /* current block */
    cf_map_t dirs; /* current block */
    cf_map_t snippets;
    int snippet_exp, file_exp;
    char *err;
    size_t errlen;
    bool oom;
} cf_parser_t;


/* ---- small vectors ---------------------------------------------------- */

static int
cf_vec_push(cf_vec_t *vec, const cnd_token_t *t)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap != 0 ? vec->cap * 2 : 64;
        cnd_token_t *v = realloc(vec->v, cap * sizeof(*v));
        if (v == NULL) {
            return -ENOMEM;
        }
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = *t;
    return 0;
}


/* Replace @del tokens at @at with the @nins tokens of @ins. */
static int
cf_vec_splice(cf_vec_t *vec, size_t at, size_t del, const cnd_token_t *ins,
              size_t nins)
{
    size_t n = vec->n - del + nins;
    if (n > vec->cap) {
        cnd_token_t *v = realloc(vec->v, n * sizeof(*v));
        if (v == NULL) {
            return -ENOMEM;
        }
        vec->v = v;
        vec->cap = n;
    }
    memmove(vec->v + at + nins, vec->v + at + del,
            (vec->n - at - del) * sizeof(*vec->v));
    if (nins != 0) {
        memcpy(vec->v + at, ins, nins * sizeof(*ins));
    }
    vec->n = n;
    return 0;
}


static cf_named_t *
cf_map_get(cf_map_t *m, const char *name, bool create)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].name, name) == 0) {
            return &m->v[i];
        }
    }
    if (!create) {
        return NULL;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap != 0 ? m->cap * 2 : 16;
        cf_named_t *v = realloc(m->v, cap * sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
        m->v = v;
        m->cap = cap;
    }
    cf_named_t *e = &m->v[m->n++];
    memset(e, 0, sizeof(*e));
    e->name = name;
    return e;
}


static void
cf_map_free(cf_map_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].tokens.v);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}


/* ---- environment ------------------------------------------------------ */

/* Replace every @start NAME @end in @s (Caddy's replaceEnvReferences). */
static const char *
cf_env_refs(cnd_arena_t *a, const char *s, const char *start, const char *end)
{
    const char *at = strstr(s, start);
    while (at != NULL) {
        const char *e = strstr(at, end);
        if (e == NULL || e <= at + strlen(start)) {
            /* no end, or "{$}": Caddy leaves the rest alone */
            return s;
        }
        size_t nlen = (size_t)(e - at) - strlen(start);
        char name[256];
        if (nlen >= sizeof(name)) {
            return s;
        }
        memcpy(name, at + strlen(start), nlen);
        name[nlen] = '\0';
        const char *val = getenv(name);
        if (val == NULL) {
            val = "";
        }
        /* Replace every occurrence of this reference, as strings.Replace
         * with -1 does. */
        size_t rlen = (size_t)(e - at) + strlen(end);
        char ref[300];
        memcpy(ref, at, rlen);
        ref[rlen] = '\0';
        size_t count = 0;
        for (const char *p = strstr(s, ref); p; p = strstr(p + rlen, ref)) {
            count++;
        }
        size_t vlen = strlen(val);
        size_t olen = strlen(s) - count * rlen + count * vlen;
        char *out = cnd_arena_alloc(a, olen + 1);
        if (out == NULL) {
            return NULL;
        }
        char *o = out;
        const char *p = s;
        for (const char *q = strstr(p, ref); q; q = strstr(p, ref)) {
            memcpy(o, p, (size_t)(q - p));
            o += q - p;
            memcpy(o, val, vlen);
            o += vlen;
            p = q + rlen;
        }
        strcpy(o, p);
        s = out;
        at = strstr(s, start);
    }
    return s;
}


const char *
cnd_corefile_env(cnd_arena_t *a, const char *s)
{
    if (strchr(s, '{') == NULL) {
        return s;
    }
    s = cf_env_refs(a, s, "{%", "%}");
    if (s == NULL) {
        return NULL;
    }
    return cf_env_refs(a, s, "{$", "}");
}


/* ---- lexer ------------------------------------------------------------ */

static bool
cf_is_space(const unsigned char *p, const unsigned char *end, size_t *len)
{
    *len = 1;
    switch (*p) {
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
        return true;
    case 0xc2: /* U+0085 NEL and U+00A0 NBSP, which Go's IsSpace takes */
        if (p + 1 < end && (p[1] == 0x85 || p[1] == 0xa0)) {
            *len = 2;
            return true;
        }
        return false;
    default:
        return false;
    }
}


/* Lex @text into @out (Caddy's lexer.next()). */
static int
cf_lex(cf_parser_t *p, const char *file, const char *text, size_t len,
       cf_vec_t *out)
{
    const unsigned char *s = (const unsigned char *)text;
    const unsigned char *end = s + len;
    if (len >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf) {
        s += 3; /* UTF-8 byte order mark */
    }
    int line = 1;
    /* A token is at most the rest of the input. */
    char *buf = malloc(len + 1);
    if (buf == NULL) {
        return -ENOMEM;
    }
    size_t n = 0;
    bool comment = false, quoted = false, escaped = false, intok = false;
    int tokline = 0;

    for (;; s++) {
        if (s >= end) {
            if (n > 0) {
                goto emit_last;
            }
            break;
        }
        unsigned char ch = *s;
        if (quoted) {
            if (!escaped) {
                if (ch == '\\') {
                    escaped = true;
                    continue;
                }
                if (ch == '"') {
                    quoted = false;
                    goto emit;
                }
            }
            if (ch == '\n') {
                line++;
            }
            if (escaped && ch != '"') {
                buf[n++] = '\\'; /* only \" is an escape */
            }
            buf[n++] = (char)ch;
            escaped = false;
            continue;
        }
        size_t slen;
        if (cf_is_space(s, end, &slen)) {
            s += slen - 1;
            if (ch == '\r') {
                continue;
            }
            if (ch == '\n') {
                line++;
                comment = false;
            }
            if (n > 0) {
                goto emit;
            }
            continue;
        }
        if (ch == '#') {
            comment = true;
        }
        if (comment) {
            continue;
        }
        if (n == 0 && !intok) {
            tokline = line;
            intok = true;
            if (ch == '"') {
                quoted = true;
                continue;
            }
        }
        buf[n++] = (char)ch;
        continue;

    emit:;
        cnd_token_t t = {cnd_arena_strndup(p->a, buf, n), file, tokline};
        if (t.text == NULL || cf_vec_push(out, &t) != 0) {
            free(buf);
            return -ENOMEM;
        }
        n = 0;
        intok = false;
        continue;
    }
    free(buf);
    return 0;

emit_last:;
    /* End of input inside a token (an unterminated quote included). */
    cnd_token_t t = {cnd_arena_strndup(p->a, buf, n), file, tokline};
    free(buf);
    if (t.text == NULL || cf_vec_push(out, &t) != 0) {
        return -ENOMEM;
    }
    return 0;
}


/* ---- cursor over the parser's vector (Caddy's Dispenser) --------------- */

static const cnd_token_t *
cf_tok(const cf_parser_t *p)
{
    if (p->cursor < 0 || (size_t)p->cursor >= p->toks.n) {
        return NULL;
    }
    return &p->toks.v[p->cursor];
}


static const char *
cf_val(const cf_parser_t *p)
{
    const cnd_token_t *t = cf_tok(p);
    return t != NULL ? t->text : "";
}


static bool
cf_next(cf_parser_t *p)
{
    if (p->cursor < (long)p->toks.n - 1) {
        p->cursor++;
        return true;
    }
    return false;
}


static int
cf_breaks(const char *s)
{
    int n = 0;
    for (; *s != '\0'; s++) {
        n += *s == '\n';
    }
    return n;
}


bool
cnd_token_same_line(const cnd_token_t *v, size_t i)
{
    return strcmp(v[i].file, v[i + 1].file) == 0 &&
           v[i].line + cf_breaks(v[i].text) == v[i + 1].line;
}


static bool
cf_next_arg(cf_parser_t *p)
{
    if (p->cursor < 0) {
        p->cursor++;
        return true;
    }
    if ((size_t)p->cursor + 1 < p->toks.n &&
        cnd_token_same_line(p->toks.v, (size_t)p->cursor)) {
        p->cursor++;
        return true;
    }
    return false;
}


static bool
cf_is_newline(const cf_parser_t *p)
{
    if (p->cursor < 1) {
        return true;
    }
    if ((size_t)p->cursor > p->toks.n - 1) {
        return false;
    }
    const cnd_token_t *a = &p->toks.v[p->cursor - 1];
    const cnd_token_t *b = &p->toks.v[p->cursor];
    return strcmp(a->file, b->file) != 0 ||
           a->line + cf_breaks(a->text) < b->line;
}


static int cf_errf(cf_parser_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
cf_errf(cf_parser_t *p, const char *fmt, ...)
{
    const cnd_token_t *t = cf_tok(p);
    va_list ap;
    va_start(ap, fmt);
    cnd_cf_verr(p->err, p->errlen, NULL, t != NULL ? t->file : p->filename,
                t != NULL ? t->line : 0, fmt, ap);
    va_end(ap);
    return -1;
}


static int
cf_syntax_err(cf_parser_t *p, const char *expected)
{
    const cnd_token_t *t = cf_tok(p);
    snprintf(p->err, p->errlen,
             "%s:%d - Syntax error: Unexpected token '%s', expecting '%s'",
             t != NULL ? t->file : p->filename, t != NULL ? t->line : 0,
             cf_val(p), expected);
    return -1;
}


static int
cf_oom(cf_parser_t *p)
{
    p->oom = true;
    snprintf(p->err, p->errlen, "%s: out of memory", p->filename);
    return -1;
}


/* The env-replaced text of the current token, stored back in the token. */
static const char *
cf_val_env(cf_parser_t *p)
{
    cnd_token_t *t = (cnd_token_t *)cf_tok(p);
    if (t == NULL) {
        return "";
    }
    const char *s = cnd_corefile_env(p->a, t->text);
    if (s == NULL) {
        cf_oom(p);
        return "";
    }
    t->text = s;
    return s;
}


/* ---- import ----------------------------------------------------------- */

static int
cf_read_file(const char *path, char **out, size_t *len, char *why, size_t wl)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, wl, "%s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        snprintf(why, wl, "is a directory");
        fclose(f);
        return -1;
    }
    if (st.st_size > CF_MAX_FILE_SIZE) {
        snprintf(why, wl, "larger than %d bytes", CF_MAX_FILE_SIZE);
        fclose(f);
        return -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(why, wl, "out of memory");
        return -1;
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}


/* Directory of @file as an absolute path, into @dir. */
static void
cf_abs_dir(const char *file, char *dir, size_t size)
{
    char abs[PATH_MAX];
    if (file[0] == '/') {
        snprintf(abs, sizeof(abs), "%s", file);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            snprintf(cwd, sizeof(cwd), ".");
        }
        snprintf(abs, sizeof(abs), "%s/%s", cwd, file);
    }
    char *slash = strrchr(abs, '/');
    if (slash == abs) {
        slash[1] = '\0';
    } else if (slash != NULL) {
        *slash = '\0';
    }
    snprintf(dir, size, "%s", abs);
}


static int
cf_import_file(cf_parser_t *p, const char *path, cf_vec_t *out)
{
    char *text, why[256];
    size_t len;
    if (cf_read_file(path, &text, &len, why, sizeof(why)) != 0) {
        return cf_errf(p, "Could not import %s: %s", path, why);
    }
    const char *file = cnd_arena_strdup(p->a, path);
    int rc = file != NULL ? cf_lex(p, file, text, len, out) : -ENOMEM;
    free(text);
    return rc != 0 ? cf_oom(p) : 0;
}


/* Splice the tokens of "import PATTERN" in place of those two tokens and
 * leave the cursor on the first imported token (Caddy's doImport). */
static int
cf_do_import(cf_parser_t *p)
{
    if (!cf_next_arg(p)) {
        const char *v = cf_val(p);
        if (strcmp(v, "{") == 0) {
            return cf_errf(p, "Unexpected token '{', expecting argument");
        }
        return cf_errf(p,
                       "Wrong argument count or unexpected line ending "
                       "after '%s'",
                       v);
    }
    const char *pattern = cf_val_env(p);
    if (pattern[0] == '\0') {
        return cf_errf(p, "Import requires a non-empty filepath");
    }
    if (cf_next_arg(p)) {
        return cf_errf(p,
                       "Import takes only one argument (glob pattern or file)");
    }
    size_t at = (size_t)p->cursor - 1; /* the "import" token */
    cf_vec_t imported = {0};
    const cnd_token_t *ins;
    size_t nins;

    cf_named_t *snip = cf_map_get(&p->snippets, pattern, false);
    if (snip != NULL) {
        if (p->snippet_exp >= CF_MAX_SNIPPET_EXPANSIONS) {
            return cf_errf(p, "maximum snippet import depth (%d) exceeded",
                           CF_MAX_SNIPPET_EXPANSIONS);
        }
        p->snippet_exp++;
        ins = snip->tokens.v;
        nins = snip->tokens.n;
    } else {
        if (p->file_exp >= CF_MAX_FILE_EXPANSIONS) {
            return cf_errf(p, "maximum file import depth (%d) exceeded",
                           CF_MAX_FILE_EXPANSIONS);
        }
        p->file_exp++;
        char glob_pat[PATH_MAX];
        if (pattern[0] == '/') {
            snprintf(glob_pat, sizeof(glob_pat), "%s", pattern);
        } else {
            char dir[PATH_MAX];
            cf_abs_dir(cf_tok(p)->file, dir, sizeof(dir));
            snprintf(glob_pat, sizeof(glob_pat), "%s/%s", dir, pattern);
        }
        int stars = 0, qmarks = 0;
        for (const char *c = glob_pat; *c; c++) {
            stars += *c == '*';
            qmarks += *c == '?';
        }
        if (stars > 1 || qmarks > 1 ||
            (strchr(glob_pat, '[') != NULL && strchr(glob_pat, ']') != NULL)) {
            return cf_errf(p,
                           "Glob pattern may only contain one wildcard (*), "
                           "but has others: %s",
                           glob_pat);
        }
        glob_t g;
        int grc = glob(glob_pat, 0, NULL, &g);
        if (grc != 0 && grc != GLOB_NOMATCH) {
            return cf_errf(p, "Failed to use import pattern %s", pattern);
        }
        if (grc == GLOB_NOMATCH) {
            if (strpbrk(glob_pat, "*?[]") != NULL) {
                cnd_log(CND_LOG_WARNING, NULL,
                        "No files matching import glob pattern: %s", pattern);
            } else {
                return cf_errf(p, "File to import not found: %s", pattern);
            }
        } else {
            for (size_t i = 0; i < g.gl_pathc; i++) {
                if (cf_import_file(p, g.gl_pathv[i], &imported) != 0) {
                    globfree(&g);
                    free(imported.v);
                    return -1;
                }
            }
        }
        if (grc == 0) {
            globfree(&g);
        }
        ins = imported.v;
        nins = imported.n;
    }
    int rc = cf_vec_splice(&p->toks, at, 2, ins, nins);
    free(imported.v);
    if (rc != 0) {
        return cf_oom(p);
    }
    p->cursor = (long)at; /* on the first imported token */
    return 0;
}


/* ---- blocks ----------------------------------------------------------- */

/* The keys of a server block, up to "{" or the end of their line. */
static int
cf_addresses(cf_parser_t *p)
{
    bool another = false;
    for (;;) {
        const char *tkn = cf_val_env(p);
        if (strcmp(tkn, "import") == 0 && cf_is_newline(p)) {
            if (cf_do_import(p) != 0) {
                return -1;
            }
            continue;
        }
        if (strcmp(tkn, "}") == 0) {
            /* Caddy would take it as a key: a server block named "}"
             * on port 53 of every address, from a typo. */
            return cf_errf(p, "Unexpected '}' because no matching opening "
                              "brace");
        }
        if (strcmp(tkn, "{") == 0) {
            if (another) {
                return cf_errf(p,
                               "Expected another address but had '%s' - "
                               "check for extra comma",
                               tkn);
            }
            break;
        }
        if (tkn[0] != '\0') {
            size_t n = strlen(tkn);
            cnd_token_t key = *cf_tok(p);
            another = tkn[n - 1] == ',';
            key.text = another ? cnd_arena_strndup(p->a, tkn, n - 1) : tkn;
            if (key.text == NULL || cf_vec_push(&p->keys, &key) != 0) {
                return cf_oom(p);
            }
        }
        bool has_next = cf_next(p);
        if (another && !has_next) {
            return cf_errf(p, "Unexpected EOF");
        }
        if (!has_next) {
            p->eof = true;
            break;
        }
        if (!another && cf_is_newline(p)) {
            break;
        }
    }
    return 0;
}


/* Collect one directive line (and its nested blocks). */
static int
cf_directive(cf_parser_t *p)
{
    const char *dir = cf_val_env(p);
    if (p->valid != NULL && !p->valid(dir)) {
        return cf_errf(p, "Unknown directive '%s'", dir);
    }
    cf_named_t *d = cf_map_get(&p->dirs, dir, true);
    if (d == NULL || cf_vec_push(&d->tokens, cf_tok(p)) != 0) {
        return cf_oom(p);
    }
    int nesting = 0;
    while (cf_next(p)) {
        const char *v = cf_val(p);
        if (strcmp(v, "{") == 0) {
            nesting++;
        } else if (cf_is_newline(p) && nesting == 0) {
            p->cursor--; /* read too far */
            break;
        } else if (strcmp(v, "}") == 0 && nesting > 0) {
            nesting--;
        } else if (strcmp(v, "}") == 0 && nesting == 0) {
            return cf_errf(p, "Unexpected '}' because no matching opening "
                              "brace");
        } else if (strcmp(v, "import") == 0 && cf_is_newline(p)) {
            if (cf_do_import(p) != 0) {
                return -1;
            }
            p->cursor--;
            continue;
        }
        cf_val_env(p);
        if (cf_vec_push(&d->tokens, cf_tok(p)) != 0) {
            return cf_oom(p);
        }
    }
    if (nesting > 0) {
        return cf_errf(p, "Unexpected EOF");
    }
    return p->oom ? -1 : 0;
}


/* The directives of a block, up to its "}" (*@closed set) or the end. */
static int
cf_directives(cf_parser_t *p, bool *closed)
{
    *closed = false;
    while (cf_next(p)) {
        const char *v = cf_val(p);
        if (strcmp(v, "}") == 0) {
            *closed = true;
            break;
        }
        if (strcmp(v, "import") == 0) {
            if (cf_do_import(p) != 0) {
                return -1;
            }
            p->cursor--;
            continue;
        }
        if (cf_directive(p) != 0) {
            return -1;
        }
    }
    return 0;
}


static int
cf_snippet(cf_parser_t *p, const char *name)
{
    if (cf_map_get(&p->snippets, name, false) != NULL) {
        return cf_errf(p, "redeclaration of previously declared snippet %s",
                       name);
    }
    if (strcmp(cf_val(p), "{") != 0) {
        return cf_syntax_err(p, "{");
    }
    cf_vec_t body = {0};
    int count = 1;
    while (cf_next(p)) {
        const char *v = cf_val(p);
        if (strcmp(v, "}") == 0 && --count == 0) {
            break;
        }
        if (strcmp(v, "{") == 0) {
            count++;
        }
        if (cf_vec_push(&body, cf_tok(p)) != 0) {
            free(body.v);
            return cf_oom(p);
        }
    }
    if (count != 0) {
        free(body.v);
        return cf_syntax_err(p, "}");
    }
    /* Guard against the trivial cycle: the snippet importing itself. */
    for (size_t i = 0; i + 1 < body.n; i++) {
        bool line_start = i == 0 ||
                          strcmp(body.v[i - 1].file, body.v[i].file) != 0 ||
                          body.v[i - 1].line != body.v[i].line;
        if (line_start && strcmp(body.v[i].text, "import") == 0) {
            const char *arg = cnd_corefile_env(p->a, body.v[i + 1].text);
            if (arg != NULL && strcmp(arg, name) == 0) {
                free(body.v);
                return cf_errf(p, "maximum snippet import depth (%d) exceeded",
                               CF_MAX_SNIPPET_EXPANSIONS);
            }
        }
    }
    cf_named_t *s = cf_map_get(&p->snippets, name, true);
    if (s == NULL) {
        free(body.v);
        return cf_oom(p);
    }
    s->tokens = body;
    return 0;
}


/* Copy the current block into the arena and append it to @out. */
static int
cf_finish_block(cf_parser_t *p, cnd_cf_block_t **blocks, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap != 0 ? *cap * 2 : 8;
        cnd_cf_block_t *v = realloc(*blocks, c * sizeof(*v));
        if (v == NULL) {
            return cf_oom(p);
        }
        *blocks = v;
        *cap = c;
    }
    cnd_cf_block_t *b = &(*blocks)[(*n)++];
    memset(b, 0, sizeof(*b));
    b->keys =
        cnd_arena_memdup(p->a, p->keys.v, p->keys.n * sizeof(cnd_token_t));
    b->nkeys = p->keys.n;
    cnd_cf_dir_t *dirs =
        cnd_arena_zalloc(p->a, (p->dirs.n + 1) * sizeof(*dirs));
    if (b->keys == NULL || dirs == NULL) {
        return cf_oom(p);
    }
    for (size_t i = 0; i < p->dirs.n; i++) {
        dirs[i].name = p->dirs.v[i].name;
        dirs[i].ntokens = p->dirs.v[i].tokens.n;
        dirs[i].tokens = cnd_arena_memdup(
            p->a, p->dirs.v[i].tokens.v, dirs[i].ntokens * sizeof(cnd_token_t));
        if (dirs[i].tokens == NULL) {
            return cf_oom(p);
        }
    }
    b->dirs = dirs;
    b->ndirs = p->dirs.n;
    return 0;
}


static int
cf_parse_one(cf_parser_t *p)
{
    p->keys.n = 0;
    cf_map_free(&p->dirs);
    if (p->toks.n == 0) {
        return 0;
    }
    if (cf_addresses(p) != 0) {
        return -1;
    }
    if (p->eof) {
        return 0; /* only a line of keys */
    }
    if (p->keys.n == 1) {
        const char *k = p->keys.v[0].text;
        size_t kl = strlen(k);
        if (kl >= 2 && k[0] == '(' && k[kl - 1] == ')') {
            char *name = cnd_arena_strndup(p->a, k + 1, kl - 2);
            if (name == NULL) {
                return cf_oom(p);
            }
            p->keys.n = 0; /* a snippet is not a server block */
            return cf_snippet(p, name);
        }
    }
    bool braces = strcmp(cf_val(p), "{") == 0;
    int open_line = cf_tok(p)->line;
    if (!braces) {
        p->cursor--; /* single-server Corefiles may omit the braces */
    }
    bool closed;
    if (cf_directives(p, &closed) != 0) {
        return -1;
    }
    if (braces && !closed) {
        if (strcmp(cf_val(p), "}") != 0) {
            return cf_syntax_err(p, "}");
        }
        /* The last "}" closed a property block, not this one (Caddy
         * takes it for this block's and accepts the file). */
        return cf_errf(p,
                       "Unexpected EOF: the server block opened at line %d "
                       "is not closed (add a '}')",
                       open_line);
    }
    return 0;
}


int
cnd_corefile_parse(cnd_arena_t *a, const char *file, const char *text,
                   size_t len, cnd_cf_valid_fn valid, cnd_corefile_t *out,
                   char *err, size_t errlen)
{
    cf_parser_t p = {
        .a = a,
        .filename = file,
        .valid = valid,
        .cursor = -1,
        .err = err,
        .errlen = errlen,
    };
    cnd_cf_block_t *blocks = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    const char *fname = cnd_arena_strdup(a, file);
    if (fname == NULL || cf_lex(&p, fname, text, len, &p.toks) != 0) {
        rc = cf_oom(&p);
        goto out;
    }
    while (cf_next(&p)) {
        if (cf_parse_one(&p) != 0) {
            rc = -1;
            goto out;
        }
        if (p.keys.n > 0 && cf_finish_block(&p, &blocks, &n, &cap) != 0) {
            rc = -1;
            goto out;
        }
    }
    if (n > 0) {
        out->blocks = cnd_arena_memdup(a, blocks, n * sizeof(*blocks));
        if (out->blocks == NULL) {
            rc = cf_oom(&p);
            goto out;
        }
        out->nblocks = n;
    }
out:
    free(blocks);
    free(p.toks.v);
    free(p.keys.v);
    cf_map_free(&p.dirs);
    cf_map_free(&p.snippets);
    return rc;
}
