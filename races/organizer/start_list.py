"""Start lists as CSV: import (all rows valid or nothing) and a spreadsheet-safe export."""

import csv
import io
import math
from dataclasses import dataclass

from races.models import Athlete

COLUMNS = ["bib", "name", "gender", "category", "pace"]
REQUIRED = ["bib", "name", "gender"]
GENDERS = {
    "f": "female", "female": "female", "w": "female", "woman": "female",
    "m": "male", "male": "male", "man": "male",
    "x": "other", "other": "other", "nb": "other",
}  # fmt: skip
MAX_ROWS = 20_000


@dataclass(frozen=True)
class StartListRow:
    bib: str
    name: str
    gender: str
    category: str
    flat_pace_s_per_km: float | None


class StartListError(ValueError):
    """A start list was refused; `problems` lists each bad row with its line number."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def parse_start_list(text: str) -> list[StartListRow]:
    """Parse CSV with a header row: bib, name, gender, category (optional), pace (optional).

    pace is the flat pace as seconds per km or mm:ss per km. Raises StartListError
    listing every bad line, so nothing is imported when any row is bad.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise StartListError([f"line 1: missing column(s) {', '.join(missing)}"])
    reader.fieldnames = header
    rows, problems, bibs = [], [], {}
    for record in reader:
        line = reader.line_num
        if len(rows) >= MAX_ROWS:
            raise StartListError([f"line {line}: more than {MAX_ROWS:,} athletes"])
        row, errors = _parse_row(record)
        if row and row.bib in bibs:
            errors.append(f"bib {row.bib} is already used on line {bibs[row.bib]}")
        if errors:
            problems.extend(f"line {line}: {e}" for e in errors)
        elif row:
            bibs[row.bib] = line
            rows.append(row)
    if problems:
        raise StartListError(problems)
    if not rows:
        raise StartListError(["the start list has no athletes"])
    return rows


def _parse_row(record: dict) -> tuple[StartListRow | None, list[str]]:
    value = {k: (v or "").strip() for k, v in record.items() if k is not None}
    if not any(value.values()):
        return None, []
    errors = []
    bib, name = value.get("bib", ""), value.get("name", "")
    if not bib or len(bib) > 16:
        errors.append("bib must be 1 to 16 characters")
    if not name or len(name) > 200:
        errors.append("name must be 1 to 200 characters")
    gender = GENDERS.get(value.get("gender", "").lower())
    if gender is None:
        errors.append(f"gender {value.get('gender')!r} is not one of female, male, other")
    category = value.get("category", "")
    if len(category) > 32:
        errors.append("category must be at most 32 characters")
    pace, pace_error = _parse_pace(value.get("pace", ""))
    if pace_error:
        errors.append(pace_error)
    if errors:
        return None, errors
    return StartListRow(bib, name, gender, category, pace), []


def _parse_pace(text: str) -> tuple[float | None, str | None]:
    if not text:
        return None, None
    try:
        if ":" in text:
            minutes, seconds = text.split(":")
            pace = int(minutes) * 60 + float(seconds)
        else:
            pace = float(text)
    except ValueError:
        return None, f"pace {text!r} is not seconds per km or mm:ss"
    if not math.isfinite(pace) or not 120 <= pace <= 1800:
        return None, f"pace {text!r} is outside 2:00 to 30:00 per km"
    return pace, None


def spreadsheet_safe(value: str) -> str:
    """Neutralise cells a spreadsheet would run as a formula (CSV injection)."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def export_start_list(athletes: list[Athlete]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for a in athletes:
        pace = "" if a.flat_pace_s_per_km is None else f"{a.flat_pace_s_per_km:g}"
        writer.writerow(
            [spreadsheet_safe(str(v)) for v in (a.bib, a.name, a.gender, a.category, pace)]
        )
    return out.getvalue()
