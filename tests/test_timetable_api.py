"""The timetable's staff API on a real aiohttp test server with the sample consortium: who may
use it, the week per campus / teacher / class, the matcher as a job, locks, and edits (a bad
one changes nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.tokens import TokenIssuer
from tests.conftest import TEST_SECRET, make_settings

CID = "suixian-yandi"
BASE = f"/api/timetable/{CID}"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    app = create_app(make_settings(tmp_path, ladder=False))
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
def staff() -> dict[str, str]:
    token = TokenIssuer(TEST_SECRET).mint("*", "observer", "教务处")
    return {"Authorization": f"Bearer {token}"}


async def test_only_staff(client: TestClient) -> None:
    forged = TokenIssuer("somebody-else-secret-0123456789-abcdef").mint("*", "observer", "假教务")
    r = await client.get(BASE, params={"token": forged})
    assert r.status == 401
    assert (await r.json())["code"] == "bad_token"
    r = await client.post(f"{BASE}/solve", headers={"Authorization": f"Bearer {forged}"})
    assert r.status == 401
    ours = TokenIssuer(TEST_SECRET)
    for token in (
        ours.mint("yandi-g7-math", "classroom", "烈山湖学校七(1)班"),
        ours.mint("yandi-g7-math", "observer", "巡课"),  # one room's observer is not staff
    ):
        r = await client.get(BASE, params={"token": token})
        assert r.status == 403
    r = await client.put(f"{BASE}/source", data="id = 'x'", params={"token": token})
    assert r.status == 403
    r = await client.get(BASE)
    assert r.status == 401


async def test_week_views_and_matcher_job(client: TestClient, staff: dict[str, str]) -> None:
    r = await client.get("/api/timetable", headers=staff)
    assert CID in [c["id"] for c in await r.json()]
    overview = await (await client.get(BASE, headers=staff)).json()
    assert overview["plan"]["status"] == "greedy"
    assert {c["id"] for c in overview["campuses"]} >= {"yandi", "lishan-no3"}

    r = await client.post(f"{BASE}/solve", headers=staff)
    assert r.status == 202
    job = await r.json()
    assert job["state"] == "running" and job["greedy"]["lessons"] > 0
    for _ in range(300):
        job = await (await client.get(f"{BASE}/jobs/{job['id']}", headers=staff)).json()
        if job["state"] != "running":
            break
        await asyncio.sleep(0.1)
    assert job["state"] == "done", job
    assert job["progress"] and job["result"]["proven_optimal"]
    assert job["plan"]["status"] == "OPTIMAL"

    for params in ({"campus": "lishan-no3"}, {"teacher": "wang"}, {"class": "yandi-7-1"}):
        week = await (await client.get(f"{BASE}/week", params=params, headers=staff)).json()
        assert week["entries"] and week["periods"], params
        assert week["plan"]["proven_optimal"]
    r = await client.get(f"{BASE}/week", headers=staff)
    assert r.status == 400
    r = await client.get(f"{BASE}/week", params={"class": "nope"}, headers=staff)
    assert r.status == 404
    r = await client.get(f"{BASE}/jobs/nope", headers=staff)
    assert r.status == 404
    r = await client.get("/api/timetable/nope", headers=staff)
    assert r.status == 404


async def test_locks(client: TestClient, staff: dict[str, str]) -> None:
    week = await (await client.get(f"{BASE}/week", params={"teacher": "wang"},
                                   headers=staff)).json()
    math = next(e for e in week["entries"] if e["item"] == "g7-math")
    lock = {"item": "g7-math", "day": math["day"], "at": math["at"]}
    r = await client.post(f"{BASE}/locks", json=lock, headers=staff)
    assert r.status == 201, await r.text()
    overview = await (await client.get(BASE, headers=staff)).json()
    [listed] = overview["locks"]
    assert {k: listed[k] for k in lock} == lock and listed["from"] == "staff"
    assert listed["name"] == "七年级数学（王老师）" and listed["when"].endswith(f"第{math['at']}节")
    week = await (await client.get(f"{BASE}/week", params={"teacher": "wang"},
                                   headers=staff)).json()
    assert any(e["locked"] for e in week["entries"] if e["item"] == "g7-math")

    clash = {"item": "g7-english", "day": math["day"], "at": math["at"]}
    r = await client.post(f"{BASE}/locks", json=clash, headers=staff)
    assert r.status == 409
    body = await r.json()
    assert body["code"] == "lock_conflict" and "锁定" in body["message"]
    r = await client.post(f"{BASE}/locks", json={"item": "g7-math"}, headers=staff)
    assert r.status == 400

    r = await client.delete(f"{BASE}/locks", params=lock, headers=staff)
    assert r.status == 200
    r = await client.delete(f"{BASE}/locks", params=lock, headers=staff)
    assert r.status == 404
    overview = await (await client.get(BASE, headers=staff)).json()
    assert overview["locks"] == []


async def test_edits(client: TestClient, staff: dict[str, str]) -> None:
    source = await (await client.get(f"{BASE}/source", headers=staff)).text()
    week_before = await (await client.get(f"{BASE}/week", params={"campus": "yandi"},
                                          headers=staff)).json()
    lines = source.splitlines()
    n = lines.index('teacher = "liu"')
    lines[n] = 'teacher = "nobody"'
    r = await client.put(f"{BASE}/source", data="\n".join(lines), headers=staff)
    assert r.status == 400
    body = await r.json()
    assert body["line"] == n + 1 and f"第 {n + 1} 行" in body["message"]
    assert "nobody" in body["detail"]
    r = await client.put(f"{BASE}/source", data="id = [", headers=staff)
    assert r.status == 400 and "TOML" in (await r.json())["message"]
    assert await (await client.get(f"{BASE}/source", headers=staff)).text() == source
    week_after = await (await client.get(f"{BASE}/week", params={"campus": "yandi"},
                                         headers=staff)).json()
    assert week_after == week_before

    # A good edit: English five times a week, its teacher away on Mondays; the answer says
    # what could not be placed and why.
    edited = source.replace(
        'classes = ["lieshanhu-7-1", "lishan-central-7-1"]\nper_week = 2',
        'classes = ["lieshanhu-7-1", "lishan-central-7-1"]\nper_week = 5',
        1,
    ).replace('subjects = ["英语"]', 'subjects = ["英语"]\nunavailable = [[1, "07:00", "18:00"]]')
    assert edited != source
    r = await client.put(f"{BASE}/source", data=edited, headers=staff)
    assert r.status == 200, await r.text()
    unplaced = await (await client.get(f"{BASE}/unplaced", headers=staff)).json()
    english = next(u for u in unplaced if u["item"] == "g7-english")
    assert english["missing"] == 1 and "4 天" in english["reason"]
    assert await (await client.get(f"{BASE}/source", headers=staff)).text() == edited
