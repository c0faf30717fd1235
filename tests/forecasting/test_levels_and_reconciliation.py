"""Level-wise model choice on small hand-made frames (real Spark)."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from seasonrec.forecasting import selection as SEL
from seasonrec.forecasting import series as S
from seasonrec.forecasting.baselines import FORECAST_SCHEMA

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
