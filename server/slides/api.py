"""Decks over HTTP: upload (a teacher's token), and the pages, thumbnails and manifest of a
deck, served immutable: a deck's id is the hash of its file and a page's ETag the hash of its
image, so a classroom that has a page never fetches it again (not even a 304 while its cache
holds it). No token on the reads: a deck id is unguessable, and one URL per page for every
classroom is what lets caches share it. A member of a live room may say who it is
(`Authorization: Bearer`): its prefetched pages are then paced beside its lesson (pacing.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from ..protocol import error
from ..tokens import TokenError, TokenIssuer
from .limits import DeckError
from .pacing import DeckPacing, write_paced
from .store import DeckStore, too_big

log = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
CHUNK = 256 * 1024


class DeckApi:
    def __init__(
        self, store: DeckStore, issuer: TokenIssuer, pacing: DeckPacing | None = None
    ) -> None:
        self.store = store
        self.issuer = issuer
        self.pacing = pacing

    def routes(self) -> list[web.RouteDef]:
        deck = "/decks/{deck:[0-9a-f]{64}}"
        return [
            web.post("/api/decks", self.upload),
            web.get(f"{deck}/manifest.json", self.manifest),
            web.get(deck + "/{page:[0-9]{1,4}}.webp", self.page),
            web.get(deck + "/thumb/{page:[0-9]{1,4}}.webp", self.thumb),
        ]

    # -- upload -------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        """The file as multipart field `file`, or as the raw body with `?name=`."""
        try:
            identity = self.issuer.verify_request(
                request.query.get("token"), request.headers.get("Authorization")
            )
        except TokenError as exc:
            return web.json_response(error(exc.code, exc.message, exc.detail), status=401)
        if identity.role != "teacher":
            return web.json_response(
                error("not_allowed", "只有主讲教师可以上传课件。", "teacher token required"),
                status=403,
            )
        limit = self.store.limits.max_bytes
        try:
            if request.content_length is not None and request.content_length > limit + CHUNK:
                raise too_big(request.content_length, limit)
            path, name = await self._receive(request)
            manifest, rendered = await self.store.add_file(path, name)
        except DeckError as exc:
            log.info("deck refused (%s): %s", exc.code, exc.detail)
            return web.json_response(error(exc.code, exc.message, exc.detail), status=exc.status)
        return web.json_response(manifest, status=201 if rendered else 200)

    async def _receive(self, request: web.Request) -> tuple[Path, str]:
        """Stream the upload into a file of the store, refusing it once it passes the limit."""
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            while part is not None and not (
                isinstance(part, BodyPartReader) and part.name == "file"
            ):
                part = await reader.next()
            if part is None:
                raise DeckError("bad_upload", "请选择要上传的课件文件。", "no field 'file'")
            name = part.filename or "课件.pdf"
            chunks = _part_chunks(part)
        else:
            name = request.query.get("name") or "课件.pdf"
            chunks = request.content.iter_chunked(CHUNK)
        path = self.store.new_upload()
        size = 0
        try:
            with path.open("wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.store.limits.max_bytes:
                        raise too_big(size, self.store.limits.max_bytes)
                    f.write(chunk)
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        # browsers send UTF-8 names as they are, some clients percent-encoded
        return path, Path(unquote(name)).name[:200] or "课件.pdf"

    # -- reads --------------------------------------------------------------------------------

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        deck_id = request.match_info["deck"]
        manifest = self.store.manifest(deck_id)
        if manifest is None:
            raise _not_found()
        if _fresh(request, deck_id):
            return _not_modified(deck_id)
        response = web.json_response(manifest, headers={"Cache-Control": IMMUTABLE})
        response.etag = deck_id
        return response

    async def page(self, request: web.Request) -> web.StreamResponse:
        return await self._image(request, thumb=False)

    async def thumb(self, request: web.Request) -> web.StreamResponse:
        return await self._image(request, thumb=True)

    async def _image(self, request: web.Request, thumb: bool) -> web.StreamResponse:
        deck, page = request.match_info["deck"], int(request.match_info["page"])
        found = self.store.page_file(deck, page, thumb)
        if found is None:
            raise _not_found()
        path, digest = found
        if _fresh(request, digest):
            return _not_modified(digest)
        try:
            body = await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise _not_found() from None
        pace = None
        if self.pacing is not None and request.method == "GET":
            pace = self.pacing.pace(request.headers.get("Authorization"), deck, page, thumb)
        if pace is None:
            response = web.Response(
                body=body, content_type="image/webp", headers={"Cache-Control": IMMUTABLE}
            )
            response.etag = digest
            return response
        paced = web.StreamResponse(headers={"Cache-Control": IMMUTABLE})
        paced.content_type = "image/webp"
        paced.content_length = len(body)
        paced.etag = digest
        await paced.prepare(request)
        started = asyncio.get_running_loop().time()
        try:
            whole = await write_paced(paced.write, body, pace.rate, pace.bucket)
            await paced.write_eof()
        except ConnectionResetError:  # the classroom went away mid-page
            return paced
        log.debug("deck %s page %d%s: %d bytes in %.2f s (%s)", deck[:8], page,
                  " thumb" if thumb else "", len(body),
                  asyncio.get_running_loop().time() - started, "paced" if whole else "caught up")
        return paced


async def _part_chunks(part: BodyPartReader):
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


def _fresh(request: web.Request, etag: str) -> bool:
    wanted = request.if_none_match
    return bool(wanted) and any(e.value == etag or e.value == "*" for e in wanted)


def _not_modified(etag: str) -> web.Response:
    response = web.Response(status=304, headers={"Cache-Control": IMMUTABLE})
    response.etag = etag
    return response


def _not_found() -> web.HTTPNotFound:
    body = error("unknown_deck", "找不到该课件或页面。", "no such deck or page")
    text = json.dumps(body, ensure_ascii=False)
    return web.HTTPNotFound(text=text, content_type="application/json")
