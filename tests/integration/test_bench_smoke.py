# SPDX-License-Identifier: MIT
"""The benchmark harness still works: bench/run --smoke goes through every
code path of a full run (knotd upstream, every server started, misses,
warming, fixed rate, latency, max, the report) for well under a second per
phase, with 1,000 names and one round.  It measures nothing: the test only
checks that every server answered and that a table was written (into a
temp dir, never bench/RESULTS.md).  The timed benchmark is `make bench`."""
import json
import os
import subprocess
import sys

from conftest import CANDOR, ROOT, _which

# Program -> Debian package: scripts/install-deps --test installs them.
NEEDED = {"dnsperf": "dnsperf", "knotd": "knot", "unbound": "unbound",
          "dnsdist": "dnsdist", "dnsmasq": "dnsmasq-base",
          "kresd": "knot-resolver", "taskset": "util-linux"}
SERVERS = ("echo", "candor", "candor-w2", "unbound", "dnsdist", "dnsmasq", "kresd")
CACHING = SERVERS[1:]


def test_bench_smoke(tmp_path):
    missing = ["%s (package %s)" % (p, pkg) for p, pkg in NEEDED.items()
               if not _which(p)]
    assert not missing, (
        "the benchmark smoke test needs %s: run scripts/install-deps --test" %
        ", ".join(missing))

    make = subprocess.run(["make", "-C", ROOT, "build/bench/echo"],
                          capture_output=True, text=True, timeout=120)
    assert make.returncode == 0, make.stdout + make.stderr

    out, js = tmp_path / "RESULTS.md", tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run"), "--smoke",
         "--require-all", "--candor", CANDOR, "--out", str(out),
         "--json", str(js)],
        capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, "bench/run --smoke exited %d:\n%s" % (
        run.returncode, run.stderr[-4000:])

    data = json.loads(js.read_text())
    assert data["status"] == {}, data["status"]
    for key in SERVERS:
        rounds = data["results"].get(key)
        assert rounds, "%s was not measured" % key
        for r in rounds:
            assert isinstance(r, dict), "%s failed: %s" % (key, r)
            # It answered cache hits at the fixed rate, the latency run and
            # the max run ...
            assert r["fixed_noerror"] > 0, (key, r)
            assert r["hit_noerror"] > 0, (key, r)
            assert r["lat_n"] > 0, (key, r)
            assert r["idle_rss"] > 0, (key, r)
            # ... and a forwarder forwarded its misses to knotd.
            if key in CACHING:
                assert r["miss_noerror"] > 0, (key, r)
                assert r["cached_rss"] > 0, (key, r)

    text = out.read_text()
    assert text.startswith("# candor benchmark results (smoke run")
    table = [l for l in text.splitlines() if l.startswith("| ")]
    assert table[0].startswith("| server | cache-hit answers per server CPU-second")
    for label in ("echo (ceiling)", "candor -workers 1", "candor -workers 2",
                  "Unbound", "dnsdist (packet cache)", "dnsmasq", "Knot Resolver"):
        assert any(l.startswith("| %s |" % label) for l in table), label


def test_bench_pair_smoke(tmp_path):
    """bench/run --pair: two builds side by side (here the same one twice),
    each round measured on both; the report has every round's ratio."""
    out, js = tmp_path / "PAIR.md", tmp_path / "pair.json"
    run = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "run"), "--smoke",
         "--candor", CANDOR, "--pair", CANDOR, "--out", str(out),
         "--json", str(js)],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, "bench/run --pair exited %d:\n%s" % (
        run.returncode, run.stderr[-4000:])
    rounds = json.loads(js.read_text())["rounds"]
    assert len(rounds) == 2
    for r in rounds:
        assert r["A_noerror"] > 0 and r["B_noerror"] > 0, r
        assert r["ratio"] > 0, r
    text = out.read_text()
    assert text.startswith("# candor A/B, paired, smoke run")
    assert text == run.stdout
    assert "| 2 |" in text and "B/A: median" in text
