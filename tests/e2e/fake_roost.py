#!/usr/bin/python3
"""Stand-in for the roost binary, to self-test the e2e harness.

    ROOST_BIN=tests/e2e/fake_roost.py /usr/bin/python3 tests/e2e/run.py --server prosody

Same CLI as roost (--server HOST:PORT --jid --secret --data-dir --log
[--keepalive]); answers disco#info/items, ping, version; errors otherwise;
reconnects when the server goes away; exits 1 with a "conflict" message on
a <conflict/> stream error.  Not a pubsub implementation.
"""
import argparse
import asyncio
import logging
import sys

from slixmpp.componentxmpp import ComponentXMPP

ap = argparse.ArgumentParser()
ap.add_argument("--server", required=True)
ap.add_argument("--jid", required=True)
ap.add_argument("--secret", required=True)
ap.add_argument("--data-dir", required=True)
ap.add_argument("--log", default="info")
ap.add_argument("--keepalive", type=float, default=30)
a = ap.parse_args()
host, port = a.server.rsplit(":", 1)
logging.basicConfig(level=logging.INFO, format="%(asctime)s fake-roost %(levelname)s %(message)s",
                    stream=sys.stdout)
log = logging.getLogger("fake")
for n in ("slixmpp",):
    logging.getLogger(n).setLevel(logging.CRITICAL)

c = ComponentXMPP(a.jid, a.secret, host, int(port))
c.register_plugin("xep_0030")
c.register_plugin("xep_0199")
c.register_plugin("xep_0092", {"software_name": "Roost", "version": "0.0-fake"})
c["xep_0030"].add_identity(category="pubsub", itype="service", name="Roost (fake)", jid=a.jid)
for f in ("http://jabber.org/protocol/pubsub", "urn:xmpp:ping", "jabber:iq:version"):
    c["xep_0030"].add_feature(f, jid=a.jid)
conflict = False


def on_stream_error(err):
    global conflict
    if err["condition"] == "conflict":
        conflict = True
        print(f"fake-roost: stream error conflict: {a.jid} is already connected", flush=True)
        c.disconnect(wait=0)


def on_disconnected(_e):
    if conflict:
        asyncio.get_event_loop().stop()
        return
    log.info("link down; reconnect in 1s")
    asyncio.get_event_loop().call_later(1, lambda: c.connect())


c.add_event_handler("stream_error", on_stream_error)
c.add_event_handler("disconnected", on_disconnected)
c.add_event_handler("session_start", lambda _e: log.info("connected as %s", a.jid))
c.whitespace_keepalive = True
c.whitespace_keepalive_interval = max(1, int(a.keepalive))
c.connect()
try:
    asyncio.get_event_loop().run_forever()
except KeyboardInterrupt:
    pass
sys.exit(1 if conflict else 0)
