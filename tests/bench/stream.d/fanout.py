#!/usr/bin/env python3
"""Fan-out latency helper for tests/bench/stream: many subscribers, one poster.

    fanout.py subscribe --mode raised|redis --port P -n N --ready-file F --done-file D
                        --posts-file T --result R [--cafile CA] [--tokens-file K]
                        [--channel C] [--drain S] [--max-posts M] [--hold S]
                        [--commits-file F]
    fanout.py publish   --mode raised|redis --port P --rate R --seconds S --out T
                        --done-file D [--cafile CA] [--token-file K] [--subject ID]
                        [--channel C] [--size BYTES] [--conns C]

subscribe: one asyncio event loop holding N connections (TLS when --cafile is given).
  raised: GET /v1/stream with "Authorization: Bearer" (tokens read from --tokens-file,
  one a line, connection i uses token i mod count); redis: SUBSCRIBE C (RESP, no client
  library). The TLS sockets are non-blocking ssl.SSLSocket objects (asyncio's own TLS
  transport costs several times more CPU per read); once streaming they sit in one epoll
  set of ours, which the event loop watches with a single add_reader, so one callback
  serves every ready socket.
  Once every connection is up (raised: the ": connected" comment; redis: the subscribe
  reply) it writes "<opened> <failed> <seconds>" to --ready-file, then records every
  event: the poster's send time travels in the text as "bench-stream SEQ SEND_NS"
  (CLOCK_MONOTONIC, the same clock in every process on the machine), so each delivery's
  latency is its receive time - SEND_NS. When --done-file appears it reads --posts-file
  (the poster's log), waits until every subscriber has every accepted post or --drain
  seconds pass, and writes --result (JSON): latencies, lost, duplicated and unexpected
  events, disconnected subscribers. With --commits-file (raised), also every delivery's
  receive time - the post's commit time (the file: "seq CLOCK_REALTIME_ns" a line, from
  the database; it may appear up to 30 s after the drain).
publish: posts at --rate per second for --seconds, on a fixed schedule (a late post is
  sent at once, not skipped). raised: POST /v1/intelligence over --conns keep-alive TLS
  connections (threads), summary "bench-stream SEQ SEND_NS"; redis: PUBLISH on one
  connection, the same text padded to --size bytes (raised's event size). Writes
  one line per post to --out: "seq scheduled_ns send_ns ack_ns status" (status = HTTP
  status, or for redis the receiver count PUBLISH returned), then --done-file
  ("<posts> <CPU seconds the poster used>").
Standard library only.
"""

import argparse
import array
import asyncio
import http.client
import json
import os
import queue
import re
import resource
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time

EVENT_RE = re.compile(rb"bench-stream (\d+) (\d+)")
SUBSCRIBED_RE = re.compile(rb"subscribe\r\n\$\d+\r\n[^\r]*\r\n:\d+\r\n")
SSE_END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked reply: the stream ended


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)


def raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def percentile(sorted_vals, p: float):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


# ---------------------------------------------------------------- subscribers


class Sub:
    __slots__ = ("idx", "sock", "fd", "tls", "buf", "state", "counts", "extra", "events",
                 "closed", "why", "nbytes", "read", "bufsize")

    def __init__(self, idx: int, max_posts: int):
        self.idx = idx
        self.sock = None
        self.fd = -1
        self.tls = False
        self.buf = b""
        self.state = 0  # 0 reading headers / waiting for the hello, 1 streaming
        self.counts = bytearray(max_posts)
        self.extra = 0  # events that are not ours or carry a seq beyond max_posts
        self.events = 0  # every event seen (ours or not)
        self.nbytes = 0  # bytes received once streaming
        self.read = None  # the socket's read function (the C one, for TLS)
        self.bufsize = 65536
        self.closed = False
        self.why = ""


class Subscribers:
    def __init__(self, args):
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.subs = []
        self.lat = array.array("q")  # receive - send, ns, every delivery of one of our posts
        self.lat_seq = array.array("i")  # the seq of each of those deliveries
        self.seq_first = [0] * args.max_posts  # seq -> earliest receive (0: none yet)
        self.seq_last = [0] * args.max_posts  # seq -> latest receive
        # Streaming sockets sit in one epoll set of our own, itself watched by the event loop:
        # one loop callback then serves every ready socket (no asyncio Handle per read).
        self.ep = select.epoll()
        self.by_fd = {}
        self.ours = 0  # deliveries of our posts (any seq)
        self.ready = 0
        self.failed = 0
        self.first_error = None
        self.ready_event = asyncio.Event()
        self.ctx = None
        if args.cafile:
            self.ctx = ssl.create_default_context(cafile=args.cafile)
        self.tokens = []
        if args.mode == "raised":
            with open(args.tokens_file, encoding="ascii") as f:
                self.tokens = [t.strip() for t in f if t.strip()]
            if not self.tokens:
                raise SystemExit("fanout: --tokens-file has no tokens")

    # -- connection set-up (coroutines, once per connection)

    def _wait(self, fd: int, write: bool):
        fut = self.loop.create_future()
        add = self.loop.add_writer if write else self.loop.add_reader
        remove = self.loop.remove_writer if write else self.loop.remove_reader

        def ready():
            remove(fd)
            if not fut.done():
                fut.set_result(None)

        def gone(f):
            if f.cancelled():  # timed out: do not leave the callback on a closed socket
                remove(fd)

        add(fd, ready)
        fut.add_done_callback(gone)
        return fut

    async def _send_all(self, sock, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = sock.send(view)
                view = view[n:]
            except (ssl.SSLWantWriteError, BlockingIOError):
                await self._wait(sock.fileno(), True)
            except ssl.SSLWantReadError:
                await self._wait(sock.fileno(), False)

    async def open_one(self, sub: Sub, sem: asyncio.Semaphore) -> None:
        a = self.args
        async with sem:
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.setblocking(False)
            sock = raw
            try:
                await asyncio.wait_for(self.loop.sock_connect(raw, (a.host, a.port)), 10)
                if self.ctx is not None:
                    sock = self.ctx.wrap_socket(raw, server_hostname=a.host,
                                                do_handshake_on_connect=False)
                    sub.tls = True
                    deadline = time.monotonic() + 10
                    while True:
                        try:
                            sock.do_handshake()
                            break
                        except ssl.SSLWantReadError:
                            await asyncio.wait_for(self._wait(sock.fileno(), False),
                                                   max(0.01, deadline - time.monotonic()))
                        except ssl.SSLWantWriteError:
                            await asyncio.wait_for(self._wait(sock.fileno(), True),
                                                   max(0.01, deadline - time.monotonic()))
                sub.sock = sock
                sub.fd = sock.fileno()
                if a.mode == "raised":
                    token = self.tokens[sub.idx % len(self.tokens)]
                    req = (f"GET /v1/stream HTTP/1.1\r\nHost: {a.host}:{a.port}\r\n"
                           f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n"
                           "\r\n").encode()
                else:
                    ch = a.channel.encode()
                    req = b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(ch), ch)
                await self._send_all(sock, req)
                if sub.tls:
                    # the C method under SSLSocket.recv; a record is at most 16 KiB
                    sub.read = sock._sslobj.read  # pylint: disable=protected-access
                    sub.bufsize = 16384
                else:
                    sub.read = sock.recv
                self.by_fd[sub.fd] = sub
                self.ep.register(sub.fd, select.EPOLLIN)
            except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
                self.failed += 1
                if self.first_error is None:
                    self.first_error = repr(e)
                sub.closed = True
                sub.why = "connect: " + repr(e)
                sock.close()  # the SSLSocket owns the descriptor once raw is wrapped
                raw.close()
                self._check_ready()

    def _check_ready(self) -> None:
        if self.ready + self.failed >= self.args.n:
            self.ready_event.set()

    # -- the hot path

    def on_epoll(self) -> None:
        by_fd = self.by_fd
        for fd, _ in self.ep.poll(0, 4096):
            sub = by_fd.get(fd)
            if sub is None:
                continue
            # One read per ready socket: OpenSSL (no read-ahead) takes one record from the
            # kernel at a time, so what is left there keeps the socket ready (level-triggered).
            try:
                data = sub.read(sub.bufsize)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError,
                    InterruptedError):
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._close(sub, "EOF")
                continue
            except (OSError, ssl.SSLError) as e:
                self._close(sub, repr(e))
                continue
            if not data:
                self._close(sub, "EOF")
                continue
            self._process(sub, data, now_ns())

    def _close(self, sub: Sub, why: str) -> None:
        if sub.closed:
            return
        sub.closed = True
        sub.why = why
        self.by_fd.pop(sub.fd, None)
        try:
            self.ep.unregister(sub.fd)
        except (ValueError, OSError):
            pass
        try:
            sub.sock.close()
        except OSError:
            pass
        if sub.state == 0:
            self.failed += 1
            if self.first_error is None:
                self.first_error = why
            self._check_ready()

    def _process(self, sub: Sub, data: bytes, t: int) -> None:
        buf = sub.buf + data if sub.buf else data
        if sub.state == 0:
            if self.args.mode == "raised":
                if not buf.startswith(b"HTTP/1.1 200") and len(buf) >= 12:
                    self._close(sub, "HTTP " + buf[:60].decode("latin-1").split("\r\n")[0])
                    return
                if b": connected" not in buf:
                    sub.buf = buf
                    return
            else:
                m = SUBSCRIBED_RE.search(buf)
                if m is None:
                    sub.buf = buf
                    return
                buf = buf[m.end():]  # the subscribe reply carries no event
            sub.state = 1
            self.ready += 1
            self._check_ready()
        sub.nbytes += len(data)
        end = buf.rfind(b"\n\n")
        if end < 0:
            sub.buf = buf
            return
        sub.buf = buf[end + 2:]
        block = buf[:end]
        sub.events += block.count(b"event: ")
        found = EVENT_RE.findall(block)
        if found:
            counts = sub.counts
            ncounts = len(counts)
            lat_append = self.lat.append
            seq_append = self.lat_seq.append
            first = self.seq_first
            last = self.seq_last
            for s, ts in found:
                seq = int(s)
                lat_append(t - int(ts))
                seq_append(seq)
                if seq < ncounts:
                    c = counts[seq]
                    if c < 255:
                        counts[seq] = c + 1
                    if not first[seq]:
                        first[seq] = t
                    last[seq] = t
                else:
                    sub.extra += 1
            self.ours += len(found)
        if self.args.mode == "raised" and SSE_END in data:
            self._close(sub, "the server ended the stream")

    # -- the run

    async def run(self) -> int:
        a = self.args
        sem = asyncio.Semaphore(a.concurrency)
        self.subs = [Sub(i, a.max_posts) for i in range(a.n)]
        self.loop.add_reader(self.ep.fileno(), self.on_epoll)
        t0 = time.monotonic()
        tasks = [asyncio.ensure_future(self.open_one(s, sem)) for s in self.subs]
        try:
            await asyncio.wait_for(self.ready_event.wait(), a.connect_timeout)
        except asyncio.TimeoutError:
            pass
        opened = self.ready
        elapsed = time.monotonic() - t0
        for t in tasks:
            if not t.done():
                t.cancel()
        if self.first_error:
            print(f"fanout: {a.n - opened} subscriber(s) not up; first error: {self.first_error}",
                  file=sys.stderr)
        write_atomic(a.ready_file, f"{opened} {a.n - opened} {elapsed:.2f}\n")

        # wait for the poster (or for SIGTERM / --hold)
        stop = asyncio.Event()
        self.loop.add_signal_handler(signal.SIGTERM, stop.set)
        self.loop.add_signal_handler(signal.SIGINT, stop.set)
        deadline = time.monotonic() + a.hold
        while not os.path.exists(a.done_file):
            if stop.is_set() or time.monotonic() > deadline:
                self._close_all()
                return 0 if opened == a.n else 1
            await asyncio.sleep(0.05)
        t_done = now_ns()
        sched, accepted = read_posts(a)
        want = len(accepted)
        live = [s for s in self.subs if s.state == 1 and not s.closed]
        drain_deadline = time.monotonic() + a.drain
        checked = 0.0
        while time.monotonic() < drain_deadline and not stop.is_set():
            live = [s for s in self.subs if s.state == 1 and not s.closed]
            if self.ours >= want * len(live) and time.monotonic() - checked > 1:
                checked = time.monotonic()  # the full check costs ~0.1 s: at most once a second
                if self._all_have(live, accepted):
                    break
            await asyncio.sleep(0.05)
        drained_s = (now_ns() - t_done) / 1e9
        rc = await self.verdict(opened, drained_s)
        self._close_all()
        return rc

    def load(self, deliveries: str, subscribers: str) -> None:
        """The state `subscribe.c` left (its --result.deliveries and .subscribers), as if
        this process had read the streams itself."""
        with open(subscribers, encoding="utf-8") as f:
            for i, line in enumerate(f):
                state, closed, events, nbytes, why = line.rstrip("\n").split(" ", 4)
                sub = Sub(i, self.args.max_posts)
                sub.state, sub.closed = int(state), closed == "1"
                sub.events, sub.nbytes = int(events), int(nbytes)
                sub.why = "" if why == "-" else why
                self.subs.append(sub)
        max_posts = self.args.max_posts
        first, last = self.seq_first, self.seq_last
        with open(deliveries, "rb") as f:
            for idx, seq, t, lat in struct.iter_unpack("<iiqq", f.read()):
                self.lat.append(lat)
                self.lat_seq.append(seq)
                sub = self.subs[idx]
                if 0 <= seq < max_posts:
                    if sub.counts[seq] < 255:
                        sub.counts[seq] += 1
                    if not first[seq]:
                        first[seq] = t
                    last[seq] = t
                else:
                    sub.extra += 1
                self.ours += 1

    async def verdict(self, opened: int, drained_s: float) -> int:
        """Write --result from what the subscribers received."""
        a = self.args
        sched, accepted = read_posts(a)
        want = len(accepted)
        acc_set = set(accepted)
        lost = 0
        dup = 0
        subs_missing = 0
        for s in self.subs:
            if s.state != 1:
                continue
            miss = 0
            for seq in accepted:
                c = s.counts[seq] if seq < len(s.counts) else 0
                if c == 0:
                    miss += 1
                elif c > 1:
                    dup += c - 1
            lost += miss
            if miss:
                subs_missing += 1
        unexpected = sum(s.extra for s in self.subs)
        for s in self.subs:  # deliveries of seqs the poster did not count as accepted
            for seq, c in enumerate(s.counts):
                if c and seq not in acc_set:
                    unexpected += c
        other_events = sum(s.events for s in self.subs) - self.ours
        disconnected = [s for s in self.subs if s.state == 1 and s.closed]
        lat = sorted(self.lat)
        # raised: from each post's commit (--commits-file: "seq realtime_ns" per post, written
        # by the bench from the database once the poster is done) instead of from its send
        commit_lat = []
        commits_matched = 0
        if a.commits_file:
            wait_until = time.monotonic() + 30
            while not os.path.exists(a.commits_file) and time.monotonic() < wait_until:
                await asyncio.sleep(0.05)
            commit_mono = {}
            if os.path.exists(a.commits_file):
                # CLOCK_REALTIME (PostgreSQL's clock) -> CLOCK_MONOTONIC (ours)
                offset = time.clock_gettime_ns(time.CLOCK_REALTIME) - now_ns()
                with open(a.commits_file, encoding="ascii") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) == 2:
                            commit_mono[int(parts[0])] = int(parts[1]) - offset
            commits_matched = sum(1 for q in accepted if q in commit_mono)
            for i, q in enumerate(self.lat_seq):
                c = commit_mono.get(q)
                if c is not None and q in sched:
                    # receive - commit = (receive - send) + (send - commit)
                    commit_lat.append(self.lat[i] + sched[q][1] - c)
            commit_lat.sort()
        # time until the LAST subscriber had each post
        first, last = self.seq_first, self.seq_last
        spread = sorted(last[q] - sched[q][1] for q in accepted if q < len(last) and last[q])
        ack_lat = sorted(first[q] - sched[q][2] for q in accepted
                         if q < len(first) and first[q] and sched[q][2] > 0)
        sends = sorted(v[1] for v in sched.values())
        acks = sorted(v[2] - v[1] for v in sched.values() if v[2] > 0)
        late = sorted(v[1] - v[0] for v in sched.values())
        nbytes = sum(s.nbytes for s in self.subs)
        nevents = sum(s.events for s in self.subs)
        res = {
            "mode": a.mode,
            "subscribers": a.n,
            "connected": opened,
            "disconnected_during_run": len(disconnected),
            "disconnect_reasons": sorted({s.why for s in disconnected})[:5],
            "posts_accepted": want,
            "posts_logged": len(sched),
            "expected_deliveries": want * opened,
            "deliveries": self.ours,
            "lost": lost,
            "subscribers_missing_some": subs_missing,
            "duplicates": dup,
            "unexpected": unexpected,
            "other_events": other_events,
            "drain_s": round(drained_s, 2),
            "post_span_s": round((sends[-1] - sends[0]) / 1e9, 2) if len(sends) > 1 else 0,
            "posts_per_s": (round((len(sends) - 1) / ((sends[-1] - sends[0]) / 1e9), 1)
                            if len(sends) > 1 and sends[-1] > sends[0] else 0),
            "post_ack_p50_ms": round(percentile(acks, 50) / 1e6, 2) if acks else None,
            "post_ack_p99_ms": round(percentile(acks, 99) / 1e6, 2) if acks else None,
            "post_ack_max_ms": round(acks[-1] / 1e6, 2) if acks else None,
            "post_late_max_ms": round(late[-1] / 1e6, 2) if late else None,
            "bytes_per_event": round(nbytes / nevents) if nevents else 0,
            "commits_matched": commits_matched,
        }
        for name, vals in (("lat", lat), ("last_sub", spread), ("from_ack_first", ack_lat),
                           ("commit_lat", commit_lat)):
            for p in (50, 90, 99, 99.9):
                v = percentile(vals, p)
                res[f"{name}_p{p}_ms".replace(".", "_")] = None if v is None else round(v / 1e6, 2)
            res[f"{name}_max_ms"] = round(vals[-1] / 1e6, 2) if vals else None
            res[f"{name}_min_ms"] = round(vals[0] / 1e6, 2) if vals else None
        write_atomic(a.result, json.dumps(res, indent=1) + "\n")
        return 0

    def _all_have(self, live, accepted) -> bool:
        for s in live:
            counts = s.counts
            for seq in accepted:
                if seq >= len(counts) or counts[seq] == 0:
                    return False
        return True

    def _close_all(self) -> None:
        try:
            self.loop.remove_reader(self.ep.fileno())
        except (ValueError, OSError):
            pass
        for s in self.subs:
            if s.sock is not None and not s.closed:
                s.closed = True
                try:
                    s.sock.close()
                except OSError:
                    pass


def read_posts(a):
    """The poster's log: {seq: (scheduled, send, ack, status)} and the accepted seqs."""
    accepted = []
    sched = {}
    with open(a.posts_file, encoding="ascii") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 5:
                continue
            seq, sch, snd, ack, status = (int(x) for x in parts)
            sched[seq] = (sch, snd, ack, status)
            ok = (status == 201) if a.mode == "raised" else (status >= 0)
            if ok:
                accepted.append(seq)
    return sched, accepted


def cmd_verdict(args) -> int:
    async def main() -> int:
        subs = Subscribers(args)
        subs.load(args.deliveries, args.subscribers)
        return await subs.verdict(args.opened, args.drained_s)

    return asyncio.run(main())


def cmd_subscribe(args) -> int:
    raise_nofile(args.n)

    async def main() -> int:
        return await Subscribers(args).run()

    return asyncio.run(main())


# ---------------------------------------------------------------- the poster


def cmd_publish(args) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    total = int(round(args.rate * args.seconds))
    interval = 1e9 / args.rate
    log = []  # (seq, scheduled, send, ack, status)
    log_lock = threading.Lock()
    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    if args.mode == "raised":
        with open(args.token_file, encoding="ascii") as f:
            token = f.read().strip()
        head = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        jobs: "queue.Queue" = queue.Queue()

        ready = threading.Barrier(args.conns + 1)

        def worker():
            conn = None
            try:  # connect (TLS handshake) before the schedule starts
                conn = http.client.HTTPSConnection(args.host, args.port, context=ctx, timeout=30)
                conn.connect()
            except OSError:
                conn = None
            ready.wait()
            while True:
                job = jobs.get()
                if job is None:
                    break
                seq, sch = job
                status = -1
                t_send = now_ns()
                body = json.dumps({
                    "subject_id": args.subject, "category": "risky_associate",
                    "summary": f"bench-stream {seq} {t_send}",
                    "occurred_at": "2026-01-01T10:00:00Z", "risk_level": "high",
                    "grading": {"source": 1, "assessment": "A", "handling": "P"}})
                for attempt in (1, 2):
                    try:
                        if conn is None:
                            conn = http.client.HTTPSConnection(args.host, args.port,
                                                               context=ctx, timeout=30)
                        conn.request("POST", "/v1/intelligence", body=body, headers=head)
                        r = conn.getresponse()
                        r.read()
                        status = r.status
                        if r.getheader("Connection", "").lower() == "close":
                            conn.close()
                            conn = None
                        break
                    except (OSError, http.client.HTTPException):
                        if conn is not None:
                            conn.close()
                        conn = None
                        if attempt == 2:
                            status = -1
                t_ack = now_ns()
                with log_lock:
                    log.append((seq, sch, t_send, t_ack, status))
            if conn is not None:
                conn.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.conns)]
        for t in threads:
            t.start()
        ready.wait()
        t0 = now_ns() + 50_000_000
        for seq in range(total):
            if stop.is_set():
                break
            sch = t0 + int(seq * interval)
            delay = (sch - now_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            jobs.put((seq, sch))
        for _ in threads:
            jobs.put(None)
        for t in threads:
            t.join(timeout=60)
    else:
        raw = socket.create_connection((args.host, args.port), timeout=10)
        sock = ctx.wrap_socket(raw, server_hostname=args.host) if ctx else raw
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ch = args.channel.encode()
        rbuf = b""
        t0 = now_ns() + 50_000_000
        for seq in range(total):
            if stop.is_set():
                break
            sch = t0 + int(seq * interval)
            delay = (sch - now_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            t_send = now_ns()
            text = f"bench-stream {seq} {t_send}"
            head = f'event: redis\ndata: {{"summary":"{text}","pad":"'
            payload = (head + "x" * max(0, args.size - len(head) - 4) + '"}\n\n').encode()
            sock.sendall(b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                         % (len(ch), ch, len(payload), payload))
            while b"\r\n" not in rbuf:
                chunk = sock.recv(4096)
                if not chunk:
                    raise SystemExit("fanout: redis closed the publisher connection")
                rbuf += chunk
            line, rbuf = rbuf.split(b"\r\n", 1)
            t_ack = now_ns()
            status = int(line[1:]) if line[:1] == b":" else -1
            log.append((seq, sch, t_send, t_ack, status))
        sock.close()
    log.sort()
    with open(args.out, "w", encoding="ascii") as f:
        for row in log:
            f.write(" ".join(str(x) for x in row) + "\n")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    write_atomic(args.done_file, f"{len(log)} {ru.ru_utime + ru.ru_stime:.3f}\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sp = ap.add_subparsers(dest="cmd", required=True)
    for name in ("subscribe", "publish", "verdict"):
        p = sp.add_parser(name)
        p.add_argument("--mode", choices=("raised", "redis"), required=True)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--cafile", help="TLS with this CA (omit for plain TCP)")
        p.add_argument("--channel", default="bench-stream")
        p.add_argument("--done-file", required=True)
    for name in ("subscribe", "verdict"):
        add_subscribe_args(sp.choices[name])
    v = sp.choices["verdict"]
    v.add_argument("--deliveries", required=True, help="subscribe.c: its deliveries")
    v.add_argument("--subscribers", required=True, help="subscribe.c: its subscribers")
    v.add_argument("--opened", type=int, required=True)
    v.add_argument("--drained-s", type=float, required=True)
    p = sp.choices["publish"]
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", required=True)
    p.add_argument("--token-file")
    p.add_argument("--subject")
    p.add_argument("--size", type=int, default=600, help="redis: bytes per message payload")
    p.add_argument("--conns", type=int, default=32, help="raised: keep-alive connections")
    args = ap.parse_args()
    if args.cmd == "verdict":
        return cmd_verdict(args)
    if args.cmd == "subscribe":
        if args.mode == "raised" and not args.tokens_file:
            ap.error("subscribe --mode raised needs --tokens-file")
        return cmd_subscribe(args)
    if args.mode == "raised" and not (args.token_file and args.subject):
        ap.error("publish --mode raised needs --token-file and --subject")
    return cmd_publish(args)


def add_subscribe_args(s) -> None:
    s.add_argument("-n", type=int, default=1000)
    s.add_argument("--tokens-file")
    s.add_argument("--ready-file", required=True)
    s.add_argument("--posts-file", required=True)
    s.add_argument("--result", required=True)
    s.add_argument("--drain", type=float, default=15.0)
    s.add_argument("--hold", type=float, default=180.0)
    s.add_argument("--max-posts", type=int, default=5000)
    s.add_argument("--commits-file", help="raised: 'seq realtime_ns' of each post's commit")
    s.add_argument("--concurrency", type=int, default=32, help="connections opened at once")
    s.add_argument("--connect-timeout", type=float, default=60.0)


if __name__ == "__main__":
    sys.exit(main())
