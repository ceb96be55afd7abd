# SPDX-License-Identifier: MIT
"""loop through the real binary: a server forwarding to itself, two servers
forwarding to each other, a healthy upstream (one probe, then nothing), a
silent upstream (probes retried, the server stays up), and the Corefile
errors."""
import re
import time

import dns.rcode
import dns.rdatatype

from conftest import free_addr, free_port, inet_sockets, run_candor, wait_for

FATAL = (r'\[FATAL\] plugin/loop: Loop \((127\.\d+\.\d+\.\d+:\d+) -> %s\) '
         r'detected for zone "%s", see https://coredns\.io/plugins/loop'
         r'#troubleshooting\. Query: "HINFO (\d+)\.(\d+)\.%s"')
PROBE = re.compile(r"^(\d+)\.(\d+)\.$")


def fatal_re(listen, zone):
    tail = "" if zone == "." else re.escape(zone)
    return re.compile("^" + FATAL % (re.escape(listen), re.escape(zone), tail)
                      + "$")


def wait_exit(s, timeout=5):
    """The exit status of a server expected to die within timeout."""
    start = time.monotonic()
    rc = s.proc.wait(timeout=timeout)
    s.join()
    return rc, time.monotonic() - start


def the_fatal_line(s, rx):
    lines = [l for l in s.log() if l.startswith("[FATAL]")]
    assert len(lines) == 1, "\n".join(s.log() + s.err)
    m = rx.match(lines[0])
    assert m, lines[0]
    assert int(m.group(2)) < 2 ** 62 and int(m.group(3)) < 2 ** 62
    return m


def probes(up):
    """The probe names an upstream received, in order."""
    return [n for n in up.qnames() if n and PROBE.match(n)]


# ---- loops -----------------------------------------------------------

def test_forward_to_itself(candor):
    s = candor(""".:@PORT@ {
    bind @ADDR@
    loop
    forward . @ADDR@:@PORT@
}
""", port=free_port(), wait=False)  # a port the forward line can name
    rc, took = wait_exit(s)
    assert rc == 1
    assert took < 5
    the_fatal_line(s, fatal_re("%s:%d" % (s.addr, s.port), "."))


def test_forward_to_itself_every_address_and_zone(candor):
    # No bind: CoreDNS prints the listen host empty (":PORT"); the probe
    # is sent to 127.0.0.1.  The probe name is under the first key's zone.
    port = free_port("127.0.0.1")
    s = candor("""example.test:@PORT@ other.test:@PORT@ {
    loop
    forward . 127.0.0.1:@PORT@
}
""", port=port, wait=False)
    rc, _ = wait_exit(s)
    assert rc == 1
    the_fatal_line(s, fatal_re(":%d" % port, "example.test."))


def test_two_servers_forwarding_to_each_other(candor):
    a_addr, b_addr = free_addr(), free_addr()
    a_port, b_port = free_port(a_addr), free_port(b_addr)
    b = candor(""".:@PORT@ {
    bind @ADDR@
    forward . %s:%d
}
""" % (a_addr, a_port), addr=b_addr, port=b_port)
    a = candor(""".:@PORT@ {
    bind @ADDR@
    loop
    forward . %s:%d
}
""" % (b_addr, b_port), addr=a_addr, port=a_port, wait=False)
    rc, took = wait_exit(a)
    assert rc == 1
    assert took < 5
    the_fatal_line(a, fatal_re("%s:%d" % (a_addr, a_port), "."))
    # B has no loop plugin: it keeps serving.
    assert b.proc.poll() is None


# ---- no loop ---------------------------------------------------------

def test_healthy_upstream(candor, upstream):
    up = upstream("answer")
    s = candor(""".:@PORT@ {
    bind @ADDR@
    loop
    forward . %s:%d
}
""" % (up.addr, up.port))
    deadline = time.monotonic() + 5
    while not probes(up) and time.monotonic() < deadline:
        time.sleep(0.02)
    got = probes(up)
    assert len(got) == 1, up.qnames()
    q = [m for _, m in up.queries if m.question[0].name.to_text() == got[0]]
    assert q[0].question[0].rdtype == dns.rdatatype.HINFO
    # The reply turned the check off: the same name three more times is
    # no loop now, and other queries pass as ever.  Off once loop has
    # closed its probe socket (connected to the server itself); a control
    # command after that runs on the main thread after loop's job ended.
    wait_for(lambda: not any(k["remote"] == (s.addr, s.port)
                             for k in inet_sockets("udp")),
             what="loop's probe socket to close (/proc/net/udp)")
    assert s.ctl("help").returncode == 0
    for _ in range(3):
        r = s.query(got[0], "HINFO")
        assert r.rcode() == dns.rcode.NOERROR
    r = s.query("www.example.org.", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer[0][0].to_text() == "10.0.0.1"
    time.sleep(1)  # negative check: no further probe, no exit, in 1 s
    assert s.proc.poll() is None
    assert len(probes(up)) == 1 + 3, up.qnames()  # ours, never loop's
    assert not any(l.startswith("[FATAL]") for l in s.log())


def test_silent_upstream_retried(candor, upstream):
    up = upstream("silent")
    # One try per query, so every probe the upstream sees is one of
    # loop's tries (2 s timeout, then 1 s pause).
    s = candor(""".:@PORT@ {
    bind @ADDR@
    hosts {
        10.0.0.9 alive.test
        fallthrough
    }
    loop
    forward . %s:%d {
        max_connect_attempts 1
    }
}
""" % (up.addr, up.port))
    seen = []   # (time, count) whenever the count grew
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        n = len(probes(up))
        if not seen or n > seen[-1][1]:
            seen.append((time.monotonic(), n))
        if n >= 2:
            break
        time.sleep(0.02)
    names = probes(up)
    assert len(names) >= 2, up.qnames()
    assert len(set(names)) == 1           # the same name each time
    first = next(t for t, n in seen if n >= 1)
    second = next(t for t, n in seen if n >= 2)
    assert 2.5 <= second - first <= 4.5, seen
    # Still up and answering.
    assert s.proc.poll() is None
    r = s.query("alive.test.", "A")
    assert r.answer[0][0].to_text() == "10.0.0.9"
    assert not any(l.startswith("[FATAL]") for l in s.log())


# ---- Corefile errors -------------------------------------------------

def test_arguments_refused(tmp_path):
    conf = tmp_path / "Corefile"
    conf.write_text(".:%d {\n    loop foo\n}\n" % free_port())
    out = run_candor("-conf", str(conf))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "plugin/loop: %s:2 - Error during parsing: Wrong argument count or "
        "unexpected line ending after 'foo'" % conf)


def test_once_per_block(tmp_path):
    conf = tmp_path / "Corefile"
    conf.write_text(".:%d {\n    loop\n    loop\n}\n" % free_port())
    out = run_candor("-conf", str(conf))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "plugin/loop: %s:3 - Error during parsing: this plugin can only be "
        "used once per Server Block" % conf)
