#!/usr/bin/python3
"""Roost end-to-end tests against a real XMPP server.

    /usr/bin/python3 tests/e2e/run.py --server prosody|ejabberd [-k PATTERN] [--keep] [-v]

Expects the roost binary in $ROOST_BIN or target/debug/roost (builds nothing).
Starts a private server via scripts/<server> in a fresh temp dir, registers
alice/bob/carol (password "pw"), starts roost attached to it, waits until the
service answers disco#info, runs every `async def test_*(ctx)` from
tests/e2e/test_*.py (in file order), and always stops everything.
Last line: "N passed, M failed"; exit code 1 on any failure.
"""

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the repo
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import slixmpp  # noqa: F401
except ImportError:
    sys.exit("slixmpp not importable: run with /usr/bin/python3 (Debian python3-slixmpp)")

import harness  # noqa: E402

DEFAULT_TIMEOUT = 60
CONTEXTS = []  # for last-resort teardown


def collect(server, pattern, also=()):
    tests = []
    extra = [f"{m}.py" for m in also]
    for fn in sorted(os.listdir(HERE)) + extra:
        if fn not in extra and not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        mod = importlib.import_module(fn[:-3])
        funcs = [(name, f) for name, f in vars(mod).items()
                 if name.startswith("test_") and inspect.iscoroutinefunction(f)
                 and f.__module__ == mod.__name__]
        funcs.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        for name, f in funcs:
            servers = getattr(f, "servers", None)
            if servers and server not in servers:
                continue
            if pattern and not re.search(pattern, f"{mod.__name__}.{name}"):
                continue
            tests.append((name, f))
    return tests


async def run_all(args, tests, tmp, results):
    ctx = harness.Context(args.server, tmp, args.roost_bin, args.keepalive, args.roost_log)
    CONTEXTS.append(ctx)
    try:
        try:
            print(f"# setup: {args.server} in {tmp}", flush=True)
            await asyncio.wait_for(ctx.setup(), 180)
            print(f"# server: c2s {ctx.env['C2S_PORT']} component {ctx.env['COMPONENT_PORT']}; "
                  f"roost pid {ctx.roost.proc.pid} ready", flush=True)
        except Exception as e:  # setup failure fails every selected test
            msg = f"{type(e).__name__}: {e}" if str(e) else repr(e)
            print(f"SETUP FAILED: {msg}", flush=True)
            if ctx.roost is not None:
                print("---- roost.log (last 30 lines)\n" + ctx.roost.log_tail(30) + "\n----")
            for name, _ in tests:
                results.append((name, False))
                print(f"FAIL {name}: setup failed", flush=True)
            return
        for name, fn in tests:
            t0 = time.monotonic()
            limit = getattr(fn, "timeout", DEFAULT_TIMEOUT)
            try:
                if not ctx.roost.alive():
                    raise RuntimeError(f"roost is not running (rc={ctx.roost.proc.returncode}); restarting it")
                await asyncio.wait_for(fn(ctx), limit)
                ok, why = True, ""
            except asyncio.TimeoutError:
                ok, why = False, f"timed out after {limit}s"
            except AssertionError as e:
                ok, why = False, str(e) or "assertion failed"
            except Exception as e:
                ok, why = False, f"{type(e).__name__}: {e}"
                if args.verbose:
                    traceback.print_exc()
            dt = time.monotonic() - t0
            results.append((name, ok))
            if ok:
                print(f"PASS {name} ({dt:.1f}s)", flush=True)
            else:
                print(f"FAIL {name} ({dt:.1f}s): {why}", flush=True)
                print("---- roost.log (last 30 lines)\n" + ctx.roost.log_tail(30) + "\n----", flush=True)
                # Keep later tests meaningful: bring roost back if it died.
                if not ctx.roost.alive():
                    try:
                        await ctx.restart_roost()
                    except Exception as e2:
                        print(f"# could not restart roost: {e2}", flush=True)
    finally:
        await asyncio.to_thread(ctx.teardown)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=("prosody", "ejabberd"), required=True)
    ap.add_argument("-k", dest="pattern", help="regex selecting tests (matched against module.test_name)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir even if all tests pass")
    ap.add_argument("--keepalive", type=float, default=float(os.environ.get("ROOST_KEEPALIVE", "2")),
                    help="roost --keepalive SECS (default 2 or $ROOST_KEEPALIVE)")
    ap.add_argument("--roost-log", default=os.environ.get("ROOST_LOG", "info"), help="roost --log filter")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--also", action="append", default=[], metavar="MODULE",
                    help="also run the tests of tests/e2e/MODULE.py (a module without the test_ prefix)")
    args = ap.parse_args()
    if args.keepalive == int(args.keepalive):
        args.keepalive = int(args.keepalive)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    args.roost_bin = os.environ.get("ROOST_BIN") or os.path.join(harness.ROOT, "target", "debug", "roost")
    tests = collect(args.server, args.pattern, args.also)
    if not tests:
        print("no tests selected")
        print("0 passed, 0 failed")
        return 0
    results = []
    if not os.access(args.roost_bin, os.X_OK):
        print(f"roost binary not found/executable: {args.roost_bin} (set ROOST_BIN or cargo build -p roost-component)")
        for name, _ in tests:
            results.append((name, False))
            print(f"FAIL {name}: no roost binary")
    else:
        tmp = tempfile.mkdtemp(prefix=f"roost-e2e-{args.server}-")

        def on_term(signum, _frame):
            # Route through SIGINT: asyncio.run() turns it into a clean cancel.
            os.kill(os.getpid(), signal.SIGINT)
        # Even if started with SIGINT ignored (background job), Ctrl-C must clean up.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGHUP, on_term)
        interrupted = False
        try:
            asyncio.run(run_all(args, tests, tmp, results))
        except KeyboardInterrupt:
            interrupted = True
            print("# interrupted; stopping everything", flush=True)
        finally:
            for ctx in CONTEXTS:  # idempotent; normally already done
                try:
                    ctx.teardown()
                except Exception as e:
                    print(f"# teardown: {e}", flush=True)
        passed = sum(1 for _, ok in results if ok)
        if interrupted or passed != len(results) or args.keep:
            print(f"# logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        if interrupted:
            done = {n for n, _ in results}
            for name, _ in tests:
                if name not in done:
                    results.append((name, False))
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
