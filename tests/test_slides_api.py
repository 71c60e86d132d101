"""Decks over HTTP (aiohttp's test client against the real application): upload with a
teacher's token, refusals, and pages served immutable with content-hash ETags."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from bench.sample_deck import sample_deck
from server.app import DECKS, create_app
from server.config import load_settings
from server.tokens import TokenIssuer
from tests.conftest import TEST_SECRET, free_port
from tests.test_slides import pillow_pdf


def app_settings(tmp_path: Path, **slides: float):
    return load_settings(
        None,
        {
            "server": {"host": "127.0.0.1", "port": free_port()},
            "tokens": {"secret": TEST_SECRET},
            "data": {"dir": str(tmp_path / "var")},
            "media": {"ladder": False},
            "slides": slides,
        },
    )


@pytest.fixture
async def client(tmp_path: Path):
    """Small limits, to test refusals cheaply."""
    app = create_app(app_settings(tmp_path, max_mb=1, max_pages=8))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_a_deck_larger_than_other_requests_may_be(tmp_path: Path):
    """The application takes 1 MB per request; a deck streams past that, up to its own limit."""
    deck = sample_deck(6)  # with a photo page: 3 MB
    assert len(deck) > 2 * 1024**2
    async with TestClient(TestServer(create_app(app_settings(tmp_path)))) as c:
        r = await upload(c, deck, "photos.pdf")
        assert r.status == 201, await r.text()
        assert (await r.json())["count"] == 6


def token(role: str, room: str = "math7") -> str:
    return TokenIssuer(TEST_SECRET).mint(room, role, "王老师" if role == "teacher" else "七(1)班")


async def upload(client: TestClient, data: bytes, name: str, role: str = "teacher"):
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/pdf")
    return await client.post(f"/api/decks?token={token(role)}", data=form)


async def test_upload_then_pages_are_cached_for_good(client: TestClient):
    deck = sample_deck(3)
    r = await upload(client, deck, "二次函数.pdf")
    assert r.status == 201, await r.text()
    manifest = await r.json()
    assert manifest["count"] == 3 and manifest["name"] == "二次函数.pdf"
    assert manifest["id"] == hashlib.sha256(deck).hexdigest()
    # the same file again, as a raw body with a bearer token: not rendered again
    r = await client.post(
        "/api/decks?name=again.pdf",
        data=deck,
        headers={"Authorization": f"Bearer {token('teacher')}"},
    )
    assert r.status == 200 and (await r.json())["id"] == manifest["id"]

    r = await client.get(f"/decks/{manifest['id']}/manifest.json")
    assert r.status == 200 and (await r.json())["pages"] == manifest["pages"]
    assert "immutable" in r.headers["Cache-Control"] and r.headers["ETag"] == f'"{manifest["id"]}"'

    page_url = manifest["url"].replace("{page}", "2")
    r = await client.get(page_url)
    body = await r.read()
    assert r.status == 200 and r.content_type == "image/webp"
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert r.headers["ETag"] == f'"{manifest["pages"][1]["sha256"]}"'
    assert Image.open(io.BytesIO(body)).size == (1920, 1080)
    # a classroom that has the page asks at most whether it changed: 304, no body
    r = await client.get(page_url, headers={"If-None-Match": r.headers["ETag"]})
    assert r.status == 304 and await r.read() == b""
    assert "immutable" in r.headers["Cache-Control"]

    r = await client.get(manifest["thumb"].replace("{page}", "3"))
    thumb = await r.read()
    assert r.status == 200 and Image.open(io.BytesIO(thumb)).width == 240
    assert r.headers["ETag"] == f'"{manifest["pages"][2]["thumb_sha256"]}"'

    for missing in (
        f"/decks/{manifest['id']}/0.webp",
        f"/decks/{manifest['id']}/4.webp",
        f"/decks/{'0' * 64}/1.webp",
        f"/decks/{'0' * 64}/manifest.json",
        "/decks/../secret/1.webp",
    ):
        r = await client.get(missing)
        assert r.status == 404, missing


async def test_only_a_teacher_uploads(client: TestClient):
    r = await upload(client, sample_deck(1), "x.pdf", role="classroom")
    assert r.status == 403 and (await r.json())["code"] == "not_allowed"
    r = await client.post("/api/decks", data=sample_deck(1))
    body = await r.json()
    assert r.status == 401 and body["code"] == "bad_token" and body["message"]


async def test_refusals_are_clear(client: TestClient):
    r = await upload(client, b"%PDF-1.4\n" + bytes(1024**2 + 10), "big.pdf")
    body = await r.json()
    assert r.status == 413 and body["code"] == "too_large" and "1 MB" in body["message"]
    r = await upload(client, pillow_pdf(9), "long.pdf")
    body = await r.json()
    assert r.status == 413 and body["code"] == "too_many_pages" and "8 页" in body["message"]
    r = await upload(client, b"%PDF-1.7\n" + b"not really" * 100, "broken.pdf")
    body = await r.json()
    assert r.status == 422 and body["code"] == "broken" and body["detail"]
    r = await upload(client, b"hello", "notes.txt")
    assert r.status == 415 and (await r.json())["code"] == "unsupported"
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("other", "x")
    r = await client.post(f"/api/decks?token={token('teacher')}", data=form)
    assert r.status == 400 and (await r.json())["code"] == "bad_upload"
    store = client.server.app[DECKS]
    assert not store.root.exists() or list(store.root.iterdir()) == []  # nothing half-kept
