# SPDX-License-Identifier: MIT
"""The core through the real binary: command line, routing, EDNS,
truncation, header oddities, TCP, the failure record, graceful stop, and
bad input.  Plugins used: whoami, log, errors, erratic, timeouts, bind."""
import glob
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from conftest import (CANDOR, ROOT, free_addr, free_port, inet_sockets,
                      run_candor, signal_pending, tcp_listeners, wait_for)

CORPUS = os.path.join(ROOT, "tests", "corpus")

BASIC = """.:@PORT@ {
    bind @ADDR@
    whoami
    log
    errors
}
"""

LOG_RE = re.compile(
    r'^\[INFO\] (?P<remote>[0-9.]+):(?P<port>\d+) - (?P<id>\d+) '
    r'"(?P<type>\S+) (?P<class>\S+) (?P<name>\S+) (?P<proto>udp|tcp) '
    r'(?P<size>\d+) (?P<do>true|false) (?P<bufsize>\d+)" (?P<rcode>\S+) '
    r'(?P<flags>\S+) (?P<rsize>\d+) (?P<dur>\d+(\.\d+)?)s$')


def ede_of(resp):
    return [(o.code, o.text) for o in resp.options
            if isinstance(o, dns.edns.EDEOption)]


# ---- command line -----------------------------------------------------

def test_version_and_plugins():
    out = run_candor("-version")
    assert out.returncode == 0
    assert out.stdout.startswith("candor-")
    out = run_candor("-plugins")
    assert out.returncode == 0
    for name in ("dns.whoami", "dns.log", "dns.errors", "dns.bind",
                 "dns.erratic", "dns.timeouts"):
        assert "  " + name + "\n" in out.stdout
    assert run_candor("version").stdout.startswith("candor-")


def test_bad_flags_exit_2():
    out = run_candor("-nosuchflag")
    assert out.returncode == 2
    assert "flag provided but not defined: -nosuchflag" in out.stderr
    out = run_candor("-dns.port", "70000")
    assert out.returncode == 2
    out = run_candor("frobnicate")
    assert out.returncode == 2


def test_validate(tmp_path):
    good = tmp_path / "Good"
    good.write_text(". {\n whoami\n log\n}\n")
    out = run_candor("-conf", str(good), "-validate")
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout
    bad = tmp_path / "Bad"
    bad.write_text(". {\n whoami\n errors\n log {\n  class nope\n }\n}\n")
    out = run_candor("-conf", str(bad), "-validate")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "plugin/log: %s:5 - Error during parsing: invalid class: nope" % bad)
    out = run_candor("-conf", str(tmp_path / "missing"), "-validate")
    assert out.returncode == 1
    assert "unable to read Corefile" in out.stderr


def test_bad_config_exits_1_with_line(tmp_path):
    conf = tmp_path / "Corefile"
    conf.write_text(".:%d {\n whoami\n}\n.:%d {\n unknownplugin\n}\n"
                    % (free_port(), free_port()))
    out = run_candor("-conf", str(conf))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "%s:5 - Error during parsing: Unknown directive 'unknownplugin'" % conf)


def test_corefile_in_cwd_and_builtin_default(tmp_path):
    addr, port = "127.0.0.1", free_port("127.0.0.1")
    # No Corefile here: the built-in default on 127.0.0.1 (port overridden
    # so parallel runs never fight over 1053).
    empty = tmp_path / "empty"
    empty.mkdir()
    p = subprocess.Popen([CANDOR, "-dns.port", str(port)], cwd=str(empty),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        deadline = time.time() + 10
        lines = []
        while time.time() < deadline:
            line = p.stdout.readline()
            lines.append(line)
            if line.startswith("candor-"):
                break
        text = "".join(lines)
        assert "built-in default" in text
        assert "dig @127.0.0.1 -p %d" % port in text
        assert ".:%d on 127.0.0.1" % port in text
        q = dns.message.make_query("who.example.", "A")
        r = dns.query.udp(q, addr, port=port, timeout=3)
        assert r.rcode() == dns.rcode.NOERROR
        assert any(rr.rdtype == dns.rdatatype.A for rr in r.additional)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
    # ./Corefile is read when there is no -conf.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    port2 = free_port("127.0.0.1")
    (cwd / "Corefile").write_text(
        ".:%d {\n bind 127.0.0.1\n whoami\n}\n" % port2)
    p = subprocess.Popen([CANDOR, "-quiet"], cwd=str(cwd),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        r = None
        for _ in range(100):
            try:
                r = dns.query.udp(dns.message.make_query("x.", "A"),
                                  "127.0.0.1", port=port2, timeout=0.2)
                break
            except Exception:
                time.sleep(0.05)
        assert r is not None and r.rcode() == dns.rcode.NOERROR
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        assert p.returncode == 0
        assert "candor-" not in out  # -quiet


def test_port_in_use(candor, tmp_path):
    s = candor(BASIC)
    conf = tmp_path / "Other"
    conf.write_text(".:%d {\n bind %s\n whoami\n}\n" % (s.port, s.addr))
    out = run_candor("-conf", str(conf))
    assert out.returncode == 1
    assert "bind: address already in use" in out.stderr
    assert "%s:%d" % (s.addr, s.port) in out.stderr


def test_pidfile(candor, tmp_path):
    pidfile = tmp_path / "candor.pid"
    s = candor(BASIC, args=["-pidfile", str(pidfile)])
    assert int(pidfile.read_text()) == s.proc.pid
    assert s.stop() == 0
    assert not pidfile.exists()


# ---- answers, routing, EDNS -------------------------------------------

def test_whoami_udp_tcp(candor):
    s = candor(BASIC)
    for tcp in (False, True):
        r = s.query("Who.Example.", "A", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR
        assert r.flags & dns.flags.AA
        assert not r.flags & dns.flags.RA
        assert len(r.answer) == 0
        a = [rr for rr in r.additional if rr.rdtype == dns.rdatatype.A][0]
        assert a[0].address == "127.0.0.1" or a[0].address.startswith("127.")
        srv = [rr for rr in r.additional if rr.rdtype == dns.rdatatype.SRV][0]
        assert str(srv.name).startswith("_tcp." if tcp else "_udp.")
        # the question is echoed as asked (0x20 case kept)
        assert str(r.question[0].name) == "Who.Example."


def test_port_zero_is_one_kernel_pick(candor):
    """.:0 and -dns.port 0: one port the kernel picks for every key, shown
    in the banner and kept across a reload."""
    s = candor(""".:@PORT@ {
    bind @ADDR@
    whoami
}
example.:@PORT@ {
    bind @ADDR@
    whoami
}
other. {
    bind @ADDR@
    whoami
}
""", args=["-dns.port", "0"])
    assert s._port_text == "0" and 32768 <= s.port <= 65535
    banner = [l for l in s.log() if l.endswith(" on " + s.addr)]
    assert banner == ["%s:%d on %s" % (z, s.port, s.addr)
                      for z in (".", "example.", "other.")]
    for tcp in (False, True):
        assert s.query("a.example.", tcp=tcp).rcode() == dns.rcode.NOERROR
    with open(s.conf, "a") as f:
        f.write("\n# changed\n")
    s.send_signal(signal.SIGUSR1)
    s.wait_log(lambda l: l == "[INFO] Reloading complete")
    assert s.query("a.other.").rcode() == dns.rcode.NOERROR


def test_ipv6_listener(candor):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as t:
            t.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    s = candor(".:@PORT@ {\n bind ::1\n whoami\n}\n")
    q = dns.message.make_query("v6.example.", "AAAA")
    for fn in (dns.query.udp, dns.query.tcp):
        r = fn(q, "::1", port=s.port, timeout=3)
        assert r.rcode() == dns.rcode.NOERROR
        aaaa = [rr for rr in r.additional if rr.rdtype == dns.rdatatype.AAAA]
        assert aaaa[0][0].address == "::1"


def test_wildcard_listener_answers_from_the_right_address(candor):
    port = free_port("127.0.0.1")
    s = candor(".:@PORT@ {\n whoami\n}\n", addr="127.0.0.1", port=port)
    for addr in ("127.0.0.1", "127.0.0.2", "127.1.2.3"):
        q = dns.message.make_query("any.example.", "A")
        # dnspython checks the reply comes from the address asked
        r = dns.query.udp(q, addr, port=port, timeout=3)
        assert r.rcode() == dns.rcode.NOERROR


def test_longest_zone_and_refused(candor):
    s = candor("""example.org:@PORT@ {
    bind @ADDR@
    whoami
}
sub.example.org:@PORT@ {
    bind @ADDR@
    log
}
empty.example.org:@PORT@ {
    bind @ADDR@
}
""")
    assert s.query("a.example.org.", "A").rcode() == dns.rcode.NOERROR
    # sub.example.org's block has only log: it runs off its chain
    r = s.query("a.sub.example.org.", "A", use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert ede_of(r) == [(0, "log: no next plugin found")]
    # no block serves example.com: REFUSED, with EDE 20 when EDNS
    r = s.query("example.com.", "A", use_edns=0)
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.flags & dns.flags.AA
    code, text = ede_of(r)[0]
    assert code == 20 and "example.com." in text
    r = s.query("example.com.", "A")  # no EDNS: no OPT, no EDE
    assert r.rcode() == dns.rcode.REFUSED and r.edns < 0
    # a block without plugins: REFUSED
    assert s.query("x.empty.example.org.", "A").rcode() == dns.rcode.REFUSED


def test_edns_echo_and_badvers(candor):
    s = candor(BASIC)
    r = s.query("e.example.", "A")
    assert r.edns == -1  # no OPT asked, none given
    r = s.query("e.example.", "A", use_edns=0, payload=4096)
    assert r.edns == 0 and r.payload == 1232
    r = s.query("e.example.", "A", use_edns=0, want_dnssec=True)
    assert r.ednsflags & dns.flags.DO
    q = dns.message.make_query("e.example.", "A")
    q.use_edns(edns=1)
    r = s.send(q)
    assert r.rcode() == dns.rcode.BADVERS
    assert r.edns == 0
    # the corpus query dig sends for +edns=1 too
    wire = open(os.path.join(CORPUS, "queries", "dig_edns1.bin"), "rb").read()
    raw = s.raw_udp(wire)
    assert raw is not None
    r = dns.message.from_wire(raw)
    assert r.rcode() == dns.rcode.BADVERS


def test_bad_and_repeated_opt_formerr(candor):
    s = candor(BASIC)
    for name in ("two_opt_records.bin", "opt_owner_not_root.bin",
                 "opt_rdlen_past_end.bin", "opt_in_answer.bin"):
        wire = open(os.path.join(CORPUS, "malformed", name), "rb").read()
        raw = s.raw_udp(wire)
        if raw is None:
            continue  # dropping is allowed too
        hdr = struct.unpack("!HHHHHH", raw[:12])
        assert hdr[0] == struct.unpack("!H", wire[:2])[0]
        assert hdr[1] & 0x8000  # QR
        assert hdr[1] & 0xF == dns.rcode.FORMERR, name
        assert hdr[5] == 0, name  # no OPT in a FORMERR for a bad OPT
    assert s.query("still.example.", "A").rcode() == dns.rcode.NOERROR


def test_header_oddities(candor):
    s = candor(BASIC)
    q = dns.message.make_query("h.example.", "A")
    wire = bytearray(q.to_wire())
    # QR set: no answer at all
    w = bytearray(wire)
    w[2] |= 0x80
    assert s.raw_udp(bytes(w), timeout=0.5) is None
    # opcode STATUS: NOTIMP, header only
    w = bytearray(wire)
    w[2] = (w[2] & 0x87) | (2 << 3)
    raw = s.raw_udp(bytes(w))
    assert raw is not None and raw[3] & 0xF == dns.rcode.NOTIMP
    assert struct.unpack("!H", raw[4:6])[0] == 0
    # QDCOUNT 0 and 2: FORMERR
    for qd in (0, 2):
        w = bytearray(wire)
        w[4:6] = struct.pack("!H", qd)
        raw = s.raw_udp(bytes(w))
        assert raw is not None and raw[3] & 0xF == dns.rcode.FORMERR
        assert raw[:2] == bytes(wire[:2])
    # class CH: REFUSED (no plugin here takes other classes)
    q = dns.message.make_query("version.bind.", "TXT", rdclass="CH")
    assert s.send(q).rcode() == dns.rcode.REFUSED
    # NOTIFY reaches the chain
    q = dns.message.make_query("n.example.", "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    r = s.send(q)
    assert r.rcode() == dns.rcode.NOERROR and r.opcode() == dns.opcode.NOTIFY
    assert s.query("after.example.", "A").rcode() == dns.rcode.NOERROR


# ---- truncation and TCP ------------------------------------------------

LARGE = """.:@PORT@ {
    bind @ADDR@
    erratic {
        drop 0
        large
    }
}
"""


# 30 records and a 60-byte name: past 512 bytes
BIG = "a" * 50 + ".big.example."


def test_truncation(candor):
    s = candor(LARGE)
    raw = s.raw_udp(dns.message.make_query(BIG, "A").to_wire())
    assert len(raw) <= 512 and raw[2] & 0x02  # TC
    an = struct.unpack("!H", raw[6:8])[0]
    assert 0 < an < 30
    r = dns.message.from_wire(raw)
    assert r.flags & dns.flags.TC
    raw = s.raw_udp(dns.message.make_query(BIG, "A", use_edns=0,
                                           payload=4096).to_wire())
    assert not raw[2] & 0x02 and struct.unpack("!H", raw[6:8])[0] == 30
    # over TCP: the whole answer
    with socket.create_connection((s.addr, s.port), timeout=5) as c:
        w = dns.message.make_query(BIG, "A").to_wire()
        c.sendall(struct.pack("!H", len(w)) + w)
        n = struct.unpack("!H", c.recv(2, socket.MSG_WAITALL))[0]
        raw = c.recv(n, socket.MSG_WAITALL)
    assert n > 512 and not raw[2] & 0x02
    assert struct.unpack("!H", raw[6:8])[0] == 30
    # the same with dig: TC over UDP without EDNS, whole over TCP
    out = s.dig(BIG, "A", "+noedns", "+ignore")
    assert " tc" in out.split("flags:")[1].split(";")[0]
    out = s.dig(BIG, "A", "+tcp")
    assert "ANSWER: 30" in out


def _tcp_query(sock, name, qid):
    q = dns.message.make_query(name, "A")
    q.id = qid
    w = q.to_wire()
    return struct.pack("!H", len(w)) + w


def _recv_frame(sock):
    """The next DNS message on a TCP socket, or None once it is closed
    (an orderly close, or a reset when it closed with our query unread)."""
    hdr = b""
    while len(hdr) < 2:
        try:
            chunk = sock.recv(2 - len(hdr))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        hdr += chunk
    n = struct.unpack("!H", hdr)[0]
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return dns.message.from_wire(data)


def _all_read(c):
    """Has the server taken in all that client socket c sent: acked by
    its kernel (our send queue empty) and read by candor (its receive
    queue empty)?"""
    me, peer = c.getsockname(), c.getpeername()
    ours = theirs = None
    for k in inet_sockets("tcp"):
        if k["local"] == me and k["remote"] == peer:
            ours = k
        elif k["local"] == peer and k["remote"] == me:
            theirs = k
    return (ours is not None and theirs is not None and
            ours["tx_queue"] == 0 and theirs["rx_queue"] == 0)


def test_tcp_pipelining(candor):
    s = candor(BASIC)
    with socket.create_connection((s.addr, s.port), timeout=5) as c:
        ids = list(range(100, 120))
        c.sendall(b"".join(_tcp_query(c, "p%d.example." % i, i) for i in ids))
        got = set()
        for _ in ids:
            r = _recv_frame(c)
            assert r is not None and r.rcode() == dns.rcode.NOERROR
            got.add(r.id)
        assert got == set(ids)
        # one query split in two writes, with a pause
        frame = _tcp_query(c, "split.example.", 7)
        c.sendall(frame[:5])
        wait_for(lambda: _all_read(c), what="the server reading the first "
                 "5 bytes (/proc/net/tcp)")
        c.sendall(frame[5:])
        assert _recv_frame(c).id == 7


def test_tcp_idle_timeout_and_half_close(candor):
    s = candor(""".:@PORT@ {
    bind @ADDR@
    timeouts {
        idle 1s
        read 1s
    }
    whoami
}
""")
    with socket.create_connection((s.addr, s.port), timeout=5) as c:
        c.sendall(_tcp_query(c, "idle.example.", 1))
        assert _recv_frame(c).id == 1
        t0 = time.time()
        assert c.recv(10) == b""  # closed by the server
        assert 0.7 < time.time() - t0 < 3
    # a client that sends and shuts down its side still gets its answer
    with socket.create_connection((s.addr, s.port), timeout=5) as c:
        c.sendall(_tcp_query(c, "half.example.", 2))
        c.shutdown(socket.SHUT_WR)
        assert _recv_frame(c).id == 2


def test_tcp_connection_cap_closes_the_idlest(candor):
    """At the cap a new connection closes the least recently active one
    that has nothing in flight, and is served."""
    s = candor(BASIC, args=["-workers", "1", "-tcp.max_conns", "2"])
    a = socket.create_connection((s.addr, s.port), timeout=5)
    b = socket.create_connection((s.addr, s.port), timeout=5)
    try:
        a.sendall(_tcp_query(a, "a.example.", 1))
        assert _recv_frame(a).id == 1
        b.sendall(_tcp_query(b, "b.example.", 2))
        assert _recv_frame(b).id == 2
        with socket.create_connection((s.addr, s.port), timeout=5) as c:
            c.sendall(_tcp_query(c, "c.example.", 3))
            assert _recv_frame(c).id == 3
        assert a.recv(10) == b""       # the idlest: closed for c
        b.sendall(_tcp_query(b, "b2.example.", 4))
        assert _recv_frame(b).id == 4  # the other one lives on
    finally:
        a.close()
        b.close()


def test_tcp_connection_cap_refuses_when_all_are_busy(candor, upstream):
    """Only when every connection has a query in flight is a new one
    closed at once."""
    silent = upstream("silent")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    forward . %s:%d
}
""" % (silent.addr, silent.port), args=["-workers", "1", "-tcp.max_conns", "2"])
    a = socket.create_connection((s.addr, s.port), timeout=5)
    b = socket.create_connection((s.addr, s.port), timeout=5)
    try:
        a.sendall(_tcp_query(a, "a.example.", 1))
        b.sendall(_tcp_query(b, "b.example.", 2))
        assert silent.wait_queries(2)   # both parked in forward
        c = socket.create_connection((s.addr, s.port), timeout=5)
        try:
            c.sendall(_tcp_query(c, "c.example.", 3))
        except OSError:
            pass
        assert _recv_frame(c) is None  # closed at once
        c.close()
    finally:
        a.close()
        b.close()


# ---- the failure record -------------------------------------------------

FAILING = """.:@PORT@ {
    bind @ADDR@
    log
    errors
    erratic {
        drop 0
    }
}
"""


def test_servfail_carries_its_cause(candor):
    s = candor(FAILING)
    r = s.query("fail.example.", "MX", use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert not r.flags & dns.flags.AA and not r.flags & dns.flags.RA
    assert ede_of(r) == [(0, "erratic: only A and AAAA are answered, not MX")]
    line = s.wait_log(lambda l: l.startswith("[ERROR]"))
    assert line == ("[ERROR] plugin/errors: 2 fail.example. MX: erratic: "
                    "only A and AAAA are answered, not MX")
    # the query log shows what the client got
    qline = s.wait_log(lambda l: '"MX IN fail.example.' in l)
    m = LOG_RE.match(qline)
    assert m and m["rcode"] == "SERVFAIL" and m["flags"] == "qr,rd"
    # dig shows the EDE
    out = s.dig("fail.example.", "MX")
    assert "; EDE: 0 (Other): (erratic: only A and AAAA are answered, " \
           "not MX)" in out


def test_log_line_exact(candor):
    s = candor(BASIC)
    q = dns.message.make_query("LogMe.Example.", "AAAA", use_edns=0,
                               payload=1232)
    r = s.send(q)
    line = s.wait_log(lambda l: "logme.example." in l)
    m = LOG_RE.match(line)
    assert m, line
    assert m["remote"] == "127.0.0.1"
    assert m["id"] == str(q.id)
    assert (m["type"], m["class"], m["name"], m["proto"]) == \
        ("AAAA", "IN", "logme.example.", "udp")
    assert m["size"] == str(len(q.to_wire()))
    assert (m["do"], m["bufsize"], m["rcode"], m["flags"]) == \
        ("false", "1232", "NOERROR", "qr,aa,rd")
    assert int(m["rsize"]) > 0
    assert float(m["dur"]) < 1
    s.query("tcp.example.", "A", tcp=True)
    m = LOG_RE.match(s.wait_log(lambda l: "tcp.example." in l))
    assert m["proto"] == "tcp" and m["bufsize"] == "65535"


def _raw_tcp(s, wire):
    with socket.create_connection((s.addr, s.port), timeout=5) as c:
        c.sendall(struct.pack("!H", len(wire)) + wire)
        (n,) = struct.unpack("!H", c.recv(2, socket.MSG_WAITALL))
        return c.recv(n, socket.MSG_WAITALL)


@pytest.mark.parametrize("tcp", [False, True])
def test_log_size_is_what_was_sent(candor, upstream, tcp):
    """{rsize} is the size of the message sent, OPT and EDE included, as
    CoreDNS logs it: for whoami's own answer, a cache hit, and a SERVFAIL
    that carries an EDE."""
    up = upstream("answer")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    log
    errors
    whoami
}
cached.example.:@PORT@ {
    bind @ADDR@
    log
    cache
    forward . %s:%d
}
fail.example.:@PORT@ {
    bind @ADDR@
    log
    errors
    erratic {
        drop 0
    }
}
""" % (up.addr, up.port))
    cases = [("who.example.", "A"), ("cached.example.", "A"),
             ("cached.example.", "A"), ("fail.example.", "MX")]
    for i, (name, rdtype) in enumerate(cases):
        q = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
        wire = _raw_tcp(s, q.to_wire()) if tcp else s.raw_udp(q.to_wire())
        assert wire is not None
        nth = cases[:i + 1].count((name, rdtype))   # the second: a hit

        def logged():
            return [m for m in map(LOG_RE.match, s.log())
                    if m and m["name"] == name]
        s.wait_log(lambda _: len(logged()) >= nth)
        m = logged()[nth - 1]
        assert int(m["rsize"]) == len(wire), (m.string, len(wire))


def test_log_formats_and_classes(candor):
    s = candor(""".:@PORT@ {
    bind @ADDR@
    log only.example. "{type} {name} {rcode} {>opcode} {proto} {nope}" {
        class error
    }
    log . {combined}
    erratic {
        drop 0
    }
}
""")
    s.query("a.only.example.", "A")      # success: filtered out
    s.query("b.only.example.", "MX")     # error: logged with the format
    s.query("other.example.", "A")       # combined format
    line = s.wait_log(lambda l: "b.only.example." in l)
    assert line == "[INFO] MX b.only.example. SERVFAIL 0 udp {nope}"
    line = s.wait_log(lambda l: "other.example." in l)
    assert line.endswith('"0"') and LOG_RE.match(line[:-4])
    time.sleep(0.3)  # negative check: a.only.example. is never logged
    assert not any("a.only.example." in l for l in s.log())


def test_errors_consolidate(candor):
    s = candor(""".:@PORT@ {
    bind @ADDR@
    errors {
        consolidate 1s "only A and AAAA" warning
    }
    erratic {
        drop 0
    }
}
""", args=["-workers", "1"])
    for i in range(5):
        s.query("c%d.example." % i, "TXT")
    line = s.wait_log(lambda l: "errors like" in l, timeout=5)
    assert line == ("[WARNING] plugin/errors: 5 errors like 'only A and AAAA'"
                    " occurred in last 1s")
    assert not any(l.startswith("[ERROR]") for l in s.log())


def test_deadline(candor):
    s = candor(""".:@PORT@ {
    bind @ADDR@
    errors
    erratic {
        delay 1 6s
    }
}
""")
    t0 = time.time()
    r = s.query("slow.example.", "A", use_edns=0, timeout=8)
    took = time.time() - t0
    assert 4.5 < took < 6
    assert r.rcode() == dns.rcode.SERVFAIL
    assert ede_of(r) == [(0, "erratic: dropped while delaying the answer "
                             "by 6s")]


# ---- stop ----------------------------------------------------------------

def test_graceful_stop_finishes_in_flight(candor):
    s = candor(""".:@PORT@ {
    bind @ADDR@
    erratic {
        delay 1 1s
    }
}
""")
    results = {}

    def ask(key, tcp):
        try:
            results[key] = s.query("inflight.example.", "A", tcp=tcp,
                                   timeout=4)
        except Exception as e:  # noqa
            results[key] = e

    threads = [threading.Thread(target=ask, args=("udp", False)),
               threading.Thread(target=ask, args=("tcp", True))]
    for t in threads:
        t.start()
    s.wait_in_flight(2)  # both held by erratic's 1 s delay
    s.send_signal(signal.SIGTERM)
    # every worker has stopped reading UDP once its TCP listener is closed
    wait_for(lambda: tcp_listeners(s.addr, s.port) == 0,
             what="the TCP listeners to close after SIGTERM")
    # no new queries once stopping
    q = dns.message.make_query("new.example.", "A")
    assert s.raw_udp(q.to_wire(), timeout=0.5) is None
    for t in threads:
        t.join()
    for key in ("udp", "tcp"):
        assert not isinstance(results[key], Exception), results[key]
        assert results[key].rcode() == dns.rcode.NOERROR
    assert s.proc.wait(timeout=5) == 0
    assert "[INFO] SIGTERM: Shutting down servers then terminating" in s.log()


def test_sigint_stops(candor):
    s = candor(BASIC)
    s.send_signal(signal.SIGINT)
    assert s.proc.wait(timeout=5) == 0
    assert "[INFO] SIGINT: Shutting down" in s.log()


def test_sighup_ignored(candor):
    s = candor(BASIC)
    s.send_signal(signal.SIGHUP)
    wait_for(lambda: not signal_pending(s.proc.pid, signal.SIGHUP),
             what="candor's handler to take SIGHUP")
    assert s.query("hup.example.", "A").rcode() == dns.rcode.NOERROR


# ---- bad input -----------------------------------------------------------

def _good(s):
    r = s.query("alive.example.", "A", timeout=2)
    assert r.rcode() == dns.rcode.NOERROR


def _check_reply(raw, sent):
    """A reply to garbage must be a well-formed FORMERR/NOTIMP/REFUSED."""
    assert len(raw) >= 12
    assert raw[:2] == sent[:2]
    assert raw[2] & 0x80
    assert raw[3] & 0x0F in (dns.rcode.FORMERR, dns.rcode.NOTIMP,
                             dns.rcode.REFUSED, dns.rcode.NOERROR,
                             dns.rcode.BADVERS & 0xF, dns.rcode.SERVFAIL)


def test_malformed_corpus_udp(candor):
    s = candor(BASIC)
    files = sorted(glob.glob(os.path.join(CORPUS, "malformed", "*.bin")))
    assert files
    for f in files:
        data = open(f, "rb").read()
        if not data:
            continue
        raw = s.raw_udp(data, timeout=0.3)
        if raw is not None:
            _check_reply(raw, data)
    _good(s)


def test_random_bytes_and_pointer_loop(candor):
    s = candor(BASIC)
    rng = random.Random(1234)
    for i in range(300):
        n = rng.choice([1, 5, 11, 12, 13, 30, 100, 512, 1500])
        data = bytes(rng.getrandbits(8) for _ in range(n))
        raw = s.raw_udp(data, timeout=0.05)
        if raw is not None:
            _check_reply(raw, data)
    # a truncated header
    assert s.raw_udp(b"\x12\x34\x01\x00\x00", timeout=0.3) is None
    # a question name that points to itself
    loop = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + \
        b"\xc0\x0c\x00\x01\x00\x01"
    raw = s.raw_udp(loop)
    assert raw is not None and raw[3] & 0xF == dns.rcode.FORMERR
    _good(s)


def test_tcp_garbage(candor):
    s = candor(BASIC)
    # a 64 KiB frame of garbage, then the connection is of no use
    with socket.create_connection((s.addr, s.port), timeout=5) as c:
        rng = random.Random(99)
        body = bytes(rng.getrandbits(8) for _ in range(65535))
        c.sendall(struct.pack("!H", 65535) + body)
        try:
            c.settimeout(2)
            data = c.recv(65537)
            if data:
                n = struct.unpack("!H", data[:2])[0]
                assert n >= 12
        except (socket.timeout, ConnectionResetError):
            pass
    # a frame too short to be DNS closes the connection
    with socket.create_connection((s.addr, s.port), timeout=5) as c:
        c.sendall(b"\x00\x03abc")
        c.settimeout(3)
        assert c.recv(10) == b""
    # random bytes on a fresh connection
    with socket.create_connection((s.addr, s.port), timeout=5) as c:
        c.sendall(os.urandom(3000))
        c.settimeout(3)
        try:
            while c.recv(65536):
                pass
        except (socket.timeout, ConnectionResetError):
            pass
    _good(s)
    assert s.query("tcp.alive.example.", "A", tcp=True).rcode() == \
        dns.rcode.NOERROR


def test_bind_listens_only_there(candor):
    base = free_addr().rsplit(".", 1)[0]
    a, b, c = base + ".11", base + ".12", base + ".13"
    port = free_port(a)
    s = candor(""".:@PORT@ {
    bind %s %s %s {
        except %s
    }
    whoami
}
""" % (a, b, c, c), addr=a, port=port)
    assert any(l == ".:%d on %s" % (port, a) for l in s.log())
    assert any(l == ".:%d on %s" % (port, b) for l in s.log())
    for addr in (a, b):
        q = dns.message.make_query("bound.example.", "A")
        assert dns.query.udp(q, addr, port=port, timeout=2).rcode() == \
            dns.rcode.NOERROR
    # excepted, and not bound: no answer
    q = dns.message.make_query("bound.example.", "A")
    with pytest.raises((dns.exception.Timeout, ConnectionRefusedError)):
        dns.query.udp(q, c, port=port, timeout=0.5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((c, port), timeout=1)
