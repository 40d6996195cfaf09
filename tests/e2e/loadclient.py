#!/usr/bin/python3
"""A minimal raw-socket XMPP c2s client for load: many IQs in flight, no slixmpp.

slixmpp spends most of its time in its own stanza objects; to keep 64 publishes in flight per
client (and to send hostile stanzas slixmpp would refuse to build) this speaks the protocol
directly: stream, SASL PLAIN (the test servers allow it without TLS), bind, then pipelined
IQs matched by id.  Used by test_durability.py and, as a program, to measure throughput:

    /usr/bin/python3 tests/e2e/loadclient.py bench --c2s-port P --domain localhost \\
        --service pubsub.localhost --users alice,bob --password pw --inflight 64 --secs 10

The bench creates a node, runs every user as one client publishing with --inflight requests
outstanding for --secs, and prints acknowledged items per second.  `cost` does it all on a
private server, once per --durable value (docs/durability.md):

    /usr/bin/python3 tests/e2e/loadclient.py cost --server prosody --roost-bin target/release/roost
"""

import argparse
import asyncio
import base64
import itertools
import os
import random
import sys
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

CLIENT_NS = "jabber:client"
STREAM_NS = "http://etherx.jabber.org/streams"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_DATA = "jabber:x:data"


class LinkDown(Exception):
    """The connection closed (or failed) before the reply came."""


def error_of(el):
    """(type, condition) of an error stanza Element, or (None, None)."""
    err = el.find("{%s}error" % CLIENT_NS)
    if err is None:
        return None, None
    for child in err:
        if child.tag.startswith("{%s}" % STANZAS_NS) and not child.tag.endswith("}text"):
            return err.get("type"), child.tag.split("}", 1)[1]
    return err.get("type"), None


class RawClient:
    """One c2s session. `iq(xml)` sends and awaits the reply; `messages` collects <message/>s."""

    _ids = itertools.count(1)

    def __init__(self, host, port, user, domain, password, resource=None):
        self.host, self.port = host, port
        self.user, self.domain, self.password = user, domain, password
        self.resource = resource or f"load-{os.getpid()}-{next(self._ids)}"
        self.jid = None
        self.pending = {}
        self.messages = []
        self.keep_messages = True
        self.closed = asyncio.Event()
        self.close_reason = None
        self._reader = self._writer = None
        self._task = None
        self._queue = None

    # -- plumbing
    def _new_parser(self):
        self._parser = ET.XMLPullParser(events=("start", "end"))
        self._depth = 0
        self._root = None

    async def _next_top(self, timeout=15):
        """During negotiation: the next complete top-level element."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    def _feed(self, data):
        self._parser.feed(data)
        for ev, el in self._parser.read_events():
            if ev == "start":
                self._depth += 1
                if self._depth == 1:
                    self._root = el
            else:
                self._depth -= 1
                if self._depth == 1:
                    self._root.remove(el)
                    yield el
                elif self._depth == 0:
                    raise LinkDown("server closed the stream")

    async def _read_loop(self):
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    raise LinkDown("connection closed")
                for el in self._feed(data):
                    self._dispatch(el)
        except (LinkDown, OSError, ET.ParseError) as e:
            self.close_reason = str(e) or type(e).__name__
        except asyncio.CancelledError:
            self.close_reason = "closed"
        finally:
            self.closed.set()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(LinkDown(self.close_reason or "closed"))
            self.pending.clear()

    def _dispatch(self, el):
        if self.jid is None:
            self._queue.put_nowait(el)
            return
        if el.tag == "{%s}iq" % CLIENT_NS and el.get("type") in ("result", "error"):
            fut = self.pending.pop(el.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(el)
        elif el.tag == "{%s}message" % CLIENT_NS and self.keep_messages:
            self.messages.append(el)
        elif el.tag == "{%s}error" % STREAM_NS:
            raise LinkDown("stream error: " + ",".join(c.tag.split("}")[-1] for c in el))

    def _open_stream(self):
        self._new_parser()
        self.send_raw(f"<?xml version='1.0'?><stream:stream to='{self.domain}' version='1.0' "
                      f"xmlns='{CLIENT_NS}' xmlns:stream='{STREAM_NS}'>")

    def send_raw(self, text):
        if self.closed.is_set():
            raise LinkDown(self.close_reason or "closed")
        self._writer.write(text.encode() if isinstance(text, str) else text)

    async def drain(self):
        await self._writer.drain()

    # -- session
    async def connect(self, timeout=15):
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 24), timeout)
        self._queue = asyncio.Queue()
        self._open_stream()
        self._task = asyncio.create_task(self._read_loop())
        feats = await self._next_top(timeout)
        mechs = [m.text for m in feats.iter("{%s}mechanism" % SASL_NS)]
        if "PLAIN" not in mechs:
            raise RuntimeError(f"PLAIN not offered: {mechs}")
        cred = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self.send_raw(f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{cred}</auth>")
        res = await self._next_top(timeout)
        if not res.tag.endswith("}success"):
            raise RuntimeError(f"{self.user}: authentication failed: {ET.tostring(res)[:200]}")
        self._open_stream()
        await self._next_top(timeout)  # features after auth
        self.send_raw(f"<iq type='set' id='bind'><bind xmlns='{BIND_NS}'>"
                      f"<resource>{escape(self.resource)}</resource></bind></iq>")
        res = await self._next_top(timeout)
        jid = res.find(".//{%s}jid" % BIND_NS)
        if res.get("type") != "result" or jid is None:
            raise RuntimeError(f"bind failed: {ET.tostring(res)[:200]}")
        self.send_raw("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        await self._next_top(timeout)
        self.jid = jid.text
        # Anything queued after bind goes through the normal dispatch from now on.
        while not self._queue.empty():
            self._dispatch(self._queue.get_nowait())
        return self

    def send_iq_nowait(self, body, to, type_="set"):
        """Send an IQ; returns a future resolved with the reply Element (or LinkDown)."""
        iq_id = f"q{next(self._ids)}"
        fut = asyncio.get_running_loop().create_future()
        self.pending[iq_id] = fut
        try:
            self.send_raw(f"<iq type='{type_}' id='{iq_id}' to={quoteattr(to)}>{body}</iq>")
        except LinkDown as e:
            self.pending.pop(iq_id, None)
            fut.set_exception(e)
        return fut

    async def iq(self, body, to, type_="set", timeout=15):
        fut = self.send_iq_nowait(body, to, type_)
        await self.drain()
        return await asyncio.wait_for(fut, timeout)

    async def close(self):
        if self._writer is not None and not self.closed.is_set():
            try:
                self._writer.write(b"</stream:stream>")
                await asyncio.wait_for(self._writer.drain(), 2)
                await asyncio.wait_for(self.closed.wait(), 2)
            except (OSError, asyncio.TimeoutError, LinkDown):
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._writer is not None:
            self._writer.close()


# ----------------------------------------------------------------- pubsub bits

def create_node_body(node, max_items="max", publish_model=None):
    model = (f"<field var='pubsub#publish_model'><value>{publish_model}</value></field>"
             if publish_model else "")
    return (f"<pubsub xmlns='{NS_PUBSUB}'><create node={quoteattr(node)}/>"
            f"<configure><x xmlns='{NS_DATA}' type='submit'>"
            f"<field var='FORM_TYPE' type='hidden'><value>{NS_PUBSUB}#node_config</value></field>"
            f"<field var='pubsub#max_items'><value>{max_items}</value></field>{model}"
            f"</x></configure></pubsub>")


def publish_body(node, item_id, payload="<entry xmlns='urn:roost:load'>x</entry>"):
    return (f"<pubsub xmlns='{NS_PUBSUB}'><publish node={quoteattr(node)}>"
            f"<item id={quoteattr(item_id)}>{payload}</item></publish></pubsub>")


def items_body(node):
    return f"<pubsub xmlns='{NS_PUBSUB}'><items node={quoteattr(node)}/></pubsub>"


def item_ids(reply):
    """ItemIDs of an items result, in order (duplicates kept, to detect them)."""
    return [i.get("id") for i in reply.iter("{%s}item" % NS_PUBSUB)]


class PublishLoad:
    """Keeps `inflight` publishes outstanding on one client until stopped.

    `acked` holds every ItemID whose publish got an IQ result; `errors` counts error
    conditions; `lost_link` is set once replies can no longer come.
    """

    def __init__(self, client, service, node, prefix, inflight=64):
        self.c, self.service, self.node, self.prefix = client, service, node, prefix
        self.inflight = inflight
        self.acked = set()
        self.sent = 0
        self.errors = {}
        self.stop = asyncio.Event()
        self._seq = itertools.count(1)

    def _one(self):
        item_id = f"{self.prefix}-{next(self._seq)}"
        self.sent += 1
        return item_id, self.c.send_iq_nowait(publish_body(self.node, item_id), self.service)

    async def run(self):
        outstanding = {}
        try:
            for _ in range(self.inflight):
                item_id, fut = self._one()
                outstanding[fut] = item_id
            await self.c.drain()
            while outstanding:
                done, _ = await asyncio.wait(outstanding, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    item_id = outstanding.pop(fut)
                    try:
                        reply = fut.result()
                    except LinkDown:
                        continue
                    if reply.get("type") == "result":
                        self.acked.add(item_id)
                    else:
                        cond = error_of(reply)
                        self.errors[cond] = self.errors.get(cond, 0) + 1
                    if not self.stop.is_set() and not self.c.closed.is_set():
                        nid, nfut = self._one()
                        outstanding[nfut] = nid
                if not self.c.closed.is_set():
                    try:
                        await self.c.drain()
                    except OSError:
                        pass
        finally:
            for fut in outstanding:
                fut.cancel()


async def bench(args):
    users = args.users.split(",")
    clients = []
    try:
        for u in users:
            clients.append(await RawClient("127.0.0.1", args.c2s_port, u, args.domain,
                                           args.password).connect())
        node = f"bench-{int(time.time())}-{random.randrange(1 << 30)}"
        for _ in range(20):  # roost may still be connecting
            r = await clients[0].iq(create_node_body(node, publish_model="open"), args.service)
            if r.get("type") == "result":
                break
            await asyncio.sleep(0.5)
        else:
            sys.exit(f"create failed: {ET.tostring(r)[:300]}")
        loads = [PublishLoad(c, args.service, node, f"{c.user}", args.inflight) for c in clients]
        tasks = [asyncio.create_task(ld.run()) for ld in loads]
        t0 = time.monotonic()
        await asyncio.sleep(args.secs)
        for ld in loads:
            ld.stop.set()
        await asyncio.gather(*tasks)
        dt = time.monotonic() - t0
        acked = sum(len(ld.acked) for ld in loads)
        errors = {}
        for ld in loads:
            for k, v in ld.errors.items():
                errors[k] = errors.get(k, 0) + v
        print(f"clients={len(clients)} inflight={args.inflight} secs={dt:.1f} acked={acked} "
              f"items/s={acked / dt:.0f} errors={errors}", flush=True)
        return acked / dt
    finally:
        for c in clients:
            await c.close()


async def cost(args):
    """Start a private server, then per --durable value a fresh roost, and bench each."""
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import harness
    tmp = tempfile.mkdtemp(prefix="roost-bench-")
    server = harness.Server(args.server, os.path.join(tmp, "server"))
    results = {}
    try:
        await asyncio.to_thread(server.start)
        for u in ("alice", "bob"):
            await asyncio.to_thread(server.register, u, "pw")
        env = server.env
        for durable in args.durable.split(","):
            for run in range(args.runs):
                roost = harness.RoostProcess(
                    args.roost_bin, env, os.path.join(tmp, f"data-{durable}-{run}"),
                    os.path.join(tmp, f"roost-{durable}.log"), log_filter="warn",
                    extra_args=["--durable", durable, "--rate-limit", "0",
                                "--max-items-per-node", "1000000"])
                roost.start()
                try:
                    await asyncio.sleep(1.5)  # connect; the bench's create retries below
                    ns = argparse.Namespace(c2s_port=int(env["C2S_PORT"]), domain=env["DOMAIN"],
                                            service=env["SERVICE"], users="alice,bob",
                                            password="pw", inflight=args.inflight, secs=args.secs)
                    print(f"durable={durable} run={run + 1}: ", end="", flush=True)
                    results.setdefault(durable, []).append(await bench(ns))
                finally:
                    roost.stop()
        for durable, rates in results.items():
            print(f"durable={durable}: items/s {' '.join(f'{r:.0f}' for r in rates)} "
                  f"(median {sorted(rates)[len(rates) // 2]:.0f})")
    finally:
        await asyncio.to_thread(server.stop)
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cost", help="publish throughput with --durable true vs false on a private server")
    c.add_argument("--server", choices=("prosody", "ejabberd"), default="prosody")
    c.add_argument("--roost-bin", default=os.environ.get("ROOST_BIN", "target/release/roost"))
    c.add_argument("--durable", default="true,false")
    c.add_argument("--runs", type=int, default=3)
    c.add_argument("--inflight", type=int, default=64)
    c.add_argument("--secs", type=float, default=10)
    b = sub.add_parser("bench")
    b.add_argument("--c2s-port", type=int, required=True)
    b.add_argument("--domain", default="localhost")
    b.add_argument("--service", default="pubsub.localhost")
    b.add_argument("--users", default="alice,bob")
    b.add_argument("--password", default="pw")
    b.add_argument("--inflight", type=int, default=64)
    b.add_argument("--secs", type=float, default=10)
    args = ap.parse_args()
    asyncio.run(bench(args) if args.cmd == "bench" else cost(args))


if __name__ == "__main__":
    main()
