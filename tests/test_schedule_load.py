"""Loading a consortium: errors say what is wrong and where; TOML and JSON alike."""

import json
from pathlib import Path

import pytest

from scheduler.load import ModelError, load, load_file, toml_line
from tests.schedule_samples import BASE, consortium


def test_the_sample_loads():
    c = load(BASE)
    assert set(c.campuses) == {"core", "lsh", "far"}
    assert c.campuses["lsh"].on(1)[0].start == 8 * 60 + 5
    assert c.min_overlap == 35 and c.travel_minutes("lsh", "core") == 25


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        ({"classes": [{"id": "k", "name": "七(1)班", "campus": "nowhere", "grade": 7}]},
         "classes[0].campus", "nowhere"),
        ({"courses": [{"id": "c", "subject": "语文", "grade": 7, "teacher": "wang",
                       "classes": ["core-7-1", "ghost"]}]}, "courses[0].classes[1]", "ghost"),
        ({"courses": [{"id": "c", "subject": "语文", "grade": 7, "teacher": "nobody",
                       "classes": ["core-7-1"]}]}, "courses[0].teacher", "nobody"),
        ({"campuses": [{"id": "a", "name": "甲", "bells": ["8:00", "25:00"]}]},
         "campuses[0].bells[1]", "HH:MM"),
        ({"campuses": [{"id": "a", "name": "甲", "bells": ["08:00", "08:20"]}]},
         "campuses[0].bells[1]", "重叠"),
        ({"min_overlap": 50}, "min_overlap", "1 到 40"),
        ({"locks": [{"item": "chinese", "day": 1}]}, "locks[0].at", "缺少"),
        ({"locks": [{"item": "chinese", "day": 9, "at": 1}]}, "locks[0].day", "1 到 5"),
        ({"courses": [{"id": "c", "subject": "语文", "grade": 8, "teacher": "wang",
                       "classes": ["core-7-1"]}]}, "courses[0].classes[0]", "7 年级"),
        ({"teachers": [{"id": "w", "name": "王", "campus": "core",
                        "unavailable": [[1, "10:00", "09:00"]]}]},
         "teachers[0].unavailable[0]", "晚于"),
        ({"groups": [{"id": "g", "subject": "语文", "members": ["wang"], "minutes": "x"}]},
         "groups[0].minutes", "10 到 240"),
        ({"groups": [{"id": "g", "subject": "语文", "members": "wang"}]},
         "groups[0].members", "列表"),
        ({"groups": [{"id": "g", "subject": "语文", "members": []}]},
         "groups[0].members", "至少"),
        ({"campuses": [{"id": "a", "name": "甲", "bells": ["08:00"], "bells_by_day": [1]}]},
         "campuses[0].bells_by_day", "星期几"),
        ({"campuses": [{"id": "a", "name": "甲", "bells": ["08:00"],
                        "bells_by_day": {"5": ["08:00", "08:10"]}}]},
         "campuses[0].bells_by_day.5[1]", "重叠"),
        ({"travel": [{"a": "core", "b": "lsh", "minutes": -5}]}, "travel[0].minutes", "负数"),
    ],
)
def test_errors_point_at_the_offending_entry(change, where, words):
    with pytest.raises(ModelError) as err:
        load(consortium(**change))
    assert err.value.where == where and words in str(err.value)


def test_a_document_that_is_not_a_table_is_refused():
    with pytest.raises(ModelError, match="顶层"):
        load([])  # type: ignore[arg-type]


def test_friday_bells_of_their_own():
    data = consortium()
    data["campuses"][0]["bells_by_day"] = {5: ["07:50", "08:40"]}
    c = load(data)
    assert [p.start for p in c.campuses["core"].on(5)] == [7 * 60 + 50, 8 * 60 + 40]
    assert c.campuses["core"].on(4)[0].start == 8 * 60


def test_duplicate_ids_are_refused():
    data = consortium()
    data["classes"].append(dict(data["classes"][0]))
    with pytest.raises(ModelError, match=r"classes\[3\]\.id"):
        load(data)


def test_files_in_toml_and_json(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(BASE, ensure_ascii=False), encoding="utf-8")
    assert load_file(tmp_path / "c.json").name == "炎帝学校教联体"
    (tmp_path / "bad.toml").write_text('id = "x"\nname = \n', encoding="utf-8")
    with pytest.raises(ModelError, match="TOML"):
        load_file(tmp_path / "bad.toml")


def test_research_meeting_hosts_rotate_week_by_week():
    group = {"id": "g", "subject": "语文", "members": ["wang", "li"], "hosts": ["lsh", "core"]}
    c = load(consortium(groups=[group]))
    g = c.groups["g"]
    assert [g.host(w, c) for w in (1, 2, 3, 4)] == ["lsh", "core", "lsh", "core"]
    # no hosts given: the members' campuses take turns (王 at the core, 赵 moved to 烈山湖)
    data = consortium(groups=[group | {"hosts": [], "members": ["wang", "li", "zhao"]}])
    data["teachers"][2]["campus"] = "lsh"
    c = load(data)
    assert [c.groups["g"].host(w, c) for w in (1, 2, 3)] == ["core", "lsh", "core"]


def test_a_toml_file_s_errors_name_the_line(tmp_path):
    text = (Path(__file__).resolve().parent.parent / "config/consortia/suixian-yandi.toml"
            ).read_text(encoding="utf-8")
    lines = text.splitlines()
    n = next(i for i, ln in enumerate(lines) if ln.startswith('teacher = "'))  # the first course's
    lines[n] = 'teacher = "nobody"'
    (tmp_path / "c.toml").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ModelError) as err:
        load_file(tmp_path / "c.toml")
    assert err.value.where == "courses[0].teacher" and err.value.line == n + 1
    assert f"第 {n + 1} 行" in str(err.value)
    assert toml_line('id = "x"\nmin_overlap = 50\n', "min_overlap") == 2
    assert toml_line("[[classes]]\nid = 'a'\n", "classes[3].campus") is None
