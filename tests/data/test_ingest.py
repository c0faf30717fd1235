"""Ingest: quarantine with exact reasons, idempotent merges, threshold failure, column mapping."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from seasonrec import tables
from seasonrec.context import JobError
from seasonrec.data import jobs as ingest_jobs
from support import job_args

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
GOOD = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    '536366,22633,"HAND WARMER, UNION JACK",6,2011-07-01 10:00:00,1.85,17850.0,United Kingdom',
    "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-02 09:41:00,2.55,17850.0,United Kingdom",
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,2010-12-01 08:34:00,1.69,13047.0,United Kingdom",
    # An exact duplicate line is a second real transaction line, not a re-delivery: both are kept.
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,2010-12-01 08:34:00,1.69,13047.0,United Kingdom",
    "536368,POST,POSTAGE,1,2010-12-01 08:40:00,18.0,12583.0,France",
    # A guest checkout (no CustomerID) is a real sale: bronze keeps it with user_raw null.
    "536370,22728,ALARM CLOCK BAKELIKE PINK,24,2010-12-01 08:45:00,3.75,,United Kingdom",
]
BAD = {
    "missing_item": ["536371,,MYSTERY ROW,1,2010-12-01 09:00:00,1.0,12583.0,France"],
    "unparseable_timestamp": ["536372,21730,GLASS STAR FROSTED T-LIGHT HOLDER,6,yesterday,4.25,17850.0,EIRE",
                              "536372,21731,RED TOADSTOOL LED NIGHT LIGHT,6,2010-13-45 99:00:00,1.65,17850.0,EIRE"],
    "non_numeric_quantity": ["536373,22752,SET 7 BABUSHKA NESTING BOXES,two,2010-12-01 09:02:00,7.65,17850.0,EIRE"],
    "non_numeric_price": ["536374,21754,HOME BUILDING BLOCK WORD,3,2010-12-01 09:09:00,n/a,15100.0,EIRE"],
    "negative_price": ["A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,-11062.06,12583.0,United Kingdom"],
}


def _write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_quarantine_counts_exact_and_good_rows_all_present(job_context, tmp_path: Path) -> None:
    bad_lines = [line for lines in BAD.values() for line in lines]
    source = _write_csv(tmp_path / "mixed.csv", GOOD + bad_lines)
    ctx = job_context("ingest", "data.quarantine_max_share=0.9", "data.file.timezone=Europe/London")
    summary = ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "file", "--path", str(source)))

    assert summary["rows_in"] == len(GOOD) + len(bad_lines)
    assert summary["quarantine_by_reason"] == {reason: len(lines) for reason, lines in BAD.items()}
    assert summary["bronze_rows_added"] == len(GOOD)

    bronze = ctx.lake.read(tables.BRONZE_TRANSACTIONS)
    rows = bronze.collect()
    assert len(rows) == len(GOOD)
    assert {r["user_raw"] for r in rows} == {"17850", "13047", "12583", None}  # '17850.0' normalized
    assert [r["item_raw"] for r in rows if r["user_raw"] is None] == ["22728"]
    assert sorted(r["quantity"] for r in rows if r["invoice"].startswith("C")) == [-2.0]  # kept, netted in silver
    assert [r["description"] for r in rows if r["item_raw"] == "22633"] == ["HAND WARMER, UNION JACK"]
    # UK local time -> UTC: BST in July is UTC+1, GMT in December is UTC+0.
    by_item = {r["item_raw"]: r["ts"] for r in rows}
    assert by_item["22633"] == dt.datetime(2011, 7, 1, 9, 0)
    assert by_item["85123A"] in (dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2010, 12, 2, 9, 41))
    assert len({r["row_hash"] for r in rows}) == len(GOOD)

    quarantine = ctx.lake.read(tables.QUARANTINE).collect()
    assert sorted((q["reason"], q["raw_line"]) for q in quarantine) == sorted(
        (reason, line) for reason, lines in BAD.items() for line in lines)
    assert all(q["source_file"].endswith("mixed.csv") for q in quarantine)

    # Re-running on the same input adds nothing anywhere.
    again = ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "file", "--path", str(source)))
    assert again["bronze_rows_added"] == 0
    assert ctx.lake.read(tables.BRONZE_TRANSACTIONS).count() == len(GOOD)
    assert ctx.lake.read(tables.QUARANTINE).count() == len(bad_lines)


def test_too_many_bad_rows_fails_and_writes_nothing(job_context, tmp_path: Path) -> None:
    source = _write_csv(tmp_path / "bad.csv", GOOD[:2] + BAD["missing_item"] + BAD["non_numeric_price"])
    ctx = job_context("ingest", "data.quarantine_max_share=0.3")
    with pytest.raises(JobError, match=r"2 of 4 rows .*missing_item"):
        ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "file", "--path", str(source)))
    assert not ctx.lake.exists(tables.BRONZE_TRANSACTIONS)


def test_json_source_through_column_mapping_and_since(job_context, tmp_path: Path) -> None:
    records = [
        {"cust": "a", "sku": "X1", "when": "2011-03-01T10:00:00", "qty": 2, "unit": 3.5, "cat": "toys"},
        {"cust": "b", "sku": "X2", "when": "2011-05-01T10:00:00", "qty": 1, "unit": 1.0, "cat": "kitchen"},
        {"cust": "c", "sku": "X3", "when": "2011-06-01T10:00:00", "qty": "many", "unit": 1.0, "cat": "kitchen"},
        {"cust": "d", "sku": "X4", "when": "2010-01-01T10:00:00", "qty": "many", "unit": 1.0, "cat": "kitchen"},
    ]
    path = tmp_path / "tx.json"
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    mapping = json.dumps({"user": "cust", "item": "sku", "timestamp": "when", "quantity": "qty", "price": "unit",
                          "category": "cat"})
    ctx = job_context("ingest", "data.file.format=json", f"data.file.columns={mapping}",
                      "data.quarantine_max_share=0.5")
    summary = ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "file", "--path", str(path),
                                             "--since", "2011-04-01"))
    # --since drops rows before the date (the bad 2010 row included), keeps bad rows after it.
    assert summary["rows_in"] == 2
    assert summary["quarantine_by_reason"] == {"non_numeric_quantity": 1}
    row = ctx.lake.read(tables.BRONZE_TRANSACTIONS).collect()
    assert [(r["user_raw"], r["item_raw"], r["category"], r["quantity"]) for r in row] == [("b", "X2", "kitchen", 1.0)]
    raw = ctx.lake.read(tables.QUARANTINE).collect()[0]["raw_line"]
    assert json.loads(raw)["qty"] == "many"


def test_missing_mapped_column_names_it(job_context, tmp_path: Path) -> None:
    source = tmp_path / "other.csv"
    source.write_text("a,b\n1,2\n", encoding="utf-8")
    ctx = job_context("ingest")
    with pytest.raises(JobError, match="CustomerID"):
        ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "file", "--path", str(source)))


def test_guest_checkouts_count_for_items_but_never_become_users(job_context, tmp_path: Path) -> None:
    """A row without CustomerID is a sale: silver keeps it (user_id null) and item popularity counts it;
    user features and training examples, which need a user, never see it."""
    from pyspark.sql import functions as F

    from seasonrec.features import jobs as features_jobs

    guest = "536380,84879,ASSORTED COLOUR BIRD ORNAMENT,5,2011-07-02 10:00:00,1.69,,United Kingdom"
    source = _write_csv(tmp_path / "guests.csv", GOOD + [guest])
    ctx = job_context("ingest", "data.file.timezone=Europe/London")
    ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "file", "--path", str(source)))
    summary = features_jobs.run(ctx, job_args(features_jobs))
    assert summary["rows"]["silver_guest_rows"] == 2  # 22728 and 84879 bought by guests
    silver = ctx.lake.read(tables.SILVER_INTERACTIONS)
    assert silver.where(F.col("user_id").isNull()).count() == 2
    items = {r["item_id"]: r["n_purchases"] for r in ctx.lake.read(tables.ITEM_FEATURES).collect()}
    assert items["84879"] == 3 and items["22728"] == 1  # two known-user lines + one guest line; guest only
    for name in (tables.USER_FEATURES, tables.TRAINING_EXAMPLES):
        assert ctx.lake.read(name).where(F.col("user_id").isNull()).count() == 0, name
