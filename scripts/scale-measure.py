"""The measuring half of scripts/scale (run with /usr/bin/python3: needs slixmpp).

Given a running server (its env file) and a populated data dir, it:
1. logs in `afirst`, `zlast` (subscribers of `scale-big`, sorting first and last among its
   subscribers) and `publisher` (its owner) as real slixmpp clients, available;
2. starts the release `roost` on the data dir and measures start-up: from just before the
   process is spawned to the first disco#info *result* from the service (connected and
   answering; before it is connected the server answers with an error at once);
3. reads VmRSS / VmHWM of the roost process from /proc/PID/status;
4. publishes ROUNDS items to `scale-big` and measures, from just before each publish IQ
   is written, the arrival of the notification at `afirst` (the first of the fan-out), at
   `zlast` (the last one) and of the publish result;
5. prints one JSON line.
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import harness  # noqa: E402
from slixmpp.xmlstream.handler import Callback  # noqa: E402
from slixmpp.xmlstream.matcher import MatchXPath  # noqa: E402

CLIENT_NS = "jabber:client"
EVENT_NS = "http://jabber.org/protocol/pubsub#event"


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) // 1024  # kB -> MB
    return out


def cpu_seconds(pid):
    """User + system CPU time the process used so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Arrivals:
    """Arrival time (monotonic) of the first notification carrying each marker."""

    def __init__(self, c, name):
        self.seen = {}
        c.register_handler(Callback(f"scale-{name}", MatchXPath("{%s}message" % CLIENT_NS), self._on))

    def _on(self, msg):
        now = time.monotonic()
        ev = msg.xml.find("{%s}event" % EVENT_NS)
        if ev is None:
            return
        text = "".join(ev.itertext())
        i = text.find("~M")
        if i >= 0:
            marker = text[i:text.find("~", i + 2) + 1]
            self.seen.setdefault(marker, now)

    async def wait(self, marker, timeout):
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.001)
        return self.seen[marker]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", required=True)
    ap.add_argument("--roost", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--password", default="scale")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--node", default="scale-big")
    ap.add_argument("--startup-timeout", type=float, default=600)
    a = ap.parse_args()
    env = harness.read_env(a.env)
    svc = env["SERVICE"]

    async with harness.connected_client(env, "afirst", a.password, "scale") as first, \
            harness.connected_client(env, "zlast", a.password, "scale") as last, \
            harness.connected_client(env, "publisher", a.password, "scale") as pub:
        for c in (first, last, pub):
            c.send_presence()
        arr_first, arr_last = Arrivals(first, "first"), Arrivals(last, "last")
        await asyncio.sleep(0.5)

        argv = [a.roost, "--server", f"127.0.0.1:{env['COMPONENT_PORT']}", "--jid", svc,
                "--secret", env["SECRET"], "--data-dir", a.data_dir, "--log", "info",
                "--rate-limit", "0"]
        logf = open(a.log, "ab")
        result = {"loadavg_start": loadavg()}
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            polls = 0
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"roost exited during start-up (rc={proc.returncode}); see {a.log}")
                if time.monotonic() - t0 > a.startup_timeout:
                    raise SystemExit(f"roost not ready within {a.startup_timeout}s; see {a.log}")
                polls += 1
                reply = await harness.raw_iq(
                    pub, f"<iq type='get' to='{svc}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
                    timeout=5)
                if reply.get("type") == "result":
                    break
                if polls % 50 == 0:
                    print(f"scale-measure: waiting for roost ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
                await asyncio.sleep(0.01)
            startup = time.monotonic() - t0
            result["startup_s"] = round(startup, 3)
            # CPU time to ready: what start-up costs whatever else runs on the machine.
            result["startup_cpu_s"] = round(cpu_seconds(proc.pid), 2)
            st = proc_status(proc.pid)
            result["rss_ready_mb"], result["hwm_ready_mb"] = st["VmRSS"], st["VmHWM"]
            print(f"scale-measure: ready after {startup:.2f} s ({result['startup_cpu_s']} s of CPU), "
                  f"RSS {st['VmRSS']} MB (peak {st['VmHWM']} MB)", file=sys.stderr)
            # Give the start-up's loose ends (presence probes, sled's threads) a moment.
            await asyncio.sleep(2)
            st = proc_status(proc.pid)
            result["rss_settled_mb"] = st["VmRSS"]

            firsts, lasts, acks = [], [], []
            for r in range(a.rounds):
                marker = f"~M{os.getpid()}-{r}-{time.time_ns()}~"
                xml = (f"<iq type='set' to='{svc}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
                       f"<publish node='{a.node}'><item><entry xmlns='urn:roost:scale'>{marker}</entry></item>"
                       f"</publish></pubsub></iq>")
                t = time.monotonic()
                ack_task = asyncio.ensure_future(harness.raw_iq(pub, xml, timeout=120))
                tf = await arr_first.wait(marker, 120)
                tl = await arr_last.wait(marker, 300)
                reply = await ack_task
                ta = time.monotonic()
                if reply.get("type") != "result" or tf is None or tl is None:
                    raise SystemExit(f"round {r}: publish {reply.get('type')}, first {tf}, last {tl}")
                firsts.append((tf - t) * 1000)
                lasts.append((tl - t) * 1000)
                acks.append((ta - t) * 1000)
                print(f"scale-measure: round {r + 1}/{a.rounds}: first notification {firsts[-1]:.1f} ms, "
                      f"last {lasts[-1]:.0f} ms", file=sys.stderr)
                # Let the server's bounces for the unregistered subscribers drain.
                await asyncio.sleep(max(1.0, lasts[-1] / 1000))
            result["first_ms"] = [round(x, 1) for x in firsts]
            result["first_ms_median"] = round(statistics.median(firsts), 1)
            result["last_ms"] = [round(x) for x in lasts]
            result["last_ms_median"] = round(statistics.median(lasts))
            result["ack_ms_upper_bound"] = [round(x) for x in acks]
            st = proc_status(proc.pid)
            result["rss_end_mb"], result["hwm_end_mb"] = st["VmRSS"], st["VmHWM"]
            result["loadavg_end"] = loadavg()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            logf.close()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
