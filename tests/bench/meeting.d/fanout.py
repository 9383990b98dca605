# tests/bench/meeting-fanout's driver (one run against one raised): a meeting with long
# minutes, updated once while K streams are open; prints how long until every stream had
# the update, raised's resident memory, and /healthz latency from another process meanwhile.
# Usage: fanout.py PORT CA ADMIN_FILE K PID [PEOPLE]
import json, ssl, http.client, sys, threading, time, socket, os, subprocess
PORT = int(sys.argv[1]); CA = sys.argv[2]; ADMIN = sys.argv[3]; K = int(sys.argv[4]); pid = int(sys.argv[5])
PEOPLE = int(sys.argv[6]) if len(sys.argv) > 6 else 50
ctx = ssl.create_default_context(cafile=CA)
adm = dict(l.split(": ", 1) for l in open(ADMIN).read().splitlines() if ": " in l)
def call(method, path, body=None, token=None, hdrs=None):
    c = http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx)
    h = {"Content-Type": "application/json"}
    if token: h["Authorization"] = "Bearer " + token
    h.update(hdrs or {})
    c.request(method, path, json.dumps(body) if body is not None else None, h)
    r = c.getresponse(); data = r.read().decode(); c.close()
    try: j = json.loads(data)
    except Exception: j = data
    return r.status, j
st, s = call("POST", "/v1/sessions", {"username": adm["username"], "password": adm["password"].strip()}); A = s["token"]
tag = str(int(time.time()))
agencies = []
for i in range(5):
    st, ag = call("POST", "/v1/agencies", {"name": "Big %d %s" % (i, tag), "kind": "health"}, A); assert st == 201, ag; agencies.append(ag)
st, hub = call("POST", "/v1/hubs", {"name": "Big Hub " + tag, "local_authority": "Big"}, A); assert st == 201
def user(name, ag, role, hubs=None):
    b = {"username": name + tag, "display_name": name, "agency_id": ag["id"], "role": role, "password": "big-password-" + tag}
    if hubs: b["hub_ids"] = hubs
    st, u = call("POST", "/v1/users", b, A); assert st == 201, u
def login(name):
    st, s = call("POST", "/v1/sessions", {"username": name + tag, "password": "big-password-" + tag}); assert st == 201, s
    return s["token"]
user("mgr", agencies[0], "hub_manager", [hub["id"]]); M = login("mgr")
people = []
for i in range(PEOPLE):
    team = [agencies[0]["id"], agencies[1 + i % 4]["id"]]
    st, p = call("POST", "/v1/subjects", {"hub_id": hub["id"], "reference": "B%d-%s" % (i, tag), "given_name": "Big", "family_name": "P%d" % i,
        "date_of_birth": "2010-03-04", "status": "edge_of_care", "key_worker": "K", "team": team}, M); assert st == 201, p
    people.append(p["id"])
st, m = call("POST", "/v1/meetings", {"hub_id": hub["id"], "title": "Big", "scheduled_for": "2026-12-09T10:00:00Z",
    "subject_ids": people, "invited_agencies": [a["id"] for a in agencies]}, M); assert st == 201, m
text = "".join(chr(97 + i % 23) for i in range(20000))
for f in range(0, PEOPLE, 5):
    mins = [{"subject_id": p, "worried_about": text, "working_well": text, "needs_to_happen": text, "decisions": text} for p in people[f:f+5]]
    st, u = call("PATCH", "/v1/meetings/" + m["id"], {"minutes": mins}, M); assert st == 200, u
# K readers across the 5 agencies, 10 streams per user
tokens = []
for i in range(K):
    if i % 10 == 0:
        user("u%d-" % i, agencies[(i // 10) % 5], "practitioner"); nm = "u%d-" % i
    tokens.append(login(nm))
got = [0] * K; done_at = [0.0] * K
def reader(i):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", PORT)), server_hostname="127.0.0.1")
    s.sendall(("GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % tokens[i]).encode())
    buf = b""
    while True:
        d = s.recv(1 << 20)
        if not d: break
        got[i] += len(d)
        buf = (buf + d)[-200:]
        if got[i] > 1000 and done_at[i] == 0 and b"}\n\n" in buf and mark[0]:
            done_at[i] = time.time()
mark = [False]
ths = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(K)]
for t in ths: t.start()
time.sleep(2)
def rss():
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS") or l.startswith("VmHWM"): yield l.split()[1]
open("/proc/%d/clear_refs" % pid, "w").write("5")
base = [g for g in got]
before = list(rss())
pr = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py"), str(PORT), CA, "6"]); time.sleep(0.5)
mark[0] = True; t0 = time.time()
st, u = call("PATCH", "/v1/meetings/" + m["id"], {"title": "Big 2"}, M); assert st == 200
doclen = len(json.dumps(u))
while time.time() - t0 < 60 and sum(1 for x in done_at if x) < K: time.sleep(0.05)
time.sleep(0.2)
print("meeting document %d bytes; streams that had the update: %d of %d; the last %.2f s after the PATCH was sent; bytes per stream (median) %d" % (doclen, sum(1 for x in done_at if x), K,
      max(done_at) - t0, sorted(g - b for g, b in zip(got, base))[K // 2]))
after = list(rss())
print("resident memory: %s kB before the update, peak %s kB while it went out (VmHWM reset first)" % (before[0], after[1]))
pr.wait()
