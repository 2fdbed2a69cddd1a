"""5374.jp CSV import and export."""

from datetime import date

import pytest

from bot.domain.garbage import (
    Area,
    Calendar,
    Category,
    CollectionCenter,
    EveryOtherWeek,
    HolidayHandling,
    HolidayPolicy,
    NthWeekday,
    OnDate,
    Remark,
    Schedule,
    Suspension,
    TargetItem,
    Weekday,
    Weekly,
    collection_days,
)
from bot.domain.gomi5374 import (
    EXTENSIONS,
    ImportProblems,
    Problem,
    decode_csv,
    export_5374,
    format_cell,
    format_holiday_policy,
    parse_5374,
    parse_cell,
    parse_date,
    parse_holiday_policy,
)

MON, TUE, WED, THU, FRI, SAT, SUN = Weekday

AREA_DAYS = """\
地名,センター,燃やすごみ,燃やさないごみ,資源,びん,あきかん
東山１丁目,東部管理センター,月 木,水2,火2 金4:4 6 8 10 12 2,火1 火3,土
西町,西部管理センター,火 金,水4,水1 水3,20270115 20270215 *1,
港町 1・2・3番,,水 土,,月2 月4 *2,,木1:6 7 8
"""
CENTER = """\
名称,休止開始日,休止終了日
東部管理センター,2026/12/29,2027/1/3
西部管理センター,2026/12/30,2027/1/4
"""
TARGET = """\
label,name,notice,furigana
燃やすごみ,生ごみ,水を切ってください,なまごみ
燃やすごみ,紙くず,,かみくず
燃やさないごみ,ガラス,新聞紙に包んでください,がらす
粗大ごみ,たんす,事前にお申し込みください,たんす
"""
DESCRIPTION = """\
label,sublabel,description,styles,bgcolor
燃やすごみ,,,img/moyasu02.svg,#ea3b13
燃やさないごみ,,,img/moyasanai02.svg,#733b96
粗大ごみ,,電話で予約,img/sodai.svg,#555555
"""
REMARKS = """\
ID,注意事項
1,不定期の収集です。広報をご覧ください。
2,"一部地域（港町4番）は収集曜日が異なります。"
"""


def sample_files(encoding: str = "utf-8") -> dict[str, bytes]:
    return {
        "area_days.csv": AREA_DAYS.encode(encoding),
        "center.csv": CENTER.encode(encoding),
        "target.csv": TARGET.encode(encoding),
        "description.csv": DESCRIPTION.encode(encoding),
        "remarks.csv": REMARKS.encode(encoding),
    }


def problems_of(files: dict[str, bytes]) -> list[Problem]:
    with pytest.raises(ImportProblems) as caught:
        parse_5374(files)
    return list(caught.value.problems)


def area_days(*rows: str, header: str = "地名,センター,燃やすごみ,資源") -> dict[str, bytes]:
    return {"area_days.csv": "\n".join([header, *rows, ""]).encode()}


# ---------------------------------------------------------------------------------------------
# Import


def test_realistic_sample() -> None:
    calendar = parse_5374(sample_files(), municipality_code="172014")
    assert calendar.municipality_code == "172014"
    assert [c.name for c in calendar.categories] == [
        "燃やすごみ",
        "燃やさないごみ",
        "資源",
        "びん",
        "あきかん",
        "粗大ごみ",
    ]
    assert [c.id for c in calendar.categories] == [c.name for c in calendar.categories]
    burnable = calendar.category("燃やすごみ")
    assert burnable.items == (
        TargetItem("生ごみ", "水を切ってください", "なまごみ"),
        TargetItem("紙くず", "", "かみくず"),
    )
    assert (burnable.style, burnable.color) == ("img/moyasu02.svg", "#ea3b13")
    assert calendar.category("粗大ごみ").notes == "電話で予約"
    assert [c.name for c in calendar.centers] == ["東部管理センター", "西部管理センター"]
    assert calendar.suspensions == (
        Suspension(date(2026, 12, 29), date(2027, 1, 3), center="東部管理センター"),
        Suspension(date(2026, 12, 30), date(2027, 1, 4), center="西部管理センター"),
    )
    assert calendar.remarks == (
        Remark("1", "不定期の収集です。広報をご覧ください。"),
        Remark("2", "一部地域（港町4番）は収集曜日が異なります。"),
    )

    higashi = calendar.area("東山１丁目")  # names are kept as written
    assert higashi.center == "東部管理センター"
    assert higashi.schedule("燃やすごみ") == Schedule("燃やすごみ", (Weekly(MON), Weekly(THU)))
    assert higashi.schedule("資源") == Schedule(
        "資源", (NthWeekday(TUE, 2), NthWeekday(FRI, 4)), frozenset({4, 6, 8, 10, 12, 2})
    )
    assert higashi.schedule("びん") == Schedule("びん", (NthWeekday(TUE, 1), NthWeekday(TUE, 3)))
    nishi = calendar.area("西町")
    assert nishi.schedule("びん") == Schedule(
        "びん", (OnDate(date(2027, 1, 15)), OnDate(date(2027, 2, 15))), remark_ids=("1",)
    )
    assert nishi.schedule("あきかん") is None
    minato = calendar.area("港町 1・2・3番")
    assert minato.center == ""
    assert minato.schedule("燃やさないごみ") is None
    assert minato.schedule("資源") == Schedule(
        "資源", (NthWeekday(MON, 2), NthWeekday(MON, 4)), remark_ids=("2",)
    )
    assert minato.schedule("あきかん") == Schedule(
        "あきかん", (NthWeekday(THU, 1),), frozenset({6, 7, 8})
    )

    # the year-end suspension of 東部管理センター applies to 東山１丁目
    assert collection_days(
        calendar, "東山１丁目", "燃やすごみ", date(2026, 12, 24), date(2027, 1, 8)
    ) == [date(2026, 12, 24), date(2026, 12, 28), date(2027, 1, 4), date(2027, 1, 7)]
    assert collection_days(
        calendar, "西町", "燃やすごみ", date(2026, 12, 29), date(2027, 1, 8)
    ) == [
        date(2026, 12, 29),
        date(2027, 1, 5),
        date(2027, 1, 8),
    ]


def test_only_area_days_is_required() -> None:
    calendar = parse_5374(area_days("本町,,月 木,水2"))
    assert calendar.municipality_code == ""
    assert [c.id for c in calendar.categories] == ["燃やすごみ", "資源"]
    assert calendar.centers == () and calendar.remarks == () and calendar.suspensions == ()


def test_file_keys_may_carry_folders_and_unknown_files_are_ignored() -> None:
    files = {f"data/{name}": data for name, data in sample_files().items()}
    files["data/area.kml"] = b"<kml/>"
    files["C:\\5374\\data\\alternate_days.csv"] = b"\xff\xfe\x00garbage"
    assert parse_5374(files) == parse_5374(sample_files())


def test_csv_details() -> None:
    text = (
        "地名,センター,燃やすごみ,資源,,\r\n"  # Excel's trailing empty columns
        "\r\n"
        '"本町, 1丁目",,"月 木",水2,,\r\n'
        ",,,,,\r\n"  # an empty row
        "北町,,　火　金　,水２　水４,,\r\n"  # full-width spaces and digits
    )
    calendar = parse_5374({"area_days.csv": text.encode()})
    assert [a.name for a in calendar.areas] == ["本町, 1丁目", "北町"]
    assert calendar.area("北町").schedules == (
        Schedule("燃やすごみ", (Weekly(TUE), Weekly(FRI))),
        Schedule("資源", (NthWeekday(WED, 2), NthWeekday(WED, 4))),
    )


def test_parse_cell_forms() -> None:
    cell, reasons = parse_cell("月 木")
    assert (cell.rules, cell.months, reasons) == ([Weekly(MON), Weekly(THU)], None, [])
    cell, reasons = parse_cell("火2 金4:4 6 8 10 12 2")
    assert cell.rules == [NthWeekday(TUE, 2), NthWeekday(FRI, 4)]
    assert cell.months == frozenset({2, 4, 6, 8, 10, 12}) and not reasons
    cell, reasons = parse_cell("20140301 20140325 *1")
    assert cell.rules == [OnDate(date(2014, 3, 1)), OnDate(date(2014, 3, 25))]
    assert cell.remark_ids == ["1"] and not reasons
    cell, reasons = parse_cell("月曜 *12")
    assert cell.rules == [Weekly(MON)] and cell.remark_ids == ["12"] and not reasons
    assert parse_cell("   ")[0].rules == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("火9", "曜日「火9」を読めません（第1〜第5のみ）"),
        ("火0", "曜日「火0」を読めません（第1〜第5のみ）"),
        ("2土", "曜日「2土」を読めません（第2土曜は「土2」と書きます）"),
        ("20270230", "日付「20270230」はありません（YYYYMMDD）"),
        ("管路", "「管路」を読めません（例: 月 木、水2、火1 火3、20270109、*1）"),
        ("*", "備考「*」を読めません（*のあとに備考のID）"),
        ("月:13", "月の指定「13」を読めません（1〜12）"),
        ("月:", "「:」のあとに月がありません（例: 火2 金4:4 6 8 10 12 2）"),
        (":4 5", "「:」の前に収集日がありません"),
        ("月:4:5", "「:」は1つだけ使えます（月の指定の前）"),
    ],
)
def test_parse_cell_reasons(text: str, reason: str) -> None:
    assert reason in parse_cell(text)[1]


def test_format_cell() -> None:
    schedule = Schedule(
        "x",
        (NthWeekday(FRI, 4), NthWeekday(TUE, 2), EveryOtherWeek(SAT, date(2027, 1, 9))),
        frozenset({2, 4, 6, 8, 10, 12}),
        ("1",),
    )
    assert format_cell(schedule) == "火2 金4 *1:4 6 8 10 12 2"
    assert format_cell(schedule, months=False) == "火2 金4 *1"
    assert format_cell(Schedule("x", (OnDate(date(2027, 1, 9)),))) == "20270109"


def test_parse_date_forms() -> None:
    for text in ("2027/1/9", "2027-01-09", "2027年1月9日", "20270109", " ２０２７/１/９ "):
        assert parse_date(text) == date(2027, 1, 9), text
    for text in ("2027/2/30", "1/9", "", "2027/1/9/1", "yesterday"):
        assert parse_date(text) is None, text


# ---------------------------------------------------------------------------------------------
# Bad rows: every one reported, nothing imported


def test_every_bad_row_is_reported() -> None:
    files = {
        "area_days.csv": (
            "地名,センター,燃やすごみ,資源\n"
            "本町,,月 木,火9\n"  # line 2
            ",,月,\n"  # line 3
            "本町,,火,\n"  # line 4: duplicate
            "北町,南部センター,2土,水2 *7\n"  # line 5
            "東町,,月:13,,余計\n"  # line 6
        ).encode(),
        "center.csv": (
            "名称,休止開始日,休止終了日\n"
            "東部センター,2026/12/29,2027/1/3\n"
            ",2026/12/29,2027/1/3\n"  # line 3
            "西部センター,2026/12/29,\n"  # line 4
            "北部センター,2027/1/3,2026/12/29\n"  # line 5
            "南部,2026/13/1,2027/1/3\n"  # line 6
        ).encode(),
        "target.csv": ("label,name,notice,furigana\n燃えるごみ,生ごみ,,\n燃やすごみ,,,\n").encode(),
        "description.csv": (
            "label,sublabel,description,styles,bgcolor\n,sub,,,\n資源,,,,\n資源,,,,\n"
        ).encode(),
        "remarks.csv": "ID,注意事項\n1,a\n1,b\n,c\n一,d\n".encode(),
    }
    problems = problems_of(files)
    assert [(p.file, p.line) for p in problems] == [
        ("area_days.csv", 2),
        ("area_days.csv", 3),
        ("area_days.csv", 4),
        ("area_days.csv", 5),
        ("area_days.csv", 5),
        ("area_days.csv", 5),
        ("area_days.csv", 6),
        ("area_days.csv", 6),
        ("center.csv", 3),
        ("center.csv", 4),
        ("center.csv", 5),
        ("center.csv", 6),
        ("target.csv", 2),
        ("target.csv", 3),
        ("description.csv", 2),
        ("description.csv", 4),
        ("remarks.csv", 3),
        ("remarks.csv", 4),
        ("remarks.csv", 5),
    ]
    texts = [str(p) for p in problems]
    assert texts[0] == "area_days.csv 2行目「資源」: 曜日「火9」を読めません（第1〜第5のみ）"
    assert problems[0] == Problem(
        "area_days.csv", 2, "曜日「火9」を読めません（第1〜第5のみ）", "資源"
    )
    expected_fragments = [
        "地名が空です",
        "地名「本町」は2行目と重複しています",
        "センター「南部センター」が center.csv にありません",
        "曜日「2土」を読めません（第2土曜は「土2」と書きます）",
        "備考「*7」が remarks.csv にありません",
        "月の指定「13」を読めません（1〜12）",
        "見出しのない列に「余計」があります",
        "center.csv 3行目: 名称が空です",
        "center.csv 4行目: 休止開始日と休止終了日は両方お書きください",
        "center.csv 5行目: 休止終了日が休止開始日より前です",
        "center.csv 6行目: 日付「2026/13/1」を読めません（例: 2027/12/29）",
        "target.csv 2行目: 分別「燃えるごみ」が area_days.csv にも description.csv にもありません",
        "target.csv 3行目: nameが空です",
        "description.csv 2行目: labelが空です",
        "description.csv 4行目: 分別「資源」は3行目と重複しています",
        "remarks.csv 3行目: ID「1」は2行目と重複しています",
        "remarks.csv 4行目: IDが空です",
        "remarks.csv 5行目: ID「一」は半角英数字でお書きください",
    ]
    joined = "\n".join(texts)
    for fragment in expected_fragments:
        assert fragment in joined, fragment


def test_problem_summary_message() -> None:
    error = ImportProblems(
        [Problem("area_days.csv", 2, "地名が空です"), Problem("center.csv", 0, "x")]
    )
    assert error.message == (
        "ごみカレンダーを取り込めませんでした。直していただきたい箇所が2件あります。\n"
        "・area_days.csv 2行目: 地名が空です\n"
        "・center.csv: x"
    )
    assert str(error) == error.message


def test_header_problems() -> None:
    assert [p.reason for p in problems_of(area_days("本町,,月", header="地名,センター"))] == [
        "3列目から分別（燃やすごみ など）の列が必要です",
        "見出しのない列に「月」があります",
    ]
    problems = problems_of(
        area_days("本町,,月,火,水", header="地名,センター,燃やすごみ,,燃やすごみ")
    )
    assert [(p.line, p.reason) for p in problems] == [
        (1, "4列目の分別名が空です"),
        (1, "分別「燃やすごみ」が2回あります"),
    ]
    assert [p.reason for p in problems_of({"area_days.csv": b"\n\n"})] == ["見出しの行がありません"]
    assert [str(p) for p in problems_of({"center.csv": CENTER.encode()})] == [
        "area_days.csv: area_days.csv がありません"
    ]


def test_multi_line_records_report_their_first_line() -> None:
    files = area_days('"本町\n2丁目",,月,火9', "北町,,月,火6")
    assert [(p.line, p.reason) for p in problems_of(files)] == [
        (2, "曜日「火9」を読めません（第1〜第5のみ）"),
        (4, "曜日「火6」を読めません（第1〜第5のみ）"),
    ]


# ---------------------------------------------------------------------------------------------
# Encodings


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "shift_jis", "cp932", "utf-16"])
def test_encodings(encoding: str) -> None:
    assert parse_5374(sample_files(encoding)) == parse_5374(sample_files())


def test_cp932_only_characters_and_mixed_encodings() -> None:
    files = sample_files()
    files["area_days.csv"] = (AREA_DAYS + "髙島町①,,月,,,,\n").encode("cp932")
    files["remarks.csv"] = REMARKS.encode("utf-8-sig")
    calendar = parse_5374(files)
    assert calendar.area("髙島町①").schedule("燃やすごみ") == Schedule("燃やすごみ", (Weekly(MON),))


def test_undecodable_files_are_problems() -> None:
    files = sample_files()
    files["target.csv"] = b"\x81\x20\xff\xfe\xfd"
    assert [str(p) for p in problems_of(files)] == [
        "target.csv: 文字コードを読めません（UTF-8 か Shift_JIS で保存してください）"
    ]
    assert decode_csv(b"\xef\xbb\xbfabc") == "abc"
    assert decode_csv("あ".encode("shift_jis")) == "あ"
    assert decode_csv(b"\x81\x20\xff") is None
    # Shift_JIS 0x8160 is read the Windows (cp932) way, as FULLWIDTH TILDE
    assert decode_csv("1〜3番".encode("shift_jis")) == "1～3番"


# ---------------------------------------------------------------------------------------------
# Extensions


def test_extensions_file() -> None:
    files = sample_files()
    files[EXTENSIONS] = (
        "kind,subject,detail,value\n"
        "calendar,,municipality_code,172014\n"
        "calendar,,fallback,指定ごみ袋をお渡しします。収集センターへお持ちください。\n"
        "calendar,,note,年末年始は休みます\n"
        "calendar,,note,祝日の扱いは分別ごとに異なります\n"
        "center,東部管理センター,address,金沢市東部1-1\n"
        "center,東部管理センター,hours,平日 9:00〜16:00\n"
        "center,東部管理センター,map_url,https://maps.example.jp/?q=1\n"
        "area,西町,lat,36.56\n"
        "area,西町,lng,136.65\n"
        "category,燃やすごみ,id,burnable\n"
        "category,燃やすごみ,holiday,moved\n"
        "category,資源,holiday,skipped\n"
        "category,びん,holiday,moved:-1\n"
        "category,あきかん,holiday,moved:sundays\n"
        "every_other_week,西町,あきかん,金 20270108\n"
        "every_other_week,港町 1・2・3番,粗大ごみ,土 20270109\n"
        "months,港町 1・2・3番,粗大ごみ,4 5\n"
        "suspension,西町,2027/5/6,2027/5/7\n"
        "suspension,,20270813,20270815\n"
    ).encode()
    calendar = parse_5374(files)
    assert calendar.municipality_code == "172014"
    assert calendar.fallback.startswith("指定ごみ袋")
    assert calendar.notes == ("年末年始は休みます", "祝日の扱いは分別ごとに異なります")
    assert calendar.center("東部管理センター") == CollectionCenter(
        "東部管理センター", "金沢市東部1-1", "平日 9:00〜16:00", "https://maps.example.jp/?q=1"
    )
    assert (calendar.area("西町").lat, calendar.area("西町").lng) == (36.56, 136.65)
    assert calendar.categories[0].id == "burnable"
    assert calendar.area("東山１丁目").schedule("burnable") is not None
    assert calendar.category("burnable").holiday == HolidayPolicy(HolidayHandling.MOVED)
    assert calendar.category("資源").holiday == HolidayPolicy(HolidayHandling.SKIPPED)
    assert calendar.category("びん").holiday == HolidayPolicy(HolidayHandling.MOVED, -1)
    assert calendar.category("あきかん").holiday == HolidayPolicy(
        HolidayHandling.MOVED, skip_sundays=False
    )
    assert calendar.area("西町").schedule("あきかん") == Schedule(
        "あきかん", (EveryOtherWeek(FRI, date(2027, 1, 8)),)
    )
    assert calendar.area("港町 1・2・3番").schedule("粗大ごみ") == Schedule(
        "粗大ごみ", (EveryOtherWeek(SAT, date(2027, 1, 9)),), frozenset({4, 5})
    )
    assert Suspension(date(2027, 5, 6), date(2027, 5, 7), area="西町") in calendar.suspensions
    assert Suspension(date(2027, 8, 13), date(2027, 8, 15)) in calendar.suspensions
    # a keyword municipality code wins
    assert parse_5374(files, municipality_code="042056").municipality_code == "042056"
    # the holiday move applies: 2027-01-11 (Monday, 成人の日) moves to Tuesday
    assert collection_days(
        calendar, "東山１丁目", "burnable", date(2027, 1, 10), date(2027, 1, 16)
    ) == [date(2027, 1, 12), date(2027, 1, 14)]


def test_bad_extension_rows() -> None:
    files = sample_files()
    files[EXTENSIONS] = (
        "kind,subject,detail,value\n"
        "weather,,,\n"  # 2
        "calendar,,municipality_code,17201\n"  # 3
        "calendar,,colour,red\n"  # 4
        "center,南部,address,x\n"  # 5
        "center,東部管理センター,phone,x\n"  # 6
        "area,北町,lat,1\n"  # 7
        "area,西町,lat,north\n"  # 8
        "area,西町,lng,136.6\n"  # 9: lat missing (line 8 was bad)
        "category,燃えるごみ,holiday,moved\n"  # 10
        "category,資源,holiday,sometimes\n"  # 11
        "category,資源,color,red\n"  # 12
        "category,資源,id,\n"  # 13
        "category,びん,id,bin\n"  # 14
        "category,あきかん,id,bin\n"  # 15
        "every_other_week,西町,あきかん,金\n"  # 16
        "every_other_week,北町,あきかん,金 20270108\n"  # 17
        "every_other_week,西町,燃えるごみ,金 20270108\n"  # 18
        "months,西町,あきかん,4 13\n"  # 19
        "months,東山１丁目,資源,4 5\n"  # 20: the cell has months already
        "months,西町,粗大ごみ,4 5\n"  # 21: months without any rule
        "suspension,北町,2027/5/6,2027/5/7\n"  # 22
        "suspension,,2027/5/7,2027/5/6\n"  # 23
        "calendar,,fallback,a\n"  # 24
        "calendar,,fallback,b\n"  # 25
        "category,資源,holiday,moved:+15\n"  # 26
    ).encode()
    problems = problems_of(files)
    assert all(p.file == EXTENSIONS for p in problems)
    assert [p.line for p in problems] == [
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        13,
        15,
        16,
        17,
        18,
        19,
        20,
        21,
        22,
        23,
        25,
        26,
    ]
    reasons = {p.line: p.reason for p in problems}
    assert reasons[3] == "団体コード「17201」は6桁の数字でお書きください"
    assert reasons[9] == "地名「西町」の緯度（lat）と経度（lng）は両方お書きください"
    assert reasons[11].startswith("祝日の扱い「sometimes」を読めません")
    assert reasons[15] == "分別のID「bin」は14行目と重複しています"
    assert reasons[20] == "地名「東山１丁目」の「資源」には月の指定がすでにあります"
    assert reasons[21] == "地名「西町」の「粗大ごみ」は月の指定だけで、収集日がありません"
    assert reasons[25] == "同じ指定が24行目にもあります"


def test_category_ids_must_stay_unique() -> None:
    files = sample_files()
    files[EXTENSIONS] = "kind,subject,detail,value\ncategory,燃やすごみ,id,資源\n".encode()
    assert [str(p) for p in problems_of(files)] == [
        "furusato_extensions.csv 2行目: 分別「資源」のID「資源」は分別「燃やすごみ」と同じです"
    ]


def test_holiday_policy_forms() -> None:
    for text in ("collected", "skipped", "moved", "moved:sundays", "moved:+1", "moved:-3"):
        policy = parse_holiday_policy(text)
        assert policy is not None
        assert format_holiday_policy(policy) == text
    for text in ("", "moved:0", "moved:+15", "moved:1", "later"):
        assert parse_holiday_policy(text) is None, text


# ---------------------------------------------------------------------------------------------
# Export and round trips


def full_calendar() -> Calendar:
    """Everything our model can say, including the extensions."""
    return Calendar(
        municipality_code="042056",
        areas=(
            Area(
                "本町",
                center="東部センター",
                lat=38.9,
                lng=141.57,
                schedules=(
                    Schedule("burnable", (Weekly(MON), Weekly(THU))),
                    Schedule(
                        "plastic", (EveryOtherWeek(WED, date(2027, 1, 6)), NthWeekday(SAT, 1))
                    ),
                    Schedule(
                        "cans",
                        (EveryOtherWeek(FRI, date(2027, 1, 8)),),
                        frozenset({4, 5, 6}),
                    ),
                    Schedule("bulky", remark_ids=("1",)),
                ),
            ),
            Area(
                "港町, 1丁目",
                schedules=(
                    Schedule("burnable", (Weekly(TUE), Weekly(FRI)), remark_ids=("1", "a-2")),
                    Schedule(
                        "cans", (OnDate(date(2027, 3, 1)), NthWeekday(MON, 5)), frozenset({3})
                    ),
                    Schedule(
                        "bulky", (EveryOtherWeek(SUN, date(2026, 12, 27)),), remark_ids=("a-2",)
                    ),
                ),
            ),
            Area("新町"),
        ),
        categories=(
            Category(
                "burnable",
                "燃やすごみ",
                items=(TargetItem("生ごみ", "水を切る", "なまごみ"), TargetItem("紙, 布", "", "")),
                notes="指定袋で",
                holiday=HolidayPolicy(HolidayHandling.MOVED),
                sublabel="週2回",
                style="img/moyasu.svg",
                color="#ea3b13",
            ),
            Category("plastic", "プラ", holiday=HolidayPolicy(HolidayHandling.SKIPPED)),
            Category("cans", "缶\nびん", holiday=HolidayPolicy(HolidayHandling.MOVED, -1)),
            Category(
                "bulky",
                "粗大ごみ",
                holiday=HolidayPolicy(HolidayHandling.MOVED, skip_sundays=False),
            ),
        ),
        centers=(
            CollectionCenter(
                "東部センター",
                "気仙沼市東1-1",
                "平日 9:00〜16:00\n土曜 9:00〜12:00",
                "https://example.jp/map",
            ),
            CollectionCenter("西部センター"),
        ),
        suspensions=(
            Suspension(date(2026, 12, 29), date(2027, 1, 3), center="東部センター"),
            Suspension(date(2027, 12, 29), date(2028, 1, 3), center="東部センター"),
            Suspension(date(2027, 5, 3), date(2027, 5, 5), area="港町, 1丁目"),
            Suspension(date(2027, 8, 13), date(2027, 8, 15)),
        ),
        notes=("年末年始は収集しません。", "祝日の扱いは分別ごとに異なります。"),
        fallback="指定ごみ袋（大）を5枚お渡しします。",
        remarks=(
            Remark("1", "事前にお申し込みください。"),
            Remark("a-2", "一部地域で\n異なります。"),
        ),
    )


def test_export_layout() -> None:
    files = export_5374(full_calendar())
    assert sorted(files) == sorted(
        ["area_days.csv", "center.csv", "target.csv", "description.csv", "remarks.csv", EXTENSIONS]
    )
    area_rows = files["area_days.csv"].decode().splitlines()
    assert area_rows[0] == '地名,センター,燃やすごみ,プラ,"缶'
    assert area_rows[2].startswith("本町,東部センター,月 木,土1,,*1")
    center_rows = files["center.csv"].decode().splitlines()
    assert center_rows == [
        "名称,休止開始日,休止終了日",
        "東部センター,2026/12/29,2027/1/3",
        "東部センター,2027/12/29,2028/1/3",
        "西部センター,,",
    ]
    extension_rows = files[EXTENSIONS].decode()
    assert "every_other_week,本町,プラ,水 20270106" in extension_rows
    assert 'months,本町,"缶\nびん",4 5 6' in extension_rows
    assert "category,燃やすごみ,holiday,moved" in extension_rows
    assert 'suspension,"港町, 1丁目",2027/5/3,2027/5/5' in extension_rows
    assert "suspension,,2027/8/13,2027/8/15" in extension_rows
    assert not files["area_days.csv"].startswith(b"\xef\xbb\xbf")
    assert export_5374(full_calendar(), bom=True)["area_days.csv"].startswith(b"\xef\xbb\xbf")


def test_round_trip_full_calendar() -> None:
    calendar = full_calendar()
    assert parse_5374(export_5374(calendar)) == calendar
    assert parse_5374(export_5374(calendar, bom=True)) == calendar


def test_round_trip_sample_and_plain_5374_has_no_extension_file() -> None:
    calendar = parse_5374(sample_files())
    files = export_5374(calendar)
    assert EXTENSIONS not in files
    assert parse_5374(files) == calendar
    # the export reads back with the same cells as the source
    assert files["area_days.csv"].decode().splitlines()[1] == (
        "東山１丁目,東部管理センター,月 木,水2,火2 金4:4 6 8 10 12 2,火1 火3,土,"
    )


def test_round_trip_small_calendars() -> None:
    calendars = [
        Calendar(areas=(Area("本町"),), categories=(Category("燃やすごみ", "燃やすごみ"),)),
        Calendar(
            areas=(Area("本町", schedules=(Schedule("a", (Weekly(SUN),)),)),),
            categories=(Category("a", "燃やすごみ"),),
        ),
        Calendar(
            areas=(
                Area("本町", center="C", schedules=(Schedule("x", (OnDate(date(2030, 2, 28)),)),)),
            ),
            categories=(Category("x", "資源"),),
            centers=(CollectionCenter("C", hours="24時間"),),
        ),
        Calendar(
            areas=(
                Area(
                    "本町",
                    schedules=(
                        Schedule("x", (EveryOtherWeek(MON, date(2027, 1, 4)),), remark_ids=("9",)),
                    ),
                ),
            ),
            categories=(Category("x", "資源"),),
            remarks=(Remark("9", ""),),
        ),
    ]
    for calendar in calendars:
        assert parse_5374(export_5374(calendar)) == calendar
