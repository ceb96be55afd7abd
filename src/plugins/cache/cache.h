/* SPDX-License-Identifier: MIT */
/*
 * plugins/cache/cache.h - what the files of the cache plugin share.
 *
 * setup.c reads the Corefile; store.c keeps answers (sharded tables of
 * wire-format entries, a lock per shard); cache.c answers from them,
 * stores what comes back, serves stale answers and refreshes in the
 * background.
 *
 * Lifetimes: cache_conf_t and its stores are config lifetime (a reload
 * starts an empty cache, as CoreDNS's does); entries are malloc'd, owned
 * by their shard and freed under its lock; cache_worker_t is worker
 * lifetime; cache_ctx_t is request lifetime.
 */
#ifndef CND_PLUGINS_CACHE_H
#define CND_PLUGINS_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include <libknot/libknot.h>
#include <uv.h>

#include "core/plugin.h"

#define CACHE_SHARDS 256
/* Longest key: flags, type, class and the longest name. */
#define CACHE_KEY_MAX (1 + 2 + 2 + KNOT_DNAME_MAXLEN)

/* What an entry holds. */
enum {
    CACHE_SUCCESS = 0, /* answers, delegations, empty NOERROR          */
    CACHE_DENIAL = 1,  /* NXDOMAIN and NODATA with their SOA           */
    CACHE_SERVFAIL = 2 /* a failure, remembered briefly (RFC 9520)     */
};

/* Why a remembered failure failed, or why the last refresh of an entry
 * did.  Malloc'd, owned by its entry. */
typedef struct cache_cause_s {
    uint16_t code;        /* EDE code, CND_EDE_NONE for none   */
    const char *plugin;   /* static                            */
    const char *upstream; /* config lifetime, may be NULL      */
    char text[];
} cache_cause_t;

/* One cached answer, shared by every worker.  One malloc: this header,
 * then the answer's wire, then the offsets of its TTL fields.  Kept
 * small, as it is most of the cache's memory (cache/README.md, Memory):
 * no key (the wire's question is the key, with the DO/CD flags here),
 * times in seconds of the cache clock, the cause out of line.  Owned by
 * its shard; read and changed only under the shard's lock. */
typedef struct cache_entry_s cache_entry_t;
struct cache_entry_s {
    cache_entry_t *next;  /* bucket chain                         */
    cache_cause_t *cause; /* a failure's cause, or NULL           */
    uint32_t hash;        /* of the key (cache_hash), low bits    */
    uint32_t stored;      /* cache clock (s) when stored          */
    uint32_t ttl;         /* its records' TTL when stored (s)     */
    /* Fresh: the last hit (prefetch).  Stale: when the last refresh
     * started (the recheck interval). */
    uint32_t touched;
    uint16_t wirelen;
    uint8_t nttl;               /* TTL fields (at most 255)        */
    uint8_t hits;               /* for prefetch, saturating        */
    uint8_t flags;              /* the key's DO (1) and CD (2)     */
    uint8_t kind : 2;           /* CACHE_*                         */
    uint8_t refreshing : 1;     /* a refresh runs, on some worker  */
    uint8_t refresh_failed : 1; /* and the last one failed         */
    uint8_t data[];             /* wire, then TTL offsets (uint16) */
};

typedef struct cache_shard_s {
    uv_mutex_t lock;
    cache_entry_t **buckets; /* grown with the count         */
    uint32_t mask;           /* buckets - 1                  */
    uint32_t count, cap;
    uint32_t rnd; /* xorshift state: random eviction, as CoreDNS */
} cache_shard_t;

/* One table: success or denial.  Snapshot-shared mutable state: made
 * (malloc'd) by init(), freed by fini(), read and written by every worker
 * of the snapshot, each shard under its own lock. */
typedef struct cache_store_s {
    cache_shard_t shards[CACHE_SHARDS];
    bool ready; /* shards initialised                */
} cache_store_t;

/* Zones (lowercase wire) a setting applies to.  Config lifetime. */
typedef struct cache_zones_s {
    const knot_dname_t **v;
    size_t n;
} cache_zones_t;

typedef enum {
    CACHE_STALE_OFF = 0,
    CACHE_STALE_IMMEDIATE, /* serve stale, refresh behind       */
    CACHE_STALE_VERIFY     /* refresh first, stale on failure   */
} cache_stale_mode_t;

/* The config of one cache line.  Config lifetime (immutable after init()),
 * except the two stores it points to, which are snapshot-shared mutable
 * state (cache_store_t). */
typedef struct cache_conf_s {
    cache_zones_t zones;    /* names served from the cache       */
    uint32_t pcap, ncap;    /* capacities (entries)              */
    uint32_t pttl, minpttl; /* success: max and min TTL (s)      */
    uint32_t nttl, minnttl; /* denial                             */
    uint32_t servfail_ttl;  /* 0: failures are not cached        */
    uint32_t prefetch;      /* AMOUNT, 0: off                    */
    uint32_t prefetch_gap;  /* DURATION (s)                      */
    uint32_t prefetch_pct;  /* PERCENTAGE                        */
    cache_stale_mode_t stale;
    uint32_t stale_max;     /* how long past expiry (s)          */
    uint32_t stale_ttl;     /* TTL on stale records (s)          */
    uint32_t stale_recheck; /* a failed refresh waits this (s)   */
    uint32_t verify_ms;     /* verify: wait this for the refresh */
    cache_zones_t no_success, no_denial;
    bool keepttl;
    cache_store_t *success, *denial; /* malloc'd in init()             */
    char server[96];                 /* metric labels                     */
    char zones_label[256];
} cache_conf_t;

/* Per worker: metric series and the refreshes it runs.  Worker lifetime
 * (worker_init() to worker_fini(), on that worker's thread; no locks). */
typedef struct cache_refresh_s cache_refresh_t;
typedef struct cache_worker_s {
    cnd_series_t *hits[2], *misses, *requests, *prefetch, *drops, *stale;
    cnd_series_t *entries[2], *evictions[2];
    cache_refresh_t *refreshes; /* in flight on this worker          */
} cache_worker_t;

/* store.c: the key of a query: DO and CD bits, type, class, name. */
size_t cache_key(uint8_t *key, const knot_dname_t *qname, uint16_t qtype,
                 uint16_t qclass, bool do_bit, bool cd);
uint64_t cache_hash(const uint8_t *key, size_t len);

int cache_store_init(cache_store_t *st, uint32_t cap);
void cache_store_free(cache_store_t *st);

/* The entry of @key, the shard locked (unlock with cache_unlock), or
 * NULL (still locked: the caller unlocks). */
cache_shard_t *cache_shard(cache_store_t *st, uint64_t hash);
cache_entry_t *cache_find(cache_shard_t *sh, uint64_t hash, const uint8_t *key,
                          size_t keylen);
/* Start loading what cache_find(@hash) will read: @step 0 the bucket,
 * @step 1 (once that has arrived) the entry it leads to.  Only hints to
 * the CPU; takes no lock but a free one, briefly. */
void cache_prefetch(cache_store_t *st, uint64_t hash, int step);

/* Put @e in (replacing an entry of the same key), evicting a random one
 * when the shard is full.  Locks the shard.  Returns how many entries
 * were evicted (0 or 1) and, through @replaced, whether one was replaced.
 * Takes ownership of @e. */
int cache_insert(cache_store_t *st, cache_entry_t *e, bool *replaced);

/* Call @fn for every entry, one shard at a time under its lock (so @fn
 * must not touch the store). */
typedef void (*cache_walk_fn)(const cache_entry_t *e, void *arg);
void cache_store_walk(cache_store_t *st, cache_walk_fn fn, void *arg);

/* Remove the entries of @name (lowercase wire; every type, class and
 * flag), or every entry when @name is NULL.  Returns how many. */
size_t cache_store_flush(cache_store_t *st, const knot_dname_t *name);

/* Build an entry from an answer to the question of @key: @wire without
 * its OPT, every TTL set to @ttl, the TTL offsets noted.  NULL when out
 * of memory, malformed, asking another question, or with more than 255
 * records. */
cache_entry_t *cache_entry_new(const uint8_t *key, size_t keylen, uint64_t hash,
                               const uint8_t *wire, size_t len, uint32_t ttl,
                               uint64_t now_ms, uint8_t kind);
void cache_entry_free(cache_entry_t *e);

/* Set @e's cause (replacing one): @text copied.  Returns 0 or -ENOMEM. */
int cache_entry_cause(cache_entry_t *e, uint16_t code, const char *plugin,
                      const char *upstream, const char *text);

static inline uint8_t *
cache_entry_wire(cache_entry_t *e)
{
    return e->data;
}

static inline const uint16_t *
cache_entry_ttls(const cache_entry_t *e)
{
    return (const uint16_t *)(e->data + e->wirelen + (e->wirelen & 1));
}

/* The entry's question name (in its wire, in the case it came in). */
static inline const uint8_t *
cache_entry_qname(const cache_entry_t *e)
{
    return e->data + KNOT_WIRE_HEADER_SIZE;
}

/* setup.c */
extern const cnd_plugin_t cnd_plugin_cache;

/* ctl.c: "candor ctl dump_cache" and "flush". */
extern const cnd_ctl_cmd_t cache_ctl[];

/* cache.c: @n entries of @st left by other means than a worker's
 * eviction (flushed, or the snapshot freed): take them off
 * coredns_cache_entries, which workers count up.  Main thread. */
void cache_entries_forget(const cache_conf_t *c, const cache_store_t *st,
                          size_t n);

/* store.c: how many entries @st holds now. */
size_t cache_store_count(cache_store_t *st);

/* cache.c: the hooks. */
int cache_worker_init(cnd_worker_t *w, cnd_inst_t *self, void **wdata);
void cache_worker_fini(cnd_worker_t *w, cnd_inst_t *self, void *wdata);
cnd_rc_t cache_query(cnd_req_t *r, cnd_inst_t *self);
void cache_prefetch_hook(cnd_req_t *r, cnd_inst_t *self, int step);
void cache_response(cnd_req_t *r, cnd_inst_t *self);
void cache_cancel(cnd_req_t *r, cnd_inst_t *self);

/* The request state of the cache.  Request lifetime. */
typedef struct cache_ctx_s {
    uint8_t *key; /* CACHE_KEY_MAX bytes in the request arena: not
                     in the context, which is zeroed for every query */
    size_t keylen;
    uint64_t hash;
    bool keyed;     /* key and hash made (prefetch, query) */
    bool missed;    /* went on: store what comes back     */
    bool client_ad; /* the client's AD bit                */
    /* verify mode: the stale answer to give if the refresh fails */
    uint8_t *stale;
    uint16_t stale_len;
    uint32_t stale_age;       /* seconds past expiry                */
    bool stale_nx;            /* a stale NXDOMAIN                   */
    cache_refresh_t *waiting; /* the refresh it waits on            */
    cnd_req_t *r;
    struct cache_ctx_s *next_waiter;
} cache_ctx_t;

#endif
