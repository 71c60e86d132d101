"""A sample lesson deck as a real vector PDF, written here with no PDF library: text pages,
formula pages (Times italic and the Symbol font), a function graph drawn as paths, and
photo-like pages (an embedded RGB image). Used by the slide tests and `tongke bench slides`."""

from __future__ import annotations

import zlib

import numpy as np

PAGE_W, PAGE_H = 960, 540  # 16:9 in PDF points
KINDS = ("title", "text", "formula", "graph", "photo", "table")


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _text(x: float, y: float, size: float, font: str, text: str) -> str:
    return f"BT /{font} {size} Tf {x} {y} Td ({_esc(text)}) Tj ET\n"


def _page_content(kind: str, n: int) -> tuple[str, bool]:
    """(content stream, uses the photo image) of page n of a kind."""
    out = [f"0.95 0.96 1 rg 0 0 {PAGE_W} {PAGE_H} re f\n", "0.1 0.2 0.5 rg\n"]
    out.append(f"0 0 0 RG 0.2 0.3 0.6 rg 0 {PAGE_H - 70} {PAGE_W} 70 re f\n")
    out.append("1 1 1 rg" + "\n" + _text(40, PAGE_H - 48, 30, "F1", f"Lesson 7  -  {kind} {n}"))
    out.append("0.05 0.05 0.1 rg\n")
    if kind == "title":
        out.append(_text(80, 300, 54, "F1", "Quadratic Functions"))
        out.append(_text(80, 240, 28, "F2", "y = ax^2 + bx + c,  a != 0"))
        out.append(_text(80, 120, 20, "F1", f"Grade 9 Mathematics - sample deck page {n}"))
    elif kind == "text":
        lines = [
            "The graph of a quadratic function is a parabola.",
            "If a > 0 it opens upward; if a < 0 it opens downward.",
            "The axis of symmetry is the line x = -b / 2a.",
            "The vertex is the lowest or highest point of the graph.",
            f"Exercise {n}: find the vertex of y = x^2 - {n}x + 3.",
            "Discuss with the class next to you, then write the answer.",
        ]
        for i, line in enumerate(lines):
            out.append(_text(70, 400 - i * 52, 26, "F1", "-  " + line))
    elif kind == "formula":
        # x = (-b +- sqrt(b^2 - 4ac)) / 2a with a real fraction bar
        out.append(_text(120, 330, 40, "F2", "x ="))
        out.append(_text(220, 360, 36, "F2", "-b "))
        out.append(_text(275, 360, 36, "F3", "\xb1 \xd6"))
        out.append(_text(345, 360, 36, "F2", "b"))
        out.append(_text(365, 378, 22, "F2", "2"))
        out.append(_text(385, 360, 36, "F2", " - 4ac"))
        out.append("0 0 0 RG 2 w 340 398 m 500 398 l S 215 342 m 510 342 l S\n")
        out.append(_text(340, 300, 36, "F2", "2a"))
        out.append(_text(120, 200, 32, "F3", "D"))
        out.append(_text(145, 200, 32, "F2", "= b\xb2 - 4ac,"))
        out.append(_text(380, 200, 32, "F3", "S = pr\xb2,   \xf2"))
        out.append(_text(585, 200, 32, "F2", "x dx = x\xb2/2 + C"))
        out.append(_text(120, 130, 24, "F1", f"Formula card {n}: when is D < 0?"))
    elif kind == "graph":
        ox, oy, sx, sy = 480, 120, 60, 30
        out.append("0.3 0.3 0.3 RG 1 w\n")
        for gx in range(-7, 8):
            out.append(f"{ox + gx * sx} 80 m {ox + gx * sx} 460 l S\n")
        out.append("0 0 0 RG 2.5 w 60 120 m 900 120 l S 480 80 m 480 460 l S\n")
        a = 0.5 + (n % 3) * 0.25
        pts = [(x / 10, a * (x / 10) ** 2) for x in range(-60, 61)]
        pts = [(px, py) for px, py in pts if oy + py * sy < 470]
        path = " ".join(
            f"{ox + px * sx:.1f} {oy + py * sy:.1f} {'m' if i == 0 else 'l'}"
            for i, (px, py) in enumerate(pts)
        )
        out.append(f"0.85 0.1 0.1 RG 4 w {path} S\n")
        out.append(_text(620, 420, 26, "F2", f"y = {a}x^2"))
    elif kind == "photo":
        out.append("q 760 0 0 428 100 20 cm /Im1 Do Q\n")
        out.append(_text(100, 456, 18, "F1", f"Photo {n}: a field trip to the river"))
        return "".join(out), True
    elif kind == "table":
        for r in range(6):
            for c in range(4):
                x, y = 100 + c * 190, 400 - r * 55
                out.append(f"0.4 0.4 0.4 RG 1 w {x} {y} 190 55 re S\n")
                label = ("x", "y", "y'", "area")[c] if r == 0 else f"{(r - 3) * (c + 1) * n}"
                out.append(_text(x + 20, y + 18, 22, "F1", label))
    return "".join(out), False


def _photo(seed: int, w: int = 1600, h: int = 900) -> np.ndarray:
    """Photo-like: smooth sky and hills, texture and sensor noise (no two pixels alike)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = h * 0.45 + 40 * np.sin(xx / 170 + seed) + 25 * np.sin(xx / 53)
    sky = np.stack([120 + 60 * yy / h, 160 + 50 * yy / h, 235 - 20 * yy / h], axis=-1)
    texture = 40 + 30 * np.sin(xx / 9) * np.sin(yy / 7)
    grass = np.stack([texture, 120 + 40 * yy / h, np.full_like(xx, 50)], axis=-1)
    ground = yy[..., None] > horizon[..., None]
    img = np.where(ground, grass, sky)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def sample_deck(pages: int = 12, seed: int = 0) -> bytes:
    """A PDF of `pages` pages cycling through KINDS."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in at the end
    page_tree = add(b"")
    fonts = [
        add(f"<< /Type /Font /Subtype /Type1 /BaseFont /{name}{enc} >>".encode())
        for name, enc in (
            ("Helvetica", " /Encoding /WinAnsiEncoding"),
            ("Times-Italic", " /Encoding /WinAnsiEncoding"),
            ("Symbol", ""),
        )
    ]
    font_res = " ".join(f"/F{i + 1} {ref} 0 R" for i, ref in enumerate(fonts))
    kids = []
    for n in range(1, pages + 1):
        kind = KINDS[(n - 1) % len(KINDS)]
        content, photo = _page_content(kind, n)
        data = content.encode("latin-1")
        stream = add(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
        xobject = ""
        if photo:
            pixels = _photo(seed + n)
            raw = zlib.compress(pixels.tobytes(), 6)
            head = (
                f"<< /Type /XObject /Subtype /Image /Width {pixels.shape[1]} "
                f"/Height {pixels.shape[0]} /ColorSpace /DeviceRGB /BitsPerComponent 8 "
                f"/Filter /FlateDecode /Length {len(raw)} >>\nstream\n"
            )
            image = add(head.encode() + raw + b"\nendstream")
            xobject = f" /XObject << /Im1 {image} 0 R >>"
        kids.append(
            add(
                (
                    f"<< /Type /Page /Parent {page_tree} 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
                    f"/Resources << /Font << {font_res} >>{xobject} >> /Contents {stream} 0 R >>"
                ).encode()
            )
        )
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {page_tree} 0 R >>".encode()
    refs = " ".join(f"{k} 0 R" for k in kids)
    objects[page_tree - 1] = f"<< /Type /Pages /Kids [{refs}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        catalog,
        xref,
    )
    return bytes(out)
