/* SPDX-License-Identifier: MIT */
/*
 * plugins/cache/store.c - cached answers in wire form, sharded.
 *
 * A store is 256 shards, each a small hash table with its own lock, so
 * workers rarely wait on each other.  An entry is one malloc: the key (DO
 * and CD bits, type, class, lowercase name), the answer's wire without
 * its OPT and with every TTL set to the one TTL it was stored with, and
 * the offsets of those TTL fields, so a hit is a copy and a few 32-bit
 * writes: no parsing, no allocation.  A full shard evicts its oldest
 * entry (insertion order).  Expired entries stay until evicted or
 * replaced: they serve stale answers.
 */
#include <stdlib.h>
#include <string.h>

#include "dns/msg.h"
#include "plugins/cache/cache.h"


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
    uint32_t nb = 4;
    while (nb < per) {
        nb *= 2;
    }
    for (size_t i = 0; i < CACHE_SHARDS; i++) {
        cache_shard_t *sh = &st->shards[i];
        memset(sh, 0, sizeof(*sh));
        sh->buckets = calloc(nb, sizeof(*sh->buckets));
        if (sh->buckets == NULL || uv_mutex_init(&sh->lock) != 0) {
            free(sh->buckets);
            while (i-- > 0) {
                free(st->shards[i].buckets);
                uv_mutex_destroy(&st->shards[i].lock);
            }
            return -1;
        }
        sh->mask = nb - 1;
        sh->cap = per;
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
        cache_entry_t *e = sh->oldest;
        while (e != NULL) {
            cache_entry_t *n = e->newer;
            cache_entry_free(e);
            e = n;
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


cache_entry_t *
cache_find(cache_shard_t *sh, uint64_t hash, const uint8_t *key, size_t keylen)
{
    cache_entry_t *e = sh->buckets[(hash >> 8) & sh->mask];
    for (; e != NULL; e = e->next) {
        if (e->hash == hash && e->keylen == keylen &&
            memcmp(cache_entry_key(e), key, keylen) == 0) {
            return e;
        }
    }
    return NULL;
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
    if (e->older != NULL) {
        e->older->newer = e->newer;
    } else {
        sh->oldest = e->newer;
    }
    if (e->newer != NULL) {
        e->newer->older = e->older;
    } else {
        sh->newest = e->older;
    }
    sh->count--;
}


int
cache_insert(cache_store_t *st, cache_entry_t *e, bool *replaced)
{
    int evicted = 0;
    cache_entry_t *dead[2] = {NULL, NULL};
    cache_shard_t *sh = cache_shard(st, e->hash);
    cache_entry_t *old = cache_find(sh, e->hash, cache_entry_key(e), e->keylen);
    *replaced = old != NULL;
    if (old != NULL) {
        store_unlink(sh, old);
        dead[0] = old;
    } else if (sh->count >= sh->cap && sh->oldest != NULL) {
        dead[1] = sh->oldest;
        store_unlink(sh, dead[1]);
        evicted = 1;
    }
    cache_entry_t **b = &sh->buckets[(e->hash >> 8) & sh->mask];
    e->next = *b;
    *b = e;
    e->older = sh->newest;
    e->newer = NULL;
    if (sh->newest != NULL) {
        sh->newest->newer = e;
    } else {
        sh->oldest = e;
    }
    sh->newest = e;
    sh->count++;
    uv_mutex_unlock(&sh->lock);
    /* free outside the lock */
    cache_entry_free(dead[0]);
    cache_entry_free(dead[1]);
    return evicted;
}


cache_entry_t *
cache_entry_new(const uint8_t *key, size_t keylen, uint64_t hash,
                const uint8_t *wire, size_t len, uint32_t ttl, uint64_t now,
                uint8_t kind)
{
    cnd_rr_iter_t it;
    cnd_rr_t rr;
    int rc;
    if (cnd_rr_iter_init(&it, wire, len) != 0) {
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
    if (rc < 0 || body > 65535 || nttl > 65535) {
        return NULL;
    }
    size_t pad = (keylen + body) & 1;
    cache_entry_t *e =
        malloc(sizeof(*e) + keylen + body + pad + nttl * sizeof(uint16_t));
    if (e == NULL) {
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->hash = hash;
    e->stored = now;
    e->ttl = ttl;
    e->last_hit = now;
    e->kind = kind;
    e->keylen = (uint16_t)keylen;
    e->wirelen = (uint16_t)body;
    e->nttl = (uint16_t)nttl;
    e->cause_code = 0xffff;
    memcpy(e->data, key, keylen);
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


void
cache_store_walk(cache_store_t *st, cache_walk_fn fn, void *arg)
{
    for (size_t i = 0; st->ready && i < CACHE_SHARDS; i++) {
        cache_shard_t *sh = &st->shards[i];
        uv_mutex_lock(&sh->lock);
        for (cache_entry_t *e = sh->oldest; e != NULL; e = e->newer) {
            fn(e, arg);
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
        cache_entry_t *e = sh->oldest;
        while (e != NULL) {
            cache_entry_t *next = e->newer;
            if (name == NULL ||
                knot_dname_is_equal(cache_entry_key(e) + 5, name)) {
                store_unlink(sh, e);
                e->next = dead;
                dead = e;
                n++;
            }
            e = next;
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
