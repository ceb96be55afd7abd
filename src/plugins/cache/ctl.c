/* SPDX-License-Identifier: MIT */
/*
 * plugins/cache/ctl.c - "candor ctl dump_cache" and "candor ctl flush".
 *
 * Both run on the main thread against the stores every worker shares,
 * one shard at a time under its lock, so serving goes on meanwhile.
 */
#include <stdio.h>
#include <string.h>

#include "dns/msg.h"
#include "plugins/cache/cache.h"

typedef struct {
    cnd_ctl_t *ctl;
    uint64_t now; /* ms, the workers' loop clock */
    size_t n;
} cache_dump_t;


/* NAME TYPE CLASS TTL KIND [FLAGS] [CAUSE]: TTL is what a hit would give
 * now, negative once expired (a stale candidate). */
static void
cache_dump_entry(const cache_entry_t *e, void *arg)
{
    cache_dump_t *d = arg;
    const uint8_t *q = cache_entry_qname(e);
    const uint8_t *tc = q + knot_dname_size(q);
    char name[KNOT_DNAME_TXT_MAXLEN + 1], type[16], cls[16];
    knot_dname_to_str(name, q, sizeof(name));
    cnd_type_str(knot_wire_read_u16(tc), type, sizeof(type));
    const char *c = cnd_class_str(knot_wire_read_u16(tc + 2), cls, sizeof(cls));
    int64_t age = (int64_t)(d->now / 1000) - (int64_t)e->stored;
    static const char *const kinds[] = {"success", "denial", "servfail", "?"};
    cnd_ctl_printf(d->ctl, "%s %s %s %lld %s%s%s", name, type, c,
                   (long long)((int64_t)e->ttl - age), kinds[e->kind],
                   e->flags & 1 ? " do" : "", e->flags & 2 ? " cd" : "");
    if (e->cause != NULL) {
        cnd_ctl_printf(d->ctl, " cause=%s: %s",
                       e->cause->plugin != NULL ? e->cause->plugin : "cache",
                       e->cause->text);
    }
    cnd_ctl_printf(d->ctl, "\n");
    d->n++;
}


static int
cache_ctl_dump(cnd_ctl_t *ctl, cnd_inst_t *self, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        return cnd_ctl_error(ctl, "dump_cache takes no arguments");
    }
    cache_conf_t *c = self->conf;
    cache_dump_t d = {.ctl = ctl, .now = uv_hrtime() / 1000000};
    cnd_ctl_printf(ctl, "# cache %s (%s:%d): name type class ttl kind\n",
                   c->zones_label, self->file, self->line);
    cache_store_walk(c->success, cache_dump_entry, &d);
    cache_store_walk(c->denial, cache_dump_entry, &d);
    cnd_ctl_printf(ctl, "# %zu entries\n", d.n);
    return 0;
}


static int
cache_ctl_flush(cnd_ctl_t *ctl, cnd_inst_t *self, int argc, char **argv)
{
    if (argc > 2) {
        return cnd_ctl_error(ctl, "usage: flush [NAME]");
    }
    cache_conf_t *c = self->conf;
    knot_dname_storage_t name;
    if (argc == 2) {
        if (knot_dname_from_str(name, argv[1], sizeof(name)) == NULL) {
            return cnd_ctl_error(ctl, "flush: not a domain name: %s", argv[1]);
        }
        knot_dname_to_lower(name);
    }
    size_t ns = cache_store_flush(c->success, argc == 2 ? name : NULL);
    size_t nd = cache_store_flush(c->denial, argc == 2 ? name : NULL);
    cache_entries_forget(c, c->success, ns);
    cache_entries_forget(c, c->denial, nd);
    size_t n = ns + nd;
    cnd_ctl_printf(ctl, "cache %s (%s:%d): flushed %zu entries\n",
                   c->zones_label, self->file, self->line, n);
    return 0;
}


const cnd_ctl_cmd_t cache_ctl[] = {
    {"dump_cache", "", "every cached answer: name, type, TTL left, kind",
     cache_ctl_dump},
    {"flush", "[NAME]", "drop every cached answer, or those of NAME",
     cache_ctl_flush},
    {NULL, NULL, NULL, NULL},
};
