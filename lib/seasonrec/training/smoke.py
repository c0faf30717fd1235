"""A tiny Horovod train function (importable on Spark executors) for the smoke test and the benchmark."""

from __future__ import annotations

import os
import time
from typing import Any


def train_tiny_regressor(converter: Any, steps_per_epoch: int, epochs: int, learning_rate: float,
                         checkpoint_dir: str | None = None, batch_size: int = 32, seed: int = 11) -> dict[str, Any]:
    """Fit y ~ Dense(Dense(x0, x1, x2)) on this rank's Petastorm shard; returns losses and a weights digest."""
    import tensorflow as tf

    from seasonrec.core import horovod_runner as dist

    hvd = dist.init_worker(seed=seed)
    model = tf.keras.Sequential([tf.keras.layers.Input(shape=(3,)), tf.keras.layers.Dense(4, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=dist.distributed_optimizer(learning_rate), loss="mse")
    callbacks = dist.standard_callbacks(learning_rate, steps_per_epoch, warmup_epochs=1)
    if checkpoint_dir and hvd.rank() == 0:
        callbacks.append(tf.keras.callbacks.ModelCheckpoint(os.path.join(checkpoint_dir, "ckpt.h5")))
    started = time.perf_counter()
    with dist.sharded_tf_dataset(converter, batch_size=batch_size) as dataset:
        dataset = dataset.map(lambda b: (tf.stack([b.x0, b.x1, b.x2], axis=1), b.y))
        history = model.fit(dataset, steps_per_epoch=steps_per_epoch, epochs=epochs, callbacks=callbacks,
                            verbose=0)
    seconds = time.perf_counter() - started
    return {"rank": hvd.rank(), "size": hvd.size(), "loss": history.history["loss"], "seconds": seconds,
            "examples": steps_per_epoch * epochs * batch_size, "digest": dist.weights_digest(model)}
