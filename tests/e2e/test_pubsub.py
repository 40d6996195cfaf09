"""XEP-0060 use cases end to end: real clients, real server, Roost as pubsub.<domain>.

One or more tests per use case of §5 (entity), §6 (subscriber), §7 (publisher), §8 (owner),
access models, notifications and persistence across a Roost restart. Every test uses its
own node names, so tests do not depend on each other. Errors are checked for the stanza
condition AND the pubsub#errors child the XEP example gives.
"""

import asyncio
import importlib
import itertools
import os
import sys
import xml.etree.ElementTree as ET

from harness import (NS_DATA, NS_PUBSUB, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER, Inbox, check,
                     iq_type, pubsub_error, raw_iq, send_available, timeout)

DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
SUB_OPTIONS = "http://jabber.org/protocol/pubsub#subscribe_options"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
META_DATA = "http://jabber.org/protocol/pubsub#meta-data"
PAYLOAD_NS = "urn:example:roost:e2e"
PF = "http://jabber.org/protocol/pubsub#"

# Every pubsub#… feature Roost may claim → the test(s) here that exercise it.
# test_features_claimed_are_exercised fails on a claimed feature missing from this map.
FEATURE_TESTS = {
    "access-open": ["test_subscribe_unsubscribe", "test_publish_with_and_without_id"],
    "access-whitelist": ["test_whitelist_hidden_and_closed", "test_affiliation_effects"],
    "config-node": ["test_configure_get_fields", "test_configure_set_read_back"],
    "create-and-configure": ["test_create_and_configure"],
    "create-nodes": ["test_create_named_and_existing"],
    "delete-items": ["test_retract"],
    "delete-nodes": ["test_delete_with_redirect"],
    "instant-nodes": ["test_create_instant"],
    "item-ids": ["test_publish_with_and_without_id"],
    "manage-subscriptions": ["test_manage_subscriptions"],
    "member-affiliation": ["test_affiliation_effects"],
    "meta-data": ["test_node_disco_info_metadata"],
    "modify-affiliations": ["test_affiliation_effects", "test_manage_affiliations_last_owner"],
    "outcast-affiliation": ["test_affiliation_effects", "test_subscribe_errors"],
    "persistent-items": ["test_retrieve_items", "test_persistence_across_restart"],
    "publish": ["test_publish_with_and_without_id"],
    "publish-only-affiliation": ["test_affiliation_effects"],
    "publish-options": ["test_publish_options"],
    "publisher-affiliation": ["test_affiliation_effects"],
    "purge-nodes": ["test_purge"],
    "retract-items": ["test_retract"],
    "retrieve-affiliations": ["test_own_subscriptions_and_affiliations"],
    "retrieve-default": ["test_default_config"],
    "retrieve-default-sub": ["test_default_subscription_options"],
    "retrieve-items": ["test_retrieve_items"],
    "retrieve-subscriptions": ["test_own_subscriptions_and_affiliations"],
    "subscribe": ["test_subscribe_unsubscribe"],
    "subscription-options": ["test_subscription_options_form", "test_deliver_false_stops_delivery",
                             "test_deliver_false_pauses_every_event"],
    # Exercised in other files ("module.test"): XEP-0059 on items and disco#items.
    "rsm": ["test_advanced.test_rsm_items_paging", "test_advanced.test_rsm_disco_items"],
    "multi-subscribe": ["test_advanced.test_multi_subscribe"],
    "access-authorize": ["test_advanced.test_authorize_approve_deny_get_pending_and_restart"],
    "get-pending": ["test_advanced.test_authorize_approve_deny_get_pending_and_restart"],
    "leased-subscription": ["test_advanced.test_time_item_expire_leases_digests"],
    "presence-notifications": ["test_presence.test_presence_based_delivery_resources_and_offline",
                               "test_presence.test_show_values_online_away"],
    "subscription-notifications": ["test_manage_subscriptions", "test_subscription_removed_notification",
                                   "test_advanced.test_authorize_approve_deny_get_pending_and_restart"],
    "multi-items": ["test_retrieve_items", "test_config_node_max"],
    "config-node-max": ["test_config_node_max"],
    # XEP-0248 (test_collections.py).
    "collections": ["test_collections.test_collections_three_levels", "test_collections.test_collections_errors",
                    "test_collections.test_collections_access_and_root"],
    "multi-collection": ["test_collections.test_collections_three_levels"],
}

# Every other feature the service claims (its base protocols apart) → the tests that exercise
# it; test_features_claimed_are_exercised fails on one missing here, as for FEATURE_TESTS.
BASE_FEATURES = {"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
                 "urn:xmpp:ping", "jabber:iq:version", NS_PUBSUB}
OTHER_FEATURE_TESTS = {
    "http://jabber.org/protocol/rsm": ["test_advanced.test_rsm_items_paging", "test_advanced.test_rsm_disco_items"],
    "http://jabber.org/protocol/commands": ["test_advanced.test_authorize_approve_deny_get_pending_and_restart"],
    # Data forms as a direct child of <message/>: the §8.6 authorization answer.
    "jabber:x:data": ["test_advanced.test_authorize_approve_deny_get_pending_and_restart"],
    "urn:roost:filter:0": ["test_filter.test_filter_advertised", "test_filter.test_filtered_subscriptions"],
    # Typed discovery (test_typed.py): XEP-0462 and XEP-0413.
    "urn:xmpp:pubsub-filter:0": ["test_typed.test_type_filtered_disco_items", "test_typed.test_social_feed_node"],
    "urn:xmpp:order-by:1": ["test_typed.test_order_by_on_items"],
    "urn:xmpp:order-by:1@http://jabber.org/protocol/pubsub": ["test_typed.test_order_by_on_items"],
}

# Claimed only while the server grants Roost roster access (XEP-0356): test_privilege checks
# both ways.
CONDITIONAL_FEATURES = {"access-presence", "access-roster"}

_seq = itertools.count(1)


def new_node(prefix):
    return f"{prefix}-{next(_seq)}-{os.urandom(3).hex()}"


# ------------------------------------------------------------------ XML helpers

def q(tag, ns):
    return "{%s}%s" % (ns, tag)


def xml(el):
    return ET.tostring(el, encoding="unicode") if el is not None else "None"


def form(form_type, fields, type_="submit"):
    """A data form: fields maps var → value (str), list of values, or None (no value)."""
    out = [f"<x xmlns='{NS_DATA}' type='{type_}'>",
           f"<field var='FORM_TYPE' type='hidden'><value>{form_type}</value></field>"]
    for var, val in fields.items():
        vals = val if isinstance(val, list) else ([] if val is None else [val])
        out.append(f"<field var='{var}'>" + "".join(f"<value>{v}</value>" for v in vals) + "</field>")
    out.append("</x>")
    return "".join(out)


def form_values(x):
    """{var: [values]} of a data form Element."""
    check(x is not None, "no data form")
    return {f.get("var"): [v.text or "" for v in f.findall(q("value", NS_DATA))]
            for f in x.findall(q("field", NS_DATA))}


def form_type_of(x):
    return (form_values(x).get("FORM_TYPE") or [None])[0]


def one(values, var):
    v = values.get(var)
    check(v is not None, f"field {var} missing from form: {sorted(values)}")
    check(len(v) == 1, f"field {var}: expected one value, got {v}")
    return v[0]


def boolean(s):
    check(s in ("0", "1", "true", "false"), f"not an xs:boolean: {s!r}")
    return s in ("1", "true")


def payload(text, ns=PAYLOAD_NS):
    return f"<entry xmlns='{ns}'><title>{text}</title></entry>"


def payload_text(item):
    """Title text of an <item/>'s payload (None when it carries none)."""
    children = list(item)
    if not children:
        return None
    t = children[0].find(q("title", PAYLOAD_NS))
    return t.text if t is not None else xml(children[0])


# --------------------------------------------------------------- IQ helpers

class PS:
    """Pubsub requests from one client to the service, as raw XML."""

    def __init__(self, ctx, c):
        self.ctx, self.c = ctx, c
        self.to = ctx.service

    async def iq(self, type_, inner, ns=NS_PUBSUB, extra=""):
        return await raw_iq(self.c, f"<iq type='{type_}' to='{self.to}'{extra}>"
                                    f"<pubsub xmlns='{ns}'>{inner}</pubsub></iq>")

    async def ok(self, type_, inner, ns=NS_PUBSUB, what="request"):
        r = await self.iq(type_, inner, ns)
        check(iq_type(r) == "result", f"{what}: expected result, got {xml(r)}")
        return r

    async def err(self, type_, inner, expect, ns=NS_PUBSUB, what="request"):
        """Sends a request that must fail with expect = (type, condition, pubsub condition)."""
        r = await self.iq(type_, inner, ns)
        check(iq_type(r) == "error", f"{what}: expected error {expect}, got {xml(r)}")
        got = pubsub_error(r)
        check(got == expect, f"{what}: expected error {expect}, got {got}: {xml(r)}")
        return r

    # -- owner
    async def create(self, node, config=None):
        conf = f"<configure>{form(NODE_CONFIG, config)}</configure>" if config else ""
        return await self.ok("set", f"<create node='{node}'/>{conf}", what=f"create {node}")

    async def config(self, node):
        r = await self.ok("get", f"<configure node='{node}'/>", NS_PUBSUB_OWNER, what=f"configure get {node}")
        conf = r.find(f"{q('pubsub', NS_PUBSUB_OWNER)}/{q('configure', NS_PUBSUB_OWNER)}")
        check(conf is not None and conf.get("node") == node, f"configure reply: {xml(r)}")
        x = conf.find(q("x", NS_DATA))
        check(x is not None and x.get("type") == "form", f"configure reply has no form: {xml(r)}")
        return form_values(x)

    async def configure(self, node, fields):
        return await self.ok("set", f"<configure node='{node}'>{form(NODE_CONFIG, fields)}</configure>",
                             NS_PUBSUB_OWNER, what=f"configure set {node}")

    async def set_aff(self, node, jid, aff):
        return await self.ok("set", f"<affiliations node='{node}'><affiliation jid='{jid}' affiliation='{aff}'/>"
                                    f"</affiliations>", NS_PUBSUB_OWNER, what=f"set {jid} {aff} on {node}")

    async def owner_affs(self, node):
        r = await self.ok("get", f"<affiliations node='{node}'/>", NS_PUBSUB_OWNER, what="owner affiliations")
        affs = r.find(f"{q('pubsub', NS_PUBSUB_OWNER)}/{q('affiliations', NS_PUBSUB_OWNER)}")
        check(affs is not None and affs.get("node") == node, f"owner affiliations reply: {xml(r)}")
        return {a.get("jid"): a.get("affiliation") for a in affs.findall(q("affiliation", NS_PUBSUB_OWNER))}

    async def owner_subs(self, node):
        r = await self.ok("get", f"<subscriptions node='{node}'/>", NS_PUBSUB_OWNER, what="owner subscriptions")
        subs = r.find(f"{q('pubsub', NS_PUBSUB_OWNER)}/{q('subscriptions', NS_PUBSUB_OWNER)}")
        check(subs is not None and subs.get("node") == node, f"owner subscriptions reply: {xml(r)}")
        return [(s.get("jid"), s.get("subscription"), s.get("subid"))
                for s in subs.findall(q("subscription", NS_PUBSUB_OWNER))]

    # -- publisher
    async def publish(self, node, body, id_=None, extra=""):
        idattr = f" id='{id_}'" if id_ is not None else ""
        r = await self.ok("set", f"<publish node='{node}'><item{idattr}>{body}</item></publish>{extra}",
                          what=f"publish to {node}")
        item = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('publish', NS_PUBSUB)}/{q('item', NS_PUBSUB)}")
        if id_ is None:
            check(item is not None and item.get("id"), f"publish without id: no id in result {xml(r)}")
        if item is not None and id_ is not None:
            check(item.get("id") == id_, f"publish result names id {item.get('id')!r}, sent {id_!r}")
        return item.get("id") if item is not None else id_

    # -- subscriber
    async def subscribe(self, node, jid=None, extra=""):
        jid = jid or self.ctx.jid(self.c.boundjid.user)
        r = await self.ok("set", f"<subscribe node='{node}' jid='{jid}'/>{extra}", what=f"subscribe {jid} to {node}")
        sub = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('subscription', NS_PUBSUB)}")
        check(sub is not None, f"subscribe result has no <subscription/>: {xml(r)}")
        check(sub.get("subscription") == "subscribed", f"subscription state: {xml(sub)}")
        check(sub.get("node") == node and sub.get("jid") == jid, f"subscription node/jid: {xml(sub)}")
        # Example 68: the options in force may follow; the schema requires their `jid`
        # (clients such as aioxmpp reject the reply without it).
        opts = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('options', NS_PUBSUB)}")
        if opts is not None:
            check((opts.get("jid"), opts.get("node"), opts.get("subid")) == (jid, node, sub.get("subid")),
                  f"<options/> of the subscribe reply: {xml(r)}")
        return sub

    async def items(self, node, attrs="", inner=""):
        r = await self.ok("get", f"<items node='{node}'{attrs}>{inner}</items>", what=f"items of {node}")
        items = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('items', NS_PUBSUB)}")
        check(items is not None and items.get("node") == node, f"items reply: {xml(r)}")
        return [(i.get("id"), payload_text(i)) for i in items.findall(q("item", NS_PUBSUB))]


def is_event(node, kind):
    """Predicate for Inbox: a pubsub event message of `kind` (items/purge/delete/…) on `node`."""
    def pred(m):
        ev = m.find(q("event", NS_PUBSUB_EVENT))
        if ev is None:
            return False
        child = ev.find(q(kind, NS_PUBSUB_EVENT))
        return child is not None and child.get("node") == node
    return pred


def event_child(msg, kind):
    return msg.find(f"{q('event', NS_PUBSUB_EVENT)}/{q(kind, NS_PUBSUB_EVENT)}")


async def expect_event(inbox, node, kind, timeout_=5):
    m = await inbox.wait(is_event(node, kind), timeout_, what=f"<{kind}/> event on {node}")
    check(m.get("id"), f"notification without id attribute: {xml(m)}")
    return m, event_child(m, kind)


async def open_ps(ctx, stack, user, presence=True):
    c = await stack.enter_async_context(ctx.client(user))
    if presence:
        send_available(c)
    return PS(ctx, c), Inbox(c)


class Clients:
    """`async with Clients(ctx, "alice", "bob") as ((a, ai), (b, bi)):` PS + Inbox per user."""

    def __init__(self, ctx, *users):
        self.ctx, self.users = ctx, users

    async def __aenter__(self):
        from contextlib import AsyncExitStack
        self.stack = AsyncExitStack()
        await self.stack.__aenter__()
        out = []
        for u in self.users:
            out.append(await open_ps(self.ctx, self.stack, u))
        await asyncio.sleep(0.2)  # let the servers process the initial presences
        return out

    async def __aexit__(self, *exc):
        return await self.stack.__aexit__(*exc)


# ================================================================ §5 entity use cases

async def test_features_claimed_are_exercised(ctx):
    async with ctx.client("alice") as c:
        iq = await c["xep_0030"].get_info(jid=ctx.service, cached=False, timeout=10)
        info = iq["disco_info"]
        idents = {(i[0], i[1]) for i in info["identities"]}
        check(("pubsub", "service") in idents, f"identity pubsub/service missing: {idents}")
        claimed = sorted(f[len(PF):] for f in info["features"] if f.startswith(PF))
        check(claimed, "no pubsub#… features claimed")
        for must in ("publish", "subscribe", "create-nodes", "retrieve-items"):
            check(must in claimed, f"pubsub#{must} not claimed: {claimed}")
        untested = [f for f in claimed if f not in FEATURE_TESTS]
        check(not untested, f"features claimed in disco#info but exercised by no test: {untested}")
        others = sorted(f for f in info["features"] if not f.startswith(PF) and f not in BASE_FEATURES)
        untested = [f for f in others if f not in OTHER_FEATURE_TESTS]
        check(not untested, f"features claimed in disco#info but exercised by no test: {untested}")
        named = [(f, t) for f in claimed for t in FEATURE_TESTS[f]]
        named += [(f, t) for f in others for t in OTHER_FEATURE_TESTS[f]]
        for f, t in named:
            mod, _, name = t.rpartition(".")
            where = importlib.import_module(mod) if mod else sys.modules[__name__]
            check(callable(getattr(where, name, None)), f"the map for {f!r} names missing test {t}")


async def test_features_exercised_are_claimed(ctx):
    """The other way round: every feature a test exercises (FEATURE_TESTS) is claimed, as
    XEP-0060 §10 asks a service to (e.g. "subscription-notifications", §12.13)."""
    async with ctx.client("alice") as c:
        iq = await c["xep_0030"].get_info(jid=ctx.service, cached=False, timeout=10)
        features = set(iq["disco_info"]["features"])
        claimed = {f[len(PF):] for f in features if f.startswith(PF)}
        unclaimed = sorted(set(FEATURE_TESTS) - claimed - CONDITIONAL_FEATURES)
        unclaimed += sorted(set(OTHER_FEATURE_TESTS) - features)
        check(not unclaimed, f"features exercised by tests but not claimed in disco#info: {unclaimed}")


async def test_disco_items_whitelist_visibility(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        op, wl = new_node("open"), new_node("wl")
        await a.create(op)
        await a.create(wl, {"pubsub#access_model": "whitelist"})

        async def nodes(c):
            iq = await c["xep_0030"].get_items(jid=ctx.service, timeout=10)
            items = iq["disco_items"]["items"]
            for jid, _node, _name in items:
                check(str(jid) == ctx.service, f"disco#items item jid {jid} != {ctx.service}")
            return {i[1] for i in items}

        mine, bobs = await nodes(a.c), await nodes(b.c)
        check(op in mine and wl in mine, f"owner does not see both nodes: {sorted(mine)}")
        check(op in bobs, f"open node {op} hidden from bob: {sorted(bobs)}")
        check(wl not in bobs, f"whitelist node {wl} visible to non-affiliated bob")
        # Once bob is a member he sees it.
        await a.set_aff(wl, ctx.jid("bob"), "member")
        check(wl in await nodes(b.c), "whitelist node hidden from its member")


async def test_node_disco_info_metadata(ctx):
    async with Clients(ctx, "alice", "bob", "carol") as ((a, _), (b, _), (cl, _)):
        node = new_node("meta")
        await a.create(node, {"pubsub#title": "Princely Musings", "pubsub#description": "Bard's blog",
                              "pubsub#type": "http://www.w3.org/2005/Atom"})
        await a.set_aff(node, ctx.jid("bob"), "publisher")
        await b.subscribe(node)
        await cl.subscribe(node)
        r = await raw_iq(b.c, f"<iq type='get' to='{ctx.service}'><query xmlns='{DISCO_INFO}' node='{node}'/></iq>")
        check(iq_type(r) == "result", f"node disco#info: {xml(r)}")
        query = r.find(q("query", DISCO_INFO))
        check(query.get("node") == node, f"node attribute not echoed: {xml(query)}")
        idents = {(i.get("category"), i.get("type")) for i in query.findall(q("identity", DISCO_INFO))}
        check(("pubsub", "leaf") in idents, f"identity pubsub/leaf missing: {idents}")
        feats = {f.get("var") for f in query.findall(q("feature", DISCO_INFO))}
        check(NS_PUBSUB in feats, f"node disco#info lacks feature {NS_PUBSUB}: {feats}")
        forms = [x for x in query.findall(q("x", NS_DATA)) if form_type_of(x) == META_DATA]
        check(len(forms) == 1, f"expected one pubsub#meta-data form: {xml(query)}")
        check(forms[0].get("type") == "result", f"meta-data form type {forms[0].get('type')}")
        v = form_values(forms[0])
        check(one(v, "pubsub#title") == "Princely Musings", f"title: {v.get('pubsub#title')}")
        check(one(v, "pubsub#description") == "Bard's blog", f"description: {v.get('pubsub#description')}")
        check(one(v, "pubsub#type") == "http://www.w3.org/2005/Atom", f"type: {v.get('pubsub#type')}")
        check(v.get("pubsub#owner") == [ctx.jid("alice")], f"owner: {v.get('pubsub#owner')}")
        check(v.get("pubsub#publisher") == [ctx.jid("bob")], f"publisher: {v.get('pubsub#publisher')}")
        check(one(v, "pubsub#access_model") == "open", f"access_model: {v.get('pubsub#access_model')}")
        check(one(v, "pubsub#publish_model") == "publishers", f"publish_model: {v.get('pubsub#publish_model')}")
        check(one(v, "pubsub#num_subscribers") == "2", f"num_subscribers: {v.get('pubsub#num_subscribers')}")
        date = one(v, "pubsub#creation_date")
        check(len(date) >= 20 and date[4] == "-" and date[10] == "T" and date.endswith("Z"),
              f"creation_date is not an XEP-0082 DateTime: {date!r}")
        # And through slixmpp's disco plugin.
        iq = await a.c["xep_0030"].get_info(jid=ctx.service, node=node, cached=False, timeout=10)
        check(("pubsub", "leaf") in {(i[0], i[1]) for i in iq["disco_info"]["identities"]},
              "slixmpp sees no pubsub/leaf identity")


async def test_disco_items_on_node(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        node, empty = new_node("ditems"), new_node("ditems-empty")
        await a.create(node)
        await a.create(empty)
        for i in ("one", "two", "three"):
            await a.publish(node, payload(i), id_=i)
        iq = await a.c["xep_0030"].get_items(jid=ctx.service, node=node, timeout=10)
        items = iq["disco_items"]["items"]
        check({i[2] for i in items} == {"one", "two", "three"},
              f"disco#items on node: item names should be the item ids: {items}")
        check(all(str(i[0]) == ctx.service for i in items), f"item jids: {items}")
        iq = await a.c["xep_0030"].get_items(jid=ctx.service, node=empty, timeout=10)
        check(list(iq["disco_items"]["items"]) == [], f"empty node has disco items: {iq['disco_items']['items']}")


async def test_own_subscriptions_and_affiliations(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        n1, n2 = new_node("mine"), new_node("mine")
        await a.create(n1)
        await a.create(n2)
        await b.subscribe(n1)
        await b.subscribe(n2)
        await a.set_aff(n2, ctx.jid("bob"), "publisher")

        r = await b.ok("get", "<subscriptions/>", what="all subscriptions")
        subs = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('subscriptions', NS_PUBSUB)}")
        check(subs is not None, f"no <subscriptions/>: {xml(r)}")
        got = {(s.get("node"), s.get("jid"), s.get("subscription")) for s in subs.findall(q("subscription", NS_PUBSUB))}
        for n in (n1, n2):
            check((n, ctx.jid("bob"), "subscribed") in got, f"subscription to {n} missing: {got}")
        check(all(s.get("subid") for s in subs.findall(q("subscription", NS_PUBSUB))), "subscription without subid")

        r = await b.ok("get", f"<subscriptions node='{n1}'/>", what="subscriptions on one node")
        subs = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('subscriptions', NS_PUBSUB)}")
        got = [(s.get("node") or subs.get("node"), s.get("jid"), s.get("subscription"))
               for s in subs.findall(q("subscription", NS_PUBSUB))]
        check(got == [(n1, ctx.jid("bob"), "subscribed")], f"subscriptions filtered on {n1}: {got}")

        r = await b.ok("get", "<affiliations/>", what="all affiliations")
        affs = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('affiliations', NS_PUBSUB)}")
        got = {(x.get("node"), x.get("affiliation")) for x in affs.findall(q("affiliation", NS_PUBSUB))}
        check((n2, "publisher") in got, f"bob's publisher affiliation missing: {got}")
        check(not any(n == n1 for n, _ in got), f"bob has no affiliation with {n1}: {got}")

        r = await a.ok("get", f"<affiliations node='{n1}'/>", what="affiliations on one node")
        affs = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('affiliations', NS_PUBSUB)}")
        got = [(x.get("node") or affs.get("node"), x.get("affiliation")) for x in affs.findall(q("affiliation", NS_PUBSUB))]
        check(got == [(n1, "owner")], f"alice's affiliations filtered on {n1}: {got}")


# ============================================================= §6 subscriber use cases

async def test_subscribe_unsubscribe(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("sub")
        await a.create(node)
        # Subscribe through slixmpp's pubsub plugin.
        iq = await b.c["xep_0060"].subscribe(ctx.service, node, timeout=10)
        check(iq["pubsub"]["subscription"]["subscription"] == "subscribed", f"slixmpp subscribe: {iq}")
        subid = iq["pubsub"]["subscription"]["subid"]
        check(subid, "no subid")
        await a.publish(node, payload("hello"), id_="i1")
        m, items = await expect_event(bi, node, "items")
        got = [(i.get("id"), payload_text(i)) for i in items.findall(q("item", NS_PUBSUB_EVENT))]
        check(got == [("i1", "hello")], f"notification items: {xml(m)}")
        check(m.get("from") == ctx.service, f"notification from {m.get('from')}")
        await b.ok("set", f"<unsubscribe node='{node}' jid='{ctx.jid('bob')}'/>", what="unsubscribe")
        check([s for s in await a.owner_subs(node) if s[0] == ctx.jid("bob")] == [],
              "bob still listed after unsubscribing")
        await a.publish(node, payload("after"), id_="i2")
        await bi.quiet(is_event(node, "items"), 1.5, "notification after unsubscribe")


async def test_subscribe_errors(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("suberr")
        await a.create(node)
        # §6.1.3.1: JIDs do not match.
        await b.err("set", f"<subscribe node='{node}' jid='{ctx.jid('alice')}'/>",
                    ("modify", "bad-request", "invalid-jid"), what="subscribe someone else")
        # §6.1.3.12: no such node.
        await b.err("set", f"<subscribe node='{new_node('nosuch')}' jid='{ctx.jid('bob')}'/>",
                    ("cancel", "item-not-found", None), what="subscribe to missing node")
        # §6.2.3.2: unsubscribe when not subscribed.
        await b.err("set", f"<unsubscribe node='{node}' jid='{ctx.jid('bob')}'/>",
                    ("cancel", "unexpected-request", "not-subscribed"), what="unsubscribe not subscribed")
        # §6.1.3.8: blocked (outcast).
        await a.set_aff(node, ctx.jid("bob"), "outcast")
        await b.err("set", f"<subscribe node='{node}' jid='{ctx.jid('bob')}'/>",
                    ("auth", "forbidden", None), what="outcast subscribes")
        # §6.5.9.10: an outcast may not retrieve, even from an open node.
        await b.err("get", f"<items node='{node}'/>", ("auth", "forbidden", None), what="outcast retrieves")


async def test_whitelist_hidden_and_closed(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("closed")
        await a.create(node, {"pubsub#access_model": "whitelist"})
        # §6.1.3.5: not on the whitelist.
        await b.err("set", f"<subscribe node='{node}' jid='{ctx.jid('bob')}'/>",
                    ("cancel", "not-allowed", "closed-node"), what="subscribe to whitelist node")
        # §6.5.9.5 (retrieve, whitelist): same answer.
        await b.err("get", f"<items node='{node}'/>", ("cancel", "not-allowed", "closed-node"),
                    what="retrieve from whitelist node")


async def test_subscription_options_form(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("opts")
        await a.create(node)
        await b.subscribe(node)
        bob = ctx.jid("bob")

        async def get_options():
            r = await b.ok("get", f"<options node='{node}' jid='{bob}'/>", what="options get")
            o = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('options', NS_PUBSUB)}")
            check(o is not None and o.get("node") == node and o.get("jid") == bob, f"options reply: {xml(r)}")
            x = o.find(q("x", NS_DATA))
            check(x is not None and x.get("type") == "form", f"options reply has no form: {xml(r)}")
            check(form_type_of(x) == SUB_OPTIONS, f"FORM_TYPE: {form_type_of(x)}")
            return form_values(x)

        v = await get_options()
        for var in ("pubsub#deliver", "pubsub#digest", "pubsub#digest_frequency", "pubsub#expire",
                    "pubsub#include_body", "pubsub#show-values"):
            check(var in v, f"subscription options form lacks {var}: {sorted(v)}")
        check(boolean(one(v, "pubsub#deliver")), "deliver should default to true")
        await b.ok("set", f"<options node='{node}' jid='{bob}'>" + form(SUB_OPTIONS, {
            "pubsub#deliver": "0", "pubsub#digest": "1", "pubsub#digest_frequency": "3600000",
            "pubsub#include_body": "true", "pubsub#show-values": ["chat", "online"],
            "pubsub#expire": "2099-01-01T00:00:00Z"}) + "</options>", what="options set")
        v = await get_options()
        check(not boolean(one(v, "pubsub#deliver")), f"deliver not stored: {v.get('pubsub#deliver')}")
        check(boolean(one(v, "pubsub#digest")), f"digest not stored: {v.get('pubsub#digest')}")
        check(one(v, "pubsub#digest_frequency") == "3600000", f"digest_frequency: {v.get('pubsub#digest_frequency')}")
        check(boolean(one(v, "pubsub#include_body")), f"include_body: {v.get('pubsub#include_body')}")
        check(sorted(v.get("pubsub#show-values", [])) == ["chat", "online"], f"show-values: {v.get('pubsub#show-values')}")
        check(one(v, "pubsub#expire").startswith("2099-01-01T00:00:00"), f"expire: {v.get('pubsub#expire')}")
        # §6.3.6: invalid value → bad-request + invalid-options.
        await b.err("set", f"<options node='{node}' jid='{bob}'>"
                    + form(SUB_OPTIONS, {"pubsub#deliver": "maybe"}) + "</options>",
                    ("modify", "bad-request", "invalid-options"), what="invalid options")
        # §6.3.4.2 (example 58): options of someone not subscribed.
        async with ctx.client("carol") as cc:
            r = await raw_iq(cc, f"<iq type='get' to='{ctx.service}'><pubsub xmlns='{NS_PUBSUB}'>"
                                 f"<options node='{node}' jid='{ctx.jid('carol')}'/></pubsub></iq>")
            et, cond, pcond = pubsub_error(r)
            check(cond == "unexpected-request" and pcond == "not-subscribed",
                  f"options of a non-subscriber: expected unexpected-request+not-subscribed, got {(et, cond, pcond)}")


@timeout(40)
async def test_deliver_false_stops_delivery(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("deliver")
        await a.create(node)
        bob = ctx.jid("bob")
        await b.subscribe(node)
        await b.ok("set", f"<options node='{node}' jid='{bob}'>" + form(SUB_OPTIONS, {"pubsub#deliver": "false"})
                   + "</options>", what="deliver=false")
        await a.publish(node, payload("muted"), id_="m1")
        await bi.quiet(is_event(node, "items"), 1.5, "notification with deliver=false")
        await b.ok("set", f"<options node='{node}' jid='{bob}'>" + form(SUB_OPTIONS, {"pubsub#deliver": "true"})
                   + "</options>", what="deliver=true")
        await a.publish(node, payload("loud"), id_="m2")
        _, items = await expect_event(bi, node, "items")
        ids = [i.get("id") for i in items.findall(q("item", NS_PUBSUB_EVENT))]
        check(ids == ["m2"], f"after deliver=true expected item m2, got {ids}")


@timeout(40)
async def test_deliver_false_pauses_every_event(ctx):
    """deliver=false pauses retract, purge, configuration and delete events too, not only
    items; carol, subscribed with delivery on, shows when each went out."""
    async with Clients(ctx, "alice", "bob", "carol") as ((a, _), (b, bi), (c, ci)):
        node = new_node("deliver-all")
        await a.create(node, {"pubsub#notify_retract": "1", "pubsub#notify_config": "1",
                              "pubsub#notify_delete": "1"})
        bob = ctx.jid("bob")
        await b.subscribe(node)
        await c.subscribe(node)
        await b.ok("set", f"<options node='{node}' jid='{bob}'>" + form(SUB_OPTIONS, {"pubsub#deliver": "false"})
                   + "</options>", what="deliver=false")
        await a.publish(node, payload("x"), id_="x")
        await expect_event(ci, node, "items")
        await a.ok("set", f"<retract node='{node}' notify='true'><item id='x'/></retract>", what="retract")
        m, _ = await expect_event(ci, node, "items")
        check(m.find(f".//{q('retract', NS_PUBSUB_EVENT)}") is not None, f"retraction to carol: {xml(m)}")
        await a.ok("set", f"<purge node='{node}'/>", NS_PUBSUB_OWNER, what="purge")
        await expect_event(ci, node, "purge")
        await a.configure(node, {"pubsub#title": "renamed"})
        await expect_event(ci, node, "configuration")
        await a.ok("set", f"<delete node='{node}'/>", NS_PUBSUB_OWNER, what="delete")
        await expect_event(ci, node, "delete")
        for kind in ("items", "purge", "configuration", "delete"):
            await bi.quiet(is_event(node, kind), 0.5 if kind != "items" else 1.0,
                           f"<{kind}/> event with deliver=false")


async def test_subscribe_and_configure(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("subconf")
        await a.create(node)
        bob = ctx.jid("bob")
        sub = await b.subscribe(node, extra="<options>" + form(SUB_OPTIONS, {"pubsub#deliver": "0"}) + "</options>")
        check(sub.get("subid"), f"no subid: {xml(sub)}")
        # slixmpp reads the reply too: the subscription with its subid, and the options for it.
        iq = await b.c["xep_0060"].subscribe(ctx.service, node, timeout=10)
        check(iq["pubsub"]["subscription"]["subid"], f"slixmpp subscribe: {iq}")
        check(iq["pubsub"]["options"]["jid"] == bob, f"slixmpp subscribe, options jid: {iq}")
        r = await b.ok("get", f"<options node='{node}' jid='{bob}'/>", what="options after subscribe+configure")
        v = form_values(r.find(f".//{q('x', NS_DATA)}"))
        check(not boolean(one(v, "pubsub#deliver")), f"deliver=0 from subscribe+configure not applied: {v}")
        await a.publish(node, payload("x"), id_="x")
        await bi.quiet(is_event(node, "items"), 1.0, "notification despite deliver=0 at subscribe")


async def test_default_subscription_options(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("defsub")
        await a.create(node)
        for inner in ("<default/>", f"<default node='{node}'/>"):
            r = await b.ok("get", inner, what=f"default subscription options {inner}")
            d = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('default', NS_PUBSUB)}")
            check(d is not None, f"no <default/>: {xml(r)}")
            x = d.find(q("x", NS_DATA))
            check(x is not None, f"<default/> without form: {xml(r)}")
            check(form_type_of(x) == SUB_OPTIONS, f"FORM_TYPE {form_type_of(x)}")
            v = form_values(x)
            check(boolean(one(v, "pubsub#deliver")), f"default deliver: {v.get('pubsub#deliver')}")
            check("pubsub#digest" in v, f"default options lack digest: {sorted(v)}")
        await b.err("get", f"<default node='{new_node('nosuch')}'/>", ("cancel", "item-not-found", None),
                    what="default options of a missing node")


async def test_retrieve_items(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node, empty = new_node("items"), new_node("items-empty")
        await a.create(node)
        await a.create(empty)
        ids = [f"it{i}" for i in range(5)]
        for i in ids:
            await a.publish(node, payload(f"text {i}"), id_=i)
        allitems = await b.items(node)
        got = [i for i, _ in allitems]
        check(sorted(got) == sorted(ids), f"all items: {got}")
        check(got in (ids, ids[::-1]), f"items not in publication order (either way): {got}")
        check(all(t == f"text {i}" for i, t in allitems), f"payloads: {allitems}")
        # §6.5.7: the N most recent, in the same order as the full list.
        two = [i for i, _ in await b.items(node, " max_items='2'")]
        check(sorted(two) == ["it3", "it4"], f"max_items=2 should give the two most recent: {two}")
        check(two == [i for i in got if i in two], f"max_items order differs from full list: {two} vs {got}")
        # §6.5.8: by id.
        by_id = await b.items(node, inner="<item id='it1'/><item id='it3'/>")
        check(sorted(by_id) == [("it1", "text it1"), ("it3", "text it3")], f"by id: {by_id}")
        # Unknown ids: nothing.
        check(await b.items(node, inner="<item id='no-such-item'/>") == [], "unknown id returned items")
        check(await b.items(empty) == [], "node without items returned items")
        # slixmpp's plugin reads the same.
        iq = await b.c["xep_0060"].get_items(ctx.service, node, max_items=1, timeout=10)
        check([i["id"] for i in iq["pubsub"]["items"]] == ["it4"], f"slixmpp get_items max 1: {iq}")
        await b.err("get", f"<items node='{new_node('nosuch')}'/>", ("cancel", "item-not-found", None),
                    what="items of a missing node")


async def test_config_node_max(ctx):
    """`max` as the value of pubsub#max_items and pubsub#item_expire (config-node-max): as
    many items as the service keeps, none expiring; multi-items: all of them retrievable."""
    async with Clients(ctx, "alice") as ((a, _),):
        node = new_node("max")
        await a.create(node, {"pubsub#max_items": "1"})
        await a.configure(node, {"pubsub#max_items": "max", "pubsub#item_expire": "max"})
        v = await a.config(node)
        check(one(v, "pubsub#max_items") == "max", f"max_items read back: {v.get('pubsub#max_items')}")
        check(v.get("pubsub#item_expire") in ([], [""]), f"item_expire=max read back: {v.get('pubsub#item_expire')}")
        for i in range(3):
            await a.publish(node, payload(f"m{i}"), id_=f"m{i}")
        check(sorted(i for i, _ in await a.items(node)) == ["m0", "m1", "m2"], "max_items=max kept fewer items")


# ============================================================= §7 publisher use cases

async def test_publish_with_and_without_id(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        node = new_node("pub")
        await a.create(node)
        gen = {await a.publish(node, payload(f"g{i}")) for i in range(3)}
        check(len(gen) == 3, f"generated item ids are not unique: {gen}")
        given = await a.publish(node, payload("first"), id_="fixed")
        check(given == "fixed", f"publish result id {given}")
        await a.publish(node, payload("second"), id_="fixed")
        fixed = [x for x in await a.items(node) if x[0] == "fixed"]
        check(fixed == [("fixed", "second")], f"same id should overwrite: {fixed}")
        check(len(await a.items(node)) == 4, "expected 3 generated + 1 fixed items")
        # Through slixmpp's plugin.
        iq = await a.c["xep_0060"].publish(ctx.service, node, id="sx", payload=ET.fromstring(payload("slix")),
                                            timeout=10)
        check(iq["type"] == "result", f"slixmpp publish: {iq}")
        check(("sx", "slix") in await a.items(node), "slixmpp-published item not retrievable")
        # §7.1.3.3: no such node.
        await a.err("set", f"<publish node='{new_node('nosuch')}'><item>{payload('x')}</item></publish>",
                    ("cancel", "item-not-found", None), what="publish to missing node")


async def test_publish_options(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        node = new_node("pubopt")
        await a.create(node)
        ok = "<publish-options>" + form(PUBLISH_OPTIONS, {"pubsub#access_model": "open"}) + "</publish-options>"
        await a.publish(node, payload("ok"), id_="p1", extra=ok)
        bad = "<publish-options>" + form(PUBLISH_OPTIONS, {"pubsub#access_model": "whitelist"}) + "</publish-options>"
        await a.err("set", f"<publish node='{node}'><item id='p2'>{payload('no')}</item></publish>{bad}",
                    ("cancel", "conflict", "precondition-not-met"), what="publish with unmet precondition")
        check([i for i, _ in await a.items(node)] == ["p1"], "item published despite unmet precondition")


async def test_publish_payload_errors(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        node = new_node("payload")
        await a.create(node)
        # §7.1.3.5 (example 110): two payload elements.
        await a.err("set", f"<publish node='{node}'><item id='x'>{payload('a')}{payload('b')}</item></publish>",
                    ("modify", "bad-request", "invalid-payload"), what="two payloads")
        # §7.1.3.6 (example 111): persistent node, no item.
        await a.err("set", f"<publish node='{node}'/>", ("modify", "bad-request", "item-required"),
                    what="publish without item")
        # §7.1.3.6 (example 112): item without payload.
        await a.err("set", f"<publish node='{node}'><item id='x'/></publish>",
                    ("modify", "bad-request", "payload-required"), what="item without payload")
        # §7.1.3.4 (example 109): payload bigger than pubsub#max_payload_size.
        await a.configure(node, {"pubsub#max_payload_size": "100"})
        await a.publish(node, payload("small"), id_="small")
        await a.err("set", f"<publish node='{node}'><item id='big'>{payload('z' * 300)}</item></publish>",
                    ("modify", "not-acceptable", "payload-too-big"), what="payload too big")
        check([i for i, _ in await a.items(node)] == ["small"], "a rejected publish stored something")


async def test_retract(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("retract")
        await a.create(node)
        await b.subscribe(node)
        await a.publish(node, payload("one"), id_="r1")
        await a.publish(node, payload("two"), id_="r2")
        await a.ok("set", f"<retract node='{node}' notify='true'><item id='r1'/></retract>", what="retract r1")
        check([i for i, _ in await a.items(node)] == ["r2"], "retracted item still there")

        def retract_of(m):
            ev = event_child(m, "items")
            return ev is not None and ev.get("node") == node and ev.find(q("retract", NS_PUBSUB_EVENT)) is not None
        m = await bi.wait(retract_of, 5, "retract notification")
        check(m.get("id"), f"notification without id: {xml(m)}")
        rets = [r.get("id") for r in event_child(m, "items").findall(q("retract", NS_PUBSUB_EVENT))]
        check(rets == ["r1"], f"retract notification ids: {rets}")
        # §7.2.3.1: someone without the right to retract.
        await b.err("set", f"<retract node='{node}'><item id='r2'/></retract>",
                    ("auth", "forbidden", None), what="non-publisher retracts")
        # §7.2.3.3: unknown item.
        await a.err("set", f"<retract node='{node}'><item id='nope'/></retract>",
                    ("cancel", "item-not-found", None), what="retract unknown item")
        # Through slixmpp.
        await a.c["xep_0060"].retract(ctx.service, node, "r2", timeout=10)
        check(await a.items(node) == [], "slixmpp retract left the item")


async def test_transient_node(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("transient")
        await a.create(node, {"pubsub#persist_items": "0"})
        await b.subscribe(node)
        await a.publish(node, payload("fleeting"), id_="t1")
        _, items = await expect_event(bi, node, "items")
        got = [(i.get("id"), payload_text(i)) for i in items.findall(q("item", NS_PUBSUB_EVENT))]
        check(got == [("t1", "fleeting")], f"transient notification: {got}")
        r = await b.iq("get", f"<items node='{node}'/>")
        if iq_type(r) == "result":
            its = r.findall(f".//{q('item', NS_PUBSUB)}")
            check(its == [], f"transient node stored items: {xml(r)}")
        else:  # §6.5.9.? : the node does not persist items
            # §6.5.9.9 (example 88): feature-not-implemented + <unsupported feature='persistent-items'/>.
            et, cond, pcond = pubsub_error(r)
            uns = r.find(f".//{{http://jabber.org/protocol/pubsub#errors}}unsupported")
            check(cond == "feature-not-implemented" and pcond == "unsupported" and uns is not None
                  and uns.get("feature") == "persistent-items",
                  f"retrieve from transient node: expected empty result or feature-not-implemented "
                  f"+ unsupported persistent-items, got {xml(r)}")


# ================================================================= §8 owner use cases

async def test_create_named_and_existing(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("named")
        r = await a.create(node)
        c = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('create', NS_PUBSUB)}")
        check(c is None or c.get("node") == node, f"create result names another node: {xml(r)}")
        await b.err("set", f"<create node='{node}'/>", ("cancel", "conflict", None), what="create existing")
        # Through slixmpp's plugin.
        other = new_node("slix")
        await b.c["xep_0060"].create_node(ctx.service, other, timeout=10)
        check((await b.owner_affs(other)).get(ctx.jid("bob")) == "owner", "creator is not owner")


async def test_create_instant(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        names = set()
        for _ in range(2):
            r = await a.ok("set", "<create/>", what="instant node")
            c = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('create', NS_PUBSUB)}")
            check(c is not None and c.get("node"), f"instant node result must carry the node name: {xml(r)}")
            names.add(c.get("node"))
        check(len(names) == 2, f"two instant nodes got the same name: {names}")
        for n in names:
            await a.publish(n, payload("in instant"), id_="i")
            check(await a.items(n) == [("i", "in instant")], f"instant node {n} not usable")


async def test_create_instant_and_configure(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        r = await a.ok("set", "<create/><configure>" + form(NODE_CONFIG, {"pubsub#title": "Instant"})
                       + "</configure>", what="instant node with configuration")
        c = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('create', NS_PUBSUB)}")
        check(c is not None and c.get("node"), f"instant node result must carry the node name: {xml(r)}")
        check(one(await a.config(c.get("node")), "pubsub#title") == "Instant", "instant node config not applied")


async def test_create_and_configure(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        node = new_node("cc")
        await a.create(node, {"pubsub#title": "Configured", "pubsub#max_items": "3",
                              "pubsub#access_model": "whitelist", "pubsub#notify_retract": "1"})
        v = await a.config(node)
        check(one(v, "pubsub#title") == "Configured", f"title {v.get('pubsub#title')}")
        check(one(v, "pubsub#max_items") == "3", f"max_items {v.get('pubsub#max_items')}")
        check(one(v, "pubsub#access_model") == "whitelist", f"access_model {v.get('pubsub#access_model')}")
        check(boolean(one(v, "pubsub#notify_retract")), "notify_retract not set")
        for i in range(5):
            await a.publish(node, payload(str(i)), id_=f"c{i}")
        check(sorted(i for i, _ in await a.items(node)) == ["c2", "c3", "c4"], "max_items=3 not enforced")
        # Invalid configuration at creation: nothing created.
        bad = new_node("cc-bad")
        await a.err("set", f"<create node='{bad}'/><configure>{form(NODE_CONFIG, {'pubsub#access_model': 'bogus'})}"
                           "</configure>", ("modify", "not-acceptable", None), what="create with bad config")
        await a.err("get", f"<items node='{bad}'/>", ("cancel", "item-not-found", None),
                    what="node created despite bad config")


CONFIG_FIELDS = ("access_model", "publish_model", "max_items", "persist_items", "deliver_payloads",
                 "deliver_notifications", "notify_config", "notify_delete", "notify_retract", "notify_sub",
                 "presence_based_delivery", "send_last_published_item", "item_expire", "notification_type",
                 "title", "description", "type", "itemreply", "max_payload_size")


async def test_configure_get_fields(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        node = new_node("cfg")
        await a.create(node)
        r = await a.ok("get", f"<configure node='{node}'/>", NS_PUBSUB_OWNER)
        x = r.find(f".//{q('x', NS_DATA)}")
        check(form_type_of(x) == NODE_CONFIG, f"FORM_TYPE {form_type_of(x)}")
        v = form_values(x)
        missing = [f for f in CONFIG_FIELDS if f"pubsub#{f}" not in v]
        check(not missing, f"configuration form lacks fields: {missing}")
        check(one(v, "pubsub#access_model") == "open", "default access model")
        # list-single fields offer their options.
        for f in x.findall(q("field", NS_DATA)):
            if f.get("type") == "list-single":
                check(f.findall(q("option", NS_DATA)), f"list-single {f.get('var')} without options")


async def test_configure_set_read_back(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        node = new_node("cfgset")
        await a.create(node)
        new = {"pubsub#title": "New title", "pubsub#description": "New description",
               "pubsub#type": "urn:example:type", "pubsub#access_model": "whitelist",
               "pubsub#publish_model": "subscribers", "pubsub#max_items": "7", "pubsub#persist_items": "1",
               "pubsub#deliver_payloads": "0", "pubsub#deliver_notifications": "1", "pubsub#notify_config": "1",
               "pubsub#notify_delete": "1", "pubsub#notify_retract": "1", "pubsub#notify_sub": "1",
               "pubsub#send_last_published_item": "on_sub", "pubsub#item_expire": "3600",
               "pubsub#notification_type": "normal", "pubsub#itemreply": "publisher",
               "pubsub#max_payload_size": "2048"}
        await a.configure(node, new)
        v = await a.config(node)
        for var, want in new.items():
            got = one(v, var)
            if want in ("0", "1"):
                check(boolean(got) == (want == "1"), f"{var}: set {want}, read back {got}")
            else:
                check(got == want, f"{var}: set {want!r}, read back {got!r}")
        # Cancel: result, nothing changed (§8.2.7? "cancel" form).
        await a.ok("set", f"<configure node='{node}'><x xmlns='{NS_DATA}' type='cancel'/></configure>",
                   NS_PUBSUB_OWNER, what="configure cancel")
        check(await a.config(node) == v, "configure cancel changed the configuration")
        # §8.2.5.3: invalid values.
        for field, val in (("pubsub#access_model", "bogus"), ("pubsub#max_items", "x")):
            await a.err("set", f"<configure node='{node}'>{form(NODE_CONFIG, {field: val})}</configure>",
                        ("modify", "not-acceptable", None), NS_PUBSUB_OWNER, what=f"configure {field}={val}")
        check(await a.config(node) == v, "a rejected configure changed the configuration")


async def test_configure_forbidden_and_missing(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("cfgforbid")
        await a.create(node)
        await b.err("get", f"<configure node='{node}'/>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="non-owner configure get")
        await b.err("set", f"<configure node='{node}'>{form(NODE_CONFIG, {'pubsub#title': 'mine'})}</configure>",
                    ("auth", "forbidden", None), NS_PUBSUB_OWNER, what="non-owner configure set")
        check((await a.config(node)).get("pubsub#title") != ["mine"], "non-owner changed the title")
        await a.err("get", f"<configure node='{new_node('nosuch')}'/>", ("cancel", "item-not-found", None),
                    NS_PUBSUB_OWNER, what="configure missing node")


async def test_default_config(ctx):
    async with Clients(ctx, "alice") as ((a, _),):
        r = await a.ok("get", "<default/>", NS_PUBSUB_OWNER, what="default node config")
        d = r.find(f"{q('pubsub', NS_PUBSUB_OWNER)}/{q('default', NS_PUBSUB_OWNER)}")
        check(d is not None, f"no <default/>: {xml(r)}")
        x = d.find(q("x", NS_DATA))
        check(x is not None and form_type_of(x) == NODE_CONFIG, f"default config form: {xml(r)}")
        v = form_values(x)
        missing = [f for f in CONFIG_FIELDS if f"pubsub#{f}" not in v]
        check(not missing, f"default configuration form lacks: {missing}")
        # A node created without configuration has exactly the default configuration.
        node = new_node("deflt")
        await a.create(node)
        got = await a.config(node)
        diff = {k: (v[k], got.get(k)) for k in v if k != "FORM_TYPE" and v[k] != got.get(k)}
        check(not diff, f"new node's configuration differs from <default/>: {diff}")


async def test_delete_with_redirect(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node, target = new_node("del"), new_node("del-target")
        await a.create(node, {"pubsub#notify_delete": "1"})
        await a.create(target)
        await b.subscribe(node)
        await b.err("set", f"<delete node='{node}'/>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="non-owner delete")
        uri = f"xmpp:{ctx.service}?;node={target}"
        await a.ok("set", f"<delete node='{node}'><redirect uri='{uri}'/></delete>", NS_PUBSUB_OWNER,
                   what="delete")
        _, d = await expect_event(bi, node, "delete")
        red = d.find(q("redirect", NS_PUBSUB_EVENT))
        check(red is not None and red.get("uri") == uri, f"delete notification redirect: {xml(d)}")
        await a.err("get", f"<items node='{node}'/>", ("cancel", "item-not-found", None), what="deleted node")
        await a.err("set", f"<delete node='{node}'/>", ("cancel", "item-not-found", None), NS_PUBSUB_OWNER,
                    what="delete again")
        # Without a redirect: a bare <delete/>.
        plain = new_node("del-plain")
        await a.create(plain, {"pubsub#notify_delete": "true"})
        await b.subscribe(plain)
        await a.ok("set", f"<delete node='{plain}'/>", NS_PUBSUB_OWNER, what="delete without redirect")
        _, d = await expect_event(bi, plain, "delete")
        check(d.find(q("redirect", NS_PUBSUB_EVENT)) is None, f"delete without redirect carries one: {xml(d)}")
        r = await b.ok("get", "<subscriptions/>", what="subscriptions after delete")
        check(not [s for s in r.iter(q("subscription", NS_PUBSUB)) if s.get("node") == node],
              "subscription survived node deletion")


async def test_purge(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("purge")
        await a.create(node, {"pubsub#notify_retract": "1"})
        await b.subscribe(node)
        for i in range(3):
            await a.publish(node, payload(str(i)), id_=f"p{i}")
        await b.err("set", f"<purge node='{node}'/>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="non-owner purge")
        await a.ok("set", f"<purge node='{node}'/>", NS_PUBSUB_OWNER, what="purge")
        check(await a.items(node) == [], "items left after purge")
        await expect_event(bi, node, "purge")
        await a.publish(node, payload("after"), id_="after")
        check(await a.items(node) == [("after", "after")], "node unusable after purge")


async def test_manage_subscriptions(ctx):
    async with Clients(ctx, "alice", "bob", "carol") as ((a, _), (b, bi), (cl, _)):
        node = new_node("msubs")
        await a.create(node)
        await b.subscribe(node)
        await cl.subscribe(node)
        subs = await a.owner_subs(node)
        check({(j, s) for j, s, _ in subs} == {(ctx.jid("bob"), "subscribed"), (ctx.jid("carol"), "subscribed")},
              f"owner's subscription list: {subs}")
        check(all(sid for _, _, sid in subs), f"subscriptions without subid: {subs}")
        await b.err("get", f"<subscriptions node='{node}'/>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="non-owner lists subscriptions")
        await a.ok("set", f"<subscriptions node='{node}'><subscription jid='{ctx.jid('bob')}' subscription='none'/>"
                          "</subscriptions>", NS_PUBSUB_OWNER, what="owner removes bob")
        check([j for j, _, _ in await a.owner_subs(node)] == [ctx.jid("carol")], "bob not removed")
        # (its exact form is checked by test_subscription_removed_notification)
        await expect_event(bi, node, "subscription")
        await a.publish(node, payload("x"), id_="x")
        await bi.quiet(is_event(node, "items"), 1.0, "notification to a removed subscriber")
        # §8.8.2: the owner subscribes bob again; bob is notified and gets items again.
        await a.ok("set", f"<subscriptions node='{node}'><subscription jid='{ctx.jid('bob')}' "
                          "subscription='subscribed'/></subscriptions>", NS_PUBSUB_OWNER, what="owner adds bob")
        check((ctx.jid("bob"), "subscribed") in {(j, st) for j, st, _ in await a.owner_subs(node)},
              "owner-added subscription not listed")
        _, s = await expect_event(bi, node, "subscription")
        check(s.get("jid") == ctx.jid("bob") and s.get("subscription") == "subscribed",
              f"notification of the owner-made subscription: {xml(s)}")
        await a.publish(node, payload("y"), id_="y")
        await expect_event(bi, node, "items")


async def test_subscription_removed_notification(ctx):
    """§8.8.4 (example 196): the removed subscriber is told subscription='none'."""
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("subnone")
        await a.create(node)
        await b.subscribe(node)
        await a.ok("set", f"<subscriptions node='{node}'><subscription jid='{ctx.jid('bob')}' subscription='none'/>"
                          "</subscriptions>", NS_PUBSUB_OWNER, what="owner removes bob")
        _, s = await expect_event(bi, node, "subscription")
        check(s.get("jid") == ctx.jid("bob") and s.get("subscription") == "none",
              f"§8.8.4 notification to bob must be <subscription node jid subscription='none'/>, got {xml(s)}")


async def test_affiliation_effects(ctx):
    """§4.1 capability table on a whitelist node, one affiliation at a time for bob."""
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("affs")
        await a.create(node, {"pubsub#access_model": "whitelist"})
        await a.publish(node, payload("owner's"), id_="o1")
        bob = ctx.jid("bob")
        sub = f"<subscribe node='{node}' jid='{bob}'/>"
        unsub = f"<unsubscribe node='{node}' jid='{bob}'/>"
        get = f"<items node='{node}'/>"

        def pub(i):
            return f"<publish node='{node}'><item id='{i}'>{payload(i)}</item></publish>"

        # none: whitelist keeps bob out.
        await b.err("set", sub, ("cancel", "not-allowed", "closed-node"), what="none subscribes")
        await b.err("get", get, ("cancel", "not-allowed", "closed-node"), what="none retrieves")
        await b.err("set", pub("n"), ("auth", "forbidden", None), what="none publishes")
        # member: subscribe + retrieve, not publish.
        await a.set_aff(node, bob, "member")
        await b.subscribe(node)
        check(("o1", "owner's") in await b.items(node), "member cannot retrieve")
        await b.err("set", pub("m"), ("auth", "forbidden", None), what="member publishes")
        await b.err("set", f"<purge node='{node}'/>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="member purges")
        await b.ok("set", unsub, what="member unsubscribes")
        # publisher: publish, retrieve, purge; not configure.
        await a.set_aff(node, bob, "publisher")
        await b.publish(node, payload("pb"), id_="pb")
        check(("pb", "pb") in await b.items(node), "publisher cannot retrieve")
        await b.ok("set", f"<purge node='{node}'/>", NS_PUBSUB_OWNER, what="publisher purges")
        check(await a.items(node) == [], "publisher's purge left items")
        await b.err("get", f"<configure node='{node}'/>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="publisher configures")
        # publish-only: publish, not retrieve, not purge, not subscribe? (table: no subscribe).
        await a.set_aff(node, bob, "publish-only")
        await b.publish(node, payload("po"), id_="po")
        check(("po", "po") in await a.items(node), "publish-only item not stored")
        r = await b.iq("get", get)
        check(iq_type(r) == "error", f"publish-only retrieved items from a whitelist node: {xml(r)}")
        await b.err("set", f"<purge node='{node}'/>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="publish-only purges")
        # outcast: nothing.
        await a.set_aff(node, bob, "outcast")
        await b.err("set", sub, ("auth", "forbidden", None), what="outcast subscribes")
        await b.err("get", get, ("auth", "forbidden", None), what="outcast retrieves")
        await b.err("set", pub("x"), ("auth", "forbidden", None), what="outcast publishes")
        affs = await a.owner_affs(node)
        check(affs == {ctx.jid("alice"): "owner", bob: "outcast"}, f"owner's affiliation list: {affs}")
        # none again: back to closed-node; and gone from the list.
        await a.set_aff(node, bob, "none")
        await b.err("set", sub, ("cancel", "not-allowed", "closed-node"), what="none (again) subscribes")
        check(await a.owner_affs(node) == {ctx.jid("alice"): "owner"}, "affiliation none still listed")


async def test_manage_affiliations_last_owner(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("lastowner")
        await a.create(node)
        await b.err("get", f"<affiliations node='{node}'/>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="non-owner lists affiliations")
        await b.err("set", f"<affiliations node='{node}'><affiliation jid='{ctx.jid('bob')}' affiliation='owner'/>"
                           "</affiliations>", ("auth", "forbidden", None), NS_PUBSUB_OWNER,
                    what="non-owner makes itself owner")
        await a.err("set", f"<affiliations node='{node}'><affiliation jid='{ctx.jid('alice')}' affiliation='none'/>"
                           "</affiliations>", ("modify", "not-acceptable", None), NS_PUBSUB_OWNER,
                    what="remove the last owner")
        check(await a.owner_affs(node) == {ctx.jid("alice"): "owner"}, "last owner removed")
        # With a second owner, the first may leave.
        await a.set_aff(node, ctx.jid("bob"), "owner")
        await a.set_aff(node, ctx.jid("alice"), "none")
        check(await b.owner_affs(node) == {ctx.jid("bob"): "owner"}, "ownership not handed over")


# ============================================================= notifications

async def test_notification_payload_or_not(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("nopayload")
        await a.create(node, {"pubsub#deliver_payloads": "0"})
        await b.subscribe(node)
        await a.publish(node, payload("hidden"), id_="h1")
        m, items = await expect_event(bi, node, "items")
        its = items.findall(q("item", NS_PUBSUB_EVENT))
        check(len(its) == 1 and its[0].get("id") == "h1", f"items event: {xml(m)}")
        check(list(its[0]) == [], f"deliver_payloads=false but the payload came: {xml(m)}")
        check(await b.items(node) == [("h1", "hidden")], "payload not stored")
        await a.configure(node, {"pubsub#deliver_payloads": "1"})
        await a.publish(node, payload("shown"), id_="h2")
        _, items = await expect_event(bi, node, "items")
        got = [(i.get("id"), payload_text(i)) for i in items.findall(q("item", NS_PUBSUB_EVENT))]
        check(got == [("h2", "shown")], f"with payloads: {got}")


async def test_notification_config(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("notifconf")
        await a.create(node, {"pubsub#notify_config": "1"})
        await b.subscribe(node)
        await a.configure(node, {"pubsub#title": "Changed"})
        _, conf = await expect_event(bi, node, "configuration")
        x = conf.find(q("x", NS_DATA))
        check(x is not None, f"configuration notification without form (deliver_payloads is on): {xml(conf)}")
        check(form_type_of(x) == NODE_CONFIG, f"FORM_TYPE {form_type_of(x)}")
        check(one(form_values(x), "pubsub#title") == "Changed", f"form title: {xml(x)}")
        # notify_config off: no notification.
        await a.configure(node, {"pubsub#notify_config": "0"})
        await asyncio.sleep(0.5)  # the change that turns it off may or may not be announced
        bi.consumed.update(range(len(bi.messages)))
        await a.configure(node, {"pubsub#title": "Quiet"})
        await bi.quiet(is_event(node, "configuration"), 1.0, "configuration notification with notify_config=0")


async def test_notification_subscription_to_owner(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, ai), (b, _)):
        node = new_node("notifsub")
        await a.create(node, {"pubsub#notify_sub": "1"})
        await b.subscribe(node)
        _, s = await expect_event(ai, node, "subscription")
        check(s.get("jid") == ctx.jid("bob") and s.get("subscription") == "subscribed",
              f"subscription notification to owner: {xml(s)}")


async def test_notification_type_and_ids(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("ntype")
        await a.create(node)
        await b.subscribe(node)
        await a.publish(node, payload("h"), id_="h")
        m1, _ = await expect_event(bi, node, "items")
        check(m1.get("type") == "headline", f"default notification_type should give headline: {xml(m1)}")
        await a.configure(node, {"pubsub#notification_type": "normal"})
        await a.publish(node, payload("n"), id_="n")
        m2, _ = await expect_event(bi, node, "items")
        check(m2.get("type") in (None, "normal"), f"notification_type=normal gave type {m2.get('type')!r}")
        check(m1.get("id") and m2.get("id") and m1.get("id") != m2.get("id"),
              f"notification ids missing or reused: {m1.get('id')!r} {m2.get('id')!r}")


async def test_notification_itemreply_publisher(ctx):
    """pubsub#itemreply=publisher: the publisher goes with the item in notifications and, as
    §7.1.2.3 asks then, in every form of retrieval (all, by id, max_items, RSM pages, the
    last item on subscribing). Its bare JID, as in the XEP's examples: the resource would
    tell every subscriber which device the publisher used, and a reply is for the account."""
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        bob = ctx.jid("bob")
        node, plain = new_node("itemreply"), new_node("itemreply-owner")
        await a.create(node, {"pubsub#itemreply": "publisher"})
        await a.create(plain)
        await a.set_aff(node, bob, "publisher")
        await b.subscribe(node)
        await b.publish(node, payload("from bob"), id_="ib")
        _, items = await expect_event(bi, node, "items")
        item = items.find(q("item", NS_PUBSUB_EVENT))
        check(item.get("publisher") == bob, f"itemreply=publisher: notification publisher: {xml(item)}")

        async def publishers(n, attrs="", inner=""):
            r = await a.ok("get", f"<items node='{n}'{attrs}>{inner}</items>", what=f"items of {n}")
            return [i.get("publisher") for i in r.iter(q("item", NS_PUBSUB))]

        await a.publish(node, payload("from alice"), id_="ia")
        check(await publishers(node) == [bob, ctx.jid("alice")], f"all items: {await publishers(node)}")
        check(await publishers(node, inner="<item id='ib'/>") == [bob], "by id")
        check(await publishers(node, " max_items='1'") == [ctx.jid("alice")], "max_items")
        r = await a.ok("get", f"<items node='{node}'/><set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set>",
                       what="RSM page")
        check([i.get("publisher") for i in r.iter(q("item", NS_PUBSUB))] == [bob], f"RSM page: {xml(r)}")
        # Not for the default (itemreply=owner).
        await a.publish(plain, payload("plain"), id_="p")
        check(await publishers(plain) == [None], f"itemreply=owner: {await publishers(plain)}")


async def test_send_last_published_on_sub(ctx):
    async with Clients(ctx, "alice", "bob", "carol") as ((a, _), (b, bi), (cl, ci)):
        node = new_node("lastpub")
        await a.create(node, {"pubsub#send_last_published_item": "on_sub"})
        await a.publish(node, payload("first"), id_="l1")
        await a.publish(node, payload("second"), id_="l2")
        await b.subscribe(node)
        _, items = await expect_event(bi, node, "items")
        got = [(i.get("id"), payload_text(i)) for i in items.findall(q("item", NS_PUBSUB_EVENT))]
        check(got == [("l2", "second")], f"last published item on subscribe: {got}")
        await bi.quiet(is_event(node, "items"), 1.0, "second last-published notification")
        # never: nothing on subscribe.
        never = new_node("lastpub-never")
        await a.create(never, {"pubsub#send_last_published_item": "never"})
        await a.publish(never, payload("x"), id_="x")
        await cl.subscribe(never)
        await ci.quiet(is_event(never, "items"), 1.5, "last item with send_last_published_item=never")


async def test_notification_include_body(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("body")
        await a.create(node)
        await b.subscribe(node, extra="<options>" + form(SUB_OPTIONS, {"pubsub#include_body": "1"}) + "</options>")
        await a.publish(node, payload("with body"), id_="wb")
        m, _ = await expect_event(bi, node, "items")
        body = m.find("{jabber:client}body")
        check(body is not None and (body.text or "").strip(), f"include_body=1 but no <body/>: {xml(m)}")


async def test_notification_retract_by_config(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, bi)):
        node = new_node("notifret")
        await a.create(node, {"pubsub#notify_retract": "1"})
        await b.subscribe(node)
        await a.publish(node, payload("x"), id_="x")
        await expect_event(bi, node, "items")
        await a.ok("set", f"<retract node='{node}'><item id='x'/></retract>", what="retract (no notify attr)")
        _, items = await expect_event(bi, node, "items")
        check([r.get("id") for r in items.findall(q("retract", NS_PUBSUB_EVENT))] == ["x"],
              f"notify_retract=1: retract notification: {xml(items)}")


async def test_publish_model_open(ctx):
    async with Clients(ctx, "alice", "bob") as ((a, _), (b, _)):
        node = new_node("pubmodel")
        await a.create(node)
        await b.err("set", f"<publish node='{node}'><item id='b'>{payload('b')}</item></publish>",
                    ("auth", "forbidden", None), what="publish_model=publishers, bob publishes")
        await a.configure(node, {"pubsub#publish_model": "open"})
        await b.publish(node, payload("b"), id_="b")
        check(await a.items(node) == [("b", "b")], "publish_model=open publish not stored")


# ============================================================= persistence

@timeout(90)
async def test_persistence_across_restart(ctx):
    node = new_node("persist")
    cfg = {"pubsub#title": "Survivor", "pubsub#max_items": "5", "pubsub#notification_type": "normal",
           "pubsub#notify_retract": "1"}

    async def snapshot():
        async with Clients(ctx, "alice", "carol") as ((a, _), (cl, _)):
            conf = await a.config(node)
            items = await cl.items(node)
            subs = sorted((j, s) for j, s, _ in await a.owner_subs(node))
            subids = sorted(sid for _, _, sid in await a.owner_subs(node))
            affs = await a.owner_affs(node)
            r = await cl.ok("get", f"<subscriptions node='{node}'/>")
            own = sorted((s.get("jid"), s.get("subscription"), s.get("subid"))
                         for s in r.iter(q("subscription", NS_PUBSUB)))
            r = await cl.ok("get", f"<options node='{node}' jid='{ctx.jid('carol')}'/>")
            opts = form_values(r.find(f".//{q('x', NS_DATA)}"))
            return conf, items, subs, subids, affs, own, opts

    async with Clients(ctx, "alice", "carol") as ((a, _), (cl, _)):
        await a.create(node, cfg)
        await a.set_aff(node, ctx.jid("bob"), "publisher")
        await cl.subscribe(node, extra="<options>" + form(SUB_OPTIONS, {"pubsub#include_body": "1",
                                                                        "pubsub#digest_frequency": "60000"}) + "</options>")
        for i in range(4):
            await a.publish(node, payload(f"p{i}"), id_=f"p{i}")
    before = await snapshot()
    check(len(before[1]) == 4 and before[4].get(ctx.jid("bob")) == "publisher", f"setup: {before}")
    check(one(before[0], "pubsub#title") == "Survivor" and boolean(one(before[6], "pubsub#include_body")),
          f"setup: {before}")
    await ctx.restart_roost()
    after = await snapshot()
    for what, x, y in zip(("config", "items", "subscriptions", "subids", "affiliations", "own subscriptions",
                           "subscription options"),
                          before, after):
        check(x == y, f"{what} changed across restart:\n before {x}\n after  {y}")
    # And it keeps working: a new publish reaches carol.
    async with Clients(ctx, "alice", "carol") as ((a, _), (cl, ci)):
        await a.publish(node, payload("post"), id_="post")
        m, _ = await expect_event(ci, node, "items")
        check(m.get("type") in (None, "normal"), f"notification_type lost across restart: {xml(m)}")
