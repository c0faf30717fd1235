"""The lake module against real Spark and real Delta tables (delta-rs commit engine locally)."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time

import pytest
from deltalake import DeltaTable, QueryBuilder
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType

from seasonrec.lake import Lake, LakeError

SCHEMA = "id long, name string, day date, amount double, ts timestamp"


def _rows(spark, rows):
    return spark.createDataFrame(rows, SCHEMA)


def _ids(df) -> list[int]:
    return sorted(r["id"] for r in df.select("id").collect())


def _delta_rs_count(path: str) -> int:
    table = DeltaTable(path)
    result = QueryBuilder().register("t", table).execute("select count(*) as n from t").read_all()
    return int(result.to_pydict()["n"][0]) if hasattr(result, "to_pydict") else int(list(result["n"])[0].as_py())


def test_overwrite_append_time_travel(spark, tmp_lake: Lake) -> None:
    d = dt.date(2011, 1, 1)
    v0 = tmp_lake.write(_rows(spark, [(1, "a", d, 1.0, None), (2, "b", d, 2.0, None)]), "t")
    v1 = tmp_lake.write(_rows(spark, [(3, "c", d, 3.0, None)]), "t", mode="append")
    v2 = tmp_lake.write(_rows(spark, [(9, "z", d, 9.0, None)]), "t", mode="overwrite")
    assert (v0, v1, v2) == (0, 1, 2)
    assert _ids(tmp_lake.read("t")) == [9]
    assert _ids(tmp_lake.read("t", version=1)) == [1, 2, 3]
    assert _ids(tmp_lake.read("t", version=0)) == [1, 2]
    assert [h["version"] for h in tmp_lake.history("t")] == [2, 1, 0]
    # The log is valid for an independent Delta reader.
    table = DeltaTable(tmp_lake.path("t"))
    assert table.version() == 2
    assert [f.name for f in table.schema().fields] == ["id", "name", "day", "amount", "ts"]
    assert DeltaTable(tmp_lake.path("t"), version=1).version() == 1


def test_timestamp_time_travel(spark, tmp_lake: Lake) -> None:
    d = dt.date(2011, 1, 1)
    tmp_lake.write(_rows(spark, [(1, "a", d, 1.0, None)]), "t")
    time.sleep(1.1)
    between = dt.datetime.now(dt.UTC)
    time.sleep(1.1)
    tmp_lake.write(_rows(spark, [(2, "b", d, 2.0, None)]), "t", mode="append")
    assert _ids(tmp_lake.read("t", timestamp=between)) == [1]
    assert _ids(tmp_lake.read("t")) == [1, 2]


def test_merge_updates_and_inserts_and_is_idempotent(spark, tmp_lake: Lake) -> None:
    d = dt.date(2011, 1, 1)
    tmp_lake.write(_rows(spark, [(1, "a", d, 1.0, None), (2, "b", d, 2.0, None)]), "t")
    source = _rows(spark, [(2, "B", d, 20.0, None), (3, "c", d, 3.0, None), (3, "c", d, 3.0, None)])
    tmp_lake.merge(source, "t", keys=["id"])
    tmp_lake.merge(source, "t", keys=["id"])
    got = {r["id"]: (r["name"], r["amount"]) for r in tmp_lake.read("t").collect()}
    assert got == {1: ("a", 1.0), 2: ("B", 20.0), 3: ("c", 3.0)}
    # insert-only merge keeps matched rows as they are
    tmp_lake.merge(_rows(spark, [(1, "X", d, 0.0, None), (4, "d", d, 4.0, None)]), "t", keys=["id"],
                   when_matched="ignore")
    got = {r["id"]: r["name"] for r in tmp_lake.read("t").collect()}
    assert got == {1: "a", 2: "B", 3: "c", 4: "d"}
    assert _delta_rs_count(tmp_lake.path("t")) == 4


def test_partition_replace_only_touches_covered_partitions(spark, tmp_lake: Lake) -> None:
    d1, d2 = dt.date(2011, 11, 1), dt.date(2011, 11, 2)
    tmp_lake.write(_rows(spark, [(1, "a", d1, 1.0, None), (2, "b", d2, 2.0, None)]), "p", partition_by=["day"])
    tmp_lake.write(_rows(spark, [(3, "c", d2, 3.0, None)]), "p", replace_partitions=True)
    tmp_lake.write(_rows(spark, [(3, "c", d2, 3.0, None)]), "p", replace_partitions=True)  # re-run: same result
    assert _ids(tmp_lake.read("p")) == [1, 3]
    assert DeltaTable(tmp_lake.path("p")).metadata().partition_columns == ["day"]
    assert os.path.isdir(os.path.join(tmp_lake.path("p"), "day=2011-11-01"))


def test_failed_write_leaves_previous_version(spark, tmp_lake: Lake) -> None:
    d = dt.date(2011, 1, 1)
    tmp_lake.write(_rows(spark, [(1, "a", d, 1.0, None), (2, "b", d, 2.0, None)]), "t")

    @F.udf(DoubleType())
    def explode_on_two(value: float) -> float:
        if value == 2.0:
            raise ValueError("boom in the middle of the write")
        return value

    failing = _rows(spark, [(i, "x", d, float(i), None) for i in range(5)]).repartition(3)
    failing = failing.withColumn("amount", explode_on_two("amount"))
    with pytest.raises(Exception, match="boom"):
        tmp_lake.write(failing, "t", mode="overwrite")
    with pytest.raises(Exception, match="boom"):
        tmp_lake.merge(failing, "t", keys=["id"])
    assert tmp_lake.version("t") == 0
    assert _ids(tmp_lake.read("t")) == [1, 2]
    assert _delta_rs_count(tmp_lake.path("t")) == 2


def test_concurrent_appends_keep_every_row(spark, tmp_lake: Lake) -> None:
    d = dt.date(2011, 1, 1)
    tmp_lake.write(_rows(spark, [(0, "seed", d, 0.0, None)]), "t")
    errors: list[BaseException] = []

    def append(start: int) -> None:
        try:
            for i in range(start, start + 3):
                tmp_lake.write(_rows(spark, [(i, "x", d, 1.0, None)]), "t", mode="append")
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(s,)) for s in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert _ids(tmp_lake.read("t")) == [0, 100, 101, 102, 200, 201, 202]
    assert tmp_lake.version("t") == 6


def _while_staging(lake: Lake, monkeypatch: pytest.MonkeyPatch, other_write) -> None:
    """Run ``other_write`` (a real commit through the lake) while the next write stages its files, i.e.
    after it read the table and before it commits: the race two jobs hit, made deterministic."""
    stage = lake._rs_stage_files
    fired: list[bool] = []

    def staging_then_other(*args, **kwargs):
        files = stage(*args, **kwargs)
        if not fired:
            fired.append(True)
            other_write()
        return files

    monkeypatch.setattr(lake, "_rs_stage_files", staging_then_other)


def _parquet_files(path: str) -> set[str]:
    return {os.path.relpath(os.path.join(folder, f), path) for folder, _, files in os.walk(path)
            for f in files if f.endswith(".parquet")}


@pytest.mark.parametrize("when_matched", ["ignore", "update"])
def test_merge_racing_another_merge_of_the_same_rows_stores_them_once(spark, tmp_lake: Lake, monkeypatch,
                                                                     when_matched) -> None:
    """Issue #20: two ingests of one new file at once used to leave every row twice (anti-join + blind
    append). The loser of the race now merges again against the winner's version."""
    d = dt.date(2011, 1, 1)
    tmp_lake.write(_rows(spark, [(1, "a", d, 1.0, None)]), "t")
    batch = _rows(spark, [(2, "b", d, 2.0, None), (3, "c", d, 3.0, None)])
    _while_staging(tmp_lake, monkeypatch, lambda: Lake(spark, tmp_lake.root).merge(batch, "t", ["id"], when_matched))
    tmp_lake.merge(batch, "t", ["id"], when_matched)
    assert _ids(tmp_lake.read("t")) == [1, 2, 3]
    assert _delta_rs_count(tmp_lake.path("t")) == 3
    assert tmp_lake.version("t") == 2  # the other merge, then this one's retry (no lost or doubled commit)
    path = tmp_lake.path("t")
    referenced = {os.path.relpath(uri.removeprefix("file://"), path)
                  for v in range(3) for uri in DeltaTable(path, version=v).file_uris()}
    assert _parquet_files(path) == referenced  # the losing attempt's files were deleted


def test_merge_counted_says_what_its_own_commit_inserted_when_it_loses_the_race(spark, tmp_lake: Lake,
                                                                                monkeypatch) -> None:
    """A job's "rows added" must be its commit's, not the table's growth: the merge that lost the race
    (creation, then insert) found every row there and inserted none, though the table grew meanwhile."""
    d = dt.date(2011, 1, 1)
    batch = _rows(spark, [(1, "a", d, 1.0, None), (2, "b", d, 2.0, None), (2, "b", d, 2.0, None)])
    won = []
    _while_staging(tmp_lake, monkeypatch, lambda: won.append(Lake(spark, tmp_lake.root).merge_counted(
        batch, "t", ["id"], when_matched="ignore")))
    lost = tmp_lake.merge_counted(batch, "t", ["id"], when_matched="ignore")
    assert (won[0].version, won[0].rows_inserted) == (0, 2)  # created the table: every distinct key
    assert (lost.version, lost.rows_inserted) == (1, 0)
    more = tmp_lake.merge_counted(_rows(spark, [(2, "b", d, 2.0, None), (3, "c", d, 3.0, None)]), "t", ["id"],
                                  when_matched="ignore")
    assert more.rows_inserted == 1 and tmp_lake.merge(batch, "t", ["id"], when_matched="ignore") == 3
    assert _ids(tmp_lake.read("t")) == [1, 2, 3]


def test_two_jobs_creating_one_table_both_commit(spark, tmp_lake: Lake, monkeypatch) -> None:
    """Issue #20: the second creator failed with "A Delta Lake table already exists" and lost its
    results; it now commits on top (an overwrite wins as the later version, a merge merges)."""
    d = dt.date(2011, 1, 1)
    first, second = _rows(spark, [(1, "a", d, 1.0, None)]), _rows(spark, [(2, "b", d, 2.0, None)])
    _while_staging(tmp_lake, monkeypatch, lambda: Lake(spark, tmp_lake.root).write(first, "t"))
    assert tmp_lake.write(second, "t") == 1
    assert _ids(tmp_lake.read("t")) == [2] and _ids(tmp_lake.read("t", version=0)) == [1]

    _while_staging(tmp_lake, monkeypatch, lambda: Lake(spark, tmp_lake.root).merge(first, "m", ["id"]))
    tmp_lake.merge(_rows(spark, [(1, "a", d, 1.0, None), (2, "b", d, 2.0, None)]), "m", ["id"])
    assert _ids(tmp_lake.read("m")) == [1, 2]


def test_threads_merging_the_same_rows_store_them_once(spark, tmp_lake: Lake) -> None:
    d = dt.date(2011, 1, 1)
    tmp_lake.write(_rows(spark, [(0, "seed", d, 0.0, None)]), "t")
    batch = _rows(spark, [(i, "x", d, 1.0, None) for i in range(1, 6)])
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            for _ in range(3):
                tmp_lake.merge(batch, "t", keys=["id"], when_matched="ignore")
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=ingest) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert _ids(tmp_lake.read("t")) == [0, 1, 2, 3, 4, 5]


def test_vacuum_removes_unreferenced_files(spark, tmp_lake: Lake) -> None:
    d = dt.date(2011, 1, 1)
    tmp_lake.write(_rows(spark, [(1, "a", d, 1.0, None)]), "t")
    tmp_lake.write(_rows(spark, [(2, "b", d, 2.0, None)]), "t")
    removed = tmp_lake.vacuum("t", retention_hours=0)
    assert removed, "the overwritten version's files should be vacuumed"
    assert _ids(tmp_lake.read("t")) == [2]


def test_missing_table_and_bad_mode_are_clear(spark, tmp_lake: Lake) -> None:
    with pytest.raises(LakeError, match="does not exist"):
        tmp_lake.read("nope")
    with pytest.raises(LakeError, match="allowed: overwrite, append"):
        tmp_lake.write(_rows(spark, []), "t", mode="upsert")  # type: ignore[arg-type]


def test_empty_table_reads_with_schema(spark, tmp_lake: Lake) -> None:
    tmp_lake.write(_rows(spark, []), "empty")
    df = tmp_lake.read("empty")
    assert df.count() == 0
    assert df.columns == ["id", "name", "day", "amount", "ts"]


def test_registered_tables_are_checked_partitioned_and_described(spark, tmp_lake: Lake) -> None:
    from seasonrec import tables

    items = tables.spec(tables.SILVER_ITEMS)
    good = spark.createDataFrame([("i1", "RED MUG", "kitchen", 2.5)], items.ddl)
    assert tmp_lake.write(good, tables.SILVER_ITEMS) == 0
    metadata = DeltaTable(tmp_lake.path(tables.SILVER_ITEMS)).metadata()
    assert metadata.description == items.comment and metadata.name == tables.SILVER_ITEMS

    wrong = spark.createDataFrame([("i1", "RED MUG", "kitchen", "2.5", 1)], "item_id string, title string, "
                                  "category string, price string, extra int")
    with pytest.raises(LakeError, match=r"silver_items.*unexpected \['extra'\].*price is string, declared double"):
        tmp_lake.write(wrong, tables.SILVER_ITEMS)
    with pytest.raises(LakeError, match=r"missing \['price'\]"):
        tmp_lake.write(good.drop("price"), tables.SILVER_ITEMS, mode="append")
    assert tmp_lake.version(tables.SILVER_ITEMS) == 0  # nothing was committed

    recs = tables.spec(tables.RECOMMENDATIONS)  # partitioned as declared without the caller saying so
    row = ("u1", 1, "i1", 0.5, "Tin", "kitchen", 2.5, "re-buy", True, "v1", dt.date(2011, 12, 1), "r1")
    tmp_lake.write(spark.createDataFrame([row], recs.ddl), tables.RECOMMENDATIONS)
    assert DeltaTable(tmp_lake.path(tables.RECOMMENDATIONS)).metadata().partition_columns == ["context_date"]
    assert tmp_lake.write(_rows(spark, [(1, "a", None, 1.0, None)]), "scratch") == 0  # unregistered: free-form


def test_table_properties_are_stored_kept_and_changed_only_when_they_differ(spark, tmp_lake: Lake) -> None:
    d = dt.date(2011, 1, 1)
    scheme = {"seasonrec.pseudonym": "hmac-sha256-v1"}
    assert tmp_lake.write(_rows(spark, [(1, "a", d, 1.0, None)]), "t", properties=scheme) == 1  # data, then properties
    assert tmp_lake.properties("t") == scheme
    assert [h["operation"] for h in tmp_lake.history("t")][:1] == ["SET TBLPROPERTIES"]
    assert tmp_lake.write(_rows(spark, [(2, "b", d, 2.0, None)]), "t", mode="append", properties=scheme) == 2
    tmp_lake.write(_rows(spark, [(3, "c", d, 3.0, None)]), "t")  # an overwrite keeps them
    assert tmp_lake.properties("t") == scheme and tmp_lake.version("t") == 3
    assert tmp_lake.write(_rows(spark, [(4, "d", d, 4.0, None)]), "t", properties={"seasonrec.pseudonym": "v2"}) == 5
    assert tmp_lake.properties("t") == {"seasonrec.pseudonym": "v2"} and _ids(tmp_lake.read("t")) == [4]
    tmp_lake.write(_rows(spark, [(5, "e", d, 5.0, None)]), "t", mode="append")  # delta-rs commits with the key
    assert _ids(tmp_lake.read("t")) == [4, 5] and tmp_lake.properties("t") == {"seasonrec.pseudonym": "v2"}


def test_an_older_table_gets_its_added_columns_once_then_merges_and_appends_work(spark, tmp_lake: Lake) -> None:
    """Schema migration: `quarantine` as written before resolved_at/resolved_by_run were declared
    (`tables.Table.added_columns`). A MERGE update, the path that failed on such tables, and an
    append both work after one schema-only commit; older rows read the new columns as null."""
    import shutil

    from seasonrec import tables

    quarantine = tables.spec(tables.QUARANTINE)
    at = dt.datetime(2011, 1, 1, 9, 0)
    old_columns = [c for c in quarantine.columns if c.split(" ")[0] not in quarantine.added_columns]
    old = spark.createDataFrame([("file", "a.csv", "missing_item", f"line {h}", at, h) for h in ("h1", "h2")],
                                ", ".join(old_columns))
    tmp_lake.write(old, "old_quarantine")  # unregistered: the old shape is allowed, then moved into place
    shutil.move(tmp_lake.path("old_quarantine"), tmp_lake.path(tables.QUARANTINE))
    assert tmp_lake.add_missing_columns("not_registered") == []

    assert tmp_lake.add_missing_columns(tables.QUARANTINE) == ["resolved_at", "resolved_by_run"]
    assert tmp_lake.version(tables.QUARANTINE) == 1
    assert tmp_lake.columns(tables.QUARANTINE) == list(quarantine.column_names)
    assert tmp_lake.add_missing_columns(tables.QUARANTINE) == [] and tmp_lake.version(tables.QUARANTINE) == 1
    assert [(r["resolved_at"], r["resolved_by_run"]) for r in tmp_lake.read(tables.QUARANTINE).collect()] == [
        (None, None)] * 2

    # A fresh old table: merge (update) and append migrate it themselves, before writing.
    shutil.rmtree(tmp_lake.path(tables.QUARANTINE))
    tmp_lake.write(old, "old_quarantine")
    shutil.move(tmp_lake.path("old_quarantine"), tmp_lake.path(tables.QUARANTINE))
    resolved = spark.createDataFrame([("file", "a.csv", "missing_item", "line h1", at, "h1", at, "run-2")],
                                     quarantine.ddl)
    tmp_lake.merge(resolved, tables.QUARANTINE, ["row_hash"], when_matched="update")
    appended = spark.createDataFrame([("file", "b.csv", "missing_item", "line h3", at, "h3", None, None)],
                                     quarantine.ddl)
    tmp_lake.write(appended, tables.QUARANTINE, mode="append")
    rows = {r["row_hash"]: (r["resolved_at"], r["resolved_by_run"]) for r in tmp_lake.read(tables.QUARANTINE).collect()}
    assert rows == {"h1": (at, "run-2"), "h2": (None, None), "h3": (None, None)}
    assert [h["operation"] for h in tmp_lake.history(tables.QUARANTINE)].count("ADD COLUMN") == 1


def _last_metadata(table_path: str) -> dict:
    """The newest ``metaData`` action in the table's ``_delta_log`` JSON (what any Delta reader sees)."""
    import json
    from pathlib import Path

    for commit in sorted((Path(table_path) / "_delta_log").glob("*.json"), reverse=True):
        actions = [json.loads(line) for line in commit.read_text().splitlines() if line.strip()]
        found = [a["metaData"] for a in actions if "metaData" in a]
        if found:
            return found[-1]
    raise AssertionError(f"no metaData action under {table_path}")


def _recommendation(spark, user: str | None, day: dt.date, rank: int = 1):
    from seasonrec import tables

    row = (user, rank, "i1", 0.5, "Tin", "kitchen", 2.5, "re-buy", True, "v1", day, "r1")
    return spark.createDataFrame([row], tables.spec(tables.RECOMMENDATIONS).ddl)


def test_created_tables_carry_the_declared_comments_and_not_null_keys(spark, tmp_lake: Lake) -> None:
    """tables.py's table and column comments and NOT NULL keys land in the Delta log locally (delta-rs),
    and stay there when the table is overwritten with a frame that has neither."""
    from seasonrec import tables

    items = tables.spec(tables.SILVER_ITEMS)
    frame = spark.createDataFrame([("i1", "RED MUG", "kitchen", 2.5)], items.ddl)
    frame = frame.withColumn("title", F.col("title").alias("title", metadata={"comment": "from elsewhere"}))
    for version in (0, 1):  # created, then fully overwritten (delta-rs replaces the schema then)
        assert tmp_lake.write(frame, tables.SILVER_ITEMS) == version
        metadata = _last_metadata(tmp_lake.path(tables.SILVER_ITEMS))
        fields = {f["name"]: f for f in json.loads(metadata["schemaString"])["fields"]}
        assert metadata["description"] == items.comment
        assert fields["item_id"]["metadata"] == {"comment": items.column_comments["item_id"]}
        assert fields["item_id"]["nullable"] is False and fields["title"]["nullable"] is True
        assert fields["title"]["metadata"] == {}  # only declared comments: none travels from another table
    assert [f.metadata for f in tmp_lake.read(tables.SILVER_ITEMS).schema.fields][0] == {
        "comment": items.column_comments["item_id"]}  # what Spark's DESCRIBE shows as the column comment


def test_every_registered_key_has_a_comment_and_is_not_null_unless_declared_nullable() -> None:
    from seasonrec import tables

    for table in tables.TABLES.values():
        assert all(table.column_comments[k] for k in table.keys), table.name
        assert set(table.keys) - set(table.nullable_keys) <= set(table.not_null), table.name
    assert tables.spec(tables.EVALUATION_RUNS).nullable_keys == ("k",)  # counts have no cut-off
    assert "user_id" not in tables.spec(tables.SILVER_INTERACTIONS).not_null  # guests
    with pytest.raises(ValueError, match="keys without a comment"):
        tables.Table("t", "silver", "t", ("a string",), keys=("a",))


def test_a_null_key_fails_the_write_and_commits_nothing(spark, tmp_lake: Lake) -> None:
    from seasonrec import tables

    day = dt.date(2011, 12, 1)
    assert tmp_lake.write(_recommendation(spark, "u1", day), tables.RECOMMENDATIONS) == 0
    with pytest.raises(LakeError, match=r"table 'recommendations': a row has a null user_id, which .* NOT NULL"):
        tmp_lake.write(_recommendation(spark, None, day), tables.RECOMMENDATIONS, replace_partitions=True)
    with pytest.raises(LakeError, match=r"a row has a null item_raw"):  # MERGE creating a table too
        tmp_lake.merge(spark.createDataFrame([(None, "c", False, None, None, 0.0)],
                                             tables.spec(tables.SYNTHETIC_TRUTH).ddl),
                       tables.SYNTHETIC_TRUTH, ["item_raw"])
    assert tmp_lake.version(tables.RECOMMENDATIONS) == 0 and not tmp_lake.exists(tables.SYNTHETIC_TRUTH)
    assert [r["user_id"] for r in tmp_lake.read(tables.RECOMMENDATIONS).collect()] == ["u1"]
    nullable_user = spark.createDataFrame([(None, "i1")], "user_id string, item_id string")
    assert tmp_lake.write(nullable_user, "scratch") == 0  # unregistered tables declare nothing


def test_recommendations_record_a_change_data_feed(spark, tmp_lake: Lake) -> None:
    """Created with delta.enableChangeDataFeed; a partition replacement reads back through delta-rs'
    CDF reader as the old rows deleted and the new ones inserted, the other partition untouched."""
    from seasonrec import tables

    first, second = dt.date(2011, 12, 1), dt.date(2011, 12, 8)
    tmp_lake.write(_recommendation(spark, "u1", first).unionByName(_recommendation(spark, "u1", second)),
                   tables.RECOMMENDATIONS)
    assert _last_metadata(tmp_lake.path(tables.RECOMMENDATIONS))["configuration"] == tables.CHANGE_DATA_FEED
    assert tmp_lake.version(tables.RECOMMENDATIONS) == 0  # set by the creating commit, not a second one
    tmp_lake.write(_recommendation(spark, "u2", first), tables.RECOMMENDATIONS, replace_partitions=True)
    changes = DeltaTable(tmp_lake.path(tables.RECOMMENDATIONS)).load_cdf(starting_version=1).read_all()
    columns = [[v.as_py() for v in changes[c]] for c in ("_change_type", "user_id", "context_date")]
    rows = sorted(zip(*columns, strict=True))
    assert rows == [("delete", "u1", first), ("insert", "u2", first)]
    with pytest.raises(LakeError, match="Change Data Feed"):  # a copy-on-write update could not record it
        tmp_lake.merge(_recommendation(spark, "u2", first), tables.RECOMMENDATIONS, list(tables.spec(
            tables.RECOMMENDATIONS).keys))


def test_a_table_created_before_its_declarations_gets_them_on_the_next_write(spark, tmp_lake: Lake) -> None:
    """An older lake's recommendations (no comments, no Change Data Feed): the next write adds the table
    and column comments (one commit each) and the property, once."""
    import shutil

    from seasonrec import tables

    recs, day = tables.spec(tables.RECOMMENDATIONS), dt.date(2011, 12, 1)
    tmp_lake.write(_recommendation(spark, "u1", day), "old_recommendations",  # as an older seasonrec wrote it
                   partition_by=["context_date"])
    shutil.move(tmp_lake.path("old_recommendations"), tmp_lake.path(tables.RECOMMENDATIONS))
    assert tmp_lake.properties(tables.RECOMMENDATIONS) == {}
    assert tmp_lake.comments(tables.RECOMMENDATIONS) == (None, dict.fromkeys(recs.column_names, ""))
    version = tmp_lake.write(_recommendation(spark, "u2", day), tables.RECOMMENDATIONS, replace_partitions=True)
    assert version == 1 + len(recs.column_comments) + 2  # description, each column, the data, the property
    assert tmp_lake.properties(tables.RECOMMENDATIONS) == tables.CHANGE_DATA_FEED
    description, columns = tmp_lake.comments(tables.RECOMMENDATIONS)
    assert description == recs.comment and {c: columns[c] for c in recs.column_comments} == recs.column_comments
    assert tmp_lake.add_missing_comments(tables.RECOMMENDATIONS) == []
    assert tmp_lake.write(_recommendation(spark, "u3", day), tables.RECOMMENDATIONS, replace_partitions=True) == (
        version + 1)  # nothing left to add: the data's commit only
    assert [r["user_id"] for r in tmp_lake.read(tables.RECOMMENDATIONS).collect()] == ["u3"]


# ---------------------------------------------------------------- tables by name (Unity Catalog)
# The delta-spark engine that writes them cannot run here (no delta-spark JAR): these tests cover what
# runs without it, the naming and the delta-rs engine's refusal.


def test_table_identifiers_quote_every_part() -> None:
    from seasonrec.lake import path_identifier, quote_identifier, table_identifier

    assert table_identifier("main.seasonrec", "recommendations") == "`main`.`seasonrec`.`recommendations`"
    assert table_identifier("prod.seasonrec_2", "odd`name") == "`prod`.`seasonrec_2`.`odd``name`"
    assert quote_identifier("a.b") == "`a.b`" and quote_identifier("``") == "``````"
    assert path_identifier("/lake/it's`x") == "delta.`/lake/it's``x`"
    for bad in ("main", "main.seasonrec.extra", "main.", ".seasonrec", "main.sea son", "`main`.seasonrec"):
        with pytest.raises(ValueError, match=r"must be catalog\.schema"):
            table_identifier(bad, "recommendations")


@pytest.mark.parametrize("engine", ["auto", "delta-rs"])
def test_a_namespace_on_the_delta_rs_engine_is_one_line_lake_error(spark, tmp_path, engine: str) -> None:
    root = tmp_path / "lake"
    with pytest.raises(LakeError) as err:
        Lake(spark, str(root), engine=engine, namespace="main.seasonrec")  # auto: delta-rs, no JAR here
    message = str(err.value)
    assert "\n" not in message and "paths.table_namespace" in message and "delta-spark engine" in message
    assert not root.exists()  # refused before anything was created
    with pytest.raises(LakeError, match=r"^table namespace 'main' must be catalog\.schema"):
        Lake(spark, str(root), engine="delta-spark", namespace="main")


def test_a_named_lake_says_what_each_table_is(spark, tmp_path, tmp_lake: Lake) -> None:
    """How a lake with a namespace names its tables (`Lake.path`, `where`, the SQL reference), next to a
    path-based one; nothing here touches a table (the delta-spark engine is not on this machine)."""
    named = Lake(spark, str(tmp_path / "files"), engine="delta-spark", namespace="main.seasonrec")
    assert named.named and named.where == "in main.seasonrec"
    assert named.path("recommendations") == "main.seasonrec.recommendations"
    assert named._ref("recommendations") == "`main`.`seasonrec`.`recommendations`"
    assert not tmp_lake.named and tmp_lake.where == f"under {tmp_lake.root}"
    assert tmp_lake.path("t") == f"{tmp_lake.root}/t" and tmp_lake._ref("t") == f"delta.`{tmp_lake.root}/t`"


def test_the_job_lake_follows_paths_config(spark, tmp_path) -> None:
    from seasonrec.config import load_config
    from seasonrec.context import lake_of

    config = load_config(None, [f"paths.lake_root={tmp_path}/lake"])
    lake = lake_of(config, spark)
    assert (lake.root, lake.namespace, lake.engine) == (f"{tmp_path}/lake", None, "delta-rs")
    named = load_config(None, [f"paths.lake_root={tmp_path}/lake", "paths.table_namespace=main.seasonrec"])
    with pytest.raises(LakeError, match="need the delta-spark engine"):
        lake_of(named, spark)


def test_the_served_model_reloads_recent_activity_from_folders_only(spark, tmp_path, tmp_lake: Lake) -> None:
    """A catalog table's storage is the catalog's: the served model gets no folder to reload (it serves
    from its snapshot and the request's recent_items; $SEASONREC_ACTIVITY_TABLE can still point it at one)."""
    from types import SimpleNamespace

    from seasonrec.serving.registry import _activity_folder

    assert _activity_folder(SimpleNamespace(lake=tmp_lake)) == f"{tmp_lake.root}/user_recent_activity"
    named = Lake(spark, str(tmp_path / "files"), engine="delta-spark", namespace="main.seasonrec")
    assert _activity_folder(SimpleNamespace(lake=named)) is None
