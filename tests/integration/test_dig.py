# SPDX-License-Identifier: MIT
"""candor dig against the real dig (BIND 9.18): the same query to the same
server must print the same thing (status, flags, counts, OPT and EDE lines,
records, warnings, failure messages) and exit with the same status; only
the banner, the ID, the query time and the date may differ.  Servers are
candor (forwarding to knotd, to a closed port, to scripted upstreams),
knotd itself and scripted upstreams, all on 127.0.0.0/8."""
import re
import shutil
import subprocess
import time

import dns.rrset
import pytest

import conftest
from conftest import CANDOR, SANITIZER_MARKS
from upstreams import closed_port

pytestmark = pytest.mark.skipif(shutil.which("dig") is None,
                                reason="dig is not installed (bind9-dnsutils)")

# Lines that differ between any two runs of dig itself.
VOLATILE = (re.compile(r"^; <<>> "), re.compile(r"^;; WHEN: "),
            re.compile(r"^;; Query time: "))


def run(argv, timeout=30):
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout)


def candor_dig(*args, timeout=30):
    p = run([CANDOR, "dig"] + list(args), timeout=timeout)
    assert not any(m in p.stderr for m in SANITIZER_MARKS), p.stderr
    return p


def real_dig(*args, timeout=30):
    return run(["dig"] + list(args), timeout=timeout)


def norm(out):
    """dig's output without the lines that differ from run to run."""
    lines = [l for l in out.splitlines()
             if not any(v.match(l) for v in VOLATILE)]
    return [re.sub(r"(status: \w+, id: )\d+", r"\1N",
                   re.sub(r"expected ID \d+, got \d+", "expected ID A, got B", l))
            for l in lines]


def parse(out):
    """The parts of dig's output that tests compare; every record line is
    read back with dnspython."""
    d = {"status": None, "flags": None, "counts": None, "edns": None,
         "ede": [], "sections": {}}
    section = None
    for line in out.splitlines():
        m = re.match(r";; ->>HEADER<<- opcode: (\w+), status: (\w+), id: \d+$",
                     line)
        if m:
            d["status"] = m.group(2)
            continue
        m = re.match(r";; flags:([^;]*);(?: MBZ: \S+;)? QUERY: (\d+), "
                     r"ANSWER: (\d+), AUTHORITY: (\d+), ADDITIONAL: (\d+)$", line)
        if m:
            d["flags"] = frozenset(m.group(1).split())
            d["counts"] = tuple(int(x) for x in m.groups()[1:])
            continue
        if line.startswith("; EDNS: "):
            d["edns"] = line
            continue
        if line.startswith("; EDE: "):
            d["ede"].append(line)
            continue
        m = re.match(r";; (QUESTION|ANSWER|AUTHORITY|ADDITIONAL) SECTION:$",
                     line)
        if m:
            section = m.group(1)
            d["sections"][section] = []
            continue
        if not line or section is None:
            section = None if not line else section
            continue
        if section == "QUESTION":
            name, cls, rdtype = line[1:].split()
            d["sections"][section].append((name.lower(), cls, rdtype))
            continue
        owner, ttl, cls, rdtype, rdata = line.split(None, 4)
        rrset = dns.rrset.from_text(owner, int(ttl), cls, rdtype, rdata)
        d["sections"][section].append(
            (owner.lower(), int(ttl), cls, rdtype, rrset[0].to_text()))
    for recs in d["sections"].values():
        recs.sort()
    return d


def compare(*args, same_text=True):
    """Run both with args; they must agree.  Returns candor dig's run."""
    want, got = real_dig(*args), candor_dig(*args)
    assert got.returncode == want.returncode, (want.stdout, got.stdout,
                                               got.stderr)
    assert parse(got.stdout) == parse(want.stdout), (want.stdout, got.stdout)
    if same_text:
        assert norm(got.stdout) == norm(want.stdout), (want.stdout,
                                                       got.stdout)
    return got


def at(addr, port):
    return ["@%s" % addr, "-p", str(port)]


def forward_to(candor, target):
    return candor(""".:@PORT@ {
    bind @ADDR@
    errors
    forward . %s
}
""" % target)


# ---- answers -----------------------------------------------------------

QUERIES = [
    ("www.example.test", "A"),
    ("www.example.test", "AAAA"),
    ("example.test", "MX"),
    ("example.test", "TXT"),
    ("example.test", "SOA"),
    ("example.test", "NS"),
    ("nope.example.test", "A"),       # NXDOMAIN, SOA in authority
    ("www.example.test", "MX"),       # NODATA
    ("big.example.test", "A"),        # 40 records
    ("WwW.Example.TEST", "A"),        # the name goes out as typed
]


@pytest.mark.parametrize("opts", [[], ["+tcp"], ["+dnssec"], ["+norec"],
                                  ["+cd"], ["+noedns"], ["+short"],
                                  ["+dnssec", "+tcp", "+cd", "+norec"]],
                         ids=lambda o: "".join(o) or "default")
def test_answers_through_candor(candor, knotd, opts):
    s = forward_to(candor, "%s:%d" % (knotd.addr, knotd.port))
    for name, rdtype in QUERIES:
        got = compare(*at(s.addr, s.port), name, rdtype, *opts)
        assert got.returncode == 0
        if "+short" not in opts:
            d = parse(got.stdout)
            assert d["status"] == ("NXDOMAIN" if name.startswith("nope")
                                   else "NOERROR")
            assert d["sections"]["QUESTION"] == [(name.lower() + ".", "IN",
                                                  rdtype)]
            assert (d["edns"] is None) == ("+noedns" in opts)
            if "+dnssec" in opts:
                assert "flags: do;" in d["edns"]
    # The record lines read back: a few spot checks of content.
    d = parse(candor_dig(*at(s.addr, s.port), "example.test", "MX").stdout)
    assert d["sections"]["ANSWER"] == [
        ("example.test.", 300, "IN", "MX", "10 mail.example.test.")]
    short = candor_dig(*at(s.addr, s.port), "www.example.test", "+short")
    assert short.stdout == "192.0.2.10\n"


def test_answers_from_knotd(knotd):
    """Straight from the authority (aa set, no ra: dig's WARNING line)."""
    for name, rdtype in QUERIES:
        for opts in ([], ["+tcp"], ["+short"]):
            compare(*at(knotd.addr, knotd.port), name, rdtype, *opts)
    got = compare(*at(knotd.addr, knotd.port), "www.example.test")
    assert ";; WARNING: recursion requested but not available" in got.stdout
    # dig 9.18 asks ANY over TCP
    got = compare(*at(knotd.addr, knotd.port), "example.test", "ANY")
    assert "(TCP)" in got.stdout
    # dig's argument order: TYPE and CLASS anywhere, -t, -q, -c
    compare(*at(knotd.addr, knotd.port), "TXT", "IN", "example.test")
    compare("-t", "MX", "-q", "example.test", "-c", "IN",
            *at(knotd.addr, knotd.port))
    compare("-p%d" % knotd.port, "example.test", "SOA", "@" + knotd.addr)


def test_dnssec_records(tmp_path, monkeypatch):
    """A zone knotd signs itself: DNSKEY, RRSIG, NSEC, CDS, CDNSKEY as dig
    prints them (base64 and hex cut into chunks of 56)."""
    monkeypatch.setattr(conftest, "KNOT_CONF",
                        conftest.KNOT_CONF + "    dnssec-signing: on\n")
    k = conftest.start_knotd(tmp_path / "signed")
    try:
        deadline = time.monotonic() + 15
        while not k.query("example.test.", "DNSKEY").answer:
            assert time.monotonic() < deadline, "knotd did not sign the zone"
            time.sleep(0.2)
        for name, rdtype in [("example.test", "DNSKEY"), ("example.test", "SOA"),
                             ("example.test", "CDS"), ("example.test", "CDNSKEY"),
                             ("nope.example.test", "A"),
                             ("www.example.test", "AAAA")]:
            for opts in (["+dnssec"], ["+dnssec", "+short"]):
                got = compare(*at(k.addr, k.port), name, rdtype, *opts)
        d = parse(compare(*at(k.addr, k.port), "example.test", "DNSKEY",
                          "+dnssec").stdout)
        assert {r[3] for r in d["sections"]["ANSWER"]} == {"DNSKEY", "RRSIG"}
        assert got.returncode == 0
    finally:
        k.stop()


def test_layout(knotd):
    """The whole layout, line by line, for one answer."""
    got = candor_dig(*at(knotd.addr, knotd.port), "www.example.test", "AAAA")
    lines = got.stdout.splitlines()
    assert lines[0] == ""
    assert re.match(r"; <<>> candor dig \S+ <<>> @%s -p %d www.example.test "
                    r"AAAA$" % (re.escape(knotd.addr), knotd.port), lines[1])
    assert lines[2:5] == ["; (1 server found)", ";; global options: +cmd",
                          ";; Got answer:"]
    assert re.match(r";; ->>HEADER<<- opcode: QUERY, status: NOERROR, "
                    r"id: \d+$", lines[5])
    assert lines[6:13] == [
        ";; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1",
        ";; WARNING: recursion requested but not available",
        "",
        ";; OPT PSEUDOSECTION:",
        "; EDNS: version: 0, flags:; udp: 1232",
        ";; QUESTION SECTION:",
        ";www.example.test.\t\tIN\tAAAA"]
    assert lines[13:17] == ["", ";; ANSWER SECTION:",
                            "www.example.test.\t300\tIN\tAAAA\t2001:db8::10",
                            ""]
    assert re.match(r";; Query time: \d+ msec$", lines[17])
    assert lines[18] == ";; SERVER: %s#%d(%s) (UDP)" % (
        knotd.addr, knotd.port, knotd.addr)
    assert re.match(r";; WHEN: \w{3} \w{3} \d\d \d\d:\d\d:\d\d \S+ \d{4}$",
                    lines[19])
    assert lines[20:] == [";; MSG SIZE  rcvd: 73", ""]


# ---- failures that are answers ----------------------------------------

def test_servfail_with_candors_ede(candor):
    """candor forwarding to a closed port: SERVFAIL with candor's EDE, shown
    by candor dig exactly as dig shows it."""
    s = forward_to(candor, "127.0.0.1:%d" % closed_port("127.0.0.1"))
    got = compare(*at(s.addr, s.port), "example.com", "+tries=1")
    d = parse(got.stdout)
    assert d["status"] == "SERVFAIL"
    assert len(d["ede"]) == 1
    assert re.match(r"; EDE: (22 \(No Reachable Authority\)|23 \(Network "
                    r"Error\)): \(forward: 127\.0\.0\.1:\d+ .*refused.*\)$",
                    d["ede"][0]), d["ede"]
    # +short: nothing at all, exit 0, as dig
    got = compare(*at(s.addr, s.port), "example.com", "+short", "+tries=1")
    assert got.stdout == ""
    # over TCP too
    compare(*at(s.addr, s.port), "example.com", "+tcp", "+tries=1")


def test_upstreams_ede_passed_through(candor, upstream):
    text = "signature expired for example.com"
    up = upstream("servfail", ede_code=6, ede_text=text)
    s = forward_to(candor, "%s:%d" % (up.addr, up.port))
    got = compare(*at(s.addr, s.port), "example.com", "+tries=1")
    # candor passes the code and text on, naming the upstream that said it
    ede = parse(got.stdout)["ede"]
    assert len(ede) == 1 and ede[0].startswith("; EDE: 6 (DNSSEC Bogus): (")
    assert "%s:%d" % (up.addr, up.port) in ede[0] and text + ")" in ede[0]
    # and straight from the upstream, with and without a text
    got = compare(*at(up.addr, up.port), "example.com", "+tries=1")
    assert parse(got.stdout)["ede"] == ["; EDE: 6 (DNSSEC Bogus): (%s)" % text]
    bare = upstream("servfail", ede_code=22)
    got = compare(*at(bare.addr, bare.port), "example.com", "+tries=1")
    assert parse(got.stdout)["ede"] == ["; EDE: 22 (No Reachable Authority)"]


def test_refused_rcode(upstream):
    up = upstream("refused")
    got = compare(*at(up.addr, up.port), "example.com", "+tries=1")
    assert parse(got.stdout)["status"] == "REFUSED"


def test_truncated_answer_retried_over_tcp(upstream):
    up = upstream("truncate", count=40)
    # the fake upstream's record order is random: compare parsed
    got = compare(*at(up.addr, up.port), "x.test", same_text=False)
    assert got.stdout.startswith(";; Truncated, retrying in TCP mode.\n")
    assert "(TCP)" in got.stdout
    assert len(parse(got.stdout)["sections"]["ANSWER"]) == 40
    # +ignore: the truncated answer as it is
    got = compare(*at(up.addr, up.port), "x.test", "+ignore")
    assert parse(got.stdout)["flags"] == {"qr", "tc", "rd", "ra"}


# ---- no answer ------------------------------------------------------------

@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_timeout(upstream, tcp):
    up = upstream("silent")
    opts = ["+tcp"] if tcp else []
    got = compare(*at(up.addr, up.port), "example.com", "+timeout=1",
                  "+tries=1", *opts)
    assert got.returncode == 9
    assert got.stdout.splitlines()[0] == (
        ";; communications error to %s#%d: timed out" % (up.addr, up.port))
    assert got.stdout.splitlines()[-1] == ";; no servers could be reached"


def test_timeout_counts_tries(upstream):
    up = upstream("silent")
    got = compare(*at(up.addr, up.port), "example.com", "+timeout=1",
                  "+tries=2")
    assert got.stdout.count("timed out") == 2


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_refused(tcp):
    port = closed_port("127.0.0.1")
    opts = ["+tcp"] if tcp else []
    got = compare(*at("127.0.0.1", port), "example.com", "+tries=2", *opts)
    assert got.returncode == 9
    if tcp:
        # refused in the set-up: dig's other wording, no banner
        assert got.stdout.splitlines()[:2] == [
            ";; Connection to 127.0.0.1#%d(127.0.0.1) for example.com "
            "failed: connection refused." % port,
            ";; no servers could be reached"]
    else:
        assert got.stdout.splitlines()[0] == (
            ";; communications error to 127.0.0.1#%d: connection refused"
            % port)


@pytest.mark.parametrize("mode,opts", [
    ("wrong_id", {}),
    ("wrong_question", {}),
    ("garbage", {"lengths": [300]}),   # random bytes: another ID
    ("garbage", {"lengths": [5]}),     # shorter than a header
], ids=["wrong_id", "wrong_question", "garbage", "short"])
def test_strangers_replies_are_dropped(upstream, mode, opts):
    """Replies with another ID or question, or garbage: dig's warnings, and
    the wait goes on until the timeout."""
    up = upstream(mode, **opts)
    got = compare(*at(up.addr, up.port), "example.com", "+timeout=1",
                  "+tries=1")
    assert got.returncode == 9
    assert got.stdout.startswith(";; ")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare")
def test_default_server_is_resolv_conf():
    """No @SERVER: the first nameserver of /etc/resolv.conf.  Run in a
    network namespace of our own with no interface up, so that nothing can
    leave: both fail in the set-up, naming the same server."""
    probe = run(["unshare", "-rn", "true"])
    if probe.returncode != 0:
        pytest.skip("no user network namespaces: %s" % probe.stderr.strip())
    args = ["example.com", "+timeout=1", "+tries=1"]
    want = run(["unshare", "-rn", "dig"] + args)
    got = run(["unshare", "-rn", CANDOR, "dig"] + args)
    assert got.returncode == want.returncode
    assert norm(got.stdout) == norm(want.stdout), (want.stdout, got.stdout)


# ---- the command line -----------------------------------------------------

@pytest.mark.parametrize("args", [
    ["+nosuchoption", "x.test"],
    ["-p", "abc", "x.test"],
    ["-p", "0", "x.test"],
    ["-p", "70000", "x.test"],
    ["-p"],
    ["-z", "x.test"],
    ["+timeout=soon", "x.test"],
    ["+tries=-1", "x.test"],
    ["+tcp=1", "x.test"],
    ["@", "x.test"],
    ["-t", "NOSUCHTYPE", "x.test"],
    ["one.test", "two.test"],
    ["x.test", "AXFR"],
], ids=lambda a: " ".join(a))
def test_usage_errors(args):
    got = candor_dig(*args, "@127.0.0.1", "-p", "9")
    assert got.returncode == 1, got.stdout
    assert got.stdout == ""
    assert got.stderr.startswith("candor dig: ")


def test_bad_names_and_help():
    for name in ("a..b", "a" * 64 + ".test"):
        got = candor_dig("@127.0.0.1", "-p", "9", name)
        assert got.returncode == 10
        assert "is not a legal name" in got.stderr
    got = candor_dig("-h")
    assert got.returncode == 0
    assert got.stdout.startswith("Usage: candor dig")
