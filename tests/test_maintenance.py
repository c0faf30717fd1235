"""`seasonrec maintain`: leftovers of killed writes go, committed rows stay, a no-op run commits nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from seasonrec import cli, tables
from seasonrec.lake import Lake
from support import REPO

DAY = dt.date(2011, 12, 1)


def _maintain(tmp_path: Path, *options: str, retention: int = 0) -> dict:
    """`seasonrec maintain` in-process (the session's Spark), as the CLI runs it; returns its summary."""
    code = cli.main(["maintain", "--conf", str(REPO / "conf" / "test.yaml"),
                     "--set", f"paths.lake_root={tmp_path}/lake", "--set", f"paths.report_dir={tmp_path}/reports",
                     "--set", f"maintenance.retention_hours={retention}", *options])
    assert code == 0
    runs = sorted((tmp_path / "reports" / "runs").glob("maintain-*.json"), key=os.path.getmtime)
    return json.loads(runs[-1].read_text())


def _items(spark, rows: list[tuple]):
    return spark.createDataFrame(rows, tables.spec(tables.SILVER_ITEMS).ddl)


def _recommendations(spark, users: list[str]):
    return spark.createDataFrame([(u, 1, "i1", 0.5, "Tin", "kitchen", 2.5, "re-buy", True, "v1", DAY, "r1")
                                  for u in users],
                                 tables.spec(tables.RECOMMENDATIONS).ddl)


def _data_files(table_dir: Path) -> set[str]:
    return {str(p.relative_to(table_dir)) for p in table_dir.rglob("*.parquet") if "_delta_log" not in p.parts}


def _rows(lake: Lake, name: str) -> list[tuple]:
    return sorted(tuple(r) for r in lake.read(name).collect())


def _plant_killed_write_leftovers(lake: Lake) -> dict[str, Path]:
    """What a kill -9 leaves: a data file moved into a table but never committed (in a partition folder
    too) and a staging folder of Spark output."""
    items_dir = Path(lake.path(tables.SILVER_ITEMS))
    committed = next(iter(sorted(items_dir.glob("*.parquet"))))
    orphan = items_dir / "part-00000-killed-before-commit.c000.snappy.parquet"
    shutil.copy(committed, orphan)
    recs_dir = Path(lake.path(tables.RECOMMENDATIONS))
    partition_file = next(iter(sorted(recs_dir.rglob("*.parquet"))))
    partition_orphan = partition_file.parent / "part-00001-killed-before-commit.c000.snappy.parquet"
    shutil.copy(partition_file, partition_orphan)
    staging = Path(lake.root) / "_staging" / f"{tables.SILVER_ITEMS}-0123456789abcdef"
    (staging / "event_month=2011-12").mkdir(parents=True)
    shutil.copy(committed, staging / "event_month=2011-12" / "part-00000.snappy.parquet")
    return {"orphan": orphan, "partition_orphan": partition_orphan, "staging": staging}


def test_maintain_removes_orphans_and_staging_keeps_rows_and_a_rerun_commits_nothing(
        spark, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lake = Lake(spark, str(tmp_path / "lake"))
    lake.write(_items(spark, [("i1", "RED MUG", "kitchen", 2.5)]), tables.SILVER_ITEMS)
    lake.write(_items(spark, [("i2", "BLUE MUG", "kitchen", 3.0)]), tables.SILVER_ITEMS, mode="append")
    lake.write(_recommendations(spark, ["u1", "u2"]), tables.RECOMMENDATIONS)
    leftovers = _plant_killed_write_leftovers(lake)
    items_before, recs_before = _rows(lake, tables.SILVER_ITEMS), _rows(lake, tables.RECOMMENDATIONS)
    versions_before = {name: lake.version(name) for name in (tables.SILVER_ITEMS, tables.RECOMMENDATIONS)}
    committed_files = _data_files(Path(lake.path(tables.SILVER_ITEMS))) - {leftovers["orphan"].name}

    with caplog.at_level(logging.INFO, logger="seasonrec"):
        summary = _maintain(tmp_path)

    assert not any(path.exists() for path in leftovers.values())
    assert summary["staging_removed"] == 1
    assert summary["tables"][tables.SILVER_ITEMS]["files_removed"] == 1
    assert summary["tables"][tables.RECOMMENDATIONS]["files_removed"] == 1
    assert set(summary["tables"]) == {tables.SILVER_ITEMS, tables.RECOMMENDATIONS}  # tables that exist only
    assert _data_files(Path(lake.path(tables.SILVER_ITEMS))) == committed_files  # committed files untouched
    assert _rows(lake, tables.SILVER_ITEMS) == items_before and _rows(lake, tables.RECOMMENDATIONS) == recs_before
    for name, before in versions_before.items():  # deleting files is logged, but changes no data
        added = [h["operation"] for h in lake.history(name) if h["version"] > before]
        assert set(added) <= {"VACUUM START", "VACUUM END"}, (name, added)
    lines = [r.getMessage() for r in caplog.records if "files removed" in r.getMessage()]
    assert len(lines) == 2 and any(f"{tables.SILVER_ITEMS}: 1 files removed, 0 compacted" in x for x in lines)

    versions = {name: lake.version(name) for name in versions_before}
    again = _maintain(tmp_path)  # nothing left to remove
    assert {name: lake.version(name) for name in versions} == versions  # a no-op run writes no commit
    assert again["files_removed"] == 0 and again["files_compacted"] == 0 and again["staging_removed"] == 0


def test_maintain_keeps_files_younger_than_the_retention_and_what_older_versions_need(spark, tmp_path: Path) -> None:
    lake = Lake(spark, str(tmp_path / "lake"))
    lake.write(_items(spark, [("i1", "RED MUG", "kitchen", 2.5)]), tables.SILVER_ITEMS)
    lake.write(_items(spark, [("i2", "BLUE MUG", "kitchen", 3.0)]), tables.SILVER_ITEMS)  # overwrite: v0 files unused
    leftovers = _plant_killed_write_leftovers_items_only(lake)
    version = lake.version(tables.SILVER_ITEMS)

    summary = _maintain(tmp_path, retention=168)  # a write running now is not disturbed

    assert all(path.exists() for path in leftovers.values()) and summary["files_removed"] == 0
    assert lake.version(tables.SILVER_ITEMS) == version
    assert [r["item_id"] for r in lake.read(tables.SILVER_ITEMS, version=0).collect()] == ["i1"]  # time travel

    old = (dt.datetime.now() - dt.timedelta(hours=200)).timestamp()
    for path in [leftovers["orphan"], *leftovers["staging"].rglob("*"), leftovers["staging"]]:
        os.utime(path, (old, old))
    summary = _maintain(tmp_path, retention=168)
    assert not leftovers["orphan"].exists() and not leftovers["staging"].exists()
    assert summary["files_removed"] == 1  # the stale orphan; v0's file left the log less than 168 h ago
    assert [r["item_id"] for r in lake.read(tables.SILVER_ITEMS).collect()] == ["i2"]
    assert [r["item_id"] for r in lake.read(tables.SILVER_ITEMS, version=0).collect()] == ["i1"]


def _plant_killed_write_leftovers_items_only(lake: Lake) -> dict[str, Path]:
    items_dir = Path(lake.path(tables.SILVER_ITEMS))
    committed = next(iter(sorted(items_dir.glob("*.parquet"))))
    orphan = items_dir / "part-00000-killed-before-commit.c000.snappy.parquet"
    shutil.copy(committed, orphan)
    staging = Path(lake.root) / "_staging" / f"{tables.SILVER_ITEMS}-fedcba9876543210"
    staging.mkdir(parents=True)
    shutil.copy(committed, staging / "part-00000.snappy.parquet")
    return {"orphan": orphan, "staging": staging}


def test_compact_rewrites_small_files_into_one_and_keeps_the_rows(spark, tmp_path: Path) -> None:
    lake = Lake(spark, str(tmp_path / "lake"))
    for n in range(4):  # four appends: four small files in one partition
        lake.write(_recommendations(spark, [f"u{n}"]), tables.RECOMMENDATIONS, mode="append")
    table_dir = Path(lake.path(tables.RECOMMENDATIONS))
    before = _rows(lake, tables.RECOMMENDATIONS)
    assert len(_data_files(table_dir)) == 4

    summary = _maintain(tmp_path, "--compact")

    done = summary["tables"][tables.RECOMMENDATIONS]
    assert done["files_compacted"] == 4 and done["files_written"] == 1
    assert done["files_removed"] == 4  # retention 0: the replaced small files are deleted in the same run
    assert len(_data_files(table_dir)) == 1
    assert _rows(lake, tables.RECOMMENDATIONS) == before
    versions = lake.version(tables.RECOMMENDATIONS)
    _maintain(tmp_path, "--compact")
    assert lake.version(tables.RECOMMENDATIONS) == versions


def test_maintain_is_a_cli_job_outside_the_pipeline() -> None:
    assert "maintain" in cli.JOBS and "maintain" not in cli.PIPELINE
    help_text = cli.build_parser(only="maintain").format_help()
    assert "maintain" in help_text
    assert (REPO / "jobs" / "maintain.py").is_file()
    assert "\nmaintain: setup" in (REPO / "Makefile").read_text()


def test_retention_is_validated() -> None:
    from seasonrec.config import ConfigError, load_config

    assert load_config(REPO / "conf" / "cluster.yaml").maintenance.retention_hours == 168
    with pytest.raises(ConfigError, match=r"maintenance\.retention_hours.*greater than or equal to 0"):
        load_config(REPO / "conf" / "test.yaml", ["maintenance.retention_hours=-1"])
