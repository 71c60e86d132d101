"""Server subprocesses for benchmarks: start on loopback, wait until healthy, read their CPU.

Each server runs alone in its own process so that its CPU time (all threads: aiortc encodes
and decodes in worker threads) is measured without the publisher's or subscribers' work.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of `pid` so far (from /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; fields after its ')' are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLK_TCK


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


async def start_server(
    module: str, args: list[str], port: int, log_path: Path, ready_timeout: float = 20.0
) -> ServerProcess:
    """Run `python -m module args…` and wait until GET /health on `port` answers 200."""
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=log_path.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    log.close()  # the child holds its own descriptor
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + ready_timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{module} exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                async with http.get(f"{server.url}/health") as resp:
                    if resp.status == 200:
                        return server
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    await server.stop()
    raise RuntimeError(f"{module} not healthy after {ready_timeout:.0f} s:\n{server.log_tail()}")
