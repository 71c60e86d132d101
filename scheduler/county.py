"""A county's consortia, solved apart unless they share a teacher (an itinerant teacher of a
scarce subject often serves two consortia): those are merged and solved together, so that
teacher is never booked twice, then the plan is split back per consortium."""

from __future__ import annotations

from collections.abc import Callable

from .load import ModelError
from .model import Consortium
from .solve import Plan, greedy, solve


def linked(county: list[Consortium]) -> list[list[Consortium]]:
    """Consortia grouped so that any two sharing a teacher id are in one group, in order."""
    parent = list(range(len(county)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, c in enumerate(county):
        for t in c.teachers:
            j = first.setdefault(t, i)
            parent[root(i)] = root(j)
    groups: dict[int, list[Consortium]] = {}
    for i, c in enumerate(county):
        groups.setdefault(root(i), []).append(c)
    return list(groups.values())


def merge(group: list[Consortium]) -> Consortium:
    """One consortium holding the group's entries. A teacher or campus may appear in several
    (a county's 中心校 and its staff can serve two consortia), but identically; any other id
    seen twice is an error naming both consortia."""
    if len({c.min_overlap for c in group}) > 1:
        raise ModelError("min_overlap", "共享教师的教联体须使用相同的最少重叠分钟数")
    merged = Consortium("+".join(c.id for c in group), "、".join(c.name for c in group),
                        {}, {}, {}, {}, min_overlap=group[0].min_overlap)
    owner: dict[tuple[str, str], str] = {}
    for c in group:
        for kind in ("campuses", "classes", "teachers", "courses", "groups"):
            into = getattr(merged, kind)
            for key, value in getattr(c, kind).items():
                shareable = kind in ("teachers", "campuses") and into.get(key) == value
                if key in into and not shareable:
                    raise ModelError(
                        f"{kind}.{key}",
                        f"编号在 {owner[(kind, key)]} 与 {c.id} 中都出现, 且内容不同",
                    )
                into[key] = value
                owner.setdefault((kind, key), c.id)
        merged.travel.update(c.travel)
        merged.locks += c.locks
    return merged


def split(plan: Plan, group: list[Consortium], merged: Consortium) -> list[Plan]:
    """The merged plan, one per consortium by who owns each course and group."""
    plans = []
    for c in group:
        own = set(c.courses) | set(c.groups)
        plans.append(Plan(
            c.id,
            lessons=[s for s in plan.lessons if s.item in own],
            meetings=[s for s in plan.meetings if s.item in own],
            unplaced=[u for u in plan.unplaced if u.item in own],
            proven_optimal=plan.proven_optimal,
            seconds=plan.seconds,
            moved=[m for m in plan.moved if m in own],
            status=plan.status if len(group) == 1 else f"{plan.status} (与 {merged.id} 一起求解)",
        ))
    return plans


def solve_county(
    county: list[Consortium],
    time_limit_s: float = 10.0,
    on_plan: Callable[[list[Plan]], None] | None = None,
    method: Callable[..., Plan] = solve,
) -> list[Plan]:
    """Every consortium's plan, in the county's order. `time_limit_s` is per solved group;
    `on_plan` sees each group's plans as they finish (a progress display); `method=greedy`
    gives the instant preview instead."""
    by_id: dict[str, Plan] = {}
    for group in linked(county):
        merged = group[0] if len(group) == 1 else merge(group)
        plan = greedy(merged) if method is greedy else method(merged, time_limit_s=time_limit_s)
        plans = split(plan, group, merged)
        if on_plan is not None:
            on_plan(plans)
        by_id.update((p.consortium, p) for p in plans)
    return [by_id[c.id] for c in county]
