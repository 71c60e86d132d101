"""What a deck may be and how rendering is bounded: the slide policy in one place."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

MB = 1024**2


@dataclass(frozen=True)
class DeckLimits:
    max_bytes: int = 50 * MB  # an uploaded file
    max_pages: int = 300
    page_width: int = 1920  # classroom displays are 1080p
    max_page_height: int = 2880  # a very tall page is scaled down to fit
    thumb_width: int = 240
    # A text or drawing page stays lossless; a page whose lossless image is larger than this
    # (a photo) is stored as quality-90 WebP instead, when that is smaller.
    lossless_max_bytes: int = 300 * 1024
    lossy_quality: int = 90
    render_timeout_s: float = 300.0  # a whole deck; the renderer process is killed after it
    render_memory_bytes: int = 2048 * MB  # address space of the renderer process
    convert_timeout_s: float = 120.0  # LibreOffice, per file
    concurrent_jobs: int = 1  # two cores: one deck at a time, live media keeps the other

    @classmethod
    def from_settings(cls, raw: dict[str, Any]) -> DeckLimits:
        """The [slides] section of the configuration."""
        limits = cls()
        if "max_mb" in raw:
            limits = replace(limits, max_bytes=int(float(raw["max_mb"]) * MB))
        if "max_pages" in raw:
            limits = replace(limits, max_pages=int(raw["max_pages"]))
        return limits


class DeckError(Exception):
    """A deck refused: `message` is for people (Chinese), `detail` for developers."""

    def __init__(self, code: str, message: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status  # the HTTP status the API answers with
