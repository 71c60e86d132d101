"""What each role may do and see: the access policy in one place."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("teacher", "classroom", "observer", "member")
SOURCES = ("camera", "mic", "screen")
# The deck, its page, the pointer and ink: the teacher's alone.
SLIDE_MESSAGES = frozenset(
    {"slide_deck", "slide_page", "slide_pointer", "slide_ink", "slide_clear"}
)
# The room's host alone gives the floor, mutes and hands the role over: a lesson's teacher;
# in a research meeting the host school's teacher, or whoever the host handed over to.
HOST_MESSAGES = frozenset({"call_on", "mute", "host"})
HOST_ROLES = ("teacher", "member")  # who may host (classrooms and observers never)


@dataclass(frozen=True)
class Grant:
    publishes: frozenset[str]
    visible: bool  # shown to other participants (observers inspect silently: 巡课)
    messages: frozenset[str]  # control messages beyond the ones every role may send


GRANTS: dict[str, Grant] = {
    # A teacher who handed a meeting over raises a hand like any member.
    "teacher": Grant(frozenset(SOURCES), True, HOST_MESSAGES | {"hand"} | SLIDE_MESSAGES),
    "classroom": Grant(frozenset({"camera", "mic"}), True, frozenset({"hand"})),
    "observer": Grant(frozenset(), False, frozenset()),
    "member": Grant(frozenset(SOURCES), True, HOST_MESSAGES | {"hand"}),
}


# Messages some roles may send and others not (the rest every participant may send).
CONTROL_MESSAGES = frozenset().union(*(g.messages for g in GRANTS.values()))


def next_host(candidates: list[tuple[str, str]]) -> str | None:
    """Who hosts when the host left: of the (id, role) still present, in the order they joined,
    the first teacher (the host school's), else the member present longest."""
    eligible = [(pid, role) for pid, role in candidates if role in HOST_ROLES]
    teachers = [pid for pid, role in eligible if role == "teacher"]
    if teachers:
        return teachers[0]
    return eligible[0][0] if eligible else None


def may_see(
    viewer_role: str,
    viewer_id: str,
    owner_role: str,
    owner_id: str,
    source: str,
    called_on: str | None,
    muted: frozenset[str],
) -> bool:
    """Whether a viewer subscribes to one source of another participant.

    A lesson: classrooms watch the teacher, and one another only when the teacher calls on a
    class; the teacher watches every class; observers watch everything. A meeting: members
    see everyone. A muted class's microphone reaches nobody.
    """
    if owner_id == viewer_id:
        return False
    if source == "mic" and owner_id in muted:
        return False
    if viewer_role == "observer":
        return True
    if owner_role == "teacher":
        return True
    if owner_role == "classroom":
        if viewer_role == "teacher":
            return True
        return owner_id == called_on
    if owner_role == "member":
        return viewer_role in ("member", "teacher")
    return False
