"""Presence-bound delivery: pubsub#presence_based_delivery, pubsub#show-values and
send_last_published_item=on_sub_and_presence, with real clients that approve Roost's presence
subscription (slixmpp's auto_authorize), on both servers.

Roost asks a subscriber for its presence when it subscribes to a node that needs it; slixmpp
approves, and the user's server then sends every available resource's presence to the
service. After a Roost or server restart, Roost probes those users again.
"""

import asyncio
import contextlib

from harness import NS_PUBSUB_EVENT, Inbox, check, timeout
from test_pubsub import PS, SUB_OPTIONS, form, is_event, new_node, payload, q, xml

# How long Roost may take to learn a presence change (a round trip through the server).
SETTLE = 1.5


@contextlib.asynccontextmanager
async def online(ctx, user, resource, show=None):
    """A client of `user` with `resource`, available with `show`, approving presence
    subscriptions (also Roost's): yields (PS, Inbox)."""
    async with ctx.client(user, resource=resource) as c:
        c.auto_authorize = True
        c.auto_subscribe = True
        inbox = Inbox(c)
        if show:
            c.send_presence(pshow=show)
        else:
            c.send_presence()
        yield PS(ctx, c), inbox


def to_of(m):
    return m.get("to")


def items_for(node, to):
    pred = is_event(node, "items")
    return lambda m: pred(m) and to_of(m) == to


def on_node(node):
    """Any pubsub event about `node` (items, retractions, purge, subscription state, ...)."""
    def pred(m):
        ev = m.find(q("event", NS_PUBSUB_EVENT))
        return ev is not None and any(child.get("node") == node for child in ev)
    return pred


def check_never_to_bare(node, bare, *inboxes):
    """No event of presence-based `node` was addressed to the bare JID (the server would
    store it offline). Events of other nodes are left out: a subscription of `bare` made by
    an earlier test (e.g. a lease ending, §8.8.4) legitimately notifies the bare JID."""
    to_bare = [xml(m) for i in inboxes for m in i.messages if to_of(m) == bare and on_node(node)(m)]
    check(not to_bare, f"a notification of {node} went to the bare JID: {to_bare}")


def item_ids(m):
    items = m.find(f"{q('event', NS_PUBSUB_EVENT)}/{q('items', NS_PUBSUB_EVENT)}")
    return [i.get("id") for i in items.findall(q("item", NS_PUBSUB_EVENT))]


async def wait_delivered(owner, node, inbox, to, tries=10):
    """Publish until `to` gets a notification: Roost learns the presence asynchronously
    (after the subscriber's approval). Returns the ids published meanwhile."""
    ids = []
    for i in range(tries):
        ids.append(await owner.publish(node, payload(f"probe-{i}"), id_=f"probe-{i}"))
        try:
            await inbox.wait(items_for(node, to), timeout=1.5, what=f"notification to {to}")
            return ids
        except AssertionError:
            continue
    check(False, f"{to} never got a notification on {node}")


@timeout(90)
async def test_presence_based_delivery_resources_and_offline(ctx):
    bob = ctx.jid("bob")
    async with ctx.client("alice") as ac:
        a = PS(ctx, ac)
        node = new_node("pbd")
        await a.create(node, {"pubsub#presence_based_delivery": "1"})
        async with online(ctx, "bob", "one") as (b1, i1):
            await b1.subscribe(node, jid=bob)
            await wait_delivered(a, node, i1, f"{bob}/one")
            # Addressed to the full JID, never the bare one.
            await a.publish(node, payload("x"), id_="x1")
            m = await i1.wait(items_for(node, f"{bob}/one"), what="x1 to bob/one")
            check(item_ids(m) == ["x1"], f"x1: {item_ids(m)}")
            async with online(ctx, "bob", "two") as (_b2, i2):
                await asyncio.sleep(SETTLE)
                await a.publish(node, payload("y"), id_="y1")
                await i1.wait(items_for(node, f"{bob}/one"), what="y1 to bob/one")
                await i2.wait(items_for(node, f"{bob}/two"), what="y1 to bob/two")
                check_never_to_bare(node, bob, i1, i2)
            # bob/two went offline: a publish now reaches bob/one only, and bob/two never.
            await asyncio.sleep(SETTLE)
            await a.publish(node, payload("z"), id_="z1")
            await i1.wait(items_for(node, f"{bob}/one"), what="z1 to bob/one")
            check_never_to_bare(node, bob, i1)
        async with online(ctx, "bob", "two") as (_b2, i2):
            await i2.quiet(lambda m: is_event(node, "items")(m) and "z1" in item_ids(m), 2.5,
                           "z1 delivered to bob/two after it came back (stored offline?)")
            check_never_to_bare(node, bob, i2)
        # Nobody online: nothing goes out, and nothing arrives later.
        await asyncio.sleep(SETTLE)
        await a.publish(node, payload("w"), id_="w1")
        async with online(ctx, "bob", "one") as (_b1, i1):
            await i1.quiet(lambda m: is_event(node, "items")(m) and "w1" in item_ids(m), 2.5,
                           "w1 published while bob was offline arrived later")
            check_never_to_bare(node, bob, i1)


@timeout(90)
async def test_show_values_online_away(ctx):
    bob = ctx.jid("bob")
    async with ctx.client("alice") as ac:
        a = PS(ctx, ac)
        node = new_node("shows")
        await a.create(node, {"pubsub#presence_based_delivery": "1"})
        async with online(ctx, "bob", "desk") as (b, inbox):
            opts = form(SUB_OPTIONS, {"pubsub#show-values": ["online", "chat"]})
            await b.subscribe(node, jid=bob, extra=f"<options>{opts}</options>")
            await wait_delivered(a, node, inbox, f"{bob}/desk")
            b.c.send_presence(pshow="away")
            await asyncio.sleep(SETTLE)
            await a.publish(node, payload("away"), id_="while-away")
            await inbox.quiet(lambda m: is_event(node, "items")(m) and "while-away" in item_ids(m), 2.0,
                              "a notification while away with show-values online,chat")
            b.c.send_presence(pshow="chat")
            await asyncio.sleep(SETTLE)
            await a.publish(node, payload("chat"), id_="while-chat")
            m = await inbox.wait(items_for(node, f"{bob}/desk"), what="notification while chat")
            check(item_ids(m) == ["while-chat"], f"while chat: {item_ids(m)}")


@timeout(90)
async def test_on_sub_and_presence_on_login(ctx):
    carol = ctx.jid("carol")
    async with ctx.client("alice") as ac:
        a = PS(ctx, ac)
        node = new_node("osap")
        await a.create(node, {"pubsub#send_last_published_item": "on_sub_and_presence"})
        await a.publish(node, payload("last"), id_="last")
        async with online(ctx, "carol", "first") as (c1, i1):
            await c1.subscribe(node, jid=carol)
            # On subscribe, to the JID as subscribed, and only then: when Roost learns the
            # presence of carol/first (her server's answer to its probe, or what follows her
            # approval), she was online all along and has the item.
            await i1.wait(is_event(node, "items"), 5, "last item on subscribe")
            await i1.quiet(is_event(node, "items"), 3.0, "the last item twice on a first subscription")
        # Logging in again: the last item arrives at the new resource, once.
        async with online(ctx, "carol", "second") as (_c2, i2):
            m = await i2.wait(items_for(node, f"{carol}/second"), 8, "last item on login")
            check(item_ids(m) == ["last"], f"last item on login: {item_ids(m)}")
            _c2.c.send_presence(pshow="away")
            await i2.quiet(is_event(node, "items"), 2.0, "last item again on a show change")
            # Roost restarts knowing nobody: carol/second answers its probe, which is not
            # coming online, so the item is not sent again.
            await ctx.restart_roost()
            await i2.quiet(is_event(node, "items"), 3.0, "last item again after a Roost restart")


@timeout(180)
async def test_presence_relearned_after_restarts(ctx):
    bob = ctx.jid("bob")
    node = new_node("relearn")
    async with ctx.client("alice") as ac:
        a = PS(ctx, ac)
        await a.create(node, {"pubsub#presence_based_delivery": "1"})
        async with online(ctx, "bob", "stay") as (b, inbox):
            await b.subscribe(node, jid=bob)
            await wait_delivered(a, node, inbox, f"{bob}/stay")
            await ctx.restart_roost()
            # Probed on connect: delivery works right away, without bob doing anything.
            await asyncio.sleep(SETTLE)
            await a.publish(node, payload("after-roost"), id_="after-roost")
            m = await inbox.wait(items_for(node, f"{bob}/stay"), 5, "notification after a Roost restart")
            check(item_ids(m) == ["after-roost"], f"after roost restart: {item_ids(m)}")
    await ctx.restart_server()
    await ctx.wait_ready(60)
    async with ctx.client("alice") as ac:
        a = PS(ctx, ac)
        async with online(ctx, "bob", "back") as (_b, inbox):
            await asyncio.sleep(SETTLE)
            await a.publish(node, payload("after-server"), id_="after-server")
            m = await inbox.wait(items_for(node, f"{bob}/back"), 5, "notification after a server restart")
            check(item_ids(m) == ["after-server"], f"after server restart: {item_ids(m)}")
