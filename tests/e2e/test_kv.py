"""roost-kv: a node as a key/value store (Zeek Broker's master/clone stores).

alice creates the store (bob and carol may write), bob and carol each run a clone, alice
a watcher and a writer. Writes come from the writer (`write`, stdin lines), the one-shot
commands and both clones' stdin, with keys and values that need escaping. The clones must
hold exactly the expected map (compared through their dump files, triggered by a `dump`
line and by SIGUSR1) after: the first writes; carol's clone crashing (SIGKILL) while keys
are written and deleted, then coming back (its catch-up must print exactly the changes it
missed, deletions included); a catch-up of several pages while the items it continues
from are rewritten; Roost stopping while writes are sent (the writer and carol's clone
retry) and coming back. The watcher's lines, replayed, must give the same map, and
the clones' dumps on exit too. Every wait is for a condition, with a bound.
"""

import asyncio
import json
import os
import signal
import subprocess

from harness import PASSWORD, check, timeout
from logship import BIN, PLAIN, Proc, build, until

KV = os.path.join(BIN, "roost-kv")


def esc(s, key=False):
    """The escaping of roost-kv's line protocol (kv::escape)."""
    out = []
    for c in s:
        if c == "\\":
            out.append("\\\\")
        elif c == "\t":
            out.append("\\t")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == " " and key:
            out.append("\\x20")
        elif ord(c) < 0x20 or c == "\x7f":
            out.append("\\x%02x" % ord(c))
        else:
            out.append(c)
    return "".join(out)


def put(k, v):
    return f"put {esc(k, True)} {esc(v)}"


def delete(k):
    return f"del {esc(k, True)}"


def replay(lines, m=None):
    """Applies `put`/`del` lines (as roost-kv prints them) to a map."""
    m = dict(m or {})
    for line in lines:
        verb, _, rest = line.partition(" ")
        if verb == "put":
            k, _, v = rest.partition(" ")
            m[unesc(k)] = unesc(v)
        elif verb == "del":
            m.pop(unesc(rest), None)
    return m


def unesc(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = s[i + 1]
        if n == "x":
            out.append(chr(int(s[i + 2:i + 4], 16)))
            i += 4
        else:
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[n])
            i += 2
    return "".join(out)


VALUES = ["plain", "  spaces around  ", "<tag a='1'> & \"q\"", "caf\u00e9 \u2603", "two\nlines",
          "tab\there", "back\\slash", ""]


class Clone(Proc):
    """A long-running roost-kv with stdin open and stdout in NAME.RUN.out."""

    def start(self):
        self.runs += 1
        base = os.path.join(self.dir, f"{self.name}.{self.runs}")
        log = open(base + ".log", "wb")
        self.out_path = base + ".out"
        out = open(self.out_path, "wb")
        env = dict(os.environ, ROOST_PASSWORD=PASSWORD, RUST_LOG=self.rust_log)
        self.p = subprocess.Popen(self.argv, stdout=out, stderr=log, env=env, cwd=self.dir,
                                  stdin=subprocess.PIPE, start_new_session=True)
        log.close()
        out.close()

    def send(self, *lines):
        self.p.stdin.write("".join(l + "\n" for l in lines).encode())
        self.p.stdin.flush()

    def out_lines(self):
        with open(self.out_path, encoding="utf-8") as f:
            return f.read().splitlines()


@timeout(600)
async def test_clones_converge(ctx):
    # The budget covers a cold release build of examples/ when run alone.
    await asyncio.to_thread(build)
    await asyncio.wait_for(scenario(ctx), 90)


async def scenario(ctx):
    tmp = ctx.tmp
    common = ["--server", f"127.0.0.1:{ctx.env['C2S_PORT']}", PLAIN, "--service", ctx.service,
              "--node", "store"]

    def argv(user, *a):
        return [KV, "--jid", ctx.jid(user), *common, *a]

    async def kv(user, *a, stdin=""):
        env = dict(os.environ, ROOST_PASSWORD=PASSWORD)
        return await asyncio.to_thread(subprocess.run, argv(user, *a), input=stdin.encode(),
                                       capture_output=True, env=env, timeout=60)

    async def ok(user, *a, stdin=""):
        r = await kv(user, *a, stdin=stdin)
        check(r.returncode == 0, f"roost-kv {' '.join(a)} exited {r.returncode}: "
                                 f"{r.stderr.decode(errors='replace')}")
        return r.stdout.decode()

    files = {u: (os.path.join(tmp, f"{u}.json"), os.path.join(tmp, f"{u}.dump")) for u in ("bob", "carol")}
    # bob's clone also reads the whole history every 5 s (--resync).
    clones = {u: Clone(tmp, f"clone-{u}", argv(u, "clone", "--state", files[u][0], "--dump", files[u][1],
                                                *(["--resync", "5"] if u == "bob" else [])),
                       rust_log="info") for u in ("bob", "carol")}
    watch = Clone(tmp, "watch", argv("alice", "watch"))
    everyone = list(clones.values()) + [watch]
    expected = {}

    def running():
        """The programs that should be running (not the one killed on purpose)."""
        return [c for c in everyone if c.p is not None]

    async def dump(u, how):
        """The map clone `u` holds, through its dump file."""
        path = files[u][1]
        if os.path.exists(path):
            os.remove(path)
        if how == "line":
            clones[u].send("dump")
        else:
            clones[u].p.send_signal(signal.SIGUSR1)
        await until(lambda: os.path.exists(path), 10, f"{u}'s clone wrote no dump", alive=running())
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    async def converged(what, users=("bob", "carol")):
        for u in users:
            got = None
            for _ in range(100):
                got = await dump(u, "line" if u == "bob" else "signal")
                if got == expected:
                    break
                await asyncio.sleep(0.2)
            check(got == expected, f"{what}: {u}'s clone holds {got}, expected {expected}\n"
                                   f"log: {clones[u].log_tail()}")

    async def write(*lines):
        """The writer: alice's `roost-kv write`, all lines acknowledged."""
        await ok("alice", "write", stdin="".join(l + "\n" for l in lines))

    try:
        await ok("alice", "create", "--writer", ctx.jid("bob"), "--writer", ctx.jid("carol"))
        # A second create only configures the node again.
        await ok("alice", "create")
        r = await kv("bob", "create")
        check(r.returncode == 1 and b"only its owner" in r.stderr, f"bob's create: {r}")
        for c in everyone:
            c.start()
        await until(lambda: all("roost-kv: caught up" in clones[u].log_tail() for u in clones), 20,
                    "the clones did not catch up", alive=running())

        # Round 1: every kind of writer.
        lines = []
        for i in range(20):
            k, v = f"k{i:02}", VALUES[i % len(VALUES)]
            lines.append(put(k, v))
            expected[k] = v
        lines += [delete("k03"), put("k04", "again"), put("key with spaces", "x")]
        del expected["k03"]
        expected["k04"] = "again"
        expected["key with spaces"] = "x"
        await write(*lines)
        await ok("alice", "put", "one shot", "a\nb")
        expected["one shot"] = "a\nb"
        await ok("bob", "del", "k05")
        del expected["k05"]
        await ok("bob", "del", "never-set")          # not an error
        check(await ok("carol", "get", "k02") == VALUES[2] + "\n", "get k02")
        check((await kv("carol", "get", "k03")).returncode == 3, "get of a deleted key: exit 3")
        clones["bob"].send(put("from bob", "b\\1"), "put bad\\q line", delete("k06"))
        clones["carol"].send(put("from carol", "c"))
        expected.update({"from bob": "b\\1", "from carol": "c"})
        del expected["k06"]
        await converged("after the first writes")

        # Round 2: carol's clone crashes; keys are written and deleted meanwhile.
        await asyncio.sleep(0.5)                     # its state file is saved every 0.2 s
        clones["carol"].kill()
        with open(files["carol"][0], encoding="utf-8") as f:
            before = json.load(f)
        check(before == expected, f"carol's state file at the crash: {before}")
        await write(put("k07", "changed"), delete("k08"), delete("k09"), put("new 1", "n1"),
                    put("k01", VALUES[1]),       # rewritten, same value: no change
                    put("new 2", "n2"))
        clones["bob"].send(put("k10", "by bob"), delete("k11"))
        expected.update({"k07": "changed", "new 1": "n1", "new 2": "n2", "k10": "by bob"})
        for k in ("k08", "k09", "k11"):
            del expected[k]
        await converged("while carol is down", users=("bob",))
        clones["carol"].start()
        await converged("after carol's clone came back")
        want = sorted(k for k in expected.keys() | before.keys() if before.get(k) != expected.get(k))
        printed = clones["carol"].out_lines()
        check([l.split(" ")[1] for l in printed] == [esc(k, True) for k in want],
              f"carol's clone printed {printed} on catching up; expected changes of {want}")
        check(replay(printed, before) == expected, f"carol's printed changes: {printed}")

        # Round 3: a catch-up of several pages (250 items each) while the item each page
        # continues from is being rewritten or deleted. The history is the keys in the order
        # of their last write; the churn rewrites (or deletes) whichever item is at the end
        # of the first page, over and over, so "after the last item read" must not be
        # trusted blindly.
        clones["carol"].kill()
        bulk = [f"bulk {i:03}" for i in range(600)]
        await write(*(put(k, f"v1 {k}") for k in bulk))
        expected.update({k: f"v1 {k}" for k in bulk})
        first = 249 - (len(expected) - len(bulk))        # the bulk key at the end of page 1
        churn = []
        for n, k in enumerate(bulk[first:first + 300]):
            if n % 10 == 9:
                churn.append(delete(k))
                del expected[k]
            else:
                churn.append(put(k, f"v2 {k}"))
                expected[k] = f"v2 {k}"
        churning = asyncio.ensure_future(write(*churn))
        clones["carol"].start()
        await churning
        await converged("after a catch-up under churn")
        rereads = [l for l in clones["carol"].log_tail(100000).splitlines() if "caught up" in l]
        print(f"  carol's catch-up under churn: {rereads}")

        # Round 4: Roost stops while the writer and carol's clone write; both retry.
        ctx.roost.stop()
        writer = asyncio.ensure_future(write(put("r1", "during"), delete("k12"), put("k13", "x")))
        clones["carol"].send(put("r2", "carol during"))
        expected.update({"r1": "during", "k13": "x", "r2": "carol during"})
        del expected["k12"]
        await asyncio.sleep(1.5)
        check(not writer.done(), "the writer finished while Roost was down")
        ctx.roost.start()
        await ctx.wait_ready(30)
        await writer
        await write(put("r3", "after"), delete("k14"))
        expected["r3"] = "after"
        del expected["k14"]
        await converged("after the Roost restart")

        # carol's write found the service away: once it was back, her clone caught up.
        check("the service was away; catching up" in clones["carol"].log_tail(1 << 20),
              "carol's clone did not catch up after the service was back")
        # bob's clone caught up on start and every 5 s besides.
        def passes():
            return [l for l in clones["bob"].log_tail(1 << 20).splitlines()
                    if l.startswith("roost-kv: caught up")]
        await until(lambda: len(passes()) >= 3, 15, "bob's clone did not catch up every 5 s",
                    lambda: "\n".join(passes()), alive=running())
        # Nothing was lost, so once in step the copy never needed a correction: the
        # notifications and the history read meanwhile agree.
        check(all(" 0 corrected" in l for l in passes()[1:]), f"bob's catch-ups: {passes()}")
        # The watcher saw every change, in an order that gives the same map.
        check(replay(watch.out_lines()) == expected, f"the watcher's lines give {replay(watch.out_lines())}")
        # SIGTERM: the clones dump on the way out, and exit 0.
        for u, c in clones.items():
            os.remove(files[u][1])
            c.p.send_signal(signal.SIGTERM)
            check(c.p.wait(10) == 0, f"{u}'s clone exited {c.p.returncode}: {c.log_tail()}")
            with open(files[u][1], encoding="utf-8") as f:
                check(json.load(f) == expected, f"{u}'s dump on exit")
    finally:
        for c in everyone:
            c.stop()
