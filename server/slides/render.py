"""Render a PDF's pages to WebP images and thumbnails: run as its own process
(`python -m server.slides.render SRC OUT ...`) so that a hostile file can only hurt that
process, which the store kills on timeout and whose memory is capped.

Prints one JSON object: {"pages": [{"w", "h", "bytes", "sha256", "thumb_sha256", "lossless"}]}
or, exiting with status 2, {"code": ..., "detail": ...}.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

THUMB_DIR = "thumb"
RENDER_NICENESS = 10


class RenderRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def encode_page(image: Any, lossless_max_bytes: int, quality: int) -> tuple[bytes, bool]:
    """Lossless WebP for text and drawings (sharp, and small); a photo page whose lossless
    image is large goes lossy at high quality when that is smaller."""
    buf = io.BytesIO()
    image.save(buf, "WEBP", lossless=True, quality=50, method=4)
    data = buf.getvalue()
    if len(data) <= lossless_max_bytes:
        return data, True
    buf = io.BytesIO()
    image.save(buf, "WEBP", quality=quality, method=4)
    lossy = buf.getvalue()
    return (lossy, False) if len(lossy) < len(data) else (data, True)


def render(
    src: Path,
    out: Path,
    width: int,
    max_height: int,
    thumb_width: int,
    max_pages: int,
    lossless_max_bytes: int,
    quality: int,
) -> list[dict[str, Any]]:
    import pypdfium2 as pdfium
    from PIL import Image

    try:
        pdf = pdfium.PdfDocument(str(src))
    except pdfium.PdfiumError as exc:
        code = "encrypted" if "password" in str(exc).lower() else "broken"
        raise RenderRefused(code, f"pdfium cannot open the file: {exc}") from exc
    try:
        count = len(pdf)
        if count == 0:
            raise RenderRefused("empty", "the document has no pages")
        if count > max_pages:
            raise RenderRefused("too_many_pages", f"{count} pages > {max_pages}")
        (out / THUMB_DIR).mkdir(parents=True, exist_ok=True)
        pages = []
        for index in range(count):
            page = pdf[index]
            try:
                pw, ph = page.get_size()
                if pw <= 0 or ph <= 0:
                    raise RenderRefused("broken", f"page {index + 1} has no size")
                scale = min(width / pw, max_height / ph)
                image = page.render(scale=scale, draw_annots=True).to_pil().convert("RGB")
            except pdfium.PdfiumError as exc:
                raise RenderRefused("broken", f"page {index + 1}: {exc}") from exc
            finally:
                page.close()
            data, lossless = encode_page(image, lossless_max_bytes, quality)
            (out / f"{index + 1}.webp").write_bytes(data)
            thumb = image.copy()
            thumb.thumbnail((thumb_width, thumb_width * 4), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            thumb.save(buf, "WEBP", quality=80, method=4)
            (out / THUMB_DIR / f"{index + 1}.webp").write_bytes(buf.getvalue())
            pages.append(
                {
                    "w": image.width,
                    "h": image.height,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "thumb_sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                    "lossless": lossless,
                }
            )
        return pages
    finally:
        pdf.close()


def limit_memory(max_bytes: int) -> None:
    """Cap this process's address space: a page that asks for gigabytes fails instead."""
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.slides.render")
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--max-height", type=int, required=True)
    parser.add_argument("--thumb-width", type=int, required=True)
    parser.add_argument("--max-pages", type=int, required=True)
    parser.add_argument("--lossless-max-bytes", type=int, required=True)
    parser.add_argument("--quality", type=int, required=True)
    parser.add_argument("--memory-bytes", type=int, default=0)
    args = parser.parse_args(argv)
    os.nice(RENDER_NICENESS)  # live lessons on this server come first
    if args.memory_bytes:
        limit_memory(args.memory_bytes)
    try:
        pages = render(
            args.src,
            args.out,
            args.width,
            args.max_height,
            args.thumb_width,
            args.max_pages,
            args.lossless_max_bytes,
            args.quality,
        )
    except RenderRefused as exc:
        print(json.dumps({"code": exc.code, "detail": str(exc)}))
        return 2
    except MemoryError:
        print(json.dumps({"code": "too_complex", "detail": "out of memory while rendering"}))
        return 2
    print(json.dumps({"pages": pages}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
