#!/usr/bin/python3
"""Raw XEP-0114 component handshake probe.

    component_probe.py PORT [--domain pubsub.localhost] [--secret secret]
                            [--hold SECS] [--second] [--timeout SECS]

Connects to 127.0.0.1:PORT, sends the jabber:component:accept stream header,
reads the stream id, sends <handshake>sha1(id+secret)</handshake> and prints
everything the server sends back.  Exit 0 if the handshake was accepted
(<handshake/>), 1 otherwise.

--second: after the first handshake succeeded, open a SECOND connection for
the same domain while the first is still up and print what the server sends
to each connection (conflict behaviour).
"""
import argparse
import hashlib
import re
import socket
import sys
import time


def recv_until(sock, pred, timeout):
    sock.settimeout(0.2)
    buf = b""
    end = time.time() + timeout
    closed = False
    while time.time() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if pred(buf):
                break
            continue
        except OSError as e:  # reset
            buf += f"<!-- socket error: {e} -->".encode()
            closed = True
            break
        if not chunk:
            closed = True
            break
        buf += chunk
        if pred(buf):
            # give the server a moment to send anything that follows
            end = min(end, time.time() + 0.3)
    return buf.decode("utf-8", "replace"), closed


def handshake(port, domain, secret, timeout, tag):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(
        (
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
            f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
        ).encode()
    )
    header, closed = recv_until(s, lambda b: b"<stream:stream" in b and b">" in b.split(b"<stream:stream", 1)[1], timeout)
    print(f"[{tag}] <<< {header}")
    m = re.search(r"\bid=['\"]([^'\"]+)['\"]", header)
    if not m or closed:
        print(f"[{tag}] no stream id (closed={closed})")
        return s, False
    digest = hashlib.sha1((m.group(1) + secret).encode()).hexdigest()
    s.sendall(f"<handshake>{digest}</handshake>".encode())
    reply, closed = recv_until(s, lambda b: b"handshake" in b or b"</stream:stream>" in b, timeout)
    print(f"[{tag}] <<< {reply}" + ("   [connection closed by server]" if closed else ""))
    ok = bool(re.search(r"<handshake\s*/>|<handshake></handshake>", reply)) and "stream:error" not in reply
    print(f"[{tag}] handshake {'ACCEPTED' if ok else 'REJECTED'}")
    return s, ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--domain", default="pubsub.localhost")
    ap.add_argument("--secret", default="secret")
    ap.add_argument("--timeout", type=float, default=5)
    ap.add_argument("--hold", type=float, default=0)
    ap.add_argument("--second", action="store_true")
    a = ap.parse_args()
    s1, ok = handshake(a.port, a.domain, a.secret, a.timeout, "conn1")
    if ok and a.second:
        s2, ok2 = handshake(a.port, a.domain, a.secret, a.timeout, "conn2")
        # What happened to the first connection?
        rest, closed = recv_until(s1, lambda b: b"</stream:stream>" in b, 2)
        print(f"[conn1 after conn2] <<< {rest!r} closed={closed}")
        s2.close()
    if a.hold:
        time.sleep(a.hold)
    s1.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
