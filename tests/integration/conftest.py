# SPDX-License-Identifier: MIT
"""Fixtures for integration tests: the real candor binary on loopback.

`candor(corefile)` writes the Corefile (with @ADDR@ and @PORT@ replaced by
a free loopback address and port), starts the binary built by `make` (or
the one in $CANDOR, e.g. the sanitizer build), waits until it answers and
returns a `Server`.  Every server is stopped with SIGTERM at the end of the
test, and the test fails if it did not exit 0 or if a sanitizer reported
anything.  Traffic only ever goes to 127.0.0.0/8.
"""
import os
import random
import signal
import socket
import subprocess
import threading
import time

import dns.message
import dns.query
import dns.rdatatype
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CANDOR = os.environ.get("CANDOR", os.path.join(ROOT, "build", "candor"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def free_port(addr="127.0.0.1"):
    """A port free for both UDP and TCP on addr."""
    for _ in range(200):
        port = random.randint(20000, 60000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind((addr, port))
                t.bind((addr, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def free_addr():
    """A random 127.x.y.z address, so parallel tests never collide."""
    return "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 254),
                              random.randint(1, 254))


class Server:
    """A running candor process."""

    def __init__(self, corefile, workdir, addr=None, port=None, args=(),
                 env=None, wait=True):
        self.addr = addr or free_addr()
        self.port = port or free_port(self.addr)
        self.workdir = str(workdir)
        self.conf = os.path.join(self.workdir, "Corefile")
        with open(self.conf, "w") as f:
            f.write(self.subst(corefile))
        self.lines = []
        self.err = []
        self._lock = threading.Lock()
        penv = dict(os.environ)
        penv.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        penv.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if env:
            penv.update(env)
        self.proc = subprocess.Popen(
            [CANDOR, "-conf", self.conf] + list(args),
            cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=penv, text=True)
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._readers:
            t.start()
        if wait:
            self.wait_ready()

    def subst(self, text):
        return text.replace("@ADDR@", self.addr).replace("@PORT@", str(self.port))

    def _read(self, stream, into):
        for line in stream:
            with self._lock:
                into.append(line.rstrip("\n"))

    def wait_ready(self, timeout=10):
        """Wait for the start-up banner, then for an answer over UDP."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.join()
                raise AssertionError("candor exited %s: %s" % (
                    self.proc.returncode, "\n".join(self.err + self.lines)))
            with self._lock:
                if any(l.startswith("candor-") for l in self.lines):
                    return
            time.sleep(0.02)
        raise AssertionError("candor did not start: %s" % "\n".join(self.err))

    def log(self):
        with self._lock:
            return list(self.lines)

    def wait_log(self, pred, timeout=5):
        """The first log line for which pred(line) is true."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.log():
                if pred(line):
                    return line
            time.sleep(0.02)
        raise AssertionError("no such log line in:\n" + "\n".join(self.log()))

    def query(self, name, rdtype="A", tcp=False, timeout=3, **kw):
        """Send one query; kw goes to dns.message.make_query (use_edns,
        payload, want_dnssec, options...)."""
        q = dns.message.make_query(name, rdtype, **kw)
        return self.send(q, tcp=tcp, timeout=timeout)

    def send(self, q, tcp=False, timeout=3):
        if tcp:
            return dns.query.tcp(q, self.addr, port=self.port, timeout=timeout)
        return dns.query.udp(q, self.addr, port=self.port, timeout=timeout,
                             ignore_trailing=True)

    def raw_udp(self, data, timeout=1.0):
        """Send raw bytes; return the raw reply or None after timeout."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(data, (self.addr, self.port))
            try:
                return s.recv(65535)
            except socket.timeout:
                return None

    def dig(self, *args):
        out = subprocess.run(["dig", "@" + self.addr, "-p", str(self.port),
                              "+tries=1", "+time=2"] + list(args),
                             capture_output=True, text=True, timeout=10)
        return out.stdout

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("candor did not stop within %ss" % timeout)
        self.join()
        return self.proc.returncode

    def join(self):
        for t in self._readers:
            t.join(timeout=5)

    def sanitizer_report(self):
        text = "\n".join(self.err + self.lines)
        return any(m in text for m in SANITIZER_MARKS)


@pytest.fixture
def candor(tmp_path):
    """Factory: candor(corefile, **kw) -> Server; stopped after the test."""
    servers = []

    def start(corefile, **kw):
        workdir = kw.pop("workdir", None) or tmp_path / ("s%d" % len(servers))
        os.makedirs(workdir, exist_ok=True)
        s = Server(corefile, workdir, **kw)
        servers.append(s)
        return s

    yield start
    failures = []
    for s in servers:
        running = s.proc.poll() is None
        rc = s.stop()
        if running and rc != 0:
            failures.append("exit %d: %s" % (rc, "\n".join(s.err[-30:])))
        if s.sanitizer_report():
            failures.append("sanitizer:\n" + "\n".join(s.err[-60:]))
    assert not failures, "\n".join(failures)


def run_candor(*args, cwd=None, timeout=10, env=None):
    """Run candor to completion (flags, -validate, -version)."""
    penv = dict(os.environ)
    if env:
        penv.update(env)
    return subprocess.run([CANDOR] + list(args), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=penv)
