#!/usr/bin/env python3
"""World builder for tests/bench/actions: young people through the API.

    world.py --port P --cafile CA --token-file F --hubs H1,H2,.. --mine AGENCY
             --others A1,A2,.. -n N [--mine-every K] [--team MIN-MAX] [--conns C] [--seed S]

POSTs N young people to /v1/subjects as the hub manager whose bearer token is in
--token-file: young person i (0-based) goes to hub i mod len(hubs), reference
BENCH-ACT-00001.., aged 12 to 17; its team is MIN-MAX agencies drawn (seeded) from
--others, plus the measured agency --mine on every K-th young person (i mod K == 0).
C threads, one keep-alive TLS connection each. Every reply must be 201; the first
failure stops the run (exit 1, the reply on stderr). Prints "<created> <seconds>".
Standard library only.
"""

import argparse
import http.client
import json
import random
import ssl
import sys
import threading
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--hubs", required=True)
    ap.add_argument("--mine", required=True)
    ap.add_argument("--others", required=True)
    ap.add_argument("-n", type=int, required=True)
    ap.add_argument("--mine-every", type=int, default=4)
    ap.add_argument("--team", default="3-5")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20261205)
    a = ap.parse_args()

    token = open(a.token_file).read().strip()
    hubs = a.hubs.split(",")
    others = a.others.split(",")
    lo, hi = (int(x) for x in a.team.split("-"))
    hi = min(hi, len(others))
    lo = min(lo, hi)
    rnd = random.Random(a.seed)
    statuses = ["in_care", "edge_of_care", "edging_to_care", "care_leaver"]
    bodies = []
    for i in range(a.n):
        team = rnd.sample(others, rnd.randint(lo, hi))
        if i % a.mine_every == 0:
            team.append(a.mine)
        year = time.gmtime().tm_year - 13 - (i % 5)  # 12 to 17 years old today
        bodies.append(json.dumps({
            "hub_id": hubs[i % len(hubs)],
            "reference": "BENCH-ACT-%05d" % (i + 1),
            "given_name": "Bench%d" % (i + 1),
            "family_name": "Actions",
            "date_of_birth": "%04d-%02d-%02d" % (year, 1 + i % 12, 1 + i % 28),
            "status": statuses[i % len(statuses)],
            "key_worker": "Bench key worker %d" % (i % 37),
            "team": team,
        }))

    ctx = ssl.create_default_context(cafile=a.cafile)
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "error": None}
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def worker():
        conn = http.client.HTTPSConnection("127.0.0.1", a.port, context=ctx, timeout=60)
        while True:
            with lock:
                if state["error"] is not None or state["next"] >= len(bodies):
                    break
                i = state["next"]
                state["next"] += 1
            try:
                conn.request("POST", "/v1/subjects", body=bodies[i], headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    state["error"] = state["error"] or "young person %d: %s" % (i + 1, e)
                break
            with lock:
                if resp.status != 201:
                    state["error"] = state["error"] or "young person %d: HTTP %d: %s" % (
                        i + 1, resp.status, body[:300].decode(errors="replace"))
                    break
                state["done"] += 1
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(max(1, a.conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["error"] is not None:
        print("world.py: " + state["error"], file=sys.stderr)
        return 1
    print("%d %.1f" % (state["done"], time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
