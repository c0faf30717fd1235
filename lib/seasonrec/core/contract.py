"""What the scoring engine needs from a recommender model, and the keys of the request context.

The engine (`seasonrec.scoring.engine`) codes against `Recommender` only, so the trained two-tower +
ranker (`seasonrec.training.artifacts.TwoStageModel`), ALS factors (`seasonrec.scoring.models.
ALSFactorsModel`) and anything else with item vectors, a user tower and an optional second stage
score the same way.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

# Key of the context dict carrying the item signals of the request date
# (`seasonrec.features.item_activity.ItemActivity.at`); a model may ignore it.
ITEM_SIGNALS = "item_signals"
# Key of the context dict carrying co-purchase neighbours refitted on the baskets before the request
# date (`seasonrec.features.item_neighbours.ItemNeighbours`); without it a model uses its own,
# fitted before its training cut.
COPURCHASE = "copurchase_neighbours"
# Key of the context dict carrying the weather of the request date (`seasonrec.features.item_weather.
# WeatherAt`: the countries' trailing anomaly and spells, the items' weather sensitivity); without it
# the ranker's weather features are zeros (weather unknown).
WEATHER = "weather"
# Key of the context dict carrying each country's item mix at the request date (`seasonrec.features.
# item_activity.CountryMix`); without it the country lift of every user is 0 (country unknown).
COUNTRY_MIX = "country_mix"
# Optional column of a user row: a trailing 7-day temperature anomaly (degC) the caller supplies (a
# served request's ``anomaly_7d_c``); it replaces the user's country's weather from `WEATHER`.
USER_ANOMALY = "anomaly_7d_c"


@runtime_checkable
class Recommender(Protocol):
    """Two-stage retrieval model as the scoring engine sees it.

    - `item_ids`: [n_items] item_id of each row of `item_matrix`.
    - `item_matrix`: [n_items, d] float32 item vectors; first-stage score = user vector . item vector.
    - `user_matrix(users_pdf, context)`: [n_users, d] user vectors for rows of gold_user_features
      (users unseen at training time included, from their features and history) in `context`
      (one calendar row as a dict, plus optional `ITEM_SIGNALS`).
    - `rerank(users_pdf, candidate_positions [n, C], candidate_scores [n, C], context)`: [n, C]
      final scores of each user's candidates (rows of `item_matrix`).
    - `ablate_context`: when True the model ignores the calendar context (ablation).
    Optional: `has_reranker` (bool, default True when `rerank` exists),
    `known_user_mask(users_pdf) -> bool [n_users]` (False = unseen at training time, for reporting),
    `candidate_pairs(users_pdf, context) -> (rows, positions)` (other candidate sources' proposals,
    always in the pool), `discovery` / `calibrated_discovery` (the long-tail knob),
    `prepare(users_pdf, context) -> prepared` (the block encoded once; the engine then passes
    `prepared` instead of `users_pdf` to every method above for that block).
    """

    model_version: str
    item_ids: np.ndarray
    item_matrix: np.ndarray
    ablate_context: bool

    def user_matrix(self, users_pdf: pd.DataFrame, context: dict[str, Any]) -> np.ndarray:
        """[n_users, d] float32 user vectors for the rows of ``users_pdf`` in the request ``context``."""

    def rerank(self, users_pdf: pd.DataFrame, candidate_positions: np.ndarray, candidate_scores: np.ndarray,
               context: dict[str, Any]) -> np.ndarray:
        """[n, C] final scores of each user's candidates (``candidate_positions``: int [n, C] rows of ``item_matrix``;
        ``candidate_scores``: [n, C] first-stage scores)."""


def has_reranker(model: Any) -> bool:
    """True when ``model`` has a callable ``rerank`` and does not say ``has_reranker = False`` (the engine then runs the
    second stage)."""
    return callable(getattr(model, "rerank", None)) and bool(getattr(model, "has_reranker", True))
