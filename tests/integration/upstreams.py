# SPDX-License-Identifier: MIT
"""A scripted fake DNS upstream for forward tests, in pure Python.

    up = FakeUpstream("answer")          # or any mode below
    up.start()
    ... point candor at up.addr:up.port ...
    assert up.udp_queries == 1
    up.stop()

One FakeUpstream listens on UDP and TCP on the same 127.x.y.z address and
port (a random loopback address and a free port unless `addr`/`port` are
given).  Every reply echoes the query's ID and question, sets QR and copies
RD (except where a mode says otherwise).  Modes:

  answer          NOERROR, AA off, RA on; A 10.0.0.1 (opt `address`) or
                  AAAA 2001:db8::1 (opt `address6`), TTL 300 (opt `ttl`);
                  NODATA for other types.
  silent          never answers (UDP: reads and drops; TCP: accepts, reads,
                  never writes).
  slow            like "answer" after opt `delay` seconds (default 3),
                  without holding up other queries.
  garbage         random bytes, lengths cycling through opt `lengths`
                  (default includes lengths below 12); never a valid answer.
  wrong_id        a well-formed answer with another ID.
  wrong_question  a well-formed answer for another name (opt `name`).
  truncate        UDP: TC set, no answer records; TCP: the full answer with
                  opt `count` A records (default 40), larger than 512 bytes.
  servfail        SERVFAIL; opts `ede_code`/`ede_text` add an RFC 8914 EDE.
                  The reply has an OPT if the query had one or an EDE is set.
  refused         REFUSED.
  script          opt `handler(query, proto) -> bytes | Message | None`,
                  proto "udp" or "tcp"; None sends nothing.  Bytes are sent
                  as they are (over TCP with the 2-byte length in front).
                  A list of them sends each in turn.

Every mode takes opt `copies` (default 1): each reply is sent that many
times, back to back (duplicates, as a flapping path delivers them); with
"slow" the copies go after the delay.

The mode and options may be changed while running with set_mode(): the
next query sees them (handy for "upstream recovers" tests).

Counters (thread-safe): udp_queries, tcp_queries count well-formed queries
received (QR clear, parsed by dnspython); `malformed` counts the rest (they
are otherwise ignored); `queries` is the list of (proto, Message);
tcp_connections counts accepted TCP connections; `replies` counts the
messages sent (wait_replies() waits for them).  Only loopback addresses
are accepted.
"""
import ipaddress
import os
import random
import socket
import struct
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

MODES = ("answer", "silent", "slow", "garbage", "wrong_id", "wrong_question",
         "truncate", "servfail", "refused", "script")
DEFAULT_GARBAGE_LENGTHS = (5, 40, 11, 300, 1, 12, 2, 700)
_POLL = 0.1


def random_addr():
    """A random 127.x.y.z address."""
    return "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 254),
                              random.randint(1, 254))


def _check_loopback(addr):
    if not ipaddress.ip_address(addr) in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError("fake upstreams live on 127.0.0.0/8 only, not %s" % addr)


def closed_port(addr="127.0.0.1"):
    """A port on addr where nothing listens, UDP or TCP (bound to port 0,
    read, both closed again)."""
    _check_loopback(addr)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            u.bind((addr, 0))
            port = u.getsockname()[1]
            try:
                t.bind((addr, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no closed port found on %s" % addr)


def _recv_exact(sock, n, stop):
    """n bytes from a stream socket (with a timeout set), or None at EOF,
    error or stop."""
    buf = b""
    while len(buf) < n:
        if stop.is_set():
            return None
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


class _UdpSender:
    def __init__(self, sock, peer):
        self.sock, self.peer = sock, peer

    def __call__(self, wire):
        try:
            self.sock.sendto(wire, self.peer)
        except OSError:
            pass


class _TcpSender:
    """One accepted TCP connection; calling it sends one framed message."""

    def __init__(self, sock):
        self.sock = sock
        self.thread = None
        self._wlock = threading.Lock()

    def __call__(self, wire):
        with self._wlock:
            try:
                self.sock.sendall(struct.pack("!H", len(wire)) + wire)
            except OSError:
                pass


class FakeUpstream:
    """A scripted DNS server on UDP and TCP; see the module docstring."""

    def __init__(self, mode="answer", addr=None, port=None, **opts):
        if mode not in MODES:
            raise ValueError("unknown mode %r (one of %s)" % (mode, ", ".join(MODES)))
        if mode == "script" and not callable(opts.get("handler")):
            raise ValueError("mode 'script' needs a callable handler=")
        self.addr = addr or random_addr()
        _check_loopback(self.addr)
        self.port = port
        self.mode = mode
        self.opts = dict(opts)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._timers = set()
        self._conns = set()
        self._udp = None
        self._tcp = None
        self._garbage_n = 0
        self.errors = []          # exceptions raised by handlers/replies
        self.reset_counters()

    # ---- counters --------------------------------------------------------

    def reset_counters(self):
        with self._lock:
            self.udp_queries = 0
            self.tcp_queries = 0
            self.tcp_connections = 0
            self.malformed = 0
            self.replies = 0
            self.queries = []

    @property
    def total_queries(self):
        with self._lock:
            return self.udp_queries + self.tcp_queries

    def wait_queries(self, n, timeout=5.0):
        """Wait until at least n queries (UDP+TCP) arrived; True if so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.total_queries >= n:
                return True
            time.sleep(0.01)
        return self.total_queries >= n

    def wait_replies(self, n, timeout=10.0):
        """Wait until at least n replies went out; True if so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.replies >= n:
                    return True
            time.sleep(0.01)
        with self._lock:
            return self.replies >= n

    def qnames(self):
        """The question names received so far, as text, in order."""
        with self._lock:
            return [m.question[0].name.to_text() if m.question else None
                    for _, m in self.queries]

    def set_mode(self, mode, **opts):
        """Switch mode (and replace the options) while running."""
        if mode not in MODES:
            raise ValueError("unknown mode %r" % mode)
        if mode == "script" and not callable(opts.get("handler")):
            raise ValueError("mode 'script' needs a callable handler=")
        with self._lock:
            self.mode = mode
            self.opts = dict(opts)

    # ---- life cycle ------------------------------------------------------

    def _bind(self):
        for _ in range(200):
            port = self.port or 0
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if port:
                    t.bind((self.addr, port))
                else:
                    t.bind((self.addr, random.randint(20000, 60000)))
                    port = t.getsockname()[1]
                u.bind((self.addr, port))
            except OSError:
                u.close()
                t.close()
                if self.port:
                    raise
                continue
            t.listen(64)
            self.port = port
            return u, t
        raise RuntimeError("no free port on %s" % self.addr)

    def start(self):
        """Bind and start serving; returns self.  May be called again after
        stop() (same address and port)."""
        if self._udp is not None:
            raise RuntimeError("already started")
        self._stop.clear()
        self._udp, self._tcp = self._bind()
        self._udp.settimeout(_POLL)
        self._tcp.settimeout(_POLL)
        for target in (self._udp_loop, self._tcp_loop):
            th = threading.Thread(target=target, daemon=True,
                                  name="fake-%s-%s" % (self.mode, target.__name__))
            th.start()
            self._threads.append(th)
        return self

    def stop(self):
        """Stop serving, close every socket, join the threads."""
        self._stop.set()
        with self._lock:
            timers = list(self._timers)
            self._timers.clear()
        for t in timers:
            t.cancel()
        listeners, self._threads = self._threads, []
        for th in listeners:
            th.join(timeout=5)
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for c in conns:
            c.thread.join(timeout=5)
        for s in (self._udp, self._tcp):
            if s is not None:
                s.close()
        self._udp = self._tcp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "FakeUpstream(%r, %s:%s)" % (self.mode, self.addr, self.port)

    # ---- transport -------------------------------------------------------

    def _parse(self, data, proto):
        try:
            q = dns.message.from_wire(data, ignore_trailing=True)
        except Exception:
            q = None
        with self._lock:
            if q is None or q.flags & dns.flags.QR:
                self.malformed += 1
                return None, None, None
            if proto == "udp":
                self.udp_queries += 1
            else:
                self.tcp_queries += 1
            self.queries.append((proto, q))
            return q, self.mode, dict(self.opts)

    def _udp_loop(self):
        sock = self._udp
        while not self._stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            q, mode, opts = self._parse(data, "udp")
            if q is not None:
                self._dispatch(q, "udp", mode, opts, _UdpSender(sock, peer))

    def _tcp_loop(self):
        while not self._stop.is_set():
            try:
                sock, _ = self._tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            conn = _TcpSender(sock)
            conn.thread = threading.Thread(target=self._tcp_conn, args=(conn,),
                                           daemon=True)
            with self._lock:
                self.tcp_connections += 1
                self._conns.add(conn)
            conn.thread.start()

    def _tcp_conn(self, conn):
        sock = conn.sock
        sock.settimeout(_POLL)
        try:
            while not self._stop.is_set():
                hdr = _recv_exact(sock, 2, self._stop)
                if hdr is None:
                    break
                (n,) = struct.unpack("!H", hdr)
                data = _recv_exact(sock, n, self._stop)
                if data is None:
                    break
                q, mode, opts = self._parse(data, "tcp")
                if q is not None:
                    self._dispatch(q, "tcp", mode, opts, conn)
            # The client closed its side: replies still delayed ("slow") may
            # want this connection; keep it until they are out or stop().
            while not self._stop.is_set():
                with self._lock:
                    if not any(t.sender is conn for t in self._timers):
                        break
                time.sleep(_POLL)
        finally:
            with self._lock:
                self._conns.discard(conn)
            try:
                sock.close()
            except OSError:
                pass

    def _dispatch(self, q, proto, mode, opts, send):
        if mode == "silent":
            return
        if mode == "slow":
            timer = threading.Timer(float(opts.get("delay", 3)), self._delayed)
            timer.args = (timer, q, proto, opts)
            timer.sender = send
            timer.daemon = True
            with self._lock:
                if self._stop.is_set():
                    return
                self._timers.add(timer)
            timer.start()
            return
        self._reply(q, proto, mode, opts, send)

    def _delayed(self, timer, q, proto, opts):
        with self._lock:
            if timer not in self._timers:   # stop() came first
                return
        self._reply(q, proto, "answer", opts, timer.sender)
        with self._lock:
            self._timers.discard(timer)

    def _reply(self, q, proto, mode, opts, send):
        try:
            wire = self.build(q, proto, mode, opts)
        except Exception as e:  # a broken handler must not kill the server
            with self._lock:
                self.errors.append(e)
            return
        if wire is None:
            return
        for one in wire if isinstance(wire, list) else [wire]:
            for _ in range(int(opts.get("copies", 1))):
                send(one)
                with self._lock:
                    self.replies += 1

    # ---- replies ---------------------------------------------------------

    def build(self, q, proto, mode, opts):
        """The reply's wire bytes for query q, a list of them, or None for
        no reply."""
        if mode == "script":
            out = opts["handler"](q, proto)
            if isinstance(out, list):
                return [m if isinstance(m, (bytes, bytearray)) else m.to_wire()
                        for m in out]
            if out is None or isinstance(out, (bytes, bytearray)):
                return out
            return out.to_wire()
        if mode == "garbage":
            return self._garbage(q, opts)
        r = dns.message.make_response(q, our_payload=1232)
        if mode in ("answer", "slow"):
            r.flags |= dns.flags.RA
            self._fill(r, q, opts)
        elif mode == "wrong_id":
            r.flags |= dns.flags.RA
            self._fill(r, q, opts)
            r.id = (q.id + 1) & 0xFFFF
        elif mode == "wrong_question":
            r.flags |= dns.flags.RA
            name = dns.name.from_text(opts.get("name", "elsewhere.invalid."))
            if q.question and q.question[0].name == name:
                name = dns.name.from_text("elsewhere2.invalid.")
            qt = q.question[0].rdtype if q.question else dns.rdatatype.A
            r.question = [dns.rrset.RRset(name, dns.rdataclass.IN, qt)]
            if qt == dns.rdatatype.A:
                r.answer.append(dns.rrset.from_text(
                    name, int(opts.get("ttl", 300)), "IN", "A",
                    opts.get("address", "10.0.0.1")))
        elif mode == "truncate":
            r.flags |= dns.flags.RA
            if proto == "udp":
                r.flags |= dns.flags.TC
            elif q.question:
                qn = q.question[0].name
                count = int(opts.get("count", 40))
                addrs = ["10.0.%d.%d" % (i // 250, i % 250 + 1) for i in range(count)]
                r.answer.append(dns.rrset.from_text_list(
                    qn, int(opts.get("ttl", 300)), "IN", "A", addrs))
        elif mode == "servfail":
            r.set_rcode(dns.rcode.SERVFAIL)
            code = opts.get("ede_code")
            text = opts.get("ede_text")
            if code is not None or text is not None:
                ede = dns.edns.EDEOption(int(code or 0), text)
                if r.edns >= 0:
                    r.use_edns(0, r.ednsflags, r.payload, options=list(r.options) + [ede])
                else:
                    r.use_edns(0, 0, 1232, options=[ede])
        elif mode == "refused":
            r.set_rcode(dns.rcode.REFUSED)
        else:
            raise ValueError(mode)
        return r.to_wire()

    @staticmethod
    def _fill(r, q, opts):
        if not q.question:
            return
        qq = q.question[0]
        ttl = int(opts.get("ttl", 300))
        if qq.rdclass != dns.rdataclass.IN:
            return
        if qq.rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(
                qq.name, ttl, "IN", "A", opts.get("address", "10.0.0.1")))
        elif qq.rdtype == dns.rdatatype.AAAA:
            r.answer.append(dns.rrset.from_text(
                qq.name, ttl, "IN", "AAAA", opts.get("address6", "2001:db8::1")))

    def _garbage(self, q, opts):
        lengths = opts.get("lengths") or DEFAULT_GARBAGE_LENGTHS
        with self._lock:
            n = lengths[self._garbage_n % len(lengths)]
            self._garbage_n += 1
        data = bytearray(os.urandom(n))
        if n >= 2 and (data[0] << 8 | data[1]) == q.id:
            data[0] ^= 0xFF   # never even the query's ID
        if n >= 3:
            data[2] |= 0x80   # QR set: it looks like a reply, a broken one
        if n >= 12:
            # Claim more records than there are bytes for: never parses.
            data[4:12] = b"\xff\xff\xff\xff\xff\xff\xff\xff"
        return bytes(data)
