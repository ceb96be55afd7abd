# SPDX-License-Identifier: MIT
"""candor doctor through the real binary: each verdict reproduced on
loopback, the JSON form and the exit codes.

With CANDOR_DOCTOR_DOCS=FILE set, each scenario appends the session as a
person sees it (the commands and doctor's output) to FILE:
scripts/doctor-docs builds docs/doctor.md from it."""
import json
import os
import socket
import subprocess
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rrset

from conftest import CANDOR, free_addr, free_port, metric, scrape, wait_for
from upstreams import closed_port


def doctor(s, *args, conf=None, timeout=60):
    argv = [CANDOR, "doctor"] + list(args)
    if s is not None and s.ctl_path is not None and "-ctl" not in args:
        argv += ["-ctl", s.ctl_path]
    if conf is not None:
        argv += ["-conf", conf]
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout)


def verdict_of(out):
    lines = out.stdout.splitlines()
    i = lines.index(next(l for l in lines if l.startswith("verdict: ")))
    return lines[i][len("verdict: "):], "\n".join(lines[i:])


def document(title, corefile, out, s=None, note=""):
    path = os.environ.get("CANDOR_DOCTOR_DOCS")
    if not path:
        return
    cf = s.subst(corefile) if s is not None else corefile
    with open(path, "a") as f:
        f.write("## %s\n\n%s%s" % (title, note + "\n\n" if note else "",
                                    "The Corefile:\n\n```\n%s```\n\n" % cf))
        f.write("```\n$ candor doctor %s\n%s```\n\nexit status %d\n\n" % (
            " ".join(a for a in out.args[2:] if not a.startswith("/tmp/cnd")
                     and a != "-ctl"), out.stdout, out.returncode))


FWD = """.:@PORT@ {
    bind @ADDR@
    errors
    prometheus 127.0.0.1:%d
    forward . %s
}
"""


def fwd(target, mport=None):
    return FWD % (mport or free_port(), target)


def test_all_healthy(candor, upstream):
    u = upstream("answer")
    conf = fwd("%s:%d" % (u.addr, u.port))
    s = candor(conf)
    out = doctor(s, "www.example.com")
    assert out.returncode == 0, out.stdout + out.stderr
    v, text = verdict_of(out)
    assert v == "all healthy"
    assert "www.example.com resolves through %s:%d" % (s.addr, s.port) in text
    assert "[ ok ] the name through the server" in out.stdout
    assert "%s:%d udp, asked directly: NOERROR" % (u.addr, u.port) in out.stdout
    assert "%s:%d tcp, asked directly: NOERROR" % (u.addr, u.port) in out.stdout
    document("All healthy", conf, out, s)


def test_nxdomain(candor, knotd):
    conf = fwd("%s:%d" % (knotd.addr, knotd.port))
    s = candor(conf)
    out = doctor(s, "nope.example.test")
    assert out.returncode == 1, out.stdout + out.stderr
    v, text = verdict_of(out)
    assert v == "the name does not exist"
    assert "not" in text and "DNS" in text
    assert "NXDOMAIN" in out.stdout
    document("The name does not exist", conf, out, s)


def test_upstream_down(candor, upstream):
    u = upstream("answer")
    conf = fwd("%s:%d" % (u.addr, u.port))
    s = candor(conf)
    assert s.query("before.example.").rcode() == dns.rcode.NOERROR
    u.stop()  # it answered; now nothing listens there
    out = doctor(s, "www.example.com")
    assert out.returncode == 1, out.stdout + out.stderr
    v, text = verdict_of(out)
    assert v == "upstream down", text
    assert "%s:%d" % (u.addr, u.port) in text
    assert "answered the server before" in text
    assert "it has answered before" in out.stdout
    document("Upstream down", conf, out, s,
             "The upstream answered the server, then its DNS service "
             "stopped.")


def test_forward_target_wrong(candor):
    port = closed_port("127.0.0.1")
    conf = fwd("127.0.0.1:%d" % port)
    s = candor(conf)
    out = doctor(s, "www.example.com")
    assert out.returncode == 1
    v, text = verdict_of(out)
    assert v == "forward target wrong", text
    assert "nothing listens at 127.0.0.1:%d" % port in text
    assert "connection refused" in out.stdout
    assert "EDE 23 (Network Error)" in out.stdout
    document("Forward target wrong", conf, out, s,
             "forward points at a port where nothing has ever listened.")


def test_forward_loop(candor):
    addr = free_addr()
    port = free_port(addr)
    conf = fwd("%s:%d" % (addr, port))
    s = candor(conf, addr=addr, port=port)
    out = doctor(s, "www.example.com")
    assert out.returncode == 1
    v, text = verdict_of(out)
    assert v == "forward loop", text
    assert "[FAIL] loops" in out.stdout
    assert "is this server" in out.stdout
    assert "loop: sent twice by forward" in out.stdout  # the server's EDE
    document("Forward loop", conf, out, s,
             "A reload (or a typo) pointed forward at the server itself.")


def test_resolv_conf_local_stub(candor, tmp_path):
    stub = free_addr()  # nothing listens on port 53 there
    rc = tmp_path / "resolv.conf"
    rc.write_text("nameserver %s\noptions edns0\n" % stub)
    conf = fwd(str(rc))
    s = candor(conf)
    out = doctor(s, "www.example.com")
    assert out.returncode == 1
    v, text = verdict_of(out)
    assert v == "resolv.conf points at a local stub", text
    assert "%s lists %s:53" % (rc, stub) in text
    assert "refuses" in text
    document("resolv.conf pointing at a local stub", conf, out, s,
             "forward reads a resolv.conf that names a resolver on the "
             "host's loopback, as systemd-resolved's 127.0.0.53 stub does; "
             "inside a pod nothing listens there.")


def test_egress_blocked(candor, upstream):
    """Nothing comes back over UDP or TCP: a listener that drops every
    query stands in for a firewall that drops the packets."""
    u = upstream("silent")
    conf = fwd("%s:%d" % (u.addr, u.port))
    s = candor(conf)
    out = doctor(s, "www.example.com")
    assert out.returncode == 1
    v, text = verdict_of(out)
    assert v == "egress blocked", text
    assert "no reply within 2000 ms" in out.stdout
    assert "EDE 22 (No Reachable Authority)" in out.stdout
    document("Egress blocked", conf, out, s,
             "Every query to the upstream is dropped on the way, over UDP "
             "and TCP (here: a listener that never answers).")


def test_overloaded(candor, upstream):
    u = upstream("slow", delay=3)
    mport = free_port()
    conf = """.:@PORT@ {
    bind @ADDR@
    errors
    prometheus 127.0.0.1:%d
    forward . %s:%d {
        max_concurrent 2
    }
}
""" % (mport, u.addr, u.port)
    s = candor(conf)
    stop = threading.Event()

    def load():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        n = 0
        while not stop.is_set() and n < 5000:
            n += 1
            q = dns.message.make_query("load%d.example." % n, "A")
            sock.sendto(q.to_wire(), (s.addr, s.port))
            time.sleep(0.01)  # pacing: a steady trickle, not a flood
        sock.close()

    t = threading.Thread(target=load)
    t.start()
    try:
        # the two slots are taken and the trickle is being refused
        wait_for(lambda: (metric(scrape(mport), "coredns_forward_max_concurrent"
                                 "_rejects_total") or 0) >= 1,
                 what="max_concurrent rejects (/metrics)")
        out = doctor(s, "www.example.com")
    finally:
        stop.set()
        t.join(10)
    assert out.returncode == 1
    v, text = verdict_of(out)
    assert v == "server overloaded", text
    assert "[FAIL] max_concurrent rejects" in out.stdout
    document("Server overloaded", conf, out, s,
             "An upstream that takes 3 s per answer, forward's "
             "max_concurrent at 2, and a steady trickle of queries.")


def test_upstream_dnssec_bogus(candor, upstream):
    def bogus(q, proto):
        r = dns.message.make_response(q)
        if q.flags & dns.flags.CD:
            r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN",
                                                "A", "10.0.0.7"))
            return r
        r.set_rcode(dns.rcode.SERVFAIL)
        r.use_edns(0, options=[dns.edns.EDEOption(
            6, "signature expired for example.com. DNSKEY")])
        return r

    u = upstream("script", handler=bogus)
    conf = fwd("%s:%d" % (u.addr, u.port))
    s = candor(conf)
    out = doctor(s, "www.example.com")
    assert out.returncode == 1
    v, text = verdict_of(out)
    assert v == "the upstream's DNSSEC validation fails", text
    assert "6 (DNSSEC Bogus): signature expired" in text
    assert "with CD" in text
    document("The upstream's own SERVFAIL (DNSSEC bogus)", conf, out, s,
             "The upstream validates and fails: SERVFAIL with EDE 6; with "
             "CD set it gives the answer.")


def test_upstream_plain_servfail(candor, upstream):
    u = upstream("servfail", ede_code=22, ede_text="no reachable authority "
                 "for example.com.")
    conf = fwd("%s:%d" % (u.addr, u.port))
    s = candor(conf)
    out = doctor(s, "www.example.com")
    assert out.returncode == 1
    v, text = verdict_of(out)
    assert v == "the upstream answers SERVFAIL", text
    assert "22 (No Reachable Authority): no reachable authority" in text


def test_json(candor, upstream):
    u = upstream("answer")
    s = candor(fwd("%s:%d" % (u.addr, u.port)))
    out = doctor(s, "www.example.com", "-json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["names"] == ["www.example.com"]
    assert doc["server"] == "%s:%d" % (s.addr, s.port)
    assert doc["control_socket"] is True
    assert doc["verdict"]["id"] == "healthy"
    assert doc["exit"] == 0
    ids = [c["id"] for c in doc["checks"]]
    for want in ("name:www.example.com", "external", "loop", "health",
                 "ready", "requestlist", "max_concurrent", "servfail_rate",
                 "upstream:%s:%d:udp" % (u.addr, u.port),
                 "upstream:%s:%d:tcp" % (u.addr, u.port)):
        assert want in ids, (want, ids)
    assert all(c["status"] in ("ok", "warn", "fail", "skip")
               for c in doc["checks"])


def test_conf_file_without_ctl(candor, upstream, tmp_path):
    """No control socket: the Corefile is read from -conf, the server from
    its listen address."""
    u = upstream("answer")
    # a port of its own: without a control socket, doctor cannot learn
    # what a Corefile's ":0" stood for
    s = candor(fwd("%s:%d" % (u.addr, u.port)), args=["-ctl", "off"],
               port=free_port())
    out = doctor(None, "www.example.com", "-ctl", str(tmp_path / "none"),
                 conf=s.conf)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "configuration: %s\n" % s.conf in out.stdout
    assert "control socket: does not answer" in out.stdout
    assert "[ -- ] the request list" in out.stdout


def test_exit_2(tmp_path):
    out = subprocess.run([CANDOR, "doctor", "-bogus"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "unknown flag -bogus" in out.stderr
    out = subprocess.run([CANDOR, "doctor", "x.", "-conf",
                          str(tmp_path / "missing"), "-ctl",
                          str(tmp_path / "none")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "cannot read %s" % (tmp_path / "missing") in out.stderr
    bad = tmp_path / "Corefile"
    bad.write_text(".:53 {\n    forward\n}\n")
    out = subprocess.run([CANDOR, "doctor", "-conf", str(bad), "-ctl",
                          str(tmp_path / "none")], capture_output=True,
                         text=True)
    assert out.returncode == 2
    assert "does not load" in out.stderr and "Corefile:2" in out.stderr


def test_internal_against_external(candor, upstream):
    """An internal name (from hosts) answers while the external one fails:
    the checks show the split."""
    port = closed_port("127.0.0.1")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    hosts {
        10.1.1.1 db.internal.test
        fallthrough
    }
    forward . 127.0.0.1:%d
}
""" % port)
    out = doctor(s, "www.example.com")
    assert out.returncode == 1
    assert "[ ok ] an internal name" in out.stdout
    assert "db.internal.test A: NOERROR" in out.stdout
    assert "[FAIL] an external name" in out.stdout
    v, _ = verdict_of(out)
    assert v == "forward target wrong"
