# SPDX-License-Identifier: MIT
"""One request path (src/core/req.c): most queries are admitted by the
light read (header and question only, dns/msg.c cnd_msg_read_light), the
rest by libknot's parse of the whole message.  A trailing byte after a
query changes nothing it asks but sends it through the full parse, so
each case here is asked both ways and the replies must be the same
bytes (but the TTLs), while `candor ctl stats` shows which read took it
(worker.N.queries.light).  Cache hits walk the chain like any answer:
plugins before the cache see them."""
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

from conftest import free_port, metric, scrape

COREFILE = """.:@PORT@ {
    bind @ADDR@
%s    errors
    %s
    forward . %s
}
"""


def server(candor, u, cache="cache", before=""):
    target = "%s:%d" % (u.addr, u.port)
    return candor(COREFILE % (before, cache, target), args=["-workers", "1"])


def light_count(s):
    out = s.ctl("stats").stdout
    return sum(int(v) for v in re.findall(
        r"^worker\.\d+\.queries\.light=(\d+)$", out, re.M))


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


def full(wire):
    """The same query with a trailing byte: libknot's parse reads it."""
    return wire + b"\x00"


CASES = [
    # (name, make_query kwargs, header flags to set, read light)
    ("WwW.Plain.Example.", dict(use_edns=False), 0, True),
    ("edns.example.", dict(use_edns=0, payload=1232), 0, True),
    ("do.example.", dict(use_edns=0, want_dnssec=True), 0, True),
    ("cd.example.", dict(use_edns=0), dns.flags.CD, True),
    ("ad.example.", dict(use_edns=0), dns.flags.AD, True),
    ("nx.example.", dict(use_edns=0), 0, True),
    ("nx.plain.example.", dict(use_edns=False), 0, True),
    ("norec.example.", dict(use_edns=False), -1, True),
    ("small.payload.example.", dict(use_edns=0, payload=100), 0, True),
    # bigger than 512 without EDNS: truncated, either way
    ("big.example.", dict(use_edns=False), 0, True),
    # EDNS version 1: BADVERS, either way
    ("v1.example.", dict(use_edns=0), "v1", True),
    # an OPT with an option: only libknot reads it
    ("cookie.example.", dict(use_edns=0, options=[
        dns.edns.GenericOption(10, b"\x01\x02\x03\x04\x05\x06\x07\x08")]),
     0, False),
]


def test_light_and_full_reads_answer_alike(candor, upstream):
    u = upstream("script", handler=handler)
    s = server(candor, u)
    for name, kw, flags, light in CASES:
        wire = case_wire(name, kw, flags)
        q = dns.message.from_wire(wire)
        s.raw_udp(wire)  # the miss fills the cache
        before = light_count(s)
        raw = s.raw_udp(wire)
        assert light_count(s) - before == (1 if light else 0), name
        other = s.raw_udp(full(wire))
        assert light_count(s) - before == (1 if light else 0), name
        assert raw is not None and normal(raw) == normal(other), name
        m = dns.message.from_wire(raw)
        assert m.id == q.id and m.question[0].name.to_text() == name
        if name.startswith("big."):
            assert m.flags & dns.flags.TC
        elif flags == "v1":
            assert m.rcode() == dns.rcode.BADVERS
        else:
            assert m.flags & dns.flags.AA  # a hit, as CoreDNS marks it


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


def _stopped(pid):
    """Every thread of @pid is stopped (state T)."""
    import glob
    for stat in glob.glob("/proc/%d/task/*/stat" % pid):
        try:
            with open(stat) as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "T":
                    return False
        except OSError:
            pass
    return True


def _rx_queued(addr, port):
    """Bytes queued on the UDP sockets bound to addr:port (/proc/net/udp,
    udp6 for the wildcard)."""
    want = ":%04X" % port
    total = 0
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1].endswith(want):
                    total += int(fields[4].split(":")[1], 16)
    return total


def _until(pred, timeout=5):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@contextlib.contextmanager
def held(s):
    """The server stopped (SIGSTOP) while the block runs, so that what it
    sends queues up and the worker reads it in one batch.  Loopback
    delivers a datagram into the socket's queue before sendto() returns;
    the block ends once it is there."""
    s.send_signal(signal.SIGSTOP)
    try:
        _until(lambda: _stopped(s.proc.pid))
        yield
        _until(lambda: _rx_queued(s.addr, s.port) > 0)
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


def test_batches_answer_each_query_alike(candor, upstream):
    """Queries of every kind in one batch, each both ways: the worker
    admits a batch whole before running it (udp.c's two passes, the
    cache's prefetch hook), so each query in a batch of hits, misses,
    full reads and garbage must get its own answer, the same both
    ways."""
    u = upstream("script", handler=handler)
    s = server(candor, u)
    cases = [(case_wire(name, kw, flags), light)
             for name, kw, flags, light in CASES]
    for wire, _ in cases:
        s.raw_udp(wire)  # the misses fill the cache
    rng = random.Random(11)
    lights = sum(light for _, light in cases)
    for rnd in range(10):
        pairs = []
        wires = []
        for i, (wire, _) in enumerate(cases):
            a = (rnd * 128 + 2 * i).to_bytes(2, "big")
            b = (rnd * 128 + 2 * i + 1).to_bytes(2, "big")
            pairs.append((a, b))
            wires += [a + wire[2:], b + full(wire)[2:]]
        miss = dns.message.make_query("miss%d.example." % rnd, "A").to_wire()
        wires.append((rnd * 128 + 100).to_bytes(2, "big") + miss[2:])
        wires.append(wires[0][:15])  # a cut question: no answer
        wires.append(bytes(rng.getrandbits(8) for _ in range(30)))
        rng.shuffle(wires)
        before = light_count(s)
        got = burst(s, wires)
        for a, b in pairs:
            assert a in got and b in got
            assert got[a][1:] == got[b][1:]  # all but the header's ID
        assert light_count(s) - before >= lights + 1  # and the miss


def _ttl(s, name):
    """The TTL of @name's cached A, from candor ctl dump_cache."""
    for line in s.ctl("dump_cache").stdout.splitlines():
        f = line.split()
        if f and f[0] == name and f[1] == "A":
            return int(f[3])
    return None


def test_hit_counters_and_ttl_countdown(candor, upstream):
    u = upstream("script", handler=handler)
    s = server(candor, u)
    s.query("a.example.", use_edns=0)
    s.query("nx.example.", use_edns=0)
    for _ in range(3):
        s.query("a.example.", use_edns=0)
        s.query("nx.example.", use_edns=0)
    stats = s.ctl("stats").stdout
    hits = dict(re.findall(
        r'^coredns_cache_hits_total\{[^}]*type="(\w+)"[^}]*\}=(\d+)$',
        stats, re.M))
    assert hits == {"success": "3", "denial": "3"}
    reqs = re.findall(r"^coredns_cache_requests_total\{[^}]*\}=(\d+)$", stats,
                      re.M)
    assert reqs == ["8"]
    assert u.udp_queries == 2
    # whole seconds of the cache clock: the entry ages
    _until(lambda: _ttl(s, "a.example.") <= 3598, timeout=5)
    assert s.query("a.example.", use_edns=0).answer[0].ttl <= 3598


def test_plugins_before_the_cache_see_every_hit(candor, upstream):
    """A hit walks back through every plugin before the cache: log logs
    it, prometheus counts it, loadbalance shuffles it, errors stays quiet."""
    u = upstream("script", handler=handler)
    mport = free_port()
    s = server(candor, u, before="    log\n    prometheus 127.0.0.1:%d\n"
                                  "    loadbalance\n" % mport)
    for _ in range(5):
        r = s.query("big.example.", use_edns=0, payload=1232)
        assert len(r.answer[0]) == 40

    def logged():
        return [l for l in s.log() if '"A IN big.example. udp' in l]
    s.wait_log(lambda _: len(logged()) >= 5)  # the log line may trail the answer
    assert len(logged()) == 5
    hits = metric(scrape(mport), "coredns_cache_hits_total",
                  server="dns://%s:%d" % (s.addr, s.port), type="success",
                  zones=".", view="")
    assert hits == 4
    req = metric(scrape(mport), "coredns_dns_requests_total",
                 server="dns://%s:%d" % (s.addr, s.port), zone=".", view="",
                 proto="udp", family="1", type="A")
    assert req == 5


def test_mutated_queries_get_well_formed_replies(candor, upstream):
    """Every byte of a cached query changed, and every cut of it: each
    gets a reply that parses, with the query's ID, or none (tests/unit/
    test_msg.c holds the light read to libknot's over the same)."""
    u = upstream("script", handler=handler)
    s = server(candor, u)
    q = dns.message.make_query("m.example.", "A", use_edns=0,
                               want_dnssec=True)
    q.id = 0x4242
    wire = q.to_wire()
    s.raw_udp(wire)
    variants = [wire[:n] for n in range(len(wire))]
    for i in range(len(wire)):
        for v in (0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xff, wire[i] ^ 0x20):
            if v != wire[i]:
                variants.append(wire[:i] + bytes([v]) + wire[i + 1:])
    variants.append(full(wire))
    rng = random.Random(7)
    for _ in range(50):
        variants.append(bytes(rng.getrandbits(8) for _ in range(len(wire))))
    answered = 0
    for v in variants:
        raw = s.raw_udp(v, timeout=0.3)
        if raw is not None:
            answered += 1
            assert raw[:2] == v[:2] and len(raw) >= 12 and raw[2] & 0x80
            if (raw[2] >> 3) & 0xf in (0, 4):  # dnspython knows QUERY, NOTIFY
                dns.message.from_wire(raw, ignore_trailing=True)
    assert answered > len(variants) // 2
    assert light_count(s) > 0
    assert s.query("m.example.", use_edns=0).rcode() == 0


def test_wildcard_listener_answers_from_the_right_address(candor, upstream):
    """Without bind the socket is the wildcard: each answer must come from
    the address its query went to, in a batch too."""
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


def test_loadbalance_shuffles_hits(candor, upstream):
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
    assert u.udp_queries == 1
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
            time.sleep(0.01)  # pacing: samples spread over the load
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
    _until(lambda: udp_waits(s) > 0, timeout=10)
    started = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - started < 5
    stop.set()
    t.join(timeout=30)
    assert not errors
