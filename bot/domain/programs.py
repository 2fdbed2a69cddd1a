"""Existing fan-club programs (既存の取組): member-number formats, linking and member lists.

A program keeps its identity (気仙沼ファンクラブ, ふくしまファンクラブ, …); its members link their
existing member number, and a municipality can import its member list.

A member-number format is written either in a small format language or as a restricted regular
expression; both are checked when the program is created:

- Format language: ``N`` a digit, ``A`` a letter A–Z, ``X`` a letter or digit, ``\\`` makes the
  next character literal; letters, digits and ``- _ . /`` stand for themselves (e.g.
  ``NNNNNN``, ``KF-NNNNN``). Lower case is read as upper case.
- Restricted regex: anchored with ``^…$``; only literals, ``\\d``, character classes such as
  ``[A-Z0-9]`` and bounded repeats ``{n}``, ``{m,n}``, ``?``. No groups, alternation, ``*`` or
  ``+``, at most one variable-length part, at most 32 characters in all. Matching such a pattern
  is linear: no catastrophic backtracking.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import string
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from bot.domain.gomi5374 import ImportProblems, Problem
from bot.domain.places import get_place

MAX_MEMBER_NUMBER_LENGTH = 32
MAX_FORMAT_LENGTH = 200
MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254

# Characters a member number may contain after normalisation.
_DIGITS = frozenset(string.digits)
_LETTERS = frozenset(string.ascii_uppercase)
_SYMBOLS = frozenset("-_./")
_HYPHEN = frozenset("-")
_ALLOWED = _DIGITS | _LETTERS | _SYMBOLS
# Hyphen and dash look-alikes typed in Japanese input (after NFKC).
_HYPHENS = str.maketrans(dict.fromkeys("ー‐‑‒–—―−﹣ｰ", "-"))
_PROGRAM_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")

KESENNUMA_FAN_CLUB = "kesennuma-fanclub"
FUKUSHIMA_FAN_CLUB = "fukushima-fanclub"
KAERU_TABI = "kaeru-tabi"


class MemberFormatError(ValueError):
    """A member-number format that is not allowed; `message` is Japanese, for staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Atom:
    chars: frozenset[str]
    low: int
    high: int

    @property
    def variable(self) -> bool:
        return self.low != self.high


@dataclass(frozen=True)
class MemberNumberFormat:
    """A validated member-number format."""

    source: str
    atoms: tuple[_Atom, ...]
    pattern: re.Pattern[str]
    lenient: re.Pattern[str]  # hyphens optional, one group per atom

    @property
    def min_length(self) -> int:
        """Shortest member number this format accepts."""
        return sum(atom.low for atom in self.atoms)

    @property
    def max_length(self) -> int:
        """Longest member number this format accepts."""
        return sum(atom.high for atom in self.atoms)

    @property
    def example(self) -> str:
        """A member number in this format, to show in messages: 「KF-12345」."""
        parts: list[str] = []
        for atom in self.atoms:
            chars = sorted(atom.chars, key=lambda c: (c == "0", c))  # 1234567890, ABC…
            count = atom.high
            parts.append("".join(chars[i % len(chars)] for i in range(count)))
        return "".join(parts)

    def matches(self, number: str) -> bool:
        """True when a normalised member number has this format exactly."""
        return len(number) <= self.max_length and self.pattern.fullmatch(number) is not None

    def canonical(self, number: str) -> str | None:
        """The number in this format, with the format's hyphens put back if they were left out
        (「KF00123」 → 「KF-00123」); None if it does not fit."""
        if self.matches(number):
            return number
        if len(number) > self.max_length or not (found := self.lenient.fullmatch(number)):
            return None
        return "".join(
            "-" * atom.high if _optional_hyphen(atom) else part
            for atom, part in zip(self.atoms, found.groups(), strict=True)
        )


def _optional_hyphen(atom: _Atom) -> bool:
    """A fixed run of literal hyphens, which residents may leave out."""
    return atom.chars == _HYPHEN and not atom.variable


def _class_regex(chars: frozenset[str]) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


def _build(source: str, atoms: list[_Atom]) -> MemberNumberFormat:
    merged: list[_Atom] = []
    for atom in atoms:  # NNNN is one atom of four digits
        last = merged[-1] if merged else None
        if last and last.chars == atom.chars and not last.variable and not atom.variable:
            merged[-1] = _Atom(atom.chars, last.low + atom.low, last.high + atom.high)
        else:
            merged.append(atom)
    if not merged or sum(atom.high for atom in merged) == 0:
        raise MemberFormatError("会員番号の形式が空です。")
    if sum(1 for atom in merged if atom.variable) > 1:
        raise MemberFormatError("長さが変わる部分（{m,n} や ?）は1か所までにしてください。")
    if sum(atom.high for atom in merged) > MAX_MEMBER_NUMBER_LENGTH:
        raise MemberFormatError(
            f"会員番号は{MAX_MEMBER_NUMBER_LENGTH}文字までの形式にしてください。"
        )
    parts = [
        (_class_regex(a.chars), f"{{{a.low}}}" if not a.variable else f"{{{a.low},{a.high}}}")
        for a in merged
    ]
    lenient = "".join(
        f"({cls}{{0,{a.high}}})" if _optional_hyphen(a) else f"({cls}{repeat})"
        for a, (cls, repeat) in zip(merged, parts, strict=True)
    )
    return MemberNumberFormat(
        source=source,
        atoms=tuple(merged),
        pattern=re.compile("".join(cls + repeat for cls, repeat in parts)),
        lenient=re.compile(lenient),
    )


def _literal(char: str) -> frozenset[str]:
    if char not in _ALLOWED:
        raise MemberFormatError(
            f"会員番号の形式に使えない文字「{char}」があります。"
            "英数字と「- _ . /」をお使いください。"
        )
    return frozenset(char)


_REGEX_SYNTAX = frozenset("[]{}()*+?$|")


def _parse_simple(source: str) -> MemberNumberFormat:
    placeholders = {"N": _DIGITS, "A": _LETTERS, "X": _DIGITS | _LETTERS}
    text = source.upper()
    atoms: list[_Atom] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            if index + 1 >= len(text):
                raise MemberFormatError("形式の最後の「\\」の後に文字がありません。")
            atoms.append(_Atom(_literal(text[index + 1]), 1, 1))
            index += 2
            continue
        if char in _REGEX_SYNTAX:
            raise MemberFormatError(
                f"「{char}」は使えません。正規表現で書く場合は「^」で始めて「$」で終えてください。"
            )
        atoms.append(_Atom(placeholders.get(char) or _literal(char), 1, 1))
        index += 1
    return _build(source, atoms)


_LOWER_CASE = "会員番号は大文字にそろえて照合します。小文字の代わりに大文字をお使いください。"
_REPEAT = re.compile(r"\{(\d{1,2})(?:,(\d{1,2}))?\}")


def _parse_class(body: str, start: int) -> tuple[frozenset[str], int]:
    """Parse a character class whose '[' is at body[start - 1]; return its set and next index."""
    chars: set[str] = set()
    index = start
    if index < len(body) and body[index] == "^":
        raise MemberFormatError("「[^…]」（否定の文字クラス）は使えません。")
    items: list[str | frozenset[str]] = []
    while True:
        if index >= len(body):
            raise MemberFormatError("「[」に対応する「]」がありません。")
        char = body[index]
        if char == "]" and items:
            index += 1
            break
        if char == "\\":
            escaped = body[index + 1 : index + 2]
            if escaped == "d":
                items.append(_DIGITS)
            elif escaped and escaped in _SYMBOLS:
                items.append(frozenset(escaped))
            else:
                raise MemberFormatError(f"文字クラスの中で「\\{escaped}」は使えません。")
            index += 2
            continue
        if char in string.ascii_lowercase:
            raise MemberFormatError(_LOWER_CASE)
        items.append(char)
        index += 1
    # Resolve ranges a-b between single characters; '-' first or last is literal.
    position = 0
    while position < len(items):
        item = items[position]
        if isinstance(item, frozenset):
            chars |= item
            position += 1
            continue
        is_range = (
            position + 2 < len(items)
            and items[position + 1] == "-"
            and isinstance(items[position + 2], str)
        )
        if is_range:
            end = items[position + 2]
            assert isinstance(end, str)
            if (
                not ((item in _DIGITS and end in _DIGITS) or (item in _LETTERS and end in _LETTERS))
                or item > end
            ):
                raise MemberFormatError(f"文字の範囲「{item}-{end}」が正しくありません。")
            chars |= {chr(code) for code in range(ord(item), ord(end) + 1)}
            position += 3
            continue
        chars |= _literal(item)
        position += 1
    return frozenset(chars), index


def _parse_regex(source: str) -> MemberNumberFormat:
    if not source.endswith("$") or source.endswith("\\$"):
        raise MemberFormatError("正規表現は「^」で始めて「$」で終えてください。")
    body = source[1:-1]
    atoms: list[_Atom] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char in "()|":
            raise MemberFormatError("グループ「( )」や「|」は使えません。")
        if char in "*+":
            raise MemberFormatError(
                f"上限のない繰り返し「{char}」は使えません。{{n}} か {{m,n}} をお使いください。"
            )
        if char in "{}?":
            raise MemberFormatError(f"「{char}」の前に繰り返す文字がありません。")
        if char in "^$.":
            raise MemberFormatError(f"「{char}」はここでは使えません。")
        if char == "\\":
            escaped = body[index + 1 : index + 2]
            if escaped == "d":
                chars = _DIGITS
            elif escaped and escaped in _SYMBOLS:
                chars = frozenset(escaped)
            else:
                raise MemberFormatError(
                    f"「\\{escaped}」は使えません。「\\d」はお使いいただけます。"
                )
            index += 2
        elif char == "[":
            chars, index = _parse_class(body, index + 1)
        else:
            if char in string.ascii_lowercase:
                raise MemberFormatError(_LOWER_CASE)
            chars = _literal(char)
            index += 1
        low = high = 1
        if body.startswith("?", index):
            low, index = 0, index + 1
        elif body.startswith("{", index):
            repeat = _REPEAT.match(body, index)
            if repeat is None:
                raise MemberFormatError(
                    "繰り返しは {n} か {m,n}（数字は2桁まで）で書いてください。"
                )
            low = int(repeat.group(1))
            high = int(repeat.group(2)) if repeat.group(2) is not None else low
            if high < low or high == 0:
                raise MemberFormatError(f"繰り返し「{repeat.group(0)}」の数が正しくありません。")
            index = repeat.end()
        if body.startswith(("*", "+"), index):
            raise MemberFormatError(
                f"上限のない繰り返し「{body[index]}」は使えません。{{n}} か {{m,n}} をお使いください。"
            )
        if body.startswith(("?", "{"), index):
            raise MemberFormatError("繰り返しを重ねることはできません。")
        atoms.append(_Atom(chars, low, high))
    return _build(source, atoms)


@lru_cache(maxsize=1024)
def parse_member_format(source: str) -> MemberNumberFormat:
    """Validate a member-number format; raise MemberFormatError with a Japanese message."""
    if not source.strip():
        raise MemberFormatError("会員番号の形式を入力してください。")
    if len(source) > MAX_FORMAT_LENGTH:
        raise MemberFormatError(f"会員番号の形式は{MAX_FORMAT_LENGTH}文字までにしてください。")
    if source.startswith("^"):
        return _parse_regex(source)
    return _parse_simple(source)


@dataclass(frozen=True)
class Program:
    """An existing program such as 気仙沼ファンクラブ, run by a municipality or prefecture."""

    id: str
    place_code: str
    name: str
    member_number_format: str

    def __post_init__(self) -> None:
        if not _PROGRAM_ID.fullmatch(self.id):
            raise ValueError("program id must be 1-40 characters of a-z, 0-9 and '-'")
        if get_place(self.place_code) is None:
            raise ValueError(f"unknown place code {self.place_code!r}")
        if not self.name.strip():
            raise ValueError("program name must not be blank")
        parse_member_format(self.member_number_format)

    @property
    def member_format(self) -> MemberNumberFormat:
        """The validated member-number format."""
        return parse_member_format(self.member_number_format)


def normalize_member_number(text: str) -> str:
    """NFKC, hyphen look-alikes to '-', upper case, all whitespace removed."""
    folded = unicodedata.normalize("NFKC", text).translate(_HYPHENS).upper()
    return "".join(folded.split())


class MemberNumberProblem(StrEnum):
    """Why a typed member number was not accepted."""

    EMPTY = "empty"
    BAD_FORMAT = "bad_format"


@dataclass(frozen=True)
class MemberNumberDecision:
    """The normalised number, or the problem and a message ready to show the resident."""

    number: str
    reason: MemberNumberProblem | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the number is accepted."""
        return self.reason is None


def check_member_number(program: Program, text: str) -> MemberNumberDecision:
    """Accept a typed member number in any width, case or hyphen variant if it fits the format."""
    number = normalize_member_number(text)
    if not number:
        return MemberNumberDecision(
            number, MemberNumberProblem.EMPTY, f"{program.name}の会員番号を入力してください。"
        )
    member_format = program.member_format
    canonical = member_format.canonical(number)
    if canonical is None:
        return MemberNumberDecision(
            number,
            MemberNumberProblem.BAD_FORMAT,
            f"{program.name}の会員番号の形式と違うようです。"
            f"「{member_format.example}」のような形でご入力ください。",
        )
    return MemberNumberDecision(canonical)


# --- member lists -------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    """One member from an imported list; `line` is its line in the file (the header is 1)."""

    line: int
    member_number: str
    name: str | None = None
    email: str | None = None


_EMAIL_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(
    rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_EMAIL_LABEL}(?:\.{_EMAIL_LABEL})+"
)
_HEADER_JUNK = str.maketrans("", "", " _-・　")
_COLUMNS: dict[str, frozenset[str]] = {
    "member_number": frozenset(
        {"会員番号", "会員no", "会員no.", "membernumber", "memberno", "member", "number", "番号"}
    ),
    "name": frozenset({"氏名", "名前", "お名前", "会員名", "name", "fullname"}),
    "email": frozenset(
        {
            "メール",
            "メールアドレス",
            "eメール",
            "eメールアドレス",
            "email",
            "emailaddress",
            "mail",
            "mailaddress",
        }
    ),
}
_COLUMN_LABELS = {"member_number": "会員番号", "name": "氏名", "email": "メール"}


class MemberListProblems(ImportProblems):
    """A member list was rejected as a whole; every problem is listed, in line order.

    The shared `ImportProblems` of `gomi5374`, with a message that names the member list.
    """

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        super().__init__(sorted(problems, key=lambda p: (p.file, p.line)))

    @property
    def message(self) -> str:
        """Japanese summary for staff, one problem a line."""
        lines = [
            f"会員名簿を取り込めませんでした。直していただきたい箇所が{len(self.problems)}件あります。"
        ]
        lines += [f"・{p}" for p in self.problems]
        return "\n".join(lines)


def _decode(data: bytes) -> str | None:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None  # UTF-16 ("Unicode text"): not supported
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
        encodings: tuple[str, ...] = ("utf-8",)
    else:
        encodings = ("utf-8", "cp932")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _column_of(header: str) -> str | None:
    key = unicodedata.normalize("NFKC", header).strip().lower().translate(_HEADER_JUNK)
    for column, names in _COLUMNS.items():
        if key in names:
            return column
    return None


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line they start on; blank rows skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _BadCsv(start, str(error)) from error
        if any(cell.strip() for cell in row):
            yield start, row
        start = reader.line_num + 1


class _BadCsv(Exception):
    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line = line
        self.detail = detail


def _shown(text: str) -> str:
    """Text safe to quote in a message: control characters become '?'."""
    return "".join(char if char.isprintable() else "?" for char in text.strip())


def is_valid_email(text: str) -> bool:
    """A plausible e-mail address (local@domain.tld), at most 254 characters."""
    return len(text) <= MAX_EMAIL_LENGTH and _EMAIL.fullmatch(text) is not None


def parse_member_csv(data: bytes, program: Program, file: str = "members.csv") -> list[MemberRow]:
    """Read a member list: all rows or none.

    The first non-blank row is the header, with a member-number column (会員番号 or
    member_number) and optionally name (氏名) and e-mail (メール); other columns are ignored.
    UTF-8 with or without BOM, or Shift_JIS (cp932). Blank rows are skipped. Raises
    MemberListProblems (an ImportProblems) listing every bad row with its line and reason.
    """
    text = _decode(data)
    if text is None:
        raise MemberListProblems(
            [
                Problem(
                    file,
                    0,
                    "文字コードを読み取れませんでした。"
                    "UTF-8（BOMの有無は問いません）かShift_JISで保存してください。",
                )
            ]
        )
    problems: list[Problem] = []
    rows: list[MemberRow] = []
    seen: dict[str, int] = {}
    member_format = program.member_format
    columns: dict[str, int] | None = None
    header_width = 0
    try:
        for line, row in _records(text):
            if columns is None:
                columns = {}
                header_width = len(row)
                for position, cell in enumerate(row):
                    column = _column_of(cell)
                    if column is None:
                        continue
                    if column in columns:
                        problems.append(
                            Problem(file, line, f"「{_COLUMN_LABELS[column]}」の列が2つあります。")
                        )
                    columns[column] = position
                if "member_number" not in columns:
                    problems.append(
                        Problem(
                            file,
                            line,
                            "見出しの行に「会員番号」の列が見つかりません。"
                            "1行目を見出し（会員番号,氏名,メール）にしてください。",
                        )
                    )
                if problems:
                    raise MemberListProblems(problems)
                continue
            member = _member_row(file, line, row, columns, header_width, member_format, seen)
            if isinstance(member, MemberRow):
                rows.append(member)
            else:
                problems.extend(member)
    except _BadCsv as error:
        problems.append(
            Problem(
                file,
                error.line,
                'CSVとして読み取れませんでした。「"」の閉じ忘れがないかご確認ください'
                f"（{error.detail}）。",
            )
        )
    if columns is None:
        problems.append(Problem(file, 0, "ファイルが空です。"))
    elif not rows and not problems:
        problems.append(Problem(file, 0, "会員のデータがありません（見出しの行だけです）。"))
    if problems:
        raise MemberListProblems(problems)
    return rows


def _member_row(
    file: str,
    line: int,
    row: list[str],
    columns: dict[str, int],
    header_width: int,
    member_format: MemberNumberFormat,
    seen: dict[str, int],
) -> MemberRow | list[Problem]:
    problems: list[Problem] = []

    def cell(column: str) -> str:
        position = columns.get(column)
        if position is None or position >= len(row):
            return ""
        return unicodedata.normalize("NFKC", row[position]).strip()

    if any(value.strip() for value in row[header_width:]):
        problems.append(Problem(file, line, "見出しより列が多くなっています。"))
    raw_number = row[columns["member_number"]] if columns["member_number"] < len(row) else ""
    number = normalize_member_number(raw_number)
    canonical = member_format.canonical(number) if number else None
    if not number:
        problems.append(Problem(file, line, "会員番号が空です。"))
    elif canonical is None:
        problems.append(
            Problem(
                file,
                line,
                f"会員番号「{_shown(raw_number)}」の形式が違います（例: {member_format.example}）。",
            )
        )
    elif canonical in seen:
        problems.append(
            Problem(file, line, f"会員番号「{canonical}」が{seen[canonical]}行目と重複しています。")
        )
    else:
        seen[canonical] = line
    name = cell("name")
    if len(name) > MAX_NAME_LENGTH:
        problems.append(Problem(file, line, f"氏名は{MAX_NAME_LENGTH}文字までにしてください。"))
    email = cell("email")
    if email and not is_valid_email(email):
        problems.append(
            Problem(file, line, f"メールアドレス「{_shown(email)}」の形式が正しくありません。")
        )
    if problems:
        return problems
    assert canonical is not None
    return MemberRow(line=line, member_number=canonical, name=name or None, email=email or None)


def slide5_programs() -> tuple[Program, ...]:
    """Demo programs of the MIC slide 5 (member-number formats are demo values)."""
    return (
        Program(KESENNUMA_FAN_CLUB, "042056", "気仙沼ファンクラブ", "KF-NNNNN"),
        Program(FUKUSHIMA_FAN_CLUB, "070009", "ふくしまファンクラブ", "NNNNNN"),
        Program(KAERU_TABI, "152269", "帰る旅", "^KT[0-9]{4,6}$"),
    )
