"""SQLite persistence of consortia, plans and locks: survives reopening; a failed edit changes
nothing."""

import json
import threading
from pathlib import Path

import pytest

from scheduler.load import ModelError, load_file
from scheduler.model import Lock
from scheduler.solve import solve
from scheduler.store import Store, plan_from_dict, plan_to_dict
from tests.schedule_samples import consortium

SAMPLE = Path(__file__).resolve().parent.parent / "config/consortia/suixian-yandi.toml"


def test_everything_survives_reopening(tmp_path):
    db = tmp_path / "timetable.db"
    text = SAMPLE.read_text(encoding="utf-8")
    store = Store(db)
    c = store.put_consortium(text, "toml")
    store.put_consortium(json.dumps(consortium(), ensure_ascii=False), "json")
    plan = solve(c, time_limit_s=10)
    store.put_plan(c.id, plan)
    store.set_lock(c.id, Lock("g7-math", 1, 5))
    store.set_lock(c.id, Lock("math-research", 5, 14 * 60 + 30))
    store.close()

    again = Store(db)
    assert [x.id for x in again.consortia()] == ["suixian-yandi", "yandi"]
    loaded = again.consortium(c.id)
    assert loaded.campuses == c.campuses and loaded.courses == c.courses
    assert loaded.groups == c.groups and loaded.travel == c.travel
    assert again.source(c.id) == (text, "toml")  # comments and all
    assert sorted(loaded.locks, key=lambda lk: lk.item) == [
        Lock("g7-math", 1, 5), Lock("math-research", 5, 14 * 60 + 30)]
    stored = again.plan(c.id)
    assert stored == plan  # every slot, the reasons, the flags
    assert not again.plan_is_stale(c.id)
    assert again.plan("yandi") is None and again.plan_is_stale("yandi")
    again.close()


def test_an_edit_that_fails_validation_changes_nothing(tmp_path):
    store = Store(tmp_path / "t.db")
    good = json.dumps(consortium(), ensure_ascii=False)
    store.put_consortium(good, "json")
    store.set_lock("yandi", Lock("chinese", 2, 3))
    bad = consortium()
    bad["courses"][0]["teacher"] = "nobody"
    with pytest.raises(ModelError) as err:
        store.put_consortium(json.dumps(bad, ensure_ascii=False), "json")
    assert err.value.where == "courses[0].teacher"
    with pytest.raises(ModelError, match="TOML"):
        store.put_consortium('id = "yandi"\nname = \n', "toml")
    # an edit under which the stored lock can no longer hold (no third period any more)
    fewer = consortium()
    for campus in fewer["campuses"]:
        campus["bells"] = campus["bells"][:2]
    with pytest.raises(ModelError, match="锁定"):
        store.put_consortium(json.dumps(fewer, ensure_ascii=False), "json")
    assert store.source("yandi") == (good, "json") and store.revision("yandi") == 1
    assert store.locks("yandi") == [Lock("chinese", 2, 3)]
    assert len(store.consortium("yandi").campuses["core"].on(1)) == 4


def test_an_accepted_edit_bumps_the_revision_keeps_locks_and_stales_the_plan(tmp_path):
    store = Store(tmp_path / "t.db")
    store.put_consortium(json.dumps(consortium(), ensure_ascii=False), "json")
    c = store.consortium("yandi")
    store.put_plan("yandi", solve(c, time_limit_s=5))
    store.set_lock("yandi", Lock("chinese", 2, 3))
    edited = consortium()
    edited["courses"][0]["per_week"] = 4
    edited["locks"] = [{"item": "chinese", "day": 4, "at": 1}]
    c2 = store.put_consortium(json.dumps(edited, ensure_ascii=False), "json")
    assert c2.courses["chinese"].per_week == 4 and store.revision("yandi") == 2
    assert sorted((lk.day, lk.at) for lk in store.locks("yandi")) == [(2, 3), (4, 1)]
    assert store.plan_is_stale("yandi") and store.plan("yandi") is not None
    # a course that the edit removes takes its locks with it
    edited["courses"][0]["id"] = "yuwen"
    edited["locks"] = []
    store.put_consortium(json.dumps(edited, ensure_ascii=False), "json")
    assert store.locks("yandi") == []


def test_locks_are_validated_replaced_per_day_and_removed(tmp_path):
    store = Store(tmp_path / "t.db")
    store.put_consortium(json.dumps(consortium(), ensure_ascii=False), "json")
    store.set_lock("yandi", Lock("chinese", 1, 1))
    store.set_lock("yandi", Lock("chinese", 1, 2))  # the same day: replaces
    assert store.locks("yandi") == [Lock("chinese", 1, 2)]
    with pytest.raises(ModelError, match="ghost"):
        store.set_lock("yandi", Lock("ghost", 1, 1))
    with pytest.raises(ModelError, match="锁定"):
        store.set_lock("yandi", Lock("chinese", 2, 9))  # no ninth period
    with pytest.raises(ModelError, match="1 到 5"):
        store.set_lock("yandi", Lock("chinese", 6, 1))
    assert store.locks("yandi") == [Lock("chinese", 1, 2)]
    store.set_lock("yandi", Lock("chinese", 3, 1))
    assert store.remove_lock("yandi", "chinese", 1) == 1
    assert store.locks("yandi") == [Lock("chinese", 3, 1)]
    assert store.remove_lock("yandi", "chinese") == 1 and store.locks("yandi") == []
    with pytest.raises(KeyError):
        store.consortium("nowhere")
    store.delete_consortium("yandi")
    assert store.consortia() == []


def test_plans_as_plain_data_and_from_another_thread(tmp_path):
    c = load_file(SAMPLE)
    plan = solve(c, time_limit_s=10)
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(plan)))) == plan
    store = Store(tmp_path / "t.db")
    store.put_consortium(SAMPLE.read_text(encoding="utf-8"))
    worker = threading.Thread(target=store.put_plan, args=(c.id, plan))
    worker.start()
    worker.join()
    assert store.plan(c.id) == plan
