"""Log distribution: roost-log-ship follows a file, roost-log-sink collects it, exactly.

20 000 lines (escaping, tabs, CR, invalid UTF-8, empty and over-long lines) are shipped
while the log is rotated twice (once under the running shipper, once while it is down,
logrotate-style: app.log.1 -> app.log.2, app.log -> app.log.1), the sink is killed twice,
the shipper once, and Roost is restarted; the sink's file must equal the source byte for
byte. Every step waits for a condition (with a bound), not for time to pass, so the
scenario is the same on every run.

The programs are built by scripts/test's "examples" step; `build()` here only makes sure
they are up to date (cargo does nothing when they are).
"""

import asyncio
import os
import random

from harness import timeout
from logship import PLAIN, SHIP, SINK, Proc, build, compare, lines, read_state, size, until

MAX_UNIT = 8 * 1024  # roost_examples::MAX_UNIT: longer lines travel as several units


def units(data):
    """How many units (numbers) the shipper gives `data`: one per line, more for long ones."""
    return sum(max(1, -(-len(l) // MAX_UNIT)) for l in data.split(b"\n")[:-1])


# The budget covers a cold release build of examples/ when run alone; the scenario
# itself gets 150 s (it takes 20-40 s; the waits inside are bounded separately).
@timeout(600)
async def test_ship_and_sink_survive_restarts(ctx):
    await asyncio.to_thread(build)
    await asyncio.wait_for(scenario(ctx), 150)


async def scenario(ctx):
    rnd = random.Random(20_000)
    tmp = ctx.tmp
    log = os.path.join(tmp, "app.log")
    out = os.path.join(tmp, "collected.log")
    ship_state = os.path.join(tmp, "ship.state")
    server = f"127.0.0.1:{ctx.env['C2S_PORT']}"
    common = ["--server", server, PLAIN, "--service", ctx.service, "--node", "logs"]
    ship = Proc(tmp, "ship", [SHIP, "--jid", ctx.jid("alice"), *common,
                              "--create", "--id", "app", "--state", ship_state, log])
    sink = Proc(tmp, "sink", [SINK, "--jid", ctx.jid("bob"), *common, "--out", out])
    source = bytearray()
    written = 0

    def append(n):
        nonlocal written
        data = lines(written, n, rnd)
        with open(log, "ab") as f:
            f.write(data)
        source.extend(data)
        written += n

    def ino(path):
        return str(os.stat(path).st_ino)

    def shipped():
        """Units the shipper has acknowledged (its durable state)."""
        return int(read_state(ship_state).get("next", "1")) - 1

    def diag():
        return (f"sink has {size(out)} of {len(source)} bytes; shipper state {read_state(ship_state)} "
                f"({units(bytes(source))} units written)\nship log: {ship.log_tail()}\nsink log: {sink.log_tail()}")

    async def wait(cond, secs, what, procs=(ship,)):
        await until(cond, secs, what, diag, procs)

    try:
        append(3000)
        ship.start()
        sink.start()
        await wait(lambda: size(out) > 0, 30, "sink received nothing")
        append(3000)
        sink.kill()                       # disconnect 1: catches up from the history
        append(3000)
        await wait(lambda: shipped() >= units(bytes(source)) // 2, 30, "shipper made no progress")
        sink.start()
        # Rotation 1, under the running shipper: it ships the old file's rest, then moves on.
        os.rename(log, log + ".1")
        append(2000)
        await wait(lambda: read_state(ship_state).get("ino") == ino(log), 30,
                   "shipper did not move on to the new file")
        # Rotation 2, while the shipper is down, with lines it has not read yet in the old
        # file: it must find that file again (now app.log.1) and ship its rest first.
        ship.kill()
        append(1000)
        os.rename(log + ".1", log + ".2")
        os.rename(log, log + ".1")
        append(1000)
        ship.start()
        # Roost restarts under both. The pause makes the publishes of the downtime fail
        # (service-unavailable from the server), so they must be retried.
        ctx.roost.stop()
        append(1000)
        await asyncio.sleep(1.0)
        ctx.roost.start()
        await ctx.wait_ready(30)
        append(2000)
        await wait(lambda: size(out) >= len(source) // 2, 30, "sink did not progress after the restart",
                   (ship, sink))
        sink.kill()                       # disconnect 2
        append(4000)
        sink.start()
        assert written == 20_000, f"wrote {written} lines"
        total = units(bytes(source))
        await wait(lambda: shipped() >= total, 60, "shipper did not get every line acknowledged",
                   (ship, sink))
        await wait(lambda: size(out) >= len(source), 60, "sink did not catch up", (ship, sink))
        await asyncio.sleep(1.0)          # nothing more (no duplicate) may arrive
        with open(out, "rb") as f:
            compare(f.read(), bytes(source))
        assert shipped() == total, f"shipper numbered {shipped()} units, the log has {total}"
    finally:
        sink.stop()
        ship.stop()
