"""Level-wise model choice and coherent means after reconciliation, on small hand-made frames (real Spark)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from seasonrec.forecasting import reconcile as REC
from seasonrec.forecasting import selection as SEL
from seasonrec.forecasting import series as S
from seasonrec.forecasting.baselines import FORECAST_SCHEMA
from seasonrec.forecasting.pipeline import coherent_means
from support import rows_frame

WEEKS = [dt.date(2011, 7, 4) + dt.timedelta(weeks=i) for i in range(3)]


def test_each_level_chooses_its_own_model_on_the_backtest(spark):
    """gbm wins at item level, croston at category level and ets for the total: each level's final
    series get their own level's winner, not the item level's."""
    best = {S.ITEM: "gbm", S.CATEGORY: "croston", S.TOTAL: "ets"}
    series = {S.ITEM: ["a", "b", "c"], S.CATEGORY: ["home", "garden"], S.TOTAL: [S.TOTAL_KEY]}
    errors, candidates = [], []
    for level, ids in series.items():
        for series_id in ids:
            for model in ("gbm", "croston", "ets"):
                loss = 1.0 if model == best[level] else 2.0
                for window in (1, 2):
                    errors.append((level, SEL.ALL, series_id, window, model, 4, 10.0, loss, 4 * loss, 10.0))
                candidates.append((level, series_id, 0, WEEKS[0], model, 1.0, 2.0, 3.0, 2.0))
    errors_frame = spark.createDataFrame(
        errors, "level string, segment string, item_id string, window int, model string, n_weeks int, "
                "actual double, pinball double, abs_error double, mean_forecast double")
    candidates_frame = spark.createDataFrame(candidates, FORECAST_SCHEMA)
    segments = candidates_frame.select("level", "series_id", "window").distinct().withColumn("segment", F.lit(SEL.ALL))
    weights, report, ranking = SEL.choose_models(errors_frame, candidates_frame, segments, ["gbm", "ets", "croston"])
    chosen = {(r["level"], r["series_id"]): r["model"] for r in weights.collect()}
    assert chosen == {(level, s): best[level] for level, ids in series.items() for s in ids}
    assert {(e["level"], e["chosen"]) for e in report} == set(best.items())
    picked = SEL.chosen_rows(candidates_frame, segments, ranking).toPandas()
    assert set(zip(picked.level, picked.model, strict=True)) == set(best.items())


def _items_and_aggregates(spark):
    # window 0: two categories; "home" has a cold-start item, "garden" has none.
    items = pd.DataFrame([
        (0, "h1", "home", w, 4.0, False) for w in WEEKS] + [
        (0, "h2", "home", w, 6.0, False) for w in WEEKS] + [
        (0, "h_new", "home", w, 5.0, True) for w in WEEKS] + [
        (0, "g1", "garden", w, 3.0, False) for w in WEEKS],
        columns=["window", "series_id", "category", "week_start", "mean", "cold_start"])
    aggregates = pd.DataFrame(
        [(S.CATEGORY, "home", 0, w, 20.0) for w in WEEKS] + [(S.CATEGORY, "garden", 0, w, 6.0) for w in WEEKS]
        + [(S.TOTAL, S.TOTAL_KEY, 0, w, 39.0) for w in WEEKS],
        columns=["level", "series_id", "window", "week_start", "mean"])
    shares = spark.createDataFrame([(0, "home", 0.9), (0, "garden", 0.8)], "window int, category string, share double")
    return spark.createDataFrame(items), spark.createDataFrame(aggregates), shares


def test_reconciled_item_means_add_up_to_the_chosen_category_and_total_means(spark):
    items, aggregates, shares = _items_and_aggregates(spark)
    middle = REC.reconcile_item_means(items, aggregates, shares, "middle_out").toPandas()
    sums = middle.groupby(["category", "week_start"])["mean"].sum()
    assert np.allclose(sums.xs("home", level="category"), 20.0)
    assert np.allclose(sums.xs("garden", level="category"), 6.0)  # no cold-start item: all of the target
    home = middle[middle.category == "home"].groupby("series_id")["mean"].first()
    # established items share 90% of the category in proportion to their own means, the new item the rest
    assert home["h1"] == pytest.approx(20 * 0.9 * 0.4) and home["h2"] == pytest.approx(20 * 0.9 * 0.6)
    assert home["h_new"] == pytest.approx(2.0)
    top = REC.reconcile_item_means(items, aggregates, shares, "top_down").toPandas()
    assert np.allclose(top.groupby("week_start")["mean"].sum(), 39.0)
    by_category = top.groupby(["category", "week_start"])["mean"].sum()
    assert np.allclose(by_category.xs("home", level="category"), 39.0 * 20 / 26)
    bottom = REC.reconcile_item_means(items, aggregates, shares, "bottom_up").toPandas()
    assert np.allclose(bottom.groupby("week_start")["mean"].sum(), 18.0)
    with pytest.raises(ValueError, match="forecast.reconciliation"):
        REC.reconcile_item_means(items, aggregates, shares, "sideways")


def test_established_share_reads_only_weeks_before_each_origin(spark):
    start = dt.date(2011, 1, 3)
    origin = S.Origin(1, start + dt.timedelta(weeks=20), 4, start + dt.timedelta(weeks=20))
    rows = [("old", "home", start + dt.timedelta(weeks=i), 3.0) for i in range(30)]
    rows += [("new", "home", start + dt.timedelta(weeks=i), 1.0) for i in range(14, 30)]
    demand = spark.createDataFrame(rows, "item_id string, category string, week_start date, quantity double")
    share = REC.established_shares(demand, [origin], min_history_weeks=8).collect()
    # weeks 16..19: old sold 12, new (first sale week 14, not established at week 16) sold 4
    assert [(r["window"], r["category"]) for r in share] == [(1, "home")] and share[0]["share"] == pytest.approx(0.75)
    later = [(item, cat, week, 1e6 if week >= origin.cutoff else q) for item, cat, week, q in rows]
    corrupted = spark.createDataFrame(later, demand.schema)
    assert REC.established_shares(corrupted, [origin], 8).collect()[0]["share"] == pytest.approx(0.75)
    # an origin less than h + 8 weeks after the data starts: the span starts 8 weeks into the data
    # (items selling in the first week count as established), not before it (where none could be)
    early = S.Origin(2, start + dt.timedelta(weeks=12), 13, start + dt.timedelta(weeks=12))
    shares = {r["window"]: r["share"] for r in REC.established_shares(demand, [origin, early], 8).collect()}
    assert shares[2] == pytest.approx(1.0) and shares[1] == pytest.approx(0.75)
    assert REC.established_shares(demand, [S.Origin(3, start + dt.timedelta(weeks=8), 4, start)], 8).count() == 0


def test_reconciliation_is_kept_only_where_it_lowers_the_backtest_bias():
    rows = []
    for window, biases in ((1, {"bottom_up": -0.20, "middle_out": -0.05, "top_down": 0.30}),
                           (2, {"bottom_up": -0.25, "middle_out": 0.02, "top_down": 0.10}),
                           (3, {"bottom_up": -0.10, "middle_out": -0.12, "top_down": 0.15})):
        rows += [{"window": window, "method": m, "mean_forecast": 100 * (1 + b), "actual": 100.0, "bias": b}
                 for m, b in biases.items()]
    report = REC.choose_method(pd.DataFrame(rows))
    assert report["chosen"] == "middle_out"
    assert report["nested"]["chosen_on_windows"] == [2, 3] and report["nested"]["chosen"] == "middle_out"
    assert report["nested"]["bias"] == pytest.approx(-0.05)
    tie = pd.DataFrame([{"window": 1, "method": m, "mean_forecast": 90.0, "actual": 100.0, "bias": -0.1}
                        for m in REC.METHODS])
    assert REC.choose_method(tie)["chosen"] == "bottom_up" and REC.choose_method(tie)["nested"] is None


def test_coherent_means_sum_items_up_and_fill_categories_without_a_forecast(spark):
    """Category and total means are their items' sums (an item missing from the catalogue counts under
    ``unknown``); their quantiles stay their own, and a category with items but no forecast of its own
    gets the items' summed quantiles as ``bottom_up``."""
    week = WEEKS[0]
    schema = ("level string, series_id string, week_start date, chosen string, p10 double, p50 double, "
              "p90 double, mean double, cold_start boolean")
    rows = [(S.ITEM, "a1", week, "gbm", 1.0, 2.0, 5.0, 3.0, False),
            (S.ITEM, "a2", week, "gbm", 0.0, 1.0, 2.0, 1.5, True),
            (S.ITEM, "b1", week, "tsb", 0.0, 4.0, 6.0, 4.5, False),
            (S.ITEM, "x9", week, "tsb", 0.0, 1.0, 1.0, 1.0, False),  # not in the catalogue
            (S.CATEGORY, "A", week, "croston", 2.0, 3.0, 9.0, 99.0, False),
            (S.TOTAL, S.TOTAL_KEY, week, "ets", 5.0, 8.0, 12.0, 99.0, False)]
    catalogue = rows_frame(spark, [("a1", "A"), ("a2", "A"), ("b1", "B")], "item_id string, category string")
    out = coherent_means(rows_frame(spark, rows, schema), catalogue).toPandas().set_index(["level", "series_id"])
    assert len(out) == 4 + 4  # the items as they were, A, B, unknown and the total
    assert out.loc[(S.ITEM, "a2")].to_dict() == {"week_start": week, "chosen": "gbm", "p10": 0.0, "p50": 1.0,
                                                 "p90": 2.0, "mean": 1.5, "cold_start": True}
    a, b = out.loc[(S.CATEGORY, "A")], out.loc[(S.CATEGORY, "B")]
    assert (a.chosen, a.p10, a.p50, a.p90, a["mean"]) == ("croston", 2.0, 3.0, 9.0, pytest.approx(4.5))
    assert (b.chosen, b.p10, b.p50, b.p90, b["mean"]) == ("bottom_up", 0.0, 4.0, 6.0, pytest.approx(4.5))
    assert out.loc[(S.CATEGORY, S.UNKNOWN_CATEGORY)]["mean"] == pytest.approx(1.0)
    total = out.loc[(S.TOTAL, S.TOTAL_KEY)]
    assert (total.chosen, total.p50, total["mean"]) == ("ets", 8.0, pytest.approx(10.0))
