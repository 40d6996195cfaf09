"""Helpers for the tests that run the example programs (test_logs.py, federation.py,
test_tls.py, test_migrate.py): where the programs are, the test log's lines, the
roost-log-ship / roost-log-sink processes, their state files, bounded waits."""

import asyncio
import os
import signal
import subprocess
import time

from harness import PASSWORD, check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
# $ROOST_LOG_BIN: a directory with other builds of the programs (then nothing is built).
BIN = os.environ.get("ROOST_LOG_BIN") or os.path.join(EXAMPLES, "target", "release")
SHIP = os.path.join(BIN, "roost-log-ship")
SINK = os.path.join(BIN, "roost-log-sink")
PUBLISH = os.path.join(BIN, "roost-publish")
SUBSCRIBE = os.path.join(BIN, "roost-subscribe")
LOAD = os.path.join(BIN, "roost-load")
MIGRATE = os.path.join(BIN, "roost-migrate")
# The test servers speak plaintext c2s; the programs use TLS unless told otherwise.
PLAIN = "--insecure-plaintext"
_built = False


def build():
    """Builds the example programs once per run (cargo does nothing when they are up to
    date; scripts/test builds them in its own step, so the e2e budget never pays a cold
    build)."""
    global _built
    if not _built and not os.environ.get("ROOST_LOG_BIN"):
        subprocess.run(["cargo", "build", "--release", "--bins"],
                       cwd=EXAMPLES, check=True, timeout=900,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _built = True


def lines(start, n, rnd):
    """Lines `start`..`start + n` of the test log: mostly XML-hostile text, with empty
    lines, CRs, invalid UTF-8 and control bytes, and every 5000th line 20 000 bytes long
    (cut into several units by the shipper)."""
    out = []
    for k in range(start, start + n):
        r = rnd.random()
        if r < 0.01:
            out.append(b"")
        elif r < 0.02:
            out.append(b"crlf line %d\r" % k)
        elif r < 0.03:
            out.append(b"bytes \xff\xfe\x00\x01 %d" % k)
        elif k % 5000 == 1:
            out.append(b"long %d " % k + b"y" * 20000)
        else:
            out.append(("line %06d <tag a='1'> & \"q\" \t caf\u00e9 \u2603 %s" % (k, "z" * rnd.randrange(0, 80)))
                       .encode())
    return b"".join(l + b"\n" for l in out)


class Proc:
    """One of the programs, restartable; each run logs to DIR/NAME.RUN.log."""

    def __init__(self, dir_, name, argv, rust_log="warn"):
        self.dir, self.name, self.argv, self.rust_log = dir_, name, argv, rust_log
        self.runs = 0
        self.p = None

    def start(self):
        self.runs += 1
        log = open(os.path.join(self.dir, f"{self.name}.{self.runs}.log"), "wb")
        env = dict(os.environ, ROOST_PASSWORD=PASSWORD, RUST_LOG=self.rust_log)
        self.p = subprocess.Popen(self.argv, stdout=log, stderr=log, env=env, cwd=self.dir,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def kill(self):
        """SIGKILL: a crash, nothing is saved on the way out."""
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait(10)
        self.p = None

    def stop(self):
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.p = None

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def log_tail(self, n=2000):
        try:
            with open(os.path.join(self.dir, f"{self.name}.{self.runs}.log"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


def read_state(path):
    """A key=value state file of the programs ({} when there is none yet)."""
    try:
        with open(path) as f:
            return dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l)
    except FileNotFoundError:
        return {}


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


async def until(cond, secs, what, diag=lambda: "", alive=()):
    """Waits (polling) until `cond()`; fails after `secs` with `what` and `diag()`, or at
    once when one of the `alive` processes has exited."""
    deadline = time.monotonic() + secs
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {secs}s\n{diag()}")
        for p in alive:
            check(p.alive(), f"{p.name} exited: {p.log_tail()}")
        await asyncio.sleep(0.1)


def compare(got, want, what="sink output"):
    """Fails with the first differing byte unless `got == want`."""
    if got == want:
        return
    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
    raise AssertionError(f"{what} differs from the source at byte {i} (sizes {len(got)} vs "
                         f"{len(want)}): got {got[max(0, i - 80):i + 80]!r} want "
                         f"{bytes(want[max(0, i - 80):i + 80])!r}")
