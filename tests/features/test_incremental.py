"""Re-runs are idempotent (ingest twice, features twice) and `--since` rebuilds only new silver months."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.context import JobContext
from seasonrec.data import jobs as ingest_jobs
from seasonrec.features import jobs as features_jobs
from seasonrec.features import silver
from support import job_args, make_config

FEATURE_TABLES = (tables.SILVER_INTERACTIONS, tables.SILVER_ITEMS, tables.CALENDAR, tables.ITEM_FEATURES,
                  tables.USER_FEATURES, tables.TRAINING_EXAMPLES)
SMALL = ("data.synthetic.n_events=3000", "data.synthetic.n_users=80", "data.synthetic.n_items=40")


@pytest.fixture(scope="module")
def small_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("incremental")
    config = make_config(root, *SMALL)
    ingest = ingest_jobs.run(JobContext.create(config, "ingest", spark), job_args(ingest_jobs))
    ctx = JobContext.create(config, "features", spark)
    features = features_jobs.run(ctx, job_args(features_jobs))
    return {"ctx": ctx, "root": root, "ingest": ingest, "features": features}


def _same(lake, name: str, version_a: int, version_b: int) -> bool:
    a, b = lake.read(name, version=version_a), lake.read(name, version=version_b)
    return a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0


def test_ingest_and_features_twice_give_the_same_tables(small_lake) -> None:
    ctx = small_lake["ctx"]
    lake = ctx.lake
    first_ingest = small_lake["ingest"]
    assert first_ingest["bronze_rows_added"] == first_ingest["rows_good"] > 3000  # + cancellations
    again = ingest_jobs.run(JobContext.create(ctx.config, "ingest", ctx.spark), job_args(ingest_jobs))
    assert again["bronze_rows_added"] == 0
    assert lake.read(tables.BRONZE_TRANSACTIONS).count() == first_ingest["bronze_rows_total"]

    versions = {name: lake.version(name) for name in FEATURE_TABLES}
    second = features_jobs.run(ctx, job_args(features_jobs))
    assert second["rows"] == small_lake["features"]["rows"]
    for name in FEATURE_TABLES:
        assert lake.version(name) == versions[name] + 1
        assert _same(lake, name, versions[name], versions[name] + 1), name


def test_since_rebuilds_only_new_months_and_matches_a_full_rebuild(small_lake, tmp_path: Path) -> None:
    ctx = small_lake["ctx"]
    lake = ctx.lake
    item = lake.read(tables.BRONZE_TRANSACTIONS).where("quantity > 0 AND ts >= '2011-09-01'").first()["item_raw"]
    new_rows = tmp_path / "late.csv"
    new_rows.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        f"900001,{item},LATE BUY,3,2011-09-20 10:00:00,2.5,NEWCUSTOMER,China\n"
        f"C900002,{item},LATE RETURN,-1,2011-09-21 10:00:00,2.5,NEWCUSTOMER,China\n", encoding="utf-8")
    ingest_ctx = JobContext.create(ctx.config, "ingest", ctx.spark)
    added = ingest_jobs.run(ingest_ctx, job_args(ingest_jobs, "--source", "file", "--path", str(new_rows)))
    assert added["bronze_rows_added"] == 2
    added_at = lake.read(tables.BRONZE_TRANSACTIONS).agg(F.max("ingested_at")).first()[0]
    silver_version = lake.version(tables.SILVER_INTERACTIONS)
    summary = features_jobs.run(ctx, job_args(features_jobs, "--since", added_at.isoformat()))
    assert summary["silver"]["mode"] == "incremental" and summary["silver"]["from_month"] == "2011-09"
    assert summary["silver"]["months_rebuilt"] == 4  # 2011-09 .. 2011-12 of the synthetic range

    interactions = lake.read(tables.SILVER_INTERACTIONS)
    full = silver.interactions(lake.read(tables.BRONZE_TRANSACTIONS), ctx.config.features,
                               silver.salt(ctx.config.features, ctx.config.env))
    assert interactions.exceptAll(full).count() == 0 and full.exceptAll(interactions).count() == 0
    new_user = silver.pseudonymize(F.lit("NEWCUSTOMER"), silver.salt(ctx.config.features, ctx.config.env))
    late = interactions.where(F.col("user_id") == new_user).collect()
    assert [(r["quantity"], r["country"], r["event_month"]) for r in late] == [(2.0, "CN", "2011-09")]
    # Months before the rebuilt range are the very same files (not rewritten).
    old = lake.read(tables.SILVER_INTERACTIONS, version=silver_version).where("event_month < '2011-09'")
    assert old.exceptAll(interactions.where("event_month < '2011-09'")).count() == 0
    assert lake.read(tables.USER_FEATURES).where(F.col("user_id") == new_user).count() == 1
