/* SPDX-License-Identifier: MIT */
/*
 * corefile/corefile.h - the Corefile (Caddyfile) lexer and parser.
 *
 * Text becomes server blocks: each block has its keys (the zones, e.g.
 * ".:53", "example.org", "10.0.0.0/24") and, per directive, the tokens of
 * every line that used it, in order.  This is CoreDNS's grammar (the
 * coredns/caddy fork): quoted tokens across lines, '#' comments anywhere,
 * {$ENV} and {%ENV%}, snippets "(name) { ... }", and "import" of snippets,
 * files and globs.  Nothing here knows what a plugin means; the config
 * builder (core/conf.c) hands each plugin a dispenser over its tokens.
 *
 * The parser is pure (text in, blocks out, errors as text) so unit tests
 * and fuzzers drive it directly.  Everything it returns lives in the arena
 * it is given.
 */
#ifndef CND_COREFILE_COREFILE_H
#define CND_COREFILE_COREFILE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"

/* One token.  Config lifetime (the arena given to the parser). */
typedef struct cnd_token_s {
    const char *text; /* NUL-terminated; quotes removed, env replaced   */
    const char *file; /* file the token came from (imports keep theirs) */
    int line;         /* line where the token starts                    */
} cnd_token_t;

/* Are tokens @i and @i+1 of @v on the same line of the same file (a
 * quoted token may span lines)?  For the parser and the dispenser. */
bool cnd_token_same_line(const cnd_token_t *v, size_t i);

/* All tokens of one directive in one server block: every line that used
 * it, concatenated in Corefile order (as CoreDNS's ServerBlock.Tokens). */
typedef struct cnd_cf_dir_s {
    const char *name;
    const cnd_token_t *tokens;
    size_t ntokens;
} cnd_cf_dir_t;

/* One server block.  Directives are in order of first appearance. */
typedef struct cnd_cf_block_s {
    const cnd_token_t *keys; /* text of each key, trailing ',' removed */
    size_t nkeys;
    const cnd_cf_dir_t *dirs;
    size_t ndirs;
} cnd_cf_block_t;

typedef struct cnd_corefile_s {
    const cnd_cf_block_t *blocks;
    size_t nblocks;
} cnd_corefile_t;

/* Is @name a directive?  NULL accepts every name (the grammar tests). */
typedef bool (*cnd_cf_valid_fn)(const char *name);

/* Parse @len bytes of @text read from @file.  On success returns 0 and
 * fills @out (arena lifetime).  On failure returns -1 and writes CoreDNS's
 * message ("FILE:LINE - Error during parsing: ...") to @err.  Warnings
 * (an import glob matching nothing) are logged. */
int cnd_corefile_parse(cnd_arena_t *a, const char *file, const char *text,
                       size_t len, cnd_cf_valid_fn valid, cnd_corefile_t *out,
                       char *err, size_t errlen);

/* Replace {$NAME} and {%NAME%} in @s with the environment's values (unset
 * names become empty).  Returns @s itself when there is nothing to
 * replace, else a copy in @a; NULL when out of memory. */
const char *cnd_corefile_env(cnd_arena_t *a, const char *s);

/*
 * The dispenser: how a plugin's parse() walks its tokens, with Caddy's
 * semantics (cursor starts before the first token; "arguments" are tokens
 * on the same line; a property block must open on the directive's line).
 */
typedef struct cnd_disp_s {
    const cnd_token_t *tokens;
    size_t ntokens;
    long cursor;
    int nesting;
    char *err; /* where errors are written */
    size_t errlen;
} cnd_disp_t;

void cnd_disp_init(cnd_disp_t *d, const cnd_token_t *tokens, size_t n,
                   char *err, size_t errlen);

/* Move to the next token, wherever it is.  False at the end. */
bool cnd_disp_next(cnd_disp_t *d);

/* Move to the next token if it is on the same line.  False otherwise. */
bool cnd_disp_next_arg(cnd_disp_t *d);

/* Move to the next token if it starts a new line. */
bool cnd_disp_next_line(cnd_disp_t *d);

/* Walk a property block: the first call opens "{" (only on the current
 * line) and moves to the first property; later calls move to the next
 * token; returns false at the closing "}" or when there is no block. */
bool cnd_disp_next_block(cnd_disp_t *d);

/* The current token's text, or "" outside the tokens. */
const char *cnd_disp_val(const cnd_disp_t *d);
int cnd_disp_line(const cnd_disp_t *d);
const char *cnd_disp_file(const cnd_disp_t *d);

/* Collect the remaining arguments on this line (stopping before a "{")
 * into @out, at most @max (@out may be NULL with @max 0: just count).
 * Returns how many there were (may be > @max: the caller then reports too
 * many arguments). */
size_t cnd_disp_args(cnd_disp_t *d, const char **out, size_t max);

/* The one form of a config error, CoreDNS's: "FILE:LINE - Error during
 * parsing: MSG", after "plugin/NAME: " when @plugin is not NULL, into
 * @err (@errlen bytes).  Returns -1.  The parser, the dispenser and the
 * config loader all write their errors through it. */
int cnd_cf_verr(char *err, size_t errlen, const char *plugin, const char *file,
                int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* Errors: write "FILE:LINE - Error during parsing: MSG" and return -1. */
int cnd_disp_err(cnd_disp_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "Wrong argument count or unexpected line ending after 'X'" (or the '{'
 * variant), as Caddy's ArgErr; returns -1. */
int cnd_disp_arg_err(cnd_disp_t *d);

#endif
