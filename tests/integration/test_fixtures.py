# SPDX-License-Identifier: MIT
"""The test fixtures themselves: every FakeUpstream mode over UDP and TCP,
closed_port, the knotd authority and the DNS-over-TLS unbound.  No candor
involved; everything on 127.0.0.0/8."""
import socket
import ssl
import struct
import threading
import time

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from upstreams import FakeUpstream, closed_port

PROTOS = ("udp", "tcp")


def exchange_raw(up, wire, proto, timeout=1.0):
    """Send raw wire bytes; the raw reply, or None when none came."""
    if proto == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(wire, (up.addr, up.port))
            try:
                return s.recv(65535)
            except socket.timeout:
                return None
    with socket.create_connection((up.addr, up.port), timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(wire)) + wire)
        buf = b""
        try:
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                chunk = s.recv(65535)
                if not chunk:
                    break
                buf += chunk
        except socket.timeout:
            return None
        if len(buf) < 2:
            return None
        return buf[2:2 + struct.unpack("!H", buf[:2])[0]]


def ask(up, name="x.example.", rdtype="A", proto="udp", timeout=2, **kw):
    q = dns.message.make_query(name, rdtype, **kw)
    if proto == "udp":
        r = dns.query.udp(q, up.addr, port=up.port, timeout=timeout)
    else:
        r = dns.query.tcp(q, up.addr, port=up.port, timeout=timeout)
    return q, r


def count(up, proto):
    return up.udp_queries if proto == "udp" else up.tcp_queries


def records(r):
    return sorted(rd.to_text() for rrset in r.answer for rd in rrset)


# ---- FakeUpstream ---------------------------------------------------------

@pytest.mark.parametrize("proto", PROTOS)
def test_answer(upstream, proto):
    up = upstream("answer")
    assert up.addr.startswith("127.") and up.port
    q, r = ask(up, "www.example.", "A", proto)
    assert r.id == q.id and r.question == q.question
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.QR and r.flags & dns.flags.RA
    assert r.flags & dns.flags.RD
    assert not r.flags & dns.flags.AA
    assert records(r) == ["10.0.0.1"] and r.answer[0].ttl == 300
    _, r = ask(up, "www.example.", "AAAA", proto)
    assert records(r) == ["2001:db8::1"]
    _, r = ask(up, "www.example.", "MX", proto)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    q = dns.message.make_query("nord.example.", "A")
    q.flags &= ~dns.flags.RD
    r = dns.message.from_wire(exchange_raw(up, q.to_wire(), proto))
    assert not r.flags & dns.flags.RD and records(r) == ["10.0.0.1"]
    assert count(up, proto) == 4
    assert count(up, "tcp" if proto == "udp" else "udp") == 0
    assert [p for p, _ in up.queries] == [proto] * 4
    assert up.qnames()[-1] == "nord.example."


def test_answer_options(upstream):
    up = upstream("answer", address="192.0.2.99", ttl=7)
    _, r = ask(up)
    assert records(r) == ["192.0.2.99"] and r.answer[0].ttl == 7


@pytest.mark.parametrize("proto", PROTOS)
def test_silent(upstream, proto):
    up = upstream("silent")
    with pytest.raises(dns.exception.Timeout):
        ask(up, proto=proto, timeout=0.4)
    assert up.wait_queries(1) and count(up, proto) == 1


@pytest.mark.parametrize("proto", PROTOS)
def test_slow_does_not_block(upstream, proto):
    up = upstream("slow", delay=0.6)
    results = []

    def one(i):
        t0 = time.monotonic()
        _, r = ask(up, "q%d.example." % i, proto=proto, timeout=3)
        results.append((time.monotonic() - t0, records(r)))

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    total = time.monotonic() - t0
    assert len(results) == 4
    assert all(d >= 0.55 and rr == ["10.0.0.1"] for d, rr in results)
    assert total < 1.5, "slow queries were answered one after another"


def test_slow_tcp_pipelined(upstream):
    """Two queries on one TCP connection: both answers after the delay."""
    up = upstream("slow", delay=0.4)
    q1 = dns.message.make_query("a.example.", "A")
    q2 = dns.message.make_query("b.example.", "A")
    with socket.create_connection((up.addr, up.port), timeout=3) as s:
        t0 = time.monotonic()
        for q in (q1, q2):
            w = q.to_wire()
            s.sendall(struct.pack("!H", len(w)) + w)
        got = set()
        for _ in range(2):
            r, _ = dns.query.receive_tcp(s, expiration=time.time() + 3)
            got.add(r.id)
        assert time.monotonic() - t0 < 1.0
    assert got == {q1.id, q2.id}


@pytest.mark.parametrize("proto", PROTOS)
def test_garbage(upstream, proto):
    up = upstream("garbage")
    lengths = []
    for i in range(6):
        q = dns.message.make_query("g%d.example." % i, "A")
        raw = exchange_raw(up, q.to_wire(), proto)
        assert raw is not None
        lengths.append(len(raw))
        with pytest.raises(Exception):
            r = dns.message.from_wire(raw)
            assert r.id == q.id and r.question == q.question  # never valid
    assert len(set(lengths)) >= 4 and min(lengths) < 12
    assert count(up, proto) == 6


@pytest.mark.parametrize("proto", PROTOS)
def test_wrong_id(upstream, proto):
    up = upstream("wrong_id")
    q = dns.message.make_query("www.example.", "A")
    r = dns.message.from_wire(exchange_raw(up, q.to_wire(), proto))
    assert r.id != q.id and r.question == q.question
    assert records(r) == ["10.0.0.1"] and not q.is_response(r)


@pytest.mark.parametrize("proto", PROTOS)
def test_wrong_question(upstream, proto):
    up = upstream("wrong_question")
    q = dns.message.make_query("www.example.", "A")
    r = dns.message.from_wire(exchange_raw(up, q.to_wire(), proto))
    assert r.id == q.id and r.flags & dns.flags.QR
    assert r.question[0].name.to_text() != "www.example."
    assert r.answer and r.answer[0].name == r.question[0].name
    assert not q.is_response(r)


def test_truncate(upstream):
    up = upstream("truncate")
    _, r = ask(up, "big.example.", proto="udp")
    assert r.flags & dns.flags.TC and not r.answer
    q = dns.message.make_query("big.example.", "A")
    raw = exchange_raw(up, q.to_wire(), "tcp")
    r = dns.message.from_wire(raw)
    assert len(raw) > 512 and not r.flags & dns.flags.TC
    assert len(records(r)) == 40 and r.id == q.id
    up5 = upstream("truncate", count=5)
    _, r = ask(up5, "big.example.", proto="tcp")
    assert len(records(r)) == 5
    assert up.udp_queries == 1 and up.tcp_queries == 1


@pytest.mark.parametrize("proto", PROTOS)
def test_servfail_and_ede(upstream, proto):
    plain = upstream("servfail")
    _, r = ask(plain, proto=proto)
    assert r.rcode() == dns.rcode.SERVFAIL and r.edns < 0
    _, r = ask(plain, proto=proto, use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL and r.edns == 0 and not r.options
    ede = upstream("servfail", ede_code=6, ede_text="DNSSEC Bogus here")
    for kw in ({}, {"use_edns": 0}):
        _, r = ask(ede, proto=proto, **kw)
        assert r.rcode() == dns.rcode.SERVFAIL and r.edns == 0
        opts = [(o.code, o.text) for o in r.options if isinstance(o, dns.edns.EDEOption)]
        assert opts == [(6, "DNSSEC Bogus here")]


@pytest.mark.parametrize("proto", PROTOS)
def test_refused(upstream, proto):
    up = upstream("refused")
    q, r = ask(up, proto=proto)
    assert r.rcode() == dns.rcode.REFUSED and r.id == q.id


@pytest.mark.parametrize("proto", PROTOS)
def test_script(upstream, proto):
    seen = []

    def handler(q, p):
        seen.append(p)
        name = q.question[0].name.to_text()
        if name.startswith("none."):
            return None
        if name.startswith("boom."):
            raise RuntimeError("handler bug")
        r = dns.message.make_response(q)
        if name.startswith("raw."):
            r.set_rcode(dns.rcode.NXDOMAIN)
            return r.to_wire()
        r.set_rcode(dns.rcode.YXDOMAIN)
        return r

    up = upstream("script", handler=handler)
    _, r = ask(up, "msg.example.", proto=proto)
    assert r.rcode() == dns.rcode.YXDOMAIN
    _, r = ask(up, "raw.example.", proto=proto)
    assert r.rcode() == dns.rcode.NXDOMAIN
    with pytest.raises(dns.exception.Timeout):
        ask(up, "none.example.", proto=proto, timeout=0.3)
    with pytest.raises(dns.exception.Timeout):
        ask(up, "boom.example.", proto=proto, timeout=0.3)
    assert len(up.errors) == 1
    _, r = ask(up, "msg.example.", proto=proto)   # still alive
    assert seen == [proto] * 5


@pytest.mark.parametrize("proto", PROTOS)
def test_survives_malformed_input(upstream, proto):
    up = upstream("answer")
    reply = dns.message.make_response(dns.message.make_query("r.example.", "A"))
    for junk in (b"", b"\x01", b"\x00" * 11, b"\xff" * 40, reply.to_wire()):
        assert exchange_raw(up, junk, proto, timeout=0.1) is None
    _, r = ask(up, proto=proto)
    assert records(r) == ["10.0.0.1"]
    assert count(up, proto) == 1 and up.malformed >= 4


def test_counters_are_thread_safe(upstream):
    up = upstream("answer")

    def many(n):
        for _ in range(n):
            ask(up)
    threads = [threading.Thread(target=many, args=(20,)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert up.udp_queries == 100 and len(up.queries) == 100


def test_set_mode_stop_restart(upstream):
    up = upstream("refused")
    assert ask(up)[1].rcode() == dns.rcode.REFUSED
    up.set_mode("answer", address="10.9.9.9")
    assert records(ask(up)[1]) == ["10.9.9.9"]
    up.stop()
    with pytest.raises(dns.exception.Timeout):
        ask(up, timeout=0.3)
    up.start()   # same address and port
    assert records(ask(up, proto="tcp")[1]) == ["10.9.9.9"]


def test_only_loopback():
    with pytest.raises(ValueError):
        FakeUpstream("answer", addr="192.0.2.1")


def test_closed_port(upstream):
    addr = upstream("answer").addr
    port = closed_port(addr)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.connect((addr, port))
        s.send(dns.message.make_query("x.example.", "A").to_wire())
        with pytest.raises(ConnectionRefusedError):
            s.recv(512)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((addr, port), timeout=1).close()


# ---- knotd and DoT --------------------------------------------------------

def test_knotd(knotd):
    assert knotd.addr.startswith("127.") and knotd.zone == "example.test."
    for tcp in (False, True):
        r = knotd.query("www.example.test.", "A", tcp=tcp)
        assert r.flags & dns.flags.AA and records(r) == ["192.0.2.10"]
    assert records(knotd.query("www.example.test.", "AAAA")) == ["2001:db8::10"]
    assert records(knotd.query("example.test.", "MX")) == ["10 mail.example.test."]
    assert knotd.query("example.test.", "TXT").answer
    r = knotd.query("big.example.test.", "A", tcp=True)
    assert len(records(r)) == 40
    r = knotd.query("big.example.test.", "A")   # no EDNS: 512 bytes
    assert r.flags & dns.flags.TC
    r = knotd.query("nope.example.test.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN


def test_dot(dot, knotd):
    assert dot.name == "dns.candor.test" and dot.addr.startswith("127.")
    ctx = ssl.create_default_context(cafile=dot.ca)
    q = dns.message.make_query("www.example.test.", "A")
    r = dns.query.tls(q, dot.addr, port=dot.port, timeout=3, ssl_context=ctx,
                      server_hostname=dot.name)
    assert r.rcode() == dns.rcode.NOERROR and records(r) == ["192.0.2.10"]
    r = dot.query("big.example.test.", "A")
    assert len(records(r)) == 40
    # Names outside the stub zone are refused, never looked up elsewhere.
    assert dot.query("example.org.", "A").rcode() == dns.rcode.REFUSED
    with pytest.raises(ssl.SSLCertVerificationError):
        dns.query.tls(q, dot.addr, port=dot.port, timeout=3, ssl_context=ctx,
                      server_hostname="wrong.candor.test")
    with pytest.raises(ssl.SSLCertVerificationError):   # the system CAs
        dns.query.tls(q, dot.addr, port=dot.port, timeout=3,
                      ssl_context=ssl.create_default_context(),
                      server_hostname=dot.name)
    # The certificate also carries the address as an IP SAN.
    ctx_ip = ssl.create_default_context(cafile=dot.ca)
    r = dns.query.tls(q, dot.addr, port=dot.port, timeout=3, ssl_context=ctx_ip,
                      server_hostname=dot.addr)
    assert records(r) == ["192.0.2.10"]
