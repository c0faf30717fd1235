"""Return netting is time-local: a return reduces the pair's latest purchase at or before it."""

from __future__ import annotations

import datetime as dt

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
