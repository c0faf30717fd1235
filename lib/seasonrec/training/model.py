"""The season-aware two-tower retrieval model (TensorFlow/Keras 2). Import only where TF is wanted.

score(user, item | date) = <u, v> + softplus(a) * <week_kernel(date), seasonality_lift(item)>

- user tower: hashed user id (bucket 0 = OOV, trained by id drop-out), user features, the user's
  history pooled twice (mean and recency-weighted) over the item tower's own vectors, and the
  calendar context (cyclic week, season, holiday proximity) -> MLP -> L2-normalised u.
- item tower: item id (OOV bucket), category, price bucket, mean of description-token embeddings,
  52-week seasonality lift -> MLP -> L2-normalised v.
- explicit seasonal term: the context's (sin, cos) of the week of year becomes a learned soft
  one-hot over 52 weeks (scaled by the context's norm, so zeroed context switches it off), dotted
  with the item's seasonality lift. Both towers' outputs are concatenated so the whole score is
  one dot product: ``user_full = [u, softplus(a) * k]``, ``item_full = [v, lift]``.

Loss: in-batch softmax with duplicate-item masking; logits = score / T - log q(item) (sampling-bias
correction, so the in-batch softmax estimates the full-catalog one) + logq_strength * log q(item)
(popularity/logit adjustment: the learned score is debiased by logq_strength * log popularity).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from seasonrec.features.item_neighbours import RECENCY_DECAY
from seasonrec.training.encoding import CONTEXT_DIM, WEEKS


class TwoTowerModel(tf.keras.Model):
    """The season-aware two-tower Keras model (see the module docstring): the item tower reads the per-item
    ``item_tables`` (`data.build_item_tables`), the user tower a batch's ``user_bucket``, ``history``, ``user_dense``
    and ``context``; trained with the in-batch softmax of `batch_loss` at ``temperature``, with ``logq_strength``
    popularity adjustment and ``id_dropout`` of user ids."""

    def __init__(self, item_tables: dict[str, np.ndarray], user_dense_dim: int, history_length: int,
                 embedding_dim: int, user_buckets: int, item_buckets: int, temperature: float = 0.1,
                 logq_strength: float = 1.0, id_dropout: float = 0.1, **kwargs: Any):
        super().__init__(**kwargs)
        d = embedding_dim
        self.embedding_dim = d
        self.temperature = temperature
        self.logq_strength = logq_strength
        self.id_dropout = id_dropout
        self.history_length = history_length
        self.n_items = int(item_tables["item_id_bucket"].shape[0])
        self.item_id_bucket = tf.constant(item_tables["item_id_bucket"], tf.int32)
        self.category_index = tf.constant(item_tables["category_index"], tf.int32)
        self.price_bucket = tf.constant(item_tables["price_bucket"], tf.int32)
        self.token_ids = tf.constant(item_tables["token_ids"], tf.int32)
        self.season_lift = tf.constant(item_tables["season_lift"], tf.float32)
        self.log_q = tf.constant(item_tables["log_q"], tf.float32)
        n_categories = int(item_tables["category_index"].max()) + 1
        n_prices = int(item_tables["price_bucket"].max()) + 1
        n_tokens = int(item_tables["token_ids"].max()) + 1
        init = tf.keras.initializers.RandomNormal(stddev=0.05)
        glorot = tf.keras.initializers.GlorotUniform()

        def weight(name: str, shape: tuple[int, ...], initializer: Any = init) -> tf.Variable:
            return self.add_weight(name=name, shape=shape, initializer=initializer, trainable=True)

        self.user_embedding = weight("user_embedding", (user_buckets, d))
        self.item_embedding = weight("item_embedding", (item_buckets, d))
        self.category_embedding = weight("category_embedding", (n_categories, d // 2 or 1))
        self.price_embedding = weight("price_embedding", (n_prices, d // 4 or 1))
        self.token_embedding = weight("token_embedding", (n_tokens, d))
        item_in = d + (d // 2 or 1) + (d // 4 or 1) + d + WEEKS
        self.item_w1 = weight("item_w1", (item_in, 2 * d), glorot)
        self.item_b1 = weight("item_b1", (2 * d,), "zeros")
        self.item_w2 = weight("item_w2", (2 * d, d), glorot)
        self.item_b2 = weight("item_b2", (d,), "zeros")
        user_in = d + 2 * d + user_dense_dim + CONTEXT_DIM
        self.user_w1 = weight("user_w1", (user_in, 2 * d), glorot)
        self.user_b1 = weight("user_b1", (2 * d,), "zeros")
        self.user_w2 = weight("user_w2", (2 * d, d), glorot)
        self.user_b2 = weight("user_b2", (d,), "zeros")
        # Soft one-hot of the week from (sin, cos), initialised at week i <-> angle 2*pi*(i+1)/52.
        angles = 2 * np.pi * (np.arange(WEEKS) + 1) / WEEKS
        kernel0 = 4.0 * np.stack([np.sin(angles), np.cos(angles)]).astype(np.float32)
        self.week_w = weight("week_w", (2, WEEKS), tf.keras.initializers.Constant(kernel0))
        self.week_b = weight("week_b", (WEEKS,), "zeros")
        self.season_scale = weight("season_scale", (), tf.keras.initializers.Constant(0.5))
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")

    # ------------------------------------------------------------------ towers
    def item_core(self) -> tf.Tensor:
        """L2-normalised core vectors of every catalog item [n_items, d]."""
        ids = tf.gather(self.item_embedding, self.item_id_bucket)
        cats = tf.gather(self.category_embedding, self.category_index)
        prices = tf.gather(self.price_embedding, self.price_bucket)
        token_mask = tf.cast(self.token_ids > 0, tf.float32)[..., None]
        tokens = tf.reduce_sum(tf.gather(self.token_embedding, self.token_ids) * token_mask, axis=1)
        tokens = tokens / tf.maximum(tf.reduce_sum(token_mask, axis=1), 1.0)
        x = tf.concat([ids, cats, prices, tokens, self.season_lift], axis=1)
        hidden = tf.nn.relu(tf.matmul(x, self.item_w1) + self.item_b1)
        return tf.math.l2_normalize(tf.matmul(hidden, self.item_w2) + self.item_b2, axis=1)

    def item_full(self, item_core: tf.Tensor | None = None) -> tf.Tensor:
        """[n_items, d + 52] item vectors: the item core (computed unless given) followed by the seasonality lift."""
        core = self.item_core() if item_core is None else item_core
        return tf.concat([core, self.season_lift], axis=1)

    def user_full(self, inputs: dict[str, tf.Tensor], item_core: tf.Tensor | None = None,
                  training: bool = False) -> tf.Tensor:
        """[B, d + 52] user vectors of a batch: the L2-normalised user core followed by ``softplus(season_scale)`` x
        `week_kernel` (with ``training``, user ids drop out to the OOV bucket)."""
        core = self.item_core() if item_core is None else item_core
        bucket = tf.cast(tf.reshape(inputs["user_bucket"], [-1]), tf.int32)
        if training and self.id_dropout > 0:
            drop = tf.random.uniform(tf.shape(bucket)) < self.id_dropout
            bucket = tf.where(drop, tf.zeros_like(bucket), bucket)
        user_ids = tf.gather(self.user_embedding, bucket)
        history = tf.cast(inputs["history"], tf.int32)
        padded_core = tf.concat([tf.zeros([1, self.embedding_dim]), core], axis=0)
        history_vectors = tf.gather(padded_core, history)  # [B, L, d]
        mask = tf.cast(history > 0, tf.float32)
        mean_pool = tf.reduce_sum(history_vectors * mask[..., None], 1) / tf.maximum(
            tf.reduce_sum(mask, 1, keepdims=True), 1.0)
        decay = tf.constant(RECENCY_DECAY ** np.arange(self.history_length), tf.float32)[None, :] * mask
        recent_pool = tf.reduce_sum(history_vectors * decay[..., None], 1) / tf.maximum(
            tf.reduce_sum(decay, 1, keepdims=True), 1e-6)
        dense = tf.cast(inputs["user_dense"], tf.float32)
        context = tf.cast(inputs["context"], tf.float32)
        x = tf.concat([user_ids, mean_pool, recent_pool, dense, context], axis=1)
        hidden = tf.nn.relu(tf.matmul(x, self.user_w1) + self.user_b1)
        user_core = tf.math.l2_normalize(tf.matmul(hidden, self.user_w2) + self.user_b2, axis=1)
        return tf.concat([user_core, tf.nn.softplus(self.season_scale) * self.week_kernel(context)], axis=1)

    def week_kernel(self, context: tf.Tensor) -> tf.Tensor:
        """[B, 52] learned soft one-hot over weeks of the year from the context's week sin/cos, scaled by their norm."""
        sin_cos = context[:, :2]
        strength = tf.norm(sin_cos, axis=1, keepdims=True)
        return tf.nn.softmax(tf.matmul(sin_cos, self.week_w) + self.week_b, axis=1) * strength

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """Full-catalog scores [B, n_items] for a batch of user-side inputs."""
        core = self.item_core()
        return tf.matmul(self.user_full(inputs, core, training=training), self.item_full(core), transpose_b=True)

    # ------------------------------------------------------------------ training
    def batch_loss(self, batch: dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        """Scalar in-batch softmax cross-entropy of a batch (each row's own item is its positive, the other rows' items
        its negatives, duplicates masked), logits ``score / temperature + (logq_strength - 1) * log q``."""
        core = self.item_core()
        users = self.user_full(batch, core, training=training)
        items = tf.cast(tf.reshape(batch["item_index"], [-1]), tf.int32)
        item_vectors = tf.gather(self.item_full(core), items)
        logits = tf.matmul(users, item_vectors, transpose_b=True) / self.temperature
        log_q = tf.gather(self.log_q, items)
        logits += (self.logq_strength - 1.0) * log_q[None, :]
        same_item = tf.equal(items[:, None], items[None, :])
        off_diagonal = tf.logical_not(tf.cast(tf.eye(tf.shape(items)[0]), tf.bool))
        logits = tf.where(tf.logical_and(same_item, off_diagonal), tf.fill(tf.shape(logits), -1e9), logits)
        labels = tf.range(tf.shape(items)[0])
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        """One optimisation step on a batch (through ``optimizer.minimize`` with the tape, as Horovod needs); returns
        ``{"loss": mean loss so far}``."""
        batch = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            loss = self.batch_loss(batch, training=True)
        # minimize(..., tape=) is what makes hvd.DistributedOptimizer allreduce the gradients.
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self) -> list[Any]:
        """The loss tracker, so Keras resets it every epoch."""
        return [self.loss_tracker]

    def numpy_weights(self) -> dict[str, np.ndarray]:
        """The weights the numpy scorer needs, by name."""
        names = ["user_embedding", "user_w1", "user_b1", "user_w2", "user_b2", "week_w", "week_b"]
        out = {name: getattr(self, name).numpy() for name in names}
        out["season_scale"] = np.asarray(tf.nn.softplus(self.season_scale).numpy(), dtype=np.float32)
        core = self.item_core()
        out["item_core"] = core.numpy()
        out["item_matrix"] = self.item_full(core).numpy()
        return out


def build_model(item_tables: dict[str, np.ndarray], spec_dict: dict[str, Any], params: dict[str, Any]) -> TwoTowerModel:
    """A `TwoTowerModel` from the item tables, the feature spec as a dict (``user_dense_dim``, ``history_length``) and
    the training params (embedding_dim, user/item buckets, temperature, logq_strength)."""
    return TwoTowerModel(
        item_tables=item_tables, user_dense_dim=int(spec_dict["user_dense_dim"]),
        history_length=int(spec_dict["history_length"]), embedding_dim=int(params["embedding_dim"]),
        user_buckets=int(params["user_buckets"]), item_buckets=int(params["item_buckets"]),
        temperature=float(params["temperature"]), logq_strength=float(params["logq_strength"]),
    )


def load_keras_model(version_dir: str) -> TwoTowerModel:
    """The exported Keras model of a version directory (for MLflow users, debugging and tests)."""
    import json
    import os

    from seasonrec.training.artifacts import META_FILE, WEIGHTS_FILE

    with open(os.path.join(version_dir, META_FILE), encoding="utf-8") as handle:
        meta = json.load(handle)
    with np.load(os.path.join(version_dir, WEIGHTS_FILE)) as data:
        item_tables = {key: data[key] for key in ("item_id_bucket", "category_index", "price_bucket", "token_ids",
                                                  "season_lift", "log_q")}
    spec = dict(meta["feature_spec"])
    spec["user_dense_dim"] = meta["user_dense_dim"]
    model = build_model(item_tables, spec, meta["params"])
    model.load_weights(os.path.join(version_dir, "keras", "weights")).expect_partial()
    return model
