/* SPDX-License-Identifier: MIT */
/*
 * util/arena.h - region (bump) allocator with cleanups.
 *
 * An arena hands out memory that is freed all at once: a request's arena is
 * reset when the request ends, the config arena when its snapshot is
 * released (the nginx pool, Unbound's regional).  The first block may be
 * storage the caller owns (a request embeds a few KiB), so the common case
 * never calls malloc; a request that outgrows it gets malloc'd chunks that
 * are freed on reset.  Cleanups run on reset, last added first, for
 * resources that are not memory (fds, timers).
 *
 * Not thread-safe: an arena belongs to one thread at a time.
 */
#ifndef CND_UTIL_ARENA_H
#define CND_UTIL_ARENA_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct cnd_arena_chunk_s cnd_arena_chunk_t;
typedef struct cnd_arena_cleanup_s cnd_arena_cleanup_t;

typedef struct cnd_arena_s {
    uint8_t *pos;                  /* next free byte                      */
    uint8_t *end;                  /* end of the current block            */
    uint8_t *first;                /* caller's block, or NULL             */
    size_t first_size;             /* its size                            */
    size_t chunk_size;             /* size of malloc'd chunks             */
    cnd_arena_chunk_t *chunks;     /* malloc'd chunks, newest first       */
    cnd_arena_cleanup_t *cleanups; /* run on reset, newest first          */
} cnd_arena_t;

/* Initialise an arena over @buf (may be NULL with @size 0).  Chunks of
 * @chunk_size bytes (or larger, for a big allocation) are malloc'd when the
 * first block is full. */
void cnd_arena_init(cnd_arena_t *a, void *buf, size_t size, size_t chunk_size);

/* Run cleanups, free every chunk and rewind to the first block. */
void cnd_arena_reset(cnd_arena_t *a);

/* Reset and forget the first block; the arena may not be used again. */
void cnd_arena_deinit(cnd_arena_t *a);

/* The slow half of cnd_arena_alloc(): a new chunk.  Private. */
void *cnd__arena_grow(cnd_arena_t *a, size_t n);

/* Allocate @n bytes aligned to 16.  Returns NULL when out of memory.
 * Inline: a request makes a few of these on every query, and the bump
 * is a handful of instructions. */
static inline void *
cnd_arena_alloc(cnd_arena_t *a, size_t n)
{
    uintptr_t p = ((uintptr_t)a->pos + 15) & ~(uintptr_t)15;
    if (a->pos != NULL && p <= (uintptr_t)a->end &&
        (uintptr_t)a->end - p >= n) {
        a->pos = (uint8_t *)p + n;
        return (void *)p;
    }
    return cnd__arena_grow(a, n);
}

/* As cnd_arena_alloc(), zeroed. */
static inline void *
cnd_arena_zalloc(cnd_arena_t *a, size_t n)
{
    void *p = cnd_arena_alloc(a, n);
    if (p != NULL) {
        memset(p, 0, n);
    }
    return p;
}

/* Copy @n bytes of @p. */
static inline void *
cnd_arena_memdup(cnd_arena_t *a, const void *p, size_t n)
{
    void *q = cnd_arena_alloc(a, n);
    if (q != NULL && n != 0) {
        memcpy(q, p, n);
    }
    return q;
}

/* Copy a string, or its first @n bytes, NUL-terminated. */
char *cnd_arena_strdup(cnd_arena_t *a, const char *s);
char *cnd_arena_strndup(cnd_arena_t *a, const char *s, size_t n);

/* printf into the arena.  Returns NULL when out of memory. */
char *cnd_arena_printf(cnd_arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *cnd_arena_vprintf(cnd_arena_t *a, const char *fmt, va_list ap);

/* Run @fn(@arg) when the arena is reset.  Returns 0 or -ENOMEM. */
int cnd_arena_cleanup_add(cnd_arena_t *a, void (*fn)(void *), void *arg);

#endif
