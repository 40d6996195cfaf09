"""XEP-0060 beyond the core, end to end: Result Set Management (XEP-0059) on item
retrieval and disco#items; multiple subscriptions per JID (§6.1.6); the authorize access
model with owner approval by message (§8.6), the get-pending ad-hoc command (§8.7), and
pending requests surviving a Roost restart; time-driven work (item expiry, subscription
leases, digests), once the service loop runs the engine's tick (it then claims
pubsub#leased-subscription).

Self-contained (its own small helpers) so that it does not depend on test_pubsub.py.
"""

import itertools
import os
import xml.etree.ElementTree as ET

from harness import (NS_DATA, NS_PUBSUB, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER, Inbox, check, iq_type,
                     pubsub_error, raw_iq, raw_send, send_available)

NS_RSM = "http://jabber.org/protocol/rsm"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
SUB_OPTIONS = "http://jabber.org/protocol/pubsub#subscribe_options"
NS_SHIM = "http://jabber.org/protocol/shim"
NS_COMMANDS = "http://jabber.org/protocol/commands"
SUB_AUTH = "http://jabber.org/protocol/pubsub#subscribe_authorization"
GET_PENDING = "http://jabber.org/protocol/pubsub#get-pending"
PAYLOAD_NS = "urn:example:roost:e2e"

_seq = itertools.count(1)


def new_node(prefix):
    return f"{prefix}-{next(_seq)}-{os.urandom(3).hex()}"


def q(tag, ns):
    return "{%s}%s" % (ns, tag)


def xml(el):
    return ET.tostring(el, encoding="unicode") if el is not None else "None"


def rsm(max_=None, after=None, before=None, index=None):
    parts = [f"<set xmlns='{NS_RSM}'>"]
    if max_ is not None:
        parts.append(f"<max>{max_}</max>")
    if after is not None:
        parts.append(f"<after>{after}</after>")
    if before is not None:
        parts.append(f"<before>{before}</before>" if before else "<before/>")
    if index is not None:
        parts.append(f"<index>{index}</index>")
    parts.append("</set>")
    return "".join(parts)


def set_of(parent):
    """(first, first index, last, count) of the <set/> in `parent`, or None without one."""
    s = parent.find(q("set", NS_RSM))
    if s is None:
        return None
    first = s.find(q("first", NS_RSM))
    last = s.find(q("last", NS_RSM))
    count = s.find(q("count", NS_RSM))
    return (first.text if first is not None else None,
            int(first.get("index")) if first is not None and first.get("index") is not None else None,
            last.text if last is not None else None,
            int(count.text) if count is not None else None)


class PS:
    def __init__(self, ctx, c):
        self.ctx, self.c, self.to = ctx, c, ctx.service

    async def iq(self, type_, inner, ns=NS_PUBSUB):
        return await raw_iq(self.c, f"<iq type='{type_}' to='{self.to}'><pubsub xmlns='{ns}'>{inner}</pubsub></iq>")

    async def ok(self, type_, inner, ns=NS_PUBSUB, what="request"):
        r = await self.iq(type_, inner, ns)
        check(iq_type(r) == "result", f"{what}: expected result, got {xml(r)}")
        return r

    async def err(self, type_, inner, expect, what="request"):
        r = await self.iq(type_, inner)
        check(iq_type(r) == "error", f"{what}: expected error {expect}, got {xml(r)}")
        got = pubsub_error(r)
        check(got == expect, f"{what}: expected error {expect}, got {got}: {xml(r)}")
        return r

    async def subscribe(self, node, jid, options=None):
        opts = ""
        if options:
            fields = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in options.items())
            opts = (f"<options><x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
                    f"<value>{SUB_OPTIONS}</value></field>{fields}</x></options>")
        r = await self.ok("set", f"<subscribe node='{node}' jid='{jid}'/>{opts}", what=f"subscribe {jid}")
        sub = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('subscription', NS_PUBSUB)}")
        check(sub is not None and sub.get("subid"), f"subscribe reply without subid: {xml(r)}")
        return sub

    async def create(self, node, config=None):
        conf = ""
        if config:
            fields = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in config.items())
            conf = (f"<configure><x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
                    f"<value>{NODE_CONFIG}</value></field>{fields}</x></configure>")
        return await self.ok("set", f"<create node='{node}'/>{conf}", what=f"create {node}")

    async def publish(self, node, id_, text="x"):
        await self.ok("set", f"<publish node='{node}'><item id='{id_}'><entry xmlns='{PAYLOAD_NS}'>"
                             f"<title>{text}</title></entry></item></publish>", what=f"publish {id_}")

    async def items_page(self, node, set_xml, attrs=""):
        r = await self.ok("get", f"<items node='{node}'{attrs}/>{set_xml}", what=f"items of {node}")
        ps = r.find(q("pubsub", NS_PUBSUB))
        items = ps.find(q("items", NS_PUBSUB))
        check(items is not None and items.get("node") == node, f"items reply: {xml(r)}")
        ids = [i.get("id") for i in items.findall(q("item", NS_PUBSUB))]
        for i in items.findall(q("item", NS_PUBSUB)):
            check(len(list(i)) == 1, f"item {i.get('id')} has no payload: {xml(r)}")
        return ids, set_of(ps)

    async def disco_items(self, node=None, set_xml=""):
        nattr = f" node='{node}'" if node else ""
        r = await raw_iq(self.c, f"<iq type='get' to='{self.to}'><query xmlns='{DISCO_ITEMS}'{nattr}>"
                                 f"{set_xml}</query></iq>")
        check(iq_type(r) == "result", f"disco#items {node}: {xml(r)}")
        qe = r.find(q("query", DISCO_ITEMS))
        items = qe.findall(q("item", DISCO_ITEMS))
        names = [i.get("name") if node else i.get("node") for i in items]
        return names, set_of(qe)


# ====================================================================== XEP-0059 RSM

async def test_rsm_items_paging(ctx):
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        a, b = PS(ctx, ca), PS(ctx, cb)
        node = new_node("rsm")
        await a.create(node)
        ids = [f"i{n}" for n in range(7)]
        for i in ids:
            await a.publish(node, i)

        # Without <set/>: every item, and no <set/> in the reply (paging is not forced).
        got, page = await b.items_page(node, "")
        check(got == ids, f"unpaged items: {got}")
        check(page is None, f"unpaged request got a <set/>: {page}")

        got, page = await b.items_page(node, rsm(max_=3))
        check(got == ids[:3], f"first page: {got}")
        check(page == ("i0", 0, "i2", 7), f"first page set: {page}")

        got, page = await b.items_page(node, rsm(max_=3, after="i2"))
        check(got == ids[3:6], f"second page: {got}")
        check(page == ("i3", 3, "i5", 7), f"second page set: {page}")

        # Last page: empty <before/>.
        got, page = await b.items_page(node, rsm(max_=2, before=""))
        check(got == ids[5:], f"last page: {got}")
        check(page == ("i5", 5, "i6", 7), f"last page set: {page}")

        got, page = await b.items_page(node, rsm(max_=2, before="i5"))
        check(got == ids[3:5], f"page before i5: {got}")
        check(page == ("i3", 3, "i4", 7), f"page before i5 set: {page}")

        got, page = await b.items_page(node, rsm(max_=2, index=4))
        check(got == ids[4:6], f"page at index 4: {got}")
        check(page == ("i4", 4, "i5", 7), f"index page set: {page}")

        # Count only (XEP-0059 §2.6).
        got, page = await b.items_page(node, rsm(max_=0))
        check(got == [] and page == (None, None, None, 7), f"count only: {got} {page}")

        # An unknown UID is item-not-found.
        r = await b.iq("get", f"<items node='{node}'/>{rsm(max_=2, after='nope')}")
        check(iq_type(r) == "error" and pubsub_error(r)[1] == "item-not-found", f"unknown after: {xml(r)}")


async def test_rsm_paging_while_publishing(ctx):
    """Items published while a client pages through only ever appear at the end."""
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        a, b = PS(ctx, ca), PS(ctx, cb)
        node = new_node("rsm-live")
        await a.create(node)
        for n in range(5):
            await a.publish(node, f"i{n}")
        seen, after, nxt = [], None, 5
        for _ in range(20):
            got, page = await b.items_page(node, rsm(max_=2, after=after))
            if not got:
                break
            seen.extend(got)
            after = page[2]
            if nxt < 9:
                await a.publish(node, f"i{nxt}")
                nxt += 1
        check(seen == [f"i{n}" for n in range(9)], f"paged through {seen}")


async def test_rsm_disco_items(ctx):
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        a, b = PS(ctx, ca), PS(ctx, cb)
        node = new_node("rsm-disco")
        await a.create(node)
        for n in range(5):
            await a.publish(node, f"d{n}")
        names, page = await b.disco_items(node)
        check(names == [f"d{n}" for n in range(5)] and page is None, f"unpaged disco#items: {names} {page}")
        names, page = await b.disco_items(node, rsm(max_=2, after="d1"))
        check(names == ["d2", "d3"], f"disco#items page: {names}")
        check(page == ("d2", 2, "d3", 5), f"disco#items set: {page}")
        names, page = await b.disco_items(node, rsm(max_=2, before=""))
        check(names == ["d3", "d4"] and page == ("d3", 3, "d4", 5), f"disco#items last page: {names} {page}")

        # Nodes on the service: page through all of them, nothing repeated or missed.
        total_names, total_page = await b.disco_items(None, rsm(max_=0))
        count = total_page[3]
        check(count is not None and count >= 1, f"node count: {total_page}")
        all_names, _ = await b.disco_items(None)
        seen, after = [], None
        for _ in range(count + 1):
            names, page = await b.disco_items(None, rsm(max_=3, after=after))
            if not names:
                break
            check(page[1] == len(seen), f"first index {page[1]} after {len(seen)} nodes")
            seen.extend(names)
            after = page[2]
        check(seen == all_names, f"paged nodes {seen} != {all_names}")
        check(node in seen, f"{node} not listed")


# ================================================== §6.1.6 multiple subscriptions per JID

def shim_subids(m):
    h = m.find(q("headers", NS_SHIM))
    if h is None:
        return []
    return sorted(x.text for x in h.findall(q("header", NS_SHIM)) if x.get("name") == "SubID")


def items_event(node):
    def pred(m):
        ev = m.find(q("event", NS_PUBSUB_EVENT))
        return ev is not None and any(c.get("node") == node for c in ev.findall(q("items", NS_PUBSUB_EVENT)))
    return pred


async def test_multi_subscribe(ctx):
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        send_available(cb)
        inbox = Inbox(cb)
        a, b = PS(ctx, ca), PS(ctx, cb)
        bob = ctx.jid("bob")
        node = new_node("multi")
        await a.create(node)
        s1 = (await b.subscribe(node, bob)).get("subid")
        # A plain repeat is idempotent: the same subscription comes back.
        again = (await b.subscribe(node, bob)).get("subid")
        check(again == s1, f"repeat subscribe made a new subscription: {again} != {s1}")
        # Subscribe-and-configure makes a second one (§6.1.6).
        s2 = (await b.subscribe(node, bob, {"pubsub#include_body": "1"})).get("subid")
        check(s2 and s2 != s1, f"second subscription subid {s2} (first {s1})")

        # One notification, both SubIDs in SHIM headers (§12.5).
        await a.publish(node, "m1")
        m = await inbox.wait(items_event(node), 5, "items event")
        check(shim_subids(m) == sorted([s1, s2]), f"SubID headers {shim_subids(m)} != {[s1, s2]}: {xml(m)}")

        # §6.2.3.1 / §6.3.4.1: subid required; §6.2.3.5 / §6.3.4.5: invalid subid.
        await b.err("set", f"<unsubscribe node='{node}' jid='{bob}'/>",
                    ("modify", "bad-request", "subid-required"), "unsubscribe without subid")
        await b.err("get", f"<options node='{node}' jid='{bob}'/>",
                    ("modify", "bad-request", "subid-required"), "options without subid")
        await b.err("set", f"<unsubscribe node='{node}' jid='{bob}' subid='bogus'/>",
                    ("modify", "not-acceptable", "invalid-subid"), "unsubscribe bogus subid")
        await b.err("get", f"<options node='{node}' jid='{bob}' subid='bogus'/>",
                    ("modify", "not-acceptable", "invalid-subid"), "options bogus subid")

        # Options per subid.
        r = await b.ok("get", f"<options node='{node}' jid='{bob}' subid='{s2}'/>", what="options of s2")
        opts = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('options', NS_PUBSUB)}")
        check(opts is not None and opts.get("subid") == s2, f"options reply: {xml(r)}")
        body = [f for f in opts.iter(q("field", NS_DATA)) if f.get("var") == "pubsub#include_body"]
        check(body and body[0].findtext(q("value", NS_DATA)) in ("1", "true"), f"s2 options: {xml(opts)}")

        # Unsubscribe one; the next notification names only the other.
        await b.ok("set", f"<unsubscribe node='{node}' jid='{bob}' subid='{s1}'/>", what="unsubscribe s1")
        await a.publish(node, "m2")
        m = await inbox.wait(items_event(node), 5, "items event after unsubscribe")
        check(shim_subids(m) in ([], [s2]), f"SubID headers after unsubscribe: {xml(m)}")
        # With one subscription left, no subid is needed.
        await b.ok("set", f"<unsubscribe node='{node}' jid='{bob}'/>", what="unsubscribe last")


# ============================================ §4.5 / §8.6 / §8.7 authorize access model

def form_fields(x):
    return {f.get("var"): [v.text or "" for v in f.findall(q("value", NS_DATA))]
            for f in x.findall(q("field", NS_DATA))}


def auth_request(node, subscriber):
    """Predicate for Inbox: a §8.6 authorization request about `subscriber` on `node`."""
    def pred(m):
        x = m.find(q("x", NS_DATA))
        if x is None or x.get("type") != "form":
            return False
        f = form_fields(x)
        return (f.get("FORM_TYPE") == [SUB_AUTH] and f.get("pubsub#node") == [node]
                and f.get("pubsub#subscriber_jid") == [subscriber])
    return pred


def sub_event(node, state):
    def pred(m):
        s = m.find(f"{q('event', NS_PUBSUB_EVENT)}/{q('subscription', NS_PUBSUB_EVENT)}")
        return s is not None and s.get("node") == node and s.get("subscription") == state
    return pred


def answer(service, request_msg, allow):
    """The owner's answer (examples 190/192): the form submitted back, with the same id."""
    x = request_msg.find(q("x", NS_DATA))
    f = form_fields(x)
    subid = f.get("pubsub#subid", [""])[0]
    subid_field = f"<field var='pubsub#subid'><value>{subid}</value></field>" if subid else ""
    return (f"<message to='{service}' id='{request_msg.get('id')}'><x xmlns='{NS_DATA}' type='submit'>"
            f"<field var='FORM_TYPE' type='hidden'><value>{SUB_AUTH}</value></field>{subid_field}"
            f"<field var='pubsub#node'><value>{f['pubsub#node'][0]}</value></field>"
            f"<field var='pubsub#subscriber_jid'><value>{f['pubsub#subscriber_jid'][0]}</value></field>"
            f"<field var='pubsub#allow'><value>{'true' if allow else 'false'}</value></field></x></message>")


async def answers_by_message(c, service):
    """True when the service claims pubsub#access-authorize, i.e. reads §8.6 answers."""
    r = await raw_iq(c, f"<iq type='get' to='{service}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    feats = {f.get("var") for f in r.iter("{http://jabber.org/protocol/disco#info}feature")}
    return "http://jabber.org/protocol/pubsub#access-authorize" in feats


async def command(c, to, inner="", sessionid=None):
    sid = f" sessionid='{sessionid}'" if sessionid else ""
    return await raw_iq(c, f"<iq type='set' to='{to}'><command xmlns='{NS_COMMANDS}' node='{GET_PENDING}' "
                           f"action='execute'{sid}>{inner}</command></iq>")


async def test_commands_discoverable(ctx):
    """XEP-0050 §2.1-2.2: the get-pending command (§8.7) is found by disco, as clients look
    for commands, before anyone runs it."""
    async with ctx.client("alice") as c:
        iq = await c["xep_0030"].get_info(jid=ctx.service, cached=False, timeout=10)
        check(NS_COMMANDS in iq["disco_info"]["features"], f"commands not claimed: {iq}")
        iq = await c["xep_0030"].get_items(jid=ctx.service, node=NS_COMMANDS, timeout=10)
        items = sorted(iq["disco_items"]["items"])
        check([(j, n) for j, n, _ in items] == [(ctx.service, GET_PENDING)], f"command list: {items}")
        check(items[0][2], f"the command has no name: {items}")
        iq = await c["xep_0030"].get_info(jid=ctx.service, node=GET_PENDING, cached=False, timeout=10)
        info = iq["disco_info"]
        check(("automation", "command-node") in {(i[0], i[1]) for i in info["identities"]},
              f"command node identity: {info['identities']}")
        for f in (NS_COMMANDS, NS_DATA):
            check(f in info["features"], f"command node lacks {f}: {info['features']}")
        iq = await c["xep_0030"].get_info(jid=ctx.service, node=NS_COMMANDS, cached=False, timeout=10)
        check(("automation", "command-list") in {(i[0], i[1]) for i in iq["disco_info"]["identities"]},
              f"command list identity: {iq['disco_info']['identities']}")


async def test_authorize_approve_deny_get_pending_and_restart(ctx):
    async with ctx.client("alice") as ca, ctx.client("bob") as cb, ctx.client("carol") as cc:
        for c in (ca, cb, cc):
            send_available(c)
        ai, bi, ci = Inbox(ca), Inbox(cb), Inbox(cc)
        a, b, c = PS(ctx, ca), PS(ctx, cb), PS(ctx, cc)
        bob, carol = ctx.jid("bob"), ctx.jid("carol")
        node = new_node("auth")
        await a.create(node, {"pubsub#access_model": "authorize"})
        await a.publish(node, "before")

        # §6.1: the subscription is pending; the owner is asked (§8.6, example 189).
        r = await b.ok("set", f"<subscribe node='{node}' jid='{bob}'/>", what="subscribe to authorize node")
        sub = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('subscription', NS_PUBSUB)}")
        check(sub is not None and sub.get("subscription") == "pending", f"subscribe reply: {xml(r)}")
        req = await ai.wait(auth_request(node, bob), 5, "authorization request for bob")
        check(req.get("id"), f"authorization request without id: {xml(req)}")
        check(form_fields(req.find(q("x", NS_DATA))).get("pubsub#allow") in (["false"], ["0"]),
              f"pubsub#allow default: {xml(req)}")
        # Pending: no items (§6.5.9 not-subscribed) and no notifications.
        await b.err("get", f"<items node='{node}'/>", ("auth", "not-authorized", "not-subscribed"),
                    "items while pending")

        r = await c.ok("set", f"<subscribe node='{node}' jid='{carol}'/>", what="carol subscribes")
        await ai.wait(auth_request(node, carol), 5, "authorization request for carol")

        # A Roost restart in the middle: the pending requests are subscriptions, persisted.
        await ctx.restart_roost()

        # §8.7 get-pending: the node is offered, then the requests are sent again.
        r = await command(ca, ctx.service)
        check(iq_type(r) == "result", f"get-pending: {xml(r)}")
        cmd = r.find(q("command", NS_COMMANDS))
        check(cmd is not None and cmd.get("status") == "executing", f"get-pending step 1: {xml(r)}")
        options = [o.findtext(q("value", NS_DATA)) for o in cmd.iter(q("option", NS_DATA))]
        check(node in options, f"{node} not among pending nodes {options}")
        # XEP-0050: every session gets its own id, and a later stage keeps it.
        sid = cmd.get("sessionid")
        again = (await command(ca, ctx.service)).find(q("command", NS_COMMANDS))
        check(sid and again is not None and again.get("sessionid") not in (None, "", sid),
              f"session ids of two get-pending runs: {sid!r}, {xml(again)}")
        r = await command(ca, ctx.service, f"<x xmlns='{NS_DATA}' type='submit'>"
                                           f"<field var='pubsub#node'><value>{node}</value></field></x>",
                          sessionid=sid)
        cmd = r.find(q("command", NS_COMMANDS))
        check(iq_type(r) == "result" and cmd is not None and cmd.get("status") == "completed",
              f"get-pending step 2: {xml(r)}")
        check(cmd.get("sessionid") == sid, f"step 2 changed the session id {sid!r}: {xml(r)}")
        req_bob = await ai.wait(auth_request(node, bob), 5, "bob's request again (get-pending)")
        req_carol = await ai.wait(auth_request(node, carol), 5, "carol's request again (get-pending)")
        # Only owners may use it.
        r = await command(cb, ctx.service, f"<x xmlns='{NS_DATA}' type='submit'>"
                                           f"<field var='pubsub#node'><value>{node}</value></field></x>")
        check(iq_type(r) == "error" and pubsub_error(r)[1] == "forbidden", f"get-pending by bob: {xml(r)}")

        if await answers_by_message(ca, ctx.service):
            # A non-owner's answer changes nothing.
            raw_send(cc, answer(ctx.service, req_carol, True))
            # The owner approves bob and denies carol by message (examples 190-193).
            raw_send(ca, answer(ctx.service, req_bob, True))
            await bi.wait(sub_event(node, "subscribed"), 5, "bob's approval notification")
            raw_send(ca, answer(ctx.service, req_carol, False))
        else:
            # Until the service reads owners' messages (it then claims access-authorize),
            # owners decide with §8.8.2, which must work on pending subscriptions too.
            await a.ok("set", f"<subscriptions node='{node}'>"
                              f"<subscription jid='{bob}' subscription='subscribed'/>"
                              f"<subscription jid='{carol}' subscription='none'/></subscriptions>",
                       NS_PUBSUB_OWNER, what="owner decides pending subscriptions")
            await bi.wait(sub_event(node, "subscribed"), 5, "bob's approval notification")
        await ci.wait(sub_event(node, "none"), 5, "carol's denial notification")
        await ci.quiet(sub_event(node, "subscribed"), 0.5, "approval of carol")

        got, _ = await b.items_page(node, "")
        check(got == ["before"], f"bob's items after approval: {got}")
        await c.err("get", f"<items node='{node}'/>", ("auth", "not-authorized", "not-subscribed"),
                    "items after denial")
        r = await a.ok("get", f"<subscriptions node='{node}'/>", NS_PUBSUB_OWNER, what="owner subscriptions")
        rows = {(s.get("jid"), s.get("subscription")) for s in r.iter(q("subscription", NS_PUBSUB_OWNER))}
        check(rows == {(bob, "subscribed")}, f"subscriptions after decisions: {rows}")

        await a.publish(node, "after")
        await bi.wait(items_event(node), 5, "bob's notification after approval")
        await ci.quiet(items_event(node), 0.5, "notification to denied carol")


# ============================== time: pubsub#item_expire, pubsub#expire, pubsub#digest

async def claims(c, service, feature):
    r = await raw_iq(c, f"<iq type='get' to='{service}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    return feature in {f.get("var") for f in r.iter("{http://jabber.org/protocol/disco#info}feature")}


def retract_event(node, item_id):
    def pred(m):
        ev = m.find(q("event", NS_PUBSUB_EVENT))
        if ev is None:
            return False
        return any(i.get("node") == node and any(r.get("id") == item_id for r in i.findall(q("retract", NS_PUBSUB_EVENT)))
                   for i in ev.findall(q("items", NS_PUBSUB_EVENT)))
    return pred


def published_ids(m):
    ev = m.find(q("event", NS_PUBSUB_EVENT))
    return [it.get("id") for i in ev.findall(q("items", NS_PUBSUB_EVENT)) for it in i.findall(q("item", NS_PUBSUB_EVENT))]


async def test_time_item_expire_leases_digests(ctx):
    import datetime
    async with ctx.client("alice") as ca, ctx.client("bob") as cb, ctx.client("carol") as cc:
        check(await claims(ca, ctx.service, "http://jabber.org/protocol/pubsub#leased-subscription"),
              "the service does not claim pubsub#leased-subscription")
        for c in (ca, cb, cc):
            send_available(c)
        bi, ci = Inbox(cb), Inbox(cc)
        a, b, c = PS(ctx, ca), PS(ctx, cb), PS(ctx, cc)
        bob, carol = ctx.jid("bob"), ctx.jid("carol")

        # Item expiry with a retraction to subscribers.
        node = new_node("expire")
        await a.create(node, {"pubsub#item_expire": "2", "pubsub#notify_retract": "1"})
        await b.subscribe(node, bob)
        await a.publish(node, "short")
        await bi.wait(items_event(node), 5, "publish notification")
        await bi.wait(retract_event(node, "short"), 8, "retraction of the expired item")
        got, _ = await b.items_page(node, "")
        check(got == [], f"expired item still retrievable: {got}")

        # A leased subscription ends; the subscriber is told.
        node2 = new_node("lease")
        await a.create(node2)
        end = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3))
        stamp = end.strftime("%Y-%m-%dT%H:%M:%SZ")
        sub = await b.subscribe(node2, bob, {"pubsub#expire": stamp})
        await bi.wait(sub_event(node2, "none"), 10, "end of the lease")
        r = await a.ok("get", f"<subscriptions node='{node2}'/>", NS_PUBSUB_OWNER, what="owner subscriptions")
        left = [s.get("subid") for s in r.iter(q("subscription", NS_PUBSUB_OWNER))]
        check(sub.get("subid") not in left, f"leased subscription still listed: {left}")

        # A digest: no per-item notification, then one message with both items.
        node3 = new_node("digest")
        await a.create(node3)
        await c.subscribe(node3, carol, {"pubsub#digest": "1", "pubsub#digest_frequency": "2000"})
        await a.publish(node3, "d1")
        await a.publish(node3, "d2")
        m = await ci.wait(items_event(node3), 8, "digest")
        check(published_ids(m) == ["d1", "d2"], f"digest items: {xml(m)}")
        await ci.quiet(items_event(node3), 0.5, "a second message for the same period")


def _stamp(secs):
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=secs)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_time_expiry_and_lease_survive_restart_and_lease_renewal(ctx):
    """Item expiry and a subscription lease set before a Roost restart still happen after it;
    renewing a lease by setting a new pubsub#expire keeps the subscription past the old end."""
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        for c in (ca, cb):
            send_available(c)
        bi = Inbox(cb)
        a, b = PS(ctx, ca), PS(ctx, cb)
        bob = ctx.jid("bob")

        expiring = new_node("expire-restart")
        await a.create(expiring, {"pubsub#item_expire": "4", "pubsub#notify_retract": "1"})
        await b.subscribe(expiring, bob)
        leased = new_node("lease-restart")
        await a.create(leased)
        sub = await b.subscribe(leased, bob, {"pubsub#expire": _stamp(5)})
        subid = sub.get("subid")
        renewed = new_node("lease-renew")
        await a.create(renewed)
        rsub = await b.subscribe(renewed, bob, {"pubsub#expire": _stamp(5)})
        rsubid = rsub.get("subid")
        await a.publish(expiring, "gone-later")
        await bi.wait(items_event(expiring), 5, "publish notification")

        await ctx.restart_roost()

        # Renew before the old end (5 s from subscribing): push it 60 s out.
        form = (f"<options node='{renewed}' jid='{bob}' subid='{rsubid}'><x xmlns='{NS_DATA}' type='submit'>"
                f"<field var='FORM_TYPE' type='hidden'><value>{SUB_OPTIONS}</value></field>"
                f"<field var='pubsub#expire'><value>{_stamp(60)}</value></field></x></options>")
        await b.ok("set", form, what="renew the lease")

        await bi.wait(retract_event(expiring, "gone-later"), 10, "retraction after the restart")
        got, _ = await b.items_page(expiring, "")
        check(got == [], f"expired item still retrievable after the restart: {got}")
        await bi.wait(sub_event(leased, "none"), 10, "end of the lease after the restart")
        r = await a.ok("get", f"<subscriptions node='{leased}'/>", NS_PUBSUB_OWNER, what="owner subscriptions")
        left = [x.get("subid") for x in r.iter(q("subscription", NS_PUBSUB_OWNER))]
        check(subid not in left, f"leased subscription still listed: {left}")
        # The renewed lease outlived its first end, and still delivers.
        r = await a.ok("get", f"<subscriptions node='{renewed}'/>", NS_PUBSUB_OWNER, what="owner subscriptions")
        left = [x.get("subid") for x in r.iter(q("subscription", NS_PUBSUB_OWNER))]
        check(rsubid in left, f"renewed subscription ended at its old expiry: {left}")
        await a.publish(renewed, "still-here")
        await bi.wait(items_event(renewed), 5, "notification on the renewed subscription")
        # Leave nothing running: the lease would end (and notify bob's bare JID, §8.8.4) in
        # the middle of some later test.
        await b.ok("set", f"<unsubscribe node='{renewed}' jid='{bob}' subid='{rsubid}'/>",
                   what="unsubscribe from the renewed lease")
