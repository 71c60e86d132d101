"""`tongke schedule FILE`: the plan, bell advice, Excel / iCalendar out, a timetable in, saved."""

import json
from pathlib import Path

from scheduler.imports import import_locks
from scheduler.load import load_file
from scheduler.model import Lock
from scheduler.store import Store
from server.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "config/consortia/suixian-yandi.toml"


def test_schedule_with_advice_exports_and_a_store(tmp_path, capsys):
    # maths every day: Friday has no aligned period until 厉山镇第三初级中学 rings earlier
    text = SAMPLE.read_text(encoding="utf-8").replace("per_week = 3", "per_week = 5", 1)
    path = tmp_path / "yandi.toml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "课表.csv").write_text("课程编号,星期,节次\ng7-english,周一,5\n", encoding="utf-8")
    rc = main(["schedule", str(path), "--advice", "--import", str(tmp_path / "课表.csv"),
               "--excel", str(tmp_path / "xlsx"), "--ics", str(tmp_path / "ics"),
               "--term-start", "2027-03-01", "--store", str(tmp_path / "t.db")])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "已排 12/13 节" in out and "已证明最优" in out
    assert "未排: g7-math 缺 1 节" in out
    assert "建议: 厉山镇第三初级中学上午作息提前 5 分钟" in out
    assert "周一 14:30–15:10 7年级英语 刘老师 [同步] (g7-english)" in out  # the imported lock
    assert "求解中" in err and "导入 1 项锁定" in err
    assert len(list((tmp_path / "xlsx").glob("*.xlsx"))) == 3
    assert len(list((tmp_path / "ics").glob("*.ics"))) == 4 + 4 + 4  # campuses, classes, teachers
    store = Store(tmp_path / "t.db")
    assert store.locks("suixian-yandi") == [Lock("g7-english", 1, 5)]
    plan = store.plan("suixian-yandi")
    assert plan is not None and plan.placed == 12 and not store.plan_is_stale("suixian-yandi")
    c = load_file(path)
    locks = import_locks(c, tmp_path / "xlsx" / "suixian-yandi-班级课表.xlsx")
    assert {(lk.item, lk.day, lk.at) for lk in locks} == {
        (s.item, s.day, s.at) for s in plan.lessons + plan.meetings}


def test_a_bad_file_exits_2_naming_the_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(SAMPLE.read_text(encoding="utf-8").replace('teacher = "wang"',
                                                               'teacher = "nobody"'),
                    encoding="utf-8")
    assert main(["schedule", str(path)]) == 2
    err = capsys.readouterr().err
    assert "courses[0].teacher" in err and "行" in err and "nobody" in err


def test_json_output_is_the_stored_plan_shape(tmp_path, capsys):
    assert main(["schedule", str(SAMPLE), "--greedy", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "greedy" and len(data["lessons"]) == 11
