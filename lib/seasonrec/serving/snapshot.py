"""The serving snapshot: everything a served model needs besides its weights, cut at one date.

Batch scoring (`seasonrec score --date D`) reads the lake at ``D``: user features as of ``D``, the
item signals and co-purchase neighbours of the weeks before ``D``, the sellable items and the
calendar. A server has no Spark, so `build_snapshot` computes the same inputs once, with the same
functions, and `SeasonalRecommender` answers from them in memory. A request for the snapshot date
with no new purchases therefore gets exactly the batch list for that date (tested); purchases that
land after the snapshot reach the user through the request's basket or the streaming job's
``user_recent_activity`` table (`seasonrec.serving.recommender.fold_purchases`).

The snapshot is a directory logged with the MLflow model (`seasonrec.serving.registry`); refresh
it by registering again (``seasonrec register --date <today>``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from seasonrec import tables
from seasonrec.context import JobContext
from seasonrec.core.contract import WEATHER, has_reranker
from seasonrec.features.as_of import user_features_as_of
from seasonrec.features.item_weather import read_context
from seasonrec.features.weather import region_map
from seasonrec.scoring.engine import ScoringOptions, item_side_at, sellable_items

SNAPSHOT_FILE = "snapshot.pkl"
INFO_FILE = "snapshot.json"


@dataclass
class ServingSnapshot:
    """Inputs of the served model at ``day`` (see the module docstring).

    ``users``: gold_user_features rows as of ``day``; ``calendar``: every calendar row (requests may
    name any date it covers); ``catalogue``: item_id, title, category, price; ``item_context``: the
    ranker's item signals and co-purchase neighbours at ``day`` (`item_side_at`); ``sellable``: items
    sold in the ``scoring.sellable_weeks`` before ``day`` (None: no filter); ``options``: the
    `ScoringOptions` fields; ``bought_items_max``: features.bought_items_max. Weather (when the lake
    has `context_daily`): ``item_context`` holds the ranker's `WeatherAt` of ``day``;
    ``weather_context`` the context_daily rows dated before ``day`` (never later: a request for a
    later date gets the decayed persistence of what was known, `WeatherAt.moved_to`),
    ``weather_regions`` the country -> region map and ``weather_config`` the weather config fields.
    """

    day: dt.date
    users: pd.DataFrame
    calendar: pd.DataFrame
    catalogue: pd.DataFrame
    item_context: dict[str, Any]
    sellable: list[Any] | None
    options: dict[str, Any]
    bought_items_max: int
    model_version: str
    weather_context: pd.DataFrame | None = None
    weather_regions: dict[str, str] | None = None
    weather_config: dict[str, Any] | None = None

    def scoring_options(self, top_k: int) -> ScoringOptions:
        """The batch job's options with the list length set to ``top_k``."""
        return ScoringOptions(**{**self.options, "top_k": top_k, "record_worker_stats": False})

    def info(self) -> dict[str, Any]:
        """A JSON-able summary (what is in the snapshot, not the data)."""
        return {"day": self.day.isoformat(), "model_version": self.model_version, "users": len(self.users),
                "items_in_catalogue": len(self.catalogue),
                "sellable_items": None if self.sellable is None else len(self.sellable),
                "calendar": [str(self.calendar["date"].min()), str(self.calendar["date"].max())],
                "options": self.options}


def build_snapshot(ctx: JobContext, model: Any, day: dt.date, options: ScoringOptions) -> ServingSnapshot:
    """Compute the snapshot of ``model``'s inputs at ``day`` from the lake (Spark jobs: user features
    as of ``day``, item signals, co-purchase refit, sellable items). Returns it in memory."""
    users = user_features_as_of(ctx.lake, ctx.config, day).toPandas()
    calendar = ctx.lake.read(tables.CALENDAR).toPandas()
    catalogue = ctx.lake.read(tables.SILVER_ITEMS).select("item_id", "title", "category", "price").toPandas()
    item_context = item_side_at(ctx, model, day, options.fresh_copurchase) if has_reranker(model) else {}
    sellable = sorted(sellable_items(ctx, day, options.sellable_weeks), key=str) if options.sellable_weeks else None
    weather = read_context(ctx.lake) if WEATHER in item_context else None
    return ServingSnapshot(day, users, calendar, catalogue, item_context, sellable, asdict(options),
                           ctx.config.features.bought_items_max, str(model.model_version),
                           weather_context=None if weather is None else weather[weather["date"] < day],
                           weather_regions=region_map(ctx.config) if weather is not None else None,
                           weather_config=ctx.config.weather.model_dump() if weather is not None else None)


def save_snapshot(snapshot: ServingSnapshot, directory: str) -> str:
    """Write ``snapshot`` to ``directory`` (a pickle plus a readable JSON summary); returns the directory."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, SNAPSHOT_FILE), "wb") as handle:
        pickle.dump(snapshot, handle, protocol=pickle.HIGHEST_PROTOCOL)
    with open(os.path.join(directory, INFO_FILE), "w", encoding="utf-8") as handle:
        json.dump(snapshot.info(), handle, indent=1, default=str)
    return directory


def load_snapshot(directory: str) -> ServingSnapshot:
    """The snapshot `save_snapshot` wrote to ``directory``."""
    with open(os.path.join(directory, SNAPSHOT_FILE), "rb") as handle:
        snapshot = pickle.load(handle)  # noqa: S301 - our own artifact, written by save_snapshot
    if not isinstance(snapshot, ServingSnapshot):
        raise TypeError(f"{directory} does not hold a serving snapshot")
    return snapshot
