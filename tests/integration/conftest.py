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
import re
import signal
import socket
import subprocess
import tempfile
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
    """A port free for both UDP and TCP on addr, for what cannot bind port
    0 and report the port (knotd, unbound, HTTP endpoints, a Corefile that
    names two ports).  Below the ephemeral range (32768-60999), where the
    kernel's own picks for port 0 and client sockets never land."""
    for _ in range(200):
        port = random.randint(20000, 32000)
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


def wait_for(pred, timeout=5, what="the condition", step=0.02):
    """Poll pred() every `step` seconds until it returns something true,
    and return that.  After `timeout` seconds an AssertionError naming
    `what` (and pred's last value).  Tests wait on the event itself with
    this, never on a sleep that hopes it happened."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("waited %ss for %s; last: %r" % (timeout, what, v))
        time.sleep(step)


def _hexaddr(text):
    """"0100007F:0035" of /proc/net/tcp (IPv4) -> ("127.0.0.1", 53)."""
    ip, port = text.split(":")
    return socket.inet_ntoa(bytes.fromhex(ip)[::-1]), int(port, 16)


TCP_ESTABLISHED, TCP_LISTEN = 0x01, 0x0A


def inet_sockets(proto="tcp"):
    """The IPv4 sockets of /proc/net/tcp or /proc/net/udp: dicts with
    local and remote ((addr, port)), state, tx_queue, rx_queue, inode."""
    out = []
    with open("/proc/net/" + proto) as f:
        next(f)
        for line in f:
            fields = line.split()
            tx, rx = fields[4].split(":")
            out.append(dict(local=_hexaddr(fields[1]), remote=_hexaddr(fields[2]),
                            state=int(fields[3], 16), tx_queue=int(tx, 16),
                            rx_queue=int(rx, 16), inode=int(fields[9])))
    return out


def tcp_listeners(addr, port):
    """How many TCP sockets listen on addr:port (one per worker)."""
    return sum(1 for s in inet_sockets("tcp")
               if s["state"] == TCP_LISTEN and s["local"] == (addr, port))


def signal_pending(pid, sig):
    """Is `sig` still pending for the process (not yet taken by a
    handler): its shared mask or any thread's own (/proc/PID/status)."""
    bit = 1 << (int(sig) - 1)
    paths = ["/proc/%d/status" % pid] + [
        "/proc/%d/task/%s/status" % (pid, t) for t in os.listdir("/proc/%d/task" % pid)]
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(("ShdPnd:", "SigPnd:")) and \
                            int(line.split()[1], 16) & bit:
                        return True
        except FileNotFoundError:   # a thread that ended meanwhile
            continue
    return False


def wait_file_read(path, timeout=10, what=None):
    """Wait until a process reads `path` from now on (a timer that
    rereads a file logs nothing when it finds it unchanged).  The file's
    atime is set back behind its mtime first (content and mtime kept), so
    that the next read moves it, even under relatime."""
    st = os.stat(path)
    if os.statvfs(path).f_flag & os.ST_NOATIME:
        raise AssertionError("%s: mounted noatime, reads cannot be seen" % path)
    os.utime(path, ns=(st.st_mtime_ns - 10 ** 10, st.st_mtime_ns))

    def read():
        now = os.stat(path)
        return now.st_atime_ns >= now.st_mtime_ns
    wait_for(read, timeout, what or "a read of %s" % path)


class Server:
    """A running candor process."""

    def __init__(self, corefile, workdir, addr=None, port=None, args=(),
                 env=None, wait=True, preexec_fn=None, ctl=True):
        self.addr = addr or free_addr()
        # Port 0 unless the test chooses: candor takes one port the kernel
        # picks for every @PORT@ key, and wait_ready() reads it back from
        # the banner.
        self.port = port or 0
        self._port_text = str(self.port)
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
        # A control socket of its own, on a short path (sun_path is 108
        # bytes), unless the test chooses (-ctl, or ctl=False for the
        # default one).
        args = list(args)
        self.ctl_path = None
        if "-ctl" not in args and ctl:
            self._ctl_dir = tempfile.mkdtemp(prefix="cnd")
            self.ctl_path = os.path.join(self._ctl_dir, "ctl.sock")
            args += ["-ctl", self.ctl_path]
        self.proc = subprocess.Popen(
            [CANDOR, "-conf", self.conf] + args,
            cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=penv, text=True, preexec_fn=preexec_fn)
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._readers:
            t.start()
        if wait:
            self.wait_ready()

    def subst(self, text):
        # A Corefile written for port 0 keeps saying 0 (the same port, and
        # the same text for the reload plugin's checksum).
        return text.replace("@ADDR@", self.addr).replace("@PORT@", self._port_text)

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
                    if self.port == 0:
                        self.port = self._banner_port()
                    return
            time.sleep(0.02)
        raise AssertionError("candor did not start: %s" % "\n".join(self.err))

    def _banner_port(self):
        """The port 0 stood for: the first banner line "ZONE:PORT[ on
        ADDR]" whose port the Corefile does not name.  Under the lock."""
        with open(self.conf) as f:
            text = f.read()
        for line in self.lines:
            m = re.match(r"^\S+:(\d+)( on |$)", line)
            if m and (":%s" % m.group(1)) not in text:
                return int(m.group(1))
        raise AssertionError("no port-0 line in the banner: %s" %
                             "\n".join(self.lines))

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

    def ctl(self, *args, timeout=10):
        """Run `candor ctl -s SOCKET ARGS...`; the CompletedProcess."""
        return subprocess.run([CANDOR, "ctl", "-s", self.ctl_path] +
                              list(args), capture_output=True, text=True,
                              timeout=timeout)

    def stats(self):
        """`candor ctl stats` as a dict of strings."""
        out = self.ctl("stats")
        assert out.returncode == 0, out.stderr
        return dict(l.split("=", 1) for l in out.stdout.splitlines() if "=" in l)

    def in_flight(self):
        """The rows of `candor ctl dump_requestlist` (queries in flight)."""
        out = self.ctl("dump_requestlist")
        assert out.returncode == 0, out.stderr
        return [l for l in out.stdout.splitlines() if not l.startswith("#")]

    def wait_in_flight(self, n, timeout=5):
        """Wait until at least n queries are in flight; their rows."""
        def rows():
            r = self.in_flight()
            return r if len(r) >= n else None
        return wait_for(rows, timeout, "%d queries in flight (dump_requestlist)" % n)

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
        if self.ctl_path is not None:
            shutil.rmtree(self._ctl_dir, ignore_errors=True)
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


def scrape(port, addr="127.0.0.1"):
    """GET /metrics of the prometheus plugin; the text."""
    import urllib.request
    with urllib.request.urlopen("http://%s:%d/metrics" % (addr, port),
                                timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def metric(text, family, /, **labels):
    """The value of the series of `family` with exactly these labels (in
    this order), or None."""
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    for line in text.splitlines():
        if line.startswith(family + "{" + want + "}") or \
                (not labels and line.startswith(family + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def run_candor(*args, cwd=None, timeout=10, env=None):
    """Run candor to completion (flags, -validate, -version)."""
    penv = dict(os.environ)
    if env:
        penv.update(env)
    return subprocess.run([CANDOR] + list(args), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=penv)


# ---------------------------------------------------------------------------
# Upstreams for forward tests: scripted fake upstreams (upstreams.py), an
# authoritative knotd and a DNS-over-TLS unbound in front of it.  All of
# them listen on a random 127.x.y.z address only; every process is started
# here and stopped here by its own Popen handle (never by name).

import shutil  # noqa: E402
import ssl  # noqa: E402
import tempfile  # noqa: E402

import dns.flags  # noqa: E402

from upstreams import FakeUpstream, closed_port  # noqa: E402,F401


@pytest.fixture
def upstream():
    """Factory: upstream(mode, **opts) -> a started FakeUpstream (see
    upstreams.py for the modes); all are stopped at teardown."""
    started = []

    def make(mode="answer", **opts):
        u = FakeUpstream(mode, **opts)
        u.start()
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop()


def _which(prog):
    return shutil.which(prog) or next(
        (p for p in ("/usr/sbin/" + prog, "/usr/bin/" + prog, "/sbin/" + prog)
         if os.access(p, os.X_OK)), None)


class Daemon:
    """A foreground process we started, its output in a file of workdir."""

    def __init__(self, argv, workdir, logname):
        self.workdir = str(workdir)
        self.log_path = os.path.join(self.workdir, logname)
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM (through our own Popen handle), then SIGKILL; the exit
        status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        if not self._logf.closed:
            self._logf.close()
        return self.proc.returncode


def _wait_answer(daemon, ask, timeout, what):
    """Call ask() until it returns a truthy value (exceptions = not yet)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not daemon.running():
            raise RuntimeError("%s exited %s:\n%s" % (what, daemon.proc.returncode,
                                                     daemon.log()[-3000:]))
        try:
            if ask():
                return True
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.05)
    raise RuntimeError("%s did not answer in %ss (%r):\n%s" % (
        what, timeout, last, daemon.log()[-3000:]))


KNOT_ZONE_NAME = "example.test."
KNOT_BIG_COUNT = 40
# 192.0.2.0/24, 198.51.100.0/24 and 2001:db8::/32 are documentation data in
# the zone; nothing ever sends to them.
KNOT_ZONE = """$ORIGIN example.test.
$TTL 300
@       SOA   ns1.example.test. hostmaster.example.test. 2024010101 3600 600 86400 300
@       NS    ns1.example.test.
@       MX    10 mail.example.test.
@       TXT   "candor test zone"
ns1     A     192.0.2.1
mail    A     192.0.2.25
www     A     192.0.2.10
www     AAAA  2001:db8::10
www     TXT   "hello from knotd"
""" + "".join("big     A     198.51.100.%d\n" % (i + 1) for i in range(KNOT_BIG_COUNT))

KNOT_CONF = """server:
    listen: {addr}@{port}
    rundir: {dir}
    pidfile: {dir}/knot.pid
control:
    listen: {sock}
database:
    storage: {dir}/db
log:
  - target: stderr
    any: info
template:
  - id: default
    semantic-checks: off
    storage: {dir}
zone:
  - domain: {zone}
    file: {dir}/zone.txt
    zonefile-sync: -1
    journal-content: none
"""


class Knotd(Daemon):
    """knotd serving one zone on addr:port (UDP and TCP)."""

    def __init__(self, workdir, addr, port, zone, zone_text):
        self.addr, self.port, self.zone = addr, port, zone
        d = str(workdir)
        self.zonefile = os.path.join(d, "zone.txt")
        with open(self.zonefile, "w") as f:
            f.write(zone_text)
        os.makedirs(os.path.join(d, "db"), exist_ok=True)
        sock = os.path.join(d, "knot.sock")
        self._sockdir = None
        if len(sock) > 100:   # sun_path holds 108 bytes
            self._sockdir = tempfile.mkdtemp(prefix="knot-", dir="/tmp")
            sock = os.path.join(self._sockdir, "knot.sock")
        self.conf = os.path.join(d, "knot.conf")
        with open(self.conf, "w") as f:
            f.write(KNOT_CONF.format(addr=addr, port=port, dir=d, sock=sock, zone=zone))
        super().__init__([_which("knotd"), "-c", self.conf], d, "knotd.log")

    def query(self, name, rdtype="A", tcp=False, timeout=2, **kw):
        q = dns.message.make_query(name, rdtype, **kw)
        if tcp:
            return dns.query.tcp(q, self.addr, port=self.port, timeout=timeout)
        return dns.query.udp(q, self.addr, port=self.port, timeout=timeout)

    def ready(self):
        r = self.query(self.zone, "SOA", timeout=0.3)
        return r.rcode() == 0 and bool(r.flags & dns.flags.AA) and r.answer

    def stop(self, timeout=10):
        rc = super().stop(timeout)
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None
        return rc


def start_knotd(workdir, zone=KNOT_ZONE_NAME, zone_text=KNOT_ZONE, timeout=10):
    """Start knotd for one zone on a random 127.x address and free port in
    workdir (created); returns a Knotd once it answers the zone's SOA."""
    if not _which("knotd"):
        pytest.skip("knotd is not installed (Debian package knot)")
    os.makedirs(str(workdir), exist_ok=True)
    err = None
    for _ in range(3):   # a port taken between the check and knotd's bind
        addr = free_addr()
        k = Knotd(workdir, addr, free_port(addr), zone, zone_text)
        try:
            _wait_answer(k, k.ready, timeout, "knotd")
            return k
        except RuntimeError as e:
            err = e
            k.stop()
    raise err


@pytest.fixture
def knotd(tmp_path):
    """knotd authoritative for example.test. (SOA, NS, www A 192.0.2.10,
    www AAAA 2001:db8::10, TXT, MX, big with 40 A): .addr, .port, .zone,
    .zonefile, .query(), .stop().  Skips when knotd is not installed."""
    k = start_knotd(tmp_path / "knotd")
    yield k
    k.stop()


DOT_NAME = "dns.candor.test"

UNBOUND_CONF = """server:
    verbosity: 1
    num-threads: 1
    interface: {addr}@{port}
    tls-port: {port}
    tls-service-key: "{dir}/server.key"
    tls-service-pem: "{dir}/server.pem"
    do-ip6: no
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    chroot: ""
    username: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    logfile: "{dir}/unbound.log"
    module-config: "iterator"
    # Belt and braces for "loopback only": send from 127.0.0.1, refuse
    # everything but the stub zone.
    outgoing-interface: 127.0.0.1
    local-zone: "test." nodefault
    local-zone: "{zone}" transparent
    local-zone: "." refuse
stub-zone:
    name: "{zone}"
    stub-addr: {stub_addr}@{stub_port}
"""


def _openssl(workdir, *args):
    out = subprocess.run([_which("openssl")] + list(args), cwd=str(workdir),
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), out.stderr))


def make_tls_certs(workdir, name, ip):
    """A throw-away CA (ca.pem) and a server certificate (server.pem,
    server.key) for DNS name `name` and IP SAN `ip`, ECDSA P-256, in
    workdir.  Returns (ca, cert, key) paths."""
    d = str(workdir)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=candor throw-away test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl(d, "req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=" + name)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:%s,IP:%s\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\n" % (name, ip))
    _openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
             "-CAkey", "ca.key", "-set_serial", "0x%016x" % random.getrandbits(63),
             "-days", "2", "-extfile", "server.ext", "-out", "server.pem")
    return tuple(os.path.join(d, n) for n in ("ca.pem", "server.pem", "server.key"))


class Unbound(Daemon):
    """unbound serving DNS over TLS on addr:port, stub to an authority."""

    def __init__(self, workdir, addr, port, name, ca, stub_addr, stub_port, zone):
        self.addr, self.port, self.name, self.ca = addr, port, name, ca
        self.zone = zone
        d = str(workdir)
        self.cert = os.path.join(d, "server.pem")
        self.key = os.path.join(d, "server.key")
        self.conf = os.path.join(d, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write(UNBOUND_CONF.format(addr=addr, port=port, dir=d, zone=zone,
                                        stub_addr=stub_addr, stub_port=stub_port))
        super().__init__([_which("unbound"), "-d", "-c", self.conf], d, "unbound.out")

    def log(self):
        text = super().log()
        try:
            with open(os.path.join(self.workdir, "unbound.log"), errors="replace") as f:
                text += f.read()
        except OSError:
            pass
        return text

    def ssl_context(self, ca=None):
        """A client context trusting only our CA (or `ca`)."""
        return ssl.create_default_context(cafile=ca or self.ca)

    def query(self, name, rdtype="A", server_hostname=None, ca=None, timeout=2, **kw):
        """One query over TLS, verifying the certificate for
        server_hostname (default .name) against .ca."""
        q = dns.message.make_query(name, rdtype, **kw)
        return dns.query.tls(q, self.addr, port=self.port, timeout=timeout,
                             ssl_context=self.ssl_context(ca),
                             server_hostname=server_hostname or self.name)

    def ready(self):
        r = self.query("www." + self.zone, "A", timeout=1)
        return r.rcode() == 0 and r.answer


def start_dot(workdir, stub_addr, stub_port, zone=KNOT_ZONE_NAME, name=DOT_NAME,
              timeout=15):
    """Certificates plus unbound serving DoT on a random 127.x address and
    free port, stub zone `zone` at stub_addr@stub_port; returns an Unbound
    once it answers www.<zone> over verified TLS."""
    if not _which("unbound"):
        pytest.skip("unbound is not installed (Debian package unbound)")
    if not _which("openssl"):
        pytest.skip("openssl is not installed (Debian package openssl)")
    err = None
    for attempt in range(3):
        d = os.path.join(str(workdir), "try%d" % attempt)
        os.makedirs(d, exist_ok=True)
        addr = free_addr()
        ca, _, _ = make_tls_certs(d, name, addr)
        u = Unbound(d, addr, free_port(addr), name, ca, stub_addr, stub_port, zone)
        try:
            _wait_answer(u, u.ready, timeout, "unbound")
            return u
        except RuntimeError as e:
            err = e
            u.stop()
    raise err


@pytest.fixture
def dot(tmp_path, knotd):
    """A DNS-over-TLS endpoint (unbound) for example.test. via the knotd
    fixture: .addr, .port, .ca (CA pem path), .name ("dns.candor.test"),
    .cert, .key, .query(), .ssl_context(), .stop().  Skips when unbound or
    openssl is missing."""
    u = start_dot(tmp_path / "dot", knotd.addr, knotd.port)
    yield u
    u.stop()
