"""What a link is: per-direction rate, queue, delay, loss and capacity schedule; named scenarios."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Direction = Literal["ab", "ba"]
DIRECTIONS: tuple[Direction, Direction] = ("ab", "ba")


@dataclass(frozen=True)
class GilbertElliott:
    """Two-state bursty loss, stepped once per packet.

    p_gb: P(good -> bad), p_bg: P(bad -> good); loss_good/loss_bad: loss probability in each
    state. Mean loss = (p_gb * loss_bad + p_bg * loss_good) / (p_gb + p_bg).
    """

    p_gb: float
    p_bg: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    @classmethod
    def from_mean(cls, loss: float, burst: float) -> GilbertElliott:
        """Bursts of `burst` packets on average (all lost in the bad state), `loss` overall."""
        if not 0 < loss < 1 or burst < 1:
            raise ValueError("need 0 < loss < 1 and burst >= 1")
        p_bg = 1.0 / burst
        return cls(p_gb=p_bg * loss / (1.0 - loss), p_bg=p_bg)

    @property
    def mean_loss(self) -> float:
        total = self.p_gb + self.p_bg
        return (self.p_gb * self.loss_bad + self.p_bg * self.loss_good) / total if total else 0.0


@dataclass(frozen=True)
class DirSpec:
    """One direction of the link.

    rate_bps None means unlimited; 0 means an outage (the queue fills and tail-drops).
    queue_ms sizes the drop-tail queue at the *current* rate (None: unbounded); it never holds
    less than one full-size packet. schedule: ((t_seconds, rate_bps), ...) from link start.
    """

    rate_bps: float | None = None
    delay_ms: float = 0.0
    queue_ms: float | None = 300.0
    loss: float = 0.0
    burst: GilbertElliott | None = None
    schedule: tuple[tuple[float, float | None], ...] = ()

    def __post_init__(self) -> None:
        if self.rate_bps is not None and self.rate_bps < 0:
            raise ValueError("rate_bps must be >= 0 or None")
        if self.delay_ms < 0 or not 0 <= self.loss <= 1:
            raise ValueError("delay_ms must be >= 0 and loss in [0, 1]")
        object.__setattr__(
            self, "schedule", tuple(sorted((float(t), r) for t, r in self.schedule))
        )

    def rate_at(self, t: float) -> float | None:
        """The scheduled rate at t seconds (ignores set_rate calls made at run time)."""
        rate = self.rate_bps
        for when, r in self.schedule:
            if when <= t:
                rate = r
        return rate


@dataclass(frozen=True)
class LinkSpec:
    ab: DirSpec = field(default_factory=DirSpec)  # ns a -> ns b
    ba: DirSpec = field(default_factory=DirSpec)  # ns b -> ns a
    seed: int = 1
    log: bool = True  # keep the per-packet log (about 22 bytes per packet)

    @classmethod
    def symmetric(cls, seed: int = 1, log: bool = True, **kw: Any) -> LinkSpec:
        d = DirSpec(**kw)
        return cls(ab=d, ba=d, seed=seed, log=log)

    def dir(self, direction: Direction) -> DirSpec:
        return self.ab if direction == "ab" else self.ba

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LinkSpec:
        raw = json.loads(text)

        def one(d: dict[str, Any]) -> DirSpec:
            burst = GilbertElliott(**d["burst"]) if d.get("burst") else None
            sched = tuple((t, r) for t, r in d.get("schedule", ()))
            return DirSpec(**{**d, "burst": burst, "schedule": sched})

        return cls(ab=one(raw["ab"]), ba=one(raw["ba"]), seed=raw["seed"], log=raw["log"])

    def with_seed(self, seed: int) -> LinkSpec:
        return replace(self, seed=seed)


def _sym(**kw: Any) -> LinkSpec:
    return LinkSpec.symmetric(**kw)


# Named conditions for the rural-link benchmark. Both directions shaped alike: the classroom's
# uplink (its camera and microphone) suffers as much as its downlink.
SCENARIOS: dict[str, LinkSpec] = {
    "rural": _sym(rate_bps=300_000, delay_ms=75, loss=0.03, queue_ms=300),
    "drop": _sym(
        rate_bps=1_000_000, delay_ms=40, queue_ms=300,
        schedule=((30, 300_000), (70, 1_000_000)),
    ),
    "dip": _sym(
        rate_bps=1_000_000, delay_ms=40, queue_ms=300,
        schedule=((20, 100_000), (50, 1_000_000)),
    ),
    "bursty": _sym(
        rate_bps=1_000_000, delay_ms=60, queue_ms=300,
        burst=GilbertElliott.from_mean(0.02, 4.0),
    ),
    "clean": _sym(rate_bps=20_000_000, delay_ms=5, queue_ms=100),
}


def scenario(name: str) -> LinkSpec:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
