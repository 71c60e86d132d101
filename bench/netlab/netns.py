"""Network namespaces and TUN devices through plain `ip` and two syscalls (no pyroute2)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import signal
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000  # raw IP packets, no 4-byte packet-info header
NETNS_DIR = "/run/netns"
TUN_NAME = "tk0"  # the same name in both namespaces
# Our names carry the creating pid so stale ones (a SIGKILLed run) can be told apart and swept.
NAME_RE = re.compile(r"^tk-[ab]-(\d+)-[0-9a-f]+$")

_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def available() -> tuple[bool, str]:
    """Whether this machine can run links: root, `ip netns` and /dev/net/tun."""
    if os.geteuid() != 0:
        return False, "needs root (network namespaces and TUN devices)"
    if not os.path.exists("/dev/net/tun"):
        return False, "no /dev/net/tun"
    try:
        ip("netns", "list")
    except (OSError, subprocess.CalledProcessError) as e:
        return False, f"`ip netns` does not work: {e}"
    return True, ""


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def create(name: str) -> None:
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")  # servers and browsers inside expect loopback


def pids(name: str) -> list[int]:
    out = ip("netns", "pids", name, check=False).stdout
    return [int(p) for p in out.split()]


def delete(name: str, grace: float = 1.0) -> None:
    """Remove a namespace after ending whatever still runs in it (all started through it)."""
    if not exists(name):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = pids(name)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids(name) and time.monotonic() < deadline:
            time.sleep(0.02)
    ip("netns", "delete", name, check=False)


def ours() -> list[str]:
    if not os.path.isdir(NETNS_DIR):
        return []
    return sorted(n for n in os.listdir(NETNS_DIR) if NAME_RE.match(n))


def remove_stale() -> list[str]:
    """Delete tk-* namespaces whose creating process is gone; return their names."""
    gone = []
    for name in ours():
        pid = int(NAME_RE.match(name).group(1))  # type: ignore[union-attr]
        if not os.path.exists(f"/proc/{pid}"):
            delete(name)
            gone.append(name)
    return gone


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Move the calling thread into a namespace and back. Sockets and TUN devices created
    meanwhile stay in it. setns() is per thread: keep other threads out of this block."""
    root = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(root)
    finally:
        os.close(target)
        os.close(root)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def open_tun(ifname: str) -> int:
    """Create a TUN device in the calling thread's namespace; it lives as long as the fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", ifname.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def address(ns: str, ifname: str, cidr: str) -> None:
    ip("-n", ns, "addr", "add", cidr, "dev", ifname)
    ip("-n", ns, "link", "set", ifname, "up")


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]
