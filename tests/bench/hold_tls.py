#!/usr/bin/env python3
"""Open N TLS connections to a server, complete every handshake, and hold them idle.

Used by tests/bench/run to measure a server's memory per idle TLS connection.

    hold_tls.py --port P --cafile CA -n N --ready-file F [--host H] [--hold SECONDS]

Connections are opened one after the other (blocking handshake, certificate verified
against CA, host name = the address). Once all are up the script writes
"<opened> <failed> <seconds>" to F (atomically) and then sleeps, sending nothing, until
SIGTERM/SIGINT or --hold seconds pass; then it closes everything and exits 0. It exits 1
if any connection failed (after still writing F, so the caller sees the counts).
Standard library only.
"""

import argparse
import os
import resource
import signal
import socket
import ssl
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--hold", type=float, default=120.0, help="give up holding after this long")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-connection connect+handshake")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.n + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))

    stop = False

    def on_signal(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    ctx = ssl.create_default_context(cafile=args.cafile)
    conns = []
    failed = 0
    first_error = None
    t0 = time.monotonic()
    for _ in range(args.n):
        if stop:
            break
        raw = None
        try:
            raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
            tls = ctx.wrap_socket(raw, server_hostname=args.host)  # handshake happens here
            tls.settimeout(None)
            conns.append(tls)
        except (OSError, ssl.SSLError) as e:
            failed += 1
            if first_error is None:
                first_error = e
            if raw is not None:
                raw.close()
    elapsed = time.monotonic() - t0
    if first_error is not None:
        print(f"hold_tls: {failed} connection(s) failed; first error: {first_error}", file=sys.stderr)

    tmp = args.ready_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{len(conns)} {failed} {elapsed:.2f}\n")
    os.replace(tmp, args.ready_file)

    deadline = time.monotonic() + args.hold
    while not stop and time.monotonic() < deadline:
        time.sleep(0.1)
    for c in conns:
        try:
            c.close()
        except OSError:
            pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
