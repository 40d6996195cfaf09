"""Operating Roost: the admins' XEP-0050 commands run by a real client (slixmpp's xep_0050),
the metrics endpoint (/metrics, /health, 503 while the link is down) and SIGHUP reload.

Each test restarts the shared Roost with a configuration file of its own (admins, limits)
and the metrics endpoint, and restores the harness's Roost when done."""

import asyncio
import contextlib
import os
import signal
import socket
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError

from harness import Inbox, check, send_available, timeout

ADMIN = "urn:roost:admin:0#"
COMMANDS_NS = "http://jabber.org/protocol/commands"
PUBSUB_EVENT_NS = "http://jabber.org/protocol/pubsub#event"


def entry():
    return ET.fromstring("<entry xmlns='urn:roost:test'>x</entry>")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sample(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


@contextlib.asynccontextmanager
async def configured_roost(ctx, toml):
    """The shared Roost restarted with `toml` as its file and a metrics endpoint; yields
    (config path, metrics port); the harness's Roost is back afterwards."""
    path = os.path.join(ctx.tmp, "ops.toml")
    with open(path, "w") as f:
        f.write(toml)
    port = free_port()
    saved = list(ctx.roost.extra_args)
    ctx.roost.extra_args = saved + ["--config", path, "--metrics-listen", f"127.0.0.1:{port}"]
    await ctx.restart_roost()
    try:
        yield path, port
    finally:
        ctx.roost.extra_args = saved
        await ctx.restart_roost()


def submit(c, **fields):
    form = c["xep_0004"].make_form(ftype="submit")
    for var, value in fields.items():
        form.add_field(var=var, value=value)
    return form


def values(iq):
    return iq["command"]["form"].get_values()


def lines(value):
    """A text-multi value, which slixmpp joins with newlines, as a list."""
    return value.splitlines() if isinstance(value, str) else list(value)


async def command(c, ctx, name, action="execute", sessionid=None, **fields):
    payload = submit(c, **fields) if fields else None
    return await c["xep_0050"].send_command(ctx.service, ADMIN + name, action=action,
                                            payload=payload, sessionid=sessionid, timeout=10)


@timeout(120)
async def test_admin_commands(ctx):
    admin = ctx.jid("carol")
    async with configured_roost(ctx, f'admins = ["{admin}"]\n'):
        async with ctx.client("alice") as alice, ctx.client("bob") as bob, \
                ctx.client("carol") as carol:
            for c in (alice, bob, carol):
                c.register_plugin("xep_0050")
            send_available(bob)
            ps = alice["xep_0060"]
            for i in range(3):
                await ps.create_node(ctx.service, f"ops-{i}", timeout=10)
            form = alice["xep_0004"].make_form(ftype="submit")
            form.add_field(var="FORM_TYPE", ftype="hidden",
                           value="http://jabber.org/protocol/pubsub#node_config")
            form.add_field(var="pubsub#notify_delete", value="1")
            form.add_field(var="pubsub#notify_retract", value="1")
            await ps.set_node_config(ctx.service, "ops-0", form, timeout=10)
            await bob["xep_0060"].subscribe(ctx.service, "ops-0", timeout=10)
            for i in range(2):
                await ps.publish(ctx.service, "ops-0", id=f"i{i}", payload=entry(), timeout=10)
            inbox = Inbox(bob)

            # Discovery: the admin sees the admin commands, others only get-pending.
            listed = await carol["xep_0050"].get_commands(ctx.service, timeout=10)
            nodes = {i[1] for i in listed["disco_items"]["items"]}
            check(ADMIN + "list-nodes" in nodes and ADMIN + "statistics" in nodes, f"{nodes}")
            listed = await alice["xep_0050"].get_commands(ctx.service, timeout=10)
            nodes = {i[1] for i in listed["disco_items"]["items"]}
            check(not any(n.startswith(ADMIN) for n in nodes), f"non-admin sees {nodes}")

            # A non-admin is refused every command.
            for name in ("list-nodes", "node-summary", "delete-node", "purge-node",
                         "list-subscribers", "statistics"):
                try:
                    await command(alice, ctx, name)
                    check(False, f"{name} ran for a non-admin")
                except IqError as e:
                    check(e.condition == "forbidden", f"{name}: {e.condition}")

            # List nodes, two a page, following `next`.
            seen = []
            r = await command(carol, ctx, "list-nodes", max="2")
            while True:
                v = values(r)
                seen += lines(v["nodes"])
                if r["command"]["status"] != "executing":
                    break
                r = await command(carol, ctx, "list-nodes", action="next",
                                  sessionid=r["command"]["sessionid"])
            ours = [n for n in seen if n.startswith("ops-")]
            check(ours == ["ops-0", "ops-1", "ops-2"], f"listed {seen}")
            check(int(v["count"]) == len(seen), f"count {v['count']} vs {len(seen)}")

            # Node summary: first the form asking for the node, then the answer.
            r = await command(carol, ctx, "node-summary")
            check(r["command"]["status"] == "executing", "summary asks for the node")
            r = await command(carol, ctx, "node-summary", action="complete",
                              sessionid=r["command"]["sessionid"], node="ops-0")
            v = values(r)
            check(v["items"] == "2" and v["subscriptions"] == "1", f"summary {v}")
            check(ctx.jid("alice") in v["pubsub#owner"], f"owners {v['pubsub#owner']}")
            check(v["pubsub#access_model"] == "open", f"config {v}")

            r = await command(carol, ctx, "list-subscribers", action="complete", node="ops-0")
            subs = lines(values(r)["subscriptions"])
            check(len(subs) == 1 and subs[0].startswith(ctx.jid("bob")), f"{subs}")

            r = await command(carol, ctx, "statistics")
            v = values(r)
            check(int(v["nodes"]) >= 3 and int(v["items"]) >= 2, f"statistics {v}")

            # Purge and delete through the engine: the subscriber is told of each.
            r = await command(carol, ctx, "purge-node", action="complete", node="ops-0")
            check(r["command"]["status"] == "completed", "purge completed")
            await inbox.wait(lambda m: m.find(
                "{%s}event/{%s}purge" % (PUBSUB_EVENT_NS, PUBSUB_EVENT_NS)) is not None,
                what="purge notification")
            items = await ps.get_items(ctx.service, "ops-0", timeout=10)
            check(len(items["pubsub"]["items"]) == 0, "items left after purge")
            r = await command(carol, ctx, "delete-node", action="complete", node="ops-0")
            check(r["command"]["status"] == "completed", "delete completed")
            await inbox.wait(lambda m: m.find(
                "{%s}event/{%s}delete" % (PUBSUB_EVENT_NS, PUBSUB_EVENT_NS)) is not None,
                what="delete notification")
            try:
                await command(carol, ctx, "node-summary", action="complete", node="ops-0")
                check(False, "summary of a deleted node")
            except IqError as e:
                check(e.condition == "item-not-found", e.condition)
            for i in (1, 2):
                await ps.delete_node(ctx.service, f"ops-{i}", timeout=10)


@timeout(180)
async def test_metrics_health_and_reload(ctx):
    async with configured_roost(ctx, "max_items_per_node = 10000\n") as (path, port):
        status, body = http_get(port, "/health")
        check(status == 200 and body.strip() == "ok", f"/health {status} {body!r}")
        status, before = http_get(port, "/metrics")
        check(status == 200, f"/metrics {status}")
        async with ctx.client("alice") as alice:
            ps = alice["xep_0060"]
            await ps.create_node(ctx.service, "metered", timeout=10)
            for i in range(3):
                await ps.publish(ctx.service, "metered", id=f"m{i}", payload=entry(), timeout=10)
            try:
                await ps.create_node(ctx.service, "metered", timeout=10)
            except IqError:
                pass
            await asyncio.sleep(1.5)  # the gauges follow once a second
            _, text = http_get(port, "/metrics")
            check(sample(text, "roost_publishes_total") >= 3, text)
            check(sample(text, 'roost_requests_total{kind="publish",outcome="ok"}') >= 3, text)
            check(sample(text, 'roost_requests_total{kind="create",outcome="conflict"}') == 1, text)
            check(sample(text, "roost_nodes") >= 1 and sample(text, "roost_items") >= 3, text)
            check(sample(text, "roost_commit_batch_size_count") >= 1, text)
            check(sample(text, "roost_sync_seconds_count") >= 1, text)
            # The heap as jemalloc counts it (the default build runs on jemalloc): a live
            # process holds at least its engine and sled's page table.
            check((sample(text, "roost_heap_allocated_bytes") or 0) > 1_000_000, text)
            check((sample(text, "roost_heap_resident_bytes") or 0) > 1_000_000, text)

            # SIGHUP: a lower max_items_per_node holds for the next configuration, without
            # dropping the link (no new component authentication, same client session).
            auths = ctx.component_auth_count()
            with open(path, "w") as f:
                f.write("max_items_per_node = 2\ndurable = false\n")
            mark = ctx.roost.log_mark()
            os.kill(ctx.roost.proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "configuration reloaded" not in ctx.roost.log_since(mark):
                check(time.monotonic() < deadline, "no reload in the log:\n" + ctx.roost.log_since(mark))
                await asyncio.sleep(0.2)
            log = ctx.roost.log_since(mark)
            check("take effect only after a restart: durable" in log, log)
            form = alice["xep_0004"].make_form(ftype="submit")
            form.add_field(var="FORM_TYPE", ftype="hidden",
                           value="http://jabber.org/protocol/pubsub#node_config")
            form.add_field(var="pubsub#max_items", value="5")
            try:
                await ps.set_node_config(ctx.service, "metered", form, timeout=10)
                check(False, "max_items 5 accepted over the reloaded limit of 2")
            except IqError as e:
                check(e.condition == "not-acceptable", e.condition)
            await alice["xep_0199"].ping(ctx.service, timeout=10)
            check(ctx.component_auth_count() == auths, "the link was re-established")
            check("link lost" not in ctx.roost.log_since(mark), "link lost on reload")

        # The link down: /health says 503 until Roost is linked again.
        seen = []

        async def poll():
            while True:
                seen.append(await asyncio.to_thread(http_get, port, "/health"))
                await asyncio.sleep(0.05)

        task = asyncio.ensure_future(poll())
        try:
            await ctx.restart_server()
            await ctx.wait_ready(60)
            deadline = time.monotonic() + 20
            while http_get(port, "/health")[0] != 200:
                check(time.monotonic() < deadline, "health not back to 200")
                await asyncio.sleep(0.2)
        finally:
            task.cancel()
        seen = [status for status, _ in seen]
        check(503 in seen, f"/health never said 503 while the server was down: {set(seen)}")
        _, text = http_get(port, "/metrics")
        check(sample(text, "roost_link_reconnects_total") >= 1, text)
