"""User features as of the day being recommended for (training examples, scoring and evaluation windows).

`gold_user_features` is cut at the training cutoff (split.train_end). A request for a later day (the
test window, tomorrow's scoring run) must see everything bought before that day, above all the most
recent purchases, so the same point-in-time function is applied again from silver with that day as
the cutoff (`user_features_as_of`). A training example or validation unit on day d inside the data is
described the same way, by the user's purchases before d (`user_features_at`): totals at the training
cutoff would already hold that purchase and later ones, which no request ever sees.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame

from seasonrec import tables
from seasonrec.context import JobError


def user_features_as_of(lake: Any, config: Any, as_of: dt.date) -> DataFrame:
    """gold_user_features when it is already cut at `as_of` (or has no `as_of`, or a null one: a user
    list made by hand is taken as it is), else the same columns recomputed from silver at `as_of`."""
    from seasonrec.features import gold

    if not lake.exists(tables.USER_FEATURES):
        raise JobError(f"table '{tables.USER_FEATURES}' does not exist {lake.where}; "
                       "run `seasonrec features` first")
    stored = lake.read(tables.USER_FEATURES)
    if "as_of" not in stored.columns:
        return stored
    cut = stored.select("as_of").limit(1).collect()
    if cut and cut[0]["as_of"] is None:
        return stored
    if cut and cut[0]["as_of"] == as_of and all(c in stored.columns for c in gold.BOUGHT_COLUMNS):
        return stored
    purchases, items, calendar = _inputs(lake)
    n_categories = items.select("category_index").distinct().count()
    return gold.user_features(purchases, items, calendar, as_of, config.features, n_categories)


def user_features_at(lake: Any, config: Any, cutoffs: DataFrame, n_categories: int) -> DataFrame:
    """The two-tower's user columns of each (user_id, cutoff_date) in ``cutoffs``, from silver's purchases
    before that day (`seasonrec.features.gold.user_features_at`); ``n_categories``: the length of
    ``category_affinity`` (that of gold_user_features). Returns user_id, cutoff_date, country,
    recency_days, frequency, monetary, category_affinity, season_affinity."""
    from seasonrec.features import gold

    purchases, items, calendar = _inputs(lake)
    return gold.user_features_at(purchases, items, calendar, cutoffs, config.features, n_categories)


def _inputs(lake: Any) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(silver's purchases with a user, gold_item_features, calendar); `JobError` naming a missing table."""
    from seasonrec.features import silver

    for name in (tables.SILVER_INTERACTIONS, tables.ITEM_FEATURES, tables.CALENDAR):
        if not lake.exists(name):
            raise JobError(f"table '{name}' does not exist {lake.where}; run `seasonrec features` first")
    return (silver.personal(lake.read(tables.SILVER_INTERACTIONS)), lake.read(tables.ITEM_FEATURES),
            lake.read(tables.CALENDAR))
