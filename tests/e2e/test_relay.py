"""Relay nodes: a second Roost (relay.<domain>) mirrors a node of another pubsub service.

The relay subscribes upstream once, as itself, and republishes every item on its own node,
where any number of local subscribers get it. After its own downtime it catches up from
the upstream history before going live: subscribers see every item once, in order.
"""

import asyncio
import os
import time

from harness import RoostProcess, check, iq_type, only, raw_iq, timeout
from test_pubsub import PS, Clients, is_event, new_node, payload, payload_text, q, xml
from harness import NS_PUBSUB_EVENT


def start_relay(ctx, relays, name="relay"):
    # One relay at a time: a test that failed may have left its relay running.
    for old in ctx.extra_roosts:
        if getattr(old, "is_relay", False):
            old.stop()
    env = dict(ctx.env)
    env["SERVICE"] = f"relay.{ctx.domain}"
    # ejabberd needs a listener of its own per component domain (scripts/ejabberd).
    env["COMPONENT_PORT"] = ctx.env.get("RELAY_COMPONENT_PORT", ctx.env["COMPONENT_PORT"])
    r = RoostProcess(ctx.roost_bin, env, os.path.join(ctx.tmp, f"{name}-data"),
                     os.path.join(ctx.tmp, f"{name}.log"), keepalive=ctx.keepalive,
                     extra_args=["--relay", ",".join(relays)], log_filter=ctx.roost_log_filter)
    r.is_relay = True
    r.start()
    ctx.extra_roosts.append(r)
    return r


class RelayPS(PS):
    def __init__(self, ctx, c):
        super().__init__(ctx, c)
        self.to = f"relay.{ctx.domain}"


async def until(what, fn, secs=20):
    deadline = time.monotonic() + secs
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(0.3)
    check(False, f"{what} not within {secs}s (last: {last!r})")


async def subscribe_when_ready(ps, node, relay):
    """Subscribes as soon as the relay has created its node."""
    async def attempt():
        check(relay.alive(), f"relay exited: {relay.log_tail(20) if hasattr(relay, 'log_tail') else ''}")
        jid = ps.ctx.jid(ps.c.boundjid.user)
        r = await ps.iq("set", f"<subscribe node='{node}' jid='{jid}'/>")
        return iq_type(r) == "result"
    await until(f"subscription to relay node {node}", attempt)


def item_events(inbox, node, service):
    """[(item id, title)] of every unconsumed items event on `node` from `service`, consumed."""
    out = []
    for i, m in enumerate(inbox.messages):
        if i in inbox.consumed or not is_event(node, "items")(m):
            continue
        if (m.get("from") or "") != service:
            continue
        inbox.consumed.add(i)
        items = m.find(f"{q('event', NS_PUBSUB_EVENT)}/{q('items', NS_PUBSUB_EVENT)}")
        for it in items.findall(q("item", NS_PUBSUB_EVENT)):
            out.append((it.get("id"), payload_text(it)))
    return out


async def collect(inbox, node, service, n, secs=20):
    got = []
    deadline = time.monotonic() + secs
    while len(got) < n and time.monotonic() < deadline:
        got += item_events(inbox, node, service)
        await asyncio.sleep(0.1)
    return got


@timeout(150)
async def test_relay_mirrors_a_roost_node_once_in_order_across_relay_downtime(ctx):
    relay_jid = f"relay.{ctx.domain}"
    up, mirror = new_node("upstream"), new_node("mirror")
    async with Clients(ctx, "alice", "bob", "carol") as ((a, _), (b, bi), (c, ci)):
        await a.create(up, {"pubsub#max_items": "1000"})
        relay = start_relay(ctx, [f"{mirror}={ctx.service}/{up}"])
        rb, rc = RelayPS(ctx, b.c), RelayPS(ctx, c.c)
        await subscribe_when_ready(rb, mirror, relay)
        await subscribe_when_ready(rc, mirror, relay)

        async def relay_subscribed():
            subs = await a.owner_subs(up)
            return [s for s in subs if s[0] == relay_jid and s[1] == "subscribed"]
        await until("the relay's upstream subscription", relay_subscribed)

        # Live: every item reaches both local subscribers once, in order, from the relay.
        sent = [f"line-{i:03d}" for i in range(20)]
        for i, t in enumerate(sent):
            await a.publish(up, payload(t), id_=f"i{i:03d}")
        for name, inbox in (("bob", bi), ("carol", ci)):
            got = await collect(inbox, mirror, relay_jid, len(sent))
            check([t for _, t in got] == sent, f"{name} got {got}, expected {sent}")
        # One subscription upstream for any number of local subscribers.
        subs = await a.owner_subs(up)
        check([s[0] for s in subs] == [relay_jid], f"upstream subscriptions: {subs}")

        # Relay down while 30 more are published; on restart it catches up from the
        # upstream history, then goes live: still once each, in order.
        relay.stop()
        missed = [f"line-{i:03d}" for i in range(20, 50)]
        for i, t in enumerate(missed, start=20):
            await a.publish(up, payload(t), id_=f"i{i:03d}")
        relay.start()
        await asyncio.sleep(0.5)
        live_after = [f"line-{i:03d}" for i in range(50, 55)]
        # Published while the relay is catching up or live: no gap, no repeat either way.
        for i, t in enumerate(live_after, start=50):
            await a.publish(up, payload(t), id_=f"i{i:03d}")
        want = missed + live_after
        for name, inbox in (("bob", bi), ("carol", ci)):
            got = await collect(inbox, mirror, relay_jid, len(want), secs=30)
            check([t for _, t in got] == want, f"{name} after relay restart got {got}, expected {want}")
            await asyncio.sleep(0.5)
            extra = item_events(inbox, mirror, relay_jid)
            check(not extra, f"{name} got duplicates: {extra}")

        # The mirror holds exactly the upstream items, in the same order.
        up_items = await a.items(up)
        mirror_items = await rb.items(mirror)
        check(mirror_items == up_items, f"mirror {mirror_items[:3]}… != upstream {up_items[:3]}…")

        # A retraction upstream is relayed too.
        await a.ok("set", f"<retract node='{up}' notify='true'><item id='i000'/></retract>", what="retract")

        async def retracted():
            return "i000" not in [i for i, _ in await rb.items(mirror)]
        await until("the relayed retraction", retracted)

        # Local users cannot publish into the mirror: only the relay does.
        r = await rb.iq("set", f"<publish node='{mirror}'><item>{payload('x')}</item></publish>")
        check(iq_type(r) == "error", f"a local publish to the mirror was accepted: {xml(r)}")
        relay.stop()


@only("ejabberd")
@timeout(90)
async def test_relay_mirrors_a_builtin_node_without_history(ctx):
    """A non-Roost upstream (ejabberd's mod_pubsub, no archive on nodes): the relay catches
    up from the upstream items instead."""
    relay_jid = f"relay.{ctx.domain}"
    builtin = ctx.env["BUILTIN_PUBSUB"]
    up, mirror = new_node("bup"), new_node("bmirror")
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        ab = PS(ctx, a.c)
        ab.to = builtin
        await ab.create(up)
        for i in range(3):
            await ab.publish(up, payload(f"old-{i}"), id_=f"o{i}")
        relay = start_relay(ctx, [f"{mirror}={builtin}/{up}"], name="relay-builtin")
        rb = RelayPS(ctx, b.c)
        await subscribe_when_ready(rb, mirror, relay)

        async def caught_up():
            items = await rb.items(mirror)
            return [i for i, _ in items] == ["o0", "o1", "o2"] and items
        await until("the relay's catch-up from the built-in items", caught_up)
        await asyncio.sleep(1.0)
        for i in range(3):
            await ab.publish(up, payload(f"new-{i}"), id_=f"n{i}")
        got = await collect(bi, mirror, relay_jid, 3)
        check([t for _, t in got] == ["new-0", "new-1", "new-2"], f"bob got {got}")
        relay.stop()
