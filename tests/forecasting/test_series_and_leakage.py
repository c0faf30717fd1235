"""Series building, forecast origins, and the leakage guarantees of the backtest (no Horovod here)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from seasonrec.config import ForecastConfig
from seasonrec.forecasting import deep, gbm
from seasonrec.forecasting import series as S
from seasonrec.forecasting.baselines import baseline_forecasts


def test_origins_skip_the_partial_week_of_as_of_and_do_not_overlap():
    wednesday = S.plan_origins(dt.date(2011, 8, 31), horizon=4, backtest_windows=2)
    final = wednesday[0]
    assert final.cutoff == dt.date(2011, 8, 29)  # history = full weeks up to Sunday 2011-08-28
    assert final.output_weeks == [dt.date(2011, 9, 5), dt.date(2011, 9, 12), dt.date(2011, 9, 19),
                                  dt.date(2011, 9, 26)]  # the 4 weeks of September
    assert final.steps == 5  # the models step over the partly observed week of 2011-08-29
    assert [o.cutoff for o in wednesday[1:]] == [dt.date(2011, 8, 1), dt.date(2011, 7, 4)]
    for later, earlier in zip(wednesday[1:], wednesday[2:], strict=False):
        assert earlier.weeks[-1] < later.weeks[0]
    assert wednesday[1].weeks[-1] < final.cutoff
    sunday = S.plan_origins(dt.date(2011, 10, 2), horizon=13, backtest_windows=1)[0]
    assert sunday.cutoff == sunday.first_output == dt.date(2011, 10, 3) and sunday.steps == 13


def test_weekly_series_fill_zero_weeks_from_first_sale_and_net_returns(spark):
    monday = dt.date(2011, 1, 3)
    week = dt.timedelta(weeks=1)
    interactions = spark.createDataFrame(
        [("a", monday, 3.0), ("a", monday, 2.0), ("a", monday + 3 * week, 1.0), ("b", monday + 2 * week, 4.0)],
        "item_id string, week_start date, quantity double")
    items = spark.createDataFrame([("a", "x", 1.0), ("b", None, 2.0)], "item_id string, category string, price double")
    calendar = S.weekly_calendar(spark, monday, monday + 4 * week, None)
    rows = S.weekly_item_demand(interactions, items, calendar, monday + 4 * week).toPandas()
    a = rows[rows.item_id == "a"].sort_values("week_start")
    assert a.quantity.tolist() == [5.0, 0.0, 0.0, 1.0, 0.0]
    assert a.orders.tolist() == [2.0, 0.0, 0.0, 1.0, 0.0]  # no invoice column: sales lines
    with_invoice = spark.createDataFrame(
        [("a", monday, 3.0, "i1"), ("a", monday, 2.0, "i1"), ("a", monday, 1.0, "i2")],
        "item_id string, week_start date, quantity double, invoice string")
    orders = S.weekly_item_demand(with_invoice, items, calendar, monday).toPandas()
    assert orders.quantity.tolist() == [6.0] and orders.orders.tolist() == [2.0]  # distinct invoices
    b = rows[rows.item_id == "b"].sort_values("week_start")
    assert b.week_start.tolist() == [monday + 2 * week, monday + 3 * week, monday + 4 * week]
    assert set(b.category) == {S.UNKNOWN_CATEGORY}
    assert rows[["woy_sin", "woy_cos"]].notna().all().all()


def _series_frame(spark, values: dict[str, list[float]], start: dt.date):
    rows = [(S.ITEM, key, start + dt.timedelta(weeks=i), float(v)) for key, ys in values.items()
            for i, v in enumerate(ys)]
    return spark.createDataFrame(rows, "level string, series_id string, week_start date, quantity double")


def test_backtest_forecasts_do_not_change_when_the_future_is_corrupted(spark):
    """The leakage test: windows see only weeks before their origin, so scrambling later weeks
    changes nothing in any backtest forecast (and does change the final one, which sees them)."""
    clean, corrupted, start, origins = _leakage_case()
    config = ForecastConfig(horizon=6, backtest_windows=2, min_history_weeks=8)

    def forecasts(values):
        series = _series_frame(spark, values, start)
        history = S.history_before(series, S.origins_frame(spark, origins), config.min_history_weeks)
        seen = history.groupBy("window").agg({"week_start": "max", "cutoff": "max"}).collect()
        for row in seen:
            assert row["max(week_start)"] < row["max(cutoff)"]
        frame = baseline_forecasts(history, config, ["seasonal_naive", "ets", "croston", "tsb"], 2).toPandas()
        return frame.sort_values(["window", "series_id", "model", "week_start"]).reset_index(drop=True)

    before, after = forecasts(clean), forecasts(corrupted)
    # Window 2's history ends before window 1's origin: untouched by the corruption.
    untouched = before["window"] == 2
    pd.testing.assert_frame_equal(before[untouched], after[untouched])
    assert not np.allclose(before.loc[before.window == 0, "p50"], after.loc[after.window == 0, "p50"])
    assert set(before.window) == {0, 1, 2}
    assert (before[["p10", "p50", "p90"]] >= 0).all().all()


def _leakage_case() -> tuple[dict[str, list[float]], dict[str, list[float]], dt.date, list[S.Origin]]:
    """Clean weekly values, the same with every week from the first backtest origin on scrambled,
    the start week and the origins (final + 2 backtest windows of 6 weeks)."""
    rng = np.random.default_rng(0)
    start = dt.date(2009, 1, 5)
    n_weeks = 80
    clean = {"steady": rng.poisson(6, n_weeks).tolist(),
             "sparse": (rng.random(n_weeks) < 0.2).astype(float).tolist(),
             "seasonal": (5 + 4 * np.sin(np.arange(n_weeks) / 52 * 2 * np.pi)).round().tolist()}
    origins = S.plan_origins(start + dt.timedelta(weeks=n_weeks, days=-1), horizon=6, backtest_windows=2)
    first_backtest_cutoff = origins[1].cutoff
    corrupted = {k: [v if start + dt.timedelta(weeks=i) < first_backtest_cutoff else v * 50 + 7
                     for i, v in enumerate(ys)] for k, ys in clean.items()}
    return clean, corrupted, start, origins


def test_gbm_forecasts_do_not_change_when_the_future_is_corrupted(spark):
    """The leakage test of the global LightGBM models (items, and category/total series): each
    origin's model trains on targets before it and reads features before each example's own
    origin, so window 2 is untouched."""
    clean, corrupted, start, origins = _leakage_case()
    final = origins[0]
    config = ForecastConfig(horizon=6, backtest_windows=2, min_history_weeks=8, gbm_rounds=40, gbm_origin_stride=1,
                            gbm_min_data_in_leaf=20)
    calendar = S.weekly_calendar(spark, start, final.cutoff + dt.timedelta(weeks=final.steps), None).toPandas()

    def forecasts(values):
        # orders follow the units, so the corrupted future corrupts the order features too
        rows = [(key, "seasonal" if key == "seasonal" else "basic", 2.0, start + dt.timedelta(weeks=i), float(v),
                 float(np.ceil(v / 3)))
                for key, ys in values.items() for i, v in enumerate(ys)
                if start + dt.timedelta(weeks=i) < final.cutoff]
        demand = spark.createDataFrame(rows, "item_id string, category string, price double, week_start date, "
                                             "quantity double, orders double")
        frame, info = gbm.gbm_forecasts(demand, calendar, origins, config, groups=2)
        assert info["windows_skipped"] == []
        return frame.toPandas().sort_values(["window", "series_id", "week_start"]).reset_index(drop=True)

    before, after = forecasts(clean), forecasts(corrupted)
    untouched = before["window"] == 2
    pd.testing.assert_frame_equal(before[untouched], after[untouched])
    assert not np.allclose(before.loc[before.window == 0, "p50"], after.loc[after.window == 0, "p50"])
    assert set(before.window) == {0, 1, 2} and set(before.model) == {"gbm"}
    # the category and total series get their own model's forecasts, leak-free like the items'
    assert set(before.level) == {"item", "category", "total"}
    assert set(before[before.level == "category"].series_id) == {"seasonal", "basic"}
    assert (before[["p10", "p50", "p90", "mean"]] >= 0).all().all()
    assert ((before.p10 <= before.p50) & (before.p50 <= before.p90)).all()


def test_gbm_forecasts_each_window_on_exactly_its_own_weeks_when_as_of_is_mid_week(spark):
    """With --as-of on a Wednesday the final origin steps over the partly observed week (gap + horizon
    steps), but every backtest window forecasts only its own horizon: the same weeks the classical
    models forecast and the backtest scores (items and category/total series)."""
    clean, _, start, _ = _leakage_case()
    as_of = start + dt.timedelta(weeks=79, days=2)  # a Wednesday: the week holding it is partly observed
    origins = S.plan_origins(as_of, horizon=6, backtest_windows=2)
    final = origins[0]
    assert final.steps == 7 and final.first_output == final.cutoff + dt.timedelta(weeks=1)
    rows = [(key, "basic", 2.0, start + dt.timedelta(weeks=i), float(v), None)
            for key, ys in clean.items() for i, v in enumerate(ys) if start + dt.timedelta(weeks=i) < final.cutoff]
    demand = spark.createDataFrame(rows, "item_id string, category string, price double, week_start date, "
                                         "quantity double, orders double")
    calendar = S.weekly_calendar(spark, start, final.cutoff + dt.timedelta(weeks=final.steps), None).toPandas()
    config = ForecastConfig(horizon=6, backtest_windows=2, min_history_weeks=8, gbm_rounds=20, gbm_min_data_in_leaf=20)
    frame = gbm.gbm_forecasts(demand, calendar, origins, config, groups=2)[0].toPandas()
    for origin in origins:
        for (level, series_id), weeks in frame[frame.window == origin.window].groupby(["level", "series_id"]):
            assert sorted(weeks.week_start) == origin.output_weeks, (origin, level, series_id)
    assert set(frame.window) == {0, 1, 2} and set(frame.level) == {"item", "category", "total"}


def test_gbm_features_ignore_every_week_at_or_after_the_origin():
    rng = np.random.default_rng(4)
    calendar = rng.random((200, 4))
    quantity = rng.poisson(4, 150).astype("float64")
    origins = np.array([80, 120])  # global indexes; the item starts at week 3
    orders = np.minimum(quantity, rng.poisson(2, 150)).astype("float64")
    clean = gbm.item_rows(3, quantity, origins, 8, calendar, with_target=False, orders=orders)
    scrambled, scrambled_orders = quantity.copy(), orders.copy()
    scrambled[80 - 3:] = 1e6
    scrambled_orders[80 - 3:] = 1e3
    dirty = gbm.item_rows(3, scrambled, origins, 8, calendar, with_target=False, orders=scrambled_orders)
    first = clean["origin"] == 80
    for key in gbm.ITEM_FEATURES + S.CALENDAR_FEATURES + ["scale"]:
        np.testing.assert_array_equal(clean[key][first], dirty[key][first])
    assert not np.array_equal(clean["lag_1"][~first], dirty["lag_1"][~first])
    for key in gbm.ORDER_FEATURES:  # the order features are computed, and move with later weeks' orders
        assert np.isfinite(clean[key]).any(), key
    assert not np.array_equal(clean["orders_rel_4"][~first], dirty["orders_rel_4"][~first])
    pooled = rng.random(150)
    before = gbm.pooled_features(pooled, clean["origin"], clean["target_week"])
    pooled[80:] = 1e6
    after = gbm.pooled_features(pooled, clean["origin"], clean["target_week"])
    for name in before:
        np.testing.assert_array_equal(before[name][first], after[name][first])
    assert np.isfinite(before["last_year_ramp"]).all() and np.isfinite(before["recent"]).all()


def test_lstm_inputs_ignore_every_week_at_or_after_the_origin():
    rng = np.random.default_rng(1)
    calendar = rng.random((120, 4)).astype("float32")
    spec = deep.ExampleSpec(lookback=12, steps=5, season_length=52, min_history=8)
    quantity = rng.poisson(4, 100).astype("float64")
    origin = 70  # global index; the item starts at week 5
    clean = deep.item_examples(5, quantity, calendar, [origin], spec, with_target=True)
    scrambled = quantity.copy()
    scrambled[origin - 5:] = 1e6
    dirty = deep.item_examples(5, scrambled, calendar, [origin], spec, with_target=True)
    for key in ("history", "future", "scale"):
        np.testing.assert_array_equal(clean[key], dirty[key])
    assert not np.array_equal(clean["target"], dirty["target"])
    # training origins: whole target window observed, after min_history weeks
    starts = deep.training_origins(5, 30, spec)
    assert starts[0] == 5 + 8 and starts[-1] + spec.steps - 1 == 5 + 30 - 1


def test_lstm_model_quantiles_are_ordered_and_the_pinball_loss_trains():
    pytest.importorskip("tensorflow")
    rng = np.random.default_rng(2)
    spec = deep.ExampleSpec(lookback=8, steps=4, season_length=52, min_history=8)
    calendar = rng.random((200, 4)).astype("float32")
    parts = []
    for item in range(6):
        quantity = rng.poisson(2 + item, 150).astype("float64")
        made = deep.item_examples(0, quantity, calendar, deep.training_origins(0, 150, spec), spec, True)
        made["item_index"] = np.full(len(made["scale"]), item + 1)
        made["category_index"] = np.ones(len(made["scale"]), dtype=int)
        parts.append(made)
    examples = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    model = deep.build_model(spec.lookback, spec.steps, n_items=6, n_categories=1, units=8, embedding_dim=4)
    losses = deep.fit_local(model, examples, [0.1, 0.5, 0.9], epochs=4, batch_size=128, learning_rate=0.01)
    assert losses[-1] < losses[0]
    values = deep.predict_quantiles(model, examples)
    assert values.shape == (len(examples["scale"]), spec.steps, 3)
    assert (values >= 0).all() and (np.diff(values, axis=-1) >= 0).all()


def test_model_choice_is_made_on_earlier_windows_and_scored_on_the_latest():
    """Nested selection: "lucky" wins window 1 only; "steady" wins windows 2 and 3. The choice made
    on windows 2-3 is "steady", and the reported out-of-sample score is steady's score on window 1
    (not the hindsight best's), so a rule tuned on the scored weeks cannot look good."""
    from seasonrec.forecasting import selection as SEL

    rows = []
    for window in (1, 2, 3):
        for item in ("a", "b", "c"):
            for model, loss in (("steady", 1.0), ("lucky", 0.5 if window == 1 else 3.0)):
                rows.append({"level": "item", "segment": SEL.ALL, "item_id": item, "window": window, "model": model,
                             "n_weeks": 4, "actual": 10.0, "pinball": loss, "abs_error": 4 * loss,
                             "mean_forecast": 10.0 + loss})
    # a model that forecast only one series is no global candidate, however good its score
    rows.append({"level": "item", "segment": SEL.ALL, "item_id": "a", "window": 2, "model": "rare", "n_weeks": 4,
                 "actual": 10.0, "pinball": 0.01, "abs_error": 0.04, "mean_forecast": 10.0})
    errors = pd.DataFrame(rows)
    report = SEL.nested_report(errors, ["lucky", "steady", "rare"])
    assert len(report) == 1
    entry = report[0]
    assert entry["chosen"] == "steady" and entry["chosen_on_windows"] == [2, 3] and entry["scored_on_window"] == 1
    assert entry["out_of_sample_score"] == pytest.approx(4 * 1.0 * 3 / 30)  # steady's window-1 loss / units
    assert entry["hindsight_best"] == "lucky" and entry["hindsight_best_score"] < entry["out_of_sample_score"]
    ranking = SEL.rank_models(errors, ["lucky", "steady", "rare"])
    assert ranking.sort_values("rank").model.tolist() == ["steady", "lucky", "rare"]
    assert SEL.nested_report(errors[errors.window == 1], ["lucky", "steady"]) == []
