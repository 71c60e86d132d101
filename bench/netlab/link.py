"""The API benchmarks and tests use: a two-namespace link with an emulator process between.

    async with Link("rural") as link:             # or Link(LinkSpec(...)); `with` works too
        server = link.popen_in("a", [...])         # ns a: 10.77.0.1 (the core school / SFU)
        client = link.popen_in("b", [...])         # ns b: 10.77.0.2 (the rural classroom)
        link.set_rate("ab", 200_000)
        print(link.stats())
    link.log.summary("ab")                         # the per-packet log, after close

Setup and teardown are synchronous on purpose (even under `async with`): a cancelled or
interrupted await must never leave namespaces or the emulator process behind.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import netns
from .packetlog import PacketLog
from .spec import LinkSpec, scenario

ADDR_A, ADDR_B, PREFIX = "10.77.0.1", "10.77.0.2", 30  # each link has its own two stacks
PROJECT_ROOT = Path(__file__).resolve().parents[2]
_open_links: weakref.WeakSet[Link] = weakref.WeakSet()


class LinkError(RuntimeError):
    pass


class Link:
    def __init__(self, spec: LinkSpec | str = "clean", *, realtime: bool = True) -> None:
        """realtime: run the emulator under SCHED_FIFO (else nice -10) for timing accuracy."""
        self.spec = scenario(spec) if isinstance(spec, str) else spec
        self.realtime = realtime
        self.id = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.ns_a, self.ns_b = f"tk-a-{self.id}", f"tk-b-{self.id}"
        self.addr_a, self.addr_b = ADDR_A, ADDR_B
        self.log: PacketLog | None = None  # filled by close() when spec.log
        self.final_stats: dict[str, Any] | None = None
        self.t0: float | None = None  # time.monotonic() at link time 0 (same clock in every ns)
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctrl: socket.socket | None = None
        self._lock = threading.Lock()
        self._children: list[subprocess.Popen[Any]] = []
        self._wrappers: list[Path] = []
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        ok, why = netns.available()
        if not ok:
            raise LinkError(why)
        _open_links.add(self)
        try:
            for ns in (self.ns_a, self.ns_b):
                netns.create(ns)
            self._spawn()
            for ns, addr in ((self.ns_a, self.addr_a), (self.ns_b, self.addr_b)):
                netns.address(ns, netns.TUN_NAME, f"{addr}/{PREFIX}")
            self.t0 = float(self._call({"op": "go"})["t0"])
        except BaseException:
            self.close()
            raise
        return self

    def _spawn(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        argv = [
            sys.executable, "-m", "bench.netlab.emulator",
            "--ns-a", self.ns_a, "--ns-b", self.ns_b,
            "--addr-a", self.addr_a, "--addr-b", self.addr_b,
            "--ctrl-fd", str(child.fileno()), "--spec", self.spec.to_json(),
            "--realtime" if self.realtime else "--no-realtime",
        ]
        with child:
            # Its own session: a Ctrl-C in the terminal reaches us, and we stop it in order.
            self._proc = subprocess.Popen(
                argv, pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._ctrl = parent
        parent.settimeout(15.0)
        hello = self._recv()
        if "error" in hello:
            raise LinkError(f"emulator failed to start:\n{hello['error']}")

    def close(self) -> None:
        """Stop the emulator (collecting its log), end processes started in the namespaces,
        delete both namespaces. Safe to call twice and after a failed start."""
        if self._closed:
            return
        self._closed = True
        log_path = None
        try:
            if self._proc is not None and self._proc.poll() is None and self._ctrl is not None:
                fd, log_path = tempfile.mkstemp(prefix="netlab-", suffix=".log")
                os.close(fd)
                try:
                    reply = self._call({"op": "stop", "path": log_path})
                    self.final_stats = reply.get("stats")
                    self.log = PacketLog.load(log_path) if self.spec.log else None
                except (OSError, LinkError, ValueError):
                    pass  # the log is a nicety; the teardown below is not
        finally:
            try:
                self._stop_proc()
                for p in self._children:
                    end_process(p)
            finally:
                for ns in (self.ns_a, self.ns_b):
                    netns.delete(ns)
                for path in (*self._wrappers, *([Path(log_path)] if log_path else [])):
                    path.unlink(missing_ok=True)
                _open_links.discard(self)

    def _stop_proc(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()  # EOF: the emulator exits if it has not yet
            self._ctrl = None
        if self._proc is not None:
            end_process(self._proc, grace=3.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- control --------------------------------------------------------------------------

    def _recv(self) -> dict[str, Any]:
        assert self._ctrl is not None
        raw = self._ctrl.recv(1 << 20)
        if not raw:
            raise LinkError("emulator process went away")
        return json.loads(raw)

    def _call(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self._ctrl is None:
            raise LinkError("link is not running")
        with self._lock:  # one request in flight: replies carry no ids
            self._ctrl.send(json.dumps(msg).encode())
            reply = self._recv()
        if "error" in reply:
            raise LinkError(reply["error"])
        return reply

    def set_rate(self, direction: str, bps: float | None) -> float:
        """Change the rate now ("ab", "ba" or "both"; None: unlimited). Returns link time."""
        if direction not in ("ab", "ba", "both"):
            raise ValueError("direction must be 'ab', 'ba' or 'both'")
        return float(self._call({"op": "set_rate", "dir": direction, "bps": bps})["t"])

    def stats(self) -> dict[str, Any]:
        """Live counters per direction: offered/delivered/dropped/lost, queue, current rate."""
        return self._call({"op": "stats"})

    def snapshot_log(self) -> PacketLog:
        """The per-packet log so far, without stopping the link."""
        fd, path = tempfile.mkstemp(prefix="netlab-", suffix=".log")
        os.close(fd)
        try:
            self._call({"op": "dump", "path": path})
            return PacketLog.load(path)
        finally:
            Path(path).unlink(missing_ok=True)

    def elapsed(self) -> float:
        """Link time: seconds since the schedule's t=0."""
        return time.monotonic() - (self.t0 if self.t0 is not None else time.monotonic())

    # -- running things inside --------------------------------------------------------------

    def ns(self, which: str) -> str:
        """'a' / 'b' or a full namespace name -> the namespace name."""
        names = {"a": self.ns_a, "b": self.ns_b, self.ns_a: self.ns_a, self.ns_b: self.ns_b}
        try:
            return names[which]
        except KeyError:
            raise ValueError(f"not a namespace of this link: {which!r}") from None

    def addr(self, which: str) -> str:
        return self.addr_a if self.ns(which) == self.ns_a else self.addr_b

    def popen_in(self, which: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start a process in a namespace; close() ends it if it is still running."""
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(netns.exec_argv(self.ns(which), argv), **kw)
        self._children.append(p)
        return p

    def run_in(
        self, which: str, argv: Sequence[str], **kw: Any
    ) -> subprocess.CompletedProcess[Any]:
        """subprocess.run in a namespace (same keywords)."""
        return subprocess.run(netns.exec_argv(self.ns(which), argv), **kw)

    async def exec_in(
        self, which: str, argv: Sequence[str], **kw: Any
    ) -> asyncio.subprocess.Process:
        """asyncio.create_subprocess_exec in a namespace; close() ends what is left in it."""
        return await asyncio.create_subprocess_exec(*netns.exec_argv(self.ns(which), argv), **kw)

    def wrap(self, which: str, program: str) -> str:
        """An executable that runs `program` in a namespace with the caller's arguments, for
        tools that want a binary path (Playwright's executable_path=link.wrap("b",
        "/usr/bin/chromium")). Deleted by close()."""
        fd, path = tempfile.mkstemp(prefix=f"netlab-{which}-", suffix=".sh")
        with os.fdopen(fd, "w") as f:
            f.write(f"#!/bin/sh\nexec ip netns exec {self.ns(which)} {shlex.quote(program)} "
                    '"$@"\n')
        os.chmod(path, 0o755)
        self._wrappers.append(Path(path))
        return path

    def socket_in(
        self, which: str, family: int = socket.AF_INET, type: int = socket.SOCK_DGRAM
    ) -> socket.socket:
        """A socket living in a namespace, for traffic from this very process."""
        sock: socket.socket | None = None

        def make() -> None:  # in a fresh thread: setns must not move the caller's thread
            nonlocal sock
            with netns.entered(self.ns(which)):
                sock = socket.socket(family, type)

        t = threading.Thread(target=make)
        t.start()
        t.join()
        if sock is None:
            raise LinkError(f"could not create a socket in {self.ns(which)}")
        return sock


def end_process(p: subprocess.Popen[Any], grace: float = 1.0) -> None:
    """Terminate, then kill after `grace` seconds; reaps it either way."""
    if p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


@atexit.register
def _close_leftovers() -> None:
    for link in list(_open_links):
        link.close()
