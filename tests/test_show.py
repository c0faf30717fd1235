"""`seasonrec show`: any registered table as an aligned text table, read through the lake (real Spark + Delta)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from seasonrec import cli, tables
from seasonrec.context import JobError
from seasonrec.show import TableRows, format_table, read_rows, show
from support import REPO, as_table


def _items(spark, lake) -> None:
    items = pd.DataFrame({"item_id": ["I3", "I1", "I2", "I4"],
                          "title": ["BLUE MUG", "RED HEART LANTERN", "PAPER\nCHAIN", None],
                          "category": ["kitchen", "decor", "party", "decor"],
                          "price": [2.5, 12.3456789, 0.85, 1000.0]})
    lake.write(as_table(spark.createDataFrame(items), tables.SILVER_ITEMS), tables.SILVER_ITEMS)


def test_prints_an_aligned_table_ordered_by_the_keys(spark, tmp_lake) -> None:
    _items(spark, tmp_lake)
    lines = show(tmp_lake, tables.SILVER_ITEMS, limit=3).splitlines()
    assert lines[0].split() == ["item_id", "title", "category", "price"]
    assert set(lines[1].replace("  ", "")) == {"-"}
    assert [line.split()[0] for line in lines[2:5]] == ["I1", "I2", "I3"]  # ordered by the key item_id
    assert lines[2].split()[-1] == "12.3457" and lines[3].split()[-1] == "0.85" and lines[4].split()[-1] == "2.5"
    assert "PAPER CHAIN" in lines[3]  # a line break inside a value does not break the table
    price_ends = {len(line) for line in lines[2:5]}
    assert len(price_ends) == 1  # numbers right-aligned: every row ends in the same column
    assert lines[2].index("decor") == lines[0].index("category") == lines[3].index("party")
    assert lines[-1] == "(3 rows of silver_items; more match, raise --limit)"


def test_where_columns_and_null(spark, tmp_lake) -> None:
    _items(spark, tmp_lake)
    found = read_rows(tmp_lake, tables.SILVER_ITEMS, where="category = 'decor'", columns=["price", "title"])
    assert found.columns == ["price", "title"] and found.rows == [(12.3456789, "RED HEART LANTERN"), (1000.0, None)]
    text = format_table(found)
    assert text.splitlines()[-2].split() == ["1000", "null"] and text.endswith("(2 rows of silver_items)")
    with pytest.raises(JobError, match=r"unknown column\(s\) \['colour'\] in silver_items; columns: item_id"):
        read_rows(tmp_lake, tables.SILVER_ITEMS, columns=["colour"])
    with pytest.raises(JobError, match="--where 'colour = 1' does not apply to silver_items"):
        read_rows(tmp_lake, tables.SILVER_ITEMS, where="colour = 1")


def test_cells_for_arrays_dates_and_long_text() -> None:
    found = TableRows("t", ["ids", "day", "note"], ["array<int>", "date", "string"],
                      [([1, 2, 3, 4, 5, 6, 7], dt.date(2011, 9, 1), "x" * 80)], False)
    row = format_table(found, max_width=22).splitlines()[2]
    assert row.startswith("[1, 2, 3, 4, 5, … +2]  2011-09-01  " + "x" * 21 + "…")


def test_cli_prints_only_the_table_and_refuses_unknown_names(spark, tmp_lake, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _items(spark, tmp_lake)
    base = ["--conf", str(REPO / "conf" / "test.yaml"), "--set", f"paths.lake_root={tmp_lake.root}",
            "--set", f"paths.report_dir={tmp_path}/reports"]
    assert cli.main(["show", tables.SILVER_ITEMS, *base, "--limit", "2", "--columns", "item_id,title"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["item_id", "title"] and out[2].split() == ["I1", "RED", "HEART", "LANTERN"]
    assert out[-1] == "(2 rows of silver_items; more match, raise --limit)" and len(out) == 5  # no JSON summary
    assert not (tmp_path / "reports" / "runs").exists()

    assert cli.main(["show", "recomendations", *base]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [f"seasonrec show: error: unknown table 'recomendations'; tables: {', '.join(sorted(tables.TABLES))}"]
    assert cli.main(["show", tables.RECOMMENDATIONS, *base]) == 1  # registered, not written yet
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("seasonrec show: error: table 'recommendations' does not exist under")
    assert "show" not in cli.PIPELINE
