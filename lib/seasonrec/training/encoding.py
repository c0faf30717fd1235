"""Feature encoding shared by training (inside Spark ``mapInPandas``), evaluation and scoring.

One pandas/numpy implementation, so the vectors the model was trained on and the ones the
scoring UDF builds cannot drift apart. No TensorFlow or Spark imports here.

User-side frame columns (training rows and scoring rows alike): user_id, country, recency_days,
frequency, monetary, category_affinity, season_affinity, history (item_index, most recent first)
and the calendar context: woy_sin, woy_cos, season, is_holiday, days_to_next_event,
days_since_last_event.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from seasonrec.features.calendar import WEEKS

_SEASON_ALIASES = {"fall": 3, "autumn": 3, "winter": 0, "spring": 1, "summer": 2}
CONTEXT_DIM = 9  # woy_sin, woy_cos, season one-hot (4), is_holiday, next-event proximity, last-event proximity
EVENT_DECAY_DAYS = 14.0


@dataclass
class FeatureSpec:
    """Everything needed to turn raw feature rows into model inputs (saved in meta.json)."""

    history_length: int
    user_buckets: int
    item_buckets: int
    countries: list[str]
    southern_hemisphere: list[str]
    n_category_affinity: int
    n_season_affinity: int
    rfm_mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rfm_std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    bought_items_max: int = 100

    @property
    def user_dense_dim(self) -> int:
        """Width of `user_dense_matrix`: 3 RFM + one-hot countries (+ other) + category and season affinities."""
        return 3 + len(self.countries) + 1 + self.n_category_affinity + self.n_season_affinity

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict (stored in meta.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """The spec `to_dict` stored."""
        return cls(**data)


def user_bucket(user_ids: Any, buckets: int) -> np.ndarray:
    """Stable hashed id bucket in [1, buckets); 0 is reserved for out-of-vocabulary users."""
    width = max(1, buckets - 1)
    return np.fromiter((zlib.crc32(str(u).encode("utf-8")) % width + 1 for u in user_ids), dtype=np.int32,
                       count=len(user_ids))


def item_bucket(item_index: np.ndarray, buckets: int) -> np.ndarray:
    """int32 id bucket 1..buckets-1 of each item_index (0 is kept for out-of-vocabulary items)."""
    width = max(1, buckets - 1)
    return (np.asarray(item_index, dtype=np.int64) % width + 1).astype(np.int32)


def season_index(values: Any) -> np.ndarray:
    """Season as 0..3 (winter, spring, summer, autumn) from ints or names; -1 when unknown."""
    out = np.full(len(values), -1, dtype=np.int32)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if isinstance(value, str):
            out[i] = _SEASON_ALIASES.get(value.strip().lower(), -1)
        else:
            out[i] = int(value) % 4
    return out


def _fixed_matrix(series: pd.Series, width: int, dtype: Any) -> np.ndarray:
    out = np.zeros((len(series), width), dtype=dtype)
    for i, value in enumerate(series):
        if value is None:
            continue
        row = np.asarray(value, dtype=dtype)[:width]
        out[i, : len(row)] = row
    return out


def history_matrix(series: pd.Series, length: int) -> np.ndarray:
    """Item indexes (most recent first) -> int32 [n, length] of item_index + 1, 0 = padding."""
    out = np.zeros((len(series), length), dtype=np.int32)
    for i, value in enumerate(series):
        if value is None:
            continue
        row = np.asarray(value, dtype=np.int64)[:length]
        row = row[row >= 0]
        out[i, : len(row)] = row + 1
    return out


def bought_matrices(frame: pd.DataFrame, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """gold_user_features' bought_items / bought_counts / bought_days_ago -> [n, width] arrays:
    item_index + 1 (0 = padding), purchase occasions and days since the last one (zeros when absent)."""
    if "bought_items" not in frame.columns:
        empty = np.zeros((len(frame), width), dtype=np.float32)
        return empty.astype(np.int32), empty, empty
    items = history_matrix(frame["bought_items"], width)
    counts = _fixed_matrix(frame["bought_counts"], width, np.float32)
    days = _fixed_matrix(frame["bought_days_ago"], width, np.float32)
    return items, counts, days


def _float_column(values: Any, n: int) -> np.ndarray:
    """A column (Series, array, or one scalar for every row) as float64 [n]; missing values are NaN.
    NumPy instead of pandas Series arithmetic: a server encodes one row at a time."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.broadcast_to(np.asarray(np.nan if values is None else values, dtype=np.float64), (n,))


def _zero_filled(values: Any, n: int) -> np.ndarray:
    column = _float_column(values, n)
    return np.where(np.isnan(column), 0.0, column)


def context_matrix(columns: Any, n: int, ablate: bool = False) -> np.ndarray:
    """Calendar context -> float32 [n, CONTEXT_DIM]; all zeros when ``ablate``. ``columns``: a frame
    with the context columns, or a mapping of them (`calendar_columns`: scalars for every row)."""
    out = np.zeros((n, CONTEXT_DIM), dtype=np.float32)
    if ablate or n == 0:
        return out
    out[:, 0] = _zero_filled(columns["woy_sin"], n)
    out[:, 1] = _zero_filled(columns["woy_cos"], n)
    season = season_index(columns["season"].tolist())
    has = season >= 0
    out[np.flatnonzero(has), 2 + season[has]] = 1.0
    out[:, 6] = _zero_filled(columns["is_holiday"], n)
    for col, target in (("days_to_next_event", 7), ("days_since_last_event", 8)):
        days = _float_column(columns[col], n)
        proximity = np.exp(-np.abs(days) / EVENT_DECAY_DAYS)
        out[:, target] = np.where(np.isnan(days), 0.0, proximity)
    return out


def _log_rfm(frame: pd.DataFrame) -> np.ndarray:
    """[n, 3] log1p of recency_days, frequency, monetary (missing -> 0, negative -> 0)."""
    return np.stack([np.log1p(np.clip(_zero_filled(frame[c], len(frame)), 0.0, None))
                     for c in ("recency_days", "frequency", "monetary")], axis=1)


def user_dense_matrix(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """[n, spec.user_dense_dim] float32 dense user features of gold_user_features rows: normalised log RFM, country
    one-hot (last column: any other country), category affinity, season affinity."""
    rfm = (_log_rfm(frame) - np.asarray(spec.rfm_mean)) / np.asarray(spec.rfm_std)
    country = np.zeros((len(frame), len(spec.countries) + 1), dtype=np.float32)
    lookup = {c: i for i, c in enumerate(spec.countries)}
    for i, value in enumerate(frame["country"].tolist()):
        country[i, lookup.get(value, len(spec.countries))] = 1.0
    category = _fixed_matrix(frame["category_affinity"], spec.n_category_affinity, np.float32)
    season = _fixed_matrix(frame["season_affinity"], spec.n_season_affinity, np.float32)
    return np.concatenate([rfm.astype(np.float32), country, category, season], axis=1).astype(np.float32)


def fit_rfm_normalizer(users: pd.DataFrame) -> tuple[list[float], list[float]]:
    """Mean and standard deviation (1.0 where constant) of log1p(recency_days, frequency, monetary) over ``users``, as
    two 3-element lists for `FeatureSpec`."""
    rfm = _log_rfm(users)
    std = rfm.std(axis=0)
    return rfm.mean(axis=0).tolist(), np.where(std > 1e-6, std, 1.0).tolist()


def encode_users(frame: pd.DataFrame, spec: FeatureSpec, seen_buckets: np.ndarray | None = None,
                 ablate_context: bool = False, calendar: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """User-side frame -> model inputs. Buckets of users not in ``seen_buckets`` become 0 (OOV).

    ``calendar`` (`calendar_columns`): the context of every row, read instead of the frame's context
    columns; ``history`` then falls back to ``last_items`` (`history_column`)."""
    buckets = user_bucket(frame["user_id"].tolist(), spec.user_buckets)
    if seen_buckets is not None:
        buckets = np.where(seen_buckets[buckets], buckets, 0).astype(np.int32)
    history = frame["history"] if calendar is None else history_column(frame)
    return {
        "user_bucket": buckets,
        "user_dense": user_dense_matrix(frame, spec),
        "history": history_matrix(history, spec.history_length),
        "context": context_matrix(frame if calendar is None else calendar, len(frame), ablate=ablate_context),
    }


def history_column(frame: pd.DataFrame) -> Any:
    """The user rows' recent items, most recent first: ``history`` when the rows carry it, else the
    gold_user_features ``last_items``, else empty for every row."""
    if "history" in frame.columns:
        return frame["history"]
    return frame["last_items"] if "last_items" in frame.columns else [[]] * len(frame)


def calendar_columns(users: pd.DataFrame, context: dict[str, Any], spec: FeatureSpec) -> dict[str, Any]:
    """The context columns ``users`` get from one calendar row: season per row (the hemisphere of the
    user's country), the other columns one value for every row (NaN when the row lacks it)."""
    southern = users["country"].isin(spec.southern_hemisphere).to_numpy()
    north = context.get("season_north", context.get("season"))
    south = context.get("season_south", north)
    columns: dict[str, Any] = {"season": np.where(southern, south, north) if len(users) else []}
    for key in ("woy_sin", "woy_cos", "is_holiday", "days_to_next_event", "days_since_last_event"):
        value = context.get(key)
        columns[key] = float(value) if value is not None else np.nan
    return columns


def with_calendar_context(users: pd.DataFrame, context: dict[str, Any], spec: FeatureSpec) -> pd.DataFrame:
    """gold_user_features rows + one calendar row -> the user-side frame (hemisphere-aware season)."""
    frame = users.copy()
    frame["history"] = history_column(frame)
    for key, value in calendar_columns(users, context, spec).items():
        frame[key] = value
    return frame


def seasonality_lift(seasonality: np.ndarray) -> np.ndarray:
    """Weekly seasonality profile [n, 52] -> lift around 0 (x / mean - 1, clipped to [-1, 4])."""
    profile = np.nan_to_num(np.asarray(seasonality, dtype=np.float64))
    if profile.ndim != 2 or profile.shape[1] != WEEKS:
        fixed = np.zeros((len(profile), WEEKS))
        for i, row in enumerate(profile):
            row = np.asarray(row, dtype=np.float64)[:WEEKS]
            fixed[i, : len(row)] = row
        profile = fixed
    mean = profile.mean(axis=1, keepdims=True)
    lift = np.where(mean > 0, profile / np.where(mean > 0, mean, 1.0) - 1.0, 0.0)
    return np.clip(lift, -1.0, 4.0).astype(np.float32)
