"""Timeline PNG of one link-benchmark run: rates against capacity, delays, frozen periods.

matplotlib (the `bench` extra) when installed, else a plainer picture drawn with OpenCV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np


def plot_timeline(series: dict[str, list[Any]], title: str, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plot_cv2(series, title, path)
        return
    t = series["t"]
    fig, (ax_rate, ax_delay, ax_res) = plt.subplots(
        3, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1]}
    )
    ax_rate.step(t, series["capacity_kbps"], where="post", color="black", label="capacity")
    ax_rate.plot(t, series["offered_kbps"], color="tab:red", label="offered a→b")
    ax_rate.plot(t, series["delivered_kbps"], color="tab:green", label="delivered")
    if series.get("estimate_t"):
        ax_rate.plot(series["estimate_t"], series["estimate_kbps"], "--", color="tab:blue",
                     label="server estimate")
    ax_rate.set_ylabel("kbit/s")
    ax_rate.legend(loc="upper right", fontsize=8)
    ax_rate.set_title(title)
    ax_delay.plot(t, series["qdelay_p95_ms"], color="tab:orange", label="link queue p95")
    ft = series["frame_t"]
    fd = series["frame_delay_ms"]
    ax_delay.scatter(ft, fd, s=1, color="tab:purple", label="capture→shown")
    ax_delay.set_ylabel("ms")
    ax_delay.set_yscale("symlog", linthresh=100)
    ax_delay.legend(loc="upper right", fontsize=8)
    for a, b in series["freezes"]:
        for ax in (ax_rate, ax_delay, ax_res):
            ax.axvspan(a, b, color="grey", alpha=0.25, lw=0)
    ax_res.scatter(ft, series["frame_height"], s=1, color="black")
    ax_res.set_ylabel("height (px)")
    ax_res.set_xlabel("seconds since the classroom joined (grey: frozen > 200 ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_cv2(series: dict[str, list[Any]], title: str, path: Path) -> None:
    w, h, pad = 1000, 600, 40
    img = np.full((h, w, 3), 255, np.uint8)
    t_end = max(series["t"][-1] if series["t"] else 1.0, 1.0)

    def x(t: float) -> int:
        return int(pad + (w - 2 * pad) * t / t_end)

    for a, b in series["freezes"]:
        cv2.rectangle(img, (x(a), pad), (x(b), h - pad), (215, 215, 215), -1)
    panels = (
        (pad, 330, ("capacity_kbps", "offered_kbps", "delivered_kbps"),
         ((0, 0, 0), (0, 0, 220), (0, 160, 0))),
        (350, h - pad, ("qdelay_p95_ms",), ((0, 140, 255),)),
    )
    for top, bottom, keys, colors in panels:
        values = [v for k in keys for v in series[k] if v is not None]
        vmax = max(values, default=1.0) or 1.0
        for key, color in zip(keys, colors, strict=True):
            pts = [(x(t), int(bottom - (bottom - top) * (v or 0) / vmax))
                   for t, v in zip(series["t"], series[key], strict=True)]
            cv2.polylines(img, [np.array(pts, np.int32)], False, color, 1)
        cv2.putText(img, f"{', '.join(keys)} (max {vmax:.0f})", (pad, top + 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(img, title, (pad, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    cv2.imwrite(str(path), img)
