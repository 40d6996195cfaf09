#!/usr/bin/env python3
"""The Debian package, end to end: build it, install it, check the unit, run the installed
binary as the package's user against a private Prosody, publish through it, purge it.

    /usr/bin/python3 tests/e2e/package.py [--binary PATH] [--keep]

Needs root (dpkg -i, setpriv). systemd is not PID 1 where CI runs, so the unit is checked
(`systemd-analyze verify`, `systemd-analyze security --offline=true`) but not started; the
test runs what it would run, the way it would: as the `roost` user, with the secret handed
over as systemd's LoadCredential does (a private copy), and the packaged configuration.
--binary: the roost build to package (default: target/debug/roost, which scripts/test has).
The package is purged at the end, also on failure; an installed roost package that this
test did not install is refused (it would be replaced and purged).
"""

import argparse
import asyncio
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(os.path.dirname(HERE))

from harness import PASSWORD, Server, check  # noqa: E402
from logship import PLAIN, PUBLISH, SUBSCRIBE, build  # noqa: E402

UNIT = "/lib/systemd/system/roost.service"
CONFIG = "/etc/roost/roost.toml"
SECRET = "/etc/roost/secret"
MARK = "/var/lib/roost-e2e-package-test"  # says the installed package is this test's


def sh(*argv, ok=True, user=None, env=None, timeout=120):
    """Runs argv (as `user` through setpriv when given); returns (rc, stdout, stderr)."""
    if user is not None:
        argv = ("setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                "--inh-caps=-all", "--no-new-privs", *argv)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=env, text=True)
    if ok and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: rc={p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


def step(msg):
    print(f"# {msg}", flush=True)


def install(deb):
    rc, out, _ = sh("dpkg-query", "-W", "-f=${Status}", "roost", ok=False)
    if rc == 0 and "installed" in out and not os.path.exists(MARK):
        raise AssertionError("a roost package this test did not install is present: not touching it")
    with open(MARK, "w") as f:
        f.write("installed by tests/e2e/package.py\n")
    sh("dpkg", "-i", deb)


def purge():
    sh("dpkg", "--purge", "roost", ok=False)
    if os.path.exists(MARK):
        os.remove(MARK)


def check_installed():
    for path in ("/usr/bin/roost", UNIT, CONFIG, SECRET):
        check(os.path.exists(path), f"{path} not installed")
    st = os.stat(SECRET)
    check(st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600,
          f"{SECRET} must be root-only: uid {st.st_uid} mode {oct(st.st_mode)}")
    user = pwd.getpwnam("roost")
    check(user.pw_uid < 1000 and user.pw_shell.endswith("nologin"),
          f"roost is not a system user: {user}")
    rc, out, err = sh("systemd-analyze", "verify", UNIT, ok=False)
    check(rc == 0 and not (out + err).strip(), f"systemd-analyze verify: rc={rc}\n{out}{err}")
    # The exposure score (0 best, 10 worst); above 2.0 a hardening option went missing.
    rc, out, err = sh("systemd-analyze", "security", "--offline=true", "--threshold=20", UNIT, ok=False)
    level = [l for l in (out + err).splitlines() if "Overall exposure level" in l]
    step(level[0] if level else "no exposure level printed")
    check(rc == 0, f"systemd-analyze security: exposure above 2.0 (rc={rc}):\n{out[-3000:]}{err}")
    # The service user cannot read the secret itself (systemd hands it a copy).
    rc, _, _ = sh("cat", SECRET, ok=False, user="roost")
    check(rc != 0, "the roost user can read the root-only secret")


async def run(args, tmp):
    step("building the package")
    rc, out, err = sh(os.path.join(ROOT, "scripts", "package"), "--binary", args.binary,
                      "--out", tmp, timeout=600)
    deb = out.strip().splitlines()[-1]
    check(deb.endswith(".deb") and os.path.exists(deb), f"no package: {out}\n{err}")
    step(f"installing {os.path.basename(deb)}")
    install(deb)
    check_installed()

    # The packaged configuration, as installed: only the domain is missing.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    rc, out, err = sh("/usr/bin/roost", "--check-config", "--config", CONFIG, ok=False, env=env)
    check(rc == 2 and "jid" in err and len(err.strip().splitlines()) == 1,
          f"--check-config of the installed file: rc={rc} {err!r}")

    await asyncio.to_thread(build)
    with open(SECRET) as f:
        secret = f.read().strip()
    server = Server("prosody", os.path.join(tmp, "server"), extra_env={"SECRET": secret})
    roost = None
    try:
        step("starting Prosody with the package's secret")
        await asyncio.to_thread(server.start)
        for u in ("alice", "bob"):
            await asyncio.to_thread(server.register, u, PASSWORD)
        e = server.env
        # What systemd would set up: the state directory owned by the user, the secret as
        # a private credential, the unit's environment.
        roost_user = pwd.getpwnam("roost")
        state, cred = os.path.join(tmp, "state"), os.path.join(tmp, "credentials")
        for d, mode in ((state, 0o700), (cred, 0o500)):
            os.makedirs(d)
            os.chown(d, roost_user.pw_uid, roost_user.pw_gid)
            os.chmod(d, mode)
        shutil.copy(SECRET, os.path.join(cred, "secret"))
        os.chown(os.path.join(cred, "secret"), roost_user.pw_uid, roost_user.pw_gid)
        os.chmod(os.path.join(cred, "secret"), 0o400)
        env.update(ROOST_SECRET_FILE=os.path.join(cred, "secret"), ROOST_JID=e["SERVICE"],
                   ROOST_SERVER=f"127.0.0.1:{e['COMPONENT_PORT']}", ROOST_DATA_DIR=state,
                   ROOST_KEEPALIVE="5")
        argv = ["/usr/bin/roost", "--config", CONFIG]
        sh(*argv, "--check-config", user="roost", env=env)  # ExecStartPre
        step("running the installed roost as the roost user")
        log_path = os.path.join(tmp, "roost.log")
        with open(log_path, "wb") as log:
            roost = subprocess.Popen(
                ["setpriv", "--reuid=roost", "--regid=roost", "--init-groups", "--inh-caps=-all",
                 "--no-new-privs", *argv],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=state, start_new_session=True)
        deadline = time.monotonic() + 30
        while f"connected as {e['SERVICE']}" not in open(log_path, errors="replace").read():
            check(roost.poll() is None, f"roost exited: {open(log_path).read()[-2000:]}")
            check(time.monotonic() < deadline, f"roost did not link: {open(log_path).read()[-2000:]}")
            await asyncio.sleep(0.2)
        proc = subprocess.run(["ps", "-o", "user=", "-p", str(roost.pid)], stdout=subprocess.PIPE, text=True)
        check(proc.stdout.strip() == "roost", f"roost runs as {proc.stdout.strip()!r}")

        step("publishing through it with roost-publish, receiving with roost-subscribe")
        cenv = dict(os.environ, ROOST_PASSWORD=PASSWORD, RUST_LOG="warn")
        base = ["--server", f"127.0.0.1:{e['C2S_PORT']}", PLAIN, "--service", e["SERVICE"], "--node", "pkg"]
        sh(PUBLISH, "--jid", f"alice@{e['DOMAIN']}", *base, "--create", env=cenv)
        sub = subprocess.Popen([SUBSCRIBE, "--jid", f"bob@{e['DOMAIN']}", *base, "--count", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cenv)
        try:
            deadline = time.monotonic() + 30
            got = ""
            while sub.poll() is None and time.monotonic() < deadline:
                sh(PUBLISH, "--jid", f"alice@{e['DOMAIN']}", *base, "from the package", env=cenv)
                try:
                    got, err = sub.communicate(timeout=2)
                except subprocess.TimeoutExpired:
                    continue
            check(sub.returncode == 0 and got.strip().endswith("from the package"),
                  f"subscriber rc={sub.returncode}: {got!r}")
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait(5)
        check(os.listdir(state), "nothing written to the state directory")
        roost.terminate()
        check(roost.wait(30) == 0, f"roost did not stop cleanly: {open(log_path).read()[-2000:]}")
        roost = None
    finally:
        if roost is not None and roost.poll() is None:
            roost.kill()
            roost.wait(10)
        await asyncio.to_thread(server.stop)
    step("purging")
    purge()
    check(not os.path.exists("/usr/bin/roost") and not os.path.exists(SECRET),
          "the purge left files behind")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default=os.environ.get("ROOST_BIN")
                    or os.path.join(ROOT, "target", "debug", "roost"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("package.py needs root (dpkg -i, setpriv)")
    tmp = tempfile.mkdtemp(prefix="roost-package-")
    os.chmod(tmp, 0o755)  # the roost user reaches its state directory through it
    t0 = time.monotonic()
    ok = False
    try:
        asyncio.run(run(args, tmp))
        ok = True
    except Exception as e:  # any failure fails the test, with what went wrong
        print(f"FAIL package: {type(e).__name__}: {e}", flush=True)
    finally:
        purge()
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"# kept {tmp}", flush=True)
    if ok:
        print(f"PASS package ({time.monotonic() - t0:.1f}s)")
        print("1 passed, 0 failed")
    else:
        print("0 passed, 1 failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
