#!/usr/bin/env python3
"""The demo's two users: alice creates a node and publishes, bob subscribes and is notified."""
import argparse
import asyncio
import sys
import time

import slixmpp
from slixmpp.xmlstream import ET


async def connect(jid, password, port):
    c = slixmpp.ClientXMPP(jid, password)
    for p in ("xep_0030", "xep_0060", "xep_0004"):
        c.register_plugin(p)
    c["feature_mechanisms"].unencrypted_plain = True
    c.enable_starttls = False
    c.enable_direct_tls = False
    ready = asyncio.get_running_loop().create_future()
    c.add_event_handler("session_start", lambda _: ready.done() or ready.set_result(True))
    c.add_event_handler("failed_auth", lambda _: ready.done() or ready.set_exception(RuntimeError(f"{jid}: login failed")))
    c.connect(("127.0.0.1", port))
    await asyncio.wait_for(ready, 15)
    c.send_presence()
    return c


async def main(a):
    svc = a.service
    # Roost may still be connecting to Prosody: wait until the service answers.
    alice = await connect(f"alice@{a.domain}", "alice-pw", a.port)
    deadline = time.monotonic() + 30
    while True:
        try:
            info = await alice["xep_0030"].get_info(jid=svc, timeout=3)
            break
        except Exception:
            if time.monotonic() > deadline:
                sys.exit(f"{svc} does not answer; see Roost's log")
            await asyncio.sleep(0.5)
    idents = info["disco_info"]["identities"]
    print(f"alice: {svc} is {[(c, t) for (c, t, _, _) in idents]}")

    node = f"demo-{int(time.time())}"
    await alice["xep_0060"].create_node(svc, node, timeout=10)
    print(f"alice: created node {node!r}")

    bob = await connect(f"bob@{a.domain}", "bob-pw", a.port)
    got = asyncio.get_running_loop().create_future()

    def on_event(msg):
        # slixmpp fires pubsub_publish once per notification; ['item'] is its (single) item.
        # (Iterating the stanza object with `for` never ends: don't.)
        items = msg["pubsub_event"]["items"]
        if not got.done():
            got.set_result((items["node"], items["item"]["id"], items["item"]["payload"]))

    bob.add_event_handler("pubsub_publish", on_event)
    sub = await bob["xep_0060"].subscribe(svc, node, timeout=10)
    print(f"bob:   subscribed to {node!r} ({sub['pubsub']['subscription']['subscription']})")

    entry = ET.fromstring("<entry xmlns='http://www.w3.org/2005/Atom'><title>Hello from Roost</title></entry>")
    res = await alice["xep_0060"].publish(svc, node, payload=entry, timeout=10)
    print(f"alice: published item {res['pubsub']['publish']['item']['id']!r}")

    n, item_id, payload = await asyncio.wait_for(got, 10)
    title = payload.find("{http://www.w3.org/2005/Atom}title").text
    print(f"bob:   notification from {svc}: node {n!r}, item {item_id!r}: {title!r}")
    for c in (alice, bob):
        c.disconnect()
    print("demo: OK")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--service", default="pubsub.localhost")
    asyncio.run(main(ap.parse_args()))
