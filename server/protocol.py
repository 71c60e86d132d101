"""Signalling messages (docs/signalling.md): parsing and validation, nothing else."""

from __future__ import annotations

import json
from typing import Any

from media.publication import LAYER_NAMES

from .roles import SOURCES

VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.message = message  # Chinese, for people
        self.detail = detail  # English, for logs and developers

    def to_message(self) -> dict[str, Any]:
        return error(self.code, self.message, self.detail)


def error(code: str, message: str, detail: str) -> dict[str, Any]:
    return {"v": VERSION, "type": "error", "code": code, "message": message, "detail": detail}


# type -> {field: expected type(s)}
_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "join": {},
    "publish": {"sdp": str, "tracks": dict},
    "subscribe_answer": {"sdp": str},
    "call_on": {"participant": (str, type(None))},
    "hand": {"raised": bool},
    "mute": {"participant": str, "muted": bool},
    "host": {"participant": str},  # hand the host role over
    "keyframe": {"mid": str},
    "ping": {},
    "leave": {},
    # slides (the teacher's; values checked by server/slides/board.py)
    "slide_deck": {"deck": (str, type(None))},  # optional "page"; null closes the deck
    "slide_page": {"page": int},
    "slide_pointer": {"x": (int, float, type(None)), "y": (int, float, type(None))},
    "slide_ink": {"points": list, "color": str, "width": (int, float)},
    "slide_clear": {},
}


def parse(raw: str | bytes) -> dict[str, Any]:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            "too_large", "消息过大。", f"message of {len(raw)} bytes > {MAX_MESSAGE_BYTES}"
        )
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_json", "消息格式错误。", f"not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("bad_json", "消息格式错误。", "message must be a JSON object")
    if message.get("v") != VERSION:
        raise ProtocolError(
            "bad_version", "客户端版本不匹配，请刷新页面。", f"expected v={VERSION}"
        )
    kind = message.get("type")
    if kind not in _SCHEMA:
        raise ProtocolError("unknown_type", "未知的消息类型。", f"unknown type {kind!r}")
    for name, expected in _SCHEMA[kind].items():
        if name not in message or not isinstance(message[name], expected):
            raise ProtocolError(
                "bad_message", "消息缺少必要字段。", f"{kind}: field {name!r} missing or wrong type"
            )
    if "sdp" in message and not _looks_like_sdp(message["sdp"]):
        raise ProtocolError(
            "bad_sdp", "媒体协商失败。", f"{kind}: sdp is not a session description"
        )
    if kind == "publish":
        for mid, source in message["tracks"].items():
            if not isinstance(mid, str) or split_track(source) is None:
                raise ProtocolError(
                    "bad_message", "发布的媒体类型无效。", f"publish: bad track {mid!r}: {source!r}"
                )
    return message


def _looks_like_sdp(sdp: str) -> bool:
    # aiortc accepts any text as a remote description; refuse what cannot be one up front.
    return sdp.startswith("v=0") and "\nm=" in sdp


def split_track(declared: object) -> tuple[str, str] | None:
    """ "camera/m" -> ("camera", "m"); a plain "camera" is its only, highest layer."""
    if not isinstance(declared, str):
        return None
    name, _, layer = declared.partition("/")
    layer = layer or LAYER_NAMES[0]
    if name not in SOURCES or layer not in LAYER_NAMES:
        return None
    return name, layer
