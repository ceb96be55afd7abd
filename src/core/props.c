/* SPDX-License-Identifier: MIT */
/*
 * core/props.c - a plugin's block rows read from a table (core/plugin.h).
 *
 * The setters give CoreDNS's wording for each kind of value, so that
 * every plugin says "strconv.ParseUint: parsing ..." or "time: invalid
 * duration ..." as CoreDNS's setup code does, and a plugin's parse() is a
 * table of rows instead of an if-chain (nginx's ngx_command_t).
 */
#include "core/conf.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"


int
cnd_prop_flag(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    if (cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    *(bool *)field = true;
    return 0;
}


int
cnd_prop_duration(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    const char *name = cnd_disp_val(d);
    if (!cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    int64_t ns;
    if (cnd_duration_parse(cnd_disp_val(d), &ns) != 0) {
        return cnd_disp_err(d, "time: invalid duration \"%s\"",
                            cnd_disp_val(d));
    }
    if (ns < 0) {
        char buf[32];
        return cnd_disp_err(d, "%s can't be negative: %s", name,
                            cnd_duration_format(ns, buf, sizeof(buf)));
    }
    *(int64_t *)field = ns;
    return 0;
}


int
cnd_prop_uint(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    const char *name = cnd_disp_val(d);
    if (!cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    const char *v = cnd_disp_val(d);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0) {
        return cnd_disp_err(d,
                            "strconv.ParseUint: parsing \"%s\": invalid "
                            "syntax",
                            v);
    }
    if (n < 0) {
        return cnd_disp_err(d, "%s can't be negative: %lld", name, n);
    }
    if (n > UINT_MAX) {
        return cnd_disp_err(d, "%s: %s is out of range", name, v);
    }
    *(unsigned *)field = (unsigned)n;
    return 0;
}


int
cnd_prop_string(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    if (!cnd_disp_next_arg(d)) {
        return cnd_disp_arg_err(d);
    }
    *(const char **)field = cnd_disp_val(d);
    return 0;
}


int
cnd_prop_arg_err(cnd_conf_t *cf, cnd_disp_t *d, void *field)
{
    (void)cf;
    (void)field;
    return cnd_disp_arg_err(d);
}


long
cnd_conf_args(cnd_conf_t *cf, cnd_disp_t *d, const char ***out)
{
    long save = d->cursor;
    size_t n = cnd_disp_args(d, NULL, 0);
    d->cursor = save;
    *out = cnd_arena_alloc(&cf->arena, (n + 1) * sizeof(**out));
    if (*out == NULL) {
        return -1;
    }
    cnd_disp_args(d, *out, n);
    (*out)[n] = NULL;
    return (long)n;
}


int
cnd_props_block(cnd_conf_t *cf, cnd_disp_t *d, const cnd_prop_t *props,
                void *conf)
{
    while (cnd_disp_next_block(d)) {
        const char *name = cnd_disp_val(d);
        const cnd_prop_t *p = props;
        while (p->name != NULL && strcmp(p->name, name) != 0) {
            p++;
        }
        if (p->name == NULL && p->set == NULL) {
            return cnd_disp_err(d, "unknown property '%s'", name);
        }
        if (p->set(cf, d, (uint8_t *)conf + p->offset) != 0) {
            return -1;
        }
    }
    return 0;
}
