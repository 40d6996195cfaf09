"""TLS: the example clients against a server that accepts c2s only over STARTTLS.

A second server of the suite's kind is started for the domain example.test, with a
certificate for it signed by a CA the test generates (openssl), c2s encryption required, and
a Roost attached. The programs connect with certificate verification on, trusting that CA
with --ca-file: publish, subscribe, ship and collect log lines, and a short roost-load run;
and once without --server, finding the server through the domain's SRV record
(_xmpp-client._tcp.example.test -> xmpp.example.test, a host name the certificate does not
name), served by a stub DNS server the client alone sees (its own /etc/resolv.conf in a
private mount namespace). Without the CA (system roots only), with another CA, and in
plaintext, they fail at once with one line saying what is wrong.
"""

import asyncio
import os
import random
import subprocess
import time

from dnsstub import DnsStub, in_resolv
from harness import PASSWORD, RoostProcess, Server, check, timeout
from logship import LOAD, PUBLISH, SHIP, SINK, SUBSCRIBE, build, compare, lines, until


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name, cn):
    """A self-signed CA: d/name.pem, d/name.key."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={cn}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return os.path.join(d, f"{name}.pem")


def make_server_cert(d, ca, name, domain):
    """A server certificate for `domain` signed by CA `ca`: d/name.pem, d/name.key."""
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{domain}\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={domain}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d)
    return os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")


def tls_env(kind, cert, key):
    prefix = "PROSODY" if kind == "prosody" else "EJABBERD"
    return {f"{prefix}_TLS_CERT": cert, f"{prefix}_TLS_KEY": key}


def run(argv, timeout_s=60, stdin=b""):
    env = dict(os.environ, ROOST_PASSWORD=PASSWORD, RUST_LOG="warn")
    t0 = time.monotonic()
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout_s, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode(), time.monotonic() - t0


def one_line_failure(res, must_contain, what):
    rc, out, err, secs = res
    lines_ = [l for l in err.splitlines() if l.strip()]
    check(rc == 1, f"{what}: rc={rc} (want 1); stderr: {err!r}")
    check(len(lines_) == 1, f"{what}: want one line on stderr, got {lines_!r}")
    for s in must_contain:
        check(s in lines_[0], f"{what}: {s!r} not in {lines_[0]!r}")
    # Fatal at once, not after the login timeout (15 s).
    check(secs < 10, f"{what}: took {secs:.1f}s")


@timeout(300)
async def test_examples_over_verified_tls(ctx):
    await asyncio.to_thread(build)
    d = os.path.join(ctx.tmp, "tls")
    os.makedirs(d, exist_ok=True)
    domain = "example.test"
    make_ca(d, "ca", "Roost test CA")
    make_ca(d, "rogue", "Some other CA")
    cert, key = make_server_cert(d, "ca", "server", domain)
    ca, rogue = os.path.join(d, "ca.pem"), os.path.join(d, "rogue.pem")

    server = Server(ctx.kind, os.path.join(d, "server"),
                    extra_env=dict(tls_env(ctx.kind, cert, key), DOMAIN=domain))
    roost = None
    try:
        await asyncio.to_thread(server.start)
        for u in ("alice", "bob", "u0", "u1", "u2"):
            await asyncio.to_thread(server.register, u, PASSWORD)
        env = server.env
        roost = RoostProcess(ctx.roost_bin, env, os.path.join(d, "roost-data"),
                             os.path.join(d, "roost.log"), keepalive=ctx.keepalive)
        roost.start()
        await until(lambda: f"connected as {env['SERVICE']}" in roost.log_text(), 30,
                    "roost linked to the TLS-only server", roost.log_tail, alive=())
        c2s = f"127.0.0.1:{env['C2S_PORT']}"
        base = ["--server", c2s, "--service", env["SERVICE"]]
        alice, bob = f"alice@{domain}", f"bob@{domain}"

        # Verified TLS with the test CA: create, subscribe, publish, receive.
        res = await asyncio.to_thread(run, [PUBLISH, "--jid", alice, *base, "--ca-file", ca,
                                            "--node", "tls", "--create"])
        check(res[0] == 0, f"create over TLS failed: {res}")
        sub_env = dict(os.environ, ROOST_PASSWORD=PASSWORD, RUST_LOG="warn")
        sub = subprocess.Popen([SUBSCRIBE, "--jid", bob, *base, "--ca-file", ca, "--node", "tls",
                                "--count", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=sub_env)
        try:
            def wait_subscribed():
                seen = []
                for raw in iter(sub.stderr.readline, b""):
                    seen.append(raw.decode())
                    if "subscription to tls:" in seen[-1]:
                        break
                return seen
            seen = await asyncio.wait_for(asyncio.to_thread(wait_subscribed), 30)
            check(any("subscription to tls: subscribed" in l for l in seen), f"subscriber: {seen!r}")
            res = await asyncio.to_thread(run, [PUBLISH, "--jid", alice, *base, "--ca-file", ca,
                                                "--node", "tls", "over", "tls"])
            check(res[0] == 0 and res[1].count("published ") == 2, f"publish over TLS: {res}")
            out, err = await asyncio.to_thread(sub.communicate, timeout=30)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait(5)
        got = [l.split(" ", 2)[2] for l in out.decode().splitlines()]
        check(sub.returncode == 0 and got == ["over", "tls"],
              f"subscriber rc={sub.returncode} got {got!r}; stderr {err!r}")

        # The log shipper and sink (the shared session code) over TLS.
        log, collected = os.path.join(d, "app.log"), os.path.join(d, "collected.log")
        data = lines(0, 2000, random.Random(7))
        with open(log, "wb") as f:
            f.write(data)
        common = [*base, "--ca-file", ca, "--node", "tlslogs"]
        procs = []
        for name, argv in (("ship", [SHIP, "--jid", alice, *common, "--create", "--id", "t",
                                     "--state", os.path.join(d, "ship.state"), log]),
                           ("sink", [SINK, "--jid", bob, *common, "--out", collected])):
            with open(os.path.join(d, f"{name}.log"), "wb") as err_log:
                procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err_log,
                                              env=sub_env, start_new_session=True))
        try:
            def size():
                try:
                    return os.path.getsize(collected)
                except OSError:
                    return 0
            await until(lambda: size() >= len(data), 60, "2000 lines collected over TLS",
                        lambda: open(os.path.join(d, "sink.log"), "rb").read()[-2000:].decode("utf-8", "replace"))
            with open(collected, "rb") as f:
                compare(f.read(), data)
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)

        # roost-load's own STARTTLS (it does not use tokio-xmpp).
        res = await asyncio.to_thread(run, [LOAD, "--server", c2s, "--ca-file", ca, "--domain", domain,
                                            "--service", env["SERVICE"], "--users", "3",
                                            "--duration", "1", "--warmup", "0.2",
                                            "publish", "--clients", "2", "--window", "4"], 60)
        check(res[0] == 0 and '"count":' in res[1] and '"errors":0' in res[1], f"roost-load over TLS: {res}")

        # No --server: the SRV record says where, the certificate is checked for the domain.
        records = {("_xmpp-client._tcp." + domain, "SRV"): [(0, 0, int(env["C2S_PORT"]), "xmpp." + domain)],
                   ("xmpp." + domain, "A"): ["127.0.0.1"]}
        async with DnsStub("127.0.0.9", records) as dns:
            res = await asyncio.to_thread(run, in_resolv("127.0.0.9", [
                PUBLISH, "--jid", alice, "--service", env["SERVICE"], "--ca-file", ca,
                "--node", "tls", "found by SRV"], d))
        check(res[0] == 0 and "published " in res[1], f"publish through SRV: {res}")
        check(("_xmpp-client._tcp." + domain, 33) in dns.asked, f"no SRV query: {dns.asked}")

        # Clean failures: one line, at once.
        pub = [PUBLISH, "--jid", alice, *base, "--node", "tls", "nope"]
        one_line_failure(await asyncio.to_thread(run, pub), ["--ca-file"], "system roots only")
        one_line_failure(await asyncio.to_thread(run, pub + ["--ca-file", rogue]),
                         ["not trusted", "--ca-file"], "another CA")
        one_line_failure(await asyncio.to_thread(run, pub + ["--insecure-plaintext"]),
                         ["only over TLS", "--insecure-plaintext"], "plaintext")
        one_line_failure(await asyncio.to_thread(run, [LOAD, "--server", c2s, "--ca-file", rogue,
                                                       "--domain", domain, "--users", "3", "--duration", "1",
                                                       "publish", "--clients", "1"]),
                         ["not trusted"], "roost-load, another CA")
    finally:
        if roost is not None:
            roost.stop()
        await asyncio.to_thread(server.stop)
