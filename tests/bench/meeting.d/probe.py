# /healthz again and again for a while, from its own process (the driver's threads hold the
# GIL): how long raised's loops stand still. Usage: probe.py PORT CA SECONDS
import ssl, http.client, sys, time
PORT = int(sys.argv[1])
ctx = ssl.create_default_context(cafile=sys.argv[2])
end = time.time() + float(sys.argv[3]); lat = []
while time.time() < end:
    c = http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx); c.connect()
    t = time.time(); c.request("GET", "/healthz"); c.getresponse().read(); lat.append(time.time() - t); c.close()
    time.sleep(0.01)
lat.sort(); print("healthz (separate process): n=%d max %.0f ms p99 %.0f p50 %.0f ms" % (len(lat), lat[-1]*1e3, lat[int(len(lat)*.99)]*1e3, lat[len(lat)//2]*1e3))
