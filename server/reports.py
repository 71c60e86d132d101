"""The consortium's term report (捆绑考核 evidence, in the spirit of seed 004's scoring sheet):
per campus, lessons scheduled and held, attendance, minutes, research meetings, recordings and
link quality; exported as CSV (UTF-8 with BOM, so Excel reads the Chinese) and as Excel.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web
from openpyxl import Workbook
from openpyxl.styles import Font

from .config import Settings
from .protocol import error
from .records import RecordsStore
from .tokens import TokenError

TERM = re.compile(r"^(\d{4})-(spring|autumn)$")  # 2026-autumn: Sep 2026 to Jan 2027


@dataclass
class CampusRow:
    campus: str
    name: str
    hosted_scheduled: int = 0  # lessons this campus teaches, on the timetable
    hosted_held: int = 0
    received_scheduled: int = 0  # lessons this campus's classes should receive
    received_attended: int = 0  # ... that were held and the campus joined
    unscheduled_held: int = 0  # taught live without a timetable entry
    attendance_minutes: float = 0.0
    meetings_attended: int = 0  # research meetings (教研) held that the campus joined
    recordings: int = 0  # lessons taught here that were recorded
    good_link_share: float | None = None  # share of link samples that were "good"

    @property
    def held_rate(self) -> float | None:
        return self.hosted_held / self.hosted_scheduled if self.hosted_scheduled else None

    @property
    def attendance_rate(self) -> float | None:
        return self.received_attended / self.received_scheduled if self.received_scheduled else None


HEADERS = {
    "campus": "校区代码",
    "name": "学校",
    "hosted_scheduled": "主讲课 应开",
    "hosted_held": "主讲课 实开",
    "held_rate": "开课率",
    "received_scheduled": "接收课 应到",
    "received_attended": "接收课 实到",
    "attendance_rate": "到课率",
    "unscheduled_held": "计划外开课",
    "attendance_minutes": "在线时长(分钟)",
    "meetings_attended": "参加教研活动",
    "recordings": "录像课",
    "good_link_share": "网络良好占比",
}


def term_bounds(term: str) -> tuple[float, float]:
    """Unix seconds [start, end) of a school term named like 2026-autumn or 2027-spring."""
    m = TERM.match(term)
    if m is None:
        raise ValueError(f"term must look like 2026-autumn or 2027-spring, not {term!r}")
    year = int(m.group(1))
    if m.group(2) == "autumn":
        start, end = dt.datetime(year, 9, 1), dt.datetime(year + 1, 2, 1)
    else:
        start, end = dt.datetime(year, 2, 1), dt.datetime(year, 9, 1)
    return start.timestamp(), end.timestamp()


def build_report(
    store: RecordsStore, consortium: str, campuses: dict[str, str], start: float, end: float
) -> list[CampusRow]:
    """One row per campus of the consortium (and any other campus found in its records)."""
    db = store.db
    rows = {cid: CampusRow(cid, name) for cid, name in campuses.items()}

    def row(cid: str) -> CampusRow:
        return rows.setdefault(cid, CampusRow(cid, cid))

    # A lesson belongs to the term by its scheduled start, or its actual start if unscheduled.
    lessons = db.execute(
        "SELECT * FROM lessons WHERE consortium=? AND COALESCE(scheduled_start, started_at) >= ?"
        " AND COALESCE(scheduled_start, started_at) < ?",
        (consortium, start, end),
    ).fetchall()
    for lesson in lessons:
        held = lesson["started_at"] is not None
        joined = {
            r["campus"]
            for r in db.execute(
                "SELECT DISTINCT campus FROM attendance WHERE lesson_id=?", (lesson["id"],)
            )
        }
        if lesson["kind"] == "meeting":
            for cid in joined if held else ():
                if cid:
                    row(cid).meetings_attended += 1
            continue
        host = lesson["host_campus"]
        scheduled = lesson["scheduled_start"] is not None
        if host:
            if scheduled:
                row(host).hosted_scheduled += 1
                row(host).hosted_held += held
            elif held:
                row(host).unscheduled_held += 1
            if held and lesson["recording_id"]:
                row(host).recordings += 1
        if scheduled:
            expected = {
                r["campus"]
                for r in db.execute(
                    "SELECT campus FROM lesson_campuses WHERE lesson_id=?", (lesson["id"],)
                )
            } - {host}
            for cid in expected:
                row(cid).received_scheduled += 1
                row(cid).received_attended += held and cid in joined
    samples = db.execute(
        "SELECT a.campus, SUM(MAX(0, COALESCE(a.left_at, l.ended_at, a.joined_at) - a.joined_at))"
        " AS seconds, SUM(a.good) AS good, SUM(a.good + a.weak + a.poor) AS total"
        " FROM attendance a JOIN lessons l ON l.id = a.lesson_id WHERE l.consortium=?"
        " AND COALESCE(l.scheduled_start, l.started_at) >= ?"
        " AND COALESCE(l.scheduled_start, l.started_at) < ? AND a.campus != ''"
        " GROUP BY a.campus",
        (consortium, start, end),
    ).fetchall()
    for s in samples:
        r = row(s["campus"])
        r.attendance_minutes = round((s["seconds"] or 0) / 60, 1)
        r.good_link_share = round(s["good"] / s["total"], 3) if s["total"] else None
    return list(rows.values())


def table(rows: list[CampusRow]) -> list[list[Any]]:
    """Header and one list per campus, columns in HEADERS' order."""
    out: list[list[Any]] = [list(HEADERS.values())]
    for r in rows:
        values = {**asdict(r), "held_rate": r.held_rate, "attendance_rate": r.attendance_rate}
        out.append([_cell(values[key]) for key in HEADERS])
    return out


def _cell(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else ("" if value is None else value)


def to_csv(rows: list[CampusRow]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(table(rows))
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(rows: list[CampusRow], title: str) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "教联体学期报表"
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=14)
    data = table(rows)
    ws.append(data[0])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for line in data[1:]:
        ws.append(line)
    for column in ws.iter_cols(min_row=2, max_row=2):
        ws.column_dimensions[column[0].column_letter].width = 14
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def setup(app: web.Application, store: RecordsStore, settings: Settings) -> None:
    from .app import ISSUER

    async def report(request: web.Request) -> web.Response:
        try:
            identity = request.app[ISSUER].verify_request(
                request.query.get("token"), request.headers.get("Authorization")
            )
        except TokenError as exc:
            return web.json_response(error(exc.code, exc.message, exc.detail), status=401)
        if identity.role != "observer" or identity.room != "*":
            return web.json_response(
                error("not_allowed", "仅教务人员可导出报表。", "staff token required"), status=403
            )
        consortium, fmt = request.match_info["consortium"], request.match_info["fmt"]
        if identity.consortium and identity.consortium != consortium:
            # a consortium's staff exports its own report; the platform's staff (no claim) any
            return web.json_response(
                error("not_allowed", "仅可导出本教联体的报表。", "other consortium"), status=403
            )
        term = request.query.get("term", "")
        try:
            start, end = term_bounds(term)
        except ValueError as exc:
            return web.json_response(
                error("bad_term", "学期格式应为 2026-autumn 或 2027-spring。", str(exc)), status=400
            )
        demo = settings.demo
        campuses = demo.campuses if demo is not None and demo.id == consortium else {}
        name = demo.name if demo is not None and demo.id == consortium else consortium
        rows = build_report(store, consortium, campuses, start, end)
        filename = f"report-{consortium}-{term}.{fmt}"
        disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
        if fmt == "csv":
            return web.Response(
                body=to_csv(rows), content_type="text/csv", charset="utf-8", headers=disposition
            )
        body = to_xlsx(rows, f"{name} {term} 学期报表")
        return web.Response(
            body=body,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers=disposition,
        )

    app.router.add_get(r"/api/reports/{consortium}.{fmt:csv|xlsx}", report)
