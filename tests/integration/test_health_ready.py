# SPDX-License-Identifier: MIT
"""health and ready through the real binary: /health and /ready over
HTTP, the health self-probe's metrics, lameduck on SIGTERM (DNS and
/health still served, /ready gone, exit 0 afterwards), Corefile errors
with their file:line, and several blocks on several addresses.
Plugins used: health, ready, whoami, erratic, prometheus, bind."""
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import dns.rcode
import pytest

from conftest import free_port, metric, run_candor, scrape

# Never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(port, path, addr="127.0.0.1", timeout=3):
    """(status, body, content type) of GET http://addr:port/path, or None
    when the connection is refused."""
    url = "http://%s:%d%s" % (addr, port, path)
    try:
        with _OPENER.open(url, timeout=timeout) as r:
            return r.status, r.read().decode(), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers["Content-Type"]
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            return None
        raise


def status(port, path):
    r = get(port, path)
    return None if r is None else r[:2]


def wait_for(pred, timeout=5, step=0.05):
    """Poll pred() until it is true, at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def answered(s, name="probe.example."):
    return s.query(name, "A", timeout=2).rcode() == dns.rcode.NOERROR


# ---- /health -------------------------------------------------------------

def test_health_ok_and_probe_metrics(candor):
    hp, mp = free_port(), free_port()
    s = candor(""".:@PORT@ {
    bind @ADDR@
    whoami
    health 127.0.0.1:%d
    prometheus 127.0.0.1:%d
}
""" % (hp, mp))
    code, body, ctype = get(hp, "/health")
    assert (code, body) == (200, "OK")
    assert ctype.startswith("text/plain")
    assert get(hp, "/nothing")[0] == 404
    assert get(hp, "/ready")[0] == 404
    # the self-probe every second, counted as CoreDNS does
    assert wait_for(lambda: (metric(scrape(mp),
                                    "coredns_health_request_duration_seconds_count")
                             or 0) >= 2, timeout=5)
    text = scrape(mp)
    assert metric(text, "coredns_health_request_failures_total") == 0
    assert metric(text, "coredns_health_request_duration_seconds_bucket",
                  le="0.00025") is not None
    assert metric(text, "coredns_health_request_duration_seconds_bucket",
                  le="2.5") >= 2
    assert not any("plugin/health" in l for l in s.log())


def test_health_and_ready_in_several_blocks(candor):
    h1, h2, r1 = free_port(), free_port(), free_port()
    s = candor("""a.example.:@PORT@ {
    bind @ADDR@
    whoami
    health 127.0.0.1:%d
    ready 127.0.0.1:%d
}
b.example.:@PORT@ {
    bind @ADDR@
    whoami
    health 127.0.0.1:%d
    ready 127.0.0.1:%d
}
c.example.:@PORT@ {
    bind @ADDR@
    whoami
    health 127.0.0.1:%d
}
""" % (h1, r1, h2, r1, h1))
    assert status(h1, "/health") == (200, "OK")
    assert status(h2, "/health") == (200, "OK")
    assert status(r1, "/ready") == (200, "OK")
    assert answered(s, "x.b.example.")
    # SIGTERM without lameduck: both blocks' /ready let go, and it stops
    s.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0


def test_health_and_ready_on_one_address(candor):
    p = free_port()
    candor(""".:@PORT@ {
    bind @ADDR@
    whoami
    health 127.0.0.1:%d
    ready 127.0.0.1:%d
}
""" % (p, p))
    assert status(p, "/health") == (200, "OK")
    assert status(p, "/ready") == (200, "OK")


def test_health_port_in_use(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        conf = tmp_path / "Corefile"
        conf.write_text(".:%d {\n bind 127.0.0.1\n whoami\n health "
                        "127.0.0.1:%d\n}\n" % (free_port(), port))
        out = run_candor("-conf", str(conf))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "plugin/health: %s:4 - Error during parsing: listen tcp "
        "127.0.0.1:%d: bind: address already in use" % (conf, port))


# ---- /ready --------------------------------------------------------------

def test_ready_ok_without_plugins_that_wait(candor):
    rp = free_port()
    s = candor(""".:@PORT@ {
    bind @ADDR@
    whoami
    ready 127.0.0.1:%d {
        monitor continuously
    }
}
""" % rp)
    for _ in range(3):
        assert status(rp, "/ready") == (200, "OK")
    assert not any("plugin/ready" in l for l in s.log())


ERRATIC = """.:@PORT@ {
    bind @ADDR@
    erratic {
        drop 0
    }
    ready 127.0.0.1:%d%s
}
"""


def test_ready_lists_erratic_until_ready(candor):
    rp = free_port()
    s = candor(ERRATIC % (rp, ""))
    assert status(rp, "/ready") == (503, "erratic")
    s.wait_log(lambda l: l == '[INFO] plugin/ready: Plugins not ready: '
                             '"erratic"')
    for i in range(3):
        assert answered(s, "q%d.example." % i)
    assert status(rp, "/ready") == (200, "OK")
    # until-ready: not asked again once it said ready
    for i in range(3):
        assert answered(s, "r%d.example." % i)
    assert status(rp, "/ready") == (200, "OK")


def test_ready_continuously_asks_again(candor):
    rp = free_port()
    s = candor(ERRATIC % (rp, " {\n        monitor continuously\n    }"))
    assert status(rp, "/ready") == (503, "erratic")
    for i in range(3):
        assert answered(s, "q%d.example." % i)
    assert status(rp, "/ready") == (200, "OK")
    for i in range(2):
        assert answered(s, "r%d.example." % i)
    assert status(rp, "/ready") == (503, "erratic")


# ---- lameduck ------------------------------------------------------------

LAMEDUCK = """.:@PORT@ {
    bind @ADDR@
    whoami
    health 127.0.0.1:%d {
        lameduck 2s
    }
    ready 127.0.0.1:%d
}
"""


def test_lameduck_keeps_serving_dns_and_health(candor):
    hp, rp = free_port(), free_port()
    s = candor(LAMEDUCK % (hp, rp))
    assert status(hp, "/health") == (200, "OK")
    t0 = time.monotonic()
    s.send_signal(signal.SIGTERM)
    s.wait_log(lambda l: l == "[INFO] plugin/health: Going into lameduck "
                              "mode for 2s")
    for i in range(5):
        assert s.proc.poll() is None
        assert status(hp, "/health") == (200, "OK")
        assert answered(s, "lame%d.example." % i)
        time.sleep(0.2)  # pacing: the checks spread over the lameduck
    assert time.monotonic() - t0 < 1.9
    rc = s.proc.wait(timeout=10)
    took = time.monotonic() - t0
    assert rc == 0
    assert 1.9 <= took <= 2 + 5 + 1, took
    assert status(hp, "/health") is None


def test_lameduck_takes_ready_down_and_logs(candor):
    hp, rp = free_port(), free_port()
    s = candor(LAMEDUCK % (hp, rp))
    assert status(rp, "/ready") == (200, "OK")
    s.send_signal(signal.SIGTERM)
    s.wait_log(lambda l: l == "[INFO] plugin/health: Going into lameduck "
                              "mode for 2s", timeout=1)
    assert s.proc.poll() is None
    assert status(rp, "/ready") is None
    assert status(hp, "/health") == (200, "OK")
    assert answered(s)
    assert s.proc.wait(timeout=10) == 0


def test_lameduck_fractional_and_sigint(candor):
    hp = free_port()
    s = candor(""".:@PORT@ {
    bind @ADDR@
    whoami
    health 127.0.0.1:%d {
        lameduck 1500ms
    }
}
""" % hp)
    t0 = time.monotonic()
    s.send_signal(signal.SIGINT)
    s.wait_log(lambda l: l == "[INFO] plugin/health: Going into lameduck "
                              "mode for 1.5s")
    assert status(hp, "/health") == (200, "OK")
    assert answered(s)
    assert s.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 >= 1.4


# ---- Corefile errors -----------------------------------------------------

BAD = [
    ("health {\n        lamedudk 4\n    }",
     "plugin/health: %s:4 - Error during parsing: unknown property "
     "'lamedudk'"),
    ("health {\n        lameduck 5\n    }",
     "plugin/health: %s:4 - Error during parsing: unable to parse lameduck "
     "duration value: \"5\": time: missing unit in duration \"5\""),
    ("health {\n        lameduck\n    }",
     "plugin/health: %s:4 - Error during parsing: Wrong argument count or "
     "unexpected line ending after 'lameduck'"),
    ("health bla",
     "plugin/health: %s:3 - Error during parsing: address bla: missing port "
     "in address"),
    ("health :1 :2",
     "plugin/health: %s:3 - Error during parsing: Wrong argument count or "
     "unexpected line ending after ':2'"),
    ("ready {\n        monitor sometimes\n    }",
     "plugin/ready: %s:4 - Error during parsing: monitor type 'sometimes' "
     "not supported"),
    ("ready {\n        sometimes\n    }",
     "plugin/ready: %s:4 - Error during parsing: unknown property "
     "'sometimes'"),
    ("ready ::1:8181",
     "plugin/ready: %s:3 - Error during parsing: address ::1:8181: too many "
     "colons in address"),
    ("ready\n    ready :8182",
     "plugin/ready: %s:4 - Error during parsing: this plugin can only be "
     "used once per Server Block"),
]


@pytest.mark.parametrize("line,want", BAD, ids=[b[0].split("\n")[0] + str(i)
                                                 for i, b in enumerate(BAD)])
def test_bad_syntax_exits_1_with_line(tmp_path, line, want):
    conf = tmp_path / "Corefile"
    conf.write_text(".:%d {\n    whoami\n    %s\n}\n" % (free_port(), line))
    out = run_candor("-conf", str(conf))
    assert out.returncode == 1
    assert out.stderr.strip() == want % conf



# ---- reload ----------------------------------------------------------------

RELOAD = """.:@PORT@ {
    bind @ADDR@
    whoami
    health 127.0.0.1:%d%s
    ready 127.0.0.1:%d
}
"""


def _reload(s, text, n):
    """Write the Corefile, SIGUSR1, wait for the n-th "Reloading complete"."""
    with open(s.conf, "w") as f:
        f.write(s.subst(text))
    s.send_signal(signal.SIGUSR1)
    assert wait_for(lambda: sum(l == "[INFO] Reloading complete"
                                for l in s.log()) >= n, timeout=5), \
        "\n".join(["no reload %d in 5 s; log:" % n] + s.log() + s.err)


def test_reload_keeps_endpoints_up_and_moves_them(candor):
    h1, r1, h2, r2 = free_port(), free_port(), free_port(), free_port()
    s = candor(RELOAD % (h1, "", r1))
    assert status(h1, "/health") == (200, "OK")
    assert status(r1, "/ready") == (200, "OK")

    # Same addresses: the new snapshot registers before the old lets go,
    # so no request in between fails.
    bad = []
    rounds = [0]
    stop = time.monotonic() + 1.5

    def poll():
        while time.monotonic() < stop:
            for port, path in ((h1, "/health"), (r1, "/ready")):
                got = status(port, path)
                if got != (200, "OK"):
                    bad.append((path, got))
            rounds[0] += 1
            time.sleep(0.005)  # pacing between rounds of GETs

    t = threading.Thread(target=poll)
    t.start()
    assert wait_for(lambda: rounds[0] >= 1)  # the poller is polling
    _reload(s, RELOAD % (h1, " {\n        lameduck 1s\n    }", r1), 1)
    t.join()
    assert bad == []

    # Other addresses: the new ones serve, the old ones are closed.
    _reload(s, RELOAD % (h2, " {\n        lameduck 1s\n    }", r2), 2)
    assert status(h2, "/health") == (200, "OK")
    assert status(r2, "/ready") == (200, "OK")
    assert status(h1, "/health") is None
    assert status(r1, "/ready") is None

    # The lameduck is the serving snapshot's.
    s.send_signal(signal.SIGTERM)
    s.wait_log(lambda l: l == "[INFO] plugin/health: Going into lameduck "
                              "mode for 1s", timeout=2)
    assert status(r2, "/ready") is None
    assert status(h2, "/health") == (200, "OK")
    assert s.proc.wait(timeout=10) == 0


def test_reload_failing_on_a_taken_port_keeps_the_old(candor):
    h1, r1 = free_port(), free_port()
    s = candor(RELOAD % (h1, "", r1))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with open(s.conf, "w") as f:
            f.write(s.subst(RELOAD % (h1, "", port)))
        s.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: any("address already in use" in l
                                    for l in s.log()), timeout=5), s.log()
    assert status(h1, "/health") == (200, "OK")
    assert status(r1, "/ready") == (200, "OK")
    assert answered(s)
