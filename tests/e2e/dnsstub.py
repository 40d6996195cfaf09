"""A tiny authoritative DNS server for tests: fixed SRV and A records over UDP.

    async with DnsStub("127.0.0.9", {("_xmpp-client._tcp.example.test", "SRV"): [(0, 0, 5222, "xmpp.example.test")],
                                     ("xmpp.example.test", "A"): ["127.0.0.1"]}):
        ...  # run a client whose /etc/resolv.conf says `nameserver 127.0.0.9` (see in_resolv)

Any other question gets an empty NOERROR answer. Enough for a resolver looking up SRV
records and their targets; not a general DNS server.
"""

import asyncio
import os
import socket
import struct

TYPES = {"A": 1, "AAAA": 28, "SRV": 33}


def _name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


def _question(packet):
    """(qname, qtype, end offset) of the first question."""
    i, labels = 12, []
    while packet[i]:
        n = packet[i]
        labels.append(packet[i + 1:i + 1 + n].decode())
        i += 1 + n
    qtype = struct.unpack("!H", packet[i + 1:i + 3])[0]
    return ".".join(labels).lower(), qtype, i + 5


def _rdata(kind, value):
    if kind == "A":
        return socket.inet_aton(value)
    prio, weight, port, target = value
    return struct.pack("!HHH", prio, weight, port) + _name(target)


class DnsStub(asyncio.DatagramProtocol):
    def __init__(self, address, records):
        self.address = address
        self.records = {(n.lower(), TYPES[t]): (t, v) for (n, t), v in records.items()}
        self.asked = []
        self.transport = None

    def datagram_received(self, data, addr):
        try:
            qname, qtype, end = _question(data)
        except (IndexError, struct.error, UnicodeDecodeError):
            return
        self.asked.append((qname, qtype))
        kind, values = self.records.get((qname, qtype), (None, []))
        answers = b"".join(
            b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rd)) + rd
            for rd in (_rdata(kind, v) for v in values))
        header = data[:2] + struct.pack("!HHHHH", 0x8580, 1, len(values), 0, 0)
        self.transport.sendto(header + data[12:end] + answers, addr)

    def connection_made(self, transport):
        self.transport = transport

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.address, 53))
        return self

    async def __aexit__(self, *exc):
        self.transport.close()


def in_resolv(nameserver, argv, tmp):
    """argv run with an /etc/resolv.conf of its own (`nameserver NAMESERVER`), bind-mounted
    in a private mount namespace: the machine's resolver is untouched. Needs root."""
    conf = os.path.join(tmp, "resolv.conf")
    with open(conf, "w") as f:
        f.write(f"nameserver {nameserver}\n")
    return ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"',
            conf, *argv]
