# SPDX-License-Identifier: MIT
"""cache through the real binary: hits and misses, TTLs, denial, DO/CD,
what is not stored, prefetch, eviction, serve-stale with knotd stopped,
the failure cache, metrics, and a concurrent hammer."""
import random
import socket
import struct
import subprocess
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from conftest import free_addr, free_port, metric, scrape, wait_for
from upstreams import closed_port


def ede_of(resp):
    return [(o.code, o.text) for o in resp.options
            if isinstance(o, dns.edns.EDEOption)]


def tgt(u):
    return "%s:%d" % (u.addr, u.port)


def corefile(target, cache="cache", fwd_props="", metrics_port=None):
    prom = "    prometheus 127.0.0.1:%d\n" % metrics_port if metrics_port \
        else ""
    fwd = " {\n%s\n    }" % fwd_props if fwd_props else ""
    return """.:@PORT@ {
    bind @ADDR@
    errors
%s    %s
    forward . %s%s
}
""" % (prom, cache, target, fwd)


def ask(s, name, rdtype="A", **kw):
    kw.setdefault("use_edns", 0)
    return s.query(name, rdtype, timeout=kw.pop("timeout", 5), **kw)


def ttl_of(r):
    return r.answer[0].ttl


# ---- hits, TTLs, flags -------------------------------------------------

def test_hit_miss_aa_and_ttl_countdown(candor, upstream):
    u = upstream("answer", ttl=300)
    mport = free_port()
    s = candor(corefile(tgt(u), metrics_port=mport), args=["-workers", "1"])
    r1 = ask(s, "www.example.")
    assert not r1.flags & dns.flags.AA  # the upstream's answer, as it came
    assert ttl_of(r1) == 300
    r2 = ask(s, "www.example.")
    assert r2.flags & dns.flags.AA  # hits are authoritative, as CoreDNS
    assert r2.answer[0][0].to_text() == "10.0.0.1"
    assert 299 <= ttl_of(r2) <= 300
    time.sleep(2.1)  # real time: the TTL must count down (not ordering)
    r3 = ask(s, "WWW.Example.")
    assert ttl_of(r3) <= 298
    assert str(r3.question[0].name) == "WWW.Example."  # the client's case
    assert u.udp_queries == 1
    text = scrape(mport)
    labels = dict(server="dns://%s:%d" % (s.addr, s.port), type="success",
                  zones=".", view="")
    assert metric(text, "coredns_cache_hits_total", **labels) == 2
    assert metric(text, "coredns_cache_entries", **labels) == 1
    plain = dict(server=labels["server"], zones=".", view="")
    assert metric(text, "coredns_cache_misses_total", **plain) == 1
    assert metric(text, "coredns_cache_requests_total", **plain) == 3


def test_ttl_caps(candor, upstream):
    hi = upstream("answer", ttl=100000)
    s = candor(corefile(tgt(hi), cache="cache 60"))
    assert ttl_of(ask(s, "a.example.")) == 60  # the miss too, as CoreDNS
    assert ttl_of(ask(s, "a.example.")) <= 60
    lo = upstream("answer", ttl=0)
    s2 = candor(corefile(tgt(lo)))
    assert ttl_of(ask(s2, "b.example.")) == 5  # the default minimum
    mid = upstream("answer", ttl=5)
    s3 = candor(corefile(tgt(mid), cache="cache {\n        success 1000 30 "
                                         "20\n    }"))
    assert ttl_of(ask(s3, "c.example.")) == 20
    big = upstream("answer", ttl=100)
    s4 = candor(corefile(tgt(big), cache="cache {\n        success 1000 30 "
                                         "20\n    }"))
    assert ttl_of(ask(s4, "d.example.")) == 30


def _negative(q, proto, rcode=dns.rcode.NXDOMAIN, soa=True):
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    if soa:
        r.authority.append(dns.rrset.from_text(
            "example.", 60, "IN", "SOA",
            "ns.example. host.example. 1 7200 1800 86400 30"))
    return r


def test_denial_cached_with_soa(candor, upstream):
    u = upstream("script", handler=lambda q, p: _negative(q, p))
    s = candor(corefile(tgt(u)))
    r1 = ask(s, "nope.example.")
    r2 = ask(s, "nope.example.")
    for r in (r1, r2):
        assert r.rcode() == dns.rcode.NXDOMAIN
        assert r.authority[0].rdtype == dns.rdatatype.SOA
    assert r2.flags & dns.flags.AA
    assert u.total_queries == 1
    # NODATA with SOA: cached too
    nodata = upstream("script", handler=lambda q, p: _negative(
        q, p, dns.rcode.NOERROR))
    s2 = candor(corefile(tgt(nodata)))
    ask(s2, "empty.example.", "TXT")
    r = ask(s2, "empty.example.", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert nodata.total_queries == 1
    # NXDOMAIN without SOA: nothing says for how long: not cached
    bare = upstream("script", handler=lambda q, p: _negative(q, p, soa=False))
    s3 = candor(corefile(tgt(bare)))
    ask(s3, "bare.example.")
    ask(s3, "bare.example.")
    assert bare.total_queries == 2


def test_do_and_cd_kept_apart(candor, upstream):
    u = upstream("answer")
    s = candor(corefile(tgt(u)), args=["-workers", "1"])
    ask(s, "k.example.")
    ask(s, "k.example.", want_dnssec=True)
    q = dns.message.make_query("k.example.", "A", use_edns=0)
    q.flags |= dns.flags.CD
    s.send(q)
    assert u.total_queries == 3
    ask(s, "k.example.")
    ask(s, "k.example.", want_dnssec=True)
    s.send(q)
    assert u.total_queries == 3
    # the query went upstream with AD set, as CoreDNS sends it
    assert all(m.flags & dns.flags.AD for _, m in u.queries)


def test_truncated_and_errors_not_stored(candor, upstream):
    tc = upstream("truncate")
    s = candor(corefile(tgt(tc), fwd_props="        prefer_udp"))
    r = s.query("t.example.", "A")
    assert r.flags & dns.flags.TC
    s.query("t.example.", "A")
    assert tc.udp_queries == 2
    ref = upstream("refused")
    s2 = candor(corefile(tgt(ref)))
    ask(s2, "r.example.")
    ask(s2, "r.example.")
    assert ref.total_queries == 2


def test_failure_cache(candor, upstream):
    sf = upstream("servfail", ede_code=6, ede_text="bogus signature")
    s = candor(corefile(tgt(sf)), args=["-workers", "1"])
    r1 = ask(s, "f.example.")
    assert ede_of(r1) == [(6, "forward: from %s: SERVFAIL: bogus signature"
                              % tgt(sf))]
    r2 = ask(s, "f.example.")
    assert r2.rcode() == dns.rcode.SERVFAIL
    codes = [c for c, _ in ede_of(r2)]
    assert codes == [6, 13]
    assert ede_of(r2)[0][1] == ede_of(r1)[0][1]
    assert ede_of(r2)[1][1].startswith("cache: cached failure, ")
    assert sf.total_queries == 1
    time.sleep(5.2)  # real time: the 5 s servfail entry must expire
    ask(s, "f.example.")
    assert sf.total_queries == 2
    # our own failures (nothing answers) are remembered too
    addr = free_addr()
    s2 = candor(corefile("%s:%d" % (addr, closed_port(addr))))
    ask(s2, "dead.example.")
    r = ask(s2, "dead.example.")
    assert [c for c, _ in ede_of(r)] == [23, 13]
    # servfail 0: not remembered
    sf2 = upstream("servfail")
    s3 = candor(corefile(tgt(sf2), cache="cache {\n        servfail 0\n    }"))
    ask(s3, "g.example.")
    ask(s3, "g.example.")
    assert sf2.total_queries == 2


def test_disable_and_zones(candor, upstream):
    u = upstream("answer")
    s = candor(corefile(tgt(u), cache="cache {\n        disable success "
                                      "cluster.local\n    }"))
    ask(s, "svc.cluster.local.")
    ask(s, "svc.cluster.local.")
    assert u.total_queries == 2
    ask(s, "other.example.")
    ask(s, "other.example.")
    assert u.total_queries == 3
    u2 = upstream("answer")
    s2 = candor(corefile(tgt(u2), cache="cache 30 example.org"))
    ask(s2, "a.example.org.")
    ask(s2, "a.example.org.")
    ask(s2, "a.example.net.")
    ask(s2, "a.example.net.")
    assert u2.total_queries == 3  # only example.org is cached


# ---- prefetch and eviction ---------------------------------------------

def test_prefetch(candor, upstream):
    u = upstream("answer", ttl=4)
    mport = free_port()
    s = candor(corefile(tgt(u), cache="cache {\n        success 100 3600 1\n"
                                      "        prefetch 2 1m 50%\n"
                                      "    }", metrics_port=mport),
               args=["-workers", "1"])
    ask(s, "p.example.")
    time.sleep(2.2)  # real time: 4 s TTL, 50%: 2 s or less left
    ask(s, "p.example.")  # first hit
    assert u.total_queries == 1
    r = ask(s, "p.example.")  # second hit: fetch again in the background
    assert ttl_of(r) <= 2
    deadline = time.time() + 2
    while u.total_queries < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert u.total_queries == 2
    deadline = time.time() + 2  # the refreshed answer is stored
    while time.time() < deadline:
        r = ask(s, "p.example.")
        if ttl_of(r) >= 3:
            break
        time.sleep(0.05)
    assert ttl_of(r) >= 3  # fresh again
    text = scrape(mport)
    assert metric(text, "coredns_cache_prefetch_total",
                  server="dns://%s:%d" % (s.addr, s.port), zones=".",
                  view="") == 1


def test_eviction_at_capacity(candor, upstream):
    u = upstream("answer")
    mport = free_port()
    s = candor(corefile(tgt(u), cache="cache {\n        success 1024\n    }",
                        metrics_port=mport), args=["-workers", "1"])
    n = 2500
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(3)
        for i in range(n):
            q = dns.message.make_query("e%d.example." % i, "A")
            c.sendto(q.to_wire(), (s.addr, s.port))
            c.recv(4096)
    text = scrape(mport)
    labels = dict(server="dns://%s:%d" % (s.addr, s.port), type="success",
                  zones=".", view="")
    entries = metric(text, "coredns_cache_entries", **labels)
    evictions = metric(text, "coredns_cache_evictions_total", **labels)
    assert entries <= 1024 and entries + evictions == n
    assert evictions >= n - 1024
    # a random one goes (as CoreDNS): of the first names, many are gone
    before = u.total_queries
    for i in range(100):
        ask(s, "e%d.example." % i)
    assert u.total_queries - before >= 20


# ---- serve-stale ---------------------------------------------------------

STALE_NAMES = ["www.example.test.", "mail.example.test.", "ns1.example.test."]


@pytest.mark.parametrize("mode", ["verify", "immediate"])
def test_serve_stale_knotd_stopped(candor, knotd, mode):
    s = candor(corefile("%s:%d" % (knotd.addr, knotd.port),
                        cache="cache 2 {\n        serve_stale 1h %s\n    }"
                        % mode))
    for n in STALE_NAMES:
        assert ask(s, n).rcode() == dns.rcode.NOERROR
    knotd.stop()
    time.sleep(2.2)  # real time: the 2 s entries must expire
    for n in STALE_NAMES:
        t0 = time.time()
        r = ask(s, n)
        assert time.time() - t0 < 1.9  # within the client response timer
        assert r.rcode() == dns.rcode.NOERROR
        assert r.answer and ttl_of(r) == 30
        (code, text), = ede_of(r)
        assert code == 3
        assert text.startswith("cache: stale answer, expired ")
        if mode == "verify":
            assert "refresh failed: forward: %s:%d udp connection refused" % (
                knotd.addr, knotd.port) in text, text
    # immediate: the next answers say why the refresh failed, once the
    # background refresh has failed
    wait_for(lambda: "refresh failed: forward: " in ede_of(
        ask(s, STALE_NAMES[0]))[0][1], what="a stale answer naming the "
             "failed refresh")
    # names never cached fail with their own cause
    r = ask(s, "nothere.example.test.")
    assert r.rcode() == dns.rcode.SERVFAIL
    assert ede_of(r)[0][0] == 23


def test_serve_stale_nxdomain_is_19(candor, upstream):
    u = upstream("script", handler=lambda q, p: _negative(q, p))
    s = candor(corefile(tgt(u), cache="cache {\n        denial 100 1 1\n"
                                      "        serve_stale 1h verify\n    }"))
    ask(s, "gone.example.")
    u.set_mode("refused")
    time.sleep(1.2)  # real time: the 1 s denial entry must expire
    r = ask(s, "gone.example.")
    assert r.rcode() == dns.rcode.NXDOMAIN
    (code, text), = ede_of(r)
    assert code == 19 and "refresh failed: forward: from %s: REFUSED" % tgt(u) \
        in text


def test_serve_stale_verify_timer(candor, upstream):
    u = upstream("answer", ttl=1)
    s = candor(corefile(tgt(u), cache="cache {\n        success 100 3600 1\n"
                                      "        serve_stale 1h verify 300ms 30s "
                                      "2s\n"
                                      "    }"),
               args=["-workers", "1"])
    ask(s, "slowref.example.")
    u.set_mode("silent")
    time.sleep(1.2)  # real time: the 1 s entry must expire
    t0 = time.time()
    r = ask(s, "slowref.example.")
    took = time.time() - t0
    assert 0.25 < took < 1.0
    (code, text), = ede_of(r)
    assert code == 3 and "the refresh took longer than 300ms" in text
    # a refresh that works gives a fresh answer, not a stale one
    u.set_mode("answer", ttl=60, address="10.0.0.9")
    # once the silent refresh has given up and RECHECK (2 s) has passed,
    # the next query's refresh works
    def fresh():
        r = ask(s, "slowref.example.")
        return None if ede_of(r) else r
    r = wait_for(fresh, timeout=15, step=0.1,
                 what="a fresh answer (no EDE) once a refresh works")
    assert r.answer[0][0].to_text() == "10.0.0.9"


def test_refresh_at_most_once_per_30s(candor, upstream):
    u = upstream("answer", ttl=1)
    s = candor(corefile(tgt(u), cache="cache {\n        success 100 3600 1\n"
                                      "        serve_stale\n    }"),
               args=["-workers", "1"])
    ask(s, "once.example.")
    u.set_mode("refused")
    time.sleep(1.2)  # real time: the 1 s entry must expire
    for _ in range(20):
        r = ask(s, "once.example.")
        assert ede_of(r)[0][0] == 3
        time.sleep(0.05)  # pacing: the 20 asks span a second
    assert u.wait_queries(2)  # the background refresh reached it
    assert u.total_queries == 2  # the fill, and one refresh


# ---- load ----------------------------------------------------------------

def test_hammer(candor, upstream):
    """Several client sockets for 10 s against short-lived entries:
    hits, misses, expiry, prefetch and stale refreshes all at once."""
    u = upstream("answer", ttl=1)
    mport = free_port()
    s = candor(corefile(tgt(u), cache="cache {\n        success 512 3600 1\n"
                                      "        prefetch 2 10s 50%\n        "
                                      "serve_stale 1h\n    }",
                        metrics_port=mport))
    names = ["h%d.example." % i for i in range(300)]
    errors = []
    counts = []
    stop = time.time() + 10

    def client(seed):
        rng = random.Random(seed)
        n = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(2)
            while time.time() < stop and n < 200000:
                q = dns.message.make_query(rng.choice(names),
                                           rng.choice(["A", "AAAA", "A"]),
                                           want_dnssec=rng.random() < 0.2)
                try:
                    c.sendto(q.to_wire(), (s.addr, s.port))
                    r = dns.message.from_wire(c.recv(4096))
                    if r.id != q.id or r.rcode() != dns.rcode.NOERROR:
                        errors.append((q.question[0].name, r.rcode()))
                except Exception as e:  # noqa
                    errors.append(repr(e))
                n += 1
        counts.append(n)

    def tcp_client():
        n = 0
        while time.time() < stop and n < 20000:
            try:
                r = s.query(random.choice(names), "A", tcp=True, timeout=2)
                if r.rcode() != dns.rcode.NOERROR:
                    errors.append(("tcp", r.rcode()))
            except Exception as e:  # noqa
                errors.append(repr(e))
            n += 1
        counts.append(n)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    threads.append(threading.Thread(target=tcp_client))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:10]
    assert sum(counts) > 1000
    text = scrape(mport)
    out = subprocess.run(["promtool", "check", "metrics"], input=text,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert ask(s, "after.example.").rcode() == dns.rcode.NOERROR
