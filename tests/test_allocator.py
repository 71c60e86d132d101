"""The allocator: priorities, pausing, hysteresis."""

from media import policy
from media.allocator import Allocator, VideoDemand

CAM = (1_200_000, 400_000, 120_000)
TEACHER = VideoDemand("teacher", policy.PRIORITY_TEACHER, CAM, pausable=False)
SLIDES = VideoDemand("slides", policy.PRIORITY_SLIDES, (300_000, 100_000))
UPLINK = VideoDemand("class-a", policy.PRIORITY_OTHER, (200_000, 60_000))


def test_rural_link_gets_the_lowest_camera_layer_and_audio():
    a = Allocator()
    chosen = a.allocate(300_000, 80_000, [TEACHER], now=0)
    assert chosen == {"teacher": 2}


def test_teacher_camera_is_never_paused_but_uplinks_are():
    a = Allocator()
    chosen = a.allocate(100_000, 160_000, [TEACHER, UPLINK], now=0)
    assert chosen == {"teacher": 2, "class-a": None}


def test_slides_come_before_the_camera():
    a = Allocator()
    chosen = a.allocate(600_000, 80_000, [TEACHER, SLIDES], now=0)
    # slides get their top layer before the camera leaves its lowest
    assert chosen["slides"] == 0 and chosen["teacher"] == 2


def test_upgrade_waits_for_sustained_headroom_and_downgrade_is_immediate():
    a = Allocator()
    assert a.allocate(300_000, 80_000, [TEACHER], now=0) == {"teacher": 2}
    # capacity returns: the 400k layer needs 448k+48k with headroom
    assert a.allocate(2_000_000, 80_000, [TEACHER], now=1) == {"teacher": 2}
    assert a.allocate(2_000_000, 80_000, [TEACHER], now=2) == {"teacher": 2}
    assert a.allocate(2_000_000, 80_000, [TEACHER], now=3.1) == {"teacher": 0}
    # capacity falls: down at once
    assert a.allocate(300_000, 80_000, [TEACHER], now=3.2) == {"teacher": 2}


def test_flapping_estimate_does_not_flap_layers():
    a = Allocator()
    a.allocate(300_000, 80_000, [TEACHER], now=0)
    layers = []
    for i in range(40):
        budget = 700_000 if i % 2 else 450_000  # noisy around the 400k layer's need
        layers.append(a.allocate(budget, 80_000, [TEACHER], now=i * 0.25)["teacher"])
    assert layers.count(1) == 0 or len(set(layers[layers.index(1) :])) <= 2
    assert sum(1 for x, y in zip(layers, layers[1:], strict=False) if x != y) <= 2


def test_a_failed_upgrade_is_not_retried_at_once_and_backs_off():
    a = Allocator()
    assert a.allocate(300_000, 80_000, [TEACHER], now=0) == {"teacher": 2}
    for t in (1, 2, 3.1):
        chosen = a.allocate(2_000_000, 80_000, [TEACHER], now=t)
    assert chosen == {"teacher": 0}
    # the link could not carry it: down again within the trial
    assert a.allocate(400_000, 80_000, [TEACHER], now=5) == {"teacher": 2}
    # the (app-limited) estimate climbs back at once, but 720p is not tried again for 20 s
    for t in range(6, 25):
        assert a.allocate(2_000_000, 80_000, [TEACHER], now=t) == {"teacher": 2}
    later = [a.allocate(2_000_000, 80_000, [TEACHER], now=t)["teacher"] for t in (26, 27, 28.5)]
    assert later[-1] == 0
    # a second failure waits twice as long
    assert a.allocate(400_000, 80_000, [TEACHER], now=29) == {"teacher": 2}
    assert all(
        a.allocate(2_000_000, 80_000, [TEACHER], now=t) == {"teacher": 2} for t in range(30, 69)
    )


def test_next_step_is_one_layer_at_a_time_paused_tracks_first():
    a = Allocator()
    assert a.next_step_bps(40_000, [TEACHER]) is None  # nothing allocated yet
    assert a.allocate(200_000, 40_000, [TEACHER, UPLINK], now=0) == {"teacher": 2, "class-a": None}
    # resume the paused uplink before the camera goes up
    assert a.next_step_bps(40_000, [TEACHER, UPLINK]) == 40_000 + 120_000 + 60_000
    a.allocate(400_000, 40_000, [TEACHER, UPLINK], now=1)  # upgrades wait for their hold
    assert a.allocate(400_000, 40_000, [TEACHER, UPLINK], now=4) == {"teacher": 2, "class-a": 1}
    # then the camera one layer up (360p), not straight to 720p
    assert a.next_step_bps(40_000, [TEACHER, UPLINK]) == 40_000 + 400_000 + 60_000
    top = Allocator()
    top.allocate(5_000_000, 40_000, [TEACHER], now=0)
    assert top.next_step_bps(40_000, [TEACHER]) is None  # already at the top


def test_upgrades_spend_what_is_proven_and_only_the_estimate_cuts():
    a = Allocator()
    a.allocate(300_000, 40_000, [TEACHER], now=0)  # 180p
    for t in (1, 4):  # the estimate says 2 Mbps, the path proved 500 kbps: 360p, not 720p
        chosen = a.allocate(2_000_000, 40_000, [TEACHER], now=t, proven_bps=500_000)
    assert chosen == {"teacher": 1}
    # 360p's encoder overshoots at its start: cost above what was proven, far within the
    # estimate: it stays
    hot = VideoDemand("teacher", policy.PRIORITY_TEACHER, (1_200_000, 650_000, 120_000), False)
    assert a.allocate(2_000_000, 40_000, [hot], now=5, proven_bps=500_000) == {"teacher": 1}
    # the estimate falling under it brings it down at once
    assert a.allocate(400_000, 40_000, [hot], now=6, proven_bps=500_000) == {"teacher": 2}
