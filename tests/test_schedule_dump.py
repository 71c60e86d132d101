"""A consortium written back as data, JSON and TOML loads to the same consortium."""

from pathlib import Path

import pytest

from scheduler.dump import to_data, to_json, to_toml
from scheduler.load import ModelError, load, load_text
from scheduler.model import Lock

FILES = sorted((Path(__file__).resolve().parent.parent / "config/consortia").glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_every_sample_round_trips(path):
    c = load_text(path.read_text(encoding="utf-8"))
    c.locks += [Lock(next(iter(c.courses)), 2, 1), Lock(next(iter(c.groups)), 3, 9 * 60 + 5)]
    assert load(to_data(c)) == c
    assert load_text(to_json(c), "json") == c
    assert load_text(to_toml(c), "toml") == c


def test_a_day_s_own_bells_stay_the_day_s_and_toml_errors_still_name_the_line():
    text = next(f for f in FILES if f.stem == "suixian-yandi").read_text(encoding="utf-8")
    c = load_text(text)
    data = to_data(c)
    central = next(x for x in data["campuses"] if x["id"] == "lishan-central")
    assert list(central["bells_by_day"]) == ["5"] and len(central["bells"]) == 7
    lines = to_toml(c).splitlines()
    n = lines.index('teacher = "wang"')
    lines[n] = 'teacher = "nobody"'
    with pytest.raises(ModelError) as err:
        load_text("\n".join(lines))
    assert err.value.where == "courses[0].teacher" and err.value.line == n + 1
