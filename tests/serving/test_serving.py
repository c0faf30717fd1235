"""The recommender as a registered MLflow pyfunc model: registry + alias, parity with batch scoring,
cold start, baskets, recent activity from Delta, and the real `seasonrec serve` HTTP server."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from seasonrec import tables, tracking
from seasonrec.serving.recommender import fold_purchases
from support import train_on_feature_lake

REPO = Path(__file__).resolve().parents[2]
K = 10


@pytest.fixture(scope="module")
def registered(feature_lake, tmp_path_factory):
    """A tiny model trained by the real pipeline on the shared feature lake, registered by the real
    `register` job; returns (ctx, register summary, raw ids of some known users)."""
    from seasonrec.serving.registry import register_recommender

    ctx = train_on_feature_lake(feature_lake, tmp_path_factory.mktemp("serving"))
    config = ctx.config
    summary = register_recommender(ctx, config.paths.model_dir, config.split.validation_end)
    raw = [r["user_raw"] for r in ctx.lake.read(tables.BRONZE_TRANSACTIONS).where("user_raw is not null")
           .select("user_raw").distinct().orderBy("user_raw").limit(25).collect()]
    return ctx, summary, raw


def _pyfunc(ctx, summary):
    import mlflow

    mlflow.set_tracking_uri(tracking.tracking_uri(ctx.config))
    mlflow.set_registry_uri(tracking.tracking_uri(ctx.config))
    return mlflow.pyfunc.load_model(summary["model_uri"])


def _batch_lists(ctx, raw_ids, day):
    """`seasonrec score`'s lists for these raw users at ``day`` (the batch path), keyed by raw id."""
    from seasonrec.features.as_of import user_features_as_of
    from seasonrec.features.silver import pseudonym, salt
    from seasonrec.scoring.engine import scoring_run

    by_pseudonym = {pseudonym(r, salt(ctx.config.features, ctx.config.env)): r for r in raw_ids}
    users = user_features_as_of(ctx.lake, ctx.config, day).where(F.col("user_id").isin(list(by_pseudonym)))
    rows = scoring_run(ctx, ctx.config.paths.model_dir, users, day, top_k=K).recommendations.collect()
    lists: dict = {}
    for row in sorted(rows, key=lambda r: (r["user_id"], r["rank"])):
        lists.setdefault(by_pseudonym[row["user_id"]], []).append((row["item_id"], row["score"]))
    return lists


def test_register_logs_a_pyfunc_with_signature_and_promotes_by_the_gate(registered):
    ctx, summary, _ = registered
    client = tracking.client(ctx.config)
    name = ctx.config.serving.model_name
    version = client.get_model_version(name, summary["registered_version"])
    assert version.tags["seasonrec.model_version"] == summary["model_version"]
    gate = summary["gate"]
    assert gate["passed"] == (gate["recall"] >= gate["repeat_buy_recall"])
    aliases = client.get_registered_model(name).aliases
    assert (str(aliases.get(ctx.config.serving.champion_alias)) == summary["registered_version"]) == gate["passed"]
    model = _pyfunc(ctx, summary)
    inputs = {c.name for c in model.metadata.get_input_schema().inputs}
    assert inputs == {"user_id", "date", "country", "recent_items", "k", "anomaly_7d_c"}  # all optional
    assert model.metadata.saved_input_example_info is not None


def test_served_lists_equal_batch_scoring_and_never_carry_the_raw_id(registered):
    ctx, summary, raw = registered
    day = ctx.config.split.validation_end
    model = _pyfunc(ctx, summary)
    answer = model.predict(pd.DataFrame({"user_id": raw, "date": day.isoformat(), "k": K}))
    assert not set(raw) & set(answer.astype(str).to_numpy().ravel())
    batch = _batch_lists(ctx, raw, day)
    assert len(batch) == len(raw)
    for request, user in enumerate(raw):
        served = answer[answer["request"] == request].sort_values("rank")
        assert list(served["item_id"]) == [item for item, _ in batch[user]], user
        np.testing.assert_allclose(served["score"], [s for _, s in batch[user]], rtol=1e-5, atol=1e-6)
        assert not served["cold_start"].any()


def test_unknown_user_gets_the_cold_start_path_and_a_basket_steers_the_list(registered):
    ctx, summary, raw = registered
    day = ctx.config.split.validation_end.isoformat()
    model = _pyfunc(ctx, summary)
    cold = model.predict(pd.DataFrame([{"user_id": "never-seen-42", "date": day, "country": "Germany", "k": 5}]))
    assert len(cold) == 5 and cold["cold_start"].all() and cold["title"].notna().all()
    assert set(cold["reason"]) <= {"in season", "popular now"}
    plain = model.predict(pd.DataFrame([{"user_id": raw[0], "date": day, "k": K}]))
    basket = list(plain["item_id"][:2])
    steered = model.predict(pd.DataFrame([{"user_id": raw[0], "date": day, "recent_items": basket, "k": K}]))
    assert not set(basket) & set(steered["item_id"])  # the basket is not recommended back
    assert list(steered["item_id"]) != list(plain["item_id"])


def test_malformed_requests_are_refused_with_one_sentence(registered):
    from seasonrec.serving.recommender import RequestError

    ctx, summary, raw = registered
    model = _pyfunc(ctx, summary)
    day = ctx.config.split.validation_end.isoformat()
    for request, expected in (({"user_id": raw[0], "date": "someday"}, "is not a date"),
                              ({"user_id": raw[0], "date": "2031-01-01"}, "is outside what this model serves"),
                              ({"user_id": raw[0], "date": day, "k": 0}, "k must be a whole number"),
                              ({"user_id": raw[0]}, "every request needs a date")):
        with pytest.raises(RequestError, match=expected) as failure:
            model.predict(pd.DataFrame([request]))
        assert raw[0] not in str(failure.value)


def test_fold_purchases_moves_a_row_to_a_later_day():
    row = {"user_id": "u", "recency_days": 3, "frequency": 2, "last_items": [5, 7], "bought_items": [5, 7],
           "bought_counts": [2, 1], "bought_days_ago": [3, 10]}
    as_of = dt.date(2011, 9, 1)
    assert fold_purchases(row, [], as_of, as_of, 4, 10) == row
    later = fold_purchases(row, [(9, dt.datetime(2011, 9, 3, 10)), (7, dt.datetime(2011, 9, 4, 9)),
                                 (1, dt.datetime(2011, 9, 9))], as_of, dt.date(2011, 9, 5), 3, 10)
    assert later["last_items"] == [7, 9, 5]  # newest first, deduplicated, cut at the history length
    # most-bought first, ties: most recent first (as gold.bought_summary orders them)
    assert later["bought_items"] == [7, 5, 9] and later["bought_counts"] == [2, 2, 1]
    assert later["bought_days_ago"] == [1, 7, 2]
    assert later["recency_days"] == 1 and later["frequency"] == 4  # the purchase on the 9th is after the day


def test_a_purchase_landing_through_the_stream_changes_the_served_list(registered, tmp_path):
    """A purchase file picked up by the real `seasonrec stream` job reaches the served model through
    user_recent_activity (Delta) when the request has no basket."""
    from seasonrec.cli import job_args
    from seasonrec.context import JobContext
    from seasonrec.lake import Lake
    from seasonrec.serving.pyfunc import ACTIVITY_ENV
    from seasonrec.streaming import jobs as stream_jobs

    ctx, summary, raw = registered
    day = ctx.config.split.validation_end
    lake_root, incoming = tmp_path / "stream_lake", tmp_path / "incoming"
    config = ctx.config.model_copy(update={
        "paths": ctx.config.paths.model_copy(update={"lake_root": str(lake_root),
                                                     "checkpoint_dir": str(tmp_path / "checkpoints")}),
        "streaming": ctx.config.streaming.model_copy(update={"input_dir": str(incoming)})})
    os.environ[ACTIVITY_ENV] = str(lake_root / tables.USER_RECENT_ACTIVITY)
    try:
        model = _pyfunc(ctx, summary)
        request = pd.DataFrame([{"user_id": raw[1], "date": (day + dt.timedelta(days=2)).isoformat(), "k": K}])
        before = model.predict(request)
        bought = str(before["item_id"].iloc[-1])
        incoming.mkdir()
        (incoming / "events-1.csv").write_text(
            "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
            f"900001,{bought},SOMETHING,2,{day.isoformat()} 12:00:00,1.5,{raw[1]},United Kingdom\n")
        result = stream_jobs.run(JobContext(config=config, spark=ctx.spark, lake=Lake(ctx.spark, str(lake_root)),
                                            job="stream"), job_args(stream_jobs, "--once"))
        assert (result["bronze_rows_added"], result["users_updated"]) == (1, 1), result
        model.unwrap_python_model().activity.refresh_seconds = 0
        after = model.predict(request)
    finally:
        os.environ.pop(ACTIVITY_ENV, None)
    assert list(after["item_id"]) != list(before["item_id"])
    assert (after.loc[after["item_id"] == bought, "reason"] == "re-buy").all()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(port: int, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(payload).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_seasonrec_serve_answers_on_loopback(registered, tmp_path):
    ctx, summary, raw = registered
    if not summary["champion"]:
        pytest.skip("the tiny model did not pass the gate, so there is no champion to serve")
    port = _free_port()
    overrides = [f"paths.{k}={getattr(ctx.config.paths, k)}" for k in ("lake_root", "mlflow_dir", "model_dir")]
    command = [sys.executable, "-m", "seasonrec.cli", "serve", "--conf", str(REPO / "conf" / "test.yaml"),
               "--port", str(port), *[a for o in overrides for a in ("--set", o)]]
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(1)
        day = ctx.config.split.validation_end.isoformat()
        status, body = _post(port, {"dataframe_records": [{"user_id": raw[2], "date": day, "k": K},
                                                          {"user_id": "brand-new", "date": day, "k": 3}]})
        assert status == 200, body
        rows = pd.DataFrame(body["predictions"])
        batch = _batch_lists(ctx, [raw[2]], ctx.config.split.validation_end)
        assert list(rows[rows["request"] == 0].sort_values("rank")["item_id"]) == [i for i, _ in batch[raw[2]]]
        assert rows[rows["request"] == 1]["cold_start"].all() and (rows["request"] == 1).sum() == 3
        assert raw[2] not in json.dumps(body)
        for bad, reason in (({"user_id": raw[2], "date": "not-a-date"}, "is not a date"),
                            ({"user_id": raw[2]}, "every request needs a date")):
            status, body = _post(port, {"dataframe_records": [bad]})
            # 400; the reason is the last line of the stack trace MLflow's server returns
            assert 400 <= status < 500 and reason in body.get("stack_trace", "").strip().splitlines()[-1], body
            assert raw[2] not in json.dumps(body), body  # not even in an error
        # recent_items in some records of a batch only (the others read as NaN by MLflow's parser)
        status, body = _post(port, {"dataframe_records": [{"user_id": raw[2], "date": day,
                                                           "recent_items": [batch[raw[2]][0][0]], "k": 5},
                                                          {"user_id": "brand-new", "date": day, "k": 2}]})
        assert status == 200, body
        answers = pd.DataFrame(body["predictions"])
        assert batch[raw[2]][0][0] not in set(answers[answers["request"] == 0]["item_id"])
        assert (answers["request"] == 1).sum() == 2
        status, body = _post(port, {"dataframe_records": [{"user_id": raw[2], "date": day, "recent_items": "22423"}]})
        assert 400 <= status < 500 and "recent_items must be a list" in body.get("stack_trace", ""), body
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


def test_served_weather_comes_from_the_request_or_what_the_snapshot_knew(registered):
    """Weather in a served answer (issue #19): at the snapshot date the batch's weather; a later date
    gets the decayed persistence of what the snapshot knew (never a realised later day); a request's
    ``anomaly_7d_c`` replaces the country's; an unknown country is not an error."""
    from seasonrec.core.contract import WEATHER
    from seasonrec.features.item_weather import country_weather
    from seasonrec.scoring.engine import item_side_at
    from seasonrec.serving.recommender import RequestError, SeasonalRecommender
    from seasonrec.training.artifacts import load_scoring_model

    ctx, summary, raw = registered
    model = _pyfunc(ctx, summary)
    recommender = model.unwrap_python_model().recommender
    snapshot = recommender.snapshot
    day = snapshot.day
    assert snapshot.weather_context is not None and snapshot.weather_context["date"].max() < day
    served = recommender._context(day)[WEATHER]
    batch = item_side_at(ctx, load_scoring_model(ctx.config.paths.model_dir), day, True)[WEATHER]
    assert served.by_country == batch.by_country and served.by_country
    np.testing.assert_array_equal(served.sensitivity, batch.sensitivity)
    later_day = day + dt.timedelta(days=10)
    later = recommender._context(later_day)[WEATHER]
    assert later.by_country == country_weather(snapshot.weather_context, day, later_day, snapshot.weather_regions,
                                               ctx.config.weather)
    realised = country_weather(ctx.lake.read(tables.CONTEXT_DAILY).toPandas(), later_day, later_day,
                               snapshot.weather_regions, ctx.config.weather)
    assert later.by_country != realised
    # Through the real pyfunc (signature included): the optional field is accepted, old requests still work.
    iso = day.isoformat()
    for extra in ({}, {"anomaly_7d_c": -8.0}, {"country": "Atlantis"}):
        answer = model.predict(pd.DataFrame([{"user_id": raw[0], "date": iso, "k": K, **extra}]))
        assert len(answer) == K
    with pytest.raises(RequestError, match="anomaly_7d_c"):
        model.predict(pd.DataFrame([{"user_id": raw[0], "date": iso, "anomaly_7d_c": 99.0}]))
    # A ranker that reads the weather ranks differently for a cold and a warm request of the same user.
    scoring = recommender.model
    weather_model = scoring if scoring.uses_weather else scoring.weather_ablation()
    reader = SeasonalRecommender(weather_model, snapshot, recommender._salt)
    cold, warm = (reader.recommend(pd.DataFrame([{"user_id": raw[0], "date": iso, "k": K, "anomaly_7d_c": value}]))
                  for value in (-8.0, 8.0))
    assert not np.allclose(cold["score"].to_numpy(), warm["score"].to_numpy())
