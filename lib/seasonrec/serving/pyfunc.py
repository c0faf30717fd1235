"""The recommender as an MLflow ``pyfunc`` model: what `mlflow models serve` and Model Serving load.

Artifacts (logged by `seasonrec.serving.registry.register_recommender`):
- ``model``: the trained model version directory (`seasonrec.training.artifacts` layout);
- ``snapshot``: the serving snapshot (`seasonrec.serving.snapshot`);
- ``serving``: serving.json, where recent activity lives and how the salt is found.

Request (``POST /invocations``, JSON)::

    {"dataframe_records": [{"user_id": "17850", "date": "2011-12-01", "country": "United Kingdom",
                            "recent_items": ["85123A"], "k": 5}]}

Answer: ``{"predictions": [{"request": 0, "rank": 1, "item_id": ..., "score": ..., "title": ...,
"category": ..., "price": ..., "reason": "similar to ...", "cold_start": false}, ...]}``.

Recent activity: a request without ``recent_items`` uses the purchases the streaming job wrote to
``user_recent_activity`` after the snapshot date. The table is re-read at most every
``activity_refresh_seconds`` and only when its Delta version changed (a snapshot reloaded on an
interval; on Databricks, point ``SEASONREC_ACTIVITY_TABLE`` at a synced/online table path or
re-register daily). The salt comes from the environment variable named in serving.json (the same
one the features job used), so pseudonyms match silver.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from typing import Any

import mlflow.pyfunc
import pandas as pd
from threadpoolctl import threadpool_limits

from seasonrec.features.silver import resolve_salt
from seasonrec.lake import read_without_spark
from seasonrec.serving.recommender import Purchase, SeasonalRecommender
from seasonrec.serving.snapshot import load_snapshot
from seasonrec.training.artifacts import load_scoring_model

log = logging.getLogger("seasonrec")

SERVING_FILE = "serving.json"
ACTIVITY_ENV = "SEASONREC_ACTIVITY_TABLE"


class RecentActivity:
    """Purchases per pseudonymous user from ``user_recent_activity``, reloaded on an interval."""

    def __init__(self, path: str | None, refresh_seconds: float):
        self.path = path
        self.refresh_seconds = refresh_seconds
        self._version: int | None = None
        self._by_user: dict[str, list[Purchase]] = {}
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> dict[str, list[Purchase]]:
        """The latest purchases per user (reloading when the interval passed and the table changed)."""
        if self.path is None:
            return {}
        with self._lock:
            if time.monotonic() - self._checked >= self.refresh_seconds:
                self._checked = time.monotonic()
                self._reload()
            return self._by_user

    def _reload(self) -> None:
        try:
            loaded = read_without_spark(self.path, ["user_id", "item_ids", "ts"], since_version=self._version)
        except Exception as exc:  # noqa: BLE001 - a bad read must not take requests down; keep the last state
            log.warning("recent activity at %s not reloaded: %s", self.path, exc)
            return
        if loaded is None:
            return
        self._version, columns = loaded
        self._by_user = {user: list(zip(items or [], stamps or [], strict=False))
                         for user, items, stamps in zip(columns["user_id"], columns["item_ids"], columns["ts"],
                                                        strict=True)}
        log.info("recent activity: version %s, %d users", self._version, len(self._by_user))


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """`SeasonalRecommender` behind MLflow's pyfunc interface."""

    def load_context(self, context: Any) -> None:
        """MLflow's load hook: read the serving settings, resolve the salt, load the scoring model and the snapshot from
        ``context.artifacts`` into a `SeasonalRecommender`, and start following recent activity (one BLAS thread, a
        request lock, a frozen GC heap)."""
        with open(os.path.join(context.artifacts["serving"], SERVING_FILE), encoding="utf-8") as handle:
            settings = json.load(handle)
        # The salt of the lake the model was registered from: required unless that was env local/test
        # (a model registered before "env" was recorded counts as production).
        salt = resolve_salt(settings["salt_env"], settings["default_salt"], settings.get("env"))
        # One BLAS/OpenMP thread (numpy's OpenBLAS; LightGBM predicts with num_threads=1 already):
        # predict runs one request at a time under the lock below, and idle pool threads spinning on
        # the other core doubled the CPU per request on 2 cores. `seasonrec serve` also sets the
        # variables before the process starts; this covers servers it does not start (Model Serving).
        threadpool_limits(limits=1)
        model = load_scoring_model(context.artifacts["model"])
        self.recommender = SeasonalRecommender(model, load_snapshot(context.artifacts["snapshot"]), salt)
        self.activity = RecentActivity(os.environ.get(ACTIVITY_ENV) or settings.get("activity_table"),
                                       float(settings.get("activity_refresh_seconds", 10.0)))
        # MLflow's server calls predict from several threads; they only fight over the GIL (measured:
        # 52 vs 82 requests/s with one lock). And the loaded model is ~340k long-lived objects: moving
        # them out of the collector's reach turns 230-290 ms full-GC stalls into < 1 ms.
        self._lock = threading.Lock()
        gc.collect()
        gc.freeze()

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Requests -> ranked answers (see the module docstring).

        A malformed request raises `RequestError` (a ValueError): MLflow's server answers 400
        BAD_REQUEST and the reason is the last line of the answer's ``stack_trace``. Not an
        MlflowException on purpose: for those the server prefixes the message with the whole request
        frame, which would echo the raw user id back (and into logs).
        """
        with self._lock:
            return self.recommender.recommend(model_input, self.activity.current())
