"""XEP-0313 Message Archive Management on pubsub nodes: a node's history is its stored items."""

import asyncio
import datetime
import xml.etree.ElementTree as ET

from test_pubsub import Clients, new_node
from harness import NS_DATA, check, iq_type, pubsub_error, raw_iq

MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
FORWARD = "urn:xmpp:forward:0"
DELAY = "urn:xmpp:delay"
EVENT = "http://jabber.org/protocol/pubsub#event"
CLIENT = "jabber:client"
DISCO_INFO = "http://jabber.org/protocol/disco#info"


def q(name, ns):
    return "{%s}%s" % (ns, name)


def xml(e):
    return ET.tostring(e, encoding="unicode")[:1500]


def stamp(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


async def mam(ps, inbox, node, queryid, fields=None, rsm=""):
    """Runs one MAM query; returns (reply, [(archive id, item id, delay stamp)], fin)."""
    form = ""
    if fields:
        form = (f"<x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
                f"<value>{MAM}</value></field>"
                + "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
                + "</x>")
    r = await raw_iq(ps.c, f"<iq type='set' to='{ps.to}'><query xmlns='{MAM}' node='{node}' "
                           f"queryid='{queryid}'>{form}{rsm}</query></iq>")
    if iq_type(r) != "result":
        return r, None, None
    # The results were sent before the IQ result, so they are already in the inbox.
    results = []
    for i, m in enumerate(inbox.messages):
        res = m.find(q("result", MAM))
        if i in inbox.consumed or res is None or res.get("queryid") != queryid:
            continue
        inbox.consumed.add(i)
        fwd = res.find(q("forwarded", FORWARD))
        check(fwd is not None, f"result without <forwarded/>: {xml(m)}")
        delay = fwd.find(q("delay", DELAY))
        item = fwd.find(f"{q('message', CLIENT)}/{q('event', EVENT)}/{q('items', EVENT)}/{q('item', EVENT)}")
        items = fwd.find(f"{q('message', CLIENT)}/{q('event', EVENT)}/{q('items', EVENT)}")
        check(item is not None and items.get("node") == node, f"result lacks the item event: {xml(m)}")
        check(delay is not None and delay.get("stamp"), f"result lacks <delay stamp/>: {xml(m)}")
        results.append((res.get("id"), item.get("id"), delay.get("stamp")))
    fin = r.find(q("fin", MAM))
    check(fin is not None, f"MAM result without <fin/>: {xml(r)}")
    return r, results, fin


def fin_set(fin):
    s = fin.find(q("set", RSM))
    first = s.find(q("first", RSM))
    last = s.find(q("last", RSM))
    count = s.find(q("count", RSM))
    return (first.text if first is not None else None, last.text if last is not None else None,
            int(count.text) if count is not None else None)


async def test_mam_pages_filters_and_access(ctx):
    async with Clients(ctx, "alice", "bob", "carol") as ((a, _), (b, bi), (cl, ci)):
        node = new_node("mam")
        await a.create(node, {"pubsub#max_items": "100", "pubsub#access_model": "whitelist"})
        await a.set_aff(node, ctx.jid("bob"), "member")

        # The node advertises MAM in its own disco#info.
        r = await raw_iq(b.c, f"<iq type='get' to='{ctx.service}'><query xmlns='{DISCO_INFO}' node='{node}'/></iq>")
        feats = {f.get("var") for f in r.findall(f"{q('query', DISCO_INFO)}/{q('feature', DISCO_INFO)}")}
        check(MAM in feats, f"node disco#info lacks {MAM}: {feats}")

        ids = [f"e{k:02d}" for k in range(25)]
        before = datetime.datetime.now(datetime.timezone.utc)
        for k, id_ in enumerate(ids):
            if k == 15:
                await asyncio.sleep(1.1)
                mid = datetime.datetime.now(datetime.timezone.utc)
            await a.publish(node, f"<entry xmlns='urn:example:e2e'>{k}</entry>", id_)

        # Page forward, 10 at a time.
        got, after, pages = [], None, 0
        while True:
            rsm = f"<set xmlns='{RSM}'><max>10</max>" + (f"<after>{after}</after>" if after else "") + "</set>"
            r, res, fin = await mam(b, bi, node, f"p{pages}", rsm=rsm)
            check(res is not None, f"MAM query failed: {xml(r)}")
            pages += 1
            check(all(arch == item for arch, item, _ in res), f"archive id != item id: {res}")
            got += [item for _, item, _ in res]
            first, last, count = fin_set(fin)
            check(count == 25, f"count {count} != 25")
            complete = fin.get("complete") in ("true", "1")
            if complete:
                break
            check(len(res) == 10 and last == res[-1][1] and first == res[0][1], f"page {pages}: {res} / {xml(fin)}")
            after = last
            check(pages < 5, "paging does not end")
        check(got == ids, f"paged history differs: {got}")
        check(pages == 3, f"expected 3 pages, got {pages}")

        # Time filter: only what was published after the pause.
        r, res, fin = await mam(b, bi, node, "t1", {"start": stamp(mid)})
        check(res is not None, f"time-filtered query failed: {xml(r)}")
        check([i for _, i, _ in res] == ids[15:], f"start filter: {[i for _, i, _ in res]}")
        check(fin.get("complete") in ("true", "1"), f"not complete: {xml(fin)}")
        r, res, fin = await mam(b, bi, node, "t2", {"start": stamp(before), "end": stamp(mid)})
        check([i for _, i, _ in res] == ids[:15], f"start+end filter: {[i for _, i, _ in res]}")
        r, res, fin = await mam(b, bi, node, "t3", {"after-id": "e19"})
        check([i for _, i, _ in res] == ids[20:], f"after-id filter: {[i for _, i, _ in res]}")

        # Carol is not on the whitelist: refused as item retrieval would be.
        r, res, _ = await mam(cl, ci, node, "c1")
        check(iq_type(r) == "error", f"non-member got history: {xml(r)}")
        got_err = pubsub_error(r)
        check(got_err[1] == "not-allowed", f"expected not-allowed, got {got_err}")
        check(ci.count(lambda m: m.find(q("result", MAM)) is not None) == 0, "carol got result messages")

        # An unknown RSM after id is item-not-found.
        r, res, _ = await mam(b, bi, node, "x1", rsm=f"<set xmlns='{RSM}'><after>nope</after></set>")
        check(iq_type(r) == "error" and pubsub_error(r)[1] == "item-not-found", f"unknown after: {xml(r)}")
