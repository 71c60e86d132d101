"""The prober on synthetic reports: what the path proved, probes judged, failures backed off."""

from media import policy
from media.prober import Outcome, Prober


def test_proof_is_what_flowed_lately_and_congestion_forgets_it():
    p = Prober(start_bps=300_000)
    assert p.proven(0.0) == 300_000  # nothing sent yet: the first guess
    p.on_sent(450_000, congested=False, now=1.0)
    p.on_sent(420_000, congested=False, now=2.0)
    assert p.proven(2.0) == 450_000
    assert p.proven(1.0 + policy.PROVEN_WINDOW_S + 0.1) == 420_000  # 450k is too old now
    p.on_sent(900_000, congested=True, now=3.0)  # a queue: what flowed proves nothing
    assert p.proven(3.0) == 300_000


def test_a_clean_report_after_the_padding_proves_the_rate():
    p = Prober()
    p.on_sent(450_000, False, 0.0)
    p.start(1_400_000, 1.0)
    assert p.padding_bps(500_000, 1.2) == 900_000  # pad the media up to the probe's rate
    assert p.on_report(0.0, 0.0, 0.01, 1.5) is None  # during the padding: not judged yet
    assert p.tick(1.6) is None
    assert p.padding_bps(500_000, 1.0 + policy.PROBE_S) == 0.0
    assert p.on_report(0.0, 0.0, 0.02, 1.0 + policy.PROBE_S + 0.3) is None  # covers its end
    assert p.tick(1.0 + policy.PROBE_S + 0.5) is Outcome.PROVEN
    assert p.proven(3.0) == 1_400_000 and not p.running


def test_loss_a_queue_or_a_falling_remb_fail_the_probe_at_once_and_back_off():
    p = Prober()
    p.start(1_400_000, 0.0)
    # the link loses 3% anyway: 5% is within its own loss plus the margin
    assert p.on_report(0.05, 0.03, 0.0, 0.4) is None
    assert p.on_report(0.15, 0.03, 0.0, 0.6) is Outcome.FAILED  # the queue overflowed
    assert not p.running and p.padding_bps(0, 0.7) == 0.0
    assert not p.may_start(0.6 + policy.PROBE_BACKOFF_S - 0.1)
    assert p.may_start(0.6 + policy.PROBE_BACKOFF_S)

    t = 20.0
    p.start(1_400_000, t)
    for _ in range(20):
        p.on_media_sent()
    for seq in range(3):
        p.on_nack(("v", seq), t + 0.3)
    assert not p.running  # overflowed again (NACKs): the backoff doubles
    assert not p.may_start(t + 0.3 + 2 * policy.PROBE_BACKOFF_S - 0.1)
    assert p.may_start(t + 0.3 + 2 * policy.PROBE_BACKOFF_S)

    # Caught by its queue before any loss: cheap, retried soon whatever the backoff
    t = 60.0
    p.start(1_400_000, t)
    assert p.on_report(0.0, 0.0, policy.PROBE_QUEUE_S + 0.02, t + 0.5) is Outcome.FAILED
    assert p.may_start(t + 0.5 + policy.PROBE_RETRY_S)
    t = 70.0
    p.start(1_400_000, t)
    assert p.on_remb(1_500_000, False, t + 0.2) is None  # risen: the probe got through so far
    assert p.on_remb(1_300_000, True, t + 0.3) is None  # fell, but still above the probe's rate
    assert p.on_remb(900_000, True, t + 0.4) is Outcome.FAILED
    assert p.may_start(t + 0.4 + policy.PROBE_RETRY_S)
    assert p.failures == 4 and p.proven(t + 1) == policy.START_BPS


def test_no_report_after_the_probe_proves_nothing():
    p = Prober()
    p.start(1_000_000, 0.0)
    assert p.tick(policy.PROBE_S + 0.1) is None  # still waiting for a report
    assert p.tick(policy.PROBE_S + policy.PROBE_JUDGE_S) is Outcome.FAILED
    assert p.proven(5.0) == policy.START_BPS


def test_a_success_resets_the_backoff():
    p = Prober()
    p.start(1_000_000, 0.0)
    p.on_report(0.3, 0.0, None, 0.2)  # overflowed
    t = 0.2 + policy.PROBE_BACKOFF_S
    p.start(800_000, t)
    p.on_report(0.0, 0.0, 0.0, t + policy.PROBE_S)
    assert p.tick(t + policy.PROBE_S) is Outcome.PROVEN
    p.start(1_000_000, t + 5)
    p.on_report(0.3, 0.0, None, t + 5.2)
    assert p.may_start(t + 5.2 + policy.PROBE_BACKOFF_S)  # back to the first backoff


def test_nacks_beyond_the_links_own_loss_stop_the_probe_before_a_report_comes():
    clean = Prober()
    clean.start(1_400_000, 0.0, link_loss=0.0)
    for _ in range(40):
        clean.on_media_sent()
    assert clean.on_nack(("v", 1), 0.2) is None  # a couple of losses happen anyway
    assert clean.on_nack(("v", 1), 0.21) is None  # the receiver asking again is one loss
    assert clean.on_nack(("v", 2), 0.22) is None
    assert clean.on_nack(("v", 3), 0.25) is Outcome.FAILED  # 3 of 40 on a clean link
    radio = Prober()
    radio.start(1_400_000, 0.0, link_loss=0.03)
    for _ in range(100):
        radio.on_media_sent()
    for seq in range(8):  # 8%: its own 3% plus the margin
        assert radio.on_nack(("v", seq), 0.5) is None
    assert radio.on_nack(("v", 99), 0.6) is Outcome.FAILED
