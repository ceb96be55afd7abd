# SPDX-License-Identifier: MIT
"""Operations through the real binary: the full metric set (checked by
promtool and by value), the control socket and its commands, and loops
that appear while serving."""
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import dns.edns
import dns.message
import dns.query
import dns.rcode
import pytest

from conftest import free_port, metric, scrape


def ede_of(resp):
    return [(o.code, o.text) for o in resp.options
            if isinstance(o, dns.edns.EDEOption)]


def promtool_ok(text, tmp_path):
    f = tmp_path / "metrics.txt"
    f.write_text(text)
    with open(f) as fh:
        out = subprocess.run(["promtool", "check", "metrics"], stdin=fh,
                             capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---- metrics ---------------------------------------------------------------

def test_dns_metrics_by_value(candor, upstream, tmp_path):
    ok = upstream("answer")
    bad = upstream("servfail")
    mport = free_port()
    s = candor(""".:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    errors
    cache
    forward . %s:%d
}
bad.example.:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    forward . %s:%d
}
""" % (mport, ok.addr, ok.port, mport, bad.addr, bad.port),
               args=["-workers", "1"])  # the request list of one worker
    server = "dns://%s:%d" % (s.addr, s.port)
    assert s.query("a.example.").rcode() == dns.rcode.NOERROR
    assert s.query("a.example.").rcode() == dns.rcode.NOERROR  # cached
    assert s.query("a.example.", "AAAA", tcp=True,
                   want_dnssec=True).rcode() == dns.rcode.NOERROR
    assert s.query("x.bad.example.", "MX").rcode() == dns.rcode.SERVFAIL
    text = scrape(mport)
    promtool_ok(text, tmp_path)
    base = dict(server=server, zone=".", view="")
    assert metric(text, "coredns_dns_requests_total", **base, proto="udp",
                  family="1", type="A") == 2
    assert metric(text, "coredns_dns_requests_total", **base, proto="tcp",
                  family="1", type="AAAA") == 1
    assert metric(text, "coredns_dns_requests_total", server=server,
                  zone="bad.example.", view="", proto="udp", family="1",
                  type="MX") == 1
    assert metric(text, "coredns_dns_do_requests_total", **base) == 1
    assert metric(text, "coredns_dns_responses_total", **base,
                  rcode="NOERROR", plugin="forward") == 2
    assert metric(text, "coredns_dns_responses_total", **base,
                  rcode="NOERROR", plugin="cache") == 1
    # the alert everyone has: a SERVFAIL moves this series
    assert metric(text, "coredns_dns_responses_total", server=server,
                  zone="bad.example.", view="", rcode="SERVFAIL",
                  plugin="forward") == 1
    assert metric(text, "coredns_dns_request_duration_seconds_count",
                  **base) == 3
    assert metric(text, "coredns_dns_request_duration_seconds_bucket",
                  **base, le="+Inf") == 3
    assert metric(text, "coredns_dns_request_size_bytes_count", **base,
                  proto="udp") == 2
    assert metric(text, "coredns_dns_response_size_bytes_bucket", **base,
                  proto="tcp", le="64000") == 1
    assert metric(text, "coredns_plugin_enabled", **base, name="forward") == 1
    assert metric(text, "coredns_plugin_enabled", **base, name="cache") == 1
    assert metric(text, "coredns_panics_total") == 0
    assert re.search(r'^coredns_build_info\{version="[^"]+",revision="[^"]*",'
                     r'goversion="[^"]+"\} 1$', text, re.M), text
    # candor's own: the request list and the upstreams' health
    assert metric(text, "candor_requestlist_current", worker="0") == 0
    assert metric(text, "candor_requestlist_max", worker="0") >= 1
    assert metric(text, "candor_forward_upstream_healthy",
                  to="%s:%d" % (ok.addr, ok.port)) == 1
    # the SERVFAIL by its cause
    assert metric(text, "candor_failures_total", plugin="forward", code="0",
                  upstream="%s:%d" % (bad.addr, bad.port)) == 1


def test_query_no_block_takes_counts_as_dropped(candor, tmp_path):
    """CoreDNS counts the REFUSED of a query no server block takes under
    zone "dropped", plugin "", with the listen address's server label."""
    mport = free_port()
    s = candor("""example.org:@PORT@ {
    bind @ADDR@
    whoami
}
example.net:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    whoami
}
""" % mport)
    server = "dns://%s:%d" % (s.addr, s.port)
    assert s.query("a.example.com.").rcode() == dns.rcode.REFUSED
    assert s.query("b.example.com.", "MX",
                   tcp=True).rcode() == dns.rcode.REFUSED
    assert s.query("a.example.org.").rcode() == dns.rcode.NOERROR
    text = scrape(mport)
    promtool_ok(text, tmp_path)
    base = dict(server=server, zone="dropped", view="")
    assert metric(text, "coredns_dns_requests_total", **base, proto="udp",
                  family="1", type="A") == 1
    assert metric(text, "coredns_dns_requests_total", **base, proto="tcp",
                  family="1", type="MX") == 1
    assert metric(text, "coredns_dns_responses_total", **base,
                  rcode="REFUSED", plugin="") == 2
    assert metric(text, "coredns_dns_request_duration_seconds_count",
                  **base) == 2
    # a block without prometheus is not counted, as in CoreDNS
    assert "example.org." not in "".join(
        line for line in text.splitlines()
        if line.startswith("coredns_dns_requests_total"))


def test_time_buckets_are_corednss(candor, tmp_path):
    mport = free_port()
    s = candor(""".:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    whoami
}
""" % mport)
    s.query("a.example.")
    text = scrape(mport)
    les = re.findall(r'coredns_dns_request_duration_seconds_bucket\{[^}]*'
                     r'le="([^"]+)"', text)
    assert les == ["0.00025", "0.0005", "0.001", "0.002", "0.004", "0.008",
                   "0.016", "0.032", "0.064", "0.128", "0.256", "0.512",
                   "1.024", "2.048", "4.096", "8.192", "+Inf"]
    les = re.findall(r'coredns_dns_request_size_bytes_bucket\{[^}]*'
                     r'le="([^"]+)"', text)
    assert les == ["0", "100", "200", "300", "400", "511", "1023", "2047",
                   "4095", "8291", "16000", "32000", "48000", "64000", "+Inf"]


def test_upstream_health_gauge_goes_down(candor, upstream):
    u = upstream("silent")
    mport = free_port()
    s = candor(""".:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    forward . %s:%d
}
""" % (mport, u.addr, u.port))
    to = "%s:%d" % (u.addr, u.port)
    assert metric(scrape(mport), "candor_forward_upstream_healthy",
                  to=to) == 1
    for i in range(2):
        s.query("q%d.example." % i, timeout=6)
    deadline = time.time() + 5
    while metric(scrape(mport), "candor_forward_upstream_healthy",
                 to=to) != 0:
        assert time.time() < deadline, "the upstream never showed down"
        time.sleep(0.1)
    u.set_mode("answer")
    deadline = time.time() + 5
    while metric(scrape(mport), "candor_forward_upstream_healthy",
                 to=to) != 1:
        assert time.time() < deadline, "the upstream never came back up"
        time.sleep(0.1)


def test_plugin_enabled_follows_reload(candor):
    mport = free_port()
    conf = """.:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    %s
}
"""
    s = candor(conf % (mport, "whoami"))
    base = dict(server="dns://%s:%d" % (s.addr, s.port), zone=".", view="")
    assert metric(scrape(mport), "coredns_plugin_enabled", **base,
                  name="whoami") == 1
    with open(s.conf, "w") as f:
        f.write(s.subst(conf % (mport, "erratic")))
    s.send_signal(signal.SIGUSR1)
    s.wait_log(lambda l: l == "[INFO] Reloading complete")
    text = scrape(mport)
    assert metric(text, "coredns_plugin_enabled", **base,
                  name="whoami") is None
    assert metric(text, "coredns_plugin_enabled", **base,
                  name="erratic") == 1
    assert metric(text, "coredns_plugin_enabled", **base,
                  name="prometheus") == 1


# ---- the control socket ----------------------------------------------------

FWD = """.:@PORT@ {
    bind @ADDR@
    errors
    cache
    forward . %s:%d
}
"""


def test_ctl_socket_is_owner_only_and_removed(candor, upstream):
    u = upstream("answer")
    s = candor(FWD % (u.addr, u.port))
    st = os.stat(s.ctl_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert s.stop() == 0
    assert not os.path.exists(s.ctl_path)


def test_ctl_requestlist_parked_on_silent_upstream(candor, upstream):
    u = upstream("silent")
    s = candor(FWD % (u.addr, u.port) +
               "", args=["-workers", "1"])
    result = []
    t = threading.Thread(target=lambda: result.append(
        s.query("stuck.example.", timeout=8)))
    t.start()
    assert u.wait_queries(1)  # parked: forwarded, never answered
    s.wait_in_flight(1)
    time.sleep(0.55)  # real time: its age must grow past 0.5 s (not ordering)
    out = s.ctl("dump_requestlist")
    assert out.returncode == 0, out.stderr
    rows = [l for l in out.stdout.splitlines() if not l.startswith("#")]
    assert len(rows) == 1, out.stdout
    m = re.match(r"0 (\d+)\.(\d{3})s 127\.0\.0\.1:\d+ udp stuck\.example\. "
                 r"A waiting forward waiting on (\S+) udp \(sent [^)]+ ago\); "
                 r"try 1 of \d+$", rows[0])
    assert m, rows[0]
    age = int(m.group(1)) + int(m.group(2)) / 1000
    assert 0.5 <= age < 2.0, age
    assert m.group(3) == "%s:%d" % (u.addr, u.port)
    assert "# 1 in flight" in out.stdout
    # the upstream comes back: the list empties
    u.set_mode("answer")
    t.join(10)
    assert result and result[0].rcode() in (dns.rcode.NOERROR,
                                            dns.rcode.SERVFAIL)
    s.query("fresh.example.", timeout=4)
    out = s.ctl("dump_requestlist")
    assert [l for l in out.stdout.splitlines() if not l.startswith("#")] == []
    assert "# 0 in flight" in out.stdout
    stats = s.ctl("stats").stdout
    assert "requestlist.current=0" in stats.splitlines()
    assert re.search(r"^worker\.0\.requestlist\.max=[1-9]", stats, re.M)


def test_ctl_upstreams(candor, upstream):
    good = upstream("answer")
    from upstreams import closed_port
    dead_port = closed_port("127.0.0.1")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    forward . %s:%d 127.0.0.1:%d {
        policy sequential
    }
}
""" % (good.addr, good.port, dead_port))
    s.query("a.example.")
    out = s.ctl("upstreams")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert re.match(r"forward \. \(.*Corefile:3\)$", lines[0]), lines[0]
    assert re.match(r"  %s:%d up fails=0 rtt=\d+\.\d{3}ms last_error=-$" %
                    (re.escape(good.addr), good.port), lines[1]), lines[1]
    assert re.match(r"  127\.0\.0\.1:%d up fails=0 rtt=- last_error=-$" %
                    dead_port, lines[2]), lines[2]
    good.set_mode("refused")  # failover to the closed port is not asked:
    s.ctl("flush")
    # make the good one fail over the network: stop answering at all
    good.set_mode("silent")
    s.query("b.example.", timeout=6)
    out = s.ctl("upstreams").stdout
    assert re.search(r"127\.0\.0\.1:%d \S+ fails=[1-9]\d* rtt=- "
                     r"last_error=\S+ ago: udp connection refused" %
                     dead_port, out), out


def test_ctl_cache_dump_and_flush(candor, upstream):
    u = upstream("answer", ttl=300)
    mport = free_port()
    s = candor(""".:@PORT@ {
    bind @ADDR@
    prometheus 127.0.0.1:%d
    cache
    forward . %s:%d
}
""" % (mport, u.addr, u.port))
    s.query("a.example.")
    s.query("b.example.", "AAAA")
    s.query("nx.example.", "TXT")  # empty NOERROR (no SOA): a success
    out = s.ctl("dump_cache")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^a\.example\. A IN (29\d|300) success$", out.stdout,
                     re.M), out.stdout
    assert re.search(r"^b\.example\. AAAA IN \d+ success$", out.stdout, re.M)
    assert "# 3 entries" in out.stdout
    labels = dict(server="dns://%s:%d" % (s.addr, s.port), type="success",
                  zones=".", view="")
    assert metric(scrape(mport), "coredns_cache_entries", **labels) == 3
    out = s.ctl("flush", "A.Example.")
    assert "flushed 1 entries" in out.stdout
    assert metric(scrape(mport), "coredns_cache_entries", **labels) == 2
    before = u.udp_queries
    s.query("a.example.")
    assert u.udp_queries == before + 1  # asked again
    out = s.ctl("flush")
    assert "flushed 3 entries" in out.stdout, out.stdout
    assert "# 0 entries" in s.ctl("dump_cache").stdout
    assert metric(scrape(mport), "coredns_cache_entries", **labels) == 0
    bad = s.ctl("flush", "not..a..name")
    assert bad.returncode == 1 and "not a domain name" in bad.stderr


def test_ctl_reload_config_help_and_errors(candor, upstream):
    u = upstream("answer")
    s = candor(FWD % (u.addr, u.port))
    out = s.ctl("config")
    assert out.returncode == 0
    assert out.stdout.splitlines()[0] == "# " + s.conf
    assert "forward . %s:%d" % (u.addr, u.port) in out.stdout
    out = s.ctl("help")
    for cmd in ("stats", "dump_requestlist", "reload", "config",
                "upstreams", "dump_cache", "flush [NAME]"):
        assert re.search(r"^%s\s" % re.escape(cmd), out.stdout, re.M), cmd
    with open(s.conf, "w") as f:
        f.write(s.subst(""".:@PORT@ {
    bind @ADDR@
    whoami
}
"""))
    out = s.ctl("reload")
    assert out.returncode == 0 and out.stdout == "ok\n", out
    assert "forward" not in s.ctl("config").stdout
    out = s.ctl("upstreams")  # forward is gone with the reload
    assert out.returncode == 1
    assert "unknown command \"upstreams\"" in out.stderr
    with open(s.conf, "w") as f:
        f.write("garbage {\n")
    out = s.ctl("reload")
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "Corefile:" in out.stderr
    assert "keeps serving" in out.stderr
    out = s.ctl("stats", "extra")
    assert out.returncode == 1 and "takes no arguments" in out.stderr
    out = s.ctl("nope")
    assert out.returncode == 1 and 'unknown command "nope"' in out.stderr
    # a client that says nothing and one that says too much
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(s.ctl_path)
        c.sendall(b"x" * 5000)
        assert c.recv(100).startswith(b"error: command longer than")
    assert s.query("a.example.").rcode() == dns.rcode.NOERROR


def test_ctl_without_server():
    from conftest import run_candor
    p = run_candor("ctl", "-s", "/nonexistent/ctl.sock", "stats")
    assert p.returncode == 2
    assert "cannot connect to /nonexistent/ctl.sock" in p.stderr
    p = run_candor("ctl")
    assert p.returncode == 2 and "Usage: candor ctl" in p.stderr


def test_ctl_default_socket_per_server(candor, tmp_path):
    """Without -ctl each server takes the socket of its first listen port
    and says where; "candor ctl" without -s finds the one running, asks
    which when two run, and takes a port for -s; doctor finds the socket
    of -server's port."""
    import tempfile
    from conftest import run_candor
    d = tempfile.mkdtemp(prefix="cndctl")   # short: sun_path is 108 bytes
    env = {"CANDOR_CTL_DIR": d}
    conf = ".:@PORT@ {\n    bind @ADDR@\n    whoami\n}\n"
    a = candor(conf, ctl=False, env=env)
    line = "[INFO] Control socket %s/candor-%d.ctl: candor ctl -s %d help" % (
        d, a.port, a.port)
    assert line in a.log()
    p = run_candor("ctl", "stats", env=env)
    assert p.returncode == 0 and "worker.0.queries.dropped=" in p.stdout
    b = candor(conf, ctl=False, env=env)
    p = run_candor("ctl", "stats", env=env)
    assert p.returncode == 2
    assert "2 candor servers run here" in p.stderr
    assert "%s/candor-%d.ctl" % (d, a.port) in p.stderr
    assert "%s/candor-%d.ctl" % (d, b.port) in p.stderr
    assert "say which with -s PATH or -s PORT" in p.stderr
    p = run_candor("ctl", "-s", str(b.port), "config", env=env)
    assert p.returncode == 0 and b.conf in p.stdout
    p = run_candor("doctor", "-server", "%s:%d" % (a.addr, a.port), env=env)
    assert "control socket: answers" in p.stdout, p.stdout + p.stderr
    assert "configuration: %s, from the running server" % a.conf in p.stdout
    b.stop()
    p = run_candor("ctl", "config", env=env)
    assert p.returncode == 0 and a.conf in p.stdout
    a.stop()
    p = run_candor("ctl", "stats", env=env)
    assert p.returncode == 2 and "no candor control socket in %s" % d in p.stderr
    os.rmdir(d)


@pytest.mark.parametrize("argv", [["-h"], ["-help"], ["--help"],
                                  ["ctl", "-h"], ["ctl", "--help"],
                                  ["doctor", "-h"], ["dig", "-h"]])
def test_help_goes_to_stdout(argv):
    from conftest import run_candor
    p = run_candor(*argv)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Usage: candor"), p.stdout
    assert p.stderr == ""


def test_ctl_socket_in_use_is_a_warning(candor, tmp_path):
    a = candor(""".:@PORT@ {
    bind @ADDR@
    whoami
}
""")
    b = candor(""".:@PORT@ {
    bind @ADDR@
    whoami
}
""", args=["-ctl", a.ctl_path])
    b.wait_log(lambda l: l.startswith("[WARNING] ctl: %s is in use by "
                                      "another server" % a.ctl_path))
    assert b.query("x.example.").rcode() == dns.rcode.NOERROR
    assert a.ctl("stats").returncode == 0


# ---- loops that appear while serving ----------------------------------------

def test_reload_into_a_self_loop(candor, upstream):
    u = upstream("answer")
    s = candor(FWD % (u.addr, u.port))
    assert s.query("a.example.").rcode() == dns.rcode.NOERROR
    with open(s.conf, "w") as f:
        f.write(s.subst(FWD % (s.addr, s.port)))
    s.send_signal(signal.SIGUSR1)
    s.wait_log(lambda l: l == "[INFO] Reloading complete")
    t0 = time.time()
    r = s.query("loop.example.", timeout=6, use_edns=0)
    assert time.time() - t0 < 1.0  # not after the 5 s deadline
    assert r.rcode() == dns.rcode.SERVFAIL
    text = " ".join(t for _, t in ede_of(r))
    assert "loop: sent twice by forward ." in text, text
    assert "to %s:%d" % (s.addr, s.port) in text
    line = s.wait_log(lambda l: l.startswith(
        "[ERROR] plugin/forward: Loop detected"))
    assert '"A loop.example."' in line and "%s:%d" % (s.addr, s.port) in line


class Relay:
    """A forwarder that passes each query on as it is, one thread per
    query (as CoreDNS's forward does), to a target that can change."""

    def __init__(self, addr, target):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 0))
        self.addr, self.port = self.sock.getsockname()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._pass, args=(data, src),
                             daemon=True).start()

    def _pass(self, data, src):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.settimeout(3)
            out.sendto(data, self.target)
            try:
                self.sock.sendto(out.recv(65535), src)
            except (socket.timeout, OSError):
                pass

    def stop(self):
        self.stopped = True
        self.thread.join(2)
        self.sock.close()


def test_upstream_that_starts_pointing_back(candor, upstream):
    """An upstream forwarder that passes queries on as they are (CoreDNS's
    forward, a relay) starts sending them back to us."""
    from conftest import free_addr
    u = upstream("answer")
    relay = Relay(free_addr(), (u.addr, u.port))
    try:
        s = candor(FWD % (relay.addr, relay.port))
        assert s.query("before.example.").rcode() == dns.rcode.NOERROR
        relay.target = (s.addr, s.port)
        t0 = time.time()
        r = s.query("after.example.", timeout=6, use_edns=0)
        assert time.time() - t0 < 1.0
        assert r.rcode() == dns.rcode.SERVFAIL
        text = " ".join(t for _, t in ede_of(r))
        assert "loop: sent twice by forward ." in text, text
        assert "to %s:%d" % (relay.addr, relay.port) in text
        s.wait_log(lambda l: l.startswith(
            "[ERROR] plugin/forward: Loop detected"))
        # and back to normal when the relay points at a resolver again
        relay.target = (u.addr, u.port)
        s.ctl("flush")
        assert s.query("after.example.").rcode() == dns.rcode.NOERROR
    finally:
        relay.stop()
