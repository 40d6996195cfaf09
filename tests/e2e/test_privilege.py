"""The presence and roster access models (XEP-0060 §4.5) over XEP-0356 privileged entity, with
real clients on both servers.

The suite's own server grants Roost nothing: there the two models must be neither advertised
nor accepted. `ctx.privileged()` starts a second server with ROOST_PRIVILEGE=1 (mod_privilege:
roster get, presence of users and their contacts) and a Roost of its own; there alice owns the
nodes, bob is subscribed to her presence (a normal presence subscription she approved) and in
her roster group Friends, carol is in her roster (group Work) without a presence subscription.
"""

import asyncio

from harness import PASSWORD, NS_DATA, NS_PUBSUB_OWNER, Inbox, check, raw_iq, send_available, timeout
from test_pubsub import PS, NODE_CONFIG, is_event, new_node, payload, q, xml

PF = "http://jabber.org/protocol/pubsub#"
NS_ROSTER = "jabber:iq:roster"

UNSUPPORTED = ("modify", "not-acceptable", "unsupported-access-model")
PRESENCE_REQUIRED = ("auth", "not-authorized", "presence-subscription-required")
NOT_IN_GROUP = ("auth", "not-authorized", "not-in-roster-group")


async def features(ctx):
    async with ctx.client("carol") as c:
        iq = await c["xep_0030"].get_info(jid=ctx.service, cached=False, timeout=10)
        return set(iq["disco_info"]["features"])


async def access_model_options(ps):
    """The options of pubsub#access_model in the default node configuration form, and the
    form's field vars."""
    r = await ps.ok("get", "<default/>", NS_PUBSUB_OWNER, what="default configuration")
    x = r.find(f"{q('pubsub', NS_PUBSUB_OWNER)}/{q('default', NS_PUBSUB_OWNER)}/{q('x', NS_DATA)}")
    check(x is not None, f"no form in {xml(r)}")
    fields = {f.get("var"): f for f in x.findall(q("field", NS_DATA))}
    am = fields.get("pubsub#access_model")
    check(am is not None, f"no pubsub#access_model in {xml(x)}")
    opts = {o.findtext(q("value", NS_DATA)) for o in am.findall(q("option", NS_DATA))}
    return opts, set(fields)


async def roster_of(c):
    """{jid: (subscription, {groups})} of the client's roster."""
    r = await raw_iq(c, f"<iq type='get'><query xmlns='{NS_ROSTER}'/></iq>")
    out = {}
    for i in r.iter(q("item", NS_ROSTER)):
        out[i.get("jid")] = (i.get("subscription"), {g.text for g in i.findall(q("group", NS_ROSTER))})
    return out


async def roster_set(c, jid, groups):
    g = "".join(f"<group>{x}</group>" for x in groups)
    r = await raw_iq(c, f"<iq type='set'><query xmlns='{NS_ROSTER}'><item jid='{jid}'>{g}</item></query></iq>")
    check(r.get("type") == "result", f"roster set {jid}: {xml(r)}")


async def befriend(p):
    """On the privileged server: bob subscribes to alice's presence and she approves (a
    normal RFC 6121 subscription), then alice files bob under Friends and carol under Work.
    Done once per privileged server."""
    if getattr(p, "rosters_ready", False):
        return
    alice, bob, carol = p.jid("alice"), p.jid("bob"), p.jid("carol")
    async with p.client("alice", resource="owner") as a, p.client("bob", resource="friend") as b:
        a.auto_authorize = True
        b.auto_authorize = True
        send_available(a)
        send_available(b)
        await asyncio.sleep(0.3)
        b.send_presence(pto=alice, ptype="subscribe")
        for _ in range(50):
            sub = (await roster_of(a)).get(bob, (None, set()))[0]
            if sub in ("from", "both"):
                break
            await asyncio.sleep(0.2)
        check(sub in ("from", "both"), f"alice never approved bob's presence subscription: {sub}")
        await roster_set(a, bob, ["Friends"])
        await roster_set(a, carol, ["Work"])
        roster = await roster_of(a)
        check(roster.get(bob, (None, set()))[1] == {"Friends"}, f"alice's roster: {roster}")
    p.rosters_ready = True


# ---------------------------------------------------------------- without privileges

async def test_models_not_offered_without_privileges(ctx):
    f = await features(ctx)
    for feat in ("access-presence", "access-roster"):
        check(PF + feat not in f, f"{feat} advertised without XEP-0356 privileges")
    async with ctx.client("alice") as c:
        ps = PS(ctx, c)
        opts, _ = await access_model_options(ps)
        check(opts and not opts & {"presence", "roster"}, f"access models offered: {opts}")
        for model in ("presence", "roster"):
            node = new_node(f"noprivs-{model}")
            await ps.err("set", f"<create node='{node}'/><configure>"
                                f"<x xmlns='{NS_DATA}' type='submit'>"
                                f"<field var='FORM_TYPE' type='hidden'><value>{NODE_CONFIG}</value></field>"
                                f"<field var='pubsub#access_model'><value>{model}</value></field></x>"
                                f"</configure>", UNSUPPORTED, what=f"create with access model {model}")
            # Nor may an existing node switch to it.
            await ps.create(node)
            await ps.err("set", f"<configure node='{node}'><x xmlns='{NS_DATA}' type='submit'>"
                                f"<field var='FORM_TYPE' type='hidden'><value>{NODE_CONFIG}</value></field>"
                                f"<field var='pubsub#access_model'><value>{model}</value></field></x>"
                                f"</configure>", UNSUPPORTED, ns=NS_PUBSUB_OWNER,
                         what=f"configure access model {model}")


# ---------------------------------------------------------------- with privileges

@timeout(180)
async def test_privileged_service_offers_presence_and_roster(ctx):
    p = await ctx.privileged()
    f = await features(p)
    for feat in ("access-presence", "access-roster"):
        check(PF + feat in f, f"{feat} not advertised with XEP-0356 privileges: {sorted(f)}")
    async with p.client("alice") as c:
        opts, fields = await access_model_options(PS(p, c))
        check({"presence", "roster"} <= opts, f"access models offered: {opts}")
        check("pubsub#roster_groups_allowed" in fields, f"no roster_groups_allowed field: {fields}")


@timeout(180)
async def test_presence_access_model(ctx):
    p = await ctx.privileged()
    await befriend(p)
    node = new_node("presence")
    async with p.client("alice") as a, p.client("bob") as b, p.client("carol") as c:
        send_available(b)
        owner, friend, stranger = PS(p, a), PS(p, b), PS(p, c)
        inbox = Inbox(b)
        await owner.create(node, {"pubsub#access_model": "presence"})
        await owner.publish(node, payload("first"), id_="1")
        # bob sees alice's presence: he may subscribe and retrieve.
        await friend.subscribe(node, p.jid("bob"))
        items = await friend.items(node)
        check([i for i, _ in items] == ["1"], f"bob's items: {items}")
        # carol is in alice's roster but does not see her presence.
        await stranger.err("set", f"<subscribe node='{node}' jid='{p.jid('carol')}'/>",
                           PRESENCE_REQUIRED, what="carol subscribes")
        await stranger.err("get", f"<items node='{node}'/>", PRESENCE_REQUIRED, what="carol retrieves")
        # Notifications reach bob.
        await owner.publish(node, payload("second"), id_="2")
        await inbox.wait(is_event(node, "items"), timeout=10, what="bob's notification")


@timeout(180)
async def test_roster_access_model(ctx):
    p = await ctx.privileged()
    await befriend(p)
    node = new_node("roster")
    async with p.client("alice") as a, p.client("bob") as b, p.client("carol") as c:
        owner, friend, colleague = PS(p, a), PS(p, b), PS(p, c)
        await owner.create(node, {"pubsub#access_model": "roster",
                                  "pubsub#roster_groups_allowed": ["Friends", "Family"]})
        conf = await owner.config(node)
        check(sorted(conf.get("pubsub#roster_groups_allowed", [])) == ["Family", "Friends"],
              f"roster groups read back: {conf.get('pubsub#roster_groups_allowed')}")
        await owner.publish(node, payload("first"), id_="1")
        # bob is in Friends.
        await friend.subscribe(node, p.jid("bob"))
        check([i for i, _ in await friend.items(node)] == ["1"], "bob's items")
        # carol is in alice's roster, in Work only.
        await colleague.err("set", f"<subscribe node='{node}' jid='{p.jid('carol')}'/>",
                            NOT_IN_GROUP, what="carol subscribes")
        await colleague.err("get", f"<items node='{node}'/>", NOT_IN_GROUP, what="carol retrieves")


@timeout(180)
async def test_roster_change_admits_a_new_group_member(ctx):
    """alice moves carol into Friends: carol's very next subscribe to the Friends-only node
    succeeds. Neither server pushes the roster change to Roost, and a refusal rests only on a
    roster fetched after the request arrived, so Roost fetches it again before answering."""
    p = await ctx.privileged()
    await befriend(p)
    node = new_node("roster-change")
    carol = p.jid("carol")
    async with p.client("alice") as a, p.client("carol") as c:
        owner, colleague = PS(p, a), PS(p, c)
        await owner.create(node, {"pubsub#access_model": "roster",
                                  "pubsub#roster_groups_allowed": "Friends"})
        await colleague.err("set", f"<subscribe node='{node}' jid='{carol}'/>",
                            NOT_IN_GROUP, what="carol subscribes while in Work")
        await roster_set(a, carol, ["Work", "Friends"])
        try:
            # No retry: the first request after the change is admitted.
            await colleague.subscribe(node, carol)
        finally:
            await roster_set(a, carol, ["Work"])


@timeout(180)
async def test_presence_approval_admits_the_next_subscribe(ctx):
    """dave is refused from a presence node until alice approves his presence subscription;
    his very next subscribe succeeds, not only once Roost's copy of her roster grew old."""
    p = await ctx.privileged()
    await asyncio.to_thread(p.server.register, "dave", PASSWORD)
    alice, dave = p.jid("alice"), p.jid("dave")
    node = new_node("presence-approval")
    async with p.client("alice", resource="approver") as a, p.client("dave") as d:
        a.auto_authorize = True
        send_available(a)
        send_available(d)
        owner, newcomer = PS(p, a), PS(p, d)
        await owner.create(node, {"pubsub#access_model": "presence"})
        await newcomer.err("set", f"<subscribe node='{node}' jid='{dave}'/>",
                           PRESENCE_REQUIRED, what="dave subscribes before alice approved him")
        d.send_presence(pto=alice, ptype="subscribe")
        sub = None
        for _ in range(50):
            sub = (await roster_of(a)).get(dave, (None, set()))[0]
            if sub in ("from", "both"):
                break
            await asyncio.sleep(0.1)
        check(sub in ("from", "both"), f"alice never approved dave's presence subscription: {sub}")
        # No retry: the first request after the approval is admitted.
        await newcomer.subscribe(node, dave)
