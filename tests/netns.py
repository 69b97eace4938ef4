"""Hosts for tests: Linux network namespaces, each linked to the root namespace by a veth pair on a
/30 of its own, so that processes run "on another machine" and reach the root's services only over
that link, which a test can cut (`Host.cut`) and mend (`Host.mend`).

Services that listen only on loopback or a Unix socket (the bundled PostgreSQL, SeaweedFS, RabbitMQ)
are reached through `Forwarder`: a TCP listener on each host's root-side address that pipes every
connection to the service. Forwarding reuses the session's servers as they are (the bundled
PostgreSQL with its migrated template, rather than a second cluster bound to the links), and the
forwarder runs in the test process (asyncio in a thread, rather than socat): nothing to install,
nothing left running after the test, and it forwards to a Unix socket as readily as to a port.
A cut link stalls the forwarded connections exactly as it stalls direct ones: the forwarder's
listening side is on the link's root end, so a host's packets cross the veth pair either way.

Needs root (CAP_NET_ADMIN) and `ip` (iproute2); `unshare` gives each host its own hostname, so that
worker ids (hostname:pid:…) name their host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests import services

SUBNET_BASE = ipaddress.ip_network("10.231.0.0/16")  # one /24 per test session, one /30 per host


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None if they can (tried for real)."""
    if shutil.which("ip") is None:
        return "no `ip` command (apt-get install iproute2)"
    if shutil.which("unshare") is None:
        return "no `unshare` command (util-linux)"
    probe = f"hxprobe{os.getpid()}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed (needs root): {made.stderr.strip()}"
    ip("netns", "delete", probe, check=False)
    return None


@dataclass(frozen=True)
class Host:
    name: str  # also its hostname
    netns: str
    root_if: str  # the link's end in the root namespace
    root_addr: str  # where the host reaches the root's services
    addr: str  # the host's own address

    def exec_prefix(self) -> list[str]:
        """Run a command on this host: in its namespace, under its hostname. Each step execs the
        next, so the process started is the command itself (same pid)."""
        return [
            "ip", "netns", "exec", self.netns,
            "unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.name,
        ]  # fmt: skip

    def cut(self) -> None:
        """Pull the cable: the root end goes down, the host's end loses its carrier."""
        ip("link", "set", self.root_if, "down")

    def mend(self) -> None:
        ip("link", "set", self.root_if, "up")


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of SUBNET_BASE that no interface uses (parallel sessions pick by pid, then move on)."""
    used = ip("-4", "-o", "addr", "show").stdout
    subnets = list(SUBNET_BASE.subnets(new_prefix=24))
    start = os.getpid() % len(subnets)
    for i in range(len(subnets)):
        subnet = subnets[(start + i) % len(subnets)]
        if f" {subnet.network_address}".rsplit(".", 1)[0] + "." not in used:
            return subnet
    raise RuntimeError(f"every /24 of {SUBNET_BASE} is in use")


def _make_host(subnet: ipaddress.IPv4Network, i: int) -> Host:
    tag = f"hx{os.getpid()}"
    link = list(subnet.subnets(new_prefix=30))[i]
    root_addr, addr = (str(a) for a in link.hosts())
    host = Host(f"host{i + 1}", f"{tag}n{i}", f"{tag}r{i}", root_addr, addr)
    inner = f"{tag}h{i}"
    ip("netns", "add", host.netns)
    ip("link", "add", host.root_if, "type", "veth", "peer", "name", inner)
    ip("link", "set", inner, "netns", host.netns)
    ip("addr", "add", f"{root_addr}/30", "dev", host.root_if)
    ip("link", "set", host.root_if, "up")
    ns = ("-n", host.netns)
    ip(*ns, "addr", "add", f"{addr}/30", "dev", inner)
    ip(*ns, "link", "set", inner, "up")
    ip(*ns, "link", "set", "lo", "up")
    return host


def _remove_host(host: Host) -> None:
    # Deleting the namespace destroys its end of the pair, and with it the root end; delete that too
    # in case a process still holds the namespace open.
    ip("netns", "delete", host.netns, check=False)
    ip("link", "delete", host.root_if, check=False)


def _remove_leftovers() -> None:
    """The hosts of test sessions killed before they could remove theirs (names carry the pid)."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        found = re.fullmatch(r"hx(\d+)n(\d+)", name)
        if found and not services.process_alive(int(found[1])):
            _remove_host(Host("", name, f"hx{found[1]}r{found[2]}", "", ""))


@contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """`count` hosts, removed afterwards whatever happened (their processes must be gone by then)."""
    _remove_leftovers()
    subnet = _free_subnet()
    made: list[Host] = []
    try:
        for i in range(count):
            made.append(_make_host(subnet, i))
        yield made
    finally:
        for host in made:
            _remove_host(host)


# ------------------------------------------------------------------------------------ forwarding

Target = tuple[str, int] | Path  # a TCP address, or a Unix socket


class Forwarder:
    """TCP listeners piping connections to targets, on an event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="forwarder", daemon=True)
        self.thread.start()
        self._servers: list[asyncio.Server] = []
        self._open: set[asyncio.StreamWriter] = set()

    def forward(self, addresses: list[str], target: Target) -> int:
        """Listen on the same port of every address (the first one picks it); returns the port."""
        port = 0
        for address in addresses:
            listening = asyncio.run_coroutine_threadsafe(self._listen(address, port, target), self.loop)
            port = listening.result(10).sockets[0].getsockname()[1]
        return port

    async def _listen(self, address: str, port: int, target: Target) -> asyncio.Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._pipe(reader, writer, target)

        server = await asyncio.start_server(serve, address, port)
        self._servers.append(server)
        return server

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target) -> None:
        try:
            if isinstance(target, Path):
                up_reader, up_writer = await asyncio.open_unix_connection(str(target))
            else:
                up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        self._open |= {writer, up_writer}
        await asyncio.gather(self._copy(reader, up_writer), self._copy(up_reader, writer))
        self._open -= {writer, up_writer}

    @staticmethod
    async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        # Either side ending ends the connection: the protocols forwarded here never half-close.
        try:
            while data := await source.read(1 << 16):
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        async def shut() -> None:
            for server in self._servers:
                server.close()
            for writer in list(self._open):
                writer.close()

        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@contextmanager
def forwarder() -> Iterator[Forwarder]:
    with ExitStack() as stack:
        made = Forwarder()
        stack.callback(made.close)
        yield made
