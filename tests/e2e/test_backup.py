"""Online backup (SIGUSR1) under publish load, restored into a fresh data dir; and the offline
tools (roost check / export / import) on the backup, and refusing a data dir in use.

The load is test_durability's: two raw c2s sessions (alice, bob) with 64 publishes in flight
each to one node.  The backup must hold every item acknowledged before the signal, and be a
state the service was in: each publisher's stored items are a prefix of what it sent (its
publishes are handled in order), with nothing it did not send.
"""

import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import time

from harness import check, timeout
from loadclient import PublishLoad, item_ids, items_body
from test_durability import (INFLIGHT, LOAD_ARGS, check_node, note, ok, own_roost, raw,
                             run_load, setup_node, stop_load)


def tool(ctx, *args, stdin=None, stdout=None):
    """Runs `roost ARGS` (an offline tool) and returns (exit code, stderr)."""
    p = subprocess.run([ctx.roost_bin, *args], stdin=stdin, stdout=stdout or subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stderr.decode("utf-8", "replace")


async def wait_backup(roost, mark, secs=30):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        m = re.search(r"backup taken; restore it by starting Roost with --data-dir (\S+)",
                      roost.log_since(mark))
        if m:
            return m.group(1)
        check("backup failed" not in roost.log_since(mark), f"backup failed:\n{roost.log_since(mark)}")
        await asyncio.sleep(0.1)
    check(False, f"no backup within {secs}s:\n{roost.log_since(mark)[-2000:]}")


def prefix_of(ids, prefix):
    """The n such that the ids starting with `prefix-` are exactly prefix-1 … prefix-n."""
    nums = sorted(int(i.rsplit("-", 1)[1]) for i in ids if i.startswith(prefix + "-"))
    check(nums == list(range(1, len(nums) + 1)),
          f"items of {prefix} are not a prefix of what it sent: gaps in {nums[:10]}…{nums[-10:]}")
    return len(nums)


@timeout(120)
async def test_online_backup_under_load(ctx):
    node = f"backup-{random.randrange(1 << 30)}"
    restored = os.path.join(ctx.tmp, f"restored-{node}")
    async with own_roost(ctx, "backup", LOAD_ARGS) as roost:
        alice, bob = await raw(ctx, "alice"), await raw(ctx, "bob")
        try:
            await setup_node(ctx, alice, node)
            loads = [PublishLoad(alice, ctx.service, node, "a", INFLIGHT),
                     PublishLoad(bob, ctx.service, node, "b", INFLIGHT)]
            tasks = await run_load(loads)
            await asyncio.sleep(1.0)
            acked_before = loads[0].acked | loads[1].acked
            mark = roost.log_mark()
            os.kill(roost.proc.pid, signal.SIGUSR1)
            backup = await wait_backup(roost, mark)
            await asyncio.sleep(0.5)  # the load goes on after the backup
            await stop_load(loads, tasks)
            sent = {f"a-{n}" for n in range(1, loads[0].sent + 1)} | \
                   {f"b-{n}" for n in range(1, loads[1].sent + 1)}
            acked_after = loads[0].acked | loads[1].acked
            check(acked_before, f"nothing acknowledged before the backup: {loads[0].errors}")
            check(len(acked_after) > len(acked_before), "the service stopped serving after the backup")

            # Offline tools refuse the data dir the running Roost holds, in one line.
            for args in (["check"], ["export", "--out", os.devnull], ["import"]):
                rc, err = tool(ctx, *args, "--data-dir", roost.data_dir, stdin=subprocess.DEVNULL)
                check(rc == 2 and f"is in use by a running Roost (pid {roost.proc.pid})" in err
                      and len(err.strip().splitlines()) == 1,
                      f"roost {args[0]} on a held data dir: rc={rc} {err!r}")
        finally:
            await alice.close()
            await bob.close()

    # Restored into a fresh data dir: sound, and it exports and imports.
    shutil.copytree(backup, restored)
    rc, err = tool(ctx, "check", "--data-dir", restored)
    check(rc == 0 and "is sound" in err, f"roost check on the backup: rc={rc} {err}")
    dump = os.path.join(ctx.tmp, f"{node}.xml")
    rc, err = tool(ctx, "export", "--data-dir", restored, "--out", dump)
    check(rc == 0, f"roost export on the backup: rc={rc} {err}")
    rc, err = tool(ctx, "import", "--data-dir", restored, dump)
    check(rc == 2 and "is not empty" in err, f"import into a non-empty dir: rc={rc} {err}")
    reimported = restored + "-reimported"
    rc, err = tool(ctx, "import", "--data-dir", reimported, dump)
    check(rc == 0, f"roost import: rc={rc} {err}")
    with open(dump + ".again", "wb") as out:
        rc, err = tool(ctx, "export", "--data-dir", reimported, stdout=out)
    check(rc == 0, f"roost export of the import: rc={rc} {err}")
    with open(dump, "rb") as a, open(dump + ".again", "rb") as b:
        check(a.read() == b.read(), "export → import → export changed the dump")

    # Roost started on the restored backup serves the state as of the signal.
    async with own_roost(ctx, "restored", LOAD_ARGS, data_dir=restored):
        alice = await raw(ctx, "alice")
        try:
            r = await ok(alice, ctx, items_body(node), "get", "retrieve items")
            stored = item_ids(r)
            check(len(stored) == len(set(stored)), "an item is stored twice")
            stored = set(stored)
            lost = sorted(acked_before - stored)
            check(not lost, f"{len(lost)} items acknowledged before the backup are missing: {lost[:5]}")
            check(stored <= sent, f"items never sent: {sorted(stored - sent)[:5]}")
            na, nb = prefix_of(stored, "a"), prefix_of(stored, "b")
            await check_node(ctx, alice, node)
            note(f"backup {ctx.kind}: {len(acked_before)} acked before SIGUSR1, backup holds "
                 f"{na} + {nb} items, {len(acked_after)} acked by the end")
        finally:
            await alice.close()
