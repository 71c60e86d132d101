import json

import pytest

from server.protocol import MAX_MESSAGE_BYTES, ProtocolError, parse


def msg(**kw) -> str:
    return json.dumps({"v": 1, **kw})


@pytest.mark.parametrize(
    "raw, code",
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        (json.dumps({"type": "join"}), "bad_version"),
        (json.dumps({"v": 2, "type": "join"}), "bad_version"),
        (msg(type="dance"), "unknown_type"),
        (msg(type="publish", sdp="x"), "bad_message"),
        (msg(type="publish", sdp="x", tracks={}), "bad_sdp"),
        (msg(type="publish", sdp="v=0\nm=video 9", tracks={"0": "hologram"}), "bad_message"),
        (msg(type="hand", raised="yes"), "bad_message"),
        (msg(type="ping", pad="x" * MAX_MESSAGE_BYTES), "too_large"),
    ],
)
def test_bad_messages_get_a_code_and_a_chinese_message(raw, code):
    with pytest.raises(ProtocolError) as info:
        parse(raw)
    assert info.value.code == code
    assert info.value.message and not info.value.message.isascii()


def test_good_messages_pass():
    assert parse(msg(type="publish", sdp="v=0\nm=video 9", tracks={"0": "camera", "1": "mic"}))[
        "type"
    ]
    assert parse(msg(type="call_on", participant=None))["participant"] is None
