"""Two ingests of one file at the same time (issue #20's concurrency bar), made deterministic in one
process: the other job's whole ingest runs while this job's first commit is staged, i.e. after this
job read bronze and before it commits. Real processes racing, ten times over, are in
`bench/bench_concurrency.py` (README, Delta tables: "Concurrent jobs").

Each row must be stored once, and each job's summary must say what its own commits did: the job that
lost the race added nothing (its valid rows are duplicates skipped). Before, the loser took the
table's growth for its own additions and both jobs reported every row added.
"""

from __future__ import annotations

from pathlib import Path

from seasonrec import tables
from seasonrec.data import jobs as ingest_jobs
from support import job_args

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
VALID = [f"5365{i:02d},2{i:04d},ITEM {i},{i % 5 + 1},2010-12-01 08:{i:02d}:00,2.55,178{i:02d}.0,United Kingdom"
         for i in range(20)]
BAD = ["900014,22752,BOXES,0,2010-12-01 09:02:00,7.65,17850.0,United Kingdom",  # zero_quantity
       "900022,21754,BLOCK WORD,3,2010-12-01 09:09:00,5.95,abc,EIRE"]  # non_numeric_user


def test_the_ingest_that_loses_the_race_stores_nothing_twice_and_reports_its_rows_as_skipped(
        job_context, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "export.csv"
    path.write_text("\n".join([HEADER, *VALID, *BAD]) + "\n", encoding="utf-8")
    args = job_args(ingest_jobs, "--source", "online_retail", "--path", str(path))
    # Two jobs on one lake (the same tmp_path), each with its own Lake object. 2 bad rows of 22: above
    # the default quarantine share.
    mine, other = (job_context("ingest", "data.quarantine_max_share=1.0") for _ in range(2))
    assert mine.lake.root == other.lake.root and mine.lake is not other.lake
    stage = mine.lake._rs_stage_files
    summaries: list[dict] = []

    def other_ingest_while_staging(*a, **kw):
        files = stage(*a, **kw)
        if not summaries:
            summaries.append(ingest_jobs.run(other, args))
        return files

    monkeypatch.setattr(mine.lake, "_rs_stage_files", other_ingest_while_staging)
    lost = ingest_jobs.run(mine, args)
    [won] = summaries

    assert (won["bronze_rows_added"], won["quarantine_rows_added"], won["duplicates_skipped"]) == (len(VALID),
                                                                                                   len(BAD), 0)
    assert (lost["bronze_rows_added"], lost["quarantine_rows_added"], lost["duplicates_skipped"]) == (
        0, 0, len(VALID))
    for summary in (won, lost):
        assert summary["records_read"] == (summary["header_lines"] + summary["bronze_rows_added"]
                                           + summary["rows_quarantined"] + summary["duplicates_skipped"])
        assert summary["bronze_rows_total"] == len(VALID)
    bronze = [r["row_hash"] for r in mine.lake.read(tables.BRONZE_TRANSACTIONS).select("row_hash").collect()]
    quarantine = [r["row_hash"] for r in mine.lake.read(tables.QUARANTINE).select("row_hash").collect()]
    assert (len(bronze), len(set(bronze)), len(quarantine), len(set(quarantine))) == (len(VALID),) * 2 + (len(BAD),) * 2
