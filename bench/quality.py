"""Picture quality of a received frame against the frame that was sent: PSNR and SSIM on luma.

The reference is re-rendered from the synthetic lesson (frame id and media time) and scaled to
the received size, so a 180p picture is judged as a 180p picture (its resolution loss shows in
the layer, not here). No VMAF on this machine; SSIM is the usual Gaussian-window SSIM
(Wang et al. 2004: 11x11, sigma 1.5) computed with OpenCV.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from media.synthetic import SyntheticVideoTrack

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 100.0 if mse <= 1e-10 else 10 * math.log10(255 * 255 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    x, y = a.astype(np.float32), b.astype(np.float32)

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + _C1) * (2 * sxy + _C2)
    den = (mx * mx + my * my + _C1) * (sxx + syy + _C2)
    return float(np.mean(num / den))


class MediaTimes:
    """Frame id -> media time, read incrementally from the publisher's frames file
    (`id mono wall media_t` per line) while the publisher still writes it."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._pos = 0
        self._partial = ""
        self.times: dict[int, float] = {}

    def get(self, frame_id: int) -> float | None:
        if frame_id not in self.times:
            self._read_more()
        return self.times.get(frame_id)

    def _read_more(self) -> None:
        try:
            with self._path.open() as f:
                f.seek(self._pos)
                chunk = f.read()
                self._pos = f.tell()
        except OSError:
            return
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()  # a line still being written
        for line in lines:
            parts = line.split()
            if len(parts) == 4:
                self.times[int(parts[0])] = float(parts[3])


class Judge:
    """Scores received luma planes against re-rendered references."""

    def __init__(self, lesson: SyntheticVideoTrack, media_times: MediaTimes) -> None:
        self._lesson = lesson
        self._times = media_times

    def score(self, frame_id: int, luma: np.ndarray) -> tuple[float, float] | None:
        t = self._times.get(frame_id)
        if t is None:
            return None
        ref = self._lesson.render(frame_id, t)[: self._lesson.height]
        h, w = luma.shape
        if (w, h) != (self._lesson.width, self._lesson.height):
            ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
        return psnr(luma, ref), ssim(luma, ref)
