"""`SeasonalRecommender`: top-K for single requests, in memory, on the batch scoring path.

A request is one row: ``user_id`` (the raw customer id, pseudonymised here with the salt; None for
an anonymous visitor), ``date`` (YYYY-MM-DD, the season of the request), optional ``country``,
optional ``recent_items`` (the session's basket: item ids), optional ``k`` and optional
``anomaly_7d_c`` (the current trailing 7-day temperature anomaly where the user is, degC; without
it the snapshot's weather of the user's country on the day before ``date`` as known at the
snapshot, a country without weather: zeros). The answer has one row
per recommended item: ``request`` (the row's position in the input), rank, item_id, score, title,
category, price, ``reason`` (re-buy / similar to <title> / in season / popular now) and
``cold_start`` (the user has no purchase history). The raw user id is never part of the answer.

How a request is scored (the same functions as `seasonrec score`, `seasonrec.scoring.engine`):
- the user's row is the snapshot's gold_user_features row (an unknown user gets an empty history
  with the request's country: the cold-start path of the same model);
- purchases made after the snapshot (from the streaming job's ``user_recent_activity`` table) are
  folded into the row by `fold_purchases`; the basket enters the recent-items sequence only, and its
  items are not recommended back;
- the calendar row of ``date`` + the snapshot's item signals form the context, and
  `recommend_users` runs the two-tower retrieval, every candidate source and the ranker.

Example::

    rec = SeasonalRecommender(load_scoring_model(model_dir), load_snapshot(snapshot_dir), salt)
    rec.recommend(pd.DataFrame([{"user_id": "17850", "date": "2011-12-01", "k": 5}]))
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seasonrec.config import WeatherConfig
from seasonrec.core.contract import USER_ANOMALY, WEATHER
from seasonrec.features.silver import country_code_of, pseudonym
from seasonrec.scoring.engine import EXCLUDE_COLUMN, build_item_side, recommend_users, rerank_candidates
from seasonrec.serving.snapshot import ServingSnapshot

REQUEST_COLUMNS = ("user_id", "date", "country", "recent_items", "k", USER_ANOMALY)
ANSWER_COLUMNS = ("request", "rank", "item_id", "score", "title", "category", "price", "reason", "cold_start")
DEFAULT_K = 10
MAX_K = 100
REQUEST_KEY = "_request"

# A purchase after the snapshot: (item_id, timestamp).
Purchase = tuple[Any, dt.datetime]


class RequestError(ValueError):
    """A malformed request; the message is one sentence for the caller (never the raw user id)."""


@dataclass(frozen=True)
class ParsedRequest:
    """One validated request: its row in the input, pseudonymous user_id (None: anonymous), day,
    country code (None: not given), basket item ids and list length."""

    position: int
    user_id: str | None
    day: dt.date
    country: str | None
    recent_items: list[str]
    k: int
    anomaly: float | None = None


class SeasonalRecommender:
    """One trained model + its serving snapshot, answering requests without Spark or I/O."""

    def __init__(self, model: Any, snapshot: ServingSnapshot, salt: str):
        self.model = model
        self.snapshot = snapshot
        self._salt = salt
        sellable = set(snapshot.sellable) if snapshot.sellable is not None else None
        categories = (dict(zip(snapshot.catalogue["item_id"], snapshot.catalogue["category"], strict=True))
                      if snapshot.options.get("max_per_category") else None)
        titles = dict(zip(snapshot.catalogue["item_id"], snapshot.catalogue["title"], strict=True))
        self.items, _ = build_item_side(model, sellable, categories, titles)
        self._position = {item: i for i, item in enumerate(np.asarray(model.item_ids).tolist())}
        self._users = snapshot.users.set_index("user_id", drop=False)
        self._calendar = snapshot.calendar.assign(date=pd.to_datetime(snapshot.calendar["date"]).dt.date
                                                  ).set_index("date", drop=False)
        catalogue = snapshot.catalogue.drop_duplicates("item_id").set_index("item_id")
        # Per model item position, as arrays: an answer reads a few rows, and pandas row lookups cost
        # more than the rest of its explanation.
        self._item_info = {column: catalogue[column].reindex(np.asarray(model.item_ids)).to_numpy()
                           for column in ("title", "category", "price")}
        self._history_length = int(model.spec.history_length)
        self._last_day = max(self._calendar.index)
        self._k_limit = min(MAX_K, rerank_candidates(snapshot.scoring_options(1), model))
        self._contexts: dict[dt.date, dict[str, Any]] = {}

    # ------------------------------------------------------------------ public
    def pseudonym(self, raw_user_id: Any) -> str | None:
        """The silver user_id of a raw customer id (None for an anonymous request)."""
        return None if _missing(raw_user_id) else pseudonym(str(raw_user_id), self._salt)

    def recommend(self, requests: pd.DataFrame,
                  activity: Mapping[str, Sequence[Purchase]] | None = None) -> pd.DataFrame:
        """Answer ``requests`` (columns `REQUEST_COLUMNS`; only ``date`` is required).

        ``activity``: purchases after the snapshot per pseudonymous user_id (most recent first),
        e.g. from ``user_recent_activity``; a request without ``recent_items`` uses them.
        Returns DataFrame[`ANSWER_COLUMNS`], ranks 1..k per request. Raises `RequestError`.
        """
        parsed = self._parse(requests)
        activity = activity or {}
        by_day: dict[dt.date, list[ParsedRequest]] = {}
        for request in parsed:
            by_day.setdefault(request.day, []).append(request)
        answers = []
        for day in sorted(by_day):
            group = by_day[day]
            rows = [{**self._user_row(request, activity, day), REQUEST_KEY: request.position} for request in group]
            context = self._context(day)
            options = dataclasses.replace(self.snapshot.scoring_options(max(request.k for request in group)),
                                          explain=True)
            ranked = recommend_users(self.model, pd.DataFrame(rows), context, self.items, options,
                                     user_key=REQUEST_KEY)
            answers.append(self._answer(ranked, group, rows))
        if not answers:
            return pd.DataFrame(columns=list(ANSWER_COLUMNS))
        if len(answers) == 1:  # one day: already ordered by request, then rank
            return answers[0]
        return pd.concat(answers).sort_values(["request", "rank"], kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ parsing
    def _parse(self, requests: pd.DataFrame) -> list[ParsedRequest]:
        """The validated requests, in input order; raises `RequestError` at the first bad one."""
        if not isinstance(requests, pd.DataFrame) or requests.empty:
            raise RequestError("send at least one request with a date, e.g. "
                               '{"dataframe_records": [{"user_id": "17850", "date": "2011-12-01"}]}')
        unknown = sorted(set(requests.columns) - set(REQUEST_COLUMNS))
        if unknown:
            raise RequestError(f"unknown request field(s) {unknown}; allowed: {', '.join(REQUEST_COLUMNS)}")
        if "date" not in requests.columns:
            raise RequestError("every request needs a date (YYYY-MM-DD): the season to recommend for")
        absent = [None] * len(requests)

        def values(name: str) -> list[Any]:  # an optional field the whole batch left out reads as None
            return requests[name].tolist() if name in requests.columns else absent

        users = [self.pseudonym(v) for v in values("user_id")]
        days = [self._date(v) for v in values("date")]
        countries = [None if _missing(v) else country_code_of(v) for v in values("country")]
        baskets = [_item_list(v) for v in values("recent_items")]
        ks = [_k(v, self._k_limit) for v in values("k")]
        anomalies = [_anomaly(v) for v in values(USER_ANOMALY)]
        return [ParsedRequest(*fields) for fields in zip(range(len(requests)), users, days, countries, baskets, ks,
                                                         anomalies, strict=True)]

    def _date(self, value: Any) -> dt.date:
        if _missing(value):
            raise RequestError("every request needs a date (YYYY-MM-DD): the season to recommend for")
        try:
            day = dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise RequestError(f"date '{value}' is not a date; use YYYY-MM-DD") from None
        first, last = self.snapshot.day, self._last_day
        if not first <= day <= last:
            raise RequestError(f"date {day} is outside what this model serves ({first} .. {last}: from its "
                               "snapshot date to the end of the calendar)")
        return day

    # ------------------------------------------------------------------ user rows
    def _user_row(self, request: ParsedRequest, activity: Mapping[str, Sequence[Purchase]],
                  day: dt.date) -> dict[str, Any]:
        known = request.user_id is not None and request.user_id in self._users.index
        row = dict(self._users.loc[request.user_id]) if known else self._cold_row(request.user_id)
        if request.country is not None:
            row["country"] = request.country
        purchases = [] if request.user_id is None else list(activity.get(request.user_id, ()))
        row = fold_purchases(row, self._positions_of(purchases), self.snapshot.day, day, self._history_length,
                             self.snapshot.bought_items_max)
        basket = [p for p in (self._position.get(i) for i in request.recent_items) if p is not None]
        if basket:  # the session's items lead the recent-items sequence; they are not purchases yet
            row["last_items"] = _dedupe(basket + list(row["last_items"]))[: self._history_length]
        columns = self.items.column_of[np.asarray(basket, np.int64)] if basket else np.zeros(0, np.int64)
        row[EXCLUDE_COLUMN] = [int(c) for c in columns if c >= 0]
        row[USER_ANOMALY] = request.anomaly  # None: the country's weather from the context
        row["cold_start"] = not len(row["bought_items"])
        return row

    def _cold_row(self, user_id: str | None) -> dict[str, Any]:
        spec = self.model.spec
        return {"user_id": user_id or "", "user_index": -1, "country": None, "recency_days": -1, "frequency": 0,
                "monetary": 0.0, "category_affinity": [0.0] * spec.n_category_affinity,
                "season_affinity": [0.0] * spec.n_season_affinity, "last_items": [], "bought_items": [],
                "bought_counts": [], "bought_days_ago": [], "as_of": self.snapshot.day}

    def _positions_of(self, purchases: Sequence[Purchase]) -> list[tuple[int, dt.datetime]]:
        return [(self._position[item], ts) for item, ts in purchases if item in self._position]

    # ------------------------------------------------------------------ answers
    def _context(self, day: dt.date) -> dict[str, Any]:
        """The request context of ``day``: its calendar row + the snapshot's item side. Built once per
        day and shared by its requests (nothing downstream writes to it), so per-date caches keyed
        by its item signals (`TwoStageModel.top_lists`) hit."""
        context = self._contexts.get(day)
        if context is None:
            row = self._calendar.loc[day]
            context = {key: (value.item() if isinstance(value, np.generic) else value) for key, value in row.items()}
            context = {**context, **self.snapshot.item_context}
            weather = context.get(WEATHER)
            if weather is not None and day > self.snapshot.day and self.snapshot.weather_context is not None:
                # Only what was known at the snapshot: decayed persistence, never a realised later day.
                context[WEATHER] = weather.moved_to(day, self.snapshot.weather_context,
                                                    self.snapshot.weather_regions or {},
                                                    WeatherConfig(**(self.snapshot.weather_config or {})))
            self._contexts[day] = context
        return context

    def _answer(self, ranked: pd.DataFrame, group: Sequence[ParsedRequest],
                rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
        """The answer rows of one day's ``group``: ``ranked`` (`recommend_users`' lists with their
        reasons, keyed by request position) cut to each request's k, with catalogue fields."""
        k_of = {request.position: request.k for request in group}
        row_of = {row[REQUEST_KEY]: row for row in rows}
        requests = ranked[REQUEST_KEY].to_numpy()
        keep = ranked["rank"].to_numpy() <= np.asarray([k_of[r] for r in requests.tolist()], np.int64)
        requests = requests[keep].astype(np.int64)
        positions = np.asarray([self._position[i] for i in ranked["item_id"].to_numpy()[keep].tolist()], np.int64)
        return pd.DataFrame({
            "request": requests, "rank": ranked["rank"].to_numpy()[keep], "item_id": ranked["item_id"].to_numpy()[keep],
            "score": ranked["score"].to_numpy()[keep], "title": self._item_info["title"][positions],
            "category": self._item_info["category"][positions], "price": self._item_info["price"][positions],
            "reason": ranked["reason"].to_numpy()[keep],
            "cold_start": np.asarray([bool(row_of[r]["cold_start"]) for r in requests.tolist()], bool)})


def fold_purchases(row: dict[str, Any], purchases: Sequence[tuple[int, dt.datetime]], as_of: dt.date,
                   day: dt.date, history_length: int, bought_items_max: int) -> dict[str, Any]:
    """A gold_user_features row cut at ``as_of``, moved to ``day``: ``purchases`` (model item position,
    timestamp) made in [as_of, day) join the recent items, the purchase summary (times bought =
    distinct timestamps, days ago) and recency/frequency; days-ago counts age by ``day - as_of``.
    Category and season affinities keep their ``as_of`` values. Returns a new row; with no purchases
    and ``day == as_of`` it equals ``row``."""
    row = dict(row)
    shift = (day - as_of).days
    new = [(p, ts) for p, ts in purchases if as_of <= pd.Timestamp(ts).date() < day]
    if not shift and not new:
        return row
    counts: dict[int, set[Any]] = {}
    last_day: dict[int, dt.date] = {}
    for item, count, days_ago in zip(row["bought_items"], row["bought_counts"], row["bought_days_ago"], strict=True):
        counts[int(item)] = set(range(int(count)))  # placeholders: only the number of occasions matters
        last_day[int(item)] = day - dt.timedelta(days=int(days_ago) + shift)
    for item, ts in new:
        counts.setdefault(item, set()).add(pd.Timestamp(ts))
        last_day[item] = max(last_day.get(item, dt.date.min), pd.Timestamp(ts).date())
    ranked = sorted(counts, key=lambda i: (-len(counts[i]), (day - last_day[i]).days, i))[:bought_items_max]
    row["bought_items"] = ranked
    row["bought_counts"] = [len(counts[i]) for i in ranked]
    row["bought_days_ago"] = [(day - last_day[i]).days for i in ranked]
    recent_first = [p for p, _ in sorted(new, key=lambda x: pd.Timestamp(x[1]), reverse=True)]
    row["last_items"] = _dedupe(recent_first + list(row["last_items"]))[:history_length]
    if new:
        row["recency_days"] = (day - max(pd.Timestamp(ts).date() for _, ts in new)).days
        row["frequency"] = int(row["frequency"]) + len({pd.Timestamp(ts) for _, ts in new})
    elif int(row["recency_days"]) >= 0:
        row["recency_days"] = int(row["recency_days"]) + shift
    return row


def _dedupe(items: list[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in items))


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def _item_list(value: Any) -> list[str]:
    if _missing(value):
        return []
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise RequestError("recent_items must be a list of item ids, e.g. [\"85123A\", \"22423\"]")
    return [str(v) for v in value]


def _anomaly(value: Any) -> float | None:
    if _missing(value):
        return None
    try:
        anomaly = float(value)
    except (TypeError, ValueError):
        anomaly = float("nan")
    if not -60.0 <= anomaly <= 60.0:
        raise RequestError(f"anomaly_7d_c must be a temperature anomaly in degC (-60 .. 60); got {value!r}")
    return anomaly


def _k(value: Any, upper: int) -> int:
    if _missing(value):
        return min(DEFAULT_K, upper)
    try:
        k = int(value)
    except (TypeError, ValueError):
        k = -1
    if k < 1 or k > upper or k != float(value):
        raise RequestError(f"k must be a whole number from 1 to {upper}; got {value!r}")
    return k
