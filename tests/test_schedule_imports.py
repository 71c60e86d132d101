"""An existing timetable from CSV or Excel becomes locks; bad rows are named."""

from pathlib import Path

import pytest
from openpyxl import Workbook

from scheduler.imports import TimetableError, import_locks
from scheduler.load import load, load_file
from scheduler.model import Lock
from tests.schedule_samples import consortium

SAMPLE = Path(__file__).resolve().parent.parent / "config/consortia/suixian-yandi.toml"
HEADER = "课程编号,科目,班级,星期,节次,开始\n"


def write(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "课表.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_a_school_s_lines_become_locks(tmp_path):
    c = load_file(SAMPLE)
    path = write(tmp_path, HEADER + "\n".join([
        # by subject and class: the class's own period (厉山镇第三初级中学 afternoon = 王's 5th)
        ",数学,厉山镇第三初级中学七(1)班,周二,第5节,",
        # the other classes' lines of that same lesson agree: one lock
        "g7-math,,炎帝学校七(1)班,2,5,",
        # a master teacher's line: no class, the teacher's period
        "g7-english,,,星期四,3,",
        # a line by start time only
        "g7-chinese,,烈山湖学校七(1)班,周一,,08:55",
        # an itinerant lesson and the research meeting
        "music-lishan-no3,,,周五,1,",
        "math-research,,,周三,,16:10",
    ]))
    assert import_locks(c, path) == [
        Lock("g7-math", 2, 5), Lock("g7-english", 4, 3), Lock("g7-chinese", 1, 2),
        Lock("music-lishan-no3", 5, 1), Lock("math-research", 3, 16 * 60 + 10),
    ]


def test_every_bad_row_is_named(tmp_path):
    c = load_file(SAMPLE)
    path = write(tmp_path, HEADER + "\n".join([
        "g7-math,,,周一,5,",  # row 2: fine
        "ghost,,,周一,1,",  # row 3
        "g7-math,,,周六,1,",  # row 4
        "g7-math,,,周二,9,",  # row 5: no ninth period
        "g7-math,,,周一,6,",  # row 6: row 2 put Monday's maths in period 5
        ",数学,烈山湖学校七(1)班,周三,5,",  # row 7: fine (the afternoon aligns)
        ",美术,烈山湖学校七(1)班,周三,1,",  # row 8: no 美术 course
        "g7-math,,,周三,,",  # row 9: neither period nor start
        "g7-math,,,周四,1,",  # row 10: morning: 厉山镇第三初级中学 does not align
    ]))
    with pytest.raises(TimetableError) as err:
        import_locks(c, path)
    rows = [r for r, _ in err.value.errors]
    assert rows == [3, 4, 5, 6, 8, 9, 10]
    message = str(err.value)
    assert "第 3 行: 没有编号为 'ghost' 的课程或教研组" in message
    assert "第 4 行: 星期应为" in message and "第 6 行: 与第 2 行" in message
    assert "第 8 行" in message and "美术" in message
    assert "第 10 行" in message and "对不齐" in message


def test_lines_that_cannot_hold_together_are_refused(tmp_path):
    c = load_file(SAMPLE)
    # maths and Chinese both in 炎帝学校七(1)班's Monday 5th period
    path = write(tmp_path, HEADER + "g7-math,,,周一,5,\ng7-chinese,,,周一,5,\n")
    with pytest.raises(TimetableError, match="无法同时成立"):
        import_locks(c, path)


def test_csv_saved_by_chinese_excel_and_an_xlsx_with_a_title_row(tmp_path):
    c = load_file(SAMPLE)
    path = write(tmp_path, HEADER + ",英语,厉山镇中心学校七(1)班,周二,6,\n", encoding="gbk")
    assert import_locks(c, path) == [Lock("g7-english", 2, 6)]
    wb = Workbook()
    ws = wb.active
    ws.append(["炎帝学校教联体 2027 春季课表"])  # a title above the header
    ws.append(["班级", "科目", "星期", "节次"])
    ws.append(["炎帝学校七(1)班", "数学", "周四", 6])
    ws.append(["炎帝学校七(1)班", "数学", "周八", 6])
    ws.append([None, None, None, None])  # blank rows are skipped
    wb.save(tmp_path / "课表.xlsx")
    with pytest.raises(TimetableError) as err:
        import_locks(c, tmp_path / "课表.xlsx")
    assert [r for r, _ in err.value.errors] == [4]  # the spreadsheet's own row number
    ws.delete_rows(4)
    wb.save(tmp_path / "课表.xlsx")
    assert import_locks(c, tmp_path / "课表.xlsx") == [Lock("g7-math", 4, 6)]


def test_a_file_without_a_header_or_of_another_kind(tmp_path):
    c = load_file(SAMPLE)
    with pytest.raises(TimetableError, match="表头"):
        import_locks(c, write(tmp_path, "a,b\n1,2\n"))
    (tmp_path / "x.txt").write_text("星期\n1\n", encoding="utf-8")
    with pytest.raises(TimetableError, match=".csv 或 .xlsx"):
        import_locks(c, tmp_path / "x.txt")


def test_weekly_grids_as_schools_keep_them(tmp_path):
    c = load_file(SAMPLE)
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["2027 春季 厉山镇第三初级中学七(1)班 课表"])  # the class, named in the title
    ws.append(["", "周一", "周二", "周三", "周四", "周五"])
    ws.append(["第1节", "语文", "体育", "", "", ""])  # the school's own lessons: skipped
    ws.append(["午休"])
    ws.append(["第5节", "数学 王老师", "", "", "", "音乐"])
    campus = wb.create_sheet("烈山湖学校")  # a campus sheet: each line names its class
    campus.append(["", "周一", "周二", "周三", "周四", "周五"])
    campus.append(["第5节", "烈山湖学校七(1)班: 数学 王老师 〔同步〕", "", "", "", ""])
    campus.append(["第6节", "", "烈山湖学校七(1)班: 英语", "", "", ""])
    wb.save(tmp_path / "课表.xlsx")
    assert sorted(import_locks(c, tmp_path / "课表.xlsx"), key=lambda lk: lk.item) == [
        Lock("g7-english", 2, 6), Lock("g7-math", 1, 5), Lock("music-lishan-no3", 5, 5)]
    campus.append(["第1节", "", "", "烈山湖学校七(1)班: 数学", "", ""])  # row 4: misaligned
    wb.save(tmp_path / "课表.xlsx")
    with pytest.raises(TimetableError) as err:
        import_locks(c, tmp_path / "课表.xlsx")
    assert err.value.errors[0][0] == 4 and "[烈山湖学校]" in err.value.errors[0][1]
    assert "对不齐" in str(err.value)


def test_a_class_name_two_campuses_share_needs_the_class_id(tmp_path):
    c = load(consortium())  # every campus calls its class 七(1)班
    path = write(tmp_path, HEADER + ",语文,七(1)班,周一,1,\n,语文,lsh-7-1,周二,1,\n")
    with pytest.raises(TimetableError) as err:
        import_locks(c, path)
    assert [r for r, _ in err.value.errors] == [2] and "班级编号" in str(err.value)
