/* SPDX-License-Identifier: MIT */
/*
 * util/arena.c - region (bump) allocator with cleanups.
 *
 * Chunks are a header followed by their bytes; the arena bumps a pointer in
 * the newest block and starts a new chunk when it does not fit.  Old
 * chunks' tails are wasted: allocations are small and short-lived.
 */
#include "util/arena.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

struct cnd_arena_chunk_s {
    cnd_arena_chunk_t *next;
    size_t size;
    /* keeps the bytes after the header aligned */
    _Alignas(ARENA_ALIGN) uint8_t data[];
};

struct cnd_arena_cleanup_s {
    cnd_arena_cleanup_t *next;
    void (*fn)(void *);
    void *arg;
};


void
cnd_arena_init(cnd_arena_t *a, void *buf, size_t size, size_t chunk_size)
{
    memset(a, 0, sizeof(*a));
    a->first = buf;
    a->first_size = buf != NULL ? size : 0;
    a->chunk_size = chunk_size != 0 ? chunk_size : 4096;
    a->pos = a->first;
    a->end = a->first != NULL ? a->first + a->first_size : NULL;
}


void
cnd_arena_reset(cnd_arena_t *a)
{
    while (a->cleanups != NULL) {
        cnd_arena_cleanup_t *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->arg);
    }
    while (a->chunks != NULL) {
        cnd_arena_chunk_t *c = a->chunks;
        a->chunks = c->next;
        free(c);
    }
    a->pos = a->first;
    a->end = a->first != NULL ? a->first + a->first_size : NULL;
}


void
cnd_arena_deinit(cnd_arena_t *a)
{
    cnd_arena_reset(a);
    a->first = NULL;
    a->pos = a->end = NULL;
}


void *
cnd__arena_grow(cnd_arena_t *a, size_t n)
{
    size_t size = n > a->chunk_size ? n : a->chunk_size;
    cnd_arena_chunk_t *c = malloc(sizeof(*c) + size);
    if (c == NULL) {
        return NULL;
    }
    c->size = size;
    c->next = a->chunks;
    a->chunks = c;
    /* A big allocation gets a chunk of its own and keeps the current
     * block, which still has room for the small ones. */
    if (n > a->chunk_size / 2 && a->pos != NULL) {
        return c->data;
    }
    a->pos = c->data + n;
    a->end = c->data + size;
    return c->data;
}


char *
cnd_arena_strndup(cnd_arena_t *a, const char *s, size_t n)
{
    char *d = cnd_arena_alloc(a, n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}


char *
cnd_arena_strdup(cnd_arena_t *a, const char *s)
{
    return cnd_arena_strndup(a, s, strlen(s));
}


char *
cnd_arena_vprintf(cnd_arena_t *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return NULL;
    }
    char *d = cnd_arena_alloc(a, (size_t)n + 1);
    if (d != NULL) {
        vsnprintf(d, (size_t)n + 1, fmt, ap);
    }
    return d;
}


char *
cnd_arena_printf(cnd_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *d = cnd_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return d;
}


int
cnd_arena_cleanup_add(cnd_arena_t *a, void (*fn)(void *), void *arg)
{
    cnd_arena_cleanup_t *c = cnd_arena_alloc(a, sizeof(*c));
    if (c == NULL) {
        return -ENOMEM;
    }
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}
