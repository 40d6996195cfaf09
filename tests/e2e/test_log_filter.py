"""A sink selecting one of two shippers (issue 15): two roost-log-ship processes, one with
`--attr host=web-1`, one with `--attr host=db-1`, publish to the same node; one
roost-log-sink with `--filter "@host = 'web-1'"` must get every line of the web shipper,
exactly once and in order, and nothing of the other, through the faults of test_logs.py:
the sink killed and restarted (it catches up from the node's history, which the service
does not filter: the sink filters it), Roost restarted under all of them. The selected shipper is
killed and restarted too. The sink holds one subscription all along: it finds its subid
again after each restart (its own, and Roost's) instead of subscribing anew; when its subscription's filter was changed behind its back (here, while
it was down), it makes a new one and drops the stale one.

The same scenario runs on a collection (XEP-0248, a Roost with topic hierarchies): the
shippers on two leaves below it, the sink on the collection.

The programs are built by scripts/test's "examples" step (see test_logs.py).
"""

import asyncio
import os
import random
import xml.etree.ElementTree as ET

from harness import NS_DATA, NS_PUBSUB, check, iq_type, raw_iq, timeout
from logship import PLAIN, SHIP, SINK, Proc, build, compare, lines, read_state, size, until
from test_durability import own_roost
from test_logs import units

FIELD = "x-roost#filter"
SUB_OPTIONS = "http://jabber.org/protocol/pubsub#subscribe_options"
RESOURCE = "filtered-sink"
SELECTED = "@host = 'web-1'"


@timeout(600)
async def test_a_filtered_sink_selects_one_of_two_shippers(ctx):
    await asyncio.to_thread(build)
    suffix = os.urandom(3).hex()
    node = f"flogs-{suffix}"
    await asyncio.wait_for(scenario(ctx, "leaf", {"web": node, "db": node}, node), 150)


@timeout(600)
async def test_a_filtered_sink_on_a_collection(ctx):
    await asyncio.to_thread(build)
    async with own_roost(ctx, "ftopics", ["--hierarchy", "/"]):
        await asyncio.wait_for(scenario(ctx, "collection", {"web": "flt/web", "db": "flt/db"}, "flt"),
                               150)


def q(tag, ns):
    return "{%s}%s" % (ns, tag)


async def sink_subids(ctx, node):
    """The subids of the sink's full JID's subscriptions to `node` (XEP-0060 §5.6), asked as
    another session of the same account."""
    async with ctx.client("bob") as c:
        r = await raw_iq(c, f"<iq type='get' to='{ctx.service}'><pubsub xmlns='{NS_PUBSUB}'>"
                            f"<subscriptions node='{node}'/></pubsub></iq>")
        check(iq_type(r) == "result", f"own subscriptions: {ET.tostring(r, encoding='unicode')}")
        jid = f"{ctx.jid('bob')}/{RESOURCE}"
        return sorted(s.get("subid") for s in r.iter(q("subscription", NS_PUBSUB)) if s.get("jid") == jid)


async def change_filter(ctx, node, subid, filter_):
    """Change a subscription's filter with the options form (§6.3.5), as the sink's account."""
    async with ctx.client("bob") as c:
        form = (f"<x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
                f"<value>{SUB_OPTIONS}</value></field><field var='{FIELD}'><value>{filter_}</value>"
                f"</field></x>")
        jid = f"{ctx.jid('bob')}/{RESOURCE}"
        r = await raw_iq(c, f"<iq type='set' to='{ctx.service}'><pubsub xmlns='{NS_PUBSUB}'>"
                            f"<options node='{node}' jid='{jid}' subid='{subid}'>{form}</options>"
                            f"</pubsub></iq>")
        check(iq_type(r) == "result", f"options: {ET.tostring(r, encoding='unicode')}")


async def scenario(ctx, name, nodes, sink_node):
    rnd = random.Random(4_000)
    tmp = os.path.join(ctx.tmp, f"filter-{name}")
    os.makedirs(tmp, exist_ok=True)
    out = os.path.join(tmp, "web.collected")
    sink_state = out + ".state"
    server = f"127.0.0.1:{ctx.env['C2S_PORT']}"
    common = ["--server", server, PLAIN, "--service", ctx.service]
    logs = {k: os.path.join(tmp, f"{k}.log") for k in nodes}
    states = {k: os.path.join(tmp, f"{k}.state") for k in nodes}
    hosts = {"web": "web-1", "db": "db-1"}
    ships = {k: Proc(tmp, f"ship-{k}", [SHIP, "--jid", ctx.jid("alice"), *common, "--node", nodes[k],
                                        "--create", "--id", k, "--attr", f"host={hosts[k]}",
                                        "--attr", "app=e2e", "--state", states[k], logs[k]])
             for k in nodes}
    sink = Proc(tmp, "sink", [SINK, "--jid", ctx.jid("bob"), *common, "--node", sink_node,
                              "--resource", RESOURCE, "--filter", SELECTED, "--out", out])
    source = {k: bytearray() for k in nodes}
    written = {k: 0 for k in nodes}

    def append(n):
        for k in nodes:
            data = lines(written[k], n, rnd)
            with open(logs[k], "ab") as f:
                f.write(data)
            source[k].extend(data)
            written[k] += n

    def shipped(k):
        return int(read_state(states[k]).get("next", "1")) - 1

    def subid():
        return read_state(sink_state).get("subid")

    def diag():
        return (f"sink has {size(out)} of {len(source['web'])} bytes; sink state {read_state(sink_state)}; "
                + "; ".join(f"{k} shipper state {read_state(states[k])}" for k in nodes)
                + f"\nsink log: {sink.log_tail()}")

    async def wait(cond, secs, what, procs=()):
        await until(cond, secs, what, diag, procs)

    async def one_subscription(want, what):
        got = await sink_subids(ctx, sink_node)
        check(got == [want], f"{what}: the sink's subscriptions are {got}, want [{want}]\n{diag()}")

    everyone = tuple(ships.values())
    try:
        append(1000)
        for s in everyone:
            s.start()
        await wait(lambda: all(shipped(k) > 0 for k in nodes), 30, "shippers made no progress", everyone)
        # The sink starts after lines were published: it catches up from a history holding
        # both streams, and must take only the web one.
        sink.start()
        await wait(lambda: size(out) > 0 and subid(), 30, "sink received nothing", (sink,))
        first = subid()
        await one_subscription(first, "after the first start")
        append(500)
        sink.kill()                                   # the sink crashes
        append(500)
        await wait(lambda: all(shipped(k) >= units(bytes(source[k])) // 2 for k in nodes), 30,
                   "shippers made no progress", everyone)
        sink.start()
        await wait(lambda: "found again" in sink.log_tail(), 30, "restarted sink did not find its subscription",
                   (sink,))
        check(subid() == first, f"subid {subid()} after the sink's restart, was {first}")
        await one_subscription(first, "after the sink's restart")
        ships["web"].kill()                           # the selected shipper crashes
        append(500)
        ships["web"].start()
        # Roost restarts under all of them: publishes fail meanwhile and are retried.
        ctx.roost.stop()
        append(500)
        await asyncio.sleep(1.0)
        ctx.roost.start()
        await ctx.wait_ready(30)
        append(500)
        await wait(lambda: all(shipped(k) >= units(bytes(source[k])) for k in nodes), 60,
                   "shippers did not finish after the restart", everyone)
        await wait(lambda: size(out) >= len(source["web"]), 60, "sink did not catch up after Roost's restart",
                   (sink,))
        check(subid() == first, f"subid {subid()} after Roost's restart, was {first}")
        await one_subscription(first, "after Roost's restart")
        # The sink restarts too: the subscription Roost reloaded is found again.
        sink.kill()
        append(500)
        sink.start()
        await wait(lambda: "found again" in sink.log_tail(), 30,
                   "the sink did not find its subscription after Roost's restart", (sink,))
        check(subid() == first, f"subid {subid()} after the restarts, was {first}")
        await one_subscription(first, "after the sink's restart following Roost's")
        # While the sink is down its subscription's filter is changed to the other stream:
        # on its return it must not use that one (nor keep it), but make its own again.
        sink.kill()
        await change_filter(ctx, sink_node, first, "@host = 'db-1'")
        append(1000)
        sink.start()
        await wait(lambda: subid() not in (None, first), 30, "the sink kept a subscription with another filter",
                   (sink,))
        second = subid()
        await one_subscription(second, "after its filter was changed")
        check("dropped stale subscription" in sink.log_tail(10_000), f"no stale subscription dropped\n{diag()}")
        for k in nodes:
            total = units(bytes(source[k]))
            await wait(lambda k=k, total=total: shipped(k) >= total, 60, f"shipper {k} did not finish", everyone)
        await wait(lambda: size(out) >= len(source["web"]), 60, "sink did not catch up", (sink,))
        await asyncio.sleep(1.0)                      # nothing more (no duplicate) may arrive
        with open(out, "rb") as f:
            compare(f.read(), bytes(source["web"]), "filtered sink output")
        await one_subscription(second, "at the end")
        check(subid() == second, f"subid {subid()} at the end, want {second}")
        for k in nodes:
            check(shipped(k) == units(bytes(source[k])), f"{k}: shipper numbered {shipped(k)} units")
    finally:
        sink.stop()
        for s in everyone:
            s.stop()
