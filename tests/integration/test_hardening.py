# SPDX-License-Identifier: MIT
"""Defects found by a first attack run, each held down by the real binary:
late and unmatched upstream replies are read, dropped and counted (no
worker spins on them), a reply must answer the question asked, and slow
TCP clients neither hold a connection past the read timeout nor lock new
clients out.  Every peer is on 127.0.0.0/8."""
import socket
import struct
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from conftest import free_port, metric, scrape


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (/proc/PID/stat fields
    14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def idle_cpu(pid, seconds=1.0):
    """The share of one CPU the process used over `seconds` (a measuring
    window, not an ordering sleep)."""
    hz = 100.0
    before = cpu_ticks(pid)
    time.sleep(seconds)  # real time: the measuring window
    return (cpu_ticks(pid) - before) / hz / seconds


def wait_metric(mport, family, want, timeout=10, **labels):
    """Scrape until the series reaches `want`; its last value."""
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = metric(scrape(mport), family, **labels)
        if v is not None and v >= want:
            return v
        time.sleep(0.05)
    return v


def forward_conf(up, mport, props=""):
    return """.:@PORT@ {
    bind @ADDR@
    errors
    prometheus 127.0.0.1:%d
    forward . %s:%d {
        max_fails 0
%s
    }
}
""" % (mport, up.addr, up.port, props)


REJECTED = "candor_forward_replies_rejected_total"


# ---- late replies ------------------------------------------------------

def test_late_udp_replies_are_read_and_counted(candor, upstream):
    """Replies 2.5 s after each query, later than the 2 s read timeout:
    the query fails, and the replies that come after it are read from the
    upstream's socket, counted as late, and the server goes idle."""
    up = upstream("slow", delay=2.5)
    mport = free_port()
    s = candor(forward_conf(up, mport))
    r = s.query("late.test.", "A", use_edns=0, timeout=8)
    assert r.rcode() == dns.rcode.SERVFAIL
    sent = up.total_queries
    assert sent >= 1
    assert up.wait_replies(sent)
    cpu = idle_cpu(s.proc.pid)
    assert cpu < 0.10, "%.0f%% of a CPU with no traffic" % (cpu * 100)
    to = "%s:%d" % (up.addr, up.port)
    assert wait_metric(mport, REJECTED, sent, to=to, reason="late") == sent


@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_duplicate_replies_are_read_and_counted(candor, upstream, proto):
    """Each reply sent twice: the first answers, the second finds no query
    waiting (UDP: the port's query is gone; TCP: the connection went back
    to the pool) and is dropped as late."""
    up = upstream("answer", copies=2)
    mport = free_port()
    props = "        force_tcp" if proto == "tcp" else ""
    s = candor(forward_conf(up, mport, props))
    r = s.query("dup.test.", "A", use_edns=0)
    assert r.rcode() == dns.rcode.NOERROR
    assert up.wait_replies(2)
    cpu = idle_cpu(s.proc.pid)
    assert cpu < 0.10, "%.0f%% of a CPU with no traffic" % (cpu * 100)
    to = "%s:%d" % (up.addr, up.port)
    assert wait_metric(mport, REJECTED, 1, to=to, reason="late") == 1
    # the server still forwards
    assert s.query("dup2.test.", "A", use_edns=0).rcode() == dns.rcode.NOERROR


def test_late_tcp_reply_leaves_the_server_idle(candor, upstream):
    """Over TCP a try that timed out closes its connection: the late reply
    meets a closed socket, and nothing is left to spin on."""
    up = upstream("slow", delay=2.5)
    mport = free_port()
    s = candor(forward_conf(up, mport, "        force_tcp"))
    r = s.query("late.test.", "A", use_edns=0, timeout=8)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert up.wait_replies(up.total_queries)
    cpu = idle_cpu(s.proc.pid)
    assert cpu < 0.10, "%.0f%% of a CPU with no traffic" % (cpu * 100)


# ---- a reply must answer the question asked ---------------------------

def _reply(q, rcode=dns.rcode.NOERROR, question=True, answer=True):
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    if answer and rcode == dns.rcode.NOERROR:
        r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN",
                                            "A", "10.0.0.7"))
    wire = bytearray(r.to_wire())
    if not question:
        # drop the question: QDCOUNT 0, header only (no records either)
        wire = wire[:12]
        wire[4:12] = b"\0" * 8
    return bytes(wire)


@pytest.mark.parametrize("proto", ["udp", "tcp"])
@pytest.mark.parametrize("bad,reason", [
    ("no_question", "no_question"),
    ("other_name", "wrong_question"),
    ("other_type", "wrong_question"),
    ("other_class", "wrong_question"),
])
def test_a_reply_to_another_question_is_dropped(candor, upstream, proto, bad,
                                                 reason):
    """The right ID but no question (NXDOMAIN), or another name, type or
    class: dropped and counted, and the query waits for its real answer,
    which the upstream sends right after."""

    def handler(q, p):
        wrong = dns.message.make_response(q)
        if bad == "no_question":
            forged = _reply(q, dns.rcode.NXDOMAIN, question=False)
        else:
            qq = q.question[0]
            name, rdtype, rdclass = qq.name, qq.rdtype, qq.rdclass
            if bad == "other_name":
                name = dns.name.from_text("elsewhere.test.")
            elif bad == "other_type":
                rdtype = dns.rdatatype.AAAA
            else:
                rdclass = dns.rdataclass.CH
            wrong.question = [dns.rrset.RRset(name, rdclass, rdtype)]
            wrong.set_rcode(dns.rcode.NXDOMAIN)
            forged = wrong.to_wire()
        return [forged, _reply(q)]

    up = upstream("script", handler=handler)
    mport = free_port()
    props = "        force_tcp" if proto == "tcp" else ""
    s = candor(forward_conf(up, mport, props))
    # Read the raw reply: dnspython would itself skip one that does not
    # match the query.
    if proto == "udp":
        q = dns.message.make_query("Asked.Test.", "A")
        r = dns.message.from_wire(s.raw_udp(q.to_wire(), timeout=3))
        assert r.id == q.id
    else:
        r = _tcp_query(s.addr, s.port, "Asked.Test.", timeout=3)
    assert r.rcode() == dns.rcode.NOERROR, r
    assert [x.to_text() for x in r.answer[0]] == ["10.0.0.7"]
    assert str(r.question[0].name) == "Asked.Test."
    to = "%s:%d" % (up.addr, up.port)
    assert wait_metric(mport, REJECTED, 1, to=to, reason=reason) == 1


def test_question_case_does_not_matter(candor, upstream):
    """An upstream that answers in another case (0x20 folded) matches."""

    def handler(q, p):
        r = dns.message.from_wire(_reply(q))
        r.question = [dns.rrset.RRset(dns.name.from_text("asked.test."),
                                      dns.rdataclass.IN, dns.rdatatype.A)]
        return r

    up = upstream("script", handler=handler)
    s = candor(forward_conf(up, free_port()))
    r = s.query("ASKED.test.", "A", use_edns=0)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer[0][0].to_text() == "10.0.0.7"


@pytest.mark.parametrize("rcode", [dns.rcode.FORMERR, dns.rcode.NOTIMP])
def test_formerr_and_notimp_without_a_question_are_taken(candor, upstream,
                                                          rcode):
    """The one exception: an old server's FORMERR or NOTIMP for EDNS it
    does not know, without a question, from the address and port asked."""
    up = upstream("script", handler=lambda q, p: _reply(q, rcode,
                                                        question=False))
    s = candor(forward_conf(up, free_port()))
    t0 = time.monotonic()
    r = s.query("old.test.", "A", use_edns=0, timeout=8)
    assert r.rcode() == rcode
    assert time.monotonic() - t0 < 1.5  # taken at once, not timed out


# ---- slow TCP clients --------------------------------------------------

def _connect(addr, port):
    c = socket.create_connection((addr, port), timeout=5)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def _tcp_query(addr, port, name, timeout=1.0):
    q = dns.message.make_query(name, "A")
    wire = q.to_wire()
    with socket.create_connection((addr, port), timeout=timeout) as c:
        c.sendall(struct.pack("!H", len(wire)) + wire)
        hdr = b""
        while len(hdr) < 2:
            chunk = c.recv(2 - len(hdr))
            assert chunk, "closed before an answer"
            hdr += chunk
        (n,) = struct.unpack("!H", hdr)
        data = b""
        while len(data) < n:
            chunk = c.recv(n - len(data))
            assert chunk, "closed mid-answer"
            data += chunk
    return dns.message.from_wire(data)


def test_read_timeout_bounds_a_whole_message(candor):
    """One byte a second resets nothing: the read timeout (3 s by default)
    runs from the message's first byte, so the connection closes after 3
    s however often bytes trickle in."""
    s = candor(".:@PORT@ {\n bind @ADDR@\n whoami\n}\n")
    q = dns.message.make_query("slow.test.", "A").to_wire()
    msg = struct.pack("!H", len(q)) + q
    c = _connect(s.addr, s.port)
    c.settimeout(0.2)
    t0 = time.monotonic()
    closed_at = None
    for i in range(len(msg) - 1):   # never the last byte
        try:
            c.sendall(msg[i:i + 1])
        except OSError:
            closed_at = time.monotonic()
            break
        try:
            if c.recv(1) == b"":
                closed_at = time.monotonic()
                break
        except socket.timeout:
            pass
        except OSError:
            closed_at = time.monotonic()
            break
        if time.monotonic() - t0 > 8:
            break
        # pacing: one byte every 0.3 s (0.2 s recv timeout + this), far
        # slower than any real client
        time.sleep(0.1)
    c.close()
    assert closed_at is not None, "a byte every 0.3 s kept it open for 8 s"
    assert 2.5 < closed_at - t0 < 4.5


def test_slow_clients_do_not_lock_new_ones_out(candor):
    """1,100 clients that each send one byte and stall, on one worker with
    the default cap of 1,024 connections: a new client still gets its
    answer over TCP within a second, because the worker at its cap closes
    its idlest connection instead of refusing the new one."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 1100 + 200
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    s = candor(".:@PORT@ {\n bind @ADDR@\n whoami\n}\n",
               args=["-workers", "1"])
    slow = []
    try:
        for _ in range(1100):
            c = _connect(s.addr, s.port)
            c.sendall(b"\x00")   # the first byte of a length, then nothing
            slow.append(c)
        for i in range(3):
            t0 = time.monotonic()
            r = _tcp_query(s.addr, s.port, "new%d.test." % i, timeout=1.0)
            assert r.rcode() == dns.rcode.NOERROR
            assert time.monotonic() - t0 < 1.0
        stats = dict(l.split("=", 1) for l in s.ctl("stats").stdout.split())
        # at the cap, the idlest were closed for the newcomers (each of
        # the three closes its own connection before the next comes)
        assert int(stats["worker.0.tcp.evicted"]) >= 1100 - 1024 + 1
        assert int(stats["worker.0.tcp.connections"]) <= 1024
    finally:
        for c in slow:
            c.close()
