"""Basic component behaviour: disco, ping, version, errors, link robustness."""

import asyncio
import re
import time

from slixmpp.exceptions import IqError, IqTimeout

from harness import (ClientError, check, error_condition, iq_type, only, raw_iq, raw_send,
                     timeout)

PUBSUB_NS = "http://jabber.org/protocol/pubsub"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"


async def test_disco_info(ctx):
    async with ctx.client("alice") as c:
        iq = await c["xep_0030"].get_info(jid=ctx.service, cached=False, timeout=10)
        info = iq["disco_info"]
        idents = {(i[0], i[1]) for i in info["identities"]}
        check(("pubsub", "service") in idents, f"identity pubsub/service missing: {idents}")
        feats = set(info["features"])
        # XEP-0050 §2.1 (it runs get-pending, §8.7); XEP-0004 §8 (it reads the §8.6
        # authorization form an owner sends back in a <message/>); XEP-0059 §5 (it pages
        # disco#items and items).
        for f in (PUBSUB_NS, DISCO_INFO_NS, DISCO_ITEMS_NS, "urn:xmpp:ping", "jabber:iq:version",
                  "http://jabber.org/protocol/commands", "jabber:x:data", "http://jabber.org/protocol/rsm"):
            check(f in feats, f"feature {f} missing: {sorted(feats)}")


async def test_disco_items(ctx):
    async with ctx.client("alice") as c:
        reply = await raw_iq(c, f"<iq type='get' to='{ctx.service}'><query xmlns='{DISCO_ITEMS_NS}'/></iq>")
        check(iq_type(reply) == "result", f"disco#items not a result: {error_condition(reply)}")
        check(reply.find("{%s}query" % DISCO_ITEMS_NS) is not None, "disco#items result has no <query/>")


async def test_ping(ctx):
    async with ctx.client("alice") as c:
        await c["xep_0199"].ping(ctx.service, timeout=10)


async def test_version(ctx):
    async with ctx.client("bob") as c:
        iq = await c["xep_0092"].get_version(ctx.service, timeout=10)
        name = iq["software_version"]["name"]
        check(name == "Roost", f"version name is {name!r}, expected 'Roost'")
        check(iq["software_version"]["version"], "empty version string")


async def test_unknown_iq(ctx):
    async with ctx.client("alice") as c:
        reply = await raw_iq(c, f"<iq type='get' to='{ctx.service}'><query xmlns='urn:example:roost:unknown'/></iq>")
        check(iq_type(reply) == "error", f"expected error, got {iq_type(reply)}")
        etype, cond = error_condition(reply)
        check(cond == "service-unavailable", f"expected service-unavailable, got {cond} (type {etype})")
        # And for a set.
        reply = await raw_iq(c, f"<iq type='set' to='{ctx.service}'><frob xmlns='urn:example:roost:unknown'/></iq>")
        check(iq_type(reply) == "error", f"unknown set: expected error, got {iq_type(reply)}")


async def test_malformed_stanza(ctx):
    async with ctx.client("carol") as c:
        # iq get with TWO payload children (RFC 6120 8.2.3: exactly one).
        reply = await raw_iq(c, f"<iq type='get' id='x1' to='{ctx.service}'>"
                                f"<query xmlns='{DISCO_INFO_NS}'/><ping xmlns='urn:xmpp:ping'/></iq>")
        check(iq_type(reply) == "error", f"two-child iq: expected error, got {iq_type(reply)}")
        check(reply.get("id") == "x1", f"error reply id {reply.get('id')!r} != 'x1'")
        # iq set with NO payload.
        reply = await raw_iq(c, f"<iq type='set' id='x2' to='{ctx.service}'/>")
        check(iq_type(reply) == "error", f"empty iq set: expected error, got {iq_type(reply)}")
        # iq with a bogus type: must not crash the service (reply optional).
        raw_send(c, f"<iq type='bogus' id='x3' to='{ctx.service}'><ping xmlns='urn:xmpp:ping'/></iq>")
        # presence / message with bogus types, message with garbage payload.
        raw_send(c, f"<presence type='bogus' to='{ctx.service}'/>")
        raw_send(c, f"<message type='bogus' id='m1' to='{ctx.service}'><body>hi</body></message>")
        raw_send(c, f"<message id='m2' to='{ctx.service}'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                    f"<items/><items/></event></message>")
        # pubsub payload garbage: <pubsub> with an unknown child.
        reply = await raw_iq(c, f"<iq type='set' id='x4' to='{ctx.service}'>"
                                f"<pubsub xmlns='{PUBSUB_NS}'><nonsense/></pubsub></iq>")
        check(iq_type(reply) == "error", f"pubsub garbage: expected error, got {iq_type(reply)}")
        await asyncio.sleep(0.5)
        check(ctx.roost.alive(), "roost died after malformed stanzas")
        await c["xep_0199"].ping(ctx.service, timeout=10)


RECONNECT_RE = re.compile(r"reconnect|disconnect|connection (lost|closed|reset)|timed? ?out", re.I)


@timeout(40)
async def test_idle_link(ctx):
    check(ctx.keepalive is not None, "harness started roost without --keepalive")
    mark = ctx.roost.log_mark()
    auths = ctx.component_auth_count()
    idle = max(6, 3 * float(ctx.keepalive))
    await asyncio.sleep(idle)
    async with ctx.client("alice") as c:
        await c["xep_0199"].ping(ctx.service, timeout=10)
    check(ctx.roost.alive(), "roost died while idle")
    new = ctx.roost.log_since(mark)
    bad = [l for l in new.splitlines() if RECONNECT_RE.search(l)]
    check(not bad, "roost.log shows link trouble while idle:\n" + "\n".join(bad[:10]))
    check(ctx.component_auth_count() == auths,
          f"server saw {ctx.component_auth_count() - auths} new component handshakes while idle")


async def _ping_until(ctx, deadline):
    last = None
    while time.monotonic() < deadline:
        try:
            async with ctx.client("bob", timeout=5) as c:
                await c["xep_0199"].ping(ctx.service, timeout=3)
                return None
        except (IqError, IqTimeout, ClientError, asyncio.TimeoutError) as e:
            last = e
        await asyncio.sleep(0.5)
    return last or "timeout"


@timeout(120)
async def test_server_restart(ctx):
    auths = ctx.component_auth_count()
    await ctx.restart_server()
    err = await _ping_until(ctx, time.monotonic() + 15)
    check(err is None, f"no ping answer within 15s after server restart: {err!r}")
    check(ctx.roost.alive(), "roost exited instead of reconnecting")
    # The server log is rewritten/appended across restarts; just sanity-check.
    check(ctx.component_auth_count() >= 1, "server log shows no component handshake after restart")
    _ = auths


@only("prosody")
@timeout(40)
async def test_conflict(ctx):
    second = ctx.start_extra_roost("roost2")
    start = time.monotonic()
    while second.alive() and time.monotonic() - start < 10:
        await asyncio.sleep(0.2)
    if second.alive():
        second.stop()
        raise AssertionError("second roost for the same domain still running after 10s:\n" + second.log_tail(20))
    rc = second.proc.returncode
    out = second.log_text()
    check(rc != 0, f"second roost exited with rc=0; output:\n{out[-2000:]}")
    check(re.search(r"conflict", out, re.I), f"no 'conflict' in second roost output (rc={rc}):\n{out[-2000:]}")
    check(ctx.roost.alive(), "first roost died")
    async with ctx.client("alice") as c:
        await c["xep_0199"].ping(ctx.service, timeout=10)
