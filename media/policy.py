"""Delivery policy for slow links: every threshold and priority in one visible place.

Policy, in the order it is applied to each subscriber:
1. Audio first: every audio track is always forwarded, whatever the estimate.
2. Then slides (a `screen` source), then the teacher's camera, then everything else
   (classroom uplinks, meeting thumbnails). Each video gets its lowest layer before any video
   gets a higher one. The teacher's camera is never paused (its lowest layer is small, and
   the pacer sends audio first when the link cannot carry both), the rest may be.
3. Layers switch only at keyframes; going up needs headroom held for a while, going down
   happens at once.
4. Losses up to LOSS_HOLD_MAX are radio noise, not congestion: hold the rate there.
"""

from __future__ import annotations

# -- estimation -------------------------------------------------------------------------------
START_BPS = 300_000  # first guess before any feedback (a rural classroom, not a campus LAN)
FLOOR_BPS = 100_000  # never estimate below this: audio plus the lowest layer must fit
MAX_BPS = 20_000_000
LOSS_INCREASE_MAX = 0.02  # below: the loss-based rate grows (GCC)
LOSS_HOLD_MAX = 0.10  # 2-10%: hold; above: cut by half the loss fraction
LOSS_CUT_AT_ONCE = 0.2  # a single report this bad is congestion, not chance
CLEAN_STREAK_S = 5.0  # reports without any loss for this long: the smoothed loss decays fast
# (2 s happened now and then on a 3% link: the rate then grew and tried 360p, a 2-3 s freeze)
LOSS_SMOOTHING = 0.06  # weight of each new receiver report in the smoothed loss
LOSS_GROWTH_PER_S = 0.12
MIN_REPORTS_TO_GROW = 5  # receiver reports before the loss-based rate may grow at all
HOLD_BAND_CEILING = 1.5  # in the hold band with no queue: grow up to this x what we send
# No loss at all and no queue in sight (a school LAN): grow faster, 300 kbps to 1.5 Mbps in ~6 s.
CLEAR_GROWTH_PER_S = 0.30
CLEAR_QUEUE_S = 0.02
LOSS_CUT_MIN_INTERVAL = 0.3  # seconds between loss cuts (an RR reports the same loss for a while)
QUEUE_DELAY_HIGH = 0.15  # RTT above the path's minimum by this much: a standing queue
QUEUE_WINDOW_S = 1.5  # ... in every RTT sample of this long (one late report is no queue)
QUEUE_DELAY_CUT = 0.85  # then back off to this share of what we send
QUEUE_GROWTH_PER_S = 0.05
QUEUE_CLEAR_GROWTH_PER_S = 0.30  # ... and this once RTT is back within CLEAR_QUEUE_S of its least
REMB_STALE_S = 5.0  # a REMB older than this no longer caps anything
# A receiver's REMB falls when its delay detector sees a queue growing: a fall by this much,
# under a probe's rate, fails the probe; followed by REMB_FALLS - 1 more that are no higher,
# under what we send, it is congestion and binds for REMB_FALL_HOLD_S.
REMB_FALL = 0.9
REMB_FALLS = 2
REMB_FALL_HOLD_S = 2.0
# A report losing more than LOSS_CUT_AT_ONCE is a queue overflowing: cut at once to what still
# got through (what we sent lately less that loss), not by GCC's half the loss per report
# (three reports, three seconds of full queue, from 720p to a 300 kbps link).
SENT_SMOOTHING = 0.3  # weight of each tick's sent rate in the average the cut starts from
# On a clean path the loss-based rate grows up to this (enough for 720p plus audio) or 4x what
# we send, whichever is more: far enough to try the next layer, not to bank fiction.
CLEAN_CEILING_BPS = 2_000_000
# ... but only on a link whose last this many packets lost at most this share. A 3% radio link
# shows 5 s of loss-free reports now and then (reports of a few dozen packets); over 500
# packets it shows under 1% about once in a thousand windows. Otherwise growth stops at
# HOLD_BAND_CEILING x what we send.
CLEAN_WINDOW_PACKETS = 500
CLEAN_WINDOW_LOSS = 0.01
# Below this round trip (a LAN) a lost packet's NACK comes back in time and a failed layer trial
# costs a few frames: the clean-link proof is not asked for, loss protection does not pay.
SHORT_PATH_RTT_S = 0.06
WINDOW_MIN_PACKETS = 150  # the window's loss means something from this many packets on
CLEAN_RUN_PACKETS = 250  # or this many in a row lost none (3% loss: 1 in 2000): congestion over

# -- allocation -------------------------------------------------------------------------------
AUDIO_BPS = 40_000  # an Opus track's payload before we have measured it (browser speech)
RTP_HEADER_BPS = 50 * 40 * 8  # 50 packets/s of RTP, SRTP, UDP and IP headers
PRIORITY_SLIDES = 0
PRIORITY_TEACHER = 1
PRIORITY_OTHER = 2
UPGRADE_HEADROOM = 1.15  # the next layer must fit this many times over ...
UPGRADE_HOLD_S = 2.0  # ... for this long before we switch up
DOWNGRADE_MARGIN = 1.0  # switch down as soon as the current layers no longer fit
UPGRADE_TRIAL_S = 5.0  # a layer that must come down within this of going up failed ...
UPGRADE_BACKOFF_S = 20.0  # ... and is not tried again for this long (doubling per failure)
UPGRADE_BACKOFF_MAX_S = 120.0

# Probing: on a long path the estimate may grow past what we send (CLEAN_CEILING_BPS) but the
# allocator spends only what the path has proven: what we sent lately without congestion, or a
# probe. Before an upgrade we send padding (copies of recent video packets, which receivers
# drop) up to the upgraded rate for PROBE_S; a report showing loss or a queue, or a falling REMB,
# fails the probe at once (a second of padding at most, instead of a 720p keyframe and seconds
# of frozen picture); a probe that a report after its end finds clean proves its rate.
PROBE_S = 1.0
PROBE_JUDGE_S = 1.6  # after the probe, wait this long for a report that covers it
# Feedback this soon after a failed probe is the padding's queue draining (~0.3 s); later it is
# the link's own again (the 1 Mbps link fell to 300 kbps under a 720p probe: ignoring 1.6 s of
# it left the queue full 3.5 s).
PROBE_SETTLE_S = 0.5
PROBE_LOSS_MAX = 0.05  # above the link's own loss (the window's) by this: the probe overflowed
PROBE_QUEUE_S = 0.06  # RTT above the path's minimum by this during the probe: it queued
PROBE_NACKS_MIN = 2  # NACKed media packets a probe is allowed whatever the link's loss
PROBE_BACKOFF_S = 8.0  # no probe for this long after one that overflowed, doubling on each
PROBE_BACKOFF_MAX_S = 64.0
PROBE_RETRY_S = 5.0  # ... after one its queue (RTT, REMB) gave away before any loss
PROBE_FAILED_CAP = 0.85  # a failed probe caps the estimate at this share of its rate
PROVEN_WINDOW_S = 10.0  # a rate sent or probed without congestion proves itself this long

# Default bitrates of the three camera layers the teacher page publishes (highest first).
CAMERA_LAYERS_BPS = (1_200_000, 400_000, 120_000)
# The server-made layers under a single-layer camera: (name, width, height, bps, fps, libvpx
# cpu-used). The lowest is for rural links: 15 fps, small enough to be sent twice (loss
# protection) beside RED audio within 250 kbps, and libvpx's coarsest speed, whose frames
# after a big change are ~40% smaller (3.3 KB instead of 5.5 KB at a slide change: 100 ms
# less of a 300 kbps link).
LADDER_RUNGS = (("m", 640, 360, 400_000, 30, 8), ("l", 320, 180, 80_000, 15, 16))

# -- sending ----------------------------------------------------------------------------------
PACING_FACTOR = 2.5  # pace at this multiple of the estimate (as libwebrtc): bursts spread
PACER_MAX_QUEUE_S = 0.5  # video packets older than this in our queue are dropped
NACK_MAX_RESENDS = 2  # per packet
NACK_BUDGET_SHARE = 0.15  # retransmissions may use at most this share of the estimate
NACK_MIN_BANK_PACKETS = 3  # ... but a few single losses always get their one resend
NACK_MAX_AGE_S = 0.4  # a packet this much older than an RTT is given up by its receiver

# Loss protection: on a link that loses packets at random (radio), every lost video packet
# costs a round trip of NACK, and at 150 ms RTT a frozen picture. Past PROTECT_LOSS_ON (smoothed
# receiver-report loss) each video packet is sent twice, the copy as RTX PROTECT_DELAY_S later;
# the allocator pays for the copy (a lower layer), the picture stops freezing. Off again below
# PROTECT_LOSS_OFF. Not while a queue stands: copies help against random loss, and make
# congestion loss worse.
# Only where it pays: a round trip long enough that a NACK'd packet comes too late (on a LAN
# the resend is back in milliseconds), and a video rate small enough to send twice (the fan-out
# benchmark's ten 1.5 Mbps subscribers on a busy loopback lost ~2%, and copies doubled the
# SFU's work per packet).
PROTECT_MIN_RTT_S = SHORT_PATH_RTT_S
PROTECT_MAX_VIDEO_BPS = 500_000
PROTECT_LOSS_ON = 0.015
PROTECT_LOSS_OFF = 0.004
PROTECT_DELAY_S = 0.02
PROTECT_OVERHEAD = 1.0  # the copy costs as much as the packet
# Copies of a burst beyond this much of their rate are not sent. 0.15 s (1.5 KB at 180p) was
# less than two frames: libvpx's frames swing around its target, and 13% of the packets of a
# rural run went without a copy (then 3% of those froze the picture for a NACK round trip).
PROTECT_BANK_S = 0.4
# The allocator pays a layer's measured payload rate; its packets carry ~30 bytes of RTP header
# and VP8 descriptor on top (5% at 180p), and the copies of the odd copy-less packet froze the
# picture (lost once, never copied). Copies may spend this much over what was paid.
PROTECT_RATE_SLACK = 1.2

# -- documents beside the lesson --------------------------------------------------------------
# Prefetched deck pages travel over HTTP beside the live media, at what the estimate leaves
# (SubscriberLink.spare_bps), never below this trickle.
DOC_MIN_BPS = 16_000

# -- link health shown to the classroom and to staff --------------------------------------------
HEALTH_POOR_LOSS = 0.10
HEALTH_WEAK_LOSS = 0.02
HEALTH_POOR_BPS = 150_000
HEALTH_POOR_QUEUE_S = 0.4
HEALTH_WEAK_QUEUE_S = 0.15
HEALTH_EVERY_S = 2.0


def audio_cost(measured_bps: float, red: bool) -> float:
    """What forwarding one audio track costs: its payload (twice over with RED) plus headers."""
    payload = measured_bps or AUDIO_BPS
    return payload * (2 if red else 1) + RTP_HEADER_BPS


def priority(owner_role: str, name: str, called_on: bool, viewer_role: str) -> tuple[int, bool]:
    """(priority, pausable) of a video publication for one subscriber.

    The class the teacher calls on is shown to everyone: it ranks with the teacher's camera.
    The teacher always sees every class (their uplinks are small by design); others may
    lose thumbnails before the lesson itself suffers.
    """
    if name == "screen":
        return PRIORITY_SLIDES, False
    if owner_role == "teacher" or called_on:
        return PRIORITY_TEACHER, False
    return PRIORITY_OTHER, viewer_role != "teacher"


def health(loss: float, estimate_bps: float, queue_s: float, degraded: bool) -> str:
    """good / weak / poor, as the classroom page shows it (良好 / 一般 / 较差)."""
    if loss > HEALTH_POOR_LOSS or estimate_bps < HEALTH_POOR_BPS or queue_s > HEALTH_POOR_QUEUE_S:
        return "poor"
    if loss > HEALTH_WEAK_LOSS or queue_s > HEALTH_WEAK_QUEUE_S or degraded:
        return "weak"
    return "good"
