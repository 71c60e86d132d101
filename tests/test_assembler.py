"""FrameAssembler on synthetic packet patterns: order, loss, give-up, keyframe gating."""

from media.assembler import FrameAssembler, SequenceUnwrapper
from media.frames import EncodedFrame

KEY = b"\x00key"  # VP8 frame tag bit 0 clear: keyframe
DELTA = b"\x01dlt"


class Collector:
    def __init__(self) -> None:
        self.frames: list[EncodedFrame] = []
        self.keyframe_requests = 0

    def frame(self, f: EncodedFrame) -> None:
        self.frames.append(f)

    def need(self) -> None:
        self.keyframe_requests += 1


def make(max_wait: float = 0.4) -> tuple[FrameAssembler, Collector]:
    c = Collector()
    return FrameAssembler("vp8", "video", c.frame, c.need, max_wait=max_wait), c


def feed_frame(a: FrameAssembler, seq: int, ts: int, n: int, first: bytes, now: float) -> int:
    """Feed one frame of n packets; returns the next sequence number."""
    for i in range(n):
        a.add((seq + i) & 0xFFFF, ts, i == n - 1, first if i == 0 else b"p", now)
    return seq + n


def test_sequence_unwrapper_crosses_wrap():
    u = SequenceUnwrapper()
    assert [u.unwrap(s) for s in (65534, 65535, 0, 1, 65535)] == [65534, 65535, 65536, 65537, 65535]


def test_frames_emitted_on_marker_without_waiting_for_next_frame():
    a, c = make()
    seq = feed_frame(a, 100, 0, 1, b"tail", 0.0)  # joined mid-stream: frame start unknown
    seq = feed_frame(a, seq, 3000, 3, KEY, 0.0)
    assert len(c.frames) == 1  # emitted at its marker packet
    assert c.frames[0].keyframe and c.frames[0].data == KEY + b"pp"
    feed_frame(a, seq, 6000, 2, DELTA, 0.01)
    assert [f.timestamp for f in c.frames] == [3000, 6000]


def test_waits_for_keyframe_before_first_frame():
    a, c = make()
    seq = feed_frame(a, 0, 0, 1, b"x", 0.0)
    seq = feed_frame(a, seq, 3000, 2, DELTA, 0.0)
    assert c.frames == []
    feed_frame(a, seq, 6000, 2, KEY, 0.0)
    assert [f.timestamp for f in c.frames] == [6000]


def test_reordered_packet_completes_frame():
    a, c = make()
    seq = feed_frame(a, 10, 0, 1, b"x", 0.0)
    a.add(seq, 3000, False, KEY, 0.0)
    a.add(seq + 2, 3000, True, b"c", 0.0)
    assert c.frames == []
    a.add(seq + 1, 3000, False, b"b", 0.01)
    assert len(c.frames) == 1 and c.frames[0].data == KEY + b"bc"
    assert c.keyframe_requests == 0


def test_lost_packet_gives_up_after_max_wait_and_asks_for_keyframe():
    a, c = make(max_wait=0.2)
    seq = feed_frame(a, 0, 0, 1, b"x", 0.0)
    seq = feed_frame(a, seq, 3000, 2, KEY, 0.0)
    # frame 6000 loses its middle packet for good
    a.add(seq, 6000, False, DELTA, 0.05)
    a.add(seq + 2, 6000, True, b"c", 0.05)
    seq += 3
    seq = feed_frame(a, seq, 9000, 2, DELTA, 0.1)
    assert len(c.frames) == 1 and c.keyframe_requests == 0
    seq = feed_frame(a, seq, 12000, 2, DELTA, 0.3)  # 0.25 s of gap > max_wait
    assert c.keyframe_requests >= 1
    assert len(c.frames) == 1  # deltas after a gap are useless until a keyframe
    feed_frame(a, seq, 15000, 2, KEY, 0.35)
    assert [f.timestamp for f in c.frames] == [3000, 15000]


def test_late_retransmission_of_skipped_packet_is_ignored():
    a, c = make(max_wait=0.1)
    seq = feed_frame(a, 0, 0, 1, b"x", 0.0)
    seq = feed_frame(a, seq, 3000, 1, KEY, 0.0)
    lost = seq
    a.add(seq + 1, 6000, True, b"b", 0.0)
    seq += 2
    seq = feed_frame(a, seq, 9000, 1, KEY, 0.5)  # triggers the give-up
    a.add(lost, 6000, False, DELTA, 0.6)  # too late
    assert [f.timestamp for f in c.frames] == [3000, 9000]


def test_memory_is_bounded_when_head_never_arrives():
    a, c = make(max_wait=1e9)
    seq = feed_frame(a, 0, 0, 1, b"x", 0.0)
    seq += 1  # lost forever
    for i in range(3000):
        seq = feed_frame(a, seq, 3000 * (i + 2), 1, DELTA, 0.0)
    assert len(a._packets) <= 2048
    assert c.keyframe_requests >= 1


def test_audio_packets_pass_at_once_and_late_ones_drop():
    c = Collector()
    a = FrameAssembler("opus", "audio", c.frame, c.need)
    a.add(1, 960, False, b"a", 0.0)
    a.add(3, 2880, False, b"c", 0.0)
    a.add(2, 1920, False, b"b", 0.0)  # late: the subscriber's decoder already concealed it
    assert [f.data for f in c.frames] == [b"a", b"c"]


def test_first_frame_is_kept_when_the_codec_marks_its_start():
    a, c = make()
    a.add(500, 0, False, KEY, 0.0, starts_frame=True)
    a.add(501, 0, True, b"b", 0.0)
    assert len(c.frames) == 1 and c.frames[0].keyframe


def test_vp8_and_h264_frame_starts():
    from media.frames import starts_frame

    assert starts_frame("vp8", bytes([0x10, 0]))  # S=1, PID=0
    assert not starts_frame("vp8", bytes([0x00, 0]))
    assert not starts_frame("vp8", bytes([0x11, 0]))  # S=1 but partition 1
    assert starts_frame("h264", bytes([24, 0]))  # STAP-A
    assert starts_frame("h264", bytes([28, 0x85]))  # FU-A start of an IDR
    assert not starts_frame("h264", bytes([28, 0x05]))  # FU-A middle


def test_missing_packet_is_asked_for_again_until_the_frame_is_given_up():
    a, c = make(max_wait=1.0)
    seq = feed_frame(a, 0, 0, 1, b"x", 0.0)
    seq = feed_frame(a, seq, 3000, 1, KEY, 0.0)
    lost = seq
    a.add(seq + 1, 6000, True, b"b", 0.0)
    assert a.due_nacks(0.0) == []  # aiortc's own NACK covers the first ask
    assert a.due_nacks(0.05) == []
    assert a.due_nacks(0.1) == [lost]  # the retransmission was lost too: ask again
    assert a.due_nacks(0.15) == []
    assert a.due_nacks(0.2) == [lost]
    assert a.due_nacks(0.3) == []  # three asks in all
    a.add(lost, 6000, False, DELTA, 0.31)  # it finally came
    assert a.due_nacks(0.4) == [] and len(c.frames) == 2


def test_red_audio_recovers_a_lost_packet_from_the_next_one():
    from media.red import RedPacker

    c = Collector()
    a = FrameAssembler("red", "audio", c.frame, c.need)
    packer = RedPacker(pt=96)
    payloads = [packer.pack(bytes([i]) * 10, 960 * i) for i in range(5)]
    for seq, payload in enumerate(payloads):
        if seq != 2:  # packet 2 is lost on the way
            a.add(seq, 960 * seq, False, payload, 0.0)
    assert [f.data[0] for f in c.frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp for f in c.frames] == [0, 960, 1920, 2880, 3840]
    assert a.frames_recovered == 1


def test_red_payload_round_trip_and_malformed_input():
    import pytest

    from media import red

    payload = red.pack(111, b"new", [(b"old", 960)])
    assert red.parse(payload) == [(b"old", 960), (b"new", 0)]
    assert red.parse(red.pack(111, b"only", [])) == [(b"only", 0)]
    for bad in (b"", b"\x80\x00", b"\xef\x00\x0f\xff\x6f"):  # cut headers, block too long
        with pytest.raises(ValueError):
            red.parse(bad)


def test_giving_up_on_a_frame_with_its_head_present_moves_past_it():
    a, c = make(max_wait=0.1)
    seq = feed_frame(a, 0, 0, 1, b"x", 0.0)
    seq = feed_frame(a, seq, 3000, 1, KEY, 0.0)
    a.add(seq, 6000, False, DELTA, 0.0, starts_frame=True)  # head of a frame whose tail is lost
    seq += 2
    seq = feed_frame(a, seq, 9000, 1, DELTA, 0.05)
    seq = feed_frame(a, seq, 12000, 1, KEY, 0.3)  # past max_wait: give up on frame 6000
    seq = feed_frame(a, seq, 15000, 1, DELTA, 0.31)
    assert [f.timestamp for f in c.frames] == [3000, 12000, 15000]


def test_waiting_for_a_keyframe_jumps_to_a_complete_one_already_held():
    a, c = make(max_wait=0.4)
    seq = feed_frame(a, 0, -3000, 1, b"tail", 0.0)  # joined mid-stream
    seq = feed_frame(a, seq, 0, 2, KEY, 0.0)
    assert len(c.frames) == 1
    # two frames each lose a middle packet; a complete keyframe arrives behind them
    a.add(seq, 3000, False, DELTA, 0.01)
    a.add(seq + 2, 3000, True, b"p", 0.01)
    a.add(seq + 3, 6000, False, DELTA, 0.02)
    a.add(seq + 5, 6000, True, b"p", 0.02)
    seq = feed_frame(a, seq + 6, 9000, 2, KEY, 0.03)
    a.add(seq, 12000, True, DELTA, 0.45)  # the first hole is given up here
    # one give-up, then straight to the held keyframe: no second max_wait for the next hole
    assert [f.timestamp for f in c.frames] == [0, 9000, 12000]
    assert c.keyframe_requests == 1


def test_nack_retry_and_give_up_follow_the_measured_round_trip():
    a, c = make(max_wait=0.4)
    seq = feed_frame(a, 0, -3000, 1, b"tail", 0.0)  # joined mid-stream
    seq = feed_frame(a, seq, 0, 1, KEY, 0.0)
    a.add(seq + 1, 3000, True, b"p", 0.01)  # seq lost
    assert a.due_nacks(0.01) == []  # aiortc's own first NACK goes out now
    a.add(seq, 3000, False, DELTA, 0.31)  # retransmission after 300 ms
    assert a.rtt is not None and abs(a.rtt - 0.3) < 1e-9
    assert a.max_wait >= 2.5 * 0.3
    seq += 2
    a.add(seq + 1, 6000, True, b"p", 1.0)  # another loss
    assert a.due_nacks(1.0) == []
    assert a.due_nacks(1.1) == []  # a retry before one round trip would cross the answer
    assert a.due_nacks(1.0 + 1.2 * 0.3 + 0.01) == [seq & 0xFFFF]
    a.add(seq + 2, 9000, True, DELTA, 1.5)
    assert c.keyframe_requests == 0  # 0.5 s < 2.5 RTT: still waiting, not given up
