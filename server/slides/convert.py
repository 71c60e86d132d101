"""Office documents (PPTX, DOCX, ODP, ...) to PDF through LibreOffice headless, when the
server has it (Debian: `apt-get install libreoffice-impress libreoffice-writer`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from pathlib import Path

from .limits import DeckError

NO_LIBREOFFICE = "服务器未安装 LibreOffice，请上传 PDF。"
CONVERT_NICENESS = 10


def find_libreoffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


async def to_pdf(src: Path, work: Path, timeout_s: float) -> Path:
    """Convert `src` into `work/out/<stem>.pdf`. `work` is a private directory: LibreOffice
    gets its own profile there, so conversions never share (or lock) one."""
    binary = find_libreoffice()
    if binary is None:
        raise DeckError("no_libreoffice", NO_LIBREOFFICE, "soffice not on PATH", status=415)
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--headless",
        "--norestore",
        "--nolockcheck",
        f"-env:UserInstallation={(work / 'profile').as_uri()}",
        "--convert-to",
        "pdf",
        "--outdir",
        str(out),
        str(src),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group: a timeout kills every child too
        preexec_fn=lambda: os.nice(CONVERT_NICENESS),  # live lessons on this server come first
        env={**os.environ, "HOME": str(work)},
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise DeckError(
            "convert_timeout",
            "课件转换超时，请另存为 PDF 后上传。",
            f"libreoffice took more than {timeout_s:.0f} s",
            status=422,
        ) from None
    pdf = out / (src.stem + ".pdf")
    if proc.returncode != 0 or not pdf.exists():
        tail = output.decode(errors="replace")[-300:].strip()
        raise DeckError(
            "convert_failed",
            "课件转换失败，请另存为 PDF 后上传。",
            f"libreoffice exit {proc.returncode}: {tail}",
            status=422,
        )
    return pdf
