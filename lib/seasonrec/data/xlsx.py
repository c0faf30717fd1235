"""Excel workbooks (``.xlsx``, e.g. the official UCI ``Online Retail.xlsx``) as CSV files.

A workbook is not read by a second reader: `workbook_to_csv` streams each worksheet of records (the
first with a value, and every later one with the same header row, as UCI's ``online_retail_II.xlsx``
keeps one year per worksheet) into a CSV file in the layout of a CSV export (header row, one record per
row, RFC 4180 quoting), and the ingest reads those files through
`seasonrec.data.sources.read_csv_source`, so every validation and quarantine rule, the records balance
and the row hashes are those of CSV files with the same rows.

Cells are written as the export writes them: a datetime as ISO ``YYYY-MM-DD HH:MM:SS`` (a fraction of a
second only when there is one), a date as ``YYYY-MM-DD``, an integer as digits, a float as Python's
shortest round-trip text (``2.55``, ``17850.0``), an empty cell as an empty field, text as it is
(blanks kept: the ingest trims). A row is as wide as the header unless it has values beyond it: then it
keeps them, as a CSV line with extra fields would (the ingest quarantines it, ``field_count_mismatch``).
Rows without any value are worksheet padding, not records (as blank lines of a CSV file are): they are
skipped and counted in the log.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
import time
import warnings
import zipfile
from typing import Any, NamedTuple

from seasonrec.context import JobError

log = logging.getLogger(__name__)

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
PROGRESS_EVERY = 100_000  # rows between two progress lines (the UCI file: 5 lines)


def is_workbook(location: str) -> bool:
    """True when ``location`` (a path or URI) names an Excel workbook, by its extension."""
    return location.lower().endswith(WORKBOOK_SUFFIXES)


def cell_text(value: Any) -> str:
    """One cell value as openpyxl reads it (``data_only``: formulas as their cached results) -> its CSV
    field text, as the CSV export writes it."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        # isoformat keeps a fraction of a second only when there is one: never silently truncated.
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same double
    return str(value)


def csv_record(row: tuple[Any, ...], width: int | None) -> list[str] | None:
    """One worksheet row (its cell values) -> its CSV fields: padded with empty fields to ``width`` (the
    header's; None for the header itself), longer only when the row has values beyond it. None for a row
    without any value."""
    values = list(row)
    while values and values[-1] in (None, ""):
        values.pop()  # trailing empty cells: the sheet's used range, not fields
    if not values:
        return None
    return [cell_text(v) for v in values] + [""] * ((width or 0) - len(values))


class Worksheet(NamedTuple):
    """One worksheet of records converted to CSV: the CSV file's path and the worksheet's title."""

    path: str
    title: str


def workbook_to_csv(path: str, folder: str) -> list[Worksheet]:
    """Stream the worksheets of records of the workbook at ``path`` (a driver-local file) into
    ``<folder>/<workbook name>[-<n>].csv``, one CSV file each; returns them in the workbook's order.

    The first worksheet with a value holds records, its first row the header; a later worksheet holds
    records when its first row is the same header (UCI's "Online Retail II" keeps each year on its own
    worksheet) and is skipped with a warning naming it otherwise (notes, a pivot table). Logs a progress
    line every `PROGRESS_EVERY` rows and one per worksheet. `JobError` (one line) when openpyxl is not
    installed, the file is not a readable workbook, or no worksheet has a value."""
    try:
        import openpyxl
    except ImportError:
        raise JobError(f"{os.path.basename(path)}: reading .xlsx needs the openpyxl package "
                       "(pip install openpyxl, or the project's [local] extra)") from None
    if "://" in path:
        raise JobError(f"{path}: an .xlsx is converted on the driver; give a driver-local path")
    name = os.path.basename(path)
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # Some writers leave out the default style; openpyxl warns and applies its own (values unaffected).
            warnings.filterwarnings("ignore", message="Workbook contains no default style", category=UserWarning)
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise JobError(f"{name}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    converted: list[Worksheet] = []
    header: list[str] | None = None
    try:
        # Opening a large workbook takes a while (~10 s for the UCI file's size): say what comes next.
        log.info("[ingest] %s: opened in %.1fs, %d worksheet(s)", name, time.perf_counter() - started,
                 len(workbook.worksheets))
        for sheet in workbook.worksheets:
            stem = os.path.splitext(name)[0] + (f"-{len(converted) + 1}" if converted else "")
            target = os.path.join(folder, stem + ".csv")
            sheet_header = _sheet_to_csv(sheet, target, name, header)
            if sheet_header is None:
                continue
            header = header or sheet_header
            converted.append(Worksheet(target, sheet.title))
    finally:
        workbook.close()  # a read-only workbook keeps its file open until closed
    if not converted:
        raise JobError(f"{name}: no worksheet has a value")
    return converted


def _sheet_to_csv(sheet: Any, target: str, name: str, header: list[str] | None) -> list[str] | None:
    """Write ``sheet``'s rows to the CSV file ``target``; returns its header, or None (nothing left
    written) when the sheet is empty or its header differs from ``header`` (that of the workbook's
    first worksheet of records; None: this is the first)."""
    started = time.perf_counter()
    sheet_header: list[str] | None = None
    records = empty = 0
    mismatched = False
    with open(target, "w", encoding="utf-8", newline="") as handle:
        # QUOTE_MINIMAL with doubled quotes is RFC 4180; "\n" ends a record as in the CSV export.
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        for row in sheet.iter_rows(values_only=True):
            record = csv_record(row, None if sheet_header is None else len(sheet_header))
            if record is None:
                empty += 1
                continue
            if sheet_header is None:  # the first non-empty row is the header
                if header is not None and record != header:
                    mismatched = True
                    log.warning("[ingest] %s: worksheet %s skipped: its first row %s is not the header %s of "
                                "the first worksheet", name, sheet.title, record, header)
                    break
                sheet_header = record
            writer.writerow(record)
            records += 1
            if records % PROGRESS_EVERY == 0:
                log.info("[ingest] %s: worksheet %s, %d rows converted to CSV (%.0fs)", name, sheet.title,
                         records, time.perf_counter() - started)
    if sheet_header is None:  # empty, or another table (warned above)
        os.remove(target)
        if not mismatched:
            log.info("[ingest] %s: worksheet %s has no value, skipped", name, sheet.title)
        return None
    log.info("[ingest] %s: worksheet %s, %d rows (header included) converted to CSV in %.1fs%s", name,
             sheet.title, records, time.perf_counter() - started,
             f"; {empty} rows without any value skipped" if empty else "")
    return sheet_header
