"""The deck store: `<data dir>/decks/<sha256 of the uploaded file>/` holds `manifest.json`,
`<n>.webp` (1-based pages) and `thumb/<n>.webp`. Content-addressed: the same file uploaded
twice is rendered once. A deck appears only complete (rendered in a temporary directory,
then renamed), so a broken upload or a killed server never leaves half a deck."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import convert
from .limits import DeckError, DeckLimits
from .render import THUMB_DIR

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DECK_ID = re.compile(r"^[0-9a-f]{64}$")
OFFICE_SUFFIXES = frozenset({".ppt", ".pptx", ".pps", ".ppsx", ".odp", ".doc", ".docx", ".odt"})
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # PPT and DOC of Office 97-2003
TEMP_PREFIX = ".tmp-"

RENDER_ERRORS = {
    "broken": "文件已损坏或不是有效的 PDF，请重新导出后上传。",
    "encrypted": "PDF 文件设有密码，请去掉密码后再上传。",
    "empty": "文件中没有页面。",
    "too_complex": "课件页面过于复杂，无法处理，请简化或另存为 PDF 后上传。",
}


def deck_urls(deck_id: str) -> dict[str, str]:
    """Where a deck's pages are served; `{page}` is the 1-based page number."""
    return {
        "url": f"/decks/{deck_id}/{{page}}.webp",
        "thumb": f"/decks/{deck_id}/thumb/{{page}}.webp",
    }


def detect_kind(head: bytes, name: str) -> str:
    """'pdf' or 'office', from the file's first bytes (and, for office files, its name)."""
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if Path(name).suffix.lower() in OFFICE_SUFFIXES and head.startswith((ZIP_MAGIC, OLE_MAGIC)):
        return "office"
    raise DeckError(
        "unsupported",
        "只能上传 PDF、PPT/PPTX、DOC/DOCX 或 ODP 课件。",
        f"not a PDF or office document: {name!r}",
        status=415,
    )


class DeckStore:
    def __init__(self, root: Path, limits: DeckLimits | None = None) -> None:
        self.root = root
        self.limits = limits or DeckLimits()
        self._jobs = asyncio.Semaphore(self.limits.concurrent_jobs)
        self._pending: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._manifests: dict[str, dict[str, Any]] = {}

    # -- reading ------------------------------------------------------------------------------

    def manifest(self, deck_id: str) -> dict[str, Any] | None:
        if not DECK_ID.match(deck_id):
            return None
        cached = self._manifests.get(deck_id)
        if cached is None:
            try:
                cached = json.loads((self.root / deck_id / MANIFEST).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            self._manifests[deck_id] = cached
        return cached

    def page_file(self, deck_id: str, page: int, thumb: bool = False) -> tuple[Path, str] | None:
        """(file, content hash) of a page image, or None."""
        manifest = self.manifest(deck_id)
        if manifest is None or not 1 <= page <= len(manifest["pages"]):
            return None
        info = manifest["pages"][page - 1]
        directory = self.root / deck_id / THUMB_DIR if thumb else self.root / deck_id
        return directory / f"{page}.webp", info["thumb_sha256" if thumb else "sha256"]

    # -- adding -------------------------------------------------------------------------------

    def new_upload(self) -> Path:
        """A temporary file for an upload being received (in the store, for a cheap rename)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".upload", dir=self.root)
        os.close(fd)
        return Path(name)

    async def add_file(self, path: Path, name: str) -> tuple[dict[str, Any], bool]:
        """Add a received file (consumed: deleted afterwards). Returns (manifest, rendered):
        rendered is False when the deck was there already or another upload rendered it."""
        try:
            size = path.stat().st_size
            if size > self.limits.max_bytes:
                raise too_big(size, self.limits.max_bytes)
            if size == 0:
                raise DeckError("empty", RENDER_ERRORS["empty"], "empty upload")
            with path.open("rb") as f:
                head = f.read(1024)
            kind = detect_kind(head, name)
            deck_id = await asyncio.to_thread(_sha256, path)
            existing = self.manifest(deck_id)
            if existing is not None:
                return existing, False
            task = self._pending.get(deck_id)
            created = task is None
            if task is None:  # one job per content, however many upload it at once
                src = self._job_copy(path, name, kind)
                task = asyncio.ensure_future(self._build(deck_id, src, name, kind))
                self._pending[deck_id] = task
                task.add_done_callback(self._job_done)
            return await asyncio.shield(task), created
        finally:
            with contextlib.suppress(OSError):
                path.unlink()

    def _job_done(self, task: asyncio.Task[dict[str, Any]]) -> None:
        for deck_id, pending in list(self._pending.items()):
            if pending is task:
                del self._pending[deck_id]
        if not task.cancelled():
            task.exception()  # seen by whoever awaited it; not "never retrieved" if nobody did

    async def close(self) -> None:
        """Cancel the jobs under way (their renderer processes are killed)."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def add_bytes(self, data: bytes, name: str) -> tuple[dict[str, Any], bool]:
        if len(data) > self.limits.max_bytes:
            raise too_big(len(data), self.limits.max_bytes)
        path = self.new_upload()
        path.write_bytes(data)
        return await self.add_file(path, name)

    def _job_copy(self, path: Path, name: str, kind: str) -> Path:
        """The job's own copy of the upload, in its own directory: the upload's file goes
        when its request ends, the job may go on."""
        work = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.root))
        src = work / ("source" + (Path(name).suffix.lower() if kind == "office" else ".pdf"))
        if _same_fs(path, work):
            os.link(path, src)
        else:
            shutil.copyfile(path, src)
        return src

    async def _build(self, deck_id: str, src: Path, name: str, kind: str) -> dict[str, Any]:
        work = src.parent
        try:
            async with self._jobs:
                if kind == "office":
                    src = await convert.to_pdf(src, work / "convert", self.limits.convert_timeout_s)
                deck = work / "deck"
                deck.mkdir()
                pages = await self._render(src, deck)
            manifest = {
                "id": deck_id,
                "name": name,
                "source": kind if kind == "pdf" else Path(name).suffix.lower().lstrip("."),
                "count": len(pages),
                "pages": pages,
                "created": time.time(),
                **deck_urls(deck_id),
            }
            (deck / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
            try:
                os.rename(deck, self.root / deck_id)
            except OSError:
                if self.manifest(deck_id) is None:  # not another process's complete deck
                    raise
            self._manifests[deck_id] = manifest
            log.info("deck %s: %d pages from %r", deck_id[:12], len(pages), name)
            return manifest
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _render(self, pdf: Path, out: Path) -> list[dict[str, Any]]:
        lim = self.limits
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.slides.render",
            str(pdf),
            str(out),
            f"--width={lim.page_width}",
            f"--max-height={lim.max_page_height}",
            f"--thumb-width={lim.thumb_width}",
            f"--max-pages={lim.max_pages}",
            f"--lossless-max-bytes={lim.lossless_max_bytes}",
            f"--quality={lim.lossy_quality}",
            f"--memory-bytes={lim.render_memory_bytes}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), lim.render_timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise DeckError(
                "render_timeout",
                "课件处理超时，请简化或拆分后上传。",
                f"rendering took more than {lim.render_timeout_s:.0f} s",
                status=422,
            ) from None
        except asyncio.CancelledError:
            proc.kill()
            await proc.wait()
            raise
        try:
            result = json.loads(stdout)
        except ValueError:
            result = {}
        if proc.returncode == 0 and "pages" in result:
            return result["pages"]
        code = result.get("code", "broken")
        detail = result.get("detail") or stderr.decode(errors="replace")[-300:].strip()
        if code == "too_many_pages":
            message = f"课件页数过多（最多 {lim.max_pages} 页），请拆分后上传。"
            raise DeckError(code, message, detail, status=413)
        message = RENDER_ERRORS.get(code, RENDER_ERRORS["broken"])
        raise DeckError(code, message, f"renderer exit {proc.returncode}: {detail}", status=422)

    def clean_temporary(self) -> None:
        """Remove what a killed server left mid-upload or mid-render."""
        if not self.root.is_dir():
            return
        for entry in self.root.glob(TEMP_PREFIX + "*"):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def too_big(size: int, limit: int) -> DeckError:
    return DeckError(
        "too_large",
        f"文件过大（最大 {limit // 1024**2} MB），请压缩图片或拆分后上传。",
        f"{size} bytes > {limit}",
        status=413,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev
