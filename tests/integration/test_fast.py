# SPDX-License-Identifier: MIT
"""The fast path (src/core/fast.c): cache hits answered before a request
exists.  Each test runs two servers on the same upstream, one where the
fast path applies (errors, cache, forward) and one where it cannot (log
sees every answer), and checks they answer alike, byte for byte but the
TTLs, while `candor ctl stats` shows which one took the fast path."""
import contextlib
import random
import re
import signal
import socket
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from conftest import free_port, scrape

COREFILE = """.:@PORT@ {
    bind @ADDR@
%s    errors
    %s
    forward . %s
}
"""


def servers(candor, u, cache="cache"):
    target = "%s:%d" % (u.addr, u.port)
    fast = candor(COREFILE % ("", cache, target), args=["-workers", "1"])
    slow = candor(COREFILE % ("    log\n", cache, target),
                  args=["-workers", "1"])
    return fast, slow


def fast_count(s):
    out = s.ctl("stats").stdout
    return sum(int(v) for v in re.findall(r"^worker\.\d+\.queries\.fast=(\d+)$",
                                          out, re.M))


def handler(q, proto):
    """A per name: nx.* NXDOMAIN with SOA, big.* 40 addresses (over 512
    bytes), anything else one address."""
    name = q.question[0].name.to_text().lower()
    r = dns.message.make_response(q)
    r.flags |= dns.flags.RA
    if name.startswith("nx."):
        r.set_rcode(dns.rcode.NXDOMAIN)
        r.authority.append(dns.rrset.from_text(
            "example.", 3600, "IN", "SOA",
            "ns.example. host.example. 1 7200 1800 86400 3600"))
    elif name.startswith("big."):
        r.answer.append(dns.rrset.from_text(
            q.question[0].name, 3600, "IN", "A",
            *["10.1.0.%d" % i for i in range(1, 41)]))
    else:
        r.answer.append(dns.rrset.from_text(q.question[0].name, 3600, "IN",
                                            "A", "10.0.0.1"))
    return r


def normal(raw):
    """A reply with its TTLs zeroed (the two servers may be a second
    apart) and each section's records sorted (an RRset has no order), or
    the raw bytes when it does not parse."""
    if raw is None:
        return None
    try:
        m = dns.message.from_wire(raw, ignore_trailing=True)
    except Exception:
        return raw
    sections = []
    for section in (m.answer, m.authority, m.additional):
        lines = []
        for rrset in section:
            rrset.ttl = 0
            lines += rrset.to_text().splitlines()
        # which records a truncated answer keeps depends on their order
        sections.append(len(lines) if m.flags & dns.flags.TC
                        else sorted(lines))
    return (raw[:12], m.question[0].to_text() if m.question else None,
            m.edns, m.ednsflags, m.payload, m.options, sections)


def both(fast, slow, wire, timeout=2.0):
    """Send the same bytes to both; their replies, normalised."""
    return (normal(fast.raw_udp(wire, timeout)),
            normal(slow.raw_udp(wire, timeout)))


CASES = [
    # (name, make_query kwargs, header flags to set, takes the fast path)
    ("WwW.Plain.Example.", dict(use_edns=False), 0, True),
    ("edns.example.", dict(use_edns=0, payload=1232), 0, True),
    ("do.example.", dict(use_edns=0, want_dnssec=True), 0, True),
    ("cd.example.", dict(use_edns=0), dns.flags.CD, True),
    ("ad.example.", dict(use_edns=0), dns.flags.AD, True),
    ("nx.example.", dict(use_edns=0), 0, True),
    ("nx.plain.example.", dict(use_edns=False), 0, True),
    ("norec.example.", dict(use_edns=False), -1, True),
    ("small.payload.example.", dict(use_edns=0, payload=100), 0, True),
    # not fast: bigger than 512 without EDNS (truncated by the normal
    # path), an OPT with an option, another EDNS version
    ("big.example.", dict(use_edns=False), 0, False),
    ("cookie.example.", dict(use_edns=0, options=[
        dns.edns.GenericOption(10, b"\x01\x02\x03\x04\x05\x06\x07\x08")]),
     0, False),
    ("v1.example.", dict(use_edns=0), "v1", False),
]


def test_hits_answer_as_the_normal_path(candor, upstream):
    u = upstream("script", handler=handler)
    fast, slow = servers(candor, u)
    expect = 0
    for name, kw, flags, takes in CASES:
        wire = case_wire(name, kw, flags)
        q = dns.message.from_wire(wire)
        both(fast, slow, wire)  # the miss fills both caches
        before = fast_count(fast)
        raw = fast.raw_udp(wire)
        assert raw is not None and normal(raw) == normal(slow.raw_udp(wire))
        assert fast_count(fast) - before == (1 if takes else 0), name
        expect += 1 if takes else 0
        m = dns.message.from_wire(raw)
        assert m.id == q.id and m.question[0].name.to_text() == name
        if name.startswith("big."):
            assert m.flags & dns.flags.TC
        elif flags == "v1":
            assert m.rcode() == dns.rcode.BADVERS
        else:
            assert m.flags & dns.flags.AA  # a hit, as CoreDNS marks it
    assert fast_count(fast) == expect
    assert fast_count(slow) == 0


def case_wire(name, kw, flags):
    q = dns.message.make_query(name, "A", **kw)
    if flags == -1:
        q.flags &= ~dns.flags.RD
    elif flags != "v1":
        q.flags |= flags
    wire = q.to_wire()
    if flags == "v1":  # EDNS version 1: the OPT's TTL, second byte
        wire = wire[:-5] + b"\x01" + wire[-4:]
    return wire


@contextlib.contextmanager
def held(s):
    """The server stopped (SIGSTOP) while the block runs, so that what it
    sends queues up and the worker reads it in one batch."""
    s.send_signal(signal.SIGSTOP)
    try:
        yield
        time.sleep(0.05)  # loopback delivery is done by now
    finally:
        s.send_signal(signal.SIGCONT)


def burst(s, wires, timeout=1.0):
    """Send every wire while the server is held, then read until quiet:
    {ID: normalised reply}."""
    got = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(timeout)
        with held(s):
            for wire in wires:
                c.sendto(wire, (s.addr, s.port))
        try:
            while len(got) < len(wires):
                raw = c.recv(65535)
                got[raw[:2]] = normal(raw)
        except socket.timeout:
            pass
    return got


def test_batches_mixing_hits_and_others_answer_alike(candor, upstream):
    """Queries of every kind in one batch: the worker reads each batch
    whole before answering it (udp.c's two passes, the cache's
    prefetch), so each query in a batch of hits, misses, queries the
    fast path leaves and garbage must get its own answer, as the normal
    path gives it, and every hit must still be a fast one."""
    u = upstream("script", handler=handler)
    fast, slow = servers(candor, u)
    cases = [(case_wire(name, kw, flags), takes)
             for name, kw, flags, takes in CASES]
    for wire, _ in cases:
        both(fast, slow, wire)  # the misses fill both caches
    rng = random.Random(11)
    fast_hits = sum(takes for _, takes in cases)
    for rnd in range(10):
        wires = [w for w, _ in cases] * 2
        wires.append(dns.message.make_query("miss%d.example." % rnd,
                                            "A").to_wire())
        wires.append(wires[0][:15])  # a cut question: no answer
        wires.append(bytes(rng.getrandbits(8) for _ in range(30)))
        rng.shuffle(wires)
        wires = [(rnd * 64 + i).to_bytes(2, "big") + w[2:]
                 for i, w in enumerate(wires)]
        before = fast_count(fast)
        a, b = burst(fast, wires), burst(slow, wires)
        assert a == b
        assert len(a) >= len(cases) * 2 + 1
        assert fast_count(fast) - before == fast_hits * 2


def test_hit_counters_and_ttl_countdown(candor, upstream):
    u = upstream("script", handler=handler)
    fast, _ = servers(candor, u)
    fast.query("a.example.", use_edns=0)
    fast.query("nx.example.", use_edns=0)
    for _ in range(3):
        fast.query("a.example.", use_edns=0)
        fast.query("nx.example.", use_edns=0)
    assert fast_count(fast) == 6
    stats = fast.ctl("stats").stdout
    hits = dict(re.findall(
        r'^coredns_cache_hits_total\{[^}]*type="(\w+)"[^}]*\}=(\d+)$',
        stats, re.M))
    assert hits == {"success": "3", "denial": "3"}
    reqs = re.findall(r"^coredns_cache_requests_total\{[^}]*\}=(\d+)$", stats,
                      re.M)
    assert reqs == ["8"]
    assert u.udp_queries == 2
    time.sleep(2.1)
    assert fast.query("a.example.", use_edns=0).answer[0].ttl <= 3598


@pytest.mark.parametrize("cache", [
    "cache {\n        prefetch 2\n    }",
    "cache {\n        serve_stale\n    }",
])
def test_prefetch_and_serve_stale_take_fast_hits(candor, upstream, cache):
    u = upstream("script", handler=handler)
    fast, _ = servers(candor, u, cache=cache)
    for _ in range(3):
        assert fast.query("a.example.", use_edns=0).rcode() == 0
    assert fast_count(fast) == 2


def test_the_hit_that_starts_a_prefetch_takes_the_normal_path(candor,
                                                              upstream):
    """Fast hits count towards prefetch as normal ones do; the one that
    starts the refresh is left to the normal path, which starts it."""
    u = upstream("answer", ttl=4)
    cache = "cache {\n        success 100 3600 1\n" \
            "        prefetch 2 1m 50%\n    }"
    s = candor(COREFILE % ("", cache, "%s:%d" % (u.addr, u.port)),
               args=["-workers", "1"])
    s.query("p.example.", use_edns=0)  # stored, 4 s TTL
    s.query("p.example.", use_edns=0)  # hit 1: 3-4 s left
    assert fast_count(s) == 1
    time.sleep(2.2)  # 50%: 2 s or less left
    r = s.query("p.example.", use_edns=0)  # hit 2: prefetch
    assert r.answer[0].ttl <= 2
    assert fast_count(s) == 1
    assert u.wait_queries(2, timeout=2)
    deadline = time.time() + 2  # the refreshed answer is stored
    while time.time() < deadline:
        r = s.query("p.example.", use_edns=0)
        if r.answer[0].ttl >= 3:
            break
        time.sleep(0.05)
    assert r.answer[0].ttl >= 3
    assert fast_count(s) >= 2


def test_plugins_before_the_cache_turn_it_off(candor, upstream):
    u = upstream("script", handler=handler)
    target = "%s:%d" % (u.addr, u.port)
    for before, on in (("log", False), ("loadbalance", True),
                       ("prometheus 127.0.0.1:%d" % free_port(), True),
                       ("errors", True), ("", True)):
        s = candor(""".:@PORT@ {
    bind @ADDR@
    %s
    cache
    forward . %s
}
""" % (before, target), args=["-workers", "1"])
        for _ in range(2):
            s.query("a.example.", use_edns=0)
        assert (fast_count(s) > 0) == on, before
        s.stop()


def test_mutated_queries_answered_alike(candor, upstream):
    """Every byte of a cached query changed, and every cut of it: the
    fast path takes what it can read and leaves the rest to the normal
    path, so both servers must give the same reply (or none)."""
    u = upstream("script", handler=handler)
    fast, slow = servers(candor, u)
    q = dns.message.make_query("m.example.", "A", use_edns=0,
                               want_dnssec=True)
    q.id = 0x4242
    wire = q.to_wire()
    both(fast, slow, wire)
    variants = [wire[:n] for n in range(len(wire))]
    for i in range(len(wire)):
        for v in (0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xff, wire[i] ^ 0x20):
            if v != wire[i]:
                variants.append(wire[:i] + bytes([v]) + wire[i + 1:])
    variants.append(wire + b"\x00")  # trailing byte
    rng = random.Random(7)
    for _ in range(50):
        variants.append(bytes(rng.getrandbits(8) for _ in range(len(wire))))
    answered = 0
    for v in variants:
        a, b = both(fast, slow, v, timeout=0.3)
        assert a == b, v.hex()
        answered += a is not None
    assert answered > len(variants) // 2
    assert fast_count(fast) > 0
    assert fast.query("m.example.", use_edns=0).rcode() == 0
    assert slow.query("m.example.", use_edns=0).rcode() == 0


def test_wildcard_listener_answers_from_the_right_address(candor, upstream):
    """Without bind the socket is the wildcard: the fast answer must come
    from the address the query went to, as the normal path's does."""
    u = upstream("script", handler=handler)
    s = candor(""".:@PORT@ {
    cache
    forward . %s:%d
}
""" % (u.addr, u.port), args=["-workers", "1"])
    for addr in ("127.0.0.1", "127.0.0.2"):
        q = dns.message.make_query("w.example.", "A")
        for _ in range(2):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.settimeout(3)
                c.sendto(q.to_wire(), (addr, s.port))
                data, src = c.recvfrom(65535)
                assert src == (addr, s.port)
                assert dns.message.from_wire(data).answer
    assert fast_count(s) == 3  # all but the first: one cache

    # One batch from two clients to two addresses: each answer to its
    # own client, from its own address.
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
               for _ in range(2)]
    try:
        with held(s):
            for i in range(32):
                q = dns.message.make_query("w.example.", "A")
                q.id = i
                clients[i % 2].sendto(q.to_wire(),
                                      ("127.0.0.%d" % (1 + i % 2), s.port))
        for k, c in enumerate(clients):
            c.settimeout(3)
            ids = set()
            for _ in range(16):
                data, src = c.recvfrom(65535)
                assert src == ("127.0.0.%d" % (1 + k), s.port)
                ids.add(dns.message.from_wire(data).id)
            assert ids == set(range(k, 32, 2))
    finally:
        for c in clients:
            c.close()
    assert fast_count(s) == 3 + 32


DNS_FAMILIES = ("coredns_dns_requests_total", "coredns_dns_responses_total",
                "coredns_dns_do_requests_total",
                "coredns_dns_request_size_bytes",
                "coredns_dns_response_size_bytes",
                "coredns_dns_request_duration_seconds_count")


def dns_series(text, server):
    """The coredns_dns_* lines of a scrape, this server's name replaced
    (the two servers listen on different addresses)."""
    return sorted(line.replace(server, "SERVER")
                  for line in text.splitlines()
                  if line.startswith(DNS_FAMILIES) and
                  "duration_seconds_bucket" not in line and
                  "duration_seconds_sum" not in line)


def test_prometheus_counts_fast_answers_as_the_normal_path(candor, upstream):
    """kubeadm's plugins before the cache (errors, prometheus,
    loadbalance): the fast path stays on, and every coredns_dns_* series
    reads as it does where each hit walks the chain."""
    u = upstream("script", handler=handler)
    target = "%s:%d" % (u.addr, u.port)
    ports = free_port(), free_port()
    text = """.:@PORT@ {
    bind @ADDR@
    errors
    prometheus 127.0.0.1:%d
%s    loadbalance
    cache
    forward . %s
}
"""
    fast = candor(text % (ports[0], "", target), args=["-workers", "1"])
    slow = candor(text % (ports[1], "    log\n", target),
                  args=["-workers", "1"])
    queries = [("a.example.", "A", dict(use_edns=0)),
               ("a.example.", "A", dict(use_edns=0)),
               ("a.example.", "A", dict(use_edns=0, want_dnssec=True)),
               ("nx.example.", "AAAA", dict(use_edns=False)),
               ("big.example.", "A", dict(use_edns=False)),
               ("MX.example.", "MX", dict(use_edns=0))]
    for _ in range(3):
        for name, rdtype, kw in queries:
            for s in (fast, slow):
                assert s.query(name, rdtype, **kw).rcode() in (0, 3)
    assert fast_count(fast) == 3 * 5 - 4  # all but misses and big's
    assert fast_count(slow) == 0
    a = dns_series(scrape(ports[0]), "dns://%s:%d" % (fast.addr, fast.port))
    b = dns_series(scrape(ports[1]), "dns://%s:%d" % (slow.addr, slow.port))
    assert a and a == b


def test_loadbalance_shuffles_fast_answers(candor, upstream):
    u = upstream("script", handler=handler)
    s = candor(""".:@PORT@ {
    bind @ADDR@
    loadbalance
    cache
    forward . %s:%d
}
""" % (u.addr, u.port), args=["-workers", "1"])
    firsts = set()
    for _ in range(20):
        r = s.query("big.example.", use_edns=0, payload=1232)
        assert len(r.answer[0]) == 40
        firsts.add(r.answer[0][0].to_text())
    assert fast_count(s) == 19
    assert len(firsts) > 3


# ---- waiting in recvmmsg under load (src/core/udp.c: udp_wait) ----------

def udp_waits(s):
    out = s.ctl("stats").stdout
    return sum(int(v) for v in re.findall(r"^worker\.\d+\.udp\.waits=(\d+)$",
                                          out, re.M))


def bursts(s, rounds, names, miss_every=0, stop=None):
    """Send len(names) queries back to back, then read every answer; the
    same `rounds` times (or until `stop` is set), a new uncached name in
    place of the last one every `miss_every` rounds.  Checks each answer;
    returns the rounds done."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(3)
        for rnd in range(rounds):
            if stop is not None and stop.is_set():
                return rnd
            batch = list(names)
            if miss_every and rnd % miss_every == 0:
                batch[-1] = "miss%d.example." % rnd
            want = {}
            for i, name in enumerate(batch):
                q = dns.message.make_query(name, "A", use_edns=0)
                q.id = (rnd * len(batch) + i) & 0xffff
                want[q.id] = name
                c.sendto(q.to_wire(), (s.addr, s.port))
            while want:
                r = dns.message.from_wire(c.recv(65535))
                name = want.pop(r.id)
                assert r.question[0].name.to_text() == name
                assert r.answer[0][0].address == "10.0.0.1"
        return rounds


def cached(candor, upstream):
    """One worker with 16 names cached: (upstream, server, names)."""
    u = upstream("script", handler=handler)
    s = candor(COREFILE % ("", "cache", "%s:%d" % (u.addr, u.port)),
               args=["-workers", "1"])
    names = ["w%d.example." % i for i in range(16)]
    for name in names:
        s.query(name, use_edns=0)
    return u, s, names


def test_busy_worker_waits_in_recvmmsg(candor, upstream):
    """Bursts of hits: the worker reads the next batch waiting in
    recvmmsg rather than epoll; misses among them, TCP queries and
    `candor ctl` meanwhile are answered all the same, as soon."""
    u, s, names = cached(candor, upstream)
    assert udp_waits(s) == 0  # one query at a time: no wait

    stop = threading.Event()
    done = []
    load = threading.Thread(target=lambda: done.append(
        bursts(s, 3000, names, miss_every=10, stop=stop)))
    load.start()
    try:
        slowest = 0.0
        for i in range(20):
            t = time.monotonic()
            r = s.query("tcp%d.example." % (i % 4), tcp=True)
            assert r.answer[0][0].address == "10.0.0.1"
            t1 = time.monotonic()
            assert s.ctl("stats").returncode == 0
            slowest = max(slowest, t1 - t, time.monotonic() - t1)
            time.sleep(0.01)
    finally:
        stop.set()
        load.join(timeout=60)
    assert done and done[0] > 0
    # libuv's loop runs at least every millisecond while the worker
    # waits: TCP and the control socket are not held up behind it.
    assert slowest < 0.5
    assert udp_waits(s) > 0
    assert u.udp_queries >= 16 + done[0] // 10


def test_stop_while_waiting_in_recvmmsg(candor, upstream):
    _, s, names = cached(candor, upstream)
    stop = threading.Event()
    errors = []

    def load():
        try:
            bursts(s, 3000, names, stop=stop)
        except OSError:
            pass  # the server stopped mid-burst: a timeout
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.3)
    assert udp_waits(s) > 0
    started = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - started < 5
    stop.set()
    t.join(timeout=30)
    assert not errors
