"""Nothing acknowledged is lost: crashes, server restarts, a full disk, quotas, hostile input.

Each test runs its own roost (own data dir and flags) in place of the suite's, and puts the
suite's back afterwards.  Load comes from loadclient.RawClient: two raw c2s sessions with 64
publishes in flight each.  Numbers per round are printed as "# durability: ..." lines.
"""

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import logship
from harness import PASSWORD, RoostProcess, check, timeout
from loadclient import (NS_DATA, NS_PUBSUB, NS_PUBSUB_OWNER, LinkDown, PublishLoad, RawClient,
                        create_node_body, error_of, item_ids, items_body, publish_body)

CRASH_ROUNDS = 3
INFLIGHT = 64
# Load tests must not be throttled; the quota test sets its own limits.
LOAD_ARGS = ["--rate-limit", "0", "--max-items-per-node", "1000000"]


def note(msg):
    print(f"# durability: {msg}", flush=True)


@contextlib.asynccontextmanager
async def own_roost(ctx, name, extra_args, data_dir=None):
    """Replace the suite's roost by one with `extra_args` for the duration."""
    orig = ctx.roost
    orig.stop()
    mine = RoostProcess(ctx.roost_bin, ctx.env, data_dir or os.path.join(ctx.tmp, f"{name}-data"),
                        os.path.join(ctx.tmp, f"{name}.log"), keepalive=ctx.keepalive,
                        extra_args=extra_args, log_filter=ctx.roost_log_filter)
    ctx.roost = mine
    try:
        mine.start()
        await ctx.wait_ready(30)
        yield mine
    except AssertionError as e:
        raise AssertionError(f"{e}\n---- {name}.log (tail)\n{mine.log_tail(25)}") from None
    finally:
        mine.stop()
        ctx.roost = orig
        orig.start()
        await ctx.wait_ready(30)


async def raw(ctx, user):
    return await RawClient("127.0.0.1", int(ctx.env["C2S_PORT"]), user, ctx.domain, "pw").connect()


async def ok(c, ctx, body, type_="set", what="request"):
    r = await c.iq(body, ctx.service, type_)
    check(r.get("type") == "result", f"{what} failed: {ET.tostring(r, encoding='unicode')[:400]}")
    return r


async def setup_node(ctx, alice, node):
    """A node with max_items=max, a title, bob as publisher and carol subscribed."""
    body = create_node_body(node).replace(
        "</x></configure>", "<field var='pubsub#title'><value>crash test</value></field></x></configure>")
    await ok(alice, ctx, body, what=f"create {node}")
    await ok(alice, ctx, f"<pubsub xmlns='{NS_PUBSUB_OWNER}'><affiliations node='{node}'>"
                         f"<affiliation jid='bob@{ctx.domain}' affiliation='publisher'/></affiliations></pubsub>",
             what="set bob publisher")
    await ok(alice, ctx, f"<pubsub xmlns='{NS_PUBSUB_OWNER}'><subscriptions node='{node}'>"
                         f"<subscription jid='carol@{ctx.domain}' subscription='subscribed'/></subscriptions></pubsub>",
             what="subscribe carol")


async def check_node(ctx, alice, node):
    """Config, affiliations and subscriptions are what setup_node made."""
    r = await ok(alice, ctx, f"<pubsub xmlns='{NS_PUBSUB_OWNER}'><configure node='{node}'/></pubsub>",
                 "get", "get config")
    fields = {f.get("var"): [v.text for v in f.findall("{%s}value" % NS_DATA)]
              for f in r.iter("{%s}field" % NS_DATA)}
    check(fields.get("pubsub#title") == ["crash test"], f"title after crash: {fields.get('pubsub#title')}")
    check(fields.get("pubsub#max_items") == ["max"], f"max_items after crash: {fields.get('pubsub#max_items')}")
    r = await ok(alice, ctx, f"<pubsub xmlns='{NS_PUBSUB_OWNER}'><affiliations node='{node}'/></pubsub>",
                 "get", "get affiliations")
    affs = {a.get("jid"): a.get("affiliation") for a in r.iter("{%s}affiliation" % NS_PUBSUB_OWNER)}
    check(affs == {f"alice@{ctx.domain}": "owner", f"bob@{ctx.domain}": "publisher"},
          f"affiliations after crash: {affs}")
    r = await ok(alice, ctx, f"<pubsub xmlns='{NS_PUBSUB_OWNER}'><subscriptions node='{node}'/></pubsub>",
                 "get", "get subscriptions")
    subs = {s.get("jid"): s.get("subscription") for s in r.iter("{%s}subscription" % NS_PUBSUB_OWNER)}
    check(subs == {f"carol@{ctx.domain}": "subscribed"}, f"subscriptions after crash: {subs}")


async def check_items(ctx, c, node, acked, label):
    """Every acknowledged ItemID is stored exactly once; returns (stored, lost, dups)."""
    r = await ok(c, ctx, items_body(node), "get", "retrieve items")
    ids = item_ids(r)
    seen = {}
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
    dups = sorted(i for i, n in seen.items() if n > 1)
    lost = sorted(acked - set(seen))
    note(f"{label}: acked {len(acked)}, stored {len(seen)}, lost {len(lost)}, duplicated {len(dups)}")
    check(not lost, f"{label}: {len(lost)} acknowledged items lost, e.g. {lost[:5]}")
    check(not dups, f"{label}: items stored twice: {dups[:5]}")
    return len(seen)


async def run_load(loads):
    return [asyncio.create_task(ld.run()) for ld in loads]


async def stop_load(loads, tasks, grace=0.5):
    """Let replies already on the wire arrive, then stop."""
    await asyncio.sleep(grace)
    for ld in loads:
        ld.stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@timeout(60)
async def test_crash_loses_nothing_acknowledged(ctx):
    """SIGKILL at a random moment under 2 x 64 publishes in flight; restart; every acked item is there."""
    async with own_roost(ctx, "crash", LOAD_ARGS) as roost:
        alice, bob = await raw(ctx, "alice"), await raw(ctx, "bob")
        try:
            totals = [0, 0]
            for rnd in range(1, CRASH_ROUNDS + 1):
                node = f"crash-{rnd}-{random.randrange(1 << 30)}"
                await setup_node(ctx, alice, node)
                loads = [PublishLoad(alice, ctx.service, node, f"a{rnd}", INFLIGHT),
                         PublishLoad(bob, ctx.service, node, f"b{rnd}", INFLIGHT)]
                tasks = await run_load(loads)
                delay = random.uniform(0.5, 2.0)
                await asyncio.sleep(delay)
                os.kill(roost.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(roost.proc.wait, 10)
                await stop_load(loads, tasks)
                acked = loads[0].acked | loads[1].acked
                sent = loads[0].sent + loads[1].sent
                check(acked, f"round {rnd}: nothing was acknowledged in {delay:.2f}s "
                             f"(errors {loads[0].errors} {loads[1].errors})")
                roost.start()
                await ctx.wait_ready(30)
                stored = await check_items(ctx, alice, node, acked,
                                           f"crash round {rnd} (SIGKILL after {delay:.2f}s, {sent} sent)")
                await check_node(ctx, alice, node)
                totals[0] += len(acked)
                totals[1] += stored
            note(f"crash {ctx.kind}: {CRASH_ROUNDS} rounds, {totals[0]} acked, 0 lost")
        finally:
            await alice.close()
            await bob.close()


@timeout(150)
async def test_crash_rust_load(ctx):
    """The kill -9 test of scripts/crash, short: roost-load (Rust) runs roost itself, 2
    publishers x 64 in flight, SIGKILL 0.5-1.5 s into the load, 3 rounds; every
    acknowledged item must be in the node's history after the restart."""
    await asyncio.to_thread(logship.build)
    users = [f"crash{i}" for i in range(3)]
    for u in users:
        await asyncio.to_thread(ctx.server.register, u, PASSWORD)
    orig = ctx.roost
    orig.stop()
    log = os.path.join(ctx.tmp, "crash-rust.log")
    mine = RoostProcess(ctx.roost_bin, ctx.env, os.path.join(ctx.tmp, "crash-rust-data"), log,
                        keepalive=ctx.keepalive, extra_args=LOAD_ARGS, log_filter=ctx.roost_log_filter)
    os.makedirs(mine.data_dir, exist_ok=True)
    argv = [logship.LOAD, "--server", f"127.0.0.1:{ctx.env['C2S_PORT']}", logship.PLAIN,
            "--domain", ctx.domain, "--service", ctx.service, "--users-prefix", "crash",
            "--users", "3", "--password", PASSWORD, "--size", "128",
            "crash", "--publishers", "2", "--window", "64", "--rounds", "3",
            "--kill-min", "0.5", "--kill-max", "1.5", "--roost-log", log, "--", *mine.argv()]
    try:
        p = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(p.communicate(), 120)
        except asyncio.TimeoutError:
            p.kill()
            out, err = await p.communicate()
        for line in err.decode(errors="replace").splitlines():
            note(line)
        check(p.returncode == 0, f"roost-load crash failed (rc {p.returncode}): "
                                 f"{err.decode(errors='replace')[-1500:]}\n---- {log} (tail)\n"
                                 f"{mine.log_tail(20)}")
        r = json.loads(out.decode().strip().splitlines()[-1])
        check(r["lost"] == 0 and all(x["acked"] > 0 for x in r["rounds"]), f"crash rounds: {r['rounds']}")
        note(f"crash (Rust load) {ctx.kind}: {len(r['rounds'])} rounds, {r['acked']} acked, "
             f"{r['acked_per_s_mean']:.0f} acked/s mean, 0 lost")
    finally:
        orig.start()
        await ctx.wait_ready(30)


@timeout(120)
async def test_server_restart_under_load(ctx):
    """The XMPP server restarts under publish load; roost reconnects; nothing acked is lost."""
    async with own_roost(ctx, "srvrestart", LOAD_ARGS):
        alice, bob = await raw(ctx, "alice"), await raw(ctx, "bob")
        node = f"srv-{random.randrange(1 << 30)}"
        try:
            await setup_node(ctx, alice, node)
            loads = [PublishLoad(alice, ctx.service, node, "a", INFLIGHT),
                     PublishLoad(bob, ctx.service, node, "b", INFLIGHT)]
            tasks = await run_load(loads)
            await asyncio.sleep(1.0)
            await ctx.restart_server()
            await stop_load(loads, tasks, grace=0)
        finally:
            await alice.close()
            await bob.close()
        acked = loads[0].acked | loads[1].acked
        check(acked, "nothing was acknowledged before the restart")
        await ctx.wait_ready(30)
        alice, bob = await raw(ctx, "alice"), await raw(ctx, "bob")
        try:
            await check_items(ctx, alice, node, acked, f"{ctx.kind} restart under load")
            await check_node(ctx, alice, node)
            # The service works afterwards: a fresh publish reaches a fresh subscriber.
            bob.send_raw("<presence/>")
            await ok(bob, ctx, f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{node}' "
                               f"jid='{bob.jid}'/></pubsub>", what="subscribe bob")
            await ok(alice, ctx, publish_body(node, "after-restart"), what="publish after restart")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if any(i.get("id") == "after-restart" for m in bob.messages
                       for i in m.iter("{http://jabber.org/protocol/pubsub#event}item")):
                    break
                await asyncio.sleep(0.05)
            else:
                check(False, "no notification for the publish after the restart")
        finally:
            await alice.close()
            await bob.close()


# ------------------------------------------------------------------- full disk

def fill(path):
    """Write until the filesystem is full; returns the bytes written."""
    n = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError:
                break
        for size in (4096, 512, 1):
            while True:
                try:
                    n += f.write(b"\0" * size)
                except OSError:
                    break
    return n


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@timeout(90)
async def test_disk_full_fails_wait_and_recovers(ctx):
    """sled hits ENOSPC: requests fail with internal-server-error (wait), roost stays up and
    serves again once the disk has room, with exactly what it acknowledged."""
    mnt = os.path.join(ctx.tmp, "tmpfs")
    os.makedirs(mnt, exist_ok=True)
    # Room for the data directory's fixed-size commit log (16 MiB) and sled's first files.
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"cannot mount a tmpfs for the disk-full test (needs root): {p.stderr.strip()}")
    filler = os.path.join(mnt, "filler")
    try:
        async with own_roost(ctx, "diskfull", LOAD_ARGS, data_dir=os.path.join(mnt, "data")) as roost:
            alice = await raw(ctx, "alice")
            try:
                node = f"full-{random.randrange(1 << 30)}"
                await setup_node(ctx, alice, node)
                acked, failed = set(), set()
                await ok(alice, ctx, publish_body(node, "before"), what="publish before full")
                acked.add("before")
                note(f"filler took {fill(filler)} bytes")
                payload = "<blob xmlns='urn:roost:fill'>" + "x" * 8000 + "</blob>"
                first_err = None
                for i in range(400):
                    r = await alice.iq(publish_body(node, f"f{i}", payload), ctx.service)
                    if r.get("type") == "result":
                        acked.add(f"f{i}")
                        continue
                    failed.add(f"f{i}")
                    first_err = error_of(r)
                    break
                check(first_err == ("wait", "internal-server-error"),
                      f"publish on a full disk: expected wait/internal-server-error, got {first_err} "
                      f"after {len(acked)} acks")
                # Still full: still failing, never acknowledged, and the process stays up.
                for i in range(5):
                    r = await alice.iq(publish_body(node, f"g{i}", payload), ctx.service)
                    check(error_of(r) == ("wait", "internal-server-error"),
                          f"publish while still full: {ET.tostring(r, encoding='unicode')[:300]}")
                    failed.add(f"g{i}")
                check(roost.alive(), "roost died on a full disk")
                note(f"disk full after {len(acked)} acked publishes; {len(failed)} refused with wait; "
                     f"rss {rss_kib(roost.proc.pid)} KiB")
                os.unlink(filler)
                deadline = time.monotonic() + 15
                while True:
                    r = await alice.iq(publish_body(node, "after"), ctx.service)
                    if r.get("type") == "result":
                        acked.add("after")
                        break
                    check(error_of(r) == ("wait", "internal-server-error"),
                          f"publish after space returned: {ET.tostring(r, encoding='unicode')[:300]}")
                    check(time.monotonic() < deadline, "roost did not recover within 15s of space returning")
                    await asyncio.sleep(0.3)
                stored = await check_items(ctx, alice, node, acked, "disk full then freed")
                await check_node(ctx, alice, node)
                # What memory says is what the disk says: a restart changes nothing.
                r = await ok(alice, ctx, items_body(node), "get", "items before restart")
                before = item_ids(r)
                roost.stop()
                roost.start()
                await ctx.wait_ready(30)
                r = await ok(alice, ctx, items_body(node), "get", "items after restart")
                check(item_ids(r) == before, f"items differ after a restart: {len(before)} vs {len(item_ids(r))}")
                note(f"disk full: {len(acked)} acked all stored, {stored - len(acked)} refused ones stored anyway")
            finally:
                await alice.close()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(filler)
        subprocess.run(["umount", "-l", mnt], capture_output=True)


# ---------------------------------------------------------------- quotas, hostile input

@timeout(60)
async def test_quotas_end_to_end(ctx):
    """Node cap, payload cap and request rate give their XEP-0060 / RFC 6120 errors."""
    args = ["--max-nodes-per-jid", "3", "--max-payload-size", "1024",
            "--rate-limit", "20", "--rate-burst", "40"]
    async with own_roost(ctx, "quota", args):
        alice, bob = await raw(ctx, "alice"), await raw(ctx, "bob")
        try:
            nodes = [f"q{i}-{random.randrange(1 << 30)}" for i in range(4)]
            for n in nodes[:3]:
                await ok(alice, ctx, f"<pubsub xmlns='{NS_PUBSUB}'><create node='{n}'/></pubsub>",
                         what=f"create {n}")
            r = await alice.iq(f"<pubsub xmlns='{NS_PUBSUB}'><create node='{nodes[3]}'/></pubsub>", ctx.service)
            check(error_of(r) == ("cancel", "policy-violation"), f"4th node: {error_of(r)}")
            r = await alice.iq(publish_body(nodes[0], "big", "<b xmlns='urn:x'>" + "y" * 2048 + "</b>"),
                               ctx.service)
            err = r.find("{jabber:client}error")
            check(error_of(r) == ("modify", "not-acceptable")
                  and err.find("{http://jabber.org/protocol/pubsub#errors}payload-too-big") is not None,
                  f"payload over the cap: {ET.tostring(r, encoding='unicode')[:300]}")
            await ok(alice, ctx, publish_body(nodes[0], "small"), what="publish under the cap")
            # 100 pings at once from bob: the burst (40) passes, the rest are refused with wait.
            futs = [bob.send_iq_nowait("<ping xmlns='urn:xmpp:ping'/>", ctx.service, "get") for _ in range(100)]
            await bob.drain()
            replies = await asyncio.wait_for(asyncio.gather(*futs), 20)
            conds = [error_of(r) for r in replies]
            okc = sum(1 for r in replies if r.get("type") == "result")
            limited = conds.count(("wait", "resource-constraint"))
            note(f"rate 20/s burst 40: {okc} of 100 pings answered, {limited} resource-constraint")
            check(40 <= okc < 100 and okc + limited == 100, f"rate limit: {okc} ok, {limited} limited, {conds[:3]}")
            # alice is not affected by bob's flood.
            await ok(alice, ctx, "<ping xmlns='urn:xmpp:ping'/>", "get", "alice ping")
        finally:
            await alice.close()
            await bob.close()


async def _hostile(ctx, roost, c, node, payload, label):
    """Send one publish with `payload`; returns the reply, or None if the server cut us off."""
    try:
        fut = c.send_iq_nowait(publish_body(node, label, payload), ctx.service)
        await c.drain()
        r = await asyncio.wait_for(fut, 30)
    except (LinkDown, OSError, asyncio.TimeoutError) as e:
        note(f"{label}: {ctx.kind} closed the client's stream ({type(e).__name__}: {e})")
        return None
    note(f"{label}: reply {r.get('type')} {error_of(r)}")
    return r


DEEP_EJABBERD = 1000


@timeout(90)
async def test_hostile_payloads(ctx):
    """10 000 nested elements and a 10 MB payload: refused (by the server or by roost), roost
    stays up with bounded memory and keeps serving."""
    async with own_roost(ctx, "hostile", []) as roost:
        alice = await raw(ctx, "alice")
        node = f"h-{random.randrange(1 << 30)}"
        try:
            await ok(alice, ctx, f"<pubsub xmlns='{NS_PUBSUB}'><create node='{node}'/></pubsub>", what="create")
        finally:
            await alice.close()
        rss0 = rss_kib(roost.proc.pid)
        # ejabberd 23.01 itself dies (beam.smp segfaults, a stack overflow in its XML parser)
        # on a 10 000-deep stanza from a c2s client, so it gets a depth it survives; both
        # are far beyond roost's limit of 128 levels.
        depth = 10000 if ctx.kind == "prosody" else DEEP_EJABBERD
        cases = [
            ("deep", "<a xmlns='urn:x'>" + "<a>" * depth + "</a>" * depth + "</a>"),
            ("huge", "<b xmlns='urn:x'>" + "z" * (10 * 1024 * 1024) + "</b>"),
            ("wide", "<c xmlns='urn:x'>" + "<d/>" * 100000 + "</c>"),
        ]
        for label, payload in cases:
            c = await raw(ctx, "alice")
            try:
                r = await _hostile(ctx, roost, c, node, payload, label)
                check(r is None or r.get("type") == "error", f"{label} payload was accepted")
                if label == "deep":
                    check(r is not None and error_of(r) == ("modify", "policy-violation"),
                          f"{depth}-deep payload: expected roost's policy-violation, got "
                          f"{None if r is None else error_of(r)}")
            finally:
                await c.close()
            check(roost.alive(), f"roost died on the {label} payload")
        rss1 = rss_kib(roost.proc.pid)
        note(f"hostile payloads: roost rss {rss0} -> {rss1} KiB")
        check(rss1 - rss0 < 200 * 1024, f"roost rss grew from {rss0} to {rss1} KiB")
        c = await raw(ctx, "alice")
        try:
            await ok(c, ctx, publish_body(node, "fine"), what="publish after hostile input")
        finally:
            await c.close()
