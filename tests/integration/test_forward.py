# SPDX-License-Identifier: MIT
"""forward through the real binary: knotd as the healthy upstream, scripted
upstreams for every fault, DoT through unbound, failover, health, and the
cause of every SERVFAIL."""
import concurrent.futures
import os
import re
import socket
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from conftest import (free_addr, free_port, metric, run_candor, scrape,
                      wait_for)
from upstreams import closed_port


def ede_of(resp):
    return [(o.code, o.text) for o in resp.options
            if isinstance(o, dns.edns.EDEOption)]


def corefile(targets, props="", extra="", zone="."):
    block = (" {\n%s\n    }" % props) if props else ""
    return """%s:@PORT@ {
    bind @ADDR@
    errors
    log
%s
    forward %s %s%s
}
""" % (zone, extra, zone, " ".join(targets), block)


def tgt(u):
    return "%s:%d" % (u.addr, u.port)


def ask(s, name, rdtype="A", **kw):
    return s.query(name, rdtype, use_edns=0, timeout=kw.pop("timeout", 8),
                   **kw)


# ---- the healthy path --------------------------------------------------

@pytest.mark.parametrize("tcp", [False, True])
def test_answers_from_knotd(candor, knotd, tcp):
    s = candor(corefile(["%s:%d" % (knotd.addr, knotd.port)]))
    r = ask(s, "www.example.test.", "A", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA  # knotd's flags come through
    assert [x.to_text() for x in r.answer[0]] == ["192.0.2.10"]
    r = ask(s, "www.example.test.", "AAAA", tcp=tcp)
    assert r.answer[0][0].to_text() == "2001:db8::10"
    r = ask(s, "nope.example.test.", "A", tcp=tcp)
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    assert ede_of(r) == []
    # the question is echoed as the client asked it
    r = ask(s, "WwW.Example.TEST.", "A", tcp=tcp)
    assert str(r.question[0].name) == "WwW.Example.TEST."


def test_truncated_answer_retried_over_tcp(candor, knotd):
    s = candor(corefile(["%s:%d" % (knotd.addr, knotd.port)]))
    # over UDP with a large buffer: forward got it whole over TCP
    r = s.query("big.example.test.", "A", use_edns=0, payload=4096)
    assert not r.flags & dns.flags.TC
    assert len(r.answer[0]) == 40
    # without EDNS: cut to 512 with TC, whole over TCP
    r = s.query("big.example.test.", "A")
    assert r.flags & dns.flags.TC
    r = s.query("big.example.test.", "A", tcp=True)
    assert len(r.answer[0]) == 40


def test_scripted_truncation(candor, upstream):
    u = upstream("truncate", count=40)
    s = candor(corefile([tgt(u)]))
    r = s.query("t.example.", "A", use_edns=0, payload=4096)
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer[0]) == 40
    assert u.udp_queries >= 1 and u.tcp_queries >= 1


def test_tcp_connections_reused(candor, upstream):
    u = upstream("answer")
    s = candor(corefile([tgt(u)], "force_tcp"), args=["-workers", "1"])
    for i in range(5):
        assert ask(s, "c%d.example." % i).rcode() == dns.rcode.NOERROR
    assert u.tcp_queries == 5 and u.udp_queries == 0
    assert u.tcp_connections == 1


def test_except_and_from(candor, upstream):
    u = upstream("answer")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    forward example.org %s {
        except private.example.org
    }
    whoami
}
""" % tgt(u))
    r = ask(s, "www.example.org.")
    assert r.answer and r.answer[0][0].to_text() == "10.0.0.1"
    # not under FROM, or excepted: whoami answers (no answer section)
    for name in ("other.example.", "a.private.example.org."):
        r = ask(s, name)
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert r.additional
    assert set(u.qnames()) == {"www.example.org."}


# ---- each fault has its cause ------------------------------------------

def test_closed_port_network_error(candor):
    addr = free_addr()
    port = closed_port(addr)
    s = candor(corefile(["%s:%d" % (addr, port)]))
    t0 = time.time()
    r = ask(s, "example.com.")
    assert time.time() - t0 < 1.5
    assert r.rcode() == dns.rcode.SERVFAIL
    code, text = ede_of(r)[0]
    assert code == 23
    assert text.startswith("forward: %s:%d udp connection refused (ICMP port "
                           "unreachable)" % (addr, port)), text
    line = s.wait_log(lambda l: l.startswith("[ERROR]"))
    assert line == "[ERROR] plugin/errors: 2 example.com. A: " + text


def test_closed_port_tcp(candor):
    addr = free_addr()
    port = closed_port(addr)
    s = candor(corefile(["%s:%d" % (addr, port)], "force_tcp"))
    r = ask(s, "example.com.")
    code, text = ede_of(r)[0]
    assert code == 23 and "tcp connection refused" in text


def test_silent_upstream_times_out(candor, upstream):
    u = upstream("silent")
    s = candor(corefile([tgt(u)]))
    t0 = time.time()
    r = ask(s, "example.com.")
    took = time.time() - t0
    assert r.rcode() == dns.rcode.SERVFAIL
    assert took < 5.2  # within the overall budget
    code, text = ede_of(r)[0]
    assert code == 22
    assert text == "forward: %s udp timed out after 2s, 2 tries" % tgt(u)


def test_slow_upstream_fails_over(candor, upstream):
    slow = upstream("slow", delay=3)
    good = upstream("answer", address="10.0.0.7")
    s = candor(corefile([tgt(slow), tgt(good)], "policy sequential"))
    r = ask(s, "slow.example.")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer[0][0].to_text() == "10.0.0.7"
    # alone, the slow one times out with its cause
    s2 = candor(corefile([tgt(slow)]))
    r = ask(s2, "slow2.example.")
    assert ede_of(r)[0][0] == 22


@pytest.mark.parametrize("mode,what", [
    ("garbage", "malformed"),
    ("wrong_id", "wrong ID"),
    ("wrong_question", "wrong question"),
])
def test_bad_replies_dropped_and_counted(candor, upstream, mode, what):
    u = upstream(mode)
    s = candor(corefile([tgt(u)]))
    r = ask(s, "bad.example.")
    assert r.rcode() == dns.rcode.SERVFAIL
    code, text = ede_of(r)[0]
    assert code == 22
    m = re.search(r"dropped (\d+) bad replies: (\d+) wrong ID, (\d+) wrong "
                  r"question, (\d+) malformed", text)
    assert m, text
    counts = {"wrong ID": int(m[2]), "wrong question": int(m[3]),
              "malformed": int(m[4])}
    assert counts[what] >= 1
    assert sum(v for k, v in counts.items() if k != what) == 0


def test_upstream_servfail_with_ede_passed_through(candor, upstream):
    u = upstream("servfail", ede_code=6, ede_text="signature expired on "
                 "example.")
    s = candor(corefile([tgt(u)]))
    r = ask(s, "bogus.example.")
    assert r.rcode() == dns.rcode.SERVFAIL
    assert ede_of(r) == [(6, "forward: from %s: SERVFAIL: signature expired "
                             "on example." % tgt(u))]
    line = s.wait_log(lambda l: l.startswith("[ERROR]"))
    assert "from %s: SERVFAIL: signature expired" % tgt(u) in line


def test_upstream_servfail_without_ede(candor, upstream):
    u = upstream("servfail")
    s = candor(corefile([tgt(u)]))
    r = ask(s, "sf.example.")
    assert r.rcode() == dns.rcode.SERVFAIL
    assert ede_of(r) == [(0, "forward: from %s: SERVFAIL without an extended "
                             "error" % tgt(u))]


def test_upstream_refused(candor, upstream):
    u = upstream("refused")
    s = candor(corefile([tgt(u)]))
    r = ask(s, "ref.example.")
    assert r.rcode() == dns.rcode.REFUSED
    assert ede_of(r) == [(0, "forward: from %s: REFUSED without an extended "
                             "error" % tgt(u))]


def test_all_dead_right_ede_within_budget(candor, upstream):
    a, b = upstream("silent"), upstream("silent")
    s = candor(corefile([tgt(a), tgt(b)]))
    t0 = time.time()
    r = ask(s, "dead.example.")
    assert time.time() - t0 < 5.5
    code, text = ede_of(r)[0]
    assert code == 22
    assert tgt(a) in text and tgt(b) in text
    # both refusing: network error, at once
    addr = free_addr()
    p1, p2 = closed_port(addr), closed_port(addr)
    s2 = candor(corefile(["%s:%d" % (addr, p1), "%s:%d" % (addr, p2)]))
    t0 = time.time()
    r = ask(s2, "dead2.example.")
    assert time.time() - t0 < 1.5
    assert ede_of(r)[0][0] == 23


def test_max_concurrent_refused(candor, upstream):
    u = upstream("slow", delay=1)
    s = candor(corefile([tgt(u)], "max_concurrent 1"), args=["-workers", "1"])
    results = []

    def one(i):
        results.append(ask(s, "mc%d.example." % i))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    threads[0].start()
    assert u.wait_queries(1)  # the first holds the one slot upstream
    threads[1].start()
    for t in threads:
        t.join()
    rcodes = sorted(r.rcode() for r in results)
    assert rcodes == [dns.rcode.NOERROR, dns.rcode.REFUSED]
    refused = [r for r in results if r.rcode() == dns.rcode.REFUSED][0]
    code, text = ede_of(refused)[0]
    assert "max_concurrent" in text and "1 queries in flight" in text


# ---- failover and health -------------------------------------------------

def test_one_silent_of_two_no_servfail(candor, upstream):
    silent = upstream("silent")
    good = upstream("answer")
    s = candor(corefile([tgt(silent), tgt(good)]))
    t0 = time.time()
    marks = {}

    def query(i):
        q = dns.message.make_query("q%d.example." % i, "A")
        r = dns.query.udp(q, s.addr, port=s.port, timeout=6)
        return r.rcode()

    def snapshot():
        # real time: a count taken at the 1.5 s mark, not an ordering sleep
        time.sleep(1.5 - (time.time() - t0))
        marks["at_1.5s"] = len([n for n in silent.qnames() if n != "."])

    snap = threading.Thread(target=snapshot)
    snap.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as ex:
        rcodes = list(ex.map(query, range(1000)))
    snap.join()
    took = time.time() - t0
    assert rcodes.count(dns.rcode.NOERROR) == 1000, \
        {r: rcodes.count(r) for r in set(rcodes)}
    assert took < 20
    # down within 1.5 s: after that, only health checks (". NS") reach it
    later = len([n for n in silent.qnames() if n != "."]) - marks["at_1.5s"]
    assert later == 0, later
    assert good.total_queries >= 1000 - marks["at_1.5s"]


def test_health_check_brings_it_back(candor, upstream):
    u = upstream("silent")
    good = upstream("answer", address="10.0.0.2")
    s = candor(corefile([tgt(u), tgt(good)], "policy sequential"))
    for i in range(4):
        ask(s, "h%d.example." % i)
    down = re.compile(r"^  %s down " % re.escape(tgt(u)), re.M)
    wait_for(lambda: down.search(s.ctl("upstreams").stdout),
             what="%s down in `candor ctl upstreams`" % tgt(u))
    wait_for(lambda: "." in u.qnames(),  # checked with ". IN NS"
             what="a health check reaching %s" % tgt(u))
    probes = [q for p, q in u.queries if str(q.question[0].name) == "."]
    assert probes[0].question[0].rdtype == dns.rdatatype.NS
    assert probes[0].flags & dns.flags.RD
    # sequential: the first is skipped while down...
    r = ask(s, "while-down.example.")
    assert r.answer[0][0].to_text() == "10.0.0.2"
    # ...and used again once a check gets a reply
    u.set_mode("answer", address="10.0.0.1")
    deadline = time.time() + 5
    while time.time() < deadline:
        r = ask(s, "back%f.example." % time.time())
        if r.answer[0][0].to_text() == "10.0.0.1":
            break
        time.sleep(0.2)
    assert r.answer[0][0].to_text() == "10.0.0.1"


def test_failfast_all_unhealthy(candor):
    addr = free_addr()
    p1, p2 = closed_port(addr), closed_port(addr)
    s = candor(corefile(["%s:%d" % (addr, p1), "%s:%d" % (addr, p2)],
                        "failfast_all_unhealthy_upstreams"))
    for i in range(4):
        ask(s, "ff%d.example." % i)
    r = ask(s, "fast.example.")
    code, text = ede_of(r)[0]
    assert code == 22 and "all 2 upstreams are down" in text, text


def test_policies(candor, upstream):
    a = upstream("answer", address="10.0.0.1")
    b = upstream("answer", address="10.0.0.2")
    s = candor(corefile([tgt(a), tgt(b)], "policy sequential"))
    got = {ask(s, "s%d.example." % i).answer[0][0].to_text()
           for i in range(6)}
    assert got == {"10.0.0.1"}
    s2 = candor(corefile([tgt(a), tgt(b)], "policy round_robin"),
                args=["-workers", "1"])
    seq = [ask(s2, "r%d.example." % i).answer[0][0].to_text()
           for i in range(6)]
    assert set(seq) == {"10.0.0.1", "10.0.0.2"}
    assert all(seq[i] != seq[i + 1] for i in range(5))


def test_next_rcode_to_next_forward(candor, upstream):
    nx = upstream("script", handler=lambda q, proto: _nxdomain(q))
    good = upstream("answer", address="10.0.0.3")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    forward . %s {
        next NXDOMAIN
    }
    forward . %s
}
""" % (tgt(nx), tgt(good)))
    r = ask(s, "n.example.")
    assert r.answer[0][0].to_text() == "10.0.0.3"


def _nxdomain(q):
    r = dns.message.make_response(q)
    r.set_rcode(dns.rcode.NXDOMAIN)
    return r


# ---- DNS over TLS ------------------------------------------------------

def test_dot(candor, dot):
    s = candor(corefile(["tls://%s:%d" % (dot.addr, dot.port)],
                        "tls %s\n        tls_servername %s" % (dot.ca,
                                                                dot.name)))
    for i in range(3):
        r = ask(s, "www.example.test.")
        assert r.rcode() == dns.rcode.NOERROR
        assert r.answer[0][0].to_text() == "192.0.2.10"


def test_dot_wrong_name_is_a_network_error(candor, dot):
    s = candor(corefile(["tls://%s:%d" % (dot.addr, dot.port)],
                        "tls %s\n        tls_servername wrong.example" %
                        dot.ca))
    r = ask(s, "www.example.test.")
    assert r.rcode() == dns.rcode.SERVFAIL
    code, text = ede_of(r)[0]
    assert code == 23
    assert "%s:%d tls TLS certificate does not match the server name" % (
        dot.addr, dot.port) in text, text


def test_dot_untrusted_ca(candor, dot, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    from conftest import make_tls_certs
    certs = make_tls_certs(str(other), dot.name, dot.addr)
    ca = certs[0] if isinstance(certs, (list, tuple)) else certs["ca"]
    s = candor(corefile(["tls://%s:%d" % (dot.addr, dot.port)],
                        "tls %s\n        tls_servername %s" % (ca, dot.name)))
    code, text = ede_of(ask(s, "www.example.test."))[0]
    assert code == 23 and "not signed by a trusted CA" in text, text


# ---- the guide's reproduction, and load-time warnings -----------------

def test_guide_internal_ok_external_servfail(candor, tmp_path):
    addr = free_addr()
    port = closed_port(addr)
    hosts = tmp_path / "hosts"
    hosts.write_text("10.96.0.10 kube-dns.kube-system.svc.cluster.local\n")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    errors
    log
    hosts %s {
        fallthrough
    }
    forward . %s:%d
}
""" % (hosts, addr, port))
    r = ask(s, "kube-dns.kube-system.svc.cluster.local.")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer[0][0].to_text() == "10.96.0.10"
    r = ask(s, "example.com.")
    assert r.rcode() == dns.rcode.SERVFAIL
    code, text = ede_of(r)[0]
    assert code == 23
    line = s.wait_log(lambda l: l.startswith("[ERROR]"))
    assert line == ("[ERROR] plugin/errors: 2 example.com. A: forward: "
                    "%s:%d udp connection refused (ICMP port unreachable), "
                    "2 tries" % (addr, port))
    out = s.dig("example.com.")
    assert "status: SERVFAIL" in out
    assert "; EDE: 23 (Network Error): (forward: %s:%d udp connection " \
           "refused" % (addr, port) in out


def test_loop_warnings(candor, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.53\noptions edns0\n")
    s = candor(corefile([str(resolv)]))
    line = s.wait_log(lambda l: "127.0.0.53:53" in l)
    assert line.startswith("[WARNING] plugin/forward: ")
    assert "loop" in line and str(resolv) in line
    s2 = candor(corefile(["@ADDR@:@PORT@"]), port=free_port())
    line = s2.wait_log(lambda l: "own listener" in l)
    assert line.startswith("[WARNING] plugin/forward: ")
    assert "%s:%d" % (s2.addr, s2.port) in line


def test_config_errors(tmp_path):
    conf = tmp_path / "Corefile"
    conf.write_text(". {\n forward . 127.0.0.1 {\n  policy fastest\n }\n}\n")
    out = run_candor("-conf", str(conf), "-validate")
    assert out.returncode == 1
    assert out.stderr.strip() == ("plugin/forward: %s:3 - Error during "
                                  "parsing: unknown policy 'fastest'" % conf)


# ---- counters, scraped by the prometheus plugin ------------------------

def test_forward_counters(candor, upstream, tmp_path):
    import subprocess
    good = upstream("answer")
    addr = free_addr()
    dead = "%s:%d" % (addr, closed_port(addr))
    mport = free_port("127.0.0.1")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    forward example.org %s {
        force_tcp
    }
    forward dead.example %s
}
""" % (mport, tgt(good), dead), args=["-workers", "2"])
    for i in range(4):
        assert ask(s, "w%d.example.org." % i).rcode() == dns.rcode.NOERROR
    r = ask(s, "x.dead.example.")
    assert ede_of(r)[0][0] == 23
    text = scrape(mport)
    to = tgt(good)
    assert metric(text, "coredns_forward_requests_total", to=to) == 4
    assert metric(text, "coredns_forward_responses_total", rcode="NOERROR",
                  to=to) == 4
    assert metric(text, "coredns_proxy_request_duration_seconds_count",
                  proxy_name="forward", to=to, rcode="NOERROR") == 4
    hits = metric(text, "coredns_proxy_conn_cache_hits_total",
                  proxy_name="forward", to=to, proto="tcp")
    misses = metric(text, "coredns_proxy_conn_cache_misses_total",
                    proxy_name="forward", to=to, proto="tcp")
    assert hits + misses == 4 and misses <= 2  # one connection per worker
    assert metric(text, "coredns_forward_conn_cache_hits_total", to=to,
                  proto="tcp") == hits
    assert metric(text, "candor_forward_packets_sent_total", to=to,
                  proto="tcp") == 4
    assert metric(text, "candor_forward_packets_received_total", to=to,
                  proto="tcp") == 4
    assert metric(text, "candor_failures_total", plugin="forward", code="23",
                  upstream=dead) == 1
    assert metric(text, "coredns_forward_requests_total", to=dead) == 2
    # the failed try started a health check, which failed too
    deadline = time.time() + 3
    while time.time() < deadline:
        text = scrape(mport)
        if (metric(text, "coredns_proxy_healthcheck_failures_total",
                   proxy_name="forward", to=dead) or 0) >= 1:
            break
        time.sleep(0.2)
    assert metric(text, "coredns_proxy_healthcheck_failures_total",
                  proxy_name="forward", to=dead) >= 1
    assert metric(text, "coredns_forward_healthcheck_failures_total",
                  to=dead) >= 1
    assert metric(text, "coredns_forward_healthcheck_broken_total") == 0
    f = tmp_path / "metrics.txt"
    f.write_text(text)
    out = subprocess.run(["promtool", "check", "metrics"], stdin=open(f),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_max_concurrent_rejects_counted(candor, upstream):
    u = upstream("slow", delay=1)
    mport = free_port("127.0.0.1")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    forward . %s {
        max_concurrent 1
    }
}
""" % (mport, tgt(u)), args=["-workers", "1"])
    t = threading.Thread(target=lambda: ask(s, "slow.example."))
    t.start()
    assert u.wait_queries(1)  # it holds the one slot upstream
    assert ask(s, "rejected.example.").rcode() == dns.rcode.REFUSED
    t.join()
    text = scrape(mport)
    assert metric(text, "coredns_forward_max_concurrent_rejects_total") == 1
    assert metric(text, "candor_failures_total", plugin="forward", code="0",
                  upstream="") == 1


def test_metrics_port_in_use(candor, tmp_path):
    s = candor(".:@PORT@ {\n bind @ADDR@\n prometheus @ADDR@:@PORT@\n whoami\n}\n",
               port=free_port(), wait=False)
    assert s.proc.wait(timeout=10) == 1
    s.join()
    assert any("plugin/prometheus" in l and "address already in use" in l
               for l in s.err), s.err


def test_most_diagnostic_cause_wins(candor, upstream):
    bogus = upstream("servfail", ede_code=6, ede_text="RRSIG expired")
    silent = upstream("silent")
    s = candor(corefile([tgt(bogus), tgt(silent)],
                        "policy sequential\n        failover SERVFAIL"))
    r = ask(s, "bogus.example.")
    assert r.rcode() == dns.rcode.SERVFAIL
    # the silent one timed out later (EDE 22), but the DNSSEC verdict of
    # the first (EDE 6) is what the client and the log get
    assert ede_of(r) == [(6, "forward: from %s: SERVFAIL: RRSIG expired"
                             % tgt(bogus))]
    line = s.wait_log(lambda l: l.startswith("[ERROR]"))
    assert "RRSIG expired" in line


def test_overall_deadline(candor, upstream):
    ups = [upstream("silent") for _ in range(3)]
    s = candor(corefile([tgt(u) for u in ups], "read_timeout 4s"))
    t0 = time.time()
    r = ask(s, "deadline.example.")
    took = time.time() - t0
    assert 4.8 < took < 5.6
    code, text = ede_of(r)[0]
    assert code == 22
    assert text.startswith("forward: no answer within the request deadline: ")
    assert all(tgt(u) in text for u in ups)


def test_all_down_still_tried(candor):
    addr = free_addr()
    p1, p2 = closed_port(addr), closed_port(addr)
    mport = free_port("127.0.0.1")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    forward . %s:%d %s:%d
}
""" % (mport, addr, p1, addr, p2))
    for i in range(4):
        ask(s, "d%d.example." % i)
    # both down now: CoreDNS's behaviour, one is tried anyway
    r = ask(s, "still.example.")
    code, text = ede_of(r)[0]
    assert code == 23 and "connection refused" in text
    assert metric(scrape(mport), "coredns_forward_healthcheck_broken_total") >= 1


# ---- classes -----------------------------------------------------------

def test_chaos_class_is_forwarded(candor, upstream):
    """`version.bind CH TXT` reaches forward, as in CoreDNS; and, as
    CoreDNS decides per listen address, every block on an address where
    one block has forward sees other classes too; another address
    without forward refuses them."""
    seen = []

    def handler(q, p):
        seen.append((q.question[0].name.to_text(), q.question[0].rdclass))
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 0, "CH",
                                            "TXT", '"upstream 1.0"'))
        return r

    up = upstream("script", handler=handler)
    other = free_port()
    s = candor(""".:@PORT@ {
    bind @ADDR@
    forward . %s
}
who.example.:@PORT@ {
    bind @ADDR@
    whoami
}
.:%d {
    bind @ADDR@
    whoami
}
""" % (tgt(up), other))
    q = dns.message.make_query("version.bind.", "TXT", rdclass="CH")
    r = s.send(q)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer[0].to_text() == 'version.bind. 0 CH TXT "upstream 1.0"'
    assert seen == [("version.bind.", dns.rdataclass.CH)]
    # the whoami block on the same address takes CH too (its answer, as
    # CoreDNS's, is an A record's bytes in class CH: read the header only)
    q = dns.message.make_query("who.example.", "A", rdclass="CH")
    raw = s.raw_udp(q.to_wire())
    assert raw is not None and raw[3] & 0xF == dns.rcode.NOERROR
    # the other address has no forward: REFUSED with the reason
    q = dns.message.make_query("version.bind.", "TXT", rdclass="CH",
                               use_edns=0)
    r = dns.query.udp(q, s.addr, port=other, timeout=3)
    assert r.rcode() == dns.rcode.REFUSED
    assert ede_of(r) == [(21, "server: class CH is not served on %s:%d: only "
                          "IN, as no server block there has forward"
                          % (s.addr, other))]
