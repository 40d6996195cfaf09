"""End-to-end test harness for Roost (run with /usr/bin/python3: needs slixmpp).

Infrastructure only; tests live in tests/e2e/test_*.py and are plain
`async def test_name(ctx)` functions.  `ctx` is a `Context`:

    async with ctx.client("alice") as c:          # logged-in slixmpp ClientXMPP
        reply = await raw_iq(c, "<iq type='get' to='pubsub.localhost'>...</iq>")
        await c["xep_0199"].ping(ctx.service, timeout=10)
    ctx.service / ctx.domain / ctx.env            # from the server's DIR/env
    await ctx.restart_roost()                      # stop + start roost, wait ready
    await ctx.restart_server()                     # scripts/<server> restart (same ports)
    ctx.roost.log_tail(30), ctx.roost.log_since(mark), ctx.roost.log_mark()
    ctx.start_extra_roost(...)                     # a second roost process

Decorators: @only("prosody") / @timeout(secs).
"""

import asyncio
import contextlib
import itertools
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "scripts")
USERS = ("alice", "bob", "carol")
PASSWORD = "pw"
CLIENT_NS = "jabber:client"


class TestFailure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


# ---------------------------------------------------------------- decorators

def only(*servers):
    def deco(fn):
        fn.servers = servers
        return fn
    return deco


def timeout(secs):
    def deco(fn):
        fn.timeout = secs
        return fn
    return deco


# ------------------------------------------------------------------ processes

def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v
    return env


class Server:
    """An XMPP server instance driven by scripts/prosody or scripts/ejabberd."""

    def __init__(self, kind, dir_, extra_env=None):
        self.kind = kind
        self.dir = dir_
        self.script = os.path.join(SCRIPTS, kind)
        self.env = {}
        self.started = False
        # Settings for the script itself (e.g. DOMAIN, PROSODY_S2S for federation tests).
        self.extra_env = dict(extra_env or {})

    def _run(self, *args, timeout=120):
        # Don't leak our own C2S_PORT etc. into the script: it reads DIR/env.
        env = {k: v for k, v in os.environ.items()
               if k not in ("C2S_PORT", "COMPONENT_PORT", "RELAY_COMPONENT_PORT", "ERL_DIST_PORT",
                             "PID", "NODE")}
        env.update(self.extra_env)
        p = subprocess.run([self.script, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
        if p.returncode != 0:
            raise RuntimeError(f"{self.kind} {' '.join(args)} failed (rc={p.returncode}):\n{p.stdout}")
        return p.stdout

    def start(self):
        self.started = True
        self._run("start", self.dir)
        self.env = read_env(os.path.join(self.dir, "env"))

    def stop(self):
        if self.started:
            try:
                self._run("stop", self.dir, timeout=60)
            finally:
                self.started = False

    def restart(self):
        self._run("restart", self.dir)
        self.started = True
        self.env = read_env(os.path.join(self.dir, "env"))

    def register(self, user, password):
        self._run("register", self.dir, user, password)

    @property
    def log_path(self):
        return self.env.get("LOG", "")


class RoostProcess:
    def __init__(self, binary, server_env, data_dir, log_path, keepalive=None, extra_args=(), log_filter="info"):
        self.binary = binary
        self.server_env = server_env
        self.data_dir = data_dir
        self.log_path = log_path
        self.keepalive = keepalive
        self.extra_args = list(extra_args)
        self.log_filter = log_filter
        self.proc = None

    def argv(self):
        e = self.server_env
        argv = [self.binary, "--server", f"127.0.0.1:{e['COMPONENT_PORT']}", "--jid", e["SERVICE"],
                "--secret", e["SECRET"], "--data-dir", self.data_dir, "--log", self.log_filter]
        if self.keepalive is not None:
            argv += ["--keepalive", str(self.keepalive)]
        return argv + self.extra_args

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        env = dict(os.environ)
        if self.keepalive is not None:
            env["ROOST_KEEPALIVE"] = str(self.keepalive)
        env.setdefault("RUST_BACKTRACE", "1")
        with open(self.log_path, "ab") as log:
            log.write(f"==== harness: starting {' '.join(self.argv())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        if self.proc is None:
            return None
        if self.proc.returncode is not None and getattr(self, "_logged_end", None) == self.proc.pid:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        self._logged_end = self.proc.pid
        with open(self.log_path, "ab") as log:
            log.write(f"==== harness: roost pid {self.proc.pid} ended rc={rc}\n".encode())
        return rc

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_since(self, mark):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])


# -------------------------------------------------------------------- clients

_resource_counter = itertools.count(1)


class ClientError(Exception):
    pass


def make_client(jid, password):
    c = slixmpp.ClientXMPP(jid, password)
    for plugin in ("xep_0030", "xep_0004", "xep_0060", "xep_0199", "xep_0092"):
        c.register_plugin(plugin)
    # No TLS in the test servers; allow PLAIN over plaintext as a fallback.
    with contextlib.suppress(Exception):
        c["feature_mechanisms"].unencrypted_plain = True
    return c


@contextlib.asynccontextmanager
async def connected_client(env, user, password=PASSWORD, resource=None, timeout=15):
    domain = env["DOMAIN"]
    resource = resource or f"e2e-{next(_resource_counter)}"
    c = make_client(f"{user}@{domain}/{resource}", password)
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    gone = loop.create_future()

    def _set(fut, val):
        if not fut.done():
            fut.set_result(val)

    c.add_event_handler("session_start", lambda _e: _set(ready, True))
    c.add_event_handler("failed_auth", lambda _e: _set(ready, "authentication failed"))
    c.add_event_handler("connection_failed", lambda e: _set(ready, f"connection failed: {e}"))
    c.add_event_handler("disconnected", lambda _e: (_set(ready, "disconnected before session"), _set(gone, True)))
    c.connect(address=("127.0.0.1", int(env["C2S_PORT"])), force_starttls=False, disable_starttls=True)
    try:
        try:
            res = await asyncio.wait_for(ready, timeout)
        except asyncio.TimeoutError:
            raise ClientError(f"{user}: no session within {timeout}s")
        if res is not True:
            raise ClientError(f"{user}: {res}")
        yield c
    finally:
        with contextlib.suppress(Exception):
            c.disconnect(wait=1)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gone, 5)
        with contextlib.suppress(Exception):
            c.abort()


def _with_ns(xml_string):
    el = ET.fromstring(xml_string)
    if not el.tag.startswith("{"):
        # Put the top-level element (and un-namespaced children) into jabber:client.
        def fix(e, top):
            if not e.tag.startswith("{") and (top or e.tag in ("error",)):
                e.tag = "{%s}%s" % (CLIENT_NS, e.tag)
        fix(el, True)
    return el


async def raw_iq(c, xml_string, timeout=10):
    """Send a literal <iq/> (string) and return the reply as an ElementTree Element.

    The 'from' is filled in by the server; an 'id' is added if missing.  Error
    replies are returned, not raised.  Raises IqTimeout if nothing comes back.
    """
    el = _with_ns(xml_string)
    iq = c.Iq(xml=el)
    if not el.get("id"):
        iq["id"] = c.new_id()
    try:
        reply = await iq.send(timeout=timeout)
    except IqError as e:
        reply = e.iq
    return reply.xml


def raw_send(c, xml_string):
    """Send a literal stanza (string) without waiting for anything."""
    el = _with_ns(xml_string)
    c.send_raw(ET.tostring(el, encoding="unicode"))


def error_condition(reply_el):
    """(type, condition) of an error reply Element, or (None, None)."""
    err = reply_el.find("{%s}error" % CLIENT_NS)
    if err is None:
        return None, None
    for child in err:
        if child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}") and not child.tag.endswith("}text"):
            return err.get("type"), child.tag.split("}", 1)[1]
    return err.get("type"), None


def iq_type(reply_el):
    return reply_el.get("type")


# -------------------------------------------------------------------- context

class Context:
    def __init__(self, kind, tmp, roost_bin, keepalive, roost_log_filter="info"):
        self.kind = kind
        self.tmp = tmp
        self.roost_bin = roost_bin
        self.keepalive = keepalive
        self.roost_log_filter = roost_log_filter
        self.server = Server(kind, os.path.join(tmp, "server"))
        self.roost = None
        self.extra_roosts = []
        # Whole extra contexts (a second server and its Roost) a test started: stopped
        # with this one.
        self.extra_contexts = []
        self._privileged = None

    @property
    def env(self):
        return self.server.env

    @property
    def service(self):
        return self.env["SERVICE"]

    @property
    def domain(self):
        return self.env["DOMAIN"]

    def jid(self, user):
        return f"{user}@{self.domain}"

    def client(self, user="alice", **kw):
        return connected_client(self.env, user, **kw)

    # -- setup / teardown
    async def setup(self):
        await asyncio.to_thread(self.server.start)
        for u in USERS:
            await asyncio.to_thread(self.server.register, u, PASSWORD)
        self.roost = RoostProcess(self.roost_bin, self.env, os.path.join(self.tmp, "roost-data"),
                                  os.path.join(self.tmp, "roost.log"), keepalive=self.keepalive,
                                  log_filter=self.roost_log_filter)
        self.roost.start()
        await self.wait_ready(30)

    async def privileged(self):
        """A second server of the same kind started with ROOST_PRIVILEGE=1 (XEP-0356 roster
        and presence access granted to the component), with its own users and Roost: a
        Context of its own, started on first use, shared by later callers, stopped with
        this one."""
        if self._privileged is None:
            p = Context(self.kind, os.path.join(self.tmp, "privileged"), self.roost_bin,
                        self.keepalive, self.roost_log_filter)
            p.server.extra_env = {"ROOST_PRIVILEGE": "1"}
            os.makedirs(p.tmp, exist_ok=True)
            self._privileged = p
            await p.setup()
        return self._privileged

    def teardown(self):
        for c in [self._privileged, *self.extra_contexts]:
            if c is not None:
                with contextlib.suppress(Exception):
                    c.teardown()
        for r in self.extra_roosts:
            with contextlib.suppress(Exception):
                r.stop(5)
        if self.roost is not None:
            with contextlib.suppress(Exception):
                self.roost.stop()
        self.server.stop()

    async def service_answers(self, timeout=5):
        """True if a client gets a disco#info *result* from the service."""
        try:
            async with self.client("alice", timeout=timeout) as c:
                iq = await c["xep_0030"].get_info(jid=self.service, cached=False, timeout=timeout)
                return iq["type"] == "result"
        except (IqError, IqTimeout, ClientError, asyncio.TimeoutError):
            return False

    async def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.roost is not None and not self.roost.alive():
                raise RuntimeError(f"roost exited early (rc={self.roost.proc.returncode}); "
                                   f"log tail:\n{self.roost.log_tail(30)}")
            if await self.service_answers(timeout=min(5, max(1, deadline - time.monotonic()))):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"service {self.service} did not answer disco#info within {timeout}s")

    async def restart_roost(self, timeout=30):
        self.roost.stop()
        self.roost.start()
        await self.wait_ready(timeout)

    async def restart_server(self):
        await asyncio.to_thread(self.server.restart)

    def start_extra_roost(self, name, data_dir=None, **kw):
        r = RoostProcess(self.roost_bin, self.env, data_dir or os.path.join(self.tmp, f"{name}-data"),
                         os.path.join(self.tmp, f"{name}.log"), keepalive=kw.pop("keepalive", self.keepalive),
                         log_filter=self.roost_log_filter, **kw)
        r.start()
        self.extra_roosts.append(r)
        return r

    def server_log(self):
        try:
            with open(self.server.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (FileNotFoundError, OSError):
            return ""

    def component_auth_count(self):
        """How many times the server accepted a component handshake for the service."""
        text = self.server_log()
        if self.kind == "prosody":
            return len(re.findall(re.escape(self.service) + r":component\s+info\s+External component successfully authenticated", text))
        return len(re.findall(r"Accepted external component handshake authentication for " + re.escape(self.service), text))


# ------------------------------------------------------ pubsub helpers (additive)

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def pubsub_error(reply_el):
    """(type, condition, pubsub#errors condition) of an error reply Element.

    Each is None when absent; e.g. ('modify', 'bad-request', 'invalid-jid').
    """
    err = reply_el.find("{%s}error" % CLIENT_NS)
    if err is None:
        return None, None, None
    cond = pcond = None
    for child in err:
        ns, _, local = child.tag[1:].partition("}")
        if ns == NS_STANZAS and local != "text":
            cond = local
        elif ns == NS_PUBSUB_ERRORS:
            pcond = local
    return err.get("type"), cond, pcond


def send_available(c):
    """Initial presence, so the server routes messages sent to the bare JID to this client."""
    c.send_presence()


class Inbox:
    """Collects every <message/> a client receives (as ElementTree Elements, in order).

        inbox = Inbox(c)
        msg = await inbox.wait(lambda m: ..., timeout=5)   # first unconsumed match, consumed
        await inbox.quiet(lambda m: ..., secs=1.5)          # asserts no match arrives
    """

    _names = itertools.count(1)

    def __init__(self, c):
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        self.messages = []
        self.consumed = set()
        c.register_handler(Callback(f"e2e-inbox-{next(self._names)}",
                                    MatchXPath("{%s}message" % CLIENT_NS),
                                    lambda msg: self.messages.append(msg.xml)))

    def _find(self, pred):
        for i, m in enumerate(self.messages):
            if i not in self.consumed and pred(m):
                return i, m
        return None, None

    async def wait(self, pred, timeout=5, what="message"):
        deadline = time.monotonic() + timeout
        while True:
            i, m = self._find(pred)
            if m is not None:
                self.consumed.add(i)
                return m
            if time.monotonic() >= deadline:
                got = [ET.tostring(x, encoding="unicode")[:300] for x in self.messages]
                raise TestFailure(f"no {what} within {timeout}s; messages so far: {got}")
            await asyncio.sleep(0.05)

    async def quiet(self, pred, secs=1.5, what="message"):
        await asyncio.sleep(secs)
        i, m = self._find(pred)
        check(m is None, f"unexpected {what}: {ET.tostring(m, encoding='unicode')[:500] if m is not None else ''}")

    def count(self, pred):
        return sum(1 for m in self.messages if pred(m))
