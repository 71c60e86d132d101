"""Switching recording on over HTTP when the disk is too full: a clear refusal, a warning the
teacher and staff can read, and nothing written."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from server.client import Participant
from server.config import load_settings
from tests.conftest import TEST_SECRET, free_port, running

ROOM = "yandi-g7-math"


async def test_a_full_disk_refuses_recording_with_a_chinese_message(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        {
            "server": {"host": "127.0.0.1", "port": free_port()},
            "tokens": {"secret": TEST_SECRET},
            "data": {"dir": str(tmp_path / "var")},
            "media": {"ladder": False},
            # More free space than any disk has: every start must be refused.
            "recording": {"default": True, "min_free_mb": 1 << 40},
        },
    )
    async with running(settings) as server:
        token = server.mint(ROOM, "teacher", "王老师", participant_id="t")
        teacher = Participant()
        await teacher.connect(server.url, token)
        await teacher.join()  # recording is on by default: refused as the teacher arrives
        try:
            async with aiohttp.ClientSession() as http:
                url = f"{server.url}/api/recording/{ROOM}"
                async with http.post(f"{url}/start", params={"token": token}) as r:
                    body = await r.json()
                    assert r.status == 507 and body["code"] == "disk_full"
                    assert "磁盘空间不足" in body["message"] and "MB" in body["detail"]
                async with http.get(url, params={"token": token}) as r:
                    status = await r.json()
                assert status["recording"] is False
                assert [w["code"] for w in status["warnings"]] == ["disk_full"]
                assert status["warnings"][0]["message"]
                async with http.post(f"{url}/stop", params={"token": token}) as r:
                    assert r.status == 404
                staff = server.mint("*", "observer", "教务")
                async with http.get(url, params={"token": staff}) as r:
                    assert r.status == 200
                other = server.mint("other", "teacher", "李老师")
                async with http.get(url, params={"token": other}) as r:
                    assert r.status == 403
        finally:
            await teacher.close()
    recordings = tmp_path / "var" / "recordings"
    assert not recordings.exists() or not any(recordings.iterdir())
