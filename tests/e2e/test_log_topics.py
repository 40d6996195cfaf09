"""Logs on topics: three roost-log-ship processes publish to logs/web/nginx, logs/web/apache
and logs/db/pg on a Roost with topic hierarchies (`--hierarchy /`: the collections logs/web,
logs/db and logs are created on the way), and one roost-log-sink collects `logs`, a
collection: it finds the leaves (disco#items), subscribes for items at any depth
(XEP-0248) and catches up from each leaf's history. Every line of every shipper must
arrive exactly once and in order, in its own file (--out-dir), through the faults of
test_logs.py: the sink killed and restarted (catch-up from three histories), a shipper
killed and restarted, Roost restarted under all of them; and one leaf appears only after
the sink started (it comes live through the collection subscription).

Each wait is for a condition, with a bound; about 12 000 lines in all keep it short.
"""

import asyncio
import os
import random

from harness import timeout
from logship import PLAIN, SHIP, SINK, Proc, build, compare, lines, read_state, size, until
from test_durability import own_roost
from test_logs import units

LEAVES = {"nginx": "logs/web/nginx", "apache": "logs/web/apache", "pg": "logs/db/pg"}


@timeout(600)
async def test_one_sink_on_a_topic_collects_three_shippers(ctx):
    await asyncio.to_thread(build)
    async with own_roost(ctx, "topics", ["--hierarchy", "/"]):
        await asyncio.wait_for(scenario(ctx), 150)


async def scenario(ctx):
    rnd = random.Random(12_000)
    tmp = os.path.join(ctx.tmp, "topics")
    os.makedirs(tmp, exist_ok=True)
    out_dir = os.path.join(tmp, "collected")
    server = f"127.0.0.1:{ctx.env['C2S_PORT']}"
    common = ["--server", server, PLAIN, "--service", ctx.service]
    logs = {k: os.path.join(tmp, f"{k}.log") for k in LEAVES}
    states = {k: os.path.join(tmp, f"{k}.state") for k in LEAVES}
    ships = {k: Proc(tmp, f"ship-{k}", [SHIP, "--jid", ctx.jid("alice"), *common, "--node", node,
                                        "--create", "--id", k, "--state", states[k], logs[k]])
             for k, node in LEAVES.items()}
    sink = Proc(tmp, "sink", [SINK, "--jid", ctx.jid("bob"), *common, "--node", "logs",
                              "--out-dir", out_dir])
    source = {k: bytearray() for k in LEAVES}
    written = {k: 0 for k in LEAVES}

    def append(n, which=LEAVES):
        for k in which:
            data = lines(written[k], n, rnd)
            with open(logs[k], "ab") as f:
                f.write(data)
            source[k].extend(data)
            written[k] += n

    def out(k):
        return os.path.join(out_dir, *LEAVES[k].split("/"), f"{k}.log")

    def shipped(k):
        return int(read_state(states[k]).get("next", "1")) - 1

    def diag():
        return "\n".join(
            f"{k}: sink has {size(out(k))} of {len(source[k])} bytes; shipper state {read_state(states[k])}"
            for k in LEAVES) + f"\nsink log: {sink.log_tail()}"

    async def wait(cond, secs, what, procs=()):
        await until(cond, secs, what, diag, procs)

    everyone = tuple(ships.values())
    try:
        append(1000)
        ships["nginx"].start()
        ships["apache"].start()
        await wait(lambda: shipped("nginx") > 0 and shipped("apache") > 0, 30, "shippers made no progress")
        # The sink starts after lines were published: it catches up from both histories.
        sink.start()
        await wait(lambda: size(out("nginx")) > 0 and size(out("apache")) > 0, 30, "sink received nothing")
        # A third leaf appears under the running sink (logs/db is created on the way).
        ships["pg"].start()
        await wait(lambda: size(out("pg")) > 0, 30, "sink got nothing from the new leaf", (sink,))
        append(500)
        sink.kill()                                   # the sink crashes: catch-up from 3 leaves
        append(500)
        await wait(lambda: all(shipped(k) >= units(bytes(source[k])) // 2 for k in LEAVES), 30,
                   "shippers made no progress", everyone)
        sink.start()
        ships["apache"].kill()                        # a shipper crashes
        append(500)
        ships["apache"].start()
        # Roost restarts under all of them: publishes fail meanwhile and are retried.
        ctx.roost.stop()
        append(500)
        await asyncio.sleep(1.0)
        ctx.roost.start()
        await ctx.wait_ready(30)
        append(1000)
        for k in LEAVES:
            total = units(bytes(source[k]))
            await wait(lambda k=k, total=total: shipped(k) >= total, 60, f"shipper {k} did not finish",
                       everyone)
            await wait(lambda k=k: size(out(k)) >= len(source[k]), 60, f"sink did not catch up with {k}",
                       (sink,))
        await asyncio.sleep(1.0)                      # nothing more (no duplicate) may arrive
        for k in LEAVES:
            with open(out(k), "rb") as f:
                compare(f.read(), bytes(source[k]), f"sink output of {k}")
            assert shipped(k) == units(bytes(source[k])), f"{k}: shipper numbered {shipped(k)} units"
    finally:
        sink.stop()
        for s in ships.values():
            s.stop()
