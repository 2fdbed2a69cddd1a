"""Import and export garbage calendars in the 5374.jp CSV format (codeforkanazawa-org/5374).

Files (only `area_days.csv` is required; the first line of each file is its header):

- `area_days.csv`: `地名,センター,<分別 1>,<分別 2>,…`. A cell lists tokens separated by spaces:
  `月` every Monday, `水2` the 2nd Wednesday (第1〜第5), `20270109` an explicit date, `*1` remark
  1; `火2 金4:4 6 8 10 12 2` limits the cell to the months after the colon. An empty cell is no
  collection. The センター column names a row of `center.csv` (or is empty).
- `center.csv`: `名称,休止開始日,休止終了日` (dates like 2027/12/29; both empty: no suspension;
  several rows of one name: several periods).
- `target.csv`: `label,name,notice,furigana`; `description.csv`:
  `label,sublabel,description,styles,bgcolor` (a label found only here is a category with no
  schedule, e.g. 粗大ごみ); `remarks.csv`: `ID,注意事項`.
- `furusato_extensions.csv` (ours; 5374 issues #58/#85): `kind,subject,detail,value` rows:
  `calendar,,municipality_code|fallback|note,<text>`; `center,<名称>,address|hours|map_url,<text>`;
  `area,<地名>,lat|lng,<number>`; `category,<分別>,id,<id>`;
  `category,<分別>,holiday,collected|skipped|moved|moved:sundays|moved:+N|moved:-N`
  (moved: the next day that is not a holiday nor a Sunday; moved:sundays: Sundays allowed);
  `every_other_week,<地名>,<分別>,<曜日> <YYYYMMDD anchor>`; `months,<地名>,<分別>,<months>`
  (the month filter of a schedule whose cell has no 5374 token); `suspension,<地名 or empty for
  the whole municipality>,<start>,<end>`.

Files are UTF-8 (with or without BOM), or Shift_JIS/cp932. Import is all or nothing: every bad
row is collected as a `Problem` and `ImportProblems` lists them all.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import PurePosixPath

from bot.domain.garbage import (
    FISCAL_MONTHS,
    MAX_NTH,
    MAX_OFFSET_DAYS,
    WEEKDAY_CHARS,
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
    Rule,
    Schedule,
    Suspension,
    TargetItem,
    Weekday,
    Weekly,
    parse_weekday,
)

AREA_DAYS = "area_days.csv"
CENTER = "center.csv"
TARGET = "target.csv"
DESCRIPTION = "description.csv"
REMARKS = "remarks.csv"
EXTENSIONS = "furusato_extensions.csv"
KNOWN_FILES = (AREA_DAYS, CENTER, TARGET, DESCRIPTION, REMARKS, EXTENSIONS)

_HEADERS = {
    AREA_DAYS: ["地名", "センター"],
    CENTER: ["名称", "休止開始日", "休止終了日"],
    TARGET: ["label", "name", "notice", "furigana"],
    DESCRIPTION: ["label", "sublabel", "description", "styles", "bgcolor"],
    REMARKS: ["ID", "注意事項"],
    EXTENSIONS: ["kind", "subject", "detail", "value"],
}
_CELL_EXAMPLE = "例: 月 木、水2、火1 火3、20270109、*1"
_REMARK_ID = re.compile(r"[0-9A-Za-z_-]+")
_DATE_FORMS = (
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)


@dataclass(frozen=True)
class Problem:
    """A row that cannot be imported: file, line (1 is the header; 0 the whole file), reason.

    `column` names the category column of an `area_days.csv` cell. Reasons are Japanese
    phrases without a final 。, e.g. 「曜日「火9」を読めません（第1〜第5のみ）」.
    """

    file: str
    line: int
    reason: str
    column: str = ""

    def __str__(self) -> str:
        where = f"{self.file} {self.line}行目" if self.line else self.file
        if self.column:
            where += f"「{self.column}」"
        return f"{where}: {self.reason}"


class ImportProblems(Exception):
    """Nothing was imported; `problems` lists every bad row."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """Japanese summary for staff, one problem a line."""
        lines = [
            f"ごみカレンダーを取り込めませんでした。直していただきたい箇所が{len(self.problems)}件あります。"
        ]
        lines += [f"・{p}" for p in self.problems]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Reading files


def decode_csv(data: bytes) -> str | None:
    """UTF-8 (BOM or not), UTF-16 with a BOM, else cp932 (Shift_JIS); None when none fits."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


@dataclass
class _Row:
    line: int
    cells: list[str]

    def get(self, index: int) -> str:
        return self.cells[index].strip() if index < len(self.cells) else ""


def _read_rows(name: str, text: str, problems: list[Problem]) -> list[_Row]:
    """Records with their starting line; blank records (only commas or spaces) dropped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[_Row] = []
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            problems.append(Problem(name, reader.line_num, f"CSVとして読めません（{error}）"))
            break
        start, previous = previous + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            rows.append(_Row(start, cells))
    return rows


@dataclass
class _Files:
    rows: dict[str, list[_Row]] = field(default_factory=dict)
    headers: dict[str, _Row] = field(default_factory=dict)


def _load(files: Mapping[str, bytes], problems: list[Problem]) -> _Files:
    loaded = _Files()
    by_name = {PurePosixPath(key.replace("\\", "/")).name: data for key, data in files.items()}
    if AREA_DAYS not in by_name:
        problems.append(Problem(AREA_DAYS, 0, "area_days.csv がありません"))
    for name in KNOWN_FILES:
        if name not in by_name:
            continue
        text = decode_csv(by_name[name])
        if text is None:
            problems.append(
                Problem(name, 0, "文字コードを読めません（UTF-8 か Shift_JIS で保存してください）")
            )
            continue
        rows = _read_rows(name, text, problems)
        if not rows:
            if name == AREA_DAYS:
                problems.append(Problem(name, 0, "見出しの行がありません"))
            loaded.rows[name] = []
            continue
        loaded.headers[name] = rows[0]
        loaded.rows[name] = rows[1:]
    return loaded


def parse_date(text: str) -> date | None:
    """「2027/12/29」「2027-12-29」「2027年12月29日」「20271229」 → date, else None."""
    norm = unicodedata.normalize("NFKC", text).strip()
    for form in _DATE_FORMS:
        found = form.fullmatch(norm)
        if found:
            try:
                return date(*(int(g) for g in found.groups()))
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------------------------------------
# Cells


@dataclass
class Cell:
    """What one `area_days.csv` cell says (mutable while the import collects rules)."""

    rules: list[Rule] = field(default_factory=list)
    months: frozenset[int] | None = None
    remark_ids: list[str] = field(default_factory=list)


def parse_cell(text: str) -> tuple[Cell, list[str]]:
    """Read one `area_days.csv` cell; the reasons (Japanese) for every unreadable token."""
    cell = Cell()
    reasons: list[str] = []
    norm = unicodedata.normalize("NFKC", text).strip()
    if not norm:
        return cell, reasons
    parts = norm.split(":")
    if len(parts) > 2:
        reasons.append("「:」は1つだけ使えます（月の指定の前）")
    tokens = parts[0].split()
    for token in tokens:
        reason = _read_token(token, cell)
        if reason:
            reasons.append(reason)
    if len(parts) >= 2:
        if not tokens:
            reasons.append("「:」の前に収集日がありません")
        months: set[int] = set()
        month_tokens = " ".join(parts[1:]).split()
        if not month_tokens:
            reasons.append("「:」のあとに月がありません（例: 火2 金4:4 6 8 10 12 2）")
        for token in month_tokens:
            if token.isdigit() and 1 <= int(token) <= 12:
                months.add(int(token))
            else:
                reasons.append(f"月の指定「{token}」を読めません（1〜12）")
        cell.months = frozenset(months) or None
    return cell, reasons


def _read_token(token: str, cell: Cell) -> str | None:
    weekday = parse_weekday(token)
    if weekday is not None:
        cell.rules.append(Weekly(weekday))
        return None
    if token[0] in WEEKDAY_CHARS and token[1:].isdigit():
        nth = int(token[1:])
        if not 1 <= nth <= MAX_NTH:
            return f"曜日「{token}」を読めません（第1〜第{MAX_NTH}のみ）"
        cell.rules.append(NthWeekday(Weekday(WEEKDAY_CHARS.index(token[0])), nth))
        return None
    if token.startswith("*"):
        remark_id = token[1:]
        if not _REMARK_ID.fullmatch(remark_id):
            return f"備考「{token}」を読めません（*のあとに備考のID）"
        cell.remark_ids.append(remark_id)
        return None
    if token.isdigit() and len(token) == 8:
        day = parse_date(token)
        if day is None:
            return f"日付「{token}」はありません（YYYYMMDD）"
        cell.rules.append(OnDate(day))
        return None
    if len(token) >= 2 and token[:-1].isdigit() and token[-1] in WEEKDAY_CHARS:
        return f"曜日「{token}」を読めません（第{token[:-1]}{token[-1]}曜は「{token[-1]}{token[:-1]}」と書きます）"
    return f"「{token}」を読めません（{_CELL_EXAMPLE}）"


def format_cell(schedule: Schedule, *, months: bool = True) -> str:
    """A schedule's 5374 cell: its 5374 tokens, remarks and (when asked) months."""
    tokens: list[str] = []
    for rule in schedule.rules:
        if isinstance(rule, Weekly):
            tokens.append(rule.weekday.label)
        elif isinstance(rule, NthWeekday):
            tokens.append(f"{rule.weekday.label}{rule.nth}")
        elif isinstance(rule, OnDate):
            tokens.append(f"{rule.day:%Y%m%d}")
    tokens += [f"*{remark_id}" for remark_id in schedule.remark_ids]
    text = " ".join(tokens)
    if text and months and schedule.months is not None:
        text += ":" + _format_months(schedule.months)
    return text


def _format_months(months: frozenset[int]) -> str:
    return " ".join(str(m) for m in FISCAL_MONTHS if m in months)


# ---------------------------------------------------------------------------------------------
# Import


@dataclass
class _CategoryDraft:
    label: str
    id: str
    items: list[TargetItem] = field(default_factory=list)
    sublabel: str = ""
    notes: str = ""
    style: str = ""
    color: str = ""
    holiday: HolidayPolicy = field(default_factory=HolidayPolicy)


@dataclass
class _AreaDraft:
    name: str
    center: str
    line: int
    cells: dict[str, Cell] = field(default_factory=dict)
    lat: float | None = None
    lng: float | None = None


@dataclass
class _CenterDraft:
    name: str
    address: str = ""
    hours: str = ""
    map_url: str = ""


@dataclass
class _Draft:
    problems: list[Problem] = field(default_factory=list)
    remarks: dict[str, str] = field(default_factory=dict)
    centers: dict[str, _CenterDraft] = field(default_factory=dict)
    suspensions: list[Suspension] = field(default_factory=list)
    categories: dict[str, _CategoryDraft] = field(default_factory=dict)
    areas: dict[str, _AreaDraft] = field(default_factory=dict)
    municipality_code: str = ""
    fallback: str = ""
    notes: list[str] = field(default_factory=list)

    def problem(self, file: str, line: int, reason: str, column: str = "") -> None:
        self.problems.append(Problem(file, line, reason, column))


def _read_remarks(rows: list[_Row], draft: _Draft) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        remark_id = unicodedata.normalize("NFKC", row.get(0)).strip()
        if not remark_id:
            draft.problem(REMARKS, row.line, "IDが空です")
        elif not _REMARK_ID.fullmatch(remark_id):
            draft.problem(REMARKS, row.line, f"ID「{remark_id}」は半角英数字でお書きください")
        elif remark_id in seen:
            draft.problem(
                REMARKS, row.line, f"ID「{remark_id}」は{seen[remark_id]}行目と重複しています"
            )
        else:
            seen[remark_id] = row.line
            draft.remarks[remark_id] = row.get(1)


def _read_period(
    file: str, line: int, start_text: str, end_text: str, draft: _Draft
) -> tuple[date, date] | None:
    start, end = parse_date(start_text), parse_date(end_text)
    bad = [t for t, d in ((start_text, start), (end_text, end)) if d is None]
    for text in bad:
        draft.problem(file, line, f"日付「{text}」を読めません（例: 2027/12/29）")
    if start is None or end is None:
        return None
    if end < start:
        draft.problem(file, line, "休止終了日が休止開始日より前です")
        return None
    return start, end


def _read_centers(rows: list[_Row], draft: _Draft) -> None:
    for row in rows:
        name = row.get(0)
        if not name:
            draft.problem(CENTER, row.line, "名称が空です")
            continue
        draft.centers.setdefault(name, _CenterDraft(name))
        start_text, end_text = row.get(1), row.get(2)
        if not start_text and not end_text:
            continue
        if not start_text or not end_text:
            draft.problem(CENTER, row.line, "休止開始日と休止終了日は両方お書きください")
            continue
        period = _read_period(CENTER, row.line, start_text, end_text, draft)
        if period:
            draft.suspensions.append(Suspension(*period, center=name))


def _add_category(draft: _Draft, label: str) -> None:
    draft.categories.setdefault(label, _CategoryDraft(label=label, id=label))


def _read_area_header(header: _Row, draft: _Draft) -> list[str]:
    labels = [cell.strip() for cell in header.cells[2:]]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        draft.problem(AREA_DAYS, header.line, "3列目から分別（燃やすごみ など）の列が必要です")
    seen: set[str] = set()
    for index, label in enumerate(labels):
        if not label:
            draft.problem(AREA_DAYS, header.line, f"{index + 3}列目の分別名が空です")
        elif label in seen:
            draft.problem(AREA_DAYS, header.line, f"分別「{label}」が2回あります")
        else:
            seen.add(label)
            _add_category(draft, label)
    return labels


def _read_descriptions(rows: list[_Row], draft: _Draft) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        label = row.get(0)
        if not label:
            draft.problem(DESCRIPTION, row.line, "labelが空です")
            continue
        if label in seen:
            draft.problem(
                DESCRIPTION, row.line, f"分別「{label}」は{seen[label]}行目と重複しています"
            )
            continue
        seen[label] = row.line
        _add_category(draft, label)
        category = draft.categories[label]
        category.sublabel, category.notes = row.get(1), row.get(2)
        category.style, category.color = row.get(3), row.get(4)


def _read_targets(rows: list[_Row], draft: _Draft) -> None:
    for row in rows:
        label, name = row.get(0), row.get(1)
        if label not in draft.categories:
            draft.problem(
                TARGET,
                row.line,
                f"分別「{label}」が area_days.csv にも description.csv にもありません",
            )
        elif not name:
            draft.problem(TARGET, row.line, "nameが空です")
        else:
            draft.categories[label].items.append(TargetItem(name, row.get(2), row.get(3)))


def _read_area_rows(rows: list[_Row], labels: list[str], draft: _Draft) -> None:
    for row in rows:
        name, center = row.get(0), row.get(1)
        if not name:
            draft.problem(AREA_DAYS, row.line, "地名が空です")
        elif name in draft.areas:
            draft.problem(
                AREA_DAYS,
                row.line,
                f"地名「{name}」は{draft.areas[name].line}行目と重複しています",
            )
        if center and center not in draft.centers:
            draft.problem(AREA_DAYS, row.line, f"センター「{center}」が center.csv にありません")
        extra = [c.strip() for c in row.cells[2 + len(labels) :] if c.strip()]
        if extra:
            draft.problem(AREA_DAYS, row.line, f"見出しのない列に「{extra[0]}」があります")
        area = _AreaDraft(name, center, row.line)
        for index, label in enumerate(labels):
            if not label:
                continue
            cell, reasons = parse_cell(row.get(index + 2))
            for reason in reasons:
                draft.problem(AREA_DAYS, row.line, reason, label)
            for remark_id in cell.remark_ids:
                if remark_id not in draft.remarks:
                    draft.problem(
                        AREA_DAYS,
                        row.line,
                        f"備考「*{remark_id}」が remarks.csv にありません",
                        label,
                    )
            if cell.rules or cell.remark_ids:
                area.cells[label] = cell
        if name and name not in draft.areas:
            draft.areas[name] = area


def parse_holiday_policy(text: str) -> HolidayPolicy | None:
    """`collected`, `skipped`, `moved`, `moved:sundays`, `moved:+1`, `moved:-1` → policy."""
    value = text.strip().lower()
    if value == "collected":
        return HolidayPolicy(HolidayHandling.COLLECTED)
    if value == "skipped":
        return HolidayPolicy(HolidayHandling.SKIPPED)
    if value == "moved":
        return HolidayPolicy(HolidayHandling.MOVED)
    if value == "moved:sundays":
        return HolidayPolicy(HolidayHandling.MOVED, skip_sundays=False)
    found = re.fullmatch(r"moved:([+-]\d{1,2})", value)
    if found and 0 < abs(int(found.group(1))) <= MAX_OFFSET_DAYS:
        return HolidayPolicy(HolidayHandling.MOVED, offset_days=int(found.group(1)))
    return None


def format_holiday_policy(policy: HolidayPolicy) -> str:
    """The extension-file form of a holiday policy."""
    if policy.handling is not HolidayHandling.MOVED:
        return policy.handling.value
    if policy.offset_days is not None:
        return f"moved:{policy.offset_days:+d}"
    return "moved" if policy.skip_sundays else "moved:sundays"


class _Extensions:
    """Applies `furusato_extensions.csv` rows to the draft."""

    def __init__(self, draft: _Draft) -> None:
        self.draft = draft
        self.coordinates: dict[str, tuple[int, dict[str, float]]] = {}
        self.seen: dict[tuple[str, str, str], int] = {}
        self.ids: dict[str, int] = {}
        self.month_lines: dict[tuple[str, str], int] = {}

    def problem(self, line: int, reason: str) -> None:
        self.draft.problem(EXTENSIONS, line, reason)

    def once(self, line: int, key: tuple[str, str, str]) -> bool:
        if key in self.seen:
            self.problem(line, f"同じ指定が{self.seen[key]}行目にもあります")
            return False
        self.seen[key] = line
        return True

    def apply(self, rows: list[_Row]) -> None:
        handlers = {
            "calendar": self.calendar,
            "center": self.center,
            "area": self.area,
            "category": self.category,
            "every_other_week": self.every_other_week,
            "months": self.months,
            "suspension": self.suspension,
        }
        for row in rows:
            kind = row.get(0)
            handler = handlers.get(kind)
            if handler is None:
                self.problem(row.line, f"種類「{kind}」は使えません（{'、'.join(handlers)}）")
                continue
            # the value keeps its inner spacing; only the ends are trimmed
            handler(row.line, row.get(1), row.get(2), row.get(3))
        for name, (line, values) in self.coordinates.items():
            if len(values) != 2:
                self.problem(line, f"地名「{name}」の緯度（lat）と経度（lng）は両方お書きください")
            else:
                self.draft.areas[name].lat, self.draft.areas[name].lng = (
                    values["lat"],
                    values["lng"],
                )
        owners: dict[str, str] = {}
        for label, category in self.draft.categories.items():
            other = owners.setdefault(category.id, label)
            if other != label:
                line = self.ids.get(category.id, 0)
                self.problem(
                    line, f"分別「{label}」のID「{category.id}」は分別「{other}」と同じです"
                )
        for (area, label), line in self.month_lines.items():
            cell = self.draft.areas[area].cells[label]
            if not cell.rules and not cell.remark_ids:
                self.problem(
                    line, f"地名「{area}」の「{label}」は月の指定だけで、収集日がありません"
                )

    def calendar(self, line: int, subject: str, detail: str, value: str) -> None:
        if detail == "note":
            self.draft.notes.append(value)
        elif detail == "municipality_code":
            if not re.fullmatch(r"[0-9]{6}", value):
                self.problem(line, f"団体コード「{value}」は6桁の数字でお書きください")
            elif self.once(line, ("calendar", "", detail)):
                self.draft.municipality_code = value
        elif detail == "fallback":
            if self.once(line, ("calendar", "", detail)):
                self.draft.fallback = value
        else:
            self.problem(
                line,
                f"calendar の項目「{detail}」は使えません（municipality_code、fallback、note）",
            )

    def center(self, line: int, subject: str, detail: str, value: str) -> None:
        center = self.draft.centers.get(subject)
        if center is None:
            self.problem(line, f"センター「{subject}」が center.csv にありません")
        elif detail not in ("address", "hours", "map_url"):
            self.problem(line, f"center の項目「{detail}」は使えません（address、hours、map_url）")
        elif self.once(line, ("center", subject, detail)):
            setattr(center, detail, value)

    def area(self, line: int, subject: str, detail: str, value: str) -> None:
        if subject not in self.draft.areas:
            self.problem(line, f"地名「{subject}」が area_days.csv にありません")
            return
        if detail not in ("lat", "lng"):
            self.problem(line, f"area の項目「{detail}」は使えません（lat、lng）")
            return
        limit = 90 if detail == "lat" else 180
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not -limit <= number <= limit:
            self.problem(line, f"{detail}「{value}」は -{limit}〜{limit} の数でお書きください")
        elif self.once(line, ("area", subject, detail)):
            self.coordinates.setdefault(subject, (line, {}))[1][detail] = number

    def category(self, line: int, subject: str, detail: str, value: str) -> None:
        category = self.draft.categories.get(subject)
        if category is None:
            self.problem(
                line, f"分別「{subject}」が area_days.csv にも description.csv にもありません"
            )
        elif detail == "id":
            if not value:
                self.problem(line, "分別のIDが空です")
            elif value in self.ids:
                self.problem(line, f"分別のID「{value}」は{self.ids[value]}行目と重複しています")
            elif self.once(line, ("category", subject, detail)):
                self.ids[value] = line
                category.id = value
        elif detail == "holiday":
            policy = parse_holiday_policy(value)
            if policy is None:
                self.problem(
                    line,
                    f"祝日の扱い「{value}」を読めません"
                    "（collected、skipped、moved、moved:sundays、moved:+1 など）",
                )
            elif self.once(line, ("category", subject, detail)):
                category.holiday = policy
        else:
            self.problem(line, f"category の項目「{detail}」は使えません（id、holiday）")

    def _cell(self, line: int, area_name: str, label: str) -> Cell | None:
        area = self.draft.areas.get(area_name)
        if area is None:
            self.problem(line, f"地名「{area_name}」が area_days.csv にありません")
            return None
        if label not in self.draft.categories:
            self.problem(
                line, f"分別「{label}」が area_days.csv にも description.csv にもありません"
            )
            return None
        return area.cells.setdefault(label, Cell())

    def every_other_week(self, line: int, subject: str, detail: str, value: str) -> None:
        parts = unicodedata.normalize("NFKC", value).split()
        weekday = parse_weekday(parts[0]) if len(parts) == 2 else None
        anchor = parse_date(parts[1]) if len(parts) == 2 else None
        if weekday is None or anchor is None:
            self.problem(line, f"隔週の指定「{value}」を読めません（例: 金 20270108）")
            return
        cell = self._cell(line, subject, detail)
        if cell is not None:
            cell.rules.append(EveryOtherWeek(weekday, anchor))

    def months(self, line: int, subject: str, detail: str, value: str) -> None:
        tokens = unicodedata.normalize("NFKC", value).split()
        if not tokens or not all(t.isdigit() and 1 <= int(t) <= 12 for t in tokens):
            self.problem(line, f"月の指定「{value}」を読めません（例: 4 6 8）")
            return
        cell = self._cell(line, subject, detail)
        if cell is None:
            return
        if cell.months is not None:
            self.problem(line, f"地名「{subject}」の「{detail}」には月の指定がすでにあります")
        else:
            cell.months = frozenset(int(t) for t in tokens)
            self.month_lines[(subject, detail)] = line

    def suspension(self, line: int, subject: str, detail: str, value: str) -> None:
        if subject and subject not in self.draft.areas:
            self.problem(line, f"地名「{subject}」が area_days.csv にありません")
            return
        period = _read_period(EXTENSIONS, line, detail, value, self.draft)
        if period:
            self.draft.suspensions.append(Suspension(*period, area=subject or None))


def _build(draft: _Draft, municipality_code: str | None) -> Calendar:
    ids = {label: c.id for label, c in draft.categories.items()}
    areas = tuple(
        Area(
            name=a.name,
            center=a.center,
            lat=a.lat,
            lng=a.lng,
            schedules=tuple(
                Schedule(ids[label], tuple(cell.rules), cell.months, tuple(cell.remark_ids))
                for label, cell in a.cells.items()
            ),
        )
        for a in draft.areas.values()
    )
    categories = tuple(
        Category(
            id=c.id,
            name=c.label,
            items=tuple(c.items),
            notes=c.notes,
            holiday=c.holiday,
            sublabel=c.sublabel,
            style=c.style,
            color=c.color,
        )
        for c in draft.categories.values()
    )
    return Calendar(
        municipality_code=municipality_code or draft.municipality_code,
        areas=areas,
        categories=categories,
        centers=tuple(
            CollectionCenter(c.name, c.address, c.hours, c.map_url) for c in draft.centers.values()
        ),
        suspensions=tuple(draft.suspensions),
        notes=tuple(draft.notes),
        fallback=draft.fallback,
        remarks=tuple(Remark(i, t) for i, t in draft.remarks.items()),
    )


def parse_5374(files: Mapping[str, bytes], *, municipality_code: str | None = None) -> Calendar:
    """Read a set of 5374.jp CSV files (keys are file names; folders are ignored) into a calendar.

    Files other than the 5374 set and `furusato_extensions.csv` are ignored. A given
    `municipality_code` wins over the one in the extensions file. Raises `ImportProblems` with
    every bad row when anything cannot be read: no partial result.
    """
    problems: list[Problem] = []
    loaded = _load(files, problems)
    draft = _Draft(problems=problems)
    _read_remarks(loaded.rows.get(REMARKS, []), draft)
    _read_centers(loaded.rows.get(CENTER, []), draft)
    labels: list[str] = []
    if AREA_DAYS in loaded.headers:
        labels = _read_area_header(loaded.headers[AREA_DAYS], draft)
    _read_descriptions(loaded.rows.get(DESCRIPTION, []), draft)
    _read_targets(loaded.rows.get(TARGET, []), draft)
    _read_area_rows(loaded.rows.get(AREA_DAYS, []), labels, draft)
    _Extensions(draft).apply(loaded.rows.get(EXTENSIONS, []))
    if draft.problems:
        order = {name: index for index, name in enumerate(KNOWN_FILES)}
        raise ImportProblems(sorted(draft.problems, key=lambda p: (order[p.file], p.line)))
    try:
        return _build(draft, municipality_code)
    except ValueError as error:  # a check above is missing; still all or nothing
        raise ImportProblems(
            [Problem(AREA_DAYS, 0, f"カレンダーを組み立てられません（{error}）")]
        ) from error


# ---------------------------------------------------------------------------------------------
# Export


def _csv_bytes(header: list[str], rows: list[list[str]], bom: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")


def export_5374(calendar: Calendar, *, bom: bool = False) -> dict[str, bytes]:
    """Write a calendar as 5374.jp CSV files (UTF-8; with a BOM for Excel when asked).

    What 5374 cannot say (holiday policies, every-other-week rules, area suspensions, centers'
    addresses and hours, coordinates, category ids, notes, the fallback) goes to
    `furusato_extensions.csv`, written only when there is something to put in it.
    `parse_5374(export_5374(c)) == c` for calendars whose texts have no surrounding spaces.
    """
    labels = {c.id: c.name for c in calendar.categories}
    extensions: list[list[str]] = []
    if calendar.municipality_code:
        extensions.append(["calendar", "", "municipality_code", calendar.municipality_code])
    if calendar.fallback:
        extensions.append(["calendar", "", "fallback", calendar.fallback])
    extensions += [["calendar", "", "note", note] for note in calendar.notes]
    for center in calendar.centers:
        for detail in ("address", "hours", "map_url"):
            if value := getattr(center, detail):
                extensions.append(["center", center.name, detail, value])
    for category in calendar.categories:
        if category.id != category.name:
            extensions.append(["category", category.name, "id", category.id])
        if category.holiday != HolidayPolicy():
            extensions.append(
                ["category", category.name, "holiday", format_holiday_policy(category.holiday)]
            )

    area_rows = []
    for area in calendar.areas:
        cells = []
        for category in calendar.categories:
            schedule = area.schedule(category.id)
            cells.append("" if schedule is None else format_cell(schedule))
            if schedule is None:
                continue
            for rule in schedule.rules:
                if isinstance(rule, EveryOtherWeek):
                    value = f"{rule.weekday.label} {rule.anchor:%Y%m%d}"
                    extensions.append(["every_other_week", area.name, category.name, value])
            if schedule.months is not None and not cells[-1]:
                extensions.append(
                    ["months", area.name, category.name, _format_months(schedule.months)]
                )
        area_rows.append([area.name, area.center, *cells])
        if area.lat is not None and area.lng is not None:
            extensions.append(["area", area.name, "lat", repr(area.lat)])
            extensions.append(["area", area.name, "lng", repr(area.lng)])

    center_rows = []
    for center in calendar.centers:
        periods = [s for s in calendar.suspensions if s.center == center.name]
        center_rows += [[center.name, _slash(s.start), _slash(s.end)] for s in periods]
        if not periods:
            center_rows.append([center.name, "", ""])
    for suspension in calendar.suspensions:
        if suspension.center is None:
            extensions.append(
                [
                    "suspension",
                    suspension.area or "",
                    _slash(suspension.start),
                    _slash(suspension.end),
                ]
            )

    files = {
        AREA_DAYS: _csv_bytes(["地名", "センター", *labels.values()], area_rows, bom),
        CENTER: _csv_bytes(_HEADERS[CENTER], center_rows, bom),
        TARGET: _csv_bytes(
            _HEADERS[TARGET],
            [
                [c.name, item.name, item.notice, item.furigana]
                for c in calendar.categories
                for item in c.items
            ],
            bom,
        ),
        DESCRIPTION: _csv_bytes(
            _HEADERS[DESCRIPTION],
            [[c.name, c.sublabel, c.notes, c.style, c.color] for c in calendar.categories],
            bom,
        ),
        REMARKS: _csv_bytes(_HEADERS[REMARKS], [[r.id, r.text] for r in calendar.remarks], bom),
    }
    if extensions:
        files[EXTENSIONS] = _csv_bytes(_HEADERS[EXTENSIONS], extensions, bom)
    return files


def _slash(day: date) -> str:
    return f"{day.year}/{day.month}/{day.day}"
