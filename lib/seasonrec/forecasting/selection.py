"""Honest model choice: one model per level (or per level and volume class), judged out of sample.

Per-series winner picking on a few backtest windows rewards luck (a noisy item's best model in two
windows is mostly the one that happened to be close), so the choice is made where it is stable:
per *segment* — the level (``selection: global``), or the level and, for items, the volume class
(``selection: volume_class``: ``smooth`` when at least half of the 26 weeks before the origin sold,
else ``intermittent``; computed at each origin from the weeks before it).

Score of a model in a segment: its pinball loss (mean over P10/P50/P90, summed over series x weeks)
divided by the actual units, over the series x windows that every eligible model forecast (a model
covering less than 90% of the segment's series x windows, e.g. an LSTM that skipped a window, is
not eligible and only serves as a fallback). Lower is better; ties go to the configured model order.

Nested evaluation: the rule is applied to the earlier windows (2..K) and the model it picks is
scored on the latest window (1), which the choice did not see; that score (and the model that would
have been best on window 1 in hindsight, for reference) is reported per segment. The final forecast
then applies the same rule to all windows 1..K. With one backtest window there is no out-of-sample
score (reported as null). One caveat at the category and total levels: the ``item_sum`` candidate
sums the item forecasts of the item model chosen on all windows 1..K, so its window-1 score there
was not made blind to window 1 (the item level's own nested score is); the same holds for the chosen
forecasts the drift and reconciliation checks score on window 1.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from seasonrec.forecasting import series as S

ALL, SMOOTH, INTERMITTENT, AGGREGATE = "all", "smooth", "intermittent", "aggregate"
_SEGMENT_WEEKS = 26
_SMOOTH_SHARE = 0.5
_ELIGIBLE_COVERAGE = 0.9


def series_segments(history: DataFrame, selection: str) -> DataFrame:
    """level, series_id, window, segment for every (series, origin) of ``history`` (see ``history_before``)."""
    keys = history.select("level", "series_id", "window").distinct()
    if selection == "global":
        return keys.withColumn("segment", F.lit(ALL))
    recent = history.where(F.col("week_start") >= F.date_sub("cutoff", 7 * _SEGMENT_WEEKS))
    share = recent.groupBy("level", "series_id", "window").agg(
        F.avg((F.col("quantity") > 0).cast("double")).alias("share"))
    return keys.join(share, ["level", "series_id", "window"], "left").select(
        "level", "series_id", "window",
        F.when(F.col("level") != S.ITEM, F.lit(AGGREGATE))
        .when(F.coalesce(F.col("share"), F.lit(0.0)) >= _SMOOTH_SHARE, F.lit(SMOOTH))
        .otherwise(F.lit(INTERMITTENT)).alias("segment"))


def rank_models(errors: Any, preference: list[str]) -> Any:
    """Rank models per (level, segment) on the backtest rows in ``errors`` (pandas).

    ``errors`` columns: level, segment, item_id, window, model, n_weeks, actual, pinball (mean per
    week), abs_error, mean_forecast. Returns pandas level, segment, model, score, wape, mean_bias,
    eligible, rank (0 = chosen); scores are over the series x windows every eligible model forecast.
    """
    import pandas as pd

    order = {m: i for i, m in enumerate(preference)}
    out = []
    for (level, segment), part in errors.groupby(["level", "segment"], sort=True):
        pairs = part.groupby("model")[["item_id", "window"]].apply(lambda p: len(p.drop_duplicates()))
        eligible = sorted(m for m, n in pairs.items() if n >= _ELIGIBLE_COVERAGE * pairs.max())
        scored = part[part["model"].isin(eligible)]
        per_pair = scored.groupby(["item_id", "window"])["model"].nunique()
        common = per_pair[per_pair == len(eligible)].index
        scored = scored.set_index(["item_id", "window"]).loc[common].reset_index()
        totals = scored.assign(loss=scored["pinball"] * scored["n_weeks"]).groupby("model").agg(
            loss=("loss", "sum"), actual=("actual", "sum"), abs_error=("abs_error", "sum"),
            mean_forecast=("mean_forecast", "sum"))
        actual = totals["actual"]
        rows = pd.DataFrame({
            "level": level, "segment": segment, "model": totals.index,
            "score": (totals["loss"] / actual.where(actual > 0, 1.0)).to_numpy(),
            "wape": (totals["abs_error"] / actual).where(actual > 0).to_numpy(),
            "mean_bias": ((totals["mean_forecast"] - actual) / actual).where(actual > 0).to_numpy(),
            "eligible": True})
        others = [m for m in part["model"].unique() if m not in eligible]
        rows = pd.concat([rows, pd.DataFrame({"level": level, "segment": segment, "model": others,
                                              "score": float("nan"), "wape": float("nan"),
                                              "mean_bias": float("nan"), "eligible": False})], ignore_index=True)
        rows["pref"] = rows["model"].map(lambda m: order.get(m, len(order)))
        rows = rows.sort_values(["eligible", "score", "pref"], ascending=[False, True, True], na_position="last")
        rows["rank"] = range(len(rows))
        out.append(rows.drop(columns="pref"))
    if not out:
        return pd.DataFrame(columns=["level", "segment", "model", "score", "wape", "mean_bias", "eligible", "rank"])
    return pd.concat(out, ignore_index=True)


def nested_report(errors: Any, preference: list[str]) -> list[dict[str, Any]]:
    """Choose on windows 2..K, score the choice on window 1 (pandas ``errors`` as in ``rank_models``).

    Returns one dict per (level, segment): chosen (on the earlier windows), its window-1 score,
    WAPE and mean bias, and the model that was best on window 1 in hindsight with its score.
    Empty when there are fewer than two backtest windows.
    """
    windows = sorted(errors["window"].unique()) if len(errors) else []
    if len(windows) < 2:
        return []
    latest = windows[0]
    chosen = rank_models(errors[errors["window"] > latest], preference)
    held_out = rank_models(errors[errors["window"] == latest], preference)
    report = []
    for (level, segment), part in chosen[chosen["rank"] == 0].groupby(["level", "segment"]):
        model = part["model"].iloc[0]
        scores = held_out[(held_out["level"] == level) & (held_out["segment"] == segment)]
        if scores.empty:
            continue
        mine = scores[scores["model"] == model]
        best = scores[scores["rank"] == 0].iloc[0]

        def number(value: Any) -> float | None:
            return None if value != value else round(float(value), 4)  # NaN -> None

        report.append({
            "level": level, "segment": segment, "chosen_on_windows": [int(w) for w in windows[1:]],
            "chosen": model, "scored_on_window": int(latest),
            "out_of_sample_score": number(mine["score"].iloc[0]) if len(mine) else None,
            "out_of_sample_wape": number(mine["wape"].iloc[0]) if len(mine) else None,
            "out_of_sample_mean_bias": number(mine["mean_bias"].iloc[0]) if len(mine) else None,
            "hindsight_best": best["model"], "hindsight_best_score": number(best["score"])})
    return report


def choose_models(errors: DataFrame, candidates: DataFrame, segments: DataFrame,
                  preference: list[str]) -> tuple[DataFrame, list[dict[str, Any]], Any]:
    """The model of every final series, chosen per segment on all backtest windows.

    ``errors``: ``backtest_errors`` rows with a ``segment`` column; ``candidates``: every model's
    forecasts (window 0 = the real forecast); ``segments``: ``series_segments``. Each final series
    takes the best-ranked model of its segment that forecast it (else of its level, else the
    configured order). Returns (weights: level, series_id, model, weight 1.0, chosen; the nested
    report; the pandas ranking on all windows).
    """
    import pandas as pd

    local = errors.select("level", "segment", "item_id", "window", "model", "n_weeks", "actual", "pinball",
                          "abs_error", "mean_forecast").toPandas()
    report = nested_report(local, preference)
    ranking = rank_models(local, preference)
    level_ranking = rank_models(local.assign(segment=ALL), preference)
    spark = candidates.sparkSession
    schema = "level string, segment string, model string, rank int"
    frames = [spark.createDataFrame(pd.DataFrame(r[["level", "segment", "model", "rank"]]).astype({"rank": "int32"}),
                                    schema) if len(r) else spark.createDataFrame([], schema)
              for r in (ranking, level_ranking)]
    by_segment = frames[0]
    by_level = frames[1].select("level", "model", F.col("rank").alias("level_rank"))
    rank_of = F.create_map(*[x for i, m in enumerate(preference) for x in (F.lit(m), F.lit(i))])
    final = (candidates.where(F.col("window") == 0).select("level", "series_id", "model").distinct()
             .join(segments.where(F.col("window") == 0).drop("window"), ["level", "series_id"], "left")
             .join(by_segment, ["level", "segment", "model"], "left")
             .join(by_level, ["level", "model"], "left"))
    order = F.coalesce(F.col("rank"), 100 + F.col("level_rank"), 1000 + rank_of[F.col("model")])
    best = Window.partitionBy("level", "series_id").orderBy(order, "model")
    weights = (final.withColumn("r", F.row_number().over(best)).where("r = 1")
               .select("level", "series_id", "model", F.lit(1.0).alias("weight"), F.col("model").alias("chosen")))
    return weights, report, ranking


def chosen_rows(candidates: DataFrame, segments: DataFrame, ranking: Any) -> DataFrame:
    """The candidate rows of each (level, segment)'s chosen model (rank 0 of ``ranking``) at every window.

    ``candidates``: forecasts (``FORECAST_SCHEMA``); ``segments``: ``series_segments``; ``ranking``:
    the pandas ranking ``choose_models`` returns. Series without a segment count as ``all``.
    """
    import pandas as pd

    spark = candidates.sparkSession
    best = ranking[ranking["rank"] == 0][["level", "segment", "model"]] if len(ranking) else pd.DataFrame()
    schema = "level string, segment string, model string"
    picked = spark.createDataFrame(best, schema) if len(best) else spark.createDataFrame([], schema)
    return (candidates.join(segments, ["level", "series_id", "window"], "left")
            .fillna(ALL, subset=["segment"])
            .join(F.broadcast(picked), ["level", "segment", "model"])
            .drop("segment"))
