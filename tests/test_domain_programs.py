"""Existing programs: member-number formats, normalisation and member-list import."""

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.gomi5374 import ImportProblems, Problem
from bot.domain.programs import (
    FUKUSHIMA_FAN_CLUB,
    KESENNUMA_FAN_CLUB,
    MemberFormatError,
    MemberListProblems,
    MemberNumberProblem,
    MemberRow,
    Program,
    check_member_number,
    is_valid_email,
    normalize_member_number,
    parse_member_csv,
    parse_member_format,
    slide5_programs,
)

KESENNUMA = Program(KESENNUMA_FAN_CLUB, "042056", "気仙沼ファンクラブ", "KF-NNNNN")
FUKUSHIMA = Program(FUKUSHIMA_FAN_CLUB, "070009", "ふくしまファンクラブ", "NNNNNN")


# --- formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "good", "bad", "example"),
    [
        ("NNNNNN", ["000123", "999999"], ["12345", "1234567", "12345A", ""], "123456"),
        ("KF-NNNNN", ["KF-00001"], ["KF00001X", "KG-00001", "KF-0001", "KF-000001"], "KF-12345"),
        ("kf-nnnnn", ["KF-00001"], ["kf-00001"], "KF-12345"),
        ("AANNNN", ["AB1234"], ["A11234", "AB123A"], "AB1234"),
        ("XXXX", ["A1B2", "9999", "ZZZZ"], ["A1B", "A-B2"], "1234"),
        ("\\NNN", ["N12"], ["112", "NN1"], "N12"),
        ("NN.NN/NN_N", ["12.34/56_7"], ["12-34/56_7"], "12.12/12_1"),
        ("^KT[0-9]{4,6}$", ["KT1234", "KT123456"], ["KT123", "KT1234567", "KT12A4"], "KT123456"),
        ("^[A-Z]{2}\\d{3}-\\d{4}$", ["AB123-4567"], ["AB1234567", "A1123-4567"], "AB123-1234"),
        ("^M?\\d{3}$", ["M123", "123"], ["MM123", "12"], "M123"),
        ("^[AB\\-]{2}$", ["A-", "BA", "--"], ["C-", "A"], "-A"),
        ("^[-0-9]{3}$", ["1-2"], ["A12"], "-12"),
    ],
)
def test_formats(source: str, good: list[str], bad: list[str], example: str) -> None:
    member_format = parse_member_format(source)
    for number in good:
        assert member_format.matches(number), number
    for number in bad:
        assert not member_format.matches(number), number
    assert member_format.example == example
    assert member_format.matches(member_format.example)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "形式を入力してください"),
        ("   ", "形式を入力してください"),
        ("N" * 33, "32文字まで"),
        ("N" * 201, "200文字まで"),
        ("NN★", "使えない文字「★」"),
        ("NN NN", "使えない文字「 」"),
        ("\\d{3}", "正規表現で書く場合は「^」で始めて「$」で終えてください"),
        ("NNNN\\", "「\\」の後に文字がありません"),
        ("^\\d{6}", "「^」で始めて「$」で終えてください"),
        ("^(\\d+)+$", "グループ"),
        ("^(a|b)$", "グループ"),
        ("^A|B$", "グループ"),
        ("^\\d+$", "上限のない繰り返し「+」"),
        ("^\\d*$", "上限のない繰り返し「*」"),
        ("^[0-9]*$", "上限のない繰り返し「*」"),
        ("^.{6}$", "「.」はここでは使えません"),
        ("^\\w{6}$", "「\\w」は使えません"),
        ("^\\s$", "「\\s」は使えません"),
        ("^[^0-9]{3}$", "否定の文字クラス"),
        ("^[0-9{3}$", "対応する「]」がありません"),
        ("^[a-z]{3}$", "大文字"),
        ("^ab$", "大文字"),
        ("^[9-0]$", "範囲「9-0」"),
        ("^[A-9]$", "範囲「A-9」"),
        ("^\\d{1,3}\\d{1,3}$", "1か所まで"),
        ("^\\d?\\d?$", "1か所まで"),
        ("^\\d{3}{2}$", "重ねる"),
        ("^\\d{3}?$", "重ねる"),
        ("^\\d{2,1}$", "数が正しくありません"),
        ("^\\d{0}$", "数が正しくありません"),
        ("^\\d{100}$", "{n} か {m,n}"),
        ("^\\d{3,}$", "{n} か {m,n}"),
        ("^{3}$", "繰り返す文字がありません"),
        ("^\\d{40}$", "32文字まで"),
        ("^\\d{20}\\d{13}$", "32文字まで"),
        ("^(?:a)$", "グループ"),
        ("^\\d{3}$$", "ここでは使えません"),
        ("^$", "形式が空です"),
    ],
)
def test_rejected_formats(source: str, message: str) -> None:
    with pytest.raises(MemberFormatError) as raised:
        parse_member_format(source)
    assert message in raised.value.message
    assert isinstance(raised.value, ValueError)


def test_program_validation() -> None:
    with pytest.raises(MemberFormatError):
        Program("p", "042056", "テスト", "^\\d+$")
    with pytest.raises(ValueError):
        Program("Bad Id", "042056", "テスト", "NNNN")
    with pytest.raises(ValueError):
        Program("p", "999999", "テスト", "NNNN")
    with pytest.raises(ValueError):
        Program("p", "042056", " ", "NNNN")
    programs = slide5_programs()
    assert [p.name for p in programs] == ["気仙沼ファンクラブ", "ふくしまファンクラブ", "帰る旅"]
    assert len({p.id for p in programs}) == 3


EVIL = st.text(alphabet="^$()[]{}*+?|\\.-,0123456789ANXZ adw", max_size=24)


@settings(max_examples=500)
@given(EVIL)
def test_any_accepted_pattern_is_safe_and_fast(source: str) -> None:
    try:
        member_format = parse_member_format(source)
    except MemberFormatError as error:
        assert error.message
        return
    assert 1 <= member_format.max_length <= 32
    assert sum(1 for atom in member_format.atoms if atom.variable) <= 1
    started = time.perf_counter()
    for probe in ("0" * 40, "A" * 31 + "!", "-" * 32, member_format.example + "X"):
        member_format.matches(probe)
        member_format.canonical(probe)
    assert time.perf_counter() - started < 0.5
    assert member_format.matches(member_format.example)


REGEX_ATOMS = st.sampled_from(["\\d", "[A-Z]", "[0-9A-F]", "[-0-9]", "A", "7", "-", "\\-"])
REPEATS = st.sampled_from(["", "", "?", "{3}", "{1,4}", "{0,2}", "{2,2}", "+", "*"])
REGEXES = st.lists(st.tuples(REGEX_ATOMS, REPEATS), min_size=1, max_size=6).map(
    lambda parts: "^" + "".join(atom + repeat for atom, repeat in parts) + "$"
)
NUMBERS = st.text(alphabet="0123456789ABFZ-7", max_size=14)


@settings(max_examples=300)
@given(REGEXES, st.lists(NUMBERS, max_size=20))
def test_accepted_regexes_match_like_python(source: str, numbers: list[str]) -> None:
    try:
        member_format = parse_member_format(source)
    except MemberFormatError as error:
        assert "+" in source or "*" in source or "1か所まで" in error.message
        return
    python = re.compile(source)
    for number in [*numbers, member_format.example]:
        assert member_format.matches(number) == (python.fullmatch(number) is not None), number


# --- normalisation and checking -----------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("KF-00123", "KF-00123"),
        ("kf-00123", "KF-00123"),
        ("ＫＦ－００１２３", "KF-00123"),
        ("ｋｆ−００１２３", "KF-00123"),
        ("KFー00123", "KF-00123"),
        ("KFｰ00123", "KF-00123"),
        ("KF‐00123", "KF-00123"),
        ("KF—00123", "KF-00123"),
        ("  KF-00123\n", "KF-00123"),
        ("KF 00 123", "KF00123"),
        ("\u3000ＫＦ－００１２３\u3000", "KF-00123"),
        ("", ""),
    ],
)
def test_normalize_member_number(typed: str, normalized: str) -> None:
    assert normalize_member_number(typed) == normalized


@pytest.mark.parametrize(
    "typed",
    [
        "KF-00123",
        "kf-00123",
        "ＫＦ－００１２３",
        "KFー00123",
        " kf‐00123 ",
        "KF00123",
        "kf００１２３",
    ],
)
def test_check_member_number_accepts_variants(typed: str) -> None:
    decision = check_member_number(KESENNUMA, typed)
    assert decision.ok and decision.number == "KF-00123" and decision.message == ""


def test_check_member_number_refusals() -> None:
    empty = check_member_number(KESENNUMA, "　")
    assert empty.reason is MemberNumberProblem.EMPTY and not empty.ok
    assert empty.message == "気仙沼ファンクラブの会員番号を入力してください。"
    bad = check_member_number(KESENNUMA, "KF-0012")
    assert bad.reason is MemberNumberProblem.BAD_FORMAT
    assert bad.message == (
        "気仙沼ファンクラブの会員番号の形式と違うようです。「KF-12345」のような形でご入力ください。"
    )
    assert not check_member_number(KESENNUMA, "K-F00123").ok
    assert not check_member_number(KESENNUMA, "KF-00123-").ok
    assert check_member_number(FUKUSHIMA, "１２３４５６").number == "123456"
    assert not check_member_number(FUKUSHIMA, "12345６7").ok


def test_optional_hyphens_are_kept_as_typed() -> None:
    program = Program("p", "042056", "テスト", "^-?[A-Z]{2}-\\d{3}$")
    assert check_member_number(program, "AB-123").number == "AB-123"
    assert check_member_number(program, "-AB-123").number == "-AB-123"
    assert check_member_number(program, "AB123").number == "AB-123"
    assert check_member_number(program, "-AB123").number == "-AB-123"


@given(st.text(max_size=40))
def test_check_never_crashes(typed: str) -> None:
    decision = check_member_number(KESENNUMA, typed)
    assert decision.ok == (decision.reason is None)
    if decision.ok:
        assert KESENNUMA.member_format.matches(decision.number)


# --- member lists -------------------------------------------------------------------------


def rows(data: bytes, program: Program = KESENNUMA) -> list[MemberRow]:
    return parse_member_csv(data, program)


def problems(data: bytes, program: Program = KESENNUMA) -> list[Problem]:
    with pytest.raises(ImportProblems) as raised:
        parse_member_csv(data, program)
    return list(raised.value.problems)


GOOD = "会員番号,氏名,メール\nKF-00001,山田 太郎,taro@example.jp\nKF-00002,,\nkf００００３,佐藤,\n"


def test_japanese_headers_utf8() -> None:
    assert rows(GOOD.encode()) == [
        MemberRow(2, "KF-00001", "山田 太郎", "taro@example.jp"),
        MemberRow(3, "KF-00002", None, None),
        MemberRow(4, "KF-00003", "佐藤", None),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_encodings_and_newlines(encoding: str, newline: str) -> None:
    data = GOOD.replace("\n", newline).encode(encoding)
    assert [(r.line, r.member_number, r.name) for r in rows(data)] == [
        (2, "KF-00001", "山田 太郎"),
        (3, "KF-00002", None),
        (4, "KF-00003", "佐藤"),
    ]


def test_english_headers_any_order_extra_columns_ignored() -> None:
    data = b"E-Mail,Member Number,note\nhanako@example.com,KF-00010,x\n"
    assert rows(data) == [MemberRow(2, "KF-00010", None, "hanako@example.com")]
    data = "メールアドレス,会員番号,お名前,住所\n,KF-00011,ﾊﾅｺ,東京\n".encode("cp932")
    assert rows(data) == [MemberRow(2, "KF-00011", "ハナコ", None)]


def test_blank_lines_and_quoted_fields() -> None:
    data = (
        '\n\n会員番号,氏名\n\nKF-00001,"山田, 太郎"\n,,\n  \n'
        'KF-00002,"複数\n行の名前"\nKF-00003,最後\n\n'
    ).encode()
    assert [(r.line, r.member_number, r.name) for r in rows(data)] == [
        (5, "KF-00001", "山田, 太郎"),
        (8, "KF-00002", "複数\n行の名前"),
        (10, "KF-00003", "最後"),
    ]


def test_every_bad_row_is_reported() -> None:
    data = (
        "会員番号,氏名,メール\n"
        "KF-00001,山田,yamada@example.jp\n"  # 2 fine
        ",名無し,\n"  # 3 empty number
        "KF-1,短い,\n"  # 4 bad format
        "kf-00001,重複,\n"  # 5 duplicate of line 2 after normalisation
        "KF-00005,,not-an-email\n"  # 6 bad e-mail
        "KF-ABCDE,,a@b\n"  # 7 bad format and bad e-mail
        "KF-00008,,ok@example.com,extra\n"  # 8 more columns than the header
        "KF-00009,,ok@example.com\n"  # 9 fine
    ).encode()
    found = problems(data)
    assert [(p.line, p.reason) for p in found] == [
        (3, "会員番号が空です。"),
        (4, "会員番号「KF-1」の形式が違います（例: KF-12345）。"),
        (5, "会員番号「KF-00001」が2行目と重複しています。"),
        (6, "メールアドレス「not-an-email」の形式が正しくありません。"),
        (7, "会員番号「KF-ABCDE」の形式が違います（例: KF-12345）。"),
        (7, "メールアドレス「a@b」の形式が正しくありません。"),
        (8, "見出しより列が多くなっています。"),
    ]
    assert all(p.file == "members.csv" for p in found)


def test_problem_report_text() -> None:
    with pytest.raises(ImportProblems) as raised:
        parse_member_csv(b"member_number\nX\n\nKF-00001\nKF-00001\n", KESENNUMA, file="kf.csv")
    assert isinstance(raised.value, MemberListProblems)
    assert str(raised.value) == (
        "会員名簿を取り込めませんでした。直していただきたい箇所が2件あります。\n"
        "・kf.csv 2行目: 会員番号「X」の形式が違います（例: KF-12345）。\n"
        "・kf.csv 5行目: 会員番号「KF-00001」が4行目と重複しています。"
    )


def test_trailing_empty_cells_are_fine() -> None:
    assert rows(b"member_number,name\nKF-00001,,,\n") == [MemberRow(2, "KF-00001")]


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"", 0, "ファイルが空です"),
        (b"\n\n \n", 0, "ファイルが空です"),
        ("会員番号,氏名\n".encode(), 0, "会員のデータがありません"),
        ("氏名,メール\n山田,a@example.jp\n".encode(), 1, "「会員番号」の列が見つかりません"),
        ("KF-00001,山田\n".encode(), 1, "「会員番号」の列が見つかりません"),
        ("会員番号,番号\nKF-00001,KF-00002\n".encode(), 1, "「会員番号」の列が2つあります"),
        (b"\xff\xfe\x00\x00garbage\x81", 0, "文字コードを読み取れませんでした"),
        (b"\xef\xbb\xbf\x82\xa0", 0, "文字コードを読み取れませんでした"),  # BOM, then cp932
        ("会員番号\nKF-00001\n".encode("utf-16"), 0, "文字コードを読み取れませんでした"),
        (b'member_number\nKF-00002\n"KF-00001\n', 3, '「"」の閉じ忘れ'),
        (b'member_number,name\nKF-00001,"a"b\n', 2, "CSVとして読み取れませんでした"),
        (b"member_number\nKF-00001\x00\n", 2, "会員番号「KF-00001?」の形式が違います"),
    ],
)
def test_file_level_problems(data: bytes, line: int, reason: str) -> None:
    found = problems(data)
    assert found[0].line == line
    assert reason in found[0].reason


def test_member_list_problems_are_sorted_import_problems() -> None:
    error = MemberListProblems([Problem("a.csv", 5, "x"), Problem("a.csv", 2, "y")])
    assert isinstance(error, ImportProblems)
    assert [p.line for p in error.problems] == [2, 5]
    assert error.message.startswith("会員名簿を取り込めませんでした。")


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("taro@example.jp", True),
        ("taro.yamada+kf@mail.example.co.jp", True),
        ("a@b", False),
        ("a@@example.jp", False),
        ("@example.jp", False),
        ("taro@-example.jp", False),
        ("taro@example..jp", False),
        ("taro yamada@example.jp", False),
        ("x" * 65 + "@example.jp", False),
        ("a@" + "b" * 250 + ".jp", False),
    ],
)
def test_emails(email: str, ok: bool) -> None:
    assert is_valid_email(email) is ok


def test_full_width_email_is_normalised() -> None:
    data = "会員番号,メール\nKF-00001,ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ\n".encode()
    assert rows(data)[0].email == "taro@example.jp"


def test_ten_thousand_rows_fast() -> None:
    lines = ["会員番号,氏名,メール"] + [
        f"KF-{n:05d},会員{n},member{n}@example.jp" for n in range(10_000)
    ]
    data = "\r\n".join(lines).encode("cp932")
    started = time.perf_counter()
    result = parse_member_csv(data, KESENNUMA)
    elapsed = time.perf_counter() - started
    assert len(result) == 10_000 and result[-1] == MemberRow(
        10_001, "KF-09999", "会員9999", "member9999@example.jp"
    )
    assert elapsed < 2.0, elapsed


def test_ten_thousand_rows_with_every_problem_reported() -> None:
    lines = ["会員番号"] + [f"KF-{n % 5000:05d}" for n in range(10_000)]
    found = problems("\n".join(lines).encode())
    assert len(found) == 5000
    assert found[0] == Problem("members.csv", 5002, "会員番号「KF-00000」が2行目と重複しています。")
