/* SPDX-License-Identifier: MIT */
/*
 * corefile/dispenser.c - a plugin's cursor over its directive's tokens.
 *
 * Caddy's Dispenser, as CoreDNS plugins walk it: next (a use of the
 * directive), next_arg (the rest of its line), next_block (the rows of
 * its "{ }"), and errors with the file and line of the token at hand.
 * The parser (corefile.c) makes the tokens; this only reads them.
 */
#include "corefile/corefile.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>


void
cnd_disp_init(cnd_disp_t *d, const cnd_token_t *tokens, size_t n, char *err,
              size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->tokens = tokens;
    d->ntokens = n;
    d->cursor = -1;
    d->err = err;
    d->errlen = errlen;
}


bool
cnd_disp_next(cnd_disp_t *d)
{
    if (d->cursor < (long)d->ntokens - 1) {
        d->cursor++;
        return true;
    }
    return false;
}


bool
cnd_disp_next_arg(cnd_disp_t *d)
{
    if (d->cursor < 0) {
        d->cursor++;
        return d->ntokens > 0;
    }
    if ((size_t)d->cursor + 1 < d->ntokens &&
        cnd_token_same_line(d->tokens, (size_t)d->cursor)) {
        d->cursor++;
        return true;
    }
    return false;
}


bool
cnd_disp_next_line(cnd_disp_t *d)
{
    if (d->cursor < 0) {
        d->cursor++;
        return d->ntokens > 0;
    }
    if ((size_t)d->cursor + 1 < d->ntokens &&
        !cnd_token_same_line(d->tokens, (size_t)d->cursor)) {
        d->cursor++;
        return true;
    }
    return false;
}


bool
cnd_disp_next_block(cnd_disp_t *d)
{
    if (d->nesting > 0) {
        if (!cnd_disp_next(d)) {
            return false;
        }
        if (strcmp(cnd_disp_val(d), "}") == 0) {
            d->nesting--;
            return false;
        }
        return true;
    }
    if (!cnd_disp_next_arg(d)) {
        return false; /* a block must open on the same line */
    }
    if (strcmp(cnd_disp_val(d), "{") != 0) {
        d->cursor--;
        return false;
    }
    cnd_disp_next(d);
    if (strcmp(cnd_disp_val(d), "}") == 0) {
        return false; /* "{ }" */
    }
    d->nesting++;
    return true;
}


const char *
cnd_disp_val(const cnd_disp_t *d)
{
    if (d->cursor < 0 || (size_t)d->cursor >= d->ntokens) {
        return "";
    }
    return d->tokens[d->cursor].text;
}


int
cnd_disp_line(const cnd_disp_t *d)
{
    if (d->cursor < 0 || (size_t)d->cursor >= d->ntokens) {
        return 0;
    }
    return d->tokens[d->cursor].line;
}


const char *
cnd_disp_file(const cnd_disp_t *d)
{
    if (d->ntokens == 0) {
        return "Corefile";
    }
    long i = d->cursor < 0 ? 0 : d->cursor;
    if ((size_t)i >= d->ntokens) {
        i = (long)d->ntokens - 1;
    }
    return d->tokens[i].file;
}


size_t
cnd_disp_args(cnd_disp_t *d, const char **out, size_t max)
{
    size_t n = 0;
    while (cnd_disp_next_arg(d)) {
        if (strcmp(cnd_disp_val(d), "{") == 0) {
            d->cursor--;
            break;
        }
        if (n < max) {
            out[n] = cnd_disp_val(d);
        }
        n++;
    }
    return n;
}


int
cnd_cf_verr(char *err, size_t errlen, const char *plugin, const char *file,
            int line, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    snprintf(err, errlen, "%s%s%s%s:%d - Error during parsing: %s",
             plugin != NULL ? "plugin/" : "", plugin != NULL ? plugin : "",
             plugin != NULL ? ": " : "", file, line, msg);
    return -1;
}


int
cnd_disp_err(cnd_disp_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnd_cf_verr(d->err, d->errlen, NULL, cnd_disp_file(d), cnd_disp_line(d),
                fmt, ap);
    va_end(ap);
    return -1;
}


int
cnd_disp_arg_err(cnd_disp_t *d)
{
    if (strcmp(cnd_disp_val(d), "{") == 0) {
        return cnd_disp_err(d, "Unexpected token '{', expecting argument");
    }
    return cnd_disp_err(d,
                        "Wrong argument count or unexpected line ending "
                        "after '%s'",
                        cnd_disp_val(d));
}
