"""Return netting is time-local: a return reduces the pair's latest purchase at or before it; non-product codes
are dropped before it."""

from __future__ import annotations

import datetime as dt

from seasonrec.config import FeaturesConfig
from seasonrec.features import silver


def test_returns_hit_the_latest_earlier_purchase_only(spark) -> None:
    def row(h: str, user: str, item: str, day: int, qty: float) -> tuple:
        return (h, user, item, dt.datetime(2011, 3, day, 10), qty, 2.0)

    rows = spark.createDataFrame([
        row("p1", "u", "a", 1, 5.0), row("p2", "u", "a", 3, 2.0), row("r1", "u", "a", 4, -3.0),  # p2 gone, 1 lost
        row("p3", "u", "a", 9, 4.0),  # later purchase: untouched by the earlier return
        row("r2", "u", "b", 2, -1.0), row("p4", "u", "b", 5, 1.0),  # return before any purchase: ignored
        row("p5", "v", "a", 2, 1.0),
    ], "row_hash string, user_raw string, item_raw string, ts timestamp, quantity double, price double")
    netted = {r["row_hash"]: r["quantity"] for r in silver.net_returns(rows).collect()}
    assert netted == {"p1": 5.0, "p3": 4.0, "p4": 1.0, "p5": 1.0}


def test_non_product_codes_are_dropped_whatever_their_case(spark) -> None:
    codes = ["POST", "M", "m", "ADJUST", "ADJUST2", "TEST001", "gift_0001_20", "BANK CHARGES",  # not products
             "85123A", "DCGSSGIRL", "SP1002", "m85123"]  # products (the pattern matches whole codes only)
    bronze = spark.createDataFrame([(code,) for code in codes], "item_raw string")
    kept = [r["item_raw"] for r in silver.product_rows(bronze, FeaturesConfig()).collect()]
    assert sorted(kept) == ["85123A", "DCGSSGIRL", "SP1002", "m85123"]
