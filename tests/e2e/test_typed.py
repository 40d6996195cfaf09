"""Typed discovery end to end with real clients (issue 14): XEP-0462 type filtering of
disco#items on the service and on a collection; XEP-0413 order-by on item retrieval, with
max_items and XEP-0059 as in the XEP's examples, across a Roost restart; `pubsub#type` in
node meta-data; the XEP-0472 social feed configuration created as the XEP asks and working
as configured; the XEP-0248 subscription options only on collections.

Types are unique per run (the service is shared by every test), so the filtered lists can be
checked exactly.
"""

import os

from harness import NS_DATA, NS_PUBSUB, NS_PUBSUB_EVENT, Inbox, check, iq_type, pubsub_error, raw_iq, send_available
from test_advanced import DISCO_ITEMS, PS, new_node, q, rsm, set_of, xml
from test_collections import Owner, is_items

DISCO_INFO = "http://jabber.org/protocol/disco#info"
META_DATA = "http://jabber.org/protocol/pubsub#meta-data"
SUB_OPTIONS = "http://jabber.org/protocol/pubsub#subscribe_options"
PUBSUB_FILTER = "urn:xmpp:pubsub-filter:0"
ORDER_BY = "urn:xmpp:order-by:1"
SOCIAL = "urn:xmpp:pubsub-social-feed:1"
ATOM = "http://www.w3.org/2005/Atom"
COLLECTION_OPTIONS = {"pubsub#subscription_type", "pubsub#subscription_depth"}


async def service_features(ps):
    r = await raw_iq(ps.c, f"<iq type='get' to='{ps.to}'><query xmlns='{DISCO_INFO}'/></iq>")
    check(iq_type(r) == "result", f"service disco#info: {xml(r)}")
    return {f.get("var") for f in r.find(q("query", DISCO_INFO)).findall(q("feature", DISCO_INFO))}


def filter_xml(included=None, excluded=None):
    """XEP-0462 example 1's <filter/>, with the given fields (lists of types)."""
    fields = ""
    for var, types in (("included-types", included), ("excluded-types", excluded)):
        if types is not None:
            fields += (f"<field type='list-multi' var='{var}'>"
                       + "".join(f"<value>{t}</value>" if t else "<value/>" for t in types) + "</field>")
    return (f"<filter xmlns='{PUBSUB_FILTER}'><x xmlns='{NS_DATA}' type='submit'>"
            f"<field var='FORM_TYPE' type='hidden'><value>{PUBSUB_FILTER}</value></field>{fields}</x></filter>")


async def filtered(ps, node=None, set_xml="", **kw):
    """disco#items with a type filter: (the NodeIDs listed, the <set/>), or the error reply."""
    nattr = f" node='{node}'" if node else ""
    r = await raw_iq(ps.c, f"<iq type='get' to='{ps.to}'><query xmlns='{DISCO_ITEMS}'{nattr}>"
                           f"{filter_xml(**kw)}{set_xml}</query></iq>")
    if iq_type(r) != "result":
        return r
    qe = r.find(q("query", DISCO_ITEMS))
    for i in qe.findall(q("item", DISCO_ITEMS)):
        check(i.get("jid") == ps.to, f"disco#items item jid: {xml(i)}")
    return [i.get("node") for i in qe.findall(q("item", DISCO_ITEMS))], set_of(qe)


async def test_type_filtered_disco_items(ctx):
    """XEP-0462 on the service and on a collection: included-types (with the empty type),
    excluded-types, with XEP-0059, visibility unchanged, both fields a bad-request."""
    run = os.urandom(3).hex()
    blog, comments = f"urn:example:roost:blog:{run}", f"urn:example:roost:comments:{run}"
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        a, b = Owner(ctx, ca), PS(ctx, cb)
        check(PUBSUB_FILTER in await service_features(a), "urn:xmpp:pubsub-filter:0 not advertised")
        b1, b2, cm, plain, secret = (new_node(n) for n in ("tb1", "tb2", "tcm", "tplain", "tsecret"))
        await a.create(b1, {"pubsub#type": blog})
        await a.create(b2, {"pubsub#type": blog})
        await a.create(cm, {"pubsub#type": comments})
        await a.create(plain)
        await a.create(secret, {"pubsub#type": blog, "pubsub#access_model": "whitelist"})

        names, page = await filtered(b, included=[blog])
        check(sorted(names) == sorted([b1, b2]), f"included {blog}: {names}")
        check(page is None, f"a <set/> without asking: {page}")
        # The owner sees the whitelist node too: the filter never widens what one may see.
        names, _ = await filtered(a, included=[blog])
        check(sorted(names) == sorted([b1, b2, secret]), f"owner, included {blog}: {names}")
        # Example 1's shape: a type and the empty type (nodes without pubsub#type).
        names, _ = await filtered(b, included=[blog, ""])
        check(b1 in names and b2 in names and plain in names, f"included blog + empty: {names}")
        check(cm not in names and secret not in names, f"included blog + empty lists others: {names}")
        names, _ = await filtered(b, excluded=[comments, ""])
        check(b1 in names and b2 in names, f"excluded comments + empty: {names}")
        check(cm not in names and plain not in names, f"excluded still lists: {names}")
        names, _ = await filtered(b, included=[])
        check(names == [], f"included nothing: {names}")

        # XEP-0059 over the filtered list.
        first, page = await filtered(b, set_xml=rsm(max_=1), included=[blog, comments])
        check(len(first) == 1 and page is not None and page[1] == 0 and page[3] == 3,
              f"first page of the filtered list: {first} {page}")
        rest, page = await filtered(b, set_xml=rsm(max_=5, after=first[0]), included=[blog, comments])
        check(sorted(first + rest) == sorted([b1, b2, cm]) and page[3] == 3, f"second page: {rest} {page}")

        # On a collection: its children, filtered.
        coll, c1, c2 = new_node("tcoll"), new_node("tc1"), new_node("tc2")
        await a.create(coll, {"pubsub#node_type": "collection"})
        await a.create(c1, {"pubsub#collection": coll, "pubsub#type": SOCIAL})
        await a.create(c2, {"pubsub#collection": coll})
        names, _ = await filtered(b, node=coll, included=[SOCIAL])
        check(names == [c1], f"collection, included social: {names}")
        names, _ = await filtered(b, node=coll, excluded=[SOCIAL])
        check(names == [c2], f"collection, excluded social: {names}")
        # The top level does not list the children of a collection.
        names, _ = await filtered(b, included=[SOCIAL])
        check(c1 not in names, f"a child listed at the top: {names}")

        # Both fields: "an error of type modify containing a bad-request element".
        r = await filtered(b, included=[blog], excluded=[comments])
        check(not isinstance(r, tuple) and pubsub_error(r)[:2] == ("modify", "bad-request"),
              f"both fields: {xml(r) if not isinstance(r, tuple) else r}")
        r = await filtered(b, node=coll, included=[blog], excluded=[comments])
        check(not isinstance(r, tuple) and pubsub_error(r)[:2] == ("modify", "bad-request"),
              f"both fields on a collection: {r}")


def order_xml(*orders):
    return "".join(f"<order xmlns='{ORDER_BY}' by='{by}'" + (" desc='true'" if desc else "") + "/>"
                   for by, desc in orders)


async def ordered(ps, node, orders, attrs="", set_xml=""):
    r = await ps.ok("get", f"<items node='{node}'{attrs}/>{order_xml(*orders)}{set_xml}", what="ordered items")
    pse = r.find(q("pubsub", NS_PUBSUB))
    items = pse.find(q("items", NS_PUBSUB))
    return [i.get("id") for i in items.findall(q("item", NS_PUBSUB))], set_of(pse)


async def test_order_by_on_items(ctx):
    """XEP-0413's examples: A, B, C, D created in that order, C overwritten after D's
    creation, A later still; by creation and modification, ascending and descending, with
    max_items and RSM; the order kept across a Roost restart; an unknown field refused."""
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        a, b = PS(ctx, ca), PS(ctx, cb)
        feats = await service_features(a)
        for f in (ORDER_BY, f"{ORDER_BY}@{NS_PUBSUB}"):
            check(f in feats, f"{f} not advertised")
        node = new_node("balcony")
        await a.create(node)
        for id_ in ("A", "B", "C", "D", "C", "A"):
            await a.publish(node, id_, f"item {id_}")
        creation, modification = ("creation", False), ("modification", False)
        creation_desc, modification_desc = ("creation", True), ("modification", True)

        async def all_orders():
            # "when ascending creation order is requested, items are in order A, B, C, D.
            # When ascending modification order is requested, items are in order B, D, C, A."
            ids, page = await ordered(b, node, [creation])
            check(ids == ["A", "B", "C", "D"] and page is None, f"ascending creation: {ids} {page}")
            ids, _ = await ordered(b, node, [modification])
            check(ids == ["B", "D", "C", "A"], f"ascending modification: {ids}")
            # Examples rsm_1 .. rsm_4.
            got = await ordered(b, node, [modification], set_xml=rsm(max_=2))
            check(got == (["B", "D"], ("B", 0, "D", 4)), f"rsm_1: {got}")
            got = await ordered(b, node, [modification], set_xml=rsm(max_=2, after="D"))
            check(got == (["C", "A"], ("C", 2, "A", 4)), f"rsm_2: {got}")
            got = await ordered(b, node, [creation_desc], set_xml=rsm(max_=2))
            check(got == (["D", "C"], ("D", 0, "C", 4)), f"rsm_3: {got}")
            got = await ordered(b, node, [creation_desc], set_xml=rsm(max_=2, after="C"))
            check(got == (["B", "A"], ("B", 2, "A", 4)), f"rsm_4: {got}")
            # §creation and §modification: max_items='3' with desc: the 3 most recent.
            ids, _ = await ordered(b, node, [creation_desc], attrs=" max_items='3'")
            check(ids == ["D", "C", "B"], f"3 most recently created: {ids}")
            ids, _ = await ordered(b, node, [modification_desc], attrs=" max_items='3'")
            check(ids == ["A", "C", "D"], f"3 most recently modified: {ids}")
            # A second order only breaks ties; the first has none.
            ids, _ = await ordered(b, node, [creation, modification_desc])
            check(ids == ["A", "B", "C", "D"], f"two orders: {ids}")

        await all_orders()
        # Without <order/>, XEP-0060's publish order as before.
        ids, _ = await a.items_page(node, "")
        check(ids == ["B", "D", "C", "A"], f"plain retrieval: {ids}")
        # Creation is stored: it survives a restart.
        await ctx.restart_roost()
        await all_orders()

        # A retraction forgets the creation: B published again is created last.
        await a.ok("set", f"<retract node='{node}'><item id='B'/></retract>", what="retract B")
        await a.publish(node, "B", "item B again")
        ids, _ = await ordered(b, node, [creation])
        check(ids == ["A", "C", "D", "B"], f"creation after retract and republish: {ids}")

        # An order field Roost does not offer.
        r = await b.iq("get", f"<items node='{node}'/><order xmlns='{ORDER_BY}' by='{{urn:example}}rating'/>")
        check(pubsub_error(r)[:2] == ("cancel", "feature-not-implemented"), f"unknown order field: {xml(r)}")
        # §MAM's query: not offered, not claimed, and refused rather than answered unordered.
        check(f"{ORDER_BY}@urn:xmpp:mam:2" not in feats, "order-by on MAM claimed")
        r = await raw_iq(b.c, f"<iq type='set' to='{b.to}'><query xmlns='urn:xmpp:mam:2' queryid='o1' node='{node}'>"
                              f"<order xmlns='{ORDER_BY}' by='creation'/></query></iq>")
        check(pubsub_error(r)[:2] == ("cancel", "feature-not-implemented"), f"ordered MAM query: {xml(r)}")


def form_of(el, form_type):
    for x in el.iter(q("x", NS_DATA)):
        ft = [f for f in x.findall(q("field", NS_DATA)) if f.get("var") == "FORM_TYPE"]
        if ft and ft[0].findtext(q("value", NS_DATA)) == form_type:
            return {f.get("var"): [v.text or "" for v in f.findall(q("value", NS_DATA))]
                    for f in x.findall(q("field", NS_DATA))}
    return None


async def metadata(ps, node):
    r = await raw_iq(ps.c, f"<iq type='get' to='{ps.to}'><query xmlns='{DISCO_INFO}' node='{node}'/></iq>")
    check(iq_type(r) == "result", f"node disco#info: {xml(r)}")
    v = form_of(r, META_DATA)
    check(v is not None, f"no meta-data form: {xml(r)}")
    return v


async def test_social_feed_node(ctx):
    """XEP-0472 §profile_base_node_config: a social feed created with its configuration (in
    one create-and-configure), reported back in the configuration and the meta-data, and
    working as configured: entries kept, notifications without payload, retractions notified,
    no last item on subscribing; listed by its type (XEP-0462)."""
    async with ctx.client("alice") as ca, ctx.client("bob", resource="feed") as cb:
        a, b = Owner(ctx, ca), PS(ctx, cb)
        send_available(cb)
        inbox = Inbox(cb)
        node = new_node("social")
        await a.create(node, {
            "pubsub#type": SOCIAL,
            "pubsub#notify_retract": "true",
            "pubsub#max_items": "max",
            "pubsub#persist_items": "true",
            "pubsub#send_last_published_item": "never",
            "pubsub#deliver_payloads": "false",
            "pubsub#access_model": "open",
        })
        v = await a.config_values(node)
        for var, want in (("pubsub#type", [SOCIAL]), ("pubsub#notify_retract", ["1"]), ("pubsub#max_items", ["max"]),
                          ("pubsub#persist_items", ["1"]), ("pubsub#send_last_published_item", ["never"]),
                          ("pubsub#deliver_payloads", ["0"])):
            check(v.get(var) == want, f"config {var}: {v.get(var)} != {want}")
        meta = await metadata(b, node)
        check(meta.get("pubsub#type") == [SOCIAL], f"meta-data pubsub#type: {meta.get('pubsub#type')}")
        check(meta.get("pubsub#max_items") == ["max"], f"meta-data max_items: {meta.get('pubsub#max_items')}")
        # A node without a type shows the field without a value.
        untyped = new_node("untyped")
        await a.create(untyped)
        meta = await metadata(b, untyped)
        check(meta.get("pubsub#type") == [], f"untyped node's pubsub#type: {meta.get('pubsub#type')}")

        entry = (f"<entry xmlns='{ATOM}'><title>hanging out at the Caf&#233; Napolitano</title>"
                 f"<id>tag:montague.lit,2008-05-08:posts-1</id><published>2008-05-08T18:30:02Z</published>"
                 f"<updated>2008-05-08T18:30:02Z</updated></entry>")
        await a.ok("set", f"<publish node='{node}'><item id='post-1'>{entry}</item></publish>", what="publish entry")
        await b.subscribe(node, ctx.jid("bob") + "/feed")
        await inbox.quiet(lambda m: m.find(q("event", NS_PUBSUB_EVENT)) is not None, secs=1.0,
                          what="last item on subscribing (send_last_published_item=never)")
        await a.ok("set", f"<publish node='{node}'><item id='post-2'>{entry}</item></publish>", what="publish 2")
        m = await inbox.wait(is_items(node, "post-2"), what="notification of post-2")
        item = m.find(f"{q('event', NS_PUBSUB_EVENT)}/{q('items', NS_PUBSUB_EVENT)}/{q('item', NS_PUBSUB_EVENT)}")
        check(len(list(item)) == 0, f"deliver_payloads=false, yet a payload: {xml(m)}")
        # The entries are kept, payloads and all, for the client to fetch.
        ids, _ = await b.items_page(node, "")
        check(ids == ["post-1", "post-2"], f"kept entries: {ids}")
        await a.ok("set", f"<retract node='{node}'><item id='post-1'/></retract>", what="retract post-1")

        def retracted(msg):
            ev = msg.find(f"{q('event', NS_PUBSUB_EVENT)}/{q('items', NS_PUBSUB_EVENT)}")
            return ev is not None and ev.get("node") == node and any(
                r.get("id") == "post-1" for r in ev.findall(q("retract", NS_PUBSUB_EVENT)))
        await inbox.wait(retracted, what="retraction of post-1 (notify_retract)")
        names, _ = await filtered(b, included=[SOCIAL])
        check(node in names and untyped not in names, f"social feeds by type: {names}")


async def options_fields(ps, node, jid):
    r = await ps.ok("get", f"<options node='{node}' jid='{jid}'/>", what=f"options on {node}")
    v = form_of(r, SUB_OPTIONS)
    check(v is not None, f"no options form: {xml(r)}")
    return set(v)


async def test_collection_options_only_on_collections(ctx):
    """XEP-0248's subscription_type and subscription_depth are in the options form of a
    subscription to a collection (and of the defaults for one), not of one to a leaf."""
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        a, b = Owner(ctx, ca), PS(ctx, cb)
        leaf, coll = new_node("oleaf"), new_node("ocoll")
        await a.create(leaf)
        await a.create(coll, {"pubsub#node_type": "collection"})
        me = ctx.jid("bob")
        await b.subscribe(leaf, me)
        await b.subscribe(coll, me)
        fields = await options_fields(b, leaf, me)
        check("pubsub#deliver" in fields and not fields & COLLECTION_OPTIONS, f"leaf options: {sorted(fields)}")
        fields = await options_fields(b, coll, me)
        check(COLLECTION_OPTIONS <= fields, f"collection options: {sorted(fields)}")

        async def default_fields(node):
            r = await b.ok("get", f"<default node='{node}'/>", what=f"default options of {node}")
            return set(form_of(r, SUB_OPTIONS) or {})
        check(not (await default_fields(leaf)) & COLLECTION_OPTIONS, "leaf default options show collection fields")
        check(COLLECTION_OPTIONS <= await default_fields(coll), "collection default options lack its fields")
        # Subscribe-and-configure on a leaf: the options echoed back have no collection fields.
        other = new_node("oleaf2")
        await a.create(other)
        sub = await b.ok("set", f"<subscribe node='{other}' jid='{me}'/><options><x xmlns='{NS_DATA}' type='submit'>"
                                f"<field var='FORM_TYPE' type='hidden'><value>{SUB_OPTIONS}</value></field>"
                                f"<field var='pubsub#deliver'><value>1</value></field></x></options>",
                         what="subscribe and configure")
        v = form_of(sub, SUB_OPTIONS)
        check(v is not None and not set(v) & COLLECTION_OPTIONS, f"subscribe reply options: {xml(sub)}")

