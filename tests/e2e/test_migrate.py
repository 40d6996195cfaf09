"""Migration: roost-migrate copies the server's built-in pubsub into Roost, node by node.

A second server of the suite's kind (its built-in pubsub on pubsub-builtin.<domain>; on
Prosody alice is an admin there, as Prosody lets only admins create nodes) gets nodes filled
through a client: configuration, items (with and without ids, one republished, one
retracted), affiliations, subscriptions. roost-migrate, logged in as alice, copies them
into that server's Roost (started with alice as an admin). Then every node is compared on
both services: items (ids, payloads, order), affiliations, subscriptions (JID and state),
and every configuration field both services have and the report does not list as not
copied. The report must say what the source could not give and what was not kept.
"""

import asyncio
import os
import subprocess
import xml.etree.ElementTree as ET

from harness import (NS_DATA, NS_PUBSUB, NS_PUBSUB_OWNER, PASSWORD, Context, RoostProcess, check,
                     iq_type, raw_iq, timeout)
from logship import MIGRATE, PLAIN, build
from test_pubsub import PS, SUB_OPTIONS, form, form_values, q, xml

ITEM_NS = "urn:roost:test:migrate"


def body(text):
    return f"<entry xmlns='{ITEM_NS}'><title>{text}</title><n a='&lt;&amp;'>{len(text)}</n></entry>"


async def migration_context(ctx):
    """A server of the suite's kind whose built-in pubsub alice may fill, with a Roost on
    its service domain that counts alice as an admin (started once per run)."""
    if getattr(ctx, "_migration", None) is None:
        p = Context(ctx.kind, os.path.join(ctx.tmp, "migration"), ctx.roost_bin, ctx.keepalive,
                    ctx.roost_log_filter)
        if ctx.kind == "prosody":
            p.server.extra_env = {"PROSODY_ADMINS": "alice@localhost"}
        os.makedirs(p.tmp, exist_ok=True)
        ctx._migration = p
        ctx.extra_contexts.append(p)
        await p.setup()
        p.roost.extra_args = ["--admins", p.jid("alice")]
        await p.restart_roost()
    return ctx._migration


class Raw(PS):
    """PS against any service, returning whole elements for comparisons."""

    def __init__(self, ctx, c, to):
        super().__init__(ctx, c)
        self.to = to

    async def items_raw(self, node):
        r = await self.ok("get", f"<items node='{node}'/>", what=f"items of {node} on {self.to}")
        items = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('items', NS_PUBSUB)}")
        return [(i.get("id"), [canonical(c) for c in i]) for i in items.findall(q("item", NS_PUBSUB))]

    async def subs(self, node):
        """(jid, state) of the node's subscriptions, sorted. Prosody names the node on each
        <subscription/> instead of on <subscriptions/>: both are read."""
        r = await self.ok("get", f"<subscriptions node='{node}'/>", NS_PUBSUB_OWNER,
                          what=f"subscriptions of {node} on {self.to}")
        subs = r.find(f"{q('pubsub', NS_PUBSUB_OWNER)}/{q('subscriptions', NS_PUBSUB_OWNER)}")
        check(subs is not None, f"subscriptions reply: {xml(r)}")
        return sorted((s.get("jid"), s.get("subscription"))
                      for s in subs.findall(q("subscription", NS_PUBSUB_OWNER)))

    async def sub_options(self, node, jid):
        """{var: values} of `jid`'s (only) subscription options, FORM_TYPE left out."""
        r = await self.ok("get", f"<options node='{node}' jid='{jid}'/>", what=f"options of {jid}")
        x = r.find(f"{q('pubsub', NS_PUBSUB)}/{q('options', NS_PUBSUB)}/{q('x', NS_DATA)}")
        return {k: norm(v) for k, v in form_values(x).items() if k != "FORM_TYPE"}

    async def config_raw(self, node):
        r = await self.ok("get", f"<configure node='{node}'/>", NS_PUBSUB_OWNER,
                          what=f"configure {node} on {self.to}")
        return form_values(r.find(f"{q('pubsub', NS_PUBSUB_OWNER)}/{q('configure', NS_PUBSUB_OWNER)}"
                                   f"/{q('x', NS_DATA)}"))

    async def nodes(self):
        r = await raw_iq(self.c, f"<iq type='get' to='{self.to}'>"
                                 "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
        check(iq_type(r) == "result", f"disco#items of {self.to}: {xml(r)}")
        return {i.get("node") for i in r.iter("{http://jabber.org/protocol/disco#items}item")}


def canonical(el):
    """An element as text with namespaces written out the same way whoever serialized it."""
    return ET.canonicalize(ET.tostring(el, encoding="unicode"), strip_text=True)


async def fill(p, src):
    """The source nodes; returns {node: expected item ids in order} and bob's own node."""
    async with p.client("alice") as a, p.client("bob") as b:
        ps, bs = Raw(p, a, src), Raw(p, b, src)
        alice, bob, carol = p.jid("alice"), p.jid("bob"), p.jid("carol")
        await ps.create("mig-news", {"pubsub#title": "Migrated news", "pubsub#max_items": "10",
                                     "pubsub#access_model": "whitelist"})
        for i in range(5):
            await ps.publish("mig-news", body(f"news {i} &lt;&amp;&gt; \u2603"), id_=f"n{i}")
        # A republish (each server decides where it goes: the copy must follow it) and a
        # retraction.
        await ps.publish("mig-news", body("news 1 again"), id_="n1")
        await ps.ok("set", "<retract node='mig-news'><item id='n3'/></retract>", what="retract n3")
        await ps.set_aff("mig-news", bob, "member")
        await ps.set_aff("mig-news", carol, "outcast")
        await ps.ok("set", f"<subscriptions node='mig-news'><subscription jid='{bob}' "
                           "subscription='subscribed'/></subscriptions>", NS_PUBSUB_OWNER,
                    what="subscribe bob to mig-news")

        await ps.create("mig-open")
        for i in range(3):
            await ps.publish("mig-open", body(f"open {i}"))
        await ps.set_aff("mig-open", bob, "publisher")
        await bs.subscribe("mig-open")
        await ps.subscribe("mig-open")

        await ps.create("mig-empty", {"pubsub#title": "Nothing yet"})

        # A node alice does not administer: only ejabberd lets a non-admin create one.
        bobs = None
        if p.kind == "ejabberd":
            bobs = "mig-bobs"
            await bs.create(bobs)
            await bs.publish(bobs, body("bob's"), id_="b1")
    return ["mig-news", "mig-open", "mig-empty"], bobs


async def compare(p, src, dst, node, report):
    async with p.client("alice") as a:
        s, d = Raw(p, a, src), Raw(p, a, dst)
        si, di = await s.items_raw(node), await d.items_raw(node)
        check(si == di, f"{node}: items differ:\n source {si}\n target {di}")
        sa, da = await s.owner_affs(node), await d.owner_affs(node)
        check(sa == da, f"{node}: affiliations differ: source {sa} target {da}")
        ss, ds = await s.subs(node), await d.subs(node)
        check(ss == ds, f"{node}: subscriptions differ: source {ss} target {ds}")
        sc, dc = await s.config_raw(node), await d.config_raw(node)
        block = report_block(report, node)
        compared = 0
        for var, values in sc.items():
            if var == "FORM_TYPE" or var not in dc or not values:
                continue
            if f"{var}=" in block or f"{var} " in block:
                continue  # reported as mapped or not copied
            check(norm(dc[var]) == norm(values),
                  f"{node}: {var} is {dc[var]} on the target, {values} on the source")
            compared += 1
        check(compared >= 3, f"{node}: only {compared} configuration fields compared: {sc} / {dc}")
        return len(si)


def norm(values):
    """Form values with xs:boolean's two spellings made one."""
    return [{"true": "1", "false": "0"}.get(v, v) for v in values]


def report_block(report, node):
    """The report's lines about `node`."""
    out, inside = [], False
    for line in report.splitlines():
        if line.startswith("node "):
            inside = line.startswith(f"node {node}:")
        if inside:
            out.append(line)
    return "\n".join(out)


def migrate(env, src, dst, *extra):
    argv = [MIGRATE, "--jid", f"alice@{env['DOMAIN']}", "--server", f"127.0.0.1:{env['C2S_PORT']}",
            PLAIN, "--from", src, "--to", dst, *extra]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                       env=dict(os.environ, ROOST_PASSWORD=PASSWORD, RUST_LOG="warn"))
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@timeout(300)
async def test_migrate_builtin_pubsub_into_roost(ctx):
    await asyncio.to_thread(build)
    p = await migration_context(ctx)
    src, dst = p.env["BUILTIN_PUBSUB"], p.service
    nodes, bobs = await fill(p, src)

    # A dry run reads everything and writes nothing.
    rc, out, err = await asyncio.to_thread(migrate, p.env, src, dst, "--dry-run")
    check(rc == 0, f"dry run rc={rc}\n{out}\n{err}")
    async with p.client("alice") as a:
        check(not (set(nodes) & await Raw(p, a, dst).nodes()), "the dry run created nodes")

    rc, out, err = await asyncio.to_thread(migrate, p.env, src, dst)
    with open(os.path.join(p.tmp, "report.txt"), "w") as f:  # kept with the logs on failure
        f.write(out + err)
    check(rc == 0, f"roost-migrate rc={rc}\n{out}\n{err}")
    for node in nodes:
        check(f"node {node}: copied:" in out, f"{node} not reported as copied:\n{out}")
    # What cannot be kept, and what the source could not give, is said.
    check("not their publisher" in out, f"the report does not say publishers are lost:\n{out}")
    if p.kind == "ejabberd":
        check("no subscription options: feature-not-implemented" in out,
              f"ejabberd gives no subscription options; the report does not say so:\n{out}")
        check("pubsub#itemreply=none not copied" in out, f"ejabberd's itemreply=none:\n{out}")
        check(f"node {bobs}: skipped: alice@{p.domain} cannot configure it" in out,
              f"bob's node is not reported as skipped:\n{out}")
        async with p.client("alice") as a:
            check(bobs not in await Raw(p, a, dst).nodes(), "a node alice does not administer was copied")

    counts = {}
    for node in nodes:
        counts[node] = await compare(p, src, dst, node, out)
    check(counts == {"mig-news": 4, "mig-open": 3, "mig-empty": 0}, f"item counts {counts}")

    # Copying again touches nothing that exists.
    rc, out2, err = await asyncio.to_thread(migrate, p.env, src, dst, "--node", "mig-news")
    check(rc == 1 and "already exists" in out2, f"second copy: rc={rc}\n{out2}\n{err}")


@timeout(180)
async def test_migrate_roost_into_roost(ctx):
    """Another Roost as the source: subscription options come along too (alice is an admin
    of both, which reading and setting another's options needs)."""
    await asyncio.to_thread(build)
    p = await migration_context(ctx)
    src, dst = p.service, f"relay.{p.domain}"
    env = dict(p.env, SERVICE=dst)
    # ejabberd gives each component domain a listener of its own (scripts/ejabberd).
    env["COMPONENT_PORT"] = p.env.get("RELAY_COMPONENT_PORT", p.env["COMPONENT_PORT"])
    target = RoostProcess(p.roost_bin, env, os.path.join(p.tmp, "target-data"),
                          os.path.join(p.tmp, "target.log"), keepalive=p.keepalive,
                          extra_args=["--admins", p.jid("alice")])
    target.start()
    p.extra_roosts.append(target)
    bob = p.jid("bob")
    async with p.client("alice") as a, p.client("bob") as b:
        ps, bs = Raw(p, a, src), Raw(p, b, src)
        await ps.create("rr-node", {"pubsub#title": "From Roost", "pubsub#max_items": "50",
                                    "pubsub#notification_type": "normal"})
        for i in range(12):
            await ps.publish("rr-node", body(f"item {i}"), id_=f"i{i:02}")
        await ps.set_aff("rr-node", bob, "publisher")
        await bs.subscribe("rr-node")
        await bs.ok("set", f"<options node='rr-node' jid='{bob}'>" + form(SUB_OPTIONS, {
            "pubsub#deliver": "0", "pubsub#include_body": "1"}) + "</options>", what="bob's options")
        # Wait for the target's link before copying.
        for _ in range(100):
            r = await raw_iq(a, f"<iq type='get' to='{dst}'>"
                                "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
            if iq_type(r) == "result":
                break
            check(target.alive(), f"target roost exited: {target.log_tail()}")
            await asyncio.sleep(0.2)

    rc, out, err = await asyncio.to_thread(migrate, p.env, src, dst, "--node", "rr-node")
    check(rc == 0 and "node rr-node: copied: 12/12 item(s)" in out, f"rc={rc}\n{out}\n{err}")
    check("no subscription options" not in out, f"Roost gives subscription options:\n{out}")
    await compare(p, src, dst, "rr-node", out)
    async with p.client("alice") as a:
        s, d = Raw(p, a, src), Raw(p, a, dst)
        check(await s.sub_options("rr-node", bob) == await d.sub_options("rr-node", bob),
              "bob's subscription options differ")
        check((await d.sub_options("rr-node", bob)).get("pubsub#deliver") in (["0"], ["false"]),
              "pubsub#deliver=0 not copied")
