"""netlab: a userspace link emulator for rural-link benchmarks and CI tests.

Two network namespaces joined by TUN devices and one emulator process that applies, per
direction, a rate (with capacity schedules), a drop-tail queue sized in ms, a one-way delay and
random or bursty (Gilbert-Elliott) loss, logging every packet. The kernel here has no netem.
"""

from .link import Link, LinkError
from .packetlog import PacketLog
from .spec import SCENARIOS, DirSpec, GilbertElliott, LinkSpec, scenario

__all__ = [
    "SCENARIOS",
    "DirSpec",
    "GilbertElliott",
    "Link",
    "LinkError",
    "LinkSpec",
    "PacketLog",
    "scenario",
]
