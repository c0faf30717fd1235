"""User features as of the day being recommended for (scoring and evaluation windows).

`gold_user_features` is cut at the training cutoff (split.train_end) so that training examples
cannot see their own future. A request for a later day (the test window, tomorrow's scoring run)
must see everything bought before that day, above all the most recent purchases, so the same
point-in-time function is applied again from silver with that day as the cutoff.
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
    from seasonrec.features import gold, silver

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
    for name in (tables.SILVER_INTERACTIONS, tables.ITEM_FEATURES, tables.CALENDAR):
        if not lake.exists(name):
            raise JobError(f"table '{name}' does not exist {lake.where}; run `seasonrec features` first")
    items = lake.read(tables.ITEM_FEATURES)
    n_categories = items.select("category_index").distinct().count()
    return gold.user_features(silver.personal(lake.read(tables.SILVER_INTERACTIONS)), items, lake.read(tables.CALENDAR),
                              as_of, config.features, n_categories)
