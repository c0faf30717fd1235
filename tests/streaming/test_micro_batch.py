"""The per-batch function of `seasonrec stream`, in process: the ingest split, the activity rows, and
applying the same batch twice changes nothing (no rows, no commits)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.config import FileSourceConfig
from seasonrec.context import JobError
from seasonrec.data import ingest
from seasonrec.features import silver
from seasonrec.lake import Lake
from seasonrec.streaming import micro_batch

FILE_SOURCE = FileSourceConfig()  # data.file: Online Retail's columns
SALT = "stream-test-salt"
T1, T2, T3 = (dt.datetime(2026, 1, 1, 10, m) for m in (0, 5, 10))
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
# Another export with its columns in another order: each file is read by its own header.
OTHER_HEADER = "CustomerID,InvoiceDate,StockCode,Quantity,UnitPrice,InvoiceNo,Description,Country"
FILES = {
    "file:///in/a.csv": [
        HEADER,
        "1001,X1,THING ONE,2,2011-05-01 10:00:00,1.0,17850.0,United Kingdom",
        "1001,X2,THING TWO,1,2011-05-01 10:00:00,2.0,17850.0,United Kingdom",
        "1002,X3,\"THING, THREE\",1,2011-05-02 09:00:00,2.0,17850,United Kingdom",
        "C1003,X3,\"THING, THREE\",-1,2011-05-03 09:00:00,2.0,17850,United Kingdom",  # cancellation
        "1004,X4,GUEST THING,3,2011-05-03 10:00:00,1.0,,United Kingdom",  # guest checkout
        "",
        "1005,,NO ITEM,1,2011-05-03 11:00:00,1.0,17850,United Kingdom",
        "1006,X5,BAD PRICE,1,2011-05-03 11:00:00,-3,17850,United Kingdom",
    ],
    "file:///in/b.csv": [
        OTHER_HEADER,
        "13047,2011-05-04 08:00:00,X1,4,1.0,1007,THING ONE,France",
        "13047,not a date,X2,4,1.0,1008,THING TWO,France",
    ],
}
SETTINGS = micro_batch.BatchSettings(format="csv", source=FILE_SOURCE, recent_items_max=2, salt=SALT)


def _lines(spark, files: dict[str, list[str]]):
    return spark.createDataFrame([(f, line) for f, lines in files.items() for line in lines],
                                 "source_file string, value string")


def _user_id(user: str) -> str:
    return hmac.new(SALT.encode(), user.encode(), hashlib.sha256).hexdigest()[:24]  # silver's pseudonym


def _activity(lake: Lake) -> dict[str, dict]:
    return {r["user_id"]: r.asDict() for r in lake.read(tables.USER_RECENT_ACTIVITY).collect()}


def _versions(lake: Lake) -> dict[str, int | None]:
    return {name: lake.version(name) for name in
            (tables.BRONZE_TRANSACTIONS, tables.QUARANTINE, tables.USER_RECENT_ACTIVITY)}


def test_batch_split_activity_and_replay_is_a_no_op(spark, tmp_path) -> None:
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")  # as the job sets it
    lake = Lake(spark, str(tmp_path / "lake"))
    result = micro_batch.process_batch(lake, micro_batch.stage_lines(_lines(spark, FILES), "csv", FILE_SOURCE), 0,
                                       SETTINGS, now=T1)
    assert (result.rows_in, result.bronze_added, result.quarantined, result.users_updated) == (9, 6, 3, 2)
    assert result.quarantine_by_reason == {"missing_item": 1, "negative_price": 1, "unparseable_timestamp": 1}

    bronze = lake.read(tables.BRONZE_TRANSACTIONS).collect()
    assert {r["source"] for r in bronze} == {"stream"}
    assert sorted((r["invoice"], r["item_raw"], r["user_raw"], r["quantity"]) for r in bronze) == [
        ("1001", "X1", "17850", 2.0), ("1001", "X2", "17850", 1.0), ("1002", "X3", "17850", 1.0),
        ("1004", "X4", None, 3.0), ("1007", "X1", "13047", 4.0), ("C1003", "X3", "17850", -1.0)]
    assert [r["description"] for r in bronze if r["invoice"] == "1002"] == ["THING, THREE"]
    quarantine = lake.read(tables.QUARANTINE).collect()
    assert sorted((q["reason"], q["source_file"]) for q in quarantine) == [
        ("missing_item", "file:///in/a.csv"), ("negative_price", "file:///in/a.csv"),
        ("unparseable_timestamp", "file:///in/b.csv")]

    activity = _activity(lake)
    # The user id is silver's pseudonym: same salt, same hash (checked against silver's own function too).
    silver_id = spark.range(1).select(silver.pseudonymize(F.lit("17850"), SALT).alias("u")).first()["u"]
    assert set(activity) == {_user_id("17850"), _user_id("13047")} and silver_id == _user_id("17850")
    heavy = activity[_user_id("17850")]
    # Three purchase lines (the cancellation is not one); X1 and X2 tie on time -> item order; max 2 items.
    assert (heavy["n_events"], heavy["item_ids"]) == (3, ["X3", "X1"])
    assert heavy["ts"] == [dt.datetime(2011, 5, 2, 9), dt.datetime(2011, 5, 1, 10)]
    assert heavy["last_ts"] == dt.datetime(2011, 5, 2, 9) and heavy["updated_at"] == T1
    assert (activity[_user_id("13047")]["n_events"], activity[_user_id("13047")]["item_ids"]) == (1, ["X1"])

    # The same batch again (a restart after a crash): nothing is added and no table gets a new version.
    versions = _versions(lake)
    replay = micro_batch.process_batch(lake, micro_batch.stage_lines(_lines(spark, FILES), "csv", FILE_SOURCE), 0,
                                       SETTINGS, now=T2)
    assert (replay.rows_in, replay.bronze_added, replay.quarantined, replay.users_updated) == (9, 0, 3, 0)
    assert _versions(lake) == versions
    assert _activity(lake) == activity

    # A new batch touching one user rewrites only that user's row.
    newer = {"file:///in/c.csv": [HEADER, "1009,X9,NEW THING,1,2011-05-05 08:00:00,1.0,13047,France"]}
    third = micro_batch.process_batch(lake, micro_batch.stage_lines(_lines(spark, newer), "csv", FILE_SOURCE), 1,
                                      SETTINGS, now=T3)
    assert (third.bronze_added, third.users_updated) == (1, 1)
    after = _activity(lake)
    assert (after[_user_id("13047")]["n_events"], after[_user_id("13047")]["item_ids"]) == (2, ["X9", "X1"])
    assert after[_user_id("13047")]["updated_at"] == T3 and after[_user_id("17850")] == heavy
    history = lake.history(tables.USER_RECENT_ACTIVITY, 1)[0]
    assert history.get("seasonrec.stream_batch") == "1"


def test_json_lines_and_a_csv_file_without_header(spark) -> None:
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    events = [json.dumps({"InvoiceNo": "1", "StockCode": "X1", "Quantity": 6, "InvoiceDate": "2011-05-01 10:00:00",
                          "UnitPrice": 2.5, "CustomerID": 17850, "Country": "France"}),
              json.dumps({"InvoiceNo": "2", "StockCode": "X2", "Quantity": "six", "InvoiceDate": "2011-05-01",
                          "UnitPrice": 1, "CustomerID": "13047"}),
              "this is not json"]
    lines = _lines(spark, {"kafka://events/0/1": events[:1], "kafka://events/0/2": events[1:2],
                           "kafka://events/0/3": events[2:]})
    classified = ingest.classify(micro_batch.stage_lines(lines, "json", FILE_SOURCE), micro_batch.SOURCE, T1)
    rows = {r["raw_line"]: r for r in classified.collect()}
    good = rows[events[0]]
    # JSON numbers reach ingest as their text and parse like CSV values; ids normalise the same way.
    assert (good["reason"], good["quantity"], good["price"], good["user_raw"], good["ts"]) == (
        None, 6.0, 2.5, "17850", dt.datetime(2011, 5, 1, 10))
    assert rows[events[1]]["reason"] == "non_numeric_quantity"
    assert rows["this is not json"]["reason"] == "missing_item"  # kept with its raw text in quarantine

    headerless = _lines(spark, {"file:///in/a.csv": [HEADER, "1,X1,T,1,2011-05-01 10:00:00,1.0,1,GB"],
                                "file:///in/raw.csv": ["1,X1,T,1,2011-05-01 10:00:00,1.0,1,GB"]})
    with pytest.raises(JobError, match=r"file:///in/raw.csv: no CSV header line with the columns"):
        micro_batch.stage_lines(headerless, "csv", FILE_SOURCE)


def test_files_and_messages_with_alternative_column_names(spark) -> None:
    # Online Retail II names three columns differently: with data.file.alternative_columns a streamed file
    # or message in that layout is read like one in the mapped layout, each file by its own header.
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    two = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    files = {"file:///in/ii.csv": [two, "2001,X1,THING ONE,2,2011-05-01 10:00:00,1.5,17850,France"],
             "file:///in/i.csv": [HEADER, "2002,X2,THING TWO,1,2011-05-01 11:00:00,2.0,13047,France"]}
    message = json.dumps({"Invoice": "2003", "StockCode": "X3", "Quantity": 4, "InvoiceDate": "2011-05-01 12:00:00",
                          "Price": 3.0, "Customer ID": 12583})
    with pytest.raises(JobError, match=r"file:///in/ii.csv: no CSV header line with the columns .*CustomerID"):
        micro_batch.stage_lines(_lines(spark, files), "csv", FILE_SOURCE)
    both = FileSourceConfig(alternative_columns={"invoice": ["Invoice"], "price": ["Price"], "user": ["Customer ID"]})
    staged = [*micro_batch.stage_lines(_lines(spark, files), "csv", both).collect(),
              *micro_batch.stage_lines(_lines(spark, {"kafka://events/0/1": [message]}), "json", both).collect()]
    assert sorted((r["invoice"], r["item"], r["price"], r["user"], r["country"]) for r in staged) == [
        ("2001", "X1", "1.5", "17850", "France"), ("2002", "X2", "2.0", "13047", "France"),
        ("2003", "X3", "3.0", "12583", None)]
