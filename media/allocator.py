"""Spends one subscriber's estimate on its tracks, by priority (see policy.py).

Pure and stateful: `allocate()` is called with the estimate and the tracks' layer bitrates;
it returns the layer each video track should be on (0 = highest, None = paused). Hysteresis
lives here, so the callers only switch at keyframes.

An upgrade is a trial: the estimate of an app-limited sender is a guess until the new layer
flows. A layer that had to come down again within UPGRADE_TRIAL_S is not tried again for
UPGRADE_BACKOFF_S, doubling on each failure (an honest probe is the better cure; this keeps a
1 Mbps link from being flooded with 720p every few seconds meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import policy


@dataclass(frozen=True)
class VideoDemand:
    track: str  # the subscriber-side id (a mid)
    priority: int  # policy.PRIORITY_*
    layers_bps: tuple[int, ...]  # highest layer first
    pausable: bool = True


class Allocator:
    def __init__(self) -> None:
        self._current: dict[str, int | None] = {}
        self._upgrade_ok_since: float | None = None
        self._upgraded: dict[str, tuple[float, int | None]] = {}  # track -> (when, from layer)
        self._caps: dict[str, tuple[int, float]] = {}  # track -> (best layer allowed, until)
        self._backoff: dict[str, float] = {}

    def allocate(
        self,
        budget_bps: float,
        audio_bps: float,
        videos: list[VideoDemand],
        now: float,
        proven_bps: float | None = None,
    ) -> dict[str, int | None]:
        """`budget_bps`: the estimate, what may flow; `proven_bps`: what the path has shown
        it carries (media/prober.py), the most an upgrade may spend. What flows now is cut
        only by the estimate."""
        budget = budget_bps - audio_bps  # audio is never cut
        spendable = budget if proven_bps is None else min(budget, proven_bps - audio_bps)
        ordered = sorted(videos, key=lambda v: v.priority)
        self._caps = {t: c for t, c in self._caps.items() if c[1] > now}
        ideal = self._fit(spendable, ordered)
        # A new track starts where the estimate says; hysteresis applies to changes only.
        current = {v.track: self._current.get(v.track, ideal[v.track]) for v in ordered}
        if self._cost(ordered, current) > budget * policy.DOWNGRADE_MARGIN:
            chosen = self._at_most(current, self._fit(budget, ordered), ordered)  # down at once
            self._upgrade_ok_since = None
        elif self._cost(ordered, ideal) > self._cost(ordered, current):
            # Up only with headroom held for a while: no flapping on a noisy estimate.
            fits = self._cost(ordered, ideal) * policy.UPGRADE_HEADROOM <= spendable
            if not fits:
                ideal = self._fit(spendable / policy.UPGRADE_HEADROOM, ordered)
                fits = self._cost(ordered, ideal) > self._cost(ordered, current)
            if fits and self._upgrade_ok_since is None:
                self._upgrade_ok_since = now
            if fits and now - self._upgrade_ok_since >= policy.UPGRADE_HOLD_S:
                chosen = ideal
                self._upgrade_ok_since = None
            else:
                chosen = current
                if not fits:
                    self._upgrade_ok_since = None
        else:
            chosen = current
            self._upgrade_ok_since = None
        self._judge_trials(ordered, current, chosen, now)
        self._current = dict(chosen)
        return chosen

    def _judge_trials(self, ordered, current, chosen, now: float) -> None:  # noqa: ANN001
        for v in ordered:
            before, after = current[v.track], chosen[v.track]
            if after == before:
                continue
            if _lower(before, after) == before:  # went up: a trial starts
                self._upgraded[v.track] = (now, before)
                continue
            trial = self._upgraded.pop(v.track, None)
            if trial is not None and now - trial[0] < policy.UPGRADE_TRIAL_S:
                backoff = self._backoff.get(v.track, policy.UPGRADE_BACKOFF_S / 2) * 2
                backoff = min(backoff, policy.UPGRADE_BACKOFF_MAX_S)
                self._backoff[v.track] = backoff
                best = trial[1] if trial[1] is not None else self._lowest(v)
                self._caps[v.track] = (best, now + backoff)

    def next_step_bps(self, audio_bps: float, videos: list[VideoDemand]) -> float | None:
        """What everything would cost after the next upgrade (a paused track resumed, else one
        track one layer up, in priority order, as `_fit` spends), audio included: the rate to
        prove before taking it. None when nothing can go up."""
        ordered = sorted(videos, key=lambda v: v.priority)
        if any(v.track not in self._current for v in ordered):
            return None  # not allocated yet
        current = {v.track: self._current[v.track] for v in ordered}
        step = None
        for v in ordered:
            if current[v.track] is None:
                step = {**current, v.track: self._lowest(v)}
                break
        for v in ordered if step is None else ():
            layer = current[v.track]
            best = self._caps[v.track][0] if v.track in self._caps else 0
            if layer is not None and layer > best:
                step = {**current, v.track: layer - 1}
                break
        return None if step is None else audio_bps + self._cost(ordered, step)

    @staticmethod
    def _lowest(v: VideoDemand) -> int:
        return len(v.layers_bps) - 1

    @staticmethod
    def _cost(videos: list[VideoDemand], layers: dict[str, int | None]) -> float:
        return sum(
            v.layers_bps[layer] for v in videos if (layer := layers.get(v.track)) is not None
        )

    def _fit(self, budget: float, ordered: list[VideoDemand]) -> dict[str, int | None]:
        """The best layers that fit: lowest layer for each in priority order, then upgrades."""
        chosen: dict[str, int | None] = {}
        left = budget
        for v in ordered:
            lowest = v.layers_bps[self._lowest(v)]
            if lowest <= left or not v.pausable:
                chosen[v.track] = self._lowest(v)
                left -= lowest
            else:
                chosen[v.track] = None
        for v in ordered:  # spend what is left, highest priority first
            layer = chosen[v.track]
            best = self._caps[v.track][0] if v.track in self._caps else 0
            while layer is not None and layer > best:
                extra = v.layers_bps[layer - 1] - v.layers_bps[layer]
                if extra > left:
                    break
                left -= extra
                layer -= 1
            chosen[v.track] = layer
        return chosen

    @staticmethod
    def _at_most(current, ideal, ordered) -> dict[str, int | None]:
        """Per track, the lower of current and ideal (never raise while cutting)."""
        return {v.track: _lower(current[v.track], ideal[v.track]) for v in ordered}


def _lower(a: int | None, b: int | None) -> int | None:
    """The lower-quality layer of two (None, paused, is lowest)."""
    if a is None or b is None:
        return None
    return max(a, b)
