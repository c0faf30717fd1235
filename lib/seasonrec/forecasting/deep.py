"""The global deep model: one LSTM encoder-decoder across all items with a quantile (pinball) loss.

One training example is (item, origin week t):

- history (``lookback`` weeks before t), per week: demand / scale, observed flag (0 before the
  item's first sale), woy_sin, woy_cos, holiday week, festival week;
- future (``steps`` weeks from t), per week: woy_sin, woy_cos, holiday week, festival week,
  last season's demand around the same week (mean of weeks w-53..w-51) / scale and its observed
  flag, and the step position — every value here lies strictly before t (``steps`` is at most
  ``season_length - 2``);
- item and category embeddings;
- target: demand / scale in weeks t..t+steps-1, where scale is the mean observed demand of the
  history window (else of all earlier weeks, else 1).

The decoder is one MLP shared by all horizon steps, so a week's forecast depends on that week's
calendar, last season's demand and the encoded recent history. It outputs the median plus two
softplus gaps, so p10 <= p50 <= p90 by construction; forecasts are clipped at 0.

Examples are built per item in Spark (``applyInPandas``), written through Petastorm and trained
through the training backend seam of ``seasonrec.core.backends`` (``training.backend``: Horovod or
one local process) — one launch fits one model per origin, each on examples whose targets end
before that origin. TensorFlow is imported inside functions only.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from seasonrec.core.backends import Worker

log = logging.getLogger(__name__)

HISTORY_FEATURES = 6
FUTURE_FEATURES = 7
_LAG_SPAN = 1  # last season's demand is averaged over w-52-1 .. w-52+1


@dataclass(frozen=True)
class WeekIndex:
    """Global week numbering: index 0 is ``start`` (a Monday)."""

    start: dt.date

    def of(self, week: dt.date) -> int:
        """Index of the week starting ``week`` (a Monday): whole weeks since ``start``."""
        return (week - self.start).days // 7

    def week(self, index: int) -> dt.date:
        """The Monday of week ``index``."""
        return self.start + dt.timedelta(weeks=int(index))


@dataclass(frozen=True)
class ExampleSpec:
    """How LSTM examples are cut from a weekly series: ``lookback`` weeks of history, ``steps`` weeks forecast,
    ``season_length`` weeks per season (for last season's lag), at least ``min_history`` observed weeks before an
    origin, origins ``stride`` weeks apart. ``steps + 1`` must stay below ``season_length``."""

    lookback: int
    steps: int
    season_length: int
    min_history: int
    stride: int = 1

    def __post_init__(self) -> None:
        if self.steps + _LAG_SPAN >= self.season_length:
            raise ValueError(f"steps ({self.steps}) must be below season_length - 1 ({self.season_length - 1})")


def item_examples(first_index: int, quantity: np.ndarray, calendar: np.ndarray, origins: list[int],
                  spec: ExampleSpec, with_target: bool) -> dict[str, np.ndarray]:
    """Examples of one item at the given origin week indexes.

    ``quantity[i]`` is the demand of week ``first_index + i`` (the item's observed weeks, all before
    the final cutoff); ``calendar[w]`` holds the 4 calendar features of global week ``w`` and must
    cover every target week. Only values at indexes ``< origin`` enter the inputs.
    """
    n_weeks = calendar.shape[0]
    demand = np.zeros(n_weeks + spec.steps, dtype=np.float64)
    observed = np.zeros(n_weeks + spec.steps, dtype=np.float64)
    end = first_index + len(quantity)
    demand[first_index:end] = quantity
    observed[first_index:end] = 1.0
    lb, steps, season = spec.lookback, spec.steps, spec.season_length
    history = np.zeros((len(origins), lb, HISTORY_FEATURES), dtype=np.float32)
    future = np.zeros((len(origins), steps, FUTURE_FEATURES), dtype=np.float32)
    target = np.zeros((len(origins), steps), dtype=np.float32)
    scale = np.ones(len(origins), dtype=np.float32)
    for row, t in enumerate(origins):
        if with_target and t + steps > end:
            raise ValueError(f"origin {t} needs targets up to week {t + steps - 1}, item has them up to {end - 1}")
        lo = max(t - lb, 0)
        past_demand, past_observed = demand[:t], observed[:t]  # nothing at or after the origin
        window_obs = past_observed[lo:t] > 0
        mean = past_demand[lo:t][window_obs].mean() if window_obs.any() else 0.0
        if mean <= 0 and (past_observed > 0).any():
            mean = past_demand[past_observed > 0].mean()
        s = float(mean) if mean > 0 else 1.0
        scale[row] = s
        offset = lb - (t - lo)
        history[row, offset:, 0] = past_demand[lo:t] / s
        history[row, offset:, 1] = past_observed[lo:t]
        history[row, offset:, 2:6] = calendar[lo:t]
        for k in range(steps):
            week = t + k
            future[row, k, 0:4] = calendar[week] if week < n_weeks else 0.0
            lag_lo, lag_hi = week - season - _LAG_SPAN, week - season + _LAG_SPAN + 1
            lag_lo, lag_hi = max(lag_lo, 0), min(lag_hi, t)
            if lag_hi > lag_lo:
                lag_obs = past_observed[lag_lo:lag_hi] > 0
                if lag_obs.any():
                    future[row, k, 4] = past_demand[lag_lo:lag_hi][lag_obs].mean() / s
                    future[row, k, 5] = 1.0
            future[row, k, 6] = k / max(steps - 1, 1)
        if with_target:
            target[row] = demand[t:t + steps] / s
    return {"history": history.reshape(len(origins), -1), "future": future.reshape(len(origins), -1),
            "target": target, "scale": scale}


def training_origins(first_index: int, n_observed: int, spec: ExampleSpec) -> list[int]:
    """Origins whose whole target window lies in the observed weeks, after ``min_history`` weeks."""
    end = first_index + n_observed
    return list(range(end - spec.steps, first_index + spec.min_history - 1, -spec.stride))[::-1]


# ---------------------------------------------------------------------------- model
def build_model(lookback: int, steps: int, n_items: int, n_categories: int, units: int = 32,
                embedding_dim: int = 8) -> Any:
    """The Keras demand LSTM: inputs ``history`` [b, lookback * 6], ``future`` [b, steps * 7], ``item_index`` and
    ``category_index`` (int [b]; ``n_items`` / ``n_categories`` size their embeddings, plus one); output [b, steps,
    3] ordered P10/P50/P90 quantiles of scaled demand. ``units``: LSTM and dense width."""
    import tensorflow as tf

    layers = tf.keras.layers
    history = layers.Input((lookback * HISTORY_FEATURES,), name="history")
    future = layers.Input((steps * FUTURE_FEATURES,), name="future")
    item = layers.Input((), dtype="int32", name="item_index")
    category = layers.Input((), dtype="int32", name="category_index")
    encoded = layers.LSTM(units, name="encoder")(layers.Reshape((lookback, HISTORY_FEATURES))(history))
    item_vector = layers.Embedding(n_items + 1, embedding_dim, name="item_embedding")(item)
    category_vector = layers.Embedding(n_categories + 1, max(2, embedding_dim // 2),
                                       name="category_embedding")(category)
    context = layers.Dense(units, activation="relu")(layers.Concatenate()([encoded, item_vector, category_vector]))
    per_step = layers.Concatenate()([layers.RepeatVector(steps)(context),
                                     layers.Reshape((steps, FUTURE_FEATURES))(future)])
    hidden = layers.Dense(units, activation="relu")(per_step)
    hidden = layers.Dense(units, activation="relu")(hidden)
    raw = layers.Dense(3, name="raw_quantiles")(hidden)
    quantiles = layers.Lambda(_ordered_quantiles, name="quantiles")(raw)
    return tf.keras.Model([history, future, item, category], quantiles, name="demand_lstm")


def _ordered_quantiles(raw: Any) -> Any:
    import tensorflow as tf

    median = raw[..., 1]
    return tf.stack([median - tf.nn.softplus(raw[..., 0]), median, median + tf.nn.softplus(raw[..., 2])], axis=-1)


def pinball_loss(quantiles: list[float]) -> Any:
    """A Keras loss: the mean pinball loss of [b, steps, len(quantiles)] predictions against [b, steps] targets (named
    ``pinball``)."""
    import tensorflow as tf

    q = tf.constant(quantiles, dtype=tf.float32)

    def loss(y_true: Any, y_pred: Any) -> Any:
        error = tf.expand_dims(tf.cast(y_true, tf.float32), -1) - y_pred
        return tf.reduce_mean(tf.maximum(q * error, (q - 1.0) * error))

    loss.__name__ = "pinball"
    return loss


def model_inputs(batch: Any) -> dict[str, Any]:
    """Keras inputs from a mapping/namedtuple of example columns (numpy or tensors)."""
    import tensorflow as tf

    get = batch.get if isinstance(batch, dict) else lambda name: getattr(batch, name)
    return {"history": tf.cast(get("history"), tf.float32), "future": tf.cast(get("future"), tf.float32),
            "item_index": tf.cast(get("item_index"), tf.int32),
            "category_index": tf.cast(get("category_index"), tf.int32)}


def predict_quantiles(model: Any, examples: dict[str, np.ndarray], batch_size: int = 1024) -> np.ndarray:
    """(n, steps, 3) demand quantiles in units (de-scaled, >= 0, ordered)."""
    scaled = model.predict(model_inputs(examples), batch_size=batch_size, verbose=0)
    values = np.clip(scaled * examples["scale"].reshape(-1, 1, 1), 0, None)
    return np.sort(values, axis=-1)


def fit_local(model: Any, examples: dict[str, np.ndarray], quantiles: list[float], epochs: int,
              batch_size: int, learning_rate: float, seed: int = 0) -> list[float]:
    """Plain single-process Keras training on in-memory examples (model unit tests; the job trains from
    Petastorm through the backend seam, :func:`train_fn`)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model.compile(optimizer=tf.keras.optimizers.legacy.Adam(learning_rate), loss=pinball_loss(quantiles))
    history = model.fit(model_inputs(examples), examples["target"], batch_size=batch_size, epochs=epochs,
                        shuffle=True, verbose=0)
    return [float(v) for v in history.history["loss"]]


# ---------------------------------------------------------------------------- training processes
def train_fn(worker: Worker, converter: Any, windows: list[tuple[int, int, int]], model_kwargs: dict[str, Any],
             quantiles: list[float], epochs: int, batch_size: int, learning_rate: float,
             seed: int) -> dict[int, dict[str, Any]]:
    """Runs on every training process (a ``seasonrec.core.backends.Worker``): one model per
    ``(window, cutoff_index, steps_per_epoch)``.

    Each model reads only examples with ``target_end < cutoff_index``. Rank 0 returns the weights.
    """
    import tensorflow as tf

    from seasonrec.core import horovod_runner as dist
    from seasonrec.forecasting.deep import build_model, model_inputs, pinball_loss

    worker.init(seed)
    trained: dict[int, dict[str, Any]] = {}
    for number, (window, cutoff_index, steps_per_epoch) in enumerate(windows, 1):
        tf.keras.utils.set_random_seed(seed + window)
        model = build_model(**model_kwargs)
        model.compile(optimizer=worker.optimizer(learning_rate), loss=pinball_loss(quantiles))
        callbacks = worker.callbacks(learning_rate, steps_per_epoch,
                                     progress=f"[forecast] LSTM {number}/{len(windows)}")
        cutoff = tf.constant(float(cutoff_index))
        with worker.dataset(converter, batch_size=batch_size, seed=seed + window) as dataset:
            examples = (dataset.unbatch()
                        .filter(lambda row, cutoff=cutoff: tf.cast(row.target_end, tf.float32) < cutoff)
                        .batch(batch_size)
                        .map(lambda b: (model_inputs(b), tf.cast(b.target, tf.float32))))
            history = model.fit(examples, steps_per_epoch=steps_per_epoch, epochs=epochs,
                                callbacks=callbacks, verbose=0)
        if worker.is_chief():
            trained[window] = {"weights": model.get_weights(), "loss": [float(v) for v in history.history["loss"]],
                               "digest": dist.weights_digest(model)}
        else:
            trained[window] = {"digest": dist.weights_digest(model)}
    return trained
