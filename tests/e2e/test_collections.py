"""XEP-0248 collection nodes end to end with real clients: a three-level hierarchy built by
configuration, subscriptions at each level with each subscription type and depth, item
notifications under the leaf's name with the SHIM Collection header, node news (create,
configure, delete), association and dissociation, disco#items of collections, the
collection defaults, the §configure error cases, access (a whitelist leaf under an open
collection leaks nothing), the root collection, deleting a collection (its children stay).

Every subscriber subscribes its own full JID, so that each connection is one subscriber
and sees exactly its own notifications.
"""

import xml.etree.ElementTree as ET

from harness import NS_PUBSUB_EVENT, NS_PUBSUB_OWNER, Inbox, check, iq_type, pubsub_error, raw_iq, send_available
from test_advanced import DISCO_ITEMS, NS_SHIM, NODE_CONFIG, PS, new_node, q, xml

DISCO_INFO = "http://jabber.org/protocol/disco#info"


def headers(m, name):
    h = m.find(q("headers", NS_SHIM))
    return [] if h is None else [x.text for x in h.findall(q("header", NS_SHIM)) if x.get("name") == name]


def event_child(m):
    ev = m.find(q("event", NS_PUBSUB_EVENT))
    return None if ev is None or len(ev) == 0 else ev[0]


def is_items(node, item_id):
    def pred(m):
        c = event_child(m)
        return (c is not None and c.tag == q("items", NS_PUBSUB_EVENT) and c.get("node") == node
                and any(i.get("id") == item_id for i in c.findall(q("item", NS_PUBSUB_EVENT))))
    return pred


def is_event(tag, node):
    def pred(m):
        c = event_child(m)
        return c is not None and c.tag == q(tag, NS_PUBSUB_EVENT) and c.get("node") == node
    return pred


def any_event(m):
    return m.find(q("event", NS_PUBSUB_EVENT)) is not None


def config_form(fields):
    body = "".join(
        f"<field var='{k}'>" + "".join(f"<value>{x}</value>" for x in (v if isinstance(v, list) else [v]))
        + "</field>" for k, v in fields.items())
    return (f"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{NODE_CONFIG}</value></field>{body}</x>")


class Owner(PS):
    async def configure(self, node, fields):
        return await self.iq("set", f"<configure node='{node}'>{config_form(fields)}</configure>", NS_PUBSUB_OWNER)

    async def config_values(self, node):
        r = await self.ok("get", f"<configure node='{node}'/>", NS_PUBSUB_OWNER, what=f"config of {node}")
        x = r.find(f"{q('pubsub', NS_PUBSUB_OWNER)}/{q('configure', NS_PUBSUB_OWNER)}/{q('x', 'jabber:x:data')}")
        return {f.get("var"): [v.text or "" for v in f.findall(q("value", "jabber:x:data"))]
                for f in x.findall(q("field", "jabber:x:data"))}


async def children(ps, node):
    r = await raw_iq(ps.c, f"<iq type='get' to='{ps.to}'><query xmlns='{DISCO_ITEMS}' node='{node}'/></iq>")
    check(iq_type(r) == "result", f"disco#items {node}: {xml(r)}")
    return sorted(i.get("node") for i in r.find(q("query", DISCO_ITEMS)).findall(q("item", DISCO_ITEMS)))


async def identity(ps, node):
    r = await raw_iq(ps.c, f"<iq type='get' to='{ps.to}'><query xmlns='{DISCO_INFO}' node='{node}'/></iq>")
    if iq_type(r) != "result":
        return None
    i = r.find(f"{q('query', DISCO_INFO)}/{q('identity', DISCO_INFO)}")
    return i.get("type")


async def test_collections_three_levels(ctx):
    """top > mid > leaf, built by configuration; five subscribers, each with one kind of
    subscription; a publish, a create, a configure, an association, a dissociation and a
    delete, each reaching exactly the subscribers XEP-0248 says."""
    async with ctx.client("alice") as ca, ctx.client("bob") as cb, ctx.client("carol") as cc, \
            ctx.client("bob", resource="two") as cb2, ctx.client("carol", resource="two") as cc2, \
            ctx.client("alice", resource="two") as ca2:
        a = Owner(ctx, ca)
        # The service claims collections now that they work.
        r = await raw_iq(ca, f"<iq type='get' to='{ctx.service}'><query xmlns='{DISCO_INFO}'/></iq>")
        feats = {f.get("var") for f in r.iter(q("feature", DISCO_INFO))}
        check("http://jabber.org/protocol/pubsub#collections" in feats, f"no collections feature: {feats}")
        # Example 61-62: the defaults of a collection.
        r = await a.ok("get", "<default type='collection'/>", NS_PUBSUB_OWNER, what="collection defaults")
        nt = [f for f in r.iter(q("field", "jabber:x:data")) if f.get("var") == "pubsub#node_type"]
        check(nt and nt[0].find(q("value", "jabber:x:data")).text == "collection", f"defaults: {xml(r)}")

        top, mid, leaf = new_node("top"), new_node("mid"), new_node("leaf")
        await a.create(top, {"pubsub#node_type": "collection"})
        await a.create(mid, {"pubsub#node_type": "collection", "pubsub#collection": top})
        await a.create(leaf, {"pubsub#collection": mid})
        check(await children(a, top) == [mid], f"children of top: {await children(a, top)}")
        check(await children(a, mid) == [leaf], "children of mid")
        check(await identity(a, top) == "collection" and await identity(a, leaf) == "leaf", "identities")
        check((await a.config_values(mid))["pubsub#children"] == [leaf], "mid's pubsub#children")

        subs = {}
        # (connection, node, type, depth)
        plan = {
            "top-items-all": (cb, top, "items", "all"),
            "top-items-1": (cc, top, "items", "1"),
            "top-nodes-all": (cb2, top, "nodes", "all"),
            "mid-all-1": (cc2, mid, "all", "1"),
            "top-nodes-1": (ca2, top, "nodes", "1"),
        }
        inbox = {}
        for name, (c, node, typ, depth) in plan.items():
            send_available(c)
            inbox[name] = Inbox(c)
            await PS(ctx, c).subscribe(node, c.boundjid.full, {"pubsub#subscription_type": typ,
                                                               "pubsub#subscription_depth": depth})
            subs[name] = c
        # A second subscription for the same kind of news on the same collection: conflict
        # (example 15).
        r = await PS(ctx, cb).iq("set", f"<subscribe node='{top}' jid='{cb.boundjid.full}'/>"
                                        f"<options><x xmlns='jabber:x:data' type='submit'>"
                                        f"<field var='FORM_TYPE' type='hidden'><value>"
                                        f"http://jabber.org/protocol/pubsub#subscribe_options</value></field>"
                                        f"<field var='pubsub#subscription_type'><value>items</value></field>"
                                        f"<field var='pubsub#subscription_depth'><value>all</value></field>"
                                        f"</x></options>")
        check(iq_type(r) == "error" and r.find(f"{q('error', 'jabber:client')}/"
                                               "{urn:ietf:params:xml:ns:xmpp-stanzas}conflict") is not None,
              f"second items subscription: {xml(r)}")

        # Items: leaf is at depth 2 below top, 1 below mid.
        await a.publish(leaf, "i1")
        m = await inbox["top-items-all"].wait(is_items(leaf, "i1"), what="item via top (all)")
        check(headers(m, "Collection") == [top], f"Collection header: {ET.tostring(m, encoding='unicode')}")
        m = await inbox["mid-all-1"].wait(is_items(leaf, "i1"), what="item via mid (depth 1)")
        check(headers(m, "Collection") == [mid], "Collection header via mid")
        await inbox["top-items-1"].quiet(any_event, 1.0, "item beyond depth 1")
        await inbox["top-nodes-all"].quiet(any_event, 0.1, "item to a nodes subscription")
        await inbox["top-nodes-1"].quiet(any_event, 0.1, "item to a nodes subscription")

        # Node news: a new leaf in mid (depth 1 below mid, 2 below top).
        leaf2 = new_node("leaf2")
        await a.create(leaf2, {"pubsub#collection": mid})
        m = await inbox["top-nodes-all"].wait(is_event("create", leaf2), what="create via top (nodes, all)")
        check(headers(m, "Collection") == [top], "Collection header on create")
        await inbox["mid-all-1"].wait(is_event("create", leaf2), what="create via mid (all, 1)")
        for name in ("top-items-all", "top-items-1", "top-nodes-1"):
            await inbox[name].quiet(any_event, 0.1, f"create to {name}")

        # Association by request (example 47): leaf2 joins top as well (multi-collection);
        # then dissociation from mid (example 52).
        await a.ok("set", f"<collection node='{top}'><associate node='{leaf2}'/></collection>", NS_PUBSUB_OWNER,
                   what="associate")
        check(await children(a, top) == sorted([mid, leaf2]), "top's children after associate")
        await a.ok("set", f"<collection node='{mid}'><dissociate node='{leaf2}'/></collection>", NS_PUBSUB_OWNER,
                   what="dissociate")
        check(await children(a, mid) == [leaf], "mid's children after dissociate")

        def collection_change(coll, change, child):
            def pred(m):
                c = event_child(m)
                return (c is not None and c.tag == q("collection", NS_PUBSUB_EVENT) and c.get("node") == coll
                        and c.find(q(change, NS_PUBSUB_EVENT)) is not None
                        and c.find(q(change, NS_PUBSUB_EVENT)).get("node") == child)
            return pred
        await inbox["top-nodes-all"].wait(collection_change(top, "associate", leaf2), what="associate news")
        await inbox["mid-all-1"].wait(collection_change(mid, "dissociate", leaf2), what="dissociate news")
        # A new child directly in top is news at depth 1 as well.
        leaf3 = new_node("leaf3")
        await a.create(leaf3, {"pubsub#collection": top})
        await inbox["top-nodes-1"].wait(is_event("create", leaf3), what="create in top via nodes/1")
        await inbox["top-nodes-all"].wait(is_event("create", leaf3), what="create in top via nodes/all")
        # Dissociating an unassociated node: bad-request (example 44... 53).
        r = await a.iq("set", f"<collection node='{mid}'><dissociate node='{leaf2}'/></collection>", NS_PUBSUB_OWNER)
        check(iq_type(r) == "error", f"dissociating twice: {xml(r)}")

        # Configure news (notify_config on the leaf) to nodes subscribers.
        await a.configure(leaf, {"pubsub#notify_config": "1"})
        await a.configure(leaf, {"pubsub#title": "renamed"})
        await inbox["top-nodes-all"].wait(is_event("configuration", leaf), what="configuration via top")
        await inbox["mid-all-1"].wait(is_event("configuration", leaf), what="configuration via mid")

        # Deleting mid dissociates leaf, which stays (and its items with it).
        await a.ok("set", f"<delete node='{mid}'/>", NS_PUBSUB_OWNER, what="delete mid")
        check(await identity(a, mid) is None, "mid still there")
        check(await identity(a, leaf) == "leaf", "the leaf went with its collection")
        check((await a.config_values(leaf))["pubsub#collection"] in ([], [""]), "leaf still in mid")
        check(await children(a, top) == sorted([leaf2, leaf3]), "top's children after deleting mid")
        ids, _ = await a.items_page(leaf, "")
        check(ids == ["i1"], f"leaf's items after deleting its collection: {ids}")
        # Through top now only leaf2: a publish there reaches top's items subscribers at depth 1.
        await a.publish(leaf2, "j1")
        await inbox["top-items-1"].wait(is_items(leaf2, "j1"), what="leaf2 item via top (depth 1)")
        await inbox["top-items-all"].wait(is_items(leaf2, "j1"), what="leaf2 item via top (all)")


async def test_collections_errors(ctx):
    """The §configure error cases, with the XEP's conditions."""
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        a = Owner(ctx, ca)
        coll, leaf, other = new_node("ec"), new_node("el"), new_node("eo")
        await a.create(coll, {"pubsub#node_type": "collection", "pubsub#children_max": "1"})
        await a.create(leaf, {"pubsub#collection": coll})
        await a.create(other)
        invalid = ("cancel", "not-allowed", "invalid-options")
        # Children on a leaf (example 27).
        r = await a.configure(leaf, {"pubsub#children": other})
        check(iq_type(r) == "error" and _err(r) == invalid, f"children on a leaf: {xml(r)}")
        # A leaf as a parent.
        r = await a.configure(other, {"pubsub#collection": leaf})
        check(iq_type(r) == "error" and _err(r) == invalid, f"leaf as parent: {xml(r)}")
        # Too many children (example 29/40).
        r = await a.configure(other, {"pubsub#collection": coll})
        check(iq_type(r) == "error" and _err(r) == ("cancel", "not-allowed", "max-nodes-exceeded"),
              f"children_max: {xml(r)}")
        # A cycle (example 31).
        c2, c3 = new_node("ec2"), new_node("ec3")
        await a.create(c2, {"pubsub#node_type": "collection"})
        await a.create(c3, {"pubsub#node_type": "collection", "pubsub#collection": c2})
        r = await a.configure(c2, {"pubsub#collection": c3})
        check(iq_type(r) == "error" and _err(r) == invalid, f"cycle: {xml(r)}")
        # A collection with children never becomes a leaf (example 30).
        r = await a.configure(coll, {"pubsub#node_type": "leaf"})
        check(iq_type(r) == "error" and _err(r) == invalid, f"collection to leaf: {xml(r)}")
        # Collections hold no items.
        r = await a.iq("set", f"<publish node='{coll}'><item id='x'><e xmlns='urn:x'/></item></publish>")
        check(iq_type(r) == "error", f"publish to a collection: {xml(r)}")
        # Someone else may not associate with an owners-policy collection.
        b = Owner(ctx, cb)
        mine = new_node("eb")
        await b.create(mine)
        r = await b.configure(mine, {"pubsub#collection": c2})
        check(iq_type(r) == "error" and _err(r)[1] == "forbidden", f"foreign association: {xml(r)}")


def _err(r):
    return pubsub_error(r)


async def test_collections_access_and_root(ctx):
    """A whitelist leaf under an open collection tells collection subscribers nothing; the
    root collection (no node) with depth all hears of every item it may read."""
    async with ctx.client("alice") as ca, ctx.client("bob") as cb, ctx.client("carol") as cc:
        a = Owner(ctx, ca)
        coll, shut, opened = new_node("ac"), new_node("aw"), new_node("ao")
        await a.create(coll, {"pubsub#node_type": "collection"})
        await a.create(shut, {"pubsub#collection": coll, "pubsub#access_model": "whitelist"})
        await a.create(opened, {"pubsub#collection": coll})
        send_available(cb)
        send_available(cc)
        ib, ic = Inbox(cb), Inbox(cc)
        await PS(ctx, cb).subscribe(coll, cb.boundjid.full, {"pubsub#subscription_type": "items",
                                                             "pubsub#subscription_depth": "all"})
        # The root: no node attribute (XEP-0248 §root).
        r = await PS(ctx, cc).iq("set", f"<subscribe jid='{cc.boundjid.full}'/><options>"
                                        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                                        "<value>http://jabber.org/protocol/pubsub#subscribe_options</value></field>"
                                        "<field var='pubsub#subscription_type'><value>items</value></field>"
                                        "<field var='pubsub#subscription_depth'><value>all</value></field>"
                                        "</x></options>")
        check(iq_type(r) == "result", f"subscribing to the root: {xml(r)}")
        await a.publish(shut, "secret")
        await a.publish(opened, "public")
        await ib.wait(is_items(opened, "public"), what="open leaf's item")
        m = await ic.wait(is_items(opened, "public"), what="open leaf's item via the root")
        # The root's NodeID is empty: one Collection header, empty.
        check(headers(m, "Collection") in ([""], [None]), f"root's Collection header: {headers(m, 'Collection')}")
        await ib.quiet(is_items(shut, "secret"), 1.0, "whitelist leaf's item via its collection")
        await ic.quiet(is_items(shut, "secret"), 0.1, "whitelist leaf's item via the root")
        # Once bob is on the whitelist (a member), the item of the next publish reaches him.
        await a.ok("set", f"<affiliations node='{shut}'><affiliation jid='{ctx.jid('bob')}' affiliation='member'/>"
                          "</affiliations>", NS_PUBSUB_OWNER, what="whitelist bob")
        await a.publish(shut, "secret2")
        await ib.wait(is_items(shut, "secret2"), what="whitelisted item via the collection")
