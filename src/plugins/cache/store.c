/* SPDX-License-Identifier: MIT */
/*
 * plugins/cache/store.c - cached answers in wire form, sharded.
 *
 * A store is 256 shards, each a small hash table with its own lock, so
 * workers rarely wait on each other.  A table starts small and doubles
 * as it fills, so an idle cache costs little.  An entry is one malloc:
 * a small header, the answer's wire without its OPT and with every TTL
 * set to the one TTL it was stored with, and the offsets of those TTL
 * fields, so a hit is a copy and a few 32-bit writes: no parsing, no
 * allocation.  The key (DO and CD bits, type, class, lowercase name) is
 * not stored: the wire's question is compared with it.  A full shard
 * evicts a random entry, as CoreDNS's does.  Expired entries stay until
 * evicted or replaced: they serve stale answers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dns/ede.h"
#include "dns/msg.h"
#include "plugins/cache/cache.h"

#define STORE_BUCKETS_MIN 8


size_t
cache_key(uint8_t *key, const knot_dname_t *qname, uint16_t qtype,
          uint16_t qclass, bool do_bit, bool cd)
{
    size_t n = knot_dname_size(qname);
    key[0] = (uint8_t)((do_bit ? 1 : 0) | (cd ? 2 : 0));
    key[1] = (uint8_t)(qtype >> 8);
    key[2] = (uint8_t)qtype;
    key[3] = (uint8_t)(qclass >> 8);
    key[4] = (uint8_t)qclass;
    memcpy(key + 5, qname, n);
    return 5 + n;
}


uint64_t
cache_hash(const uint8_t *key, size_t len)
{
    /* FNV-1a: keys are short, and this is one multiply per byte. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= key[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}


int
cache_store_init(cache_store_t *st, uint32_t cap)
{
    /* CoreDNS: CAP / 256 per shard, at least 4. */
    uint32_t per = cap / CACHE_SHARDS;
    if (per < 4) {
        per = 4;
    }
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        cache_shard_t *sh = &st->shards[i];
        memset(sh, 0, sizeof(*sh));
        sh->buckets = calloc(STORE_BUCKETS_MIN, sizeof(*sh->buckets));
        if (sh->buckets == NULL || uv_mutex_init(&sh->lock) != 0) {
            free(sh->buckets);
            while (i-- > 0) {
                free(st->shards[i].buckets);
                uv_mutex_destroy(&st->shards[i].lock);
            }
            return -1;
        }
        sh->mask = STORE_BUCKETS_MIN - 1;
        sh->cap = per;
        sh->rnd = 0x9e3779b9u ^ (uint32_t)i; /* any nonzero start */
    }
    st->ready = true;
    return 0;
}


void
cache_entry_free(cache_entry_t *e)
{
    if (e != NULL) {
        free(e->cause);
        free(e);
    }
}


void
cache_store_free(cache_store_t *st)
{
    if (st == NULL || !st->ready) {
        return;
    }
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        cache_shard_t *sh = &st->shards[i];
        for (uint32_t b = 0; b <= sh->mask; b++) {
            cache_entry_t *e = sh->buckets[b];
            while (e != NULL) {
                cache_entry_t *n = e->next;
                cache_entry_free(e);
                e = n;
            }
        }
        free(sh->buckets);
        uv_mutex_destroy(&sh->lock);
    }
    st->ready = false;
}


cache_shard_t *
cache_shard(cache_store_t *st, uint64_t hash)
{
    cache_shard_t *sh = &st->shards[hash & (CACHE_SHARDS - 1)];
    uv_mutex_lock(&sh->lock);
    return sh;
}


/* Does @e answer the question of @key (flags, type, class, name)? */
static bool
store_same(const cache_entry_t *e, const uint8_t *key, size_t keylen)
{
    const uint8_t *q = cache_entry_qname(e);
    size_t n = keylen - 5;
    return e->flags == key[0] &&
           (size_t)e->wirelen >= KNOT_WIRE_HEADER_SIZE + n + 4 &&
           memcmp(q + n, key + 1, 4) == 0 &&
           knot_dname_is_case_equal(q, key + 5);
}


cache_entry_t *
cache_find(cache_shard_t *sh, uint64_t hash, const uint8_t *key, size_t keylen)
{
    cache_entry_t *e = sh->buckets[(hash >> 8) & sh->mask];
    for (; e != NULL; e = e->next) {
        if (e->hash == (uint32_t)hash && store_same(e, key, keylen)) {
            return e;
        }
    }
    return NULL;
}


void
cache_prefetch(cache_store_t *st, uint64_t hash, int step)
{
    cache_shard_t *sh = &st->shards[hash & (CACHE_SHARDS - 1)];
    if (step == 0) {
        /* Unlocked: a grow may swap the buckets meanwhile, and then the
         * prefetch warms a wrong line.  A prefetch never faults. */
        cache_entry_t **b = __atomic_load_n(&sh->buckets, __ATOMIC_RELAXED);
        uint32_t mask = __atomic_load_n(&sh->mask, __ATOMIC_RELAXED);
        __builtin_prefetch(&b[(hash >> 8) & mask]);
        return;
    }
    /* The chain's head must be read under the lock (the buckets may be
     * freed); the entry it names is then only prefetched.  A busy lock
     * means another worker is in this shard: skip rather than wait. */
    if (uv_mutex_trylock(&sh->lock) != 0) {
        return;
    }
    cache_entry_t *e = sh->buckets[(hash >> 8) & sh->mask];
    uv_mutex_unlock(&sh->lock);
    if (e != NULL) {
        __builtin_prefetch(e);                       /* its header */
        __builtin_prefetch((const uint8_t *)e + 64); /* its question */
    }
}


/* Do two entries answer the same key?  (Their questions were checked
 * when they were made.) */
static bool
store_same_question(const cache_entry_t *a, const cache_entry_t *b)
{
    const uint8_t *qa = cache_entry_qname(a), *qb = cache_entry_qname(b);
    size_t n = knot_dname_size(qa);
    return a->flags == b->flags && n == knot_dname_size(qb) &&
           memcmp(qa + n, qb + n, 4) == 0 && knot_dname_is_case_equal(qa, qb);
}


/* Take @e out of its shard (locked). */
static void
store_unlink(cache_shard_t *sh, cache_entry_t *e)
{
    cache_entry_t **p = &sh->buckets[(e->hash >> 8) & sh->mask];
    while (*p != e) {
        p = &(*p)->next;
    }
    *p = e->next;
    sh->count--;
}


/* Double the buckets when there are more entries than buckets.  Failing
 * to grow only makes chains longer. */
static void
store_grow(cache_shard_t *sh)
{
    uint32_t nb = (sh->mask + 1) * 2;
    cache_entry_t **b = calloc(nb, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; i <= sh->mask; i++) {
        cache_entry_t *e = sh->buckets[i];
        while (e != NULL) {
            cache_entry_t *next = e->next;
            cache_entry_t **to = &b[(e->hash >> 8) & (nb - 1)];
            e->next = *to;
            *to = e;
            e = next;
        }
    }
    /* Atomic, for cache_prefetch()'s unlocked read. */
    cache_entry_t **old = sh->buckets;
    __atomic_store_n(&sh->buckets, b, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->mask, nb - 1, __ATOMIC_RELAXED);
    free(old);
}


/* A random entry of the shard (locked, not empty): a random bucket, then
 * the next one that holds anything. */
static cache_entry_t *
store_victim(cache_shard_t *sh)
{
    uint32_t x = sh->rnd; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    sh->rnd = x;
    for (uint32_t i = 0; i <= sh->mask; i++) {
        cache_entry_t *e = sh->buckets[(x + i) & sh->mask];
        if (e != NULL) {
            return e;
        }
    }
    return NULL;
}


int
cache_insert(cache_store_t *st, cache_entry_t *e, bool *replaced)
{
    int evicted = 0;
    cache_entry_t *dead = NULL;
    cache_shard_t *sh = cache_shard(st, e->hash);
    /* The same key: the same hash, flags and question. */
    cache_entry_t *old = sh->buckets[(e->hash >> 8) & sh->mask];
    while (old != NULL &&
           !(old->hash == e->hash && store_same_question(old, e))) {
        old = old->next;
    }
    *replaced = old != NULL;
    if (old != NULL) {
        store_unlink(sh, old);
        dead = old;
    } else if (sh->count >= sh->cap && (dead = store_victim(sh)) != NULL) {
        store_unlink(sh, dead);
        evicted = 1;
    }
    if (sh->count >= sh->mask + 1) {
        store_grow(sh);
    }
    cache_entry_t **b = &sh->buckets[(e->hash >> 8) & sh->mask];
    e->next = *b;
    *b = e;
    sh->count++;
    uv_mutex_unlock(&sh->lock);
    cache_entry_free(dead); /* outside the lock */
    return evicted;
}


/* Does @wire's question match @key (type, class, name in any case)? */
static bool
store_question_is(const uint8_t *wire, size_t len, size_t qend,
                  const uint8_t *key, size_t keylen)
{
    return qend == KNOT_WIRE_HEADER_SIZE + (keylen - 5) + 4 && qend <= len &&
           knot_wire_get_qdcount(wire) == 1 &&
           memcmp(wire + qend - 4, key + 1, 4) == 0 &&
           knot_dname_is_case_equal(wire + KNOT_WIRE_HEADER_SIZE, key + 5);
}


cache_entry_t *
cache_entry_new(const uint8_t *key, size_t keylen, uint64_t hash,
                const uint8_t *wire, size_t len, uint32_t ttl, uint64_t now,
                uint8_t kind)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    int rc;
    if (cnd_rr_iter_init(&it, wire, len) != 0 ||
        !store_question_is(wire, len, it.question_end, key, keylen)) {
        return NULL;
    }
    /* Measure: the records but the OPT (and a TSIG, never cached). */
    size_t body = it.question_end;
    unsigned nttl = 0;
    while ((rc = cnd_rr_next(&it, &rr)) == 1) {
        if (rr.type != KNOT_RRTYPE_OPT && rr.type != KNOT_RRTYPE_TSIG) {
            body += rr.end - rr.start;
            nttl++;
        }
    }
    if (rc < 0 || body > 65535 || nttl > 255) {
        return NULL;
    }
    cache_entry_t *e =
        malloc(sizeof(*e) + body + (body & 1) + nttl * sizeof(uint16_t));
    if (e == NULL) {
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->hash = (uint32_t)hash;
    e->stored = (uint32_t)(now / 1000);
    e->ttl = ttl;
    e->touched = e->stored;
    e->kind = kind & 3;
    e->flags = key[0];
    e->wirelen = (uint16_t)body;
    e->nttl = (uint8_t)nttl;
    uint8_t *w = cache_entry_wire(e);
    uint16_t *ttls = (uint16_t *)cache_entry_ttls(e);
    memcpy(w, wire, it.question_end);
    size_t o = it.question_end;
    uint16_t counts[3] = {0, 0, 0};
    unsigned k = 0;
    cnd_rr_iter_init(&it, wire, len);
    while (cnd_rr_next(&it, &rr) == 1) {
        if (rr.type == KNOT_RRTYPE_OPT || rr.type == KNOT_RRTYPE_TSIG) {
            continue;
        }
        memcpy(w + o, wire + rr.start, rr.end - rr.start);
        size_t t = o + (rr.ttl_off - rr.start);
        knot_wire_write_u32(w + t, ttl);
        ttls[k++] = (uint16_t)t;
        o += rr.end - rr.start;
        counts[rr.section - KNOT_ANSWER]++;
    }
    knot_wire_set_ancount(w, counts[0]);
    knot_wire_set_nscount(w, counts[1]);
    knot_wire_set_arcount(w, counts[2]);
    return e;
}


int
cache_entry_cause(cache_entry_t *e, uint16_t code, const char *plugin,
                  const char *upstream, const char *text)
{
    size_t n = strlen(text);
    cache_cause_t *c = malloc(sizeof(*c) + n + 1);
    if (c == NULL) {
        return -ENOMEM;
    }
    c->code = code;
    c->plugin = plugin;
    c->upstream = upstream;
    memcpy(c->text, text, n + 1);
    free(e->cause);
    e->cause = c;
    return 0;
}


void
cache_store_walk(cache_store_t *st, cache_walk_fn fn, void *arg)
{
    for (size_t i = 0; st->ready && i < CACHE_SHARDS; i++) {
        cache_shard_t *sh = &st->shards[i];
        uv_mutex_lock(&sh->lock);
        for (uint32_t b = 0; b <= sh->mask; b++) {
            for (cache_entry_t *e = sh->buckets[b]; e != NULL; e = e->next) {
                fn(e, arg);
            }
        }
        uv_mutex_unlock(&sh->lock);
    }
}


size_t
cache_store_flush(cache_store_t *st, const knot_dname_t *name)
{
    size_t n = 0;
    for (size_t i = 0; st->ready && i < CACHE_SHARDS; i++) {
        cache_shard_t *sh = &st->shards[i];
        cache_entry_t *dead = NULL;
        uv_mutex_lock(&sh->lock);
        for (uint32_t b = 0; b <= sh->mask; b++) {
            cache_entry_t **p = &sh->buckets[b];
            while (*p != NULL) {
                cache_entry_t *e = *p;
                if (name == NULL ||
                    knot_dname_is_case_equal(cache_entry_qname(e), name)) {
                    *p = e->next;
                    sh->count--;
                    e->next = dead;
                    dead = e;
                    n++;
                } else {
                    p = &e->next;
                }
            }
        }
        uv_mutex_unlock(&sh->lock);
        while (dead != NULL) { /* free outside the lock */
            cache_entry_t *next = dead->next;
            cache_entry_free(dead);
            dead = next;
        }
    }
    return n;
}


size_t
cache_store_count(cache_store_t *st)
{
    size_t n = 0;
    for (size_t i = 0; st->ready && i < CACHE_SHARDS; i++) {
        cache_shard_t *sh = &st->shards[i];
        uv_mutex_lock(&sh->lock);
        n += sh->count;
        uv_mutex_unlock(&sh->lock);
    }
    return n;
}
