# SPDX-License-Identifier: MIT
"""The worker count: without -workers, one worker per CPU the process can
use (its affinity mask, lowered to its cgroup's CPU limit); with more
workers than that, a warning that says why and how to fix it, and the
workers beyond the usable CPUs share the UDP sockets of the others.

Workers are counted by their thread names (candor-w0, candor-w1, ...).
The cgroup tests make a cgroup of their own (v1 cpu controller or v2
cpu.max, whichever the machine has) and need root."""
import os
import signal
import socket
import struct
import time

import pytest

from conftest import free_port

BASIC = """\
.:@PORT@ {
    bind @ADDR@
    whoami
}
"""

WARNING = "[WARNING] -workers 2, but this process can use 1 CPU "


def workers(s):
    task = "/proc/%d/task" % s.proc.pid
    names = []
    for tid in os.listdir(task):
        with open(os.path.join(task, tid, "comm")) as f:
            names.append(f.read().strip())
    return sorted(n for n in names if n.startswith("candor-w"))


def udp_sockets(s):
    """The UDP sockets bound to the server's address and port, by inode."""
    want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(s.addr))[0],
                          s.port)
    with open("/proc/net/udp") as f:
        return sorted(l.split()[9] for l in f if l.split()[1] == want)


def pinned(cpus, then=None):
    """A preexec_fn that pins the child to cpus, then runs then()."""
    def setup():
        os.sched_setaffinity(0, cpus)
        if then is not None:
            then()
    return setup


def two_cpus():
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to tell one worker from one per CPU")
    return set(cpus[:2])


def test_default_is_one_worker_per_cpu_of_the_affinity_mask(candor):
    one = candor(BASIC, preexec_fn=pinned({min(os.sched_getaffinity(0))}))
    assert workers(one) == ["candor-w0"]
    assert one.query("example.org").rcode() == 0
    two = candor(BASIC, preexec_fn=pinned(two_cpus()))
    assert workers(two) == ["candor-w0", "candor-w1"]
    assert len(udp_sockets(one)) == 1
    assert len(udp_sockets(two)) == 2
    for s in (one, two):
        assert not any("WARNING" in l for l in s.log()), s.log()


def test_more_workers_than_cpus_are_started_with_a_warning(candor):
    cpu = {min(os.sched_getaffinity(0))}
    s = candor(BASIC, args=["-workers", "2"], preexec_fn=pinned(cpu))
    assert workers(s) == ["candor-w0", "candor-w1"]
    assert len(udp_sockets(s)) == 1  # shared: whichever runs reads it all
    line = s.wait_log(lambda l: l.startswith("[WARNING]"))
    assert line.startswith(WARNING + "(affinity mask 1, "), line
    assert line.endswith(": workers that share a CPU answer fewer queries "
                         "per CPU-second. Fix: -workers 1, or leave -workers "
                         "out for one per usable CPU"), line
    for i in range(50):  # both workers read it; every query is answered
        assert s.query("q%d.example.org" % i).rcode() == 0
    ok = candor(BASIC, args=["-workers", "1"], preexec_fn=pinned(cpu))
    assert not any("WARNING" in l for l in ok.log()), ok.log()
    # Three workers on two CPUs: the third shares the first one's socket.
    three = candor(BASIC, args=["-workers", "3"], preexec_fn=pinned(two_cpus()))
    assert len(workers(three)) == 3 and len(udp_sockets(three)) == 2
    assert three.wait_log(lambda l: l.startswith("[WARNING]")).startswith(
        "[WARNING] -workers 3, but this process can use 2 CPUs ")


# ---- cgroup CPU limits -----------------------------------------------------

def cgroup_mount():
    """(mount point, v2?) of the hierarchy with the cpu controller."""
    with open("/proc/self/mounts") as f:
        mounts = [l.split() for l in f]
    for _, point, fstype, opts, *_ in mounts:
        if fstype == "cgroup" and "cpu" in opts.split(","):
            return point, False
    for _, point, fstype, *_ in mounts:
        if fstype == "cgroup2":
            try:
                with open(os.path.join(point, "cgroup.controllers")) as f:
                    if "cpu" in f.read().split():
                        return point, True
            except OSError:
                pass
    return None, None


@pytest.fixture
def cgroup():
    """make(cpus) -> (the cgroup to run in, the limit's file): a cgroup
    limited to cpus CPUs with an unlimited child, so that only the
    parent's limit applies.  Removed after the test."""
    made = []
    point, v2 = cgroup_mount()
    if point is None or os.geteuid() != 0:
        pytest.skip("no cgroup with the cpu controller that root can write")

    def write(path, text):
        with open(path, "w") as f:
            f.write(text)

    def make(cpus):
        if v2:
            with open(os.path.join(point, "cgroup.subtree_control")) as f:
                on = "cpu" in f.read().split()
            if not on:
                write(os.path.join(point, "cgroup.subtree_control"), "+cpu")
        parent = os.path.join(point, "candor-test-%d-%d" % (os.getpid(), len(made)))
        os.mkdir(parent)
        made.append(parent)
        if v2:
            write(os.path.join(parent, "cgroup.subtree_control"), "+cpu")
        child = os.path.join(parent, "child")
        os.mkdir(child)
        made.append(child)
        if v2:
            limit = os.path.join(parent, "cpu.max")
            write(limit, "%d 100000" % (cpus * 100000))
        else:
            write(os.path.join(parent, "cpu.cfs_period_us"), "100000")
            limit = os.path.join(parent, "cpu.cfs_quota_us")
            write(limit, "%d" % (cpus * 100000))
        return child, limit

    yield make
    for d in reversed(made):
        for _ in range(100):  # until the server in it has gone
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.05)


def joining(child):
    def join():
        with open(os.path.join(child, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    return join


# cgroup comes first: it is removed after candor has stopped the servers.
def test_default_workers_follow_the_cgroup_cpu_limit(cgroup, candor):
    cpus = two_cpus()
    child, limit = cgroup(1)
    s = candor(BASIC, preexec_fn=pinned(cpus, joining(child)))
    with open("/proc/%d/cgroup" % s.proc.pid) as f:
        assert os.path.basename(child) in f.read()
    assert workers(s) == ["candor-w0"]
    assert s.query("example.org").rcode() == 0
    over = candor(BASIC, args=["-workers", "2"],
                  preexec_fn=pinned(cpus, joining(child)))
    assert workers(over) == ["candor-w0", "candor-w1"]
    line = over.wait_log(lambda l: l.startswith("[WARNING]"))
    assert line.startswith(WARNING + "(affinity mask 2, cgroup limit 1.00 "
                           "in %s): " % limit), line


def test_shared_sockets_follow_reloads(candor):
    """Listeners added by a reload are shared the same way, and a removed
    one is closed by every worker: no descriptor keeps its port bound."""
    s = candor(BASIC, args=["-workers", "2"],
               preexec_fn=pinned({min(os.sched_getaffinity(0))}))
    old = s.port
    s.port = free_port(s.addr)
    with open(s.conf, "w") as f:  # the new port, not the ":0" of subst()
        f.write(BASIC.replace("@ADDR@", s.addr).replace("@PORT@", str(s.port)))
    s.send_signal(signal.SIGUSR1)
    s.wait_log(lambda l: l == "[INFO] Reloading complete")
    assert s.query("example.org").rcode() == 0
    assert len(udp_sockets(s)) == 1
    s.port = old
    assert udp_sockets(s) == []
