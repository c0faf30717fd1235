"""The official UCI file is a workbook (``Online Retail.xlsx``): ingesting a workbook in its layout must
store exactly what ingesting the same rows as the CSV export stores (`seasonrec.data.xlsx`)."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest

from seasonrec import tables
from seasonrec.config import ONLINE_RETAIL_PRESET, FileSourceConfig
from seasonrec.context import JobError
from seasonrec.data import jobs as ingest_jobs
from seasonrec.data import xlsx
from seasonrec.data.sources import file_columns
from support import job_args

HEADER = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
UK = "United Kingdom"


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# (worksheet row as the UCI workbook holds it: numbers as numbers, InvoiceDate an Excel datetime,
#  CustomerID a number or empty; the same row as a line of the CSV export; expected quarantine reason).
ROWS = [
    ((536365, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, _at("2010-12-01 08:26"), 2.55, 17850, UK),
     f"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,{UK}", None),
    ((536365, 71053, "WHITE METAL LANTERN", 6, _at("2010-12-01 08:26"), 3.39, 17850, UK),  # numeric stock code
     f"536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,{UK}", None),
    ((536366, 22633, "HAND WARMER, UNION JACK", 6, _at("2010-12-01 08:28"), 1.85, 17850, UK),
     f'536366,22633,"HAND WARMER, UNION JACK",6,2010-12-01 08:28:00,1.85,17850.0,{UK}', None),
    ((536367, 22041, 'RECORD FRAME 7" SINGLE SIZE ', 48, _at("2010-12-01 12:27"), 2.1, 16210, UK),
     f'536367,22041,"RECORD FRAME 7"" SINGLE SIZE ",48,2010-12-01 12:27:00,2.1,16210.0,{UK}', None),
    ((536368, "85071C", 'HEART "BIG", WHITE HOLDER', 6, _at("2011-07-01 10:00"), 2.55, 14911, UK),  # BST
     f'536368,85071C,"HEART ""BIG"", WHITE HOLDER",6,2011-07-01 10:00:00,2.55,14911.0,{UK}', None),
    ((536369, 21754, "HOME BUILDING\nBLOCK WORD", 3, _at("2010-12-01 09:09"), 5.95, 15100, UK),
     f'536369,21754,"HOME BUILDING\nBLOCK WORD",3,2010-12-01 09:09:00,5.95,15100.0,{UK}', None),
    (("C536370", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", -2, _at("2010-12-02 09:41"), 2.55, 17850, UK),
     f"C536370,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-02 09:41:00,2.55,17850.0,{UK}", None),
    ((536371, 22728, "ALARM CLOCK BAKELIKE PINK", 24, _at("2010-12-01 08:45"), 3.75, None, UK),  # guest
     f"536371,22728,ALARM CLOCK BAKELIKE PINK,24,2010-12-01 08:45:00,3.75,,{UK}", None),
    # December 2011: in the UCI file, past the end of the shared CSV.
    ((581587, 22613, "PACK OF 20 SPACEBOY NAPKINS", 12, _at("2011-12-09 12:50"), 0.85, 12680, "France"),
     "581587,22613,PACK OF 20 SPACEBOY NAPKINS,12,2011-12-09 12:50:00,0.85,12680.0,France", None),
    # The same line again: a second sale, stored twice (occurrence 2 in the row hash).
    ((536365, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, _at("2010-12-01 08:26"), 2.55, 17850, UK),
     f"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,{UK}", None),
    ((536414, 22139, None, 56, _at("2010-12-01 11:52"), 0, None, UK),  # a stock note, not a sale
     f"536414,22139,,56,2010-12-01 11:52:00,0.0,,{UK}", "missing_description"),
    ((900017, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", -5, _at("2010-12-01 10:00"), 2.55, 17850, UK),
     f"900017,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-5,2010-12-01 10:00:00,2.55,17850.0,{UK}",
     "negative_quantity_not_cancellation"),
    ((900012, 22752, "BOXES", "two", _at("2010-12-01 09:02"), 7.65, 17850, UK),  # a text cell
     f"900012,22752,BOXES,two,2010-12-01 09:02:00,7.65,17850.0,{UK}", "non_numeric_quantity"),
    ((900008, 21731, "RED TOADSTOOL", 6, "yesterday", 1.65, 17850, "EIRE"),
     "900008,21731,RED TOADSTOOL,6,yesterday,1.65,17850.0,EIRE", "unparseable_timestamp"),
    ((900002, 22752, "BOXES", 2, _at("2010-12-01 09:02"), 7.65, 17850, UK, "EXTRA"),  # a cell past the header
     f"900002,22752,BOXES,2,2010-12-01 09:02:00,7.65,17850.0,{UK},EXTRA", "field_count_mismatch"),
]
BLANK_AFTER = 5  # a worksheet row without any value after this many data rows: padding, not a record


def _workbook(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Online Retail"
    sheet.append(HEADER)
    for number, (cells, _, _) in enumerate(ROWS):
        if number == BLANK_AFTER:
            sheet.append([])
        sheet.append(cells)
    for row in sheet.iter_rows(min_row=2, min_col=5, max_col=5):
        row[0].number_format = "m/d/yyyy h:mm"  # as in the UCI file (openpyxl's default is ISO)
    book.save(path)
    return path


def _csv(path: Path) -> Path:
    path.write_text("\n".join([",".join(HEADER), *[line for _, line, _ in ROWS]]) + "\n", encoding="utf-8")
    return path


def _ingest(ctx, path: Path) -> dict:
    return ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "online_retail", "--path", str(path)))


BRONZE_KEYS = ("row_hash", "invoice", "user_raw", "item_raw", "ts", "quantity", "price", "description", "country")


def _bronze(ctx) -> list[tuple]:
    return sorted(tuple(r) for r in ctx.lake.read(tables.BRONZE_TRANSACTIONS).select(*BRONZE_KEYS).collect())


def test_workbook_ingests_like_the_csv_export(job_context, tmp_path: Path) -> None:
    book = _workbook(tmp_path / "Online Retail.xlsx")  # the official name, space included
    export = _csv(tmp_path / "online_retail.csv")
    from_book = job_context("ingest", "data.quarantine_max_share=1.0")
    from_csv = job_context("ingest", "data.quarantine_max_share=1.0", f"paths.lake_root={tmp_path}/csv_lake")
    book_summary, csv_summary = _ingest(from_book, book), _ingest(from_csv, export)

    bad = [reason for _, _, reason in ROWS if reason]
    counted = ("records_read", "header_lines", "rows_in", "rows_good", "rows_quarantined", "quarantine_by_reason",
               "duplicates_skipped", "bronze_rows_added", "quarantine_rows_added")
    assert {k: book_summary[k] for k in counted} == {k: csv_summary[k] for k in counted}
    assert book_summary["quarantine_by_reason"] == {reason: bad.count(reason) for reason in bad}
    assert (book_summary["records_read"], book_summary["header_lines"]) == (1 + len(ROWS), 1)  # blank row: none
    assert book_summary["bronze_rows_added"] == len(ROWS) - len(bad)
    assert book_summary["records_read"] == (book_summary["header_lines"] + book_summary["bronze_rows_added"]
                                            + book_summary["rows_quarantined"] + book_summary["duplicates_skipped"])

    bronze = _bronze(from_book)
    assert bronze == _bronze(from_csv)  # same row hashes, ids, UTC times, numbers and descriptions
    descriptions = {row[7] for row in bronze}
    assert {"HAND WARMER, UNION JACK", 'RECORD FRAME 7" SINGLE SIZE', 'HEART "BIG", WHITE HOLDER',
            "HOME BUILDING\nBLOCK WORD"} <= descriptions
    by_invoice = {row[1]: row for row in bronze}
    assert by_invoice["536365"][2] == "17850" and by_invoice["536371"][2] is None  # number id; guest
    assert by_invoice["536368"][4] == dt.datetime(2011, 7, 1, 9, 0)  # UK summer time -> UTC
    assert by_invoice["581587"][4] == dt.datetime(2011, 12, 9, 12, 50)
    stored = from_book.lake.read(tables.BRONZE_TRANSACTIONS).select("source_file").distinct().collect()
    assert [r[0] for r in stored] == [book.as_uri()]  # the workbook, not its staged CSV copy

    quarantine = {r["row_hash"]: r for r in from_book.lake.read(tables.QUARANTINE).collect()}
    csv_quarantine = {r["row_hash"]: r["reason"] for r in from_csv.lake.read(tables.QUARANTINE).collect()}
    assert {h: r["reason"] for h, r in quarantine.items()} == csv_quarantine
    extra = next(r for r in quarantine.values() if r["reason"] == "field_count_mismatch")
    assert extra["raw_line"].startswith("900002,22752,BOXES,2,2010-12-01 09:02:00,7.65,17850,")
    staging = Path(from_book.lake.root) / "_staging"
    assert not staging.exists() or not any(staging.iterdir())  # the CSV copy is removed

    again = _ingest(from_book, book)  # a re-run adds nothing
    assert (again["bronze_rows_added"], again["quarantine_rows_added"]) == (0, 0)
    assert again["duplicates_skipped"] == len(ROWS) - len(bad)


def test_timestamp_formats_tried_in_order_read_a_month_first_export_like_the_iso_file(job_context,
                                                                                      tmp_path: Path) -> None:
    # The workbook shows m/d/yyyy h:mm, and exports of it (e.g. Kaggle's data.csv) write dates so; the
    # preset reads ISO only (a slash date could be day first), and the refusal names the setting.
    iso = [line for _, line, reason in ROWS if reason is None]
    month_first = [re.sub(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):00",
                          lambda m: f"{int(m[2])}/{int(m[3])}/{m[1]} {int(m[4])}:{m[5]}", line) for line in iso]
    assert "12/1/2010 8:26" in month_first[0] and "7/1/2011 10:00" in month_first[4]  # 1 December, 1 July
    paths = {}
    for name, lines in (("iso", iso), ("us", month_first)):
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text("\n".join([",".join(HEADER), *lines]) + "\n", encoding="utf-8")
    with pytest.raises(JobError) as refused:
        _ingest(job_context("ingest", f"paths.lake_root={tmp_path}/preset_lake"), paths["us"])
    assert "unparseable_timestamp" in str(refused.value) and "M/d/yyyy H:mm" in str(refused.value)
    stored = []
    for name, path in paths.items():
        ctx = job_context("ingest", f"paths.lake_root={tmp_path}/{name}_lake",
                          "data.online_retail.timestamp_format=[yyyy-MM-dd HH:mm:ss,M/d/yyyy H:mm]")
        assert _ingest(ctx, path)["bronze_rows_added"] == len(iso)
        stored.append(_bronze(ctx))
    assert stored[0] == stored[1]  # same UTC times, hence the same row hashes


def test_cells_are_written_as_the_csv_export_writes_them() -> None:
    assert [xlsx.cell_text(v) for v in (None, 17850, 17850.0, 2.55, 0.1 + 0.2, _at("2010-12-01 08:26"),
                                        dt.date(2011, 12, 9), "A, \"B\" ")] == [
        "", "17850", "17850.0", "2.55", "0.30000000000000004", "2010-12-01 08:26:00", "2011-12-09", 'A, "B" ']
    assert xlsx.cell_text(_at("2010-12-01 08:26:00.5")) == "2010-12-01 08:26:00.500000"  # never truncated
    assert xlsx.csv_record((1, None, "x", None, None), 5) == ["1", "", "x", "", ""]
    assert xlsx.csv_record((1, "x"), 4) == ["1", "x", "", ""]
    assert xlsx.csv_record((None, None), 4) is None


def test_a_workbook_without_openpyxl_fails_with_one_line_naming_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    book = _workbook(tmp_path / "Online Retail.xlsx")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # what `import openpyxl` meets when it is not installed
    with pytest.raises(JobError) as raised:
        xlsx.workbook_to_csv(str(book), str(tmp_path))
    assert "openpyxl" in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "Online Retail.csv").exists()


# UCI's "Online Retail II" (id 502): one worksheet per year, three columns named differently.
HEADER_II = ("Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country")
YEAR_1 = [(489434, 85048, "15CM CHRISTMAS GLASS BALL 20 LIGHTS", 12, _at("2009-12-01 07:45"), 6.95, 13085, UK),
          (489435, 22350, "CAT BOWL", 12, _at("2009-12-01 07:46"), 2.55, None, UK),  # guest
          (489436, 48173, "DOOR MAT BLACK FLOCK", 10, _at("2009-12-01 09:06"), -5.95, 13078, UK)]  # bad price
SHARED = (536365, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, _at("2010-12-01 08:26"), 2.55, 17850, UK)
YEAR_2 = [(581587, 22613, "PACK OF 20 SPACEBOY NAPKINS", 12, _at("2011-12-09 12:50"), 0.85, 12680, "France")]


def _workbook_ii(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    first = book.active
    first.title = "Year 2009-2010"
    second = book.create_sheet("Year 2010-2011")
    for sheet, rows in ((first, [*YEAR_1, SHARED]), (second, [SHARED, *YEAR_2])):  # the years overlap
        sheet.append(HEADER_II)
        for cells in rows:
            sheet.append(cells)
    book.create_sheet("Notes").append(("Source", "UCI id 502"))  # not a table of sales
    book.create_sheet("Empty")
    book.save(path)
    return path


def test_online_retail_ii_workbook_reads_every_year_once(job_context, tmp_path: Path) -> None:
    book = _workbook_ii(tmp_path / "online_retail_II.xlsx")
    ctx = job_context("ingest", "data.quarantine_max_share=1.0")
    summary = _ingest(ctx, book)

    # 2 headers + 4 + 2 rows; the sale listed on both worksheets is one sale (its second copy skipped).
    assert (summary["records_read"], summary["header_lines"]) == (8, 2)
    assert summary["quarantine_by_reason"] == {"negative_price": 1}
    assert (summary["bronze_rows_added"], summary["duplicates_skipped"]) == (4, 1)
    bronze = {row[1]: row for row in _bronze(ctx)}
    assert sorted(bronze) == ["489434", "489435", "536365", "581587"]  # the "Invoice" column
    assert bronze["489434"][2] == "13085" and bronze["489435"][2] is None  # "Customer ID"; a guest
    assert bronze["489434"][6] == 6.95 and bronze["581587"][6] == 0.85  # "Price"
    assert bronze["489434"][4] == dt.datetime(2009, 12, 1, 7, 45)  # UK winter time = UTC
    files = {r[0] for r in ctx.lake.read(tables.BRONZE_TRANSACTIONS).select("source_file").distinct().collect()}
    assert files == {f"{book.as_uri()}#Year%202009-2010", f"{book.as_uri()}#Year%202010-2011"}


def test_a_file_without_a_mapped_column_or_its_alternatives_fails_naming_them() -> None:
    preset = FileSourceConfig(**ONLINE_RETAIL_PRESET)
    assert file_columns(preset, list(HEADER), "a.csv")["user"] == "CustomerID"
    assert file_columns(preset, list(HEADER_II), "b.csv") == {
        "invoice": "Invoice", "user": "Customer ID", "item": "StockCode", "timestamp": "InvoiceDate",
        "quantity": "Quantity", "price": "Price", "description": "Description", "country": "Country"}
    with pytest.raises(JobError) as raised:
        file_columns(preset, [c for c in HEADER_II if c != "Customer ID"], "c.csv")
    assert "'CustomerID or Customer ID'" in str(raised.value) and "c.csv" in str(raised.value)
    with pytest.raises(ValueError, match="alternative_columns names fields \\['category'\\]"):
        FileSourceConfig(alternative_columns={"category": ["Type"]})
