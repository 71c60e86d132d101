"""Synthetic lesson sources: a camera-plus-slides video track and a tone, as aiortc tracks.

Every video frame carries its frame id as a block code in the top-left corner, so a receiver
can match what it displays to what was sent (delay, drops, PSNR/SSIM on matched frames).

Code layout, in cells of ``width / CODE_GRID`` pixels (square: positions depend on the width
only, so a yuv420p array whose Y plane is on top reads the same as a grey or BGR image):
a one-cell grey quiet zone, then 8 columns x 6 rows: row 0 is the reference 1,0,1,0,... (white,
black, ...) that gives the threshold and proves a code is there; rows 1-5 hold 40 bits, MSB first:
the 32-bit id then a CRC-8 of it.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections import OrderedDict
from collections.abc import Callable

import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)

CODE_GRID = 48  # cells across the frame width: 1280 -> 26.7 px cells, 320 -> 6.7 px
CODE_COLS, CODE_ROWS = 8, 6
_BITS = (CODE_ROWS - 1) * CODE_COLS  # 40 = 32 id + 8 CRC
_MIN_CONTRAST = 60  # white ref minus black ref, in luma levels
# Wall-clock resync threshold: after a stall (busy loop, GC) jump ahead instead of bursting
# the backlog, which would make every later frame look late to a delay benchmark.
_MAX_LAG = 0.5

FrameCallback = Callable[[int, float], None]


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _code_bits(frame_id: int) -> np.ndarray:
    """The code as a (CODE_ROWS, CODE_COLS) 0/1 array, reference row included."""
    payload = (frame_id & 0xFFFFFFFF).to_bytes(4, "big")
    word = (int.from_bytes(payload, "big") << 8) | _crc8(payload)
    bits = [(word >> (_BITS - 1 - i)) & 1 for i in range(_BITS)]
    ref = [(i + 1) % 2 for i in range(CODE_COLS)]
    return np.array(ref + bits, dtype=np.uint8).reshape(CODE_ROWS, CODE_COLS)


def _edges(width: int, n: int) -> list[int]:
    """Pixel edges of the first n cells for a frame `width` wide (float cell size, rounded)."""
    cell = width / CODE_GRID
    return [round(i * cell) for i in range(n + 1)]


def code_box(width: int) -> tuple[int, int]:
    """(width, height) in pixels of the code block with its quiet zone."""
    e = _edges(width, CODE_COLS + 2)
    return e[CODE_COLS + 2], e[CODE_ROWS + 2]


def _luma(image: object) -> tuple[np.ndarray, int]:
    """(Y plane or grey image, frame width): a 2-D view where possible, else just the corner."""
    if isinstance(image, av.VideoFrame):
        if image.format.name in ("yuv420p", "yuvj420p", "nv12", "gray"):
            plane = image.planes[0]
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            return rows[:, : plane.width], plane.width
        return image.to_ndarray(format="gray"), image.width
    arr = np.asarray(image)
    if arr.ndim == 3:
        # Crop before converting: only the corner matters.
        w = arr.shape[1]
        bw, bh = code_box(w)
        corner = np.ascontiguousarray(arr[:bh, :bw, :3])
        return cv2.cvtColor(corner, cv2.COLOR_BGR2GRAY), w
    if arr.ndim == 2:
        return arr, arr.shape[1]
    raise ValueError(f"unsupported image shape {arr.shape}")


def read_frame_id(image: object) -> int | None:
    """Decode the frame id drawn by SyntheticVideoTrack, or None if no valid code is there.

    Accepts an av.VideoFrame, a BGR (H, W, 3) array, a grey/Y (H, W) array, or a yuv420p
    (H*3/2, W) array as returned by ``frame.to_ndarray(format="yuv420p")``.
    """
    y, w = _luma(image)
    e = _edges(w, CODE_COLS + 1)
    if e[1] < 2 or y.shape[0] < e[CODE_ROWS + 1]:
        return None
    means = np.empty((CODE_ROWS, CODE_COLS), np.float32)
    for r in range(CODE_ROWS):
        y0, y1 = e[r + 1], e[r + 2]
        # Sample the middle half of each cell: edges blur under scaling and the codec.
        dy = (y1 - y0) // 4
        for c in range(CODE_COLS):
            x0, x1 = e[c + 1], e[c + 2]
            dx = (x1 - x0) // 4
            means[r, c] = y[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean()
    white = means[0, 0::2].mean()
    black = means[0, 1::2].mean()
    if white - black < _MIN_CONTRAST or means[0, 1::2].max() >= means[0, 0::2].min():
        return None
    bits = (means[1:] > (white + black) / 2).astype(np.uint8).ravel()
    word = int("".join(map(str, bits)), 2)
    frame_id, crc = word >> 8, word & 0xFF
    if _crc8(frame_id.to_bytes(4, "big")) != crc:
        return None
    return frame_id


class SendLog:
    """Wall-clock send time per frame id, bounded so long benchmarks do not grow without limit."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self.maxlen = maxlen
        self.times: OrderedDict[int, float] = OrderedDict()

    def __call__(self, frame_id: int, t: float) -> None:
        self.times[frame_id] = t
        if len(self.times) > self.maxlen:
            self.times.popitem(last=False)

    def get(self, frame_id: int) -> float | None:
        return self.times.get(frame_id)


def _smooth_texture(rng: np.random.Generator, h: int, w: int, lo: int, hi: int) -> np.ndarray:
    """Cloud-like texture: upscaled noise at a few scales, plus stripes, in [lo, hi]."""
    acc = np.zeros((h, w), np.float32)
    for scale, weight in ((64, 1.0), (16, 0.5), (4, 0.25)):
        small = rng.random((max(2, h // scale), max(2, w // scale)), dtype=np.float32)
        acc += weight * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    xx = np.arange(w, dtype=np.float32)
    acc += 0.3 * (np.sin(xx / 7.0) > 0)[None, :]  # hard edges: real work for the encoder
    acc -= acc.min()
    acc /= acc.max()
    return (lo + acc * (hi - lo)).astype(np.uint8)


def _slide_page(rng: np.random.Generator, h: int, w: int, page: int) -> np.ndarray:
    """A text-like page: a title bar, lines of word blocks, and a page-number box."""
    img = np.full((h, w), 235, np.uint8)
    u = max(1, w // 64)  # text unit
    img[2 * u : 5 * u, 2 * u : w - 2 * u] = 40  # title bar
    y = 8 * u
    while y + 2 * u < h - 6 * u:
        x = 3 * u if rng.random() > 0.2 else 6 * u  # some indented lines
        end = w - 3 * u - int(rng.integers(0, w // 3))
        while x < end:
            word = int(rng.integers(2, 7)) * u
            img[y : y + 2 * u, x : min(x + word, end)] = 30
            x += word + u
        y += 3 * u
    # Page number as a row of marks, so pages differ visibly even when shrunk.
    for i in range(page + 1):
        img[h - 4 * u : h - 2 * u, 3 * u + i * 3 * u : 5 * u + i * 3 * u] = 0
    return img


class SyntheticVideoTrack(MediaStreamTrack):
    """Camera-like motion and noise on the left, a paged slide on the right, a frame id code.

    `on_frame(frame_id, wall_time)` is called as each frame is handed to the sender;
    `send_log` (a SendLog) keeps those times for delay measurements.
    """

    kind = "video"

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 30,
        *,
        page_seconds: float = 10.0,
        pages: int = 5,
        noise: int = 12,
        start_id: int = 0,
        seed: int = 1,
        on_frame: FrameCallback | None = None,
        send_log: SendLog | None = None,
    ) -> None:
        super().__init__()
        if width % 2 or height % 2:
            raise ValueError("width and height must be even (yuv420p)")
        self.width, self.height, self.fps = width, height, fps
        self.page_seconds = page_seconds
        self.on_frame = on_frame
        self.send_log = send_log if send_log is not None else SendLog()
        self.frame_id = start_id
        self.page = 0
        self._start: float | None = None
        self._n = 0  # frames since _start, for pacing and pts
        self._pts0 = 0
        rng = np.random.default_rng(seed)

        w, h = width, height
        self._cam_w = cam_w = (int(w * 0.55) // 2) * 2
        self._pan = pan = max(8, (w // 32) // 2 * 2)
        # Brightness headroom for the noise so the uint8 add never wraps.
        self._tex_y = _smooth_texture(rng, h + 2 * pan, cam_w + 2 * pan, 40, 235 - noise)
        self._tex_u = _smooth_texture(rng, h // 2 + pan, cam_w // 2 + pan, 90, 170)
        self._tex_v = _smooth_texture(rng, h // 2 + pan, cam_w // 2 + pan, 100, 160)
        self._noise = rng.integers(0, noise + 1, (h + 64, cam_w + 64), dtype=np.uint8)
        # "Teacher": a bright disc that wanders over the camera area.
        r = max(4, h // 8)
        yy, xx = np.mgrid[-r:r, -r:r]
        self._sprite_mask = (xx * xx + yy * yy) < r * r
        self._sprite = np.clip(200 + 30 * np.sin(xx / 3.0), 0, 255).astype(np.uint8)
        self._r = r
        slide_w = w - cam_w
        self._pages = [_slide_page(rng, h, slide_w, i) for i in range(pages)]

        self._buf = np.empty((h * 3 // 2, w), np.uint8)
        self._y = self._buf[:h]
        # Chroma planes by element offset: with h/2 odd a plane does not start on a row.
        flat, area, quarter = self._buf.reshape(-1), w * h, (w // 2) * (h // 2)
        self._u = flat[area : area + quarter].reshape(h // 2, w // 2)
        self._v = flat[area + quarter :].reshape(h // 2, w // 2)
        self._u[:, cam_w // 2 :] = 128
        self._v[:, cam_w // 2 :] = 128
        self._y[:, cam_w:] = self._pages[0]

        # Code: cell index maps so drawing is one fancy-indexing gather per frame.
        bw, bh = code_box(w)
        e = np.array(_edges(w, CODE_COLS + 2))
        self._code_w, self._code_h = bw, bh
        self._code_cols = np.searchsorted(e, np.arange(bw), side="right") - 1
        self._code_rows = np.searchsorted(e, np.arange(bh), side="right") - 1

    def _draw_code(self, frame_id: int) -> None:
        padded = np.full((CODE_ROWS + 2, CODE_COLS + 2), 128, np.uint8)
        padded[1:-1, 1:-1] = _code_bits(frame_id) * 255
        self._y[: self._code_h, : self._code_w] = padded[self._code_rows][:, self._code_cols]
        self._u[: (self._code_h + 1) // 2, : (self._code_w + 1) // 2] = 128
        self._v[: (self._code_h + 1) // 2, : (self._code_w + 1) // 2] = 128

    def render(self, frame_id: int, t: float) -> np.ndarray:
        """Fill and return the internal yuv420p buffer for media time t (seconds)."""
        h, cam_w, pan = self.height, self._cam_w, self._pan
        ox = int(pan * (1 + math.sin(t * 0.9))) & ~1
        oy = int(pan * (1 + math.sin(t * 0.6 + 1.0))) & ~1
        cam = self._y[:, :cam_w]
        np.copyto(cam, self._tex_y[oy : oy + h, ox : ox + cam_w])
        nx, ny = (frame_id * 37) % 64, (frame_id * 23) % 64
        np.add(cam, self._noise[ny : ny + h, nx : nx + cam_w], out=cam)
        r = self._r
        sx = int((cam_w / 2 - r) * (1 + math.sin(t * 0.7)))
        sy = int((h / 2 - r) * (1 + 0.5 * math.sin(t * 1.3)))
        sx, sy = min(sx, cam_w - 2 * r), min(sy, h - 2 * r)
        np.copyto(cam[sy : sy + 2 * r, sx : sx + 2 * r], self._sprite, where=self._sprite_mask)
        np.copyto(
            self._u[:, : cam_w // 2],
            self._tex_u[oy // 2 : oy // 2 + h // 2, ox // 2 :][:, : cam_w // 2],
        )
        np.copyto(
            self._v[:, : cam_w // 2],
            self._tex_v[oy // 2 : oy // 2 + h // 2, ox // 2 :][:, : cam_w // 2],
        )
        page = int(t // self.page_seconds) % len(self._pages)
        if page != self.page:  # the slide region is only rewritten on a page change
            self.page = page
            self._y[:, cam_w:] = self._pages[page]
        self._draw_code(frame_id)
        return self._buf

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        period = 1.0 / self.fps
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self._n += 1
            due = self._start + self._n * period
            if now - due > _MAX_LAG:
                # Resync: keep pts monotonic, but stop trying to catch up a lost second.
                self._pts0 += round(self._n * period * VIDEO_CLOCK_RATE)
                self._start, self._n = now, 0
            elif due > now:
                await asyncio.sleep(due - now)
        t_media = self._pts0 / VIDEO_CLOCK_RATE + self._n * period
        frame_id = self.frame_id
        self.frame_id = (frame_id + 1) & 0xFFFFFFFF
        frame = av.VideoFrame.from_ndarray(self.render(frame_id, t_media), format="yuv420p")
        frame.pts = self._pts0 + round(self._n * period * VIDEO_CLOCK_RATE)
        frame.time_base = VIDEO_TIME_BASE
        sent = time.time()
        self.send_log(frame_id, sent)
        if self.on_frame is not None:
            self.on_frame(frame_id, sent)
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A continuous sine tone in 20 ms s16 mono frames, paced in real time."""

    kind = "audio"
    PTIME = 0.020

    def __init__(self, freq: float = 440.0, sample_rate: int = 48_000, volume: float = 0.3):
        super().__init__()
        self.sample_rate = sample_rate
        self.samples = int(sample_rate * self.PTIME)
        # One second of tone; integer frequencies loop seamlessly, others at most click once a
        # second, which is fine for a test source.
        n = np.arange(sample_rate + self.samples)
        self._table = (volume * 32767 * np.sin(2 * np.pi * freq * n / sample_rate)).astype(np.int16)
        self._start: float | None = None
        self._n = 0
        self._pts0 = 0
        self.time_base = fractions.Fraction(1, sample_rate)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self._n += 1
            due = self._start + self._n * self.PTIME
            if now - due > _MAX_LAG:
                self._pts0 += self._n * self.samples
                self._start, self._n = now, 0
            elif due > now:
                await asyncio.sleep(due - now)
        pts = self._pts0 + self._n * self.samples
        off = pts % self.sample_rate
        frame = av.AudioFrame.from_ndarray(
            self._table[None, off : off + self.samples], format="s16", layout="mono"
        )
        frame.pts = pts
        frame.sample_rate = self.sample_rate
        frame.time_base = self.time_base
        return frame
