"""A participant's named media (camera, mic, screen) as one or more layer streams.

The teacher page sends its camera as up to three tracks (h, m, l: 720p, 360p, 180p); they are
grouped here as one publication, so a subscriber asks for "the teacher's camera" and the
allocator picks the layer.
"""

from __future__ import annotations

from . import policy
from .ladder import Ladder
from .source import Source

LAYER_NAMES = ("h", "m", "l")  # highest quality first


class Publication:
    def __init__(self, participant_id: str, name: str, kind: str, ladder: bool = True) -> None:
        self.participant_id = participant_id
        self.name = name  # camera | mic | screen
        self.kind = kind
        self._layers: dict[str, Source] = {}  # what the publisher sends
        self._ladder: Ladder | None = None  # what we make when it sends one camera layer
        self._ladder_allowed = ladder

    @property
    def id(self) -> str:
        return f"{self.participant_id}:{self.name}"

    @property
    def layers(self) -> list[Source]:
        """Layer streams, highest quality first."""
        return [source for _, source in self._ordered()]

    def _ordered(self) -> list[tuple[str, Source]]:
        made = self._ladder.sources if self._ladder is not None else {}
        return [
            (n, self._layers.get(n) or made[n])
            for n in LAYER_NAMES
            if n in self._layers or n in made
        ]

    def _update_ladder(self) -> None:
        """A lone camera layer gets server-made lower layers; a layered publisher does not."""
        top = self._layers.get(LAYER_NAMES[0])
        wanted = (
            self._ladder_allowed
            and self.name == "camera"
            and list(self._layers) == ["h"]
            and top is not None
            and top.mime_type in ("video/VP8", "video/H264")
        )
        if self._ladder is not None and (not wanted or self._ladder.top is not top):
            self._ladder.close()
            self._ladder = None
        if wanted and self._ladder is None and top is not None and top.mime_type:
            self._ladder = Ladder(top, top.mime_type.split("/")[1].lower())

    @property
    def mime_type(self) -> str | None:
        layers = self.layers
        return layers[0].mime_type if layers else None

    def set_layer(self, layer: str, source: Source) -> Source | None:
        """Add or replace one layer; returns the source it replaced."""
        old = self._layers.get(layer)
        self._layers[layer] = source
        self._update_ladder()
        return old

    def remove_layer(self, layer: str) -> Source | None:
        source = self._layers.pop(layer, None)
        self._update_ladder()
        return source

    def published_layers(self) -> list[str]:
        """The layers the publisher itself sends (not the server-made ones)."""
        return [n for n in LAYER_NAMES if n in self._layers]

    def layer_names(self) -> list[str]:
        return [n for n, _ in self._ordered()]

    def layer_bitrates(self) -> tuple[int, ...]:
        """What each layer costs, highest first: measured, else the nominal camera ladder.

        A layer never counts as cheaper than the one below it (a still picture costs little).
        """
        nominal = dict(zip(LAYER_NAMES, policy.CAMERA_LAYERS_BPS, strict=True))
        rates = [
            int(max(s.bitrate_bps, nominal[n] * 0.25)) if s.bitrate_bps else nominal[n]
            for n, s in self._ordered()
        ]
        for i in range(len(rates) - 2, -1, -1):
            rates[i] = max(rates[i], rates[i + 1])
        return tuple(rates)

    def close(self) -> None:
        if self._ladder is not None:
            self._ladder.close()
            self._ladder = None
        for source in self._layers.values():
            source.close()
        self._layers.clear()
