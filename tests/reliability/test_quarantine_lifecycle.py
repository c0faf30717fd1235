"""The quarantine lifecycle through the real `seasonrec ingest` job: a refused row stays in quarantine
until a later ingest brings a valid row with the same business key (row_hash); then it is marked
resolved (resolved_at, resolved_by_run = that run's id), never deleted. A quarantine table written
before the lifecycle columns existed is migrated (nullable columns added) and resolved the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from seasonrec import tables
from seasonrec.data import jobs as ingest_jobs
from support import job_args

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
UK = "United Kingdom"
GOOD = [f"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,{UK}",
        f"536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,2010-12-01 08:34:00,1.69,13047.0,{UK}",
        f"536370,22728,ALARM CLOCK BAKELIKE PINK,24,2010-12-01 08:45:00,3.75,,{UK}"]
# Refused in the first file, by the token only that row holds: (reason, token, line as first sent).
BROKEN = {
    "no_description": ("missing_description", "900101", f"900101,21731,,6,2010-12-01 09:00:00,1.65,17850.0,{UK}"),
    "bad_bytes": ("invalid_utf8", "900102", f"900102,21730,CAF\xe9 MUG,6,2010-12-01 09:01:00,4.25,13047.0,{UK}"),
    "quantity_text": ("non_numeric_quantity", "900103",
                      f"900103,22752,BOXES,two,2010-12-01 09:02:00,7.65,17850.0,{UK}"),
    "never_fixed": ("missing_item", "900104", "900104,,MYSTERY ROW,1,2010-12-01 09:03:00,1.0,12583.0,France"),
}
# The corrections sent later. A fix outside the key fields (description, encoding) is the same line, so
# it resolves; a fixed quantity is another line (another business key): its quarantine row stays open.
FIXED = {
    "no_description": f"900101,21731,RED TOADSTOOL LED NIGHT LIGHT,6,2010-12-01 09:00:00,1.65,17850.0,{UK}",
    "bad_bytes": f"900102,21730,CAFE MUG,6,2010-12-01 09:01:00,4.25,13047.0,{UK}",
    "quantity_text": f"900103,22752,BOXES,2,2010-12-01 09:02:00,7.65,17850.0,{UK}",
}
RESOLVED_BY_FIX = {"no_description", "bad_bytes"}
SETTINGS = ("data.quarantine_max_share=1.0",)


def _write(path: Path, lines: list[str]) -> Path:
    # Latin-1 on purpose: the one non-ASCII character (é) is then not UTF-8.
    path.write_bytes("\n".join([HEADER, *lines, ""]).encode("latin-1"))
    return path


def _ingest(job_context, path: Path, *overrides: str) -> tuple[dict, str, object]:
    """One run of the ingest job (its own run id); returns (summary, run id, lake)."""
    ctx = job_context("ingest", *SETTINGS, *overrides)
    return ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "online_retail", "--path", str(path))), \
        ctx.run_id, ctx.lake


def _quarantine(lake) -> dict[str, dict]:
    """Quarantine rows by the broken row's name (its token), every column."""
    rows = [r.asDict() for r in lake.read(tables.QUARANTINE).collect()]
    out = {}
    for name, (_, token, _) in BROKEN.items():
        [row] = [r for r in rows if token in r["raw_line"]]
        out[name] = row
    assert len(rows) == len(BROKEN)
    return out


def _check_resolved(lake, run_id: str, first_ingest_at) -> None:
    rows = _quarantine(lake)
    for name, row in rows.items():
        assert row["reason"] == BROKEN[name][0], name  # reason and raw line kept for audit
        if name in RESOLVED_BY_FIX:
            assert row["resolved_by_run"] == run_id, name
            assert row["resolved_at"] is not None and row["resolved_at"] > first_ingest_at, name
        else:
            assert (row["resolved_at"], row["resolved_by_run"]) == (None, None), name
    bronze = {r["invoice"]: r["description"] for r in lake.read(tables.BRONZE_TRANSACTIONS).collect()}
    assert bronze["900101"] == "RED TOADSTOOL LED NIGHT LIGHT" and bronze["900102"] == "CAFE MUG"
    assert "900103" in bronze and "900104" not in bronze


def test_a_later_valid_row_resolves_its_quarantine_row_and_reruns_change_nothing(job_context, tmp_path: Path) -> None:
    first = _write(tmp_path / "first.csv", [*GOOD, *[line for _, _, line in BROKEN.values()]])
    summary, _, lake = _ingest(job_context, first)
    assert summary["rows_quarantined"] == len(BROKEN) and summary["quarantine_rows_resolved"] == 0
    opened = _quarantine(lake)
    assert all(r["resolved_at"] is None and r["resolved_by_run"] is None for r in opened.values())
    first_at = max(r["ingested_at"] for r in opened.values())

    fixes = _write(tmp_path / "fixes.csv", [*FIXED.values(), GOOD[0]])  # GOOD[0]: a re-delivered line
    summary, fixing_run, lake = _ingest(job_context, fixes)
    assert summary["quarantine_rows_resolved"] == len(RESOLVED_BY_FIX)
    assert (summary["bronze_rows_added"], summary["duplicates_skipped"]) == (len(FIXED), 1)
    _check_resolved(lake, fixing_run, first_at)

    # The fixes again, then the broken file again: nothing is resolved twice, re-opened or duplicated.
    again, _, lake = _ingest(job_context, fixes)
    assert again["quarantine_rows_resolved"] == 0
    _check_resolved(lake, fixing_run, first_at)
    broken_again, _, lake = _ingest(job_context, first)
    assert (broken_again["quarantine_rows_added"], broken_again["quarantine_rows_resolved"]) == (0, 0)
    _check_resolved(lake, fixing_run, first_at)


def test_a_quarantine_table_from_before_the_lifecycle_is_migrated_then_resolved(job_context, tmp_path: Path) -> None:
    first = _write(tmp_path / "first.csv", [*GOOD, *[line for _, _, line in BROKEN.values()]])
    _, _, lake = _ingest(job_context, first)
    # The same quarantine rows as a lake written before resolved_at/resolved_by_run were declared holds.
    old = lake.read(tables.QUARANTINE).drop("resolved_at", "resolved_by_run")
    lake.write(old, "quarantine_before_lifecycle")  # an unregistered name: any shape is allowed
    shutil.rmtree(lake.path(tables.QUARANTINE))
    shutil.move(lake.path("quarantine_before_lifecycle"), lake.path(tables.QUARANTINE))
    assert "resolved_at" not in lake.columns(tables.QUARANTINE)
    first_at = max(r["ingested_at"] for r in lake.read(tables.QUARANTINE).collect())
    old_version = lake.version(tables.QUARANTINE)

    summary, fixing_run, lake = _ingest(job_context, _write(tmp_path / "fixes.csv", list(FIXED.values())))

    assert summary["quarantine_rows_resolved"] == len(RESOLVED_BY_FIX)
    assert lake.columns(tables.QUARANTINE) == list(tables.spec(tables.QUARANTINE).column_names)
    operations = [h["operation"] for h in lake.history(tables.QUARANTINE) if h["version"] > old_version]
    assert operations.count("ADD COLUMN") == 1, operations  # one schema-only commit, then the resolution
    _check_resolved(lake, fixing_run, first_at)
