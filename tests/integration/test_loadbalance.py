# SPDX-License-Identifier: MIT
"""loadbalance through the real binary: answers from hosts (8 A, 4 AAAA
for one name) and from knotd through forward (40 A), shuffled on every
query; everything but NOERROR A/AAAA/MX answers passed untouched; prefer;
weighted with its weight file and reload; Corefile errors."""
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from conftest import run_candor

QUERIES = 50
V4 = ["10.0.0.%d" % i for i in range(1, 9)]
V6 = ["2001:db8::%d" % i for i in range(1, 5)]
HOSTS = "".join("%s lb.example.org\n" % a for a in V4 + V6) + \
    "10.9.9.9 single.example.org\n"


def start_hosts(candor, tmp_path, lb="loadbalance", extra=""):
    """loadbalance in front of hosts (plugin.cfg puts it outside)."""
    workdir = tmp_path / "w"
    workdir.mkdir(exist_ok=True)
    (workdir / "hosts").write_text(HOSTS)
    corefile = """.:@PORT@ {
    bind @ADDR@
    hosts hosts
    %s
%s
}
""" % (lb, extra)
    return candor(corefile, workdir=workdir), workdir


def addrs(resp, rdtype="A"):
    t = dns.rdatatype.from_text(rdtype)
    return [r.to_text() for rrset in resp.answer if rrset.rdtype == t
            for r in rrset]


def records(resp):
    """Every record of every section, in order, as text."""
    out = []
    for name, section in (("an", resp.answer), ("ns", resp.authority),
                          ("ar", resp.additional)):
        for rrset in section:
            for r in rrset:
                out.append("%s %s %d %s %s" % (name, rrset.name, rrset.ttl,
                                               dns.rdatatype.to_text(rrset.rdtype),
                                               r.to_text()))
    return out


@pytest.mark.parametrize("tcp", [False, True])
def test_hosts_a_shuffled(candor, tmp_path, tcp):
    s, _ = start_hosts(candor, tmp_path)
    firsts, orders = set(), set()
    for _ in range(QUERIES):
        r = s.query("lb.example.org", "A", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR
        assert r.flags & dns.flags.AA
        got = addrs(r)
        assert sorted(got) == sorted(V4)       # all of them, every time
        assert len(r.answer) == 1               # one RRset: owner, TTL kept
        assert r.answer[0].name.to_text() == "lb.example.org."
        assert r.answer[0].ttl == 3600
        firsts.add(got[0])
        orders.add(tuple(got))
    # 50 uniform draws of 8: all equal has probability 8^-49
    assert len(firsts) >= 4, firsts
    assert len(orders) >= 40, len(orders)


def test_hosts_aaaa_shuffled(candor, tmp_path):
    s, _ = start_hosts(candor, tmp_path)
    orders = set()
    for _ in range(QUERIES):
        got = addrs(s.query("lb.example.org", "AAAA"), "AAAA")
        assert sorted(got) == sorted(V6)
        orders.add(tuple(got))
    assert len(orders) >= 10   # of 24


def test_hosts_untouched(candor, tmp_path):
    s, _ = start_hosts(candor, tmp_path)
    # a single address
    for _ in range(5):
        assert addrs(s.query("single.example.org", "A")) == ["10.9.9.9"]
    # NODATA (a known name, another type) passes as it is
    r = s.query("lb.example.org", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    # hosts' SERVFAIL for an unknown name keeps its EDE
    r = s.query("unknown.example.org", "A", use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert any(o.otype == 15 for o in r.options)
    # PTR: one record, another type
    r = s.query("1.0.0.10.in-addr.arpa", "PTR")
    assert [x.to_text() for x in r.answer[0]] == ["lb.example.org."]


def test_prefer(candor, tmp_path):
    lb = """loadbalance round_robin {
        prefer 10.0.0.7/32 10.0.0.0/30 2001:db8::4/128
    }"""
    s, _ = start_hosts(candor, tmp_path, lb)
    groups, rests = set(), set()
    for _ in range(QUERIES):
        got = addrs(s.query("lb.example.org", "A"))
        assert sorted(got) == sorted(V4)
        assert got[0] == "10.0.0.7"             # first network first
        assert sorted(got[1:4]) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        groups.add(tuple(got[1:4]))
        rests.add(tuple(got[4:]))
        got6 = addrs(s.query("lb.example.org", "AAAA"), "AAAA")
        assert got6[0] == "2001:db8::4"
    assert len(groups) >= 3     # each group is still shuffled
    assert len(rests) >= 8


def test_weighted(candor, tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "weights").write_text(
        "# lb.example.org: 10.0.0.3 most of the time\n"
        "lb.example.org\n10.0.0.3 255\n10.0.0.4 1\n")
    lb = """loadbalance weighted weights {
        reload 1s
    }"""
    s, _ = start_hosts(candor, tmp_path, lb)
    s.wait_log(lambda l: l == "[INFO] plugin/loadbalance: Successfully "
               "reloaded weight file weights")
    firsts = []
    for _ in range(QUERIES):
        got = addrs(s.query("lb.example.org", "A"))
        assert sorted(got) == sorted(V4)
        # only the first moves: it swapped places with 10.0.0.1
        want = list(V4)
        i = want.index(got[0])
        want[0], want[i] = want[i], want[0]
        assert got == want
        firsts.append(got[0])
    # 255 of 262: P(fewer than 40 of 50) is below 1e-9
    assert firsts.count("10.0.0.3") >= 40, firsts
    # the file changes: the reload picks 10.0.0.6 instead (at once: the
    # content is compared, not the mtime; the loop waits for the tick)
    (workdir / "weights").write_text("lb.example.org\n10.0.0.6 255\n")
    deadline = time.time() + 8
    while time.time() < deadline:
        got = [addrs(s.query("lb.example.org", "A"))[0] for _ in range(10)]
        if got.count("10.0.0.6") >= 8:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("weights not reloaded: %s" % got)
    # a broken file is logged and the last weights stay
    (workdir / "weights").write_text("lb.example.org\n10.0.0.6 0\n")
    s.wait_log(lambda l: l.startswith(
        "[ERROR] plugin/loadbalance: wrong weight value:\"0\" in weight file "
        "weights:2"), timeout=8)
    got = [addrs(s.query("lb.example.org", "A"))[0] for _ in range(10)]
    assert got.count("10.0.0.6") >= 8
    # addresses the file does not list weigh 1: a uniform first, the rest
    # in place
    firsts = set()
    for _ in range(QUERIES):
        got = addrs(s.query("lb.example.org", "AAAA"), "AAAA")
        want = list(V6)
        i = want.index(got[0])
        want[0], want[i] = want[i], want[0]
        assert got == want
        firsts.add(got[0])
    assert len(firsts) >= 3


def forward_corefile(knotd, lb="loadbalance", extra=""):
    return """.:@PORT@ {
    bind @ADDR@
    %s
    %s
    forward . %s:%d
}
""" % (lb, extra, knotd.addr, knotd.port)


@pytest.mark.parametrize("tcp", [False, True])
def test_forward_big_shuffled(candor, knotd, tcp):
    s = candor(forward_corefile(knotd))
    want = sorted(r.to_text() for r in knotd.query("big.example.test", "A",
                                                     tcp=True).answer[0])
    assert len(want) == 40
    firsts, orders = set(), set()
    for _ in range(QUERIES):
        r = s.query("big.example.test", "A", tcp=tcp, use_edns=0,
                    payload=4096)
        assert r.rcode() == dns.rcode.NOERROR
        assert not r.flags & dns.flags.TC
        assert len(r.answer) == 1 and r.answer[0].ttl == 300
        got = [x.to_text() for x in r.answer[0]]
        assert sorted(got) == want
        firsts.add(got[0])
        orders.add(tuple(got))
    assert len(firsts) >= 10, firsts
    assert len(orders) == QUERIES


def test_forward_untouched(candor, knotd):
    """NXDOMAIN, NODATA, a single A, TXT, SOA: exactly as knotd sent them."""
    s = candor(forward_corefile(knotd))
    for name, rdtype in (("nope.example.test", "A"),
                         ("www.example.test", "MX"),
                         ("www.example.test", "A"),
                         ("www.example.test", "TXT"),
                         ("example.test", "SOA"),
                         ("example.test", "NS"),
                         ("example.test", "MX")):
        direct = knotd.query(name, rdtype)
        for _ in range(5):
            r = s.query(name, rdtype, use_edns=0)
            assert r.rcode() == direct.rcode()
            assert records(r) == records(direct), (name, rdtype)


def test_cached_answers_shuffled(candor, knotd):
    """loadbalance sits outside cache: a cached answer comes out in a new
    order each time."""
    s = candor(forward_corefile(knotd, extra="cache 30"))
    orders = set()
    for _ in range(20):
        r = s.query("big.example.test", "A", use_edns=0, payload=4096)
        got = [x.to_text() for x in r.answer[0]]
        assert len(got) == 40
        orders.add(tuple(got))
    assert len(orders) == 20


@pytest.mark.parametrize("block,err", [
    ("loadbalance fleeb", "2 - Error during parsing: unknown policy: fleeb"),
    ("loadbalance round_robin {\n  reload 10s\n }",
     "3 - Error during parsing: unknown property 'reload'"),
    ("loadbalance weighted", "2 - Error during parsing: missing weight file "
     "argument"),
    ("loadbalance {\n  prefer 10.0.0.0/40\n }",
     "3 - Error during parsing: invalid CIDR \"10.0.0.0/40\": invalid CIDR "
     "address: 10.0.0.0/40"),
    ("loadbalance weighted nosuchfile {\n  reload 0s\n }",
     "2 - Error during parsing: weight file open error: nosuchfile: no such "
     "file or directory"),
])
def test_corefile_errors(tmp_path, block, err):
    conf = tmp_path / "Corefile"
    conf.write_text(". {\n %s\n whoami\n}\n" % block)
    out = run_candor("-conf", str(conf), "-validate", cwd=str(tmp_path))
    assert out.returncode == 1
    assert out.stderr.strip() == "plugin/loadbalance: %s:%s" % (conf, err)
