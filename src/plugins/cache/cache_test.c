/* SPDX-License-Identifier: MIT */
/*
 * plugins/cache/cache_test.c - the cache line of a Corefile, and the
 * store: entries, TTL offsets, replacement and eviction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/conf.h"
#include "plugins/cache/cache.h"

static cnd_opts_t opts = {.dns_port = 53};

typedef struct {
    const char *name;
    const char *text;
    const char *want; /* summary, or NULL when it must fail */
    const char *err;
} cache_case_t;


static void
summary(const cache_conf_t *c, char *out, size_t size)
{
    static const char *const modes[] = {"off", "immediate", "verify"};
    snprintf(out, size,
             "zones=%zu pcap=%u pttl=%u/%u ncap=%u nttl=%u/%u servfail=%u "
             "prefetch=%u/%u/%u stale=%s/%u/%u/%u/%u keepttl=%d",
             c->zones.n, c->pcap, c->pttl, c->minpttl, c->ncap, c->nttl,
             c->minnttl, c->servfail_ttl, c->prefetch, c->prefetch_gap,
             c->prefetch_pct, modes[c->stale], c->stale_max, c->stale_ttl,
             c->stale_recheck, c->verify_ms, c->keepttl);
}


static const cache_case_t cases[] = {
    {"defaults", ". {\n cache\n}",
     "zones=1 pcap=10000 pttl=3600/5 ncap=10000 nttl=1800/5 servfail=5 "
     "prefetch=0/60/10 stale=off/3600/30/30/1800 keepttl=0",
     NULL},
    {"corpus ok",
     ".:53 {\n\tcache example.nl {\n\t\tsuccess\n\t\tdenial 10 "
     "15\n\t}\n}",
     NULL,
     "plugin/cache: Corefile:3 - Error during parsing: Wrong argument count "
     "or unexpected line ending after 'success'"},
    {"ttl and zones", ". {\n cache 30 example.org example.net\n}",
     "zones=2 pcap=10000 pttl=30/5 ncap=10000 nttl=30/5 servfail=5 "
     "prefetch=0/60/10 stale=off/3600/30/30/1800 keepttl=0",
     NULL},
    {"every property",
     ". {\n cache {\n  success 5000 600 10\n  denial 2000 60 1\n  "
     "prefetch 10 2m 20%\n  serve_stale 2h verify 1s 10s 1m\n  servfail "
     "10s\n  disable success cluster.local\n  disable denial\n  keepttl\n "
     "}\n}",
     "zones=1 pcap=5000 pttl=600/10 ncap=2000 nttl=60/1 servfail=10 "
     "prefetch=10/120/20 stale=verify/7200/10/60/1000 keepttl=1",
     NULL},
    {"serve_stale alone", ". {\n cache {\n  serve_stale\n }\n}",
     "zones=1 pcap=10000 pttl=3600/5 ncap=10000 nttl=1800/5 servfail=5 "
     "prefetch=0/60/10 stale=immediate/3600/30/30/1800 keepttl=0",
     NULL},
    {"zero ttl", ". {\n cache 0\n}", NULL,
     "plugin/cache: Corefile:2 - Error during parsing: cache TTL can not be "
     "zero or negative: 0"},
    {"twice", ". {\n cache\n cache 10\n}", NULL,
     "plugin/cache: Corefile:3 - Error during parsing: this plugin can only "
     "be used once per Server Block"},
    {"bad capacity", ". {\n cache {\n  success many\n }\n}", NULL,
     "plugin/cache: Corefile:3 - Error during parsing: strconv.Atoi: "
     "parsing \"many\": invalid syntax"},
    {"negative min ttl", ". {\n cache {\n  denial 10 20 -1\n }\n}", NULL,
     "plugin/cache: Corefile:3 - Error during parsing: cache min TTL can "
     "not be negative: -1"},
    {"bad percentage", ". {\n cache {\n  prefetch 1 1m 95%\n }\n}", NULL,
     "plugin/cache: Corefile:3 - Error during parsing: percentage should "
     "fall in range [10, 90]: 95"},
    {"bad stale mode", ". {\n cache {\n  serve_stale 1h soon\n }\n}", NULL,
     "plugin/cache: Corefile:3 - Error during parsing: invalid value for "
     "serve_stale refresh mode: soon"},
    {"servfail too long", ". {\n cache {\n  servfail 10m\n }\n}", NULL,
     "plugin/cache: Corefile:3 - Error during parsing: caching SERVFAIL "
     "responses over 5 minutes is not permitted"},
    {"bad disable", ". {\n cache {\n  disable everything\n }\n}", NULL,
     "plugin/cache: Corefile:3 - Error during parsing: cache type for "
     "disable must be \"success\" or \"denial\""},
    {"unknown property", ". {\n cache {\n  bogus\n }\n}", NULL,
     "plugin/cache: Corefile:3 - Error during parsing: Wrong argument count "
     "or unexpected line ending after 'bogus'"},
};


static void
test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const cache_case_t *k = &cases[i];
        char err[512], got[512];
        cnd_conf_t *cf = cnd_conf_load(&opts, "Corefile", k->text,
                                       strlen(k->text), err, sizeof(err));
        if (k->want != NULL) {
            if (cf == NULL) {
                fail_msg("%s: unexpected error: %s", k->name, err);
            }
            summary(cf->servers[0].chain[0].conf, got, sizeof(got));
            cnd_conf_unref(cf);
            if (strcmp(got, k->want) != 0) {
                fail_msg("%s:\n  got  %s\n  want %s", k->name, got, k->want);
            }
            continue;
        }
        if (cf != NULL) {
            cnd_conf_unref(cf);
            fail_msg("%s: loaded, want %s", k->name, k->err);
        }
        if (strcmp(err, k->err) != 0) {
            fail_msg("%s:\n  error %s\n  want  %s", k->name, err, k->err);
        }
    }
}


/* An answer: @name A 10.0.0.1 and 10.0.0.2, TTL @ttl, with OPT. */
static size_t
answer_for(uint8_t *buf, size_t size, uint32_t ttl, const char *name)
{
    memset(buf, 0, size);
    knot_pkt_t *pkt = knot_pkt_new(buf, (uint16_t)size, NULL);
    knot_pkt_clear(pkt);
    uint8_t qname[32];
    knot_dname_from_str(qname, name, sizeof(qname));
    knot_pkt_put_question(pkt, qname, KNOT_CLASS_IN, KNOT_RRTYPE_A);
    knot_wire_set_qr(pkt->wire);
    knot_pkt_begin(pkt, KNOT_ANSWER);
    knot_rrset_t *rr =
        knot_rrset_new(qname, KNOT_RRTYPE_A, KNOT_CLASS_IN, ttl, NULL);
    uint8_t a1[4] = {10, 0, 0, 1}, a2[4] = {10, 0, 0, 2};
    knot_rrset_add_rdata(rr, a1, 4, NULL);
    knot_rrset_add_rdata(rr, a2, 4, NULL);
    knot_pkt_put(pkt, KNOT_COMPR_HINT_QNAME, rr, 0);
    knot_rrset_t opt;
    knot_edns_init(&opt, 1232, 0, 0, NULL);
    knot_pkt_begin(pkt, KNOT_ADDITIONAL);
    knot_pkt_put(pkt, 0, &opt, 0);
    size_t len = pkt->size;
    knot_rrset_clear(&opt, NULL);
    knot_rrset_free(rr, NULL);
    knot_pkt_free(pkt);
    return len;
}


static size_t
answer(uint8_t *buf, size_t size, uint32_t ttl)
{
    return answer_for(buf, size, ttl, "www.example.");
}


static void
test_entry(void **state)
{
    (void)state;
    uint8_t wire[512], key[CACHE_KEY_MAX];
    size_t len = answer(wire, sizeof(wire), 300);
    uint8_t qname[32];
    knot_dname_from_str(qname, "www.example.", sizeof(qname));
    size_t kl =
        cache_key(key, qname, KNOT_RRTYPE_A, KNOT_CLASS_IN, true, false);
    assert_int_equal(kl, 5 + 13);
    assert_int_equal(key[0], 1); /* DO */
    uint64_t h = cache_hash(key, kl);
    cache_entry_t *e =
        cache_entry_new(key, kl, h, wire, len, 60, 1000, CACHE_SUCCESS);
    assert_non_null(e);
    /* the OPT is gone, both records kept, each TTL noted and set */
    assert_int_equal(e->wirelen, len - 11);
    assert_int_equal(e->nttl, 2);
    const uint8_t *w = cache_entry_wire(e);
    assert_int_equal(knot_wire_get_ancount(w), 2);
    assert_int_equal(knot_wire_get_arcount(w), 0);
    const uint16_t *t = cache_entry_ttls(e);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(knot_wire_read_u32(w + t[i]), 60);
    }
    /* no key stored: the flags, and the question in the wire */
    assert_int_equal(e->flags, 1);
    assert_true(knot_dname_is_case_equal(cache_entry_qname(e), qname));
    cache_entry_free(e);
    /* an answer to another question is refused */
    uint8_t other[32];
    knot_dname_from_str(other, "ftp.example.", sizeof(other));
    uint8_t okey[CACHE_KEY_MAX];
    size_t okl =
        cache_key(okey, other, KNOT_RRTYPE_A, KNOT_CLASS_IN, false, false);
    assert_null(cache_entry_new(okey, okl, cache_hash(okey, okl), wire, len, 60,
                                0, CACHE_SUCCESS));
    /* garbage is refused */
    uint8_t junk[20] = {0, 1, 0x81, 0x80, 0, 1, 0, 9};
    assert_null(
        cache_entry_new(key, kl, h, junk, sizeof(junk), 60, 0, CACHE_SUCCESS));
}


static void
test_store(void **state)
{
    (void)state;
    cache_store_t *st = calloc(1, sizeof(*st));
    assert_int_equal(cache_store_init(st, 1024), 0); /* 4 per shard */
    uint8_t wire[512];
    size_t len;
    char names[64][32];
    int evicted = 0;
    /* Every key lands in some shard; fill one shard past its cap. */
    uint8_t keys[64][CACHE_KEY_MAX];
    size_t lens[64];
    uint64_t hashes[64];
    int n = 0;
    for (int i = 0; n < 6 && i < 100000; i++) {
        char *name = names[n];
        uint8_t qname[40];
        snprintf(name, sizeof(names[n]), "n%d.example.", i);
        knot_dname_from_str(qname, name, sizeof(qname));
        size_t kl = cache_key(keys[n], qname, KNOT_RRTYPE_A, KNOT_CLASS_IN,
                              false, false);
        uint64_t h = cache_hash(keys[n], kl);
        if ((h & (CACHE_SHARDS - 1)) != 7) {
            continue;
        }
        lens[n] = kl;
        hashes[n] = h;
        bool replaced;
        len = answer_for(wire, sizeof(wire), 300, name);
        cache_entry_t *e = cache_entry_new(keys[n], kl, h, wire, len, 60,
                                           (uint64_t)n, CACHE_SUCCESS);
        evicted += cache_insert(st, e, &replaced);
        assert_false(replaced);
        n++;
    }
    assert_int_equal(n, 6);
    assert_int_equal(evicted, 2); /* cap 4: two went, at random */
    int left = 0;
    for (int i = 0; i < n; i++) {
        cache_shard_t *sh = cache_shard(st, hashes[i]);
        left += cache_find(sh, hashes[i], keys[i], lens[i]) != NULL;
        uv_mutex_unlock(&sh->lock);
    }
    assert_int_equal(left, 4);
    /* a key that is there again replaces, evicts nothing */
    int k = 0;
    for (int i = 0; i < n; i++) {
        cache_shard_t *sh = cache_shard(st, hashes[i]);
        if (cache_find(sh, hashes[i], keys[i], lens[i]) != NULL) {
            k = i;
        }
        uv_mutex_unlock(&sh->lock);
    }
    bool replaced;
    len = answer_for(wire, sizeof(wire), 300, names[k]);
    cache_entry_t *e = cache_entry_new(keys[k], lens[k], hashes[k], wire, len,
                                       30, 99, CACHE_SUCCESS);
    assert_int_equal(cache_insert(st, e, &replaced), 0);
    assert_true(replaced);
    cache_shard_t *sh = cache_shard(st, hashes[k]);
    assert_int_equal(cache_find(sh, hashes[k], keys[k], lens[k])->ttl, 30);
    assert_int_equal(sh->count, 4);
    uv_mutex_unlock(&sh->lock);
    cache_store_free(st);
    free(st);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_entry),
        cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
