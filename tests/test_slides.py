"""The deck store: real PDFs rendered by the real renderer process (pypdfium2), limits,
broken files, content addressing, LibreOffice conversion when installed."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.sample_deck import sample_deck
from server.slides.convert import find_libreoffice
from server.slides.limits import DeckError, DeckLimits
from server.slides.store import DeckStore, detect_kind
from tests.conftest import require


def pillow_pdf(pages: int) -> bytes:
    """A second producer of PDFs: Pillow's writer (pages as embedded images)."""
    images = [Image.new("RGB", (800, 600), (40 * i, 200, 255 - 40 * i)) for i in range(pages)]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:])
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> DeckStore:
    return DeckStore(tmp_path / "decks")


def leftovers(store: DeckStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir() if p.name.startswith(".tmp-"))


async def test_renders_every_page_once_with_thumbnails(store: DeckStore):
    manifest, rendered = await store.add_bytes(sample_deck(6), "第七课 二次函数.pdf")
    assert rendered and manifest["count"] == 6 and manifest["name"] == "第七课 二次函数.pdf"
    deck = store.root / manifest["id"]
    for n, info in enumerate(manifest["pages"], start=1):
        page = Image.open(deck / f"{n}.webp")
        assert page.format == "WEBP" and page.size == (1920, 1080) == (info["w"], info["h"])
        assert (deck / f"{n}.webp").stat().st_size == info["bytes"]
        assert Image.open(deck / "thumb" / f"{n}.webp").size == (240, 135)
    # text, formula, graph and table pages are lossless and small; the photo page is not
    kinds = {1: "title", 2: "text", 3: "formula", 4: "graph", 5: "photo", 6: "table"}
    for n, kind in kinds.items():
        info = manifest["pages"][n - 1]
        if kind == "photo":
            assert not info["lossless"] and info["bytes"] < 300_000
        else:
            assert info["lossless"] and info["bytes"] < 80_000, (kind, info)
    # what is drawn is there: the graph page's red parabola, the text page's dark text
    graph = Image.open(deck / "4.webp").convert("RGB")
    px = np.asarray(graph)
    reds = int(((px[..., 0] > 180) & (px[..., 1] < 60) & (px[..., 2] < 60)).sum())
    assert reds > 2000
    assert leftovers(store) == []
    assert json.loads((deck / "manifest.json").read_text())["id"] == manifest["id"]


async def test_same_file_is_rendered_once(store: DeckStore):
    data = pillow_pdf(2)
    (first, r1), (second, r2) = await asyncio.gather(
        store.add_bytes(data, "a.pdf"), store.add_bytes(data, "copy.pdf")
    )
    assert first == second and sorted([r1, r2]) == [False, True]
    before = (store.root / first["id"] / "1.webp").stat().st_mtime_ns
    third, r3 = await store.add_bytes(data, "again.pdf")
    assert third["id"] == first["id"] and not r3
    assert (store.root / first["id"] / "1.webp").stat().st_mtime_ns == before
    assert [p.name for p in store.root.iterdir()] == [first["id"]]


async def test_broken_pdf_is_refused_and_nothing_stored_is_lost(store: DeckStore):
    good, _ = await store.add_bytes(pillow_pdf(1), "good.pdf")
    for broken in (b"%PDF-1.4\n" + b"\x00garbage" * 500, sample_deck(3)[:2000]):
        with pytest.raises(DeckError) as err:
            await store.add_bytes(broken, "broken.pdf")
        assert err.value.code == "broken" and err.value.status == 422
        assert "损坏" in err.value.message
    assert store.manifest(good["id"]) == good
    assert Image.open(store.root / good["id"] / "1.webp").size[0] == 1920
    assert leftovers(store) == [] and len(list(store.root.iterdir())) == 1


async def test_too_big_too_many_pages_and_not_a_deck(tmp_path: Path):
    store = DeckStore(tmp_path / "decks", DeckLimits(max_bytes=200_000, max_pages=4))
    with pytest.raises(DeckError) as err:
        await store.add_bytes(b"%PDF-1.4\n" + bytes(200_000), "huge.pdf")
    assert err.value.code == "too_large" and err.value.status == 413 and "MB" in err.value.message
    with pytest.raises(DeckError) as err:
        await store.add_bytes(pillow_pdf(5), "long.pdf")
    assert err.value.code == "too_many_pages" and "4 页" in err.value.message
    png = io.BytesIO()
    Image.new("RGB", (10, 10)).save(png, "PNG")
    with pytest.raises(DeckError) as err:
        await store.add_bytes(png.getvalue(), "photo.png")
    assert err.value.code == "unsupported" and err.value.status == 415
    assert leftovers(store) == [] and list(store.root.iterdir()) == []


async def test_render_timeout_kills_the_renderer(tmp_path: Path):
    store = DeckStore(tmp_path / "decks", DeckLimits(render_timeout_s=0.05))
    with pytest.raises(DeckError) as err:
        await store.add_bytes(sample_deck(6), "slow.pdf")
    assert err.value.code == "render_timeout" and "超时" in err.value.message
    assert leftovers(store) == []


def test_detect_kind():
    assert detect_kind(b"%PDF-1.7 ...", "x.bin") == "pdf"
    assert detect_kind(b"PK\x03\x04....", "课件.PPTX") == "office"
    with pytest.raises(DeckError):
        detect_kind(b"PK\x03\x04....", "archive.zip")  # a zip is not a deck


def minimal_odp(*texts: str) -> bytes:
    """An OpenDocument presentation written by hand: one page per text."""
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"'
    )
    pages = "".join(
        f'<draw:page draw:name="p{i}"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" '
        f'svg:height="5cm"><draw:text-box><text:p>{t}</text:p></draw:text-box></draw:frame>'
        "</draw:page>"
        for i, t in enumerate(texts)
    )
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} office:version="1.2">'
        f"<office:body><office:presentation>{pages}</office:presentation></office:body>"
        "</office:document-content>"
    )
    mime = "application/vnd.oasis.opendocument.presentation"
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:'
        'names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry '
        f'manifest:full-path="/" manifest:media-type="{mime}"/><manifest:file-entry '
        'manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", mime)  # first and stored, as the format asks
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


async def test_office_document_converted_by_libreoffice(store: DeckStore):
    require(find_libreoffice() is not None, "LibreOffice (soffice) not installed")
    manifest, rendered = await store.add_bytes(minimal_odp("Tongke slides", "Page 2"), "课件.odp")
    assert rendered and manifest["count"] == 2 and manifest["source"] == "odp"
    page = Image.open(store.root / manifest["id"] / "1.webp").convert("L")
    assert page.width == 1920 and page.getextrema()[0] < 80  # dark text on a light page
    assert leftovers(store) == []


async def test_office_document_without_libreoffice_gets_a_clear_error(store, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DeckError) as err:
        await store.add_bytes(minimal_odp("x"), "课件.odp")
    assert err.value.code == "no_libreoffice" and "请上传 PDF" in err.value.message
    assert leftovers(store) == []


def test_clean_temporary(store: DeckStore):
    upload = store.new_upload()
    (store.root / ".tmp-job").mkdir()
    (store.root / ".tmp-job" / "deck").mkdir()
    store.clean_temporary()
    assert not upload.exists() and leftovers(store) == []
