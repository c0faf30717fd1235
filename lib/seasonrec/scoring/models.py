"""Recommenders the scoring engine can load or wrap besides the trained model: Spark MLlib ALS factors
and an item-bias second stage. The contract they implement is `seasonrec.core.contract.Recommender`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def load_model(model_dir: str) -> Any:
    """The trained model under `model_dir` (TensorFlow is imported only here, inside the call)."""
    from seasonrec.training.artifacts import load_scoring_model

    return load_scoring_model(model_dir)


class ALSFactorsModel:
    """`Recommender` over matrix-factorization factors, e.g. a Spark MLlib `ALSModel`'s.

    Users are looked up by `user_key` (a column of users_pdf holding the factor ids). A user without
    factors (unseen at training time) is folded in from history when `history_key` names a column of
    item-id lists (the mean of those items' vectors), else gets the mean user vector; either way it
    is scored, and `known_user_mask` reports it. No second stage.
    """

    has_reranker = False

    def __init__(self, user_ids: np.ndarray, user_factors: np.ndarray, item_ids: np.ndarray,
                 item_factors: np.ndarray, model_version: str = "als", user_key: str = "user_id",
                 history_key: str | None = None):
        user_order = np.argsort(user_ids, kind="stable")
        self._user_ids = np.asarray(user_ids)[user_order]
        self._user_factors = np.asarray(user_factors, dtype=np.float32)[user_order]
        self.item_ids = np.asarray(item_ids)
        self.item_matrix = np.ascontiguousarray(item_factors, dtype=np.float32)
        self._item_order = np.argsort(self.item_ids, kind="stable")
        self.model_version = model_version
        self.user_key = user_key
        self.history_key = history_key
        self.ablate_context = False
        self._mean_user = (self._user_factors.mean(axis=0) if len(self._user_factors)
                           else np.zeros(self.item_matrix.shape[1], np.float32))

    @classmethod
    def from_als(cls, als_model: Any, model_version: str | None = None, **kwargs: Any) -> ALSFactorsModel:
        """From a fitted `pyspark.ml.recommendation.ALSModel` (factors are collected to the driver)."""
        users = als_model.userFactors.toPandas()
        items = als_model.itemFactors.toPandas()
        return cls(users["id"].to_numpy(), np.stack(users["features"].to_numpy()).astype(np.float32),
                   items["id"].to_numpy(), np.stack(items["features"].to_numpy()).astype(np.float32),
                   model_version=model_version or f"als-{als_model.uid}", **kwargs)

    def _lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        where = np.searchsorted(self._user_ids, ids)
        where = np.clip(where, 0, max(len(self._user_ids) - 1, 0))
        known = (self._user_ids[where] == ids) if len(self._user_ids) else np.zeros(len(ids), bool)
        return where, known

    def known_user_mask(self, users_pdf: pd.DataFrame) -> np.ndarray:
        """bool [n_users]: True for rows of ``users_pdf`` whose ``user_key`` has ALS factors."""
        return self._lookup(users_pdf[self.user_key].to_numpy())[1]

    def user_matrix(self, users_pdf: pd.DataFrame, context: dict[str, Any]) -> np.ndarray:
        """[n_users, d] float32: each user's ALS factors; an unknown user gets the mean of the item vectors of their
        ``history_key`` items (item ids), else the mean user vector. ``context`` is ignored."""
        where, known = self._lookup(users_pdf[self.user_key].to_numpy())
        vectors = np.where(known[:, None], self._user_factors[where], self._mean_user[None, :]).astype(np.float32)
        if self.history_key is not None and not known.all():
            for row in np.flatnonzero(~known):
                history = users_pdf[self.history_key].iloc[row]
                if history is None or len(history) == 0:
                    continue
                ids = np.asarray(history)
                pos = np.clip(np.searchsorted(self.item_ids[self._item_order], ids), 0, len(self.item_ids) - 1)
                pos = self._item_order[pos]
                pos = pos[self.item_ids[pos] == ids]
                if pos.size:
                    vectors[row] = self.item_matrix[pos].mean(axis=0)
        return vectors


class ItemBiasReranker:
    """A `Recommender` that adds a second stage to another: final score = first-stage score + item bias.

    The bias is per item row (e.g. a popularity or seasonal prior); `season_bias` optionally adds
    `season_bias[context['season_north']]` per item, so the second stage depends on the date.
    """

    has_reranker = True

    def __init__(self, base: Any, item_bias: np.ndarray, season_bias: dict[str, np.ndarray] | None = None):
        self.base = base
        self.item_bias = np.asarray(item_bias, dtype=np.float32)
        self.season_bias = season_bias or {}
        self.model_version = f"{base.model_version}+bias"
        self.item_ids = base.item_ids
        self.item_matrix = base.item_matrix
        self.ablate_context = False

    def known_user_mask(self, users_pdf: pd.DataFrame) -> np.ndarray:
        """The base model's `known_user_mask`."""
        return self.base.known_user_mask(users_pdf)

    def user_matrix(self, users_pdf: pd.DataFrame, context: dict[str, Any]) -> np.ndarray:
        """The base model's user vectors (the first stage is unchanged)."""
        return self.base.user_matrix(users_pdf, context)

    def rerank(self, users_pdf: pd.DataFrame, candidate_positions: np.ndarray, candidate_scores: np.ndarray,
               context: dict[str, Any]) -> np.ndarray:
        """[n, C] ``candidate_scores`` + the item bias of each candidate position, plus
        ``season_bias[context["season_north"]]`` when that season has one (not when ``ablate_context``)."""
        bias = self.item_bias
        season = None if self.ablate_context else context.get("season_north")
        if season in self.season_bias:
            bias = bias + self.season_bias[season]
        return candidate_scores + bias[candidate_positions]
