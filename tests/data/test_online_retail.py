"""The real Online Retail file (a 4,000-line head of it) through the zero-config `online_retail` source."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.data import jobs as ingest_jobs
from seasonrec.features import silver
from support import job_args

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "online_retail"
FILE = SHARED / "online_retail_2010-12_2011-09.csv.gz"


@pytest.mark.skipif(not FILE.exists(), reason="shared Online Retail file not present")
def test_online_retail_head_ingests_and_cleans(job_context, tmp_path: Path) -> None:
    with gzip.open(FILE, "rt", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(4001)]
    sample = tmp_path / "head.csv"
    sample.write_text("".join(lines), encoding="utf-8")
    rows = list(csv.reader(lines[1:]))
    no_customer = sum(1 for row in rows if row[6] == "")
    # Not sales: stock notes without a description, and negative quantities outside a C-invoice; all
    # have price 0 and no customer in this file.
    no_description = [row for row in rows if row[2] == ""]
    not_cancellation = [row for row in rows if row[2] and float(row[3]) < 0 and not row[0].startswith("C")]
    assert all(float(row[5]) == 0 and row[6] == "" for row in no_description + not_cancellation)

    ctx = job_context("ingest")
    summary = ingest_jobs.run(ctx, job_args(ingest_jobs, "--source", "online_retail", "--path", str(sample)))
    assert summary["rows_in"] == 4000
    assert no_customer > 0
    # Guest checkouts are sales, not bad rows.
    assert summary["quarantine_by_reason"] == {
        reason: n for reason, n in (("missing_description", len(no_description)),
                                    ("negative_quantity_not_cancellation", len(not_cancellation))) if n}
    assert summary["bronze_rows_added"] == 4000 - len(no_description) - len(not_cancellation)
    assert (summary["records_read"], summary["header_lines"]) == (4001, 1)

    bronze = ctx.lake.read(tables.BRONZE_TRANSACTIONS)
    assert bronze.where(F.col("user_raw").contains(".")).count() == 0  # 17850.0 -> 17850
    first = bronze.where("invoice = '536365' AND item_raw = '85123A'").first()
    assert str(first["ts"]) == "2010-12-01 08:26:00"  # GMT in December: UK local == UTC
    assert bronze.where(F.col("description").contains(",")).count() > 0  # quoted commas parsed
    quoted = [row[2].strip() for row in rows if '"' in row[2]]  # RFC 4180: "" inside quotes is one quote
    stored = {r["description"] for r in bronze.where(F.col("description").contains('"')).collect()}
    assert quoted and set(quoted) == stored

    interactions = silver.interactions(bronze, ctx.config.features, "s")
    codes = {r[0] for r in interactions.select("item_id").distinct().collect()}
    assert not codes & {"POST", "DOT", "M", "C2", "D", "BANK CHARGES"}
    assert interactions.where("quantity <= 0 OR price <= 0").count() == 0
    assert interactions.where(F.col("invoice").startswith("C")).count() == 0
    assert {r[0] for r in interactions.select("country").distinct().collect()} <= {
        "GB", "FR", "DE", "NO", "AU", "NL", "IE", "LT", "JP", "PL", "IS", "PT", "IT", "BE", "ES", "CH", "CY", "DK",
        "FI", "SE", "AT", "IL", "HK", "SG", "CA", "GR", "MT", "AE", "LB", "BR", "US", "BH", "CZ", "SA", "JE",
        "UNSPECIFIED", "EUROPEAN COMMUNITY"}
    guests = interactions.where(F.col("user_id").isNull())
    assert guests.count() > 0 and silver.personal(interactions).where(F.col("user_id").isNull()).count() == 0
    netted = interactions.agg(F.sum("quantity")).first()[0]
    product = silver.product_rows(bronze, ctx.config.features)
    bought = product.where("quantity > 0 AND price > 0").agg(F.sum("quantity")).first()[0]
    assert netted < bought  # some returns matched purchases in the same window
    items = silver.items(bronze, ctx.config.features)
    categories = {r[0]: r[1] for r in items.groupBy("category").count().collect()}
    assert categories.get("christmas", 0) > 10 and categories.get("other", 0) < 0.6 * items.count()
