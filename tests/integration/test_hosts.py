# SPDX-License-Identifier: MIT
"""The hosts plugin through the real binary: A, AAAA and PTR from a hosts
file and inline entries, NODATA, the SERVFAIL with its cause, fallthrough
to whoami, ttl, no_reverse, reload, wildcards, truncation, UDP and TCP."""
import os
import time

import dns.edns
import dns.flags
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from conftest import free_port, metric, run_candor, scrape

HOSTS = """# a test hosts file
10.0.0.1    example.org www.example.org
10.0.0.2    example.org     # a second address
2001:db8::1 example.org
2001:db8::7 v6only.example.org
fe80::1%lo  link.example.org
10.1.1.1    *.wild.example.org
"""


def ede_of(resp):
    return [(o.code, o.text) for o in resp.options
            if isinstance(o, dns.edns.EDEOption)]


def answers(resp, rdtype):
    out = []
    for rrset in resp.answer:
        if rrset.rdtype == dns.rdatatype.from_text(rdtype):
            out.extend(r.to_text() for r in rrset)
    return out


def ttls(resp):
    return {rrset.ttl for rrset in resp.answer}


def start(candor, tmp_path, block, hosts=HOSTS, plugins="", name="hosts"):
    """A server whose working directory holds the hosts file `name`."""
    workdir = tmp_path / "w"
    workdir.mkdir(exist_ok=True)
    if hosts is not None:
        (workdir / name).write_text(hosts)
    corefile = ".:@PORT@ {\n    bind @ADDR@\n%s\n%s\n}\n" % (block, plugins)
    return candor(corefile, workdir=workdir), workdir


@pytest.mark.parametrize("tcp", [False, True])
def test_file_a_aaaa_ptr(candor, tmp_path, tcp):
    s, _ = start(candor, tmp_path, "    hosts hosts")
    r = s.query("example.org", "A", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert answers(r, "A") == ["10.0.0.1", "10.0.0.2"]
    assert ttls(r) == {3600}
    r = s.query("example.org", "AAAA", tcp=tcp)
    assert answers(r, "AAAA") == ["2001:db8::1"]
    assert r.flags & dns.flags.AA
    r = s.query("link.example.org", "AAAA", tcp=tcp)
    assert answers(r, "AAAA") == ["fe80::1"]

    r = s.query(dns.reversename.from_address("10.0.0.1"), "PTR", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert answers(r, "PTR") == ["example.org.", "www.example.org."]
    assert ttls(r) == {3600}
    r = s.query(dns.reversename.from_address("2001:db8::1"), "PTR", tcp=tcp)
    assert answers(r, "PTR") == ["example.org."]


def test_inline_entries(candor, tmp_path):
    block = """    hosts missing.hosts {
        10.0.0.5 inline.example.org Other.Example.ORG
        2001:db8::5 inline.example.org
    }"""
    s, _ = start(candor, tmp_path, block, hosts=None)
    for tcp in (False, True):
        r = s.query("inline.example.org", "A", tcp=tcp)
        assert answers(r, "A") == ["10.0.0.5"]
        r = s.query("inline.example.org", "AAAA", tcp=tcp)
        assert answers(r, "AAAA") == ["2001:db8::5"]
        r = s.query(dns.reversename.from_address("10.0.0.5"), "PTR", tcp=tcp)
        assert answers(r, "PTR") == ["inline.example.org.",
                                     "other.example.org."]
        r = s.query(dns.reversename.from_address("2001:db8::5"), "PTR",
                    tcp=tcp)
        assert answers(r, "PTR") == ["inline.example.org."]
    s.wait_log(lambda l: l.startswith(
        "[WARNING] plugin/hosts: File does not exist: missing.hosts"))


def test_file_and_inline_merge(candor, tmp_path):
    block = """    hosts hosts {
        10.0.0.9 example.org
    }"""
    s, _ = start(candor, tmp_path, block)
    r = s.query("example.org", "A")
    assert answers(r, "A") == ["10.0.0.1", "10.0.0.2", "10.0.0.9"]


def test_case_insensitive(candor, tmp_path):
    s, _ = start(candor, tmp_path, "    hosts hosts")
    for name in ("ExAmPlE.OrG", "EXAMPLE.ORG.", "WWW.example.org"):
        r = s.query(name, "A")
        assert r.rcode() == dns.rcode.NOERROR
        assert "10.0.0.1" in answers(r, "A")
    r = s.query("1.0.0.10.IN-ADDR.ARPA", "PTR")
    assert answers(r, "PTR") == ["example.org.", "www.example.org."]


@pytest.mark.parametrize("tcp", [False, True])
def test_nodata_for_known_name(candor, tmp_path, tcp):
    s, _ = start(candor, tmp_path, "    hosts hosts")
    for name, rdtype in (("example.org", "MX"), ("example.org", "TXT"),
                         ("v6only.example.org", "A"),
                         ("www.example.org", "AAAA")):
        r = s.query(name, rdtype, tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR, (name, rdtype)
        assert r.flags & dns.flags.AA
        assert r.answer == []
        assert r.authority == []  # no SOA: there is none to give
        assert ede_of(r) == []


@pytest.mark.parametrize("tcp", [False, True])
def test_unknown_name_servfail_with_cause(candor, tmp_path, tcp):
    s, _ = start(candor, tmp_path, "    hosts hosts", plugins="    errors")
    r = s.query("nope.example.org", "A", tcp=tcp, use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL
    ede = ede_of(r)
    assert len(ede) == 1
    code, text = ede[0]
    assert code == 0
    assert "nope.example.org." in text
    assert "is not in hosts" in text
    assert "fallthrough" in text
    s.wait_log(lambda l: l.startswith("[ERROR] plugin/errors: 2 "
                                      "nope.example.org. A: ")
               and "nope.example.org. is not in hosts" in l)
    # Without EDNS the client gets the bare rcode.
    r = s.query("nope.example.org", "AAAA", tcp=tcp)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert r.edns < 0


def test_unreadable_file_named_in_cause(candor, tmp_path):
    s, _ = start(candor, tmp_path, "    hosts gone.hosts", hosts=None)
    r = s.query("nope.example.org", "A", use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL
    (code, text), = ede_of(r)
    assert "gone.hosts" in text and "no such file or directory" in text


def test_fallthrough_to_next_plugin(candor, tmp_path):
    block = """    hosts hosts {
        fallthrough
    }"""
    s, _ = start(candor, tmp_path, block, plugins="    whoami")
    # known: hosts answers
    r = s.query("example.org", "A")
    assert answers(r, "A") == ["10.0.0.1", "10.0.0.2"]
    # known name, other type: still NODATA from hosts, not whoami
    r = s.query("example.org", "MX")
    assert r.answer == [] and r.additional == []
    # unknown: whoami answers (its records are in the additional section)
    for tcp in (False, True):
        r = s.query("nope.example.org", "A", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR
        assert r.answer == []
        types = {rr.rdtype for rr in r.additional}
        assert dns.rdatatype.SRV in types


def test_fallthrough_limited_to_zones(candor, tmp_path):
    block = """    hosts hosts {
        fallthrough sub.example.org
    }"""
    s, _ = start(candor, tmp_path, block, plugins="    whoami")
    r = s.query("x.sub.example.org", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert any(rr.rdtype == dns.rdatatype.SRV for rr in r.additional)
    r = s.query("other.example.org", "A", use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert ede_of(r)[0][0] == 0


def test_names_outside_zones_go_next(candor, tmp_path):
    s, _ = start(candor, tmp_path, "    hosts hosts example.org",
                 hosts=HOSTS + "10.0.0.3 outside.example.net\n",
                 plugins="    whoami")
    r = s.query("outside.example.net", "A")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer == []  # whoami, not hosts: the name is not served
    assert any(rr.rdtype == dns.rdatatype.SRV for rr in r.additional)
    r = s.query("example.org", "A")
    assert answers(r, "A") == ["10.0.0.1", "10.0.0.2"]
    # PTR is answered even though in-addr.arpa is not among the zones
    r = s.query(dns.reversename.from_address("10.0.0.2"), "PTR")
    assert answers(r, "PTR") == ["example.org."]
    r = s.query(dns.reversename.from_address("10.0.0.3"), "PTR")
    assert answers(r, "PTR") == []


def test_unknown_ptr_goes_next(candor, tmp_path):
    s, _ = start(candor, tmp_path, "    hosts hosts", plugins="    whoami")
    r = s.query(dns.reversename.from_address("10.9.9.9"), "PTR")
    assert r.rcode() == dns.rcode.NOERROR
    assert any(rr.rdtype == dns.rdatatype.SRV for rr in r.additional)
    # a PTR query for a forward name is no reverse name: next as well
    r = s.query("example.org", "PTR")
    assert any(rr.rdtype == dns.rdatatype.SRV for rr in r.additional)


def test_unknown_ptr_without_next_plugin(candor, tmp_path):
    s, _ = start(candor, tmp_path, "    hosts hosts")
    r = s.query(dns.reversename.from_address("10.9.9.9"), "PTR", use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL
    assert "no next plugin found" in ede_of(r)[0][1]


def test_ttl(candor, tmp_path):
    block = """    hosts hosts {
        ttl 60
    }"""
    s, _ = start(candor, tmp_path, block)
    assert ttls(s.query("example.org", "A")) == {60}
    assert ttls(s.query("example.org", "AAAA", tcp=True)) == {60}
    assert ttls(s.query(dns.reversename.from_address("10.0.0.1"),
                        "PTR")) == {60}


def test_no_reverse(candor, tmp_path):
    block = """    hosts hosts {
        no_reverse
    }"""
    s, _ = start(candor, tmp_path, block, plugins="    whoami")
    assert answers(s.query("example.org", "A"), "A") == ["10.0.0.1",
                                                         "10.0.0.2"]
    r = s.query(dns.reversename.from_address("10.0.0.1"), "PTR")
    assert answers(r, "PTR") == []
    assert any(rr.rdtype == dns.rdatatype.SRV for rr in r.additional)


def test_wildcard_matches_one_label(candor, tmp_path):
    s, _ = start(candor, tmp_path, "    hosts hosts")
    r = s.query("a.wild.example.org", "A")
    assert answers(r, "A") == ["10.1.1.1"]
    assert r.answer[0].name.to_text() == "a.wild.example.org."
    for name in ("wild.example.org", "a.b.wild.example.org"):
        assert s.query(name, "A").rcode() == dns.rcode.SERVFAIL
    r = s.query(dns.reversename.from_address("10.1.1.1"), "PTR",
                use_edns=0)
    assert r.rcode() == dns.rcode.SERVFAIL  # no PTR for wildcards


def test_reload(candor, tmp_path):
    block = """    hosts hosts {
        10.0.0.9 inline.example.org
        reload 1s
    }"""
    s, workdir = start(candor, tmp_path, block)
    assert answers(s.query("www.example.org", "A"), "A") == ["10.0.0.1"]
    (workdir / "hosts").write_text(
        "10.0.0.42 www.example.org new.example.org\n")
    deadline = time.time() + 5
    got = None
    while time.time() < deadline:
        got = answers(s.query("www.example.org", "A"), "A")
        if got == ["10.0.0.42"]:
            break
        time.sleep(0.2)
    assert got == ["10.0.0.42"]
    assert answers(s.query("new.example.org", "A", tcp=True),
                   "A") == ["10.0.0.42"]
    assert answers(s.query("inline.example.org", "A"), "A") == ["10.0.0.9"]
    # gone from the file: now unknown
    assert s.query("example.org", "A").rcode() == dns.rcode.SERVFAIL
    # the file removed: the last version keeps being served
    os.unlink(workdir / "hosts")
    # ordering sleep: no event to wait on (NEEDS: hosts to show its reload
    # ticks, e.g. a stats counter of checks or a debug line when the file
    # is missing); 1.5 s holds at least one 1 s tick with the file gone
    time.sleep(1.5)
    assert answers(s.query("new.example.org", "A"), "A") == ["10.0.0.42"]


def test_metrics(candor, tmp_path):
    """coredns_hosts_entries counts as CoreDNS's Map.Len(): a name and
    address pair each way (A or AAAA, and PTR), inline entries included;
    coredns_hosts_reload_timestamp_seconds is the file's mtime.  Both
    follow a reload."""
    port = free_port()
    block = """    prometheus 127.0.0.1:%d
    hosts hosts {
        10.0.0.9 inline.example.org
        reload 1s
    }""" % port
    s, workdir = start(candor, tmp_path, block,
                       hosts="10.0.0.42 www.example.org new.example.org\n")
    path = workdir / "hosts"
    text = scrape(port)
    assert metric(text, "coredns_hosts_entries") == 2 * 2 + 2
    assert metric(text, "coredns_hosts_reload_timestamp_seconds") == \
        int(os.stat(path).st_mtime)
    assert "# TYPE coredns_hosts_entries gauge" in text

    path.write_text("10.0.0.42 www.example.org new.example.org\n"
                    "2001:db8::5 six.example.org\n")
    mtime = time.time() - 3600  # a stamp the first one cannot have
    os.utime(path, (mtime, mtime))
    deadline = time.time() + 5
    while time.time() < deadline:
        text = scrape(port)
        if metric(text, "coredns_hosts_entries") == 3 * 2 + 2:
            break
        time.sleep(0.2)
    assert metric(text, "coredns_hosts_entries") == 3 * 2 + 2
    assert metric(text, "coredns_hosts_reload_timestamp_seconds") == \
        int(mtime)
    assert s.query("six.example.org", "AAAA").rcode() == dns.rcode.NOERROR


def test_reload_zero_disables(candor, tmp_path):
    block = """    hosts hosts {
        reload 0
    }"""
    s, workdir = start(candor, tmp_path, block)
    (workdir / "hosts").write_text("10.0.0.42 www.example.org\n")
    time.sleep(1.5)  # negative check: no reload timer, nothing may change
    assert answers(s.query("www.example.org", "A"), "A") == ["10.0.0.1"]


def test_many_addresses_truncate_over_udp(candor, tmp_path):
    lines = "".join("10.2.%d.%d big.example.org\n" % (i // 200, i % 200 + 1)
                    for i in range(50))
    s, _ = start(candor, tmp_path, "    hosts hosts", hosts=lines)
    r = s.query("big.example.org", "A")  # no EDNS: 512 bytes
    assert r.flags & dns.flags.TC
    assert len(answers(r, "A")) < 50
    r = s.query("big.example.org", "A", tcp=True)
    assert not r.flags & dns.flags.TC
    assert len(answers(r, "A")) == 50
    assert answers(r, "A")[:2] == ["10.2.0.1", "10.2.0.2"]
    r = s.query("big.example.org", "A", use_edns=0, payload=4096)
    assert not r.flags & dns.flags.TC
    assert len(answers(r, "A")) == 50


def test_dig_output(candor, tmp_path):
    s, _ = start(candor, tmp_path, "    hosts hosts")
    out = s.dig("example.org", "A")
    assert "status: NOERROR" in out
    assert "flags: qr aa rd;" in out
    assert "ANSWER: 2," in out
    lines = [l.split() for l in out.splitlines()
             if l and not l.startswith(";")]
    assert ["example.org.", "3600", "IN", "A", "10.0.0.1"] in lines
    assert ["example.org.", "3600", "IN", "A", "10.0.0.2"] in lines
    out = s.dig("-x", "10.0.0.1")
    assert "www.example.org." in out
    out = s.dig("nope.example.org", "A")
    assert "status: SERVFAIL" in out
    assert "EDE: 0 (Other)" in out and "nope.example.org." in out


def test_config_errors(tmp_path):
    cases = [
        ("ttl 0", "Error during parsing: ttl provided is invalid"),
        ("ttl x", "Error during parsing: ttl needs a number of second"),
        ("reload", "Error during parsing: reload needs a duration (zero "
                   "seconds to disable)"),
        ("reload -1s", "invalid negative duration for reload '-1s'"),
        ("fallthrough\n        bogus", "unknown property 'bogus'"),
    ]
    for body, want in cases:
        conf = tmp_path / "Corefile"
        conf.write_text(".:5300 {\n    hosts {\n        %s\n    }\n}\n"
                        % body)
        out = run_candor("-conf", str(conf), "-validate")
        assert out.returncode == 1, body
        assert "plugin/hosts: %s:" % conf in out.stderr
        assert want in out.stderr, (body, out.stderr)
