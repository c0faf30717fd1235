"""Ingest validation under a bad-row corpus: a CSV in the Online Retail layout with one row per bad kind
and valid rows with RFC 4180 quoting, run through the real `seasonrec ingest` (and `features`) jobs.

Bars (issue #20): no bad row in bronze or silver, every bad row quarantined with its expected reason,
valid quoted rows stored with their real text, records read = header lines + added + quarantined +
duplicates skipped; the same transactions through two sources are stored once.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.data import jobs as ingest_jobs
from seasonrec.data import validation
from support import REPO, job_args

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
UK = "United Kingdom"
NOT_UTF8 = "@NOT-UTF8@"  # replaced by a Latin-1 byte when the file is written

# (invoice, item, description as stored) of the valid rows, then their lines.
VALID = [
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER"),
    ("536366", "22633", "HAND WARMER, UNION JACK"),
    ("536367", "22041", 'RECORD FRAME 7" SINGLE SIZE'),
    ("536368", "85071C", 'HEART "BIG", WHITE HOLDER'),
    ("536369", "21754", "HOME BUILDING\nBLOCK WORD"),
    ("C536370", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER"),
    ("536371", "22728", "ALARM CLOCK BAKELIKE PINK"),
]
VALID_LINES = [
    f"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,{UK}",
    f'536366,22633,"HAND WARMER, UNION JACK",6,2010-12-01 08:28:00,1.85,17850.0,{UK}',
    f'536367,22041,"RECORD FRAME 7"" SINGLE SIZE ",48,2010-12-01 12:27:00,2.1,16210.0,{UK}',
    f'536368,85071C,"HEART ""BIG"", WHITE HOLDER",6,2011-07-01 10:00:00,2.55,14911.0,{UK}',
    f'536369,21754,"HOME BUILDING\nBLOCK WORD",3,2010-12-01 09:09:00,5.95,15100.0,{UK}',
    f"C536370,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-02 09:41:00,2.55,17850.0,{UK}",  # cancellation
    f"536371,22728,ALARM CLOCK BAKELIKE PINK,24,2010-12-01 08:45:00,3.75,,{UK}",  # guest checkout
]
# (expected reason, a token only that row holds, line). Invoices 9000xx appear nowhere else.
BAD = [
    ("invalid_utf8", "900001", f"900001,21730,CAF{NOT_UTF8} MUG,6,2010-12-01 09:00:00,4.25,17850.0,{UK}"),
    ("field_count_mismatch", "900002", f"900002,22752,BOXES,2,2010-12-01 09:02:00,7.65,17850.0,{UK},EXTRA"),
    ("field_count_mismatch", "900003", "900003,22752,BOXES,2,2010-12-01 09:02:00,7.65,17850.0"),
    ("field_count_mismatch", "900004", f"900004,22752,2,2010-12-01 09:02:00,7.65,17850.0,{UK}"),  # no Description
    ("missing_item", "900005", "900005,,MYSTERY ROW,1,2010-12-01 09:00:00,1.0,12583.0,France"),
    ("missing_invoice", "NOINVOICE", f",NOINVOICE,GLASS STAR,6,2010-12-01 09:00:00,4.25,17850.0,{UK}"),
    ("missing_description", "900007", f"900007,21731,,6,2010-12-01 09:00:00,1.65,17850.0,{UK}"),
    ("unparseable_timestamp", "900008", "900008,21731,RED TOADSTOOL,6,yesterday,1.65,17850.0,EIRE"),
    # Not the source's stated format (data.online_retail.timestamp_format): refused, never guessed.
    ("unparseable_timestamp", "900009", f"900009,21731,RED TOADSTOOL,6,1/12/2010 8:40,1.65,17850.0,{UK}"),
    ("timestamp_out_of_range", "900010", f"900010,21731,RED TOADSTOOL,6,2099-01-01 10:00:00,1.65,17850.0,{UK}"),
    ("timestamp_out_of_range", "900011", f"900011,21731,RED TOADSTOOL,6,1900-01-01 10:00:00,1.65,17850.0,{UK}"),
    ("non_numeric_quantity", "900012", f"900012,22752,BOXES,two,2010-12-01 09:02:00,7.65,17850.0,{UK}"),
    ("non_numeric_quantity", "900013", f"900013,22752,BOXES,NaN,2010-12-01 09:02:00,7.65,17850.0,{UK}"),
    ("zero_quantity", "900014", f"900014,22752,BOXES,0,2010-12-01 09:02:00,7.65,17850.0,{UK}"),
    ("fractional_quantity", "900015", f"900015,22752,BOXES,2.5,2010-12-01 09:02:00,7.65,17850.0,{UK}"),
    ("quantity_out_of_range", "900016", f"900016,22752,BOXES,1e12,2010-12-01 09:02:00,2.55,17850.0,{UK}"),
    # Not a cancellation invoice: it must not be netted against the 6 bought on 536365.
    ("negative_quantity_not_cancellation", "900017",
     f"900017,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-5,2010-12-01 10:00:00,2.55,17850.0,{UK}"),
    ("non_numeric_price", "900018", "900018,21754,BLOCK WORD,3,2010-12-01 09:09:00,n/a,15100.0,EIRE"),
    ("non_numeric_price", "900019", "900019,21754,BLOCK WORD,3,2010-12-01 09:09:00,Infinity,15100.0,EIRE"),
    ("negative_price", "900020", f"900020,B,Adjust bad debt,1,2011-08-12 14:50:00,-11062.06,12583.0,{UK}"),
    ("price_out_of_range", "900021", "900021,21754,BLOCK WORD,3,2010-12-01 09:09:00,2000000,15100.0,EIRE"),
    ("non_numeric_user", "900022", "900022,21754,BLOCK WORD,3,2010-12-01 09:09:00,5.95,abc,EIRE"),
]
# Reasons this corpus does not reach: fields the Online Retail preset does not require (guests are
# sales), and ambiguity, which an explicit timestamp_format rules out (`test_ambiguous_dates_...`).
NOT_IN_CORPUS = {"missing_user", "missing_country", "missing_category", "ambiguous_timestamp"}


def _write(path: Path, lines: list[str]) -> Path:
    content = "\n".join(lines) + "\n"
    path.write_bytes(content.encode("utf-8").replace(NOT_UTF8.encode(), b"\xe9"))
    return path


def _ingest(ctx, source: str, path: Path) -> dict:
    return ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", source, "--path", str(path)))


def _balanced(summary: dict) -> bool:
    return summary["records_read"] == (summary["header_lines"] + summary["rows_before_since"]
                                       + summary["bronze_rows_added"] + summary["rows_quarantined"]
                                       + summary["duplicates_skipped"])


def test_corpus_covers_every_reason_and_readme_lists_the_rules() -> None:
    assert {reason for reason, _, _ in BAD} == set(validation.REASONS) - NOT_IN_CORPUS
    assert validation.rules_table() in (REPO / "README.md").read_text(encoding="utf-8")


def test_bad_row_corpus(job_context, tmp_path: Path) -> None:
    # The header again halfway: two exports concatenated. Counted and reported, never stored.
    lines = [HEADER, *VALID_LINES[:4], *[line for _, _, line in BAD[:11]], HEADER, *VALID_LINES[4:],
             *[line for _, _, line in BAD[11:]]]
    corpus = _write(tmp_path / "corpus.csv", lines)
    ctx = job_context("ingest", "data.quarantine_max_share=1.0")
    summary = _ingest(ctx, "online_retail", corpus)

    expected = {}
    for reason, _, _ in BAD:
        expected[reason] = expected.get(reason, 0) + 1
    assert summary["quarantine_by_reason"] == expected
    assert (summary["header_lines"], summary["repeated_header_lines"]) == (2, 1)
    assert summary["records_read"] == 2 + len(VALID) + len(BAD)  # CSV records: the quoted newline is one
    assert (summary["bronze_rows_added"], summary["duplicates_skipped"]) == (len(VALID), 0)
    assert _balanced(summary), summary["records_balance"]

    bronze = ctx.lake.read(tables.BRONZE_TRANSACTIONS).collect()
    assert sorted((r["invoice"], r["item_raw"], r["description"]) for r in bronze) == sorted(VALID)
    quarantine = ctx.lake.read(tables.QUARANTINE).collect()
    assert len(quarantine) == len(BAD)
    for reason, token, _ in BAD:
        [row] = [q for q in quarantine if token in q["raw_line"]]
        assert row["reason"] == reason, token
    assert "\ufffd" in next(q["raw_line"] for q in quarantine if q["reason"] == "invalid_utf8")

    from seasonrec.features import jobs as features_jobs

    features_jobs.run(job_context("features"), job_args(features_jobs))
    silver = ctx.lake.read(tables.SILVER_INTERACTIONS)
    assert {r["invoice"] for r in silver.collect()} <= {invoice for invoice, _, _ in VALID}
    # 6 bought, 2 cancelled on C536370; the bad -5 (900017) was not netted.
    bought = silver.where("invoice = '536365'").agg(F.sum("quantity")).first()[0]
    assert bought == 4.0
    assert silver.agg(F.max("revenue")).first()[0] < 1000  # no 1e12 quantity
    calendar = ctx.lake.read(tables.CALENDAR).agg(F.min("date"), F.max("date")).first()
    assert calendar[0] >= dt.date(2000, 1, 1) and calendar[1] <= dt.date(2012, 12, 31)

    again = _ingest(ctx, "online_retail", corpus)  # a re-run adds nothing anywhere
    assert (again["bronze_rows_added"], again["quarantine_rows_added"]) == (0, 0)
    assert again["duplicates_skipped"] == len(VALID) and _balanced(again)


def test_ambiguous_dates_are_refused_unless_the_format_is_set(job_context, tmp_path: Path) -> None:
    rows = {"1/12/2010 8:40": None, "13/1/2011 8:40": dt.datetime(2011, 1, 13, 8, 40),
            "12/13/2010 8:40": dt.datetime(2010, 12, 13, 8, 40), "1/1/2011 8:40": dt.datetime(2011, 1, 1, 8, 40)}
    lines = [HEADER, *[f"9100{i},X{i},THING,1,{ts},1.0,17850.0,{UK}" for i, ts in enumerate(rows)]]
    path = _write(tmp_path / "slashes.csv", lines)
    ctx = job_context("ingest", "data.quarantine_max_share=1.0")
    summary = _ingest(ctx, "file", path)  # data.file has no timestamp_format by default
    assert summary["quarantine_by_reason"] == {"ambiguous_timestamp": 1}
    stored = {r["item_raw"]: r["ts"] for r in ctx.lake.read(tables.BRONZE_TRANSACTIONS).collect()}
    assert stored == {f"X{i}": ts for i, ts in enumerate(rows.values()) if ts is not None}

    day_first = job_context("ingest", "data.file.timestamp_format=d/M/yyyy H:mm", "data.quarantine_max_share=1.0",
                            f"paths.lake_root={tmp_path}/day_first")
    assert _ingest(day_first, "file", path)["quarantine_by_reason"] == {"unparseable_timestamp": 1}  # 12/13
    stored = {r["item_raw"]: r["ts"] for r in day_first.lake.read(tables.BRONZE_TRANSACTIONS).collect()}
    assert stored["X0"] == dt.datetime(2010, 12, 1, 8, 40)  # a UK retailer's 1 December, as stated


def test_same_transactions_through_two_sources_are_stored_once(job_context, tmp_path: Path) -> None:
    lines = [HEADER, *VALID_LINES, VALID_LINES[0]]  # the repeated line is a second real sale: kept twice
    path = _write(tmp_path / "export.csv", lines)
    copy = _write(tmp_path / "export_copy.csv", lines)
    # data.file with its defaults (UTC, default formats) and the Online Retail preset (UK time, stated
    # format): the key is the transaction as written, not the source (or zone) it came through.
    ctx = job_context("ingest")
    first = _ingest(ctx, "file", path)
    assert first["bronze_rows_added"] == len(VALID) + 1 and _balanced(first)
    for source, source_path in (("online_retail", path), ("online_retail", copy), ("file", copy)):
        again = _ingest(ctx, source, source_path)
        assert (again["bronze_rows_added"], again["duplicates_skipped"]) == (0, len(VALID) + 1), source
        assert _balanced(again)
    bronze = ctx.lake.read(tables.BRONZE_TRANSACTIONS)
    assert bronze.count() == len(VALID) + 1
    assert {r["source"] for r in bronze.select("source").distinct().collect()} == {"file"}
