# SPDX-License-Identifier: MIT
"""Reload through the real binary: SIGUSR1 and the reload plugin, good and
bad edits, listeners added and removed, queries in flight kept, metrics."""
import re
import signal
import socket
import threading
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from conftest import (free_port, metric, run_candor, scrape, wait_file_read,
                      wait_for)


def write(server, text):
    with open(server.conf, "w") as f:
        f.write(server.subst(text))


def hosts_block(ip, port="@PORT@", extra=""):
    return """.:%s {
    bind @ADDR@
%s    hosts {
        %s www.example.
    }
}
""" % (port, extra, ip)


def answer_of(server, name="www.example.", port=None, timeout=2):
    q = dns.message.make_query(name, "A")
    r = dns.query.udp(q, server.addr, port=port or server.port,
                      timeout=timeout)
    return [rr.to_text() for rrset in r.answer for rr in rrset]


def wait_answer(server, want, port=None, timeout=5):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        try:
            got = answer_of(server, port=port, timeout=0.5)
            if got == want:
                return
        except (dns.exception.Timeout, ConnectionRefusedError):
            pass
        time.sleep(0.05)
    raise AssertionError("answer %r, want %r" % (got, want))


def test_sigusr1_good_edit(candor):
    s = candor(hosts_block("10.0.0.1"))
    assert answer_of(s) == ["10.0.0.1"]
    write(s, hosts_block("10.0.0.2"))
    s.send_signal(signal.SIGUSR1)
    s.wait_log(lambda l: l == "[INFO] Reloading complete")
    assert answer_of(s) == ["10.0.0.2"]
    log = s.log()
    assert "[INFO] SIGUSR1: Reloading" in log
    assert "[INFO] Reloading" in log


def test_sigusr1_bad_edit_keeps_serving_and_counts(candor):
    mport = free_port()
    prom = "    prometheus 127.0.0.1:%d\n" % mport
    s = candor(hosts_block("10.0.0.1", extra=prom))
    write(s, hosts_block("10.0.0.2", extra=prom +
                         "    forward . 127.0.0.1:notaport\n"))
    s.send_signal(signal.SIGUSR1)
    line = s.wait_log(lambda l: l.startswith("[ERROR] SIGUSR1:"))
    # CoreDNS's message: the plugin, FILE:LINE, and that the old one serves
    assert "plugin/forward" in line
    assert re.search(r"Corefile:\d+ - Error during parsing", line), line
    assert "the running configuration keeps serving" in line
    assert answer_of(s) == ["10.0.0.1"]
    assert metric(scrape(mport), "coredns_reload_failed_total") == 1
    # a syntax error too
    write(s, ". {\n    whoami\n")
    s.send_signal(signal.SIGUSR1)
    line = s.wait_log(lambda l: "Syntax error" in l and
                      l.startswith("[ERROR]"))
    assert re.search(r"Corefile:2 - Syntax error", line), line
    assert answer_of(s) == ["10.0.0.1"]
    assert metric(scrape(mport), "coredns_reload_failed_total") == 2


def test_listeners_added_and_removed(candor):
    s = candor(hosts_block("10.0.0.1"))
    other = free_port(s.addr)
    write(s, hosts_block("10.0.0.2", port=other))
    s.send_signal(signal.SIGUSR1)
    s.wait_log(lambda l: l == "[INFO] Reloading complete")
    assert answer_of(s, port=other) == ["10.0.0.2"]
    # the old port is closed, UDP and TCP
    q = dns.message.make_query("www.example.", "A")
    with pytest.raises((dns.exception.Timeout, ConnectionRefusedError)):
        dns.query.udp(q, s.addr, port=s.port, timeout=0.5)
    with pytest.raises(ConnectionRefusedError):
        dns.query.tcp(q, s.addr, port=s.port, timeout=0.5)
    # and back: both ports, one block each
    write(s, hosts_block("10.0.0.3") + hosts_block("10.0.0.4", port=other))
    s.send_signal(signal.SIGUSR1)
    s.wait_log(lambda l: l == "[INFO] Reloading complete" and
               s.log().count("[INFO] Reloading complete") == 2)
    assert answer_of(s) == ["10.0.0.3"]
    assert answer_of(s, port=other) == ["10.0.0.4"]


def test_port_in_use_fails_the_reload(candor):
    s = candor(hosts_block("10.0.0.1"))
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind((s.addr, 0))
    try:
        port = busy.getsockname()[1]
        write(s, hosts_block("10.0.0.2") +
              hosts_block("10.0.0.3", port=str(port)))
        s.send_signal(signal.SIGUSR1)
        line = s.wait_log(lambda l: l.startswith("[ERROR] SIGUSR1:"))
        assert "address already in use" in line
        assert answer_of(s) == ["10.0.0.1"]
    finally:
        busy.close()


def test_inflight_queries_survive(candor, upstream):
    """A query parked on a slow upstream when the reload happens is
    answered from the old configuration; TCP connections carry on."""
    u = upstream("slow", delay=1.0)
    conf = """.:@PORT@ {
    bind @ADDR@
    forward . %s:%d
}
""" % (u.addr, u.port)
    s = candor(conf)
    results = []

    def ask():
        try:
            r = s.query("slow.example.", timeout=4)
            results.append(dns.rcode.to_text(r.rcode()) + " " +
                           (r.answer[0][0].to_text() if r.answer else ""))
        except Exception as e:  # noqa: BLE001 - recorded for the assert
            results.append(repr(e))

    tcp = socket.create_connection((s.addr, s.port), timeout=3)
    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    s.wait_in_flight(4)  # all four parked on the slow upstream
    wait_for(lambda: sum(int(v) for k, v in s.stats().items()
                         if k.endswith(".tcp.connections")) >= 1,
             what="the TCP connection accepted by a worker")
    write(s, hosts_block("10.0.0.9"))
    s.send_signal(signal.SIGUSR1)
    s.wait_log(lambda l: l == "[INFO] Reloading complete")
    assert answer_of(s) == ["10.0.0.9"]  # the new one serves at once
    for t in threads:
        t.join(5)
    assert results == ["NOERROR 10.0.0.1"] * 4, results
    # the TCP connection opened before the reload is served by the new one
    q = dns.message.make_query("www.example.", "A")
    r = dns.query.tcp(q, s.addr, port=s.port, timeout=3, sock=tcp)
    assert r.answer[0][0].to_text() == "10.0.0.9"
    tcp.close()


def test_reload_under_load(candor):
    """Queries sent all through five reloads are all answered."""
    s = candor(hosts_block("10.0.0.1"), args=["-workers", "2"])
    stop = threading.Event()
    lost = []
    answered = [0]

    def load():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2)
        n = 0
        while not stop.is_set() and n < 20000:
            n += 1
            q = dns.message.make_query("www.example.", "A")
            sock.sendto(q.to_wire(), (s.addr, s.port))
            try:
                dns.message.from_wire(sock.recv(4096))
                answered[0] += 1
            except socket.timeout:
                lost.append(n)
        sock.close()

    def more_answers(n=50):
        """Wait until the load got n more answers (from the running
        configuration) than it has now."""
        mark = answered[0]
        wait_for(lambda: answered[0] >= mark + n,
                 what="%d more answers under load" % n)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(5):
        more_answers()
        write(s, hosts_block("10.0.0.%d" % (i + 2)))
        s.send_signal(signal.SIGUSR1)
        s.wait_log(lambda l, n=i + 1:
                   s.log().count("[INFO] Reloading complete") == n)
    more_answers()
    stop.set()
    for t in threads:
        t.join(10)
    assert answered[0] > 100
    assert lost == []
    assert answer_of(s) == ["10.0.0.6"]


def test_reload_plugin_polls_the_file(candor):
    mport = free_port()
    extra = "    reload 2s 1s\n    prometheus 127.0.0.1:%d\n" % mport
    s = candor(hosts_block("10.0.0.1", extra=extra))
    first = s.wait_log(lambda l: l.startswith(
        "[INFO] plugin/reload: Running configuration SHA512 = "))
    hash1 = first.split(" = ")[1]
    assert re.fullmatch(r"[0-9a-f]{128}", hash1)
    text = scrape(mport)
    assert metric(text, "coredns_reload_version_info", hash="sha512",
                  value=hash1) == 1
    # comments and blank lines do not count as a change
    write(s, "# comment\n\n" + hosts_block("10.0.0.1", extra=extra))
    wait_file_read(s.conf, what="a reload tick reading the Corefile")
    # a control command runs on the main thread, after that tick: no
    # reload came of it
    assert "# comment" not in s.ctl("config").stdout
    assert "[INFO] Reloading" not in s.log()
    # a real change is picked up within INTERVAL + JITTER/2
    write(s, hosts_block("10.0.0.2", extra=extra))
    wait_answer(s, ["10.0.0.2"], timeout=5)
    s.wait_log(lambda _: sum("Running configuration SHA512" in l
                             for l in s.log()) >= 2)
    lines = [l for l in s.log() if "Running configuration SHA512" in l]
    assert len(lines) == 2
    hash2 = lines[1].split(" = ")[1]
    assert hash2 != hash1
    text = scrape(mport)
    assert metric(text, "coredns_reload_version_info", hash="sha512",
                  value=hash2) == 1
    assert metric(text, "coredns_reload_version_info", hash="sha512",
                  value=hash1) is None


def test_reload_plugin_bad_edits(candor):
    mport = free_port()
    extra = "    reload 2s 1s\n    prometheus 127.0.0.1:%d\n" % mport
    s = candor(hosts_block("10.0.0.1", extra=extra))
    # an unknown directive: the Corefile does not parse; said once
    write(s, hosts_block("10.0.0.2", extra=extra + "    nosuchplugin\n"))
    line = s.wait_log(lambda l: l.startswith(
        "[WARNING] plugin/reload: Corefile parse failed: "))
    assert re.search(r"Corefile:\d+ - Error during parsing: Unknown "
                     r"directive 'nosuchplugin'", line), line
    # a plugin refuses it: reload failed, with the plugin and the line
    write(s, hosts_block("10.0.0.2", extra=extra + "    cache -5\n"))
    line = s.wait_log(lambda l: l.startswith(
        "[ERROR] plugin/reload: Corefile changed but reload failed: "))
    assert re.search(r"plugin/cache: .*Corefile:\d+ - Error during parsing",
                     line), line
    # another tick: the same file is not tried again
    wait_file_read(s.conf, what="another reload tick reading the Corefile")
    assert s.ctl("help").returncode == 0  # main thread: that tick is over
    log = s.log()
    assert sum("Corefile parse failed" in l for l in log) == 1
    assert sum("Corefile changed but reload failed" in l for l in log) == 1
    assert answer_of(s) == ["10.0.0.1"]
    assert metric(scrape(mport), "coredns_reload_failed_total") == 2
    # fixed: reloads
    write(s, hosts_block("10.0.0.3", extra=extra))
    wait_answer(s, ["10.0.0.3"], timeout=5)


def test_reload_plugin_syntax(tmp_path):
    for args, msg in (("reload 1s", "interval value must be greater or "
                                    "equal to 2s"),
                      ("reload 10s 500ms", "jitter value must be greater or "
                                           "equal to 1s"),
                      ("reload 10s 2s 3s", "Wrong argument count"),
                      ("reload soon", 'time: invalid duration "soon"')):
        path = tmp_path / "Corefile"
        path.write_text(".:1053 {\n    %s\n}\n" % args)
        p = run_candor("-conf", str(path), "-validate")
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        assert "plugin/reload" in p.stderr and msg in p.stderr, p.stderr
        assert "Corefile:2" in p.stderr, p.stderr
