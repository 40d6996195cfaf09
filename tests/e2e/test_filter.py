"""Content-based subscriptions (issue 15, XEP-0060 §12 "Content-Based Pubsub Systems"), end
to end with slixmpp clients: the `x-roost#filter` subscription option set with
subscribe-and-configure (§6.3.7) and changed with the options form (§6.3.5), items that match
and items that do not, two filtered subscriptions of one JID told apart by SHIM SubID headers,
an invalid filter refused (`not-acceptable` with the parser's text) changing nothing, the last
published item filtered, retractions only to the subscriptions the item matched, and all of it
after a Roost restart; a filter on a subscription to a collection (XEP-0248) selecting among
its leaves' items. Also the feature `urn:roost:filter:0` in disco#info of the service and of
nodes.

Self-contained (its own small helpers), like test_advanced.py.
"""

import asyncio
import itertools
import os
import xml.etree.ElementTree as ET

from harness import (NS_DATA, NS_PUBSUB, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER, Inbox, check, iq_type,
                     pubsub_error, raw_iq, send_available, timeout)

FEATURE = "urn:roost:filter:0"
FIELD = "x-roost#filter"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
SUB_OPTIONS = "http://jabber.org/protocol/pubsub#subscribe_options"
NS_SHIM = "http://jabber.org/protocol/shim"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
PAYLOAD_NS = "urn:example:roost:e2e"

_seq = itertools.count(1)


def new_node(prefix):
    return f"{prefix}-{next(_seq)}-{os.urandom(3).hex()}"


def q(tag, ns):
    return "{%s}%s" % (ns, tag)


def xml(el):
    return ET.tostring(el, encoding="unicode") if el is not None else "None"


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;")


def options_form(fields):
    body = "".join(f"<field var='{k}'><value>{esc(v)}</value></field>" for k, v in fields.items())
    return (f"<x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{SUB_OPTIONS}</value></field>{body}</x>")


def log(level, host, text):
    """A payload whose attributes filters select on, as `roost-publish --attr` sends them."""
    return f"<log xmlns='{PAYLOAD_NS}' level='{level}' host='{host}'><msg>{text}</msg></log>"


def shim_subids(m):
    h = m.find(q("headers", NS_SHIM))
    if h is None:
        return []
    return sorted(x.text for x in h.findall(q("header", NS_SHIM)) if x.get("name") == "SubID")


def event_of(node, kind, item_id=None):
    """Predicate for Inbox: an `items` event on `node` with an <item/> (kind 'item') or a
    <retract/> (kind 'retract') of `item_id` (any id when None)."""
    def pred(m):
        ev = m.find(q("event", NS_PUBSUB_EVENT))
        if ev is None:
            return False
        for items in ev.findall(q("items", NS_PUBSUB_EVENT)):
            if items.get("node") != node:
                continue
            for i in items.findall(q(kind, NS_PUBSUB_EVENT)):
                if item_id is None or i.get("id") == item_id:
                    return True
        return False
    return pred


def error_text(r):
    t = r.find(f"{q('error', 'jabber:client')}/{q('text', NS_STANZAS)}")
    return t.text if t is not None else None


class PS:
    def __init__(self, ctx, c):
        self.ctx, self.c, self.to = ctx, c, ctx.service
        self.jid = ctx.jid(c.boundjid.user)

    async def iq(self, type_, inner, ns=NS_PUBSUB):
        return await raw_iq(self.c, f"<iq type='{type_}' to='{self.to}'><pubsub xmlns='{ns}'>{inner}</pubsub></iq>")

    async def ok(self, type_, inner, ns=NS_PUBSUB, what="request"):
        r = await self.iq(type_, inner, ns)
        check(iq_type(r) == "result", f"{what}: expected result, got {xml(r)}")
        return r

    async def create(self, node, config):
        fields = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in config.items())
        conf = (f"<configure><x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
                f"<value>{NODE_CONFIG}</value></field>{fields}</x></configure>")
        await self.ok("set", f"<create node='{node}'/>{conf}", what=f"create {node}")

    def subscribe_xml(self, node, filter_):
        return (f"<subscribe node='{node}' jid='{self.jid}'/>"
                f"<options>{options_form({FIELD: filter_})}</options>")

    async def subscribe(self, node, filter_):
        """Subscribe-and-configure (§6.3.7) with a filter; the new subscription's subid."""
        r = await self.ok("set", self.subscribe_xml(node, filter_), what=f"subscribe with {filter_!r}")
        sub = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('subscription', NS_PUBSUB)}")
        check(sub is not None and sub.get("subid") and sub.get("subscription") == "subscribed",
              f"subscribe reply: {xml(r)}")
        return sub.get("subid")

    async def filter_of(self, node, subid):
        """The filter the options form of `subid` shows (§6.3.2)."""
        r = await self.ok("get", f"<options node='{node}' jid='{self.jid}' subid='{subid}'/>",
                          what=f"options of {subid}")
        x = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('options', NS_PUBSUB)}/{q('x', NS_DATA)}")
        check(x is not None, f"options reply without a form: {xml(r)}")
        fields = [f for f in x.findall(q("field", NS_DATA)) if f.get("var") == FIELD]
        check(len(fields) == 1, f"options form has no single {FIELD} field: {xml(x)}")
        check(fields[0].get("type") in (None, "text-single"), f"{FIELD} is not text-single: {xml(x)}")
        return fields[0].findtext(q("value", NS_DATA)) or ""

    def set_filter_xml(self, node, subid, filter_):
        return (f"<options node='{node}' jid='{self.jid}' subid='{subid}'>"
                f"{options_form({FIELD: filter_})}</options>")

    async def subids(self, node):
        r = await self.ok("get", f"<subscriptions node='{node}'/>", what="own subscriptions")
        subs = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('subscriptions', NS_PUBSUB)}")
        return sorted(s.get("subid") for s in subs.findall(q("subscription", NS_PUBSUB)))

    async def publish(self, node, id_, body):
        await self.ok("set", f"<publish node='{node}'><item id='{id_}'>{body}</item></publish>",
                      what=f"publish {id_}")

    async def retract(self, node, id_):
        await self.ok("set", f"<retract node='{node}' notify='true'><item id='{id_}'/></retract>",
                      what=f"retract {id_}")


async def disco_features(c, to, node=None):
    attr = f" node='{node}'" if node else ""
    r = await raw_iq(c, f"<iq type='get' to='{to}'><query xmlns='{DISCO_INFO}'{attr}/></iq>")
    check(iq_type(r) == "result", f"disco#info {node}: {xml(r)}")
    return {f.get("var") for f in r.iter(q("feature", DISCO_INFO))}


async def test_filter_advertised(ctx):
    async with ctx.client("alice") as ca:
        a = PS(ctx, ca)
        node = new_node("fdisco")
        await a.create(node, {"pubsub#access_model": "open"})
        check(FEATURE in await disco_features(ca, ctx.service), "service disco#info lacks the filter feature")
        check(FEATURE in await disco_features(ca, ctx.service, node), "leaf node disco#info lacks it")
        # The default subscription options (§6.4) show the field, empty.
        r = await a.ok("get", f"<default node='{node}'/>", what="default options")
        x = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('default', NS_PUBSUB)}/{q('x', NS_DATA)}")
        f = [f for f in x.findall(q("field", NS_DATA)) if f.get("var") == FIELD] if x is not None else []
        check(len(f) == 1 and not f[0].findtext(q("value", NS_DATA)), f"default options: {xml(r)}")


async def test_filtered_subscriptions(ctx):
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        send_available(cb)
        inbox = Inbox(cb)
        a, b = PS(ctx, ca), PS(ctx, cb)
        node = new_node("filter")
        await a.create(node, {"pubsub#send_last_published_item": "on_sub",
                              "pubsub#notify_retract": "1", "pubsub#max_items": "50"})
        await a.publish(node, "e0", log("error", "web-1", "before anyone subscribed"))

        # Subscribe-and-configure with a filter the last item does not match: it is not sent.
        warn = await b.subscribe(node, "@level = 'warn'")
        await inbox.quiet(event_of(node, "item", "e0"), 1.5, "last item to a filter it fails")
        # A second subscription of the same JID, its own subid; the last item matches it and
        # comes with its SubID.
        web = await b.subscribe(node, "@level = 'error' and @host ^= 'web-' or @host = 'web-1'")
        check(web != warn, f"two filtered subscriptions share subid {web}")
        m = await inbox.wait(event_of(node, "item", "e0"), 5, "last item to the matching filter")
        check(shim_subids(m) == [web], f"last item SubIDs {shim_subids(m)} != [{web}]: {xml(m)}")
        # The filter is stored canonical ('and' binds tighter: no parentheses needed).
        shown = await b.filter_of(node, web)
        check("@level" in shown and "web-" in shown, f"stored filter {shown!r}")

        # An invalid filter is refused with the parser's position and reason, and changes
        # nothing: no subscription made, the options of the one named unchanged.
        before = await b.subids(node)
        r = await b.iq("set", b.subscribe_xml(node, "@level = "))
        check(pubsub_error(r)[:2] == ("modify", "not-acceptable"), f"invalid filter: {xml(r)}")
        text = error_text(r) or ""
        check(text.startswith("at 9"), f"error text does not say where: {text!r}")
        check(await b.subids(node) == before, "a refused subscribe made a subscription")
        r = await b.iq("set", b.set_filter_xml(node, warn, "@level = 'warn' and ("))
        check(pubsub_error(r)[:2] == ("modify", "not-acceptable"), f"invalid filter in options: {xml(r)}")
        check(await b.filter_of(node, warn) == "@level = 'warn'", "a refused options form changed the filter")

        # Each item reaches exactly the subscriptions it matches, named in SubID headers.
        await a.publish(node, "w1", log("warn", "db-1", "slow query"))
        m = await inbox.wait(event_of(node, "item", "w1"), 5, "warn item")
        check(shim_subids(m) == [warn], f"w1 SubIDs {shim_subids(m)} != [{warn}]")
        await a.publish(node, "e2", log("error", "web-2", "500"))
        m = await inbox.wait(event_of(node, "item", "e2"), 5, "error item from web-2")
        check(shim_subids(m) == [web], f"e2 SubIDs {shim_subids(m)} != [{web}]")
        await a.publish(node, "i3", log("info", "web-2", "ok"))
        await inbox.quiet(event_of(node, "item", "i3"), 1.5, "item no filter matches")

        # Retractions go to the subscriptions the retracted item matched, and only to them.
        await a.retract(node, "w1")
        m = await inbox.wait(event_of(node, "retract", "w1"), 5, "retract of w1")
        check(shim_subids(m) == [warn], f"retract w1 SubIDs {shim_subids(m)} != [{warn}]")
        await a.retract(node, "i3")
        await inbox.quiet(event_of(node, "retract", "i3"), 1.5, "retract of an item no filter matched")
        check(inbox.count(event_of(node, "retract")) == 1, "more retractions than w1's")

        # Changed with the options form (§6.3.5): now both match, one notification, two SubIDs.
        await b.ok("set", b.set_filter_xml(node, warn, "@host ^= 'web-' and @level != 'debug'"),
                   what="change the filter")
        await a.publish(node, "e4", log("error", "web-4", "disk full"))
        m = await inbox.wait(event_of(node, "item", "e4"), 5, "item both filters match")
        check(shim_subids(m) == sorted([warn, web]), f"e4 SubIDs {shim_subids(m)}")
        check(inbox.count(event_of(node, "item", "e4")) == 1, "e4 came more than once")

        # Node-level news reaches every subscription whatever its filter (one message).
        await a.ok("set", f"<purge node='{node}'/>", NS_PUBSUB_OWNER, what="purge")
        m = await inbox.wait(lambda m: m.find(f"{q('event', NS_PUBSUB_EVENT)}/{q('purge', NS_PUBSUB_EVENT)}")
                             is not None, 5, "purge notification")

    # Filters are stored with their subscriptions.
    await ctx.restart_roost()
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        send_available(cb)
        inbox = Inbox(cb)
        a, b = PS(ctx, ca), PS(ctx, cb)
        check(await b.subids(node) == sorted([warn, web]), "subscriptions lost in the restart")
        check(await b.filter_of(node, warn) == "@host ^= 'web-' and @level != 'debug'",
              "the changed filter did not survive the restart")
        await a.publish(node, "d5", log("debug", "web-5", "noise"))
        await a.publish(node, "w6", log("warn", "web-6", "retrying"))
        m = await inbox.wait(event_of(node, "item", "w6"), 5, "warn item after the restart")
        check(shim_subids(m) == [warn], f"w6 SubIDs after restart {shim_subids(m)} != [{warn}]")
        await a.publish(node, "e7", log("error", "db-7", "replica down"))
        await inbox.quiet(event_of(node, "item", "e7"), 1.5, "item no filter matches, after restart")
        check(inbox.count(event_of(node, "item", "d5")) == 0, "debug item reached a filter refusing it")
        # Removing the filter (empty field) makes it a plain subscription again.
        await b.ok("set", b.set_filter_xml(node, web, ""), what="remove the filter")
        check(await b.filter_of(node, web) == "", "filter not removed")
        await a.publish(node, "e8", log("error", "db-8", "anything"))
        m = await inbox.wait(event_of(node, "item", "e8"), 5, "item to the unfiltered subscription")
        check(shim_subids(m) in ([], [web]), f"e8 SubIDs {shim_subids(m)}")


def shim_collections(m):
    h = m.find(q("headers", NS_SHIM))
    if h is None:
        return []
    return [x.text for x in h.findall(q("header", NS_SHIM)) if x.get("name") == "Collection"]


async def test_filtered_subscription_to_a_collection(ctx):
    """A filter on a subscription to a collection (XEP-0248) selects among the items of
    every leaf below it: one notification per item it matches, with the Collection header
    and the subscription's SubID; items it does not match are not sent; two subscriptions
    of one JID (leaf and collection) that both match give one message naming both."""
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        send_available(cb)
        inbox = Inbox(cb)
        a, b = PS(ctx, ca), PS(ctx, cb)
        coll, web, db = new_node("fcoll"), new_node("fweb"), new_node("fdb")
        await a.create(coll, {"pubsub#node_type": "collection"})
        await a.create(web, {"pubsub#collection": coll})
        await a.create(db, {"pubsub#collection": coll})
        check(FEATURE in await disco_features(ca, ctx.service, coll), "collection disco#info lacks the filter feature")
        form = options_form({"pubsub#subscription_type": "items", "pubsub#subscription_depth": "all",
                             FIELD: "@level = 'error'"})
        r = await b.ok("set", f"<subscribe node='{coll}' jid='{b.jid}'/><options>{form}</options>",
                       what="filtered subscribe to the collection")
        sub = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('subscription', NS_PUBSUB)}")
        errors = sub.get("subid") if sub is not None else None
        check(errors, f"subscribe reply: {xml(r)}")

        for leaf in (web, db):
            await a.publish(leaf, "e", log("error", leaf, "failed"))
            m = await inbox.wait(event_of(leaf, "item", "e"), 5, f"error item on {leaf} via the collection")
            check(shim_collections(m) == [coll], f"Collection headers {shim_collections(m)} != [{coll}]: {xml(m)}")
            check(shim_subids(m) == [errors], f"SubIDs {shim_subids(m)} != [{errors}]: {xml(m)}")
        await a.publish(web, "i", log("info", web, "fine"))
        await inbox.quiet(event_of(web, "item", "i"), 1.5, "info item through an error filter")

        # A filtered subscription to the leaf as well: an item both match is one message.
        both = await b.subscribe(web, "@host = '%s'" % web)
        await a.publish(web, "e2", log("error", web, "again"))
        m = await inbox.wait(event_of(web, "item", "e2"), 5, "item both filters match")
        check(shim_collections(m) == [coll], f"Collection headers {shim_collections(m)}")
        check(shim_subids(m) == sorted([errors, both]), f"SubIDs {shim_subids(m)}")
        await asyncio.sleep(0.5)
        check(inbox.count(event_of(web, "item", "e2")) == 1, "e2 came more than once")
        # Only the leaf's filter matches: no Collection header, the leaf subscription's SubID.
        await a.publish(web, "w3", log("warn", web, "slow"))
        m = await inbox.wait(event_of(web, "item", "w3"), 5, "item only the leaf filter matches")
        check(shim_collections(m) == [], f"Collection headers {shim_collections(m)} on a leaf-only match")
        check(shim_subids(m) == [both], f"SubIDs {shim_subids(m)} != [{both}]")


# Like test_logs: the programs are built by scripts/test's examples step; build() here only
# makes sure, and may compile them when run alone.
@timeout(600)
async def test_filter_with_the_example_programs(ctx):
    """roost-subscribe --filter selects by the attributes roost-publish --attr puts on its
    entries; a filter that does not parse is refused with the place and the reason."""
    import subprocess

    from logship import PLAIN, PUBLISH, SUBSCRIBE, build

    await asyncio.to_thread(build)
    env = dict(os.environ, ROOST_PASSWORD="pw", RUST_LOG="warn")
    base = ["--server", f"127.0.0.1:{ctx.env['C2S_PORT']}", PLAIN, "--service", ctx.service]
    node = new_node("fexample")
    alice, bob = ctx.jid("alice"), ctx.jid("bob")

    def run(argv):
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = await asyncio.to_thread(run, [PUBLISH, "--jid", alice, *base, "--node", node,
                                                 "--create", "--attr", "level=info", "created"])
    check(rc == 0, f"roost-publish --create: {rc} {err}")
    rc, out, err = await asyncio.to_thread(run, [SUBSCRIBE, "--jid", bob, *base, "--node", node,
                                                 "--filter", "@level = ", "--count", "1"])
    check(rc != 0 and "not-acceptable" in err and "at 9" in err, f"invalid filter: rc={rc} {err!r}")

    sub = subprocess.Popen([SUBSCRIBE, "--jid", bob, *base, "--node", node, "--count", "1",
                            "--filter", "@level = 'error' and @host ^= 'web-'"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until it says it is subscribed (with its subid), then publish.
        line = await asyncio.to_thread(sub.stderr.readline)
        while line and "subscription to" not in line:
            line = await asyncio.to_thread(sub.stderr.readline)
        check("subid" in line and "subscribed" in line, f"roost-subscribe: {line!r}")
        for attrs, text in [(["level=error", "host=db-1"], "not this one"),
                            (["level=warn", "host=web-1"], "nor this one"),
                            (["level=error", "host=web-2"], "this one")]:
            argv = [PUBLISH, "--jid", alice, *base, "--node", node, text]
            for a in attrs:
                argv[-1:-1] = ["--attr", a]
            rc, out, err = await asyncio.to_thread(run, argv)
            check(rc == 0, f"roost-publish {attrs}: {rc} {err}")
        out, err = await asyncio.to_thread(sub.communicate, timeout=30)
        printed = [l.split(" ", 2) for l in out.strip().splitlines()]
        check(sub.returncode == 0 and len(printed) == 1 and printed[0][0] == node
              and printed[0][2:] == ["this one"],
              f"roost-subscribe --filter printed {out!r} (rc {sub.returncode}, {err!r})")
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(5)


@timeout(600)
async def test_log_ship_attrs_select_a_stream(ctx):
    """roost-log-ship --attr puts its attributes on every <lines/> payload: a subscription
    filtering on them gets one shipper's stream of two, every item of it, and nothing of the
    other."""
    import subprocess
    import tempfile

    from logship import PLAIN, SHIP, build

    await asyncio.to_thread(build)
    env = dict(os.environ, ROOST_PASSWORD="pw", RUST_LOG="warn")
    base = ["--server", f"127.0.0.1:{ctx.env['C2S_PORT']}", PLAIN, "--service", ctx.service]
    node = new_node("fship")
    log_ns = "urn:roost:log:0"
    async with ctx.client("alice") as ca, ctx.client("bob") as cb:
        send_available(cb)
        inbox = Inbox(cb)
        a, b = PS(ctx, ca), PS(ctx, cb)
        await a.create(node, {"pubsub#max_items": "100"})
        web = await b.subscribe(node, "@host = 'web-1' and @app = 'nginx'")
        with tempfile.TemporaryDirectory() as d:
            def ship(id_, host, n):
                path = os.path.join(d, f"{id_}.log")
                with open(path, "w") as f:
                    f.writelines(f"{id_} line {i}\n" for i in range(1, n + 1))
                argv = [SHIP, "--jid", ctx.jid("alice"), *base, "--node", node, "--id", id_,
                        "--state", os.path.join(d, f"{id_}.state"), "--max-lines", "1",
                        "--attr", f"host={host}", "--attr", "app=nginx", "--exit-at-eof", path]
                return subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, timeout=120)

            for id_, host, n in (("web", "web-1", 5), ("db", "db-1", 4)):
                p = await asyncio.to_thread(ship, id_, host, n)
                check(p.returncode == 0, f"roost-log-ship {id_}: {p.returncode} {p.stderr}")
            p = subprocess.run([SHIP, "--jid", ctx.jid("alice"), *base, "--node", node,
                                "--attr", "first=7", "-"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=60, input="")
            check(p.returncode != 0 and "first" in p.stderr, f"--attr first=7: {p.returncode} {p.stderr!r}")
        # Every web line, one item each (--max-lines 1), numbered 1..5, with the SubID.
        got = [await inbox.wait(event_of(node, "item"), 10, "a web item") for _ in range(5)]
        lines_seen = []
        for m in got:
            check(shim_subids(m) == [web], f"SubIDs {shim_subids(m)} != [{web}]")
            for it in m.iter(q("item", NS_PUBSUB_EVENT)):
                ls = it.find(q("lines", log_ns))
                check(ls is not None and ls.get("host") == "web-1" and ls.get("app") == "nginx",
                      f"payload attributes: {xml(it)}")
                lines_seen += [ln.text for ln in ls.findall(q("line", log_ns))]
        check(sorted(lines_seen) == [f"web line {i}" for i in range(1, 6)], f"web lines: {lines_seen}")
        # Nothing more: the db stream's items do not match.
        await inbox.quiet(event_of(node, "item"), 1.5, "an item of the db stream")
