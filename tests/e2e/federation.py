#!/usr/bin/python3
"""Federated log distribution: Roost on one Prosody, its subscribers on others, over s2s.

    /usr/bin/python3 tests/e2e/federation.py [--lines N] [--servers 3] [--keep] [-v]

Three Prosody instances with s2s (plain, dialback, no TLS), each on its own loopback
address for s2s port 5269: a.example (127.0.0.2), b.example (127.0.0.3), c.example
(127.0.0.4); the names (and pubsub.a.example) are mapped in /etc/hosts, idempotently
(we run as root; Prosody reads /etc/hosts through unbound.hoststxt, see scripts/prosody).
c2s and component ports stay on 127.0.0.1, free ones, as in the other e2e tests.

Roost is attached to A as pubsub.a.example; roost-log-ship runs on A (alice@a.example);
a roost-log-sink runs on B (bob@b.example) and one on C (carol@c.example), both
subscribing to pubsub.a.example across s2s. 100 000 lines are shipped in ten chunks while
the sinks are killed (SIGKILL) and restarted several times and Roost is restarted; at the
end every sink's file must be byte-identical to the source, and the shipper's state must
count every line. B logs at debug level so that `s2s_stanzas()` can count the stanzas
between A and B (printed at the end); FEDERATION_DEBUG=1 puts A and C at debug level too.

Not collected by run.py (no test_ prefix): it needs its own servers; scripts/test runs it
as the "e2e federation" step. Only one run at a time per machine (port 5269 on the fixed
addresses): a lock file serializes concurrent runs. Every process it started is stopped at
the end, also on failure, Ctrl-C or SIGTERM. Last line: "N passed, M failed".
"""

import argparse
import asyncio
import fcntl
import logging
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import slixmpp  # noqa: F401
except ImportError:
    sys.exit("slixmpp not importable: run with /usr/bin/python3 (Debian python3-slixmpp)")

import harness  # noqa: E402
from logship import PLAIN, SHIP, SINK, Proc, build, compare, lines, read_state, size, until  # noqa: E402

# domain -> loopback address of its s2s listener.
DOMAINS = {"a.example": "127.0.0.2", "b.example": "127.0.0.3", "c.example": "127.0.0.4"}
SERVICE = "pubsub.a.example"
USERS = {"a.example": "alice", "b.example": "bob", "c.example": "carol"}
HOSTS_TAG = "# roost e2e federation"
LOCK = os.path.join(tempfile.gettempdir(), "roost-e2e-federation.lock")
MAX_UNIT = 8 * 1024  # roost_examples::MAX_UNIT
FEDS = []  # for the last-resort teardown


def ensure_hosts(mapping, path="/etc/hosts"):
    """Maps every name of `mapping` (name -> address) in /etc/hosts, adding only the lines
    that are missing, so running it again changes nothing. Fails if a name is already
    mapped to another address (that entry would win)."""
    with open(path) as f:
        text = f.read()
    have = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            have.setdefault(name, fields[0])
    missing = []
    for name, addr in mapping.items():
        if name not in have:
            missing.append(f"{addr}\t{name}\t{HOSTS_TAG}\n")
        elif have[name] != addr:
            raise RuntimeError(f"{path} maps {name} to {have[name]}, the test needs {addr}")
    if missing:
        with open(path, "a") as f:
            if text and not text.endswith("\n"):
                f.write("\n")
            f.writelines(missing)


S2S_LINE = re.compile(r"\b(Received|Sending)\[s2s(?:in|out)\]: <(iq|message|presence)\b")


def s2s_stanzas(log_path, since=0):
    """Counts the stanzas a Prosody instance exchanged over s2s, from its log (which must
    be at debug level: PROSODY_LOGLEVEL=debug), from byte offset `since` on.

    Returns {"in": {"iq": n, "message": n, "presence": n}, "out": {...}}: "in" are the
    stanzas received from any peer (`Received[s2sin]` / `Received[s2sout]` lines, written
    by Prosody's stanza router), "out" those sent to any peer (`Sending[s2s…]`, written by
    mod_s2s for every stanza it writes, queued ones included). Stream-level elements
    (dialback, features) are not counted. With only two servers talking (as B and A
    here: B's only peer is A), B's "in" is exactly A -> B and its "out" B -> A. Take
    `os.path.getsize(log_path)` before a measurement and pass it as `since`."""
    counts = {"in": {"iq": 0, "message": 0, "presence": 0}, "out": {"iq": 0, "message": 0, "presence": 0}}
    with open(log_path, "rb") as f:
        f.seek(since)
        for raw in f:
            m = S2S_LINE.search(raw.decode("utf-8", "replace"))
            if m:
                counts["in" if m.group(1) == "Received" else "out"][m.group(2)] += 1
    return counts


def units(data):
    return sum(max(1, -(-len(l) // MAX_UNIT)) for l in data.split(b"\n")[:-1])


class Federation:
    """The servers, Roost, shipper and sinks of one run; `teardown()` stops them all."""

    def __init__(self, tmp, roost_bin, domains, keepalive=2):
        self.tmp = tmp
        self.roost_bin = roost_bin
        self.keepalive = keepalive
        self.servers = {}
        for d in domains:
            extra = {"DOMAIN": d, "PROSODY_S2S": "1", "PROSODY_S2S_INTERFACE": DOMAINS[d],
                     "SERVICE": f"pubsub.{d}"}
            if d == "b.example" or os.environ.get("FEDERATION_DEBUG"):
                extra["PROSODY_LOGLEVEL"] = "debug"  # for s2s_stanzas(); all with $FEDERATION_DEBUG
            self.servers[d] = harness.Server("prosody", os.path.join(tmp, d), extra)
        self.roost = None
        self.procs = []
        self.extra = []  # more roost processes (the relay)

    def env(self, domain):
        return self.servers[domain].env

    async def setup(self):
        for d, srv in self.servers.items():
            await asyncio.to_thread(srv.start)
            await asyncio.to_thread(srv.register, USERS[d], harness.PASSWORD)
        self.roost = harness.RoostProcess(self.roost_bin, self.env("a.example"),
                                          os.path.join(self.tmp, "roost-data"),
                                          os.path.join(self.tmp, "roost.log"), keepalive=self.keepalive)
        self.roost.start()
        await self.wait_ready("a.example", 30)
        # The service must answer across s2s too before anything is measured.
        for d in self.servers:
            if d != "a.example":
                await self.wait_ready(d, 60)

    async def disco(self, domain, timeout=5):
        """True when USERS[domain] gets a disco#info result from the service."""
        try:
            async with harness.connected_client(self.env(domain), USERS[domain], timeout=timeout) as c:
                iq = await c["xep_0030"].get_info(jid=SERVICE, cached=False, timeout=timeout)
                return iq["type"] == "result"
        except Exception:
            return False

    async def wait_ready(self, domain, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.roost.alive():
                raise RuntimeError(f"roost exited (rc={self.roost.proc.returncode}):\n{self.roost.log_tail(30)}")
            if await self.disco(domain, timeout=min(10, max(1, deadline - time.monotonic()))):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{SERVICE} did not answer disco#info from {domain} within {timeout}s")

    def proc(self, name, argv):
        p = Proc(self.tmp, name, argv)
        self.procs.append(p)
        return p

    def teardown(self):
        for r in self.extra:
            try:
                r.stop()
            except Exception as e:
                print(f"# stopping {r.log_path}: {e}", flush=True)
        for p in self.procs:
            try:
                p.stop()
            except Exception as e:
                print(f"# stopping {p.name}: {e}", flush=True)
        if self.roost is not None:
            try:
                self.roost.stop()
            except Exception as e:
                print(f"# stopping roost: {e}", flush=True)
        for d, srv in self.servers.items():
            try:
                srv.stop()
            except Exception as e:
                print(f"# stopping {d}: {e}", flush=True)


async def test_federated_logs(fed, n_lines):
    tmp = fed.tmp
    rnd = random.Random(100_000)
    log = os.path.join(tmp, "app.log")
    ship_state = os.path.join(tmp, "ship.state")
    env_a = fed.env("a.example")
    ship = fed.proc("ship", [SHIP, "--jid", "alice@a.example", "--server", f"127.0.0.1:{env_a['C2S_PORT']}", PLAIN,
                             "--service", SERVICE, "--node", "logs", "--create", "--id", "app",
                             "--state", ship_state, log])
    sinks = {}
    for d in fed.servers:
        if d == "a.example":
            continue
        out = os.path.join(tmp, f"collected.{d}.log")
        sinks[d] = (fed.proc(f"sink.{d}", [SINK, "--jid", f"{USERS[d]}@{d}",
                                           "--server", f"127.0.0.1:{fed.env(d)['C2S_PORT']}", PLAIN,
                                           "--service", SERVICE, "--node", "logs", "--out", out]), out)
    source = bytearray()
    written = 0
    chunk = n_lines // 10

    def append(n):
        nonlocal written
        data = lines(written, n, rnd)
        with open(log, "ab") as f:
            f.write(data)
        source.extend(data)
        written += n

    def shipped():
        return int(read_state(ship_state).get("next", "1")) - 1

    def diag():
        got = ", ".join(f"{d}: {size(out)}" for d, (_, out) in sinks.items())
        tails = "\n".join(f"{p.name} log: {p.log_tail(800)}" for p in [ship] + [p for p, _ in sinks.values()])
        return f"source {len(source)} bytes, sinks {got}; shipper state {read_state(ship_state)}\n{tails}"

    async def wait(cond, secs, what):
        await until(cond, secs, what, diag, [ship])

    def sink(d):
        return sinks[d][0]

    ds = list(sinks)
    b, c = ds[0], ds[-1]  # with --servers 2, B plays both parts
    t0 = time.monotonic()
    append(chunk)                                   # 1
    ship.start()
    for p, _ in sinks.values():
        p.start()
    await wait(lambda: all(size(out) > 0 for _, out in sinks.values()), 60, "a sink received nothing")
    append(chunk)                                   # 2
    sink(b).kill()                                  # B away
    append(chunk)                                   # 3
    await wait(lambda: shipped() >= units(bytes(source)) // 2, 60, "shipper made no progress")
    sink(b).start()
    if c != b:
        sink(c).kill()                              # C away across the Roost restart
    append(chunk)                                   # 4
    fed.roost.stop()
    append(chunk)                                   # 5, while Roost is down
    await asyncio.sleep(1.0)
    fed.roost.start()
    await fed.wait_ready("a.example", 30)
    if c != b:
        sink(c).start()
    append(chunk)                                   # 6
    await wait(lambda: all(size(out) >= len(source) * 2 // 5 for _, out in sinks.values()), 90,
               "a sink did not progress after the restart")
    for d in ds:
        sink(d).kill()                              # all away at once
    append(chunk)                                   # 7
    append(chunk)                                   # 8
    sink(b).start()
    append(chunk)                                   # 9
    if c != b:
        sink(c).start()
    await wait(lambda: size(sinks[b][1]) >= len(source) * 3 // 4, 90, "sink B did not catch up after restart")
    sink(b).kill()                                  # B away once more
    append(n_lines - written)                       # 10
    sink(b).start()
    total = units(bytes(source))
    await wait(lambda: shipped() >= total, 120, "shipper did not get every line acknowledged")
    await wait(lambda: all(size(out) >= len(source) for _, out in sinks.values()), 120, "a sink did not catch up")
    dt = time.monotonic() - t0
    await asyncio.sleep(1.0)                        # nothing more (no duplicate) may arrive
    for d, (_, out) in sinks.items():
        with open(out, "rb") as f:
            compare(f.read(), bytes(source), f"{d}'s file")
    assert shipped() == total, f"shipper numbered {shipped()} units, the log has {total}"
    counts = s2s_stanzas(fed.servers[b].log_path)
    print(f"# {written} lines ({len(source)} bytes, {total} units) in {dt:.1f}s to {len(sinks)} remote sinks; "
          f"s2s stanzas seen by {b}: A->B {counts['in']}, B->A {counts['out']}", flush=True)


RELAY = "relay.b.example"
EVENT_NS = "http://jabber.org/protocol/pubsub#event"


async def test_relay_saves_s2s(fed, n_subs=8, n_items=50):
    """The same K subscribers on B, first subscribed straight to pubsub.a.example, then to a
    relay node on B (a second Roost, relay.b.example, mirroring the node): the stanzas A
    sends B over s2s per publish, counted in B's debug log."""
    b_srv = fed.servers["b.example"]
    env_b = fed.env("b.example")
    env_a = fed.env("a.example")
    node = f"ev-{os.urandom(3).hex()}"
    users = [f"s{i}" for i in range(n_subs)]
    for u in users:
        await asyncio.to_thread(b_srv.register, u, harness.PASSWORD)
    relay_env = dict(env_b)
    relay_env["SERVICE"] = RELAY
    relay_env["COMPONENT_PORT"] = env_b.get("RELAY_COMPONENT_PORT", env_b["COMPONENT_PORT"])
    relay = harness.RoostProcess(fed.roost_bin, relay_env, os.path.join(fed.tmp, "relay-data"),
                                 os.path.join(fed.tmp, "relay.log"), keepalive=fed.keepalive,
                                 extra_args=["--relay", f"{node}={SERVICE}/{node}"])
    fed.extra.append(relay)

    async def iq(c, xml, what):
        r = await harness.raw_iq(c, xml, timeout=15)
        assert r.get("type") == "result", f"{what}: {harness.ET.tostring(r, encoding='unicode')[:400]}"
        return r

    def received(inbox, frm):
        n = 0
        for m in inbox.messages:
            if m.get("from") != frm:
                continue
            for items in m.iter("{%s}items" % EVENT_NS):
                if items.get("node") == node:
                    n += len(items.findall("{%s}item" % EVENT_NS))
        return n

    async def publish_and_count(alice, inboxes, frm):
        since = os.path.getsize(b_srv.log_path)
        for i in range(n_items):
            await iq(alice, f"<iq type='set' to='{SERVICE}'><pubsub xmlns='{harness.NS_PUBSUB}'>"
                            f"<publish node='{node}'><item id='{frm}-{i}'><x xmlns='urn:example'>{i}</x>"
                            f"</item></publish></pubsub></iq>", "publish")
        await until(lambda: all(received(ib, frm) >= n_items for ib in inboxes), 60,
                    f"not every subscriber got {n_items} items from {frm}",
                    lambda: str([received(ib, frm) for ib in inboxes]))
        await asyncio.sleep(1.0)  # let the last s2s lines reach the log
        got = [received(ib, frm) for ib in inboxes]
        assert got == [n_items] * len(inboxes), f"items per subscriber from {frm}: {got}"
        return s2s_stanzas(b_srv.log_path, since)["in"]["message"]

    from contextlib import AsyncExitStack
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(harness.connected_client(env_a, "alice"))
        await iq(alice, f"<iq type='set' to='{SERVICE}'><pubsub xmlns='{harness.NS_PUBSUB}'>"
                        f"<create node='{node}'/></pubsub></iq>", "create")
        subs = []
        for u in users:
            c = await stack.enter_async_context(harness.connected_client(env_b, u))
            harness.send_available(c)
            subs.append((u, c, harness.Inbox(c)))
        # 1. Straight to the origin: every publish crosses s2s once per subscriber.
        for u, c, _ in subs:
            await iq(c, f"<iq type='set' to='{SERVICE}'><pubsub xmlns='{harness.NS_PUBSUB}'>"
                        f"<subscribe node='{node}' jid='{u}@b.example'/></pubsub></iq>", "subscribe direct")
        direct = await publish_and_count(alice, [ib for _, _, ib in subs], SERVICE)
        for u, c, _ in subs:
            await iq(c, f"<iq type='set' to='{SERVICE}'><pubsub xmlns='{harness.NS_PUBSUB}'>"
                        f"<unsubscribe node='{node}' jid='{u}@b.example'/></pubsub></iq>", "unsubscribe")
        # 2. Through the relay node on B: once per publish, whatever the subscriber count.
        relay.start()
        deadline = time.monotonic() + 60
        for u, c, _ in subs:
            while True:
                r = await harness.raw_iq(c, f"<iq type='set' to='{RELAY}'><pubsub xmlns='{harness.NS_PUBSUB}'>"
                                            f"<subscribe node='{node}' jid='{u}@b.example'/></pubsub></iq>",
                                         timeout=15)
                if r.get("type") == "result":
                    break
                assert time.monotonic() < deadline and relay.alive(), \
                    f"relay node not ready: {harness.ET.tostring(r, encoding='unicode')[:300]}\n{relay.log_tail(20)}"
                await asyncio.sleep(0.5)

        async def relay_subscribed():
            r = await iq(alice, f"<iq type='get' to='{SERVICE}'><pubsub xmlns='{harness.NS_PUBSUB_OWNER}'>"
                                f"<subscriptions node='{node}'/></pubsub></iq>", "owner subscriptions")
            return any(s.get("jid") == RELAY and s.get("subscription") == "subscribed"
                       for s in r.iter("{%s}subscription" % harness.NS_PUBSUB_OWNER))
        while not await relay_subscribed():
            assert time.monotonic() < deadline, f"the relay never subscribed upstream:\n{relay.log_tail(20)}"
            await asyncio.sleep(0.5)
        relayed = await publish_and_count(alice, [ib for _, _, ib in subs], RELAY)
    relay.stop()
    print(f"# relay: {n_items} publishes to {n_subs} subscribers on b.example: {direct} s2s messages A->B "
          f"subscribed directly ({direct / n_items:.2f}/publish), {relayed} through the relay node "
          f"({relayed / n_items:.2f}/publish)", flush=True)
    assert direct >= n_subs * n_items, f"direct: {direct} s2s messages, expected >= {n_subs * n_items}"
    assert relayed <= n_items + 10, f"relay: {relayed} s2s messages for {n_items} publishes"


async def run(args, tmp, results):
    fed = Federation(tmp, args.roost_bin, list(DOMAINS)[:args.servers], args.keepalive)
    FEDS.append(fed)
    name = "test_federated_logs"
    t0 = time.monotonic()
    try:
        try:
            await asyncio.to_thread(build)
            await asyncio.wait_for(fed.setup(), 180)
            print(f"# servers: " + ", ".join(f"{d} c2s {s.env['C2S_PORT']} s2s {DOMAINS[d]}:5269"
                                               for d, s in fed.servers.items()), flush=True)
            await asyncio.wait_for(test_federated_logs(fed, args.lines), args.limit)
            print(f"PASS {name} ({time.monotonic() - t0:.1f}s)", flush=True)
            results.append((name, True))
            name = "test_relay_saves_s2s"
            t0 = time.monotonic()
            await asyncio.wait_for(test_relay_saves_s2s(fed), 180)
            ok, why = True, ""
        except asyncio.TimeoutError:
            ok, why = False, f"timed out after {args.limit}s"
        except AssertionError as e:
            ok, why = False, str(e) or "assertion failed"
        except Exception as e:
            ok, why = False, f"{type(e).__name__}: {e}"
            if args.verbose:
                traceback.print_exc()
        dt = time.monotonic() - t0
        results.append((name, ok))
        if ok:
            print(f"PASS {name} ({dt:.1f}s)", flush=True)
        else:
            print(f"FAIL {name} ({dt:.1f}s): {why}", flush=True)
            if fed.roost is not None:
                print("---- roost.log (last 30 lines)\n" + fed.roost.log_tail(30) + "\n----", flush=True)
    finally:
        await asyncio.to_thread(fed.teardown)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000, help="lines to ship (default 100000)")
    ap.add_argument("--servers", type=int, choices=(2, 3), default=3, help="Prosody instances (default 3)")
    ap.add_argument("--limit", type=float, default=420, help="seconds for the scenario (default 420)")
    ap.add_argument("--keepalive", type=float, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir even if the test passes")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.keepalive == int(args.keepalive):
        args.keepalive = int(args.keepalive)
    # As run.py: slixmpp's and asyncio's own logging only with -v.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args.roost_bin = os.environ.get("ROOST_BIN") or os.path.join(harness.ROOT, "target", "debug", "roost")
    results = []
    if not os.access(args.roost_bin, os.X_OK):
        print(f"roost binary not found/executable: {args.roost_bin}")
        print("FAIL test_federated_logs: no roost binary\n0 passed, 1 failed")
        return 1
    try:
        ensure_hosts({**DOMAINS, SERVICE: DOMAINS["a.example"], RELAY: DOMAINS["b.example"]})
    except (OSError, RuntimeError) as e:
        print(f"cannot map the test domains in /etc/hosts: {e}")
        print("FAIL test_federated_logs: no name mapping\n0 passed, 1 failed")
        return 1
    lock = open(LOCK, "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # one federation run at a time: fixed s2s addresses
    tmp = tempfile.mkdtemp(prefix="roost-e2e-federation-")

    def on_term(signum, _frame):
        os.kill(os.getpid(), signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    interrupted = False
    try:
        asyncio.run(run(args, tmp, results))
    except KeyboardInterrupt:
        interrupted = True
        print("# interrupted; stopping everything", flush=True)
        results.append(("test_federated_logs", False))
    finally:
        for fed in FEDS:  # idempotent; normally done already
            fed.teardown()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    if failed or args.keep:
        print(f"# logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
